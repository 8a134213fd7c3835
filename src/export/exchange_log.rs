//! `--exchanges`: one JSON object per HTTP exchange, in the form
//! `--exchanges-format` asks for: `apiwatch` (the shape `docs/exchange-log.md` fixes,
//! like Zeek's http.log plus the learned endpoint and client key), `eve` (Suricata
//! `event_type: http` records) or `zeek` (Zeek http.log JSON). No secret is written: the target is redacted by rule
//! ([`crate::redact`]); headers that carry secrets (Authorization, Cookie) are never
//! part of the record.

use std::io::{self, Write};

use crate::http::Exchange;
use crate::identity::{self, ClientId};

/// `--exchanges-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExchangeFormat {
    #[default]
    Apiwatch,
    Eve,
    Zeek,
}

impl std::str::FromStr for ExchangeFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "apiwatch" => Ok(ExchangeFormat::Apiwatch),
            "eve" => Ok(ExchangeFormat::Eve),
            "zeek" => Ok(ExchangeFormat::Zeek),
            _ => Err(format!(
                "--exchanges-format: '{s}' is not apiwatch, eve or zeek"
            )),
        }
    }
}

// The record's fields, in order (docs/exchange-log.md): timestamp, flow_id,
// client_ip, client_port, server_ip, server_port, trans_depth, method, host, uri,
// version, user_agent, request_body_len, status, response_body_len,
// response_time_ms, flags (only when there is something to say: `head_too_large`, a
// head past the parser's limit read line by line with long lines skipped;
// `too_many_headers`, fields past the count limit of which only the known ones were
// read; `decrypted`, read from TLS with `--tls-keylog`), endpoint, client. Missing
// values are null.

/// The exchange's flags (see the field list above).
fn flags(e: &Exchange) -> Vec<&'static str> {
    let mut f = Vec::new();
    let resp = e.response_headers.as_ref();
    if e.request_headers.oversized || resp.is_some_and(|h| h.oversized) {
        f.push("head_too_large");
    }
    if e.request_headers.overflow || resp.is_some_and(|h| h.overflow) {
        f.push("too_many_headers");
    }
    if e.decrypted {
        f.push("decrypted");
    }
    f
}

pub use crate::redact::redact_uri;

/// The endpoint of an exchange: method plus path template.
pub fn endpoint(e: &Exchange) -> Option<String> {
    let m = e.method.as_deref()?;
    let t = crate::routes::template(e.uri.as_deref().unwrap_or("/"));
    Some(format!("{} {t}", m.to_ascii_uppercase()))
}

/// Serialises one exchange as a JSON line (endpoint from the stateless templates).
pub fn to_json(e: &Exchange) -> String {
    to_json_with(e, None)
}

/// Serialises one exchange with the endpoint and client key the detection engine
/// assigned (learned template; trusted proxies and principal keys applied).
pub fn to_json_with(e: &Exchange, labels: Option<(&str, ClientId)>) -> String {
    let mut s = String::with_capacity(512);
    write_head(&mut s, e);
    write_tail(&mut s, e, labels);
    s
}

/// Every field but the two the detection engine assigns, as an unterminated JSON
/// object: the part of a record that workers can serialise in parallel.
pub fn head_json(e: &Exchange) -> String {
    let mut s = String::with_capacity(384);
    write_head(&mut s, e);
    s
}

