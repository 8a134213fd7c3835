//! A TLS connection's one record in the three `--exchanges` forms
//! (docs/exchange-log.md, "TLS records"): the `apiwatch` form (`"type":"tls"`,
//! the connection fields as exchanges have them), Suricata's EVE `tls` event (fields
//! of Suricata 8's `tls` object, valid against its schema) and Zeek's ssl.log (its
//! columns and types, plus the `ja4` column of FoxIO's Zeek package and the `ja3`,
//! `ja3s` columns of Salesforce's).

use serde::Serialize;

use crate::export::eve::{Input, community_id};
use crate::http::Exchange;
use crate::identity;
use crate::tls::decrypt::Outcome::Decrypted;
use crate::tls::{self, Session};

fn hex16(v: &[u16]) -> Vec<String> {
    v.iter().map(|x| format!("{x:04x}")).collect()
}

/// `1.3`, `1.2`... as the apiwatch form writes versions (like HTTP's `1.1`).
fn short_version(v: u16) -> String {
    match v {
        0x0300 => "ssl3".into(),
        0x0301..=0x0304 => format!("1.{}", v - 0x0301),
        _ => format!("0x{v:04x}"),
    }
}

/// An alert description's name (RFC 8446 §6, RFC 5246 §7.2), as Zeek's
/// `last_alert` writes it.
pub fn alert_name(d: u8) -> String {
    let name = match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return format!("unknown-{d}"),
    };
    name.into()
}

/// What the client offered for resumption (`session_id`, `ticket`, `psk`).
fn resumption_offered(s: &Session) -> Vec<&'static str> {
    let mut v = Vec::new();
    if let Some(c) = &s.client {
        let tls13 = c.versions.contains(&0x0304);
        // A TLS 1.3 client sends a random session id for middleboxes: not an offer.
        if !c.session_id.is_empty() && !tls13 {
            v.push("session_id");
        }
        if c.session_ticket {
            v.push("ticket");
        }
        if c.psk {
            v.push("psk");
        }
    }
    v
}

#[derive(Serialize)]
struct CertOut<'a> {
    subject: &'a str,
    issuer: &'a str,
    serial: &'a str,
    sans: &'a [String],
    not_before: String,
    not_after: String,
    key_type: &'a str,
    key_bits: u32,
    signature_algorithm: &'a str,
    sha256: &'a str,
}

#[derive(Serialize)]
struct AlertOut {
    sender: &'static str,
    level: u8,
    description: String,
}

#[derive(Serialize)]
struct Record<'a> {
    timestamp: String,
    flow_id: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    client_ip: String,
    client_port: u16,
    server_ip: String,
    server_port: u16,
    community_id: String,
    sni: Option<&'a str>,
    version: Option<String>,
    versions_offered: Vec<String>,
    cipher: Option<String>,
    ciphers_offered: Vec<String>,
    alpn: Option<&'a str>,
    alpn_offered: &'a [String],
    extensions: Vec<String>,
    server_extensions: Vec<String>,
    signature_algorithms: Vec<String>,
    groups: Vec<String>,
    group: Option<String>,
    ja4: Option<&'a str>,
    ja3: Option<&'a str>,
    ja3_string: Option<&'a str>,
    ja3s: Option<&'a str>,
    ja3s_string: Option<&'a str>,
    resumption_offered: Vec<&'static str>,
    resumed: bool,
    established: bool,
    outcome: &'static str,
    alert: Option<AlertOut>,
    history: &'a str,
    certificates: Vec<CertOut<'a>>,
    /// With `--tls-keylog`: whether the records were decrypted, and why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    decrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decryption: Option<&'static str>,
    client: String,
}

/// A certificate date, `2026-11-23T10:06:12Z` (any year a certificate can name).
fn iso(secs: i64) -> String {
    format!("{}Z", crate::time::iso_seconds(secs))
}

