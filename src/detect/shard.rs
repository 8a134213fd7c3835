//! The engine's per-client half: each client's detector state, its alert episodes
//! (one alert per client and kind, re-reported at most once per cooldown, sooner
//! for evidence of a new kind) and the samples alerts carry. A [`Shard`] holds the
//! clients of one shard and runs their detectors on routed exchanges.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use super::engine::Routed;
use super::{
    Alert, DetectConfig, Finding, Kind, Novelty, Obs, Prehashed, Sample, burst, endpoint_scan,
    exfiltration, login, object_enumeration, state, unusual_endpoint,
};
use crate::http::Exchange;
use crate::identity::ClientId;
use crate::time::Nanos;

#[derive(Debug, Clone, Copy)]
pub(super) struct Episode {
    pub(super) start: Nanos,
    pub(super) last_hit: Nanos,
    pub(super) last_report: Nanos,
    pub(super) reports: u32,
    /// The kinds of evidence reported in this episode (see [`Novelty::Kind`]; 0:
    /// free): evidence of a new kind is reported within the cooldown, up to this
    /// many kinds an episode.
    pub(super) kinds: [u64; 3],
}

impl Episode {
    /// An episode opened at `ts`, not reported yet.
    pub(super) fn new(ts: Nanos) -> Self {
        Episode {
            start: ts,
            last_hit: ts,
            last_report: ts,
            reports: 0,
            kinds: [0; 3],
        }
    }
}

pub(super) struct Client {
    pub(super) key: String,
    pub(super) last_seen: Nanos,
    pub(super) burst: burst::State,
    pub(super) login: login::State,
    pub(super) scan: endpoint_scan::State,
    pub(super) enumeration: object_enumeration::State,
    pub(super) exfiltration: exfiltration::State,
    pub(super) profile: unusual_endpoint::Profile,
    pub(super) recent: std::collections::VecDeque<Sample>,
    pub(super) episodes: HashMap<Kind, Episode, Prehashed>,
    /// What the client held when last measured (counted in its shard's total).
    pub(super) bytes: usize,
    /// Exchanges judged: the client is measured every [`MEASURE_EVERY`].
    pub(super) judged: u32,
}

/// A client's memory is measured on its first exchange and every this many after
/// (between two measurements it grows by at most this many requests' windows).
const MEASURE_EVERY: u32 = 16;

impl Client {
    pub(super) fn new(cfg: &DetectConfig, id: ClientId, now: Nanos) -> Self {
        Client {
            key: id.key(),
            last_seen: now,
            burst: Default::default(),
            login: login::State::new(&cfg.login),
            scan: endpoint_scan::State::new(&cfg.endpoint_scan),
            enumeration: Default::default(),
            exfiltration: Default::default(),
            profile: Default::default(),
            recent: Default::default(),
            episodes: HashMap::default(),
            bytes: 0,
            judged: 0,
        }
    }

    /// Bytes the client holds: its table slot, its key, every detector's windows.
    pub(super) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<(ClientId, Client)>()
            + self.key.capacity()
            + self.burst.heap_bytes()
            + self.login.heap_bytes()
            + self.scan.heap_bytes()
            + self.enumeration.heap_bytes()
            + self.exfiltration.heap_bytes()
            + self.profile.heap_bytes()
            + self.recent.capacity() * std::mem::size_of::<Sample>()
            + self.episodes.capacity() * (std::mem::size_of::<(Kind, Episode)>() + 1)
    }
}

/// The per-client half of the engine: the clients of one shard and their detectors.
/// It reads the population baseline as of the last epoch and hands back what its
/// clients contribute to it.
pub(crate) struct Shard {
    pub(super) cfg: DetectConfig,
    pub(super) clients: HashMap<ClientId, Client, foldhash::fast::RandomState>,
    pub(super) hasher: foldhash::fast::RandomState,
    pub(super) population: burst::Population,
    /// (exchange number, requests in a finished interval), for the next epoch.
    pub(super) contributions: Vec<(u64, super::burst::Contribution)>,
    pub(super) now: Nanos,
    /// What its clients held when last measured.
    pub(super) bytes: usize,
}

impl Shard {
    pub(super) fn new(cfg: DetectConfig, hasher: foldhash::fast::RandomState) -> Self {
        Shard {
            cfg,
            clients: HashMap::default(),
            hasher,
            population: Default::default(),
            contributions: Vec::new(),
            now: 0,
            bytes: 0,
        }
    }

