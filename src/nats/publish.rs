//! The sensor's side of `--publish`: records handed to a publisher thread that
//! publishes them to JetStream, awaits their acknowledgements in windows, and
//! publishes again, in their order, the records a lost connection or a failed
//! acknowledgement left unstored.
//!
//! Delivery (see docs/distributed.md, "Backpressure and loss"):
//! - Every record carries a `Nats-Msg-Id` unique to it (the sensor id the record
//!   carries, random per process, and the record's number), so JetStream's duplicate
//!   window drops a copy of a record it already stored (one whose acknowledgement
//!   was lost).
//! - A record is held until JetStream acknowledged it. Records held (taken from the
//!   packet thread, in flight, awaiting a retry) are bounded by `--publish-buffer`:
//!   beyond it live capture drops the newest and counts them, a replay waits.
//! - When an acknowledgement fails or times out, or the connection is lost, the
//!   publisher gives the connection up together with whatever the NATS client still
//!   queued for it: each connection lives in a tokio runtime of its own, dropped
//!   with it, and its client never reconnects by itself. A client that reconnected
//!   would send its queue after the reconnect, ahead of the records lost with the
//!   old socket, and the stream would no longer be in the sensor's order. The
//!   publisher then connects again with a backoff and publishes the unacknowledged
//!   records again, oldest first, before any new one.
//! - At the end of a run, what is still unstored 30 s after the last progress (5 s
//!   when the run was stopped by a signal) is counted dropped: the process never
//!   waits forever on a server that is gone.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

use super::{Meta, NatsOptions, PublishOptions, connect_with, encode, partition_of, stream};
use crate::detect::DetectConfig;
use crate::http::Exchange;
use crate::identity;

use Ordering::{AcqRel, Acquire, Relaxed, Release};

/// Publishes awaiting their acknowledgement before the publisher waits for them all.
const ACK_WINDOW: usize = 1024;
/// How long a publish may wait to be queued, and an acknowledgement to arrive,
/// before the connection is given up and its unacknowledged records published again.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before the first connection attempt after a loss, doubled up to
/// [`BACKOFF_MAX`] while the server stays away.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At the end of a run: how long after the last progress (a record stored) the
/// publisher keeps trying before it counts what is left as dropped.
const FINISH_GRACE: Duration = Duration::from_secs(30);
/// The same when the run was stopped by SIGINT / SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The NATS client's pause before reconnecting by itself once it was connected:
/// long enough never to end, since its runtime is dropped first (module docs).
const PARKED: Duration = Duration::from_secs(86_400);

/// What the publisher counted (shared with the metrics and the summary).
#[derive(Debug, Default)]
pub struct PublishCounters {
    /// Exchanges handed to the server (each once, however often it was sent).
    pub published: AtomicU64,
    /// Exchanges JetStream acknowledged as stored (once each).
    pub acked: AtomicU64,
    /// Exchanges dropped: the buffer was full (live capture), the server refused
    /// them, or they were still unstored when the run ended.
    pub dropped: AtomicU64,
    /// Publishes of an exchange again after its connection was lost or its
    /// acknowledgement failed.
    pub retried: AtomicU64,
    /// ...of which JetStream already held (their first acknowledgement was lost):
    /// its duplicate window dropped the copy.
    pub duplicates: AtomicU64,
    /// Times the connection to the server was lost (outages).
    pub lost_connections: AtomicU64,
    /// Exchanges held now: taken from the packet thread and not yet stored or dropped.
    pub buffered: AtomicU64,
    /// The most exchanges held at once during the run.
    pub buffered_peak: AtomicU64,
    /// Acknowledgements whose stream position came before one acknowledged earlier
    /// (the stream is not in the sensor's order there; expected to stay 0).
    pub out_of_order: AtomicU64,
}

