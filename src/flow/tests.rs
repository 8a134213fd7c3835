use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::synth::{Conversation, Seg};

const SEC: Nanos = 1_000_000_000;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, last))
}

fn feed(t: &mut FlowTable, s: &Seg, ts: Nanos, out: &mut Vec<Exchange>) {
    let seg = TcpSegment {
        src: s.src,
        dst: s.dst,
        sport: s.sport,
        dport: s.dport,
        seq: s.seq,
        ack: s.ack,
        flags: s.flags,
        payload: &s.payload,
    };
    t.tick(ts, out);
    t.segment(&seg, ts, out);
}

fn feed_all(t: &mut FlowTable, segs: &[Seg], ts: Nanos, out: &mut Vec<Exchange>) {
    for s in segs {
        feed(t, s, ts, out);
    }
}

fn exchange(client_port: u16, path: &str) -> Conversation {
    let mut c = Conversation::new((ip(1), client_port), (ip(2), 80), 100, 900);
    c.handshake()
        .send(
            true,
            format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
            1460,
        )
        .send(
            false,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            1460,
        );
    c
}

#[test]
fn idle_flows_time_out_on_packet_time() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let mut c = Conversation::new((ip(1), 40000), (ip(2), 80), 1, 1);
    c.handshake()
        .send(true, b"GET /slow HTTP/1.1\r\n\r\n", 1460);
    feed_all(&mut t, &c.segs, SEC, &mut out);
    assert!(out.is_empty());
    // Another connection 301 s later (packet time) sweeps the first one out.
    let other = exchange(40001, "/later");
    feed_all(&mut t, &other.segs, 302 * SEC, &mut out);
    assert_eq!(t.stats.timed_out, 1);
    let uris: Vec<_> = out.iter().map(|e| e.uri.clone().unwrap()).collect();
    assert_eq!(uris, ["/slow", "/later"]);
    assert_eq!(out[0].status, None);
}

#[test]
fn counters_of_a_connection_still_open_reach_the_table_within_a_second() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    // A keep-alive connection that sends garbage and a retransmission, then stays open.
    let mut c = Conversation::new((ip(1), 40000), (ip(2), 80), 1, 1);
    c.handshake()
        .send(true, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 1460)
        .send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1460)
        .send(true, b"\x16\x03\x01 not http at all\r\n\r\n", 1460);
    let again = c.segs[c.segs.len() - 1].clone();
    c.segs.push(again);
    feed_all(&mut t, &c.segs, SEC, &mut out);
    let errors = |t: &FlowTable| t.stats.http.parse_errors.iter().sum::<u64>();
    assert_eq!((errors(&t), t.stats.streams.retransmitted_bytes), (0, 0));
    // A second later (any packet, or the quiet-wire tick) the counters are in.
    t.tick(3 * SEC, &mut out);
    assert_eq!(t.active(), 1, "the connection is still open");
    assert!(errors(&t) > 0, "{:?}", t.stats.http);
    assert!(t.stats.streams.retransmitted_bytes > 0);
    // Ending the connection adds only what came since: nothing counted twice.
    let before = (errors(&t), t.stats.streams.retransmitted_bytes);
    t.flush_all(&mut out);
    assert_eq!(before, (errors(&t), t.stats.streams.retransmitted_bytes));
}

