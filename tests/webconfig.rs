//! `--web.config.file` against exporter-toolkit's own sample configurations: every
//! file it accepts loads here, every file it refuses is refused here for the same
//! reason, and the client-certificate policies behave as its tests say when a real
//! TLS client (curl) connects.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use apiwatch::metrics::webconfig::{WebConfig, WebSource};
use apiwatch::metrics::{Exposition, WebOptions, serve};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exporter-toolkit")
}

fn load(name: &str) -> Result<WebConfig, String> {
    WebConfig::load(&dir().join(name).to_string_lossy())
}

/// Files exporter-toolkit accepts (its Go tests serve with them, some then refuse
/// particular clients at the handshake).
const ACCEPTED: [&str; 21] = [
    "web_config_empty.yml",
    "web_config_noAuth.good.yml",
    "web_config_noAuth.good.blocking.yml",
    "web_config_noAuth_tlsInline.good.yml",
    "web_config_noAuth_allCiphers.good.yml",
    "web_config_noAuth_someCiphers.good.yml",
    "web_config_noAuth_someCiphers_noOrder.good.yml",
    "web_config_noAuth_allCurves.good.yml",
    "web_config_noAuth_someCurves.good.yml",
    "web_config_noAuth_noHTTP2.good.yml",
    "web_config_headers.good.yml",
    "tls_config_noAuth.requireanyclientcert.good.yml",
    "tls_config_noAuth.requireanyclientcertkeyinline.good.yml",
    "tls_config_noAuth.requireandverifyclientcert.good.yml",
    "web_config_auth_client_san.good.yaml",
    "web_config_auth_client_san.bad.yaml",
    "web_config_auth_clientCAs_missing.bad.yml",
    "web_config_rate_limiter_nonblocking.yaml",
    "web_config_rate_limiter_one_second.yaml",
    "web_config_users.good.yml",
    "web_config_users_noTLS.good.yml",
];

/// Files it refuses, with (a part of) its reason.
const REFUSED: [(&str, &str); 20] = [
    ("web_config_junk.yml", "yaml"),
    ("web_config_junk_key.yml", "yaml"),
    (
        "web_config_noAuth_certPath_empty.bad.yml",
        "missing one of cert or cert_file",
    ),
    (
        "web_config_noAuth_cert_empty.bad.yml",
        "missing one of cert or cert_file",
    ),
    (
        "web_config_noAuth_keyPath_empty.bad.yml",
        "missing one of key or key_file",
    ),
    (
        "web_config_noAuth_key_empty.bad.yml",
        "missing one of key or key_file",
    ),
    (
        "web_config_noAuth_certPath_keyPath_empty.bad.yml",
        "missing one of cert or cert_file",
    ),
    ("web_config_noAuth_certPath_invalid.bad.yml", "No such file"),
    ("web_config_noAuth_keyPath_invalid.bad.yml", "No such file"),
    (
        "web_config_noAuth_certPath_keyPath_invalid.bad.yml",
        "No such file",
    ),
    (
        "web_config_noAuth.bad.yml",
        "client CA's have been configured without a Client Auth Policy",
    ),
    ("web_config_auth_clientCAs_invalid.bad.yml", "No such file"),
    (
        "web_config_auth_user_list_invalid.bad.yml",
        "not a bcrypt hash",
    ),
    (
        "web_config_noAuth_inventedCiphers.bad.yml",
        "unknown cipher",
    ),
    ("web_config_noAuth_inventedCurves.bad.yml", "unknown curve"),
    (
        "web_config_noAuth_wrongTLSVersion.bad.yml",
        "unknown TLS version",
    ),
    ("web_config_noAuth_noHTTP2Cipher.bad.yml", "HTTP/2-required"),
    (
        "web_config_headers_content_type_options.bad.yml",
        "invalid value for",
    ),
    (
        "web_config_headers_frame_options.bad.yml",
        "invalid value for",
    ),
    (
        "web_config_headers_extra_header.bad.yml",
        "can not be configured",
    ),
];

