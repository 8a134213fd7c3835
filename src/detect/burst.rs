//! `burst`: a client's short-window request rate far above its own learned rate (and
//! above an absolute floor), or a client without history far above the population's
//! normal per-client rate. A client that is always busy has a high baseline and is
//! not a burst; while a burst episode lasts, the client's baseline is frozen so the
//! attack does not teach it that the attack is normal.

use serde_json::json;

use super::window::{Ewma, intervals_ended};
use super::{Finding, Kind, Novelty, Obs, round};
use crate::time::Nanos;

const SEC: Nanos = 1_000_000_000;

/// Thresholds (config `[detect.burst]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Short window the current rate is measured over.
    pub window: Nanos,
    /// Never a burst below this many requests per window (10 s): 100 requests is
    /// 10 req/s sustained, beyond what a person clicking through a UI produces
    /// (a single-page app load fans out to 20-60 requests, once).
    pub floor: u64,
    /// A burst is this many standard deviations above the client's own mean...
    pub sigmas: f64,
    /// ...and at least this multiple of it (guards clients with a very steady rate).
    pub factor: f64,
    /// Windows of history before a client is judged against its own baseline;
    /// before that it is compared with the population.
    pub min_history: u64,
    /// Weight of each new window in the EWMA (0.1: about the last 10 windows).
    pub alpha: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: 10 * SEC,
            floor: 100,
            sigmas: 6.0,
            factor: 4.0,
            min_history: 6,
            alpha: 0.1,
        }
    }
}

/// Per-client rate state: one-second buckets for the sliding window, and the EWMA
/// of completed windows.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Requests per second over the last window, `buckets[sec % n]`.
    buckets: Vec<(u64, u32)>,
    /// Start of the window being counted for the baseline.
    pub(crate) interval_start: Nanos,
    interval_count: u64,
    pub baseline: Ewma,
    pub peak: u64,
}

impl State {
    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<(u64, u32)>()
    }
}

/// Before anything is learned, a burst is this many times the floor (50 req/s for
/// 10 s with the defaults): well above a steady integration, still a flood.
const UNLEARNED_FACTOR: u64 = 5;

/// Rates of all clients that have a baseline: what "normal" looks like for a client
/// the sensor has never seen (and what clients usually take, for
/// `data_exfiltration`).
#[derive(Debug, Clone, Default)]
pub struct Population {
    pub per_client: Ewma,
    pub exfiltration: super::exfiltration::Population,
}

/// What a client's finished window adds to the population baseline (serde: the
/// contributions detectors share each epoch, `crate::nats`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Contribution {
    /// Requests in a burst window.
    Requests(f64),
    Exfiltration(super::exfiltration::Contribution),
}

impl Population {
    /// One client's finished interval joins the population baseline. The engine
    /// applies these once per epoch, in exchange order, whichever shard made them.
    pub fn add(&mut self, c: Contribution) {
        match c {
            Contribution::Requests(requests) => self.per_client.update(requests, 0.01),
            Contribution::Exfiltration(x) => self.exfiltration.add(x),
        }
    }

    /// Forgets averages that are not numbers (a corrupt state file).
    pub fn sanitize(&mut self) -> bool {
        self.per_client.sanitize() | self.exfiltration.sanitize()
    }
}

