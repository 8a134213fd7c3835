//! Live capture on a real AF_PACKET socket: two network namespaces joined by a veth
//! pair made here, python's http.server on one side, curl on the other, `apiwatch -i`
//! on the client's veth, then SIGINT mid-run: exit 0 with every exchange written.
//! A second test runs the JSON API with benign clients and a brute-force loop, each
//! request on its own connection so one client's connections land on different
//! workers, and checks the same exchanges and the alert arrive for 1 and 3 workers.
//! Needs root (CI runs as root); elsewhere the tests say they were skipped.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, sleep};
use std::time::{Duration, Instant};

use common::parse_lines;

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Netns {
    cli: String,
    srv: String,
    veth: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.cli]);
        sh(&["ip", "netns", "del", &self.srv]);
        // Still in the root namespace when building the pair failed half-way.
        sh(&["ip", "link", "del", &self.veth]);
    }
}

/// A random name part for this test process, so that no other run on the machine
/// (another worktree, a container with its own pid numbering) and nothing a killed
/// run left behind has the same namespace and interface names. A part of the pid was
/// used before: it repeats, and containers start their pids at 1.
fn token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN
        .get_or_init(|| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            format!("{:08x}", h.finish() as u32)
        })
        .clone()
}

/// Two namespaces joined by a veth pair: client 10.78.<n>.1 on `vc`, server
/// 10.78.<n>.2 on `vs`. Removed when dropped. Names carry [`token`] and `n` (one
/// per test): interface names stay under 16 bytes.
fn netns_pair(n: u8) -> (Netns, String, String) {
    let id = format!("{}{n}", token());
    let (vc, vs) = (format!("awc{id}"), format!("aws{id}"));
    let ns = Netns {
        cli: format!("awt-c{id}"),
        srv: format!("awt-s{id}"),
        veth: vc.clone(),
    };
    let ok = sh(&["ip", "netns", "add", &ns.cli])
        && sh(&["ip", "netns", "add", &ns.srv])
        && sh(&[
            "ip", "link", "add", &vc, "type", "veth", "peer", "name", &vs,
        ])
        && sh(&["ip", "link", "set", &vc, "netns", &ns.cli])
        && sh(&["ip", "link", "set", &vs, "netns", &ns.srv])
        && sh(&[
            "ip",
            "-n",
            &ns.cli,
            "addr",
            "add",
            &format!("10.78.{n}.1/24"),
            "dev",
            &vc,
        ])
        && sh(&[
            "ip",
            "-n",
            &ns.srv,
            "addr",
            "add",
            &format!("10.78.{n}.2/24"),
            "dev",
            &vs,
        ])
        && sh(&["ip", "-n", &ns.cli, "link", "set", &vc, "up"])
        && sh(&["ip", "-n", &ns.srv, "link", "set", &vs, "up"]);
    assert!(ok, "could not build the namespaces");
    (ns, vc, vs)
}

/// How long a wait for something observable may take before the test fails: far
/// more than it takes on a loaded machine, and only spent when something is wrong.
const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `ready` every 20 ms until it holds; fails with `what` after [`DEADLINE`].
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} (waited {DEADLINE:?})");
        sleep(Duration::from_millis(20));
    }
}