/// Appends [`head_json`] to `out`.
pub fn write_head(out: &mut String, e: &Exchange) {
    use crate::export::json;
    out.push_str("{\"timestamp\":\"");
    json::timestamp(out, e.ts, "Z");
    out.push_str("\",\"flow_id\":");
    json::uint(out, e.flow.id);
    out.push_str(",\"client_ip\":\"");
    json::ip(out, identity::normalise(e.client_ip));
    out.push_str("\",\"client_port\":");
    json::uint(out, u64::from(e.client_port));
    out.push_str(",\"server_ip\":\"");
    json::ip(out, identity::normalise(e.server_ip));
    out.push_str("\",\"server_port\":");
    json::uint(out, u64::from(e.server_port));
    out.push_str(",\"trans_depth\":");
    json::uint(out, u64::from(e.trans_depth));
    out.push_str(",\"method\":");
    json::opt_string(out, e.method.as_deref());
    out.push_str(",\"host\":");
    json::opt_string(out, e.request_headers.host.as_deref());
    out.push_str(",\"uri\":");
    json::opt_string(out, e.uri.as_deref().map(redact_uri).as_deref());
    out.push_str(",\"version\":");
    json::opt_string(out, e.version.as_deref());
    out.push_str(",\"user_agent\":");
    json::opt_string(out, e.request_headers.user_agent.as_deref());
    out.push_str(",\"request_body_len\":");
    json::uint(out, e.request_body_len);
    out.push_str(",\"status\":");
    json::opt_uint(out, e.status.map(u64::from));
    out.push_str(",\"response_body_len\":");
    json::opt_uint(out, e.response_body_len);
    out.push_str(",\"response_time_ms\":");
    match e.response_time_ns() {
        Some(ns) => json::millis(out, ns),
        None => out.push_str("null"),
    }
    if let Some(h) = e.h2.as_deref() {
        write_h2(out, h);
    }
    let flags = flags(e);
    if !flags.is_empty() {
        out.push_str(",\"flags\":[");
        for (i, f) in flags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::string(out, f);
        }
        out.push(']');
    }
}

/// An HTTP/2 exchange's stream and gRPC call: `"http2":{"stream_id":N}` (`pushed`
/// and `reset` when true) and `"grpc":{...}` for a gRPC call.
#[cold]
fn write_h2(out: &mut String, h: &crate::http::h2::StreamInfo) {
    use crate::export::json;
    out.push_str(",\"http2\":{\"stream_id\":");
    json::uint(out, u64::from(h.stream_id));
    if h.pushed {
        out.push_str(",\"pushed\":true");
    }
    if h.reset {
        out.push_str(",\"reset\":true");
    }
    out.push('}');
    if let Some(g) = &h.grpc {
        out.push_str(",\"grpc\":{\"status\":");
        json::opt_uint(out, g.status.map(u64::from));
        out.push_str(",\"message\":");
        json::opt_string(out, g.message.as_deref());
        out.push_str(",\"request_messages\":");
        json::uint(out, g.request_messages);
        out.push_str(",\"response_messages\":");
        json::uint(out, g.response_messages);
        out.push('}');
    }
}

/// Appends `endpoint` and `client` and closes the record.
fn write_tail(out: &mut String, e: &Exchange, labels: Option<(&str, ClientId)>) {
    use crate::export::json;
    out.push_str(",\"endpoint\":");
    match labels {
        Some((ep, _)) => json::string(out, ep),
        None => json::opt_string(out, endpoint(e).as_deref()),
    }
    // A client key is `ip:` and an address, or a kind and hex digits: nothing to
    // escape.
    out.push_str(",\"client\":\"");
    match labels {
        Some((_, c)) => c.write_key(out),
        None => identity::write_client_key(out, e.client_ip),
    }
    out.push_str("\"}");
}

/// Records are written to the file in batches of about this many bytes.
const BATCH: usize = 256 * 1024;

/// A JSON-lines file of exchanges.
pub struct ExchangeLog {
    out: Box<dyn Write + Send>,
    /// Whole records not yet written to `out`. Each record is formatted straight
    /// into it (no per-record line copied into a `BufWriter`); it is written once it
    /// holds [`BATCH`] bytes, so `out` only ever sees whole lines.
    pending: String,
    pub written: u64,
    pub format: ExchangeFormat,
    /// Named on EVE records (`pcap_filename` / `in_iface`).
    pub input: Option<crate::export::eve::Input>,
}

