//! Persistence: the learned baselines and the endpoint inventory survive a restart.
//!
//! A snapshot is JSON with a format version, written atomically (temporary file in
//! the same directory, fsync, rename) periodically and at shutdown, and loaded at
//! start. Short-term windows (the last minute of logins, scans...) are not kept: an
//! attack does not span a restart in a way they would catch. A file that cannot be
//! read as a snapshot of this version is moved aside with a warning and the engine
//! starts fresh.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::window::Ewma;
use super::{Client, Engine, Shard, Stage};
use crate::identity::ClientId;
use crate::routes::inventory::EndpointInfo;
use crate::time::Nanos;
use std::hash::BuildHasher;

/// Bumped whenever the layout or the meaning of a field changes.
pub const VERSION: u32 = 1;

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
        self.clients.insert(c.id, client);
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
            login_failure_rate: self.global_login.rate,
            clients: clients.clients,
            inventory,
            late_discoveries: self.inventory.late_discoveries,
        }
    }

    /// Continues from a snapshot (on an engine that has seen nothing yet).
    pub fn restore(&mut self, s: Snapshot) {
        self.first_ts = s.first_ts;
        if !self.cfg.identity.salt_configured {
            self.cfg.identity.salt = s.salt;
        }
        self.population.per_client = s.population;
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

/// Loads a snapshot; a corrupt or incompatible file is moved aside.
pub fn load(path: &Path) -> Loaded {
    let bytes = match fs::read(path) {
        Ok(b) => b,
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
        let Loaded::Snapshot(s) = load(&path) else {
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

    #[test]
    fn corrupt_or_incompatible_files_are_moved_aside() {
        let d = dir();
        let path = d.join("bad.json");
        fs::write(&path, b"{ this is not json").unwrap();
        match load(&path) {
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
        match load(&path) {
            Loaded::Discarded { why, .. } => assert!(why.contains("999"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(load(&d.join("none.json")), Loaded::Missing));
    }
}
