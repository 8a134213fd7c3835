//! Scenarios: a connection in a state, frames fed in, exchanges and counters checked.
//! HTTP/2 connections are entered the way real traffic enters them: through the
//! HTTP/1 connection, from the preface or a 101.

use std::net::{IpAddr, Ipv4Addr};

use loona_hpack::Encoder;

use super::frame::{MAX_BUFFERED_FRAME, PREFACE, flag, kind};
use super::*;
use crate::http::connection::{Connection as Http1, HttpStats};

fn endpoints() -> Endpoints {
    Endpoints {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        server_port: 80,
    }
}

/// One frame's bytes.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let n = payload.len() as u32;
    let mut v = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags];
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(kind::SETTINGS, 0, 0, &p)
}

fn block(enc: &mut Encoder<'_>, fields: &[(&str, &str)]) -> Vec<u8> {
    enc.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
}

/// Client and server encoders, with helpers for the usual frames.
struct Peer {
    client: Encoder<'static>,
    server: Encoder<'static>,
}

impl Peer {
    fn new() -> Self {
        Peer {
            client: Encoder::new(),
            server: Encoder::new(),
        }
    }

    fn request(&mut self, stream: u32, method: &str, path: &str, end: bool) -> Vec<u8> {
        let b = block(
            &mut self.client,
            &[
                (":method", method),
                (":scheme", "http"),
                (":authority", "api.example.test"),
                (":path", path),
                ("user-agent", "test/1"),
                ("authorization", "Bearer abc"),
                // Not in the static table: indexed into the dynamic one, then
                // sent as a one-byte reference.
                ("x-api-key", "k1"),
            ],
        );
        let f = flag::END_HEADERS | if end { flag::END_STREAM } else { 0 };
        frame(kind::HEADERS, f, stream, &b)
    }

    fn response(&mut self, stream: u32, status: &str, end: bool) -> Vec<u8> {
        let b = block(
            &mut self.server,
            &[(":status", status), ("content-type", "application/json")],
        );
        let f = flag::END_HEADERS | if end { flag::END_STREAM } else { 0 };
        frame(kind::HEADERS, f, stream, &b)
    }
}

/// Feeds a script of (client?, bytes) to an HTTP/1 connection, flushes it.
fn run(script: &[(bool, Vec<u8>)]) -> (Vec<Exchange>, HttpStats) {
    let mut c = Http1::new(endpoints(), false);
    let mut out = Vec::new();
    for (i, (client, bytes)) in script.iter().enumerate() {
        let ts = (i as u64 + 1) * 1_000_000;
        if *client {
            c.client_data(bytes, ts, &mut out);
        } else {
            c.server_data(bytes, ts, &mut out);
        }
    }
    c.flush(&mut out);
    (out, c.stats.clone())
}

fn preface() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(settings(&[(4, 65535)]));
    v
}

#[test]
fn prior_knowledge_streams_become_exchanges() {
    let mut p = Peer::new();
    let mut c1 = preface();
    c1.extend(p.request(1, "GET", "/users/1", true));
    let mut s1 = settings(&[]);
    s1.extend(p.response(1, "200", false));
    s1.extend(frame(kind::DATA, flag::END_STREAM, 1, b"{\"id\":1}"));
    let (ex, stats) = run(&[(true, c1), (false, s1)]);
    assert_eq!(ex.len(), 1);
    let e = &ex[0];
    assert_eq!(e.method.as_deref(), Some("GET"));
    assert_eq!(e.uri.as_deref(), Some("/users/1"));
    assert_eq!(e.version.as_deref(), Some("2"));
    assert_eq!(e.request_headers.host.as_deref(), Some("api.example.test"));
    assert_eq!(e.request_headers.user_agent.as_deref(), Some("test/1"));
    assert_eq!(
        e.request_headers.authorization.as_deref(),
        Some("Bearer abc")
    );
    assert_eq!(e.status, Some(200));
    assert_eq!(e.response_body_len, Some(8));
    assert_eq!(e.response_ts, Some(2_000_000));
    assert!(!e.incomplete);
    assert_eq!(e.h2.as_ref().unwrap().stream_id, 1);
    assert_eq!(stats.h2.connections, [1, 0]);
    assert_eq!(stats.h2.streams, 1);
    // The preface is not a request.
    assert_eq!(stats.requests, 0);
}

