//! TLS connections seen without keys: the handshake summary a connection's one TLS
//! record is made of (SNI, versions, ALPN, suites, extensions, resumption, a clear
//! alert, the server certificates up to TLS 1.2) and its JA4, JA3 and JA3S
//! fingerprints.
//!
//! The contract: a connection whose first client bytes are a TLS handshake record
//! (content type 22, version 0x03xx) is read as TLS instead of HTTP
//! ([`looks_like_handshake`], checked once, on the HTTP reader's refusal of those
//! bytes). Records are reassembled across TCP segments and handshake messages
//! across records ([`handshake::Reader`], RFC 8446 §5.1, RFC 5246 §6.2.1), each
//! message parsed by rusticata's `tls-parser`. Everything is bounded: at most
//! [`handshake::MAX_HANDSHAKE_BYTES`] of handshake per direction is read; past it the
//! summary says `cut` and the rest is skipped without being held. The summary is
//! finished when the handshake is established (both sides encrypting), or when the
//! connection ends; after that the connection is not reassembled any more.
//!
//! JA4 follows FoxIO's specification (`technical_details/JA4.md`, BSD 3-Clause), see
//! [`ja4`]. JA4S and the rest of JA4+ are under the FoxIO License 1.1 (no commercial
//! use, patent pending) and are not computed. JA3 and JA3S follow Salesforce's
//! definition (BSD 3-Clause) as Suricata computes them, see [`ja3`].

pub mod cert;
pub mod decrypt;
pub mod handshake;
pub mod ja3;
pub mod ja4;
pub mod keylog;

pub use cert::Certificate;
pub use handshake::Reader;
pub use ja3::Ja3;
pub use keylog::KeyLog;

use crate::time::Nanos;

/// Whether a connection's first client bytes start a TLS handshake record: content
/// type 22, then a record version 0x0300-0x0304 (SSL 3.0 to TLS 1.3's legacy
/// field). A segment shorter than that is judged on what it has.
pub fn looks_like_handshake(first: &[u8]) -> bool {
    match first {
        [22, 3, minor, ..] => *minor <= 4,
        [22, 3] | [22] => true,
        _ => false,
    }
}

/// Whether a segment begins with a whole ClientHello's record header and message
/// type: evidence of who the client is on a connection picked up without its SYN.
pub fn starts_client_hello(p: &[u8]) -> bool {
    matches!(p, [22, 3, minor, _, _, 1, ..] if *minor <= 4)
}

/// How a TLS connection's handshake ended, as far as the sensor could see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Both sides switched to encrypted records after the hellos.
    Established,
    /// An alert was sent in clear before the handshake was established.
    Alert,
    /// The handshake was larger than the sensor reads; the rest was skipped.
    Cut,
    /// Bytes that are not TLS records (or a message that does not parse).
    Malformed,
    /// The connection ended (or was forgotten) before the handshake was established.
    #[default]
    Incomplete,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Established,
        Outcome::Alert,
        Outcome::Cut,
        Outcome::Malformed,
        Outcome::Incomplete,
    ];

    /// The metric label and record value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Established => "established",
            Outcome::Alert => "alert",
            Outcome::Cut => "cut",
            Outcome::Malformed => "malformed",
            Outcome::Incomplete => "incomplete",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the client offered (its ClientHello; GREASE values left out everywhere).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ClientHello {
    /// The hello's own (legacy) version field.
    pub legacy_version: u16,
    /// Its random: the key a key log's secrets are found by.
    pub random: [u8; 32],
    /// The supported_versions extension's list, in order.
    pub versions: Vec<u16>,
    pub ciphers: Vec<u16>,
    /// Extension types in the order sent.
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    /// ALPN protocols offered, in order (non-UTF-8 bytes replaced).
    pub alpn: Vec<String>,
    /// The first ALPN value's raw bytes (JA4 reads its first and last byte).
    pub alpn_first: Vec<u8>,
    pub signature_algorithms: Vec<u16>,
    pub groups: Vec<u16>,
    /// The ec_point_formats extension's list, in order (JA3's last field).
    pub point_formats: Vec<u8>,
    /// Session id length (resumption of a TLS 1.2 session is offered when not 0;
    /// TLS 1.3 clients send a random one for middlebox compatibility).
    pub session_id: Vec<u8>,
    /// A non-empty session_ticket extension (RFC 5077 resumption offered).
    pub session_ticket: bool,
    /// A pre_shared_key extension (TLS 1.3 resumption offered).
    pub psk: bool,
    /// JA4 of this hello.
    pub ja4: String,
    /// JA3 of this hello.
    pub ja3: Ja3,
}

