//! An HTTP connection fed arbitrary client and server bytes in arbitrary pieces, with
//! gaps and closes: never a panic, and every exchange reported is well formed.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use apiwatch::http::Connection;
use apiwatch::http::connection::{Endpoints, MAX_PENDING_TRANSACTIONS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ep = Endpoints {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        server_port: 80,
    };
    let mut c = Connection::new(ep, data.first().is_some_and(|b| b & 0x80 != 0));
    let mut out = Vec::new();
    let mut rest = data.get(1..).unwrap_or_default();
    let mut ts = 0u64;
    // Each piece: a control byte (side, kind) and a length byte, then that many bytes.
    while let [ctl, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (piece, next) = tail.split_at(n);
        rest = next;
        ts += 1000;
        let client = ctl & 1 == 0;
        match (ctl >> 1) % 8 {
            0 => c.gap(client, u64::from(*len)),
            1 => c.end(client, ts, &mut out),
            _ if client => c.client_data(piece, ts, &mut out),
            _ => c.server_data(piece, ts, &mut out),
        }
    }
    c.end(true, ts, &mut out);
    c.end(false, ts, &mut out);
    c.flush(&mut out);
    let mut last_depth = 0;
    for x in &out {
        // HTTP/2 streams end in any order; HTTP/1 exchanges come out in order.
        if x.h2.is_none() {
            assert!(x.trans_depth > last_depth, "exchanges come out in connection order");
            last_depth = x.trans_depth;
        }
        assert!(x.request_body_prefix.len() <= apiwatch::http::DEFAULT_BODY_PREFIX);
        assert!(x.response_body_prefix.len() <= apiwatch::http::connection::RESPONSE_PREFIX);
        if let Some(s) = x.status {
            assert!((100..1000).contains(&s));
        }
    }
    let _ = MAX_PENDING_TRANSACTIONS;
});