#[test]
fn preface_split_at_every_byte_is_read_the_same() {
    let mut p = Peer::new();
    let mut bytes = preface();
    bytes.extend(p.request(1, "GET", "/a", true));
    let resp = [p.response(1, "204", true)].concat();
    for cut in 1..bytes.len() {
        let (a, b) = bytes.split_at(cut);
        let (ex, _) = run(&[
            (true, a.to_vec()),
            (true, b.to_vec()),
            (false, resp.clone()),
        ]);
        assert_eq!(ex.len(), 1, "cut at {cut}");
        assert_eq!(ex[0].uri.as_deref(), Some("/a"), "cut at {cut}");
        assert_eq!(ex[0].status, Some(204), "cut at {cut}");
    }
}

#[test]
fn interleaved_streams_and_the_dynamic_table_across_requests() {
    let mut p = Peer::new();
    let mut c = preface();
    // Three requests with the same fields: the later ones refer to the table.
    let mut lens = Vec::new();
    for id in [1, 3, 5] {
        let r = p.request(id, "POST", "/orders", false);
        lens.push(r.len());
        c.extend(r);
    }
    assert!(
        lens[1] + 10 < lens[0],
        "{lens:?}: the encoder indexes x-api-key"
    );
    c.extend(p.request(7, "GET", "/x", true));
    // Bodies interleaved, answers out of order.
    c.extend(frame(kind::DATA, 0, 3, b"bbb"));
    c.extend(frame(kind::DATA, flag::END_STREAM, 1, b"a"));
    c.extend(frame(kind::DATA, flag::END_STREAM, 5, b"ccccc"));
    c.extend(frame(kind::DATA, flag::END_STREAM, 3, b"b"));
    let mut s = settings(&[]);
    s.extend(p.response(5, "201", true));
    s.extend(p.response(1, "400", true));
    s.extend(p.response(3, "201", true));
    s.extend(p.response(7, "200", true));
    let (ex, stats) = run(&[(true, c), (false, s)]);
    let got: Vec<_> = ex
        .iter()
        .map(|e| {
            (
                e.h2.as_ref().unwrap().stream_id,
                e.uri.as_deref().unwrap_or("-").to_string(),
                e.request_body_len,
                e.status,
                e.trans_depth,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (5, "/orders".into(), 5, Some(201), 3),
            (1, "/orders".into(), 1, Some(400), 1),
            (3, "/orders".into(), 4, Some(201), 2),
            (7, "/x".into(), 0, Some(200), 4),
        ]
    );
    assert!(
        ex.iter()
            .all(|e| e.request_headers.api_key.as_deref() == Some("k1"))
    );
    assert_eq!(stats.h2.problems, [0; Problem::ALL.len()]);
}

#[test]
fn padding_priority_and_continuation_are_removed() {
    let mut p = Peer::new();
    let b = block(
        &mut p.client,
        &[
            (":method", "GET"),
            (":path", "/padded"),
            (":scheme", "http"),
        ],
    );
    // HEADERS with padding and priority, its block cut in three across CONTINUATIONs.
    let mut payload = vec![3u8]; // pad length
    payload.extend([0x80, 0, 0, 1, 16]); // exclusive dependency on 1, weight
    payload.extend(&b[..2]);
    payload.extend([0, 0, 0]);
    let mut c = preface();
    c.extend(frame(
        kind::HEADERS,
        flag::PADDED | flag::PRIORITY | flag::END_STREAM,
        1,
        &payload,
    ));
    c.extend(frame(kind::CONTINUATION, 0, 1, &b[2..4]));
    c.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, &b[4..]));
    let mut s = p.response(1, "200", false);
    // Padded DATA: 2 bytes of data, 4 of padding.
    s.extend(frame(
        kind::DATA,
        flag::PADDED | flag::END_STREAM,
        1,
        &[4, b'o', b'k', 0, 0, 0, 0],
    ));
    let (ex, stats) = run(&[(true, c), (false, s)]);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].uri.as_deref(), Some("/padded"));
    assert_eq!(ex[0].response_body_len, Some(2));
    assert_eq!(ex[0].response_body_prefix, b"ok");
    assert_eq!(stats.h2.problems, [0; Problem::ALL.len()]);
}

