//! The handshake of one TLS connection, read from its two reassembled streams.
//!
//! Each direction is cut into records (RFC 8446 §5.1: type, version, 16-bit length);
//! handshake records' bodies are gathered into messages (type, 24-bit length), which
//! may span records and share them, and each whole message is parsed by
//! `tls-parser`. Records that are not read (application data, encrypted handshake,
//! anything past the cap) are skipped by length without being held, so a direction
//! costs at most [`MAX_HANDSHAKE_BYTES`] whatever it sends.
//!
//! Encryption starts, per direction, at its ChangeCipherSpec (TLS ≤ 1.2) or, for
//! both, at a TLS 1.3 ServerHello (the compatibility ChangeCipherSpec of RFC 8446
//! §D.4 is ignored). The handshake is *established* once both directions have sent
//! an encrypted record.

use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

use super::{Alert, ClientHello, Outcome, ServerHello, Session, cert, is_grease};
use crate::time::Nanos;

/// Handshake bytes read per direction. A ClientHello is a few hundred bytes (2 KiB
/// with post-quantum key shares); a server's flight with a certificate chain a few
/// KiB, rarely 20. Past this the summary is marked `cut` and the rest skipped.
pub const MAX_HANDSHAKE_BYTES: usize = 64 * 1024;
/// The largest record body a peer may send (RFC 5246 §6.2.3: 2^14 + 2048); anything
/// larger is not TLS.
const MAX_RECORD_BODY: usize = (1 << 14) + 2048;
/// Letters of `ssl_history` kept (a renegotiating or chatty peer cannot grow it).
pub const MAX_HISTORY: usize = 64;
/// The random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256 of the string
/// "HelloRetryRequest".
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

/// One direction's record and message reassembly.
#[derive(Debug, Default)]
struct Side {
    /// The record header being gathered.
    header: [u8; 5],
    header_len: usize,
    /// Body bytes of the current record still to come, and its content type.
    body_left: usize,
    body_type: u8,
    /// The current record's body is read (else skipped).
    reading: bool,
    /// Handshake bytes of messages not yet complete.
    pending: Vec<u8>,
    /// Handshake bytes this side sent so far (the cap's measure).
    handshake_bytes: usize,
    /// An alert body being gathered (2 bytes).
    alert: [u8; 2],
    alert_len: usize,
    /// Records from here on are encrypted.
    encrypted: bool,
    /// Encrypted records seen (ChangeCipherSpec not counted).
    encrypted_records: u32,
    /// Nothing more is read from this side (cut, malformed or a gap).
    stopped: bool,
}

/// The handshake of one connection, as it streams by.
#[derive(Debug)]
pub struct Reader {
    sides: [Side; 2],
    session: Session,
    tls13: bool,
    /// A HelloRetryRequest was seen: the client's next hello is in clear.
    retry: bool,
    cut: bool,
    malformed: bool,
    /// The server sent a Certificate or a ServerKeyExchange (a full handshake).
    full: bool,
}

impl Reader {
    pub fn new(start: Nanos) -> Reader {
        Reader {
            sides: [Side::default(), Side::default()],
            session: Session {
                start,
                ..Session::default()
            },
            tls13: false,
            retry: false,
            cut: false,
            malformed: false,
            full: false,
        }
    }

    /// Whether there is nothing more to learn: established, a fatal alert, or
    /// neither side readable any more.
    pub fn is_done(&self) -> bool {
        self.established()
            || self.session.alert.is_some_and(|a| a.level == 2)
            || (self.sides[0].stopped && self.sides[1].stopped)
    }

    /// The summary so far (not finished).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Handshake bytes held for messages not yet complete.
    pub fn buffered(&self) -> usize {
        self.sides[0].pending.capacity() + self.sides[1].pending.capacity()
    }

    fn established(&self) -> bool {
        self.sides[0].encrypted_records > 0 && self.sides[1].encrypted_records > 0
    }

