//! The sensor's run: packets from capture files (`-r`, in order, as fast as the
//! machine allows or paced by packet time) or from live interfaces (`-i`) through
//! the flow workers and detection, into the exchange and alert logs, the state file
//! and the metrics endpoint, until the input ends or a signal asks it to stop.

use std::io::{self, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::capture::Packet;
use crate::capture::file::InputLog;
use crate::detect::{Alert, DetectConfig, Engine, state};
use crate::export::alert_log::AlertLog;
use crate::export::eve::Input;
use crate::export::exchange_log::{ExchangeFormat, ExchangeLog};
use crate::flow::FlowConfig;
use crate::http::Exchange;
use crate::metrics::{self, Backfill, EndpointMetrics, Exposition, HttpMetrics};
use crate::time::Pacer;

/// Packet time between two OpenMetrics backfill snapshots (Prometheus' usual scrape
/// interval).
const BACKFILL_EVERY: u64 = 15_000_000_000;
use crate::pipeline::{Pipeline, PipelineStats};
use crate::workers;

/// What to replay and where results go.
#[derive(Debug, Clone, Default)]
pub struct SensorOptions {
    pub files: Vec<String>,
    /// `--exchanges PATH` (`-` for stdout).
    pub exchanges: Option<String>,
    /// `--exchanges-format`.
    pub exchanges_format: ExchangeFormat,
    /// `--alerts PATH` (`-` or absent: stdout).
    pub alerts: Option<String>,
    pub flow: FlowConfig,
    pub detect: DetectConfig,
    /// `--web.*`: where and how metrics are served while the sensor runs.
    pub web: crate::metrics::WebOptions,
    /// `--replay-speed`: pace by packet time (1 = as recorded).
    pub replay_speed: Option<f64>,
    /// `--web.linger`: keep serving the final metrics this long after the replay.
    pub web_linger: Option<std::time::Duration>,
    /// `-i IFACE`: capture live instead of reading files.
    pub interface: Option<String>,
    /// `--openmetrics-out`: the replay's metrics on packet time, for backfilling.
    pub openmetrics_out: Option<String>,
    /// `--workers`: flow-table threads (1: everything on the calling thread); in live
    /// capture, sockets in one fanout group.
    pub workers: usize,
    /// Live capture ring settings.
    pub ring: crate::capture::RingOptions,
    /// `--user`: drop to this user once the sockets and files are open.
    pub user: Option<String>,
    /// A capture filter (trailing words of the command line, as tcpdump's).
    pub filter: Option<crate::capture::bpf::Filter>,
    /// `--capture-backend`.
    pub backend: Backend,
    /// `--endpoints`: the learned inventory as OpenAPI 3.1, refreshed on the
    /// snapshot interval and at the end.
    pub endpoints: Option<std::path::PathBuf>,
    /// Show a replay's progress on stderr (not with `-q`).
    pub progress: bool,
    /// `--publish nats://...`: stage 1 only, every exchange published to NATS
    /// JetStream for `apiwatch detect` processes (no detection here).
    pub publish: Option<crate::nats::PublishOptions>,
}

/// Why a replay failed. `Usage` errors exit 2, `Runtime` errors exit 1.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// A path the user gave cannot be used.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing failed while running.
    #[error("{0}")]
    Runtime(String),
    /// The reader of an output went away (`apiwatch ... | head`): a quiet end.
    #[error("output closed")]
    OutputClosed,
}

/// The outcome of a replay that ran to the end.
pub struct SensorReport {
    pub stats: PipelineStats,
    pub engine: Engine,
    pub exchanges: u64,
    /// TLS connections whose handshake record was handed over.
    pub tls_connections: u64,
    /// Wall time from the start of reading until the last alert and exchange were
    /// written: what the rate is measured over (`--web.linger` is not in it).
    pub elapsed: Duration,
    /// The signal that ended the run before its input did (`SIGINT`, `SIGTERM`).
    pub interrupted: Option<&'static str>,
    /// Non-fatal problems (a truncated last record).
    pub warnings: Vec<String>,
    /// Fatal problems with one input (not a capture, corrupt): later files still ran.
    pub errors: Vec<String>,
    /// With `--publish`: what was published, acknowledged and dropped.
    pub published: Option<std::sync::Arc<crate::nats::PublishCounters>>,
}

