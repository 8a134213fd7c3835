//! Writes the hostile captures the memory-budget and state measurements use (see
//! README, "Hostile traffic"): floods of connections, half-open flows, clients,
//! paths and pipelined requests, and padded logins. Streams to the file, so a
//! million connections need no memory here.
//!
//! `cargo run --release --example hostile -- KIND N OUT.pcap`, KIND one of
//! `conns` (N connections, one request each, no response), `syn` (N SYN-only
//! flows), `clients` (N client addresses, one exchange each), `paths` (N distinct
//! paths, one exchange each), `pipelined` (one connection, N requests, no response),
//! `padded-70k` / `padded-900k` (N failed JSON logins, each with one padding header),
//! `long-paths` (N GETs of distinct 16 KB single-segment paths, answered 200),
//! `misses` (N requests from 1,000 clients on kept-alive connections, each a
//! distinct path answered 404, all within 50 s of packet time).

use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};

use apiwatch::decode::tcp_flags;
use apiwatch::synth::{Conversation, Seg, frame};

struct Out {
    w: BufWriter<std::fs::File>,
    ts: u64,
    /// Microseconds between two frames.
    step: u64,
}

impl Out {
    fn new(path: &str) -> std::io::Result<Out> {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        w.write_all(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0])?;
        w.write_all(&[0; 8])?;
        w.write_all(&262_144u32.to_le_bytes())?;
        w.write_all(&1u32.to_le_bytes())?;
        Ok(Out {
            w,
            ts: 1_780_000_000_000_000,
            step: 10,
        })
    }

    /// One frame, 10 µs after the previous one.
    fn seg(&mut self, s: &Seg) -> std::io::Result<()> {
        self.ts += self.step;
        let f = frame(s);
        self.w
            .write_all(&((self.ts / 1_000_000) as u32).to_le_bytes())?;
        self.w
            .write_all(&((self.ts % 1_000_000) as u32).to_le_bytes())?;
        self.w.write_all(&(f.len() as u32).to_le_bytes())?;
        self.w.write_all(&(f.len() as u32).to_le_bytes())?;
        self.w.write_all(&f)
    }

    fn all(&mut self, c: &Conversation) -> std::io::Result<()> {
        for s in &c.segs {
            self.seg(s)?;
        }
        Ok(())
    }
}

/// The i-th client: addresses in 10.0.0.0/8, ports cycling.
fn client(i: u64) -> (IpAddr, u16) {
    let ip = Ipv4Addr::from(0x0a00_0000 | ((i / 16) as u32 & 0x00ff_ffff));
    (
        IpAddr::V4(ip),
        20_000 + (i % 16) as u16 * 2_000 + (i / 16 / 0x0100_0000) as u16,
    )
}

const SERVER: (IpAddr, u16) = (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80)), 80);

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, n, path] = &args[..] else {
        eprintln!(
            "usage: hostile conns|syn|clients|paths|pipelined|padded-70k|padded-900k|long-paths|misses N OUT.pcap"
        );
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("N is a number");
    let mut out = Out::new(path)?;
    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    match kind.as_str() {
        "conns" => {
            for i in 0..n {
                let mut c = Conversation::new(client(i), SERVER, i as u32, 7);
                c.handshake()
                    .send(true, b"GET /api/items HTTP/1.1\r\nHost: api\r\n\r\n", 1460);
                out.all(&c)?;
            }
        }
        "syn" => {
            for i in 0..n {
                let (ip, port) = client(i);
                let mut s = Seg::new(ip, port, SERVER.0, SERVER.1);
                s.flags = tcp_flags::SYN;
                s.seq = i as u32;
                out.seg(&s)?;
            }
        }
        "clients" => {
            for i in 0..n {
                // One address each.
                let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i as u32 & 0x00ff_ffff)));
                let mut c = Conversation::new((ip, 40_000), SERVER, 1, 7);
                c.handshake()
                    .send(true, b"GET /api/items HTTP/1.1\r\nHost: api\r\n\r\n", 1460)
                    .send(false, ok, 1460)
                    .close();
                out.all(&c)?;
            }
        }
        "paths" => {
            for i in 0..n {
                let req = format!("GET /files/f{i:x}q/raw HTTP/1.1\r\nHost: api\r\n\r\n");
                let mut c = Conversation::new(client(i % 50), SERVER, i as u32, 7);
                c.handshake()
                    .send(true, req.as_bytes(), 1460)
                    .send(false, ok, 1460)
                    .close();
                out.all(&c)?;
            }
        }
        "pipelined" => {
            let mut c = Conversation::new(client(0), SERVER, 1, 7);
            c.handshake();
            out.all(&c)?;
            for i in 0..n {
                let req = format!("GET /api/items/{i} HTTP/1.1\r\nHost: api\r\n\r\n");
                c.segs.clear();
                c.send(true, req.as_bytes(), 1460);
                out.all(&c)?;
            }
        }
        "padded-70k" | "padded-900k" => {
            let size = if kind == "padded-70k" {
                70_000
            } else {
                900_000
            };
            let pad = "a".repeat(size);
            for i in 0..n {
                let body = format!("{{\"username\":\"admin\",\"password\":\"guess{i}\"}}");
                let req = format!(
                    "POST /api/login HTTP/1.1\r\nHost: api\r\nX-Pad: {pad}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let mut c = Conversation::new(client(7), SERVER, i as u32 * 4_000_000, 7);
                c.client.1 = 30_000 + i as u16;
                c.handshake()
                    .send(true, req.as_bytes(), 1460)
                    .send(
                        false,
                        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"error\":\"login\"}",
                        1460,
                    )
                    .close();
                out.all(&c)?;
            }
        }
        "long-paths" => {
            for i in 0..n {
                let path = format!("page-{i:010}-").repeat(1024);
                let req = format!("GET /{path} HTTP/1.1\r\nHost: api\r\n\r\n");
                let mut c = Conversation::new(client(i % 50), SERVER, i as u32, 7);
                // One segment for the whole request.
                c.handshake()
                    .send(true, req.as_bytes(), 65_000)
                    .send(false, ok, 1460)
                    .close();
                out.all(&c)?;
            }
        }
        "misses" => {
            const CLIENTS: u64 = 1000;
            // Two frames an exchange, all of them within 50 s.
            out.step = (50_000_000 / (2 * n.max(1))).max(1);
            let mut convs: Vec<Conversation> = (0..CLIENTS)
                .map(|c| {
                    let ip = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 | c as u32));
                    let mut conv = Conversation::new((ip, 41_000), SERVER, 1, 7);
                    conv.handshake();
                    conv
                })
                .collect();
            for c in &convs {
                out.all(c)?;
            }
            let miss = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            for i in 0..n {
                let c = &mut convs[(i % CLIENTS) as usize];
                c.segs.clear();
                let req = format!("GET /probe/{:x}/{i} HTTP/1.1\r\nHost: api\r\n\r\n", i % 977);
                c.send(true, req.as_bytes(), 1460).send(false, miss, 1460);
                out.all(c)?;
            }
        }
        other => {
            eprintln!("unknown kind {other}");
            std::process::exit(2);
        }
    }
    out.w.flush()
}