/// The `apiwatch` form.
pub fn apiwatch(e: &Exchange, s: &Session) -> String {
    let c = s.client.as_ref();
    let sv = s.server.as_ref();
    let mut client = String::new();
    identity::write_client_key(&mut client, e.client_ip);
    let rec = Record {
        timestamp: {
            let mut t = String::new();
            crate::export::json::timestamp(&mut t, e.ts, "Z");
            t
        },
        flow_id: e.flow.id,
        kind: "tls",
        client_ip: identity::normalise(e.client_ip).to_string(),
        client_port: e.client_port,
        server_ip: identity::normalise(e.server_ip).to_string(),
        server_port: e.server_port,
        community_id: community_id((e.client_ip, e.client_port), (e.server_ip, e.server_port)),
        sni: c.and_then(|c| c.sni.as_deref()),
        version: sv.map(|s| short_version(s.version)),
        versions_offered: c
            .map(|c| {
                if c.versions.is_empty() {
                    vec![short_version(c.legacy_version)]
                } else {
                    c.versions.iter().map(|v| short_version(*v)).collect()
                }
            })
            .unwrap_or_default(),
        cipher: sv.map(|s| tls::cipher_name(s.cipher)),
        ciphers_offered: c.map(|c| hex16(&c.ciphers)).unwrap_or_default(),
        alpn: sv.and_then(|s| s.alpn.as_deref()),
        alpn_offered: c.map(|c| c.alpn.as_slice()).unwrap_or_default(),
        extensions: c.map(|c| hex16(&c.extensions)).unwrap_or_default(),
        server_extensions: sv.map(|s| hex16(&s.extensions)).unwrap_or_default(),
        signature_algorithms: c
            .map(|c| hex16(&c.signature_algorithms))
            .unwrap_or_default(),
        groups: c.map(|c| hex16(&c.groups)).unwrap_or_default(),
        group: sv.and_then(|s| s.group).map(|g| {
            tls::group_name(g)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{g:04x}"))
        }),
        ja4: c.map(|c| c.ja4.as_str()),
        ja3: c.map(|c| c.ja3.hash()),
        ja3_string: c.map(|c| c.ja3.string.as_str()),
        ja3s: sv.map(|s| s.ja3s.hash()),
        ja3s_string: sv.map(|s| s.ja3s.string.as_str()),
        resumption_offered: resumption_offered(s),
        resumed: s.resumed,
        established: s.established(),
        outcome: s.outcome.label(),
        alert: s.alert.map(|a| AlertOut {
            sender: if a.from_client { "client" } else { "server" },
            level: a.level,
            description: alert_name(a.description),
        }),
        history: &s.history,
        decrypted: s.decryption.map(|o| o == Decrypted),
        decryption: s.decryption.filter(|o| *o != Decrypted).map(|o| o.label()),
        certificates: s
            .certificates
            .iter()
            .map(|x| CertOut {
                subject: &x.subject,
                issuer: &x.issuer,
                serial: &x.serial,
                sans: &x.sans,
                not_before: iso(x.not_before),
                not_after: iso(x.not_after),
                key_type: &x.key_type,
                key_bits: x.key_bits,
                signature_algorithm: &x.signature_algorithm,
                sha256: &x.sha256,
            })
            .collect(),
        client,
    };
    serde_json::to_string(&rec).unwrap_or_default()
}

#[derive(Serialize, Default)]
struct ClientHandshake {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ciphers: Vec<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exts: Vec<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sig_algs: Vec<u16>,
}

#[derive(Serialize)]
struct ServerHandshake {
    version: &'static str,
    cipher: u16,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exts: Vec<u16>,
}

/// Suricata's `ja3` / `ja3s` object.
#[derive(Serialize)]
struct EveJa3<'a> {
    hash: &'a str,
    string: &'a str,
}

impl<'a> From<&'a tls::Ja3> for EveJa3<'a> {
    fn from(j: &'a tls::Ja3) -> Self {
        EveJa3 {
            hash: j.hash(),
            string: &j.string,
        }
    }
}

#[derive(Serialize, Default)]
struct EveTls<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuerdn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    notbefore: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notafter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subjectaltname: Option<&'a [String]>,
    session_resumed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3: Option<EveJa3<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3s: Option<EveJa3<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_alpns: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_alpns: Option<[&'a str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_handshake: Option<ClientHandshake>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_handshake: Option<ServerHandshake>,
}

