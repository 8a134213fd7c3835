use super::*;
use crate::tls::ClientHello;

const MS: Nanos = 1_000_000;

fn record(client: u8, port: u16, ts: Nanos, ja4: &str, closed: Option<Closed>) -> Exchange {
    Exchange {
        ts,
        client_ip: IpAddr::from([10, 0, 0, client]),
        client_port: port,
        server_ip: IpAddr::from([10, 0, 0, 2]),
        server_port: 443,
        tls: Some(Box::new(Session {
            start: ts,
            client: Some(ClientHello {
                sni: Some("api.example.test".into()),
                ja4: ja4.into(),
                ..Default::default()
            }),
            outcome: crate::tls::Outcome::Established,
            closed,
            ..Default::default()
        })),
        ..Exchange::vacant()
    }
}

fn closed(start: Nanos, dur: Nanos, client_bytes: u64, server_bytes: u64) -> Option<Closed> {
    Some(Closed {
        start,
        end: start + dur,
        client_bytes,
        server_bytes,
        client_segments: 2,
        server_segments: 2,
    })
}

/// Feeds connections (start record, then end record) of one client; returns the
/// alerts.
fn run(conns: impl Iterator<Item = (Nanos, Nanos, u64, u64)>, client: u8) -> Vec<Alert> {
    let cfg = DetectConfig::default();
    let mut d = Encrypted::default();
    let id = ClientId::Ip(IpAddr::from([10, 0, 0, client]));
    let mut out = Vec::new();
    for (i, (start, dur, cb, sb)) in conns.enumerate() {
        let port = 40000 + (i % 20000) as u16;
        d.observe(
            &cfg,
            &record(client, port, start, "t13d1516h2_aaa_bbb", None),
            id,
            1,
            &mut out,
        );
        let end = record(
            client,
            port,
            start + dur,
            "t13d1516h2_aaa_bbb",
            closed(start, dur, cb, sb),
        );
        d.observe(&cfg, &end, id, 1, &mut out);
    }
    out
}

#[test]
fn a_reconnect_flood_is_a_burst_a_browser_page_load_is_not() {
    // 8 connections at once, every 30 s: a browser.
    let page = (0..40u64).map(|i| {
        (
            (i / 8) * 30_000 * MS + (i % 8) * MS,
            2_000 * MS,
            3_000,
            40_000,
        )
    });
    assert!(run(page, 10).is_empty());
    // 80 connections a second for 2 s (being a tool's pace, they may also read as
    // attempts).
    let flood = (0..160u64).map(|i| (60_000 * MS + i * 12 * MS, 5 * MS, 300, 20_000 + i * 97));
    let a: Vec<Alert> = run(flood, 11)
        .into_iter()
        .filter(|a| a.finding.kind == Kind::Burst)
        .collect();
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].finding.evidence["encrypted"], true);
    assert_eq!(a[0].host.as_deref(), Some("api.example.test"));
    assert!(a[0].method.is_none() && a[0].uri.is_none());
}

#[test]
fn attempts_of_varying_size_answered_alike_are_repeated_attempts() {
    // Four connections a second, a GET (500 bytes) then a POST (600-611 bytes:
    // passwords of different lengths) per attempt, answers 420 and 900 bytes: a
    // guessing tool.
    let guesses = (0..40u64).map(|i| {
        let post = i % 2 == 1;
        let size = if post { 600 + (i * 7) % 12 } else { 500 };
        (i * 250 * MS, 40 * MS, size, if post { 420 } else { 900 })
    });
    let a = run(guesses, 12);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].finding.kind, Kind::BruteForce);
    let ev = &a[0].finding.evidence;
    assert_eq!(ev["encrypted"], true);
    assert!(ev["connections"].as_u64().unwrap() >= 20);
    assert_eq!(ev["request_bytes"].as_array().unwrap().len(), 2);
}

#[test]
fn a_poller_repeating_one_request_is_no_attempt() {
    // A health check on a fresh connection every second.
    let poll = (0..120u64).map(|i| (i * 1_000 * MS, 30 * MS, 517, 800 + (i % 3)));
    assert!(run(poll, 13).is_empty());
}

#[test]
fn long_or_large_connections_are_no_attempts() {
    // Same pace and sizes as a guessing tool but each connection lasts a minute.
    let long = (0..40u64).map(|i| (i * 250 * MS, 60_000 * MS, 600 + (i * 7) % 12, 420));
    assert!(
        run(long, 14)
            .iter()
            .all(|a| a.finding.kind != Kind::BruteForce)
    );
    // Uploads of 20 KB.
    let big = (0..40u64).map(|i| (i * 250 * MS, 40 * MS, 20_000 + (i * 7) % 12, 420));
    assert!(
        run(big, 15)
            .iter()
            .all(|a| a.finding.kind != Kind::BruteForce)
    );
}

#[test]
fn the_table_of_clients_is_bounded() {
    let cfg = DetectConfig {
        encrypted: Config {
            max_clients: 64,
            ..Config::default()
        },
        ..DetectConfig::default()
    };
    let mut d = Encrypted::default();
    let mut out = Vec::new();
    for i in 0..1000u32 {
        let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        let mut ex = record(1, 1, u64::from(i) * MS, "t13d1516h2_aaa_bbb", None);
        ex.client_ip = ip;
        d.observe(&cfg, &ex, ClientId::Ip(ip), u64::from(i), &mut out);
    }
    assert!(d.clients() <= 64);
    assert!(d.evicted >= 900);
    assert!(out.is_empty());
}
