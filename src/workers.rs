//! Worker threads: stage 1 of the two-stage sharding in DESIGN.md (decode, flows,
//! HTTP) on several cores, feeding one detection stage on the calling thread.
//!
//! Live capture ([`live`]): one thread per socket of a PACKET_FANOUT group; the kernel
//! splits packets by flow, each thread runs a whole [`crate::pipeline::Pipeline`], and
//! exchanges reach the detection stage as they finish (bounded channel: a slow
//! detection stage fills the rings, and the kernel counts the drops).
//!
//! Replay ([`replay`]), with the same output as one worker: a reader thread decodes
//! frames (link and IP layers, fragment reassembly, the filter) and hands each TCP
//! segment to the worker that owns its connection, chosen by a symmetric hash of the
//! connection key; payloads of mapped files travel as offsets into the mapping. The
//! reader numbers every packet and every idle-connection sweep (it keeps the same
//! [`SweepClock`] a flow table would) and tags each batch with how far it got. A
//! worker returns each exchange tagged with the number of the packet or sweep that
//! completed it and the connection key. The merge releases exchanges in (number, key)
//! order once every worker has reported past that number, which is exactly the order
//! a single flow table emits them in (a sweep finishes connections in key order). This
//! holds while no flow table is full: eviction at the bound depends on what shares a
//! table.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::capture::file::InputLog;
use crate::decode::TcpSegment;
use crate::flow::{FlowConfig, FlowKey, FlowStats, FlowTable, SweepClock};
use crate::http::Exchange;
use crate::pipeline::{CaptureStats, Front, PipelineStats};
use crate::time::Nanos;
use crate::time::Pacer;

/// Packets per batch handed to a worker: large enough that channel costs vanish,
/// small enough that the merge has little to hold.
const BATCH_PACKETS: usize = 2048;
/// Payload bytes per batch.
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued per worker before the reader waits (bounds memory).
const QUEUE: usize = 8;

/// The number of the last packet or sweep, for exchanges finished at end of input.
const END: u64 = u64::MAX;

/// A segment's header fields; its payload lives in the batch's arena.
struct Seg {
    number: u64,
    ts: Nanos,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    /// The payload is `map[start..start + len]` rather than in the arena.
    mapped: bool,
    start: usize,
    len: u32,
}

impl Seg {
    /// The segment again, its payload in `bytes` (the map or the arena).
    fn segment<'a>(&self, bytes: &'a [u8]) -> TcpSegment<'a> {
        TcpSegment {
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            payload: &bytes[self.start..self.start + self.len as usize],
        }
    }
}

enum Item {
    Seg(Seg),
    /// Capture time reached `ts`: sweep idle connections.
    Tick {
        number: u64,
        ts: Nanos,
    },
}

/// What the reader sends one worker.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    /// Payloads that are not in the mapped file (gzip, stdin, IP fragments).
    payload: Vec<u8>,
    /// The capture file being read, when it is mapped: payloads are passed as
    /// offsets into it instead of copied (the batch keeps it mapped).
    map: Option<Arc<crate::capture::mapped::MappedFile>>,
    /// Every packet and sweep numbered below this has been handed out.
    through: u64,
    /// Where the reader was in the mapped file when it handed this batch out
    /// (see [`mark`]; 0 when it does not matter).
    mark: u64,
}

impl Batch {
    /// Queues a segment; its payload is referenced in `map` when it lies there.
    /// Returns the payload bytes copied.
    fn push(
        &mut self,
        number: u64,
        ts: Nanos,
        s: &TcpSegment<'_>,
        map: Option<&Arc<crate::capture::mapped::MappedFile>>,
    ) -> usize {
        let within = map.and_then(|m| {
            let base = m.as_ptr() as usize;
            let at = s.payload.as_ptr() as usize;
            (at >= base && at + s.payload.len() <= base + m.len()).then(|| (m, at - base))
        });
        let (mapped, start) = match within {
            Some((m, off)) => {
                if self.map.is_none() {
                    self.map = Some(m.clone());
                }
                (true, off)
            }
            None => {
                let start = self.payload.len();
                self.payload.extend_from_slice(s.payload);
                (false, start)
            }
        };
        self.items.push(Item::Seg(Seg {
            number,
            ts,
            src: s.src,
            dst: s.dst,
            sport: s.sport,
            dport: s.dport,
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            mapped,
            start,
            len: s.payload.len() as u32,
        }));
        if mapped { 0 } else { s.payload.len() }
    }
}