impl State {
    fn current(&mut self, cfg: &Config, ts: Nanos) -> u64 {
        let n = (cfg.window / SEC).max(1) as usize;
        if self.buckets.len() != n {
            self.buckets = vec![(u64::MAX, 0); n];
        }
        let sec = ts / SEC;
        let slot = &mut self.buckets[(sec % n as u64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += 1;
        self.buckets
            .iter()
            .filter(|(s, _)| *s != u64::MAX && s + (n as u64) > sec)
            .map(|(_, c)| u64::from(*c))
            .sum()
    }
}

/// Counts one request; returns a finding when the client is bursting.
pub fn observe(
    cfg: &Config,
    st: &mut State,
    pop: &Population,
    obs: &Obs<'_>,
    frozen: bool,
    contribute: &mut Option<f64>,
    evidence: bool,
) -> Option<Finding> {
    let ts = obs.ts;
    // After `ts` by more than a slack: a corrupt state file, not a clock.
    if st.interval_start == 0 || super::state::in_future(st.interval_start, ts) {
        st.interval_start = ts;
    }
    // Close finished windows into the baseline (idle windows count as zero, a few).
    let ended = intervals_ended(st.interval_start, cfg.window, ts);
    if ended > 0 {
        if !frozen {
            st.baseline.update(st.interval_count as f64, cfg.alpha);
            if st.baseline.samples >= cfg.min_history && st.interval_count > 0 {
                *contribute = Some(st.interval_count as f64);
            }
        }
        st.interval_count = 0;
        // Idle windows after it count as zero; after a long idle only three do.
        let idle = ended - 1;
        let zeros = if idle >= 6 { 3 } else { idle };
        for _ in 0..zeros {
            if !frozen {
                st.baseline.update(0.0, cfg.alpha);
            }
        }
        st.interval_start += ended * cfg.window;
    }
    st.interval_count += 1;
    let now = st.current(cfg, ts);
    st.peak = st.peak.max(now);
    let (threshold, basis, mean, std) = if st.baseline.samples >= cfg.min_history {
        let b = st.baseline;
        let t = (b.mean + cfg.sigmas * b.std()).max(cfg.factor * b.mean);
        (t, "client", b.mean, b.std())
    } else if pop.per_client.samples >= 10 {
        let p = pop.per_client;
        (
            (p.mean + cfg.sigmas * p.std()).max(cfg.factor * p.mean),
            "population",
            p.mean,
            p.std(),
        )
    } else {
        // Nothing learned yet, neither for this client nor for anyone (the sensor
        // just started): no blind start, but a margin for busy integrations.
        ((cfg.floor * UNLEARNED_FACTOR) as f64, "none yet", 0.0, 0.0)
    };
    let threshold = threshold.max(cfg.floor as f64);
    if (now as f64) < threshold {
        return None;
    }
    if !evidence {
        // In cooldown: the engine only needs to know the episode goes on.
        return Some(Finding::bare(Kind::Burst, 2));
    }
    let secs = cfg.window / SEC;
    Some(Finding {
        kind: Kind::Burst,
        endpoint: None,
        summary: format!(
            "{now} requests in {secs}s, baseline {mean:.1} per {secs}s ({basis}), threshold {threshold:.0}"
        ),
        evidence: json!({
            "window_s": secs,
            "observed": now,
            "baseline_basis": basis,
            "baseline_mean": round(mean),
            "baseline_std": round(std),
            "threshold": round(threshold),
            "peak": st.peak,
        }),
        severity: 2,
        clients: None,
        novelty: Novelty::Repeat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::obs_at;

    fn run(
        st: &mut State,
        pop: &mut Population,
        from: Nanos,
        secs: u64,
        per_sec: u64,
    ) -> Vec<Finding> {
        let cfg = Config::default();
        let mut found = Vec::new();
        for s in 0..secs {
            for i in 0..per_sec {
                let ts = from + s * SEC + i * (SEC / per_sec.max(1));
                let o = obs_at(ts, "GET", "/api/x", Some(200));
                let mut done = None;
                found.extend(observe(&cfg, st, pop, &o.obs(), false, &mut done, true));
                if let Some(x) = done {
                    pop.add(Contribution::Requests(x));
                }
            }
        }
        found
    }

    #[test]
    fn a_steady_busy_client_is_not_a_burst_but_a_jump_is() {
        let (mut st, mut pop) = (State::default(), Population::default());
        // 30 req/s for 5 minutes: busy, steady.
        assert!(run(&mut st, &mut pop, SEC, 300, 30).is_empty());
        // Then 200 req/s.
        let found = run(&mut st, &mut pop, 302 * SEC, 10, 200);
        assert!(!found.is_empty());
        assert_eq!(found[0].evidence["baseline_basis"], "client");
    }

    #[test]
    fn quiet_client_spikes_below_the_floor_are_not_bursts() {
        let (mut st, mut pop) = (State::default(), Population::default());
        assert!(run(&mut st, &mut pop, SEC, 120, 1).is_empty());
        // A page load: 60 requests in one second, once.
        assert!(run(&mut st, &mut pop, 130 * SEC, 1, 60).is_empty());
    }

    #[test]
    fn a_new_client_is_judged_against_the_population() {
        let mut pop = Population::default();
        for c in 0..20 {
            let mut st = State::default();
            run(&mut st, &mut pop, SEC + c, 120, 2);
        }
        assert!(pop.per_client.samples >= 10);
        let mut newcomer = State::default();
        let found = run(&mut newcomer, &mut pop, 200 * SEC, 5, 100);
        assert!(!found.is_empty());
        assert_eq!(found[0].evidence["baseline_basis"], "population");
    }
}
