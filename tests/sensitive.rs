//! Sensitive values in responses (issue #26, data exposure): a generated capture of
//! JSON answers with known numbers of e-mail addresses, card numbers, IBANs and SSNs,
//! sent in small TCP segments and (half of them) in small chunks so that values are
//! cut across both; answers full of look-alikes that must not count; a compressed
//! and a binary answer that are not scanned. The per-endpoint metrics and the
//! inventory's `x-apiwatch.sensitive` must say what the server sent, and neither
//! the exchange log nor any output may carry a value.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use apiwatch::decode::linktype;
use apiwatch::synth::{Conversation, PcapWriter, frame};
use serde_json::{Value, json};

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 2));
const T0: u64 = 1_795_428_000_000_000_000;

const CARDS: [&str; 4] = [
    "4111 1111 1111 1111",
    "5555555555554444",
    "3782-822463-10005",
    "6011000990139424",
];
const IBANS: [&str; 2] = ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"];

/// Look-alikes: a millisecond timestamp, a non-Luhn 16-digit id, a UUID, phone
/// numbers, a version, a dotless domain, an invalid SSN and IBAN, a date.
const DECOYS: &str = r#""created":1735689600123,"ref":4111111111111112,"uuid":"123e4567-e89b-12d3-a456-426614174000","phone":"+1-415-555-2671","tel":"(415) 555-2671","version":"4.1.1","mail":"root@localhost","ssn_masked":"000-12-3456","acct":"DE89370400440532013001","day":"2026-01-01""#;

