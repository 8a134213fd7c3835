//! Live capture on a real AF_PACKET socket: two network namespaces joined by a veth
//! pair made here, python's http.server on one side, curl on the other, `apiwatch -i`
//! on the client's veth, then SIGINT mid-run: exit 0 with every exchange written.
//! A second test runs the JSON API with benign clients and a brute-force loop, each
//! request on its own connection so one client's connections land on different
//! workers, and checks the same exchanges and the alert arrive for 1 and 3 workers.
//! Needs root (CI runs as root); elsewhere the tests say they were skipped.

mod common;

use std::process::{Command, Stdio};
use std::thread::sleep;
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.cli]);
        sh(&["ip", "netns", "del", &self.srv]);
    }
}

/// Two namespaces joined by a veth pair: client 10.78.<n>.1 on `vc`, server
/// 10.78.<n>.2 on `vs`. Removed when dropped.
fn netns_pair(n: u8) -> (Netns, String, String) {
    let id = std::process::id() % 10_000 * 10 + u32::from(n);
    let ns = Netns {
        cli: format!("awt-c{id}"),
        srv: format!("awt-s{id}"),
    };
    let (vc, vs) = (format!("awc{id}"), format!("aws{id}"));
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

/// Whether this machine can run the live tests (root, iproute2, curl).
fn can_run() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !sh(&["ip", "-V"]) || !sh(&["curl", "--version"]) {
        eprintln!("skipped: needs root, iproute2 and curl (CI has them)");
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
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.srv, "python3", "-m", "http.server"])
        .args(["8000", "--bind", "10.78.0.2", "--directory"])
        .arg(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A response still arriving when the signal comes: 1 KiB every 50 ms of a
    // declared 100 MB.
    let slow = "import socket, time\n\
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind(('10.78.0.2', 8001)); s.listen()\n\
        c, _ = s.accept(); c.recv(65536)\n\
        c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 100000000\\r\\n\\r\\n')\n\
        for _ in range(600):\n    c.sendall(b'x' * 1024); time.sleep(0.05)\n";
    let mut slow_server = Command::new("ip")
        .args(["netns", "exec", &ns.srv, "python3", "-c", slow])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let exchanges = dir.join("exchanges.jsonl");
    let aw = Command::new("ip")
        .args(["netns", "exec", &ns.cli])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args([
            "-i",
            &vc,
            "--workers",
            "2",
            "--alerts",
            "/dev/null",
            "--exchanges",
        ])
        .arg(&exchanges)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_capturing(aw.id(), 2);
    // Wait (bounded) for the server, then make a few requests.
    let deadline = Instant::now() + Duration::from_secs(10);
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
    while !curl("/") {
        assert!(Instant::now() < deadline, "server did not start");
        sleep(Duration::from_millis(100));
    }
    for path in ["/", "/missing", "/also-missing"] {
        curl(path);
    }
    // The signal comes once the slow response is well under way (bounded waits, not
    // a guess at how long start-up takes on a loaded machine).
    wait_listening(slow_server.id(), 8001);
    let body = dir.join("slow.body");
    let mut download = Command::new("ip")
        .args(["netns", "exec", &ns.cli, "curl", "-s", "-o"])
        .arg(&body)
        .args(["--max-time", "30", "http://10.78.0.2:8001/slow"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&body).map_or(0, |m| m.len()) < 8 * 1024 {
        assert!(Instant::now() < deadline, "the slow response never started");
        sleep(Duration::from_millis(50));
    }
    let signalled = Instant::now();
    unsafe { libc::kill(aw.id() as i32, libc::SIGINT) };
    let out = aw.wait_with_output().unwrap();
    let stop_time = signalled.elapsed();
    let _ = download.kill();
    let _ = download.wait();
    let _ = server.kill();
    let _ = server.wait();
    let _ = slow_server.kill();
    let _ = slow_server.wait();
    assert!(
        stop_time < Duration::from_secs(3),
        "took {stop_time:?} to stop"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        "partial body expected: {big}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One live run of the API scenario: what apiwatch wrote.
struct Observed {
    exchanges: Vec<serde_json::Value>,
    exchanges_path: std::path::PathBuf,
    alerts: Vec<serde_json::Value>,
    stderr: String,
}

/// Runs the JSON API in the server namespace, `apiwatch -i` (with `args`) on the
/// client's veth, benign traffic then a brute-force loop from the client; SIGINT.
fn api_scenario(n: u8, args: &[&str]) -> Observed {
    api_scenario_with(n, args, &|_, _| {})
}

/// As [`api_scenario`]; `between(pid, exchanges_path)` runs after the benign traffic
/// and before the brute force.
fn api_scenario_with(n: u8, args: &[&str], between: &dyn Fn(u32, &std::path::Path)) -> Observed {
    let (ns, vc, _vs) = netns_pair(n);
    let srv_ip = format!("10.78.{n}.2");
    let server_script = common::repo("scripts/api_server.py");
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.srv, "python3"])
        .arg(&server_script)
        .args([srv_ip.as_str(), "8000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while !curl(&[], &health) {
        assert!(Instant::now() < deadline, "API server did not start");
        sleep(Duration::from_millis(100));
    }
    let aw = Command::new("ip")
        .args(["netns", "exec", &ns.cli])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args(["-i", &vc, "--alerts"])
        .arg(&alerts)
        .arg("--exchanges")
        .arg(&exchanges)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let workers = args
        .iter()
        .position(|a| *a == "--workers")
        .map_or(1, |i| args[i + 1].parse().unwrap());
    wait_sockets(aw.id(), workers, args.contains(&"any"));
    let items: Vec<String> = (0..20)
        .map(|i| format!("http://{srv_ip}:8000/api/items?page={i}"))
        .collect();
    assert!(curl(&[], &items));
    between(aw.id(), &exchanges);
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
    sleep(Duration::from_millis(500));
    unsafe { libc::kill(aw.id() as i32, libc::SIGINT) };
    let out = aw.wait_with_output().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
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
    let one = api_scenario(1, &["--workers", "1", "tcp", "port", "8000"]);
    // Three capture workers and three detection shards.
    let config =
        std::env::temp_dir().join(format!("apiwatch-live-shards-{}.toml", std::process::id()));
    std::fs::write(&config, "[detect]\nshards = 3\n").unwrap();
    let c = config.to_str().unwrap();
    let three = api_scenario(2, &["--workers", "3", "-c", c, "tcp", "port", "8000"]);
    let _ = std::fs::remove_file(&config);
    assert_complete(&one, "10.78.1.1");
    assert_complete(&three, "10.78.2.1");
    assert_eq!(exchange_set(&one), exchange_set(&three), "{}", three.stderr);
    let three_kinds: Vec<String> = alert_kinds(&three).into_iter().map(|k| k.0).collect();
    let one_kinds: Vec<String> = alert_kinds(&one).into_iter().map(|k| k.0).collect();
    assert_eq!(one_kinds, three_kinds);
    // The summary reports the kernel's drop counter.
    assert!(
        three.stderr.contains("dropped by the kernel"),
        "{}",
        three.stderr
    );
}

#[test]
fn a_filter_that_excludes_the_traffic_sees_nothing() {
    if !can_run() {
        return;
    }
    let o = api_scenario(3, &["--workers", "2", "tcp", "port", "9999"]);
    assert!(o.exchanges.is_empty(), "{:?}", o.exchanges);
    assert!(o.stderr.contains("packets     0 "), "{}", o.stderr);
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
    let o = api_scenario_with(5, &["--user", "nobody", "--workers", "2"], &|pid, path| {
        // Rotate once the benign traffic is in the file (flushed within a second on
        // a quiet wire), so the test does not depend on how loaded the machine is.
        let deadline = Instant::now() + Duration::from_secs(10);
        let lines = || std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        while lines() < 20 {
            assert!(
                Instant::now() < deadline,
                "the benign traffic never reached the file"
            );
            sleep(Duration::from_millis(50));
        }
        let old = path.with_extension("1");
        std::fs::rename(path, &old).unwrap();
        unsafe { libc::kill(pid as i32, libc::SIGHUP) };
        sleep(Duration::from_millis(200));
        *rotated.borrow_mut() = Some(old);
    });
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

/// Waits (bounded) until apiwatch `pid` holds `sockets` packet sockets in its
/// namespace, then a moment for them to be bound, instead of guessing how long
/// start-up takes on a loaded machine.
fn wait_capturing(pid: u32, sockets: usize) {
    wait_sockets(pid, sockets, false);
}

/// As [`wait_capturing`]; `any`: the sockets capture every interface (`-i any`), so
/// they are never bound to one.
fn wait_sockets(pid: u32, sockets: usize, any: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    // Sockets bound to an interface and running (`Iface` set, `R` = 1): a socket
    // that only exists does not capture yet, and under load the gap lost the
    // scenario's first requests.
    let held = || {
        std::fs::read_to_string(format!("/proc/{pid}/net/packet")).map_or(0, |t| {
            t.lines()
                .skip(1)
                .filter(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 5 && (any || f[4] != "0") && f[5] == "1"
                })
                .count()
        })
    };
    while held() < sockets {
        assert!(
            Instant::now() < deadline,
            "apiwatch did not open its sockets"
        );
        sleep(Duration::from_millis(20));
    }
    sleep(Duration::from_millis(200));
}

/// Waits (bounded) until process `pid` listens on TCP `port` in its namespace.
fn wait_listening(pid: u32, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let local = format!(":{port:04X} ");
    let listening = || {
        std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && format!("{} ", f[1]).ends_with(&local) && f[3] == "0A"
            })
        })
    };
    while !listening() {
        assert!(
            Instant::now() < deadline,
            "the server did not start listening"
        );
        sleep(Duration::from_millis(20));
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
        (code, err.as_str()),
        (
            Some(2),
            "apiwatch: awnosuch0: no such interface (see `ip link`)\n"
        )
    );
    if sh(&["runuser", "--help"]) {
        let (code, err) = run_apiwatch(&["-i", "lo"], true);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.starts_with("apiwatch: lo: capture needs CAP_NET_RAW"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // A veth is down until someone brings it up.
    let (a, b) = (
        format!("awd{}", std::process::id() % 100_000),
        format!("awe{}", std::process::id() % 100_000),
    );
    assert!(sh(&[
        "ip", "link", "add", &a, "type", "veth", "peer", "name", &b
    ]));
    let (code, err) = run_apiwatch(&["-i", &a], false);
    sh(&["ip", "link", "del", &a]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        format!("apiwatch: {a}: interface is down: bring it up with `ip link set {a} up`\n")
    );
    let (code, err) = run_apiwatch(&["-i", "lo", "tcp", "port"], false);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("apiwatch: capture filter 'tcp port': "),
        "{err}"
    );
    let (code, err) = run_apiwatch(&["-i", "lo", "--user", "awnosuchuser"], false);
    assert_eq!(
        (code, err.as_str()),
        (Some(2), "apiwatch: --user awnosuchuser: no such user\n")
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
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.srv, "python3", "-c", mute])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = common::fresh_dir("apiwatch-live-idle");
    let (config, exchanges) = (dir.join("apiwatch.toml"), dir.join("exchanges.jsonl"));
    std::fs::write(&config, "[flow]\nidle_timeout = \"1s\"\n").unwrap();
    let aw = Command::new("ip")
        .args(["netns", "exec", &ns.cli])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args(["-i", &vc, "--workers", "2", "--alerts", "/dev/null", "-c"])
        .arg(&config)
        .arg("--exchanges")
        .arg(&exchanges)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_listening(server.id(), 8000);
    wait_capturing(aw.id(), 2);
    let mut client = Command::new("ip")
        .args(["netns", "exec", &ns.cli, "curl", "-s", "--max-time", "20"])
        .arg("http://10.78.6.2:8000/never-answered")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // No packet moves after the request; within a few seconds the idle timeout (1 s)
    // must finish the connection and the exchange reach the file, apiwatch running.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut seen = Vec::new();
    while Instant::now() < deadline && seen.is_empty() {
        sleep(Duration::from_millis(250));
        seen = parse_lines(&std::fs::read(&exchanges).unwrap_or_default());
    }
    unsafe { libc::kill(aw.id() as i32, libc::SIGINT) };
    let out = aw.wait_with_output().unwrap();
    let _ = client.kill();
    let _ = client.wait();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(seen.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(seen[0]["uri"], "/never-answered");
    assert!(seen[0]["status"].is_null(), "{}", seen[0]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 timed out"), "{stderr}");
}

#[test]
fn any_interface_in_cooked_mode_sees_the_same_traffic() {
    if !can_run() {
        return;
    }
    // A later -i wins: capture on every interface of the client namespace.
    let o = api_scenario(7, &["-i", "any", "--workers", "2", "tcp", "port", "8000"]);
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
    let aw = Command::new("ip")
        .args(["netns", "exec", &ns.cli])
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
        .arg(dir.join("exchanges.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_capturing(aw.id(), 1);
    unsafe { libc::kill(aw.id() as i32, libc::SIGINT) };
    let out = aw.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warning = format!("nobody cannot create files in {}", dir.display());
    assert_eq!(stderr.matches(&warning).count(), 1, "{stderr}");
    assert!(stderr.contains("give nobody that directory"), "{stderr}");
    // --alerts /dev/null is not a file to recreate.
    assert!(!stderr.contains("files in /dev"), "{stderr}");
}
