//! `credential_stuffing` and `brute_force`: failed logins per client, told apart by
//! how many distinct usernames they try; and distributed stuffing, where many
//! clients each stay under every per-client threshold.
//!
//! A login attempt is a request to a login endpoint (the configured list, or a POST
//! to an auth-like path carrying username/password-like fields, or any request with
//! Basic credentials). Its outcome: 401/403 (and 400/422 with credentials) is a
//! failure; 2xx/3xx a success. Usernames are only kept as keyed hashes, in memory.

use std::collections::HashMap;

use serde_json::json;

use super::window::{CountingWindow, Window};
use super::{Finding, Kind, Obs};
use crate::capture::Nanos;

const SEC: Nanos = 1_000_000_000;

/// Thresholds (config `[detect.login]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Extra login endpoints (templates such as `POST /api/session`).
    pub endpoints: Vec<String>,
    /// Text in the start of a 2xx login response that means it failed (matched
    /// case-insensitively): many applications answer a bad password with 200.
    pub failure_markers: Vec<String>,
    /// Window per client.
    pub window: Nanos,
    /// Failures in the window before anything fires. People mistype a password two
    /// or three times; ten failures in a minute is a tool (OWASP's lockout advice
    /// starts around 3-10).
    pub min_failures: usize,
    /// Stuffing: distinct usernames per failure at least this ratio...
    pub stuffing_user_ratio: f64,
    /// ...and at least this many distinct usernames.
    pub stuffing_min_users: usize,
    /// Brute force: at most this many distinct usernames.
    pub brute_max_users: usize,
    /// Distributed stuffing: window over all clients.
    pub global_window: Nanos,
    /// Failures across all clients in the global window...
    pub global_min_failures: usize,
    /// ...over at least this many distinct usernames...
    pub global_min_users: usize,
    /// ...from at least this many clients...
    pub global_min_clients: usize,
    /// ...and this many times the learned failure rate per global window.
    pub global_factor: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoints: Vec::new(),
            failure_markers: [
                "invalid",
                "incorrect",
                "failed",
                "failure",
                "wrong",
                "denied",
                "unauthorized",
                "bad credentials",
            ]
            .map(String::from)
            .to_vec(),
            window: 60 * SEC,
            min_failures: 10,
            stuffing_user_ratio: 0.5,
            stuffing_min_users: 6,
            brute_max_users: 3,
            global_window: 120 * SEC,
            global_min_failures: 30,
            global_min_users: 20,
            global_min_clients: 5,
            global_factor: 5.0,
        }
    }
}

/// One login attempt as seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub user: Option<u64>,
    pub failed: bool,
}

/// Path words that make a POST a login attempt.
const AUTH_WORDS: &[&str] = &[
    "login",
    "signin",
    "sign-in",
    "sign_in",
    "logon",
    "auth",
    "session",
    "token",
    "authenticate",
];
/// Body fields that name the account.
const USER_FIELDS: &[&str] = &[
    "username",
    "user",
    "email",
    "login",
    "user_name",
    "userName",
    "account",
    "name",
];
/// Body fields that carry a password.
const PASSWORD_FIELDS: &[&str] = &["password", "passwd", "pass", "pwd", "secret"];