#[test]
fn bad_padding_stops_the_direction_and_is_counted() {
    let mut p = Peer::new();
    let mut c = preface();
    c.extend(p.request(1, "POST", "/a", false));
    // Pad length 9 in a 3-byte DATA payload.
    c.extend(frame(kind::DATA, flag::PADDED, 1, &[9, 1, 2]));
    c.extend(p.request(3, "GET", "/never-read", true));
    let (ex, stats) = run(&[(true, c), (false, p.response(1, "200", true))]);
    assert_eq!(ex.len(), 1);
    assert!(ex[0].incomplete);
    assert_eq!(stats.h2.problems[Problem::MalformedFrame.index()], 1);
    assert_eq!(stats.h2.undecodable, 1);
}

#[test]
fn rst_stream_ends_a_stream_incomplete() {
    let mut p = Peer::new();
    let mut c = preface();
    c.extend(p.request(1, "GET", "/slow", true));
    c.extend(frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    let (ex, stats) = run(&[(true, c)]);
    assert_eq!(ex.len(), 1);
    assert!(ex[0].incomplete);
    assert!(ex[0].h2.as_ref().unwrap().reset);
    assert_eq!(ex[0].status, None);
    assert_eq!(stats.h2.resets, 1);
}

#[test]
fn push_promise_is_the_pushed_streams_request() {
    let mut p = Peer::new();
    let mut c = preface();
    c.extend(p.request(1, "GET", "/", true));
    let promise = block(
        &mut p.server,
        &[
            (":method", "GET"),
            (":path", "/style.css"),
            (":scheme", "http"),
            (":authority", "api.example.test"),
        ],
    );
    let mut payload = 2u32.to_be_bytes().to_vec();
    payload.extend(promise);
    let mut s = frame(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &payload);
    s.extend(p.response(1, "200", true));
    s.extend(p.response(2, "200", false));
    s.extend(frame(kind::DATA, flag::END_STREAM, 2, b"body{}"));
    let (ex, _) = run(&[(true, c), (false, s)]);
    assert_eq!(ex.len(), 2);
    let pushed = &ex[1];
    assert_eq!(pushed.uri.as_deref(), Some("/style.css"));
    assert!(pushed.h2.as_ref().unwrap().pushed);
    assert_eq!(pushed.response_body_len, Some(6));
    assert!(!pushed.incomplete);
}

#[test]
fn upgrade_h2c_makes_the_request_stream_one() {
    let mut p = Peer::new();
    let req = b"GET /up HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nUser-Agent: curl/8\r\n\r\n".to_vec();
    let mut s =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    s.extend(settings(&[]));
    s.extend(p.response(1, "200", false));
    s.extend(frame(kind::DATA, flag::END_STREAM, 1, b"up"));
    let mut c = preface();
    c.extend(p.request(3, "GET", "/next", true));
    let s2 = p.response(3, "404", true);
    let (ex, stats) = run(&[(true, req), (false, s), (true, c), (false, s2)]);
    let got: Vec<_> = ex
        .iter()
        .map(|e| (e.uri.as_deref(), e.status, e.incomplete))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("/up"), Some(200), false),
            (Some("/next"), Some(404), false)
        ]
    );
    assert_eq!(ex[0].request_headers.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(ex[0].interim.as_deref().map(|i| i.0), Some(101));
    assert_eq!(stats.h2.connections, [0, 1]);
}

#[test]
fn a_websocket_101_is_not_http2() {
    let req = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        .to_vec();
    let s = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi".to_vec();
    let (ex, stats) = run(&[(true, req), (false, s)]);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].status, Some(101));
    assert!(ex[0].h2.is_none());
    assert_eq!(stats.h2.connections, [0, 0]);
}

#[test]
fn server_settings_before_the_client_preface() {
    let mut p = Peer::new();
    let mut c = preface();
    c.extend(p.request(1, "GET", "/", true));
    let (ex, stats) = run(&[
        (false, settings(&[(3, 100)])),
        (true, c),
        (false, p.response(1, "200", true)),
    ]);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].status, Some(200));
    assert_eq!(stats.h2.connections, [1, 0]);
}

