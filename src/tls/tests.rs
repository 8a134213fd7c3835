//! Handshake reading as scenarios: hellos built byte by byte, fed in pieces.

use super::handshake::{MAX_HANDSHAKE_BYTES, Reader};
use super::*;

/// A record of `kind` around `body`.
pub(crate) fn record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A handshake message of `kind` around `body`.
pub(crate) fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len() as u32;
    let mut m = vec![kind, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    m.extend_from_slice(body);
    m
}

pub(crate) fn ext(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut e = kind.to_be_bytes().to_vec();
    e.extend_from_slice(&(body.len() as u16).to_be_bytes());
    e.extend_from_slice(body);
    e
}

/// A ClientHello offering TLS 1.3 and 1.2 to `example.com` with ALPN h2, http/1.1
/// and GREASE values in every list.
pub(crate) fn client_hello_body() -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7; 32]); // random
    b.push(32);
    b.extend_from_slice(&[9; 32]); // session id
    let ciphers: [u16; 4] = [0x2a2a, 0x1301, 0x1302, 0xc02f];
    b.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
    for c in ciphers {
        b.extend_from_slice(&c.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]); // compression: null
    let mut exts = Vec::new();
    exts.extend(ext(0x3a3a, &[]));
    let name = b"example.com";
    let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    exts.extend(ext(0, &sni));
    exts.extend(ext(16, b"\x00\x0c\x02h2\x08http/1.1"));
    exts.extend(ext(43, &[6, 0x4a, 0x4a, 3, 4, 3, 3]));
    exts.extend(ext(13, &[0, 4, 4, 3, 8, 4]));
    exts.extend(ext(10, &[0, 4, 0, 29, 0, 23]));
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(&exts);
    b
}

pub(crate) fn server_hello_body(version: u16) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[5; 32]);
    b.push(32);
    b.extend_from_slice(&[9; 32]); // echoes the client's session id
    b.extend_from_slice(&0x1301u16.to_be_bytes());
    b.push(0);
    let mut exts = Vec::new();
    if version == 0x0304 {
        exts.extend(ext(43, &[3, 4]));
        exts.extend(ext(51, &[0, 29, 0, 1, 0xaa]));
    } else {
        exts.extend(ext(16, b"\x00\x03\x02h2"));
    }
    b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    b.extend_from_slice(&exts);
    b
}

#[test]
fn first_bytes_of_a_handshake_are_recognised() {
    assert!(looks_like_handshake(&[22, 3, 1, 2, 0]));
    assert!(looks_like_handshake(&[22, 3]));
    assert!(looks_like_handshake(&[22]));
    assert!(!looks_like_handshake(&[22, 3, 9, 0, 1]));
    assert!(!looks_like_handshake(b"GET / HTTP/1.1\r\n"));
    assert!(!looks_like_handshake(&[23, 3, 3, 0, 1]));
    assert!(!looks_like_handshake(b"SSH-2.0-OpenSSH"));
}

#[test]
fn a_tls13_handshake_fed_byte_by_byte_is_summarised() {
    let mut r = Reader::new(1);
    let hello = record(22, &message(1, &client_hello_body()));
    for b in &hello {
        r.data(true, std::slice::from_ref(b));
    }
    let mut server = record(22, &message(2, &server_hello_body(0x0304)));
    server.extend(record(20, &[1]));
    server.extend(record(23, &[0; 40]));
    r.data(false, &server);
    assert!(!r.is_done(), "the client has not answered yet");
    let mut client = record(20, &[1]);
    client.extend(record(23, &[0; 30]));
    r.data(true, &client);
    assert!(r.is_done());
    let s = r.finish();
    assert_eq!(s.outcome, Outcome::Established);
    let c = s.client.as_ref().unwrap();
    assert_eq!(c.sni.as_deref(), Some("example.com"));
    assert_eq!(c.alpn, ["h2", "http/1.1"]);
    assert_eq!(c.versions, [0x0304, 0x0303], "GREASE left out");
    assert_eq!(c.ciphers, [0x1301, 0x1302, 0xc02f]);
    assert_eq!(c.extensions, [0, 16, 43, 13, 10]);
    assert!(c.ja4.starts_with("t13d0305h2_"), "{}", c.ja4);
    let sv = s.server.as_ref().unwrap();
    assert_eq!(
        (sv.version, sv.cipher, sv.group),
        (0x0304, 0x1301, Some(29))
    );
    assert_eq!(s.version(), Some(0x0304));
    assert!(!s.resumed, "a TLS 1.3 session id echo is not resumption");
    assert_eq!(s.history, "CsiI");
}