impl PublishCounters {
    /// The counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        for (name, kind, help, v) in [
            (
                "apiwatch_publish_exchanges_total",
                "counter",
                "Exchanges handed to the NATS server (--publish), each once however often it was sent.",
                &self.published,
            ),
            (
                "apiwatch_publish_acked_total",
                "counter",
                "Published exchanges the JetStream server acknowledged as stored.",
                &self.acked,
            ),
            (
                "apiwatch_publish_dropped_total",
                "counter",
                "Exchanges dropped: the publish buffer was full (live capture), the server refused them, or they were unstored at the end of the run.",
                &self.dropped,
            ),
            (
                "apiwatch_publish_retried_total",
                "counter",
                "Exchanges published again after a lost connection or a failed acknowledgement.",
                &self.retried,
            ),
            (
                "apiwatch_publish_duplicates_total",
                "counter",
                "Exchanges published again that JetStream already held (dropped by its duplicate window).",
                &self.duplicates,
            ),
            (
                "apiwatch_publish_connections_lost_total",
                "counter",
                "Times the connection to the NATS server was lost.",
                &self.lost_connections,
            ),
            (
                "apiwatch_publish_out_of_order_total",
                "counter",
                "Exchanges stored ahead of one the sensor saw before them.",
                &self.out_of_order,
            ),
            (
                "apiwatch_publish_buffered",
                "gauge",
                "Exchanges held by the publisher, not yet stored (bounded by --publish-buffer).",
                &self.buffered,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", v.load(Relaxed));
        }
    }

    /// The fields of the `Published to NATS` line at the end of a run.
    pub fn summary(&self) -> [(&'static str, u64); 8] {
        [
            ("published", self.published.load(Relaxed)),
            ("acked", self.acked.load(Relaxed)),
            ("dropped", self.dropped.load(Relaxed)),
            ("retried", self.retried.load(Relaxed)),
            ("duplicates", self.duplicates.load(Relaxed)),
            ("lost_connections", self.lost_connections.load(Relaxed)),
            ("buffered_peak", self.buffered_peak.load(Relaxed)),
            ("out_of_order", self.out_of_order.load(Relaxed)),
        ]
    }
}

/// The partition number that marks a clock record on the channel (subject
/// `PREFIX.exchanges.clock`): published in the sensor's order like a record, but
/// not an exchange (no place in the buffer, not in the counters).
const CLOCK: u32 = u32::MAX;
/// A live sensor quiet this long (wall time) publishes a clock record.
const CLOCK_EVERY: Duration = Duration::from_secs(1);

/// The bound on held records (`--publish-buffer`), shared by the packet thread,
/// which takes a place per record, and the publisher, which gives places back as
/// records are stored or dropped.
struct Room {
    cap: u64,
    c: Arc<PublishCounters>,
    lock: Mutex<()>,
    freed: Condvar,
    /// False once the publisher thread ended: nobody will give places back.
    open: AtomicBool,
}