#[test]
fn grpc_status_from_trailers_and_trailers_only() {
    let mut p = Peer::new();
    let grpc_request = |p: &mut Peer, id: u32, path: &str| {
        let b = block(
            &mut p.client,
            &[
                (":method", "POST"),
                (":path", path),
                (":scheme", "http"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ],
        );
        let mut v = frame(kind::HEADERS, flag::END_HEADERS, id, &b);
        // One 3-byte message.
        v.extend(frame(
            kind::DATA,
            flag::END_STREAM,
            id,
            &[0, 0, 0, 0, 3, 1, 2, 3],
        ));
        v
    };
    let mut c = preface();
    c.extend(grpc_request(&mut p, 1, "/auth.Auth/Login"));
    c.extend(grpc_request(&mut p, 3, "/demo.Echo/Count"));
    // Stream 1: trailers-only UNAUTHENTICATED.
    let b = block(
        &mut p.server,
        &[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "16"),
            ("grpc-message", "bad credentials"),
        ],
    );
    let mut s = frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &b);
    // Stream 3: headers, two messages in one DATA, one in the next, then trailers.
    s.extend(p.response(3, "200", false));
    s.extend(frame(kind::DATA, 0, 3, &[0, 0, 0, 0, 1, 7, 0, 0, 0, 0, 0]));
    s.extend(frame(kind::DATA, 0, 3, &[0, 0, 0, 0, 2, 8, 9]));
    let t = block(&mut p.server, &[("grpc-status", "0")]);
    s.extend(frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        3,
        &t,
    ));
    let (ex, _) = run(&[(true, c), (false, s)]);
    assert_eq!(ex.len(), 2);
    let g0 = ex[0].h2.as_ref().unwrap().grpc.as_ref().unwrap();
    assert_eq!(g0.status, Some(16));
    assert_eq!(g0.message.as_deref(), Some("bad credentials"));
    assert_eq!((g0.request_messages, g0.response_messages), (1, 0));
    assert_eq!(ex[0].status, Some(200));
    assert_eq!(ex[0].judged_status(), Some(401));
    let g1 = ex[1].h2.as_ref().unwrap().grpc.as_ref().unwrap();
    assert_eq!(g1.status, Some(0));
    assert_eq!((g1.request_messages, g1.response_messages), (1, 3));
    assert_eq!(ex[1].judged_status(), Some(200));
}

#[test]
fn login_body_credentials_are_read_as_for_http1() {
    let mut p = Peer::new();
    let b = block(
        &mut p.client,
        &[
            (":method", "POST"),
            (":path", "/login"),
            (":scheme", "http"),
            ("content-type", "application/json"),
        ],
    );
    let mut c = preface();
    c.extend(frame(kind::HEADERS, flag::END_HEADERS, 1, &b));
    c.extend(frame(
        kind::DATA,
        flag::END_STREAM,
        1,
        br#"{"username":"bob","password":"x"}"#,
    ));
    let (ex, _) = run(&[(true, c), (false, p.response(1, "401", true))]);
    let creds = ex[0].body_credentials.as_ref().unwrap();
    assert!(creds.password);
    assert_eq!(creds.user.as_deref(), Some(&b"bob"[..]));
}

#[test]
fn continuation_flood_is_bounded_and_counted() {
    let mut h = Connection::prior_knowledge(
        endpoints(),
        &[],
        (64, crate::sensitive::DEFAULT_PREFIX),
        &mut H2Stats::default(),
    );
    let mut stats = H2Stats::default();
    let mut out = Vec::new();
    h.data(
        true,
        &frame(kind::HEADERS, 0, 1, &[0x82]),
        0,
        &mut stats,
        &mut out,
    );
    let chunk = frame(kind::CONTINUATION, 0, 1, &[0x82; 1000]);
    for _ in 0..200 {
        h.data(true, &chunk, 0, &mut stats, &mut out);
        assert!(
            h.buffered() <= MAX_HEADER_BLOCK + 2 * 1024,
            "{}",
            h.buffered()
        );
    }
    // Empty ones cost nothing but are capped as well.
    let empty = frame(kind::CONTINUATION, 0, 1, &[]);
    for _ in 0..5000 {
        h.data(true, &empty, 0, &mut stats, &mut out);
    }
    assert_eq!(stats.problems[Problem::HeaderBlockTooLarge.index()], 1);
    assert_eq!(stats.undecodable, 1);
    // The stream is still there, marked: its headers are lost.
    h.flush(&mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].incomplete && out[0].method.is_none());
}

