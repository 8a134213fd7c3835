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
pub mod encrypted;
pub mod endpoint_scan;
mod engine;
pub mod exfiltration;
pub mod login;
pub mod object_enumeration;
mod shard;
mod shards;
pub mod state;
pub mod tokens;
pub mod unusual_endpoint;
pub mod window;

use std::collections::HashMap;
use std::net::IpAddr;

use crate::http::{Exchange, Text};
use crate::identity;
use crate::time::Nanos;

const SEC: Nanos = 1_000_000_000;

/// What one tracked client costs at peak with its detector state (measured: 3.7 KiB
/// per client for clients of one request each, see docs/hardening.md). The
/// memory budget divides the client share by it.
pub const CLIENT_BYTES: u64 = 4096;

pub(crate) use crate::lru::Prehashed;
pub use engine::{Engine, OBJECT_USERS_CAP, Routed};

/// A number for evidence: two decimals.
pub(crate) fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What an alert is about. Each kind has one stable Suricata-style signature id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Burst = 0,
    CredentialStuffing = 1,
    BruteForce = 2,
    EndpointScan = 3,
    UnusualEndpoint = 4,
    ObjectEnumeration = 5,
    DataExfiltration = 6,
    TokenMisuse = 7,
    /// Posture findings (`scope: "api"`, see [`crate::posture`]).
    CleartextCredentials = 8,
    CredentialsInUrl = 9,
    WeakTls = 10,
    CertificateExpiry = 11,
    JwtWeakness = 12,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Burst,
        Kind::CredentialStuffing,
        Kind::BruteForce,
        Kind::EndpointScan,
        Kind::UnusualEndpoint,
        Kind::ObjectEnumeration,
        Kind::DataExfiltration,
        Kind::TokenMisuse,
        Kind::CleartextCredentials,
        Kind::CredentialsInUrl,
        Kind::WeakTls,
        Kind::CertificateExpiry,
        Kind::JwtWeakness,
    ];

    /// A finding about a server or route, not about a client (`scope: "api"`).
    pub fn is_posture(self) -> bool {
        self as u32 >= Kind::CleartextCredentials as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Burst => "burst",
            Kind::CredentialStuffing => "credential_stuffing",
            Kind::BruteForce => "brute_force",
            Kind::EndpointScan => "endpoint_scan",
            Kind::UnusualEndpoint => "unusual_endpoint",
            Kind::ObjectEnumeration => "object_enumeration",
            Kind::DataExfiltration => "data_exfiltration",
            Kind::TokenMisuse => "token_misuse",
            Kind::CleartextCredentials => "cleartext_credentials",
            Kind::CredentialsInUrl => "credentials_in_url",
            Kind::WeakTls => "weak_tls",
            Kind::CertificateExpiry => "certificate_expiry",
            Kind::JwtWeakness => "jwt_weakness",
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
            Kind::DataExfiltration => "Data Exfiltration",
            Kind::TokenMisuse => "Token Misuse",
            Kind::CleartextCredentials => "Cleartext Credentials",
            Kind::CredentialsInUrl => "Credentials in URL",
            Kind::WeakTls => "Weak TLS",
            Kind::CertificateExpiry => "Certificate Expiry",
            Kind::JwtWeakness => "JWT Weakness",
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
            Kind::ObjectEnumeration | Kind::DataExfiltration => [
                "TA0009",
                "Collection",
                "T1213",
                "Data from Information Repositories",
            ],
            // A token used by someone else, or many tokens used by one.
            Kind::TokenMisuse => [
                "TA0005",
                "Defense Evasion",
                "T1550.001",
                "Application Access Token",
            ],
            // What the weakness exposes to: credentials sniffed on the path...
            Kind::CleartextCredentials => {
                ["TA0006", "Credential Access", "T1040", "Network Sniffing"]
            }
            // ...credentials left where logs and proxies keep them...
            Kind::CredentialsInUrl => [
                "TA0006",
                "Credential Access",
                "T1552",
                "Unsecured Credentials",
            ],
            // ...traffic a machine in the middle can read or alter...
            Kind::WeakTls | Kind::CertificateExpiry => [
                "TA0006",
                "Credential Access",
                "T1557",
                "Adversary-in-the-Middle",
            ],
            // ...tokens anyone can forge or replay.
            Kind::JwtWeakness => [
                "TA0005",
                "Defense Evasion",
                "T1550.001",
                "Application Access Token",
            ],
        }
    }

    /// The alert's `signature`: the same text for every alert of the kind.
    pub fn signature(self) -> &'static str {
        match self {
            Kind::Burst => "APIWATCH request burst",
            Kind::CredentialStuffing => "APIWATCH credential stuffing",
            Kind::BruteForce => "APIWATCH brute force",
            Kind::EndpointScan => "APIWATCH endpoint scan",
            Kind::UnusualEndpoint => "APIWATCH unusual endpoint access",
            Kind::ObjectEnumeration => "APIWATCH object enumeration",
            Kind::DataExfiltration => "APIWATCH data exfiltration",
            Kind::TokenMisuse => "APIWATCH token misuse",
            Kind::CleartextCredentials => "APIWATCH posture: credentials over cleartext HTTP",
            Kind::CredentialsInUrl => "APIWATCH posture: credentials in a URL",
            Kind::WeakTls => "APIWATCH posture: weak TLS",
            Kind::CertificateExpiry => "APIWATCH posture: certificate expired or expiring",
            Kind::JwtWeakness => "APIWATCH posture: JWT accepted unverified or expired",
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
    /// Method plus template, e.g. `GET /users/{id}` (plus the operation for
    /// GraphQL: `POST /graphql mutation login`).
    pub endpoint: Text,
    /// The status as detectors read it ([`Exchange::judged_status`]: a gRPC
    /// UNAUTHENTICATED reads as 401).
    pub status: Option<u16>,
    /// The GraphQL operations of the request (the engine's global half only).
    pub graphql: Option<&'a crate::graphql::Request>,
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
            status: ex.judged_status(),
            graphql: None,
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
            status: ex.judged_status(),
            graphql: None,
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
    /// How the finding counts against its episode's cooldown (the detector knows).
    pub novelty: Novelty,
}