impl ClientHello {
    /// The highest version offered: the supported_versions extension's highest,
    /// else the hello's own field.
    pub fn max_version(&self) -> u16 {
        self.versions
            .iter()
            .copied()
            .max()
            .unwrap_or(self.legacy_version)
    }
}

/// What the server chose (its ServerHello).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ServerHello {
    /// The negotiated version: supported_versions (TLS 1.3) else the hello's field.
    pub version: u16,
    /// The hello's own (legacy) version field (0x0303 for TLS 1.3).
    pub legacy_version: u16,
    pub cipher: u16,
    /// Its random (TLS 1.2's key block is derived from both randoms).
    pub random: [u8; 32],
    pub extensions: Vec<u16>,
    pub alpn: Option<String>,
    pub session_id: Vec<u8>,
    /// The server accepted a pre-shared key (TLS 1.3 resumption).
    pub psk: bool,
    /// The key_share group it picked (TLS 1.3).
    pub group: Option<u16>,
    /// JA3S of this hello.
    pub ja3s: Ja3,
}

/// One TLS connection's handshake as seen, finished into its record.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// First byte of the ClientHello.
    pub start: Nanos,
    pub client: Option<ClientHello>,
    pub server: Option<ServerHello>,
    /// The server's certificate chain, leaf first (TLS ≤ 1.2; at most
    /// [`cert::MAX_CERTS`]).
    pub certificates: Vec<Certificate>,
    /// An alert sent in clear: who sent it, level and description (RFC 8446 §6).
    pub alert: Option<Alert>,
    /// The server sent NewSessionTicket (TLS ≤ 1.2, in clear).
    pub new_ticket: bool,
    /// Resumed: TLS ≤ 1.2 the server echoed the client's session id (or skipped its
    /// certificate after a ticket); TLS 1.3 the server accepted a PSK.
    pub resumed: bool,
    pub outcome: Outcome,
    /// Handshake messages, ChangeCipherSpec and alerts seen in clear, as Zeek's
    /// `ssl_history` letters (client's capitalised, server's lower case); at most
    /// [`handshake::MAX_HISTORY`] letters.
    pub history: String,
    /// With a key log (`--tls-keylog`): how decrypting the connection went; `None`
    /// without a key log, or when no encrypted record was seen.
    pub decryption: Option<decrypt::Outcome>,
    /// With a followed key file: the connection's secrets were not there at its
    /// handshake, so it waited for them; `true` when they came in time.
    pub key_wait: Option<bool>,
    /// Set on the second, internal record of a connection nobody could read: what it
    /// carried after the handshake, known when it ended. Such a record feeds
    /// detection only; it is never written.
    pub closed: Option<Closed>,
}

/// The encrypted part of a connection read without keys, from the end of its
/// handshake to its close: TCP payload bytes and segments with data per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Closed {
    /// The connection's ClientHello and its last packet.
    pub start: Nanos,
    pub end: Nanos,
    pub client_bytes: u64,
    pub server_bytes: u64,
    pub client_segments: u64,
    pub server_segments: u64,
}

/// A TLS alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    pub from_client: bool,
    pub level: u8,
    pub description: u8,
}

impl Session {
    /// The negotiated version, else the client's highest offer.
    pub fn version(&self) -> Option<u16> {
        self.server
            .as_ref()
            .map(|s| s.version)
            .or_else(|| self.client.as_ref().map(ClientHello::max_version))
    }

    pub fn established(&self) -> bool {
        self.outcome == Outcome::Established
    }

    /// What decryption needs from the hellos, once both were seen.
    pub fn hellos(&self) -> Option<decrypt::Hellos> {
        let (c, s) = (self.client.as_ref()?, self.server.as_ref()?);
        Some(decrypt::Hellos {
            client_random: c.random,
            server_random: s.random,
            version: s.version,
            cipher: s.cipher,
            encrypt_then_mac: s.extensions.contains(&22),
        })
    }
}

