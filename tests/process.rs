//! The process as a user sees it: every line on stderr in the chosen log format,
//! damaged inputs ending the same way whatever the damage, options that cannot
//! apply refused, the summary saying when a run was interrupted and what its rate
//! covers, progress lines on long replays, and the TLS metrics port answering plain
//! HTTP with a 400.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, fresh_dir, logfmt_field, parse_lines, repo};
use serde_json::Value;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every stderr line is one logfmt record with `ts`, a lowercase `level` and `msg`.
fn assert_all_logfmt(err: &str) {
    assert!(!err.is_empty());
    for l in err.lines() {
        assert!(l.starts_with("ts="), "{l}");
        let level = logfmt_field(l, "level").unwrap_or_else(|| panic!("{l}"));
        assert!(
            ["debug", "info", "warn", "error"].contains(&level.as_str()),
            "{l}"
        );
        assert!(logfmt_field(l, "msg").is_some(), "{l}");
    }
}

/// Every stderr line is one JSON object with the same keys.
fn all_json(err: &str) -> Vec<Value> {
    assert!(!err.is_empty());
    err.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let level = v["level"].as_str().unwrap_or_else(|| panic!("{l}"));
            assert!(["debug", "info", "warn", "error"].contains(&level), "{l}");
            assert!(v["msg"].is_string() && v["ts"].is_string(), "{l}");
            v
        })
        .collect()
}

/// A copy of api-login.pcap with its last 500 bytes cut off, and the same gzipped
/// and then cut in its middle.
fn damaged(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let full = std::fs::read(repo("captures/api-login.pcap")).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 500]).unwrap();
    let gz = std::fs::read(repo("captures/padded-logins.pcap.gz")).unwrap();
    let cut_gz = dir.join("cut.pcap.gz");
    std::fs::write(&cut_gz, &gz[..gz.len() / 2]).unwrap();
    (cut, cut_gz)
}

/// Events, warnings, the summary and errors: all in the log format, in both formats,
/// with the same keys.
#[test]
fn every_stderr_line_is_in_the_chosen_log_format() {
    let dir = fresh_dir("apiwatch-process-format");
    let (cut, _) = damaged(&dir);
    let missing = dir.join("missing.pcap");
    let runs: [&[&str]; 3] = [
        // A warning and the summary.
        &["-r", cut.to_str().unwrap(), "--log.level", "info"],
        // A usage error (format given before and after the mistake).
        &["--workers", "0", "-r", "x.pcap"],
        // A fatal runtime error.
        &["-r", missing.to_str().unwrap()],
    ];
    for args in runs {
        let o = bin()
            .args(args)
            .args(["--alerts", "/dev/null"])
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_all_logfmt(&err);
        let o = bin()
            .args(["--log.format", "json"])
            .args(args)
            .args(["--alerts", "/dev/null"])
            .output()
            .unwrap();
        let lines = all_json(&stderr(&o));
        if args[0] == "--workers" {
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert_eq!(lines[0]["level"], "error");
            assert!(lines[0]["msg"].as_str().unwrap().contains("--workers"));
        }
        if args[1] == cut.to_str().unwrap() {
            assert!(
                lines
                    .iter()
                    .any(|l| l["level"] == "warn"
                        && l["msg"].as_str().unwrap().contains("cut short")),
                "{lines:?}"
            );
            let packets = lines
                .iter()
                .find(|l| l["msg"] == "Summary: packets")
                .unwrap_or_else(|| panic!("{lines:?}"));
            assert!(packets["packets"].as_u64().unwrap() > 10, "{packets}");
        }
    }
    // `--log.format=json` spelled with '=' counts too, even for a usage error.
    let o = bin()
        .args(["--bogus", "--log.format=json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(all_json(&stderr(&o)).len(), 1);
}

/// A gzip stream cut short ends like a cut pcap: a warning, everything before the
/// cut processed and written, exit 0.
#[test]
fn a_truncated_gzip_capture_ends_with_a_warning_and_everything_before_it() {
    let dir = fresh_dir("apiwatch-process-gz");
    let (cut, cut_gz) = damaged(&dir);
    for (file, words) in [
        (
            &cut,
            "the capture is cut short inside the packet record at byte",
        ),
        (&cut_gz, "the gzip stream is cut short"),
    ] {
        for workers in ["1", "2"] {
            let o = bin()
                .arg("-r")
                .arg(file)
                .args(["--workers", workers, "--exchanges", "-"])
                .args(["--alerts", "/dev/null"])
                .output()
                .unwrap();
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(0), "{err}");
            assert!(err.contains("level=warn") && err.contains(words), "{err}");
            assert!(!err.contains("level=error"), "{err}");
            assert!(!parse_lines(&o.stdout).is_empty(), "{err}");
        }
    }
}

/// What is wrong with a file is said in words, not as a byte offset of a record.
#[test]
fn damaged_headers_are_named_in_words() {
    let dir = fresh_dir("apiwatch-process-header");
    let full = std::fs::read(repo("captures/api-login.pcap")).unwrap();
    let header_only = dir.join("x.pcap");
    std::fs::write(&header_only, &full[..24]).unwrap();
    let o = bin().arg("-r").arg(&header_only).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("x.pcap: only the 24-byte pcap file header, no packets"),
        "{}",
        stderr(&o)
    );
    let magic_only = dir.join("m.pcap");
    std::fs::write(&magic_only, &full[..4]).unwrap();
    let o = bin().arg("-r").arg(&magic_only).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        common::first_msg(&stderr(&o)),
        format!(
            "{}: only 4 bytes of the 24-byte pcap file header, no packets (the file was cut short)",
            magic_only.display()
        )
    );
}