    /// Forgets a client (evicted by the engine).
    pub(super) fn forget(&mut self, id: &ClientId) {
        if let Some(c) = self.clients.remove(id) {
            self.bytes = self.bytes.saturating_sub(c.bytes);
        }
    }

    /// Measures a client again (see [`MEASURE_EVERY`]).
    pub(super) fn measure(bytes: &mut usize, client: &mut Client) {
        let b = client.heap_bytes();
        *bytes = bytes.saturating_sub(client.bytes) + b;
        client.bytes = b;
    }

    /// Runs the client's detectors on one exchange; its alerts go to `out`.
    /// Lent the routing (not moved: a copy per exchange), its labels taken.
    pub(super) fn judge(&mut self, r: &mut Routed, ex: &Exchange, out: &mut Vec<Alert>) {
        let (seq, id, ip) = (r.seq, r.id, r.ip);
        let path = r.normalized.as_deref().ok_or(r.path_len);
        let (template, endpoint) = (
            std::mem::take(&mut r.template),
            std::mem::take(&mut r.endpoint),
        );
        let Some(obs) = Obs::routed(ex, template, endpoint, path) else {
            return;
        };
        self.now = self.now.max(obs.ts);
        let cfg = &self.cfg;
        let hasher = self.hasher.clone();
        let hash = move |b: &[u8]| hasher.hash_one(b);
        let client = self
            .clients
            .entry(id)
            .or_insert_with(|| Client::new(cfg, id, obs.ts));
        client.last_seen = state::not_after(client.last_seen, obs.ts).max(obs.ts);
        if client.recent.len() == 5 {
            client.recent.pop_front();
        }
        client.recent.push_back(Sample {
            method: obs.method.into(),
            path: obs.template.as_str().into(),
            status: obs.status,
        });

        let mut findings = Vec::new();
        let bursting = client.episodes.contains_key(&Kind::Burst);
        let mut contribution = None;
        findings.extend(burst::observe(
            &cfg.burst,
            &mut client.burst,
            &self.population,
            &obs,
            bursting,
            &mut contribution,
            next_report(cfg, client.episodes.get(&Kind::Burst).copied(), obs.ts).is_some(),
        ));
        if let Some(x) = contribution {
            self.contributions
                .push((seq, burst::Contribution::Requests(x)));
        }
        if let Some(a) = r.attempt {
            let episodes = &client.episodes;
            findings.extend(login::observe(
                &cfg.login,
                &mut client.login,
                &obs,
                a,
                r.extra_attempts.as_deref().unwrap_or(&[]),
                |k| next_report(cfg, episodes.get(&k).copied(), obs.ts).is_some(),
            ));
        }
        findings.extend(endpoint_scan::observe(
            &cfg.endpoint_scan,
            &mut client.scan,
            &obs,
            r.path_hash,
            r.seen.known,
        ));
        let enum_reportable = next_report(
            cfg,
            client.episodes.get(&Kind::ObjectEnumeration).copied(),
            obs.ts,
        )
        .is_some();
        findings.extend(object_enumeration::observe(
            &cfg.object_enumeration,
            &mut client.enumeration,
            &obs,
            r.endpoint_hash,
            &hash,
            enum_reportable,
        ));
        let mut taken = Vec::new();
        let episodes = &client.episodes;
        let exfil_reportable =
            || next_report(cfg, episodes.get(&Kind::DataExfiltration).copied(), obs.ts).is_some();
        findings.extend(exfiltration::observe(
            &cfg.data_exfiltration,
            &mut client.exfiltration,
            &self.population.exfiltration,
            &obs,
            r.query(ex),
            r.endpoint_hash,
            &hash,
            &mut taken,
            &exfil_reportable,
        ));
        self.contributions.extend(
            taken
                .into_iter()
                .map(|c| (seq, burst::Contribution::Exfiltration(c))),
        );
        findings.extend(unusual_endpoint::profile(
            &cfg.unusual_endpoint,
            &mut client.profile,
            &obs,
            unusual_endpoint::ClientSide {
                endpoint_hash: r.endpoint_hash,
                seen: std::mem::take(&mut r.seen),
                clients_known: r.clients_known,
                learning_end: r.learning_end,
                objects: r.objects.as_slice(),
                others_objects: r.others_objects,
            },
        ));
        // What the client was handed is its own from now on: the account it logged
        // in as, the objects it created.
        if let Some(login::Attempt {
            user: Some(u),
            failed: false,
        }) = r.attempt
        {
            client.profile.touch(u);
        }
        if matches!(obs.method, "POST" | "PUT") && matches!(obs.status, Some(200..=299)) {
            object_enumeration::created_ids(ex, |v| client.profile.touch(hash(v)));
        }
        // Listings and syncs hand out what is the client's (an object's own GET
        // does not: its keys are field names).
        if matches!(obs.status, Some(200..=299)) && !obs.template.ends_with('}') {
            object_enumeration::handed_keys(ex, |v| client.profile.touch(hash(v)));
        }

        for f in findings {
            let ep = client.episodes.get(&f.kind).copied();
            let kind_of = match f.novelty {
                Novelty::Kind(k) => Some(k),
                _ => None,
            };
            // Within the cooldown, evidence of a new kind is still reported, and a
            // finding the detector raises only once (a route outside the spec, per
            // client) always is: an episode going on does not hold it back.
            let escalated = || {
                let e = ep?;
                match f.novelty {
                    Novelty::Always => Some(e.reports + 1),
                    Novelty::Kind(k) => {
                        (!e.kinds.contains(&k) && e.kinds.contains(&0)).then_some(e.reports + 1)
                    }
                    Novelty::Repeat => None,
                }
            };
            let Some(report) = next_report(cfg, ep, obs.ts).or_else(escalated) else {
                if let Some(e) = client.episodes.get_mut(&f.kind) {
                    e.last_hit = obs.ts;
                }
                continue;
            };
            let e = client
                .episodes
                .entry(f.kind)
                .or_insert(Episode::new(obs.ts));
            if report == 1 {
                *e = Episode {
                    reports: 1,
                    ..Episode::new(obs.ts)
                };
            } else {
                e.last_hit = obs.ts;
                e.last_report = obs.ts;
                e.reports = report;
            }
            if let Some(k) = kind_of
                && !e.kinds.contains(&k)
                && let Some(free) = e.kinds.iter_mut().find(|k| **k == 0)
            {
                *free = k;
            }
            let start = e.start;
            out.push(make_alert(
                &obs,
                Some((ip, client.key.clone())),
                f,
                client.recent.iter().cloned().collect(),
                report,
                start,
            ));
        }
        // Episodes that went quiet are over.
        client
            .episodes
            .retain(|_, e| obs.ts < e.last_hit.saturating_add(cfg.episode_gap));
        if client.judged.is_multiple_of(MEASURE_EVERY) {
            Self::measure(&mut self.bytes, client);
        }
        client.judged = client.judged.wrapping_add(1);
    }

