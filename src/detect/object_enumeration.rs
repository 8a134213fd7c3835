//! `object_enumeration` (OWASP API1:2023, broken object level authorization): one
//! client touching many distinct values of the same templated parameter in a window,
//! such as walking `/users/{id}` or `/orders/{uuid}`, especially in sequence.

use std::collections::HashMap;

use serde_json::json;

use super::window::{CountingWindow, Ewma};
use super::{Finding, Kind, Obs};
use crate::capture::Nanos;

const SEC: Nanos = 1_000_000_000;

/// Thresholds (config `[detect.object_enumeration]`).
#[derive(Debug, Clone)]
pub struct Config {
    pub window: Nanos,
    /// Distinct object ids on one endpoint in the window before anything fires...
    pub min_distinct: usize,
    /// ...and this many times the client's own usual count per window.
    pub factor: f64,
    /// Endpoints tracked per client (the rest share no state).
    pub max_endpoints: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: 60 * SEC,
            min_distinct: 25,
            factor: 4.0,
            max_endpoints: 32,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct PerEndpoint {
    /// Each id touched (its hash; numeric ids are kept as themselves).
    ids: Option<CountingWindow>,
    usual: Ewma,
    interval_start: Nanos,
}

#[derive(Debug, Clone, Default)]
pub struct State {
    endpoints: HashMap<u64, PerEndpoint>,
}

/// The identifier values in `path` where the template has a class (`{id}`...).
pub fn ids<'a>(path: &'a str, template: &str) -> Vec<&'a str> {
    path.split('/')
        .zip(template.split('/'))
        .filter(|(_, t)| t.starts_with('{'))
        .map(|(p, _)| p)
        .collect()
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
    let values = ids(obs.path, &obs.template);
    let value = values.last()?;
    if st.endpoints.len() >= cfg.max_endpoints && !st.endpoints.contains_key(&endpoint_hash) {
        return None;
    }
    let e = st.endpoints.entry(endpoint_hash).or_default();
    let w = e
        .ids
        .get_or_insert_with(|| CountingWindow::new(cfg.window, 2048));
    if e.interval_start == 0 {
        e.interval_start = obs.ts;
    }
    if obs.ts >= e.interval_start + cfg.window {
        w.expire(obs.ts);
        e.usual.update(w.distinct() as f64, 0.2);
        e.interval_start = obs.ts;
    }
    // Small numeric ids stay readable for the sequence check; others are hashed.
    let key = match value.parse::<u64>() {
        Ok(n) if n < 1 << 48 => n,
        _ => hash(value.as_bytes()) | 1 << 63,
    };
    w.push(obs.ts, key);
    let n = w.distinct();
    let threshold = (cfg.min_distinct as f64).max(cfg.factor * e.usual.mean);
    if (n as f64) < threshold {
        return None;
    }
    if !evidence {
        return Some(Finding {
            kind: Kind::ObjectEnumeration,
            endpoint: None,
            summary: String::new(),
            evidence: serde_json::Value::Null,
            severity: 2,
            clients: None,
        });
    }
    let mut nums: Vec<u64> = w.keys().rev().take(256).filter(|k| *k < 1 << 48).collect();
    nums.sort_unstable();
    nums.dedup();
    let sequential = nums.windows(2).filter(|p| p[1] - p[0] <= 2).count();
    let seq_ratio = if nums.len() > 1 {
        sequential as f64 / (nums.len() - 1) as f64
    } else {
        0.0
    };
    let requests = w.len();
    let secs = cfg.window / SEC;
    Some(Finding {
        kind: Kind::ObjectEnumeration,
        endpoint: Some(obs.endpoint.clone()),
        summary: format!(
            "{n} distinct object ids on {} in {secs}s{}",
            obs.endpoint,
            if seq_ratio >= 0.8 { ", sequential" } else { "" }
        ),
        evidence: json!({
            "window_s": secs,
            "distinct_ids": n,
            "requests": requests,
            "sequential_ratio": (seq_ratio * 1000.0).round() / 1000.0,
            "baseline_distinct_per_window": (e.usual.mean * 100.0).round() / 100.0,
            "threshold": threshold.round(),
        }),
        severity: 2,
        clients: None,
    })
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
    fn ids_are_taken_where_the_template_has_classes() {
        assert_eq!(
            ids("/users/42/orders/7", "/users/{id}/orders/{id}"),
            ["42", "7"]
        );
        assert!(ids("/users/me", "/users/me").is_empty());
    }
}
