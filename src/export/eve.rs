//! What Suricata's EVE records and Zeek's logs share with ours: Community ID v1,
//! the Zeek connection uid, the input naming, and the EVE `http` object. Records
//! follow Suricata 8's `etc/schema.json` (a copy is in `tests/fixtures`): fields that
//! do not apply are omitted, never null.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Serialize;

use crate::http::Exchange;
use crate::identity;

/// Where the packets came from, as EVE names it on every record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `pcap_filename`: the file replayed (when one file is).
    File(String),
    /// `in_iface`: the interface captured.
    Interface(String),
}

/// The input fields of an EVE record.
#[derive(Serialize, Default)]
pub struct InputFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_iface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap_filename: Option<&'a str>,
}

impl Input {
    pub fn fields(input: Option<&Input>) -> InputFields<'_> {
        match input {
            Some(Input::File(f)) => InputFields {
                pcap_filename: Some(f),
                ..Default::default()
            },
            Some(Input::Interface(i)) => InputFields {
                in_iface: Some(i),
                ..Default::default()
            },
            None => InputFields::default(),
        }
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Community ID v1 of a TCP connection (seed 0): the flow hash Zeek, Suricata,
/// Arkime and Wireshark all compute, so a record joins theirs.
pub fn community_id(a: (IpAddr, u16), b: (IpAddr, u16)) -> String {
    let (a, b) = (
        (identity::normalise(a.0), a.1),
        (identity::normalise(b.0), b.1),
    );
    let bytes = |ip: IpAddr| match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    // The smaller endpoint (address, then port) first.
    let ((ip1, p1), (ip2, p2)) = if (bytes(a.0), a.1) <= (bytes(b.0), b.1) {
        (a, b)
    } else {
        (b, a)
    };
    let mut h = sha1_smol::Sha1::new();
    h.update(&0u16.to_be_bytes());
    h.update(&bytes(ip1));
    h.update(&bytes(ip2));
    h.update(&[6, 0]); // TCP, padding
    h.update(&p1.to_be_bytes());
    h.update(&p2.to_be_bytes());
    format!("1:{}", base64(&h.digest().bytes()))
}

const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The Zeek-style connection uid of a flow id: `C` and the id in base 62 (Zeek's
/// own uids have the same shape). A connection's uid follows from its `flow_id`, so
/// Zeek-form exchanges join apiwatch alerts: `zeek_uid(alert.flow_id) == uid`.
pub fn zeek_uid(flow_id: u64) -> String {
    let mut digits = Vec::with_capacity(11);
    let mut n = flow_id;
    loop {
        digits.push(B62[(n % 62) as usize]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    digits.push(b'C');
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// `Host` without its port (EVE's `hostname`; the port goes to `http_port`).
pub fn hostname(host: &str) -> &str {
    let h = host.trim();
    if let Some(rest) = h.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => h,
    }
}

/// EVE's `http` object of an exchange (or of the exchange an alert points at).
#[derive(Serialize, Default)]
pub struct Http<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<&'a str>,
    pub http_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// `"2"` on HTTP/2 exchanges, as Suricata's HTTP/2 logger writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    /// A gRPC call's `grpc-status` and `grpc-message`, as the trailers carried them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<Vec<HeaderField<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2: Option<Http2>,
}

/// One entry of EVE's `request_headers` / `response_headers`.
#[derive(Serialize)]
pub struct HeaderField<'a> {
    pub name: &'static str,
    pub value: Cow<'a, str>,
}

/// EVE's `http.http2` object (the stream; Suricata's settings and error codes are
/// not kept).
#[derive(Serialize)]
pub struct Http2 {
    pub stream_id: u32,
}

impl<'a> Http<'a> {
    pub fn of(e: &'a Exchange) -> Self {
        Http {
            hostname: e.request_headers.host.as_deref().map(hostname),
            http_port: e.server_port,
            url: e.uri.as_deref().map(crate::redact::redact_uri),
            http_user_agent: e.request_headers.user_agent.as_deref(),
            http_content_type: e
                .response_headers
                .as_ref()
                .and_then(|h| h.content_type.as_deref()),
            http_method: e.method.as_deref(),
            protocol: e.version.as_deref().map(|v| format!("HTTP/{v}")),
            status: e.status,
            length: e.response_body_len,
            version: e.h2.as_ref().and(e.version.as_deref()),
            response_headers: e.h2.as_ref().and_then(|h| grpc_fields(h.grpc.as_ref()?)),
            http2: e.h2.as_ref().map(|h| Http2 {
                stream_id: h.stream_id,
            }),
        }
    }
}

/// `grpc-status` and `grpc-message` as response header fields.
fn grpc_fields(g: &crate::http::h2::grpc::Grpc) -> Option<Vec<HeaderField<'_>>> {
    let mut v = Vec::new();
    if let Some(s) = g.status {
        v.push(HeaderField {
            name: "grpc-status",
            value: Cow::Owned(s.to_string()),
        });
    }
    if let Some(m) = g.message.as_deref() {
        v.push(HeaderField {
            name: "grpc-message",
            value: Cow::Borrowed(m),
        });
    }
    (!v.is_empty()).then_some(v)
}

/// EVE's `flow` object as alerts carry it.
#[derive(Serialize)]
pub struct Flow {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub start: String,
    pub src_ip: String,
    pub dest_ip: String,
    pub src_port: u16,
    pub dest_port: u16,
}

/// What every EVE event of a connection starts with (`http` and `tls` records).
#[derive(Serialize)]
pub(crate) struct Head<'a> {
    timestamp: String,
    flow_id: u64,
    #[serde(flatten)]
    input: InputFields<'a>,
    event_type: &'static str,
    src_ip: String,
    src_port: u16,
    dest_ip: String,
    dest_port: u16,
    proto: &'static str,
    community_id: String,
}