/// Complete lines in `path` (0 while it does not exist).
fn lines_in(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

/// A running `apiwatch -i` (inside `ip netns exec`, which execs it: same pid). Its
/// stderr is read as it comes, so the test can wait for the log line that says the
/// capture is open. Killed if the test fails while it runs.
struct Sensor {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Sensor {
    /// Starts `cmd` with info logging and stderr piped.
    fn start(mut cmd: Command) -> Sensor {
        let mut child = cmd
            .env("APIWATCH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Sensor {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until apiwatch says it is capturing: logged once every socket is bound
    /// to the interface, has its filter and has joined the fanout group, and
    /// privileges are dropped. Counting bound sockets in /proc/<pid>/net/packet (as
    /// before) passed while the last socket had not joined the fanout group yet (a
    /// socket outside the group sees every packet and the group rehashes flows when
    /// it joins: doubled or split connections), with `-i any` as soon as the sockets
    /// existed, and before `ip netns exec` had even entered the namespace it read the
    /// root namespace's sockets; the 200 ms sleep after it only made that unlikely.
    fn wait_capturing(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        while !self.stderr().contains("msg=Capturing") {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "apiwatch exited ({status}) before capturing: {}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "apiwatch did not start capturing: {}",
                self.stderr()
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT, then its exit status and all it wrote on stderr.
    fn stop(mut self) -> (ExitStatus, String) {
        unsafe { libc::kill(self.pid() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status, self.stderr())
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether this machine can run the live tests (root, iproute2, curl).
fn can_run() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !sh(&["ip", "-V"]) || !sh(&["curl", "--version"]) {
        common::skip("needs root, iproute2 and curl");
        return false;
    }
    true
}

#[test]
fn live_capture_on_a_veth_reports_exchanges_and_stops_cleanly_on_sigint() {
    if !can_run() {
        return;
    }
    let (ns, vc, _vs) = netns_pair(0);
    let dir = common::fresh_dir("apiwatch-live");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello\n").unwrap();
    let _server = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &ns.srv, "python3", "-m", "http.server"])
            .args(["8000", "--bind", "10.78.0.2", "--directory"])
            .arg(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // A response still arriving when the signal comes: 1 KiB every 50 ms (for a
    // minute) of a declared 100 MB.
    let slow = "import socket, time\n\
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind(('10.78.0.2', 8001)); s.listen()\n\
        c, _ = s.accept(); c.recv(65536)\n\
        c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 100000000\\r\\n\\r\\n')\n\
        for _ in range(1200):\n    c.sendall(b'x' * 1024); time.sleep(0.05)\n";
    let slow_server = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &ns.srv, "python3", "-c", slow])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let exchanges = dir.join("exchanges.jsonl");
    // Metrics on the client's address, reached over the namespace's loopback (not the
    // captured veth).
    assert!(sh(&["ip", "-n", &ns.cli, "link", "set", "lo", "up"]));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.cli])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args([
            "-i",
            &vc,
            "--workers",
            "2",
            "--web.listen-address",
            "10.78.0.1:9100",
            "--alerts",
            "/dev/null",
            "--exchanges",
        ])
        .arg(&exchanges);
    let mut aw = Sensor::start(cmd);
    aw.wait_capturing();
    // Wait (bounded) for the server, then make a few requests.
    let curl = |path: &str| {
        let url = format!("http://10.78.0.2:8000{path}");
        sh(&[
            "ip",
            "netns",
            "exec",
            &ns.cli,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            &url,
        ])
    };
    wait_until("server did not start", || curl("/"));
    for path in ["/", "/missing", "/also-missing"] {
        curl(path);
    }
    // apiwatch stops reading at the signal: what the kernel put in the rings and no
    // worker read yet is not seen. So the signal waits until it has been read: these
    // exchanges in the file...
    wait_until("the first exchanges did not reach the file", || {
        let seen = exchanges_in(&exchanges);
        seen.iter().any(|e| e["uri"] == "/also-missing")
            && seen.iter().filter(|e| e["uri"] == "/").count() >= 2
    });
    // ...then the slow response well under way (its body arriving at the client) and
    // read by apiwatch: the bytes it counts pass what crossed the veth before the
    // download by 6 KiB, which only the download's packets (its request first, on
    // the same socket) can make up.
    wait_listening(slow_server.0.id(), "10.78.0.2", 8001);
    let before = veth_bytes(&ns.cli, &vc);
    let body = dir.join("slow.body");
    let _download = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &ns.cli, "curl", "-s", "-o"])
            .arg(&body)
            .args(["--max-time", "60", "http://10.78.0.2:8001/slow"])
            .spawn()
            .unwrap(),
    );
    wait_until("the slow response never started", || {
        std::fs::metadata(&body).map_or(0, |m| m.len()) >= 8 * 1024
    });
    wait_until("apiwatch did not read the slow response", || {
        captured_bytes(&ns.cli, "10.78.0.1:9100").is_some_and(|b| b >= before + 6 * 1024)
    });
    let signalled = Instant::now();
    let (status, stderr) = aw.stop();
    let stop_time = signalled.elapsed();
    assert!(
        stop_time < Duration::from_secs(3),
        "took {stop_time:?} to stop"
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    let got = parse_lines(&std::fs::read(&exchanges).unwrap());
    let seen: Vec<(String, u64)> = got
        .iter()
        .map(|e| {
            (
                e["uri"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    for want in [("/missing", 404), ("/also-missing", 404)] {
        assert!(
            seen.contains(&(want.0.to_string(), want.1)),
            "{want:?} not in {seen:?}"
        );
    }
    assert!(
        seen.iter().filter(|(u, s)| u == "/" && *s == 200).count() >= 2,
        "{seen:?}"
    );
    // The download in flight at the signal was flushed: request and response head.
    assert!(seen.contains(&("/slow".to_string(), 200)), "{seen:?}");
    let big = got.iter().find(|e| e["uri"] == "/slow").unwrap();
    let body = big["response_body_len"].as_u64().unwrap_or(0);
    assert!(
        body > 0 && body < 1 << 20,
        "partial body expected: {big}\n{stderr}"
    );
}

/// One live run of the API scenario: what apiwatch wrote.
struct Observed {
    exchanges: Vec<serde_json::Value>,
    exchanges_path: std::path::PathBuf,
    alerts: Vec<serde_json::Value>,
    stderr: String,
}

/// The exchanges of the API scenario: 20 benign requests, then 15 failed logins.
const SCENARIO: usize = 35;

/// Runs the JSON API in the server namespace, `apiwatch -i` (with `args`) on the
/// client's veth, benign traffic then a brute-force loop from the client; SIGINT once
/// `expect` exchanges are in the exchange log.
fn api_scenario(n: u8, args: &[&str], expect: usize) -> Observed {
    api_scenario_with(n, args, expect, &|_, _| {})
}

/// As [`api_scenario`]; `between(pid, exchanges_path)` runs after the benign traffic
/// and before the brute force.
fn api_scenario_with(
    n: u8,
    args: &[&str],
    expect: usize,
    between: &dyn Fn(u32, &Path),
) -> Observed {
    let (ns, vc, _vs) = netns_pair(n);
    let srv_ip = format!("10.78.{n}.2");
    let server_script = common::repo("scripts/capture-kit/api_server.py");
    let _server = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &ns.srv, "python3"])
            .arg(&server_script)
            .args([srv_ip.as_str(), "8000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dir = common::fresh_dir(&format!("apiwatch-live-api-{n}"));
    // A log directory the --user test's unprivileged user can create files in.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (exchanges, alerts) = (dir.join("exchanges.jsonl"), dir.join("alerts.jsonl"));
    // One curl per request, so one connection per request: a single curl would reuse
    // connections the server is closing and retry, which varies from run to run.
    let curl = |extra: &[&str], urls: &[String]| {
        urls.iter().all(|url| {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns.cli, "curl", "-s", "--max-time", "5"]);
            c.args(extra).arg(url);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            c.status().is_ok_and(|s| s.success())
        })
    };
    let health = vec![format!("http://{srv_ip}:8000/health")];
    wait_until("API server did not start", || curl(&[], &health));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.cli])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args(["-i", &vc, "--alerts"])
        .arg(&alerts)
        .arg("--exchanges")
        .arg(&exchanges)
        .args(args);
    let mut aw = Sensor::start(cmd);
    aw.wait_capturing();
    let items: Vec<String> = (0..20)
        .map(|i| format!("http://{srv_ip}:8000/api/items?page={i}"))
        .collect();
    assert!(curl(&[], &items));
    between(aw.pid(), &exchanges);
    let login: Vec<String> = (0..15)
        .map(|_| format!("http://{srv_ip}:8000/api/login"))
        .collect();
    curl(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"username":"alice","password":"not-her-password"}"#,
        ],
        &login,
    );
    // apiwatch stops reading at the signal, and what its workers had not read from
    // the rings by then is never seen: the signal waits for the exchanges to be in
    // the file (written within a second), not a fixed 500 ms. (With nothing to
    // expect, as behind a filter that drops it all, there is nothing to wait for.)
    wait_until(
        &format!("{expect} exchanges did not reach {}", exchanges.display()),
        || lines_in(&exchanges) >= expect,
    );
    let (status, stderr) = aw.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
    Observed {
        exchanges: parse_lines(&std::fs::read(&exchanges).unwrap()),
        exchanges_path: exchanges.clone(),
        alerts: parse_lines(&std::fs::read(&alerts).unwrap()),
        stderr,
    }
}