    /// Client episodes going on at `now`, by kind.
    pub(super) fn episodes(&self, now: Nanos) -> HashMap<Kind, usize> {
        let mut counts: HashMap<Kind, usize> = HashMap::new();
        for c in self.clients.values() {
            for (k, e) in &c.episodes {
                if now < e.last_hit.saturating_add(self.cfg.episode_gap) {
                    *counts.entry(*k).or_default() += 1;
                }
            }
        }
        counts
    }
}

/// Whether a finding at `now` is reported, and as which report of its episode.
pub(super) fn next_report(cfg: &DetectConfig, ep: Option<Episode>, now: Nanos) -> Option<u32> {
    match ep {
        None => Some(1),
        Some(e) if now >= e.last_hit.saturating_add(cfg.episode_gap) => Some(1),
        Some(e) if now >= e.last_report.saturating_add(cfg.cooldown) => Some(e.reports + 1),
        Some(_) => None,
    }
}

pub(super) fn make_alert(
    obs: &Obs<'_>,
    client: Option<(IpAddr, String)>,
    f: Finding,
    samples: Vec<Sample>,
    report: u32,
    start: Nanos,
) -> Alert {
    let ex = obs.ex;
    let (client_ip, client_key) = client.unzip();
    Alert {
        ts: obs.ts,
        finding: f,
        client_ip,
        client_key,
        client_port: ex.client_port,
        conn_ip: ex.client_ip,
        trans_depth: ex.trans_depth,
        flow: ex.flow,
        server_ip: ex.server_ip,
        server_port: ex.server_port,
        host: ex.request_headers.host.as_deref().map(str::to_owned),
        uri: ex.uri.as_deref().map(str::to_owned),
        method: ex.method.as_deref().map(str::to_owned),
        status: ex.status,
        tls: false,
        samples,
        report,
        episode_start: start,
    }
}
