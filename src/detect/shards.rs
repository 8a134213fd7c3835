//! Client-sharded detection: stage 2 of the two-stage sharding in DESIGN.md.
//!
//! The engine's global half routes every exchange, in order, to the thread that owns
//! its client (by the client's stable hash), so per-client state needs no lock. Once
//! per epoch of packet time the engine meets every shard at a barrier: shards hand
//! back the alerts they raised (merged into exchange order with the global alerts),
//! their contributions to the population baseline and their episode counts, and get
//! the new baseline before they judge anything later. Queues are bounded: when the
//! shards fall behind, the caller waits.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::shard::Shard;
use super::state::{ClientSnap, ClientSnaps};
use super::{Alert, Kind, Routed, burst::Population};
use crate::http::Exchange;
use crate::identity::ClientId;
use crate::time::Nanos;

/// Exchanges queued for one shard before they are handed over.
const BATCH: usize = 256;
/// Batches in flight per shard.
const QUEUE: usize = 4;
/// Exchanges routed between two barriers at most, even when packet time stands
/// still: the alerts waiting in the shards stay bounded and reach the log.
const MAX_UNMET: usize = 1 << 16;

enum Item {
    Judge(Box<Routed>, Box<Exchange>),
    Evict(ClientId),
    Restore(Box<ClientSnap>),
}

enum ToShard {
    Items(Vec<Item>),
    Barrier { now: Nanos, want_clients: bool },
    Population(Population),
}

/// A shard's answer at a barrier.
struct Reply {
    /// (exchange number, alert), in the order the shard raised them.
    alerts: Vec<(u64, Alert)>,
    contributions: Vec<(u64, super::burst::Contribution)>,
    episodes: HashMap<Kind, usize>,
    clients: ClientSnaps,
    /// What the shard's clients hold.
    bytes: usize,
}

/// What a barrier gathered besides the alerts.
#[derive(Default)]
pub(super) struct Gathered {
    pub contributions: Vec<(u64, super::burst::Contribution)>,
    pub clients: ClientSnaps,
    /// What the clients of every shard hold.
    pub bytes: usize,
}

pub(super) struct Pool {
    txs: Vec<SyncSender<ToShard>>,
    rx: Receiver<Reply>,
    threads: Vec<JoinHandle<()>>,
    batches: Vec<Vec<Item>>,
    /// Global alerts waiting for the shards' alerts of the same exchanges.
    pending: Vec<(u64, Alert)>,
    episodes: HashMap<Kind, usize>,
    /// Exchanges routed since the last barrier.
    unmet: usize,
}