/// What a worker sends back: finished exchanges in order, and how far it got.
/// An exchange with its merge position and, optionally, its exchange-log head.
type Tagged = (u64, FlowKey, Exchange, Option<String>);

struct Done {
    worker: usize,
    exchanges: Vec<Tagged>,
    through: u64,
    flows: FlowStats,
    active: usize,
}

/// The connection key of an exchange (the same key its flow table used).
fn key_of(e: &Exchange) -> FlowKey {
    let c = (e.client_ip, e.client_port);
    let s = (e.server_ip, e.server_port);
    if c <= s {
        FlowKey::new(c, s)
    } else {
        FlowKey::new(s, c)
    }
}

/// Which worker owns a connection. A fixed seed: the same capture always splits
/// the same way.
fn owner(key: &FlowKey, workers: usize) -> usize {
    let h = foldhash::fast::FixedState::with_seed(0x5eed_f10e).hash_one(key);
    (h % workers as u64) as usize
}

/// What the reader hands back at the end.
pub struct ReaderEnd {
    pub capture: CaptureStats,
    /// Non-fatal problems (a truncated last record).
    pub warnings: Vec<String>,
    /// Inputs that could not be read to the end.
    pub errors: Vec<String>,
}

/// Why a sharded replay could not run.
pub enum ReadFailure {
    /// The path cannot be used at all (exit 2).
    Usage(String),
    /// The machine would not run the threads (exit 1).
    Runtime(String),
}

/// How a sharded replay reports progress to the thread that owns the outputs.
pub trait Sink {
    type Error;
    /// One exchange, in the order a single worker would have produced it, with its
    /// exchange-log head when the workers were asked to make them. Lent, not given
    /// (a record is ~750 bytes; each move copies it): a sink that must own it takes it
    /// with [`Exchange::take`].
    fn exchange(&mut self, e: &mut Exchange, head: Option<&str>) -> Result<(), Self::Error>;
    /// Called between batches with the counters so far.
    fn progress(&mut self, stats: &PipelineStats);
    /// Live capture: nothing arrived for a while; `now` is the wall clock.
    fn idle(&mut self, _now: Nanos, _stats: &PipelineStats) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Options for [`replay`].
pub struct ShardOptions<'a> {
    pub files: &'a [String],
    pub workers: usize,
    pub flow: &'a FlowConfig,
    /// `--replay-speed`.
    pub speed: Option<f64>,
    /// The capture filter.
    pub filter: Option<crate::capture::bpf::Filter>,
    /// Workers serialise the exchange-log fields they know (the exchange log is on).
    pub log_heads: bool,
    /// Where the reader says how far into the input it is (progress).
    pub progress: Option<Arc<crate::progress::Counters>>,
}

