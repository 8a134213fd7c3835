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

use super::window::{CountingWindow, Window, intervals_ended};
use super::{Finding, Kind, Novelty, Obs};
use crate::credentials;
use crate::jsonscan::{self, Item};
use crate::routes::contains_any;
use crate::time::Nanos;

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
            global_window: 60 * SEC,
            global_min_failures: 10,
            global_min_users: 8,
            global_min_clients: 4,
            global_factor: 3.0,
        }
    }
}

/// One login attempt as seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub user: Option<u64>,
    pub failed: bool,
}

/// Path words that make a POST with credentials a login attempt.
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
/// Path words of routes that carry credentials but are not logins (accounts being
/// made, passwords being changed).
const NOT_LOGIN_WORDS: &[&str] = &[
    "register", "signup", "sign-up", "sign_up", "join", "password", "reset", "forgot", "change",
];
/// JSON keys of a response that hand out a credential: a successful login.
const TOKEN_KEYS: &[&str] = &[
    "token",
    "access_token",
    "accesstoken",
    "auth_token",
    "authtoken",
    "jwt",
    "id_token",
    "refresh_token",
    "session",
    "sessionid",
    "session_id",
    "api_key",
];

/// How success looks on each login route, learned from the population's logins.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    by_endpoint: HashMap<u64, Learned, super::Prehashed>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Learned {
    /// Successes that were a redirect issuing a session (a form login: failure is
    /// the form again, answered 200).
    redirect_successes: u32,
    /// Requests with a password answered with a session or token: a login route,
    /// whatever its path says.
    issued: u32,
}

/// Login routes remembered (a handful per API; bounded against garbage).
const ROUTES_CAP: usize = 4096;

/// The login attempt in this exchange, if it is one, and the account name it tried
/// (for route inference to recognise names in paths; never written). `hash` keys
/// usernames; `routes` learns per route how success looks.
pub fn attempt(
    cfg: &Config,
    routes: &mut Routes,
    obs: &Obs<'_>,
    endpoint_hash: u64,
    hash: impl Fn(&[u8]) -> u64,
) -> Option<(Attempt, Option<Vec<u8>>)> {
    let ex = obs.ex;
    let status = obs.status?;
    let basic_user = ex
        .request_headers
        .authorization
        .as_deref()
        .and_then(basic_username);
    // What the whole body said, read as it streamed by; exchanges made without the
    // HTTP reader (tests, replays of records) are read from their prefix.
    let prefix_creds;
    let creds = match &ex.body_credentials {
        Some(c) => c,
        // Most requests (every GET): no body, nothing to read.
        None if ex.request_body_prefix.is_empty() => &NO_CREDENTIALS,
        None => {
            prefix_creds = credentials::scan(
                &ex.request_body_prefix,
                ex.request_headers.content_type.as_deref(),
            );
            &prefix_creds
        }
    };
    let configured = cfg.endpoints.iter().any(|e| *e == obs.endpoint.as_str());
    let headers = ex.response_headers.as_ref();
    // Read lazily: most exchanges are not logins, and this scans the answer.
    let issued = || {
        headers.is_some_and(|h| h.sets_session_cookie)
            || (matches!(status, 200..=299) && hands_out_token(&ex.response_body_prefix))
    };
    let learned = routes
        .by_endpoint
        .get(&endpoint_hash)
        .copied()
        .unwrap_or_default();
    // GraphQL: a root field called with a password argument is an attempt,
    // whatever the route is called.
    let graphql_login = obs.graphql.is_some_and(|g| !g.attempts.is_empty());
    let body_login = graphql_login
        || obs.method == "POST" && (creds.password || creds.user.is_some()) && {
            let lower = obs.template.to_ascii_lowercase();
            !contains_any(lower.as_bytes(), NOT_LOGIN_WORDS)
                && (learned.issued > 0 || contains_any(lower.as_bytes(), AUTH_WORDS))
        };
    if !(configured || basic_user.is_some() || body_login) {
        // A route without a login word that hands out sessions for passwords is one.
        if obs.method == "POST" && creds.password && matches!(status, 200..=399) && issued() {
            learn(routes, endpoint_hash, |l| l.issued += 1);
        }
        return None;
    }
    let issued = issued();
    let failed = match status {
        401 => true,
        // Basic credentials that worked, on something the account may not touch.
        403 if basic_user.is_some() && !creds.password => false,
        403 => true,
        400 | 422 => creds.password || basic_user.is_some(),
        // A session or a token in the answer is a success whatever the text.
        200..=299 if issued => false,
        200..=299 => {
            has_marker(&ex.response_body_prefix, &cfg.failure_markers)
                || (graphql_login && graphql_errors(&ex.response_body_prefix))
                || (creds.password && learned.redirect_successes > 0)
        }
        // Form logins redirect back to the login page (often `?error`) on failure.
        300..=399 => headers
            .and_then(|h| h.location.as_deref())
            .is_some_and(|l| {
                let l = l.to_ascii_lowercase();
                contains_any(l.as_bytes(), &["error", "fail", "login", "signin"])
            }),
        _ => return None,
    };
    if !failed && creds.password && issued {
        learn(routes, endpoint_hash, |l| {
            l.issued += 1;
            if matches!(status, 300..=399) {
                l.redirect_successes += 1;
            }
        });
    }
    let name = basic_user
        .or_else(|| creds.user.as_deref().map(<[u8]>::to_vec))
        .or_else(|| {
            obs.graphql
                .and_then(|g| g.attempts.first().cloned().flatten())
        });
    let user = name.as_deref().map(&hash);
    Some((Attempt { user, failed }, name))
}

