//! No secret leaves the sensor. A generated capture carries a distinct secret in every
//! position we can think of (listed in `SECRETS`); apiwatch replays it with every
//! output on (exchange log, alerts, debug log on stderr, `/metrics` scraped while it
//! lingers, the OpenMetrics file, the state file, the endpoint inventory) and no
//! output may contain any of the values, raw or percent-encoded.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};

use apiwatch::synth::{Conversation, PcapWriter, frame};

/// (where it sits, the secret value). Values used under a credential *name* are
/// plain words (so only the name rule can catch them); values that must be caught by
/// their *look* are tokens.
const SECRETS: &[(&str, &str)] = &[
    ("query key", "kumquat-one"),
    ("query session_id", "kumquat-two"),
    ("query sig", "kumquat-three"),
    ("query code (OAuth)", "kumquat-four"),
    ("query api%5Fkey (encoded name)", "kumquat-five"),
    ("query apiKey (camel case)", "kumquat-six"),
    ("query X-Amz-Signature", "kumquat-seven"),
    ("query client_secret", "kumquat-eight"),
    ("query access-token", "kumquat-nine"),
    ("query pwd", "kumquat-ten"),
    ("query assertion", "kumquat-eleven"),
    ("query jwt", "kumquat-twelve"),
    ("absolute-form userinfo password", "kumquat-thirteen"),
    ("absolute-form userinfo user", "kumquat-fourteen"),
    ("matrix ;jsessionid=", "kumquat-fifteen"),
    ("matrix ;token=", "kumquat-sixteen"),
    ("fragment", "kumquat-seventeen"),
    (
        "JWT as a path segment",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrdW1xdWF0In0.c2VjcmV0LXNpZw",
    ),
    ("token as a path segment", "Kq7ZpR2mXv9LwT4bNc8HdY3sJf6G"),
    (
        "JWT as an unnamed query value",
        "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiMTIzIn0.b3RoZXItc2ln",
    ),
    (
        "token in a path that 404s (scan samples)",
        "Rt5YuI8oP2aS4dF6gH8jK0lZ3xC",
    ),
    ("Authorization: Bearer", "kumquat-bearer"),
    ("Authorization: Basic password", "kumquat-basic"),
    ("Cookie", "kumquat-cookie"),
    ("X-API-Key header", "kumquat-apikey-header"),
    ("Proxy-Authorization", "kumquat-proxy"),
    ("JSON login password", "kumquat-json-pw"),
    ("form login password", "kumquat-form-pw"),
    ("GraphQL variables password", "kumquat-graphql-pw"),
    ("Set-Cookie in a response", "kumquat-set-cookie"),
    ("token in a response body", "kumquat-response-token"),
    ("AWS access key id in a path", "AKIAKUMQUATEXAMPLE12"),
];

fn secret(what: &str) -> &'static str {
    SECRETS.iter().find(|(w, _)| *w == what).unwrap().1
}

fn b64(s: &str) -> String {
    apiwatch::export::eve::base64(s.as_bytes())
}

/// The requests one client sends (request, response).
fn requests(client: u32) -> Vec<(String, String)> {
    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        .to_string();
    let json_body = |body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: sid={}; HttpOnly\r\nContent-Length: {}\r\n\r\n{body}",
            secret("Set-Cookie in a response"),
            body.len()
        )
    };
    let get = |target: &str, extra: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: api.example\r\n{extra}\r\n")
    };
    let q = |name: &str, what: &str| get(&format!("/api/items?page=2&{name}={}", secret(what)), "");
    let mut v = vec![
        (q("key", "query key"), ok.clone()),
        (q("session_id", "query session_id"), ok.clone()),
        (q("sig", "query sig"), ok.clone()),
        (q("code", "query code (OAuth)"), ok.clone()),
        (q("api%5Fkey", "query api%5Fkey (encoded name)"), ok.clone()),
        (q("apiKey", "query apiKey (camel case)"), ok.clone()),
        (q("X-Amz-Signature", "query X-Amz-Signature"), ok.clone()),
        (q("client_secret", "query client_secret"), ok.clone()),
        (q("access-token", "query access-token"), ok.clone()),
        (q("pwd", "query pwd"), ok.clone()),
        (q("assertion", "query assertion"), ok.clone()),
        (q("jwt", "query jwt"), ok.clone()),
        (
            get(
                &format!(
                    "http://{}:{}@api.example/api/items",
                    secret("absolute-form userinfo user"),
                    secret("absolute-form userinfo password")
                ),
                "",
            ),
            ok.clone(),
        ),
        (
            get(
                &format!("/shop/cart;jsessionid={}", secret("matrix ;jsessionid=")),
                "",
            ),
            ok.clone(),
        ),
        (
            get(
                &format!("/shop/list;token={};lang=en/view", secret("matrix ;token=")),
                "",
            ),
            ok.clone(),
        ),
        (
            get(&format!("/cb#access_token={}", secret("fragment")), ""),
            ok.clone(),
        ),
        (
            get(&format!("/verify/{}", secret("JWT as a path segment")), ""),
            ok.clone(),
        ),
        (
            get(
                &format!("/reset/{}/confirm", secret("token as a path segment")),
                "",
            ),
            ok.clone(),
        ),
        (
            get(
                &format!("/next?to={}", secret("JWT as an unnamed query value")),
                "",
            ),
            ok.clone(),
        ),
        (
            get(
                &format!("/keys/{}", secret("AWS access key id in a path")),
                "",
            ),
            ok.clone(),
        ),
        (
            get(
                "/api/me",
                &format!(
                    "Authorization: Bearer {}\r\nCookie: theme=dark; sid={}\r\nX-API-Key: {}\r\nProxy-Authorization: Basic {}\r\n",
                    secret("Authorization: Bearer"),
                    secret("Cookie"),
                    secret("X-API-Key header"),
                    b64(&format!("proxyuser:{}", secret("Proxy-Authorization")))
                ),
            ),
            json_body(&format!(
                "{{\"access_token\":\"{}\"}}",
                secret("token in a response body")
            )),
        ),
    ];
    // Failed logins of every shape (enough for brute force), secrets as passwords.
    for i in 0..12 {
        let body = format!(
            "{{\"username\":\"user{client}\",\"password\":\"{}{i}\"}}",
            secret("JSON login password")
        );
        v.push((
            format!(
                "POST /api/login HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"e\":\"x\"}".into(),
        ));
        let form = format!(
            "username=user{client}&password={}{i}",
            secret("form login password")
        );
        v.push((
            format!(
                "POST /login HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
                form.len()
            ),
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".into(),
        ));
        let gql = format!(
            "{{\"query\":\"mutation($u:String!,$p:String!){{login(username:$u,password:$p){{token}}}}\",\"variables\":{{\"u\":\"user{client}\",\"p\":\"{}{i}\"}}}}",
            secret("GraphQL variables password")
        );
        v.push((
            format!(
                "POST /graphql HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{gql}",
                gql.len()
            ),
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".into(),
        ));
        let basic = b64(&format!(
            "user{client}:{}{i}",
            secret("Authorization: Basic password")
        ));
        v.push((
            get("/api/private", &format!("Authorization: Basic {basic}\r\n")),
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n"
                .into(),
        ));
    }
    // A scan whose 404 paths carry a token (alert samples, scan evidence).
    for i in 0..120 {
        v.push((
            get(
                &format!(
                    "/probe{i}/{}/x",
                    secret("token in a path that 404s (scan samples)")
                ),
                "",
            ),
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
        ));
    }
    v
}

