//! HTTP/2 and gRPC on `captures/h2c.pcap` (scripts/make-h2c-capture.sh: nginx h2c
//! with prior knowledge from curl and httpx, an `Upgrade: h2c` server, a grpcio
//! server): every stream's (method, path, status) equals what tshark decodes; gRPC
//! calls carry their status and message counts; the twelve UNAUTHENTICATED logins
//! from one client raise a `brute_force` with the default thresholds. The same over
//! TLS on `captures/h2-tls.pcap` (scripts/make-h2-tls-capture.sh), decrypted with its
//! key log: every stream equals what tshark decrypts with it.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

const CAPTURE: &str = "captures/h2c.pcap";
/// The capture's ports: nginx (prior knowledge), the h2c upgrade server, gRPC.
const PORTS: [u16; 3] = [18080, 18081, 18082];
/// HTTP/2 over TLS (ALPN h2) and its key log (scripts/make-h2-tls-capture.sh).
const TLS_CAPTURE: &str = "captures/h2-tls.pcap";
const TLS_KEYS: &str = "captures/h2-tls.keys";
const TLS_PORT: u16 = 18463;

/// (client port, stream id) -> (method, path, status).
type Streams = BTreeMap<(u64, u64), (String, String, u64)>;

fn apiwatch_streams() -> Streams {
    streams_of(&common::exchanges(&common::repo(CAPTURE)))
}

