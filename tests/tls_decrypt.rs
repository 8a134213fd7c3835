//! `--tls-keylog` on `captures/tls-keylog.pcap` (real nginx, Python http.server,
//! curl, Python and `openssl s_client` on loopback, TLS 1.2 AES-GCM, ChaCha20 and
//! AES-CBC (encrypt-then-MAC),
//! TLS 1.3 AES-256-GCM and ChaCha20; scripts/make-tls-keylog-capture.sh): the HTTP
//! inside is what tshark decrypts with the same key log, and the one connection whose
//! secrets were withheld has its TLS record and nothing else.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const CAPTURE: &str = "captures/tls-keylog.pcap";
const KEYS: &str = "captures/tls-keylog.keys";
/// The client port of the connection whose secrets are not in the key log.
const WITHHELD: u64 = 41064;

/// The key log with owner-only permissions (a checkout may leave it world-readable,
/// which is used but warned about).
fn keys(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let k = dir.join("keys");
    std::fs::copy(common::repo(KEYS), &k).unwrap();
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
    k
}

fn run(extra: &[&str]) -> (Vec<Value>, String) {
    // Tests run in parallel in one process: each run has a directory of its own.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = common::fresh_dir(&format!("apiwatch-tls-decrypt-{n}"));
    let out = common::bin()
        .arg("-r")
        .arg(common::repo(CAPTURE))
        .arg("--tls-keylog")
        .arg(keys(&dir))
        .args(["--exchanges", "-", "--alerts", "/dev/null", "-q"])
        .args(extra)
        .output()
        .expect("run apiwatch");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    (common::parse_lines(&out.stdout), err)
}

/// "METHOD uri status" per client port, in order.
type PerConnection = BTreeMap<u64, Vec<String>>;

fn apiwatch_exchanges(recs: &[Value]) -> PerConnection {
    let mut m = PerConnection::new();
    for r in recs.iter().filter(|r| r["type"] != "tls") {
        m.entry(r["client_port"].as_u64().unwrap())
            .or_default()
            .push(format!(
                "{} {} {}",
                r["method"].as_str().unwrap_or("-"),
                r["uri"].as_str().unwrap_or("-"),
                r["status"]
            ));
    }
    m
}

#[test]
fn every_decrypted_exchange_equals_tsharks() {
    let (recs, _) = run(&[]);
    let ours = apiwatch_exchanges(&recs);
    assert_eq!(ours.values().map(Vec::len).sum::<usize>(), 23, "{ours:?}");
    for r in recs.iter().filter(|r| r["type"] != "tls") {
        assert_eq!(r["flags"], serde_json::json!(["decrypted"]), "{r}");
    }
    if Command::new("tshark").arg("-v").output().is_err() {
        common::skip("tshark is not installed");
        return;
    }
    let dir = common::fresh_dir("apiwatch-tls-decrypt-tshark");
    let keylog = format!("tls.keylog_file:{}", keys(&dir).display());
    let tshark = |filter: &str, fields: &[&str]| -> Vec<Vec<String>> {
        let mut c = Command::new("tshark");
        c.arg("-r")
            .arg(common::repo(CAPTURE))
            .args(["-o", &keylog, "-Y", filter, "-T", "fields"]);
        for f in fields {
            c.args(["-e", f]);
        }
        let o = c.output().expect("run tshark");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    };
    let requests = tshark(
        "http.request",
        &["tcp.srcport", "http.request.method", "http.request.uri"],
    );
    let responses = tshark("http.response", &["tcp.dstport", "http.response.code"]);
    let mut statuses: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for r in &responses {
        statuses
            .entry(r[0].parse().unwrap())
            .or_default()
            .push(r[1].clone());
    }
    let mut theirs = PerConnection::new();
    for r in &requests {
        let port: u64 = r[0].parse().unwrap();
        let n = theirs.get(&port).map_or(0, Vec::len);
        let status = statuses[&port][n].clone();
        theirs
            .entry(port)
            .or_default()
            .push(format!("{} {} {status}", r[1], r[2]));
    }
    assert_eq!(ours, theirs);
}

