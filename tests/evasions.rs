//! Brute force dressed up to slip past the sensor (issue #22): twenty failed logins
//! from one client, each on its own connection, one second apart, answered 401. The
//! plain run raises one `brute_force`; every disguise must raise it too, and every
//! attempt must still be in the exchange log. Each disguise is one a real server
//! accepts: the padding is read by the server, the escapes decoded, the path routed.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use apiwatch::decode::{linktype, tcp_flags};
use apiwatch::synth::{Conversation, PcapWriter, frame};
use serde_json::Value;

const ATTEMPTS: usize = 20;
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
const SERVER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 2));
const REFUSED: &[u8] = b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 33\r\n\r\n{\"error\":\"invalid credentials\"}\r\n";

/// How one attempt is disguised.
struct Disguise {
    name: &'static str,
    /// The client address of attempt `i`.
    client: fn(usize) -> IpAddr,
    /// The request of attempt `i`.
    request: fn(usize) -> Vec<u8>,
    /// A FIN at the request's sequence number that the server never takes.
    spoofed_fin: bool,
}

fn v4_client(_: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 77, 1, 20))
}

fn post(path: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: api.example\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn json_login(i: usize) -> Vec<u8> {
    post(
        "/api/login",
        "application/json",
        &format!(r#"{{"username":"alice","password":"guess{i}"}}"#),
    )
}

fn pad() -> String {
    "x".repeat(3000)
}

fn disguises() -> Vec<Disguise> {
    vec![
        Disguise {
            name: "plain",
            client: v4_client,
            request: json_login,
            spoofed_fin: false,
        },
        Disguise {
            name: "3,000-byte JSON field first",
            client: v4_client,
            request: |i| {
                post(
                    "/api/login",
                    "application/json",
                    &format!(
                        r#"{{"note":"{}","username":"alice","password":"g{i}"}}"#,
                        pad()
                    ),
                )
            },
            spoofed_fin: false,
        },
        Disguise {
            name: "3,000-byte form field first",
            client: v4_client,
            request: |i| {
                post(
                    "/api/login",
                    "application/x-www-form-urlencoded",
                    &format!("note={}&username=alice&password=g{i}", pad()),
                )
            },
            spoofed_fin: false,
        },
        Disguise {
            name: "decoy nested 33 deep",
            client: v4_client,
            request: |i| {
                let decoy = format!("{}1{}", "[".repeat(33), "]".repeat(33));
                post(
                    "/api/login",
                    "application/json",
                    &format!(r#"{{"d":{decoy},"username":"alice","password":"g{i}"}}"#),
                )
            },
            spoofed_fin: false,
        },
        Disguise {
            name: "escaped JSON keys",
            client: v4_client,
            request: |i| {
                post(
                    "/api/login",
                    "application/json",
                    &format!(r#"{{"us\u0065rname":"alice","p\u0061ssword":"g{i}"}}"#),
                )
            },
            spoofed_fin: false,
        },
        Disguise {
            name: "percent-encoded form keys",
            client: v4_client,
            request: |i| {
                post(
                    "/api/login",
                    "application/x-www-form-urlencoded",
                    &format!("%75sername=alice&pass%77ord=g{i}"),
                )
            },
            spoofed_fin: false,
        },
        Disguise {
            name: "multipart/form-data",
            client: v4_client,
            request: |i| {
                let body = format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n\
                     --XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ng{i}\r\n--XyZ--\r\n"
                );
                post("/api/login", "multipart/form-data; boundary=XyZ", &body)
            },
            spoofed_fin: false,
        },
        Disguise {
            name: "percent-encoded login path",
            client: v4_client,
            request: |i| {
                post(
                    "/api/%6cogin",
                    "application/json",
                    &format!(r#"{{"username":"alice","password":"g{i}"}}"#),
                )
            },
            spoofed_fin: false,
        },
        Disguise {
            name: "dot segments and doubled slashes",
            client: v4_client,
            request: |i| {
                let path = [
                    "/api/./login",
                    "//api//login",
                    "/api/x/../login",
                    "/api;v=1/login",
                ][i % 4];
                post(
                    path,
                    "application/json",
                    &format!(r#"{{"username":"alice","password":"g{i}"}}"#),
                )
            },
            spoofed_fin: false,
        },
        Disguise {
            name: "Content-Length list",
            client: v4_client,
            request: |i| {
                let body = format!(r#"{{"username":"alice","password":"g{i:04}"}}"#);
                format!(
                    "POST /api/login HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\nContent-Length: {0}, {0}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            },
            spoofed_fin: false,
        },
        Disguise {
            name: "spoofed FIN before the request",
            client: v4_client,
            request: json_login,
            spoofed_fin: true,
        },
        Disguise {
            name: "20 addresses of one IPv6 /64",
            client: |i| {
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0x77,
                    1,
                    (i as u16).wrapping_mul(7919),
                    0xabcd,
                    i as u16,
                    1,
                ))
            },
            request: json_login,
            spoofed_fin: false,
        },
    ]
}

/// The capture of one disguise: each attempt on its own connection, a second apart.
fn capture(d: &Disguise) -> Vec<u8> {
    let mut w = PcapWriter::new(linktype::ETHERNET);
    let t0 = 1_795_428_000_000_000_000u64;
    for i in 0..ATTEMPTS {
        let client = (d.client)(i);
        let server = if client.is_ipv6() { SERVER6 } else { SERVER };
        let mut c = Conversation::new(
            (client, 40000 + i as u16),
            (server, 8080),
            1000 + i as u32 * 7,
            9000,
        );
        c.handshake();
        if d.spoofed_fin {
            let mut fin = c.segs[c.segs.len() - 1].clone();
            fin.flags = tcp_flags::FIN | tcp_flags::ACK;
            c.segs.push(fin);
        }
        c.send(true, &(d.request)(i), 1460)
            .send(false, REFUSED, 1460)
            .close();
        for (j, s) in c.segs.iter().enumerate() {
            w.packet(
                t0 + i as u64 * 1_000_000_000 + j as u64 * 1_000_000,
                &frame(s),
            );
        }
    }
    w.bytes
}

fn run(d: &Disguise) -> (Vec<Value>, Vec<Value>) {
    let dir = common::fresh_dir("apiwatch-evasions");
    let pcap = dir.join(format!("{}.pcap", d.name.replace([' ', '/', ','], "_")));
    std::fs::write(&pcap, capture(d)).unwrap();
    let alerts = dir.join("alerts.json");
    let out = common::bin()
        .arg("-r")
        .arg(&pcap)
        .args(["--exchanges", "-", "-q", "--alerts"])
        .arg(&alerts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        d.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let exchanges = common::parse_lines(&out.stdout);
    let alerts = common::parse_lines(&std::fs::read(&alerts).unwrap());
    (exchanges, alerts)
}

#[test]
fn every_disguised_brute_force_is_caught() {
    let mut missed = Vec::new();
    for d in disguises() {
        let (exchanges, alerts) = run(&d);
        assert_eq!(
            exchanges.len(),
            ATTEMPTS,
            "{}: every attempt is logged",
            d.name
        );
        for e in &exchanges {
            assert_eq!(e["status"], 401, "{}: {e}", d.name);
            assert!(
                e["method"] == "POST" && e["request_body_len"].as_u64() > Some(20),
                "{}: {e}",
                d.name
            );
        }
        let kinds: Vec<&str> = alerts
            .iter()
            .filter_map(|a| a["alert"]["context"]["apiwatch"]["kind"].as_str())
            .collect();
        if !kinds.contains(&"brute_force") {
            missed.push(format!("{}: {kinds:?}", d.name));
        }
        // Nothing of the credentials leaves the sensor.
        let text = format!("{exchanges:?}{alerts:?}");
        assert!(!text.contains("alice"), "{}", d.name);
    }
    assert!(missed.is_empty(), "missed: {missed:#?}");
}
