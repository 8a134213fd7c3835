//! `-c FILE`: the TOML configuration. Every key is optional; a missing key keeps the
//! default documented in the README. An unknown key, a bad value or an unreadable
//! file is a configuration error (exit code 2) naming the file and the key.

use serde::Deserialize;

use crate::capture::{Nanos, RingOptions};
use crate::detect::DetectConfig;
use crate::flow::FlowConfig;
use crate::identity::Cidr;

/// Parses a duration like `90s`, `5m`, `1h`, `250ms` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Option<Nanos> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000u64)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000_000_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000_000_000)
    } else {
        (s, 1_000_000_000)
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

const MS: Nanos = 1_000_000;
const HOUR: Nanos = 3_600_000_000_000;

/// The longest value a duration key accepts. Detector windows keep per-second state
/// per client, so theirs are short; learning may run for weeks. Every bound keeps
/// `packet time + 6 × duration` far from overflow (packet time is clamped to
/// [`crate::time::MAX_TIME`]).
pub fn max_duration(key: &str) -> Nanos {
    match key {
        "detect.burst.window"
        | "detect.encrypted.window"
        | "detect.encrypted.attempt_window"
        | "detect.data_exfiltration.volume_window" => HOUR / 12,
        "detect.data_exfiltration.paging_window" | "detect.token_misuse.window" => HOUR,
        "detect.learning_period" | "posture.cert_warn" => 90 * 24 * HOUR,
        _ => 24 * HOUR,
    }
}

fn show_duration(ns: Nanos) -> String {
    if ns.is_multiple_of(HOUR) {
        format!("{}h", ns / HOUR)
    } else {
        format!("{}s", ns / 1_000_000_000)
    }
}

/// A ring block timeout (`10ms`): whole milliseconds from 1 ms to 10 s.
pub fn parse_block_timeout(s: &str) -> Option<u32> {
    let ns = parse_duration(s)?;
    let ms = ns / 1_000_000;
    (ns % 1_000_000 == 0 && (1..=10_000).contains(&ms)).then_some(ms as u32)
}

/// Everything a run is configured with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub capture: RingOptions,
    pub flow: FlowConfig,
    pub detect: DetectConfig,
    pub memory: MemoryConfig,
}

/// `[memory]`: one budget for the whole process, whatever the worker count.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Bytes the tables may hold together (`memory.limit`, `--memory-limit`).
    pub limit: u64,
    /// `flow.max_flows` / `detect.max_clients` were set by hand: they win.
    max_flows_set: bool,
    max_clients_set: bool,
}

/// The default budget: 512 MiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 512 << 20;

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            limit: DEFAULT_MEMORY_LIMIT,
            max_flows_set: false,
            max_clients_set: false,
        }
    }
}

/// How `memory.limit` is shared, in percent, and what one entry of each table costs
/// (measured peaks, see docs/hardening.md): connections with their reassembly
/// and HTTP state, half-open connections (a SYN and nothing else yet), clients with
/// their detector windows, IP fragments (bytes), data held for reassembly (bytes:
/// out-of-order segments, heads split across segments). The remaining 10 % is for
/// the route and inventory tables (bounded by their own caps), channels and output
/// buffers.
pub const SHARE_FLOWS: u64 = 40;
pub const SHARE_HALF_OPEN: u64 = 5;
pub const SHARE_CLIENTS: u64 = 30;
pub const SHARE_FRAGMENTS: u64 = 5;
pub const SHARE_BUFFERS: u64 = 10;

/// Parses a size like `512MB`, `512MiB`, `2GB`, `64k` or a bare number of bytes;
/// K/M/G units are binary (as Suricata's memcaps).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// Bounds on `memory.limit`: below 64 MiB the tables are too small to be useful.
pub const MIN_MEMORY_LIMIT: u64 = 64 << 20;
pub const MAX_MEMORY_LIMIT: u64 = 1 << 40;