/// The streams of an exchange list (TLS connection records left out).
fn streams_of(exchanges: &[Value]) -> Streams {
    exchanges
        .iter()
        .filter(|e| e["type"] != "tls")
        .map(|e| {
            (
                (
                    e["client_port"].as_u64().unwrap(),
                    e["http2"]["stream_id"].as_u64().unwrap(),
                ),
                (
                    e["method"].as_str().unwrap_or("").to_string(),
                    e["uri"].as_str().unwrap_or("").to_string(),
                    e["status"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect()
}

/// tshark's view: HEADERS frames (one per line; several frames in one packet are
/// comma-joined field by field). The upgrade's stream 1 request is the HTTP/1.1
/// request tshark shows as `http`.
fn tshark_streams() -> Option<Streams> {
    let decode_as: Vec<String> = [PORTS[0], PORTS[2]]
        .iter()
        .flat_map(|p| ["-d".to_string(), format!("tcp.port=={p},http2")])
        .collect();
    tshark_streams_of(CAPTURE, &PORTS, &decode_as)
}

/// tshark's streams of `capture`, whose servers listen on `ports`, with `extra`
/// options (`-d` decode-as, `-o tls.keylog_file:`).
fn tshark_streams_of(capture: &str, ports: &[u16], extra: &[String]) -> Option<Streams> {
    let mut args = vec![
        "-r".to_string(),
        common::repo(capture).display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    args.extend(
        [
            "-Y",
            "http2.type==1 || http.request",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "http2.type",
            "-e",
            "http2.streamid",
            "-e",
            "http2.headers.method",
            "-e",
            "http2.headers.path",
            "-e",
            "http2.headers.status",
            "-e",
            "http.request.method",
            "-e",
            "http.request.uri",
        ]
        .map(String::from),
    );
    let out = Command::new("tshark").args(&args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let mut m: Streams = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('|').collect();
        let (src, dst): (u64, u64) = (f[0].parse().ok()?, f[1].parse().ok()?);
        let to_server = ports.contains(&(dst as u16));
        let client = if to_server { src } else { dst };
        if !f[7].is_empty() {
            m.entry((client, 1)).or_default().0 = f[7].into();
            m.entry((client, 1)).or_default().1 = f[8].into();
            continue;
        }
        // Frame by frame: the ids of every frame in the packet, the types to pick
        // the HEADERS ones; methods, paths and statuses in HEADERS order.
        let types: Vec<&str> = f[2].split(',').collect();
        let ids: Vec<&str> = f[3].split(',').collect();
        let headers: Vec<u64> = types
            .iter()
            .zip(&ids)
            .filter(|(t, _)| **t == "1")
            .filter_map(|(_, id)| id.parse().ok())
            .collect();
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        };
        if to_server {
            for ((id, method), path) in headers.iter().zip(list(f[4])).zip(list(f[5])) {
                let e = m.entry((client, *id)).or_default();
                e.0 = method;
                e.1 = path;
            }
        } else {
            // Trailers carry no :status: statuses pair with the first HEADERS of
            // each stream in this packet that has none yet.
            let mut statuses = list(f[6]).into_iter();
            for id in headers {
                let e = m.entry((client, id)).or_default();
                if e.2 == 0
                    && let Some(s) = statuses.next()
                {
                    e.2 = s.parse().unwrap_or(0);
                }
            }
        }
    }
    Some(m)
}

#[test]
fn every_stream_equals_tsharks() {
    let Some(theirs) = tshark_streams() else {
        common::skip("tshark is not installed");
        return;
    };
    let ours = apiwatch_streams();
    assert!(theirs.len() >= 20, "tshark saw {} streams", theirs.len());
    let agree = theirs
        .iter()
        .filter(|(k, v)| ours.get(k) == Some(v))
        .count();
    let missing: Vec<_> = theirs
        .iter()
        .filter(|(k, v)| ours.get(k) != Some(v))
        .map(|(k, v)| format!("{k:?} tshark {v:?} apiwatch {:?}", ours.get(k)))
        .collect();
    // Recall and status agreement at least 0.99: on this capture, every stream.
    assert!(
        agree as f64 >= 0.99 * theirs.len() as f64,
        "{agree}/{} streams agree:\n{}",
        theirs.len(),
        missing.join("\n")
    );
    assert_eq!(ours.len(), theirs.len(), "no stream tshark does not show");
    eprintln!("{agree}/{} streams agree with tshark", theirs.len());
}

/// HTTP/2 over TLS, decrypted with the key log: every stream equals what tshark
/// decrypts with the same key log (curl over TLS 1.3 AES-128-GCM and ChaCha20 and
/// TLS 1.2 AES-128-GCM and ChaCha20, several streams a connection; httpx's eleven
/// streams on one connection, two POSTs with JSON bodies).
#[test]
fn every_decrypted_stream_equals_tsharks() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::fresh_dir("h2-tls");
    // Owner-only, as a checkout may leave it world-readable (used, but warned about).
    let keys = dir.join("keys");
    std::fs::copy(common::repo(TLS_KEYS), &keys).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = common::bin()
        .arg("-r")
        .arg(common::repo(TLS_CAPTURE))
        .arg("--tls-keylog")
        .arg(&keys)
        .args(["--exchanges", "-", "--alerts", "/dev/null", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = common::parse_lines(&out.stdout);
    let tls: Vec<&Value> = recs.iter().filter(|r| r["type"] == "tls").collect();
    assert_eq!(tls.len(), 5, "five connections");
    assert!(tls.iter().all(|t| t["decrypted"] == true), "{tls:?}");
    let ex: Vec<&Value> = recs.iter().filter(|r| r["type"] != "tls").collect();
    assert_eq!(ex.len(), 19, "{ex:?}");
    for e in &ex {
        assert_eq!(e["version"], "2", "{e}");
        assert_eq!(e["flags"], serde_json::json!(["decrypted"]), "{e}");
        assert!(e["http2"]["stream_id"].as_u64().is_some(), "{e}");
    }
    // The three POSTs' JSON bodies were read out of the decrypted DATA frames.
    let posts: Vec<&&Value> = ex.iter().filter(|e| e["method"] == "POST").collect();
    assert_eq!(posts.len(), 3);
    assert!(
        posts
            .iter()
            .all(|e| e["request_body_len"].as_u64() > Some(0)),
        "{posts:?}"
    );
    let ours = streams_of(&recs);
    assert_eq!(ours.len(), ex.len(), "one exchange per stream");
    let keylog = [
        "-o".to_string(),
        format!("tls.keylog_file:{}", keys.display()),
    ];
    let Some(theirs) = tshark_streams_of(TLS_CAPTURE, &[TLS_PORT], &keylog) else {
        common::skip("tshark is not installed");
        return;
    };
    let agree = theirs
        .iter()
        .filter(|(k, v)| ours.get(k) == Some(v))
        .count();
    // Recall and status: every stream.
    assert_eq!(ours, theirs, "{agree}/{} streams agree", theirs.len());
    eprintln!(
        "{agree}/{} decrypted streams agree with tshark",
        theirs.len()
    );
}

fn exchanges() -> Vec<Value> {
    common::exchanges(&common::repo(CAPTURE))
}

#[test]
fn grpc_calls_carry_status_and_message_counts() {
    let ex = exchanges();
    let grpc: Vec<&Value> = ex.iter().filter(|e| e["grpc"].is_object()).collect();
    assert_eq!(grpc.len(), 15, "Say, 12 logins, GetItem, Count");
    let by_path =
        |p: &str| -> Vec<&Value> { grpc.iter().copied().filter(|e| e["uri"] == p).collect() };
    let say = by_path("/demo.Echo/Say");
    assert_eq!(say[0]["grpc"]["status"], 0);
    assert_eq!(say[0]["grpc"]["request_messages"], 1);
    assert_eq!(say[0]["grpc"]["response_messages"], 1);
    let logins = by_path("/auth.Auth/Login");
    assert_eq!(logins.len(), 12);
    for l in &logins {
        // Trailers-only answers: HTTP 200, gRPC UNAUTHENTICATED.
        assert_eq!(l["status"], 200);
        assert_eq!(l["grpc"]["status"], 16);
        assert_eq!(l["grpc"]["message"], "bad credentials");
        assert_eq!(l["version"], "2");
    }
    assert_eq!(by_path("/demo.Store/GetItem")[0]["grpc"]["status"], 5);
    let count = by_path("/demo.Echo/Count");
    assert_eq!(count[0]["grpc"]["response_messages"], 5);
    // Every exchange of the capture is HTTP/2 and complete.
    assert!(
        ex.iter()
            .all(|e| e["version"] == "2" && e.get("flags").is_none())
    );
}

#[test]
fn unauthenticated_grpc_logins_are_a_brute_force() {
    let dir = common::fresh_dir("h2c-alerts");
    let alerts = dir.join("alerts.jsonl");
    let out = common::bin()
        .args(["-r", CAPTURE, "-q", "--exchanges", "/dev/null", "--alerts"])
        .arg(&alerts)
        .current_dir(common::repo(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Client alerts; the capture's cleartext logins also give posture findings.
    let alerts: Vec<Value> = common::parse_lines(&std::fs::read(&alerts).unwrap())
        .into_iter()
        .filter(|a| a["alert"]["context"]["apiwatch"]["scope"] == "client")
        .collect();
    let kinds: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert"]["context"]["apiwatch"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["brute_force"], "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["dest_port"], 18082);
    assert_eq!(
        a["alert"]["context"]["apiwatch"]["endpoint"],
        "POST /auth.Auth/Login"
    );
}

#[test]
fn the_eve_and_zeek_forms_say_version_2() {
    let run = |format: &str| {
        let out = common::bin()
            .args([
                "-r",
                CAPTURE,
                "-q",
                "--alerts",
                "/dev/null",
                "--exchanges",
                "-",
            ])
            .args(["--exchanges-format", format])
            .current_dir(common::repo(""))
            .output()
            .unwrap();
        assert!(out.status.success());
        common::parse_lines(&out.stdout)
    };
    let eve = run("eve");
    assert!(eve.iter().all(|e| e["http"]["version"] == "2"
        && e["http"]["protocol"] == "HTTP/2"
        && e["http"]["http2"]["stream_id"].as_u64().is_some()));
    let login = eve
        .iter()
        .find(|e| e["http"]["url"] == "/auth.Auth/Login")
        .unwrap();
    assert_eq!(
        login["http"]["response_headers"],
        serde_json::json!([
            {"name": "grpc-status", "value": "16"},
            {"name": "grpc-message", "value": "bad credentials"}
        ])
    );
    let zeek = run("zeek");
    assert!(zeek.iter().all(|e| e["version"] == "2"));
    // Zeek's http.log has no stream column: trans_depth is the stream's order.
    assert!(zeek.iter().all(|e| e.get("stream_id").is_none()));
}

#[test]
fn metrics_count_connections_and_streams() {
    let dir = common::fresh_dir("h2c-metrics");
    let om = dir.join("metrics.om");
    let o = common::bin()
        .args([
            "-r",
            CAPTURE,
            "--alerts",
            "/dev/null",
            "-q",
            "--openmetrics-out",
        ])
        .arg(&om)
        .current_dir(common::repo(""))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&om).unwrap();
    let last = |series: &str| -> String {
        text.lines()
            .rfind(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_else(|| panic!("no {series}"))
            .to_string()
    };
    for (series, want) in [
        // Three curl connections and httpx's to nginx, grpcio's.
        (
            "apiwatch_http2_connections_total{start=\"prior_knowledge\"}",
            "5",
        ),
        ("apiwatch_http2_connections_total{start=\"upgrade\"}", "1"),
        ("apiwatch_http2_streams_total", "24"),
        ("apiwatch_http2_stream_resets_total", "0"),
        ("apiwatch_http2_problems_total{reason=\"hpack_error\"}", "0"),
        ("apiwatch_http2_connections_undecodable_total", "0"),
    ] {
        assert_eq!(last(series), want, "{series}");
    }
}
