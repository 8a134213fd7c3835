//! `object_enumeration` (OWASP API1:2023, broken object level authorization): one
//! client touching many distinct values of the same templated parameter in a window,
//! such as walking `/users/{id}` or `/orders/{uuid}`, especially in sequence.

use std::collections::HashMap;

use serde_json::json;

use super::window::{CountingWindow, Ewma};
use super::{Finding, Kind, Novelty, Obs};
use crate::http::Exchange;
use crate::jsonscan::Item;
use crate::time::Nanos;

const SEC: Nanos = 1_000_000_000;

/// Thresholds (config `[detect.object_enumeration]`).
#[derive(Debug, Clone)]
pub struct Config {
    pub window: Nanos,
    /// Distinct object ids on one route in the window before an all-found walk fires
    /// (sequential numeric ids: half of it)...
    pub min_distinct: usize,
    /// ...and this many times the client's own usual count per window.
    pub factor: f64,
    /// A walk that misses (404/403/410/401) fires at this many distinct ids...
    pub min_distinct_with_misses: usize,
    /// ...when at least this share of them missed (a reader following a few dead
    /// links misses one or two; guessing names or ids misses often).
    pub min_miss_share: f64,
    /// Endpoints tracked per client (the rest share no state).
    pub max_endpoints: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: 60 * SEC,
            min_distinct: 50,
            factor: 4.0,
            min_distinct_with_misses: 10,
            min_miss_share: 0.2,
            max_endpoints: 32,
        }
    }
}

/// Share of repeated requests above which a client is cycling through a set it
/// knows (a poller, a sync job), not walking new ids.
const MAX_REPEAT_SHARE: f64 = 0.2;
/// Missed ids needed, whatever the share: a couple of dead links are not a walk.
const MIN_MISSES: usize = 5;

#[derive(Debug, Clone, Default)]
struct PerEndpoint {
    /// Each id touched (its hash; numeric ids are kept as themselves).
    ids: Option<CountingWindow>,
    /// Ids the server did not have or would not show.
    misses: Option<CountingWindow>,
    /// Ids the server did not have at all (404/410).
    absent: Option<CountingWindow>,
    usual: Ewma,
    interval_start: Nanos,
}

#[derive(Debug, Clone, Default)]
pub struct State {
    endpoints: HashMap<u64, PerEndpoint, crate::detect::Prehashed>,
}

impl State {
    /// Heap bytes held: the table and each route's windows.
    pub fn heap_bytes(&self) -> usize {
        let w = |w: &Option<CountingWindow>| w.as_ref().map_or(0, CountingWindow::heap_bytes);
        self.endpoints.capacity() * (std::mem::size_of::<(u64, PerEndpoint)>() + 1)
            + self
                .endpoints
                .values()
                .map(|e| w(&e.ids) + w(&e.misses) + w(&e.absent))
                .sum::<usize>()
    }
}

/// The identifier values in `path` where the template has a placeholder (`{id}`,
/// `{uuid}`, `{name}`...).
pub fn ids<'a>(path: &'a str, template: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    crate::routes::segments(path)
        .zip(crate::routes::segments(template))
        .filter(|(_, t)| t.starts_with('{'))
        .map(|(p, _)| crate::redact::without_matrix(p))
}

/// An object id outside the path: a query parameter, or a key of a JSON lookup body
/// (`?userId=42`, `?id=9f86d081...`, `{"accountId": 7}`), as (name, value). Names
/// that end in `id`/`ids` (any case, any separator) carry any id class; other names
/// only UUIDs. Names that mean a credential never count.
pub fn param_id(ex: &crate::http::Exchange) -> Option<(Vec<u8>, Vec<u8>)> {
    let uri = ex.uri.as_deref().unwrap_or("");
    if let Some(at) = memchr::memchr(b'?', uri.as_bytes()) {
        let q = before(&uri[at + 1..], b'#');
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // Most parameters are no id: told by their raw bytes, nothing decoded.
            let kb = k.as_bytes();
            let id_name = kb.len() >= 2 && kb[kb.len() - 2..].eq_ignore_ascii_case(b"id")
                || kb.len() >= 3 && kb[kb.len() - 3..].eq_ignore_ascii_case(b"ids")
                || kb.contains(&b'%');
            if !id_name && v.len() < 36 {
                continue;
            }
            let k = crate::routes::percent_decoded(k);
            let v = crate::routes::percent_decoded(v);
            if is_id_param(&k, &v) {
                return Some((k.into_owned(), v.into_owned()));
            }
        }
    }
    // A lookup body is a small POST (`{"accountId": 7}`), not a document.
    let body = &ex.request_body_prefix;
    if ex.method.as_deref() != Some("POST")
        || ex.request_body_len > 512
        // A login's body is no lookup.
        || ex.body_credentials.as_ref().is_some_and(|c| c.password || c.user.is_some())
        || !crate::jsonscan::looks_like_json(body)
    {
        return None;
    }
    let mut found = None;
    crate::jsonscan::scan(body, |_, key, item| {
        if let (Some(k), crate::jsonscan::Item::Str(v) | crate::jsonscan::Item::Num(v)) =
            (key, item)
            && is_id_param(k, v)
        {
            found = Some((k.to_vec(), v.to_vec()));
        }
        found.is_none()
    });
    found
}

