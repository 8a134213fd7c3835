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
    for i in 0..20 {
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
    // Without a dummy check an unknown user answers in microseconds against
    // bcrypt's tens of milliseconds: a ratio near 0, far outside this band, which
    // leaves room for a loaded machine (0.9-1.1 failed once under a fuzzer).
    assert!(
        (0.8..=1.25).contains(&ratio),
        "known {kmin:?} vs unknown {umin:?}: a user name can be told by timing"
    );
    // A verified password is cached: the next scrape does not pay bcrypt again.
    let (s, cached) = request(port, Some(&base64("prometheus:scrape-me-please")));
    assert_eq!(s, "HTTP/1.1 200 OK");
    assert!(cached < k, "cached {cached:?} vs uncached {k:?}");
    let _ = child.kill();
    let _ = child.wait();
}

/// A bcrypt cost-8 `basic_auth_users` file for `prometheus:scrape-me-please`: cheap
/// enough (some 15 ms a check here) that a few seconds of flood run hundreds of
/// checks, dear enough that the flood outruns them and the check queue fills.
fn web_config_with_cost(dir: &std::path::Path, cost: u32) -> std::path::PathBuf {
    let web = dir.join("web.yml");
    let hash = bcrypt::hash("scrape-me-please", cost).unwrap();
    // `second` has the same password, so its first scrape is an uncached check.
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  prometheus: {hash}\n  second: {hash}\n"),
    )
    .unwrap();
    web
}

/// What a flood of wrong passwords got back.
#[derive(Default, Debug)]
struct Tally {
    unauthorized: u64,
    refused: u64,
    other: u64,
    abandoned: u64,
}

/// One response on a kept-alive connection: its status code, and whether the
/// server keeps the connection open.
fn read_response(r: &mut std::io::BufReader<TcpStream>) -> Option<(u16, bool)> {
    use std::io::BufRead as _;
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let status = line.split(' ').nth(1)?.parse().ok()?;
    let (mut len, mut open) = (0usize, true);
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if l == "connection: close" {
            open = false;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((status, open))
}

/// A flood of wrong passwords for the configured user, every one new, until
/// `until` and at most `per_thread` requests a thread: `waiters` clients each send
/// them one after another on a kept-alive connection and wait for every answer
/// (500 ms apart after a refusal, as a client that half honours `Retry-After`);
/// `leavers` clients each send one on a new connection and hang up without
/// waiting, every 200 ms. (Faster floods of cheap requests saturate the endpoint's
/// one thread on a loaded 2-core machine: see the docs.)
fn flood(
    port: u16,
    waiters: usize,
    leavers: usize,
    per_thread: usize,
    until: Instant,
) -> std::thread::JoinHandle<Tally> {
    std::thread::spawn(move || {
        let mut threads = Vec::new();
        for t in 0..waiters {
            threads.push(std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut conn: Option<std::io::BufReader<TcpStream>> = None;
                for n in 0..per_thread {
                    if Instant::now() >= until {
                        break;
                    }
                    if conn.is_none() {
                        let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        };
                        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                        conn = Some(std::io::BufReader::new(s));
                    }
                    let Some(c) = conn.as_mut() else { continue };
                    let auth = base64(&format!("prometheus:wrong-{t}-{n}"));
                    let sent = write!(
                        c.get_mut(),
                        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\r\n"
                    );
                    let answer = sent.ok().and_then(|_| read_response(c));
                    match answer {
                        Some((401, open)) => {
                            tally.unauthorized += 1;
                            if !open {
                                conn = None;
                            }
                        }
                        Some((503, open)) => {
                            tally.refused += 1;
                            if !open {
                                conn = None;
                            }
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        _ => {
                            tally.other += 1;
                            conn = None;
                        }
                    }
                }
                tally
            }));
        }
        for t in 0..leavers {
            threads.push(std::thread::spawn(move || {
                let mut tally = Tally::default();
                for n in 0..per_thread {
                    if Instant::now() >= until {
                        break;
                    }
                    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                        let auth = base64(&format!("prometheus:gone-{t}-{n}"));
                        let _ = write!(
                            s,
                            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\r\n"
                        );
                        tally.abandoned += 1;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                tally
            }));
        }
        let mut all = Tally::default();
        for t in threads {
            let t = t.join().unwrap();
            all.unauthorized += t.unauthorized;
            all.refused += t.refused;
            all.other += t.other;
            all.abandoned += t.abandoned;
        }
        all
    })
}

/// The body of a scrape, with the right password.
fn scrape(port: u16, auth: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
}

/// What a flood did: the valid scrapes' times, the flood's answers, and a scrape
/// taken once it ended.
struct Outcome {
    took: Vec<Duration>,
    /// A scraper whose password was not verified before: its status and time.
    fresh: (String, Duration),
    tally: Tally,
    after: String,
}