/// An option that cannot apply to the run asked for is refused, one line, exit 2.
#[test]
fn options_that_cannot_apply_are_usage_errors() {
    let cap = repo("captures/api-login.pcap");
    let cap = cap.to_str().unwrap();
    for (args, needle) in [
        (
            &["-r", cap, "--web.linger", "5s"][..],
            "--web.linger needs a metrics listener",
        ),
        (
            &["-r", cap, "--web.telemetry-path", "/m"],
            "--web.telemetry-path needs",
        ),
        (
            &["-r", cap, "--ring-size", "64"],
            "--ring-size applies to live capture",
        ),
        (
            &["-r", cap, "--block-timeout", "5ms"],
            "--block-timeout applies to live",
        ),
        (
            &["-r", cap, "--capture-backend", "libpcap"],
            "--capture-backend applies",
        ),
        (
            &["-r", cap, "--user", "nobody"],
            "--user applies to live capture",
        ),
        (
            &["-i", "lo", "--replay-speed", "2"],
            "--replay-speed applies to replays",
        ),
        (
            &[
                "-i",
                "lo",
                "--web.listen-address",
                "127.0.0.1:0",
                "--web.linger",
                "1s",
            ],
            "--web.linger applies to replays",
        ),
    ] {
        let o = bin().args(args).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            common::first_msg(&err).starts_with(needle),
            "{needle}: {err}"
        );
    }
}

/// The rate covers reading and writing, not `--web.linger`.
#[test]
fn the_rate_leaves_out_the_linger() {
    let started = Instant::now();
    let o = bin()
        .arg("-r")
        .arg(repo("captures/api-login.pcap"))
        .args(["--alerts", "/dev/null"])
        .args(["--web.listen-address", "127.0.0.1:0", "--web.linger", "3s"])
        .output()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let rate = err
        .lines()
        .find(|l| l.contains("msg=\"Summary: rate"))
        .unwrap_or_else(|| panic!("{err}"));
    let secs: f64 = logfmt_field(rate, "seconds").unwrap().parse().unwrap();
    assert!(secs < 2.5, "{rate}");
    assert!(!err.contains("interrupted"), "{err}");
}

