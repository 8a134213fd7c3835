//! Basic authentication for the metrics endpoint, with exporter-toolkit's
//! guarantees (a user name that is not configured is checked against a configured
//! user's hash, so its `401` takes as long; one bcrypt at a time) and what keeps a
//! flood of wrong passwords from holding up a scraper (issue #22: 500 connections of
//! wrong passwords delayed the next valid scrape by 27.6 s):
//!
//! - **Verified credentials answer from a cache** ([`GOOD_CACHE`] entries, dropped
//!   after [`GOOD_IDLE`] unused). Wrong passwords have a cache of their own
//!   ([`BAD_CACHE`]), so no number of them can push a verified scraper out. Both are
//!   keyed by a SipHash, with a per-process random key, of (user, hash, password):
//!   no password is stored, and a hash changed by a reload is a new key.
//! - **bcrypt runs from a bounded queue** on a thread of its own (`metrics-bcrypt`),
//!   one check at a time. A check whose request went away before its turn (the
//!   client closed the connection, reset its HTTP/2 stream, or the connection was
//!   evicted: the request's future, and with it the reply channel, was dropped) is
//!   removed unrun. A check that would wait behind [`QUEUE_LIMIT`] others, or
//!   longer than [`QUEUE_WAIT`] by the measured cost of a check, is refused
//!   ([`Verdict::Busy`]; the server answers `503` with `Retry-After`).
//!
//! A scraper whose password was verified once is therefore answered without
//! waiting on anything; one that is not yet verified waits at most about
//! [`QUEUE_WAIT`] or is refused at once.

use std::collections::{HashMap, VecDeque};
use std::hash::Hasher as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::render::one;

/// Checks waiting or running at most (exporter-toolkit has no bound; its
/// goroutines wait on a mutex, which is how checks of departed clients piled up).
pub const QUEUE_LIMIT: usize = 32;
/// A check is refused rather than queued when the checks ahead of it would take
/// longer than this at the measured cost of one: half of the 2 s within which a
/// scrape must be answered, whatever bcrypt cost the hashes use.
pub const QUEUE_WAIT: Duration = Duration::from_secs(1);
/// Verified credentials kept: scrapers, not guessers, fill it, since only a right
/// password enters it (exporter-toolkit keeps 100 outcomes, right and wrong alike).
pub const GOOD_CACHE: usize = 64;
/// A verified credential unused this long is checked again (a scraper every 15 s to
/// 5 min keeps its entry).
pub const GOOD_IDLE: Duration = Duration::from_secs(15 * 60);
/// Wrong passwords remembered, so that a scraper with a stale password costs one
/// bcrypt per password, not one per scrape.
pub const BAD_CACHE: usize = 256;

/// What a request's credentials come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A configured user with its password.
    Admit,
    /// No credentials, an unknown user, or a wrong password.
    Deny,
    /// The check queue is full: try again later.
    Busy,
}

/// Counters of the checks, shown as `apiwatch_web_auth_*`.
#[derive(Default)]
pub struct AuthStats {
    /// Credentials answered from either cache.
    pub cache_hits: AtomicU64,
    /// Password checks (bcrypt) run.
    pub checks: AtomicU64,
    /// Queued checks removed unrun because their request went away.
    pub dropped: AtomicU64,
    /// Requests refused because the queue was full.
    pub refused: AtomicU64,
}

/// Verifies a password against a bcrypt hash (swapped for a slow stand-in in tests).
pub type Check = fn(&[u8], &str) -> bool;

fn bcrypt_check(pass: &[u8], hash: &str) -> bool {
    bcrypt::verify(pass, hash).unwrap_or(false)
}

pub struct Auth {
    key: (u64, u64),
    good: Mutex<HashMap<u64, Instant>>,
    bad: Mutex<HashMap<u64, Instant>>,
    queue: Arc<Queue>,
    pub stats: Arc<AuthStats>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth::with_check(bcrypt_check)
    }
}

impl Drop for Auth {
    fn drop(&mut self) {
        if let Ok(mut s) = self.queue.state.lock() {
            s.closed = true;
        }
        self.queue.ready.notify_all();
    }
}

