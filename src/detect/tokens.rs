//! `token_misuse`: credentials used the way their owners do not use them.
//!
//! - **shared principal**: one API key, bearer token or Basic-auth user (a keyed
//!   hash) used from many addresses within a window: more than an absolute floor and
//!   a multiple of what principals in general do (a phone that changes network, a
//!   laptop moving between office and home, give two or three).
//! - **principal cycling**: one address using many principals it had not used
//!   before, one after the other: many new principals in a window, few of them at
//!   once (to stay under per-key limits). A NAT'ed office also brings many
//!   principals from one address, but its users work side by side (the principals
//!   active at once are a large share of those it brought) and its tokens are
//!   handed out there: a principal first seen after a successful login from the
//!   address is issued, not brought (sessions, re-logins, token refreshes), and
//!   the principals brought must have been used (two requests each on average),
//!   not only shown once each as people arriving behind a new gateway do. An
//!   address with more principals at once than the table keeps (a proxy, a
//!   carrier NAT) is not judged for cycling.
//!
//! Only requests the server accepted count (not 401, 403 or 407): refused
//! credentials are attempts, which the login detectors judge.
//!
//! This runs in the engine's global half: a principal's addresses span clients of
//! every shard. Both tables are bounded (least recently seen evicted, counted).
//! Principals are keyed hashes (the identity salt), addresses IPv6 /64 prefixes.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::json;

use super::window::Ewma;
use super::{Finding, Kind, Novelty, round};
use crate::identity::Principal;
use crate::time::Nanos;

const SEC: Nanos = 1_000_000_000;

/// Thresholds (config `[detect.token_misuse]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// The span addresses and principals are counted over.
    pub window: Nanos,
    /// A shared principal: at least this many addresses in the window...
    pub min_addresses: usize,
    /// ...and this multiple of the population's usual addresses per principal.
    pub address_factor: f64,
    /// Cycling: at least this many principals new to the address in the window...
    pub min_principals: usize,
    /// ...this multiple of the population's usual new principals per address...
    pub principal_factor: f64,
    /// ...and at least this many times the most it used at the same moment.
    pub cycling_ratio: f64,
    /// Principals and addresses tracked (each table).
    pub max_tracked: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: 300 * SEC,
            min_addresses: 5,
            address_factor: 3.0,
            min_principals: 6,
            principal_factor: 3.0,
            cycling_ratio: 3.0,
            max_tracked: 100_000,
        }
    }
}

/// Addresses remembered per principal, and principals per address (about 1 KiB
/// an entry at most: 100 k entries a table stay near 100 MiB whatever is sent).
const MAX_MEMBERS: usize = 32;
/// Addresses listed in an alert.
const LISTED: usize = 16;

/// One address of a principal, or one principal of an address.
#[derive(Debug, Clone, Copy)]
struct Member<K> {
    key: K,
    first: Nanos,
    last: Nanos,
    /// Handed out on this address: the first new principal after a successful
    /// login from it (a session token, a re-login's fresh one).
    issued: bool,
    /// Requests made with it (saturating).
    requests: u16,
}

#[derive(Debug, Clone)]
struct Entry<K> {
    members: Vec<Member<K>>,
    last_seen: Nanos,
    /// Start of the window being counted for the population.
    window_start: Nanos,
    /// An alert was raised at: re-raised once per cooldown while it goes on.
    alerted: Option<Nanos>,
    /// The most members a finished window of this entry's had: its own usual (a
    /// fleet of servers sharing one key, an office gateway).
    peak: usize,
    /// Successful logins from this address whose token has not been seen yet.
    logins: Vec<Nanos>,
    /// More members than [`MAX_MEMBERS`] at once until then (a proxy or a carrier
    /// NAT): the ones dropped would come back as new, so no cycling is judged.
    saturated_until: Nanos,
}

impl<K: Copy + PartialEq> Entry<K> {
    fn new(ts: Nanos) -> Self {
        Entry {
            members: Vec::new(),
            last_seen: ts,
            window_start: ts,
            alerted: None,
            peak: 0,
            logins: Vec::new(),
            saturated_until: 0,
        }
    }