/// A GraphQL answer with an `errors` member: the attempts it answers failed (unless
/// it handed out a session or token, checked first).
fn graphql_errors(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"\"errors\"").is_some()
}

/// Keyed hashes of the usernames of attempts (unknown ones as [`NO_USER`]).
pub fn user_keys(users: &[Option<Vec<u8>>], hash: impl Fn(&[u8]) -> u64) -> Box<[u64]> {
    users
        .iter()
        .map(|u| u.as_deref().map_or(NO_USER, &hash))
        .collect()
}

fn learn(routes: &mut Routes, endpoint: u64, f: impl FnOnce(&mut Learned)) {
    if routes.by_endpoint.len() >= ROUTES_CAP && !routes.by_endpoint.contains_key(&endpoint) {
        return;
    }
    let l = routes.by_endpoint.entry(endpoint).or_default();
    f(l);
}

/// A JSON answer carrying a token under one of [`TOKEN_KEYS`], at any depth.
fn hands_out_token(body: &[u8]) -> bool {
    if !jsonscan::looks_like_json(body) {
        return false;
    }
    let mut found = false;
    jsonscan::scan(body, |_, key, item| {
        if let (Some(k), Item::Str(v)) = (key, item) {
            let k = k.to_ascii_lowercase();
            found = v.len() >= 8 && TOKEN_KEYS.iter().any(|t| k == t.as_bytes());
        }
        !found
    });
    found
}

fn has_marker(body: &[u8], markers: &[String]) -> bool {
    let lower = body.to_ascii_lowercase();
    markers.iter().any(|m| {
        !m.is_empty() && memchr::memmem::find(&lower, m.to_ascii_lowercase().as_bytes()).is_some()
    })
}

pub(crate) use crate::credentials::{base64_decode, basic_username};

/// What a request without a body says about credentials.
static NO_CREDENTIALS: credentials::Credentials = credentials::Credentials {
    user: None,
    password: false,
    graphql: false,
};

/// Key for a failure whose username could not be read.
const NO_USER: u64 = u64::MAX;

/// Per-client login history.
#[derive(Debug, Clone)]
pub struct State {
    /// Failed attempts by username hash.
    failures: CountingWindow,
    successes: Window<()>,
    /// Failed attempts whose request head was padded past the parser's limit:
    /// padding to slip past a sensor is evidence in itself.
    padded: Window<()>,
}

impl State {
    pub fn new(cfg: &Config) -> Self {
        State {
            failures: CountingWindow::new(cfg.window, 4096),
            successes: Window::new(cfg.window, 4096),
            padded: Window::new(cfg.window, 4096),
        }
    }
}

impl State {
    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.failures.heap_bytes() + self.successes.heap_bytes() + self.padded.heap_bytes()
    }
}

fn distinct_users(w: &CountingWindow) -> usize {
    w.distinct() - usize::from(w.contains(NO_USER))
}