/// Opens an output file without following a symbolic link in its last component:
/// apiwatch starts as root, and a link planted in a log directory the unprivileged
/// user owns must not make it truncate (or hand over) some other file. Files are
/// given to `owner` by descriptor, never by path.
fn open_nofollow(
    path: &str,
    append: bool,
    owner: Option<(u32, u32)>,
) -> io::Result<Box<dyn Write + Send>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    let f = o.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io::Error::other(
                "is a symbolic link (refused: outputs are opened without following links)",
            )
        } else {
            e
        }
    })?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
    }
    Ok(Box::new(f))
}

/// Reopens an output file for appending (after log rotation).
fn open_append(path: &str, what: &str) -> Result<Box<dyn Write + Send>, SensorError> {
    open_nofollow(path, true, None)
        .map_err(|e| SensorError::Runtime(format!("{path}: cannot reopen {what} file: {e}")))
}

/// Opens an output path given on the command line (`-` is standard output), owned by
/// `owner` when `--user` will drop root.
pub fn open_output(
    path: &str,
    what: &str,
    owner: Option<(u32, u32)>,
) -> Result<Box<dyn Write + Send>, SensorError> {
    if path == "-" {
        return Ok(Box::new(io::stdout()));
    }
    open_nofollow(path, false, owner)
        .map_err(|e| SensorError::Usage(format!("{path}: cannot create {what} file: {e}")))
}

/// Detection threads when the configuration leaves it to apiwatch. On two or three
/// cores the workers, the reader and the merging thread already share every core,
/// and extra threads only compete (measured: ~5 % slower with 2 shards on 2 cores),
/// so detection stays inline. With more cores, shards take the per-client half off
/// the one sequential thread: on the bench mix that half costs about a fifth of what
/// a worker spends per exchange, so one shard per four workers, at least two. Not
/// measured beyond 2 cores. The alerts are the same either way.
fn auto_shards(workers: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 4 {
        1
    } else {
        (workers / 4).max(2).min(workers)
    }
}

/// Where every exchange goes: the exchange log, the detection engine, the alert log
/// and the periodic state snapshot.
struct Sinks {
    /// Output paths, for reopening on SIGHUP.
    exchanges_path: Option<String>,
    alerts_path: String,
    http: HttpMetrics,
    per_endpoint: EndpointMetrics,
    log: Option<ExchangeLog>,
    alerts: AlertLog,
    engine: Engine,
    fired: Vec<Alert>,
    written: u64,
    /// TLS connections' records handed over (not exchanges).
    tls_written: u64,
    alerts_written: u64,
    state_file: Option<std::path::PathBuf>,
    snapshot_interval: u64,
    next_snapshot: Option<u64>,
    endpoints_file: Option<std::path::PathBuf>,
    next_endpoints: Option<u64>,
    /// Writes periodic snapshots off the processing thread.
    saver: crate::durable::Saver,
    /// `--publish`: exchanges go to NATS instead of the engine.
    publisher: Option<crate::nats::Publisher>,
}

fn write_err(e: io::Error) -> SensorError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return SensorError::OutputClosed;
    }
    SensorError::Runtime(format!("cannot write exchanges: {e}"))
}

fn alert_err(e: io::Error) -> SensorError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return SensorError::OutputClosed;
    }
    SensorError::Runtime(format!("cannot write alerts: {e}"))
}

impl Sinks {
    /// Whether workers should serialise exchange-log heads (the `apiwatch` form).
    fn wants_heads(&self) -> bool {
        self.log
            .as_ref()
            .is_some_and(|l| l.format == ExchangeFormat::Apiwatch)
    }

