//! Criterion benchmarks for the hot path: the HTTP message reader, request/response
//! pairing, TCP reassembly, and the whole packet-to-exchange pipeline over an
//! in-memory capture; HTTP/2 exchanges beside HTTP/1.1's, TLS record decryption and
//! the TLS handshake reader. Run with `cargo bench`; the end-to-end replay figure on a
//! large real capture comes from `scripts/bench-replay.sh`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use apiwatch::capture::file::FileSource;
use apiwatch::capture::{Packet, PacketSource};
use apiwatch::flow::FlowConfig;
use apiwatch::flow::reassembly::{Stream, StreamEvent};
use apiwatch::http::Connection;
use apiwatch::http::connection::Endpoints;
use apiwatch::http::parser::{Framing, MessageReader, Role, Step};
use apiwatch::pipeline::Pipeline;
use apiwatch::synth::Conversation;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A 48-byte JSON body, as its Content-Length says (it said 48 over a 47-byte body
/// until h25-h2tls: each request then ate the next one's `P`, and every request but
/// the first was read as method `OST`).
const REQUEST: &[u8] = b"POST /api/v1/login HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\nAccept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nContent-Type: application/json\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc\r\nCookie: session=0123456789abcdef\r\nContent-Length: 48\r\n\r\n{\"username\":\"alice\",\"password\":\"hunter2hunter!\"}";

fn response(body: usize, chunked: bool) -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 24 Nov 2026 02:00:00 GMT\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n".to_vec();
    if chunked {
        r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for part in vec![b'x'; body].chunks(4096) {
            r.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            r.extend_from_slice(part);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
    } else {
        r.extend_from_slice(format!("Content-Length: {body}\r\n\r\n").as_bytes());
        r.extend(std::iter::repeat_n(b'x', body));
    }
    r
}

fn endpoints() -> Endpoints {
    Endpoints {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        server_port: 80,
    }
}

fn reader(c: &mut Criterion) {
    let mut g = c.benchmark_group("http_reader");
    let stream: Vec<u8> = REQUEST.repeat(1000);
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("1000 pipelined requests, one buffer", |b| {
        b.iter(|| {
            let mut r = MessageReader::new(Role::Request);
            let mut data = stream.as_slice();
            let mut heads = 0;
            loop {
                match r.step(&mut data) {
                    Step::Head(_) => {
                        heads += 1;
                        r.set_framing(Framing::Length(48));
                    }
                    Step::NeedMore if data.is_empty() => break,
                    _ => {}
                }
            }
            black_box(heads)
        })
    });
    for (name, chunked) in [("content-length", false), ("chunked", true)] {
        let resp = response(32 * 1024, chunked);
        let stream = resp.repeat(100);
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_function(
            format!("100 x 32 KiB responses, {name}, 1448-byte segments"),
            |b| {
                b.iter(|| {
                    let mut r = MessageReader::new(Role::Response);
                    let mut body = 0usize;
                    for seg in stream.chunks(1448) {
                        let mut data = seg;
                        loop {
                            match r.step(&mut data) {
                                Step::Head(_) => r.set_framing(if chunked {
                                    Framing::Chunked
                                } else {
                                    Framing::Length(32 * 1024)
                                }),
                                Step::Body(b) => body += b.len(),
                                Step::NeedMore if data.is_empty() => break,
                                _ => {}
                            }
                        }
                    }
                    black_box(body)
                })
            },
        );
    }
    g.finish();
}

fn connection(c: &mut Criterion) {
    let mut g = c.benchmark_group("http_connection");
    let resp = response(512, false);
    let mut conn = Connection::new(endpoints(), false);
    let mut out = Vec::new();
    for i in 0..1000u64 {
        conn.client_data(REQUEST, i, &mut out);
        conn.server_data(&resp, i + 1, &mut out);
    }
    assert_eq!(out.len(), 1000);
    assert!(out.iter().all(|e| e.method.as_deref() == Some("POST")
        && e.status == Some(200)
        && e.request_body_len == 48));
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 request/response exchanges", |b| {
        b.iter(|| {
            let mut conn = Connection::new(endpoints(), false);
            let mut out = Vec::with_capacity(1000);
            for i in 0..1000u64 {
                conn.client_data(REQUEST, i, &mut out);
                conn.server_data(&resp, i + 1, &mut out);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

fn reassembly(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_reassembly");
    let payload = vec![b'x'; 1448];
    let n = 10_000u32;
    g.throughput(Throughput::Bytes(n as u64 * 1448));
    g.bench_function("in order, 1448-byte segments", |b| {
        b.iter(|| {
            let mut s = Stream::default();
            let mut bytes = 0usize;
            s.segment(0, 0x02, b"", 0, &mut |_: StreamEvent<'_>| {});
            for i in 0..n {
                s.segment(1 + i * 1448, 0x18, &payload, 0, &mut |ev: StreamEvent<
                    '_,
                >| {
                    if let apiwatch::flow::reassembly::StreamEvent::Data(d, _) = ev {
                        bytes += d.len();
                    }
                });
            }
            black_box(bytes)
        })
    });
    g.bench_function("pairs swapped (every other segment out of order)", |b| {
        b.iter(|| {
            let mut s = Stream::default();
            let mut bytes = 0usize;
            s.segment(0, 0x02, b"", 0, &mut |_: StreamEvent<'_>| {});
            for i in (0..n).step_by(2) {
                for j in [i + 1, i] {
                    s.segment(
                        1 + j * 1448,
                        0x18,
                        &payload,
                        0,
                        &mut |ev: StreamEvent<'_>| {
                            if let apiwatch::flow::reassembly::StreamEvent::Data(d, _) = ev {
                                bytes += d.len();
                            }
                        },
                    );
                }
            }
            black_box(bytes)
        })
    });
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    // 200 keep-alive connections of 20 exchanges each, as one pcap in memory.
    let resp = response(4096, false);
    let mut pcap = Vec::new();
    let mut wire = 0u64;
    for conn in 0..200u16 {
        let mut cv = Conversation::new(
            (
                IpAddr::V4(Ipv4Addr::new(10, 0, (conn >> 8) as u8, conn as u8)),
                40000 + conn,
            ),
            (IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)), 80),
            conn as u32 * 7919,
            conn as u32 * 104_729,
        );
        cv.handshake();
        for _ in 0..20 {
            cv.send(true, REQUEST, 1448).send(false, &resp, 1448);
        }
        cv.close();
        let file = cv.pcap(1_700_000_000_000_000_000 + conn as u64 * 1_000_000, 1000);
        if pcap.is_empty() {
            pcap = file;
        } else {
            pcap.extend_from_slice(&file[24..]);
        }
    }
    let mut probe =
        FileSource::from_reader("bench", Box::new(std::io::Cursor::new(pcap.clone()))).unwrap();
    while let Ok(Some(p)) = probe.next_packet() {
        wire += p.data.len() as u64;
    }
    g.throughput(Throughput::Bytes(wire));
    g.bench_function("4000 exchanges from an in-memory pcap", |b| {
        b.iter(|| {
            let mut src =
                FileSource::from_reader("bench", Box::new(std::io::Cursor::new(pcap.clone())))
                    .unwrap();
            let mut p = Pipeline::new(FlowConfig::default());
            let mut out = Vec::new();
            let mut n = 0usize;
            while let Ok(Some(pkt)) = src.next_packet() {
                let pkt: Packet<'_> = pkt;
                p.packet(&pkt, &mut out);
                n += out.len();
                out.clear();
            }
            p.finish(&mut out);
            black_box(n + out.len())
        })
    });
    g.finish();
}

/// 20,000 exchanges from 500 clients over 40 endpoints (object ids, logins), in
/// packet-time order over 2 s (10,000 exchanges/s).
fn api_exchanges() -> Vec<apiwatch::http::Exchange> {
    (0..20_000u64)
        .map(|i| {
            let client = (i * 7919 % 500) as u32;
            let login = i % 50 == 0;
            let uri = if login {
                "/api/login".to_string()
            } else {
                format!("/api/v1/res{}/{}?page={}", i % 40, i % 997, i % 3)
            };
            apiwatch::http::Exchange {
                ts: 1_700_000_000_000_000_000 + i * 100_000,
                client_ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + client)),
                client_port: 40000 + (i % 20000) as u16,
                server_ip: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)),
                server_port: 80,
                trans_depth: 1,
                method: Some(if login { "POST" } else { "GET" }.into()),
                uri: Some(uri.into()),
                version: Some("1.1".into()),
                request_headers: apiwatch::http::parser::Headers {
                    host: Some("api.example.com".into()),
                    user_agent: Some("bench/1.0".into()),
                    ..Default::default()
                },
                request_body_len: if login { 40 } else { 0 },
                request_body_prefix: if login {
                    br#"{"username":"alice","password":"x"}"#.to_vec()
                } else {
                    Vec::new()
                },
                body_credentials: None,
                response_body_prefix: Vec::new(),
                status: Some(if login { 401 } else { 200 }),
                status_msg: None,
                response_version: None,
                interim: None,
                response_headers: None,
                response_body_len: Some(512),
                response_ts: None,
                incomplete: false,
                flow: Default::default(),
                tls: None,
                decrypted: false,
                sensitive: Default::default(),
                sealed: None,
                h2: None,
            }
        })
        .collect()
}