/// Replays `files` over `workers` flow tables; exchanges go to `sink` in capture order.
pub fn replay<S: Sink>(
    opts: &ShardOptions<'_>,
    sink: &mut S,
) -> Result<Result<(PipelineStats, ReaderEnd), ReadFailure>, S::Error> {
    let n = opts.workers.max(1);
    let capture = Arc::new(Mutex::new(CaptureStats::default()));
    let mut inputs = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    let progress: Progress = (0..n).map(|_| AtomicU64::new(0)).collect();
    // One bounded channel back from all workers: when detection and the outputs are
    // the slowest stage, workers wait and the reader with them, so memory stays
    // bounded; the merge never waits on one particular worker, so none can block it.
    let (dtx, outputs) = mpsc::sync_channel::<Done>(2 * n);
    let log_heads = opts.log_heads;
    for i in 0..n {
        let (tx, rx) = mpsc::sync_channel::<Batch>(QUEUE);
        let cfg = opts.flow.clone();
        let progress = progress.clone();
        let dtx = dtx.clone();
        let spawned = thread::Builder::new()
            .name(format!("apiwatch-flow-{i}"))
            .spawn(move || work(i, cfg, rx, dtx, &progress[i], log_heads));
        // On failure the workers already started end when `inputs` is dropped.
        let h = match spawned {
            Ok(h) => h,
            Err(e) => {
                return Ok(Err(ReadFailure::Runtime(format!(
                    "cannot start a worker thread: {e}"
                ))));
            }
        };
        inputs.push(tx);
        handles.push(h);
    }
    drop(dtx);
    let files = opts.files.to_vec();
    let speed = opts.speed;
    let input_progress = opts.progress.clone();
    let r = Reader {
        batches: (0..n).map(|_| Batch::default()).collect(),
        inputs,
        front: {
            let mut f = Front::with_filter(opts.filter.clone());
            f.set_fragment_budget(opts.flow.fragment_bytes);
            f
        },
        clock: SweepClock::default(),
        number: 0,
        pending: 0,
        shared: capture.clone(),
        progress,
    };
    let reader = match thread::Builder::new()
        .name("apiwatch-reader".into())
        .spawn(move || read(&files, speed, r, input_progress.as_deref()))
    {
        Ok(h) => h,
        Err(e) => {
            return Ok(Err(ReadFailure::Runtime(format!(
                "cannot start the reader thread: {e}"
            ))));
        }
    };

    let merged = merge(n, &outputs, &capture, sink);
    // On a sink error the receivers go away; workers and the reader then stop at
    // their next send.
    drop(outputs);
    let read = reader.join().unwrap_or_else(|_| {
        Err(ReadFailure::Runtime(
            "the reader thread stopped unexpectedly".into(),
        ))
    });
    for h in handles {
        let _ = h.join();
    }
    let flows = merged?;
    Ok(read.map(|end| {
        let mut stats = flows;
        stats.capture = end.capture.clone();
        (stats, end)
    }))
}

/// How far a worker got in the mapped file: the file's number in the upper 16 bits,
/// the offset below. The reader releases mapped pages only below what every worker
/// has finished with.
type Progress = Arc<[AtomicU64]>;

fn mark(file: usize, offset: usize) -> u64 {
    ((file as u64 & 0xffff) << 48) | (offset as u64 & ((1 << 48) - 1))
}

/// The reader's state: what is being batched for which worker.
struct Reader {
    inputs: Vec<SyncSender<Batch>>,
    batches: Vec<Batch>,
    front: Front,
    clock: SweepClock,
    /// The next packet or sweep number.
    number: u64,
    /// Packets since the last hand-out.
    pending: usize,
    shared: Arc<Mutex<CaptureStats>>,
    progress: Progress,
}

impl Reader {
    /// Hands every worker its batch (empty ones too: they carry how far the reader
    /// got). False when the workers are gone.
    fn flush(&mut self, mark: u64) -> bool {
        if let Ok(mut c) = self.shared.lock() {
            *c = self.front.stats.clone();
        }
        self.pending = 0;
        for (b, tx) in self.batches.iter_mut().zip(&self.inputs) {
            let mut full = std::mem::take(b);
            full.through = self.number;
            full.mark = mark;
            if tx.send(full).is_err() {
                return false;
            }
        }
        true
    }

    /// Decodes one packet and queues its segment for the worker owning the connection.
    /// True when the batches are full.
    fn packet(
        &mut self,
        p: &crate::capture::Packet<'_>,
        map: Option<&Arc<crate::capture::mapped::MappedFile>>,
    ) -> bool {
        if self.clock.advance(p.ts) {
            for b in self.batches.iter_mut() {
                b.items.push(Item::Tick {
                    number: self.number,
                    ts: self.clock.now(),
                });
            }
            self.number += 1;
        }
        let n = self.batches.len();
        let (batches, number) = (&mut self.batches, self.number);
        let mut full = false;
        self.front.packet(p, |seg| {
            let b = &mut batches[owner(&FlowKey::of(seg).0, n)];
            b.push(number, p.ts, seg, map);
            full |= b.payload.len() >= BATCH_BYTES;
        });
        self.number += 1;
        self.pending += 1;
        full || self.pending >= BATCH_PACKETS
    }

