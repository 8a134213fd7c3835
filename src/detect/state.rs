//! Persistence: the learned baselines and the endpoint inventory survive a restart.
//!
//! A snapshot is JSON with a format version, written atomically (temporary file in
//! the same directory, fsync, rename) periodically and at shutdown, and loaded at
//! start. Short-term windows (the last minute of logins, scans...) are not kept: an
//! attack does not span a restart in a way they would catch. A file that cannot be
//! read as a snapshot of this version is moved aside with a warning and the engine
//! starts fresh.
//!
//! A state file is hostile input too (edited, corrupted, or another build's): its
//! size is bounded by `memory.limit` before it is read; sets are read no further than
//! one past their caps and cut to what the running configuration allows; a label or
//! content type too long to be one is dropped; an average that is not a number is
//! forgotten; counters saturate; a time after the present packet (by more than
//! [`FUTURE_SLACK`]) is taken as the present, so learning cannot be stuck. Whatever
//! was cut costs one warning.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Engine;
use super::engine::Stage;
use super::shard::{Client, Shard};
use super::window::Ewma;
use crate::identity::ClientId;
use crate::routes::inventory::EndpointInfo;
use crate::time::Nanos;
use std::hash::BuildHasher;

/// Bumped whenever the layout or the meaning of a field changes.
pub const VERSION: u32 = 1;

pub use crate::time::{FUTURE_SLACK, in_future, not_after};

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Every client's routes, back to back, until [`Snapshot::sort`] hands each
    /// client its own list (one allocation on the processing thread, not one per
    /// client: that was most of a 100 k-client snapshot's cost).
    #[serde(skip)]
    routes: Vec<u64>,
    pub version: u32,
    first_ts: Option<Nanos>,
    /// The principal-hash key, so principal keys mean the same after a restart.
    salt: [u64; 2],
    population: Ewma,
    /// What clients usually take (`data_exfiltration`).
    #[serde(default)]
    exfiltration: super::exfiltration::Population,
    login_failure_rate: Ewma,
    clients: Vec<ClientSnap>,
    inventory: Vec<(u64, EndpointInfo)>,
    #[serde(default)]
    late_discoveries: u32,
}

