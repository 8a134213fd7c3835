//! The server away: a 10 s outage mid-capture, and a live sensor's drop path.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, bin};
use crate::support::*;

impl Server {
    /// Kills the server as a crash would, keeping its storage.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port with the same storage.
    pub(crate) fn restart(&mut self) {
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

pub(crate) fn gunzip(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A child's stderr, read as it comes (so that it never fills the pipe).
pub(crate) struct Stderr {
    text: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Stderr {
    pub(crate) fn of(child: &mut Child) -> Stderr {
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

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// Everything, once the child exited.
    pub(crate) fn finish(mut self) -> String {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.text()
    }
}

/// Runs `f` on the stream `stream` of the server at `url` (a runtime of its own).
fn with_stream<T>(
    url: &str,
    stream: &str,
    f: impl AsyncFnOnce(async_nats::jetstream::stream::Stream) -> T,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to nats-server");
        let js = async_nats::jetstream::new(client);
        f(js.get_stream(stream).await.expect("the stream")).await
    })
}

/// How many clock records (a live sensor's quiet moments) the stream holds.
pub(crate) fn clock_records(url: &str, stream: &str, prefix: &str) -> u64 {
    use async_nats::jetstream;
    with_stream(url, stream, async |s| {
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

/// The `Nats-Msg-Id` of every exchange record in the stream, in stream order, and
/// how many there are (clock records left out).
pub(crate) fn stored_ids(url: &str, stream: &str, prefix: &str) -> (Vec<String>, u64) {
    use async_nats::jetstream;
    use futures_util::StreamExt;
    with_stream(url, stream, async |mut s| {
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
pub(crate) fn assert_once_in_order(ids: &[String], want: u64) {
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
pub(crate) struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace made for one test (loopback up, a veth pair `awpa`/`awpb`
/// inside), removed when dropped.
pub(crate) struct Netns(String);

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
    pub(crate) fn make() -> Option<Netns> {
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
    pub(crate) fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
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
    pub(crate) fn nats(&self, port: u16, dir: &Path) -> Reaped {
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
    pub(crate) fn inject(&self, pcap: Vec<u8>) -> usize {
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
    // A detector reads the exchanges and the clock records (each moves its time on).
    let detector = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(env!("CARGO_BIN_EXE_apiwatch"))
        .args([
            "detect",
            "--from",
            &url,
            "--until-idle",
            "1s",
            "--alerts",
            "/dev/null",
        ])
        .output()
        .unwrap();
    let detected = String::from_utf8_lossy(&detector.stderr).into_owned();
    assert!(detector.status.success(), "{detected}");
    let d = log_numbers(&detected, "Detector finished");
    assert_eq!(d["exchanges"], stored, "{detected}");
    assert!(d["clocks"] >= 1, "{detected}");
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