#[test]
fn messages_spanning_records_and_records_sharing_messages_are_read() {
    // The ClientHello split over two records, then the ServerHello and Certificate
    // in one record, then a NewSessionTicket.
    let msg = message(1, &client_hello_body());
    let (a, b) = msg.split_at(10);
    let mut client = record(22, a);
    client.extend(record(22, b));
    let mut r = Reader::new(1);
    r.data(true, &client);
    let mut flight = message(2, &server_hello_body(0x0303));
    flight.extend(message(11, &[0, 0, 0])); // an empty certificate list
    flight.extend(message(14, &[]));
    r.data(false, &record(22, &flight));
    r.data(false, &record(21, &[2, 40]));
    let s = r.finish();
    assert!(s.client.is_some());
    let sv = s.server.as_ref().unwrap();
    assert_eq!(sv.version, 0x0303);
    assert_eq!(sv.alpn.as_deref(), Some("h2"));
    assert_eq!(s.outcome, Outcome::Alert);
    let alert = s.alert.unwrap();
    assert_eq!(
        (alert.from_client, alert.level, alert.description),
        (false, 2, 40)
    );
    assert_eq!(s.history, "Csxnl");
}

#[test]
fn tls12_resumption_by_session_id_is_seen() {
    let mut r = Reader::new(1);
    r.data(true, &record(22, &message(1, &client_hello_body())));
    let mut server = record(22, &message(2, &server_hello_body(0x0303)));
    server.extend(record(20, &[1]));
    server.extend(record(22, &[0; 40])); // encrypted Finished
    r.data(false, &server);
    let mut client = record(20, &[1]);
    client.extend(record(22, &[0; 40]));
    r.data(true, &client);
    assert!(r.is_done());
    let s = r.finish();
    assert_eq!(s.outcome, Outcome::Established);
    assert!(s.resumed);
}

/// `body` (a hello) with `more` appended to its extensions.
fn with_extensions(mut body: Vec<u8>, more: &[u8]) -> Vec<u8> {
    // version, random, session id (32), 4 suites, compression: then the block's length.
    let at = 2 + 32 + 1 + 32 + 2 + 8 + 2;
    let n = u16::from_be_bytes([body[at], body[at + 1]]) + more.len() as u16;
    body[at..at + 2].copy_from_slice(&n.to_be_bytes());
    body.extend_from_slice(more);
    body
}

#[test]
fn ja3_and_ja3s_are_of_the_hellos_legacy_versions_and_lists_as_sent_without_grease() {
    // ec_point_formats (uncompressed, ansiX962_compressed_prime and _char2), then a
    // GREASE extension.
    let mut more = ext(11, &[3, 0, 1, 2]);
    more.extend(ext(0x5a5a, &[0]));
    let body = with_extensions(client_hello_body(), &more);
    let mut r = Reader::new(1);
    r.data(true, &record(22, &message(1, &body)));
    r.data(false, &record(22, &message(2, &server_hello_body(0x0304))));
    let s = r.finish();
    let c = s.client.as_ref().unwrap();
    assert_eq!(c.point_formats, [0, 1, 2]);
    assert_eq!(
        c.ja3.string,
        "771,4865-4866-49199,0-16-43-13-10-11,29-23,0-1-2"
    );
    assert_eq!(c.ja3.hash(), "2c9e48daf4cd7bbf6e5a9bc4d26cdf44");
    // TLS 1.3 is chosen by supported_versions; JA3S has the hello's own 0x0303.
    let sv = s.server.as_ref().unwrap();
    assert_eq!((sv.version, sv.legacy_version), (0x0304, 0x0303));
    assert_eq!(sv.ja3s.string, "771,4865,43-51");
    assert_eq!(sv.ja3s.hash(), "f4febc55ea12b31ae17cfb7e614afda8");

    // Without point formats the last field is empty; TLS 1.2's ServerHello.
    let mut r = Reader::new(1);
    r.data(true, &record(22, &message(1, &client_hello_body())));
    r.data(false, &record(22, &message(2, &server_hello_body(0x0303))));
    let s = r.finish();
    let c = s.client.as_ref().unwrap();
    assert_eq!(c.ja3.string, "771,4865-4866-49199,0-16-43-13-10,29-23,");
    assert_eq!(c.ja3.hash(), "7739bf44dbdd9d1c4bb1e0d69a1378f2");
    let sv = s.server.as_ref().unwrap();
    assert_eq!(sv.ja3s.string, "771,4865,16");
    assert_eq!(sv.ja3s.hash(), "0a26c219c6c129f5c955265975fedfd6");
}

