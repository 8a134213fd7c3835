//! Detection: per-client baselines over the exchanges the pipeline reconstructs.
//!
//! The [`Engine`] sees every exchange in order, on packet time. It keeps a bounded
//! table of clients (least recently seen evicted, counted), each with the state of
//! every detector, plus population-wide state (rates, endpoint inventory, global
//! login failures). Detectors return [`Finding`]s; the engine turns them into alerts
//! with one alert per episode (client, kind), re-reported at most once per cooldown.
//! Everything runs on packet time, so a capture gives the same alerts on every run.

pub mod burst;
pub mod endpoint_scan;
pub mod login;
pub mod object_enumeration;
pub mod state;
pub mod templates;
pub mod unusual_endpoint;
pub mod window;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::capture::Nanos;
use crate::http::Exchange;
use crate::identity::{self, ClientId};

const SEC: Nanos = 1_000_000_000;

/// What an alert is about. Each kind has one stable Suricata-style signature id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Burst,
    CredentialStuffing,
    BruteForce,
    EndpointScan,
    UnusualEndpoint,
    ObjectEnumeration,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Burst,
        Kind::CredentialStuffing,
        Kind::BruteForce,
        Kind::EndpointScan,
        Kind::UnusualEndpoint,
        Kind::ObjectEnumeration,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Burst => "burst",
            Kind::CredentialStuffing => "credential_stuffing",
            Kind::BruteForce => "brute_force",
            Kind::EndpointScan => "endpoint_scan",
            Kind::UnusualEndpoint => "unusual_endpoint",
            Kind::ObjectEnumeration => "object_enumeration",
        }
    }

    pub fn signature_id(self) -> u32 {
        9_100_001 + self as u32
    }

    pub fn category(self) -> &'static str {
        match self {
            Kind::Burst => "Request Burst",
            Kind::CredentialStuffing => "Credential Stuffing",
            Kind::BruteForce => "Brute Force",
            Kind::EndpointScan => "Endpoint Scan",
            Kind::UnusualEndpoint => "Unusual Endpoint Access",
            Kind::ObjectEnumeration => "Object Enumeration",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Burst => "request burst",
            Kind::CredentialStuffing => "credential stuffing",
            Kind::BruteForce => "brute force",
            Kind::EndpointScan => "endpoint scan",
            Kind::UnusualEndpoint => "unusual endpoint access",
            Kind::ObjectEnumeration => "object enumeration",
        }
    }
}

/// The request being judged, with what every detector needs precomputed.
#[derive(Debug)]
pub struct Obs<'a> {
    pub ts: Nanos,
    pub ex: &'a Exchange,
    pub method: &'a str,
    /// Request path without query.
    pub path: &'a str,
    pub template: String,
    /// Method plus template, e.g. `GET /users/{id}`.
    pub endpoint: String,
    pub status: Option<u16>,
}

impl<'a> Obs<'a> {
    /// `template`: the path template (learned by the engine's templater, or the
    /// stateless one when none is given).
    pub fn new(ex: &'a Exchange, template: Option<String>) -> Option<Self> {
        let method = ex.method.as_deref()?;
        let uri = ex.uri.as_deref().unwrap_or("/");
        let path = uri.split(['?', '#']).next().unwrap_or("/");
        let template = template.unwrap_or_else(|| templates::template(uri));
        let endpoint = format!("{} {template}", method.to_ascii_uppercase());
        Some(Obs {
            ts: ex.ts,
            ex,
            method,
            path,
            template,
            endpoint,
            status: ex.status,
        })
    }
}

/// What a detector found: the numbers that made it fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    pub endpoint: Option<String>,
    pub summary: String,
    pub evidence: serde_json::Value,
    /// 1 (high) to 3 (low), as in Suricata.
    pub severity: u8,
    /// For global findings: the top contributing clients.
    pub clients: Option<Vec<String>>,
}

/// One request kept as a sample for an alert (never a secret: templated path only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
}

