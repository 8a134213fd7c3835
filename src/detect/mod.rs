//! Detection: per-client baselines over the exchanges the pipeline reconstructs.
//!
//! The [`Engine`] sees every exchange in order, on packet time. Its global half
//! ([`Engine::route`]) learns path templates, names the client, keeps the bounded
//! table of which clients are tracked (least recently seen evicted, counted), the
//! endpoint inventory and global login failures. Its per-client half
//! ([`Engine::judge`]: every detector's state for one client, episodes, samples)
//! runs inline or on client-sharded threads (`shards.rs`); both follow the same
//! once-a-second epochs for what clients contribute to the population baseline, so
//! the alerts do not depend on the shard count. Detectors return [`Finding`]s; the
//! engine turns them into alerts with one alert per episode (client, kind),
//! re-reported at most once per cooldown. Everything runs on packet time, so a
//! capture gives the same alerts on every run.

pub mod burst;
pub mod endpoint_scan;
pub mod login;
pub mod object_enumeration;
mod shards;
pub mod state;
pub mod unusual_endpoint;
pub mod window;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::http::{Exchange, Text};
use crate::identity::{self, ClientId};
use crate::jsonscan::Item;
use crate::time::Nanos;

const SEC: Nanos = 1_000_000_000;

/// What one tracked client costs at peak with its detector state (measured: 3.7 KiB
/// per client for clients of one request each, see README "Memory budget"). The
/// memory budget divides the client share by it.
pub const CLIENT_BYTES: u64 = 4096;

