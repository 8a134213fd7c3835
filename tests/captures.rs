//! The real captures in captures/ (made by scripts/make-capture.sh basic with curl, nginx
//! and python's http.server in network namespaces): the exact exchange list of each,
//! checked once by hand against `tshark -Y http`.

mod common;

use common::{exchanges, repo, summaries};

#[test]
fn python_http_server_one_connection_per_request() {
    assert_eq!(
        summaries(&repo("captures/python-http-server.pcap")),
        [
            "53922 1 GET / 200 29",
            "53934 1 GET /docs/big.txt 200 20000",
            "53936 1 GET /missing 404 335",
            "53938 1 HEAD /docs/ 200 0",
        ]
    );
}

#[test]
fn nginx_keepalive_chunked_gzip_head_304_and_pipelining() {
    assert_eq!(
        summaries(&repo("captures/nginx-keepalive-pipelined.pcap")),
        [
            // keep-alive: three requests on one connection, gzip-chunked bodies
            "49104 1 GET / 200 49",
            "49104 2 GET /docs/big.txt 200 124",
            "49104 3 GET /nope 404 114",
            "49106 1 HEAD /index.html 200 0",
            "49116 1 GET /index.html 304 0",
            // three requests in one segment, answered in order
            "49126 1 GET /index.html 200 49",
            "49126 2 GET /api/status 200 31",
            "49126 3 GET /docs/big.txt 200 124",
        ]
    );
}

#[test]
fn json_api_logins_chunked_and_expect_continue() {
    let capture = repo("captures/api-login.pcap");
    assert_eq!(
        summaries(&capture),
        [
            "48168 1 POST /api/login 401 32",
            "48168 2 POST /api/login 401 32",
            "48168 3 POST /api/login 200 29",
            "48168 4 GET /api/users/42 200 28",
            "48168 5 GET /api/users/4242 404 25",
            "48168 6 GET /api/orders?page=2 200 139",
            "48168 7 POST /api/orders 201 30",
            "48168 8 DELETE /api/users/7 204 0",
            "48168 9 GET /health?api_key=REDACTED 200 16",
        ]
    );
    let all = exchanges(&capture);
    let endpoints: Vec<&str> = all
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(endpoints[3], "GET /api/users/{id}");
    assert_eq!(endpoints[4], "GET /api/users/{id}");
    // The login bodies are measured, never written out.
    assert_eq!(
        all[0]["request_body_len"],
        r#"{"username":"alice","password":"wrong1"}"#.len()
    );
    let text = all.iter().map(|e| e.to_string()).collect::<String>();
    for secret in [
        "wrong1",
        "correct-horse",
        "not-a-real-key",
        "demo-token",
        "Bearer",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the exchange log"
        );
    }
}

/// curl padding each failed login with one 70 KB header, then with one 900 KB header,
/// against a Node.js server that accepts them (scripts/make-capture.sh padded). Heads
/// past 64 KiB once came out without method or URI and raised nothing.
#[test]
fn padded_logins_are_still_logins_and_raise_brute_force() {
    let cap = repo("captures/padded-logins.pcap.gz");
    let all = exchanges(&cap);
    assert_eq!(all.len(), 40, "every attempt is in the exchange log");
    for e in &all {
        assert_eq!(e["endpoint"], "POST /api/login", "{e}");
        assert_eq!(e["status"], 401, "{e}");
        assert_eq!(e["flags"], serde_json::json!(["head_too_large"]), "{e}");
    }
    let out = common::bin()
        .arg("-r")
        .arg(&cap)
        .args(["--alerts", "-", "-q"])
        .output()
        .unwrap();
    let alerts = common::parse_lines(&out.stdout);
    let brute: Vec<_> = alerts
        .iter()
        .filter(|a| a["alert"]["context"]["apiwatch"]["kind"] == "brute_force")
        .collect();
    // One episode per padding size (they are 130 s apart, past the episode gap).
    assert_eq!(brute.len(), 2, "{alerts:?}");
    for a in brute {
        assert_eq!(
            a["alert"]["context"]["apiwatch"]["evidence"]["oversized_heads"], 10,
            "{a}"
        );
    }
}