/// An alert ready to be written.
#[derive(Debug, Clone)]
pub struct Alert {
    pub ts: Nanos,
    pub finding: Finding,
    /// `None` for a global alert.
    pub client_ip: Option<IpAddr>,
    /// The client's key (`ip:...`, `bearer:...`); `None` for a global alert.
    pub client_key: Option<String>,
    pub client_port: u16,
    pub server_ip: IpAddr,
    pub server_port: u16,
    pub host: Option<String>,
    pub uri: Option<String>,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub samples: Vec<Sample>,
    /// 1 for the first report of an episode, 2+ for re-reports after cooldown.
    pub report: u32,
    pub episode_start: Nanos,
}

/// Engine settings (config `[detect]`).
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// Packet time after the first exchange before novelty alerts (`--learning-period`).
    pub learning_period: Nanos,
    /// An episode still going on is re-reported at most this often.
    pub cooldown: Nanos,
    /// Quiet time that ends an episode.
    pub episode_gap: Nanos,
    /// Clients tracked at once.
    pub max_clients: usize,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` are believed.
    pub trusted_proxies: Vec<identity::Cidr>,
    /// What a client is: address, IPv6 prefix or hashed principal.
    pub identity: identity::IdentityConfig,
    /// Where baselines and the inventory are saved and loaded (none: not kept).
    pub state_file: Option<std::path::PathBuf>,
    /// Packet time between snapshots of the state file.
    pub snapshot_interval: Nanos,
    pub burst: burst::Config,
    pub login: login::Config,
    pub endpoint_scan: endpoint_scan::Config,
    pub object_enumeration: object_enumeration::Config,
    pub unusual_endpoint: unusual_endpoint::Config,
    pub templates: templates::LearnConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            learning_period: 300 * SEC,
            cooldown: 600 * SEC,
            episode_gap: 120 * SEC,
            max_clients: 100_000,
            trusted_proxies: Vec::new(),
            identity: identity::IdentityConfig {
                ipv6_prefix: 128,
                ..Default::default()
            },
            state_file: None,
            snapshot_interval: 300 * SEC,
            burst: Default::default(),
            login: Default::default(),
            endpoint_scan: Default::default(),
            object_enumeration: Default::default(),
            unusual_endpoint: Default::default(),
            templates: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Episode {
    start: Nanos,
    last_hit: Nanos,
    last_report: Nanos,
    reports: u32,
}

struct Client {
    key: String,
    last_seen: Nanos,
    burst: burst::State,
    login: login::State,
    scan: endpoint_scan::State,
    enumeration: object_enumeration::State,
    profile: unusual_endpoint::Profile,
    recent: std::collections::VecDeque<Sample>,
    episodes: HashMap<Kind, Episode>,
}

impl Client {
    fn new(cfg: &DetectConfig, id: ClientId, now: Nanos) -> Self {
        Client {
            key: id.key(),
            last_seen: now,
            burst: Default::default(),
            login: login::State::new(&cfg.login),
            scan: endpoint_scan::State::new(&cfg.endpoint_scan),
            enumeration: Default::default(),
            profile: Default::default(),
            recent: Default::default(),
            episodes: HashMap::new(),
        }
    }
}

/// Detection counters.
#[derive(Debug, Default, Clone)]
pub struct DetectStats {
    pub exchanges: u64,
    pub alerts: HashMap<(Kind, u8), u64>,
    pub clients_evicted: u64,
    pub endpoints_evicted: u64,
    pub templates_evicted: u64,
}

/// The detection engine of one shard of clients (all of them with one worker).
pub struct Engine {
    cfg: DetectConfig,
    clients: HashMap<ClientId, Client, foldhash::fast::RandomState>,
    /// Hashes that identify clients and endpoints: fixed, so a saved state means the
    /// same thing after a restart.
    stable: foldhash::fast::FixedState,
    /// Keyed per run: usernames and object ids (never persisted, never written).
    hasher: foldhash::fast::RandomState,
    first_ts: Option<Nanos>,
    /// Latest packet time seen.
    now: Nanos,
    templater: templates::Templater,
    population: burst::Population,
    inventory: unusual_endpoint::Inventory,
    global_login: login::Global,
    global_episode: Option<Episode>,
    /// Client hash → client, kept only for clients with failed logins: it names the
    /// top contributors of a distributed-stuffing alert.
    failed_login_clients: HashMap<u64, ClientId>,
    pub stats: DetectStats,
}

impl Engine {
    pub fn new(mut cfg: DetectConfig) -> Self {
        if !cfg.identity.salt_configured {
            cfg.identity.salt = identity::IdentityConfig::random_salt();
        }
        Engine {
            global_login: login::Global::new(&cfg.login),
            templater: templates::Templater::new(cfg.templates.clone()),
            cfg,
            clients: HashMap::default(),
            stable: foldhash::fast::FixedState::with_seed(0x6170_6977_6174_6368),
            hasher: foldhash::fast::RandomState::default(),
            first_ts: None,
            now: 0,
            population: Default::default(),
            inventory: Default::default(),
            global_episode: None,
            failed_login_clients: HashMap::new(),
            stats: Default::default(),
        }
    }

    pub fn clients_tracked(&self) -> usize {
        self.clients.len()
    }

    /// Alert episodes going on, by kind (client episodes plus the global one).
    pub fn active_episodes(&self) -> Vec<(Kind, usize)> {
        let mut counts: HashMap<Kind, usize> = HashMap::new();
        let live = |e: &Episode| self.now < e.last_hit + self.cfg.episode_gap;
        for c in self.clients.values() {
            for (k, e) in &c.episodes {
                if live(e) {
                    *counts.entry(*k).or_default() += 1;
                }
            }
        }
        if self.global_episode.as_ref().is_some_and(live) {
            *counts.entry(Kind::CredentialStuffing).or_default() += 1;
        }
        let mut v: Vec<(Kind, usize)> = counts.into_iter().collect();
        v.sort();
        v
    }

    /// Endpoints in the inventory.
    pub fn endpoints_learned(&self) -> usize {
        self.inventory.endpoints.len()
    }

    /// Judges one exchange; alerts are appended to `out`.
    /// Judges one exchange; alerts are appended to `out`. Returns the exchange's
    /// endpoint (method plus learned template) and client for the exchange log.
    pub fn observe(&mut self, ex: &Exchange, out: &mut Vec<Alert>) -> Option<(String, ClientId)> {
        ex.method.as_ref()?;
        let template = self
            .templater
            .template(ex.uri.as_deref().unwrap_or("/"), ex.status);
        self.stats.templates_evicted = self.templater.evicted;
        let obs = Obs::new(ex, Some(template))?;
        self.stats.exchanges += 1;
        self.now = self.now.max(obs.ts);
        let first = *self.first_ts.get_or_insert(obs.ts);
        let learning_end = first + self.cfg.learning_period;
        let ip = identity::client_ip(ex, &self.cfg.trusted_proxies);
        let id = identity::client_id(ex, ip, &self.cfg.identity);
        if !self.clients.contains_key(&id) && self.clients.len() >= self.cfg.max_clients {
            self.evict();
        }
        let cfg = &self.cfg;
        let client_hash = self.stable.hash_one(id);
        let endpoint_hash = self.stable.hash_one(obs.endpoint.as_bytes());
        let path_hash = self.stable.hash_one(obs.path.as_bytes());
        let hasher = self.hasher.clone();
        let hash = move |b: &[u8]| hasher.hash_one(b);
        let clients_known = self.clients.len();
        let client = self
            .clients
            .entry(id)
            .or_insert_with(|| Client::new(cfg, id, obs.ts));
        client.last_seen = client.last_seen.max(obs.ts);
        if client.recent.len() == 5 {
            client.recent.pop_front();
        }
        client.recent.push_back(Sample {
            method: obs.method.to_string(),
            path: obs.template.clone(),
            status: obs.status,
        });

        let mut findings = Vec::new();
        let bursting = client.episodes.contains_key(&Kind::Burst);
        findings.extend(burst::observe(
            &cfg.burst,
            &mut client.burst,
            &mut self.population,
            &obs,
            bursting,
        ));
        let mut global = None;
        if let Some(a) = login::attempt(&cfg.login, &obs, &hash) {
            findings.extend(login::observe(&cfg.login, &mut client.login, &obs, a));
            if a.failed {
                if self.failed_login_clients.len() >= 4 * cfg.max_clients {
                    self.failed_login_clients.clear();
                }
                self.failed_login_clients.insert(client_hash, id);
            }
            let names = &self.failed_login_clients;
            global = login::observe_global(
                &cfg.login,
                &mut self.global_login,
                &obs,
                client_hash,
                a,
                &|h| names.get(&h).map(ClientId::key),
            );
        }
        findings.extend(endpoint_scan::observe(
            &cfg.endpoint_scan,
            &mut client.scan,
            &obs,
            path_hash,
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
            endpoint_hash,
            &hash,
            enum_reportable,
        ));
        findings.extend(unusual_endpoint::observe(
            &cfg.unusual_endpoint,
            &mut self.inventory,
            &mut client.profile,
            &obs,
            endpoint_hash,
            client_hash,
            clients_known,
            (learning_end - self.cfg.learning_period / 2, learning_end),
        ));
        self.stats.endpoints_evicted = self.inventory.evicted;

        for f in findings {
            let ep = client.episodes.get(&f.kind).copied();
            let Some(report) = next_report(cfg, ep, obs.ts) else {
                if let Some(e) = client.episodes.get_mut(&f.kind) {
                    e.last_hit = obs.ts;
                }
                continue;
            };
            let e = client.episodes.entry(f.kind).or_insert(Episode {
                start: obs.ts,
                last_hit: obs.ts,
                last_report: obs.ts,
                reports: 0,
            });
            if report == 1 {
                *e = Episode {
                    start: obs.ts,
                    last_hit: obs.ts,
                    last_report: obs.ts,
                    reports: 1,
                };
            } else {
                e.last_hit = obs.ts;
                e.last_report = obs.ts;
                e.reports = report;
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
            .retain(|_, e| obs.ts < e.last_hit + cfg.episode_gap);

        if let Some(f) = global {
            if let Some(report) = next_report(cfg, self.global_episode, obs.ts) {
                let e = self.global_episode.get_or_insert(Episode {
                    start: obs.ts,
                    last_hit: obs.ts,
                    last_report: obs.ts,
                    reports: 0,
                });
                if report == 1 {
                    e.start = obs.ts;
                }
                e.last_hit = obs.ts;
                e.last_report = obs.ts;
                e.reports = report;
                let start = e.start;
                out.push(make_alert(&obs, None, f, Vec::new(), report, start));
            } else if let Some(e) = self.global_episode.as_mut() {
                e.last_hit = obs.ts;
            }
        }
        if self
            .global_episode
            .is_some_and(|e| obs.ts >= e.last_hit + cfg.episode_gap)
        {
            self.global_episode = None;
        }
        Some((obs.endpoint, id))
    }

    /// Time passed without exchanges (live capture on a quiet wire): episodes that
    /// went quiet end, so the active-episode gauges fall back.
    pub fn advance(&mut self, now: Nanos) {
        self.now = self.now.max(now);
    }

    /// Counts alerts produced by [`Engine::observe`] (kept separate so callers that
    /// filter alerts count what they write).
    pub fn count(&mut self, a: &Alert) {
        *self
            .stats
            .alerts
            .entry((a.finding.kind, a.finding.severity))
            .or_default() += 1;
    }

    fn evict(&mut self) {
        let n = crate::lru::batch(self.cfg.max_clients);
        for k in crate::lru::oldest(&self.clients, n, |c| c.last_seen) {
            self.clients.remove(&k);
            self.stats.clients_evicted += 1;
        }
    }
}

/// Whether a finding at `now` is reported, and as which report of its episode.
fn next_report(cfg: &DetectConfig, ep: Option<Episode>, now: Nanos) -> Option<u32> {
    match ep {
        None => Some(1),
        Some(e) if now >= e.last_hit + cfg.episode_gap => Some(1),
        Some(e) if now >= e.last_report + cfg.cooldown => Some(e.reports + 1),
        Some(_) => None,
    }
}

fn make_alert(
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
        server_ip: ex.server_ip,
        server_port: ex.server_port,
        host: ex.request_headers.host.clone(),
        uri: ex.uri.clone(),
        method: ex.method.clone(),
        status: ex.status,
        samples,
        report,
        episode_start: start,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// An exchange owned by a test, from which an [`Obs`] borrows.
    pub struct Owned {
        pub ex: Exchange,
    }

    impl Owned {
        pub fn obs(&self) -> Obs<'_> {
            Obs::new(&self.ex, None).unwrap()
        }

        pub fn no_status(mut self) -> Self {
            self.ex.status = None;
            self
        }
    }

    pub fn exchange(
        ts: Nanos,
        client: u8,
        method: &str,
        uri: &str,
        status: Option<u16>,
    ) -> Exchange {
        Exchange {
            ts,
            client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, client)),
            client_port: 40000,
            server_ip: IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)),
            server_port: 80,
            trans_depth: 1,
            method: Some(method.to_string()),
            uri: Some(uri.to_string()),
            version: Some("1.1".into()),
            request_headers: Default::default(),
            request_body_len: 0,
            request_body_prefix: Vec::new(),
            response_body_prefix: Vec::new(),
            status,
            response_headers: None,
            response_body_len: Some(0),
            response_ts: Some(ts + 1_000_000),
            incomplete: false,
        }
    }

    /// A deterministic stand-in for the engine's keyed hash.
    pub fn test_hash(b: &[u8]) -> u64 {
        b.iter()
            .fold(7u64, |a, c| a.wrapping_mul(31).wrapping_add(u64::from(*c)))
    }

    pub fn obs_at(ts: Nanos, method: &str, uri: &str, status: Option<u16>) -> Owned {
        Owned {
            ex: exchange(ts, 1, method, uri, status),
        }
    }

    #[test]
    fn signature_ids_are_stable_and_distinct() {
        let ids: Vec<u32> = Kind::ALL.iter().map(|k| k.signature_id()).collect();
        assert_eq!(ids, [9100001, 9100002, 9100003, 9100004, 9100005, 9100006]);
    }

    #[test]
    fn one_alert_per_episode_and_a_re_report_after_cooldown() {
        let mut e = Engine::new(DetectConfig::default());
        let mut out = Vec::new();
        // A wordlist scan that goes on for 15 minutes at 20 req/s.
        for i in 0..(15 * 60 * 20u64) {
            let ex = exchange(SEC + i * SEC / 20, 66, "GET", &format!("/w{i}"), Some(404));
            e.observe(&ex, &mut out);
        }
        let scans: Vec<&Alert> = out
            .iter()
            .filter(|a| a.finding.kind == Kind::EndpointScan)
            .collect();
        assert_eq!(
            scans.len(),
            2,
            "first report plus one after the 10-minute cooldown"
        );
        assert_eq!(scans[1].report, 2);
        assert!(scans[0].ts < 3 * SEC, "fired within 2 s of the start");
    }

    #[test]
    fn benign_mixed_traffic_raises_nothing() {
        let mut e = Engine::new(DetectConfig::default());
        let mut out = Vec::new();
        // 30 clients for 20 minutes: each a request every 2-5 s over a handful of
        // endpoints, an occasional 404 and a mistyped password.
        let endpoints = [
            "/api/items",
            "/api/items/17",
            "/api/cart",
            "/api/profile",
            "/static/app.js",
        ];
        for t in 0..(20 * 60u64) {
            for c in 0..30u8 {
                if (t + c as u64) % (2 + c as u64 % 4) != 0 {
                    continue;
                }
                let i = (t as usize + c as usize) % endpoints.len();
                let status = if t % 97 == 0 { 404 } else { 200 };
                let ex = exchange(
                    t * SEC + c as u64 * 1000,
                    c,
                    "GET",
                    endpoints[i],
                    Some(status),
                );
                e.observe(&ex, &mut out);
            }
            if t % 300 == 0 {
                let mut ex = exchange(
                    t * SEC + 5,
                    (t / 300) as u8,
                    "POST",
                    "/api/login",
                    Some(401),
                );
                ex.request_body_prefix = br#"{"username":"me","password":"oops"}"#.to_vec();
                e.observe(&ex, &mut out);
            }
        }
        assert!(
            out.is_empty(),
            "{:?}",
            out.iter().map(|a| &a.finding.summary).collect::<Vec<_>>()
        );
    }
}