/// Customer `i`'s answer and what it holds: [email, card, iban, national_id].
fn customer(i: usize) -> (String, [u64; 4]) {
    let mut n = [1, 0, 0, 0];
    let mut fields = vec![
        format!(r#""id":{i}"#),
        format!(r#""email":"customer.{i}+tag@mail.example.com""#),
    ];
    if i.is_multiple_of(2) {
        fields.push(format!(r#""card":"{}""#, CARDS[i / 2 % CARDS.len()]));
        n[1] += 1;
    }
    if i.is_multiple_of(3) {
        fields.push(format!(r#""iban":"{}""#, IBANS[i / 3 % IBANS.len()]));
        n[2] += 1;
    }
    if i.is_multiple_of(4) {
        fields.push(r#""ssn":"078-05-1120""#.to_string());
        n[3] += 1;
    }
    if i.is_multiple_of(5) {
        fields.push(format!(
            r#""contacts":["ops@corp.example.org","billing@corp.example.org"],"cards":[{},{}]"#,
            "4012888888881881", "5105105105105100"
        ));
        n[0] += 2;
        n[1] += 2;
    }
    fields.push(DECOYS.to_string());
    (format!("{{{}}}", fields.join(",")), n)
}

fn request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: api.example\r\nAccept: */*\r\n\r\n").into_bytes()
}

/// A 200 answer; `chunk`: sent chunked in pieces of that many bytes.
fn answer(body: &str, headers: &str, chunk: Option<usize>) -> Vec<u8> {
    match chunk {
        None => format!(
            "HTTP/1.1 200 OK\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        Some(k) => {
            let mut v = format!("HTTP/1.1 200 OK\r\n{headers}Transfer-Encoding: chunked\r\n\r\n")
                .into_bytes();
            for piece in body.as_bytes().chunks(k) {
                v.extend(format!("{:x}\r\n", piece.len()).bytes());
                v.extend(piece);
                v.extend(b"\r\n");
            }
            v.extend(b"0\r\n\r\n");
            v
        }
    }
}

/// The capture and the values the server sent, per endpoint.
fn capture() -> (Vec<u8>, BTreeMap<&'static str, [u64; 4]>) {
    const JSON: &str = "Content-Type: application/json; charset=utf-8\r\n";
    let mut exchanges: Vec<(String, Vec<u8>)> = Vec::new();
    let mut truth: BTreeMap<&'static str, [u64; 4]> = BTreeMap::new();
    for i in 1..=24 {
        let (body, n) = customer(i);
        let chunk = (i % 2 == 1).then_some(5 + i % 4);
        exchanges.push((format!("/api/customers/{i}"), answer(&body, JSON, chunk)));
        let t = truth.entry("GET /api/customers/{id}").or_default();
        for k in 0..4 {
            t[k] += n[k];
        }
        // Look-alikes only.
        let body = format!(r#"{{"order":{i},{DECOYS}}}"#);
        exchanges.push((format!("/api/orders/{i}"), answer(&body, JSON, chunk)));
    }
    // Values behind a content coding or in a binary type are not scanned.
    let plain = r#"{"email":"a@example.com","card":"4111111111111111"}"#;
    let gzip = format!("{JSON}Content-Encoding: gzip\r\n");
    exchanges.push(("/api/export".into(), answer(plain, &gzip, None)));
    let binary = "Content-Type: application/octet-stream\r\n";
    exchanges.push(("/api/files/7".into(), answer(plain, binary, None)));

    let mut w = PcapWriter::new(linktype::ETHERNET);
    for (i, (path, ans)) in exchanges.iter().enumerate() {
        let client = IpAddr::V4(Ipv4Addr::new(10, 88, 1, 1 + (i / 2 % 4) as u8));
        let mut c = Conversation::new(
            (client, 30000 + i as u16),
            (SERVER, 8080),
            5000 + i as u32 * 11,
            90_000,
        );
        // Small segments (7-19 bytes): every value of the answer is cut somewhere.
        c.handshake()
            .send(true, &request(path), 1460)
            .send(false, ans, 7 + i % 13)
            .close();
        for (j, s) in c.segs.iter().enumerate() {
            w.packet(T0 + i as u64 * 400_000_000 + j as u64 * 100_000, &frame(s));
        }
    }
    (w.bytes, truth)
}

#[test]
fn sensitive_value_counts_per_endpoint_match_what_the_server_sent() {
    let dir = common::fresh_dir("apiwatch-sensitive");
    let pcap = dir.join("sensitive.pcap");
    let (bytes, truth) = capture();
    std::fs::write(&pcap, bytes).unwrap();
    let (inventory, om, exchanges) = (
        dir.join("inventory.json"),
        dir.join("metrics.om"),
        dir.join("exchanges.json"),
    );
    let out = common::bin()
        .arg("-r")
        .arg(&pcap)
        .args(["-q", "--alerts", "/dev/null", "--endpoints"])
        .arg(&inventory)
        .arg("--openmetrics-out")
        .arg(&om)
        .arg("--exchanges")
        .arg(&exchanges)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let customers = truth["GET /api/customers/{id}"];
    assert_eq!(customers, [32, 20, 8, 6], "the capture's ground truth");

    // The inventory: per operation, the kinds seen only.
    let doc: Value = serde_json::from_slice(&std::fs::read(&inventory).unwrap()).unwrap();
    let x = |path: &str| doc["paths"][path]["get"]["x-apiwatch"].clone();
    assert_eq!(
        x("/api/customers/{id}")["sensitive"],
        json!({"email": 32, "card": 20, "iban": 8, "national_id": 6}),
        "{}",
        x("/api/customers/{id}")
    );
    assert_eq!(x("/api/customers/{id}")["requests"], 24);
    for path in ["/api/orders/{id}", "/api/export", "/api/files/{id}"] {
        let op = x(path);
        assert!(op["requests"].as_u64().is_some(), "{path} in the inventory");
        assert!(op.get("sensitive").is_none(), "{path}: {op}");
    }

    // The metrics: the same numbers, under bounded endpoint labels (the busiest
    // templates get their own once used enough; the first requests count as other).
    // OpenMetrics on packet time: each series' samples in time order, the last
    // one the replay's end.
    let text = std::fs::read_to_string(&om).unwrap();
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        // Label values may hold spaces (`GET /a`): the series ends at its `}`.
        let end = line
            .rfind('}')
            .map_or_else(|| line.find(' ').unwrap_or(0), |i| i + 1);
        let (series, rest) = line.split_at(end);
        if let Some(n) = rest.split_whitespace().next() {
            last.insert(series, n);
        }
    }
    let mut values: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut responses = 0;
    let mut scans: BTreeMap<String, u64> = BTreeMap::new();
    for (series, n) in last {
        let label = |name: &str| {
            series
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        let n: u64 = n.parse().unwrap_or(0);
        if series.starts_with("apiwatch_sensitive_values_total{") {
            values.insert((label("endpoint"), label("kind")), n);
        } else if series.starts_with("apiwatch_sensitive_responses_total{") {
            responses += n;
        } else if series.starts_with("apiwatch_sensitive_scans_total{") {
            scans.insert(label("outcome"), n);
        }
    }
    for (k, kind) in ["email", "card", "iban", "national_id"].iter().enumerate() {
        let sum: u64 = values
            .iter()
            .filter(|((_, kk), _)| kk == kind)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(sum, customers[k], "{kind}: {values:?}");
    }
    assert!(
        values
            .keys()
            .all(|(e, _)| e == "GET /api/customers/{id}" || e == "other"),
        "{values:?}"
    );
    assert!(
        values.contains_key(&("GET /api/customers/{id}".to_string(), "card".to_string())),
        "the busy template has its own label: {values:?}"
    );
    // Every customer answer had at least its e-mail address.
    assert_eq!(responses, 24);
    assert_eq!(scans.get("scanned"), Some(&48), "{scans:?}");
    assert_eq!(scans.get("compressed"), Some(&1), "{scans:?}");
    assert_eq!(scans.get("not_text"), Some(&1), "{scans:?}");

    // Counted, never written: no value reaches any output.
    let outputs = [
        std::fs::read_to_string(&exchanges).unwrap(),
        std::fs::read_to_string(&inventory).unwrap(),
        text.clone(),
    ];
    for o in &outputs {
        for v in [
            "example.com",
            "4111",
            "5555555555554444",
            "DE89",
            "078-05-1120",
        ] {
            assert!(!o.contains(v), "{v} written out");
        }
    }
}
