//! Beyond one machine (issue #27): one sensor publishes a labelled capture to a real
//! nats-server (JetStream, loopback, temporary directory), two detector processes
//! (`--shard 1/2`, `--shard 2/2`) consume it, and together they write exactly the
//! alerts `apiwatch -r` writes alone: the same (kind, client, timestamp) multiset.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, parse_lines, repo};
use serde_json::Value;

/// A nats-server with JetStream on a free loopback port, killed (and its storage
/// removed) when dropped.
struct Server {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// `None` (the test skips) when nats-server is not installed.
    fn start() -> Option<Server> {
        if Command::new("nats-server")
            .arg("--version")
            .output()
            .is_err()
        {
            common::skip("nats-server is not installed (apt-get install nats-server)");
            return None;
        }
        // One directory per server: tests of this file run at once in one process.
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = common::fresh_dir(&format!("apiwatch-nats-{n}"));
        // A free port, released for the server (a race with another process is
        // possible but would make the start below fail loudly).
        let port = free_port();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let server = Server { child, dir, port };
        // Ready when a client gets its INFO line saying JetStream is on.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok()
                    && line.starts_with("INFO ")
                    && line.contains("\"jetstream\":true")
                {
                    return Some(server);
                }
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// Waits for a child with a deadline (killed and failed past it).
fn wait(mut child: Child, what: &str, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish in {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn learning_period(name: &str) -> String {
    let text = std::fs::read_to_string(repo(&format!("captures/{name}.labels.json"))).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["learning_period"].as_str().unwrap().to_string()
}

fn capture(name: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo(&format!("captures/{name}.labels.json"))).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    repo(&format!("captures/{}", v["capture"].as_str().unwrap()))
}

/// Every labelled capture in captures/ (each has a `NAME.labels.json`).
fn labelled() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo("captures"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".labels.json")?.to_string())
        })
        .collect();
    names.sort();
    names
}

