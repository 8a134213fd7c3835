//! Interop contracts over every shipped capture: each alert and each EVE-form
//! exchange validates against Suricata 8.0.6's own `etc/schema.json` (copied from
//! the OISF/suricata tag `suricata-8.0.6`, GPL-2.0 data file, unchanged); every
//! client alert's `flow_id` is on an exchange record of the same connection; the
//! Zeek form uses Zeek's http.log field names and types only.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde_json::Value;

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(common::repo(
        "tests/fixtures/suricata-8.0.6-eve-schema.json",
    ))
    .expect("schema");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(common::repo("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".pcap") || n.ends_with(".pcap.gz") || n.ends_with(".pcapng.gz")
        })
        .collect();
    v.sort();
    v
}

/// Alerts and exchanges (in `format`) of one capture.
fn run(capture: &PathBuf, format: &str) -> (Vec<Value>, Vec<Value>) {
    let dir = common::fresh_dir(&format!(
        "eve-{}-{format}",
        capture.file_name().unwrap().to_string_lossy()
    ));
    let (alerts, exchanges) = (dir.join("alerts.jsonl"), dir.join("exchanges.jsonl"));
    let out = common::bin()
        .arg("-r")
        .arg(capture)
        .args([
            "--learning-period",
            "2m",
            "-q",
            "--exchanges-format",
            format,
        ])
        .arg("--alerts")
        .arg(&alerts)
        .arg("--exchanges")
        .arg(&exchanges)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &PathBuf| common::parse_lines(&std::fs::read(p).unwrap());
    (read(&alerts), read(&exchanges))
}

fn check(v: &jsonschema::Validator, what: &str, rec: &Value) {
    let errors: Vec<String> = v
        .iter_errors(rec)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} fails Suricata's schema: {errors:?}\n{rec}"
    );
}

/// Every value of a key has one JSON type, across all records.
fn one_type_per_key(records: &[Value], types: &mut HashMap<String, HashSet<&'static str>>) {
    fn walk(path: &str, v: &Value, types: &mut HashMap<String, HashSet<&'static str>>) {
        let t = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_f64() => "float",
            Value::Number(_) => "integer",
            Value::String(_) => "string",
            Value::Array(a) => {
                for x in a {
                    walk(&format!("{path}[]"), x, types);
                }
                "array"
            }
            Value::Object(m) => {
                for (k, x) in m {
                    walk(&format!("{path}.{k}"), x, types);
                }
                "object"
            }
        };
        types.entry(path.to_string()).or_default().insert(t);
    }
    for r in records {
        walk("", r, types);
    }
}