    /// SIGHUP: the output files were rotated; write on at their paths (appending when
    /// a file is still there).
    fn reopen(&mut self) -> Result<(), SensorError> {
        self.flush_outputs()?;
        if let Some(p) = self.exchanges_path.as_deref().filter(|p| *p != "-") {
            let (format, input) = self
                .log
                .as_ref()
                .map(|l| (l.format, l.input.clone()))
                .unwrap_or_default();
            self.log = Some(ExchangeLog::new(
                open_append(p, "exchanges")?,
                format,
                input,
            ));
        }
        if self.alerts_path != "-" {
            let input = self.alerts.input.clone();
            self.alerts = AlertLog::new(open_append(&self.alerts_path, "alerts")?, input);
        }
        tracing::info!("Reopened the output files (SIGHUP)");
        Ok(())
    }

    /// Pushes buffered exchange and alert lines out (live capture, quiet wire).
    fn flush_outputs(&mut self) -> Result<(), SensorError> {
        if let Some(l) = self.log.as_mut() {
            l.flush().map_err(write_err)?;
        }
        self.alerts.flush().map_err(alert_err)
    }

    fn render(&self, stats: &PipelineStats) -> String {
        let gauges = metrics::DetectGauges {
            clients: self.engine.clients_tracked(),
            endpoints: self.engine.endpoints_learned(),
            episodes: self.engine.active_episodes(),
        };
        let mut text = metrics::render(
            stats,
            &self.http,
            &self.per_endpoint,
            &self.engine.stats,
            &gauges,
        );
        if let Some(p) = &self.publisher {
            p.counters.render(&mut text);
        }
        text
    }

    /// `--publish`: the exchange is logged and counted here, published for the
    /// detectors, and not judged.
    #[cold]
    fn publish(&mut self, e: &Exchange, head: Option<&str>) -> Result<(), SensorError> {
        let closed = e.tls.as_deref().is_some_and(|t| t.closed.is_some());
        if let Some(t) = e.tls.as_deref() {
            if !closed {
                self.http.tls.record(t);
                self.tls_written += 1;
            }
        } else {
            self.written += 1;
            self.http.exchange(e);
        }
        if !closed && let Some(l) = self.log.as_mut() {
            l.write(e, None, head).map_err(write_err)?;
        }
        if let Some(p) = self.publisher.as_mut() {
            p.exchange(e);
        }
        Ok(())
    }