    /// The mapped offset of `file` every worker is past.
    fn finished_below(&self, file: usize) -> usize {
        let mut low = usize::MAX;
        for p in self.progress.iter() {
            let m = p.load(Ordering::Acquire);
            if m >> 48 != file as u64 & 0xffff {
                return 0;
            }
            low = low.min((m & ((1 << 48) - 1)) as usize);
        }
        low
    }
}

/// The reader: files → decoded segments → per-worker batches.
fn read(
    files: &[String],
    speed: Option<f64>,
    mut r: Reader,
    progress: Option<&crate::progress::Counters>,
) -> Result<ReaderEnd, ReadFailure> {
    let mut log = InputLog::default();
    let mut pacer = speed.map(Pacer::new);
    // Input bytes of the files before this one (progress).
    let mut input_done = 0;
    'files: for (file, path) in files.iter().enumerate() {
        let Some(mut src) = log
            .open(path)
            .map_err(|e| ReadFailure::Usage(e.to_string()))?
        else {
            continue;
        };
        // A batch refers to at most one mapped file.
        if r.pending > 0 && !r.flush(0) {
            break 'files;
        }
        let map = src.mapping();
        if map.is_some() {
            src.release_below(0);
        }
        let position = src.position_source();
        while let Some(p) = log.next(path, &mut src) {
            if let Some(wait) = pacer.as_mut().and_then(|pc| pc.wait(p.ts)) {
                // Hand out what is ready before waiting, so metrics stay current.
                if r.pending > 0 && !r.flush(0) {
                    break 'files;
                }
                if let Some(c) = progress {
                    c.input
                        .store(input_done + position.after(&p), Ordering::Relaxed);
                }
                crate::time::pause(wait);
            }
            if crate::signals::stopping() {
                break 'files;
            }
            if r.packet(&p, map.as_ref()) {
                let at = mark(file, src.mapped_position());
                if !r.flush(at) {
                    break 'files;
                }
                if let Some(c) = progress {
                    c.input
                        .store(input_done + src.position(), Ordering::Relaxed);
                }
                if map.is_some() {
                    let below = r.finished_below(file);
                    src.release_below(below);
                }
            }
        }
        input_done += src.position();
    }
    let InputLog { warnings, errors } = log;
    r.flush(0);
    Ok(ReaderEnd {
        capture: r.front.stats,
        warnings,
        errors,
    })
}

/// A worker: segments → flow table → exchanges tagged for the merge.
fn work(
    worker: usize,
    cfg: FlowConfig,
    rx: Receiver<Batch>,
    tx: SyncSender<Done>,
    progress: &AtomicU64,
    log_heads: bool,
) {
    let mut table = FlowTable::new(cfg);
    let mut buf = Vec::new();
    let tag = |number: u64, buf: &mut Vec<Exchange>, out: &mut Vec<Tagged>| {
        out.extend(buf.drain(..).map(|e| {
            let head =
                (log_heads && !e.is_tls()).then(|| crate::export::exchange_log::head_json(&e));
            (number, key_of(&e), e, head)
        }));
    };
    for batch in rx {
        let mut out = Vec::new();
        for item in &batch.items {
            match item {
                Item::Tick { number, ts } => {
                    table.tick(*ts, &mut buf);
                    tag(*number, &mut buf, &mut out);
                }
                Item::Seg(s) => {
                    let bytes: &[u8] = match (&batch.map, s.mapped) {
                        (Some(m), true) => m,
                        _ => &batch.payload,
                    };
                    table.segment(&s.segment(bytes), s.ts, &mut buf);
                    tag(s.number, &mut buf, &mut out);
                }
            }
        }
        if batch.mark != 0 {
            progress.store(batch.mark, Ordering::Release);
        }
        let through = batch.through;
        // Unmaps the file when this was the last batch holding it.
        drop(batch);
        let done = Done {
            worker,
            exchanges: out,
            through,
            flows: table.stats.clone(),
            active: table.active(),
        };
        if tx.send(done).is_err() {
            return;
        }
    }
    let mut out = Vec::new();
    table.flush_all(&mut buf);
    tag(END, &mut buf, &mut out);
    let _ = tx.send(Done {
        worker,
        exchanges: out,
        through: END,
        flows: table.stats.clone(),
        active: table.active(),
    });
}