/// stderr is not a terminal here: a replay running past 10 s writes progress lines
/// through the log pipeline (one after 10 s of wall time); `-q` writes none.
#[test]
fn a_long_replay_writes_progress_lines() {
    // padded-logins spans 137 s of packet time: at 10x, about 14 s. Uncompressed,
    // so that how far the reader is moves packet by packet (a gzip stream is read
    // ahead in 1 MiB steps).
    let dir = fresh_dir("apiwatch-process-progress");
    let plain = dir.join("padded-logins.pcap");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(repo("captures/padded-logins.pcap.gz")).unwrap(),
    )
    .read_to_end(&mut bytes)
    .unwrap();
    std::fs::write(&plain, bytes).unwrap();
    // The three runs at once: they mostly wait for packet time.
    let spawn = |workers: &str, quiet: bool| {
        let mut c = bin();
        c.arg("-r")
            .arg(&plain)
            .args(["--replay-speed", "10", "--alerts", "/dev/null"])
            .args(["--workers", workers])
            .stderr(Stdio::piped());
        if quiet {
            c.arg("-q");
        }
        c.spawn().unwrap()
    };
    let runs = [spawn("1", false), spawn("2", false), spawn("1", true)];
    let outs: Vec<Output> = runs
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outs[..2] {
        let err = stderr(o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        let progress: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("msg=\"Replay progress\""))
            .collect();
        assert!(!progress.is_empty(), "{err}");
        for l in &progress {
            for key in [
                "packets",
                "bytes",
                "exchanges",
                "alerts",
                "packets_per_s",
                "eta_s",
            ] {
                assert!(logfmt_field(l, key).is_some(), "{key}: {l}");
            }
            let read: u64 = logfmt_field(l, "input_read").unwrap().parse().unwrap();
            let size: u64 = logfmt_field(l, "input_size").unwrap().parse().unwrap();
            assert!(read > 0 && read < size, "{l}");
        }
    }
    assert!(stderr(&outs[2]).is_empty(), "{}", stderr(&outs[2]));
}

/// Plain HTTP to the TLS metrics port gets Go's answer, a 400, over a real TCP
/// connection; TLS on the same port still works (the listener is up).
#[test]
fn plain_http_to_the_tls_port_is_answered_with_a_400() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = bin()
        .arg("-r")
        .arg(repo("captures/api-login.pcap"))
        .args(["--alerts", "/dev/null", "-q"])
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .arg("--web.config.file")
        .arg(repo("tests/fixtures/web-config.yml"))
        .args(["--web.linger", "30s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut answer = String::new();
    // Up when it answers (bounded: 10 s).
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            answer.clear();
            let _ = s.read_to_string(&mut answer);
            if !answer.is_empty() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        answer,
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    );
    assert_eq!(answer, apiwatch::metrics::HTTP_TO_HTTPS);
}

/// The shipped logrotate snippet rotates what the shipped unit writes, reopening
/// through SIGHUP (`systemctl reload`), and logrotate accepts it (where installed:
/// checked with the paths and user moved to ones this machine has).
#[test]
fn the_logrotate_snippet_rotates_what_the_unit_writes() {
    let unit = std::fs::read_to_string(repo("packaging/apiwatch.service")).unwrap();
    let snippet = std::fs::read_to_string(repo("packaging/apiwatch.logrotate")).unwrap();
    for out in [
        "/var/log/apiwatch/exchanges.jsonl",
        "/var/log/apiwatch/alerts.jsonl",
    ] {
        assert!(unit.contains(out), "{out}");
    }
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    assert!(snippet.contains("/var/log/apiwatch/*.jsonl {"));
    assert!(snippet.contains("systemctl reload apiwatch.service"));
    assert!(!snippet.lines().any(|l| l.trim() == "copytruncate"));
    if std::process::Command::new("logrotate")
        .arg("--version")
        .output()
        .is_err()
    {
        common::skip(
            "logrotate is not installed (apt install logrotate): its -d check did not run",
        );
        return;
    }
    let dir = fresh_dir("apiwatch-process-logrotate");
    let conf = dir.join("apiwatch");
    std::fs::write(
        &conf,
        snippet
            .replace("/var/log/apiwatch", dir.to_str().unwrap())
            .replace("su apiwatch apiwatch", "su root root"),
    )
    .unwrap();
    std::fs::write(dir.join("alerts.jsonl"), "{}\n").unwrap();
    let o = std::process::Command::new("logrotate")
        .arg("-d")
        .arg("-s")
        .arg(dir.join("state"))
        .arg(&conf)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    assert!(!said.contains("error"), "{said}");
}
