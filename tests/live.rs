//! Live capture on a real AF_PACKET socket: two network namespaces joined by a veth
//! pair made here, python's http.server on one side, curl on the other, `apiwatch -i`
//! on the client's veth, then SIGINT mid-run: exit 0 with every exchange written.
//! Needs root (CI runs as root); elsewhere the test says it was skipped.

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

#[test]
fn live_capture_on_a_veth_reports_exchanges_and_stops_cleanly_on_sigint() {
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !sh(&["ip", "-V"]) || !sh(&["curl", "--version"]) {
        eprintln!("skipped: needs root, iproute2 and curl (CI has them)");
        return;
    }
    let id = std::process::id() % 100_000;
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
            "10.78.0.1/24",
            "dev",
            &vc,
        ])
        && sh(&[
            "ip",
            "-n",
            &ns.srv,
            "addr",
            "add",
            "10.78.0.2/24",
            "dev",
            &vs,
        ])
        && sh(&["ip", "-n", &ns.cli, "link", "set", &vc, "up"])
        && sh(&["ip", "-n", &ns.srv, "link", "set", &vs, "up"]);
    assert!(ok, "could not build the namespaces");
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.srv,
            "python3",
            "-m",
            "http.server",
            "8000",
            "--bind",
            "10.78.0.2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("apiwatch-live-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let exchanges = dir.join("exchanges.jsonl");
    let aw = Command::new("ip")
        .args(["netns", "exec", &ns.cli])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args(["-i", &vc, "--alerts", "/dev/null", "--exchanges"])
        .arg(&exchanges)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    sleep(Duration::from_millis(500));
    unsafe { libc::kill(aw.id() as i32, libc::SIGINT) };
    let out = aw.wait_with_output().unwrap();
    let _ = server.kill();
    let _ = server.wait();
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
}
