//! A TLS handshake reader fed arbitrary client and server bytes in arbitrary pieces,
//! with gaps: never a panic, memory bounded whatever is announced (16 MB
//! certificate lists, fragmented records, garbage after a hello), and every record
//! form of what it summarised serialises.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use apiwatch::http::Exchange;
use apiwatch::tls::Reader;
use apiwatch::tls::handshake::MAX_HANDSHAKE_BYTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(1);
    let mut rest = data;
    // Each piece: a control byte (side, kind), a two-byte length, then that many bytes.
    while let [ctl, hi, lo, tail @ ..] = rest {
        let n = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (piece, next) = tail.split_at(n);
        rest = next;
        let client = ctl & 1 == 0;
        match (ctl >> 1) % 16 {
            0 => r.gap(client),
            _ => r.data(client, piece),
        }
        assert!(r.buffered() <= 2 * MAX_HANDSHAKE_BYTES + 64 * 1024, "bounded");
        if r.is_done() {
            break;
        }
    }
    let session = r.finish();
    let e = Exchange {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        server_port: 443,
        ..Exchange::vacant()
    };
    for rec in [
        apiwatch::export::tls::apiwatch(&e, &session),
        apiwatch::export::tls::eve(&e, &session, None),
        apiwatch::export::tls::zeek(&e, &session),
    ] {
        let v: serde_json::Value = serde_json::from_str(&rec).expect("valid JSON");
        assert!(v.is_object());
    }
    if let Some(c) = &session.client {
        assert_eq!(c.ja4.len(), 36, "{}", c.ja4);
    }
});