#[test]
fn every_sample_is_accepted_or_refused_as_exporter_toolkit_does() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    // Every sample is classified: a new one in a refreshed copy must be looked at.
    for n in &names {
        assert!(
            ACCEPTED.contains(&n.as_str()) || REFUSED.iter().any(|(r, _)| r == n),
            "{n} is not classified"
        );
    }
    assert_eq!(names.len(), ACCEPTED.len() + REFUSED.len());
    for name in ACCEPTED {
        if let Err(e) = load(name) {
            panic!("{name} should load: {e}");
        }
    }
    for (name, why) in REFUSED {
        match load(name) {
            Ok(_) => panic!("{name} should be refused ({why})"),
            Err(e) => assert!(e.contains(why), "{name}: {e} (want {why:?})"),
        }
    }
    // What the accepted ones configure.
    let users = load("web_config_users_noTLS.good.yml").unwrap();
    assert_eq!(users.users.len(), 4);
    assert!(users.tls.is_none());
    let headers = load("web_config_headers.good.yml").unwrap();
    assert_eq!(headers.headers.len(), 5);
    let limited = load("web_config_rate_limiter_one_second.yaml").unwrap();
    assert_eq!(
        limited.rate_limit,
        Some((std::time::Duration::from_secs(1), 0))
    );
    assert_eq!(
        load("web_config_rate_limiter_nonblocking.yaml")
            .unwrap()
            .rate_limit,
        None
    );
    // Differences from Go's TLS stack are warnings, never silent.
    let all = load("web_config_noAuth_allCiphers.good.yml").unwrap();
    assert!(
        all.warnings.iter().any(|w| w.contains("CBC")),
        "{:?}",
        all.warnings
    );
    let p521 = load("web_config_noAuth_someCurves.good.yml").unwrap();
    assert!(
        p521.warnings.iter().any(|w| w.contains("P521")),
        "{:?}",
        p521.warnings
    );
}

fn serve_with(name: &str) -> SocketAddr {
    let (source, _) = WebSource::load(&dir().join(name).to_string_lossy()).unwrap();
    let exp = Exposition::default();
    exp.set("apiwatch_up 1\n".into());
    let opts = WebOptions {
        listen: vec!["127.0.0.1:0".into()],
        config: Arc::new(source),
        ..WebOptions::default()
    };
    serve(&opts, exp).unwrap()[0]
}

/// curl's HTTP status for the metrics page ("000": no HTTP answer, e.g. a refused
/// handshake).
fn curl(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        // The samples' server certificate lacks the key usage OpenSSL wants for
        // TLS 1.3 ("unsuitable certificate purpose"); what is checked here is the
        // client side, so the server is not verified.
        .arg("--insecure")
        .args(args)
        .arg(format!("https://127.0.0.1:{}/metrics", addr.port()))
        .current_dir(dir())
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn client_certificate_policies_hold_against_a_real_tls_client() {
    if Command::new("curl").arg("--version").output().is_err() {
        common::skip("curl is not installed (apt install curl)");
        return;
    }
    let one = [
        "--cert",
        "client_selfsigned.pem",
        "--key",
        "client_selfsigned.key",
    ];
    let two = [
        "--cert",
        "client2_selfsigned.pem",
        "--key",
        "client2_selfsigned.key",
    ];
    // RequireAnyClientCert: any certificate, none refused.
    let any = serve_with("tls_config_noAuth.requireanyclientcert.good.yml");
    assert_eq!(curl(any, &one), "200");
    assert_eq!(curl(any, &[]), "000");
    // RequireAndVerifyClientCert against client_selfsigned.pem.
    let verify = serve_with("tls_config_noAuth.requireandverifyclientcert.good.yml");
    assert_eq!(curl(verify, &one), "200");
    assert_eq!(curl(verify, &two), "000");
    assert_eq!(curl(verify, &[]), "000");
    // VerifyClientCertIfGiven: no certificate is fine.
    assert_eq!(curl(serve_with("web_config_noAuth.good.yml"), &[]), "200");
    // client_allowed_sans: client2 names test3.
    assert_eq!(
        curl(serve_with("web_config_auth_client_san.good.yaml"), &two),
        "200"
    );
    assert_eq!(
        curl(serve_with("web_config_auth_client_san.bad.yaml"), &two),
        "000"
    );
    // TLS 1.2 only with two suites: a TLS 1.3 client is refused, a 1.2 one served.
    let some = serve_with("web_config_noAuth_someCiphers.good.yml");
    assert_eq!(curl(some, &["--tlsv1.2", "--tls-max", "1.2"]), "200");
    assert_eq!(curl(some, &["--tlsv1.3"]), "000");
}

#[test]
fn rate_limit_and_headers_apply_to_responses() {
    let limited = serve_with("web_config_rate_limiter_one_second.yaml");
    let plain = |addr: SocketAddr, extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "--max-time", "10"])
            .args(extra)
            .arg(format!("http://127.0.0.1:{}/metrics", addr.port()))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    if Command::new("curl").arg("--version").output().is_err() {
        return;
    }
    assert!(plain(limited, &[]).starts_with("HTTP/1.1 429"));
    let headers = plain(serve_with("web_config_headers.good.yml"), &[]);
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("x-frame-options: deny"),
        "{headers}"
    );
}