fn before(s: &str, delim: u8) -> &str {
    crate::routes::before(s, delim)
}

/// A decimal id below 2^48 (readable for the sequence check), read from its bytes.
fn small_number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    (n < 1 << 48).then_some(n)
}

fn is_id_param(name: &[u8], value: &[u8]) -> bool {
    // The cheap tests first: most parameters are no id at all.
    let n = name;
    let ends = |s: &[u8]| n.len() >= s.len() && n[n.len() - s.len()..].eq_ignore_ascii_case(s);
    let id_name = ends(b"id") || ends(b"ids");
    if (!id_name && value.len() != 36) || n.len() > 64 {
        return false;
    }
    let (Ok(name), Ok(value)) = (std::str::from_utf8(name), std::str::from_utf8(value)) else {
        return false;
    };
    let id_like = match crate::routes::segment_class(value) {
        Some("{uuid}") => true,
        Some("{id}" | "{hex}" | "{token}") => id_name,
        _ => false,
    };
    id_like && !crate::redact::is_secret_name(name)
}

/// `evidence`: whether a finding would be reported now (the engine says no while an
/// episode is in cooldown); without it the finding is returned bare, cheaply.
pub fn observe(
    cfg: &Config,
    st: &mut State,
    obs: &Obs<'_>,
    endpoint_hash: u64,
    hash: impl Fn(&[u8]) -> u64,
    evidence: bool,
) -> Option<Finding> {
    // A placeholder right under the root is a wordlist's numbers, not an object walk.
    if crate::routes::segments(&obs.template)
        .nth(1)
        .is_some_and(|s| s.starts_with('{'))
    {
        return None;
    }
    let from_params;
    let (value, endpoint_hash) = match ids(obs.path, &obs.template).last() {
        Some(v) => (v.as_bytes(), endpoint_hash),
        None => {
            // Per route and parameter name.
            from_params = param_id(obs.ex)?;
            (
                &from_params.1[..],
                endpoint_hash.rotate_left(17) ^ hash(&from_params.0),
            )
        }
    };
    if st.endpoints.len() >= cfg.max_endpoints && !st.endpoints.contains_key(&endpoint_hash) {
        return None;
    }
    let e = st.endpoints.entry(endpoint_hash).or_default();
    let window = || CountingWindow::new(cfg.window, 2048);
    let w = e.ids.get_or_insert_with(window);
    let m = e.misses.get_or_insert_with(window);
    let a = e.absent.get_or_insert_with(window);
    if e.interval_start == 0 {
        e.interval_start = obs.ts;
    }
    if obs.ts >= e.interval_start.saturating_add(cfg.window) {
        w.expire(obs.ts);
        e.usual.update(w.distinct() as f64, 0.2);
        e.interval_start = obs.ts;
    }
    // Small numeric ids stay readable for the sequence check; others are hashed.
    let key = match small_number(value) {
        Some(n) => n,
        _ => hash(value) | 1 << 63,
    };
    w.push(obs.ts, key);
    m.expire(obs.ts);
    a.expire(obs.ts);
    if matches!(obs.status, Some(401 | 403 | 404 | 410)) {
        m.push(obs.ts, key);
    }
    if matches!(obs.status, Some(404 | 410)) {
        a.push(obs.ts, key);
    }
    // Ids that all do not exist are a wordlist's guesses: the scan detector's.
    let some_exist = a.distinct() < w.distinct();
    let n = w.distinct();
    let requests = w.len();
    let missed = m.distinct();
    let repeats = 1.0 - n as f64 / requests.max(1) as f64;
    let miss_share = missed as f64 / n.max(1) as f64;
    let walking = repeats <= MAX_REPEAT_SHARE;
    let usual = cfg.factor * e.usual.mean;
    let by_misses = n >= cfg.min_distinct_with_misses
        && some_exist
        && missed >= MIN_MISSES
        && miss_share >= cfg.min_miss_share
        && n as f64 >= usual;
    let count_ok = walking && some_exist && 5 * missed <= n && n as f64 >= usual;
    // The sequence check sorts the window: only when it decides, or for evidence.
    let by_count = count_ok
        && (n >= cfg.min_distinct
            || (n >= cfg.min_distinct / 2 && {
                let (ratio, nums) = sequence(w);
                nums >= cfg.min_distinct / 2 && ratio >= 0.8
            }));
    if !(by_misses || by_count) {
        return None;
    }
    if !evidence {
        return Some(Finding::bare(Kind::ObjectEnumeration, 2));
    }
    let (seq_ratio, _) = sequence(w);
    let secs = cfg.window / SEC;
    // The bar that was cleared: with misses, by count, or (sequential ids) half of it.
    let threshold = if by_misses {
        cfg.min_distinct_with_misses
    } else if n >= cfg.min_distinct {
        cfg.min_distinct
    } else {
        cfg.min_distinct / 2
    } as f64;
    Some(Finding {
        kind: Kind::ObjectEnumeration,
        endpoint: Some(obs.endpoint.to_string()),
        summary: format!(
            "{n} distinct object ids on {} in {secs}s, {missed} not found or forbidden{}",
            obs.endpoint,
            if seq_ratio >= 0.8 { ", sequential" } else { "" }
        ),
        evidence: json!({
            "window_s": secs,
            "distinct_ids": n,
            "requests": requests,
            "missed_ids": missed,
            "miss_share": (miss_share * 1000.0).round() / 1000.0,
            "repeat_share": (repeats * 1000.0).round() / 1000.0,
            "sequential_ratio": (seq_ratio * 1000.0).round() / 1000.0,
            "baseline_distinct_per_window": (e.usual.mean * 100.0).round() / 100.0,
            "threshold": threshold.max(usual).round(),
        }),
        severity: 2,
        clients: None,
        novelty: Novelty::Repeat,
    })
}