/// (uri, status) of every exchange, sorted: workers hand exchanges over out of step.
fn exchange_set(o: &Observed) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = o
        .exchanges
        .iter()
        .map(|e| {
            (
                e["uri"].as_str().unwrap_or("").to_string(),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

fn alert_kinds(o: &Observed) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = o
        .alerts
        .iter()
        .map(|a| {
            (
                a["alert"]["signature"].as_str().unwrap_or("").to_string(),
                a["src_ip"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn one_and_three_workers_see_the_same_exchanges_and_catch_the_brute_force() {
    if !can_run() {
        return;
    }
    let one = api_scenario(1, &["--workers", "1", "tcp", "port", "8000"], SCENARIO);
    // Three capture workers and three detection shards.
    let config =
        std::env::temp_dir().join(format!("apiwatch-live-shards-{}.toml", std::process::id()));
    std::fs::write(&config, "[detect]\nshards = 3\n").unwrap();
    let c = config.to_str().unwrap();
    let three = api_scenario(
        2,
        &["--workers", "3", "-c", c, "tcp", "port", "8000"],
        SCENARIO,
    );
    let _ = std::fs::remove_file(&config);
    assert_complete(&one, "10.78.1.1");
    assert_complete(&three, "10.78.2.1");
    assert_eq!(exchange_set(&one), exchange_set(&three), "{}", three.stderr);
    let three_kinds: Vec<String> = alert_kinds(&three).into_iter().map(|k| k.0).collect();
    let one_kinds: Vec<String> = alert_kinds(&one).into_iter().map(|k| k.0).collect();
    assert_eq!(one_kinds, three_kinds);
    // The summary reports the kernel's drop counter.
    assert!(three.stderr.contains(" kernel_drops="), "{}", three.stderr);
}

#[test]
fn a_filter_that_excludes_the_traffic_sees_nothing() {
    if !can_run() {
        return;
    }
    let o = api_scenario(3, &["--workers", "2", "tcp", "port", "9999"], 0);
    assert!(o.exchanges.is_empty(), "{:?}", o.exchanges);
    assert!(
        o.stderr.contains("msg=\"Summary: packets\" packets=0 "),
        "{}",
        o.stderr
    );
}

/// The standard outcome of the scenario: every exchange, and the brute force caught.
fn assert_complete(o: &Observed, client: &str) {
    let set = exchange_set(o);
    assert_eq!(
        set.iter()
            .filter(|(u, s)| u.starts_with("/api/items") && *s == 200)
            .count(),
        20,
        "{set:?}\n{}",
        o.stderr
    );
    assert_eq!(
        set.iter()
            .filter(|(u, s)| u == "/api/login" && *s == 401)
            .count(),
        15,
        "{set:?}"
    );
    let kinds = alert_kinds(o);
    assert!(
        kinds
            .iter()
            .any(|(sig, ip)| sig.contains("brute") && ip == client),
        "no brute-force alert: {kinds:?}"
    );
}

#[cfg(feature = "libpcap")]
#[test]
fn the_libpcap_backend_with_two_workers_sees_every_exchange() {
    if !can_run() {
        return;
    }
    let o = api_scenario(
        4,
        &[
            "--capture-backend",
            "libpcap",
            "--workers",
            "2",
            "tcp",
            "port",
            "8000",
        ],
        SCENARIO,
    );
    assert_complete(&o, "10.78.4.1");
}

#[test]
fn sighup_reopens_the_outputs_and_user_drops_root() {
    if !can_run() {
        return;
    }
    // Outputs are opened as root, then apiwatch runs as nobody; after the benign
    // traffic the exchange log is rotated away and SIGHUP makes a new one.
    let rotated = std::cell::RefCell::new(None);
    let o = api_scenario_with(
        5,
        &["--user", "nobody", "--workers", "2"],
        15,
        &|pid, path| {
            // Rotate once the benign traffic is in the file (flushed within a second
            // on a quiet wire), so the test does not depend on how loaded the machine
            // is.
            wait_until("the benign traffic never reached the file", || {
                lines_in(path) >= 20
            });
            let old = path.with_extension("1");
            std::fs::rename(path, &old).unwrap();
            unsafe { libc::kill(pid as i32, libc::SIGHUP) };
            // The brute force starts once apiwatch has acted on the signal: the new
            // file exists (made at its next quiet moment or exchange), rather than
            // 200 ms later, when a loaded machine may not have run the handler yet
            // and the logins would go to the rotated file.
            wait_until("SIGHUP did not reopen the exchange log", || path.exists());
            *rotated.borrow_mut() = Some(old);
        },
    );
    let old = rotated.into_inner().unwrap();
    let before = parse_lines(&std::fs::read(&old).unwrap());
    assert!(
        before
            .iter()
            .filter(|e| e["uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("/api/items")))
            .count()
            == 20,
        "the rotated file should hold the benign traffic: {before:?}\n{}",
        o.stderr
    );
    // The reopened file, created by nobody after the rotation, holds the rest.
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&o.exchanges_path).unwrap().uid();
    let nobody = std::fs::metadata(&old).unwrap().uid();
    assert_ne!(owner, 0, "the reopened file was created as root");
    assert_eq!(owner, nobody, "the first file was handed to the user too");
    let logins = o
        .exchanges
        .iter()
        .filter(|e| e["uri"] == "/api/login")
        .count();
    assert_eq!(logins, 15, "{:?}\n{}", o.exchanges, o.stderr);
    assert!(o.alerts.iter().any(|a| {
        a["alert"]["signature"]
            .as_str()
            .unwrap_or("")
            .contains("brute")
    }));
}

/// Waits (bounded) until process `pid` listens on TCP `ip`:`port`. The address is
/// matched too: until `ip netns exec` has entered the namespace, /proc/<pid>/net is
/// the root namespace's, where something else may listen on that port.
fn wait_listening(pid: u32, ip: &str, port: u16) {
    let ip: std::net::Ipv4Addr = ip.parse().unwrap();
    // /proc/net/tcp prints the address as the host-order value of its network-order
    // bytes.
    let local = format!("{:08X}:{port:04X}", u32::from_ne_bytes(ip.octets()));
    wait_until("the server did not start listening", || {
        std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1] == local && f[3] == "0A"
            })
        })
    });
}

/// Bytes that crossed `veth` (in namespace `ns`) both ways, Ethernet headers
/// included, as the kernel counts them.
fn veth_bytes(ns: &str, veth: &str) -> u64 {
    let stats = format!("/sys/class/net/{veth}/statistics");
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat"])
        .arg(format!("{stats}/rx_bytes"))
        .arg(format!("{stats}/tx_bytes"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse::<u64>().unwrap())
        .sum()
}

/// apiwatch_capture_bytes_total as served at `addr` in namespace `ns` (refreshed
/// about once a second); `None` while it cannot be read.
fn captured_bytes(ns: &str, addr: &str) -> Option<u64> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-s", "--max-time", "5"])
        .arg(format!("http://{addr}/metrics"))
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.lines().find_map(|l| {
        l.strip_prefix("apiwatch_capture_bytes_total ")?
            .trim()
            .parse()
            .ok()
    })
}

/// The complete exchange lines in `path` so far (a line being written is left out).
fn exchanges_in(path: &Path) -> Vec<serde_json::Value> {
    let mut b = std::fs::read(path).unwrap_or_default();
    b.truncate(b.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1));
    parse_lines(&b)
}

/// A child process killed when the test ends, failed or not.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs apiwatch with `args` (optionally as `nobody`); exit code and stderr.
fn run_apiwatch(args: &[&str], as_nobody: bool) -> (Option<i32>, String) {
    let mut c = if as_nobody {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_apiwatch")]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_apiwatch"))
    };
    let out = c.args(args).output().expect("run apiwatch");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn capture_errors_are_one_line_with_the_fix_and_the_right_exit_code() {
    if !can_run() {
        return;
    }
    let (code, err) = run_apiwatch(&["-i", "awnosuch0"], false);
    assert_eq!(
        (code, common::first_msg(&err).as_str(), err.lines().count()),
        (Some(2), "awnosuch0: no such interface (see `ip link`)", 1)
    );
    if sh(&["runuser", "--help"]) {
        let (code, err) = run_apiwatch(&["-i", "lo"], true);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            common::first_msg(&err).starts_with("lo: capture needs CAP_NET_RAW"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // A veth is down until someone brings it up (named as in `netns_pair`).
    let (a, b) = (format!("awd{}", token()), format!("awe{}", token()));
    assert!(sh(&[
        "ip", "link", "add", &a, "type", "veth", "peer", "name", &b
    ]));
    let (code, err) = run_apiwatch(&["-i", &a], false);
    sh(&["ip", "link", "del", &a]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        (common::first_msg(&err), err.lines().count()),
        (
            format!("{a}: interface is down: bring it up with `ip link set {a} up`"),
            1
        )
    );
    let (code, err) = run_apiwatch(&["-i", "lo", "tcp", "port"], false);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        common::first_msg(&err).starts_with("capture filter 'tcp port': "),
        "{err}"
    );
    let (code, err) = run_apiwatch(&["-i", "lo", "--user", "awnosuchuser"], false);
    assert_eq!(
        (code, common::first_msg(&err).as_str(), err.lines().count()),
        (Some(2), "--user awnosuchuser: no such user", 1)
    );
}

#[test]
fn quiet_wire_time_still_passes_idle_connections_are_finished_while_running() {
    if !can_run() {
        return;
    }
    let (ns, vc, _vs) = netns_pair(6);
    // A server that reads the request and never answers.
    let mute = "import socket, time\n\
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind(('10.78.6.2', 8000)); s.listen()\n\
        c, _ = s.accept(); c.recv(65536); time.sleep(30)\n";
    let server = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &ns.srv, "python3", "-c", mute])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dir = common::fresh_dir("apiwatch-live-idle");
    let (config, exchanges) = (dir.join("apiwatch.toml"), dir.join("exchanges.jsonl"));
    std::fs::write(&config, "[flow]\nidle_timeout = \"1s\"\n").unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.cli])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args(["-i", &vc, "--workers", "2", "--alerts", "/dev/null", "-c"])
        .arg(&config)
        .arg("--exchanges")
        .arg(&exchanges);
    let mut aw = Sensor::start(cmd);
    wait_listening(server.0.id(), "10.78.6.2", 8000);
    aw.wait_capturing();
    let _client = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &ns.cli, "curl", "-s", "--max-time", "60"])
            .arg("http://10.78.6.2:8000/never-answered")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // No packet moves after the request; the idle timeout (1 s) must finish the
    // connection and the exchange reach the file while apiwatch runs.
    wait_until("the idle connection was not finished while running", || {
        !exchanges_in(&exchanges).is_empty()
    });
    let seen = exchanges_in(&exchanges);
    let (status, stderr) = aw.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(seen.len(), 1, "{stderr}");
    assert_eq!(seen[0]["uri"], "/never-answered");
    assert!(seen[0]["status"].is_null(), "{}", seen[0]);
    assert!(stderr.contains(" timed_out=1 "), "{stderr}");
}

