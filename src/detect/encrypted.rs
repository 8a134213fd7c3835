//! Behaviour on TLS connections nobody can read (no keys): what a client does is
//! judged from its connections alone, never from invented requests.
//!
//! Two events reach this detector, both from the engine's global half in packet
//! order: a connection's TLS record (its handshake: a connection started, with its
//! server name and JA4) and, when the connection ends, what it carried after the
//! handshake ([`crate::tls::Closed`]: bytes and segments each way, duration).
//!
//! - `burst`: new TLS connections from one client in a short window, far above the
//!   client's own learned rate and above an absolute floor (browsers open a handful
//!   per origin; API clients keep theirs alive; a tool that reconnects per request
//!   at full speed opens dozens a second).
//! - `brute_force` (encrypted): short, small connections from one client to one
//!   server at a tool's pace (two a second sustained), whose requests fall in a
//!   few size groups (one request shape repeated: a tool's steps per attempt) and
//!   whose answers do too, as refusals do. A poller reconnects every few seconds;
//!   a client that always works this way has learned it as its baseline. Without
//!   keys a stuffing run (many usernames) and a fast scripted loop over one route
//!   look the same: the evidence gives the sizes so a reader can judge.
//!
//! Every alert's evidence says what was seen: connections, byte sizes, the server
//! name and the JA4 fingerprints the client used (a change of fingerprint within
//! the episode, e.g. from a browser's to a scripting library's, is shown).
//!
//! Bounded: at most [`Config::max_clients`] clients (the least recently seen
//! evicted in bulk), [`MAX_SERVERS`] servers per client, [`MAX_STARTS`] recent
//! connection starts and [`MAX_ENDS`] recent connection ends per server.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use serde_json::json;

use super::shard::{Episode, next_report};
use super::window::Ewma;
use super::{Alert, DetectConfig, Finding, Kind, Novelty};
use crate::http::Exchange;
use crate::identity::ClientId;
use crate::time::Nanos;
use crate::tls::{Closed, Session};

const SEC: Nanos = 1_000_000_000;

/// Servers followed per client (the rest are not judged for attempts).
pub const MAX_SERVERS: usize = 8;
/// Connection starts remembered per client (enough for any floor below it).
pub const MAX_STARTS: usize = 1024;
/// Ended connections remembered per (client, server).
pub const MAX_ENDS: usize = 256;
/// Size groups an attempt pattern may have (a tool's steps per attempt).
const MAX_MODES: usize = 3;
/// JA4 fingerprints remembered per client.
const MAX_JA4: usize = 4;

/// Thresholds (config `[detect.encrypted]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Window new connections are counted over.
    pub window: Nanos,
    /// Never a burst below this many new connections per window (10 s): 50 is 5
    /// handshakes a second sustained, many times a browser's page load.
    pub burst_floor: u64,
    /// A burst is also this multiple of the client's own learned rate.
    pub burst_factor: f64,
    /// Window attempts are counted over.
    pub attempt_window: Nanos,
    /// Attempt-like connections to one server in the window before it fires: 20 in
    /// 10 s is two a second sustained, a tool's pace (a person retyping a password
    /// opens a few; a poller one every few seconds).
    pub min_attempts: usize,
    /// A connection carrying more than this from the client is no attempt.
    pub max_attempt_bytes: u64,
    /// A connection lasting longer than this is no attempt.
    pub max_attempt_duration: Nanos,
    /// Requests "near the same size": within this many bytes of the median, or...
    pub size_band: u64,
    /// ...this fraction of it, whichever is larger.
    pub size_band_ratio: f64,
    /// Distinct sizes the largest-varying request group needs (1: any; more asks
    /// for attempts that differ as passwords of different lengths do, which a
    /// PIN or fixed-length wordlist does not).
    pub min_distinct_sizes: usize,
    /// Clients followed.
    pub max_clients: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: 10 * SEC,
            burst_floor: 50,
            burst_factor: 4.0,
            attempt_window: 10 * SEC,
            min_attempts: 20,
            max_attempt_bytes: 16 * 1024,
            max_attempt_duration: 10 * SEC,
            size_band: 48,
            size_band_ratio: 0.05,
            min_distinct_sizes: 1,
            max_clients: 65_536,
        }
    }
}