/// Records a client's attempt; returns a finding for stuffing or brute force.
/// `reportable(kind)`: whether a finding of that kind would be reported now (the
/// engine says no while an episode is in cooldown); without it the finding is
/// returned bare, cheaply (an attack in progress costs no formatting per attempt).
/// `extra`: the usernames (keyed) of more attempts in the same request (GraphQL
/// aliases or a batch), answered as the first was.
pub fn observe(
    cfg: &Config,
    st: &mut State,
    obs: &Obs<'_>,
    a: Attempt,
    extra: &[u64],
    reportable: impl Fn(Kind) -> bool,
) -> Option<Finding> {
    if a.failed {
        st.failures.push(obs.ts, a.user.unwrap_or(NO_USER));
        for &u in extra {
            st.failures.push(obs.ts, u);
        }
        if obs.ex.request_headers.oversized {
            st.padded.push(obs.ts, ());
        }
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
    st.padded.expire(obs.ts);
    let padded = st.padded.len();
    let users = distinct_users(&st.failures);
    let successes = st.successes.len();
    let secs = cfg.window / SEC;
    let kind =
        if users >= cfg.stuffing_min_users && users as f64 >= cfg.stuffing_user_ratio * n as f64 {
            Kind::CredentialStuffing
        } else if users <= cfg.brute_max_users {
            Kind::BruteForce
        } else {
            return None;
        };
    if !reportable(kind) {
        return Some(Finding::bare(kind, 1));
    }
    let summary = match kind {
        Kind::CredentialStuffing => {
            format!("{n} failed logins for {users} distinct usernames in {secs}s")
        }
        _ => format!("{n} failed logins for {users} username(s) in {secs}s"),
    };
    let summary = if padded > 0 {
        format!("{summary}, {padded} padded past the sensor's head limit")
    } else {
        summary
    };
    Some(Finding {
        kind,
        endpoint: Some(obs.endpoint.to_string()),
        summary,
        evidence: json!({
            "window_s": secs,
            "failures": n,
            "successes": successes,
            "oversized_heads": padded,
            "distinct_usernames": users,
            "threshold_failures": cfg.min_failures,
            "threshold_distinct_usernames": if kind == Kind::CredentialStuffing { cfg.stuffing_min_users } else { cfg.brute_max_users },
        }),
        severity: 1,
        clients: None,
        novelty: Novelty::Repeat,
    })
}

/// Failed logins across all clients, for distributed stuffing.
#[derive(Debug, Clone)]
pub struct Global {
    /// (time, client, username hash) of each failed attempt in the global window
    /// that no success from the same client has excused yet.
    failures: std::collections::VecDeque<(Nanos, u64, u64)>,
    /// Unexcused failures per global window, learned while nothing fires.
    pub(crate) rate: super::window::Ewma,
    interval_start: Nanos,
    interval_failures: u64,
    last_check: Nanos,
}

/// Failures kept in the global window (a flood beyond it is the per-client
/// detectors' business, and the oldest go first).
const GLOBAL_CAP: usize = 65_536;

impl Global {
    pub fn new(_cfg: &Config) -> Self {
        Global {
            failures: Default::default(),
            rate: Default::default(),
            interval_start: 0,
            interval_failures: 0,
            last_check: 0,
        }
    }
}

/// Records an attempt from `client` (an opaque id); returns a global finding.
///
/// A failure is excused when the same client logs in successfully within the
/// window (people mistype, then get it right; an office behind one address does it
/// all day): what is left are failures nobody followed up, the trace of a campaign
/// spread thin. Only clients below the per-client threshold count: a loud client is
/// the per-client detectors' business, and letting it in would turn one hydra run
/// into a "global" alert. The check runs at most once per second of packet time.
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
    let horizon = obs.ts.saturating_sub(cfg.global_window);
    while g.failures.front().is_some_and(|f| f.0 < horizon) {
        g.failures.pop_front();
    }
    let firing = g.failures.len() >= cfg.global_min_failures;
    let ended = intervals_ended(g.interval_start, cfg.global_window, obs.ts);
    if ended > 0 {
        // The interval counted closes with its failures; up to ten idle ones after
        // it count as zero, a longer silence restarts the count at this exchange.
        if !firing {
            g.rate.update(g.interval_failures as f64, 0.2);
        }
        g.interval_failures = 0;
        if ended > 10 {
            g.interval_start = obs.ts;
        } else {
            for _ in 1..ended {
                if !firing {
                    g.rate.update(0.0, 0.2);
                }
            }
            g.interval_start += ended * cfg.global_window;
        }
    }
    if !a.failed {
        let before = g.failures.len();
        g.failures.retain(|f| f.1 != client);
        g.interval_failures = g
            .interval_failures
            .saturating_sub((before - g.failures.len()) as u64);
        return None;
    }
    g.interval_failures += 1;
    if g.failures.len() >= GLOBAL_CAP {
        g.failures.pop_front();
    }
    g.failures
        .push_back((obs.ts, client, a.user.unwrap_or(NO_USER)));
    let learned = g.rate.mean * cfg.global_factor;
    if g.failures.len() < cfg.global_min_failures || obs.ts < g.last_check.saturating_add(SEC) {
        return None;
    }
    g.last_check = obs.ts;
    let mut per_client: HashMap<u64, u32> = HashMap::new();
    for f in &g.failures {
        *per_client.entry(f.1).or_default() += 1;
    }
    let quiet = |c: &u64| {
        per_client
            .get(c)
            .is_some_and(|n| (*n as usize) < cfg.min_failures)
    };
    let mut users: Vec<u64> = Vec::new();
    let mut n = 0usize;
    for (_, c, u) in &g.failures {
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
        return one_account(cfg, g, obs, &quiet, name);
    }
    // Ties broken by name, not by the (per-run keyed) hash: same capture, same alert.
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| name(a.0).cmp(&name(b.0))));
    let biggest = top[0].1;
    let top_names: Vec<String> = top.iter().take(10).filter_map(|(c, _)| name(*c)).collect();
    let secs = cfg.global_window / SEC;
    Some(Finding {
        kind: Kind::CredentialStuffing,
        endpoint: Some(obs.endpoint.to_string()),
        summary: format!(
            "{n} failed logins for {users} distinct usernames from {clients} clients in {secs}s, none followed by a success, none above {} (largest: {biggest})",
            cfg.min_failures - 1
        ),
        evidence: json!({
            "window_s": secs,
            "failures": n,
            "distinct_usernames": users,
            "clients": clients,
            "largest_client_failures": biggest,
            "baseline_failures_per_window": (g.rate.mean * 100.0).round() / 100.0,
            "threshold_failures": (cfg.global_min_failures as f64).max(learned).round() as u64,
            "threshold_distinct_usernames": cfg.global_min_users,
            "threshold_clients": cfg.global_min_clients,
        }),
        severity: 1,
        clients: Some(top_names),
        novelty: Novelty::Repeat,
    })
}