    /// Records `key` at `ts`; whether it is new to this entry's window.
    fn touch(&mut self, key: K, ts: Nanos, window: Nanos) -> bool {
        self.last_seen = self.last_seen.max(ts);
        self.members.retain(|m| ts < m.last.saturating_add(window));
        if let Some(m) = self.members.iter_mut().find(|m| m.key == key) {
            m.last = m.last.max(ts);
            m.requests = m.requests.saturating_add(1);
            return false;
        }
        if self.members.len() >= MAX_MEMBERS
            && let Some(i) = (0..self.members.len()).min_by_key(|&i| self.members[i].last)
        {
            self.members.swap_remove(i);
            self.saturated_until = ts.saturating_add(window);
        }
        self.logins.retain(|&at| ts < at.saturating_add(window));
        let issued = self.logins.pop().is_some();
        self.members.push(Member {
            key,
            first: ts,
            last: ts,
            issued,
            requests: 1,
        });
        true
    }

    /// Members first seen within the window (not handed out here).
    fn new_within(&self, ts: Nanos, window: Nanos) -> usize {
        self.members
            .iter()
            .filter(|m| !m.issued && ts < m.first.saturating_add(window))
            .count()
    }

    /// Requests made with the members brought within the window.
    fn requests_within(&self, ts: Nanos, window: Nanos) -> usize {
        self.members
            .iter()
            .filter(|m| !m.issued && ts < m.first.saturating_add(window))
            .map(|m| usize::from(m.requests))
            .sum()
    }

