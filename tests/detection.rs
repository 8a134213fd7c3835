//! The labelled attack capture (captures/attacks.pcap.gz, made by
//! scripts/make-attack-capture.sh with hydra, ffuf, curl and scripted clients against
//! a real JSON API): every attack is reported with the right kind, early, a few times
//! at most, and no benign client is alerted.

mod common;

use std::collections::BTreeMap;

use common::{bin, parse_lines, repo};
use serde_json::Value;

const SEC: f64 = 1.0;

/// Seconds since the epoch of an EVE timestamp (`2026-11-24T02:50:25.258360+0000`).
fn epoch(ts: &str) -> f64 {
    let (date, time) = ts.split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let t = &time[..time.len() - 5];
    let hms: Vec<f64> = t.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days as f64 * 86400.0 + hms[0] * 3600.0 + hms[1] * 60.0 + hms[2]
}

fn alerts() -> (Vec<Value>, f64) {
    alerts_with(&[])
}

fn alerts_with(extra: &[&str]) -> (Vec<Value>, f64) {
    let cap = repo("captures/attacks.pcap.gz");
    let out = bin()
        .arg("-r")
        .arg(&cap)
        .args(extra)
        .args([
            "--learning-period",
            "2m",
            "--exchanges",
            "/dev/null",
            "--alerts",
            "-",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The capture's first exchange: the start of the timeline in the labels.
    let ex = bin()
        .arg("-r")
        .arg(&cap)
        .args(["--exchanges", "-", "--alerts", "/dev/null", "-q"])
        .output()
        .unwrap();
    let first = parse_lines(&ex.stdout)
        .iter()
        .map(|e| epoch(&e["timestamp"].as_str().unwrap().replace('Z', "+0000")))
        .fold(f64::MAX, f64::min);
    (parse_lines(&out.stdout), first)
}

#[test]
fn every_attack_is_caught_early_and_benign_clients_stay_quiet() {
    let (alerts, t0) = alerts();
    let labels: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("captures/attacks.labels.json")).unwrap(),
    )
    .unwrap();
    let mut per_attacker: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for a in &alerts {
        let who = a["apiwatch"]["client_ip"]
            .as_str()
            .unwrap_or("global")
            .to_string();
        per_attacker.entry(who).or_default().push(a);
    }
    let mut report = Vec::new();
    for attack in labels["attacks"].as_array().unwrap() {
        let kind = attack["kind"].as_str().unwrap();
        let who = attack["client"].as_str().unwrap_or("global");
        let start = t0 + attack["start_s"].as_f64().unwrap() * SEC;
        let mine = per_attacker.get(who).cloned().unwrap_or_default();
        let hit = mine
            .iter()
            .find(|a| a["apiwatch"]["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind} from {who} not detected; alerts: {mine:?}"));
        let delay = epoch(hit["timestamp"].as_str().unwrap()) - start;
        let limit = if who == "global" { 120.0 } else { 30.0 };
        report.push(format!(
            "{kind:20} {who:12} after {delay:5.1}s, {} alert(s)",
            mine.len()
        ));
        assert!(delay <= limit, "{kind} from {who} took {delay:.1}s");
        assert!(mine.len() <= 3, "{who}: {} alerts", mine.len());
    }
    let attackers: Vec<&str> = labels["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["client"].as_str().unwrap_or("global"))
        .collect();
    let benign: Vec<&String> = per_attacker
        .keys()
        .filter(|k| !attackers.contains(&k.as_str()))
        .collect();
    assert!(benign.is_empty(), "benign clients alerted: {benign:?}");
    eprintln!("{}", report.join("\n"));
}

#[test]
fn alerts_follow_the_eve_contract_and_carry_no_secrets() {
    let (alerts, _) = alerts();
    assert!(!alerts.is_empty());
    for a in &alerts {
        assert_eq!(a["event_type"], "alert");
        assert_eq!(a["proto"], "TCP");
        assert_eq!(a["app_proto"], "http");
        let sid = a["alert"]["signature_id"].as_u64().unwrap();
        assert!((9_100_001..=9_100_006).contains(&sid));
        assert!(
            a["alert"]["signature"]
                .as_str()
                .unwrap()
                .starts_with("APIWATCH ")
        );
        let scope = a["apiwatch"]["scope"].as_str().unwrap();
        assert_eq!(scope == "global", a["apiwatch"]["client_ip"].is_null());
        assert!(a["apiwatch"]["evidence"].is_object());
        let text = a.to_string();
        for secret in [
            "Summer2024",
            "Password0",
            "Winter2025",
            "pass-",
            "victim",
            "user01@",
            "password=",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}

#[test]
fn the_same_capture_gives_the_same_alerts_on_every_run_and_worker_count() {
    let (a, _) = alerts();
    // Three flow workers and three detection shards.
    let config = std::env::temp_dir().join(format!("apiwatch-shards-{}.toml", std::process::id()));
    std::fs::write(&config, "[detect]\nshards = 3\n").unwrap();
    let (b, _) = alerts_with(&["--workers", "3", "-c", config.to_str().unwrap()]);
    let _ = std::fs::remove_file(&config);
    let a: Vec<String> = a.iter().map(|v| v.to_string()).collect();
    let b: Vec<String> = b.iter().map(|v| v.to_string()).collect();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}
