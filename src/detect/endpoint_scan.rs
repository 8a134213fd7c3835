//! `endpoint_scan`: one client requesting many distinct paths that the API answers
//! with 404 (or 403/405, or that no other client ever used): directory brute forcing
//! and wordlist scanners (ffuf, gobuster, dirb).

use serde_json::json;

use super::window::{CountingWindow, Window};
use super::{Finding, Kind, Novelty, Obs};
use crate::time::Nanos;

const SEC: Nanos = 1_000_000_000;

/// Thresholds (config `[detect.endpoint_scan]`).
#[derive(Debug, Clone)]
pub struct Config {
    pub window: Nanos,
    /// Distinct missed paths in the window. A broken link or a stale bookmark gives
    /// a handful; the smallest common wordlists have thousands of entries.
    pub min_distinct_misses: usize,
    /// Misses must be at least this share of the client's requests in the window
    /// (a busy crawler with a few dead links is not scanning).
    pub min_miss_ratio: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: 60 * SEC,
            min_distinct_misses: 20,
            min_miss_ratio: 0.5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct State {
    requests: Window<()>,
    /// Paths of missed requests.
    misses: CountingWindow,
}

impl State {
    pub fn new(cfg: &Config) -> Self {
        State {
            requests: Window::new(cfg.window, 4096),
            misses: CountingWindow::new(cfg.window, 4096),
        }
    }
}

/// `known`: the request's endpoint has answered 2xx to someone (a route that exists).
impl State {
    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.requests.heap_bytes() + self.misses.heap_bytes()
    }
}

pub fn observe(
    cfg: &Config,
    st: &mut State,
    obs: &Obs<'_>,
    path_hash: u64,
    known: bool,
) -> Option<Finding> {
    // A forbidden object is enumeration's business (a BOLA walk); a missing one may
    // be a wordlist's guess, and counts here too.
    let object = matches!(obs.status, Some(401 | 403))
        && obs
            .template
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .is_some_and(|s| s.starts_with('{'))
        && obs.template.matches('/').count() >= 2;
    // Servers that authenticate before they route answer every probe of a client
    // without credentials alike (401 or 403, existing path or not): such a refusal
    // of a path that never answered anyone is a miss. The spread of paths tells it
    // from a brute force (one login route), its novelty from a burst.
    let h = &obs.ex.request_headers;
    let anonymous = h.authorization.is_none() && h.api_key.is_none() && !h.has_cookie;
    let refused_unknown = matches!(obs.status, Some(401 | 403)) && anonymous && !known;
    let missed = (matches!(obs.status, Some(404 | 403 | 405 | 410)) && !object) || refused_unknown;
    st.requests.push(obs.ts, ());
    if !missed {
        st.misses.expire(obs.ts);
        return None;
    }
    st.misses.push(obs.ts, path_hash);
    let misses = st.misses.distinct();
    if misses < cfg.min_distinct_misses {
        return None;
    }
    let total = st.requests.len();
    let missed_requests = st.misses.len().min(total);
    let ratio = missed_requests as f64 / total as f64;
    if ratio < cfg.min_miss_ratio {
        return None;
    }
    let secs = cfg.window / SEC;
    Some(Finding {
        kind: Kind::EndpointScan,
        endpoint: None,
        summary: format!(
            "{misses} distinct unknown paths ({missed_requests} of {total} requests missed) in {secs}s"
        ),
        evidence: json!({
            "window_s": secs,
            "distinct_missed_paths": misses,
            "missed_requests": missed_requests,
            "requests": total,
            "miss_ratio": (ratio * 1000.0).round() / 1000.0,
            "threshold_distinct": cfg.min_distinct_misses,
            "threshold_ratio": cfg.min_miss_ratio,
        }),
        severity: 2,
        clients: None,
        novelty: Novelty::Repeat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::obs_at;

    #[test]
    fn wordlist_scan_fires_and_dead_links_do_not() {
        let cfg = Config::default();
        let mut st = State::new(&cfg);
        let mut found = None;
        for (i, word) in [
            "admin", "backup", "config", ".git", "old", "test", "api2", "wp-admin", "db", "tmp",
        ]
        .iter()
        .cycle()
        .enumerate()
        .take(40)
        {
            let path = format!("/{word}{i}");
            let o = obs_at(SEC + i as u64 * SEC / 10, "GET", &path, Some(404));
            found = found.or(observe(&cfg, &mut st, &o.obs(), i as u64, false));
        }
        assert_eq!(found.map(|f| f.kind), Some(Kind::EndpointScan));

        let mut st = State::new(&cfg);
        for i in 0..200u64 {
            let status = if i % 8 == 0 { 404 } else { 200 };
            let o = obs_at(SEC + i * SEC / 4, "GET", "/x", Some(status));
            assert!(observe(&cfg, &mut st, &o.obs(), i, true).is_none());
        }
    }

    #[test]
    fn a_wordlist_refused_401_before_routing_is_a_scan_unless_it_carries_credentials() {
        let cfg = Config::default();
        let words = [
            "admin", "backup", "config", ".env", "debug", "internal", "old",
        ];
        let scan = |auth: Option<&str>, known: bool| {
            let mut st = State::new(&cfg);
            let mut found = None;
            for i in 0..40u64 {
                let path = format!("/{}{i}", words[i as usize % words.len()]);
                let mut o = obs_at(SEC + i * SEC / 10, "GET", &path, Some(401));
                o.ex.request_headers.authorization = auth.map(Into::into);
                found = found.or(observe(&cfg, &mut st, &o.obs(), i, known));
            }
            found.map(|f| f.kind)
        };
        assert_eq!(scan(None, false), Some(Kind::EndpointScan));
        // A client with credentials refused everywhere is a login matter; routes
        // that exist are the enumeration detector's.
        assert_eq!(scan(Some("Basic YTpi"), false), None);
        assert_eq!(scan(None, true), None);
    }
}