#[test]
fn empty_continuations_alone_hit_the_frame_cap() {
    let mut h = Connection::prior_knowledge(
        endpoints(),
        &[],
        (64, crate::sensitive::DEFAULT_PREFIX),
        &mut H2Stats::default(),
    );
    let mut stats = H2Stats::default();
    let mut out = Vec::new();
    h.data(
        true,
        &frame(kind::HEADERS, 0, 1, &[0x82]),
        0,
        &mut stats,
        &mut out,
    );
    let empty = frame(kind::CONTINUATION, 0, 1, &[]);
    for _ in 0..MAX_CONTINUATIONS + 10 {
        h.data(true, &empty, 0, &mut stats, &mut out);
    }
    assert_eq!(stats.problems[Problem::HeaderBlockTooLarge.index()], 1);
}

#[test]
fn a_hundred_thousand_streams_hold_no_memory() {
    let mut p = Peer::new();
    let mut h = Connection::prior_knowledge(
        endpoints(),
        &[],
        (64, crate::sensitive::DEFAULT_PREFIX),
        &mut H2Stats::default(),
    );
    let mut stats = H2Stats::default();
    let mut out = Vec::new();
    for i in 0..100_000u32 {
        let id = 2 * i + 1;
        h.data(
            true,
            &p.request(id, "GET", "/a", true),
            0,
            &mut stats,
            &mut out,
        );
        h.data(false, &p.response(id, "200", true), 0, &mut stats, &mut out);
        assert!(h.streams.is_empty());
        if out.len() > 1000 {
            out.clear();
        }
    }
    assert_eq!(stats.streams, 100_000);
    // Never answered: the open ones stay at the limit, the rest counted.
    for i in 0..1000u32 {
        h.data(
            true,
            &p.request(300_001 + 2 * i, "GET", "/b", true),
            0,
            &mut stats,
            &mut out,
        );
        assert!(h.streams.len() <= MAX_OPEN_STREAMS);
    }
    assert_eq!(
        stats.problems[Problem::TooManyStreams.index()],
        (1000 - MAX_OPEN_STREAMS) as u64
    );
}

#[test]
fn hpack_table_size_bomb_is_refused_and_counted() {
    let mut h = Connection::prior_knowledge(
        endpoints(),
        &[],
        (64, crate::sensitive::DEFAULT_PREFIX),
        &mut H2Stats::default(),
    );
    let mut stats = H2Stats::default();
    let mut out = Vec::new();
    // A dynamic table size update to 1 GiB (0x3f then the varint), then :method GET.
    let mut b = vec![0x3f];
    let mut n = (1u64 << 30) - 31;
    while n >= 128 {
        b.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    b.push(n as u8);
    b.push(0x82);
    h.data(
        true,
        &frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &b),
        0,
        &mut stats,
        &mut out,
    );
    assert_eq!(stats.problems[Problem::HpackError.index()], 1);
    assert_eq!(stats.undecodable, 1);
    // A server that announced more is believed up to the cap only.
    let mut h = Connection::prior_knowledge(
        endpoints(),
        &[],
        (64, crate::sensitive::DEFAULT_PREFIX),
        &mut H2Stats::default(),
    );
    h.data(false, &settings(&[(1, u32::MAX)]), 0, &mut stats, &mut out);
    assert_eq!(h.client_hpack.allowed, MAX_HPACK_TABLE);
}

#[test]
fn an_hpack_error_loses_only_that_directions_headers() {
    let mut p = Peer::new();
    let mut c = preface();
    // Index 200 is past both tables.
    c.extend(frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &[0x80 | 0x7f, 200 - 127],
    ));
    c.extend(p.request(3, "GET", "/later", true));
    let mut s = p.response(1, "200", true);
    s.extend(p.response(3, "200", true));
    let (ex, stats) = run(&[(true, c), (false, s)]);
    assert_eq!(ex.len(), 2);
    // Both streams end and carry their (decodable) responses; no request guessed.
    assert!(
        ex.iter()
            .all(|e| e.method.is_none() && e.incomplete && e.status == Some(200))
    );
    assert_eq!(stats.h2.problems[Problem::HpackError.index()], 1);
}

#[test]
fn a_gap_stops_the_direction() {
    let mut p = Peer::new();
    let mut c = Http1::new(endpoints(), false);
    let mut out = Vec::new();
    let mut bytes = preface();
    bytes.extend(p.request(1, "GET", "/a", true));
    c.client_data(&bytes, 1, &mut out);
    c.gap(false, 100);
    c.server_data(&p.response(1, "200", true), 2, &mut out);
    c.flush(&mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].incomplete && out[0].status.is_none());
    assert_eq!(c.stats.h2.problems[Problem::Gap.index()], 1);
}