/// Releases exchanges in (number, key) order as soon as every worker is past them.
/// Returns the summed flow counters.
fn merge<S: Sink>(
    n: usize,
    outputs: &Receiver<Done>,
    capture: &Mutex<CaptureStats>,
    sink: &mut S,
) -> Result<PipelineStats, S::Error> {
    let mut queues: Vec<VecDeque<Tagged>> = vec![VecDeque::new(); n];
    // Each worker has reported every number below this (END once it is finished).
    let mut through: Vec<u64> = vec![0; n];
    let mut flows: Vec<(FlowStats, usize)> = vec![Default::default(); n];
    let total = |flows: &[(FlowStats, usize)]| {
        let mut s = PipelineStats::default();
        for (f, a) in flows {
            s.flows.add(f);
            s.active_flows += a;
            s.workers.push((f.segments, *a));
        }
        if let Ok(c) = capture.lock() {
            s.capture = c.clone();
        }
        s
    };
    loop {
        // Release everything every worker is past.
        let limit = through.iter().copied().min().unwrap_or(END);
        loop {
            let next = queues
                .iter()
                .enumerate()
                .filter_map(|(i, q)| q.front().map(|(num, key, _, _)| ((*num, *key), i)))
                .filter(|((num, _), _)| *num < limit || limit == END)
                .min();
            let Some((_, i)) = next else { break };
            let (_, _, mut e, head) = queues[i].pop_front().expect("a head was just seen");
            sink.exchange(&mut e, head.as_deref())?;
        }
        if limit == END {
            break;
        }
        match outputs.recv() {
            Ok(done) => {
                let i = done.worker;
                queues[i].extend(done.exchanges);
                through[i] = done.through;
                flows[i] = (done.flows, done.active);
                sink.progress(&total(&flows));
            }
            // Every worker is gone (one stopped early): release what there is.
            Err(_) => through.iter_mut().for_each(|t| *t = END),
        }
    }
    Ok(total(&flows))
}

/// What a live worker sends: exchanges as they finish (with their exchange-log
/// heads when asked) and its counters.
struct LiveDone {
    worker: usize,
    exchanges: Vec<(Exchange, Option<String>)>,
    stats: PipelineStats,
    /// The capture failed on this worker's socket.
    error: Option<String>,
}

/// Exchanges a live worker collects before handing them over.
const LIVE_BATCH: usize = 256;

