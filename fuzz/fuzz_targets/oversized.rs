//! The oversized-message path: any request head with padding lines of any length
//! (up to megabytes, from a few input bytes) before, between or after its fields, fed
//! in any pieces, with any responses: never a panic, and a head past the limit is
//! still reported, flagged, with the fields the input put after the padding.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use apiwatch::http::Connection;
use apiwatch::http::connection::Endpoints;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [pad_kb, where_pad, piece, rest @ ..] = data else {
        return;
    };
    // The fields the input chooses, with one padding line of up to 1 MiB inserted.
    let text = String::from_utf8_lossy(rest);
    // No blank line: the head must not end before the padding.
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let pad = format!("X-Pad: {}", "a".repeat(usize::from(*pad_kb) * 4096));
    let at = usize::from(*where_pad) % (lines.len() + 1);
    lines.insert(at.max(1).min(lines.len()), pad);
    let mut msg = String::from("POST /api/login HTTP/1.1\r\n");
    for l in &lines {
        msg.push_str(l);
        msg.push_str("\r\n");
    }
    msg.push_str("\r\n");
    let ep = Endpoints {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        server_port: 80,
    };
    let mut c = Connection::new(ep, false);
    let mut out = Vec::new();
    let size = usize::from(*piece).max(1) * 97;
    for (i, chunk) in msg.as_bytes().chunks(size).enumerate() {
        c.client_data(chunk, i as u64, &mut out);
    }
    c.server_data(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", 1 << 40, &mut out);
    c.end(true, 1 << 41, &mut out);
    c.end(false, 1 << 41, &mut out);
    c.flush(&mut out);
    let big = msg.len() > apiwatch::http::parser::MAX_HEAD_BYTES;
    if let Some(first) = out.first() {
        assert_eq!(first.method.as_deref(), Some("POST"));
        if big {
            assert!(first.request_headers.oversized);
        }
    }
    for e in &out {
        let line = apiwatch::export::exchange_log::to_json(e);
        assert!(!line.contains('\n'));
    }
});
