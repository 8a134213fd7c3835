//! An HTTP/2 connection (entered through the HTTP/1 connection, as real traffic
//! enters it: the preface first) fed arbitrary frames and HPACK blocks from both
//! sides in arbitrary pieces, with gaps: never a panic, memory held stays bounded,
//! and every exchange is well formed.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use apiwatch::http::Connection;
use apiwatch::http::connection::Endpoints;
use apiwatch::http::h2::{MAX_HEADER_BLOCK, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ep = Endpoints {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        server_port: 80,
    };
    let mut c = Connection::new(ep, false);
    let mut out = Vec::new();
    c.client_data(frame::PREFACE, 0, &mut out);
    let mut rest = data;
    let mut ts = 0u64;
    // Each piece: a control byte (side, kind) and a 16-bit length, then that many bytes.
    while let [ctl, hi, lo, tail @ ..] = rest {
        let n = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (piece, next) = tail.split_at(n);
        rest = next;
        ts += 1000;
        let client = ctl & 1 == 0;
        match (ctl >> 1) % 16 {
            0 => c.gap(client, n as u64),
            _ if client => c.client_data(piece, ts, &mut out),
            _ => c.server_data(piece, ts, &mut out),
        }
        // Two frame buffers and two header blocks at most.
        assert!(c.buffered() <= 2 * (frame::MAX_BUFFERED_FRAME + MAX_HEADER_BLOCK) + 1024);
    }
    c.flush(&mut out);
    for x in &out {
        assert_eq!(x.version.as_deref(), Some("2"));
        assert!(x.h2.is_some());
        assert!(x.request_body_prefix.len() <= apiwatch::http::DEFAULT_BODY_PREFIX);
        assert!(x.response_body_prefix.len() <= apiwatch::http::connection::RESPONSE_PREFIX);
        if let Some(s) = x.status {
            assert!((100..1000).contains(&s));
        }
    }
});