    /// Bytes were lost in one direction: nothing after them can be framed.
    pub fn gap(&mut self, from_client: bool) {
        let side = &mut self.sides[usize::from(!from_client)];
        side.stopped = true;
        side.pending = Vec::new();
    }

    /// The summary so far, finished: what happened is decided now.
    pub fn finish(mut self) -> Session {
        self.session.outcome = if self.established() {
            Outcome::Established
        } else if self.session.alert.is_some() {
            Outcome::Alert
        } else if self.cut {
            Outcome::Cut
        } else if self.malformed {
            Outcome::Malformed
        } else {
            Outcome::Incomplete
        };
        if !self.tls13
            && let (Some(c), Some(s)) = (&self.session.client, &self.session.server)
        {
            // An echoed session id, or encryption without a certificate or key
            // exchange from the server: an abbreviated (resumed) handshake.
            let echoed = !s.session_id.is_empty() && s.session_id == c.session_id;
            let abbreviated = !self.full && self.sides[1].encrypted;
            self.session.resumed = echoed || abbreviated;
        }
        self.session
    }

    /// Bytes from one side, in stream order.
    pub fn data(&mut self, from_client: bool, mut data: &[u8]) {
        let idx = usize::from(!from_client);
        while !data.is_empty() && !self.sides[idx].stopped {
            let side = &mut self.sides[idx];
            if side.body_left == 0 {
                let take = (5 - side.header_len).min(data.len());
                side.header[side.header_len..side.header_len + take].copy_from_slice(&data[..take]);
                side.header_len += take;
                data = &data[take..];
                if side.header_len < 5 {
                    return;
                }
                side.header_len = 0;
                let [kind, major, _, hi, lo] = side.header;
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if !(CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&kind)
                    || major != 3
                    || len > MAX_RECORD_BODY
                {
                    self.malformed = true;
                    self.stop(idx);
                    return;
                }
                self.record_start(idx, kind);
                if len == 0 {
                    continue;
                }
                let side = &mut self.sides[idx];
                side.body_left = len;
                side.body_type = kind;
                continue;
            }
            let n = side.body_left.min(data.len());
            let (body, rest) = data.split_at(n);
            data = rest;
            side.body_left -= n;
            if side.reading {
                self.record_body(idx, body);
            }
        }
    }

    fn stop(&mut self, idx: usize) {
        let side = &mut self.sides[idx];
        side.stopped = true;
        side.pending = Vec::new();
    }

    fn history(&mut self, from_client: bool, letter: u8) {
        if self.session.history.len() < MAX_HISTORY {
            let c = if from_client {
                letter.to_ascii_uppercase()
            } else {
                letter.to_ascii_lowercase()
            };
            self.session.history.push(char::from(c));
        }
    }

    /// A record header: decides whether its body is read.
    fn record_start(&mut self, idx: usize, kind: u8) {
        let from_client = idx == 0;
        let encrypted = self.sides[idx].encrypted;
        let reading = match kind {
            CHANGE_CIPHER_SPEC => {
                self.history(from_client, b'i');
                // TLS 1.3's compatibility ChangeCipherSpec changes nothing (after a
                // HelloRetryRequest the client's second hello follows it in clear).
                if !self.tls13 && !self.retry {
                    self.sides[idx].encrypted = true;
                }
                false
            }
            ALERT if !encrypted => {
                self.history(from_client, b'l');
                self.sides[idx].alert_len = 0;
                true
            }
            HANDSHAKE if !encrypted => true,
            _ => {
                if encrypted || kind == APPLICATION_DATA {
                    self.sides[idx].encrypted_records += 1;
                }
                false
            }
        };
        self.sides[idx].reading = reading;
    }