/// One ended connection's sizes.
#[derive(Debug, Clone, Copy)]
struct End {
    ts: Nanos,
    client_bytes: u64,
    server_bytes: u64,
}

#[derive(Debug, Default)]
struct Server {
    addr: Option<(IpAddr, u16)>,
    sni: Option<String>,
    ends: VecDeque<End>,
    /// Attempt-like connections per window, learned while nothing fires.
    rate: Rate,
}

/// A count per window and its learned usual value (EWMA of completed windows).
#[derive(Debug, Default)]
struct Rate {
    usual: Ewma,
    start: Nanos,
    count: u64,
}

impl Rate {
    /// Moves to the window of `ts`; completed windows teach the usual count unless
    /// `frozen` (an episode goes on: the attack must not become the usual). A long
    /// silence (16 windows) restarts at `ts`: the windows in between were empty.
    fn roll(&mut self, ts: Nanos, span: Nanos, frozen: bool) {
        if self.start == 0 {
            self.start = ts;
        }
        while ts >= self.start.saturating_add(span) {
            if !frozen {
                self.usual.update(self.count as f64, 0.1);
            }
            self.count = 0;
            self.start = self.start.saturating_add(span);
            if ts >= self.start.saturating_add(16 * span) {
                self.start = ts;
            }
        }
    }
}

#[derive(Debug, Default)]
struct Client {
    last_seen: Nanos,
    starts: VecDeque<Nanos>,
    /// New connections per window, learned while no burst goes on.
    rate: Rate,
    /// JA4 fingerprints in the order first seen, with their connection counts.
    ja4: Vec<(String, u32)>,
    servers: Vec<Server>,
    episodes: [Option<Episode>; 2],
}

/// The detector's state: one entry per client seen on TLS connections.
#[derive(Debug, Default)]
pub struct Encrypted {
    clients: HashMap<u64, (ClientId, Client), super::Prehashed>,
    pub evicted: u64,
}

impl Encrypted {
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// One TLS record (`ex.tls` is set): a connection that started, or (with
    /// `closed`) one that ended. Alerts go to `out`.
    pub fn observe(
        &mut self,
        cfg: &DetectConfig,
        ex: &Exchange,
        id: ClientId,
        id_hash: u64,
        out: &mut Vec<Alert>,
    ) {
        let Some(session) = ex.tls.as_deref() else {
            return;
        };
        let c = &cfg.encrypted;
        if self.clients.len() >= c.max_clients && !self.clients.contains_key(&id_hash) {
            let n = crate::lru::batch(c.max_clients);
            for k in crate::lru::oldest(&self.clients, n, |(_, c)| c.last_seen) {
                self.clients.remove(&k);
                self.evicted += 1;
            }
        }
        let (id, client) = self
            .clients
            .entry(id_hash)
            .or_insert_with(|| (id, Client::default()));
        let ts = ex.ts;
        client.last_seen = client.last_seen.max(ts);
        for e in &mut client.episodes {
            if e.is_some_and(|e| ts >= e.last_hit.saturating_add(cfg.episode_gap)) {
                *e = None;
            }
        }
        let found = match &session.closed {
            None => started(c, client, session, ts),
            Some(closed) => ended(c, client, ex, session, closed),
        };
        let Some(f) = found else {
            return;
        };
        let slot = match f.kind {
            Kind::Burst => 0,
            _ => 1,
        };
        let Some(report) = next_report(cfg, client.episodes[slot], ts) else {
            if let Some(e) = client.episodes[slot].as_mut() {
                e.last_hit = ts;
            }
            return;
        };
        let e = client.episodes[slot].get_or_insert(Episode::new(ts));
        if report == 1 {
            e.start = ts;
        }
        e.last_hit = ts;
        e.last_report = ts;
        e.reports = report;
        let host = session.client.as_ref().and_then(|h| h.sni.clone());
        out.push(Alert {
            ts,
            finding: f,
            client_ip: Some(ex.client_ip),
            client_key: Some(id.key()),
            client_port: ex.client_port,
            conn_ip: ex.client_ip,
            trans_depth: 0,
            flow: ex.flow,
            server_ip: ex.server_ip,
            server_port: ex.server_port,
            host,
            uri: None,
            method: None,
            status: None,
            tls: true,
            samples: Vec::new(),
            report,
            episode_start: e.start,
        });
    }
}