/// Live capture: one worker per socket of a fanout group, each with its own pipeline;
/// exchanges reach `sink` as they finish (the kernel's timestamps, so detection
/// windows stay right when workers hand over out of step). Runs until
/// [`crate::signals::stopping`], then every worker finishes its connections.
/// Returns the summed counters and the capture errors.
/// `log_heads`: workers also serialise the exchange-log fields they know, so that
/// work is spread over the capture threads.
pub fn live<S: Sink>(
    sources: Vec<Box<dyn crate::capture::LiveCapture>>,
    flow: &FlowConfig,
    log_heads: bool,
    sink: &mut S,
) -> Result<(PipelineStats, Vec<String>), S::Error> {
    use crate::pipeline::Pipeline;
    use crate::signals;
    use std::sync::mpsc::RecvTimeoutError;

    let n = sources.len();
    // Bounded: when detection falls behind, workers wait, the rings fill and the
    // kernel counts drops, instead of memory growing.
    let (tx, rx) = mpsc::sync_channel::<LiveDone>(4 * n);
    let mut errors = Vec::new();
    for (worker, mut src) in sources.into_iter().enumerate() {
        let tx = tx.clone();
        let cfg = flow.clone();
        let spawned = thread::Builder::new()
            .name(format!("apiwatch-capture-{worker}"))
            .spawn(move || {
                let mut p = Pipeline::new(cfg);
                let mut buf = Vec::new();
                let mut last_send = Instant::now();
                let mut since_check = 0u32;
                let mut error = None;
                let with_heads = |buf: Vec<Exchange>| -> Vec<(Exchange, Option<String>)> {
                    buf.into_iter()
                        .map(|e| {
                            let head = (log_heads && !e.is_tls())
                                .then(|| crate::export::exchange_log::head_json(&e));
                            (e, head)
                        })
                        .collect()
                };
                loop {
                    if signals::stopping() {
                        break;
                    }
                    let mut idle = false;
                    match src.next_packet() {
                        Ok(Some(pkt)) => p.packet(&pkt, &mut buf),
                        Ok(None) => {
                            p.idle(crate::time::wall_clock(), &mut buf);
                            idle = true;
                        }
                        Err(e) => {
                            error = Some(format!("capture failed: {e}"));
                            break;
                        }
                    }
                    since_check += 1;
                    let due = since_check >= 64 && {
                        since_check = 0;
                        last_send.elapsed() >= Duration::from_millis(100)
                    };
                    if idle || due || buf.len() >= LIVE_BATCH {
                        last_send = Instant::now();
                        let k = src.kernel_stats();
                        p.front.stats.kernel_drops = k.drops;
                        p.front.stats.kernel_freezes = k.freezes;
                        let msg = LiveDone {
                            worker,
                            exchanges: with_heads(std::mem::take(&mut buf)),
                            stats: p.stats(),
                            error: None,
                        };
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                }
                p.finish(&mut buf);
                let k = src.kernel_stats();
                p.front.stats.kernel_drops = k.drops;
                p.front.stats.kernel_freezes = k.freezes;
                let _ = tx.send(LiveDone {
                    worker,
                    exchanges: with_heads(buf),
                    stats: p.stats(),
                    error,
                });
            });
        if let Err(e) = spawned {
            // The workers already started stop at the flag and finish cleanly.
            errors.push(format!("cannot start a capture thread: {e}"));
            signals::request_stop();
            break;
        }
    }
    drop(tx);
    let mut latest = vec![PipelineStats::default(); n];
    let total = |latest: &[PipelineStats]| {
        let mut t = PipelineStats::default();
        for s in latest {
            t.add(s);
        }
        t
    };
    let mut last_idle = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(msg) => {
                for (mut e, head) in msg.exchanges {
                    sink.exchange(&mut e, head.as_deref())?;
                }
                latest[msg.worker] = msg.stats;
                if let Some(e) = msg.error {
                    errors.push(e);
                    // One socket failing ends the capture: stop the others cleanly.
                    signals::request_stop();
                }
                sink.progress(&total(&latest));
                if last_idle.elapsed() >= Duration::from_millis(500) {
                    last_idle = Instant::now();
                    sink.idle(crate::time::wall_clock(), &total(&latest))?;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                last_idle = Instant::now();
                sink.idle(crate::time::wall_clock(), &total(&latest))?;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok((total(&latest), errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_of_a_connection_go_to_the_same_worker() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let seg = |src, dst, sport, dport| TcpSegment {
            src,
            dst,
            sport,
            dport,
            seq: 0,
            ack: 0,
            flags: 0,
            payload: &[],
        };
        let mut used = std::collections::HashSet::new();
        for port in 40000..40064 {
            let there = owner(&FlowKey::of(&seg(a, b, port, 80)).0, 4);
            let back = owner(&FlowKey::of(&seg(b, a, 80, port)).0, 4);
            assert_eq!(there, back);
            used.insert(there);
        }
        assert_eq!(used.len(), 4, "64 connections should reach every worker");
    }
}
