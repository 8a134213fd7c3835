//! `unusual_endpoint`: after the learning period, an established client using an
//! endpoint outside its own profile that is rare across the population or sensitive
//! (admin, debug, internal, export, bulk listings, state-changing methods on object
//! resources); and any client successfully calling an endpoint first seen after the
//! learning period (a shadow endpoint the inventory never had).

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::{Finding, Kind, Obs};
use crate::capture::Nanos;

/// Thresholds (config `[detect.unusual_endpoint]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests a client must have made during learning to have a profile.
    pub min_profile_requests: u64,
    /// An endpoint used by at most this share of the other known clients is rare
    /// (0: nobody else; people find new features every day, so "few others" is
    /// not enough on its own)...
    pub rare_share: f64,
    /// ...once at least this many clients are known.
    pub min_population: usize,
    /// Path words that make an endpoint sensitive.
    pub sensitive_words: Vec<String>,
    /// Endpoints in the inventory (oldest forgotten beyond it, counted).
    pub max_endpoints: usize,
    /// Endpoints in one client's profile.
    pub max_profile: usize,
    /// Shadow endpoints are reported only if at most this many endpoints were first
    /// seen answering 2xx in the second half of the learning period.
    pub max_late_discoveries: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_profile_requests: 20,
            rare_share: 0.0,
            min_population: 5,
            sensitive_words: [
                "admin",
                "debug",
                "internal",
                "export",
                "bulk",
                "dump",
                "backup",
                "config",
                "actuator",
                "console",
                "metrics",
                "env",
                "private",
                "manage",
                "sudo",
                "impersonate",
            ]
            .map(String::from)
            .to_vec(),
            max_endpoints: 50_000,
            max_profile: 1024,
            max_late_discoveries: 0,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct EndpointInfo {
    pub(crate) first_seen: Nanos,
    pub(crate) last_seen: Nanos,
    /// Distinct clients (hashes), capped: past the cap the endpoint is common anyway.
    #[serde(serialize_with = "sorted")]
    pub(crate) clients: HashSet<u64, super::Prehashed>,
    pub(crate) shadow_reported: bool,
    /// The endpoint has answered 2xx at least once.
    #[serde(default)]
    pub(crate) ok_seen: bool,
}

const CLIENT_CAP: usize = 256;

/// A set written in sorted order, so snapshots of equal state are equal bytes.
fn sorted<S: serde::Serializer>(
    set: &HashSet<u64, super::Prehashed>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut v: Vec<u64> = set.iter().copied().collect();
    v.sort_unstable();
    serde::Serialize::serialize(&v, s)
}

/// What the whole population uses.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub(crate) endpoints: HashMap<u64, EndpointInfo, super::Prehashed>,
    /// Endpoints that first answered 2xx in the second half of the learning period.
    /// A service still revealing endpoints then will reveal more later: shadow
    /// endpoint alerts are only raised for an inventory that had settled.
    pub(crate) late_discoveries: u32,
    pub evicted: u64,
}

/// One client's own endpoints.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub(crate) endpoints: HashSet<u64, super::Prehashed>,
    pub requests: u64,
    pub first_seen: Nanos,
}