    /// The most members brought within the window that were in use at the same
    /// moment (their first-to-last spans overlapping): 1 for principals used one
    /// after the other, most of them for users working side by side.
    fn at_once(&self, ts: Nanos, window: Nanos) -> usize {
        let brought = || {
            self.members
                .iter()
                .filter(move |m| !m.issued && ts < m.first.saturating_add(window))
        };
        brought()
            .map(|m| {
                brought()
                    .filter(|n| n.first <= m.first && m.first <= n.last)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// A window of this entry's ended: its count joins the population's usual.
    fn roll(&mut self, ts: Nanos, window: Nanos, usual: &mut Ewma) {
        if ts >= self.window_start.saturating_add(window) {
            let n = self.new_within(ts, window).max(1);
            // A plain mean over the first hundred windows, then a slow EWMA: the
            // first entries do not set the usual alone.
            let alpha = (1.0 / (usual.samples + 1) as f64).max(0.01);
            usual.update(n as f64, alpha);
            self.peak = self.peak.max(n);
            self.window_start = ts;
        }
    }

    fn reportable(&self, ts: Nanos, cooldown: Nanos) -> bool {
        self.alerted
            .is_none_or(|at| ts >= at.saturating_add(cooldown))
    }
}

/// Addresses per principal and principals per address, bounded.
#[derive(Debug, Default)]
pub struct Tokens {
    principals: HashMap<(Principal, u64), Entry<IpAddr>, foldhash::fast::RandomState>,
    addresses: HashMap<IpAddr, Entry<u64>, foldhash::fast::RandomState>,
    /// Distinct addresses a principal uses in a window, usually.
    usual_addresses: Ewma,
    /// New principals an address brings in a window, usually.
    usual_principals: Ewma,
    /// Entries evicted at the bound.
    pub evicted: u64,
}

/// What a token-misuse finding is about: the principal's key and kind, the address
/// that crossed the threshold.
pub struct Raised {
    pub finding: Finding,
    /// The client key the alert names: the principal (`bearer:...`) for a shared
    /// principal, the address for cycling.
    pub principal: Option<(Principal, u64)>,
}

/// An address as counted here: IPv6 by its /64.
fn address(ip: IpAddr) -> IpAddr {
    match crate::identity::normalise(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        v4 => v4,
    }
}

impl Tokens {
    pub fn heap_bytes(&self) -> usize {
        let p = std::mem::size_of::<((Principal, u64), Entry<IpAddr>)>()
            + MAX_MEMBERS / 4 * std::mem::size_of::<Member<IpAddr>>();
        let a = std::mem::size_of::<(IpAddr, Entry<u64>)>()
            + MAX_MEMBERS / 4 * std::mem::size_of::<Member<u64>>();
        self.principals.capacity() * p + self.addresses.capacity() * a
    }

    /// One request of `ip` with principal `principal` (a keyed hash); findings when
    /// the principal is shared or the address cycles. `learning`: no finding yet.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        cfg: &Config,
        cooldown: Nanos,
        ts: Nanos,
        ip: IpAddr,
        principal: (Principal, u64),
        learning: bool,
        out: &mut Vec<Raised>,
    ) {
        let ip = address(ip);
        self.bound(cfg.max_tracked);
        let w = cfg.window;
        // The principal's addresses.
        let p = self
            .principals
            .entry(principal)
            .or_insert_with(|| Entry::new(ts));
        p.roll(ts, w, &mut self.usual_addresses);
        let new_address = p.touch(ip, ts, w);
        let addresses = p.members.len();
        let usual = self.usual_addresses.mean.max(1.0);
        let threshold = (cfg.min_addresses as f64)
            .max(cfg.address_factor * usual)
            .max(cfg.address_factor * p.peak as f64)
            .ceil();
        if new_address && !learning && addresses as f64 >= threshold && p.reportable(ts, cooldown) {
            p.alerted = Some(ts);
            let mut listed: Vec<&Member<IpAddr>> = p.members.iter().collect();
            listed.sort_by_key(|m| m.first);
            let ips: Vec<String> = listed
                .iter()
                .take(LISTED)
                .map(|m| m.key.to_string())
                .collect();
            let first = listed.first().map_or(ts, |m| m.first);
            out.push(Raised {
                finding: Finding {
                    kind: Kind::TokenMisuse,
                    endpoint: None,
                    summary: format!(
                        "one {} used from {addresses} addresses in {}s, principals usually use {usual:.1}",
                        principal.0.name(),
                        ts.saturating_sub(first) / SEC
                    ),
                    evidence: json!({
                        "reason": "shared_principal",
                        "principal_kind": principal.0.name(),
                        "addresses": addresses,
                        "client_ips": ips,
                        "window_s": w / SEC,
                        "population_usual_addresses": round(self.usual_addresses.mean),
                        "principal_usual_addresses": p.peak,
                        "threshold": threshold,
                    }),
                    severity: 1,
                    clients: None,
                    novelty: Novelty::Kind(1),
                },
                principal: Some(principal),
            });
        }
        // The address's principals.
        let a = self.addresses.entry(ip).or_insert_with(|| Entry::new(ts));
        a.roll(ts, w, &mut self.usual_principals);
        if !a.touch(principal.1, ts, w) || learning || ts < a.saturated_until {
            return;
        }
        let brought = a.new_within(ts, w);
        if brought < cfg.min_principals {
            return;
        }
        // Used, not just shown: people arriving behind one gateway make one request
        // each at first, a key cycled to stay under its limit is used for several.
        if a.requests_within(ts, w) < 2 * brought - 1 {
            return;
        }
        let at_once = a.at_once(ts, w).max(1);
        let usual = self.usual_principals.mean.max(1.0);
        let threshold = (cfg.min_principals as f64)
            .max(cfg.principal_factor * usual)
            .max(cfg.principal_factor * a.peak as f64)
            .ceil();
        if (brought as f64) < threshold
            || (brought as f64) < cfg.cycling_ratio * at_once as f64
            || !a.reportable(ts, cooldown)
        {
            return;
        }
        a.alerted = Some(ts);
        let first = a.members.iter().map(|m| m.first).min().unwrap_or(ts);
        out.push(Raised {
            finding: Finding {
                kind: Kind::TokenMisuse,
                endpoint: None,
                summary: format!(
                    "{brought} {}s new to this address in {}s, {at_once} at once; addresses usually bring {usual:.1}",
                    principal.0.name(),
                    ts.saturating_sub(first) / SEC
                ),
                evidence: json!({
                    "reason": "principal_cycling",
                    "principal_kind": principal.0.name(),
                    "principals": brought,
                    "at_once": at_once,
                    "window_s": w / SEC,
                    "population_usual_principals": round(self.usual_principals.mean),
                    "address_usual_principals": a.peak,
                    "threshold": threshold,
                }),
                severity: 2,
                clients: None,
                novelty: Novelty::Kind(2),
            },
            principal: None,
        });
    }

    /// A successful login from `ip`: the next principal new to it was handed out
    /// there, not brought.
    pub fn login(&mut self, cfg: &Config, ts: Nanos, ip: IpAddr) {
        self.bound(cfg.max_tracked);
        let a = self
            .addresses
            .entry(address(ip))
            .or_insert_with(|| Entry::new(ts));
        a.last_seen = a.last_seen.max(ts);
        if a.logins.len() < MAX_MEMBERS {
            a.logins.push(ts);
        }
    }

    /// Holds both tables to `max` entries: the least recently seen sixteenth goes.
    fn bound(&mut self, max: usize) {
        let max = max.max(16);
        if self.principals.len() >= max {
            let n = crate::lru::batch(max);
            for k in crate::lru::oldest(&self.principals, n, |e| e.last_seen) {
                self.principals.remove(&k);
                self.evicted += 1;
            }
        }
        if self.addresses.len() >= max {
            let n = crate::lru::batch(max);
            for k in crate::lru::oldest(&self.addresses, n, |e| e.last_seen) {
                self.addresses.remove(&k);
                self.evicted += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