#[test]
fn alerts_and_eve_exchanges_of_every_capture_pass_suricatas_schema_and_join() {
    let v = schema();
    // The schema bites: what apiwatch wrote before (its object at the top, nulls)
    // is refused.
    let old = serde_json::json!({"timestamp": "2026-11-24T03:00:40.701503+0000", "event_type": "alert",
        "src_ip": null, "apiwatch": {"kind": "burst"}});
    assert!(v.iter_errors(&old).count() >= 2);
    let mut types = HashMap::new();
    let (mut alerts_seen, mut client_alerts, mut global_alerts) = (0, 0, 0);
    let mut tls_records: HashMap<String, usize> = HashMap::new();
    for cap in captures() {
        let name = cap.file_name().unwrap().to_string_lossy().into_owned();
        let (alerts, exchanges) = run(&cap, "eve");
        for e in &exchanges {
            check(&v, &format!("{name}: exchange"), e);
            assert!(e["flow_id"].as_u64().is_some_and(|id| id > 0), "{e}");
            assert!(
                e["community_id"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("1:"))
            );
            if e["event_type"] == "tls" {
                // A TLS connection's record (captures/tls-handshakes.pcap).
                *tls_records.entry(name.to_string()).or_default() += 1;
                assert!(
                    e["tls"]["ja4"].as_str().is_some_and(|j| j.len() == 36),
                    "{e}"
                );
                assert!(
                    e["tls"]["ja3"]["hash"]
                        .as_str()
                        .is_some_and(|j| j.len() == 32),
                    "{e}"
                );
                continue;
            }
            assert_eq!(e["event_type"], "http");
            assert!(
                !e["http"]["hostname"].as_str().unwrap_or("").contains(':')
                    || e["http"]["hostname"].as_str().unwrap().contains("::")
            );
        }
        // An alert judged on a TLS connection without keys joins its `tls` record.
        let flows: HashMap<u64, &Value> = exchanges
            .iter()
            .filter(|e| e["event_type"] == "http" || e["event_type"] == "tls")
            .map(|e| (e["flow_id"].as_u64().unwrap(), e))
            .collect();
        for a in &alerts {
            check(&v, &format!("{name}: alert"), a);
            alerts_seen += 1;
            let ctx = &a["alert"]["context"]["apiwatch"];
            assert!(ctx["kind"].is_string() && ctx["summary"].is_string(), "{a}");
            assert!(
                a["alert"]["metadata"]["mitre_technique_id"][0]
                    .as_str()
                    .is_some_and(|t| t.starts_with('T')),
                "{a}"
            );
            match ctx["scope"].as_str() {
                Some("client") => {
                    client_alerts += 1;
                    let id = a["flow_id"].as_u64().expect("a client alert has a flow_id");
                    let ex = flows
                        .get(&id)
                        .unwrap_or_else(|| panic!("{name}: flow_id {id} of {a} is on no exchange"));
                    // Judged on a TLS connection without keys: no HTTP transaction.
                    if ctx["evidence"]["encrypted"] == true {
                        assert_eq!(a["app_proto"], "tls", "{a}");
                        assert!(a.get("http").is_none() && a.get("tx_id").is_none(), "{a}");
                        assert_eq!(ex["event_type"], "tls", "{a}");
                    }
                    // The same connection.
                    assert_eq!(ex["src_ip"], a["src_ip"]);
                    assert_eq!(ex["src_port"], a["src_port"]);
                    assert_eq!(ex["community_id"], a["community_id"]);
                    assert!(a["flow"]["pkts_toserver"].as_u64().unwrap() >= 1);
                }
                Some("global") => {
                    global_alerts += 1;
                    assert!(
                        a.get("src_ip").is_none() && a.get("src_port").is_none(),
                        "{a}"
                    );
                    assert!(a.get("flow_id").is_none(), "{a}");
                    for ip in ctx["client_ips"].as_array().expect("client_ips") {
                        ip.as_str()
                            .unwrap()
                            .parse::<std::net::IpAddr>()
                            .expect("an address");
                    }
                }
                Some("api") => {
                    // A posture finding: about a server, naming no client.
                    assert!(
                        a.get("src_ip").is_none() && a.get("flow_id").is_none(),
                        "{a}"
                    );
                    assert!(ctx.get("client").is_none() && ctx.get("client_ip").is_none());
                    assert!(ctx["server"].is_string() || ctx.get("server").is_none());
                    let sid = a["alert"]["signature_id"].as_u64().unwrap();
                    assert!((9_100_009..=9_100_013).contains(&sid), "{a}");
                }
                other => panic!("scope {other:?}"),
            }
        }
        one_type_per_key(&alerts, &mut types);
        one_type_per_key(&exchanges, &mut types);
    }
    let mixed: Vec<_> = types
        .iter()
        .filter(|(_, t)| t.len() > 1 || t.contains("null"))
        .collect();
    assert!(
        mixed.is_empty(),
        "keys with several types or nulls: {mixed:?}"
    );
    eprintln!(
        "{alerts_seen} alerts ({client_alerts} client, {global_alerts} global) valid and joined"
    );
    assert!(client_alerts > 10 && global_alerts > 0);
    assert_eq!(
        tls_records.get("tls-handshakes.pcap"),
        Some(&9),
        "one per TLS connection of tls-handshakes.pcap"
    );
    assert_eq!(
        tls_records.get("tls-keylog.pcap"),
        Some(&9),
        "one per TLS connection of tls-keylog.pcap read without its key log"
    );
}