/// Stage 2: the engine's global half alone (what stays sequential however many
/// shards run), the whole engine inline, and with two shard threads.
fn detection(c: &mut Criterion) {
    use apiwatch::detect::{DetectConfig, Engine};
    let mut g = c.benchmark_group("detection");
    let exchanges = api_exchanges();
    g.throughput(Throughput::Elements(exchanges.len() as u64));
    g.sample_size(20);
    g.bench_function("global half (route only)", |b| {
        b.iter(|| {
            let mut e = Engine::new(DetectConfig::default());
            let mut out = Vec::new();
            for ex in &exchanges {
                black_box(e.route(ex, &mut out));
            }
            out.len()
        })
    });
    for shards in [1, 2] {
        g.bench_function(format!("whole engine, {shards} shard(s)"), |b| {
            b.iter_batched(
                || exchanges.clone(),
                |owned| {
                    let mut e = Engine::sharded(DetectConfig::default(), shards);
                    let mut out = Vec::new();
                    for ex in owned {
                        if let Some(r) = e.route(&ex, &mut out) {
                            e.judge(r, std::borrow::Cow::Owned(ex), &mut out);
                        }
                    }
                    e.finish(&mut out);
                    out.len()
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Stage 3: one exchange-log record per exchange, in each form, into memory.
fn records(c: &mut Criterion) {
    use apiwatch::export::exchange_log::{ExchangeFormat, ExchangeLog};
    let mut g = c.benchmark_group("exchange record");
    let exchanges = api_exchanges();
    g.throughput(Throughput::Elements(exchanges.len() as u64));
    g.sample_size(20);
    for (name, format) in [
        ("apiwatch", ExchangeFormat::Apiwatch),
        ("eve", ExchangeFormat::Eve),
        ("zeek", ExchangeFormat::Zeek),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut log = ExchangeLog::new(Box::new(std::io::sink()), format, None);
                for ex in &exchanges {
                    let _ = log.write(ex, None, None);
                }
                log.written
            })
        });
    }
    g.finish();
}

/// An HTTP/2 frame: 9-byte header, then the payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK header block as a real encoder writes a repeated message: the first
/// time each field is a literal with incremental indexing (new name, no Huffman),
/// after that an index into the dynamic table (the last field added is 62).
fn hpack_block(fields: &[(&str, &str)], first: bool) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if first {
            b.push(0x40);
            for s in [name, value] {
                assert!(s.len() < 127);
                b.push(s.len() as u8);
                b.extend_from_slice(s.as_bytes());
            }
        } else {
            let index = 62 + (fields.len() - 1 - i);
            assert!(index < 127);
            b.push(0x80 | index as u8);
        }
    }
    b
}