impl<'a> Head<'a> {
    /// The head of an `event_type` event about `e`'s connection, at `e.ts`.
    pub(crate) fn of(e: &Exchange, input: Option<&'a Input>, event_type: &'static str) -> Self {
        Head {
            timestamp: crate::time::iso_utc_eve(e.ts),
            flow_id: e.flow.id,
            input: Input::fields(input),
            event_type,
            src_ip: identity::normalise(e.client_ip).to_string(),
            src_port: e.client_port,
            dest_ip: identity::normalise(e.server_ip).to_string(),
            dest_port: e.server_port,
            proto: "TCP",
            community_id: community_id((e.client_ip, e.client_port), (e.server_ip, e.server_port)),
        }
    }
}

/// Suricata's EVE `http` record of one exchange.
#[derive(Serialize)]
struct HttpRecord<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    tx_id: u32,
    http: Http<'a>,
}

/// One exchange as a Suricata EVE `http` line (without the newline).
pub fn http_record(e: &Exchange, input: Option<&Input>) -> String {
    let rec = HttpRecord {
        head: Head::of(e, input, "http"),
        tx_id: e.trans_depth.saturating_sub(1),
        http: Http::of(e),
    };
    serde_json::to_string(&rec).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_id_matches_the_specifications_examples() {
        // From the Community ID specification's baseline (TCP, seed 0).
        let a = ("128.232.110.120".parse().unwrap(), 34855);
        let b = ("66.35.250.204".parse().unwrap(), 80);
        assert_eq!(community_id(a, b), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        // Direction does not matter.
        assert_eq!(community_id(b, a), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    }

    #[test]
    fn hostnames_lose_their_port_only() {
        assert_eq!(hostname("api.example.com:8080"), "api.example.com");
        assert_eq!(hostname("api.example.com"), "api.example.com");
        assert_eq!(hostname("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(hostname("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn uids_are_zeek_shaped_and_distinct() {
        assert_eq!(zeek_uid(0), "C0");
        let u = zeek_uid((1 << 53) - 1);
        assert!(u.starts_with('C') && u.len() <= 11, "{u}");
        assert_ne!(zeek_uid(12345), zeek_uid(12346));
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