impl Auth {
    /// Starts the checking thread.
    pub fn with_check(check: Check) -> Self {
        let [k0, k1] = crate::identity::IdentityConfig::random_salt();
        let stats = Arc::new(AuthStats::default());
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
            mean_ns: AtomicU64::new(0),
            stats: stats.clone(),
        });
        let q = queue.clone();
        let started = std::thread::Builder::new()
            .name("metrics-bcrypt".into())
            .spawn(move || q.run(check));
        if let Err(e) = started {
            // Every check is then refused (nothing drains the queue): fail closed.
            tracing::error!("Cannot start the metrics password-check thread: {e}");
        }
        Auth {
            key: (k0, k1),
            good: Mutex::new(HashMap::new()),
            bad: Mutex::new(HashMap::new()),
            queue,
            stats,
        }
    }

    /// Checks `authorization` against `users` (name and bcrypt hash, as configured).
    pub async fn verdict(
        &self,
        users: &[(String, String)],
        authorization: Option<&[u8]>,
    ) -> Verdict {
        let Some(creds) = authorization
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|a| a.trim().split_once(' '))
            .filter(|(s, _)| s.eq_ignore_ascii_case("basic"))
            .and_then(|(_, b)| crate::detect::login::base64_decode(b.trim()))
        else {
            return Verdict::Deny;
        };
        let Some(colon) = creds.iter().position(|b| *b == b':') else {
            return Verdict::Deny;
        };
        let (user, pass) = (&creds[..colon], &creds[colon + 1..]);
        let known = users.iter().find(|(u, _)| u.as_bytes() == user);
        let Some((_, hash)) = known.or(users.first()) else {
            return Verdict::Deny;
        };
        let key = self.key_of(user, hash, pass);
        let now = Instant::now();
        if let Ok(mut good) = self.good.lock()
            && let Some(used) = good.get_mut(&key)
        {
            if now.duration_since(*used) < GOOD_IDLE {
                *used = now;
                self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return if known.is_some() {
                    Verdict::Admit
                } else {
                    Verdict::Deny
                };
            }
            good.remove(&key);
        }
        if self.bad.lock().is_ok_and(|bad| bad.contains_key(&key)) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Verdict::Deny;
        }
        let Some(answer) = self.queue.submit(pass.to_vec(), hash.clone()) else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Verdict::Busy;
        };
        // Dropping this future (the client left) drops `answer`: the check is not run.
        let ok = answer.await.unwrap_or(false);
        let (cache, cap) = if ok {
            (&self.good, GOOD_CACHE)
        } else {
            (&self.bad, BAD_CACHE)
        };
        if let Ok(mut c) = cache.lock() {
            if c.len() >= cap {
                for k in crate::lru::oldest(&c, crate::lru::batch(cap), |t| *t) {
                    c.remove(&k);
                }
            }
            c.insert(key, Instant::now());
        }
        if ok && known.is_some() {
            Verdict::Admit
        } else {
            Verdict::Deny
        }
    }

    fn key_of(&self, user: &[u8], hash: &str, pass: &[u8]) -> u64 {
        let mut h = siphasher::sip::SipHasher13::new_with_keys(self.key.0, self.key.1);
        for part in [user, hash.as_bytes(), pass] {
            h.write_usize(part.len());
            h.write(part);
        }
        h.finish()
    }

    /// Checks waiting for their turn now.
    pub fn queued(&self) -> usize {
        self.queue.state.lock().map(|s| s.jobs.len()).unwrap_or(0)
    }

    /// The `apiwatch_web_auth_*` metrics, in the text format.
    pub fn metrics(&self, s: &mut String) {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let st = &self.stats;
        one(
            s,
            "apiwatch_web_auth_cache_hits_total",
            "counter",
            "Basic-auth credentials of the metrics endpoint answered from the cache of verified or wrong passwords, without bcrypt.",
            n(&st.cache_hits),
        );
        one(
            s,
            "apiwatch_web_auth_checks_total",
            "counter",
            "Basic-auth password checks (bcrypt) the metrics endpoint ran.",
            n(&st.checks),
        );
        one(
            s,
            "apiwatch_web_auth_checks_dropped_total",
            "counter",
            "Queued password checks not run because their request went away first.",
            n(&st.dropped),
        );
        one(
            s,
            "apiwatch_web_auth_refused_total",
            "counter",
            "Requests to the metrics endpoint answered 503 because the password-check queue was full.",
            n(&st.refused),
        );
        one(
            s,
            "apiwatch_web_auth_queue_length",
            "gauge",
            "Password checks waiting for their turn.",
            self.queued(),
        );
    }
}