/// Starts the sensor with a cost-`cost` hash, verifies the right password once,
/// then floods (`waiters`, `leavers`, `per_thread` as [`flood`]) for `flood_for`
/// while scraping with the right password `scrapes` times, 300 ms apart.
fn scrape_through_a_flood(
    cost: u32,
    (waiters, leavers, per_thread): (usize, usize, usize),
    flood_for: Duration,
    scrapes: usize,
) -> Outcome {
    let dir = common::fresh_dir(&format!("auth-flood-{cost}"));
    let web = web_config_with_cost(&dir, cost);
    let port = free_port();
    let mut child = sensor(port, &["--web.config.file", web.to_str().unwrap()]);
    let good = base64("prometheus:scrape-me-please");
    let (s, _) = request(port, Some(&good));
    assert_eq!(s, "HTTP/1.1 200 OK");
    let flooding = flood(
        port,
        waiters,
        leavers,
        per_thread,
        Instant::now() + flood_for,
    );
    std::thread::sleep(Duration::from_millis(1000));
    let fresh = request(port, Some(&base64("second:scrape-me-please")));
    let mut took = Vec::new();
    for i in 0..scrapes {
        let (s, t) = request(port, Some(&good));
        assert_eq!(
            s, "HTTP/1.1 200 OK",
            "scrape {i} during the flood took {t:?}"
        );
        took.push(t);
        std::thread::sleep(Duration::from_millis(300));
    }
    let tally = flooding.join().unwrap();
    // Then, the queue empty, 50 clients at once that each send a wrong password and
    // hang up: all but the first few are gone before their turn. Their checks are
    // run or dropped within 1.5 s.
    let _ = flood(port, 0, 50, 1, Instant::now() + Duration::from_secs(5)).join();
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    let after = scrape(port, &good);
    took.push(start.elapsed());
    let _ = child.kill();
    let _ = child.wait();
    let max = *took.iter().max().unwrap();
    eprintln!(
        "valid scrapes during and after the flood: max {max:?}, median {:?}, after {:?}; flood {tally:?}",
        median(took.clone()),
        took.last().unwrap()
    );
    eprintln!("a scraper not verified before: {fresh:?}");
    Outcome {
        took,
        fresh,
        tally,
        after,
    }
}

/// Issue #22: 500 connections of wrong passwords held the next valid scrape for
/// 27.6 s (checks of clients that had left still ran, one at a time, and the
/// verified password could fall out of the cache). A scraper verified once before
/// the flood answers from the cache, in under 2 s every time, while 250 clients
/// wait on wrong passwords and 100 more send one and leave; the queue of checks
/// stays bounded (refusals are counted) and the leavers' checks are not run.
#[test]
fn a_flood_of_wrong_passwords_does_not_delay_a_verified_scraper() {
    let _one = serial();
    let Outcome {
        took,
        fresh,
        tally,
        after,
    } = scrape_through_a_flood(8, (250, 100, 60), Duration::from_secs(5), 10);
    let max = *took.iter().max().unwrap();
    assert!(
        max < Duration::from_secs(2),
        "a valid scrape took {max:?} during the flood"
    );
    // One not verified before waits its turn in the bounded queue (about 1 s of
    // checks, stretched when the machine is loaded) or is refused at once: not the
    // 20 s and more it waited before.
    assert!(
        ["HTTP/1.1 200 OK", "HTTP/1.1 503 Service Unavailable"].contains(&fresh.0.as_str())
            && fresh.1 < Duration::from_secs(5),
        "{fresh:?}"
    );
    let n = |name| sample(&after, name);
    eprintln!(
        "checks run {}, dropped {}, refused {}, cache hits {}",
        n("apiwatch_web_auth_checks_total"),
        n("apiwatch_web_auth_checks_dropped_total"),
        n("apiwatch_web_auth_refused_total"),
        n("apiwatch_web_auth_cache_hits_total"),
    );
    assert!(tally.unauthorized > 0, "{tally:?}");
    // The queue filled and stayed bounded: refusals happened and were counted.
    assert!(tally.refused > 0, "{tally:?}");
    assert!(n("apiwatch_web_auth_refused_total") >= tally.refused);
    // Clients that left before their turn were not checked.
    assert!(n("apiwatch_web_auth_checks_dropped_total") > 0);
    assert_eq!(tally.other, 0, "{tally:?}");
}

/// The issue's own figures, by hand (`--ignored`; a minute on two cores): 400
/// clients waiting on wrong passwords and 100 leaving, 3,000 passwords and more,
/// cost-10 hashes as `htpasswd -B` makes by default.
#[test]
#[ignore]
fn issue_22_flood_at_full_scale() {
    let _one = serial();
    let Outcome { took, fresh, .. } =
        scrape_through_a_flood(10, (400, 100, 10), Duration::from_secs(10), 25);
    let max = *took.iter().max().unwrap();
    assert!(max < Duration::from_secs(2), "{max:?}");
    assert!(fresh.1 < Duration::from_secs(5), "{fresh:?}");
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
        common::skip("systemd-socket-activate is not installed (apt install systemd)");
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