/// A version as Suricata writes it (`TLS 1.2`, `SSLv3`, `UNDETERMINED`).
pub fn version_name(v: u16) -> &'static str {
    match v {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        _ => "UNDETERMINED",
    }
}

/// A version as Zeek's ssl.log writes it (`TLSv12`, `SSLv3`).
pub fn version_zeek(v: u16) -> &'static str {
    match v {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv10",
        0x0302 => "TLSv11",
        0x0303 => "TLSv12",
        0x0304 => "TLSv13",
        _ => "unknown",
    }
}

/// The metric label of a negotiated version (bounded).
pub fn version_label(v: Option<u16>) -> &'static str {
    match v {
        Some(0x0300) => "ssl3",
        Some(0x0301) => "1.0",
        Some(0x0302) => "1.1",
        Some(0x0303) => "1.2",
        Some(0x0304) => "1.3",
        Some(_) => "other",
        None => "unknown",
    }
}

/// The labels of [`version_label`], in metric order.
pub const VERSION_LABELS: [&str; 7] = ["ssl3", "1.0", "1.1", "1.2", "1.3", "other", "unknown"];

/// The labels of [`suite_class`], in metric order.
pub const SUITE_CLASSES: [&str; 5] = [
    "aead_forward_secret",
    "cbc_forward_secret",
    "static_key_exchange",
    "weak",
    "unknown",
];

/// What the negotiated cipher suite is worth, from `tls-parser`'s table of IANA
/// suites: `weak` (no or broken encryption: NULL, RC4, DES, 3DES, RC2, IDEA, export
/// key sizes, MD5 MACs, anonymous key exchange), `static_key_exchange` (RSA, static
/// DH/ECDH, PSK, SRP, Kerberos: no forward secrecy), `cbc_forward_secret` (ephemeral
/// keys, CBC with HMAC), `aead_forward_secret` (ephemeral keys, GCM, CCM or
/// ChaCha20-Poly1305; every TLS 1.3 suite); `unknown` (not in the table, or no
/// ServerHello seen).
pub fn suite_class(id: Option<u16>) -> &'static str {
    use tls_parser::{TlsCipherAu as Au, TlsCipherEnc as Enc, TlsCipherEncMode as Mode};
    use tls_parser::{TlsCipherKx as Kx, TlsCipherMac as Mac};
    let Some(c) = id.and_then(tls_parser::TlsCipherSuite::from_id) else {
        return "unknown";
    };
    let broken_enc = matches!(
        c.enc,
        Enc::Null | Enc::Des | Enc::TripleDes | Enc::Rc2 | Enc::Rc4 | Enc::Idea
    );
    let anonymous = c.au == Au::Null && c.kx != Kx::Tls13;
    if broken_enc || c.enc_size < 128 || c.mac == Mac::HmacMd5 || anonymous {
        return "weak";
    }
    if !matches!(c.kx, Kx::Dhe | Kx::Ecdhe | Kx::Tls13 | Kx::Eccpwd) {
        return "static_key_exchange";
    }
    if matches!(c.enc_mode, Mode::Gcm | Mode::Ccm) || c.enc == Enc::Chacha20_Poly1305 {
        "aead_forward_secret"
    } else {
        "cbc_forward_secret"
    }
}

/// Whether a 16-bit value is a GREASE value (RFC 8701: 0x0a0a, 0x1a1a ... 0xfafa).
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// IANA names of the cipher suites (`tls-parser`'s table), else the hex value.
pub fn cipher_name(id: u16) -> String {
    match tls_parser::TlsCipherSuite::from_id(id) {
        Some(c) => c.name.to_string(),
        None => format!("0x{id:04x}"),
    }
}

/// A named group as Zeek writes `curve` (`x25519`, `secp256r1`).
pub fn group_name(g: u16) -> Option<&'static str> {
    Some(match g {
        23 => "secp256r1",
        24 => "secp384r1",
        25 => "secp521r1",
        29 => "x25519",
        30 => "x448",
        256 => "ffdhe2048",
        257 => "ffdhe3072",
        0x11ec => "X25519MLKEM768",
        0x6399 => "X25519Kyber768Draft00",
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests;