#[test]
fn the_table_is_bounded_and_evicts_the_least_recently_seen() {
    let cfg = FlowConfig {
        max_flows: 32,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::new(cfg);
    let mut out = Vec::new();
    let mut convs = Vec::new();
    for i in 0..100u16 {
        let mut c = Conversation::new((ip(1), 20000 + i), (ip(2), 80), 1, 1);
        c.handshake().send(true, b"GET /x HTTP/1.1\r\n\r\n", 1460);
        feed_all(&mut t, &c.segs, SEC + i as u64, &mut out);
        convs.push(c);
        assert!(t.active() <= 32);
    }
    assert!(t.stats.evicted >= 68, "{}", t.stats.evicted);
    // Evicted connections still report what they saw.
    assert_eq!(out.len() as u64, t.stats.evicted);
    assert!(out.iter().all(|e| e.uri.as_deref() == Some("/x")));
    // The survivors are the most recent ones.
    let oldest_left = out.iter().map(|e| e.client_port).max().unwrap();
    assert!(oldest_left < 20000 + 100 - 16);
}

#[test]
fn a_new_syn_on_a_used_four_tuple_starts_a_new_connection() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    feed_all(&mut t, &exchange(40000, "/first").segs, SEC, &mut out);
    let mut second = exchange(40000, "/second");
    for s in &mut second.segs {
        // Different ISNs, as a real reused port would have.
        s.seq = s.seq.wrapping_add(1_000_000);
        s.ack = if s.ack == 0 {
            0
        } else {
            s.ack.wrapping_add(1_000_000)
        };
    }
    feed_all(&mut t, &second.segs, 2 * SEC, &mut out);
    t.flush_all(&mut out);
    let got: Vec<_> = out
        .iter()
        .map(|e| {
            (
                e.uri.as_deref().unwrap().to_string(),
                e.trans_depth,
                e.status,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/first".to_string(), 1, Some(200)),
            ("/second".to_string(), 1, Some(200))
        ]
    );
    assert_eq!(t.stats.port_reuse, 1);
}

#[test]
fn bytes_after_a_connections_end_do_not_swallow_the_next_one_on_its_ports() {
    // tls-attacks.pcap (issue #24): a server FIN ends a TLS connection, the client's
    // close_notify comes after it and is picked up midstream; two seconds later the
    // client reuses the port. That SYN starts a new connection (44 of 2271 were lost).
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let mut first = exchange(40000, "/first");
    first.close();
    let mut late = Conversation::new(
        first.client,
        first.server,
        first.client_seq,
        first.server_seq,
    );
    late.send(true, b"\x15\x03\x03\x00\x02\x01\x00", 1460);
    feed_all(&mut t, &first.segs, SEC, &mut out);
    feed_all(&mut t, &late.segs, SEC, &mut out);
    let mut second = Conversation::new((ip(1), 40000), (ip(2), 80), 5_000_000, 9_000_000);
    second
        .handshake()
        .send(true, b"GET /second HTTP/1.1\r\nHost: h\r\n\r\n", 1460)
        .send(
            false,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            1460,
        );
    feed_all(&mut t, &second.segs, 3 * SEC, &mut out);
    t.flush_all(&mut out);
    let uris: Vec<_> = out
        .iter()
        .map(|e| e.uri.clone().unwrap_or_default())
        .collect();
    assert_eq!(uris, ["/first", "/second"]);
    assert_eq!(t.stats.port_reuse, 1);

    // A SYN captured after its own connection's first data still belongs to it.
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let mut c = exchange(40001, "/late-syn");
    let syn = c.segs.remove(0);
    let data = c.segs.remove(2);
    feed(&mut t, &data, SEC, &mut out);
    feed(&mut t, &syn, SEC, &mut out);
    feed_all(&mut t, &c.segs, SEC, &mut out);
    t.flush_all(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].uri.as_deref(), Some("/late-syn"));
    assert_eq!(t.stats.port_reuse, 0);
}

#[test]
fn retransmitted_syn_is_not_port_reuse() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let c = exchange(40000, "/a");
    feed(&mut t, &c.segs[0], SEC, &mut out);
    feed_all(&mut t, &c.segs, SEC, &mut out);
    t.flush_all(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(t.stats.port_reuse, 0);
}

#[test]
fn client_is_found_without_a_syn() {
    // Midstream: the first segment seen is the server's response.
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let c = exchange(40000, "/a");
    let mut late = exchange(40000, "/b");
    late.segs.drain(..3);
    feed_all(&mut t, &c.segs[4..], SEC, &mut out); // response only
    feed_all(&mut t, &late.segs, SEC, &mut out);
    t.flush_all(&mut out);
    assert!(
        out.iter()
            .all(|e| e.client_port == 40000 && e.server_port == 80)
    );
    assert_eq!(t.stats.midstream_pickups, 1);

    // Only the SYN-ACK was captured: its receiver is the client.
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let c = exchange(50000, "/c");
    feed_all(&mut t, &c.segs[1..], SEC, &mut out);
    t.flush_all(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].client_port, out[0].server_port), (50000, 80));
}

