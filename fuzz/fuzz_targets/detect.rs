//! Any sequence of exchanges (any text in the request fields a client controls, any
//! order of times) through the detection engine, inline and with three client
//! shards: never a panic, and the same alerts in the same order either way.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use apiwatch::detect::{DetectConfig, Engine};
use apiwatch::http::Exchange;
use libfuzzer_sys::fuzz_target;

const SEC: u64 = 1_000_000_000;

/// Reads records: [client, method, status hi, status lo, gap, back, flags, uri len,
/// uri..., body len, body..., header len, header...]. A gap of 0xff with flag 0x40
/// jumps to the last microseconds before `u64::MAX`.
fn exchanges(mut data: &[u8]) -> Vec<Exchange> {
    let mut take = |n: usize| -> Option<Vec<u8>> {
        let n = n.min(data.len());
        let (a, b) = data.split_at(n);
        data = b;
        (n > 0).then(|| a.to_vec())
    };
    let mut out = Vec::new();
    let mut ts = 1_700_000_000 * SEC;
    while let Some(h) = take(8) {
        if h.len() < 8 {
            break;
        }
        let text = |v: Option<Vec<u8>>| String::from_utf8_lossy(&v.unwrap_or_default()).into_owned();
        let uri = text(take(h[7] as usize));
        let n = take(1).map_or(0, |l| l[0] as usize);
        let body = take(n).unwrap_or_default();
        let n = take(1).map_or(0, |l| l[0] as usize);
        let header = text(take(n));
        ts = ts.saturating_add(u64::from(h[4]) * 20_000_000);
        if h[6] & 0x40 != 0 && h[4] == 0xff {
            // Packet time at the end of the clock: every window must saturate, not
            // wrap (sources clamp, but the engine must not rely on it).
            ts = u64::MAX - u64::from(h[5]) * 1_000;
        }
        let method = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"][h[1] as usize % 6];
        let status = u16::from_be_bytes([h[2], h[3]]) % 600;
        let mut request_headers = apiwatch::http::parser::Headers::default();
        match h[6] % 4 {
            0 => request_headers.authorization = Some(header.into()),
            1 => request_headers.api_key = Some(header.into()),
            2 => request_headers.x_forwarded_for = Some(header),
            _ => request_headers.cookie = Some(header),
        }
        out.push(Exchange {
            ts: ts.saturating_sub(u64::from(h[5]) * 20_000_000),
            client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, h[0] % 16)),
            client_port: 40000,
            server_ip: IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)),
            server_port: 80,
            trans_depth: 1,
            method: Some(method.into()),
            uri: Some(uri.into()),
            version: Some("1.1".into()),
            request_headers,
            request_body_len: body.len() as u64,
            request_body_prefix: body,
            body_credentials: None,
            response_body_prefix: Vec::new(),
            status: (status >= 100).then_some(status),
            status_msg: None,
            response_version: None,
            interim: None,
            response_headers: None,
            response_body_len: Some(0),
            response_ts: None,
            incomplete: h[6] & 0x80 != 0,
            flow: Default::default(),
            tls: None,
            decrypted: false,
            sensitive: Default::default(),
            sealed: None,
            h2: None,
        });
    }
    out
}

fn run(mut engine: Engine, exchanges: &[Exchange]) -> Vec<String> {
    let mut out = Vec::new();
    for ex in exchanges {
        engine.observe(ex, &mut out);
    }
    engine.finish(&mut out);
    out.iter()
        .map(|a| format!("{} {:?} {:?} {} {:?}", a.ts, a.client_key, a.finding, a.report, a.samples))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut cfg = DetectConfig {
        max_clients: 4 + usize::from(mode % 8),
        learning_period: 10 * SEC,
        ..Default::default()
    };
    cfg.identity.mode = ["ip", "bearer", "api_key", "basic", "cookie:sid"][usize::from(mode >> 4) % 5]
        .parse()
        .unwrap();
    cfg.identity.salt = [1, 2];
    cfg.identity.salt_configured = true;
    cfg.trusted_proxies = vec!["10.0.0.0/28".parse().unwrap()];
    let ex = exchanges(rest);
    let inline = run(Engine::new(cfg.clone()), &ex);
    let sharded = run(Engine::sharded(cfg, 3), &ex);
    assert_eq!(inline, sharded);
});