fn is_static_asset(template: &str) -> bool {
    let lower = template.to_ascii_lowercase();
    [
        ".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".woff", ".woff2", ".map",
        ".html",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

pub fn sensitive(cfg: &Config, method: &str, template: &str) -> bool {
    let lower = template.to_ascii_lowercase();
    let by_name = lower.split(['/', '.', '-', '_']).any(|seg| {
        cfg.sensitive_words
            .iter()
            .any(|w| seg == w || (w.len() >= 5 && seg.starts_with(w.as_str())))
    });
    let mutates_object = matches!(method, "DELETE" | "PUT" | "PATCH") && template.contains('{');
    by_name || mutates_object
}

/// What the inventory says about one request: the global half of the detector,
/// worked out before the request reaches its client's shard.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Other clients known to use the endpoint (capped at the per-endpoint cap).
    pub others: usize,
    /// A shadow endpoint answered for the first time (reported once per endpoint).
    pub shadow: Option<Finding>,
}

/// Records the request in the inventory of endpoints.
pub fn inventory(
    cfg: &Config,
    inv: &mut Inventory,
    obs: &Obs<'_>,
    endpoint_hash: u64,
    client_hash: u64,
    (late_start, learning_end): (Nanos, Nanos),
) -> Seen {
    let learning = obs.ts < learning_end;
    if inv.endpoints.len() >= cfg.max_endpoints && !inv.endpoints.contains_key(&endpoint_hash) {
        let n = crate::lru::batch(cfg.max_endpoints);
        for k in crate::lru::oldest(&inv.endpoints, n, |e| e.last_seen) {
            inv.endpoints.remove(&k);
            inv.evicted += 1;
        }
    }
    let info = inv
        .endpoints
        .entry(endpoint_hash)
        .or_insert_with(|| EndpointInfo {
            first_seen: obs.ts,
            last_seen: obs.ts,
            clients: HashSet::default(),
            shadow_reported: false,
            ok_seen: false,
        });
    info.last_seen = obs.ts;
    let others = info.clients.len() - usize::from(info.clients.contains(&client_hash));
    if info.clients.len() < CLIENT_CAP {
        info.clients.insert(client_hash);
    }
    let ok = matches!(obs.status, Some(200..=299));
    let first_ok = ok && !info.ok_seen;
    if first_ok {
        info.ok_seen = true;
        if learning && obs.ts >= late_start {
            inv.late_discoveries += 1;
        }
    }
    let shadow = (!learning
        && first_ok
        && info.first_seen >= learning_end
        && !info.shadow_reported
        && inv.late_discoveries <= cfg.max_late_discoveries
        && !is_static_asset(&obs.template))
    .then(|| {
        info.shadow_reported = true;
        Finding {
            kind: Kind::UnusualEndpoint,
            endpoint: Some(obs.endpoint.clone()),
            summary: format!(
                "{} answered {} but was never seen during learning (shadow endpoint)",
                obs.endpoint,
                obs.status.unwrap_or(0)
            ),
            evidence: json!({"shadow": true, "first_seen_after_learning_s": (info.first_seen - learning_end) / 1_000_000_000, "clients_using": info.clients.len()}),
            severity: 3,
            clients: None,
        }
    });
    Seen { others, shadow }
}

/// Records the request in the client's profile; after `learning_end`, returns a
/// finding when it is unusual (`seen`: what [`inventory`] said about it).
pub fn profile(
    cfg: &Config,
    prof: &mut Profile,
    obs: &Obs<'_>,
    endpoint_hash: u64,
    seen: Seen,
    clients_known: usize,
    learning_end: Nanos,
) -> Option<Finding> {
    if prof.first_seen == 0 {
        prof.first_seen = obs.ts;
    }
    prof.requests += 1;
    let in_profile =
        !prof.endpoints.insert(endpoint_hash) || prof.endpoints.len() > cfg.max_profile;
    if prof.endpoints.len() > cfg.max_profile {
        prof.endpoints.remove(&endpoint_hash);
    }
    if obs.ts < learning_end {
        return None;
    }
    if seen.shadow.is_some() {
        return seen.shadow;
    }
    let others = seen.others;
    let established = prof.first_seen < learning_end && prof.requests >= cfg.min_profile_requests;
    if !established || in_profile || matches!(obs.status, Some(404)) {
        return None;
    }
    let is_sensitive = sensitive(cfg, obs.method, &obs.template);
    let rare = clients_known >= cfg.min_population
        && (others as f64) <= cfg.rare_share * clients_known as f64;
    if !(is_sensitive || rare) {
        return None;
    }
    Some(Finding {
        kind: Kind::UnusualEndpoint,
        endpoint: Some(obs.endpoint.clone()),
        summary: format!(
            "established client used {} for the first time ({}; {} other clients use it)",
            obs.endpoint,
            if is_sensitive { "sensitive" } else { "rare" },
            others
        ),
        evidence: json!({
            "shadow": false,
            "sensitive": is_sensitive,
            "other_clients_using": others,
            "clients_known": clients_known,
            "rare_share_threshold": cfg.rare_share,
            "profile_endpoints": prof.endpoints.len(),
            "profile_requests": prof.requests,
        }),
        severity: if is_sensitive { 2 } else { 3 },
        clients: None,
    })
}

/// Both halves in one call, as one shard with the whole inventory runs them.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
fn observe(
    cfg: &Config,
    inv: &mut Inventory,
    prof: &mut Profile,
    obs: &Obs<'_>,
    endpoint_hash: u64,
    client_hash: u64,
    clients_known: usize,
    window: (Nanos, Nanos),
) -> Option<Finding> {
    let seen = inventory(cfg, inv, obs, endpoint_hash, client_hash, window);
    profile(cfg, prof, obs, endpoint_hash, seen, clients_known, window.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::obs_at;

    const SEC: Nanos = 1_000_000_000;
    /// Learning ends at 300 s; its second half starts at 150 s.
    const END: Nanos = 300 * SEC;

    /// One inventory seen by several clients, ten clients known.
    struct World {
        cfg: Config,
        inv: Inventory,
    }

    impl World {
        fn new() -> Self {
            World {
                cfg: Config::default(),
                inv: Inventory::default(),
            }
        }

        /// `client` (with its profile) calls `path` at `secs`; `ep` names the endpoint.
        fn call(
            &mut self,
            prof: &mut Profile,
            client: u64,
            secs: u64,
            path: &str,
            status: u16,
            ep: u64,
        ) -> Option<Finding> {
            let o = obs_at(secs * SEC, "GET", path, Some(status));
            observe(
                &self.cfg,
                &mut self.inv,
                prof,
                &o.obs(),
                ep,
                client,
                10,
                (END / 2, END),
            )
        }
    }

    #[test]
    fn established_client_on_a_sensitive_endpoint_after_learning() {
        let mut w = World::new();
        let mut prof = Profile::default();
        for i in 0..60u64 {
            assert!(w.call(&mut prof, 7, i, "/api/items", 200, 1).is_none());
        }
        // The usual endpoint after learning: quiet.
        assert!(w.call(&mut prof, 7, 400, "/api/items", 200, 1).is_none());
        // Another client used /admin/users during learning (so it is not shadow).
        let mut other = Profile::default();
        w.call(&mut other, 8, 10, "/admin/users", 200, 2);
        let f = w
            .call(&mut prof, 7, 401, "/admin/users", 200, 2)
            .expect("unusual");
        assert_eq!(f.evidence["sensitive"], true);
    }

    #[test]
    fn shadow_endpoint_is_reported_once() {
        let mut w = World::new();
        let mut prof = Profile::default();
        let f = w
            .call(&mut prof, 1, 500, "/api/v2/hidden", 200, 5)
            .expect("shadow");
        assert_eq!(f.evidence["shadow"], true);
        assert!(
            w.call(&mut prof, 1, 500, "/api/v2/hidden", 200, 5)
                .is_none()
        );
        // A 404 on a new path is a scan's business, not a shadow endpoint.
        assert!(w.call(&mut prof, 1, 501, "/nothing-here", 404, 6).is_none());
    }

    #[test]
    fn no_shadow_alerts_while_the_service_keeps_revealing_endpoints() {
        let mut w = World::new();
        let mut prof = Profile::default();
        // New endpoints keep appearing late in learning: a long-tail API.
        for i in 0..10u64 {
            assert!(
                w.call(
                    &mut prof,
                    1,
                    200 + i,
                    &format!("/api/feature{i}"),
                    200,
                    100 + i
                )
                .is_none()
            );
        }
        assert!(
            w.call(&mut prof, 1, 500, "/api/feature-new", 200, 999)
                .is_none()
        );
    }

    #[test]
    fn the_inventory_is_bounded_and_evicts_in_batches() {
        let mut w = World::new();
        w.cfg.max_endpoints = 64;
        let mut prof = Profile::default();
        for i in 0..1000u64 {
            w.call(&mut prof, 1, i, &format!("/p{i}"), 404, i);
        }
        assert!(w.inv.endpoints.len() <= 64);
        assert_eq!(w.inv.evicted, 1000 - w.inv.endpoints.len() as u64);
    }

    #[test]
    fn sensitivity_by_name_and_by_mutation() {
        let cfg = Config::default();
        assert!(sensitive(&cfg, "GET", "/api/admin/users"));
        assert!(sensitive(&cfg, "GET", "/internal/debug"));
        assert!(sensitive(&cfg, "DELETE", "/api/users/{id}"));
        assert!(!sensitive(&cfg, "GET", "/api/users/{id}"));
        assert!(!sensitive(&cfg, "GET", "/api/environmental-data"));
    }
}
