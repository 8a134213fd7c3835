//! Exchanges as Zeek's http.log writes them in JSON (`LogAscii::use_json`, Zeek's
//! `base/protocols/http/main.zeek`): Zeek's columns in Zeek's order and types, an
//! unset optional column omitted as Zeek omits it. Filebeat's Zeek module and other
//! http.log readers take these lines as they are.
//!
//! Each column is filled the way Zeek fills it: `host` is the Host header as sent
//! (port included: Zeek stopped stripping it, zeek/zeek#1844); `uri` is the target
//! percent-decoded by Zeek's `unescape_URI` (after redaction); `version`,
//! `status_code` and `status_msg` are the final response's; `info_code`/`info_msg`
//! the last 1xx (a final 101 included); an HTTP/0.9 answer (no status line) is
//! `status_code` 0, `status_msg` `<empty>`, `version` `0.9`, as Zeek logs it.
//!
//! Where apiwatch departs from Zeek's defaults, on purpose (docs/exchange-log.md):
//! - `uid` is derived from the connection's `flow_id`, so alerts join these records
//!   (Zeek's is random per run); `ts` is the request's first packet.
//! - `username` is never written (Zeek writes a Basic-auth username in clear; no
//!   username leaves the sensor except as a keyed hash, and a hash would not join
//!   Zeek's column anyway). `password` is not written, as by Zeek by default.
//! - The file-analysis columns (`orig_fuids`, `orig_filenames`, `orig_mime_types`
//!   and the `resp_` ones) are left out: Zeek's file ids are random, and its MIME
//!   types come from content sniffing (libmagic signatures), which apiwatch does not do.
//! - `uri`, `referrer` and `origin` go through [`crate::redact::redact_uri`] first: a
//!   secret in a target (or userinfo in an origin) is replaced, as in every other form.

use std::borrow::Cow;

use serde::Serialize;

use crate::export::eve::zeek_uid;
use crate::http::Exchange;
use crate::identity;

/// What every Zeek log line of a connection starts with (http.log, ssl.log).
#[derive(Serialize)]
pub(crate) struct Head {
    ts: f64,
    uid: String,
    #[serde(rename = "id.orig_h")]
    orig_h: String,
    #[serde(rename = "id.orig_p")]
    orig_p: u16,
    #[serde(rename = "id.resp_h")]
    resp_h: String,
    #[serde(rename = "id.resp_p")]
    resp_p: u16,
}

impl Head {
    /// `e`'s connection, at `e.ts`.
    pub(crate) fn of(e: &Exchange) -> Self {
        Head {
            ts: (e.ts / 1000) as f64 / 1e6,
            uid: zeek_uid(e.flow.id),
            orig_h: identity::normalise(e.client_ip).to_string(),
            orig_p: e.client_port,
            resp_h: identity::normalise(e.server_ip).to_string(),
            resp_p: e.server_port,
        }
    }
}

#[derive(Serialize)]
struct Record<'a> {
    #[serde(flatten)]
    head: Head,
    trans_depth: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<Cow<'a, str>>,
    request_body_len: u64,
    response_body_len: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_msg: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    info_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    info_msg: Option<&'a str>,
    tags: [&'static str; 0],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    proxied: Vec<String>,
}

/// What Zeek logs for the answer to an HTTP/0.9 request (raw bytes, no status line).
const HTTP09_STATUS: (u16, &str) = (0, "<empty>");

/// One exchange as a Zeek http.log JSON line (without the newline).
pub fn record(e: &Exchange) -> String {
    let h = &e.request_headers;
    // An HTTP/0.9 request answered by raw bytes: Zeek logs code 0, "<empty>", 0.9.
    let http09 = e.status.is_none()
        && e.response_ts.is_some()
        && e.version.as_deref() == Some("0.9")
        && e.response_version.is_none();
    let (status_code, status_msg, version) = if http09 {
        (
            Some(HTTP09_STATUS.0),
            Some(HTTP09_STATUS.1),
            e.version.as_deref(),
        )
    } else {
        (
            e.status,
            e.status_msg.as_deref(),
            e.response_version.as_deref(),
        )
    };
    let (info_code, info_msg) = match (e.status, e.interim.as_deref()) {
        (Some(s), _) if (100..200).contains(&s) => (Some(s), e.status_msg.as_deref()),
        (_, Some((c, m))) => (Some(*c), Some(m.as_str())),
        _ => (None, None),
    };
    let extra = h.extra.as_deref();
    let rec = Record {
        head: Head::of(e),
        trans_depth: e.trans_depth,
        method: e.method.as_deref(),
        host: h.host.as_deref(),
        // A request line without a target: Zeek logs an empty uri.
        uri: match (e.uri.as_deref(), &e.method) {
            (Some(u), _) => Some(unescape_uri(&crate::redact::redact_uri(u))),
            (None, Some(_)) => Some(String::new()),
            (None, None) => None,
        },
        referrer: extra
            .and_then(|x| x.referrer.as_deref())
            .map(crate::redact::redact_uri),
        version,
        user_agent: h.user_agent.as_deref(),
        origin: extra
            .and_then(|x| x.origin.as_deref())
            .map(crate::redact::redact_uri),
        request_body_len: e.request_body_len,
        response_body_len: e.response_body_len.unwrap_or(0),
        status_code,
        status_msg,
        info_code,
        info_msg,
        tags: [],
        proxied: proxied(h),
    };
    serde_json::to_string(&rec).unwrap_or_default()
}