/// (kind, client or `global`, timestamp) of each alert, sorted.
fn keys(alerts: &[Value]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| {
            let ctx = if a["apiwatch"].is_object() {
                &a["apiwatch"]
            } else {
                &a["alert"]["context"]["apiwatch"]
            };
            (
                ctx["kind"].as_str().unwrap_or("").to_string(),
                ctx["client"]
                    .as_str()
                    .or(ctx["client_ip"].as_str())
                    .unwrap_or("global")
                    .to_string(),
                a["timestamp"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A stream name for a capture (NATS stream names take no dots or dashes here).
fn stream_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// A subject prefix for a capture.
fn subject(name: &str) -> String {
    name.replace('-', "_")
}

/// What one multiset of alert keys has that the other lacks, both ways, for a
/// failure message.
fn difference(got: &[(String, String, String)], want: &[(String, String, String)]) -> String {
    let count = |v: &[(String, String, String)]| {
        let mut m = std::collections::BTreeMap::new();
        for k in v {
            *m.entry(k.clone()).or_insert(0i64) += 1;
        }
        m
    };
    let (g, w) = (count(got), count(want));
    let mut out = String::new();
    for k in g
        .keys()
        .chain(w.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let d = g.get(k).copied().unwrap_or(0) - w.get(k).copied().unwrap_or(0);
        if d != 0 {
            out.push_str(&format!("\n  {d:+} {k:?}"));
        }
    }
    format!("{} alerts, {} expected:{out}", got.len(), want.len())
}

fn read_alerts(path: &Path) -> Vec<Value> {
    parse_lines(&std::fs::read(path).unwrap_or_default())
}

/// The configuration every process of a comparison shares: principals are keyed
/// hashes, so one salt for all (as docs/distributed.md asks of a deployment).
fn config() -> PathBuf {
    // Written once, whole (tests run in parallel threads: a file rewritten while
    // another test's process reads it would be read half-written).
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("apiwatch-nats-{}.toml", std::process::id()));
        let tmp = dir.join(format!("apiwatch-nats-{}.toml.tmp", std::process::id()));
        std::fs::write(&tmp, "[detect]\nsalt = \"one salt for every process\"\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    })
    .clone()
}

fn detector(url: &str, name: &str, shard: &str, alerts: &Path, until_idle: bool) -> Child {
    let idle: &[&str] = if until_idle {
        &["--until-idle", "2s"]
    } else {
        &[]
    };
    detector_on(url, name, name, &config(), shard, alerts, idle)
}

/// A detector of shard `shard` on the stream of `stream` (named as `stream_name`
/// and `subject` make it), with the learning period of capture `name`.
fn detector_on(
    url: &str,
    stream: &str,
    name: &str,
    config: &Path,
    shard: &str,
    alerts: &Path,
    extra: &[&str],
) -> Child {
    bin()
        .args(["detect", "--from", url, "--shard", shard, "-q"])
        .arg("-c")
        .arg(config)
        .args([
            "--nats-stream",
            &stream_name(stream),
            "--nats-subject",
            &subject(stream),
        ])
        .args(["--learning-period", &learning_period(name)])
        .arg("--alerts")
        .arg(alerts)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start apiwatch detect")
}

/// A sensor publishing `inputs` (each `-r`) to the stream of `stream`; `extra`
/// goes after the inputs (options, then a filter expression).
fn sensor(url: &str, stream: &str, inputs: &[PathBuf], extra: &[&str]) -> Child {
    let mut c = bin();
    c.arg("-c").arg(config());
    for i in inputs {
        c.arg("-r").arg(i);
    }
    c.args(["--publish", url, "-q"])
        .args([
            "--nats-stream",
            &stream_name(stream),
            "--nats-subject",
            &subject(stream),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the publishing sensor")
}

/// The alert keys of one process reading `inputs` with capture `name`'s learning
/// period.
fn single_process(inputs: &[PathBuf], name: &str) -> Vec<(String, String, String)> {
    let mut c = bin();
    c.arg("-c").arg(config());
    for i in inputs {
        c.arg("-r").arg(i);
    }
    let out = c
        .args([
            "--alerts",
            "-",
            "-q",
            "--learning-period",
            &learning_period(name),
        ])
        .output()
        .unwrap();
    ok(&out, "apiwatch -r");
    keys(&parse_lines(&out.stdout))
}

/// One capture through one sensor and two detectors; returns how many alerts each
/// detector wrote.
fn sharded_equals_single(server: &Server, name: &str, dir: &Path) -> Vec<usize> {
    let cap = capture(name);
    let expected = single_process(std::slice::from_ref(&cap), name);
    assert!(!expected.is_empty(), "{name}: no alerts to compare");
    let child = sensor(&server.url(), name, std::slice::from_ref(&cap), &[]);
    let out = wait(child, "the publishing sensor", Duration::from_secs(300));
    ok(&out, "apiwatch -r --publish");

    let paths: Vec<PathBuf> = (1..=2)
        .map(|k| dir.join(format!("{name}-{k}.json")))
        .collect();
    let children: Vec<Child> = (1..=2)
        .map(|k| detector(&server.url(), name, &format!("{k}/2"), &paths[k - 1], true))
        .collect();
    for (k, c) in children.into_iter().enumerate() {
        let out = wait(
            c,
            &format!("detector {}/2", k + 1),
            Duration::from_secs(300),
        );
        ok(&out, &format!("apiwatch detect --shard {}/2", k + 1));
    }
    let per_shard: Vec<Vec<Value>> = paths.iter().map(|p| read_alerts(p)).collect();
    let mut union: Vec<Value> = per_shard.concat();
    let got = keys(&union);
    assert!(
        got == expected,
        "{name}: the two detectors' alerts differ from one process's: {}",
        difference(&got, &expected)
    );
    union.clear();
    per_shard.iter().map(Vec::len).collect()
}

#[test]
fn two_detectors_write_exactly_the_alerts_of_one_process() {
    let Some(server) = Server::start() else {
        return;
    };
    let dir = common::fresh_dir("apiwatch-nats-alerts");
    let names = labelled();
    assert!(names.len() >= 8, "labelled captures: {names:?}");
    let mut written = [0, 0];
    for name in &names {
        let n = sharded_equals_single(&server, name, &dir);
        written[0] += n[0];
        written[1] += n[1];
    }
    // Each shard wrote its share (clients are spread over both; a TLS capture
    // without keys is all shard 1's: it judges every TLS connection record).
    assert!(
        written.iter().all(|n| *n > 0),
        "alerts per shard: {written:?}"
    );
    no_secret_in_the_stream(&server.dir, &["posture", "attacks", "graphql"]);

    // A detector without --until-idle runs until SIGINT and exits 0. Shard 1 alone
    // replays the stream: shard 2's epoch contributions are already in it.
    let path = dir.join("attacks-sigint.json");
    let want = read_alerts(&dir.join("attacks-1.json")).len();
    let child = detector(&server.url(), "attacks", "1/2", &path, false);
    let deadline = Instant::now() + Duration::from_secs(300);
    while read_alerts(&path).len() < want {
        assert!(Instant::now() < deadline, "the SIGINT detector fell behind");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = wait(child, "the SIGINT detector", Duration::from_secs(60));
    ok(&out, "apiwatch detect (SIGINT)");
    assert_eq!(
        keys(&read_alerts(&path)),
        keys(&read_alerts(&dir.join("attacks-1.json")))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Alerts compared when records may come in another order: the (kind, client)
/// multisets equal, and each timestamp within `bound` of its counterpart (sorted
/// within each kind and client).
fn same_within(got: &[(String, String, String)], want: &[(String, String, String)], bound: f64) {
    let pairs = |v: &[(String, String, String)]| {
        let mut p: Vec<(String, String)> = v.iter().map(|k| (k.0.clone(), k.1.clone())).collect();
        p.sort();
        p
    };
    assert!(
        pairs(got) == pairs(want),
        "kinds and clients differ: {}",
        difference(got, want)
    );
    let secs = |t: &str| chrono_like_seconds(t).unwrap_or_else(|| panic!("not a timestamp: {t}"));
    for (g, w) in got.iter().zip(want) {
        let d = (secs(&g.2) - secs(&w.2)).abs();
        assert!(d <= bound, "{g:?} is {d:.3} s from {w:?}");
    }
}

/// Seconds since the epoch of an alert timestamp (`2026-12-07T20:28:44.479456+0000`).
fn chrono_like_seconds(t: &str) -> Option<f64> {
    let (date, rest) = t.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let clock = rest.get(..rest.find(['+', '-', 'Z'])?)?;
    let mut c = clock.split(':');
    let (h, mi, s) = (
        c.next()?.parse::<f64>().ok()?,
        c.next()?.parse::<f64>().ok()?,
        c.next()?.parse::<f64>().ok()?,
    );
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + s)
}

/// Many sites: the attacks capture split by client subnet between two sensors
/// publishing at once (each paced at 40 times packet time, so they move through
/// the capture together), two detectors merging them on packet time: every alert
/// of one process is raised, each within the lateness bound of its time.
#[test]
fn two_sensors_split_by_subnet_still_raise_every_alert() {
    let Some(server) = Server::start() else {
        return;
    };
    let dir = common::fresh_dir("apiwatch-nats-split");
    let cap = capture("attacks");
    let expected = single_process(std::slice::from_ref(&cap), "attacks");
    // Every packet is between the server (10.77.0.2) and one client.
    let low = "(src net 10.77.0.0/26 and not src host 10.77.0.2) or (dst net 10.77.0.0/26 and not dst host 10.77.0.2)";
    let high = format!("not ({low})");
    let sensors: Vec<Child> = [low, high.as_str()]
        .iter()
        .map(|filter| {
            let mut args = vec!["--replay-speed", "40"];
            args.extend(filter.split(' '));
            sensor(&server.url(), "split", std::slice::from_ref(&cap), &args)
        })
        .collect();
    for (i, s) in sensors.into_iter().enumerate() {
        let out = wait(s, "a paced sensor", Duration::from_secs(120));
        ok(&out, &format!("sensor {i}"));
    }
    let lateness = "10s";
    let paths: Vec<PathBuf> = (1..=2)
        .map(|k| dir.join(format!("split-{k}.json")))
        .collect();
    let detectors: Vec<Child> = (1..=2)
        .map(|k| {
            detector_on(
                &server.url(),
                "split",
                "attacks",
                &config(),
                &format!("{k}/2"),
                &paths[k - 1],
                &["--until-idle", "2s", "--max-lateness", lateness],
            )
        })
        .collect();
    for (k, c) in detectors.into_iter().enumerate() {
        let out = wait(c, "a detector", Duration::from_secs(300));
        ok(&out, &format!("detector {}/2", k + 1));
    }
    let got = keys(
        &paths
            .iter()
            .flat_map(|p| read_alerts(p))
            .collect::<Vec<_>>(),
    );
    same_within(&got, &expected, 10.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A detector killed (SIGKILL) mid-stream and restarted with its state file loses
/// and duplicates no alert: with the other detector, exactly one process's alerts.
#[test]
fn a_detector_killed_and_restarted_loses_and_duplicates_nothing() {
    let Some(server) = Server::start() else {
        return;
    };
    let dir = common::fresh_dir("apiwatch-nats-kill");
    // Three captures read as one input: long enough to be killed in the middle.
    let inputs: Vec<PathBuf> = ["attacks", "kinto", "jsonserver"]
        .iter()
        .map(|n| capture(n))
        .collect();
    let expected = single_process(&inputs, "attacks");
    let out = wait(
        sensor(&server.url(), "kill", &inputs, &[]),
        "the publishing sensor",
        Duration::from_secs(300),
    );
    ok(&out, "apiwatch -r --publish");
    let state = dir.join("shard-1.state");
    let conf = dir.join("shard-1.toml");
    std::fs::write(
        &conf,
        format!(
            "[detect]\nsalt = \"one salt for every process\"\nstate_file = \"{}\"\n",
            state.display()
        ),
    )
    .unwrap();
    let paths: Vec<PathBuf> = (1..=2)
        .map(|k| dir.join(format!("kill-{k}.json")))
        .collect();
    let idle = ["--until-idle", "2s"];
    let start = |k: usize| {
        let c = if k == 1 { conf.clone() } else { config() };
        detector_on(
            &server.url(),
            "kill",
            "attacks",
            &c,
            &format!("{k}/2"),
            &paths[k - 1],
            &idle,
        )
    };
    let released = |state: &Path| -> Option<u64> {
        let v: Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
        v["apiwatch_detect"]["released"].as_u64()
    };
    let mut first = start(1);
    let second = start(2);
    // Killed once it has saved some progress (every 500 ms) and is still running.
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        assert!(
            first.try_wait().unwrap().is_none(),
            "shard 1 ended before it could be killed"
        );
        if let Some(n) = released(&state).filter(|n| *n > 0) {
            break n;
        }
        assert!(Instant::now() < deadline, "shard 1 saved no progress");
        std::thread::sleep(Duration::from_millis(10));
    };
    first.kill().unwrap();
    first.wait().unwrap();
    let alerts_at_kill = read_alerts(&paths[0]).len();
    let again = start(1);
    for (k, c) in [again, second].into_iter().enumerate() {
        let out = wait(c, "a detector", Duration::from_secs(300));
        ok(&out, &format!("detector {}/2", k + 1));
    }
    let final_released = released(&state).unwrap();
    assert!(
        at_kill < final_released,
        "killed after {at_kill} of {final_released} records: not in the middle"
    );
    let got = keys(
        &paths
            .iter()
            .flat_map(|p| read_alerts(p))
            .collect::<Vec<_>>(),
    );
    assert!(
        got == expected,
        "after the restart: {} (shard 1 had written {alerts_at_kill} alerts when killed)",
        difference(&got, &expected)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The secrets tshark finds in a capture's requests and answers (decrypted with the
/// keys a pcapng embeds): bearer-token signatures, Basic credentials, API keys,
/// cookie values, secret query values, passwords in bodies and tokens handed out.
/// Only values of 8 bytes or more (shorter ones would match by chance).
fn secrets_in(capture: &Path) -> Option<std::collections::BTreeSet<String>> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-Y", "http", "-T", "fields", "-E", "occurrence=a"])
        .args(["-E", "aggregator=\u{1}", "-E", "separator=\u{2}"])
        .args(["-e", "http.authorization", "-e", "http.request.line"])
        .args(["-e", "http.request.uri", "-e", "http.file_data"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found = std::collections::BTreeSet::new();
    let mut add = |v: &str| {
        let v = v.trim().trim_matches('"');
        if v.len() >= 8 {
            found.insert(v.to_string());
        }
    };
    let secret_name = |k: &str| {
        let k = k.to_ascii_lowercase();
        ["pass", "token", "key", "secret", "session", "sid"]
            .iter()
            .any(|w| k.contains(w))
    };
    for line in text.lines() {
        for field in line.split(['\u{1}', '\u{2}']) {
            let field = field.trim();
            if let Some(t) = field.strip_prefix("Bearer ") {
                add(t.rsplit('.').next().unwrap_or(t));
            } else if let Some(b) = field.strip_prefix("Basic ") {
                add(b);
            } else if let Some((name, value)) = field.split_once(": ") {
                let value = value.trim_end_matches("\\r\\n");
                if name.eq_ignore_ascii_case("cookie") {
                    value
                        .split(';')
                        .filter_map(|c| c.split_once('='))
                        .for_each(|(_, v)| add(v));
                } else if secret_name(name) && !name.eq_ignore_ascii_case("authorization") {
                    add(value);
                }
            }
            // `k=v` pairs (query strings, forms) and `"k": "v"` members (JSON).
            for pair in field.split(['?', '&']) {
                if let Some((k, v)) = pair.split_once('=')
                    && secret_name(k)
                {
                    add(v);
                }
            }
            let mut rest = field;
            while let Some(i) = rest.find("\":") {
                let key = rest[..i].rsplit('"').next().unwrap_or("");
                let after = rest[i + 2..].trim_start();
                if secret_name(key)
                    && let Some(v) = after.strip_prefix('"').and_then(|a| a.split('"').next())
                {
                    add(v);
                }
                rest = &rest[i + 2..];
            }
        }
    }
    Some(found)
}

/// No secret of the published captures is anywhere in the JetStream server's
/// storage (its message blocks hold the records as published).
fn no_secret_in_the_stream(storage: &Path, names: &[&str]) {
    fn files(dir: &Path, out: &mut Vec<u8>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend_from_slice(&b);
            }
        }
    }
    let mut stored = Vec::new();
    files(storage, &mut stored);
    assert!(
        stored.len() > 1 << 20,
        "the stream's storage is nearly empty"
    );
    for name in names {
        let Some(secrets) = secrets_in(&capture(name)) else {
            common::skip("tshark is not installed (apt-get install tshark)");
            return;
        };
        assert!(
            secrets.len() >= 5,
            "{name}: tshark found few secrets: {secrets:?}"
        );
        for s in &secrets {
            assert!(
                memchr::memmem::find(&stored, s.as_bytes()).is_none(),
                "{name}: the secret {s:?} was published"
            );
        }
    }
}

#[test]
fn detect_usage_errors_exit_2() {
    for args in [
        vec!["detect"],
        vec!["detect", "--from", "nats://127.0.0.1:1", "--shard", "3/2"],
        vec!["detect", "--from", "nats://127.0.0.1:1", "-r", "x.pcap"],
        vec!["-r", "x.pcap", "--shard", "1/2"],
        vec!["-r", "x.pcap", "--partitions", "8"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

impl Server {
    /// A nats-server as [`Server::start`] starts it, with a configuration file of
    /// `conf`'s text besides (TLS, authorization: the command line's port, address
    /// and storage win over the file). `None` (the test skips) without nats-server.
    fn start_with_config(conf: &str) -> Option<Server> {
        if Command::new("nats-server")
            .arg("--version")
            .output()
            .is_err()
        {
            common::skip("nats-server is not installed (apt-get install nats-server)");
            return None;
        }
        let dir = common::fresh_dir("apiwatch-nats-conf");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = dir.join("nats.conf");
        std::fs::write(&file, conf).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.join("store"))
            .arg("-c")
            .arg(&file)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        let mut server = Server { child, dir, port };
        // The INFO line comes in the clear before any TLS handshake.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok()
                    && line.starts_with("INFO ")
                    && line.contains("\"jetstream\":true")
                {
                    return Some(server);
                }
            }
            let log = || std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
            assert!(
                server.child.try_wait().unwrap().is_none(),
                "nats-server exited: {}",
                log()
            );
            assert!(
                Instant::now() < deadline,
                "nats-server did not start: {}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs the openssl CLI in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `NAME.pem` and `NAME.key` in `dir`: a CA, or (with `ca`) a certificate it signs
/// for `usage` (serverAuth, clientAuth) and the names `san`. EC P-256, two days.
fn certificate(dir: &Path, name: &str, ca: Option<(&str, u32)>, usage: &str, san: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let (key, pem, subj) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN=apiwatch test {name}"),
    );
    match ca {
        None => {
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            a.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            a.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(dir, &a);
        }
        Some((ca, serial)) => {
            let csr = format!("{name}.csr");
            let mut a = vec!["req"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(dir, &a);
            let ext = format!("{name}.ext");
            std::fs::write(
                dir.join(&ext),
                format!(
                    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                     extendedKeyUsage={usage}\nsubjectAltName={san}\n"
                ),
            )
            .unwrap();
            let (ca_pem, ca_key, serial) =
                (format!("{ca}.pem"), format!("{ca}.key"), serial.to_string());
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &ca_pem,
                    "-CAkey",
                    &ca_key,
                    "-set_serial",
                    &serial,
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join(&key), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Across hosts (issue #27): a nats-server that requires TLS, verifies client
/// certificates against its CA and knows one NKey user. A sensor and a detector
/// that bring the CA, a client certificate and the user's seed write, between them,
/// exactly the alerts of one process; without the client certificate, with another
/// CA or with another NKey each fails at once with one line (exit 1), and no output
/// carries the seed.
#[test]
fn tls_with_client_certificates_and_nkeys_carries_the_stream() {
    if Command::new("openssl").arg("version").output().is_err() {
        common::skip("the openssl CLI is not installed (it makes the test certificates)");
        return;
    }
    let dir = common::fresh_dir("apiwatch-nats-tls");
    certificate(&dir, "ca", None, "", "");
    certificate(&dir, "other-ca", None, "", "");
    certificate(
        &dir,
        "server",
        Some(("ca", 2)),
        "serverAuth",
        "IP:127.0.0.1,DNS:localhost",
    );
    certificate(
        &dir,
        "client",
        Some(("ca", 3)),
        "clientAuth",
        "DNS:apiwatch-sensor",
    );
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (file, s) in [("user.nk", &seed), ("stranger.nk", &stranger)] {
        std::fs::write(dir.join(file), format!("{s}\n")).unwrap();
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let conf = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n\
         authorization {{\n  users = [ {{ nkey: \"{}\" }} ]\n}}\n",
        path("server.pem"),
        path("server.key"),
        path("ca.pem"),
        user.public_key()
    );
    let Some(server) = Server::start_with_config(&conf) else {
        return;
    };
    let url = format!("tls://127.0.0.1:{}", server.port);
    // What one side brings: the CA it trusts, its certificate or none, its seed.
    let secure = |ca: &str, cert: bool, nk: &str| {
        let mut a = vec!["--nats-tls-ca".to_string(), path(ca)];
        if cert {
            a.extend([
                "--nats-tls-cert".to_string(),
                path("client.pem"),
                "--nats-tls-key".to_string(),
                path("client.key"),
            ]);
        }
        a.extend(["--nats-nkey".to_string(), path(nk)]);
        a
    };
    let stream = ["--nats-stream", "ATTACKS", "--nats-subject", "attacks"];
    let cap = capture("attacks");
    let lp = learning_period("attacks");
    let sensor = |sec: &[String]| {
        let mut c = bin();
        c.arg("-r")
            .arg(&cap)
            .args(["--publish", &url, "-q"])
            .args(stream)
            .args(sec)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let detector = |sec: &[String], alerts: &Path| {
        let mut c = bin();
        c.args([
            "detect",
            "--from",
            &url,
            "--shard",
            "1/1",
            "--until-idle",
            "2s",
            "-q",
        ])
        .args(stream)
        .args(["--learning-period", &lp, "--alerts"])
        .arg(alerts)
        .args(sec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        c
    };
    let no_seed = |out: &Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains(&seed) && !err.contains(&stranger),
            "a seed in: {err}"
        );
    };

    let single = bin()
        .arg("-r")
        .arg(&cap)
        .args(["--alerts", "-", "-q", "--learning-period", &lp])
        .output()
        .unwrap();
    ok(&single, "apiwatch -r");
    let expected = keys(&parse_lines(&single.stdout));
    assert!(!expected.is_empty(), "attacks: no alerts to compare");

    let good = secure("ca.pem", true, "user.nk");
    let out = wait(
        sensor(&good).spawn().unwrap(),
        "the TLS sensor",
        Duration::from_secs(300),
    );
    ok(&out, "apiwatch -r --publish tls://");
    no_seed(&out);
    let alerts = dir.join("alerts.json");
    let out = wait(
        detector(&good, &alerts).spawn().unwrap(),
        "the TLS detector",
        Duration::from_secs(300),
    );
    ok(&out, "apiwatch detect --from tls://");
    no_seed(&out);
    assert_eq!(
        keys(&read_alerts(&alerts)),
        expected,
        "the detector over TLS and NKey wrote other alerts than one process"
    );

    // Refused, at once and in one line, on either side.
    let refused = dir.join("refused.json");
    for (what, sec, needle) in [
        (
            "no client certificate",
            secure("ca.pem", false, "user.nk"),
            "--nats-tls-cert",
        ),
        (
            "another CA",
            secure("other-ca.pem", true, "user.nk"),
            "invalid peer certificate",
        ),
        (
            "another NKey",
            secure("ca.pem", true, "stranger.nk"),
            "authorization violation",
        ),
    ] {
        for (side, cmd) in [
            ("sensor", sensor(&sec)),
            ("detector", detector(&sec, &refused)),
        ] {
            let mut cmd = cmd;
            let started = Instant::now();
            let out = wait(cmd.spawn().unwrap(), what, Duration::from_secs(60));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{side}, {what}: {err}");
            assert_eq!(err.lines().count(), 1, "{side}, {what}: {err}");
            assert!(
                err.contains("level=error") && err.contains("cannot connect to NATS"),
                "{side}, {what}: {err}"
            );
            assert!(
                err.contains(needle),
                "{side}, {what}: {needle:?} not in {err}"
            );
            assert!(!err.contains("panicked"), "{side}, {what}: {err}");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{side}, {what}: took {:?}",
                started.elapsed()
            );
            no_seed(&out);
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

// A nats-server outage mid-capture (#27): the sensor holds what the server has not
// stored, publishes it again in order once the server is back, and beyond its
// buffer drops and counts.

impl Server {
    /// Kills the server as a crash would, keeping its storage.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port with the same storage.
    fn restart(&mut self) {
        self.child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("restart nats-server");
        let port = self.port;
        wait_for("nats-server to start again", || nats_ready(port));
    }
}

/// A free loopback port below the kernel's ephemeral range: the kernel never gives
/// it to a socket of its own choosing, so while a test has stopped its server no
/// client connection takes it, and a client retrying it cannot connect to itself.
fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let first_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if first_ephemeral > 11_000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let mut pick = h.finish();
        for _ in 0..1000 {
            let port = 10_000 + (pick % u64::from(first_ephemeral - 10_000)) as u16;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
            pick = pick
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `ready` every 50 ms; fails after 30 s.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a nats-server with JetStream answers on this loopback port (its INFO line).
fn nats_ready(port: u16) -> bool {
    let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok()
        && line.starts_with("INFO ")
        && line.contains("\"jetstream\":true")
}

fn gunzip(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A child's stderr, read as it comes (so that it never fills the pipe).
struct Stderr {
    text: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Stderr {
    fn of(child: &mut Child) -> Stderr {
        use std::io::Read;
        let mut pipe = child.stderr.take().expect("stderr piped");
        let text = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = text.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Stderr {
            text,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// Everything, once the child exited.
    fn finish(mut self) -> String {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.text()
    }
}

/// The numeric fields of the first logfmt line whose message is `msg`.
fn log_numbers(stderr: &str, msg: &str) -> std::collections::HashMap<String, u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("msg=\"{msg}\"")))
        .unwrap_or_else(|| panic!("no '{msg}' line in: {stderr}"));
    line.split(' ')
        .filter_map(|t| t.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// The `Nats-Msg-Id` of every exchange record in the stream, in stream order, and
/// the stream's message count.
/// How many clock records (a live sensor's quiet moments) the stream holds.
fn clock_records(url: &str, stream: &str, prefix: &str) -> u64 {
    use async_nats::jetstream;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to nats-server");
        let js = jetstream::new(client);
        let s = js.get_stream(stream).await.expect("the stream");
        let mut c = s
            .create_consumer(jetstream::consumer::pull::Config {
                filter_subject: format!("{prefix}.exchanges.clock"),
                ..Default::default()
            })
            .await
            .unwrap();
        c.info().await.unwrap().num_pending
    })
}

fn stored_ids(url: &str, stream: &str, prefix: &str) -> (Vec<String>, u64) {
    use async_nats::jetstream;
    use futures_util::StreamExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to nats-server");
        let js = jetstream::new(client);
        let mut s = js.get_stream(stream).await.expect("the stream");
        let total = s.info().await.unwrap().state.messages;
        let mut msgs = s
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("{prefix}.exchanges.>"),
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .unwrap()
            .messages()
            .await
            .unwrap();
        let mut ids = Vec::new();
        let mut read = 0;
        while read < total {
            let m = tokio::time::timeout(Duration::from_secs(30), msgs.next())
                .await
                .expect("the stream's records within 30 s")
                .expect("more records")
                .expect("a record");
            read += 1;
            // A live sensor's clock records (quiet moments) are not exchanges.
            if m.subject.ends_with(".clock") {
                continue;
            }
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_string());
            ids.push(id.expect("a record without Nats-Msg-Id"));
        }
        let exchanges = ids.len() as u64;
        (ids, exchanges)
    })
}

/// Every id is `<sensor>-<n>` of one sensor, n = 1, 2, ... `want` in order: each
/// exchange stored exactly once, in the order the sensor saw them.
fn assert_once_in_order(ids: &[String], want: u64) {
    assert_eq!(ids.len() as u64, want, "records stored != exchanges");
    let sensor = ids[0].split_once('-').expect("<sensor>-<n>").0;
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            id,
            &format!("{sensor}-{}", i + 1),
            "record {} of the stream is not the sensor's exchange {}",
            i + 1,
            i + 1
        );
    }
}

#[test]
fn a_ten_second_outage_loses_nothing_within_the_buffer() {
    use std::io::Write;
    let Some(mut server) = Server::start() else {
        return;
    };
    let name = "attacks";
    let cap = capture(name);
    let pcap = gunzip(&cap);
    let mut sensor = bin()
        .arg("-c")
        .arg(config())
        .args(["-r", "-", "--publish", &server.url()])
        .args(["--nats-stream", &stream_name(name)])
        .args(["--nats-subject", &subject(name)])
        .env("APIWATCH_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Stderr::of(&mut sensor);
    let mut stdin = sensor.stdin.take().unwrap();
    let (a, b) = (pcap.len() / 3, pcap.len() * 2 / 3);
    // The first third, then the server is killed while the sensor still publishes
    // it (the pipe holds the last 64 KiB it has not read yet).
    stdin.write_all(&pcap[..a]).unwrap();
    server.kill();
    let down = Instant::now();
    // The second third while the server is away: held.
    stdin.write_all(&pcap[a..b]).unwrap();
    std::thread::sleep(Duration::from_secs(10).saturating_sub(down.elapsed()));
    server.restart();
    let up = Instant::now();
    let outage = up - down;
    stdin.write_all(&pcap[b..]).unwrap();
    drop(stdin);
    let status = {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(s) = sensor.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = sensor.kill();
                let _ = sensor.wait();
                panic!("the sensor did not finish: {}", stderr.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let done = up.elapsed();
    let stderr = stderr.finish();
    assert!(status.success(), "the sensor failed ({status}): {stderr}");
    let p = log_numbers(&stderr, "Published to NATS");
    let exchanges = log_numbers(&stderr, "Summary: http")["exchanges"];
    assert!(exchanges > 8000, "{stderr}");
    assert_eq!(p["acked"], exchanges, "{stderr}");
    assert_eq!(p["published"], exchanges, "{stderr}");
    assert_eq!(p["dropped"], 0, "{stderr}");
    assert_eq!(p["out_of_order"], 0, "{stderr}");
    assert!(
        p["lost_connections"] >= 1,
        "the outage went unseen: {stderr}"
    );
    assert!(p["buffered_peak"] <= 65_536, "{stderr}");
    let back = log_numbers(
        &stderr,
        "The NATS server is back: publishing the held exchanges again, oldest first",
    );
    // Figures for docs/distributed.md (shown with --nocapture).
    eprintln!(
        "outage {outage:?}; reconnected {} ms after the loss (about {} ms after the restart) holding {}; exited {done:?} after the restart; retried {}, {} of them already stored; held at most {}",
        back["away_ms"],
        back["away_ms"] as i64 - outage.as_millis() as i64,
        back["held"],
        p["retried"],
        p["duplicates"],
        p["buffered_peak"]
    );

    // The stream holds every exchange exactly once, in the sensor's order...
    let (ids, total) = stored_ids(&server.url(), &stream_name(name), &subject(name));
    assert_eq!(total, exchanges);
    assert_once_in_order(&ids, exchanges);

    // ...so one detector writes exactly the alerts of one process.
    let expected = single_process(std::slice::from_ref(&cap), name);
    assert!(!expected.is_empty());
    let dir = common::fresh_dir("apiwatch-nats-outage");
    let path = dir.join("alerts.json");
    let out = wait(
        detector(&server.url(), name, "1/1", &path, true),
        "the detector",
        Duration::from_secs(300),
    );
    ok(&out, "apiwatch detect --shard 1/1");
    assert_eq!(keys(&read_alerts(&path)), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A child killed (and waited for) when dropped: nothing outlives a failed test.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace made for one test (loopback up, a veth pair `awpa`/`awpb`
/// inside), removed when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

impl Netns {
    /// `None` (the test skips) without root, iproute2 or nats-server.
    fn make() -> Option<Netns> {
        let have = |c: &str, a: &str| Command::new(c).arg(a).output().is_ok();
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 || !have("ip", "-V") || !have("nats-server", "--version")
        {
            common::skip("needs root, iproute2 and nats-server");
            return None;
        }
        // A name no other run on this machine has (pids repeat across containers).
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let ns = Netns(format!("awnats-{:08x}", h.finish() as u32));
        let ip = |args: &[&str]| {
            let ok = Command::new("ip")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ip {}", args.join(" "));
        };
        ip(&["netns", "add", &ns.0]);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ip(&[
            "-n", &ns.0, "link", "add", "awpa", "type", "veth", "peer", "name", "awpb",
        ]);
        ip(&["-n", &ns.0, "link", "set", "awpa", "up"]);
        ip(&["-n", &ns.0, "link", "set", "awpb", "up"]);
        Some(ns)
    }

    /// Runs `f` on a thread that entered the namespace: the sockets it opens are there.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        use std::os::fd::AsRawFd;
        let path = format!("/var/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("the namespace");
            // SAFETY: setns(2) moves this thread only, with a descriptor it holds open.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }

    /// A nats-server with JetStream on the namespace's loopback, ready.
    fn nats(&self, port: u16, dir: &Path) -> Reaped {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.0,
                "nats-server",
                "-js",
                "-a",
                "127.0.0.1",
            ])
            .args(["-p", &port.to_string(), "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        wait_for("nats-server in the namespace", || {
            self.run(move || nats_ready(port))
        });
        Reaped(child)
    }

    /// Sends every frame of an Ethernet pcap out of `awpa` (so they arrive on
    /// `awpb`), 64 frames a millisecond at most; returns how many were sent.
    fn inject(&self, pcap: Vec<u8>) -> usize {
        self.run(move || {
            let name = std::ffi::CString::new("awpa").unwrap();
            // SAFETY: plain libc calls on a socket this closure owns and closes;
            // the frame slices outlive each sendto.
            unsafe {
                let ifindex = libc::if_nametoindex(name.as_ptr());
                assert!(ifindex > 0, "no awpa");
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
                assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
                let mut to: libc::sockaddr_ll = std::mem::zeroed();
                to.sll_family = libc::AF_PACKET as u16;
                to.sll_ifindex = ifindex as i32;
                to.sll_halen = 6;
                let (mut at, mut sent) = (24, 0);
                while at + 16 <= pcap.len() {
                    let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap());
                    let frame = &pcap[at + 16..(at + 16 + len as usize).min(pcap.len())];
                    at += 16 + len as usize;
                    let n = libc::sendto(
                        fd,
                        frame.as_ptr().cast(),
                        frame.len(),
                        0,
                        (&to as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    );
                    if n == frame.len() as isize {
                        sent += 1;
                        if sent % 64 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
                libc::close(fd);
                sent
            }
        })
    }
}

#[test]
fn a_live_sensor_without_its_server_drops_beyond_the_buffer_and_counts() {
    let Some(ns) = Netns::make() else {
        return;
    };
    const BUFFER: u64 = 100;
    let dir = common::fresh_dir("apiwatch-nats-drop");
    let port = 4222;
    let url = format!("nats://127.0.0.1:{port}");
    let server = ns.nats(port, &dir);
    let mut sensor = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(env!("CARGO_BIN_EXE_apiwatch"))
            .args(["-i", "awpb", "--publish", &url])
            .args(["--publish-buffer", &BUFFER.to_string()])
            .env("APIWATCH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = Stderr::of(&mut sensor.0);
    wait_for("the sensor to capture", || {
        assert!(
            sensor.0.try_wait().unwrap().is_none(),
            "the sensor exited: {}",
            stderr.text()
        );
        stderr.text().contains("msg=Capturing")
    });
    // The server goes away; a whole capture arrives on the wire meanwhile: the
    // sensor holds the first BUFFER exchanges and drops the rest, counted.
    drop(server);
    let sent = ns.inject(gunzip(&capture("attacks")));
    assert!(sent > 40_000, "only {sent} frames sent");
    std::thread::sleep(Duration::from_secs(1));
    // Back: the held exchanges are stored.
    let server = ns.nats(port, &dir);
    let u = url.clone();
    wait_for("the held exchanges to be stored", || {
        let u = u.clone();
        ns.run(move || stored_ids(&u, "APIWATCH", "apiwatch").1 >= BUFFER)
    });
    // A quiet wire: the sensor says how far its packet time went (clock records,
    // one a second at most), so detectors merging sensors need not wait on it.
    let u = url.clone();
    wait_for("a clock record", || {
        let u = u.clone();
        ns.run(move || clock_records(&u, "APIWATCH", "apiwatch") >= 1)
    });
    // SAFETY: a plain kill(2) of our own child (`ip netns exec` execs apiwatch).
    assert_eq!(unsafe { libc::kill(sensor.0.id() as i32, libc::SIGINT) }, 0);
    let status = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = sensor.0.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "no exit: {}", stderr.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let stderr = stderr.finish();
    assert!(status.success(), "the sensor failed ({status}): {stderr}");
    let p = log_numbers(&stderr, "Published to NATS");
    let exchanges = log_numbers(&stderr, "Summary: http")["exchanges"];
    let u = url.clone();
    let (ids, stored) = ns.run(move || stored_ids(&u, "APIWATCH", "apiwatch"));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "live drop path: {exchanges} exchanges, {} stored, {} dropped, held at most {}",
        p["acked"], p["dropped"], p["buffered_peak"]
    );
    assert!(exchanges > 2 * BUFFER, "too few exchanges seen: {stderr}");
    assert_eq!(p["acked"] + p["dropped"], exchanges, "{stderr}");
    assert_eq!(p["buffered_peak"], BUFFER, "{stderr}");
    // The buffer was full while the server was away: exactly BUFFER held, the rest
    // dropped (an exchange decoded after the restart may be stored too).
    assert!(p["dropped"] > 0 && p["acked"] >= BUFFER, "{stderr}");
    assert!(p["lost_connections"] >= 1, "{stderr}");
    assert!(stderr.contains("publish buffer is full"), "{stderr}");
    assert_eq!(stored, p["acked"]);
    assert_eq!(p["out_of_order"], 0);
    // Each exchange the sensor kept is stored once, in the sensor's order.
    assert_once_in_order(&ids, stored);
}