/// The login attempt in this exchange, if it is one. `hash` keys usernames.
pub fn attempt(cfg: &Config, obs: &Obs<'_>, hash: impl Fn(&[u8]) -> u64) -> Option<Attempt> {
    let ex = obs.ex;
    let status = ex.status?;
    let basic_user = ex
        .request_headers
        .authorization
        .as_deref()
        .and_then(basic_username);
    let body = &ex.request_body_prefix;
    let body_user = field(body, USER_FIELDS);
    let has_password = field(body, PASSWORD_FIELDS).is_some();
    let configured = cfg.endpoints.contains(&obs.endpoint);
    // The path words last: most exchanges are not POSTs with credentials.
    let auth_path = || {
        let lower = obs.template.to_ascii_lowercase();
        AUTH_WORDS.iter().any(|w| lower.contains(w))
    };
    let is_login = configured
        || basic_user.is_some()
        || (obs.method == "POST" && (has_password || body_user.is_some()) && auth_path());
    if !is_login {
        return None;
    }
    let failed = match status {
        401 | 403 => true,
        400 | 422 => has_password || basic_user.is_some(),
        // A session cookie or a token in the answer is a success whatever the text.
        200..=299
            if ex
                .response_headers
                .as_ref()
                .is_some_and(|h| h.has_set_cookie) =>
        {
            false
        }
        200..=299 => has_marker(&ex.response_body_prefix, &cfg.failure_markers),
        // Form logins redirect back to the login page (often `?error`) on failure.
        300..=399 => ex
            .response_headers
            .as_ref()
            .and_then(|h| h.location.as_deref())
            .is_some_and(|l| {
                let l = l.to_ascii_lowercase();
                ["error", "fail", "login", "signin"]
                    .iter()
                    .any(|w| l.contains(w))
            }),
        _ => return None,
    };
    let user = basic_user.or(body_user).map(|u| hash(&u));
    Some(Attempt { user, failed })
}

fn has_marker(body: &[u8], markers: &[String]) -> bool {
    let lower = body.to_ascii_lowercase();
    markers.iter().any(|m| {
        !m.is_empty() && memchr::memmem::find(&lower, m.to_ascii_lowercase().as_bytes()).is_some()
    })
}

/// `user` from `Authorization: Basic base64(user:password)`.
pub(crate) fn basic_username(auth: &str) -> Option<Vec<u8>> {
    let (scheme, rest) = auth.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(rest.trim())?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[..colon].to_vec())
}

pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The value of the first of `names` in a JSON object or a urlencoded form (the
/// bounded body prefix is enough: credentials come first in every login form seen).
fn field(body: &[u8], names: &[&str]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok().or_else(|| {
        // A prefix cut inside a multi-byte character: use what is valid.
        std::str::from_utf8(&body[..body.len().saturating_sub(3)]).ok()
    })?;
    let t = text.trim_start();
    if t.starts_with('{') {
        for name in names {
            let key = format!("\"{name}\"");
            let Some(i) = t.find(&key) else { continue };
            let rest = t[i + key.len()..]
                .trim_start()
                .strip_prefix(':')?
                .trim_start();
            let value = rest.strip_prefix('"')?;
            let end = value.find('"')?;
            return Some(value.as_bytes()[..end].to_vec());
        }
        None
    } else {
        for pair in t.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if names.iter().any(|n| n.eq_ignore_ascii_case(k)) && !v.is_empty() {
                return Some(v.as_bytes().to_vec());
            }
        }
        None
    }
}

/// Key for a failure whose username could not be read.
const NO_USER: u64 = u64::MAX;

/// Per-client login history.
#[derive(Debug, Clone)]
pub struct State {
    /// Failed attempts by username hash.
    failures: CountingWindow,
    successes: Window<()>,
}

impl State {
    pub fn new(cfg: &Config) -> Self {
        State {
            failures: CountingWindow::new(cfg.window, 4096),
            successes: Window::new(cfg.window, 4096),
        }
    }
}

fn distinct_users(w: &CountingWindow) -> usize {
    w.distinct() - usize::from(w.counts().any(|(k, _)| k == NO_USER))
}

