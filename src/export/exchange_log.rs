//! `--exchanges`: one JSON object per HTTP exchange, in the form
//! `--exchanges-format` asks for: `apiwatch` (the shape `docs/exchange-log.md` fixes,
//! like Zeek's http.log plus the learned endpoint and client key), `eve` (Suricata
//! `event_type: http` records) or `zeek` (Zeek http.log JSON). No secret is written: the target is redacted by rule
//! ([`crate::redact`]); headers that carry secrets (Authorization, Cookie) are never
//! part of the record.

use std::borrow::Cow;
use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::http::Exchange;
use crate::identity::{self, ClientId};
use crate::time::iso_utc_z;

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

#[derive(Serialize)]
struct Record<'a> {
    timestamp: String,
    /// The connection (the same id alerts carry); 0 when unknown.
    flow_id: u64,
    client_ip: IpAddr,
    client_port: u16,
    server_ip: IpAddr,
    server_port: u16,
    trans_depth: u32,
    method: Option<&'a str>,
    host: Option<&'a str>,
    uri: Option<Cow<'a, str>>,
    version: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_body_len: u64,
    status: Option<u16>,
    response_body_len: Option<u64>,
    response_time_ms: Option<f64>,
    /// What the sensor could not see whole (only when there is something to say):
    /// `head_too_large` (a head past the parser's limit, read line by line with long
    /// lines skipped), `too_many_headers` (fields past the count limit: only the
    /// known ones read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flags: Vec<&'static str>,
}

/// The exchange's flags (see [`Record`]).
fn flags(e: &Exchange) -> Vec<&'static str> {
    let mut f = Vec::new();
    let resp = e.response_headers.as_ref();
    if e.request_headers.oversized || resp.is_some_and(|h| h.oversized) {
        f.push("head_too_large");
    }
    if e.request_headers.overflow || resp.is_some_and(|h| h.overflow) {
        f.push("too_many_headers");
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
    finish_json(&head_json(e), e, labels)
}

/// Every field but the two the detection engine assigns, as an unterminated JSON
/// object: the part of a record that workers can serialise in parallel.
pub fn head_json(e: &Exchange) -> String {
    let rec = Record {
        timestamp: iso_utc_z(e.ts),
        flow_id: e.flow.id,
        client_ip: identity::normalise(e.client_ip),
        client_port: e.client_port,
        server_ip: identity::normalise(e.server_ip),
        server_port: e.server_port,
        trans_depth: e.trans_depth,
        method: e.method.as_deref(),
        host: e.request_headers.host.as_deref(),
        uri: e.uri.as_deref().map(redact_uri),
        version: e.version.as_deref(),
        user_agent: e.request_headers.user_agent.as_deref(),
        request_body_len: e.request_body_len,
        status: e.status,
        response_body_len: e.response_body_len,
        response_time_ms: e
            .response_time_ns()
            .map(|ns| (ns as f64 / 1000.0).round() / 1000.0),
        flags: flags(e),
    };
    let mut s = serde_json::to_string(&rec).unwrap_or_default();
    s.pop(); // the closing brace
    s
}

/// Completes a [`head_json`] with `endpoint` and `client`.
pub fn finish_json(head: &str, e: &Exchange, labels: Option<(&str, ClientId)>) -> String {
    let endpoint = labels.map(|(ep, _)| ep.to_string()).or_else(|| endpoint(e));
    let client = labels
        .map(|(_, c)| c.key())
        .unwrap_or_else(|| identity::client_key(e.client_ip));
    let mut s = String::with_capacity(head.len() + 96);
    s.push_str(head);
    s.push_str(",\"endpoint\":");
    s.push_str(&serde_json::to_string(&endpoint).unwrap_or_default());
    s.push_str(",\"client\":");
    s.push_str(&serde_json::to_string(&client).unwrap_or_default());
    s.push('}');
    s
}

/// A JSON-lines file of exchanges.
pub struct ExchangeLog {
    out: io::BufWriter<Box<dyn Write + Send>>,
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
            out: io::BufWriter::with_capacity(256 * 1024, w),
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
        let line = match (self.format, head) {
            (ExchangeFormat::Eve, _) => crate::export::eve::http_record(e, self.input.as_ref()),
            (ExchangeFormat::Zeek, _) => crate::export::zeek::record(e),
            (ExchangeFormat::Apiwatch, Some(h)) => finish_json(h, e, labels),
            (ExchangeFormat::Apiwatch, None) => to_json_with(e, labels),
        };
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
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
            request_headers: Default::default(),
            request_body_len: 0,
            request_body_prefix: Vec::new(),
            response_body_prefix: Vec::new(),
            status: None,
            response_headers: None,
            response_body_len: None,
            response_ts: None,
            incomplete: true,
            flow: Default::default(),
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