#[test]
fn frame_reader_reports_oversized_control_frames() {
    let mut r = FrameReader::new(&[]);
    let big = frame(kind::SETTINGS, 0, 0, &vec![0; MAX_BUFFERED_FRAME + 6]);
    let mut data = &big[..];
    assert!(matches!(r.next(&mut data), Some(Frame::Oversized { .. })));
    assert_eq!(r.next(&mut data), None);
    assert!(r.at_boundary());
    assert!(r.buffered() == 0);
}

#[test]
fn whole_frames_are_recognised_and_http1_is_not() {
    let mut two = frame(kind::HEADERS, flag::END_HEADERS, 7, &[0x82]);
    two.extend(frame(kind::DATA, 0, 7, b"abc"));
    assert!(frame::looks_like_frames(&two));
    assert!(
        !frame::looks_like_frames(&two[..two.len() - 1]),
        "cut frame"
    );
    assert!(!frame::looks_like_frames(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(!frame::looks_like_frames(b""));
    assert!(
        !frame::looks_like_frames(&frame(0x20, 0, 1, b"x")),
        "unknown type"
    );
}

#[test]
fn byte_at_a_time_gives_the_same_exchanges() {
    let mut p = Peer::new();
    let mut c = preface();
    c.extend(p.request(1, "POST", "/a", false));
    c.extend(frame(kind::DATA, flag::PADDED, 1, &[2, b'x', b'y', 0, 0]));
    c.extend(frame(kind::DATA, flag::END_STREAM, 1, b"z"));
    c.extend(p.request(3, "GET", "/b", true));
    let mut s = settings(&[(1, 8192)]);
    s.extend(p.response(3, "200", false));
    s.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    s.extend(p.response(1, "201", true));
    s.extend(frame(kind::DATA, flag::END_STREAM, 3, b"hello"));
    let (whole, _) = run(&[(true, c.clone()), (false, s.clone())]);
    let mut script: Vec<(bool, Vec<u8>)> = c.iter().map(|b| (true, vec![*b])).collect();
    script.extend(s.iter().map(|b| (false, vec![*b])));
    let (bytes, _) = run(&script);
    let key = |e: &Exchange| {
        (
            e.h2.clone(),
            e.uri.clone(),
            e.status,
            e.request_body_len,
            e.response_body_len,
            e.incomplete,
        )
    };
    assert_eq!(whole.len(), 2);
    assert_eq!(
        whole.iter().map(key).collect::<Vec<_>>(),
        bytes.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(whole[0].request_body_len, 3, "padding removed");
}

#[test]
fn sensitive_values_split_across_data_frames_of_interleaved_streams_count_once() {
    let mut p = Peer::new();
    let mut c1 = preface();
    c1.extend(p.request(1, "GET", "/customers/1", true));
    c1.extend(p.request(3, "GET", "/customers/2", true));
    let mut s1 = settings(&[]);
    s1.extend(p.response(1, "200", false));
    s1.extend(p.response(3, "200", false));
    // Stream 1: an e-mail address and a card number, each cut between frames that
    // alternate with stream 3's (an IBAN, cut too).
    s1.extend(frame(kind::DATA, 0, 1, b"{\"email\":\"ann.lee@exa"));
    s1.extend(frame(kind::DATA, 0, 3, b"{\"iban\":\"DE89 3704 00"));
    s1.extend(frame(kind::DATA, 0, 1, b"mple.com\",\"card\":\"4111 1111 "));
    s1.extend(frame(kind::DATA, 0, 3, b"44 0532 0130 00\"}"));
    s1.extend(frame(kind::DATA, flag::END_STREAM, 1, b"1111 1111\"}"));
    s1.extend(frame(kind::DATA, flag::END_STREAM, 3, b""));
    let (ex, _) = run(&[(true, c1), (false, s1)]);
    assert_eq!(ex.len(), 2);
    let found = |i: usize| ex[i].sensitive.counts().map(|c| c.0);
    let one = ex
        .iter()
        .position(|e| e.h2.as_ref().unwrap().stream_id == 1)
        .unwrap();
    assert_eq!(found(one), Some([1, 1, 0, 0]));
    assert_eq!(found(1 - one), Some([0, 0, 1, 0]));
    assert_eq!(ex[0].sensitive.outcome, crate::sensitive::Outcome::Scanned);
}