impl Config {
    /// Splits `memory.limit` over the tables for `workers` packet workers: each
    /// worker's flow table gets its part of the flow share, so the total does not
    /// grow with the worker count. Keys set by hand are kept.
    pub fn apply_memory_budget(&mut self, workers: usize) {
        let workers = workers.max(1) as u64;
        let part = |share: u64| self.memory.limit / 100 * share;
        // `flow.max_flows` counts connections of all workers together.
        self.flow.max_flows = if self.memory.max_flows_set {
            self.flow.max_flows.div_ceil(workers as usize)
        } else {
            (part(SHARE_FLOWS) / crate::flow::FLOW_BYTES / workers).max(1024) as usize
        };
        self.flow.max_half_open =
            (part(SHARE_HALF_OPEN) / crate::flow::HALF_OPEN_BYTES / workers).max(1024) as usize;
        self.flow.fragment_bytes = (part(SHARE_FRAGMENTS) / workers).max(1 << 20) as usize;
        self.flow.buffer_bytes = (part(SHARE_BUFFERS) / workers).max(4 << 20) as usize;
        self.detect.state_max_bytes = self.memory.limit;
        // Counted in bytes whatever `max_clients` says: detector windows grow with a
        // client's traffic, not with the number of clients.
        self.detect.client_bytes = part(SHARE_CLIENTS);
        self.detect.object_users = ((self.memory.limit / 64 / 32) as usize)
            .clamp(1 << 14, crate::detect::OBJECT_USERS_CAP);
        // The inventory lives in the route tables' tenth, about 2 KiB an endpoint
        // with its route (at most 512 bytes), sets and counts.
        self.detect.unusual_endpoint.max_endpoints =
            ((self.memory.limit / 10 / 2048) as usize).clamp(1024, 50_000);
        if !self.memory.max_clients_set {
            self.detect.max_clients =
                (part(SHARE_CLIENTS) / crate::detect::CLIENT_BYTES).max(1024) as usize;
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    capture: Option<RawCapture>,
    flow: Option<RawFlow>,
    detect: Option<RawDetect>,
    memory: Option<RawMemory>,
    posture: Option<RawPosture>,
    exposure: Option<RawExposure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExposure {
    sensitive_prefix: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPosture {
    cleartext_ok: Option<Vec<String>>,
    cert_warn: Option<String>,
    max_findings: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    limit: Option<String>,
}

/// A `memory.limit` value, or why not.
pub fn memory_limit(s: &str) -> Result<u64, String> {
    match parse_size(s) {
        Some(n) if (MIN_MEMORY_LIMIT..=MAX_MEMORY_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(format!("'{s}' is out of range (64MB to 1TB)")),
        None => Err(format!("'{s}' is not a size (e.g. 512MB, 2GB)")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapture {
    ring_size_mib: Option<usize>,
    block_timeout: Option<String>,
    promiscuous: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    max_flows: Option<usize>,
    idle_timeout: Option<String>,
    body_prefix: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetect {
    learning_period: Option<String>,
    cooldown: Option<String>,
    episode_gap: Option<String>,
    max_clients: Option<usize>,
    shards: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
    state_file: Option<String>,
    snapshot_interval: Option<String>,
    client_key: Option<String>,
    ipv6_prefix: Option<u8>,
    salt: Option<String>,
    burst: Option<RawBurst>,
    encrypted: Option<RawEncrypted>,
    login: Option<RawLogin>,
    endpoint_scan: Option<RawScan>,
    object_enumeration: Option<RawEnum>,
    data_exfiltration: Option<RawExfiltration>,
    token_misuse: Option<RawTokens>,
    unusual_endpoint: Option<RawUnusual>,
    templates: Option<RawTemplates>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    param_limit: Option<usize>,
    min_rare_share: Option<f64>,
    max_positions: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExfiltration {
    paging_window: Option<String>,
    min_pages: Option<u64>,
    page_factor: Option<f64>,
    volume_window: Option<String>,
    volume_factor: Option<f64>,
    min_bytes: Option<u64>,
    min_history: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    window: Option<String>,
    min_addresses: Option<usize>,
    address_factor: Option<f64>,
    min_principals: Option<usize>,
    principal_factor: Option<f64>,
    cycling_ratio: Option<f64>,
    max_tracked: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBurst {
    window: Option<String>,
    floor: Option<u64>,
    sigmas: Option<f64>,
    factor: Option<f64>,
    min_history: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEncrypted {
    window: Option<String>,
    burst_floor: Option<u64>,
    burst_factor: Option<f64>,
    attempt_window: Option<String>,
    min_attempts: Option<usize>,
    max_attempt_bytes: Option<u64>,
    max_attempt_duration: Option<String>,
    size_band: Option<u64>,
    size_band_ratio: Option<f64>,
    min_distinct_sizes: Option<usize>,
    max_clients: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogin {
    endpoints: Option<Vec<String>>,
    failure_markers: Option<Vec<String>>,
    window: Option<String>,
    min_failures: Option<usize>,
    stuffing_user_ratio: Option<f64>,
    stuffing_min_users: Option<usize>,
    brute_max_users: Option<usize>,
    global_window: Option<String>,
    global_min_failures: Option<usize>,
    global_min_users: Option<usize>,
    global_min_clients: Option<usize>,
    global_factor: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScan {
    window: Option<String>,
    min_distinct_misses: Option<usize>,
    min_miss_ratio: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnum {
    window: Option<String>,
    min_distinct: Option<usize>,
    factor: Option<f64>,
    min_distinct_with_misses: Option<usize>,
    min_miss_share: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnusual {
    min_profile_requests: Option<u64>,
    rare_share: Option<f64>,
    min_population: Option<usize>,
    max_late_discoveries: Option<u32>,
    sensitive_words: Option<Vec<String>>,
}

/// Applies `Some` values onto defaults, validating each with its key name.
struct Apply<'a> {
    path: &'a str,
}

impl Apply<'_> {
    fn err(&self, key: &str, what: impl std::fmt::Display) -> String {
        format!("{}: {key}: {what}", self.path)
    }

    /// A duration from 1 ms to the key's bound ([`max_duration`]): what the run can
    /// hold in memory and add to packet time without overflow.
    fn dur(&self, key: &str, v: Option<String>, into: &mut Nanos) -> Result<(), String> {
        if let Some(s) = v {
            let max = max_duration(key);
            match parse_duration(&s) {
                Some(d) if (MS..=max).contains(&d) => *into = d,
                Some(_) => {
                    return Err(self.err(
                        key,
                        format!("'{s}' is out of range (1ms to {})", show_duration(max)),
                    ));
                }
                None => {
                    return Err(
                        self.err(key, format!("'{s}' is not a duration (e.g. 90s, 5m, 1h)"))
                    );
                }
            }
        }
        Ok(())
    }

    fn positive<T: PartialOrd + Default + Copy + std::fmt::Display>(
        &self,
        key: &str,
        v: Option<T>,
        into: &mut T,
    ) -> Result<(), String> {
        if let Some(x) = v {
            if x.partial_cmp(&T::default()) != Some(std::cmp::Ordering::Greater) {
                return Err(self.err(key, format!("{x} must be positive")));
            }
            *into = x;
        }
        Ok(())
    }

    fn ratio(&self, key: &str, v: Option<f64>, into: &mut f64) -> Result<(), String> {
        if let Some(x) = v {
            if !(0.0..=1.0).contains(&x) {
                return Err(self.err(key, format!("{x} must be between 0 and 1")));
            }
            *into = x;
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &str) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: cannot read configuration: {e}"))?;
        Config::parse(path, &text)
    }

    /// Parses configuration text; `path` names it in errors. Each TOML section is
    /// applied onto the defaults by its own function below.
    pub fn parse(path: &str, text: &str) -> Result<Config, String> {
        let raw: Raw = basic_toml::from_str(text).map_err(|e| format!("{path}: {e}"))?;
        let a = Apply { path };
        let mut c = Config::default();
        if let Some(r) = raw.capture {
            capture(&a, r, &mut c.capture)?;
        }
        if let Some(m) = raw.memory {
            memory(&a, m, &mut c.memory)?;
        }
        if let Some(f) = raw.flow {
            c.memory.max_flows_set = f.max_flows.is_some();
            flow(&a, f, &mut c.flow)?;
        }
        if let Some(d) = raw.detect {
            c.memory.max_clients_set = d.max_clients.is_some();
            detect(&a, d, &mut c.detect)?;
        }
        if let Some(p) = raw.posture {
            posture(&a, p, &mut c.detect.posture)?;
        }
        if let Some(e) = raw.exposure {
            exposure(&a, e, &mut c.flow)?;
        }
        Ok(c)
    }
}

/// `[posture]`.
fn posture(a: &Apply<'_>, p: RawPosture, t: &mut crate::posture::Config) -> Result<(), String> {
    if let Some(list) = p.cleartext_ok {
        t.cleartext_ok = list
            .iter()
            .map(|s| {
                s.parse::<Cidr>()
                    .map_err(|e| a.err("posture.cleartext_ok", e))
            })
            .collect::<Result<_, _>>()?;
    }
    a.dur("posture.cert_warn", p.cert_warn, &mut t.cert_warn)?;
    a.positive("posture.max_findings", p.max_findings, &mut t.max_findings)
}

/// `[capture]`.
fn capture(a: &Apply<'_>, r: RawCapture, c: &mut RingOptions) -> Result<(), String> {
    if let Some(n) = r.ring_size_mib {
        if n > 4096 {
            return Err(a.err("capture.ring_size_mib", format!("{n} is not 0-4096")));
        }
        c.ring_mib = n;
    }
    if let Some(t) = r.block_timeout {
        c.block_timeout_ms = parse_block_timeout(&t)
            .ok_or_else(|| a.err("capture.block_timeout", format!("'{t}' is not 1ms-10s")))?;
    }
    if let Some(p) = r.promiscuous {
        c.promiscuous = p;
    }
    Ok(())
}

/// `[memory]`.
fn memory(a: &Apply<'_>, m: RawMemory, c: &mut MemoryConfig) -> Result<(), String> {
    if let Some(l) = m.limit {
        c.limit = memory_limit(&l).map_err(|e| a.err("memory.limit", e))?;
    }
    Ok(())
}

/// `[flow]`.
fn flow(a: &Apply<'_>, f: RawFlow, c: &mut FlowConfig) -> Result<(), String> {
    a.positive("flow.max_flows", f.max_flows, &mut c.max_flows)?;
    a.dur("flow.idle_timeout", f.idle_timeout, &mut c.idle_timeout)?;
    if let Some(n) = f.body_prefix {
        if n > 1 << 20 {
            return Err(a.err("flow.body_prefix", format!("{n} is more than 1 MiB")));
        }
        c.body_prefix = n;
    }
    Ok(())
}

/// `[exposure]`.
fn exposure(a: &Apply<'_>, e: RawExposure, c: &mut FlowConfig) -> Result<(), String> {
    if let Some(n) = e.sensitive_prefix {
        if n > crate::sensitive::MAX_PREFIX {
            return Err(a.err(
                "exposure.sensitive_prefix",
                format!("{n} is more than 1 MiB"),
            ));
        }
        c.sensitive_prefix = n;
    }
    Ok(())
}

/// `[detect]` and its detector subsections.
fn detect(a: &Apply<'_>, d: RawDetect, t: &mut DetectConfig) -> Result<(), String> {
    a.dur(
        "detect.learning_period",
        d.learning_period,
        &mut t.learning_period,
    )?;
    a.dur("detect.cooldown", d.cooldown, &mut t.cooldown)?;
    a.dur("detect.episode_gap", d.episode_gap, &mut t.episode_gap)?;
    a.positive("detect.max_clients", d.max_clients, &mut t.max_clients)?;
    if let Some(n) = d.shards {
        if n > 256 {
            return Err(a.err("detect.shards", format!("{n} is more than 256")));
        }
        t.shards = n;
    }
    t.state_file = d.state_file.filter(|p| !p.is_empty()).map(Into::into);
    if let Some(k) = d.client_key {
        t.identity.mode = k.parse().map_err(|e| a.err("detect.client_key", e))?;
    }
    if let Some(p) = d.ipv6_prefix {
        if p == 0 || p > 128 {
            return Err(a.err("detect.ipv6_prefix", format!("{p} must be 1-128")));
        }
        t.identity.ipv6_prefix = p;
    }
    if let Some(salt) = d.salt.filter(|s| !s.is_empty()) {
        t.identity.salt = crate::identity::IdentityConfig::salt_from(&salt);
        t.identity.salt_configured = true;
    }
    a.dur(
        "detect.snapshot_interval",
        d.snapshot_interval,
        &mut t.snapshot_interval,
    )?;
    if let Some(list) = d.trusted_proxies {
        t.trusted_proxies = list
            .iter()
            .map(|s| {
                s.parse::<Cidr>()
                    .map_err(|e| a.err("detect.trusted_proxies", e))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(b) = d.burst {
        detect_burst(a, b, t)?;
    }
    if let Some(e) = d.encrypted {
        detect_encrypted(a, e, t)?;
    }
    if let Some(l) = d.login {
        detect_login(a, l, t)?;
    }
    if let Some(s) = d.endpoint_scan {
        detect_endpoint_scan(a, s, t)?;
    }
    if let Some(e) = d.object_enumeration {
        detect_object_enumeration(a, e, t)?;
    }
    if let Some(x) = d.data_exfiltration {
        detect_exfiltration(a, x, t)?;
    }
    if let Some(k) = d.token_misuse {
        detect_tokens(a, k, t)?;
    }
    if let Some(tp) = d.templates {
        detect_templates(a, tp, t)?;
    }
    if let Some(u) = d.unusual_endpoint {
        detect_unusual_endpoint(a, u, t)?;
    }
    Ok(())
}

/// `[detect.data_exfiltration]`.
fn detect_exfiltration(
    a: &Apply<'_>,
    x: RawExfiltration,
    t: &mut DetectConfig,
) -> Result<(), String> {
    let c = &mut t.data_exfiltration;
    for (key, v, into) in [
        (
            "detect.data_exfiltration.paging_window",
            x.paging_window,
            &mut c.paging_window,
        ),
        (
            "detect.data_exfiltration.volume_window",
            x.volume_window,
            &mut c.volume_window,
        ),
    ] {
        a.dur(key, v, into)?;
        if *into < 1_000_000_000 {
            return Err(a.err(key, "must be at least 1s"));
        }
    }
    a.positive(
        "detect.data_exfiltration.min_pages",
        x.min_pages,
        &mut c.min_pages,
    )?;
    a.positive(
        "detect.data_exfiltration.page_factor",
        x.page_factor,
        &mut c.page_factor,
    )?;
    a.positive(
        "detect.data_exfiltration.volume_factor",
        x.volume_factor,
        &mut c.volume_factor,
    )?;
    a.positive(
        "detect.data_exfiltration.min_bytes",
        x.min_bytes,
        &mut c.min_bytes,
    )?;
    a.positive(
        "detect.data_exfiltration.min_history",
        x.min_history,
        &mut c.min_history,
    )
}

/// `[detect.token_misuse]`.
fn detect_tokens(a: &Apply<'_>, k: RawTokens, t: &mut DetectConfig) -> Result<(), String> {
    let c = &mut t.token_misuse;
    a.dur("detect.token_misuse.window", k.window, &mut c.window)?;
    if c.window < 1_000_000_000 {
        return Err(a.err("detect.token_misuse.window", "must be at least 1s"));
    }
    a.positive(
        "detect.token_misuse.min_addresses",
        k.min_addresses,
        &mut c.min_addresses,
    )?;
    a.positive(
        "detect.token_misuse.address_factor",
        k.address_factor,
        &mut c.address_factor,
    )?;
    a.positive(
        "detect.token_misuse.min_principals",
        k.min_principals,
        &mut c.min_principals,
    )?;
    a.positive(
        "detect.token_misuse.principal_factor",
        k.principal_factor,
        &mut c.principal_factor,
    )?;
    a.positive(
        "detect.token_misuse.cycling_ratio",
        k.cycling_ratio,
        &mut c.cycling_ratio,
    )?;
    a.positive(
        "detect.token_misuse.max_tracked",
        k.max_tracked,
        &mut c.max_tracked,
    )
}

/// `[detect.burst]`.
fn detect_burst(a: &Apply<'_>, b: RawBurst, t: &mut DetectConfig) -> Result<(), String> {
    a.dur("detect.burst.window", b.window, &mut t.burst.window)?;
    if t.burst.window < 1_000_000_000 {
        return Err(a.err("detect.burst.window", "must be at least 1s"));
    }
    a.positive("detect.burst.floor", b.floor, &mut t.burst.floor)?;
    a.positive("detect.burst.sigmas", b.sigmas, &mut t.burst.sigmas)?;
    a.positive("detect.burst.factor", b.factor, &mut t.burst.factor)?;
    a.positive(
        "detect.burst.min_history",
        b.min_history,
        &mut t.burst.min_history,
    )
}

/// `[detect.encrypted]`.
fn detect_encrypted(a: &Apply<'_>, e: RawEncrypted, t: &mut DetectConfig) -> Result<(), String> {
    let c = &mut t.encrypted;
    for (key, v, into) in [
        ("detect.encrypted.window", e.window, &mut c.window),
        (
            "detect.encrypted.attempt_window",
            e.attempt_window,
            &mut c.attempt_window,
        ),
        (
            "detect.encrypted.max_attempt_duration",
            e.max_attempt_duration,
            &mut c.max_attempt_duration,
        ),
    ] {
        a.dur(key, v, into)?;
        if *into < 1_000_000_000 {
            return Err(a.err(key, "must be at least 1s"));
        }
    }
    a.positive(
        "detect.encrypted.burst_floor",
        e.burst_floor,
        &mut c.burst_floor,
    )?;
    a.positive(
        "detect.encrypted.burst_factor",
        e.burst_factor,
        &mut c.burst_factor,
    )?;
    a.positive(
        "detect.encrypted.min_attempts",
        e.min_attempts,
        &mut c.min_attempts,
    )?;
    a.positive(
        "detect.encrypted.max_attempt_bytes",
        e.max_attempt_bytes,
        &mut c.max_attempt_bytes,
    )?;
    a.positive("detect.encrypted.size_band", e.size_band, &mut c.size_band)?;
    a.ratio(
        "detect.encrypted.size_band_ratio",
        e.size_band_ratio,
        &mut c.size_band_ratio,
    )?;
    a.positive(
        "detect.encrypted.min_distinct_sizes",
        e.min_distinct_sizes,
        &mut c.min_distinct_sizes,
    )?;
    a.positive(
        "detect.encrypted.max_clients",
        e.max_clients,
        &mut c.max_clients,
    )
}

/// `[detect.login]`.
fn detect_login(a: &Apply<'_>, l: RawLogin, t: &mut DetectConfig) -> Result<(), String> {
    let c = &mut t.login;
    if let Some(e) = l.endpoints {
        c.endpoints = e.into_iter().map(|s| normalise_endpoint(&s)).collect();
    }
    if let Some(m) = l.failure_markers {
        c.failure_markers = m;
    }
    a.dur("detect.login.window", l.window, &mut c.window)?;
    a.positive(
        "detect.login.min_failures",
        l.min_failures,
        &mut c.min_failures,
    )?;
    a.ratio(
        "detect.login.stuffing_user_ratio",
        l.stuffing_user_ratio,
        &mut c.stuffing_user_ratio,
    )?;
    a.positive(
        "detect.login.stuffing_min_users",
        l.stuffing_min_users,
        &mut c.stuffing_min_users,
    )?;
    a.positive(
        "detect.login.brute_max_users",
        l.brute_max_users,
        &mut c.brute_max_users,
    )?;
    a.dur(
        "detect.login.global_window",
        l.global_window,
        &mut c.global_window,
    )?;
    a.positive(
        "detect.login.global_min_failures",
        l.global_min_failures,
        &mut c.global_min_failures,
    )?;
    a.positive(
        "detect.login.global_min_users",
        l.global_min_users,
        &mut c.global_min_users,
    )?;
    a.positive(
        "detect.login.global_min_clients",
        l.global_min_clients,
        &mut c.global_min_clients,
    )?;
    a.positive(
        "detect.login.global_factor",
        l.global_factor,
        &mut c.global_factor,
    )
}

/// `[detect.endpoint_scan]`.
fn detect_endpoint_scan(a: &Apply<'_>, s: RawScan, t: &mut DetectConfig) -> Result<(), String> {
    let c = &mut t.endpoint_scan;
    a.dur("detect.endpoint_scan.window", s.window, &mut c.window)?;
    a.positive(
        "detect.endpoint_scan.min_distinct_misses",
        s.min_distinct_misses,
        &mut c.min_distinct_misses,
    )?;
    a.ratio(
        "detect.endpoint_scan.min_miss_ratio",
        s.min_miss_ratio,
        &mut c.min_miss_ratio,
    )
}

/// `[detect.object_enumeration]`.
fn detect_object_enumeration(
    a: &Apply<'_>,
    e: RawEnum,
    t: &mut DetectConfig,
) -> Result<(), String> {
    let c = &mut t.object_enumeration;
    a.dur("detect.object_enumeration.window", e.window, &mut c.window)?;
    a.positive(
        "detect.object_enumeration.min_distinct",
        e.min_distinct,
        &mut c.min_distinct,
    )?;
    a.positive("detect.object_enumeration.factor", e.factor, &mut c.factor)?;
    a.positive(
        "detect.object_enumeration.min_distinct_with_misses",
        e.min_distinct_with_misses,
        &mut c.min_distinct_with_misses,
    )?;
    a.ratio(
        "detect.object_enumeration.min_miss_share",
        e.min_miss_share,
        &mut c.min_miss_share,
    )
}

/// `[detect.templates]`.
fn detect_templates(a: &Apply<'_>, tp: RawTemplates, t: &mut DetectConfig) -> Result<(), String> {
    let c = &mut t.templates;
    a.positive(
        "detect.templates.param_limit",
        tp.param_limit,
        &mut c.param_limit,
    )?;
    a.ratio(
        "detect.templates.min_rare_share",
        tp.min_rare_share,
        &mut c.min_rare_share,
    )?;
    a.positive(
        "detect.templates.max_positions",
        tp.max_positions,
        &mut c.max_positions,
    )
}

/// `[detect.unusual_endpoint]`.
fn detect_unusual_endpoint(
    a: &Apply<'_>,
    u: RawUnusual,
    t: &mut DetectConfig,
) -> Result<(), String> {
    let c = &mut t.unusual_endpoint;
    a.positive(
        "detect.unusual_endpoint.min_profile_requests",
        u.min_profile_requests,
        &mut c.min_profile_requests,
    )?;
    a.ratio(
        "detect.unusual_endpoint.rare_share",
        u.rare_share,
        &mut c.rare_share,
    )?;
    a.positive(
        "detect.unusual_endpoint.min_population",
        u.min_population,
        &mut c.min_population,
    )?;
    if let Some(n) = u.max_late_discoveries {
        c.max_late_discoveries = n;
    }
    if let Some(w) = u.sensitive_words {
        c.sensitive_words = w.into_iter().map(|s| s.to_ascii_lowercase()).collect();
    }
    Ok(())
}

/// `post /Login` → `POST /Login` (methods compare upper-case, paths as written).
fn normalise_endpoint(s: &str) -> String {
    match s.trim().split_once(' ') {
        Some((m, p)) => format!("{} {}", m.to_ascii_uppercase(), p.trim()),
        None => s.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("x.toml", "").unwrap();
        assert_eq!(c.detect.learning_period, 300 * 1_000_000_000);
        assert_eq!(c.detect.login.min_failures, 10);
    }

    #[test]
    fn the_example_file_is_valid_and_states_the_defaults() {
        let text = include_str!("../apiwatch.example.toml");
        let c = Config::parse("apiwatch.example.toml", text).unwrap();
        let d = Config::default();
        assert_eq!(format!("{:?}", c.detect), format!("{:?}", d.detect));
        assert_eq!(format!("{:?}", c.flow), format!("{:?}", d.flow));
        assert_eq!(format!("{:?}", c.capture), format!("{:?}", d.capture));
        assert_eq!(format!("{:?}", c.memory), format!("{:?}", d.memory));
        // The commented-out numbers are what the budget gives.
        let mut c = c;
        c.apply_memory_budget(1);
        assert!(text.contains(&format!("# max_flows = {} ", c.flow.max_flows)));
        assert!(text.contains(&format!("# max_clients = {} ", c.detect.max_clients)));
    }

    #[test]
    fn one_memory_budget_whatever_the_worker_count() {
        let mut one = Config::default();
        one.apply_memory_budget(1);
        let mut four = Config::default();
        four.apply_memory_budget(4);
        assert!(one.flow.max_flows - four.flow.max_flows * 4 < 4);
        assert_eq!(four.detect.max_clients, one.detect.max_clients);
        let mut big = Config::parse("x.toml", "[memory]\nlimit = \"2GB\"").unwrap();
        big.apply_memory_budget(1);
        assert!(big.flow.max_flows.abs_diff(4 * one.flow.max_flows) < 4);
        // Set by hand: kept, and shared by the workers.
        let mut set = Config::parse("x.toml", "[flow]\nmax_flows = 1000\n").unwrap();
        set.apply_memory_budget(2);
        assert_eq!(set.flow.max_flows, 500);
        for bad in ["10MB", "2PB", "lots"] {
            let e = Config::parse("x.toml", &format!("[memory]\nlimit = \"{bad}\"")).unwrap_err();
            assert!(e.contains("memory.limit"), "{e}");
        }
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
    }

    #[test]
    fn durations_and_numbers_are_bounded() {
        for (text, key) in [
            (
                "[detect.burst]\nwindow = \"5000000h\"",
                "detect.burst.window",
            ),
            ("[detect]\ncooldown = \"25h\"", "detect.cooldown"),
            (
                "[detect]\nlearning_period = \"2161h\"",
                "detect.learning_period",
            ),
            ("[flow]\nidle_timeout = \"0ms\"", "flow.idle_timeout"),
            ("[detect.burst]\nsigmas = nan", "detect.burst.sigmas"),
            (
                "[detect.encrypted]\nmin_attempts = 0",
                "detect.encrypted.min_attempts",
            ),
            (
                "[detect.encrypted]\nwindow = \"2h\"",
                "detect.encrypted.window",
            ),
            (
                "[detect.encrypted]\nsize_band_ratio = 2.0",
                "detect.encrypted.size_band_ratio",
            ),
        ] {
            let e = Config::parse("x.toml", text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
        let c = Config::parse("x.toml", "[detect]\nlearning_period = \"2160h\"").unwrap();
        assert_eq!(
            c.detect.learning_period,
            max_duration("detect.learning_period")
        );
    }

    #[test]
    fn keys_override_defaults() {
        let c = Config::parse(
            "x.toml",
            r#"
            [flow]
            body_prefix = 512
            [detect]
            learning_period = "90s"
            trusted_proxies = ["10.0.0.0/8", "2001:db8::/32"]
            [detect.login]
            endpoints = ["post /api/session"]
            min_failures = 5
            [detect.burst]
            floor = 50
            [exposure]
            sensitive_prefix = 4096
            "#,
        )
        .unwrap();
        assert_eq!(c.flow.body_prefix, 512);
        assert_eq!(c.flow.sensitive_prefix, 4096);
        let off = Config::parse("x.toml", "[exposure]\nsensitive_prefix = 0\n").unwrap();
        assert_eq!(off.flow.sensitive_prefix, 0);
        assert_eq!(
            Config::default().flow.sensitive_prefix,
            crate::sensitive::DEFAULT_PREFIX
        );
        assert_eq!(c.detect.learning_period, 90 * 1_000_000_000);
        assert_eq!(c.detect.trusted_proxies.len(), 2);
        assert_eq!(c.detect.login.endpoints, ["POST /api/session"]);
        assert_eq!(c.detect.login.min_failures, 5);
        assert_eq!(c.detect.burst.floor, 50);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let e = Config::parse("a.toml", "[detect]\nlearning_perod = \"5m\"\n").unwrap_err();
        assert!(
            e.starts_with("a.toml: ") && e.contains("learning_perod"),
            "{e}"
        );
        let e = Config::parse("a.toml", "[detect]\nlearning_period = \"soon\"\n").unwrap_err();
        assert!(
            e.contains("detect.learning_period") && e.contains("soon"),
            "{e}"
        );
        let e = Config::parse("a.toml", "[detect.login]\nmin_failures = 0\n").unwrap_err();
        assert!(e.contains("detect.login.min_failures"), "{e}");
        let e = Config::parse("a.toml", "[exposure]\nsensitive_prefix = 2000000\n").unwrap_err();
        assert!(e.contains("exposure.sensitive_prefix"), "{e}");
        let e = Config::parse("a.toml", "[detect]\nshards = 1000\n").unwrap_err();
        assert!(e.contains("detect.shards") && e.contains("256"), "{e}");
        let e =
            Config::parse("a.toml", "[detect]\ntrusted_proxies = [\"10.0.0.0/40\"]\n").unwrap_err();
        assert!(e.contains("detect.trusted_proxies"), "{e}");
        let e =
            Config::parse("a.toml", "[detect.endpoint_scan]\nmin_miss_ratio = 2.0\n").unwrap_err();
        assert!(e.contains("min_miss_ratio"), "{e}");
        assert!(
            Config::load("/no/such/apiwatch.toml")
                .unwrap_err()
                .contains("/no/such/apiwatch.toml")
        );
    }
}