#[derive(Serialize)]
struct EveRecord<'a> {
    #[serde(flatten)]
    head: crate::export::eve::Head<'a>,
    tls: EveTls<'a>,
}

/// Suricata's EVE `tls` event.
pub fn eve(e: &Exchange, s: &Session, input: Option<&Input>) -> String {
    let c = s.client.as_ref();
    let sv = s.server.as_ref();
    let leaf = s.certificates.first();
    let tls = EveTls {
        subject: leaf.map(|x| x.subject.as_str()),
        issuerdn: leaf.map(|x| x.issuer.as_str()),
        serial: leaf.map(|x| x.serial.as_str()),
        fingerprint: leaf.map(|x| x.sha1.as_str()),
        sni: c.and_then(|c| c.sni.as_deref()),
        version: tls::version_name(s.version().unwrap_or(0)),
        notbefore: leaf.map(|x| crate::time::iso_seconds(x.not_before)),
        notafter: leaf.map(|x| crate::time::iso_seconds(x.not_after)),
        subjectaltname: leaf.map(|x| x.sans.as_slice()).filter(|v| !v.is_empty()),
        session_resumed: s.resumed,
        ja3: c.map(|c| EveJa3::from(&c.ja3)),
        ja3s: sv.map(|s| EveJa3::from(&s.ja3s)),
        ja4: c.map(|c| c.ja4.as_str()),
        client_alpns: c.map(|c| c.alpn.as_slice()).filter(|v| !v.is_empty()),
        server_alpns: sv.and_then(|s| s.alpn.as_deref()).map(|a| [a]),
        client_handshake: c.map(|c| ClientHandshake {
            version: Some(tls::version_name(c.legacy_version)),
            ciphers: c.ciphers.clone(),
            exts: c.extensions.clone(),
            sig_algs: c.signature_algorithms.clone(),
        }),
        server_handshake: sv.map(|s| ServerHandshake {
            version: tls::version_name(s.version),
            cipher: s.cipher,
            exts: s.extensions.clone(),
        }),
    };
    let rec = EveRecord {
        head: crate::export::eve::Head::of(e, input, "tls"),
        tls,
    };
    serde_json::to_string(&rec).unwrap_or_default()
}

#[derive(Serialize)]
struct ZeekRecord<'a> {
    #[serde(flatten)]
    head: crate::export::zeek::Head,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    curve: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    resumed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_alert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_protocol: Option<&'a str>,
    established: bool,
    ssl_history: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cert_chain_fps: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni_matches_cert: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3s: Option<&'a str>,
}

/// Whether `name` matches a certificate name (`*.example.com` covers one label).
fn name_matches(pattern: &str, name: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return name
            .split_once('.')
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(suffix));
    }
    pattern.eq_ignore_ascii_case(name)
}

/// Zeek's ssl.log.
pub fn zeek(e: &Exchange, s: &Session) -> String {
    let c = s.client.as_ref();
    let sv = s.server.as_ref();
    let sni = c.and_then(|c| c.sni.as_deref());
    let rec = ZeekRecord {
        head: crate::export::zeek::Head::of(e),
        version: sv.map(|s| tls::version_zeek(s.version)),
        cipher: sv.map(|s| tls::cipher_name(s.cipher)),
        curve: sv.and_then(|s| s.group).and_then(tls::group_name),
        server_name: sni,
        resumed: s.resumed,
        last_alert: s.alert.map(|a| alert_name(a.description)),
        next_protocol: sv.and_then(|s| s.alpn.as_deref()),
        established: s.established(),
        ssl_history: &s.history,
        cert_chain_fps: s.certificates.iter().map(|x| x.sha256.as_str()).collect(),
        sni_matches_cert: match (sni, s.certificates.first()) {
            (Some(n), Some(leaf)) => Some(leaf.sans.iter().any(|p| name_matches(p, n))),
            _ => None,
        },
        ja4: c.map(|c| c.ja4.as_str()),
        ja3: c.map(|c| c.ja3.hash()),
        ja3s: sv.map(|s| s.ja3s.hash()),
    };
    serde_json::to_string(&rec).unwrap_or_default()
}
