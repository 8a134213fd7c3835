//! Posture findings (issue #26, first increment): what the servers on the wire get
//! wrong, reported once per server, route, kind and what, naming no client.
//! captures/posture-tls.pcap (scripts/make-posture-tls-capture.sh): openssl servers
//! negotiating TLS 1.0 with an expired certificate, TLS 1.2 with RSA key exchange and
//! a certificate 5 days from expiry, and a sound TLS 1.3 one; no keys.

mod common;

use serde_json::Value;

fn alerts(capture: &str) -> Vec<Value> {
    // A directory per capture: the tests of this file run in parallel.
    let dir = common::fresh_dir(&format!("apiwatch-posture-{}", capture.replace('/', "_")));
    let alerts = dir.join("alerts.json");
    let out = common::bin()
        .arg("-r")
        .arg(common::repo(capture))
        .args(["-q", "--alerts"])
        .arg(&alerts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::parse_lines(&std::fs::read(&alerts).unwrap())
}

fn ctx(a: &Value) -> &Value {
    &a["alert"]["context"]["apiwatch"]
}

#[test]
fn weak_tls_and_certificates_past_or_near_expiry_per_server() {
    let got: Vec<(String, String, String)> = alerts("captures/posture-tls.pcap")
        .iter()
        .map(|a| {
            assert_eq!(ctx(a)["scope"], "api", "{a}");
            assert!(
                a.get("src_ip").is_none() && ctx(a).get("client_ip").is_none(),
                "{a}"
            );
            assert_eq!(a["app_proto"], "tls");
            let what = match ctx(a)["kind"].as_str().unwrap() {
                "weak_tls" => ctx(a)["evidence"]["version"].as_str().unwrap().to_string(),
                _ => ctx(a)["evidence"]["status"].as_str().unwrap().to_string(),
            };
            (
                ctx(a)["server"].as_str().unwrap().to_string(),
                ctx(a)["kind"].as_str().unwrap().to_string(),
                what,
            )
        })
        .collect();
    let want = [
        ("legacy.example.test", "weak_tls", "TLS 1.0"),
        ("legacy.example.test", "certificate_expiry", "expired"),
        ("rsa.example.test", "weak_tls", "TLS 1.2"),
        ("rsa.example.test", "certificate_expiry", "expiring"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_login_over_cleartext_http_is_one_finding_however_many_attempts() {
    let all = alerts("captures/attacks.pcap.gz");
    let posture: Vec<&Value> = all.iter().filter(|a| ctx(a)["scope"] == "api").collect();
    assert_eq!(posture.len(), 1, "{posture:#?}");
    let p = posture[0];
    assert_eq!(ctx(p)["kind"], "cleartext_credentials");
    assert_eq!(ctx(p)["endpoint"], "POST /api/login");
    assert_eq!(ctx(p)["evidence"]["credential"], "password");
    assert_eq!(p["alert"]["signature_id"], 9100009);
    assert!(p.get("src_ip").is_none() && p.get("flow_id").is_none());
}

/// The findings are metrics too: on the labelled posture capture the day's gauge
/// holds one per labelled finding of each kind, and the observations counter counts
/// every exchange or connection that showed the weakness (more than the findings).
#[test]
fn findings_are_counted_in_the_metrics() {
    let dir = common::fresh_dir("apiwatch-posture-metrics");
    let om = dir.join("metrics.om");
    let out = common::bin()
        .arg("-r")
        .arg(common::repo("captures/posture.pcapng.gz"))
        .args(["-q", "--learning-period", "2m", "--alerts", "/dev/null"])
        .arg("--openmetrics-out")
        .arg(&om)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&om).unwrap();
    // The last sample of a series (the backfill file repeats them over time).
    let last = |series: &str| -> u64 {
        text.lines()
            .rev()
            .find(|l| l.starts_with(series))
            .and_then(|l| l[series.len()..].split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{series} not in the metrics"))
    };
    for (kind, findings) in [
        ("cleartext_credentials", 3),
        ("credentials_in_url", 1),
        ("weak_tls", 1),
        ("certificate_expiry", 2),
        ("jwt_weakness", 2),
    ] {
        assert_eq!(
            last(&format!("apiwatch_findings{{kind=\"{kind}\"}} ")),
            findings,
            "{kind}"
        );
        let seen = last(&format!(
            "apiwatch_finding_observations_total{{kind=\"{kind}\"}} "
        ));
        assert!(seen >= findings, "{kind}: {seen} observations");
    }
    // The legacy clients keep sending Basic credentials in clear.
    assert!(last("apiwatch_finding_observations_total{kind=\"cleartext_credentials\"} ") > 10);
}
