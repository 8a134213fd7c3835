//! Capture filters against the reference: for each expression, every shipped capture
//! and every capture of Zeek's corpus (../shared, when present) is read by tcpdump
//! (libpcap's compiler and matcher) and by apiwatch with the same expression; the
//! number of packets that pass must be the same. This checks apiwatch's compiler
//! (built-in, or libpcap with `--features libpcap`) and its BPF interpreter.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{bin, repo};

const EXPRESSIONS: &[&str] = &[
    "tcp",
    "udp",
    "ip6",
    "icmp or arp",
    "not ip",
    "tcp port 80",
    "port 80 or 8080",
    "tcp port 80 or tcp port 8080",
    "dst port 80",
    "src port 80 and tcp",
    "portrange 1-1024",
    "udp port 53 or tcp portrange 8000-9000",
    "host 141.142.228.5",
    "src net 192.168.0.0/16 and tcp",
    "tcp and not port 80",
    "ip6 and tcp port 80",
    "net 2001:db8::/32 or host ::1",
    "(tcp or udp) and not (src host 10.0.0.1 or dst net 10.77.0.0/24)",
];

fn captures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if [".pcap", ".pcapng", ".pcap.gz"]
                .iter()
                .any(|s| p.to_string_lossy().ends_with(s))
            {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&repo("captures"), &mut v);
    if repo("../shared/pcaps").is_dir() {
        walk(&repo("../shared/pcaps"), &mut v);
    } else {
        common::partial("../shared/pcaps is not beside this checkout: only captures/ is compared");
    }
    v.sort();
    v
}

/// Packets tcpdump passes; `None` when tcpdump cannot read the file.
fn tcpdump_count(capture: &Path, expr: &str) -> Option<u64> {
    let data = std::fs::read(capture).ok()?;
    let data = if capture.to_string_lossy().ends_with(".gz") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .ok()?;
        out
    } else {
        data
    };
    let mut child = Command::new("tcpdump")
        .args(["--count", "-r", "-"])
        .args(expr.split(' '))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take()?;
        let _ = stdin.write_all(&data);
    }
    let out = child.wait_with_output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if text.contains("expression rejects all packets") {
        return Some(0);
    }
    text.lines()
        .find(|l| l.ends_with(" packet") || l.ends_with(" packets"))
        .and_then(|l| l.split(' ').next()?.parse().ok())
}

/// Packets apiwatch passes (its summary), or `None` when it cannot apply the filter
/// to this file's link type.
fn apiwatch_count(capture: &Path, expr: &str) -> Option<u64> {
    let out = bin()
        .arg("-r")
        .arg(capture)
        .args(["--alerts", "/dev/null"])
        .args(expr.split(' '))
        .output()
        .expect("run apiwatch");
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("does not know link type") {
        return None;
    }
    err.lines()
        .find(|l| l.contains("msg=\"Summary: packets\""))
        .and_then(|l| common::logfmt_field(l, "packets")?.parse().ok())
}

#[test]
fn filters_pass_the_same_packets_as_tcpdump() {
    if Command::new("tcpdump").arg("--version").output().is_err() {
        common::skip("tcpdump is not installed (apt install tcpdump)");
        return;
    }
    let caps = captures();
    assert!(caps.len() >= 4);
    let exprs: Vec<&str> = EXPRESSIONS.to_vec();
    type Tally<'a> = (usize, std::collections::HashSet<&'a str>, Vec<String>);
    let results: Vec<Tally> = std::thread::scope(|s| {
        let halves: Vec<_> = exprs
            .chunks(exprs.len().div_ceil(2))
            .map(|chunk| {
                let caps = &caps;
                s.spawn(move || {
                    let (mut compared, mut passed, mut diffs) =
                        (0, std::collections::HashSet::new(), Vec::new());
                    for e in chunk {
                        for c in caps {
                            let Some(t) = tcpdump_count(c, e) else {
                                continue;
                            };
                            let Some(a) = apiwatch_count(c, e) else {
                                continue;
                            };
                            compared += 1;
                            if t > 0 {
                                passed.insert(*e);
                            }
                            if t != a {
                                diffs.push(format!(
                                    "'{e}' {}: tcpdump {t}, apiwatch {a}",
                                    c.display()
                                ));
                            }
                        }
                    }
                    (compared, passed, diffs)
                })
            })
            .collect();
        halves
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let compared: usize = results.iter().map(|r| r.0).sum();
    let selective: usize = results.iter().map(|r| r.1.len()).sum();
    let diffs: Vec<String> = results.into_iter().flat_map(|r| r.2).collect();
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    // The expressions must actually select something somewhere: most of them in
    // some capture, whether Zeek's corpus is beside the clone or only captures/ is.
    assert!(
        selective * 2 > exprs.len(),
        "only {selective} of {} expressions passed packets in any capture",
        exprs.len()
    );
    eprintln!(
        "{compared} file×expression comparisons agree with tcpdump ({selective} of {} expressions select packets)",
        exprs.len()
    );
}

#[test]
fn a_filter_that_does_not_compile_is_a_usage_error() {
    let out = bin()
        .arg("-r")
        .arg(repo("captures/python-http-server.pcap"))
        .args(["tcp", "prot", "80"])
        .output()
        .expect("run apiwatch");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        common::first_msg(&err).starts_with("capture filter 'tcp prot 80': "),
        "{err}"
    );
}