/// One password to check, and where its requester waits for the answer.
struct Job {
    pass: Vec<u8>,
    hash: String,
    reply: oneshot::Sender<bool>,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// A check is running now.
    busy: bool,
    /// The [`Auth`] is gone: the thread ends.
    closed: bool,
}

struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    /// Moving average of one check's duration, in nanoseconds.
    mean_ns: AtomicU64,
    stats: Arc<AuthStats>,
}

impl Queue {
    /// Queues a check, or `None` when the queue is full.
    fn submit(&self, pass: Vec<u8>, hash: String) -> Option<oneshot::Receiver<bool>> {
        let mut st = self.state.lock().ok()?;
        let full = |st: &QueueState| {
            let ahead = st.jobs.len() + usize::from(st.busy);
            let wait = self.mean_ns.load(Ordering::Relaxed) as u128 * ahead as u128;
            ahead >= QUEUE_LIMIT || wait > QUEUE_WAIT.as_nanos()
        };
        if full(&st) {
            // Departed requesters' checks count against nobody.
            let before = st.jobs.len();
            st.jobs.retain(|j| !j.reply.is_closed());
            let gone = (before - st.jobs.len()) as u64;
            self.stats.dropped.fetch_add(gone, Ordering::Relaxed);
            if full(&st) {
                return None;
            }
        }
        let (reply, answer) = oneshot::channel();
        st.jobs.push_back(Job { pass, hash, reply });
        self.ready.notify_one();
        Some(answer)
    }

    /// The checking thread: one check at a time, skipping those nobody waits for.
    fn run(&self, check: Check) {
        while let Some(job) = self.next() {
            let start = Instant::now();
            let ok = check(&job.pass, &job.hash);
            let took = start.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
            let mean = self.mean_ns.load(Ordering::Relaxed);
            // An average over the last eight or so checks; the first sets it.
            let mean = if mean == 0 {
                took
            } else {
                mean - mean / 8 + took / 8
            };
            self.mean_ns.store(mean, Ordering::Relaxed);
            self.stats.checks.fetch_add(1, Ordering::Relaxed);
            let _ = job.reply.send(ok);
        }
    }