impl Pool {
    pub fn start(shards: Vec<Shard>) -> std::io::Result<Pool> {
        let (reply_tx, rx) = mpsc::channel();
        let mut pool = Pool {
            txs: Vec::new(),
            rx,
            threads: Vec::new(),
            batches: Vec::new(),
            pending: Vec::new(),
            episodes: HashMap::new(),
            unmet: 0,
        };
        for (i, shard) in shards.into_iter().enumerate() {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            let reply = reply_tx.clone();
            let t = std::thread::Builder::new()
                .name(format!("apiwatch-detect-{i}"))
                .spawn(move || run(shard, rx, reply))?;
            pool.txs.push(tx);
            pool.threads.push(t);
            pool.batches.push(Vec::with_capacity(BATCH));
        }
        Ok(pool)
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    fn shard_of(&self, client_hash: u64) -> usize {
        // The high bits: the low ones also pick the flow workers' queues.
        ((client_hash >> 32) % self.txs.len() as u64) as usize
    }

    fn push(&mut self, shard: usize, item: Item) {
        self.batches[shard].push(item);
        if self.batches[shard].len() >= BATCH {
            self.flush(shard);
        }
    }

    fn flush(&mut self, shard: usize) {
        if !self.batches[shard].is_empty() {
            let items = std::mem::replace(&mut self.batches[shard], Vec::with_capacity(BATCH));
            // A shard that is gone answers no more; the barrier notices.
            let _ = self.txs[shard].send(ToShard::Items(items));
        }
    }

    /// Whether so much was routed since the last barrier that one is due.
    pub fn due(&self) -> bool {
        self.unmet >= MAX_UNMET
    }

    pub fn judge(&mut self, mut r: Routed, ex: Exchange) {
        self.unmet += 1;
        if let Some(g) = r.global.take() {
            self.pending
                .extend(g.into_vec().into_iter().map(|a| (r.seq, a)));
        }
        let shard = self.shard_of(r.client_hash);
        self.push(shard, Item::Judge(Box::new(r), Box::new(ex)));
    }

    /// An alert of the global half, written after the client alerts of exchange
    /// `seq` and before those of the next.
    pub fn global(&mut self, seq: u64, a: Alert) {
        self.pending.push((seq, a));
    }

    pub fn evict(&mut self, client_hash: u64, id: ClientId) {
        let shard = self.shard_of(client_hash);
        self.push(shard, Item::Evict(id));
    }

    pub fn restore(&mut self, client_hash: u64, c: ClientSnap) {
        let shard = self.shard_of(client_hash);
        self.push(shard, Item::Restore(Box::new(c)));
    }

    pub fn set_population(&mut self, p: &Population) {
        for tx in &self.txs {
            let _ = tx.send(ToShard::Population(p.clone()));
        }
    }

    pub fn episodes(&self) -> &HashMap<Kind, usize> {
        &self.episodes
    }

    /// Waits until every shard has judged everything routed so far; their alerts and
    /// the global ones go to `out` in exchange order (a client's alerts for an
    /// exchange before the global alert it raised).
    pub fn barrier(&mut self, now: Nanos, want_clients: bool, out: &mut Vec<Alert>) -> Gathered {
        self.unmet = 0;
        let mut asked = 0;
        for shard in 0..self.txs.len() {
            self.flush(shard);
            let msg = ToShard::Barrier { now, want_clients };
            if self.txs[shard].send(msg).is_ok() {
                asked += 1;
            }
        }
        let mut alerts: Vec<(u64, u8, Alert)> = Vec::new();
        let mut got = Gathered::default();
        self.episodes.clear();
        for _ in 0..asked {
            let Ok(r) = self.rx.recv() else { break };
            alerts.extend(r.alerts.into_iter().map(|(seq, a)| (seq, 0, a)));
            got.contributions.extend(r.contributions);
            got.clients.append(r.clients);
            got.bytes += r.bytes;
            for (k, n) in r.episodes {
                *self.episodes.entry(k).or_default() += n;
            }
        }
        alerts.extend(self.pending.drain(..).map(|(seq, a)| (seq, 1, a)));
        // Stable: one exchange's alerts come from one shard, already in order.
        alerts.sort_by_key(|(seq, global, _)| (*seq, *global));
        out.extend(alerts.into_iter().map(|(_, _, a)| a));
        got
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.txs.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One shard's thread: judges what it is given until the engine goes away.
fn run(mut shard: Shard, rx: Receiver<ToShard>, reply: mpsc::Sender<Reply>) {
    let mut alerts: Vec<(u64, Alert)> = Vec::new();
    let mut raised = Vec::new();
    let mut failed = false;
    while let Ok(msg) = rx.recv() {
        match msg {
            ToShard::Items(items) if !failed => {
                let work = std::panic::AssertUnwindSafe(|| {
                    for item in items {
                        match item {
                            Item::Judge(mut r, ex) => {
                                let seq = r.seq;
                                shard.judge(&mut r, &ex, &mut raised);
                                alerts.extend(raised.drain(..).map(|a| (seq, a)));
                            }
                            Item::Evict(id) => shard.forget(&id),
                            Item::Restore(c) => shard.restore_client(*c),
                        }
                    }
                });
                if std::panic::catch_unwind(work).is_err() {
                    // A bug, not input: keep answering barriers so the engine and
                    // the other shards go on.
                    tracing::error!("A detection shard failed; its clients are no longer judged");
                    failed = true;
                }
            }
            ToShard::Items(_) => {}
            ToShard::Population(p) => shard.population = p,
            ToShard::Barrier { now, want_clients } => {
                shard.now = shard.now.max(now);
                let r = Reply {
                    alerts: std::mem::take(&mut alerts),
                    contributions: std::mem::take(&mut shard.contributions),
                    episodes: shard.episodes(shard.now),
                    bytes: shard.bytes,
                    clients: if want_clients {
                        shard.client_snaps()
                    } else {
                        ClientSnaps::default()
                    },
                };
                if reply.send(r).is_err() {
                    return;
                }
            }
        }
    }
}