#[test]
fn a_huge_certificate_message_is_cut_without_being_held() {
    let mut r = Reader::new(1);
    r.data(true, &record(22, &message(1, &client_hello_body())));
    r.data(false, &record(22, &message(2, &server_hello_body(0x0303))));
    // A Certificate message announcing 16 MB, sent in full-size records.
    let mut head = vec![11, 0xff, 0xff, 0xff];
    head.extend_from_slice(&[0; 100]);
    r.data(false, &record(22, &head));
    let chunk = record(22, &[0x55; 16384]);
    for _ in 0..1024 {
        r.data(false, &chunk);
        assert!(r.buffered() <= 2 * MAX_HANDSHAKE_BYTES);
    }
    let s = r.finish();
    assert_eq!(s.outcome, Outcome::Cut);
    assert!(s.client.is_some() && s.server.is_some());
}

#[test]
fn garbage_after_a_client_hello_stops_that_side_only() {
    let mut r = Reader::new(1);
    let mut client = record(22, &message(1, &client_hello_body()));
    client.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    r.data(true, &client);
    r.data(true, &[0xff; 1000]);
    let s = r.finish();
    assert!(s.client.is_some());
    assert_eq!(s.outcome, Outcome::Malformed);
}

#[test]
fn a_gap_stops_reading_its_direction() {
    let mut r = Reader::new(1);
    r.gap(true);
    r.gap(false);
    assert!(r.is_done());
    assert_eq!(r.finish().outcome, Outcome::Incomplete);
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap stand-in for the fuzz target, run with every test.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let mut r = Reader::new(0);
        let mut buf = record(22, &message(1, &client_hello_body()));
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % buf.len();
            buf[at] = (seed >> 32) as u8;
        }
        for piece in buf.chunks(1 + (seed as usize % 50)) {
            r.data(seed & 1 == 0, piece);
        }
        let _ = r.finish();
    }
}

#[test]
fn negotiated_suites_are_classed_by_what_they_protect() {
    for (id, class) in [
        (Some(0x1301), "aead_forward_secret"), // TLS_AES_128_GCM_SHA256
        (Some(0x1303), "aead_forward_secret"), // TLS_CHACHA20_POLY1305_SHA256
        (Some(0xc02f), "aead_forward_secret"), // ECDHE-RSA-AES128-GCM-SHA256
        (Some(0xcca8), "aead_forward_secret"), // ECDHE-RSA-CHACHA20-POLY1305
        (Some(0xc013), "cbc_forward_secret"),  // ECDHE-RSA-AES128-SHA
        (Some(0x002f), "static_key_exchange"), // RSA-AES128-SHA
        (Some(0x009c), "static_key_exchange"), // RSA-AES128-GCM-SHA256
        (Some(0x000a), "weak"),                // RSA-3DES-EDE-CBC-SHA
        (Some(0x0005), "weak"),                // RSA-RC4-128-SHA
        (Some(0x0004), "weak"),                // RSA-RC4-128-MD5
        (Some(0x0001), "weak"),                // RSA-NULL-MD5
        (Some(0x0034), "weak"),                // DH-anon-AES128-SHA
        (Some(0xbeef), "unknown"),
        (None, "unknown"),
    ] {
        assert_eq!(suite_class(id), class, "{id:04x?}");
    }
}
