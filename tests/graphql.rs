//! GraphQL seen per operation (issue #25): logins packed into one request as
//! aliases or a batch count one attempt each, introspection is its own endpoint,
//! and the inventory lists the operations of `POST /graphql`. Generated captures:
//! each request on its own connection, a few seconds apart, answered as a GraphQL
//! server answers (200 with `errors` for a refused login).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use apiwatch::decode::linktype;
use apiwatch::synth::{Conversation, PcapWriter, frame};
use serde_json::{Value, json};

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
const T0: u64 = 1_795_428_000_000_000_000;

fn post(body: &str) -> Vec<u8> {
    format!(
        "POST /graphql HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn answer(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Requests `(client, at_ms, request body, answer body)`, each on its own connection.
fn capture(requests: &[(u8, u64, String, String)]) -> Vec<u8> {
    let mut w = PcapWriter::new(linktype::ETHERNET);
    for (i, (client, at, req, ans)) in requests.iter().enumerate() {
        let mut c = Conversation::new(
            (
                IpAddr::V4(Ipv4Addr::new(10, 77, 1, *client)),
                20000 + i as u16,
            ),
            (SERVER, 8080),
            1000 + i as u32 * 7,
            9000,
        );
        c.handshake()
            .send(true, &post(req), 1460)
            .send(false, &answer(ans), 1460)
            .close();
        for (j, s) in c.segs.iter().enumerate() {
            w.packet(T0 + at * 1_000_000 + j as u64 * 100_000, &frame(s));
        }
    }
    w.bytes
}

fn run(requests: &[(u8, u64, String, String)], extra: &[&str]) -> (Vec<Value>, Value) {
    let dir = common::fresh_dir("apiwatch-graphql");
    let pcap = dir.join("graphql.pcap");
    std::fs::write(&pcap, capture(requests)).unwrap();
    let alerts = dir.join("alerts.json");
    let inventory = dir.join("inventory.json");
    let out = common::bin()
        .arg("-r")
        .arg(&pcap)
        .args(["-q", "--alerts"])
        .arg(&alerts)
        .arg("--endpoints")
        .arg(&inventory)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        common::parse_lines(&std::fs::read(&alerts).unwrap()),
        serde_json::from_slice(&std::fs::read(&inventory).unwrap()).unwrap(),
    )
}

fn kinds(alerts: &[Value]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|a| {
            let c = &a["alert"]["context"]["apiwatch"];
            (
                c["kind"].as_str().unwrap_or("").to_string(),
                c["client"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

const REFUSED: &str =
    r#"{"errors":[{"message":"invalid credentials","path":["login"]}],"data":null}"#;

fn aliases(users: impl Fn(usize) -> String, n: usize) -> String {
    let fields: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "a{i}: login(username: \"{}\", password: \"guess{i}\") {{ token }}",
                users(i)
            )
        })
        .collect();
    json!({ "query": format!("mutation {{ {} }}", fields.join(" ")) }).to_string()
}

#[test]
fn logins_packed_as_aliases_or_a_batch_are_attempts_each() {
    let mut reqs = Vec::new();
    // 10.77.1.1: 4 requests of 50 aliased logins for one account.
    for k in 0..4 {
        reqs.push((
            1,
            k * 3_000,
            aliases(|_| "admin".into(), 50),
            REFUSED.to_string(),
        ));
    }
    // 10.77.1.2: 4 batches of 40 logins for one account, with variables.
    for k in 0..4 {
        let ops: Vec<Value> = (0..40)
            .map(|i| json!({"query": "mutation Login($u: String!, $p: String!) { login(username: $u, password: $p) { token } }", "variables": {"u": "root", "p": format!("p{i}")}}))
            .collect();
        let answers: Vec<Value> = (0..40)
            .map(|_| serde_json::from_str(REFUSED).unwrap())
            .collect();
        reqs.push((
            2,
            500 + k * 3_000,
            Value::Array(ops).to_string(),
            Value::Array(answers).to_string(),
        ));
    }
    // 10.77.1.3: 3 requests of 50 aliases, one username each.
    for k in 0..3 {
        reqs.push((
            3,
            1_000 + k * 3_000,
            aliases(|i| format!("user{k}x{i}"), 50),
            REFUSED.to_string(),
        ));
    }
    // 10.77.1.4: a user who mistypes twice, then logs in.
    for (k, ans) in [
        REFUSED,
        REFUSED,
        r#"{"data":{"login":{"token":"eyJhbGciOiJIUzI1NiJ9.e30.sig"}}}"#,
    ]
    .iter()
    .enumerate()
    {
        let q = json!({"query": "mutation Login($u: String!, $p: String!) { login(username: $u, password: $p) { token } }", "variables": {"u": "carol", "p": format!("c{k}")}});
        reqs.push((4, 2_000 + k as u64 * 4_000, q.to_string(), ans.to_string()));
    }
    reqs.sort_by_key(|r| r.1);
    let (alerts, inventory) = run(&reqs, &[]);
    let got = kinds(&alerts);
    assert!(
        got.contains(&("brute_force".into(), "ip:10.77.1.1".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("brute_force".into(), "ip:10.77.1.2".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("credential_stuffing".into(), "ip:10.77.1.3".into())),
        "{got:?}"
    );
    assert!(!got.iter().any(|(_, c)| c == "ip:10.77.1.4"), "{got:?}");
    let text = format!("{alerts:?}{inventory}");
    assert!(
        !text.contains("guess") && !text.contains("user0x1"),
        "no secret leaves"
    );
    // The inventory: one path, its operations listed.
    let post = &inventory["paths"]["/graphql"]["post"];
    let ops: Vec<&str> = post["x-graphql-operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["operation"].as_str())
        .collect();
    assert!(
        ops.contains(&"mutation Login") && ops.contains(&"mutation {login}"),
        "{ops:?}"
    );
}