impl Snapshot {
    /// Canonical order (clients by id, their routes, the inventory by key), so equal
    /// states serialise to equal bytes whatever the hash maps' order.
    pub fn sort(&mut self) {
        self.clients.sort_unstable_by_key(|c| c.id);
        let routes = std::mem::take(&mut self.routes);
        for c in &mut self.clients {
            let (start, n) = (c.routes_at.0 as usize, c.routes_at.1 as usize);
            if let Some(r) = routes.get(start..start + n) {
                c.endpoints.extend_from_slice(r);
            }
            c.routes_at = (0, 0);
            c.endpoints.sort_unstable();
        }
        self.inventory.sort_unstable_by_key(|(k, _)| *k);
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ClientSnap {
    id: ClientId,
    last_seen: Nanos,
    baseline: Ewma,
    interval_start: Nanos,
    profile_first_seen: Nanos,
    profile_requests: u64,
    endpoints: Vec<u64>,
    /// Endpoints outside the spec it was reported for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    shadows: Vec<u64>,
    /// Where its routes are in [`ClientSnaps::routes`] (start, count) until sorted.
    #[serde(skip)]
    routes_at: (u32, u32),
}

/// Client copies with their routes in one shared vector.
#[derive(Debug, Default)]
pub(crate) struct ClientSnaps {
    pub clients: Vec<ClientSnap>,
    pub routes: Vec<u64>,
}

impl ClientSnaps {
    /// Appends another shard's copies.
    pub fn append(&mut self, other: ClientSnaps) {
        let base = self.routes.len() as u32;
        self.routes.extend(other.routes);
        self.clients.extend(other.clients.into_iter().map(|mut c| {
            c.routes_at.0 += base;
            c
        }));
    }
}

impl Shard {
    /// This shard's clients, as a snapshot keeps them.
    pub(super) fn client_snaps(&self) -> ClientSnaps {
        let mut routes = Vec::with_capacity(self.clients.len() * 4);
        let clients = self
            .clients
            .iter()
            .map(|(id, c)| {
                let start = routes.len() as u32;
                routes.extend(c.profile.endpoints.iter().copied());
                ClientSnap {
                    id: *id,
                    last_seen: c.last_seen,
                    baseline: c.burst.baseline,
                    interval_start: c.burst.interval_start,
                    profile_first_seen: c.profile.first_seen,
                    profile_requests: c.profile.requests,
                    endpoints: Vec::new(),
                    shadows: {
                        let mut v: Vec<u64> = c.profile.shadows.iter().copied().collect();
                        v.sort_unstable();
                        v
                    },
                    routes_at: (start, routes.len() as u32 - start),
                }
            })
            .collect();
        ClientSnaps { clients, routes }
    }

    pub(super) fn restore_client(&mut self, c: ClientSnap) {
        let mut client = Client::new(&self.cfg, c.id, c.last_seen);
        client.burst.baseline = c.baseline;
        client.burst.interval_start = c.interval_start;
        client.profile.first_seen = c.profile_first_seen;
        client.profile.requests = c.profile_requests;
        client.profile.endpoints = c.endpoints.into_iter().collect();
        client.profile.shadows = c.shadows.into_iter().collect();
        Self::measure(&mut self.bytes, &mut client);
        if let Some(old) = self.clients.insert(c.id, client) {
            self.bytes = self.bytes.saturating_sub(old.bytes);
        }
    }
}

impl Engine {
    /// The state worth keeping across a restart, in canonical order. With shards this
    /// waits for them; alerts they finished meanwhile go to `out`.
    pub fn snapshot(&mut self, out: &mut Vec<super::Alert>) -> Snapshot {
        let mut s = self.snapshot_unsorted(out);
        s.sort();
        s
    }

    /// [`Engine::snapshot`] without the sorting, which [`Snapshot::sort`] does later
    /// (on the thread that writes it): what the processing thread pays is copying.
    pub fn snapshot_unsorted(&mut self, out: &mut Vec<super::Alert>) -> Snapshot {
        let clients = match &mut self.stage {
            Stage::Inline(shard) => shard.client_snaps(),
            Stage::Sharded(pool) => {
                let got = pool.barrier(self.now, true, out);
                self.contributions.extend(got.contributions);
                got.clients
            }
        };
        let inventory: Vec<(u64, EndpointInfo)> = self
            .inventory
            .endpoints
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        Snapshot {
            routes: clients.routes,
            version: VERSION,
            first_ts: self.first_ts,
            salt: self.cfg.identity.salt,
            population: self.population.per_client,
            exfiltration: self.population.exfiltration,
            login_failure_rate: self.global_login.rate,
            clients: clients.clients,
            inventory,
            late_discoveries: self.inventory.late_discoveries,
        }
    }

    /// Continues from a snapshot (on an engine that has seen nothing yet), cut to
    /// the running configuration's bounds ([`Snapshot::bound`]; one warning if it
    /// had to be).
    pub fn restore(&mut self, mut s: Snapshot) {
        let cut = s.bound(&self.cfg);
        if !cut.is_empty() {
            tracing::warn!(
                "The state file held values out of bounds, cut to this configuration's: {}",
                cut.join(", ")
            );
        }
        self.first_ts = s.first_ts;
        if !self.cfg.identity.salt_configured {
            self.cfg.identity.salt = s.salt;
        }
        self.population.per_client = s.population;
        self.population.exfiltration = s.exfiltration;
        self.global_login.rate = s.login_failure_rate;
        for c in s.clients.into_iter().take(self.cfg.max_clients) {
            self.members.insert(c.id, c.last_seen);
            match &mut self.stage {
                Stage::Inline(shard) => shard.restore_client(c),
                Stage::Sharded(pool) => pool.restore(self.stable.hash_one(c.id), c),
            }
        }
        match &mut self.stage {
            Stage::Inline(shard) => shard.population = self.population.clone(),
            Stage::Sharded(pool) => pool.set_population(&self.population),
        }
        self.inventory.late_discoveries = s.late_discoveries;
        self.inventory.endpoints = s
            .inventory
            .into_iter()
            .take(self.cfg.unusual_endpoint.max_endpoints)
            .collect();
    }
}

impl Snapshot {
    /// Cuts what the running configuration does not allow: clients and endpoints
    /// beyond its tables, sets beyond their caps, labels too long to be one (the
    /// entry goes), averages that are not numbers. Returns what was cut, counted.
    pub fn bound(&mut self, cfg: &super::DetectConfig) -> Vec<String> {
        use crate::routes::inventory::{CLIENT_CAP, STATUS_CAP, TOO_LONG, TYPE_CAP};
        let mut cut: Vec<(&str, usize)> = Vec::new();
        let mut count = |what: &'static str, n: usize| {
            if n > 0 {
                match cut.iter_mut().find(|(w, _)| *w == what) {
                    Some((_, c)) => *c += n,
                    None => cut.push((what, n)),
                }
            }
        };
        let max_profile = cfg.unusual_endpoint.max_profile;
        count(
            "clients beyond detect.max_clients",
            self.clients.len().saturating_sub(cfg.max_clients),
        );
        self.clients.truncate(cfg.max_clients);
        for c in &mut self.clients {
            count(
                "client routes beyond unusual_endpoint.max_profile",
                c.endpoints.len().saturating_sub(max_profile),
            );
            c.endpoints.truncate(max_profile);
            let cap = super::unusual_endpoint::SHADOW_CAP;
            count(
                "shadow routes beyond a client's cap",
                c.shadows.len().saturating_sub(cap),
            );
            c.shadows.truncate(cap);
            count(
                "averages that are not numbers",
                usize::from(c.baseline.sanitize()),
            );
        }
        count(
            "averages that are not numbers",
            usize::from(self.population.sanitize() | self.exfiltration.sanitize())
                + usize::from(self.login_failure_rate.sanitize()),
        );
        let max_endpoints = cfg.unusual_endpoint.max_endpoints;
        count(
            "endpoints beyond unusual_endpoint.max_endpoints",
            self.inventory.len().saturating_sub(max_endpoints),
        );
        self.inventory.truncate(max_endpoints);
        let before = self.inventory.len();
        self.inventory.retain(|(_, e)| e.endpoint != TOO_LONG);
        count("endpoint labels too long", before - self.inventory.len());
        for (_, e) in &mut self.inventory {
            for set in [&mut e.clients, &mut e.principals] {
                if set.len() > CLIENT_CAP {
                    count("endpoint clients beyond their cap", 1);
                    let keep: Vec<u64> = set.iter().copied().take(CLIENT_CAP).collect();
                    *set = keep.into_iter().collect();
                }
            }
            if e.statuses.len() > STATUS_CAP {
                count("endpoint status codes beyond their cap", 1);
                e.statuses = std::mem::take(&mut e.statuses)
                    .into_iter()
                    .take(STATUS_CAP)
                    .collect();
            }
            for set in [&mut e.request_types, &mut e.response_types] {
                count("content types too long", usize::from(set.remove(TOO_LONG)));
                if set.len() > TYPE_CAP {
                    count("content types beyond their cap", 1);
                    while set.len() > TYPE_CAP {
                        set.pop_last();
                    }
                }
            }
            if e.first_seen > e.last_seen {
                count("endpoints first seen after last seen", 1);
                e.first_seen = e.last_seen;
            }
        }
        cut.into_iter().map(|(w, n)| format!("{n} {w}")).collect()
    }
}

/// Writes `snap` to `path` atomically ([`crate::durable::write_atomic`]).
pub fn save(path: &Path, snap: &Snapshot) -> std::io::Result<()> {
    crate::durable::write_atomic(path, |w| {
        serde_json::to_writer(&mut *w, snap)?;
        w.write_all(b"\n")
    })
}

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    /// No state file yet: start fresh.
    Missing,
    Snapshot(Snapshot),
    /// Unusable; the file was moved to `moved_to` (or could not be).
    Discarded {
        why: String,
        moved_to: Option<String>,
    },
}