/// The JA4s a client used, as evidence: first seen first.
fn ja4_evidence(client: &Client) -> serde_json::Value {
    json!(
        client
            .ja4
            .iter()
            .map(|(j, n)| json!({"ja4": j, "connections": n}))
            .collect::<Vec<_>>()
    )
}

/// A connection started: counted; a burst when far above the client's usual.
fn started(cfg: &Config, client: &mut Client, session: &Session, ts: Nanos) -> Option<Finding> {
    if let Some(ja4) = session.client.as_ref().map(|h| h.ja4.as_str())
        && !ja4.is_empty()
    {
        let full = client.ja4.len() >= MAX_JA4;
        match client.ja4.iter_mut().find(|(j, _)| j == ja4) {
            Some((_, n)) => *n = n.saturating_add(1),
            None if !full => client.ja4.push((ja4.to_string(), 1)),
            None => {}
        }
    }
    if client.starts.len() == MAX_STARTS {
        client.starts.pop_front();
    }
    client.starts.push_back(ts);
    let since = ts.saturating_sub(cfg.window);
    while client.starts.front().is_some_and(|&t| t < since) {
        client.starts.pop_front();
    }
    client
        .rate
        .roll(ts, cfg.window, client.episodes[0].is_some());
    client.rate.count += 1;
    let n = client.starts.len() as u64;
    let usual = client.rate.usual.mean;
    if n < cfg.burst_floor || (n as f64) < cfg.burst_factor * usual {
        return None;
    }
    let sni = session.client.as_ref().and_then(|h| h.sni.as_deref());
    Some(Finding {
        kind: Kind::Burst,
        endpoint: None,
        summary: format!(
            "{n} new TLS connections in {} s (usually {usual:.1}); contents unreadable without keys",
            cfg.window / SEC
        ),
        evidence: json!({
            "encrypted": true,
            "connections": n,
            "window_s": cfg.window / SEC,
            "usual_connections": (usual * 10.0).round() / 10.0,
            "sni": sni,
            "ja4": ja4_evidence(client),
        }),
        severity: 2,
        clients: None,
        novelty: Novelty::Repeat,
    })
}