    /// One exchange; `head` is its exchange-log head when a worker made it.
    fn exchange(&mut self, e: &mut Exchange, head: Option<&str>) -> Result<(), SensorError> {
        // Rotation takes effect before the first exchange that follows the signal,
        // not at the next quiet moment.
        if crate::signals::take_reopen() {
            self.reopen()?;
        }
        if self.publisher.is_some() {
            return self.publish(e, head);
        }
        if let Some(t) = e.tls.as_deref() {
            // A TLS connection's record: logged and counted, judged by what
            // connections alone show. The internal record of its end is judged only.
            if t.closed.is_none() {
                self.http.tls.record(t);
                self.tls_written += 1;
                if let Some(l) = self.log.as_mut() {
                    l.write(e, None, None).map_err(write_err)?;
                }
            }
            self.engine.encrypted(e, &mut self.fired);
            return Ok(());
        }
        self.written += 1;
        self.http.exchange(e);
        // Each stage here is heavy work per exchange: a mapped capture read on this
        // thread streams in meanwhile (`capture::readahead`).
        crate::capture::readahead::during_work();
        let routed = self.engine.route(e, &mut self.fired);
        crate::capture::readahead::during_work();
        if let Some(r) = &routed {
            self.per_endpoint.request(
                r.endpoint(),
                e.status,
                r.client_hash(),
                e.sensitive.counts(),
            );
        }
        if let Some(l) = self.log.as_mut() {
            l.write(e, routed.as_ref().map(|r| (r.endpoint(), r.client())), head)
                .map_err(write_err)?;
        }
        let ts = e.ts;
        crate::capture::readahead::during_work();
        // Posture findings are worked out before the exchange goes to its shard and
        // raised after its client's alerts.
        let posture = if crate::posture::may_find(e, routed.as_ref().is_some_and(|r| r.has_query()))
        {
            self.engine
                .posture(e, routed.as_ref().map(|r| (r.endpoint(), r.query(e))))
        } else {
            Vec::new()
        };
        if let Some(r) = routed {
            // Shard threads need the exchange itself; inline judging only reads it
            // (no move of the whole record).
            let ex = if self.engine.is_sharded() {
                std::borrow::Cow::Owned(e.take())
            } else {
                std::borrow::Cow::Borrowed(&*e)
            };
            self.engine.judge(r, ex, &mut self.fired);
        }
        if !posture.is_empty() {
            self.engine.raise(posture, &mut self.fired);
        }
        if let Some(path) = &self.state_file {
            let due = *self
                .next_snapshot
                .get_or_insert(ts.saturating_add(self.snapshot_interval));
            if ts >= due {
                self.next_snapshot = Some(ts.saturating_add(self.snapshot_interval));
                let started = std::time::Instant::now();
                let mut snap = self.engine.snapshot_unsorted(&mut self.fired);
                tracing::debug!(
                    clients = self.engine.clients_tracked(),
                    took_ms = started.elapsed().as_secs_f64() * 1e3,
                    "State snapshot taken; written in the background"
                );
                let path = path.clone();
                self.saver.submit(move || {
                    snap.sort();
                    if let Err(err) = state::save(&path, &snap) {
                        tracing::warn!(file = %path.display(), %err, "Cannot save the state file");
                    }
                });
            }
        }
        if self.endpoints_file.is_some() {
            let due = *self
                .next_endpoints
                .get_or_insert(ts.saturating_add(self.snapshot_interval));
            if ts >= due {
                self.next_endpoints = Some(ts.saturating_add(self.snapshot_interval));
                if let Some(path) = self.endpoints_file.clone() {
                    let docs = self.engine.inventory_documents(path.is_dir());
                    self.saver.submit(move || {
                        if let Err(err) = docs.write(&path) {
                            tracing::warn!(file = %path.display(), %err, "Cannot write the endpoint inventory");
                        }
                    });
                }
            }
        }
        self.write_alerts()
    }

    /// Writes the learned inventory (`--endpoints`) as OpenAPI 3.1: one document, or
    /// one per server when the path is a directory.
    fn write_endpoints(&self) -> Result<(), String> {
        let Some(path) = &self.endpoints_file else {
            return Ok(());
        };
        self.engine.write_inventory(path)
    }

    /// Writes and counts the alerts the engine handed over.
    fn write_alerts(&mut self) -> Result<(), SensorError> {
        if self.fired.is_empty() {
            return Ok(());
        }
        for a in self.fired.drain(..) {
            self.alerts_written += 1;
            self.engine.count(&a);
            self.alerts.write(&a).map_err(alert_err)?;
        }
        Ok(())
    }

    /// End of the exchanges: every alert still on its way is written.
    fn finish(&mut self) -> Result<(), SensorError> {
        if let Some(p) = self.publisher.as_mut() {
            // Everything buffered is published and acknowledged (or counted dropped).
            p.finish();
        }
        self.engine.finish(&mut self.fired);
        self.write_alerts()
    }
}

type BackfillOut = Option<(Box<dyn Write + Send>, Backfill)>;

/// Where metrics go while running: the served exposition (refreshed about once a
/// second) and the OpenMetrics backfill (one snapshot per interval of packet time).
struct Publish {
    exposition: Option<Exposition>,
    backfill: BackfillOut,
    last_render: Instant,
}

impl Publish {
    fn backfill_due(&self, ts: u64) -> bool {
        self.backfill.as_ref().is_some_and(|(_, b)| b.due(ts))
    }

    /// A backfill snapshot when due at `ts`; the served metrics once a second.
    fn refresh(&mut self, ts: u64, render: impl Fn() -> String) {
        if let Some((_, b)) = self.backfill.as_mut()
            && b.due(ts)
        {
            b.push(ts, render());
        }
        self.serve(render);
    }

    /// The served metrics, at most once a second.
    fn serve(&mut self, render: impl Fn() -> String) {
        if let Some(exp) = &self.exposition
            && self.last_render.elapsed() >= Duration::from_secs(1)
        {
            self.last_render = Instant::now();
            exp.set(render());
        }
    }
}