    fn record_body(&mut self, idx: usize, body: &[u8]) {
        let side = &mut self.sides[idx];
        if side.body_type == ALERT {
            for &b in body {
                if side.alert_len < 2 {
                    side.alert[side.alert_len] = b;
                    side.alert_len += 1;
                }
            }
            if side.alert_len == 2 && self.session.alert.is_none() {
                self.session.alert = Some(Alert {
                    from_client: idx == 0,
                    level: side.alert[0],
                    description: side.alert[1],
                });
            }
            return;
        }
        side.handshake_bytes += body.len();
        if side.handshake_bytes > MAX_HANDSHAKE_BYTES {
            self.cut = true;
            self.stop(idx);
            return;
        }
        side.pending.extend_from_slice(body);
        self.messages(idx);
    }

    /// Parses every whole handshake message gathered on one side.
    fn messages(&mut self, idx: usize) {
        let mut pending = std::mem::take(&mut self.sides[idx].pending);
        let mut at = 0;
        while let Some(head) = pending.get(at..at + 4) {
            let len =
                (usize::from(head[1]) << 16) | (usize::from(head[2]) << 8) | usize::from(head[3]);
            if 4 + len > MAX_HANDSHAKE_BYTES {
                self.cut = true;
                self.stop(idx);
                return;
            }
            let Some(msg) = pending.get(at..at + 4 + len) else {
                break;
            };
            at += 4 + len;
            self.message(idx, msg);
            if self.sides[idx].stopped || self.sides[idx].encrypted {
                // Whatever follows in this record is encrypted (TLS 1.3 after the
                // ServerHello) or unreadable.
                return;
            }
        }
        pending.drain(..at);
        self.sides[idx].pending = pending;
    }

    /// One whole handshake message (header included).
    fn message(&mut self, idx: usize, msg: &[u8]) {
        let from_client = idx == 0;
        let kind = msg[0];
        let letter = match kind {
            0 => b'h',
            1 => b'c',
            2 => b's',
            4 => b't',
            8 => b'o',
            11 => b'x',
            12 => b'k',
            13 => b'r',
            14 => b'n',
            15 => b'y',
            16 => b'g',
            20 => b'f',
            22 => b'u',
            24 => b'p',
            _ => b'z',
        };
        let parsed = tls_parser::parse_tls_message_handshake(msg);
        let Ok((_, TlsMessage::Handshake(m))) = parsed else {
            self.history(from_client, letter);
            if matches!(kind, 1 | 2) {
                // A hello that does not parse: nothing else on this side can be
                // trusted.
                self.malformed = true;
                self.stop(idx);
            }
            return;
        };
        match m {
            TlsMessageHandshake::ClientHello(ch) if from_client => {
                self.history(true, letter);
                if self.session.client.is_none() {
                    self.session.client = Some(client_hello(&ch));
                }
            }
            TlsMessageHandshake::ServerHello(sh) if !from_client => {
                let retry = sh.random == HRR_RANDOM;
                self.history(false, if retry { b'j' } else { letter });
                let s = server_hello(&sh);
                if retry {
                    self.retry = true;
                    return;
                }
                if s.version == 0x0304 {
                    self.tls13 = true;
                    self.sides[0].encrypted = true;
                    self.sides[1].encrypted = true;
                }
                if self.tls13 && s.psk {
                    self.session.resumed = true;
                }
                self.session.server = Some(s);
            }
            TlsMessageHandshake::Certificate(c) if !from_client => {
                self.history(false, letter);
                self.full = true;
                if self.session.certificates.is_empty() {
                    self.session.certificates = c
                        .cert_chain
                        .iter()
                        .take(cert::MAX_CERTS)
                        .filter_map(|raw| cert::parse(raw.data))
                        .collect();
                }
            }
            TlsMessageHandshake::ServerKeyExchange(_) => {
                self.history(from_client, letter);
                self.full = true;
            }
            TlsMessageHandshake::NewSessionTicket(_) if !from_client => {
                self.history(false, letter);
                self.session.new_ticket = true;
            }
            _ => self.history(from_client, letter),
        }
    }
}

