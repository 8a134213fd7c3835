//! The labelled attack capture (captures/attacks.pcap.gz, made by
//! scripts/make-capture.sh attacks with hydra, ffuf, curl and scripted clients against
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
    let (a, t0, _) = run_labelled("attacks", extra);
    (a, t0)
}

/// Every labelled capture in `captures/` (`NAME.labels.json` beside `NAME.pcap.gz`).
fn labelled() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo("captures"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".labels.json").map(String::from)
        })
        .collect();
    v.sort();
    v
}

fn labels(name: &str) -> Value {
    let text = std::fs::read_to_string(repo(&format!("captures/{name}.labels.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Replays a labelled capture with the learning period its labels give (otherwise
/// default settings): its alerts, the time of its first exchange (the labels'
/// timeline starts there) and the learned inventory (`--endpoints`).
fn run_labelled(name: &str, extra: &[&str]) -> (Vec<Value>, f64, Value) {
    let l = labels(name);
    let cap = repo(&format!("captures/{}", l["capture"].as_str().unwrap()));
    // Tests run in parallel and replay the same capture: one directory per run.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = common::fresh_dir(&format!("apiwatch-detection-{name}-{run}"));
    let inventory = dir.join("endpoints.json");
    let mut cmd = bin();
    cmd.arg("-r").arg(&cap).args(extra);
    if let Some(lp) = l["learning_period"].as_str() {
        cmd.args(["--learning-period", lp]);
    }
    let out = cmd
        .arg("--endpoints")
        .arg(&inventory)
        .args(["--exchanges", "/dev/null", "--alerts", "-", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let inv = serde_json::from_slice(&std::fs::read(&inventory).unwrap()).unwrap();
    (parse_lines(&out.stdout), first, inv)
}

/// Who an alert is about: its client's address, or `global`.
fn who(a: &Value) -> String {
    let ctx = if a["apiwatch"].is_object() {
        &a["apiwatch"]
    } else {
        &a["alert"]["context"]["apiwatch"]
    };
    ctx["client_ip"].as_str().unwrap_or("global").to_string()
}

fn scope(a: &Value) -> &str {
    let ctx = if a["apiwatch"].is_object() {
        &a["apiwatch"]
    } else {
        &a["alert"]["context"]["apiwatch"]
    };
    ctx["scope"].as_str().unwrap_or("")
}

fn kind(a: &Value) -> &str {
    let ctx = if a["apiwatch"].is_object() {
        &a["apiwatch"]
    } else {
        &a["alert"]["context"]["apiwatch"]
    };
    ctx["kind"].as_str().unwrap_or("")
}

/// Checks one labelled capture: every attack caught with its exact kind, early, a
/// few alerts at most; no benign client alerted. Returns the report lines and the
/// delays.
fn check(name: &str) -> (Vec<String>, Vec<f64>) {
    let (alerts, t0, _) = run_labelled(name, &[]);
    let l = labels(name);
    let mut per_attacker: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    // Posture findings (`scope: "api"`) are about servers, not clients.
    let mut posture = 0;
    for a in &alerts {
        if scope(a) == "api" {
            posture += 1;
            continue;
        }
        per_attacker.entry(who(a)).or_default().push(a);
    }
    let mut report = Vec::new();
    let mut delays = Vec::new();
    let mut failures = Vec::new();
    let mut attackers = Vec::new();
    for attack in l["attacks"].as_array().unwrap() {
        let k = attack["kind"].as_str().unwrap();
        let global = attack["scope"] == "global";
        let client = if global {
            "global".to_string()
        } else {
            attack["client"].as_str().unwrap().to_string()
        };
        attackers.push(client.clone());
        if let Some(cs) = attack["clients"].as_array() {
            attackers.extend(cs.iter().filter_map(|c| c.as_str().map(String::from)));
        }
        let start = t0 + attack["start_s"].as_f64().unwrap() * SEC;
        // An attack from several addresses (a stolen token replayed) is raised by
        // whichever of them makes it plain.
        let mut mine = per_attacker.get(&client).cloned().unwrap_or_default();
        for c in attack["clients"].as_array().into_iter().flatten() {
            let c = c.as_str().unwrap();
            if c != client {
                mine.extend(per_attacker.get(c).cloned().unwrap_or_default());
            }
        }
        mine.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
        let Some(hit) = mine.iter().find(|a| kind(a) == k) else {
            let got: Vec<&str> = mine.iter().map(|a| kind(a)).collect();
            failures.push(format!(
                "{name}: {k} from {client} not detected (got {got:?})"
            ));
            report.push(format!("{name:10} {k:20} {client:14} MISSED (got {got:?})"));
            continue;
        };
        let delay = epoch(hit["timestamp"].as_str().unwrap()) - start;
        delays.push(delay);
        report.push(format!(
            "{name:10} {k:20} {client:14} after {delay:5.1}s, {} alert(s)",
            mine.len()
        ));
        if delay > 30.0 {
            failures.push(format!("{name}: {k} from {client} took {delay:.1}s"));
        }
        if mine.len() > 3 {
            failures.push(format!("{name}: {client}: {} alerts", mine.len()));
        }
    }
    let benign: Vec<String> = per_attacker
        .iter()
        .filter(|(k, _)| !attackers.contains(k))
        .map(|(k, v)| {
            let kinds: Vec<String> = v
                .iter()
                .map(|a| {
                    let ctx = if a["apiwatch"].is_object() {
                        &a["apiwatch"]
                    } else {
                        &a["alert"]["context"]["apiwatch"]
                    };
                    format!("{}: {}", kind(a), ctx["summary"].as_str().unwrap_or(""))
                })
                .collect();
            format!("{k} {kinds:?}")
        })
        .collect();
    let listed = l["benign_clients"].as_array().map_or(0, Vec::len);
    report.push(format!(
        "{name:10} benign clients alerted: {} of {}",
        benign.len(),
        if listed > 0 {
            listed.to_string()
        } else {
            "all others".into()
        }
    ));
    if !benign.is_empty() {
        failures.push(format!("{name}: benign clients alerted: {benign:#?}"));
    }
    report.push(format!("{name:10} posture findings: {posture}"));
    if let Some(expected) = l["findings"].as_array() {
        failures.extend(check_findings(name, expected, &alerts));
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{failures:#?}");
    (report, delays)
}

/// What a posture finding is about beyond its kind, server and route: the
/// credential kind, the query parameter, the certificate's status or the JWT's
/// weakness, as its evidence names it and its label gives it.
fn finding_what(kind: &str, evidence: &Value, label: bool) -> Value {
    let key = match (kind, label) {
        ("cleartext_credentials", _) => "credential",
        ("credentials_in_url", _) => "parameter",
        ("certificate_expiry", true) | ("jwt_weakness", _) => "reason",
        ("certificate_expiry", false) => "status",
        _ => return Value::Null,
    };
    evidence[key].clone()
}

/// Every labelled posture finding is raised exactly once, and nothing else is.
fn check_findings(name: &str, expected: &[Value], alerts: &[Value]) -> Vec<String> {
    let ctx = |a: &Value| a["alert"]["context"]["apiwatch"].clone();
    let posture: Vec<&Value> = alerts.iter().filter(|a| scope(a) == "api").collect();
    let mut failures = Vec::new();
    let mut matched = vec![false; posture.len()];
    for f in expected {
        let kind = f["kind"].as_str().unwrap();
        let hits: Vec<usize> = posture
            .iter()
            .enumerate()
            .filter(|(_, a)| {
                let c = ctx(a);
                c["kind"] == kind
                    && c["server"] == f["server"]
                    && a["dest_port"] == f["dest_port"]
                    && c["endpoint"] == f["endpoint"]
                    && finding_what(kind, &c["evidence"], false) == finding_what(kind, f, true)
            })
            .map(|(i, _)| i)
            .collect();
        if hits.len() != 1 {
            failures.push(format!("{name}: finding {f} raised {} times", hits.len()));
        }
        for i in hits {
            matched[i] = true;
        }
    }
    for (a, m) in posture.iter().zip(&matched) {
        if !m {
            failures.push(format!("{name}: unlabelled posture finding {}", ctx(a)));
        }
    }
    failures
}

#[test]
fn every_attack_is_caught_early_and_benign_clients_stay_quiet() {
    check("attacks");
}

/// The labelled captures of real open-source API servers (Kinto, Synapse, Wagtail,
/// json-server-auth; `captures/*.md`), replayed with default settings.
#[test]
fn every_labelled_capture_of_a_real_api_server() {
    let mut delays = Vec::new();
    let mut lines = Vec::new();
    for name in labelled().iter().filter(|n| *n != "attacks") {
        let (r, d) = check(name);
        lines.extend(r);
        delays.extend(d);
    }
    if delays.is_empty() {
        return;
    }
    delays.sort_by(f64::total_cmp);
    let median = delays[delays.len() / 2];
    eprintln!("{}\nmedian time to detect: {median:.1}s", lines.join("\n"));
    assert!(median <= 2.0, "median time to detect {median:.1}s");
}

/// The sensitive values the inventory counts per route (`x-apiwatch.sensitive`)
/// are what the capture's server says it sent (`sensitive` in the labels).
#[test]
fn sensitive_value_counts_per_route_agree_with_what_the_server_sent() {
    let mut checked = 0;
    for name in labelled() {
        let l = labels(&name);
        let Some(truth) = l["sensitive"].as_object() else {
            continue;
        };
        let (_, _, inv) = run_labelled(&name, &[]);
        let mut got: BTreeMap<String, Value> = BTreeMap::new();
        for (path, item) in inv["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(s) = op["x-apiwatch"].get("sensitive") {
                    got.insert(format!("{} {path}", method.to_uppercase()), s.clone());
                }
            }
        }
        for (route, want) in truth {
            for (kind, n) in want.as_object().unwrap() {
                let have = got.get(route).and_then(|s| s[kind].as_u64()).unwrap_or(0);
                assert_eq!(
                    have,
                    n.as_u64().unwrap(),
                    "{name}: {kind} on {route}: {:?}",
                    got.get(route)
                );
                checked += 1;
            }
        }
        eprintln!("{name}: sensitive counts of {} routes agree", truth.len());
    }
    assert!(checked > 0, "no labelled capture has sensitive counts");
}

/// The inventory each capture's traffic teaches lists the server's real routes:
/// every labelled route is found once, none is split into objects.
#[test]
fn the_inventory_lists_each_servers_routes() {
    for name in labelled() {
        let l = labels(&name);
        let Some(routes) = l["routes"].as_array() else {
            continue;
        };
        let (_, _, inv) = run_labelled(&name, &[]);
        let (found, split, merged, extra) = compare_routes(routes, &inv);
        eprintln!(
            "{name:10} routes: {} labelled, {} found, {} split, {} merged wrongly, {} other paths in the inventory",
            routes.len(),
            found.len(),
            split.len(),
            merged.len(),
            extra
        );
        let missing: Vec<&str> = routes
            .iter()
            .filter_map(Value::as_str)
            .filter(|r| !found.contains(&r.to_string()))
            .collect();
        eprintln!("  not found: {missing:?}\n  split: {split:?}\n  merged: {merged:?}");
        assert!(
            found.len() * 10 >= routes.len() * 8,
            "{name}: {} of {} routes found",
            found.len(),
            routes.len()
        );
        // A labelled parameter that only ever had one value on the wire
        // (`/send/m.room.message/`, `/add/blog/blogpage/`) cannot be told from a
        // literal: a few such splits are expected, objects never are.
        assert!(
            split.len() * 100 <= routes.len() * 15,
            "{name}: split routes {split:?}"
        );
    }
}

/// Whether an inventory operation is exactly one of the labelled routes.
fn exact(
    labelled: &[(String, Vec<Option<String>>, String)],
    m: &str,
    p: &[Option<String>],
) -> bool {
    labelled
        .iter()
        .any(|(lm, lp, _)| lm == m && lp.len() == p.len() && lp.iter().zip(p).all(|(a, b)| a == b))
}

/// Segments of a path, placeholders as `None`.
fn pattern(path: &str) -> Vec<Option<String>> {
    path.trim_end_matches('/')
        .split('/')
        .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
        .collect()
}

/// Labelled routes found in the inventory; inventory paths that are one object of a
/// labelled parameter route (split); inventory placeholders where the labels have a
/// literal (merged); and how many inventory operations match no labelled route.
fn compare_routes(routes: &[Value], inv: &Value) -> (Vec<String>, Vec<String>, Vec<String>, usize) {
    let ops: Vec<(String, String)> = inv["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| *m != "parameters")
                .map(move |m| (m.to_ascii_uppercase(), p.clone()))
        })
        .collect();
    let labelled: Vec<(String, Vec<Option<String>>, String)> = routes
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|r| {
            let (m, p) = r.split_once(' ')?;
            Some((m.to_string(), pattern(p), r.to_string()))
        })
        .collect();
    let (mut found, mut split, mut merged) = (Vec::new(), Vec::new(), Vec::new());
    let mut matched_ops = 0;
    for (m, p) in &ops {
        let ip = pattern(p);
        let mut any = false;
        for (lm, lp, name) in &labelled {
            if lm != m || lp.len() != ip.len() {
                continue;
            }
            let same = lp
                .iter()
                .zip(&ip)
                .all(|(a, b)| a == b || (a.is_none() && b.is_none()));
            let is_object = !same
                && lp.iter().zip(&ip).all(|(a, b)| match (a, b) {
                    (None, _) => true,
                    (Some(x), Some(y)) => x == y,
                    (Some(_), None) => false,
                });
            let too_wide = !same
                && lp.iter().zip(&ip).all(|(a, b)| match (a, b) {
                    (_, None) => true,
                    (Some(x), Some(y)) => x == y,
                    (None, Some(_)) => false,
                });
            if same {
                any = true;
                if !found.contains(name) {
                    found.push(name.clone());
                }
            } else if is_object && !exact(&labelled, m, &ip) {
                any = true;
                split.push(format!("{m} {p} (of {name})"));
            } else if too_wide {
                merged.push(format!("{m} {p} (covers {name})"));
            }
        }
        matched_ops += usize::from(any);
    }
    merged.sort();
    merged.dedup();
    (found, split, merged, ops.len() - matched_ops)
}

#[test]
fn alerts_follow_the_eve_contract_and_carry_no_secrets() {
    let (alerts, _) = alerts();
    assert!(!alerts.is_empty());
    let mut texts = std::collections::HashMap::new();
    for a in &alerts {
        assert_eq!(a["event_type"], "alert");
        assert_eq!(a["proto"], "TCP");
        assert_eq!(a["app_proto"], "http");
        let sid = a["alert"]["signature_id"].as_u64().unwrap();
        // Client and global kinds; posture findings (scope api) 9100009-9100013.
        assert!((9_100_001..=9_100_006).contains(&sid) || (9_100_009..=9_100_013).contains(&sid));
        // One stable text per signature id: the route is in the context.
        let text = a["alert"]["signature"].as_str().unwrap();
        assert!(text.starts_with("APIWATCH "), "{text}");
        assert_eq!(
            texts.entry(sid).or_insert_with(|| text.to_string()),
            text,
            "sid {sid} has two signature texts"
        );
        let ctx = &a["alert"]["context"]["apiwatch"];
        let scope = ctx["scope"].as_str().unwrap();
        // Clientless: a global alert, or a posture finding about a server.
        let clientless = scope == "global" || scope == "api";
        assert_eq!(clientless, ctx["client_ip"].is_null());
        assert_eq!(clientless, a.get("src_ip").is_none());
        assert!(ctx["evidence"].is_object());
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