#[test]
fn segments_for_unknown_connections_without_payload_are_ignored() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    for i in 0..10_000u32 {
        let mut s = Seg::new(ip(9), 1024 + (i % 60000) as u16, ip(2), 80);
        s.seq = i;
        s.flags = if i % 2 == 0 {
            tcp_flags::ACK
        } else {
            tcp_flags::RST
        };
        feed(&mut t, &s, SEC, &mut out);
    }
    assert_eq!(t.active(), 0);
    assert_eq!(t.stats.ignored_segments, 10_000);
}

#[test]
fn non_http_connections_stop_being_reassembled() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let mut c = Conversation::new((ip(1), 40000), (ip(2), 22), 1, 1);
    c.handshake()
        .send(true, b"SSH-2.0-OpenSSH_9.2\r\n", 1460)
        .send(false, b"SSH-2.0-OpenSSH_9.2 Debian\r\n", 1460)
        .send(true, &[0u8; 5000], 1000)
        .close();
    feed_all(&mut t, &c.segs, SEC, &mut out);
    assert!(out.is_empty());
    assert_eq!(t.active(), 0, "the FIN closes it");
    assert_eq!(t.stats.http.connections_not_http, 1);
}

#[test]
fn a_syn_flood_stays_in_the_half_open_table_and_real_connections_go_on() {
    let mut t = FlowTable::new(FlowConfig {
        max_flows: 64,
        max_half_open: 1000,
        ..FlowConfig::default()
    });
    let mut out = Vec::new();
    // A connection whose handshake came before the flood carries on after it.
    let c = exchange(40000, "/before");
    feed_all(&mut t, &c.segs[..3], SEC, &mut out);
    for i in 0..20_000u32 {
        let mut syn = Seg::new(ip(7), (i % 60_000) as u16 + 1, ip(2), 80);
        syn.seq = i;
        syn.flags = tcp_flags::SYN;
        syn.src = IpAddr::V4(Ipv4Addr::from(0x0a07_0000 + i));
        feed(&mut t, &syn, SEC, &mut out);
    }
    assert!(t.half_open.len() <= 1000);
    assert!(t.stats.half_open_evicted >= 19_000);
    assert_eq!(t.active(), 0, "no SYN took a full connection slot");
    // The earlier handshake was evicted with the flood (it was the oldest), yet its
    // data is still read, picked up midstream; a fresh one is read whole.
    feed_all(&mut t, &c.segs[3..], 2 * SEC, &mut out);
    let d = exchange(40001, "/after");
    feed_all(&mut t, &d.segs, 2 * SEC, &mut out);
    t.flush_all(&mut out);
    let uris: Vec<_> = out.iter().filter_map(|e| e.uri.as_deref()).collect();
    assert_eq!(uris, ["/before", "/after"]);
}