/// The values of a list of extensions: type, then body, in order. A malformed
/// entry ends the walk (what came before it counts).
fn extensions(block: &[u8]) -> impl Iterator<Item = (u16, &[u8], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let head = block.get(at..at + 4)?;
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let whole = block.get(at..at + 4 + len)?;
        at += 4 + len;
        Some((kind, &whole[4..], whole))
    })
}

fn alpn_text(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn client_hello(ch: &tls_parser::TlsClientHelloContents<'_>) -> ClientHello {
    let mut c = ClientHello {
        legacy_version: ch.version.0,
        random: ch.random.try_into().unwrap_or_default(),
        ciphers: ch
            .ciphers
            .iter()
            .map(|c| c.0)
            .filter(|c| !is_grease(*c))
            .collect(),
        session_id: ch.session_id.unwrap_or_default().to_vec(),
        ..ClientHello::default()
    };
    for (kind, _, whole) in extensions(ch.ext.unwrap_or_default()) {
        if is_grease(kind) {
            continue;
        }
        c.extensions.push(kind);
        let Ok((_, ext)) = tls_parser::parse_tls_extension(whole) else {
            continue;
        };
        match ext {
            TlsExtension::SNI(names) => {
                if let Some((_, name)) = names.first() {
                    c.sni = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            TlsExtension::ALPN(protocols) => {
                if let Some(first) = protocols.first() {
                    c.alpn_first = first.to_vec();
                }
                c.alpn = protocols.iter().map(|p| alpn_text(p)).collect();
            }
            TlsExtension::SupportedVersions(v) => {
                c.versions = v.iter().map(|v| v.0).filter(|v| !is_grease(*v)).collect();
            }
            TlsExtension::SignatureAlgorithms(v) => {
                c.signature_algorithms = v.into_iter().filter(|v| !is_grease(*v)).collect();
            }
            TlsExtension::EllipticCurves(v) => {
                c.groups = v.iter().map(|g| g.0).filter(|g| !is_grease(*g)).collect();
            }
            TlsExtension::EcPointFormats(v) => c.point_formats = v.to_vec(),
            TlsExtension::SessionTicket(t) => c.session_ticket = !t.is_empty(),
            TlsExtension::PreSharedKey(_) => c.psk = true,
            _ => {}
        }
    }
    c.ja4 = super::ja4::ja4(&c);
    c.ja3 = super::ja3::ja3(
        c.legacy_version,
        &c.ciphers,
        &c.extensions,
        &c.groups,
        &c.point_formats,
    );
    c
}

fn server_hello(sh: &tls_parser::TlsServerHelloContents<'_>) -> ServerHello {
    let mut s = ServerHello {
        version: sh.version.0,
        legacy_version: sh.version.0,
        cipher: sh.cipher.0,
        random: sh.random.try_into().unwrap_or_default(),
        session_id: sh.session_id.unwrap_or_default().to_vec(),
        ..ServerHello::default()
    };
    for (kind, body, _) in extensions(sh.ext.unwrap_or_default()) {
        if is_grease(kind) {
            continue;
        }
        s.extensions.push(kind);
        match kind {
            // supported_versions: the one chosen (RFC 8446 §4.2.1).
            43 if body.len() == 2 => s.version = u16::from_be_bytes([body[0], body[1]]),
            // ALPN: a list of exactly one protocol (RFC 7301 §3.1).
            16 => {
                if let Some(&n) = body.get(2)
                    && let Some(p) = body.get(3..3 + usize::from(n))
                {
                    s.alpn = Some(alpn_text(p));
                }
            }
            41 => s.psk = true,
            51 if body.len() >= 2 => s.group = Some(u16::from_be_bytes([body[0], body[1]])),
            _ => {}
        }
    }
    s.ja3s = super::ja3::ja3s(s.legacy_version, s.cipher, &s.extensions);
    s
}