/// Records a client's attempt; returns a finding for stuffing or brute force.
pub fn observe(cfg: &Config, st: &mut State, obs: &Obs<'_>, a: Attempt) -> Option<Finding> {
    if a.failed {
        st.failures.push(obs.ts, a.user.unwrap_or(NO_USER));
    } else {
        st.successes.push(obs.ts, ());
        st.failures.expire(obs.ts);
        return None;
    }
    let n = st.failures.len();
    if n < cfg.min_failures {
        return None;
    }
    st.successes.expire(obs.ts);
    let users = distinct_users(&st.failures);
    let successes = st.successes.len();
    let secs = cfg.window / SEC;
    let (kind, summary) =
        if users >= cfg.stuffing_min_users && users as f64 >= cfg.stuffing_user_ratio * n as f64 {
            (
                Kind::CredentialStuffing,
                format!("{n} failed logins for {users} distinct usernames in {secs}s"),
            )
        } else if users <= cfg.brute_max_users {
            (
                Kind::BruteForce,
                format!("{n} failed logins for {users} username(s) in {secs}s"),
            )
        } else {
            return None;
        };
    Some(Finding {
        kind,
        endpoint: Some(obs.endpoint.clone()),
        summary,
        evidence: json!({
            "window_s": secs,
            "failures": n,
            "successes": successes,
            "distinct_usernames": users,
            "threshold_failures": cfg.min_failures,
            "threshold_distinct_usernames": if kind == Kind::CredentialStuffing { cfg.stuffing_min_users } else { cfg.brute_max_users },
        }),
        severity: 1,
        clients: None,
    })
}

/// Failed logins across all clients, for distributed stuffing.
#[derive(Debug, Clone)]
pub struct Global {
    /// (client, username hash) of each failed attempt in the global window.
    failures: Window<(u64, u64)>,
    /// The same failures counted by client.
    clients: CountingWindow,
    /// Failures per global window, learned while nothing fires.
    pub(crate) rate: super::window::Ewma,
    interval_start: Nanos,
    interval_failures: u64,
    last_check: Nanos,
}

impl Global {
    pub fn new(cfg: &Config) -> Self {
        Global {
            failures: Window::new(cfg.global_window, 65_536),
            clients: CountingWindow::new(cfg.global_window, 65_536),
            rate: Default::default(),
            interval_start: 0,
            interval_failures: 0,
            last_check: 0,
        }
    }
}