/// How sequential the numeric ids in the window are, and how many there are.
fn sequence(w: &CountingWindow) -> (f64, usize) {
    let mut nums: Vec<u64> = w.keys().rev().take(256).filter(|k| *k < 1 << 48).collect();
    nums.sort_unstable();
    nums.dedup();
    let sequential = nums.windows(2).filter(|p| p[1] - p[0] <= 2).count();
    let ratio = if nums.len() > 1 {
        sequential as f64 / (nums.len() - 1) as f64
    } else {
        0.0
    };
    (ratio, nums.len())
}

/// Calls `f` with the ids a creation handed out: the last segments of its
/// `Location`, and id-like values (`id`, `*_id`, `slug`, `name`, `key`) of its JSON
/// answer, two levels deep at most.
pub(super) fn created_ids(ex: &Exchange, mut f: impl FnMut(&[u8])) {
    if let Some(loc) = ex
        .response_headers
        .as_ref()
        .and_then(|h| h.location.as_deref())
    {
        for seg in crate::routes::path_of(loc)
            .rsplit('/')
            .filter(|s| !s.is_empty())
            .take(2)
        {
            f(&crate::routes::percent_decoded(seg));
        }
    }
    if !crate::jsonscan::looks_like_json(&ex.response_body_prefix) {
        return;
    }
    crate::jsonscan::scan(&ex.response_body_prefix, |depth, key, item| {
        if let (Some(k), Item::Str(v) | Item::Num(v)) = (key, item) {
            // Compared without a lowercased copy (this runs per key of every answer
            // to a write).
            let ends = |suffix: &[u8]| {
                k.len() >= suffix.len() && k[k.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            };
            let idish = ends(b"_id")
                || ends(b"id") && k.len() <= 8
                || [&b"slug"[..], b"name", b"key", b"uuid", b"username"]
                    .iter()
                    .any(|w| k.eq_ignore_ascii_case(w));
            if idish && depth <= 2 && !v.is_empty() && v.len() <= 128 {
                f(v);
            }
        }
        depth <= 3
    });
}

/// Calls `f` with the object ids an answer hands out as JSON keys (`{"rooms":
/// {"!abc:server": ...}}`): what a sync or a membership listing says is the
/// client's.
pub(super) fn handed_keys(ex: &Exchange, mut f: impl FnMut(&[u8])) {
    if !crate::jsonscan::looks_like_json(&ex.response_body_prefix) {
        return;
    }
    crate::jsonscan::scan(&ex.response_body_prefix, |_, key, _| {
        // A strong name has a sigil, a separator or an escape: keys without one
        // (nearly all) are not read further.
        if let Some(k) = key
            && k.len() >= 3
            && k.iter()
                .any(|c| matches!(c, b'!' | b'$' | b':' | b'@' | b'%' | b'-' | b'_'))
            && let Ok(k) = std::str::from_utf8(k)
            && crate::routes::is_strong_name(k)
        {
            f(k.as_bytes());
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::obs_at;

    use crate::detect::tests::test_hash as h;

    #[test]
    fn walking_ids_fires_and_revisiting_a_few_does_not() {
        let cfg = Config::default();
        let mut st = State::default();
        let mut found = None;
        for i in 0..40u64 {
            let o = obs_at(
                SEC + i * SEC / 5,
                "GET",
                &format!("/api/users/{}", 1000 + i),
                Some(200),
            );
            found = found.or(observe(&cfg, &mut st, &o.obs(), 1, h, true));
        }
        let f = found.expect("enumeration");
        assert_eq!(f.kind, Kind::ObjectEnumeration);
        assert!(f.summary.contains("sequential"), "{}", f.summary);
        // Fired below 50 distinct ids on the sequential bar: the evidence says which.
        assert!(f.evidence["distinct_ids"].as_u64().unwrap() < 50);
        assert_eq!(f.evidence["threshold"], serde_json::json!(25.0));

        let mut st = State::default();
        for i in 0..400u64 {
            let o = obs_at(
                SEC + i * SEC,
                "GET",
                &format!("/api/users/{}", 1000 + i % 7),
                Some(200),
            );
            assert!(observe(&cfg, &mut st, &o.obs(), 1, h, true).is_none());
        }
    }

    #[test]
    fn ids_in_query_parameters_and_lookup_bodies_are_walked_too() {
        let cfg = Config::default();
        let mut st = State::default();
        let mut found = None;
        for i in 0..30u64 {
            let status = if i % 3 == 0 { 200 } else { 403 };
            let o = obs_at(
                SEC + i * SEC / 5,
                "GET",
                &format!("/api/files?sort=asc&fileId={:032x}", i * 7919),
                Some(status),
            );
            found = found.or(observe(&cfg, &mut st, &o.obs(), 1, h, true));
        }
        assert_eq!(found.map(|f| f.kind), Some(Kind::ObjectEnumeration));

        let mut o = obs_at(SEC, "POST", "/api/lookup", Some(200));
        o.ex.request_body_prefix = br#"{"filter":{"accountId":1234}}"#.to_vec();
        assert_eq!(
            param_id(&o.ex),
            Some((b"accountId".to_vec(), b"1234".to_vec()))
        );
        // Paging, sorting and credentials are not objects.
        for uri in [
            "/api/items?page=7",
            "/api/items?limit=50&offset=100",
            "/api/items?session_id=12345",
            "/api/items?api_key=0123456789abcdef0123456789abcdef",
        ] {
            let o = obs_at(SEC, "GET", uri, Some(200));
            assert_eq!(param_id(&o.ex), None, "{uri}");
        }
        // A client paging through a listing is not walking objects.
        let mut st = State::default();
        for i in 0..100u64 {
            let o = obs_at(
                SEC + i * SEC / 5,
                "GET",
                &format!("/api/items?page={i}"),
                Some(200),
            );
            assert!(observe(&cfg, &mut st, &o.obs(), 1, h, true).is_none());
        }
    }

    #[test]
    fn ids_are_taken_where_the_template_has_classes() {
        assert_eq!(
            ids("/users/42/orders/7", "/users/{id}/orders/{id}").collect::<Vec<_>>(),
            ["42", "7"]
        );
        assert_eq!(ids("/users/me", "/users/me").count(), 0);
    }
}