pub(crate) use crate::lru::Prehashed;

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

    /// MITRE ATT&CK: (tactic id, tactic, technique id, technique), as Suricata
    /// rule metadata names them (`mitre_tactic_id`, ...).
    pub fn mitre(self) -> [&'static str; 4] {
        match self {
            Kind::Burst => [
                "TA0040",
                "Impact",
                "T1499.003",
                "Application Exhaustion Flood",
            ],
            Kind::CredentialStuffing => [
                "TA0006",
                "Credential Access",
                "T1110.004",
                "Credential Stuffing",
            ],
            Kind::BruteForce => [
                "TA0006",
                "Credential Access",
                "T1110.001",
                "Password Guessing",
            ],
            Kind::EndpointScan => ["TA0043", "Reconnaissance", "T1595.003", "Wordlist Scanning"],
            Kind::UnusualEndpoint => [
                "TA0001",
                "Initial Access",
                "T1190",
                "Exploit Public-Facing Application",
            ],
            Kind::ObjectEnumeration => [
                "TA0009",
                "Collection",
                "T1213",
                "Data from Information Repositories",
            ],
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
    pub template: Text,
    /// Method plus template, e.g. `GET /users/{id}`.
    pub endpoint: Text,
    pub status: Option<u16>,
}

impl<'a> Obs<'a> {
    /// With the template and endpoint the engine's global half worked out.
    /// `path`: the path the global half worked out, either a prefix of the target
    /// (its length) or, when normalising changed it, the normalised path.
    fn routed(
        ex: &'a Exchange,
        template: Text,
        endpoint: Text,
        path: Result<&'a str, usize>,
    ) -> Option<Self> {
        let method = ex.method.as_deref()?;
        let uri = ex.uri.as_deref().unwrap_or("/");
        Some(Obs {
            ts: ex.ts,
            ex,
            method,
            path: path.unwrap_or_else(|len| {
                uri.get(..len)
                    .unwrap_or_else(|| crate::routes::without_query(uri))
            }),
            template,
            endpoint,
            status: ex.status,
        })
    }

    /// `template`: the path template (learned by the engine's templater, or the
    /// stateless one when none is given).
    pub fn new(ex: &'a Exchange, template: Option<Text>) -> Option<Self> {
        let uri = ex.uri.as_deref().unwrap_or("/");
        Self::cut(ex, template, crate::routes::without_query(uri))
    }

    /// [`Self::new`] with the target already cut at its query (`path`).
    fn cut(ex: &'a Exchange, template: Option<Text>, path: &'a str) -> Option<Self> {
        let method = ex.method.as_deref()?;
        let uri = ex.uri.as_deref().unwrap_or("/");
        let template = template.unwrap_or_else(|| crate::routes::template(uri).into());
        let endpoint = endpoint_of(method, &template);
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

/// `METHOD template`, the method uppercased: assembled on the stack when short (the
/// `Text` is made once; pushing onto one piece by piece costs more than the bytes).
fn endpoint_of(method: &str, template: &str) -> Text {
    let n = method.len() + 1 + template.len();
    let mut buf = [0u8; 64];
    if n > buf.len() {
        let mut s = String::with_capacity(n);
        s.push_str(method);
        s.make_ascii_uppercase();
        s.push(' ');
        s.push_str(template);
        return s.into();
    }
    buf[..method.len()].copy_from_slice(method.as_bytes());
    buf[..method.len()].make_ascii_uppercase();
    buf[method.len()] = b' ';
    buf[method.len() + 1..n].copy_from_slice(template.as_bytes());
    // SAFETY: two `str`s joined by an ASCII space are UTF-8, and ASCII uppercasing
    // changes only ASCII bytes, so it stays UTF-8 (checking again cost more than the
    // copy).
    Text::from(unsafe { std::str::from_utf8_unchecked(&buf[..n]) })
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

impl Finding {
    /// A shadow route outside the user's spec (`unusual_endpoint`, once per client
    /// and route).
    pub fn outside_spec(&self) -> bool {
        self.kind == Kind::UnusualEndpoint && self.evidence["outside_spec"] == true
    }

    /// A finding without its evidence: what the engine needs while an episode is in
    /// cooldown (that it goes on), built without formatting anything.
    pub fn bare(kind: Kind, severity: u8) -> Self {
        Finding {
            kind,
            endpoint: None,
            summary: String::new(),
            evidence: serde_json::Value::Null,
            severity,
            clients: None,
        }
    }
}

/// One request kept as a sample for an alert (never a secret: templated path only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    /// Inline up to 24 bytes (nearly every method and template): keeping the last
    /// requests of every client costs no allocation per exchange.
    pub method: crate::http::Text,
    pub path: crate::http::Text,
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
    /// The connection's client address (a proxy's where `client_ip` came from a
    /// trusted forwarding header): EVE's `src_ip` of a client alert.
    pub conn_ip: IpAddr,
    /// The exchange's position on its connection (EVE `tx_id` is this minus one).
    pub trans_depth: u32,
    pub flow: crate::http::FlowInfo,
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
    /// Threads for the per-client detectors (0: chosen from `--workers` and the
    /// cores; 1: inline).
    pub shards: usize,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` are believed.
    pub trusted_proxies: Vec<identity::Cidr>,
    /// What a client is: address, IPv6 prefix or hashed principal.
    pub identity: identity::IdentityConfig,
    /// Where baselines and the inventory are saved and loaded (none: not kept).
    pub state_file: Option<std::path::PathBuf>,
    /// Packet time between snapshots of the state file.
    pub snapshot_interval: Nanos,
    /// Largest state file read (`memory.limit`).
    pub state_max_bytes: u64,
    /// Bytes the clients with their detector windows may hold (the clients' share
    /// of `memory.limit`; 0: no bound beyond `max_clients`). Past it the least
    /// recently seen clients are evicted.
    pub client_bytes: u64,
    /// Object values remembered with the client that first used them (see
    /// [`OBJECT_USERS_CAP`]).
    pub object_users: usize,
    pub burst: burst::Config,
    pub login: login::Config,
    pub endpoint_scan: endpoint_scan::Config,
    pub object_enumeration: object_enumeration::Config,
    pub unusual_endpoint: unusual_endpoint::Config,
    pub templates: crate::routes::LearnConfig,
    /// Routes pinned by the user's OpenAPI document (`--openapi`).
    pub spec: Option<std::sync::Arc<crate::routes::spec::Spec>>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            learning_period: 300 * SEC,
            cooldown: 600 * SEC,
            episode_gap: 120 * SEC,
            max_clients: 100_000,
            shards: 0,
            trusted_proxies: Vec::new(),
            identity: identity::IdentityConfig {
                ipv6_prefix: 128,
                ..Default::default()
            },
            state_file: None,
            snapshot_interval: 300 * SEC,
            state_max_bytes: crate::config::DEFAULT_MEMORY_LIMIT,
            client_bytes: 0,
            object_users: OBJECT_USERS_CAP,
            burst: Default::default(),
            login: Default::default(),
            endpoint_scan: Default::default(),
            object_enumeration: Default::default(),
            unusual_endpoint: Default::default(),
            templates: Default::default(),
            spec: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Episode {
    start: Nanos,
    last_hit: Nanos,
    last_report: Nanos,
    reports: u32,
    /// The kinds of evidence reported in this episode (see [`escalation`]; 0:
    /// free): evidence of a new kind is reported within the cooldown, up to this
    /// many kinds an episode.
    kinds: [u64; 3],
}

/// What makes an `unusual_endpoint` finding evidence of a new kind within its
/// episode: its rule, and for a sensitive route the area (`/admin/users`), for a
/// shadow route the route. Weak evidence first (a documentation page) must not use
/// up the episode's report so that the admin probe minutes later goes unreported.
/// `None`: the finding only ever counts once a cooldown.
fn escalation(f: &Finding) -> Option<u64> {
    if f.kind != Kind::UnusualEndpoint {
        return None;
    }
    use std::hash::BuildHasher;
    let rule = f.evidence["rule"].as_str()?;
    let endpoint = f.endpoint.as_deref().unwrap_or("");
    let template = endpoint.split_once(' ').map_or(endpoint, |(_, t)| t);
    let what = match rule {
        // The area: the route's first three segments (`/admin/users`,
        // `/api/admin/keys`), cheaper than finding its sensitive word again.
        "sensitive_route" => template
            .match_indices('/')
            .nth(3)
            .map_or(template, |(i, _)| &template[..i]),
        "shadow_route" => endpoint,
        _ => "",
    };
    Some(Prehashed::default().hash_one((rule, what)) | 1)
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
    episodes: HashMap<Kind, Episode, Prehashed>,
    /// What the client held when last measured (counted in its shard's total).
    bytes: usize,
    /// Exchanges judged: the client is measured every [`MEASURE_EVERY`].
    judged: u32,
}

/// A client's memory is measured on its first exchange and every this many after
/// (between two measurements it grows by at most this many requests' windows).
const MEASURE_EVERY: u32 = 16;

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
            episodes: HashMap::default(),
            bytes: 0,
            judged: 0,
        }
    }

    /// Bytes the client holds: its table slot, its key, every detector's windows.
    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<(ClientId, Client)>()
            + self.key.capacity()
            + self.burst.heap_bytes()
            + self.login.heap_bytes()
            + self.scan.heap_bytes()
            + self.enumeration.heap_bytes()
            + self.profile.heap_bytes()
            + self.recent.capacity() * std::mem::size_of::<Sample>()
            + self.episodes.capacity() * (std::mem::size_of::<(Kind, Episode)>() + 1)
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
    /// What the clients and their detector windows held at the last epoch.
    pub client_bytes: u64,
    /// Epochs that found the clients past their share of the budget.
    pub clients_over_budget: u64,
}

/// Exchanges between two checks of the clients' memory within one epoch.
const BUDGET_CHECK: u64 = 1 << 16;

/// Packet time between two merges of what the client shards contributed to the
/// population baseline. Every engine, sharded or not, merges on the same epochs, so
/// the alerts do not depend on the number of shards.
const EPOCH: Nanos = SEC;

/// Object values remembered with their first user (cleared when full: about 32
/// bytes each in the table): a sixty-fourth of `memory.limit`, within the share of
/// the route tables, and never more than this.
pub const OBJECT_USERS_CAP: usize = 1 << 19;

/// What the global stage worked out for one exchange: its labels, and everything
/// its client's shard needs besides the client's own state.
#[derive(Debug)]
pub struct Routed {
    /// The exchange's number in the engine's order.
    seq: u64,
    id: ClientId,
    ip: IpAddr,
    template: Text,
    endpoint: Text,
    client_hash: u64,
    endpoint_hash: u64,
    path_hash: u64,
    /// The request path's length (a prefix of the target)...
    path_len: usize,
    /// ...or the path as servers route it, when that differs from the target's.
    normalized: Option<Box<str>>,
    learning_end: Nanos,
    attempt: Option<login::Attempt>,
    seen: unusual_endpoint::Seen,
    clients_known: usize,
    /// Keyed hashes of the object values in the path.
    objects: Ids,
    /// One of them was used in a path by another client before: someone else's.
    others_objects: bool,
    /// The distributed-stuffing alert this exchange raised: written after the
    /// client's own alerts for it.
    global: Option<Alert>,
}

/// Keyed hashes of a path's object values: up to four (nearly every path) held
/// inline, no allocation per exchange; more spill to the heap.
#[derive(Debug, Clone, Default)]
struct Ids {
    n: usize,
    inline: [u64; 4],
    /// Every value, once there are more than `inline` holds.
    spill: Vec<u64>,
}

impl Ids {
    fn push(&mut self, v: u64) {
        if self.spill.is_empty() && self.n < self.inline.len() {
            self.inline[self.n] = v;
            self.n += 1;
            return;
        }
        if self.spill.is_empty() {
            self.spill.extend_from_slice(&self.inline);
        }
        self.spill.push(v);
    }

    fn as_slice(&self) -> &[u64] {
        if self.spill.is_empty() {
            &self.inline[..self.n]
        } else {
            &self.spill
        }
    }
}

impl Routed {
    /// The exchange's endpoint: method plus learned template.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn client(&self) -> ClientId {
        self.id
    }

    /// A keyed hash of the client.
    pub fn client_hash(&self) -> u64 {
        self.client_hash
    }
}

/// The per-client half of the engine: the clients of one shard and their detectors.
/// It reads the population baseline as of the last epoch and hands back what its
/// clients contribute to it.
pub(crate) struct Shard {
    cfg: DetectConfig,
    clients: HashMap<ClientId, Client, foldhash::fast::RandomState>,
    hasher: foldhash::fast::RandomState,
    population: burst::Population,
    /// (exchange number, requests in a finished interval), for the next epoch.
    contributions: Vec<(u64, f64)>,
    now: Nanos,
    /// What its clients held when last measured.
    bytes: usize,
}

impl Shard {
    fn new(cfg: DetectConfig, hasher: foldhash::fast::RandomState) -> Self {
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
    fn forget(&mut self, id: &ClientId) {
        if let Some(c) = self.clients.remove(id) {
            self.bytes = self.bytes.saturating_sub(c.bytes);
        }
    }

    /// Measures a client again (see [`MEASURE_EVERY`]).
    fn measure(bytes: &mut usize, client: &mut Client) {
        let b = client.heap_bytes();
        *bytes = bytes.saturating_sub(client.bytes) + b;
        client.bytes = b;
    }

    /// Runs the client's detectors on one exchange; its alerts go to `out`.
    fn judge(&mut self, r: Routed, ex: &Exchange, out: &mut Vec<Alert>) {
        let (seq, id, ip) = (r.seq, r.id, r.ip);
        let path = r.normalized.as_deref().ok_or(r.path_len);
        let Some(obs) = Obs::routed(ex, r.template, r.endpoint, path) else {
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
            self.contributions.push((seq, x));
        }
        if let Some(a) = r.attempt {
            let episodes = &client.episodes;
            findings.extend(login::observe(
                &cfg.login,
                &mut client.login,
                &obs,
                a,
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
        findings.extend(unusual_endpoint::profile(
            &cfg.unusual_endpoint,
            &mut client.profile,
            &obs,
            unusual_endpoint::ClientSide {
                endpoint_hash: r.endpoint_hash,
                seen: r.seen,
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
            created_ids(ex, |v| client.profile.touch(hash(v)));
        }
        // Listings and syncs hand out what is the client's (an object's own GET
        // does not: its keys are field names).
        if matches!(obs.status, Some(200..=299)) && !obs.template.ends_with('}') {
            handed_keys(ex, |v| client.profile.touch(hash(v)));
        }

        for f in findings {
            let ep = client.episodes.get(&f.kind).copied();
            let kind_of = escalation(&f);
            // Within the cooldown, evidence of a new kind is still reported; a route
            // outside the spec is told to each client once (its profile keeps
            // which): an episode going on does not hold it back.
            let escalated = || {
                let e = ep?;
                if f.outside_spec() {
                    return Some(e.reports + 1);
                }
                let k = kind_of?;
                (!e.kinds.contains(&k) && e.kinds.contains(&0)).then_some(e.reports + 1)
            };
            let Some(report) = next_report(cfg, ep, obs.ts).or_else(escalated) else {
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
                kinds: [0; 3],
            });
            if report == 1 {
                *e = Episode {
                    start: obs.ts,
                    last_hit: obs.ts,
                    last_report: obs.ts,
                    reports: 1,
                    kinds: [0; 3],
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
    fn episodes(&self, now: Nanos) -> HashMap<Kind, usize> {
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

/// Where the per-client half runs: on the caller's thread, or on shard threads.
enum Stage {
    Inline(Box<Shard>),
    Sharded(shards::Pool),
}

/// The detection engine. Its global half (templates, identity, the client table's
/// membership, the endpoint inventory, global login failures) runs on the caller's
/// thread in exchange order; the per-client half runs inline or on client-sharded
/// threads ([`Engine::sharded`]), with the same alerts in the same order either way.
pub struct Engine {
    cfg: DetectConfig,
    /// Every tracked client and when it was last seen: the table's bound and its
    /// evictions are decided here, so shards keep exactly the clients one table would.
    members: HashMap<ClientId, Nanos, foldhash::fast::RandomState>,
    /// Hashes that identify clients and endpoints: fixed, so a saved state means the
    /// same thing after a restart.
    stable: foldhash::fast::FixedState,
    /// Keyed per run: usernames and object ids (never persisted, never written).
    hasher: foldhash::fast::RandomState,
    first_ts: Option<Nanos>,
    /// Latest packet time seen.
    now: Nanos,
    /// The epoch (packet time / [`EPOCH`]) of `now`.
    epoch: Nanos,
    templater: crate::routes::Templater,
    /// The population baseline as of the last epoch.
    population: burst::Population,
    /// Contributions gathered from shards and not yet applied (waiting for an epoch).
    contributions: Vec<(u64, f64)>,
    inventory: crate::routes::inventory::Inventory,
    /// How success looks on each login route.
    login_routes: login::Routes,
    /// Object value (keyed hash) → the first client that used it in a path.
    object_users: HashMap<u64, u64, Prehashed>,
    global_login: login::Global,
    global_episode: Option<Episode>,
    /// Client hash → client, kept only for clients with failed logins: it names the
    /// top contributors of a distributed-stuffing alert.
    failed_login_clients: HashMap<u64, ClientId, Prehashed>,
    stage: Stage,
    pub stats: DetectStats,
}

impl Engine {
    pub fn new(mut cfg: DetectConfig) -> Self {
        if !cfg.identity.salt_configured {
            cfg.identity.salt = identity::IdentityConfig::random_salt();
        }
        let hasher = foldhash::fast::RandomState::default();
        Engine {
            global_login: login::Global::new(&cfg.login),
            templater: crate::routes::Templater::new(cfg.templates.clone()),
            login_routes: Default::default(),
            object_users: HashMap::default(),
            stage: Stage::Inline(Box::new(Shard::new(cfg.clone(), hasher.clone()))),
            cfg,
            members: HashMap::default(),
            stable: foldhash::fast::FixedState::with_seed(0x6170_6977_6174_6368),
            hasher,
            first_ts: None,
            now: 0,
            epoch: 0,
            population: Default::default(),
            contributions: Vec::new(),
            inventory: Default::default(),
            global_episode: None,
            failed_login_clients: HashMap::default(),
            stats: Default::default(),
        }
    }

    /// An engine whose per-client detectors run on `shards` threads, clients spread
    /// by key. With fewer than two shards, or when a thread cannot start, the
    /// detectors run inline; the output is the same.
    pub fn sharded(cfg: DetectConfig, shards: usize) -> Self {
        let mut e = Engine::new(cfg);
        if shards >= 2 {
            let make = |_| Shard::new(e.cfg.clone(), e.hasher.clone());
            match shards::Pool::start((0..shards).map(make).collect()) {
                Ok(pool) => e.stage = Stage::Sharded(pool),
                Err(err) => {
                    tracing::warn!(%err, "Cannot start the detection shards; detecting on one thread")
                }
            }
        }
        e
    }

    /// Detection threads (1: inline).
    pub fn shards(&self) -> usize {
        match &self.stage {
            Stage::Inline(_) => 1,
            Stage::Sharded(p) => p.len(),
        }
    }

    pub fn clients_tracked(&self) -> usize {
        self.members.len()
    }

    /// Alert episodes going on, by kind (client episodes plus the global one). With
    /// shards, client episodes are counted as of the last epoch.
    pub fn active_episodes(&self) -> Vec<(Kind, usize)> {
        let mut counts = match &self.stage {
            Stage::Inline(s) => s.episodes(self.now),
            Stage::Sharded(p) => p.episodes().clone(),
        };
        if self
            .global_episode
            .as_ref()
            .is_some_and(|e| self.now < e.last_hit.saturating_add(self.cfg.episode_gap))
        {
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

    /// The inventory as an OpenAPI 3.1 document (`--endpoints`). Endpoints recorded
    /// before their route was learned merge into it.
    pub fn openapi(&self) -> crate::routes::inventory::Document {
        let pinned = self.cfg.spec.is_some();
        self.inventory.to_openapi(
            |p| {
                if pinned {
                    p.to_string()
                } else {
                    self.templater.lookup(p)
                }
            },
            self.now,
        )
    }

    /// Whether per-client judging runs on shard threads (then [`Engine::judge`]
    /// takes the exchange itself rather than a borrow).
    pub fn is_sharded(&self) -> bool {
        matches!(self.stage, Stage::Sharded(_))
    }

    /// Judges one exchange; alerts are appended to `out` (with shards, alerts of
    /// earlier exchanges can arrive here; [`Engine::finish`] hands over the rest).
    /// Returns the exchange's endpoint (method plus learned template) and client.
    pub fn observe(&mut self, ex: &Exchange, out: &mut Vec<Alert>) -> Option<(String, ClientId)> {
        let r = self.route(ex, out)?;
        let labels = (r.endpoint.to_string(), r.id);
        self.judge(r, std::borrow::Cow::Borrowed(ex), out);
        Some(labels)
    }

    /// The global half for one exchange, in order: its template, client, inventory
    /// and global-login state. `None` for an exchange without a request.
    pub fn route(&mut self, ex: &Exchange, out: &mut Vec<Alert>) -> Option<Routed> {
        let method = ex.method.as_deref()?;
        let ip = identity::client_ip(ex, &self.cfg.trusted_proxies);
        let id = identity::client_id(ex, ip, &self.cfg.identity);
        let client_hash = self.stable.hash_one(id);
        let uri = ex.uri.as_deref().unwrap_or("/");
        // Cut once at the query: the templater, the spec and the observation share it.
        let target = crate::routes::without_query(uri);
        // Routed as servers route it: `/api/%6cogin` is `/api/login`.
        let normalized = crate::routes::normalized(crate::routes::without_authority(target));
        let target: &str = &normalized;
        let mut outside_spec = None;
        let template = match self.cfg.spec.as_deref() {
            Some(spec) => match spec.route(method, crate::routes::without_authority(target)) {
                crate::routes::spec::Match::Route(t) => {
                    outside_spec = Some(false);
                    t.into()
                }
                crate::routes::spec::Match::UndeclaredMethod(t) => {
                    outside_spec = Some(true);
                    t.into()
                }
                crate::routes::spec::Match::Outside => {
                    outside_spec = Some(true);
                    self.templater.template_cut(ex, target, client_hash)
                }
            },
            None => self.templater.template_cut(ex, target, client_hash),
        };
        self.stats.templates_evicted = self.templater.evicted;
        let template = crate::routes::capped(template);
        let obs = Obs::cut(ex, Some(template), target)?;
        self.stats.exchanges += 1;
        let seq = self.stats.exchanges;
        if seq.is_multiple_of(BUDGET_CHECK) {
            // A flood inside one second of packet time is held to the budget too.
            let bytes = match &mut self.stage {
                Stage::Inline(shard) => shard.bytes,
                Stage::Sharded(pool) => {
                    let got = pool.barrier(self.now, false, out);
                    self.contributions.extend(got.contributions);
                    got.bytes
                }
            };
            self.hold_to_budget(bytes);
        }
        self.now = self.now.max(obs.ts);
        if self.now / EPOCH > self.epoch {
            self.epoch = self.now / EPOCH;
            self.next_epoch(out);
        }
        let mut first = *self.first_ts.get_or_insert(obs.ts);
        if state::in_future(first, obs.ts) {
            // A corrupt state file: learning would never end.
            tracing::warn!(
                first_ts = first,
                packet_ts = obs.ts,
                "The state file's learning clock starts after this packet; learning starts now"
            );
            first = obs.ts;
            self.first_ts = Some(first);
        }
        let learning_end = first.saturating_add(self.cfg.learning_period);
        if self.members.len() >= self.cfg.max_clients && !self.members.contains_key(&id) {
            self.evict();
        }
        let clients_known = self.members.len();
        let last_seen = self.members.entry(id).or_insert(obs.ts);
        *last_seen = state::not_after(*last_seen, obs.ts).max(obs.ts);
        let cfg = &self.cfg;
        let endpoint_hash = self.stable.hash_one(obs.endpoint.as_bytes());
        let path_hash = self.stable.hash_one(obs.path.as_bytes());
        let hasher = self.hasher.clone();
        let hash = move |b: &[u8]| hasher.hash_one(b);

        let mut global = None;
        let attempt = login::attempt(
            &cfg.login,
            &mut self.login_routes,
            &obs,
            endpoint_hash,
            &hash,
        );
        let attempt = attempt.map(|(a, name)| {
            if let Some(n) = name {
                self.templater.note_value(&n);
            }
            a
        });
        if let Some(a) = attempt {
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
        let mut objects = Ids::default();
        for v in object_enumeration::ids(obs.path, &obs.template) {
            objects.push(hash(&crate::routes::percent_decoded(v)));
        }
        let mut others_objects = false;
        for o in objects.as_slice() {
            if self.object_users.len() >= self.cfg.object_users {
                self.object_users.clear();
            }
            let first = *self.object_users.entry(*o).or_insert(client_hash);
            others_objects |= first != client_hash;
        }
        let headers = &ex.request_headers;
        let principal = headers
            .authorization
            .as_deref()
            .or(headers.api_key.as_deref())
            .map(|c| self.stable.hash_one(c.as_bytes()));
        let usage = crate::routes::inventory::Use {
            ts: obs.ts,
            endpoint: &obs.endpoint,
            endpoint_hash,
            client_hash,
            principal,
            status: obs.status,
            request_type: headers.content_type.as_deref(),
            response_type: ex
                .response_headers
                .as_ref()
                .and_then(|h| h.content_type.as_deref()),
            slash_redirect: matches!(obs.status, Some(300..=399))
                && ex
                    .response_headers
                    .as_ref()
                    .and_then(|h| h.location.as_deref())
                    .is_some_and(|l| {
                        let l = crate::routes::path_of(l);
                        l.len() == obs.path.len() + 1 && l.ends_with('/') && l.starts_with(obs.path)
                    }),
        };
        let seen = unusual_endpoint::inventory(
            &cfg.unusual_endpoint,
            &mut self.inventory,
            &obs,
            usage,
            outside_spec,
            (learning_end - cfg.learning_period / 2, learning_end),
        );
        self.stats.endpoints_evicted = self.inventory.evicted;

        let mut global_alert = None;
        if let Some(f) = global {
            if let Some(report) = next_report(cfg, self.global_episode, obs.ts) {
                let e = self.global_episode.get_or_insert(Episode {
                    start: obs.ts,
                    last_hit: obs.ts,
                    last_report: obs.ts,
                    reports: 0,
                    kinds: [0; 3],
                });
                if report == 1 {
                    e.start = obs.ts;
                }
                e.last_hit = obs.ts;
                e.last_report = obs.ts;
                e.reports = report;
                let start = e.start;
                global_alert = Some(make_alert(&obs, None, f, Vec::new(), report, start));
            } else if let Some(e) = self.global_episode.as_mut() {
                e.last_hit = obs.ts;
            }
        }
        if self
            .global_episode
            .is_some_and(|e| obs.ts >= e.last_hit.saturating_add(cfg.episode_gap))
        {
            self.global_episode = None;
        }
        Some(Routed {
            seq,
            id,
            ip,
            template: obs.template,
            endpoint: obs.endpoint,
            client_hash,
            endpoint_hash,
            path_hash,
            path_len: obs.path.len(),
            // A prefix of the target is passed by its length.
            normalized: (!std::ptr::eq(obs.path.as_ptr(), uri.as_ptr())).then(|| obs.path.into()),
            learning_end,
            attempt,
            seen,
            clients_known,
            objects,
            others_objects,
            global: global_alert,
        })
    }

    /// The per-client half for a routed exchange: inline, or queued for its shard.
    pub fn judge(
        &mut self,
        mut r: Routed,
        ex: std::borrow::Cow<'_, Exchange>,
        out: &mut Vec<Alert>,
    ) {
        match &mut self.stage {
            Stage::Inline(shard) => {
                let global = r.global.take();
                shard.judge(r, &ex, out);
                out.extend(global);
            }
            Stage::Sharded(pool) => {
                pool.judge(r, ex.into_owned());
                if pool.due() {
                    // Alerts only: contributions wait for their epoch.
                    let got = pool.barrier(self.now, false, out);
                    self.contributions.extend(got.contributions);
                }
            }
        }
    }

    /// Applies the population contributions of the epoch that ended, and holds the
    /// clients to their share of the memory budget.
    fn next_epoch(&mut self, out: &mut Vec<Alert>) {
        let bytes = match &mut self.stage {
            Stage::Inline(shard) => {
                self.contributions.append(&mut shard.contributions);
                shard.bytes
            }
            Stage::Sharded(pool) => {
                let got = pool.barrier(self.now, false, out);
                self.contributions.extend(got.contributions);
                got.bytes
            }
        };
        self.hold_to_budget(bytes);
        // Exchange order, whichever shard judged them.
        self.contributions.sort_by_key(|(seq, _)| *seq);
        for (_, x) in self.contributions.drain(..) {
            self.population.add(x);
        }
        match &mut self.stage {
            Stage::Inline(shard) => shard.population = self.population.clone(),
            Stage::Sharded(pool) => pool.set_population(&self.population),
        }
    }

    /// Time passed without exchanges (live capture on a quiet wire): episodes that
    /// went quiet end, so the active-episode gauges fall back. Alerts the shards
    /// finished meanwhile go to `out`.
    pub fn advance(&mut self, now: Nanos, out: &mut Vec<Alert>) {
        self.now = self.now.max(now);
        match &mut self.stage {
            Stage::Inline(shard) => shard.now = shard.now.max(self.now),
            Stage::Sharded(pool) => {
                // Contributions wait for the epoch an exchange opens.
                let got = pool.barrier(self.now, false, out);
                self.contributions.extend(got.contributions);
            }
        }
    }

    /// Hands over every alert still on its way from the shards.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        if let Stage::Sharded(pool) = &mut self.stage {
            let got = pool.barrier(self.now, false, out);
            self.contributions.extend(got.contributions);
        }
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

    /// Clients past their share of the memory budget (`bytes`: what they hold, as
    /// the shards measured it at an epoch, the same with any number of shards):
    /// the least recently seen go until an eighth of the share is free again.
    fn hold_to_budget(&mut self, bytes: usize) {
        self.stats.client_bytes = bytes as u64;
        let budget = self.cfg.client_bytes;
        if budget == 0 || (bytes as u64) <= budget || self.members.is_empty() {
            return;
        }
        let each = (bytes / self.members.len()).max(1) as u64;
        let n = (bytes as u64 - budget / 8 * 7).div_ceil(each) as usize;
        self.evict_n(n.min(self.members.len()));
        self.stats.client_bytes = (bytes as u64).saturating_sub(n as u64 * each);
        self.stats.clients_over_budget += 1;
        release_freed_memory();
    }

    fn evict(&mut self) {
        self.evict_n(crate::lru::batch(self.cfg.max_clients));
    }

    fn evict_n(&mut self, n: usize) {
        for k in crate::lru::oldest(&self.members, n, |t| *t) {
            self.members.remove(&k);
            match &mut self.stage {
                Stage::Inline(shard) => shard.forget(&k),
                Stage::Sharded(pool) => pool.evict(self.stable.hash_one(k), k),
            }
            self.stats.clients_evicted += 1;
        }
    }
}

/// Hands what evicted clients freed back to the system: glibc's allocator keeps
/// freed memory in its arenas otherwise, and the process would stay at its
/// high-water mark after every flood. Runs only when clients were evicted for the
/// budget (at most once a second of packet time).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Calls `f` with the ids a creation handed out: the last segments of its
/// `Location`, and id-like values (`id`, `*_id`, `slug`, `name`, `key`) of its JSON
/// answer, two levels deep at most.
fn created_ids(ex: &Exchange, mut f: impl FnMut(&[u8])) {
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
fn handed_keys(ex: &Exchange, mut f: impl FnMut(&[u8])) {
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

/// Whether a finding at `now` is reported, and as which report of its episode.
fn next_report(cfg: &DetectConfig, ep: Option<Episode>, now: Nanos) -> Option<u32> {
    match ep {
        None => Some(1),
        Some(e) if now >= e.last_hit.saturating_add(cfg.episode_gap) => Some(1),
        Some(e) if now >= e.last_report.saturating_add(cfg.cooldown) => Some(e.reports + 1),
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
        conn_ip: ex.client_ip,
        trans_depth: ex.trans_depth,
        flow: ex.flow,
        server_ip: ex.server_ip,
        server_port: ex.server_port,
        host: ex.request_headers.host.as_deref().map(str::to_owned),
        uri: ex.uri.as_deref().map(str::to_owned),
        method: ex.method.as_deref().map(str::to_owned),
        status: ex.status,
        samples,
        report,
        episode_start: start,
    }
}

#[cfg(test)]
pub(crate) mod tests;