fn capture() -> Vec<u8> {
    let mut w = PcapWriter::new(1);
    let server = (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80)), 80);
    let mut ts = 1_790_000_000_000_000_000u64;
    // Several clients, so routes are shared and learned; one connection per request.
    for client in 1..=4u32 {
        for (n, (req, resp)) in requests(client).iter().enumerate() {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 9, 0, client as u8));
            let mut c = Conversation::new((ip, 20_000 + n as u16), server, n as u32 * 100_000, 9);
            c.handshake()
                .send(true, req.as_bytes(), 1460)
                .send(false, resp.as_bytes(), 1460)
                .close();
            for s in &c.segs {
                ts += 1_000_000;
                w.packet(ts, &frame(s));
            }
        }
    }
    w.bytes
}

fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn no_secret_reaches_any_output() {
    let dir = common::fresh_dir("apiwatch-secrets");
    let cap = dir.join("secrets.pcap");
    std::fs::write(&cap, capture()).unwrap();
    let state = dir.join("state.json");
    let cfg = dir.join("s.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detect]\nstate_file = \"{}\"\nlearning_period = \"1s\"\n",
            state.display()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = common::bin()
        .env("APIWATCH_LOG", "debug")
        .arg("-r")
        .arg(&cap)
        .arg("-c")
        .arg(&cfg)
        .arg("--exchanges")
        .arg(dir.join("ex.jsonl"))
        .arg("--alerts")
        .arg(dir.join("alerts.jsonl"))
        .arg("--openmetrics-out")
        .arg(dir.join("metrics.om"))
        .arg("--endpoints")
        .arg(dir.join("endpoints.json"))
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .args(["--web.linger", "5s"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Scrape once the replay is over (the summary is out) and it lingers.
    let mut metrics = None;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if std::fs::metadata(dir.join("metrics.om")).is_ok_and(|m| m.len() > 0)
            && let Some(m) = scrape(port).filter(|m| m.contains("apiwatch_http_exchanges_total"))
        {
            metrics = Some(m);
            break;
        }
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut outputs = vec![
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        ),
        ("/metrics".to_string(), metrics.expect("scraped /metrics")),
    ];
    for f in [
        "ex.jsonl",
        "alerts.jsonl",
        "metrics.om",
        "endpoints.json",
        "state.json",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        assert!(!text.is_empty(), "{f} is empty");
        outputs.push((f.to_string(), text));
    }
    // The other exchange-log forms (Suricata EVE http records, Zeek http.log).
    for format in ["eve", "zeek"] {
        let path = dir.join(format!("ex-{format}.jsonl"));
        let o = common::bin()
            .arg("-r")
            .arg(&cap)
            .args(["--learning-period", "1s", "--alerts", "/dev/null", "-q"])
            .args(["--exchanges-format", format])
            .arg("--exchanges")
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4 * requests(1).len(), "{format}");
        outputs.push((format!("ex-{format}.jsonl"), text));
    }
    // The test means something: the outputs saw these requests.
    let alerts = &outputs.iter().find(|(n, _)| n == "alerts.jsonl").unwrap().1;
    for kind in ["brute_force", "endpoint_scan"] {
        assert!(alerts.contains(kind), "no {kind} alert: {alerts}");
    }
    let ex = &outputs.iter().find(|(n, _)| n == "ex.jsonl").unwrap().1;
    assert_eq!(ex.lines().count(), 4 * requests(1).len());
    let mut leaks = Vec::new();
    for (what, value) in SECRETS {
        let encoded = value.replace('-', "%2D");
        for (name, text) in &outputs {
            if text.contains(value) || text.contains(&encoded) {
                leaks.push(format!("{what} ({value}) in {name}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    eprintln!(
        "{} secrets in {} positions: none in {} outputs",
        SECRETS.len(),
        SECRETS.len(),
        outputs.len()
    );
}