/// Everything one run moves packets through on the calling thread: the pipeline,
/// the sinks and the periodic metric refresh.
struct Run {
    pipeline: Pipeline,
    buf: Vec<Exchange>,
    sinks: Sinks,
    publish: Publish,
    since_check: u32,
    progress: Option<std::sync::Arc<crate::progress::Counters>>,
    /// Where the file being read is (progress), and the input bytes before it.
    input: Option<(crate::capture::file::Position, u64)>,
}

/// The sinks and metrics as the merge of a sharded replay feeds them.
struct Merged<'a> {
    sinks: &'a mut Sinks,
    publish: &'a mut Publish,
    progress: Option<&'a crate::progress::Counters>,
    /// The counters the workers last reported.
    stats: PipelineStats,
}

impl workers::Sink for Merged<'_> {
    type Error = SensorError;

    fn exchange(&mut self, e: &mut Exchange, head: Option<&str>) -> Result<(), SensorError> {
        let ts = e.ts;
        self.sinks.exchange(e, head)?;
        // Backfill snapshots follow the merged exchanges' packet time.
        if self.publish.backfill_due(ts) {
            let (sinks, stats) = (&*self.sinks, &self.stats);
            self.publish.refresh(ts, || sinks.render(stats));
        }
        Ok(())
    }

    fn progress(&mut self, stats: &PipelineStats) {
        if let Some(c) = self.progress {
            let s = &*self.sinks;
            c.set(
                stats.capture.packets,
                stats.capture.bytes,
                s.written,
                s.alerts_written,
            );
        }
        self.stats.clone_from(stats);
        let sinks = &*self.sinks;
        self.publish.serve(|| sinks.render(stats));
    }

    fn idle(&mut self, now: u64, stats: &PipelineStats) -> Result<(), SensorError> {
        if crate::signals::take_reopen() {
            self.sinks.reopen()?;
        }
        // A publishing sensor tells the detectors how far its quiet wire has gone.
        if let Some(p) = self.sinks.publisher.as_mut() {
            p.clock(now);
        }
        // Quiet time still passes: episodes end, gauges follow.
        self.sinks.engine.advance(now, &mut self.sinks.fired);
        self.sinks.write_alerts()?;
        let sinks = &*self.sinks;
        self.publish.refresh(now, || sinks.render(stats));
        self.sinks.flush_outputs()
    }
}

impl Run {
    /// One packet through the pipeline; its finished exchanges to the sinks.
    fn packet(&mut self, p: &Packet<'_>) -> Result<(), SensorError> {
        self.since_check += 1;
        if self.since_check >= 1024 {
            self.since_check = 0;
            self.show_progress(p);
            self.refresh(p.ts);
        }
        self.pipeline.packet(p, &mut self.buf);
        // Most packets finish no exchange.
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sink_buffered()
    }

    /// The buffered exchanges to the sinks, lent in place (no move of each record).
    fn sink_buffered(&mut self) -> Result<(), SensorError> {
        let sinks = &mut self.sinks;
        let r = self
            .buf
            .iter_mut()
            .try_for_each(|e| sinks.exchange(e, None));
        self.buf.clear();
        r
    }

    fn refresh(&mut self, ts: u64) {
        let (sinks, pipeline) = (&self.sinks, &self.pipeline);
        self.publish.refresh(ts, || sinks.render(&pipeline.stats()));
    }

    /// Copies the counters, and how far into the input the reader is at packet
    /// `at`, for the progress reporter.
    fn show_progress(&self, at: &Packet<'_>) {
        if let Some(c) = &self.progress {
            let (s, p) = (&self.sinks, &self.pipeline.front.stats);
            c.set(p.packets, p.bytes, s.written, s.alerts_written);
            if let Some((pos, done)) = &self.input {
                c.input.store(done + pos.after(at), Relaxed);
            }
        }
    }

