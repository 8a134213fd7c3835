//! Criterion benchmarks for the hot path: the HTTP message reader, request/response
//! pairing, TCP reassembly, and the whole packet-to-exchange pipeline over an
//! in-memory capture. Run with `cargo bench`; the end-to-end replay figure on a large
//! real capture comes from `scripts/bench-replay.sh`.

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

const REQUEST: &[u8] = b"POST /api/v1/login HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\nAccept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nContent-Type: application/json\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc\r\nCookie: session=0123456789abcdef\r\nContent-Length: 48\r\n\r\n{\"username\":\"alice\",\"password\":\"hunter2hunter\"}";

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

criterion_group!(
    benches, reader, connection, reassembly, pipeline, detection, records
);
criterion_main!(benches);