/// The HTTP/1.1 `connection` bench's exchange over HTTP/2 with prior knowledge: the
/// same request fields and 48-byte JSON body, the same response fields and 512-byte
/// body, one stream each (HEADERS then DATA with END_STREAM, both ways).
fn h2_connection_bytes(n: u32) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let req: &[(&str, &str)] = &[
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "api.example.com"),
        (":path", "/api/v1/login"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        ),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate, br"),
        ("content-type", "application/json"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc"),
        ("cookie", "session=0123456789abcdef"),
        ("content-length", "48"),
    ];
    let resp: &[(&str, &str)] = &[
        (":status", "200"),
        ("server", "nginx"),
        ("date", "Tue, 24 Nov 2026 02:00:00 GMT"),
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
        ("content-length", "512"),
    ];
    let body = br#"{"username":"alice","password":"hunter2hunter!"}"#;
    assert_eq!(body.len(), 48);
    let (mut client, mut server) = (Vec::new(), Vec::new());
    for i in 0..n {
        let id = 2 * i + 1;
        let mut c = Vec::new();
        let mut s = Vec::new();
        if i == 0 {
            c.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
            c.extend(h2_frame(4, 0, 0, b""));
            s.extend(h2_frame(4, 0, 0, b""));
            s.extend(h2_frame(4, 1, 0, b""));
        }
        c.extend(h2_frame(1, 0x4, id, &hpack_block(req, i == 0)));
        c.extend(h2_frame(0, 0x1, id, body));
        s.extend(h2_frame(1, 0x4, id, &hpack_block(resp, i == 0)));
        s.extend(h2_frame(0, 0x1, id, &[b'x'; 512]));
        client.push(c);
        server.push(s);
    }
    (client, server)
}