#[test]
fn held_data_of_all_connections_stays_inside_the_buffer_budget() {
    let budget = 256 * 1024;
    let mut t = FlowTable::new(FlowConfig {
        buffer_bytes: budget,
        ..FlowConfig::default()
    });
    let mut out = Vec::new();
    let chunk = vec![b'x'; 1400];
    let mut peak = 0;
    // 200 connections, each holding ~100 KB after a hole, and a head split in two.
    for port in 0..200u16 {
        let mut c = Conversation::new((ip(1), 30_000 + port), (ip(2), 80), 1000, 5000);
        c.handshake()
            .send(true, b"GET /held HTTP/1.1\r\nHost: h\r\nX-Part: ", 1460);
        let hole_at = c.client_seq;
        feed_all(&mut t, &c.segs, SEC, &mut out);
        for i in 0..70u32 {
            let mut s = Seg::new(ip(1), 30_000 + port, ip(2), 80);
            s.seq = hole_at.wrapping_add(1400 * (i + 1));
            s.flags = tcp_flags::ACK;
            s.payload = chunk.clone();
            feed(&mut t, &s, SEC, &mut out);
            peak = peak.max(t.buffered);
        }
    }
    assert!(peak <= budget + 70 * 1024, "peak {peak}");
    assert!(t.stats.buffers_shed > 0);
    t.flush_all(&mut out);
    // Every request is still reported; one whose head the forced gap cut is marked
    // incomplete (it happened, its content is unknown).
    assert_eq!(out.len(), 200);
    assert!(
        out.iter()
            .all(|e| e.method.as_deref() == Some("GET") || e.incomplete)
    );
}

#[test]
fn a_spoofed_fin_before_the_request_does_not_hide_it() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let mut c = Conversation::new((ip(1), 40000), (ip(2), 80), 1, 1);
    c.handshake();
    // A FIN at the request's own sequence number that the server never took (a bad
    // checksum, a TTL that dies on the way): the server acknowledges the request.
    let mut fin = c.segs[2].clone();
    fin.flags = tcp_flags::FIN | tcp_flags::ACK;
    c.segs.push(fin);
    c.send(
        true,
        b"POST /api/login HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
        1460,
    )
    .send(
        false,
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        1460,
    )
    .close();
    feed_all(&mut t, &c.segs, SEC, &mut out);
    t.flush_all(&mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].uri.as_deref(), Some("/api/login"));
    assert_eq!(out[0].status, Some(401));
    assert_eq!(out[0].request_body_len, 2);
    assert_eq!(t.stats.streams.fins_disregarded, 1);
}

#[test]
fn a_real_fin_still_ends_the_stream_and_data_after_it_is_not_read() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let mut c = Conversation::new((ip(1), 40001), (ip(2), 80), 1, 1);
    c.handshake()
        .send(true, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 1460);
    let mut fin = c.segs[c.segs.len() - 1].clone();
    fin.flags = tcp_flags::FIN | tcp_flags::ACK;
    fin.seq = c.client_seq;
    fin.payload.clear();
    c.segs.push(fin);
    c.client_seq += 1;
    // Bytes injected after the FIN that the server never acknowledges.
    let mut late = c.segs[c.segs.len() - 1].clone();
    late.flags = tcp_flags::ACK | 0x08;
    late.payload = b"GET /injected HTTP/1.1\r\n\r\n".to_vec();
    c.segs.push(late);
    c.send(false, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1460);
    feed_all(&mut t, &c.segs, SEC, &mut out);
    t.flush_all(&mut out);
    let uris: Vec<_> = out.iter().map(|e| e.uri.clone().unwrap()).collect();
    assert_eq!(uris, ["/a"]);
    assert_eq!(t.stats.streams.fins_disregarded, 0);
}

#[test]
fn http2_picked_up_midstream_is_counted_not_decoded() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    let mut c = Conversation::new((ip(1), 40000), (ip(2), 8080), 1, 1);
    // No handshake, no preface: a HEADERS frame (indexed fields only) and a
    // WINDOW_UPDATE from the middle of a connection.
    let mut frames = vec![0, 0, 3, 1, 5, 0, 0, 0, 7, 0x82, 0x86, 0x84];
    frames.extend([0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]);
    c.send(true, &frames, 1460)
        .send(false, &[0, 0, 0, 4, 1, 0, 0, 0, 0], 1460);
    feed_all(&mut t, &c.segs, SEC, &mut out);
    t.flush_all(&mut out);
    assert!(out.is_empty(), "headers are never guessed");
    let h2 = &t.stats.http.h2;
    assert_eq!(h2.problems[crate::http::h2::Problem::Midstream.index()], 1);
    assert_eq!(h2.undecodable, 1);
    assert_eq!(t.stats.http.connections_not_http, 0);
}