    /// The next check someone still waits for; `None` when the [`Auth`] is gone.
    fn next(&self) -> Option<Job> {
        let mut st = self.state.lock().ok()?;
        st.busy = false;
        loop {
            if st.closed {
                return None;
            }
            match st.jobs.pop_front() {
                Some(j) if j.reply.is_closed() => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Some(j) => {
                    st.busy = true;
                    return Some(j);
                }
                None => st = self.ready.wait(st).ok()?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test "hash" is the password itself.
    fn same(pass: &[u8], hash: &str) -> bool {
        pass == hash.as_bytes()
    }

    static HOLD_DROPS: Mutex<()> = Mutex::new(());
    static HOLD_BOUND: Mutex<()> = Mutex::new(());

    fn held_by_drops(pass: &[u8], hash: &str) -> bool {
        drop(HOLD_DROPS.lock());
        same(pass, hash)
    }

    fn held_by_bound(pass: &[u8], hash: &str) -> bool {
        drop(HOLD_BOUND.lock());
        same(pass, hash)
    }

    fn users() -> Vec<(String, String)> {
        vec![("prometheus".into(), "right".into())]
    }

    fn basic(creds: &str) -> Vec<u8> {
        format!("Basic {}", crate::export::eve::base64(creds.as_bytes())).into_bytes()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Until the checking thread has taken a check (bounded: 5 s).
    fn wait_until_running(a: &Auth) {
        for _ in 0..500 {
            if a.queue.state.lock().unwrap().busy {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the checking thread took no check");
    }

    #[test]
    fn wrong_passwords_never_push_a_verified_one_out_of_the_cache() {
        let a = Auth::with_check(same);
        let (users, right) = (users(), basic("prometheus:right"));
        block_on(async {
            assert_eq!(a.verdict(&users, Some(&right)).await, Verdict::Admit);
            for i in 0..2 * (GOOD_CACHE + BAD_CACHE) {
                let wrong = basic(&format!("prometheus:wrong-{i}"));
                assert_eq!(a.verdict(&users, Some(&wrong)).await, Verdict::Deny);
            }
            let checks = a.stats.checks.load(Ordering::Relaxed);
            assert_eq!(checks, 1 + 2 * (GOOD_CACHE + BAD_CACHE) as u64);
            assert_eq!(a.verdict(&users, Some(&right)).await, Verdict::Admit);
            assert_eq!(a.stats.checks.load(Ordering::Relaxed), checks, "not cached");
            // A wrong password seen lately is answered from its own cache.
            let last = basic(&format!(
                "prometheus:wrong-{}",
                2 * (GOOD_CACHE + BAD_CACHE) - 1
            ));
            assert_eq!(a.verdict(&users, Some(&last)).await, Verdict::Deny);
            assert_eq!(a.stats.checks.load(Ordering::Relaxed), checks);
            // The right password under an unknown name, and no credentials at all.
            let other = basic("admin:right");
            assert_eq!(a.verdict(&users, Some(&other)).await, Verdict::Deny);
            assert_eq!(a.verdict(&users, None).await, Verdict::Deny);
            assert_eq!(a.verdict(&users, Some(b"Bearer x")).await, Verdict::Deny);
        });
        assert_eq!(a.stats.cache_hits.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn checks_for_requests_that_went_away_are_never_run() {
        let a = Auth::with_check(held_by_drops);
        let hold = HOLD_DROPS.lock().unwrap();
        let running = a.queue.submit(b"right".to_vec(), "right".into()).unwrap();
        wait_until_running(&a);
        let gone: Vec<_> = (0..5)
            .map(|i| {
                a.queue
                    .submit(format!("w{i}").into_bytes(), "right".into())
                    .unwrap()
            })
            .collect();
        let waiting = a.queue.submit(b"right".to_vec(), "right".into()).unwrap();
        drop(gone);
        drop(hold);
        assert_eq!(block_on(running), Ok(true));
        assert_eq!(block_on(waiting), Ok(true));
        assert_eq!(a.stats.checks.load(Ordering::Relaxed), 2);
        assert_eq!(a.stats.dropped.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn past_the_bound_checks_are_refused_until_a_waiter_leaves() {
        let a = Auth::with_check(held_by_bound);
        let hold = HOLD_BOUND.lock().unwrap();
        let mut waiting = vec![a.queue.submit(b"x".to_vec(), "right".into()).unwrap()];
        wait_until_running(&a);
        for _ in 1..QUEUE_LIMIT {
            waiting.push(a.queue.submit(b"x".to_vec(), "right".into()).unwrap());
        }
        assert!(a.queue.submit(b"x".to_vec(), "right".into()).is_none());
        let (users, wrong) = (users(), basic("prometheus:wrong"));
        assert_eq!(block_on(a.verdict(&users, Some(&wrong))), Verdict::Busy);
        assert_eq!(a.stats.refused.load(Ordering::Relaxed), 1);
        // A verified scraper is not refused: it needs no check.
        a.good
            .lock()
            .unwrap()
            .insert(a.key_of(b"prometheus", "right", b"right"), Instant::now());
        let right = basic("prometheus:right");
        assert_eq!(block_on(a.verdict(&users, Some(&right))), Verdict::Admit);
        // One waiter leaves: its place is free, and its check is not run.
        drop(waiting.pop());
        let last = a.queue.submit(b"x".to_vec(), "right".into()).unwrap();
        assert_eq!(a.stats.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(a.queued(), QUEUE_LIMIT - 1);
        drop(hold);
        assert_eq!(block_on(last), Ok(false));
        assert_eq!(a.stats.checks.load(Ordering::Relaxed), QUEUE_LIMIT as u64);
    }
}