/// A connection ended: an attempt-like one joins its server's window; repeated
/// attempts when many are near one size, not identical, and answered alike.
fn ended(
    cfg: &Config,
    client: &mut Client,
    ex: &Exchange,
    session: &Session,
    closed: &Closed,
) -> Option<Finding> {
    let ts = closed.end;
    let addr = (ex.server_ip, ex.server_port);
    let attempting = client.episodes[1].is_some();
    let duration = closed.end.saturating_sub(closed.start);
    let attempt_like = closed.client_bytes > 0
        && closed.server_bytes > 0
        && closed.client_bytes <= cfg.max_attempt_bytes
        && duration <= cfg.max_attempt_duration;
    let i = match client.servers.iter().position(|s| s.addr == Some(addr)) {
        Some(i) => i,
        None if client.servers.len() < MAX_SERVERS => {
            client.servers.push(Server {
                addr: Some(addr),
                sni: session.client.as_ref().and_then(|h| h.sni.clone()),
                ..Server::default()
            });
            client.servers.len() - 1
        }
        None => return None,
    };
    let s = &mut client.servers[i];
    s.rate.roll(ts, cfg.attempt_window, attempting);
    let since = ts.saturating_sub(cfg.attempt_window);
    while s.ends.front().is_some_and(|e| e.ts < since) {
        s.ends.pop_front();
    }
    if !attempt_like {
        return None;
    }
    s.rate.count += 1;
    if s.ends.len() == MAX_ENDS {
        s.ends.pop_front();
    }
    s.ends.push_back(End {
        ts,
        client_bytes: closed.client_bytes,
        server_bytes: closed.server_bytes,
    });
    let n = s.ends.len();
    if n < cfg.min_attempts || (n as f64) < 4.0 * s.rate.usual.mean {
        return None;
    }
    let requests = modes(cfg, s.ends.iter().map(|e| e.client_bytes));
    let answers = modes(cfg, s.ends.iter().map(|e| e.server_bytes));
    // A few sizes of request (a tool's steps: a GET then a POST per attempt), one
    // of them varying as credentials do, not one request repeated; answered alike.
    let covered = |m: &[Mode]| m.iter().map(|m| m.count).sum::<usize>() >= n * 4 / 5;
    let varying = requests
        .iter()
        .find(|m| m.count >= n / 4 && m.distinct >= cfg.min_distinct_sizes);
    let (true, Some(varying), true) = (covered(&requests), varying, covered(&answers)) else {
        return None;
    };
    let sni = s.sni.clone();
    let first_ja4 = client.ja4.first().map(|(j, _)| j.as_str());
    let ja4_changed = client.ja4.len() > 1;
    Some(Finding {
        kind: Kind::BruteForce,
        endpoint: None,
        summary: format!(
            "{n} short TLS connections to {} in {} s: requests of {} size group(s), one of {} sizes within {} bytes, answers alike (repeated attempts, e.g. credential guessing; contents unreadable without keys)",
            sni.as_deref().unwrap_or("the server"),
            cfg.attempt_window / SEC,
            requests.len(),
            varying.distinct,
            varying.band,
        ),
        evidence: json!({
            "encrypted": true,
            "connections": n,
            "window_s": cfg.attempt_window / SEC,
            "sni": sni,
            "request_bytes": requests.iter().map(Mode::evidence).collect::<Vec<_>>(),
            "answer_bytes": answers.iter().map(Mode::evidence).collect::<Vec<_>>(),
            "usual_connections": (s.rate.usual.mean * 10.0).round() / 10.0,
            "ja4": ja4_evidence(client),
            "ja4_first": first_ja4,
            "ja4_changed": ja4_changed,
            "note": "without keys, one account guessed and many accounts tried look alike",
        }),
        severity: 1,
        clients: None,
        novelty: Novelty::Repeat,
    })
}

/// A group of sizes within a band of each other: its median, how many, how many
/// distinct values.
#[derive(Debug, PartialEq, Eq)]
struct Mode {
    median: u64,
    band: u64,
    count: usize,
    distinct: usize,
}

impl Mode {
    fn evidence(&self) -> serde_json::Value {
        json!({"median": self.median, "connections": self.count, "distinct": self.distinct})
    }
}

/// Groups of sizes at most [`MAX_MODES`], the largest first: sorted sizes are cut
/// where the next one is more than twice the band (±max(`size_band`, the ratio of
/// the median)) away from the group's first.
fn modes(cfg: &Config, sizes: impl Iterator<Item = u64>) -> Vec<Mode> {
    let mut v: Vec<u64> = sizes.collect();
    v.sort_unstable();
    let band = |x: u64| {
        cfg.size_band
            .max((x as f64 * cfg.size_band_ratio).round() as u64)
    };
    let mut out: Vec<Mode> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let width = 2 * band(v[i]);
        let mut j = i;
        while j < v.len() && v[j] - v[i] <= width {
            j += 1;
        }
        let group = &v[i..j];
        let median = group[group.len() / 2];
        let mut distinct = group.to_vec();
        distinct.dedup();
        out.push(Mode {
            median,
            band: band(median),
            count: group.len(),
            distinct: distinct.len(),
        });
        i = j;
    }
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.median.cmp(&b.median)));
    out.truncate(MAX_MODES);
    out
}

#[cfg(test)]
mod tests;