/// Whether a finding is reported while its episode is within its cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Novelty {
    /// More of the same: reported at most once per cooldown.
    Repeat,
    /// Evidence of this kind (a key, never 0): reported within the cooldown the
    /// first time the episode sees it, up to a few kinds an episode, so weak evidence
    /// first cannot use up the report that strong evidence later needs.
    Kind(u64),
    /// Reported whenever the detector raises it (it keeps its own once-only rule).
    Always,
}

impl Finding {
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
            novelty: Novelty::Repeat,
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
    /// Judged on a TLS connection's handshake or its bytes, not on an HTTP
    /// exchange: written with `app_proto: "tls"` and a `tls` object.
    pub tls: bool,
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
    pub encrypted: encrypted::Config,
    /// Posture findings (config `[posture]`).
    pub posture: crate::posture::Config,
    pub login: login::Config,
    pub endpoint_scan: endpoint_scan::Config,
    pub object_enumeration: object_enumeration::Config,
    pub data_exfiltration: exfiltration::Config,
    pub token_misuse: tokens::Config,
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
            encrypted: Default::default(),
            posture: Default::default(),
            login: Default::default(),
            endpoint_scan: Default::default(),
            object_enumeration: Default::default(),
            data_exfiltration: Default::default(),
            token_misuse: Default::default(),
            unusual_endpoint: Default::default(),
            templates: Default::default(),
            spec: None,
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
    /// What the clients and their detector windows held at the last epoch.
    pub client_bytes: u64,
    /// Epochs that found the clients past their share of the budget.
    pub clients_over_budget: u64,
    /// Clients on TLS connections nobody can read evicted from their table.
    pub encrypted_evicted: u64,
    /// Posture findings not reported because the day's table was full.
    pub posture_suppressed: u64,
    /// Principals and addresses evicted from the token-misuse tables.
    pub tokens_evicted: u64,
    /// Posture findings reported today, and exchanges or connections that showed
    /// a finding's weakness, by kind (`posture::KINDS` order).
    pub posture_today: [u64; 5],
    pub posture_seen: [u64; 5],
}

#[cfg(test)]
pub(crate) mod tests;