impl Room {
    fn try_take(&self) -> bool {
        match self
            .c
            .buffered
            .fetch_update(AcqRel, Acquire, |h| (h < self.cap).then_some(h + 1))
        {
            Ok(before) => {
                self.c.buffered_peak.fetch_max(before + 1, Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Waits for a place; false when the publisher is gone or the run is stopping.
    fn take(&self) -> bool {
        loop {
            if self.try_take() {
                return true;
            }
            if !self.open.load(Acquire) || crate::signals::stopping() {
                return false;
            }
            let g = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            if self.try_take() {
                return true;
            }
            // Places are given back under the lock, so none is missed; the timeout
            // only bounds how late a stop request is seen.
            let _ = self.freed.wait_timeout(g, Duration::from_millis(200));
        }
    }

    fn give(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.c.buffered.fetch_sub(n, AcqRel);
        let _g = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.freed.notify_all();
    }

    fn close(&self) {
        self.open.store(false, Release);
        let _g = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.freed.notify_all();
    }
}

/// The sensor's publisher: the packet thread encodes and hands exchanges to a
/// thread of its own, which publishes them and awaits the acknowledgements in
/// batches of [`ACK_WINDOW`] (module docs).
pub struct Publisher {
    tx: Option<mpsc::UnboundedSender<(u32, Bytes)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub counters: Arc<PublishCounters>,
    room: Arc<Room>,
    partitions: u32,
    block: bool,
    warned_full: bool,
    buf: Vec<u8>,
    key: String,
    trusted: Vec<identity::Cidr>,
    identity: identity::IdentityConfig,
    /// This sensor process's id on every record (random: sensors need no
    /// coordination), and its packet clock: the largest exchange time published.
    sensor: u64,
    emitted: crate::time::Nanos,
    /// When this sensor last handed over a record or a clock.
    last_sent: Instant,
}

impl Publisher {
    /// Connects and opens (or creates) the stream, then starts publishing. A server
    /// that cannot be reached here is an error (no retry at start).
    pub fn start(o: &PublishOptions, detect: &DetectConfig) -> Result<Publisher, String> {
        let rt = runtime()?;
        let conn = rt.block_on(Conn::open(&o.nats))?;
        let subjects: Vec<async_nats::Subject> = (0..o.partitions)
            .map(|p| format!("{}.exchanges.{p}", o.nats.prefix).into())
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(PublishCounters::default());
        let room = Arc::new(Room {
            cap: o.buffer.max(1) as u64,
            c: counters.clone(),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            open: AtomicBool::new(true),
        });
        let sensor = identity::IdentityConfig::random_salt()[0];
        let flow = Flow {
            rx,
            pending: VecDeque::new(),
            next: 0,
            clocks: 0,
            sensor: format!("{sensor:016x}"),
            subjects,
            clock_subject: format!("{}.exchanges.clock", o.nats.prefix).into(),
            c: counters.clone(),
            room: room.clone(),
            nats: o.nats.clone(),
            last_seq: 0,
            warned_refused: false,
            warned_waiting: false,
        };
        let thread = std::thread::Builder::new()
            .name("nats-publish".into())
            .spawn(move || run(rt, conn, flow))
            .map_err(|e| format!("cannot start the NATS publisher: {e}"))?;
        Ok(Publisher {
            tx: Some(tx),
            thread: Some(thread),
            counters,
            room,
            partitions: o.partitions.max(1),
            block: o.block,
            warned_full: false,
            buf: Vec::with_capacity(1024),
            key: String::with_capacity(48),
            trusted: detect.trusted_proxies.clone(),
            identity: detect.identity.clone(),
            sensor,
            emitted: 0,
            last_sent: Instant::now(),
        })
    }

    /// A live sensor's quiet moment (`now`: wall clock, which is packet time live):
    /// when nothing was handed over for [`CLOCK_EVERY`], a clock record says how
    /// far its packet time has gone, so detectors merging several sensors do not
    /// wait on this one. Replays publish none (their packet time is not the wall's).
    pub fn clock(&mut self, now: crate::time::Nanos) {
        if self.block || self.last_sent.elapsed() < CLOCK_EVERY {
            return;
        }
        let Some(tx) = &self.tx else { return };
        self.last_sent = Instant::now();
        self.emitted = self.emitted.max(now);
        let meta = Meta {
            partition: CLOCK,
            sensor: self.sensor,
            emitted: self.emitted,
        };
        super::encode_clock(meta, &mut self.buf);
        let _ = tx.send((CLOCK, Bytes::copy_from_slice(&self.buf)));
    }

    /// Publishes one exchange or TLS connection record.
    pub fn exchange(&mut self, ex: &Exchange) {
        let Some(tx) = &self.tx else { return };
        let room = if self.block {
            self.room.take()
        } else {
            self.room.try_take()
        };
        if !room {
            self.counters.dropped.fetch_add(1, Relaxed);
            if !self.warned_full {
                self.warned_full = true;
                tracing::warn!(
                    buffer = self.room.cap,
                    "The NATS publish buffer is full: exchanges are dropped and counted (apiwatch_publish_dropped_total)"
                );
            }
            return;
        }
        let ip = identity::client_ip(ex, &self.trusted);
        let id = identity::client_id(ex, ip, &self.identity);
        self.key.clear();
        id.write_key(&mut self.key);
        let p = partition_of(&self.key, self.partitions);
        let sealed = identity::Sealed::of(ex, id, &self.identity);
        self.emitted = self.emitted.max(ex.ts);
        let meta = Meta {
            partition: p,
            sensor: self.sensor,
            emitted: self.emitted,
        };
        encode(ex, meta, sealed, self.identity.salt, &mut self.buf);
        self.last_sent = Instant::now();
        if tx.send((p, Bytes::copy_from_slice(&self.buf))).is_err() {
            self.room.give(1);
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Publishes what is buffered and waits for its acknowledgements, at most until
    /// 30 s (5 s after a stop signal) passed without one; what is left then is
    /// counted dropped.
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A runtime for one connection (and the first one's connecting, in `start`).
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the NATS runtime: {e}"))
}

/// One connection to the server and its JetStream context.
struct Conn {
    js: jetstream::Context,
    /// Notified when the client reports the connection lost.
    lost: Arc<Notify>,
}

impl Conn {
    /// Connects (one try of each server), then opens or creates the stream.
    async fn open(o: &NatsOptions) -> Result<Conn, String> {
        let lost = Arc::new(Notify::new());
        let connected = Arc::new(AtomicBool::new(false));
        let (l, c) = (lost.clone(), connected.clone());
        let opts = async_nats::ConnectOptions::new()
            .event_callback(move |event| {
                let down = matches!(event, async_nats::Event::Disconnected);
                let l = l.clone();
                async move {
                    if down {
                        l.notify_one();
                    }
                }
            })
            // The first connection's tries go on at once; once connected, the client
            // never reconnects by itself (module docs): the publisher does.
            .reconnect_delay_callback(move |_| {
                if c.load(Acquire) {
                    PARKED
                } else {
                    Duration::ZERO
                }
            });
        let client = connect_with(o, opts).await?;
        connected.store(true, Release);
        let js = jetstream::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .build(client);
        stream(&js, o).await?;
        Ok(Conn { js, lost })
    }
}

/// One record held until it is stored.
struct Rec {
    /// Its number in this process (the second part of its `Nats-Msg-Id`).
    n: u64,
    partition: u32,
    payload: Bytes,
    /// Published at least once.
    sent: bool,
}

/// The publisher thread's state, which outlives connections.
struct Flow {
    rx: mpsc::UnboundedReceiver<(u32, Bytes)>,
    /// Records taken from the packet thread and not yet stored or dropped, oldest
    /// first; the first [`ACK_WINDOW`] are the ones in flight.
    pending: VecDeque<Rec>,
    next: u64,
    clocks: u64,
    /// The sensor id of the records, in hex: the first part of their `Nats-Msg-Id`.
    sensor: String,
    subjects: Vec<async_nats::Subject>,
    /// `PREFIX.exchanges.clock`.
    clock_subject: async_nats::Subject,
    c: Arc<PublishCounters>,
    room: Arc<Room>,
    nats: NatsOptions,
    /// The stream position of the last record stored (not a duplicate).
    last_seq: u64,
    warned_refused: bool,
    warned_waiting: bool,
}

impl Flow {
    /// Takes what the packet thread handed over, without waiting; notes the end.
    fn take_ready(&mut self, clock: &Clock) {
        loop {
            match self.rx.try_recv() {
                Ok(m) => self.push(m),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    clock.close();
                    return;
                }
            }
        }
    }

    fn push(&mut self, (partition, payload): (u32, Bytes)) {
        // Clock records are numbered apart (`SENSOR-cN`): exchanges keep 1, 2, 3...
        let n = if partition == CLOCK {
            self.clocks += 1;
            self.clocks
        } else {
            self.next += 1;
            self.next
        };
        self.pending.push_back(Rec {
            n,
            partition,
            payload,
            sent: false,
        });
    }

    /// The oldest record is settled: stored, or refused and dropped.
    fn settle(&mut self, clock: &Clock, stored: bool) {
        if let Some(rec) = self.pending.pop_front() {
            clock.progress.set(Instant::now());
            if rec.partition == CLOCK {
                return;
            }
            if stored {
                self.c.acked.fetch_add(1, Relaxed);
            } else {
                self.c.dropped.fetch_add(1, Relaxed);
            }
            self.room.give(1);
        }
    }

    /// The end: whatever is still held is counted dropped.
    fn abandon(&mut self, clock: &Clock) {
        self.take_ready(clock);
        let left = self.pending.iter().filter(|r| r.partition != CLOCK).count() as u64;
        self.pending.clear();
        if left > 0 {
            self.c.dropped.fetch_add(left, Relaxed);
            self.room.give(left);
            tracing::warn!(
                dropped = left,
                grace_s = clock.grace().as_secs(),
                "Exchanges were still unacknowledged by the NATS server when the run ended: counted dropped"
            );
        }
    }
}

/// When to stop trying at the end of a run.
struct Clock {
    /// When the packet thread closed its side (the run ended).
    closed_at: Cell<Option<Instant>>,
    /// When the last record was stored or settled.
    progress: Cell<Instant>,
}

impl Clock {
    fn close(&self) {
        if self.closed_at.get().is_none() {
            self.closed_at.set(Some(Instant::now()));
        }
    }

    /// Shorter once a stop signal came, even while the publisher is waiting.
    fn grace(&self) -> Duration {
        if crate::signals::stopping() {
            STOP_GRACE
        } else {
            FINISH_GRACE
        }
    }

    fn closed(&self) -> bool {
        self.closed_at.get().is_some()
    }

    /// After the end of the run: the last progress (or the end) plus the grace.
    fn deadline(&self) -> Option<Instant> {
        self.closed_at
            .get()
            .map(|c| c.max(self.progress.get()) + self.grace())
    }

    fn expired(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }
}

/// Why a connection ended.
enum End {
    /// The run ended and every record was settled.
    Finished,
    /// The connection failed or could not be made: try again.
    Lost(String),
    /// The run ended and the grace passed.
    GaveUp,
}

/// The publisher thread: one connection after the other until the run ended and
/// every record is stored, or the grace passed.
fn run(first_rt: tokio::runtime::Runtime, first: Conn, mut flow: Flow) {
    struct CloseOnExit(Arc<Room>);
    impl Drop for CloseOnExit {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let _close = CloseOnExit(flow.room.clone());
    let clock = Clock {
        closed_at: Cell::new(None),
        progress: Cell::new(Instant::now()),
    };
    let mut first = Some((first_rt, first));
    let mut backoff = BACKOFF_FIRST;
    // Since when the server is away (None while connected).
    let mut away: Option<Instant> = None;
    loop {
        let (rt, conn) = match first.take() {
            Some((rt, conn)) => (rt, Some(conn)),
            None => match runtime() {
                Ok(rt) => (rt, None),
                Err(err) => {
                    // Out of threads or descriptors: try again like a lost server.
                    tracing::debug!(%err, "Cannot start a NATS runtime");
                    if !pause(&mut flow, &clock, &mut backoff) {
                        break;
                    }
                    continue;
                }
            },
        };
        let end = rt.block_on(async {
            tokio::select! {
                end = session(&mut flow, &clock, conn, &mut away, &mut backoff) => end,
                () = watchdog(&clock) => End::GaveUp,
            }
        });
        // The connection, and all the client still queued for it, go with the runtime.
        drop(rt);
        match end {
            End::Finished => return,
            End::GaveUp => break,
            End::Lost(why) => {
                if away.is_none() {
                    away = Some(Instant::now());
                    flow.c.lost_connections.fetch_add(1, Relaxed);
                    tracing::warn!(
                        reason = %why,
                        held = flow.c.buffered.load(Relaxed),
                        buffer = flow.room.cap,
                        "Lost the NATS server: holding the unacknowledged exchanges and reconnecting"
                    );
                } else {
                    tracing::debug!(reason = %why, "The NATS server is still away");
                }
                if clock.closed() && !flow.warned_waiting {
                    flow.warned_waiting = true;
                    tracing::warn!(
                        held = flow.c.buffered.load(Relaxed),
                        wait_s = clock.grace().as_secs(),
                        "The run ended while the NATS server is away: waiting for it at most this long after the last exchange stored (a stop signal shortens it to 5 s)"
                    );
                }
                if !pause(&mut flow, &clock, &mut backoff) {
                    break;
                }
            }
        }
    }
    flow.abandon(&clock);
}

/// Waits before the next connection attempt; false when the grace passed.
fn pause(flow: &mut Flow, clock: &Clock, backoff: &mut Duration) -> bool {
    flow.take_ready(clock);
    let mut wait = *backoff;
    if let Some(d) = clock.deadline() {
        let now = Instant::now();
        if now >= d {
            return false;
        }
        wait = wait.min(d - now);
    }
    std::thread::sleep(wait);
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    !clock.expired()
}

/// Ends when the grace after the end of the run passed.
async fn watchdog(clock: &Clock) {
    loop {
        let now = Instant::now();
        match clock.deadline() {
            Some(d) if now >= d => return,
            Some(d) => tokio::time::sleep_until(d.min(now + Duration::from_secs(1)).into()).await,
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// One connection: made here unless given, then used until it fails.
async fn session(
    flow: &mut Flow,
    clock: &Clock,
    conn: Option<Conn>,
    away: &mut Option<Instant>,
    backoff: &mut Duration,
) -> End {
    let conn = match conn {
        Some(c) => c,
        None => match Conn::open(&flow.nats).await {
            Ok(c) => c,
            Err(err) => return End::Lost(err),
        },
    };
    if let Some(since) = away.take() {
        tracing::info!(
            away_ms = since.elapsed().as_millis() as u64,
            held = flow.c.buffered.load(Relaxed),
            "The NATS server is back: publishing the held exchanges again, oldest first"
        );
    }
    *backoff = BACKOFF_FIRST;
    pump(flow, clock, &conn).await
}

/// Whether the server's answer is a refusal of this record (dropped and counted),
/// not a reason to publish it again.
fn refused(e: &PublishError) -> bool {
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded
        | PublishErrorKind::WrongLastMessageId
        | PublishErrorKind::WrongLastSequence => true,
        // A JetStream error answer, except "temporarily unavailable".
        PublishErrorKind::Other => std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<jetstream::Error>())
            .is_some_and(|j| j.code() != 503),
        _ => false,
    }
}

/// Publishes the held records in windows, oldest first, and settles them as their
/// acknowledgements arrive; returns when the connection fails or all is done.
async fn pump(flow: &mut Flow, clock: &Clock, conn: &Conn) -> End {
    let mut acks = Vec::with_capacity(ACK_WINDOW);
    loop {
        flow.take_ready(clock);
        if flow.pending.is_empty() {
            if clock.closed() {
                return End::Finished;
            }
            tokio::select! {
                m = flow.rx.recv() => match m {
                    Some(m) => flow.push(m),
                    None => clock.close(),
                },
                () = conn.lost.notified() => return End::Lost("connection lost".into()),
            }
            continue;
        }
        acks.clear();
        for rec in flow.pending.iter_mut().take(ACK_WINDOW) {
            let msg = PublishMessage::build()
                .payload(rec.payload.clone())
                .message_id(if rec.partition == CLOCK {
                    format!("{}-c{}", flow.sensor, rec.n)
                } else {
                    format!("{}-{}", flow.sensor, rec.n)
                });
            let subject = match flow.subjects.get(rec.partition as usize) {
                Some(s) => s.clone(),
                None => flow.clock_subject.clone(),
            };
            let sent = tokio::select! {
                r = conn.js.send_publish(subject, msg) => r,
                () = conn.lost.notified() => return End::Lost("connection lost".into()),
            };
            match sent {
                Ok(ack) => {
                    if rec.sent {
                        flow.c.retried.fetch_add(1, Relaxed);
                    } else {
                        rec.sent = true;
                        if rec.partition != CLOCK {
                            flow.c.published.fetch_add(1, Relaxed);
                        }
                    }
                    acks.push(Ok(ack));
                }
                Err(err) if refused(&err) => acks.push(Err(err)),
                Err(err) => return End::Lost(err.to_string()),
            }
        }
        // Awaited in order: they arrive meanwhile, so the window costs one wait.
        for ack in acks.drain(..) {
            let answer = match ack {
                Ok(fut) => tokio::select! {
                    r = fut.into_future() => r,
                    () = conn.lost.notified() => return End::Lost("connection lost".into()),
                },
                Err(err) => Err(err),
            };
            match answer {
                Ok(ack) => {
                    if ack.duplicate {
                        flow.c.duplicates.fetch_add(1, Relaxed);
                    } else {
                        if ack.sequence < flow.last_seq {
                            flow.c.out_of_order.fetch_add(1, Relaxed);
                            tracing::debug!(
                                seq = ack.sequence,
                                after = flow.last_seq,
                                "An exchange was stored ahead of an earlier one"
                            );
                        }
                        flow.last_seq = ack.sequence;
                    }
                    flow.settle(clock, true);
                }
                Err(err) if refused(&err) => {
                    if !flow.warned_refused {
                        flow.warned_refused = true;
                        tracing::warn!(%err, "The NATS server refused an exchange: dropped and counted (further refusals are only counted)");
                    }
                    flow.settle(clock, false);
                }
                Err(err) => return End::Lost(err.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(cap: u64) -> Room {
        Room {
            cap,
            c: Arc::new(PublishCounters::default()),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            open: AtomicBool::new(true),
        }
    }

    #[test]
    fn the_room_bounds_held_records_and_remembers_the_peak() {
        let r = room(3);
        assert!(r.try_take() && r.try_take() && r.try_take());
        assert!(!r.try_take(), "a fourth record beyond --publish-buffer 3");
        r.give(2);
        assert_eq!(r.c.buffered.load(Relaxed), 1);
        assert!(r.take(), "room was given back");
        assert_eq!(r.c.buffered_peak.load(Relaxed), 3);
        // A waiting replay is woken by a place given back on another thread.
        let r = Arc::new(room(1));
        assert!(r.try_take());
        let r2 = r.clone();
        let giver = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            r2.give(1);
        });
        assert!(r.take());
        giver.join().unwrap();
        // Once the publisher is gone nobody gives places back: no wait.
        r.close();
        assert!(!r.take());
    }

    #[test]
    fn refusals_are_told_from_failures_worth_a_retry() {
        let js_err = |code: u16, err_code: u64| {
            let e: jetstream::Error = serde_json::from_str(&format!(
                r#"{{"code":{code},"err_code":{err_code},"description":"x"}}"#
            ))
            .unwrap();
            PublishError::with_source(PublishErrorKind::Other, e)
        };
        assert!(refused(&js_err(400, 10054)), "a JetStream error answer");
        assert!(!refused(&js_err(503, 10008)), "temporarily unavailable");
        assert!(refused(&PublishError::new(
            PublishErrorKind::MaxPayloadExceeded
        )));
        for kind in [
            PublishErrorKind::TimedOut,
            PublishErrorKind::BrokenPipe,
            PublishErrorKind::StreamNotFound,
            PublishErrorKind::MaxAckPending,
            PublishErrorKind::Other,
        ] {
            assert!(!refused(&PublishError::new(kind)), "{kind:?}");
        }
    }

    #[test]
    fn the_grace_runs_from_the_end_or_the_last_progress() {
        let clock = Clock {
            closed_at: Cell::new(None),
            progress: Cell::new(Instant::now()),
        };
        assert!(clock.deadline().is_none() && !clock.expired());
        clock.close();
        let d = clock.deadline().unwrap();
        assert!(d > Instant::now() + FINISH_GRACE - Duration::from_secs(1));
        clock.progress.set(Instant::now() + Duration::from_secs(10));
        assert!(clock.deadline().unwrap() > d, "progress moves the deadline");
        clock
            .closed_at
            .set(Some(Instant::now() - Duration::from_secs(100)));
        clock
            .progress
            .set(Instant::now() - Duration::from_secs(100));
        assert!(clock.expired());
    }
}
