//! `--workers N` shards connections over N flow tables; the output must not change.
//! Every shipped capture and every capture of Zeek's test corpus (../shared, when the
//! checkout has it) is replayed with 1 and with 4 workers: exchanges, alerts and the
//! summary's counters must be byte-identical. The several-worker runs also shard
//! detection by client over as many threads (`detect.shards`), whatever the machine.

mod common;

use std::path::{Path, PathBuf};

use common::{bin, repo};

/// Exchanges, alerts and the summary (minus the timing lines) of one run.
fn outputs(capture: &Path, workers: &str) -> (Vec<u8>, String, String, Option<i32>) {
    let dir = tempfile_dir();
    let alerts = dir.join(format!("alerts-{workers}"));
    let config = dir.join(format!("shards-{workers}.toml"));
    std::fs::write(&config, format!("[detect]\nshards = {workers}\n")).unwrap();
    let out = bin()
        .arg("-r")
        .arg(capture)
        .arg("-c")
        .arg(&config)
        .args(["--workers", workers, "--learning-period", "2m"])
        .args(["--exchanges", "-", "--alerts"])
        .arg(&alerts)
        .output()
        .expect("run apiwatch");
    let summary: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        // The summary's counters without the wall-clock `ts`; `rate` is a duration.
        .filter(|l| l.contains(" msg=\"Summary: ") && !l.contains(" msg=\"Summary: rate"))
        .filter_map(|l| l.split_once(" level="))
        .map(|(_, rest)| rest)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        summary.contains("exchanges"),
        "no summary for {}",
        capture.display()
    );
    let alerts = std::fs::read_to_string(&alerts).unwrap_or_default();
    (out.stdout, alerts, summary, out.status.code())
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("apiwatch-workers-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ["captures", "../shared/pcaps"]
        .iter()
        .flat_map(|d| walk(&repo(d)))
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".pcap.gz")
        })
        .collect();
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}

#[test]
fn one_and_four_workers_give_identical_output_on_every_capture() {
    let caps = captures();
    if !repo("../shared/pcaps").exists() {
        common::partial("../shared/pcaps is not beside this checkout: only captures/ is compared");
    }
    assert!(caps.len() >= 4, "no captures found");
    let mut differ = Vec::new();
    let mut exchanges = 0;
    for c in &caps {
        let one = outputs(c, "1");
        let four = outputs(c, "4");
        exchanges += one.0.iter().filter(|b| **b == b'\n').count();
        if one != four {
            differ.push(c.display().to_string());
        }
    }
    assert!(
        differ.is_empty(),
        "output depends on --workers for {differ:?}"
    );
    assert!(exchanges > 8000, "too few exchanges compared: {exchanges}");
    eprintln!("{} captures, {exchanges} exchanges: identical", caps.len());
}

#[test]
fn several_files_in_one_run_mapped_and_gzip_give_identical_output() {
    let files = [
        "captures/python-http-server.pcap",
        "captures/attacks.pcap.gz",
        "captures/nginx-keepalive-pipelined.pcap",
    ];
    let run = |workers: &str| {
        let mut c = bin();
        for f in files {
            c.arg("-r").arg(repo(f));
        }
        let out = c
            .args(["--workers", workers, "--learning-period", "2m"])
            .args(["--exchanges", "-", "--alerts", "/dev/null", "-q"])
            .output()
            .expect("run apiwatch");
        assert!(out.status.success());
        out.stdout
    };
    let one = run("1");
    assert!(one.iter().filter(|b| **b == b'\n').count() > 8000);
    assert_eq!(one, run("2"));
    assert_eq!(one, run("5"));
}
