//! Helpers shared by the end-to-end tests: run the real binary, read its JSON lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// An empty directory for one test run: process ids are reused, so whatever an
/// earlier run with the same id left there (a state file...) is removed first.
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A test that cannot run here (a peer tool, root or `../shared` is missing) says
/// so where the user sees it: on the terminal, past the test harness's capture of
/// `eprintln!`, as `SKIPPED <test>: <why>`. With `APIWATCH_TESTS_REQUIRE_ALL=1`
/// (`.ci/run` sets it, having installed every peer) a skip is a failure instead.
/// The caller returns after it.
pub fn skip(why: &str) {
    use std::io::Write;
    // The harness names each test's thread after the test.
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    if std::env::var_os("APIWATCH_TESTS_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{test} cannot run: {why} (APIWATCH_TESTS_REQUIRE_ALL=1)");
    }
    // Straight to the file descriptor: the harness only captures the print macros.
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// A test that runs on less than it could (`../shared`'s corpus is not beside this
/// checkout) says so the same way, as `PARTIAL <test>: <why>`; never a failure.
pub fn partial(why: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr().lock(), "PARTIAL {test}: {why}");
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apiwatch"))
}

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs `apiwatch -r <capture> --exchanges - -q` and returns the process output.
pub fn replay(capture: &Path) -> Output {
    bin()
        .arg("-r")
        .arg(capture)
        .args(["--exchanges", "-", "--alerts", "/dev/null", "-q"])
        .output()
        .expect("run apiwatch")
}

/// The exchanges apiwatch writes for `capture`; panics if the run fails.
pub fn exchanges(capture: &Path) -> Vec<Value> {
    let out = replay(capture);
    assert!(
        out.status.success(),
        "apiwatch failed on {}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_lines(&out.stdout)
}

pub fn parse_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8(stdout.to_vec())
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// One exchange as "client_port depth METHOD uri status response_body_len".
pub fn summary(e: &Value) -> String {
    let s = |k: &str| match &e[k] {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    format!(
        "{} {} {} {} {} {}",
        s("client_port"),
        s("trans_depth"),
        s("method"),
        s("uri"),
        s("status"),
        s("response_body_len")
    )
}

pub fn summaries(capture: &Path) -> Vec<String> {
    exchanges(capture).iter().map(summary).collect()
}

/// The `msg` of the first line apiwatch wrote on stderr (logfmt), unquoted: what an
/// error says. Panics when the first line is not a logfmt line.
#[allow(dead_code)]
pub fn first_msg(stderr: &str) -> String {
    let line = stderr.lines().next().unwrap_or_default();
    assert!(line.starts_with("ts="), "not a logfmt line: {stderr:?}");
    logfmt_field(line, "msg").unwrap_or_else(|| panic!("no msg in {line:?}"))
}

/// The value of `key` in a logfmt line, unquoted.
#[allow(dead_code)]
pub fn logfmt_field(line: &str, key: &str) -> Option<String> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[at..];
    let Some(quoted) = rest.strip_prefix('"') else {
        return Some(rest.split(' ').next().unwrap_or_default().to_string());
    };
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
    None
}