/// Loads a snapshot of at most `max_bytes` (`memory.limit`: a state larger than the
/// memory budget cannot be one that fits it); a corrupt, incompatible or oversized
/// file is moved aside.
pub fn load(path: &Path, max_bytes: u64) -> Loaded {
    let bytes = match read_bounded(path, max_bytes) {
        Ok(Some(b)) => b,
        Ok(None) => {
            let why = format!("larger than memory.limit ({} MiB)", max_bytes >> 20);
            return move_aside(path, why);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => {
            return Loaded::Discarded {
                why: format!("cannot read: {e}"),
                moved_to: None,
            };
        }
    };
    let why = match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(s) if s.version == VERSION => return Loaded::Snapshot(s),
        Ok(s) => format!("format version {} (this build reads {VERSION})", s.version),
        Err(e) => format!("not a state file: {e}"),
    };
    move_aside(path, why)
}

/// The file's bytes, `None` when there are more than `max` (by its length, before
/// reading, and while reading: it may grow).
fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = fs::File::open(path)?;
    if file.metadata()?.len() > max {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

fn move_aside(path: &Path, why: String) -> Loaded {
    let aside = format!("{}.corrupt-{}", path.display(), std::process::id());
    let moved_to = fs::rename(path, &aside).ok().map(|_| aside);
    Loaded::Discarded { why, moved_to }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::exchange;
    use crate::detect::{DetectConfig, Kind};

    const SEC: Nanos = 1_000_000_000;

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "apiwatch-state-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn learn(e: &mut Engine) {
        let mut out = Vec::new();
        for t in 0..400u64 {
            for c in 1..=6u8 {
                let ex = exchange(t * SEC + u64::from(c), c, "GET", "/api/items", Some(200));
                e.observe(&ex, &mut out);
            }
        }
        assert!(out.is_empty());
    }

    #[test]
    fn baselines_and_inventory_survive_a_round_trip() {
        let path = dir().join("state.json");
        let mut a = Engine::new(DetectConfig::default());
        learn(&mut a);
        save(&path, &a.snapshot(&mut Vec::new())).unwrap();
        let Loaded::Snapshot(s) = load(&path, 1 << 30) else {
            panic!("not loaded")
        };
        let mut b = Engine::new(DetectConfig::default());
        b.restore(s);
        assert_eq!(b.clients_tracked(), 6);
        assert_eq!(
            serde_json::to_string(&a.snapshot(&mut Vec::new())).unwrap(),
            serde_json::to_string(&b.snapshot(&mut Vec::new())).unwrap()
        );
        // The restored engine is past its learning period and knows the inventory:
        // a shadow endpoint is reported at once, the usual one is not.
        let mut out = Vec::new();
        b.observe(
            &exchange(401 * SEC, 1, "GET", "/api/items", Some(200)),
            &mut out,
        );
        assert!(out.is_empty());
        b.observe(
            &exchange(402 * SEC, 1, "GET", "/api/hidden", Some(200)),
            &mut out,
        );
        assert_eq!(
            out.iter().map(|a| a.finding.kind).collect::<Vec<_>>(),
            [Kind::UnusualEndpoint]
        );
    }

    /// A learned engine's snapshot as JSON, for a test to corrupt.
    fn learned_json() -> serde_json::Value {
        let mut a = Engine::new(DetectConfig::default());
        learn(&mut a);
        serde_json::to_value(a.snapshot(&mut Vec::new())).unwrap()
    }

    fn restored(v: &serde_json::Value) -> Engine {
        let s: Snapshot = serde_json::from_value(v.clone()).unwrap();
        let mut b = Engine::new(DetectConfig::default());
        b.restore(s);
        b
    }

    #[test]
    fn counters_at_their_maximum_saturate() {
        let mut v = learned_json();
        v["inventory"][0][1]["requests"] = u64::MAX.into();
        v["inventory"][0][1]["statuses"]["200"] = u64::MAX.into();
        v["clients"][0]["profile_requests"] = u64::MAX.into();
        v["clients"][0]["baseline"]["samples"] = u64::MAX.into();
        v["late_discoveries"] = u32::MAX.into();
        let mut b = restored(&v);
        let mut out = Vec::new();
        for c in 1..=6u8 {
            b.observe(
                &exchange(401 * SEC, c, "GET", "/api/items", Some(200)),
                &mut out,
            );
            b.observe(
                &exchange(470 * SEC, c, "GET", "/api/items", Some(200)),
                &mut out,
            );
        }
        let after = serde_json::to_value(b.snapshot(&mut out)).unwrap();
        assert_eq!(after["inventory"][0][1]["requests"], u64::MAX);
        assert_eq!(after["inventory"][0][1]["statuses"]["200"], u64::MAX);
        let c = after["clients"].as_array().unwrap();
        assert!(c.iter().any(|c| c["profile_requests"] == u64::MAX));
        assert!(c.iter().any(|c| c["baseline"]["samples"] == u64::MAX));
    }

    #[test]
    fn a_learning_clock_in_the_future_restarts_at_the_present_packet() {
        let mut v = learned_json();
        v["first_ts"] = u64::MAX.into();
        // A client and an endpoint last seen "forever from now".
        v["clients"][0]["last_seen"] = u64::MAX.into();
        v["clients"][0]["interval_start"] = u64::MAX.into();
        v["clients"][0]["profile_first_seen"] = u64::MAX.into();
        v["inventory"][0][1]["last_seen"] = u64::MAX.into();
        let mut b = restored(&v);
        let mut out = Vec::new();
        b.observe(
            &exchange(1000 * SEC, 1, "GET", "/api/items", Some(200)),
            &mut out,
        );
        let s = serde_json::to_value(b.snapshot(&mut out)).unwrap();
        assert_eq!(s["first_ts"], 1000 * SEC);
        assert_eq!(s["inventory"][0][1]["last_seen"], 1000 * SEC);
        let c = &s["clients"][0];
        assert_eq!(c["last_seen"], 1000 * SEC);
        assert_eq!(c["interval_start"], 1000 * SEC);
        assert_eq!(c["profile_first_seen"], 1000 * SEC);
        // Learning ends a learning period later: an unseen endpoint then is a shadow.
        b.observe(
            &exchange(1400 * SEC, 2, "GET", "/api/items", Some(200)),
            &mut out,
        );
        b.observe(
            &exchange(1401 * SEC, 2, "GET", "/api/hidden", Some(200)),
            &mut out,
        );
        assert_eq!(
            out.iter().map(|a| a.finding.kind).collect::<Vec<_>>(),
            [Kind::UnusualEndpoint]
        );
        // Within the slack, a time after the packet is a clock, kept.
        assert!(!in_future(1000 * SEC + FUTURE_SLACK, 1000 * SEC));
        assert!(in_future(1000 * SEC + FUTURE_SLACK + 1, 1000 * SEC));
    }

    #[test]
    fn sets_are_cut_to_their_caps_and_long_labels_dropped() {
        use crate::routes::inventory::{CLIENT_CAP, MAX_LABEL, TYPE_CAP};
        let mut v = learned_json();
        let hashes: Vec<u64> = (0..300_000).collect();
        v["inventory"][0][1]["clients"] = hashes.clone().into();
        v["inventory"][0][1]["principals"] = hashes.clone().into();
        let types: Vec<String> = (0..20).map(|i| format!("text/t{i}")).collect();
        v["inventory"][0][1]["request_types"] = types.into();
        v["inventory"][0][1]["response_types"] = vec!["x".repeat(10_000)].into();
        v["clients"][0]["endpoints"] = hashes.into();
        // A second endpoint with a label no request could make.
        let mut long = v["inventory"][0].clone();
        long[0] = 7u64.into();
        long[1]["endpoint"] = format!("GET /{}", "a".repeat(MAX_LABEL)).into();
        v["inventory"].as_array_mut().unwrap().push(long);
        v["clients"][1]["baseline"]["mean"] = (-5.0).into();
        let text = v.to_string();
        let mut s: Snapshot = serde_json::from_str(&text).unwrap();
        // Read no further than one past the cap.
        assert_eq!(s.inventory[0].1.clients.len(), CLIENT_CAP + 1);
        let cut = s.bound(&DetectConfig::default());
        assert_eq!(
            cut,
            [
                "298976 client routes beyond unusual_endpoint.max_profile",
                "1 averages that are not numbers",
                "1 endpoint labels too long",
                "2 endpoint clients beyond their cap",
                "1 content types beyond their cap",
                "1 content types too long",
            ]
        );
        let e = &s.inventory[0].1;
        assert_eq!(e.clients.len(), CLIENT_CAP);
        assert_eq!(e.principals.len(), CLIENT_CAP);
        assert_eq!(e.request_types.len(), TYPE_CAP);
        assert!(e.response_types.is_empty());
        assert_eq!(s.inventory.len(), 1);
        assert_eq!(s.clients[0].endpoints.len(), 1024);
        assert_eq!(
            s.clients[1].baseline,
            crate::detect::window::Ewma::default()
        );
        // A second pass finds nothing more to cut.
        assert!(s.bound(&DetectConfig::default()).is_empty());
    }

    #[test]
    fn a_state_file_larger_than_the_memory_limit_is_moved_aside_unread() {
        let d = dir();
        let path = d.join("huge.json");
        let mut e = Engine::new(DetectConfig::default());
        save(&path, &e.snapshot(&mut Vec::new())).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        assert!(matches!(load(&path, len), Loaded::Snapshot(_)));
        match load(&path, len - 1) {
            Loaded::Discarded {
                why,
                moved_to: Some(m),
            } => {
                assert!(why.contains("larger than memory.limit"), "{why}");
                assert!(Path::new(&m).exists() && !path.exists());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn corrupt_or_incompatible_files_are_moved_aside() {
        let d = dir();
        let path = d.join("bad.json");
        fs::write(&path, b"{ this is not json").unwrap();
        match load(&path, 1 << 30) {
            Loaded::Discarded {
                moved_to: Some(m),
                why,
            } => {
                assert!(why.contains("not a state file"), "{why}");
                assert!(Path::new(&m).exists());
                assert!(!path.exists());
            }
            other => panic!("{other:?}"),
        }
        let mut e = Engine::new(DetectConfig::default());
        let mut s = serde_json::to_value(e.snapshot(&mut Vec::new())).unwrap();
        s["version"] = serde_json::json!(999);
        fs::write(&path, s.to_string()).unwrap();
        match load(&path, 1 << 30) {
            Loaded::Discarded { why, .. } => assert!(why.contains("999"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            load(&d.join("none.json"), 1 << 30),
            Loaded::Missing
        ));
    }
}