    /// End of input: open connections are finished and their exchanges judged.
    fn finish(&mut self) -> Result<PipelineStats, SensorError> {
        self.pipeline.finish(&mut self.buf);
        self.sink_buffered()?;
        Ok(self.pipeline.stats())
    }
}

/// Which live capture implementation opens the interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// AF_PACKET with a TPACKET_V3 ring (Linux, no system library).
    #[default]
    AfPacket,
    /// libpcap (feature `libpcap`).
    Libpcap,
}

type Sources = Vec<Box<dyn crate::capture::LiveCapture>>;

/// Opens one capture handle per worker on `iface` (one fanout group when several).
fn open_live(iface: &str, opts: &SensorOptions) -> Result<Sources, SensorError> {
    let n = opts.workers.max(1);
    let group = (n > 1).then(crate::capture::fanout_group);
    let mut filter = opts.filter.clone();
    let ring = crate::capture::RingOptions {
        ring_mib: opts.ring.per_worker(n),
        ..opts.ring.clone()
    };
    let usage = |e: crate::capture::LiveError| {
        if e.is_usage() {
            SensorError::Usage(e.to_string())
        } else {
            SensorError::Runtime(e.to_string())
        }
    };
    let mut out: Sources = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(match opts.backend {
            #[cfg(target_os = "linux")]
            Backend::AfPacket => Box::new(
                crate::capture::live::LiveSource::open(iface, &ring, group, filter.as_mut())
                    .map_err(usage)?,
            ),
            #[cfg(not(target_os = "linux"))]
            Backend::AfPacket => {
                return Err(SensorError::Usage(format!(
                    "{iface}: AF_PACKET capture needs Linux; use --capture-backend libpcap"
                )));
            }
            #[cfg(feature = "libpcap")]
            Backend::Libpcap => Box::new(
                crate::capture::pcap_live::PcapSource::open(iface, &ring, group, filter.as_ref())
                    .map_err(usage)?,
            ),
            #[cfg(not(feature = "libpcap"))]
            Backend::Libpcap => {
                return Err(SensorError::Usage(
                    "--capture-backend libpcap: this build has no libpcap (cargo build --features libpcap)".into(),
                ));
            }
        });
    }
    Ok(out)
}

use crate::workers::live;