#[test]
fn apiwatch_form_exchanges_carry_the_flow_id_alerts_name() {
    let (alerts, exchanges) = run(&common::repo("captures/attacks.pcap.gz"), "apiwatch");
    let ids: HashSet<u64> = exchanges
        .iter()
        .map(|e| e["flow_id"].as_u64().expect("flow_id on every record"))
        .collect();
    let mut joined = 0;
    for a in alerts
        .iter()
        .filter(|a| a["alert"]["context"]["apiwatch"]["scope"] == "client")
    {
        assert!(ids.contains(&a["flow_id"].as_u64().unwrap()), "{a}");
        joined += 1;
    }
    assert!(joined > 0);
    // One connection, one id: records of the same 4-tuple share it.
    let mut by_tuple: HashMap<(String, u64), HashSet<u64>> = HashMap::new();
    for e in &exchanges {
        by_tuple
            .entry((
                e["client_ip"].to_string(),
                e["client_port"].as_u64().unwrap(),
            ))
            .or_default()
            .insert(e["flow_id"].as_u64().unwrap());
    }
    assert!(by_tuple.values().filter(|ids| ids.len() == 1).count() * 10 >= by_tuple.len() * 9);
}

/// Zeek's http.log columns and their types (Zeek's `HTTP::Info` as the btest
/// baselines of zeek/zeek print them in `#fields` / `#types`).
const ZEEK_HTTP_FIELDS: [(&str, &str); 30] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("trans_depth", "count"),
    ("method", "string"),
    ("host", "string"),
    ("uri", "string"),
    ("referrer", "string"),
    ("version", "string"),
    ("user_agent", "string"),
    ("origin", "string"),
    ("request_body_len", "count"),
    ("response_body_len", "count"),
    ("status_code", "count"),
    ("status_msg", "string"),
    ("info_code", "count"),
    ("info_msg", "string"),
    ("tags", "set[enum]"),
    ("username", "string"),
    ("password", "string"),
    ("proxied", "set[string]"),
    ("orig_fuids", "vector[string]"),
    ("orig_filenames", "vector[string]"),
    ("orig_mime_types", "vector[string]"),
    ("resp_fuids", "vector[string]"),
    ("resp_filenames", "vector[string]"),
    ("resp_mime_types", "vector[string]"),
];

#[test]
fn zeek_form_uses_zeeks_http_log_fields_and_types() {
    let (alerts, exchanges) = run(&common::repo("captures/attacks.pcap.gz"), "zeek");
    assert!(exchanges.len() > 1000);
    let fields: HashMap<&str, &str> = ZEEK_HTTP_FIELDS.into_iter().collect();
    for e in &exchanges {
        for (k, v) in e.as_object().unwrap() {
            let ty = fields
                .get(k.as_str())
                .unwrap_or_else(|| panic!("{k} is not an http.log field: {e}"));
            let ok = match *ty {
                "time" => v.is_f64(),
                "count" | "port" => v.is_u64(),
                "addr" => v
                    .as_str()
                    .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
                "string" => v.is_string(),
                _ => v.is_array(),
            };
            assert!(ok, "{k} is not a {ty}: {e}");
        }
        // The fields Zeek always writes (not &optional).
        for k in [
            "ts",
            "uid",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "trans_depth",
            "request_body_len",
            "response_body_len",
            "tags",
        ] {
            assert!(e.get(k).is_some(), "{k} missing: {e}");
        }
        assert!(e.get("password").is_none() && e.get("username").is_none());
    }
    // Alerts join by uid: the uid of a client alert's flow_id is a record's uid.
    let uids: HashSet<&str> = exchanges
        .iter()
        .map(|e| e["uid"].as_str().unwrap())
        .collect();
    for a in alerts.iter().filter(|a| a["flow_id"].is_u64()) {
        let uid = apiwatch::export::eve::zeek_uid(a["flow_id"].as_u64().unwrap());
        assert!(uids.contains(uid.as_str()), "{uid} of {a}");
    }
}
