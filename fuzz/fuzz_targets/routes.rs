//! Route inference and the parsers it leans on: any bytes as a JSON body prefix
//! (the tolerant scanner must end and never panic), any request target and response
//! through the templater (bounded, and a learned route never splits again), and any
//! text as an OpenAPI spec in either format, its lines routed through it.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use apiwatch::http::Exchange;
use apiwatch::routes::spec::{Format, Match, Spec};
use apiwatch::routes::{LearnConfig, Templater};
use libfuzzer_sys::fuzz_target;

fn exchange(uri: &str, status: u16) -> Exchange {
    Exchange {
        ts: 1,
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)),
        server_port: 80,
        trans_depth: 1,
        method: Some("GET".into()),
        uri: Some(uri.into()),
        version: Some("1.1".into()),
        request_headers: Default::default(),
        request_body_len: 0,
        request_body_prefix: Vec::new(),
        body_credentials: None,
        response_body_prefix: Vec::new(),
        status: Some(status),
        status_msg: None,
        response_version: None,
        interim: None,
        response_headers: None,
        response_body_len: Some(0),
        response_ts: None,
        incomplete: false,
        flow: Default::default(),
        tls: None,
        decrypted: false,
        sensitive: Default::default(),
        sealed: None,
        h2: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut items = 0usize;
    apiwatch::jsonscan::scan(data, |_, _, _| {
        items += 1;
        true
    });
    assert!(items <= data.len() + 1);
    let text = String::from_utf8_lossy(data);
    for format in [Format::Json, Format::Yaml] {
        if let Ok(spec) = Spec::parse_as(&text, format) {
            for line in text.lines().take(64) {
                if let Match::Route(r) | Match::UndeclaredMethod(r) = spec.route("GET", line) {
                    assert!(r.starts_with('/'));
                }
            }
        }
    }
    let mut t = Templater::new(LearnConfig {
        max_positions: 64,
        ..LearnConfig::default()
    });
    for (i, line) in text.lines().take(256).enumerate() {
        let (uri, body) = line.split_once(' ').unwrap_or((line, ""));
        let status = if i % 3 == 0 { 404 } else { 200 };
        let mut ex = exchange(uri, status);
        ex.response_body_prefix = body.as_bytes().to_vec();
        let a = t.template(&ex, (i % 5) as u64);
        assert!(!a.is_empty());
        assert_eq!(a.matches('/').count(), apiwatch::routes::template(uri).matches('/').count());
    }
});