/// Zeek's `proxied`: `NAME -> value` for each of its `HTTP::proxy_headers` the
/// request carried (a set: Zeek's order is its hash order, ours arrival order).
fn proxied(h: &crate::http::Headers) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(x) = &h.forwarded {
        v.push(format!("FORWARDED -> {x}"));
    }
    if let Some(x) = &h.x_forwarded_for {
        v.push(format!("X-FORWARDED-FOR -> {x}"));
    }
    for (name, value) in h.extra.iter().flat_map(|x| &x.proxied) {
        v.push(format!("{} -> {value}", name.zeek_name()));
    }
    v
}

/// Zeek's `unescape_URI` (analyzer/protocol/http/HTTP.cc): `%XX` decoded, `%uXXXX`
/// decoded to its one or two low bytes, a doubled `%` dropped, any other `%` kept as
/// it is. Bytes that are not UTF-8 are written `\xNN`, as Zeek's JSON writer does.
pub fn unescape_uri(uri: &str) -> String {
    let s = uri.as_bytes();
    if !s.contains(&b'%') {
        return uri.to_string();
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'%' {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let rest = &s[i + 1..];
        match rest {
            [] => {
                out.push(b'%');
                break;
            }
            [c] => {
                out.extend_from_slice(&[b'%', *c]);
                break;
            }
            // Zeek drops the first of two and reads on from the second.
            [b'%', ..] => i += 1,
            [a, b, ..] if hex(*a).is_some() && hex(*b).is_some() => {
                out.push(hex(*a).unwrap_or(0) << 4 | hex(*b).unwrap_or(0));
                i += 3;
            }
            [b'u', a, b, c, d, ..] if [a, b, c, d].iter().all(|x| hex(**x).is_some()) => {
                let byte = |x: &u8, y: &u8| hex(*x).unwrap_or(0) << 4 | hex(*y).unwrap_or(0);
                if !(*a == b'0' && *b == b'0') {
                    out.push(byte(a, b));
                }
                out.push(byte(c, d));
                i += 6;
            }
            [c, ..] => {
                out.extend_from_slice(&[b'%', *c]);
                i += 2;
            }
        }
    }
    let mut text = String::with_capacity(out.len());
    for chunk in out.utf8_chunks() {
        text.push_str(chunk.valid());
        for b in chunk.invalid() {
            text.push_str(&format!("\\x{b:02x}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Exchange;

    fn exchange() -> Exchange {
        let mut e = crate::http::testing::exchange(1_000_000_000, 7, "GET", "/a", Some(200));
        e.status_msg = Some("OK".into());
        e.response_version = Some("1.1".into());
        e
    }

    fn json(e: &Exchange) -> serde_json::Value {
        serde_json::from_str(&record(e)).unwrap()
    }

    /// Zeek's column order (main.zeek's `HTTP::Info`), unset columns omitted.
    #[test]
    fn columns_in_zeeks_order_and_unset_ones_omitted() {
        let mut e = exchange();
        e.request_headers.host = Some("api.example.com".into());
        e.request_headers.user_agent = Some("curl/8".into());
        let line = record(&e);
        let keys: Vec<String> =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
                .unwrap()
                .keys()
                .cloned()
                .collect();
        // serde_json's map is sorted unless preserve_order: check the line itself.
        let order = [
            "ts",
            "uid",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "trans_depth",
            "method",
            "host",
            "uri",
            "version",
            "user_agent",
            "request_body_len",
            "response_body_len",
            "status_code",
            "status_msg",
            "tags",
        ];
        let mut at = 0;
        for k in order {
            let p = line[at..]
                .find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing or out of order in {line}"));
            at += p;
        }
        assert_eq!(keys.len(), order.len(), "{line}");
        assert_eq!(json(&e)["status_msg"], "OK");
        assert_eq!(json(&e)["tags"], serde_json::json!([]));
    }

    /// Zeek records the Host header as sent, port and all (zeek/zeek#1844; its own
    /// test baselines log `localhost:8080`, `[::1]:8080` alike).
    #[test]
    fn host_is_the_header_as_sent() {
        for host in [
            "10.77.0.2:8080",
            "[::1]:8080",
            "api.example.com",
            "[2001:db8::1]",
        ] {
            let mut e = exchange();
            e.request_headers.host = Some(host.into());
            assert_eq!(json(&e)["host"], host);
        }
    }

    /// The reason phrase is the server's text: escaped like any other string.
    #[test]
    fn status_msg_is_escaped() {
        let mut e = exchange();
        e.status_msg = Some("A \"quoted\"\\ phrase\u{1}".into());
        let line = record(&e);
        assert!(
            line.contains(r#""status_msg":"A \"quoted\"\\ phrase\u0001""#),
            "{line}"
        );
        assert_eq!(json(&e)["status_msg"], "A \"quoted\"\\ phrase\u{1}");
    }

    #[test]
    fn interim_and_switching_responses_fill_info() {
        let mut e = exchange();
        e.interim = Some(Box::new((100, "Continue".into())));
        let v = json(&e);
        assert_eq!(
            (v["info_code"].clone(), v["info_msg"].clone()),
            (100.into(), "Continue".into())
        );
        assert_eq!(v["status_code"], 200);
        let mut up = exchange();
        up.status = Some(101);
        up.status_msg = Some("Switching Protocols".into());
        let v = json(&up);
        assert_eq!(v["info_code"], 101);
        assert_eq!(v["info_msg"], "Switching Protocols");
        let plain = json(&exchange());
        assert!(plain.get("info_code").is_none() && plain.get("info_msg").is_none());
    }

    #[test]
    fn version_is_the_responses_and_http09_is_zeeks_convention() {
        let mut e = exchange();
        e.version = Some("1.1".into());
        e.response_version = Some("1.0".into());
        assert_eq!(json(&e)["version"], "1.0");
        // No response: no version, no status (Zeek sets them from the reply).
        let mut unanswered = exchange();
        unanswered.status = None;
        unanswered.status_msg = None;
        unanswered.response_version = None;
        unanswered.response_ts = None;
        let v = json(&unanswered);
        assert!(v.get("version").is_none() && v.get("status_code").is_none());
        let mut old = unanswered.clone();
        old.version = Some("0.9".into());
        old.response_ts = Some(2_000_000_000);
        let v = json(&old);
        assert_eq!(
            (v["status_code"].clone(), v["status_msg"].clone()),
            (0.into(), "<empty>".into())
        );
        assert_eq!(v["version"], "0.9");
    }

    #[test]
    fn uri_is_unescaped_as_zeek_does_after_redaction() {
        let cases = [
            ("/a%20b", "/a b"),
            ("/%41%42", "/AB"),
            ("/x%", "/x%"),
            ("/x%4", "/x%4"),
            ("/x%%41", "/xA"),
            ("/x%zz", "/x%zz"),
            ("/x%u0041", "/xA"),
            ("/x%u4142", "/xAB"),
            ("/x%ff", "/x\\xff"),
            ("/plain", "/plain"),
        ];
        for (raw, want) in cases {
            assert_eq!(unescape_uri(raw), want, "{raw}");
        }
        let mut e = exchange();
        e.uri = Some("/login?user=a%20b&password=hunter2".into());
        let v = json(&e);
        assert_eq!(v["uri"], "/login?user=a b&password=REDACTED");
        // A request line without a target: Zeek logs the empty string.
        e.uri = None;
        assert_eq!(json(&e)["uri"], "");
    }

    #[test]
    fn referrer_origin_and_proxied() {
        let mut e = exchange();
        let h = &mut e.request_headers;
        h.x_forwarded_for = Some("192.0.2.1".into());
        let x = h.extra.get_or_insert_default();
        x.referrer = Some("http://a.example/p?access_token=abcdef".into());
        x.origin = Some("http://a.example".into());
        x.proxied.push((
            crate::http::parser::ProxyHeader::ProxyConnection,
            "keep-alive".into(),
        ));
        let v = json(&e);
        assert_eq!(v["referrer"], "http://a.example/p?access_token=REDACTED");
        assert_eq!(v["origin"], "http://a.example");
        assert_eq!(
            v["proxied"],
            serde_json::json!([
                "X-FORWARDED-FOR -> 192.0.2.1",
                "PROXY-CONNECTION -> keep-alive"
            ])
        );
    }

    /// No credential reaches the record: Basic credentials, cookies and API keys are
    /// request state, never a column; `username` and `password` are never written.
    #[test]
    fn no_username_or_password() {
        let mut e = exchange();
        // "alice:hunter2"
        e.request_headers.authorization = Some("Basic YWxpY2U6aHVudGVyMg==".into());
        e.request_headers.cookie = Some("session=s3cr3t".into());
        let line = record(&e);
        for secret in [
            "alice", "hunter2", "YWxpY2U", "s3cr3t", "username", "password",
        ] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
    }
}
