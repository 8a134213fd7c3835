//! The metrics endpoint of the real binary under hostile clients: idle sockets, a
//! slow-drip client and password guessers must not delay a scrape, and a user name
//! must not be told apart by how long a wrong password takes. Loopback only; every
//! loop is bounded in count and time.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The tests here load the machine (500 connections) or time it: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The sensor replaying a small capture, then serving its metrics for `linger`.
fn sensor(port: u16, extra: &[&str]) -> Child {
    let mut child = common::bin()
        .arg("-r")
        .arg(common::repo("captures/api-login.pcap"))
        .args(["--alerts", "/dev/null", "-q"])
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .args(["--web.linger", "60s"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Up when the landing page answers (bounded: 10 s).
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 ") {
                return child;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the metrics endpoint did not come up");
}

/// One request on a new connection: status line and how long it took.
fn request(port: u16, auth: Option<&str>) -> (String, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: Basic {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    (
        text.lines().next().unwrap_or("").to_string(),
        start.elapsed(),
    )
}

#[test]
fn scrapes_answer_while_idle_sockets_and_a_slow_drip_client_hold_the_port() {
    let _one = serial();
    for cap in ["512", "100"] {
        let port = free_port();
        let mut child = sensor(port, &["--web.max-connections", cap]);
        // 500 connections that never send a byte.
        let idle: Vec<TcpStream> = (0..500)
            .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
            .collect();
        assert!(
            idle.len() >= 400,
            "only {} idle connections opened",
            idle.len()
        );
        // One that drips a request head, a byte every 300 ms, on another thread.
        let drip = std::thread::spawn(move || {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                return;
            };
            for b in b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaa"
            {
                if s.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        for i in 0..5 {
            let (status, took) = request(port, None);
            assert_eq!(status, "HTTP/1.1 200 OK", "cap {cap}, scrape {i}");
            assert!(
                took < Duration::from_secs(2),
                "cap {cap}: scrape {i} took {took:?} with 500 idle connections and a slow drip"
            );
        }
        drop(idle);
        let _ = child.kill();
        let _ = child.wait();
        let _ = drip.join();
    }
}

fn base64(s: &str) -> String {
    apiwatch::export::eve::base64(s.as_bytes())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn wrong_passwords_take_as_long_for_unknown_users_as_for_known_ones() {
    let _one = serial();
    let dir = common::fresh_dir("auth-timing");
    let web = dir.join("web.yml");
    // prometheus:scrape-me-please, bcrypt cost 10 (the test certificate's file,
    // without TLS, so that only the password check is timed).
    std::fs::write(
        &web,
        "basic_auth_users:\n  prometheus: $2y$10$vBd23pLv3Bp1bymfUK4im.lypSI8foJc3lH4J89XUjEokKwZ2egm6\n",
    )
    .unwrap();
    let port = free_port();
    let mut child = sensor(port, &["--web.config.file", web.to_str().unwrap()]);
    let (ok, _) = request(port, Some(&base64("prometheus:scrape-me-please")));
    assert_eq!(ok, "HTTP/1.1 200 OK");
    // Interleaved, each password new (nothing cached), medians compared.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..15 {
        let (s, t) = request(port, Some(&base64(&format!("prometheus:guess-{i}"))));
        assert_eq!(s, "HTTP/1.1 401 Unauthorized");
        known.push(t);
        let (s, t) = request(port, Some(&base64(&format!("admin{i}:guess-{i}"))));
        assert_eq!(s, "HTTP/1.1 401 Unauthorized");
        unknown.push(t);
    }
    // The fastest of each is the check's own cost; medians are printed too, but other
    // work on a 2-core machine moves them (a test machine is not a quiet one).
    let (kmin, umin) = (*known.iter().min().unwrap(), *unknown.iter().min().unwrap());
    let (k, u) = (median(known), median(unknown));
    let ratio = umin.as_secs_f64() / kmin.as_secs_f64();
    eprintln!(
        "401 time: known user min {kmin:?} median {k:?}, unknown user min {umin:?} median {u:?} (ratio of minima {ratio:.3})"
    );
    assert!(
        (0.9..=1.1).contains(&ratio),
        "known {kmin:?} vs unknown {umin:?}: a user name can be told by timing"
    );
    // A verified password is cached: the next scrape does not pay bcrypt again.
    let (s, cached) = request(port, Some(&base64("prometheus:scrape-me-please")));
    assert_eq!(s, "HTTP/1.1 200 OK");
    assert!(cached < k, "cached {cached:?} vs uncached {k:?}");
    let _ = child.kill();
    let _ = child.wait();
}

/// `--web.systemd-socket`: the listening socket systemd passes is served (with
/// systemd's own `systemd-socket-activate`, where it is installed).
#[test]
fn serves_on_the_socket_systemd_passes() {
    let _one = serial();
    let tool = [
        "/usr/bin/systemd-socket-activate",
        "/lib/systemd/systemd-socket-activate",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    let Some(tool) = tool else {
        eprintln!("systemd-socket-activate is not installed; skipped");
        return;
    };
    let port = free_port();
    let mut child = std::process::Command::new(tool)
        .args(["-l", &format!("127.0.0.1:{port}")])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .arg("-r")
        .arg(common::repo("captures/api-login.pcap"))
        .args([
            "--web.systemd-socket",
            "--web.linger",
            "30s",
            "--alerts",
            "/dev/null",
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first connection starts apiwatch on the passed socket (bounded: 10 s).
    let mut ok = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.contains("apiwatch_up 1") {
                ok = true;
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "no metrics on the socket-activated port");
}