/// Runs the replay. Exchanges are written as soon as they complete.
pub fn run(opts: &SensorOptions) -> Result<SensorReport, SensorError> {
    for f in &opts.files {
        if f != "-"
            && let Err(e) = std::fs::metadata(f)
        {
            return Err(SensorError::Usage(format!("{f}: cannot open: {e}")));
        }
    }
    // Under `--user` the outputs are created as root and handed to the user, who
    // reopens them after rotation (SIGHUP).
    let owner = match (&opts.user, &opts.interface) {
        (Some(user), Some(_)) => Some(crate::privileges::lookup(user).map_err(SensorError::Usage)?),
        _ => None,
    };
    // What EVE records name as their input: the interface, or the file when one is
    // replayed (with several, records do not say which).
    let input = match (&opts.interface, opts.files.as_slice()) {
        (Some(i), _) => Some(Input::Interface(i.clone())),
        (None, [f]) if f != "-" => Some(Input::File(f.clone())),
        _ => None,
    };
    let log = match &opts.exchanges {
        Some(p) => Some(ExchangeLog::new(
            open_output(p, "exchanges", owner)?,
            opts.exchanges_format,
            input.clone(),
        )),
        None => None,
    };
    let alerts = AlertLog::new(
        open_output(opts.alerts.as_deref().unwrap_or("-"), "alerts", owner)?,
        input,
    );
    let mut warnings = Vec::new();
    // Stage 2 of the two-stage sharding: per-client detectors on client-keyed threads.
    let shards = match opts.detect.shards {
        0 => auto_shards(opts.workers),
        n => n,
    };
    // A publishing sensor judges nothing: no shard threads.
    let mut engine = match opts.publish {
        Some(_) => Engine::new(opts.detect.clone()),
        None => Engine::sharded(opts.detect.clone(), shards),
    };
    // A publishing sensor has no detection state or inventory to save: the
    // detectors do (an empty snapshot must not overwrite theirs).
    let state_file = opts
        .detect
        .state_file
        .clone()
        .filter(|_| opts.publish.is_none());
    if let Some(path) = &opts.endpoints {
        crate::durable::remove_leftovers(path);
    }
    if let Some(path) = &state_file {
        crate::durable::remove_leftovers(path);
        match state::load(path, opts.detect.state_max_bytes) {
            state::Loaded::Missing => {}
            state::Loaded::Snapshot(s) => engine.restore(s),
            state::Loaded::Discarded { why, moved_to } => {
                let msg = format!(
                    "{}: {why}; starting with fresh baselines{}",
                    path.display(),
                    moved_to
                        .map(|m| format!(" (moved to {m})"))
                        .unwrap_or_default()
                );
                tracing::warn!("{msg}");
                warnings.push(msg);
            }
        }
    }
    let exposition = if opts.web.enabled() {
        let exp = Exposition::default();
        let addrs = metrics::serve(&opts.web, exp.clone())
            .map_err(|e| SensorError::Usage(e.to_string()))?;
        for a in addrs {
            tracing::info!(address = %a, "serving metrics");
        }
        Some(exp)
    } else {
        None
    };
    let backfill = match &opts.openmetrics_out {
        Some(p) => Some((
            open_output(p, "OpenMetrics", owner)?,
            Backfill::new(BACKFILL_EVERY),
        )),
        None => None,
    };
    let sinks = Sinks {
        exchanges_path: opts.exchanges.clone(),
        alerts_path: opts.alerts.clone().unwrap_or_else(|| "-".into()),
        http: HttpMetrics::default(),
        per_endpoint: EndpointMetrics::default(),
        log,
        alerts,
        engine,
        fired: Vec::new(),
        written: 0,
        tls_written: 0,
        alerts_written: 0,
        state_file,
        snapshot_interval: opts.detect.snapshot_interval,
        next_snapshot: None,
        saver: crate::durable::Saver::new(),
        endpoints_file: opts.endpoints.clone().filter(|_| opts.publish.is_none()),
        next_endpoints: None,
        publisher: match &opts.publish {
            Some(p) => {
                Some(crate::nats::Publisher::start(p, &opts.detect).map_err(SensorError::Runtime)?)
            }
            None => None,
        },
    };
    let started = Instant::now();
    // A scrape before the first packet sees every metric at zero, not an empty page.
    if let Some(exp) = &exposition {
        exp.set(sinks.render(&PipelineStats::default()));
    }
    let publish = Publish {
        exposition,
        backfill,
        last_render: started,
    };
    let mut pipeline = Pipeline::new(opts.flow.clone());
    pipeline.front.filter = opts.filter.clone();
    let progress = (opts.progress && opts.interface.is_none()).then(|| {
        crate::progress::Progress::start(
            crate::progress::Mode::for_stderr(),
            crate::progress::input_size(&opts.files),
        )
    });
    let mut run = Run {
        pipeline,
        buf: Vec::new(),
        sinks,
        publish,
        since_check: 0,
        progress: progress.as_ref().map(|p| p.counters.clone()),
        input: None,
    };
    let mut errors = Vec::new();
    // SIGINT/SIGTERM stop a replay as they stop a capture: what was read is
    // finished, alerts, summary and state written, exit 0. Before live sockets open:
    // a Ctrl-C while they open is a clean stop, not a kill.
    crate::signals::install();
    let stats = if let Some(iface) = &opts.interface {
        let sources = open_live(iface, opts)?;
        if let Some(user) = &opts.user {
            crate::privileges::drop_to(user).map_err(SensorError::Usage)?;
            let state = opts.detect.state_file.as_deref();
            let files: Vec<&std::path::Path> = [&opts.exchanges, &opts.alerts]
                .into_iter()
                .flatten()
                .filter(|p| p.as_str() != "-")
                .map(std::path::Path::new)
                .chain(state)
                .chain(opts.endpoints.as_deref())
                .collect();
            crate::privileges::check_directories(user, &files);
        }
        tracing::info!(interface = %iface, workers = sources.len(), "Capturing");
        let mut merged = Merged {
            sinks: &mut run.sinks,
            publish: &mut run.publish,
            progress: None,
            stats: PipelineStats::default(),
        };
        let heads = merged.sinks.wants_heads();
        let (stats, errs) = live(sources, &opts.flow, heads, &mut merged)?;
        errors.extend(errs.into_iter().map(|e| format!("{iface}: {e}")));
        stats
    } else if opts.workers > 1 {
        let shard = workers::ShardOptions {
            files: &opts.files,
            workers: opts.workers,
            flow: &opts.flow,
            speed: opts.replay_speed,
            filter: opts.filter.clone(),
            log_heads: run.sinks.wants_heads(),
            progress: run.progress.clone(),
        };
        let mut merged = Merged {
            sinks: &mut run.sinks,
            publish: &mut run.publish,
            progress: run.progress.as_deref(),
            stats: PipelineStats::default(),
        };
        match workers::replay(&shard, &mut merged)? {
            Ok((stats, end)) => {
                warnings.extend(end.warnings);
                errors.extend(end.errors);
                stats
            }
            Err(workers::ReadFailure::Usage(msg)) => return Err(SensorError::Usage(msg)),
            Err(workers::ReadFailure::Runtime(msg)) => return Err(SensorError::Runtime(msg)),
        }
    } else {
        let mut log = InputLog::default();
        let mut pacer = opts.replay_speed.map(Pacer::new);
        // Input bytes of the files before this one (progress).
        let mut input_done = 0;
        'files: for path in &opts.files {
            let Some(mut src) = log
                .open(path)
                .map_err(|e| SensorError::Usage(e.to_string()))?
            else {
                continue;
            };
            if run.progress.is_some() {
                run.input = Some((src.position_source(), input_done));
            }
            while let Some(p) = log.next(path, &mut src) {
                if let Some(wait) = pacer.as_mut().and_then(|pc| pc.wait(p.ts)) {
                    run.show_progress(&p);
                    crate::time::pause(wait);
                }
                if crate::signals::stopping() {
                    break 'files;
                }
                run.packet(&p)?;
            }
            input_done += src.position();
        }
        warnings.extend(log.warnings);
        errors.extend(log.errors);
        run.finish()?
    };
    let Run {
        mut sinks, publish, ..
    } = run;
    sinks.finish()?;
    sinks.flush_outputs()?;
    // A live capture always ends on a signal: only a replay can be cut short.
    let interrupted = opts
        .interface
        .is_none()
        .then(crate::signals::stopped_by)
        .flatten();
    if let Some((mut out, mut b)) = publish.backfill {
        if let Some(last) = stats.capture.last_ts {
            b.push(last, sinks.render(&stats));
        }
        out.write_all(b.to_openmetrics().as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| SensorError::Runtime(format!("cannot write OpenMetrics: {e}")))?;
    }
    let elapsed = started.elapsed();
    if let Some(p) = progress {
        p.finish();
    }
    if let Some(exp) = &publish.exposition {
        exp.set(sinks.render(&stats));
        if let Some(linger) = opts.web_linger {
            crate::time::pause(linger);
        }
    }
    // Periodic snapshots still being written finish before the final ones.
    sinks.saver.finish();
    if let Err(e) = sinks.write_endpoints() {
        errors.push(e);
    }
    if let Some(path) = &sinks.state_file {
        let snap = sinks.engine.snapshot(&mut sinks.fired);
        // Every alert was handed over by finish(): nothing new can come here.
        debug_assert!(sinks.fired.is_empty());
        if let Err(err) = state::save(path, &snap) {
            errors.push(format!(
                "{}: cannot save the state file: {err}",
                path.display()
            ));
        }
    }
    let published = sinks.publisher.as_ref().map(|p| p.counters.clone());
    Ok(SensorReport {
        published,
        stats,
        engine: sinks.engine,
        exchanges: sinks.written,
        tls_connections: sinks.tls_written,
        elapsed,
        interrupted,
        warnings,
        errors,
    })
}