/// HTTP/2 (prior knowledge) through the same `http::Connection` as the HTTP/1.1
/// bench: 1000 streams on one connection, each request and response in one segment.
fn h2_connection(c: &mut Criterion) {
    let mut g = c.benchmark_group("h2_connection");
    let (client, server) = h2_connection_bytes(1000);
    // The stream is read as HTTP/2 and yields the exchanges.
    let mut conn = Connection::new(endpoints(), false);
    let mut out = Vec::new();
    for (i, (cl, sv)) in client.iter().zip(&server).enumerate() {
        conn.client_data(cl, i as u64, &mut out);
        conn.server_data(sv, i as u64 + 1, &mut out);
    }
    conn.flush(&mut out);
    assert_eq!(out.len(), 1000);
    assert!(out.iter().all(|e| e.status == Some(200)
        && e.request_body_len == 48
        && e.uri.as_deref() == Some("/api/v1/login")));
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    g.bench_function("1000 streams on one connection", |b| {
        b.iter(|| {
            let mut conn = Connection::new(endpoints(), false);
            let mut out = Vec::with_capacity(1000);
            for (i, (cl, sv)) in client.iter().zip(&server).enumerate() {
                conn.client_data(cl, i as u64, &mut out);
                conn.server_data(sv, i as u64 + 1, &mut out);
            }
            conn.flush(&mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

/// RFC 8448 §3's TLS 1.3 traffic secrets (SHA-256), under a made-up client random.
const TLS_CLIENT_RANDOM: [u8; 32] = [7; 32];
const S_HS: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
const S_AP: &str = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A TLS 1.3 record: `content` of `kind` sealed with a traffic secret at `seq`.
fn seal13(
    alg: &'static ring::aead::Algorithm,
    secret: &[u8],
    seq: u64,
    kind: u8,
    content: &[u8],
) -> Vec<u8> {
    use apiwatch::tls::decrypt::{Hash, expand_label};
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
    let mut key = vec![0u8; alg.key_len()];
    let mut iv = [0u8; 12];
    expand_label(Hash::Sha256, secret, b"key", b"", &mut key).unwrap();
    expand_label(Hash::Sha256, secret, b"iv", b"", &mut iv).unwrap();
    for (n, s) in iv[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    let mut inner = content.to_vec();
    inner.push(kind);
    let len = (inner.len() + 16) as u16;
    let header = [23, 3, 3, (len >> 8) as u8, len as u8];
    LessSafeKey::new(UnboundKey::new(alg, &key).unwrap())
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(header),
            &mut inner,
        )
        .unwrap();
    let mut rec = header.to_vec();
    rec.extend_from_slice(&inner);
    rec
}

/// TLS record decryption through `tls::decrypt::Decryptor` (what a connection with
/// secrets in the key log runs): a server's TLS 1.3 flight (a ServerHello record in
/// clear, its Finished under the handshake secret) then 64 full application data
/// records (16 KiB each, 1 MiB), in 1448-byte segments; AES-128-GCM and ChaCha20.
fn tls_decrypt(c: &mut Criterion) {
    use apiwatch::tls::KeyLog;
    use apiwatch::tls::decrypt::{Decryptor, Hellos, Outcome};
    let mut g = c.benchmark_group("tls_decrypt");
    g.sample_size(20);
    let cr = "07".repeat(32);
    let log = KeyLog::new();
    log.read(
        format!(
            "SERVER_HANDSHAKE_TRAFFIC_SECRET {cr} {S_HS}\nSERVER_TRAFFIC_SECRET_0 {cr} {S_AP}\n"
        )
        .as_bytes(),
    );
    let log = std::sync::Arc::new(log);
    let content = vec![b'x'; 16 * 1024];
    for (name, suite, alg) in [
        ("TLS 1.3 AES-128-GCM", 0x1301, &ring::aead::AES_128_GCM),
        (
            "TLS 1.3 ChaCha20-Poly1305",
            0x1303,
            &ring::aead::CHACHA20_POLY1305,
        ),
    ] {
        let hellos = Hellos {
            client_random: TLS_CLIENT_RANDOM,
            server_random: [9; 32],
            version: 0x0304,
            cipher: suite,
            encrypt_then_mac: false,
        };
        let mut flight = vec![22, 3, 3, 0, 4, 2, 0, 0, 0];
        let mut finished = vec![20, 0, 0, 32];
        finished.extend_from_slice(&[0xaa; 32]);
        flight.extend(seal13(alg, &unhex(S_HS), 0, 22, &finished));
        for seq in 0..64 {
            flight.extend(seal13(alg, &unhex(S_AP), seq, 23, &content));
        }
        let run = || {
            let mut d = Decryptor::new(std::sync::Arc::clone(&log));
            let mut bytes = 0usize;
            for seg in flight.chunks(1448) {
                d.data(false, seg, Some(&hellos), &mut |p| bytes += p.len());
            }
            (d.outcome(), bytes)
        };
        assert_eq!(run(), (Some(Outcome::Decrypted), 64 * content.len()));
        g.throughput(Throughput::Bytes(64 * content.len() as u64));
        g.bench_function(
            format!("{name}, 64 x 16 KiB records, 1448-byte segments"),
            |b| b.iter(|| black_box(run())),
        );
    }
    g.finish();
}

/// Each TCP segment with a payload of the `n`th connection of a capture, in order:
/// (from the client, payload). Ethernet (`tcpdump -i lo`), IPv4, TCP only.
fn connection_segments(path: &str, n: usize) -> Vec<(bool, Vec<u8>)> {
    let file = std::fs::read(path).unwrap();
    let mut src = FileSource::from_reader("bench", Box::new(std::io::Cursor::new(file))).unwrap();
    let mut clients: Vec<u16> = Vec::new();
    let mut segs = Vec::new();
    while let Ok(Some(p)) = src.next_packet() {
        let d = p.data;
        assert_eq!(
            (p.linktype, d[12], d[13]),
            (1, 0x08, 0x00),
            "Ethernet, IPv4"
        );
        let ip = &d[14..];
        let ihl = usize::from(ip[0] & 0xf) * 4;
        let tcp = &ip[ihl..];
        let (sport, dport) = (
            u16::from_be_bytes([tcp[0], tcp[1]]),
            u16::from_be_bytes([tcp[2], tcp[3]]),
        );
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let payload = &ip[ihl + usize::from(tcp[12] >> 4) * 4..total];
        if tcp[13] & 0x12 == 0x02 {
            clients.push(sport);
        }
        let from_client = clients.get(n) == Some(&sport);
        if (from_client || clients.get(n) == Some(&dport)) && !payload.is_empty() {
            segs.push((from_client, payload.to_vec()));
        }
    }
    segs
}

/// The TLS handshake reader (SNI, versions, ALPN, JA4 inputs, the TLS 1.2
/// certificate chain) over real connections of captures/h2-tls.pcap, segment by
/// segment until the handshake is done (encrypted records both ways).
fn tls_handshake(c: &mut Criterion) {
    use apiwatch::tls::Reader;
    let mut g = c.benchmark_group("tls_handshake");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/h2-tls.pcap");
    // The capture's first connection is curl over TLS 1.3, its third over TLS 1.2.
    for (name, n, version) in [
        (
            "TLS 1.3, curl (ClientHello, ServerHello, encrypted flight)",
            0,
            0x0304,
        ),
        (
            "TLS 1.2, curl (ClientHello, ServerHello, Certificate...)",
            2,
            0x0303,
        ),
    ] {
        let segs = connection_segments(path, n);
        let run = || {
            let mut r = Reader::new(0);
            for (from_client, seg) in &segs {
                r.data(*from_client, seg);
                if r.is_done() {
                    break;
                }
            }
            r.finish()
        };
        let s = run();
        assert_eq!(
            (s.version(), s.established()),
            (Some(version), true),
            "{name}"
        );
        g.bench_function(name, |b| b.iter(|| black_box(run())));
    }
    g.finish();
}

criterion_group!(
    benches,
    reader,
    connection,
    h2_connection,
    tls_decrypt,
    tls_handshake,
    reassembly,
    pipeline,
    detection,
    records
);
criterion_main!(benches);