#[test]
fn each_tls_connection_has_one_record_saying_whether_it_was_decrypted() {
    let (recs, _) = run(&[]);
    let tls: Vec<&Value> = recs.iter().filter(|r| r["type"] == "tls").collect();
    assert_eq!(tls.len(), 9);
    let ciphers: Vec<&str> = tls.iter().map(|r| r["cipher"].as_str().unwrap()).collect();
    for suite in [
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    ] {
        assert!(ciphers.contains(&suite), "{suite} in {ciphers:?}");
    }
    for r in &tls {
        let withheld = r["client_port"] == WITHHELD;
        assert_eq!(r["decrypted"], !withheld, "{r}");
        if withheld {
            assert_eq!(r["decryption"], "no_key");
        } else {
            assert!(r.get("decryption").is_none(), "{r}");
            // TLS 1.3's certificate comes from the decrypted handshake.
            assert_eq!(
                r["certificates"][0]["subject"],
                "CN=api.example.test, O=apiwatch test"
            );
        }
    }
    let ours = apiwatch_exchanges(&recs);
    assert!(!ours.contains_key(&WITHHELD));
    // The record comes before its connection's exchanges.
    let first_exchange = recs.iter().position(|r| r["type"] != "tls").unwrap();
    assert_eq!(recs[0]["type"], "tls");
    assert_eq!(recs[0]["client_port"], recs[first_exchange]["client_port"]);
}

#[test]
fn the_same_exchanges_with_any_number_of_workers() {
    let (one, _) = run(&["--workers", "1"]);
    let (three, _) = run(&["--workers", "3"]);
    assert_eq!(apiwatch_exchanges(&one), apiwatch_exchanges(&three));
}

#[test]
fn decryption_outcomes_are_counted() {
    let dir = common::fresh_dir("apiwatch-tls-decrypt-metrics");
    let om = dir.join("metrics.om");
    run(&["--openmetrics-out", om.to_str().unwrap()]);
    let text = std::fs::read_to_string(&om).unwrap();
    let last = |series: &str| -> String {
        text.lines()
            .rfind(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_else(|| panic!("no {series}"))
            .to_string()
    };
    assert_eq!(
        last("apiwatch_tls_decryption_total{outcome=\"decrypted\"}"),
        "8"
    );
    assert_eq!(
        last("apiwatch_tls_decryption_total{outcome=\"no_key\"}"),
        "1"
    );
    assert_eq!(
        last("apiwatch_http_exchanges_total{method=\"POST\",status_class=\"4xx\"}"),
        "7"
    );
}

#[test]
fn without_the_key_log_the_connections_are_records_only() {
    let recs = common::exchanges(&common::repo(CAPTURE));
    assert_eq!(recs.len(), 9);
    assert!(
        recs.iter()
            .all(|r| r["type"] == "tls" && r.get("decrypted").is_none())
    );
}

#[test]
fn an_unsafe_or_missing_key_log_is_a_usage_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::fresh_dir("apiwatch-tls-keylog-perms");
    let k = keys(&dir);
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o666)).unwrap();
    let missing = dir.join("absent");
    for (path, says) in [(&k, "writable by every user"), (&missing, "cannot read")] {
        let o = common::bin()
            .arg("-r")
            .arg(common::repo(CAPTURE))
            .arg("--tls-keylog")
            .arg(path)
            .args(["--alerts", "/dev/null"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(common::first_msg(&err).contains(says), "{err}");
    }
    // World-readable: used, with a warning.
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = common::bin()
        .arg("-r")
        .arg(common::repo(CAPTURE))
        .arg("--tls-keylog")
        .arg(&k)
        .args(["--alerts", "/dev/null", "-q"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("readable by every user"));
}

/// `captures/tls-keylog-dsb.pcapng` is the capture with its key log injected as
/// pcapng Decryption Secrets Blocks (`editcap --inject-secrets
/// tls,captures/tls-keylog.keys`): it decrypts without `--tls-keylog`.
#[test]
fn secrets_carried_in_the_pcapng_decrypt_it_without_a_key_log() {
    let (with_keylog, _) = run(&[]);
    let out = common::bin()
        .arg("-r")
        .arg(common::repo("captures/tls-keylog-dsb.pcapng"))
        .args(["--exchanges", "-", "--alerts", "/dev/null", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let from_dsb = common::parse_lines(&out.stdout);
    assert_eq!(
        apiwatch_exchanges(&from_dsb),
        apiwatch_exchanges(&with_keylog)
    );
    let withheld = from_dsb
        .iter()
        .find(|r| r["type"] == "tls" && r["client_port"] == WITHHELD)
        .unwrap();
    assert_eq!(withheld["decryption"], "no_key");
}
