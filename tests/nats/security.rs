//! TLS with client certificates and NKeys to NATS, and the security files checked
//! when the command line is read.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, bin, parse_lines, repo};
use crate::support::*;

impl Server {
    /// A nats-server as [`Server::start`] starts it, with a configuration file of
    /// `conf`'s text besides (TLS, authorization: the command line's port, address
    /// and storage win over the file). `None` (the test skips) without nats-server.
    pub(crate) fn start_with_config(conf: &str) -> Option<Server> {
        if Command::new("nats-server")
            .arg("--version")
            .output()
            .is_err()
        {
            common::skip("nats-server is not installed (apt-get install nats-server)");
            return None;
        }
        let dir = common::fresh_dir("apiwatch-nats-conf");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let file = dir.join("nats.conf");
        std::fs::write(&file, conf).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.join("store"))
            .arg("-c")
            .arg(&file)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        let mut server = Server { child, dir, port };
        // The INFO line comes in the clear before any TLS handshake.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if nats_ready(port) {
                return Some(server);
            }
            let log = || std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
            assert!(
                server.child.try_wait().unwrap().is_none(),
                "nats-server exited: {}",
                log()
            );
            assert!(
                Instant::now() < deadline,
                "nats-server did not start: {}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs the openssl CLI in `dir`.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `NAME.pem` and `NAME.key` in `dir`: a CA, or (with `ca`) a certificate it signs
/// for `usage` (serverAuth, clientAuth) and the names `san`. EC P-256, two days.
pub(crate) fn certificate(dir: &Path, name: &str, ca: Option<(&str, u32)>, usage: &str, san: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let (key, pem, subj) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN=apiwatch test {name}"),
    );
    match ca {
        None => {
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            a.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            a.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(dir, &a);
        }
        Some((ca, serial)) => {
            let csr = format!("{name}.csr");
            let mut a = vec!["req"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(dir, &a);
            let ext = format!("{name}.ext");
            std::fs::write(
                dir.join(&ext),
                format!(
                    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                     extendedKeyUsage={usage}\nsubjectAltName={san}\n"
                ),
            )
            .unwrap();
            let (ca_pem, ca_key, serial) =
                (format!("{ca}.pem"), format!("{ca}.key"), serial.to_string());
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &ca_pem,
                    "-CAkey",
                    &ca_key,
                    "-set_serial",
                    &serial,
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join(&key), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Across hosts (issue #27): a nats-server that requires TLS, verifies client
/// certificates against its CA and knows one NKey user. A sensor and a detector
/// that bring the CA, a client certificate and the user's seed write, between them,
/// exactly the alerts of one process; without the client certificate, with another
/// CA or with another NKey each fails at once with one line (exit 1), and no output
/// carries the seed.
#[test]
fn tls_with_client_certificates_and_nkeys_carries_the_stream() {
    if Command::new("openssl").arg("version").output().is_err() {
        common::skip("the openssl CLI is not installed (it makes the test certificates)");
        return;
    }
    let dir = common::fresh_dir("apiwatch-nats-tls");
    certificate(&dir, "ca", None, "", "");
    certificate(&dir, "other-ca", None, "", "");
    certificate(
        &dir,
        "server",
        Some(("ca", 2)),
        "serverAuth",
        "IP:127.0.0.1,DNS:localhost",
    );
    certificate(
        &dir,
        "client",
        Some(("ca", 3)),
        "clientAuth",
        "DNS:apiwatch-sensor",
    );
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (file, s) in [("user.nk", &seed), ("stranger.nk", &stranger)] {
        std::fs::write(dir.join(file), format!("{s}\n")).unwrap();
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let conf = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n\
         authorization {{\n  users = [ {{ nkey: \"{}\" }} ]\n}}\n",
        path("server.pem"),
        path("server.key"),
        path("ca.pem"),
        user.public_key()
    );
    let Some(server) = Server::start_with_config(&conf) else {
        return;
    };
    let url = format!("tls://127.0.0.1:{}", server.port);
    // What one side brings: the CA it trusts, its certificate or none, its seed.
    let secure = |ca: &str, cert: bool, nk: &str| {
        let mut a = vec!["--nats-tls-ca".to_string(), path(ca)];
        if cert {
            a.extend([
                "--nats-tls-cert".to_string(),
                path("client.pem"),
                "--nats-tls-key".to_string(),
                path("client.key"),
            ]);
        }
        a.extend(["--nats-nkey".to_string(), path(nk)]);
        a
    };
    let stream = ["--nats-stream", "ATTACKS", "--nats-subject", "attacks"];
    let cap = capture("attacks");
    let lp = learning_period("attacks");
    let sensor = |sec: &[String]| {
        let mut c = bin();
        c.arg("-r")
            .arg(&cap)
            .args(["--publish", &url, "-q"])
            .args(stream)
            .args(sec)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let detector = |sec: &[String], alerts: &Path| {
        let mut c = bin();
        c.args([
            "detect",
            "--from",
            &url,
            "--shard",
            "1/1",
            "--until-idle",
            "2s",
            "-q",
        ])
        .args(stream)
        .args(["--learning-period", &lp, "--alerts"])
        .arg(alerts)
        .args(sec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        c
    };
    let no_seed = |out: &Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains(&seed) && !err.contains(&stranger),
            "a seed in: {err}"
        );
    };

    let single = bin()
        .arg("-r")
        .arg(&cap)
        .args(["--alerts", "-", "-q", "--learning-period", &lp])
        .output()
        .unwrap();
    ok(&single, "apiwatch -r");
    let expected = keys(&parse_lines(&single.stdout));
    assert!(!expected.is_empty(), "attacks: no alerts to compare");

    let good = secure("ca.pem", true, "user.nk");
    let out = wait(
        sensor(&good).spawn().unwrap(),
        "the TLS sensor",
        Duration::from_secs(300),
    );
    ok(&out, "apiwatch -r --publish tls://");
    no_seed(&out);
    let alerts = dir.join("alerts.json");
    let out = wait(
        detector(&good, &alerts).spawn().unwrap(),
        "the TLS detector",
        Duration::from_secs(300),
    );
    ok(&out, "apiwatch detect --from tls://");
    no_seed(&out);
    assert_eq!(
        keys(&read_alerts(&alerts)),
        expected,
        "the detector over TLS and NKey wrote other alerts than one process"
    );

    // Refused, at once and in one line, on either side.
    let refused = dir.join("refused.json");
    for (what, sec, needle) in [
        (
            "no client certificate",
            secure("ca.pem", false, "user.nk"),
            "--nats-tls-cert",
        ),
        (
            "another CA",
            secure("other-ca.pem", true, "user.nk"),
            "invalid peer certificate",
        ),
        (
            "another NKey",
            secure("ca.pem", true, "stranger.nk"),
            "authorization violation",
        ),
    ] {
        for (side, cmd) in [
            ("sensor", sensor(&sec)),
            ("detector", detector(&sec, &refused)),
        ] {
            let mut cmd = cmd;
            let started = Instant::now();
            let out = wait(cmd.spawn().unwrap(), what, Duration::from_secs(60));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{side}, {what}: {err}");
            assert_eq!(err.lines().count(), 1, "{side}, {what}: {err}");
            assert!(
                err.contains("level=error") && err.contains("cannot connect to NATS"),
                "{side}, {what}: {err}"
            );
            assert!(
                err.contains(needle),
                "{side}, {what}: {needle:?} not in {err}"
            );
            assert!(!err.contains("panicked"), "{side}, {what}: {err}");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{side}, {what}: took {:?}",
                started.elapsed()
            );
            no_seed(&out);
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

// A nats-server outage mid-capture (#27): the sensor holds what the server has not
// stored, publishes it again in order once the server is back, and beyond its
// buffer drops and counts.

/// A file for this test in the temporary directory (`NAME-PID`).
fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    fs::write(&p, bytes).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit `code` with one error line (and only that line for a usage error) naming
/// each of `needles`, and no backtrace.
fn assert_one_clear_line(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains(" level=error msg="), "{err}");
    if code == 2 {
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    for n in needles {
        assert!(first.contains(n), "{n:?} not in {first:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// The NATS connection's files (`--nats-tls-ca`, `--nats-tls-cert`, `--nats-tls-key`,
/// `--nats-nkey`, `--nats-creds`) are read when the command line is: a missing,
/// unreadable or malformed one, a key or seed every user may read, or a certificate
/// without its key is one line and exit 2, for the detector and the sensor alike,
/// and no message carries a seed or a password.
#[test]
fn nats_security_files_are_checked_before_connecting() {
    use std::os::unix::fs::PermissionsExt;
    let secret = |name: &str, bytes: &[u8], mode: u32| {
        let p = tmp(name, bytes);
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p.to_str().unwrap().to_string()
    };
    let user = nkeys::KeyPair::new_user().seed().unwrap();
    let account = nkeys::KeyPair::new_account().seed().unwrap();
    let cert = repo("tests/fixtures/web-test.crt");
    let cert = cert.to_str().unwrap();
    let key = fs::read(repo("tests/fixtures/web-test.key")).unwrap();
    let other_key = fs::read(repo("tests/fixtures/exporter-toolkit/server.key")).unwrap();
    let key = secret("nats-tls.key", &key, 0o600);
    let other_key = secret("nats-other.key", &other_key, 0o600);
    let open_key = secret("nats-open.key", &fs::read(&key).unwrap(), 0o644);
    let garbage = secret("nats-garbage.pem", b"not a certificate\n", 0o600);
    let bad_base64 = secret(
        "nats-bad64.pem",
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        0o600,
    );
    let seed = secret("nats-user.nk", format!("{user}\n").as_bytes(), 0o600);
    let open_seed = secret("nats-open.nk", format!("{user}\n").as_bytes(), 0o644);
    // One character of a valid seed's key changed (never to itself): its checksum
    // no longer holds.
    let mid = user.len() / 2;
    let other = if &user[mid..=mid] == "A" { "B" } else { "A" };
    let broken = format!("{}{other}{}", &user[..mid], &user[mid + 1..]);
    let broken_seed = secret("nats-broken.nk", format!("{broken}\n").as_bytes(), 0o600);
    let account_seed = secret("nats-account.nk", format!("{account}\n").as_bytes(), 0o600);
    let bad_creds = secret("nats-bad.creds", b"not a creds file\n", 0o600);
    let missing = "/definitely/not/here.pem";

    let detect = |extra: &[&str]| {
        let mut a = vec!["detect", "--from", "nats://127.0.0.1:1"];
        a.extend_from_slice(extra);
        run(&a)
    };
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--nats-tls-ca", missing],
            vec!["--nats-tls-ca", missing],
        ),
        (
            vec!["--nats-tls-ca", &garbage],
            vec!["--nats-tls-ca", "no PEM certificate"],
        ),
        (
            vec!["--nats-tls-ca", &bad_base64],
            vec!["--nats-tls-ca", "not PEM"],
        ),
        (
            vec!["--nats-tls-cert", cert],
            vec!["--nats-tls-cert and --nats-tls-key"],
        ),
        (
            vec!["--nats-tls-key", &key],
            vec!["--nats-tls-cert and --nats-tls-key"],
        ),
        (
            vec!["--nats-tls-cert", missing, "--nats-tls-key", &key],
            vec!["--nats-tls-cert", missing],
        ),
        (
            vec!["--nats-tls-cert", cert, "--nats-tls-key", missing],
            vec!["--nats-tls-key", missing],
        ),
        (
            vec!["--nats-tls-cert", cert, "--nats-tls-key", &garbage],
            vec!["--nats-tls-key", "no PEM private key"],
        ),
        (
            vec!["--nats-tls-cert", cert, "--nats-tls-key", &other_key],
            vec!["--nats-tls-cert", "--nats-tls-key", "not the certificate's"],
        ),
        (
            vec!["--nats-tls-cert", cert, "--nats-tls-key", &open_key],
            vec!["--nats-tls-key", "every user may read"],
        ),
        (vec!["--nats-nkey", missing], vec!["--nats-nkey", missing]),
        (
            vec!["--nats-nkey", &open_seed],
            vec!["--nats-nkey", "every user may read"],
        ),
        (
            vec!["--nats-nkey", &broken_seed],
            vec!["--nats-nkey", "not a valid NKey seed"],
        ),
        (
            vec!["--nats-nkey", &account_seed],
            vec!["--nats-nkey", "no user NKey seed"],
        ),
        (
            vec!["--nats-nkey", &garbage],
            vec!["--nats-nkey", "no user NKey seed"],
        ),
        (vec!["--nats-creds", &bad_creds], vec!["--nats-creds"]),
        (
            vec!["--nats-creds", &bad_creds, "--nats-nkey", &seed],
            vec!["exclude each other"],
        ),
    ];
    for (extra, needles) in &cases {
        let o = detect(extra);
        assert_one_clear_line(&o, 2, needles);
        for s in [&user, &account, &broken] {
            assert!(
                !stderr(&o).contains(s.as_str()),
                "a seed in: {}",
                stderr(&o)
            );
        }
    }
    // The sensor reads the same options the same way.
    let cap = repo("captures/attacks.pcap.gz");
    let cap = cap.to_str().unwrap();
    let o = run(&[
        "-r",
        cap,
        "--publish",
        "tls://127.0.0.1:1",
        "--nats-nkey",
        &broken_seed,
    ]);
    assert_one_clear_line(&o, 2, &["--nats-nkey", "not a valid NKey seed"]);
    let o = run(&["-r", cap, "--nats-tls-ca", cert]);
    assert_one_clear_line(&o, 2, &["need --publish"]);
    // An unreadable file (root reads everything: checked as another user only).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let locked = secret("nats-locked.nk", format!("{user}\n").as_bytes(), 0o000);
        assert_one_clear_line(
            &detect(&["--nats-nkey", &locked]),
            2,
            &["--nats-nkey", "denied"],
        );
    }

    // A seed its group may read is used, with a warning; a password in the URL is
    // used, with a warning, and masked in every message.
    let group_seed = secret("nats-group.nk", format!("{user}\n").as_bytes(), 0o640);
    let o = detect(&["--nats-nkey", &group_seed]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("level=warn") && err.contains("its group may read it"),
        "{err}"
    );
    assert!(
        err.contains("cannot connect to NATS") && !err.contains(&user),
        "{err}"
    );
    let o = run(&["detect", "--from", "nats://bob:hunter2@127.0.0.1:1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("nats://***@127.0.0.1:1") && !err.contains("hunter2"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