#[test]
fn any_interface_in_cooked_mode_sees_the_same_traffic() {
    if !can_run() {
        return;
    }
    // A later -i wins: capture on every interface of the client namespace.
    let o = api_scenario(
        7,
        &["-i", "any", "--workers", "2", "tcp", "port", "8000"],
        SCENARIO,
    );
    assert_complete(&o, "10.78.7.1");
}

#[test]
fn user_that_cannot_write_the_log_directory_is_warned_at_start() {
    if !can_run() {
        return;
    }
    let (ns, vc, _vs) = netns_pair(8);
    // A directory only root can create files in: the files are handed to nobody, but
    // a rotated log could not be recreated there, nor the state file replaced.
    let dir = common::fresh_dir("apiwatch-live-ro");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.cli])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args([
            "-i",
            &vc,
            "--user",
            "nobody",
            "--alerts",
            "/dev/null",
            "--exchanges",
        ])
        .arg(dir.join("exchanges.jsonl"));
    let mut aw = Sensor::start(cmd);
    aw.wait_capturing();
    let (status, stderr) = aw.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let warning = format!("nobody cannot create files in {}", dir.display());
    assert_eq!(stderr.matches(&warning).count(), 1, "{stderr}");
    assert!(stderr.contains("give nobody that directory"), "{stderr}");
    // --alerts /dev/null is not a file to recreate.
    assert!(!stderr.contains("files in /dev"), "{stderr}");
}