/// Distributed brute force: one account failing from many clients, each below the
/// per-client threshold (an IPv6 /64 whose addresses rotate, a botnet, a proxy
/// pool). At least `min_failures` unexcused failures for one username in the global
/// window from at least `global_min_clients` clients.
fn one_account(
    cfg: &Config,
    g: &Global,
    obs: &Obs<'_>,
    quiet: &dyn Fn(&u64) -> bool,
    name: &dyn Fn(u64) -> Option<String>,
) -> Option<Finding> {
    let mut pairs: Vec<(u64, u64)> = g
        .failures
        .iter()
        .filter(|(_, c, u)| *u != NO_USER && quiet(c))
        .map(|(_, c, u)| (*u, *c))
        .collect();
    if pairs.len() < cfg.min_failures {
        return None;
    }
    pairs.sort_unstable();
    // The account with the most failures that passes both thresholds.
    let mut best: Option<(usize, &[(u64, u64)])> = None;
    for run in pairs.chunk_by(|a, b| a.0 == b.0) {
        let clients = 1 + run.windows(2).filter(|w| w[0].1 != w[1].1).count();
        if run.len() >= cfg.min_failures
            && clients >= cfg.global_min_clients
            && best.is_none_or(|(n, _)| run.len() > n)
        {
            best = Some((run.len(), run));
        }
    }
    let (n, run) = best?;
    let mut top: Vec<(u64, u32)> = Vec::new();
    for c in run.chunk_by(|a, b| a.1 == b.1) {
        top.push((c[0].1, c.len() as u32));
    }
    let clients = top.len();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| name(a.0).cmp(&name(b.0))));
    let biggest = top[0].1;
    let top_names: Vec<String> = top.iter().take(10).filter_map(|(c, _)| name(*c)).collect();
    let secs = cfg.global_window / SEC;
    Some(Finding {
        kind: Kind::BruteForce,
        endpoint: Some(obs.endpoint.to_string()),
        summary: format!(
            "{n} failed logins for one username from {clients} clients in {secs}s, none followed by a success, none above {} (largest: {biggest})",
            cfg.min_failures - 1
        ),
        evidence: json!({
            "window_s": secs,
            "failures": n,
            "distinct_usernames": 1,
            "clients": clients,
            "largest_client_failures": biggest,
            "threshold_failures": cfg.min_failures,
            "threshold_clients": cfg.global_min_clients,
        }),
        severity: 1,
        clients: Some(top_names),
        novelty: Novelty::Repeat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::obs_at;

    use crate::detect::tests::test_hash as h;

    /// An attempt judged on a route that has learned nothing yet.
    fn att(cfg: &Config, obs: &Obs<'_>, h: impl Fn(&[u8]) -> u64) -> Option<Attempt> {
        attempt(cfg, &mut Routes::default(), obs, 1, h).map(|(a, _)| a)
    }

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
            att(&cfg, &o.obs(), h),
            Some(Attempt {
                user: Some(h(b"alice")),
                failed: true
            })
        );
        let mut form = obs_at(SEC, "POST", "/signin", Some(200));
        form.ex.request_body_prefix = b"user=bob&pwd=secret".to_vec();
        assert_eq!(
            att(&cfg, &form.obs(), h),
            Some(Attempt {
                user: Some(h(b"bob")),
                failed: false
            })
        );
        let mut basic = obs_at(SEC, "GET", "/api/things", Some(401));
        basic.ex.request_headers.authorization = Some("Basic Y2Fyb2w6aHVudGVyMg==".into()); // carol:hunter2
        assert_eq!(
            att(&cfg, &basic.obs(), h),
            Some(Attempt {
                user: Some(h(b"carol")),
                failed: true
            })
        );
        // Not logins: a GET of a login page, a POST elsewhere, no response.
        assert_eq!(
            att(&cfg, &obs_at(SEC, "GET", "/login", Some(200)).obs(), h),
            None
        );
        assert_eq!(
            att(
                &cfg,
                &obs_at(SEC, "POST", "/api/orders", Some(401)).obs(),
                h
            ),
            None
        );
        assert_eq!(att(&cfg, &login(SEC, "x", 401).no_status().obs(), h), None);
    }

    #[test]
    fn outcome_from_status_body_markers_cookies_and_redirects() {
        let cfg = Config::default();
        let with = |status: u16, body: &str, cookie: bool, location: Option<&str>| {
            let mut o = login(SEC, "dora", status);
            o.ex.response_body_prefix = body.as_bytes().to_vec();
            o.ex.response_headers = Some(crate::http::Headers {
                has_set_cookie: cookie,
                sets_session_cookie: cookie,
                location: location.map(Into::into),
                ..Default::default()
            });
            att(&cfg, &o.obs(), h_).map(|a| a.failed)
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
            let a = att(&cfg, &o.obs(), h).unwrap();
            found = found.or(observe(&cfg, &mut st, &o.obs(), a, &[], |_| true));
        }
        assert_eq!(found.map(|f| f.kind), Some(Kind::CredentialStuffing));

        // One username, many passwords: brute force.
        let mut st = State::new(&cfg);
        let mut found = None;
        for i in 0..20u64 {
            let o = login(SEC + i * SEC / 2, "admin", 401);
            let a = att(&cfg, &o.obs(), h).unwrap();
            found = found.or(observe(&cfg, &mut st, &o.obs(), a, &[], |_| true));
        }
        assert_eq!(found.map(|f| f.kind), Some(Kind::BruteForce));

        // A NAT'ed office: 50 people log in, a few mistype once.
        let mut st = State::new(&cfg);
        for i in 0..50u64 {
            let status = if i % 10 == 0 { 401 } else { 200 };
            let o = login(SEC + i * SEC, &format!("employee{i}"), status);
            let a = att(&cfg, &o.obs(), h).unwrap();
            assert!(observe(&cfg, &mut st, &o.obs(), a, &[], |_| true).is_none());
        }
    }

    #[test]
    fn one_account_failing_from_many_clients_is_a_global_brute_force() {
        let cfg = Config::default();
        let name = |c: u64| Some(format!("ip:2001:db8::{c:x}"));
        // 20 addresses (one IPv6 /64 rotating), one attempt each, one account.
        let mut g = Global::new(&cfg);
        let mut fired = None;
        for i in 0..20u64 {
            let o = login(SEC + i * SEC, "alice", 401);
            let a = att(&cfg, &o.obs(), h).unwrap();
            fired = fired.or(observe_global(&cfg, &mut g, &o.obs(), i, a, &name));
        }
        let f = fired.expect("distributed brute force");
        assert_eq!(f.kind, Kind::BruteForce);
        assert_eq!(f.evidence["distinct_usernames"], 1);
        assert!(f.evidence["clients"].as_u64() >= Some(4));
        // People who mistype their own password once each, and a shared account
        // that three colleagues mistype: nothing.
        let mut g = Global::new(&cfg);
        for i in 0..40u64 {
            let user = if i % 4 == 0 {
                "team".to_string()
            } else {
                format!("p{i}")
            };
            let o = login(SEC + i * SEC, &user, 401);
            let a = att(&cfg, &o.obs(), h).unwrap();
            assert!(observe_global(&cfg, &mut g, &o.obs(), i % 3, a, &name).is_none());
            let ok = login(SEC + i * SEC + 1, &user, 200);
            let a = att(&cfg, &ok.obs(), h).unwrap();
            assert!(observe_global(&cfg, &mut g, &ok.obs(), i % 3, a, &name).is_none());
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
            let a = att(&cfg, &o.obs(), h).unwrap();
            assert!(observe_global(&cfg, &mut g, &o.obs(), 99, a, &name).is_none());
        }
        // 12 clients, 4 attempts each per minute, all distinct usernames.
        let start = 400 * SEC;
        let mut fired = None;
        for i in 0..96u64 {
            let o = login(start + i * SEC * 60 / 48, &format!("victim{i}"), 401);
            let a = att(&cfg, &o.obs(), h).unwrap();
            if let Some(f) = observe_global(&cfg, &mut g, &o.obs(), i % 12, a, &name) {
                fired.get_or_insert((i, f));
            }
        }
        // A loud client (hydra) alone never makes a global alert.
        let mut g2 = Global::new(&cfg);
        for i in 0..200u64 {
            let o = login(start + i * SEC / 4, &format!("loud{i}"), 401);
            let a = att(&cfg, &o.obs(), h).unwrap();
            assert!(observe_global(&cfg, &mut g2, &o.obs(), 1, a, &name).is_none());
        }
        let (at, f) = fired.expect("distributed stuffing detected");
        assert!(at < 60, "fired after {at} attempts");
        assert_eq!(f.clients.as_ref().map(Vec::len), Some(10));
    }

    #[test]
    fn usernames_from_nested_json_graphql_and_decoys() {
        let creds = |b: &str| {
            let c = credentials::scan(b.as_bytes(), None);
            (c.user.map(|u| u.to_vec()), c.password)
        };
        assert_eq!(
            creds(r#"{"user":{"email":"a@b.c","password":"x"}}"#),
            (Some(b"a@b.c".to_vec()), true)
        );
        assert_eq!(
            creds(r#"{"a":"username","username":"v1","password":"p"}"#).0,
            Some(b"v1".to_vec())
        );
        assert_eq!(
            creds(r#"{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"p"}"#).0,
            Some(b"alice".to_vec())
        );
        assert_eq!(
            creds(r#"{"query":"mutation L($e:String!,$p:String!){login(email:$e,password:$p){token}}","variables":{"e":"x","email":"eve@x.io","password":"p"}}"#).0,
            Some(b"eve@x.io".to_vec())
        );
        assert_eq!(
            creds(
                r#"{"query":"mutation { login(username: \"mallory\", password: \"p\") { token } }"}"#
            ),
            (Some(b"mallory".to_vec()), true)
        );
        assert_eq!(
            creds("csrfmiddlewaretoken=abc&username=bob&password=x&next=%2F"),
            (Some(b"bob".to_vec()), true)
        );
    }

    #[test]
    fn form_logins_learn_that_the_form_again_is_a_failure() {
        let cfg = Config::default();
        let mut routes = Routes::default();
        let post = |status: u16, session: bool, csrf: bool, location: Option<&str>| {
            let mut o = obs_at(SEC, "POST", "/admin/login/", Some(status));
            o.ex.request_body_prefix = b"csrfmiddlewaretoken=t&username=ann&password=x".to_vec();
            o.ex.response_headers = Some(crate::http::Headers {
                has_set_cookie: session || csrf,
                sets_session_cookie: session,
                content_type: Some("text/html".into()),
                location: location.map(Into::into),
                ..Default::default()
            });
            o
        };
        // Before any success is seen, a 200 form is not known to be a failure.
        let o = post(200, false, true, None);
        assert!(!attempt(&cfg, &mut routes, &o.obs(), 7, h).unwrap().0.failed);
        // A success: 302 with a session cookie.
        let o = post(302, true, true, Some("/admin/"));
        assert!(!attempt(&cfg, &mut routes, &o.obs(), 7, h).unwrap().0.failed);
        // Now the form again (with only its CSRF cookie) is a failure.
        let o = post(200, false, true, None);
        assert!(attempt(&cfg, &mut routes, &o.obs(), 7, h).unwrap().0.failed);
    }

    #[test]
    fn basic_credentials_that_work_but_are_forbidden_are_not_failures() {
        let cfg = Config::default();
        let mut o = obs_at(SEC, "DELETE", "/v1/buckets/x", Some(403));
        o.ex.request_headers.authorization = Some("Basic Y2Fyb2w6aHVudGVyMg==".into());
        assert_eq!(att(&cfg, &o.obs(), h).map(|a| a.failed), Some(false));
        o.ex.status = Some(401);
        assert_eq!(att(&cfg, &o.obs(), h).map(|a| a.failed), Some(true));
    }

    #[test]
    fn a_route_without_a_login_word_is_learned_from_the_tokens_it_issues() {
        let cfg = Config::default();
        let mut routes = Routes::default();
        let mut o = obs_at(SEC, "POST", "/api/v2/enter", Some(200));
        o.ex.request_body_prefix = br#"{"email":"a@b.c","password":"x"}"#.to_vec();
        o.ex.response_body_prefix = br#"{"accessToken":"eyJhbGciOi.abc.def"}"#.to_vec();
        assert!(attempt(&cfg, &mut routes, &o.obs(), 3, h).is_none());
        o.ex.status = Some(400);
        o.ex.response_body_prefix = br#"{"errors":["nope"]}"#.to_vec();
        let (a, name) = attempt(&cfg, &mut routes, &o.obs(), 3, h).unwrap();
        assert!(a.failed);
        assert_eq!(name.as_deref(), Some(&b"a@b.c"[..]));
    }

    #[test]
    fn distributed_stuffing_is_caught_within_30_s_and_mistypes_are_excused() {
        let cfg = Config::default();
        let mut g = Global::new(&cfg);
        let name = |c: u64| Some(format!("ip:10.0.0.{c}"));
        let fail = |ts, user: &str| {
            let o = login(ts, user, 401);
            (
                o,
                Attempt {
                    user: Some(h(user.as_bytes())),
                    failed: true,
                },
            )
        };
        // Ten minutes of a population that mistypes now and then, then gets it right.
        for i in 0..300u64 {
            let ts = SEC + i * 2 * SEC;
            let c = 100 + i % 40;
            let (o, a) = fail(ts, &format!("emp{c}"));
            assert!(observe_global(&cfg, &mut g, &o.obs(), c, a, &name).is_none());
            let ok = Attempt {
                user: a.user,
                failed: false,
            };
            assert!(observe_global(&cfg, &mut g, &o.obs(), c, ok, &name).is_none());
        }
        // 12 addresses, one new username each every ~24 s: 0.5 attempts/s in all.
        let start = 700 * SEC;
        let mut fired = None;
        for i in 0..120u64 {
            let ts = start + i * 2 * SEC;
            let (o, a) = fail(ts, &format!("victim{i}"));
            if let Some(f) = observe_global(&cfg, &mut g, &o.obs(), i % 12, a, &name) {
                fired.get_or_insert((ts - start, f));
            }
        }
        let (after, f) = fired.expect("distributed stuffing detected");
        assert!(after <= 30 * SEC, "took {} s", after / SEC);
        assert!(f.clients.as_ref().is_some_and(|c| c.len() >= 4));
    }
}
