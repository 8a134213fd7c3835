//! The server, the processes and the alert comparisons every test here uses.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, bin, parse_lines, repo};

/// A nats-server with JetStream on a free loopback port, killed (and its storage
/// removed) when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
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
    pub(crate) fn start() -> Option<Server> {
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
            if nats_ready(port) {
                return Some(server);
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// Waits for a child with a deadline (killed and failed past it).
pub(crate) fn wait(mut child: Child, what: &str, limit: Duration) -> Output {
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

pub(crate) fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn learning_period(name: &str) -> String {
    let text = std::fs::read_to_string(repo(&format!("captures/{name}.labels.json"))).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["learning_period"].as_str().unwrap().to_string()
}

pub(crate) fn capture(name: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo(&format!("captures/{name}.labels.json"))).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    repo(&format!("captures/{}", v["capture"].as_str().unwrap()))
}

/// Every labelled capture in captures/ (each has a `NAME.labels.json`).
pub(crate) fn labelled() -> Vec<String> {
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
pub(crate) fn keys(alerts: &[Value]) -> Vec<(String, String, String)> {
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
pub(crate) fn stream_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// A subject prefix for a capture.
pub(crate) fn subject(name: &str) -> String {
    name.replace('-', "_")
}

/// What one multiset of alert keys has that the other lacks, both ways, for a
/// failure message.
pub(crate) fn difference(
    got: &[(String, String, String)],
    want: &[(String, String, String)],
) -> String {
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

pub(crate) fn read_alerts(path: &Path) -> Vec<Value> {
    parse_lines(&std::fs::read(path).unwrap_or_default())
}

/// The configuration every process of a comparison shares: principals are keyed
/// hashes, so one salt for all (as docs/distributed.md asks of a deployment).
pub(crate) fn config() -> PathBuf {
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

pub(crate) fn detector(
    url: &str,
    name: &str,
    shard: &str,
    alerts: &Path,
    until_idle: bool,
) -> Child {
    let idle: &[&str] = if until_idle {
        &["--until-idle", "2s"]
    } else {
        &[]
    };
    detector_on(url, name, name, &config(), shard, alerts, idle)
}

/// A detector of shard `shard` on the stream of `stream` (named as `stream_name`
/// and `subject` make it), with the learning period of capture `name`.
pub(crate) fn detector_on(
    url: &str,
    stream: &str,
    name: &str,
    config: &Path,
    shard: &str,
    alerts: &Path,
    extra: &[&str],
) -> Child {
    bin()
        // Not quiet: the last line ("Detector finished") says what the merge did.
        .args(["detect", "--from", url, "--shard", shard])
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
pub(crate) fn sensor(url: &str, stream: &str, inputs: &[PathBuf], extra: &[&str]) -> Child {
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
pub(crate) fn single_process(inputs: &[PathBuf], name: &str) -> Vec<(String, String, String)> {
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

/// A free loopback port below the kernel's ephemeral range: the kernel never gives
/// it to a socket of its own choosing, so while a test has stopped its server no
/// client connection takes it, and a client retrying it cannot connect to itself.
pub(crate) fn free_port() -> u16 {
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
pub(crate) fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a nats-server with JetStream answers on this loopback port (its INFO line).
pub(crate) fn nats_ready(port: u16) -> bool {
    let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok()
        && line.starts_with("INFO ")
        && line.contains("\"jetstream\":true")
}

/// The numeric fields of the first logfmt line whose message is `msg`.
pub(crate) fn log_numbers(stderr: &str, msg: &str) -> std::collections::HashMap<String, u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("msg=\"{msg}\"")))
        .unwrap_or_else(|| panic!("no '{msg}' line in: {stderr}"));
    line.split(' ')
        .filter_map(|t| t.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}