/// An HTTPS server (python's http.server with ssl, HTTP/1.1 keep-alive) for the live
/// TLS test: a JSON body for every GET.
const HTTPS_SERVER: &str = r#"import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        b = b'{"ok": true}'
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer((sys.argv[1], 8443), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;

/// A client that writes its secrets to its own file, makes one request, says so on
/// stdout, waits for the `go` file, then makes a second request on the same
/// connection: the test hands the secrets to the sensor in between.
const LATE_KEYS_CLIENT: &str = r#"import http.client, ssl, sys, os, time
host, keys, go = sys.argv[1:4]
c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
c.keylog_filename = keys
h = http.client.HTTPSConnection(host, 8443, context=c, timeout=20)
h.request('GET', '/late/1'); h.getresponse().read()
print('first', flush=True)
end = time.time() + 30
while not os.path.exists(go) and time.time() < end: time.sleep(0.02)
h.request('GET', '/late/2'); h.getresponse().read()
h.close()
"#;

/// `--tls-keylog` in live capture follows the key file: curl writing its secrets
/// into it as it runs is decrypted, and a connection whose secrets are appended only
/// after its first exchange crossed the wire holds its records until they come, then
/// reads both exchanges.
#[test]
fn live_capture_follows_the_key_file_and_decrypts_connections_whose_keys_come_late() {
    if !can_run() {
        return;
    }
    if !sh(&["openssl", "version"]) || !sh(&["python3", "-c", "import ssl"]) {
        common::skip("needs openssl and python3's ssl");
        return;
    }
    let (ns, vc, _vs) = netns_pair(9);
    let dir = common::fresh_dir("apiwatch-live-keylog");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    assert!(sh(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=api.test",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]));
    let _server = Reaped(
        Command::new("ip")
            .args(["netns", "exec", &ns.srv, "python3", "-c", HTTPS_SERVER])
            .args(["10.78.9.2"])
            .arg(&cert)
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(_server.0.id(), "10.78.9.2", 8443);
    // The followed file, empty at start, only its owner may read it.
    let keys = dir.join("keys.log");
    std::fs::write(&keys, "").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let exchanges = dir.join("exchanges.jsonl");
    assert!(sh(&["ip", "-n", &ns.cli, "link", "set", "lo", "up"]));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.cli])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args(["-i", &vc, "--workers", "2", "--tls-keylog"])
        .arg(&keys)
        .args([
            "--web.listen-address",
            "10.78.9.1:9100",
            "--alerts",
            "/dev/null",
            "--exchanges",
        ])
        .arg(&exchanges);
    let mut aw = Sensor::start(cmd);
    aw.wait_capturing();
    // curl logs its secrets straight into the followed file.
    for path in ["/curl/1", "/curl/2", "/curl/3"] {
        let url = format!("https://10.78.9.2:8443{path}");
        assert!(sh(&[
            "ip",
            "netns",
            "exec",
            &ns.cli,
            "env",
            &format!("SSLKEYLOGFILE={}", keys.display()),
            "curl",
            "-sk",
            "--http1.1",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            &url,
        ]));
    }
    // The late client's secrets reach the followed file only after its first
    // exchange is on the wire.
    let private = dir.join("late-client-keys.log");
    let go = dir.join("go");
    let mut late = Command::new("ip")
        .args(["netns", "exec", &ns.cli, "python3", "-c", LATE_KEYS_CLIENT])
        .arg("10.78.9.2")
        .arg(&private)
        .arg(&go)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 6];
    late.stdout.take().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"first\n");
    // Held, not given up on: the wait is 3 s of packet time, and this connection
    // sends nothing until `go`.
    let secrets = std::fs::read(&private).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&keys)
            .unwrap();
        f.write_all(&secrets).unwrap();
    }
    std::fs::write(&go, "").unwrap();
    assert!(late.wait().unwrap().success());
    wait_until("the decrypted exchanges did not reach the file", || {
        let seen = exchanges_in(&exchanges);
        ["/curl/3", "/late/2"]
            .iter()
            .all(|u| seen.iter().any(|e| e["uri"] == *u))
    });
    // Metrics are published a moment after the exchanges are written.
    let scrape = || {
        Command::new("ip")
            .args(["netns", "exec", &ns.cli, "curl", "-s", "--max-time", "5"])
            .arg("http://10.78.9.1:9100/metrics")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let mut metrics = String::new();
    wait_until(
        "the metrics did not count the four decrypted connections",
        || {
            metrics = scrape();
            metrics.contains("apiwatch_tls_decryption_total{outcome=\"decrypted\"} 4")
        },
    );
    let (status, stderr) = aw.stop();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let got = exchanges_in(&exchanges);
    let http: Vec<&serde_json::Value> = got.iter().filter(|e| e["uri"].is_string()).collect();
    let uris: Vec<&str> = http.iter().map(|e| e["uri"].as_str().unwrap()).collect();
    for want in ["/curl/1", "/curl/2", "/curl/3", "/late/1", "/late/2"] {
        let e = http
            .iter()
            .find(|e| e["uri"] == want)
            .unwrap_or_else(|| panic!("{want} not in {uris:?}\n{stderr}"));
        assert_eq!(e["status"], 200, "{e}");
        assert!(
            e["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "decrypted")),
            "{e}"
        );
    }
    assert_eq!(http.len(), 5, "{uris:?}");
    // The late connection waited and its secrets arrived; nothing was given up on.
    let count = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in {metrics}"))
    };
    assert!(
        count("apiwatch_tls_key_waits_total{outcome=\"arrived\"}") >= 1,
        "{metrics}"
    );
    assert_eq!(
        count("apiwatch_tls_key_waits_total{outcome=\"gave_up\"}"),
        0,
        "{metrics}"
    );
}
