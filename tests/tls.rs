//! TLS connections of `captures/tls-handshakes.pcap` (real nginx, `openssl
//! s_server`, curl and `openssl s_client` on loopback; scripts/make-tls-capture.sh):
//! one record each, with the SNI, versions and ALPN tshark shows for the same
//! packets and the JA4 FoxIO's own `ja4.py` computes for them (checked when the
//! capture was made; the table is in captures/README.md), and the JA3 and JA3S
//! Suricata 8.0.6 writes for them (scripts/ja4-vs-suricata.sh --fingerprint ja3).

mod common;

use serde_json::Value;

fn records(format: &str) -> Vec<Value> {
    let out = common::bin()
        .arg("-r")
        .arg(common::repo("captures/tls-handshakes.pcap"))
        .args(["--exchanges", "-", "--alerts", "/dev/null", "-q"])
        .args(["--exchanges-format", format])
        .output()
        .expect("run apiwatch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::parse_lines(&out.stdout)
}

/// client port, SNI, negotiated version, ALPN offered, ALPN chosen, JA4, outcome.
const EXPECTED: [(u64, &str, &str, &str, &str, &str, &str); 9] = [
    (
        32808,
        "api.example.test",
        "1.3",
        "h2,http/1.1",
        "",
        "t13d0412h2_16476d049b0b_85302d7e289e",
        "established",
    ),
    (
        32820,
        "api.example.test",
        "1.3",
        "http/1.1",
        "",
        "t13d0412h1_16476d049b0b_85302d7e289e",
        "established",
    ),
    (
        32830,
        "api.example.test",
        "1.2",
        "h2,http/1.1",
        "h2",
        "t12d2807h2_d943125447b4_a44c6288192a",
        "established",
    ),
    (
        32832,
        "api.example.test",
        "1.2",
        "",
        "",
        "t12d280600_d943125447b4_a44c6288192a",
        "established",
    ),
    (
        32848,
        "",
        "1.3",
        "h2,http/1.1",
        "",
        "t13i0410h2_16476d049b0b_303c7117418d",
        "established",
    ),
    (
        32864,
        "api.example.test",
        "1.3",
        "h2,http/1.1",
        "",
        "t13d0411h2_16476d049b0b_78f1d400d464",
        "established",
    ),
    (
        33046,
        "ec.example.test",
        "1.2",
        "",
        "",
        "t12d280700_d943125447b4_e7e480e5a997",
        "established",
    ),
    (
        33048,
        "ec.example.test",
        "1.2",
        "",
        "",
        "t12d280700_d943125447b4_e7e480e5a997",
        "established",
    ),
    (
        33058,
        "ec.example.test",
        "",
        "",
        "",
        "t13d041000_16476d049b0b_78f1d400d464",
        "alert",
    ),
];

#[test]
fn every_tls_connection_has_one_record_equal_to_tshark_and_foxio() {
    let recs = records("apiwatch");
    assert_eq!(
        recs.len(),
        EXPECTED.len(),
        "one record per connection, no exchange"
    );
    for (r, (port, sni, version, offered, chosen, ja4, outcome)) in recs.iter().zip(EXPECTED) {
        assert_eq!(r["type"], "tls");
        assert_eq!(r["client_port"], port);
        assert_eq!(r["server_ip"], "127.0.0.1");
        assert_eq!(r["sni"].as_str().unwrap_or(""), sni, "{r}");
        assert_eq!(r["version"].as_str().unwrap_or(""), version, "{r}");
        let alpns: Vec<&str> = r["alpn_offered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(alpns.join(","), offered, "{r}");
        assert_eq!(r["alpn"].as_str().unwrap_or(""), chosen, "{r}");
        assert_eq!(r["ja4"], ja4, "{r}");
        assert_eq!(r["outcome"], outcome, "{r}");
        assert!(r["flow_id"].as_u64().is_some_and(|id| id > 0));
    }
    // TLS 1.2 shows the server's certificate; TLS 1.3 encrypts it.
    let rsa = &recs[2]["certificates"][0];
    assert_eq!(rsa["subject"], "CN=api.example.test, O=apiwatch test");
    assert_eq!(rsa["key_type"], "rsa");
    assert_eq!(rsa["key_bits"], 2048);
    assert_eq!(rsa["signature_algorithm"], "sha256WithRSAEncryption");
    assert_eq!(
        rsa["sans"],
        serde_json::json!(["api.example.test", "*.example.test", "127.0.0.1"])
    );
    assert_eq!(recs[6]["certificates"][0]["key_type"], "ecdsa");
    assert_eq!(recs[6]["certificates"][0]["key_bits"], 256);
    assert!(recs[0]["certificates"].as_array().unwrap().is_empty());
    // The second s_client connection resumed the first one's session.
    assert_eq!(recs[6]["resumed"], false);
    assert_eq!(recs[7]["resumed"], true);
    assert_eq!(recs[7]["history"], "CsiI");
    assert_eq!(recs[2]["history"], "CsxknGIi");
    // A TLS 1.3 hello to a TLS 1.2-only server: refused with an alert in clear.
    assert_eq!(recs[8]["alert"]["sender"], "server");
    assert_eq!(recs[8]["alert"]["description"], "protocol_version");
}

#[test]
fn the_zeek_form_uses_ssl_log_columns_and_the_same_uid_as_the_eve_form_flow() {
    let zeek = records("zeek");
    let eve = records("eve");
    let columns = [
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "version",
        "cipher",
        "curve",
        "server_name",
        "resumed",
        "last_alert",
        "next_protocol",
        "established",
        "ssl_history",
        "cert_chain_fps",
        "sni_matches_cert",
        "ja4",
        "ja3",
        "ja3s",
    ];
    for (z, e) in zeek.iter().zip(&eve) {
        for k in z.as_object().unwrap().keys() {
            assert!(
                columns.contains(&k.as_str()),
                "{k} is not an ssl.log column"
            );
        }
        assert!(z["established"].is_boolean() && z["resumed"].is_boolean());
        assert_eq!(z["ja4"], e["tls"]["ja4"]);
        assert_eq!(z["ja3"], e["tls"]["ja3"]["hash"]);
        assert_eq!(z["ja3s"], e["tls"]["ja3s"]["hash"]);
        assert_eq!(z["id.orig_p"], e["src_port"]);
    }
    assert_eq!(zeek[0]["version"], "TLSv13");
    assert_eq!(zeek[0]["cipher"], "TLS_AES_256_GCM_SHA384");
    assert_eq!(zeek[0]["curve"], "x25519");
    assert_eq!(zeek[2]["next_protocol"], "h2");
    assert_eq!(zeek[2]["sni_matches_cert"], true);
    assert_eq!(zeek[2]["cert_chain_fps"].as_array().unwrap().len(), 1);
    assert_eq!(zeek[8]["last_alert"], "protocol_version");
    assert_eq!(zeek[8]["established"], false);
    assert_eq!(eve[2]["tls"]["version"], "TLS 1.2");
    assert_eq!(eve[2]["tls"]["server_alpns"], serde_json::json!(["h2"]));
    assert!(eve[2]["tls"]["fingerprint"].as_str().unwrap().len() == 59);
}

/// client port, JA3, JA3S (none without a ServerHello): Suricata 8.0.6's `tls.ja3.hash`
/// and `tls.ja3s.hash` for the same connections.
const JA3: [(u64, &str, &str); 9] = [
    (
        32808,
        "89dfc51e72bdcb94e4ba4622588002b1",
        "15af977ce25de452b96affa2addb1036",
    ),
    (
        32820,
        "89dfc51e72bdcb94e4ba4622588002b1",
        "15af977ce25de452b96affa2addb1036",
    ),
    (
        32830,
        "87b9bfc7da97115ed2276737b09f8d74",
        "263c859c5391203d774bc0599793d915",
    ),
    (
        32832,
        "2c4428422b734ef16cdbf05bc5d82e08",
        "b653c251b0ee54c3088fe7bb997cf59d",
    ),
    (
        32848,
        "c9c1eed92382442399b8d87cbe8a6779",
        "15af977ce25de452b96affa2addb1036",
    ),
    (
        32864,
        "9dffdb8b608a430b774a2ff7d36c1a0c",
        "15af977ce25de452b96affa2addb1036",
    ),
    (
        33046,
        "871a754af286dfb70c1b53c6887c62e0",
        "abade5a4a7f42baf54766e5d108283b6",
    ),
    (
        33048,
        "871a754af286dfb70c1b53c6887c62e0",
        "f14f2862ee2df5d0f63a88b60c8eee56",
    ),
    (33058, "f146948b4a599d4d7ddf071b74696983", ""),
];

#[test]
fn ja3_and_ja3s_equal_suricatas_in_every_form() {
    let recs = records("apiwatch");
    let eve = records("eve");
    let zeek = records("zeek");
    assert_eq!(recs.len(), JA3.len());
    for (i, (port, ja3, ja3s)) in JA3.into_iter().enumerate() {
        let (r, e, z) = (&recs[i], &eve[i]["tls"], &zeek[i]);
        assert_eq!(r["client_port"], port);
        assert_eq!(r["ja3"], ja3, "{r}");
        assert_eq!(r["ja3s"].as_str().unwrap_or(""), ja3s, "{r}");
        assert_eq!(e["ja3"]["hash"], ja3, "{e}");
        assert_eq!(e["ja3"]["string"], r["ja3_string"]);
        assert_eq!(z["ja3"], ja3);
        if ja3s.is_empty() {
            assert!(
                r["ja3s_string"].is_null() && e.get("ja3s").is_none() && z.get("ja3s").is_none()
            );
        } else {
            assert_eq!(e["ja3s"]["hash"], ja3s);
            assert_eq!(e["ja3s"]["string"], r["ja3s_string"]);
            assert_eq!(z["ja3s"], ja3s);
        }
    }
    // The strings, as Suricata writes them: curl's TLS 1.3 hello (GREASE-free
    // OpenSSL) and the server's TLS 1.3 answer (its legacy version, 771)...
    assert_eq!(
        recs[0]["ja3_string"],
        "771,4866-4867-4865-255,0-11-10-16-22-23-49-13-43-45-51-21,\
         29-23-30-25-24-256-257-258-259-260,0-1-2"
    );
    assert_eq!(recs[0]["ja3s_string"], "771,4866,43-51");
    // ... and nginx's TLS 1.2 ServerHello.
    assert_eq!(recs[2]["ja3s_string"], "771,49200,65281-0-11-16-23");
}

/// The replay summary counts the TLS connections beside the HTTP exchanges.
#[test]
fn the_summary_counts_tls_connections() {
    let o = common::bin()
        .arg("-r")
        .arg(common::repo("captures/tls-handshakes.pcap"))
        .args(["--alerts", "/dev/null"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let http = err
        .lines()
        .find(|l| l.contains("msg=\"Summary: http\""))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        http.contains(&format!("tls_connections={} ", EXPECTED.len())),
        "{http}"
    );
    assert!(http.contains("exchanges=0 "), "{http}");
}

/// The TLS metrics, as the replay's OpenMetrics output has them at its end: 4 TLS 1.2
/// and 4 TLS 1.3 connections, all on AEAD suites with ephemeral keys; the refused
/// handshake has no ServerHello.
#[test]
fn tls_metrics_count_versions_suite_classes_and_outcomes() {
    let dir = common::fresh_dir("apiwatch-tls-metrics");
    let om = dir.join("metrics.om");
    let o = common::bin()
        .arg("-r")
        .arg(common::repo("captures/tls-handshakes.pcap"))
        .args(["--alerts", "/dev/null", "-q", "--openmetrics-out"])
        .arg(&om)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&om).unwrap();
    // The last sample of each series is its final value.
    let last = |series: &str| -> String {
        text.lines()
            .rfind(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_else(|| panic!("no {series}"))
            .to_string()
    };
    for (series, want) in [
        ("apiwatch_tls_connections_total{version=\"1.2\"}", "4"),
        ("apiwatch_tls_connections_total{version=\"1.3\"}", "4"),
        ("apiwatch_tls_connections_total{version=\"unknown\"}", "1"),
        (
            "apiwatch_tls_suites_total{class=\"aead_forward_secret\"}",
            "8",
        ),
        ("apiwatch_tls_suites_total{class=\"weak\"}", "0"),
        ("apiwatch_tls_suites_total{class=\"unknown\"}", "1"),
        (
            "apiwatch_tls_handshakes_total{outcome=\"established\"}",
            "8",
        ),
        ("apiwatch_tls_handshakes_total{outcome=\"alert\"}", "1"),
    ] {
        assert_eq!(last(series), want, "{series}");
    }
}