impl ExchangeLog {
    pub fn new(
        w: Box<dyn Write + Send>,
        format: ExchangeFormat,
        input: Option<crate::export::eve::Input>,
    ) -> Self {
        ExchangeLog {
            out: w,
            pending: String::with_capacity(BATCH + 4096),
            written: 0,
            format,
            input,
        }
    }

    /// Writes one record; `head` is its [`head_json`] when a worker made it already
    /// (the `apiwatch` form only).
    pub fn write(
        &mut self,
        e: &Exchange,
        labels: Option<(&str, ClientId)>,
        head: Option<&str>,
    ) -> io::Result<()> {
        let out = &mut self.pending;
        if let Some(t) = e.tls.as_deref() {
            out.push_str(&match self.format {
                ExchangeFormat::Apiwatch => crate::export::tls::apiwatch(e, t),
                ExchangeFormat::Eve => crate::export::tls::eve(e, t, self.input.as_ref()),
                ExchangeFormat::Zeek => crate::export::tls::zeek(e, t),
            });
            out.push('\n');
            self.written += 1;
            if self.pending.len() >= BATCH {
                self.write_pending()?;
            }
            return Ok(());
        }
        match (self.format, head) {
            (ExchangeFormat::Eve, _) => {
                out.push_str(&crate::export::eve::http_record(e, self.input.as_ref()))
            }
            (ExchangeFormat::Zeek, _) => out.push_str(&crate::export::zeek::record(e)),
            (ExchangeFormat::Apiwatch, Some(h)) => {
                out.push_str(h);
                write_tail(out, e, labels);
            }
            (ExchangeFormat::Apiwatch, None) => {
                write_head(out, e);
                write_tail(out, e, labels);
            }
        }
        out.push('\n');
        self.written += 1;
        if self.pending.len() >= BATCH {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Hands the pending records to the file. They are dropped on an error too (the
    /// caller stops on it), so a failing disk cannot make them pile up.
    fn write_pending(&mut self) -> io::Result<()> {
        let r = self.out.write_all(self.pending.as_bytes());
        self.pending.clear();
        r
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.out.flush()
    }
}

impl Drop for ExchangeLog {
    /// What is pending still reaches the file, as a `BufWriter` would do; an error
    /// here has nowhere to go (a failing `flush` was already reported).
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_query_strings_are_redacted() {
        assert_eq!(
            redact_uri("/a?x=1&password=hunter2&Token=abc"),
            "/a?x=1&password=REDACTED&Token=REDACTED"
        );
        assert_eq!(redact_uri("/a?x=1"), "/a?x=1");
        assert_eq!(redact_uri("/a"), "/a");
    }

    #[test]
    fn record_has_contract_fields_and_nulls() {
        let e = Exchange {
            ts: 1_795_428_372_300_000_000,
            client_ip: "10.77.1.20".parse().unwrap(),
            client_port: 51234,
            server_ip: "10.77.0.1".parse().unwrap(),
            server_port: 80,
            trans_depth: 1,
            method: Some("GET".into()),
            uri: Some("/users/v1/42?verbose=1".into()),
            version: Some("1.1".into()),
            incomplete: true,
            ..Exchange::vacant()
        };
        let v: serde_json::Value = serde_json::from_str(&to_json(&e)).unwrap();
        assert_eq!(v["timestamp"], "2026-11-23T10:06:12.300000Z");
        assert_eq!(v["endpoint"], "GET /users/v1/{id}");
        assert_eq!(v["client"], "ip:10.77.1.20");
        assert!(v["status"].is_null() && v["host"].is_null() && v["response_time_ms"].is_null());
        assert_eq!(v.as_object().unwrap().len(), 18);
        // What the sensor could not see whole is said, only then.
        let mut padded = e.clone();
        padded.request_headers.oversized = true;
        let v: serde_json::Value = serde_json::from_str(&to_json(&padded)).unwrap();
        assert_eq!(v["flags"], serde_json::json!(["head_too_large"]));
        assert_eq!(v.as_object().unwrap().len(), 19);
    }
}