/// Records a failed attempt from `client` (an opaque id); returns a global finding.
///
/// Only clients below the per-client threshold count: a loud client is the per-client
/// detectors' business, and letting it in would turn one hydra run into a "global"
/// alert. The check runs at most once per second of packet time.
pub fn observe_global(
    cfg: &Config,
    g: &mut Global,
    obs: &Obs<'_>,
    client: u64,
    a: Attempt,
    name: &dyn Fn(u64) -> Option<String>,
) -> Option<Finding> {
    if g.interval_start == 0 {
        g.interval_start = obs.ts;
    }
    let firing = g.failures.len() >= cfg.global_min_failures;
    while obs.ts >= g.interval_start + cfg.global_window {
        if !firing {
            g.rate.update(g.interval_failures as f64, 0.2);
        }
        g.interval_failures = 0;
        g.interval_start += cfg.global_window;
        if obs.ts >= g.interval_start + 10 * cfg.global_window {
            g.interval_start = obs.ts;
        }
    }
    if !a.failed {
        return None;
    }
    g.interval_failures += 1;
    g.failures.push(obs.ts, (client, a.user.unwrap_or(NO_USER)));
    g.clients.push(obs.ts, client);
    let learned = g.rate.mean * cfg.global_factor;
    if g.failures.len() < cfg.global_min_failures || obs.ts < g.last_check + SEC {
        return None;
    }
    g.last_check = obs.ts;
    let per_client: HashMap<u64, u32> = g.clients.counts().collect();
    let quiet = |c: &u64| {
        per_client
            .get(c)
            .is_some_and(|n| (*n as usize) < cfg.min_failures)
    };
    let mut users: Vec<u64> = Vec::new();
    let mut n = 0usize;
    for (c, u) in g.failures.iter() {
        if quiet(c) {
            n += 1;
            if *u != NO_USER {
                users.push(*u);
            }
        }
    }
    users.sort_unstable();
    users.dedup();
    let users = users.len();
    let mut top: Vec<(u64, u32)> = per_client
        .iter()
        .filter(|(c, _)| quiet(c))
        .map(|(c, n)| (*c, *n))
        .collect();
    let clients = top.len();
    if n < cfg.global_min_failures
        || (n as f64) < learned
        || users < cfg.global_min_users
        || clients < cfg.global_min_clients
    {
        return None;
    }
    // Ties broken by name, not by the (per-run keyed) hash: same capture, same alert.
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| name(a.0).cmp(&name(b.0))));
    let biggest = top[0].1;
    let top_names: Vec<String> = top.iter().take(10).filter_map(|(c, _)| name(*c)).collect();
    let secs = cfg.global_window / SEC;
    Some(Finding {
        kind: Kind::CredentialStuffing,
        endpoint: Some(obs.endpoint.clone()),
        summary: format!(
            "{n} failed logins for {users} distinct usernames from {clients} clients in {secs}s, none above {} (largest: {biggest})",
            cfg.min_failures - 1
        ),
        evidence: json!({
            "window_s": secs,
            "failures": n,
            "distinct_usernames": users,
            "clients": clients,
            "largest_client_failures": biggest,
            "baseline_failures_per_window": (g.rate.mean * 100.0).round() / 100.0,
            "threshold_failures": (cfg.global_min_failures as f64).max(learned).round(),
            "threshold_distinct_usernames": cfg.global_min_users,
            "threshold_clients": cfg.global_min_clients,
        }),
        severity: 1,
        clients: Some(top_names),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::obs_at;

    use crate::detect::tests::test_hash as h;

    fn login(ts: Nanos, user: &str, status: u16) -> crate::detect::tests::Owned {
        let mut o = obs_at(ts, "POST", "/api/v1/login", Some(status));
        o.ex.request_body_prefix =
            format!(r#"{{"username":"{user}","password":"x"}}"#).into_bytes();
        o
    }

    #[test]
    fn login_attempts_are_recognised_from_json_forms_and_basic_auth() {
        let cfg = Config::default();
        let o = login(SEC, "alice", 401);
        assert_eq!(
            attempt(&cfg, &o.obs(), h),
            Some(Attempt {
                user: Some(h(b"alice")),
                failed: true
            })
        );
        let mut form = obs_at(SEC, "POST", "/signin", Some(200));
        form.ex.request_body_prefix = b"user=bob&pwd=secret".to_vec();
        assert_eq!(
            attempt(&cfg, &form.obs(), h),
            Some(Attempt {
                user: Some(h(b"bob")),
                failed: false
            })
        );
        let mut basic = obs_at(SEC, "GET", "/api/things", Some(401));
        basic.ex.request_headers.authorization = Some("Basic Y2Fyb2w6aHVudGVyMg==".into()); // carol:hunter2
        assert_eq!(
            attempt(&cfg, &basic.obs(), h),
            Some(Attempt {
                user: Some(h(b"carol")),
                failed: true
            })
        );
        // Not logins: a GET of a login page, a POST elsewhere, no response.
        assert_eq!(
            attempt(&cfg, &obs_at(SEC, "GET", "/login", Some(200)).obs(), h),
            None
        );
        assert_eq!(
            attempt(
                &cfg,
                &obs_at(SEC, "POST", "/api/orders", Some(401)).obs(),
                h
            ),
            None
        );
        assert_eq!(
            attempt(&cfg, &login(SEC, "x", 401).no_status().obs(), h),
            None
        );
    }

    #[test]
    fn outcome_from_status_body_markers_cookies_and_redirects() {
        let cfg = Config::default();
        let with = |status: u16, body: &str, cookie: bool, location: Option<&str>| {
            let mut o = login(SEC, "dora", status);
            o.ex.response_body_prefix = body.as_bytes().to_vec();
            o.ex.response_headers = Some(crate::http::Headers {
                has_set_cookie: cookie,
                location: location.map(String::from),
                ..Default::default()
            });
            attempt(&cfg, &o.obs(), h_).map(|a| a.failed)
        };
        fn h_(b: &[u8]) -> u64 {
            b.len() as u64
        }
        assert_eq!(
            with(
                200,
                r#"{"error":"Invalid username or password"}"#,
                false,
                None
            ),
            Some(true)
        );
        assert_eq!(with(200, r#"{"token":"abc"}"#, false, None), Some(false));
        assert_eq!(
            with(200, "Login failed", true, None),
            Some(false),
            "a session cookie wins"
        );
        assert_eq!(with(302, "", false, Some("/login?error=1")), Some(true));
        assert_eq!(with(302, "", true, Some("/dashboard")), Some(false));
        assert_eq!(with(500, "", false, None), None);
    }

    #[test]
    fn stuffing_brute_force_and_benign_patterns() {
        let cfg = Config::default();
        // Many usernames, all failing: stuffing.
        let mut st = State::new(&cfg);
        let mut found = None;
        for i in 0..20u64 {
            let o = login(SEC + i * SEC / 2, &format!("user{i}"), 401);
            let a = attempt(&cfg, &o.obs(), h).unwrap();
            found = found.or(observe(&cfg, &mut st, &o.obs(), a));
        }
        assert_eq!(found.map(|f| f.kind), Some(Kind::CredentialStuffing));

        // One username, many passwords: brute force.
        let mut st = State::new(&cfg);
        let mut found = None;
        for i in 0..20u64 {
            let o = login(SEC + i * SEC / 2, "admin", 401);
            let a = attempt(&cfg, &o.obs(), h).unwrap();
            found = found.or(observe(&cfg, &mut st, &o.obs(), a));
        }
        assert_eq!(found.map(|f| f.kind), Some(Kind::BruteForce));

        // A NAT'ed office: 50 people log in, a few mistype once.
        let mut st = State::new(&cfg);
        for i in 0..50u64 {
            let status = if i % 10 == 0 { 401 } else { 200 };
            let o = login(SEC + i * SEC, &format!("employee{i}"), status);
            let a = attempt(&cfg, &o.obs(), h).unwrap();
            assert!(observe(&cfg, &mut st, &o.obs(), a).is_none());
        }
    }

    #[test]
    fn distributed_stuffing_fires_once_enough_clients_fail_on_many_usernames() {
        let cfg = Config::default();
        let mut g = Global::new(&cfg);
        let name = |c: u64| (c < 12).then(|| format!("ip:10.0.0.{c}"));
        // Background: a failure now and then.
        for i in 0..10u64 {
            let o = login(i * 30 * SEC, "someone", 401);
            let a = attempt(&cfg, &o.obs(), h).unwrap();
            assert!(observe_global(&cfg, &mut g, &o.obs(), 99, a, &name).is_none());
        }
        // 12 clients, 4 attempts each per minute, all distinct usernames.
        let start = 400 * SEC;
        let mut fired = None;
        for i in 0..96u64 {
            let o = login(start + i * SEC * 60 / 48, &format!("victim{i}"), 401);
            let a = attempt(&cfg, &o.obs(), h).unwrap();
            if let Some(f) = observe_global(&cfg, &mut g, &o.obs(), i % 12, a, &name) {
                fired.get_or_insert((i, f));
            }
        }
        // A loud client (hydra) alone never makes a global alert.
        let mut g2 = Global::new(&cfg);
        for i in 0..200u64 {
            let o = login(start + i * SEC / 4, &format!("loud{i}"), 401);
            let a = attempt(&cfg, &o.obs(), h).unwrap();
            assert!(observe_global(&cfg, &mut g2, &o.obs(), 1, a, &name).is_none());
        }
        let (at, f) = fired.expect("distributed stuffing detected");
        assert!(at < 60, "fired after {at} attempts");
        assert_eq!(f.clients.as_ref().map(Vec::len), Some(10));
    }
}
