//! `apiwatch detect`: stage 2 for one shard of the clients, read from the stream.

use std::collections::{HashMap, VecDeque};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::merge::{Merger, Record};
use super::{Decoded, NatsOptions, connect, decode, shard_of, stream};
use crate::detect::burst::Contribution;
use crate::detect::{Alert, DetectConfig, Engine};
use crate::export::alert_log::AlertLog;
use crate::time::Nanos;

/// The first byte of an epoch's contributions.
const EPOCH_VERSION: u8 = 1;

/// `apiwatch detect`: what to consume and where alerts go.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    pub nats: NatsOptions,
    /// Shard K of N (K from 1).
    pub shard: (u32, u32),
    /// `--alerts PATH` (`-` or absent: stdout).
    pub alerts: Option<String>,
    /// `--until-idle`: stop once the stream is drained and nothing came for this long.
    pub until_idle: Option<Duration>,
    /// `--endpoints`: the inventory written at the end.
    pub endpoints: Option<PathBuf>,
    /// `--max-lateness`: how far (packet time) one sensor's records wait for the
    /// others' before they are judged.
    pub max_lateness: Nanos,
}

/// What a detector did.
#[derive(Debug, Default)]
pub struct DetectReport {
    pub exchanges: u64,
    /// Exchanges whose client belongs to this shard.
    pub judged: u64,
    pub alerts: u64,
    /// Records this build cannot read.
    pub unreadable: u64,
    /// Records that came more than `--max-lateness` after others they should have
    /// preceded (judged as they came).
    pub late: u64,
    /// Alerts not written again after a restart (written before it).
    pub rewritten: u64,
    /// Records judged before one the stream held ahead of them (sensors merged).
    pub reordered: u64,
    /// Clock records read (live sensors' quiet moments): each moved time on.
    pub clocks: u64,
    pub interrupted: Option<&'static str>,
}

/// One epoch's contributions from one detector.
#[derive(Serialize, Deserialize)]
struct EpochMsg {
    epoch: Nanos,
    shard: u32,
    of: u32,
    contributions: Vec<(u64, Contribution)>,
}

/// The other detectors' contributions, read from `<prefix>.epochs.>` and kept until
/// their epoch is applied.
struct Epochs {
    rt: Arc<tokio::runtime::Runtime>,
    js: jetstream::Context,
    messages: jetstream::consumer::pull::Ordered,
    subject: String,
    shard: (u32, u32),
    got: HashMap<(Nanos, u32), Vec<(u64, Contribution)>>,
}

impl Epochs {
    fn exchange(
        &mut self,
        epoch: Nanos,
        mine: Vec<(u64, Contribution)>,
    ) -> Vec<(u64, Contribution)> {
        let (k, n) = self.shard;
        let msg = EpochMsg {
            epoch,
            shard: k,
            of: n,
            contributions: mine,
        };
        let mut bytes = vec![EPOCH_VERSION];
        bytes = postcard::to_extend(&msg, bytes).unwrap_or_default();
        let mut all = msg.contributions;
        let (rt, js, subject) = (self.rt.clone(), self.js.clone(), self.subject.clone());
        let stored = rt.block_on(async move {
            let ack = js
                .publish(subject, bytes.into())
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        });
        if let Err(err) = stored {
            tracing::error!(%err, epoch, "Cannot publish this detector's epoch contributions");
        }
        let mut waiting_since = Instant::now();
        for other in (1..=n).filter(|s| *s != k) {
            loop {
                if let Some(c) = self.got.remove(&(epoch, other)) {
                    all.extend(c);
                    break;
                }
                if crate::signals::stopping() {
                    return all;
                }
                let messages = &mut self.messages;
                let next = self.rt.block_on(async {
                    tokio::time::timeout(Duration::from_millis(200), messages.next()).await
                });
                match next {
                    Ok(Some(Ok(m))) => {
                        let Some((&EPOCH_VERSION, rest)) = m.payload.split_first() else {
                            continue;
                        };
                        if let Ok(e) = postcard::from_bytes::<EpochMsg>(rest)
                            && e.of == n
                            && e.shard != k
                        {
                            // A replay of the same stream sends the same again: the first wins.
                            self.got
                                .entry((e.epoch, e.shard))
                                .or_insert(e.contributions);
                        }
                    }
                    Ok(Some(Err(err))) => tracing::warn!(%err, "Reading the epochs"),
                    Ok(None) => return all,
                    Err(_) => {
                        if waiting_since.elapsed() > Duration::from_secs(10) {
                            waiting_since = Instant::now();
                            tracing::warn!(
                                epoch,
                                shard = other,
                                "Waiting for detector {other}/{n}'s contributions (is it running?)"
                            );
                        }
                    }
                }
            }
        }
        // Epochs are opened in the same order everywhere: older ones are done.
        self.got.retain(|(e, _), _| *e > epoch);
        all
    }
}

/// A detector's progress, kept in its state file (`[detect] state_file`): how many
/// records it released and judged, how long its alert log was once their alerts
/// were written, and the stream sequence it acknowledged. A restarted detector
/// rebuilds what it learned by reading the stream again from its first message
/// (the same records in the same order give the same state), writes no alert for
/// the records it had judged, and cuts its alert log back to that length, so that
/// alerts written after the last save are written once, again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Progress {
    stream: String,
    prefix: String,
    shard: String,
    released: u64,
    alerts_bytes: u64,
    acked: u64,
}

/// The state file's layout: named, so a single process's snapshot is not taken
/// for a detector's progress (or the other way round).
#[derive(Serialize, Deserialize)]
struct ProgressFile {
    apiwatch_detect: Progress,
}

impl Progress {
    /// What the file says, when it exists and belongs to this stream and shard.
    fn load(path: &std::path::Path, want: &Progress) -> Result<Option<Progress>, DetectError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DetectError::Runtime(format!("{}: {e}", path.display()))),
        };
        let p = serde_json::from_slice::<ProgressFile>(&text)
            .map_err(|_| {
                DetectError::Usage(format!(
                    "{}: not an 'apiwatch detect' state file (a single process's snapshot? give each detector its own state_file)",
                    path.display()
                ))
            })?
            .apiwatch_detect;
        if (&p.stream, &p.prefix, &p.shard) != (&want.stream, &want.prefix, &want.shard) {
            return Err(DetectError::Usage(format!(
                "{}: the state of stream {} ({}) shard {}, not of stream {} ({}) shard {}",
                path.display(),
                p.stream,
                p.prefix,
                p.shard,
                want.stream,
                want.prefix,
                want.shard
            )));
        }
        Ok(Some(p))
    }

    fn save(&self, path: &std::path::Path) -> Result<(), DetectError> {
        let file = ProgressFile {
            apiwatch_detect: self.clone(),
        };
        crate::durable::write_atomic(path, |w| {
            serde_json::to_writer(&mut *w, &file).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })
        .map_err(|e| DetectError::Runtime(format!("{}: cannot save: {e}", path.display())))
    }
}

/// Why a detector stopped with an error: bad options (exit 2) or a failure while
/// running (exit 1).
#[derive(Debug)]
pub enum DetectError {
    Usage(String),
    Runtime(String),
}

impl std::fmt::Display for DetectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectError::Usage(m) | DetectError::Runtime(m) => f.write_str(m),
        }
    }
}

impl From<String> for DetectError {
    fn from(m: String) -> Self {
        DetectError::Runtime(m)
    }
}

/// Saves the progress at least this often (wall time) while records flow...
const SAVE_EVERY: Duration = Duration::from_millis(500);
/// ...and at least every this many records.
const SAVE_RECORDS: u64 = 20_000;

/// Released records judged for shard K of N and their alerts written.
struct Judge {
    engine: Engine,
    alerts: AlertLog,
    /// The alert log's file when it is one (its length is the progress; fsync'd
    /// before the progress is saved).
    file: Option<std::fs::File>,
    fired: Vec<Alert>,
    shard: (u32, u32),
    /// Records released so far, and up to which of them alerts were written
    /// before a restart.
    released: u64,
    written_before: u64,
    report: DetectReport,
}

impl Judge {
    /// One released record: the global half for every exchange, the per-client half
    /// for this shard's clients, TLS records on shard 1.
    fn record(&mut self, r: Record) -> Result<(), DetectError> {
        let (k, n) = self.shard;
        let ex = r.ex;
        self.released += 1;
        self.report.exchanges += 1;
        if ex.tls.is_some() {
            // A TLS connection's record: posture's TLS findings are global and the
            // encrypted-traffic detector keeps its own per-client state, so shard 1
            // judges them all, as one process does.
            if k == 1 {
                self.engine.encrypted(&ex, &mut self.fired);
            }
            return self.write();
        }
        let mine = shard_of(r.meta.partition, n) == k;
        let Some(mut routed) = self.engine.route(&ex, &mut self.fired) else {
            return self.write();
        };
        // Posture findings are global: shard 1 works them out and writes them.
        let posture = if k == 1 && crate::posture::may_find(&ex, routed.has_query()) {
            self.engine
                .posture(&ex, Some((routed.endpoint(), routed.query(&ex))))
        } else {
            Vec::new()
        };
        if mine {
            self.report.judged += 1;
            let global = routed.take_global();
            self.engine
                .judge(routed, std::borrow::Cow::Borrowed(&*ex), &mut self.fired);
            if k == 1 {
                self.fired.extend(global.into_iter().flatten());
            }
        } else if k == 1 {
            self.fired
                .extend(routed.take_global().into_iter().flatten());
        }
        if !posture.is_empty() {
            self.engine.raise(posture, &mut self.fired);
        }
        self.write()
    }

    /// Writes what fired, unless it was written before a restart.
    fn write(&mut self) -> Result<(), DetectError> {
        let again = self.released <= self.written_before;
        for a in self.fired.drain(..) {
            if again {
                self.report.rewritten += 1;
                continue;
            }
            self.engine.count(&a);
            self.report.alerts += 1;
            self.alerts
                .write(&a)
                .map_err(|e| format!("cannot write alerts: {e}"))?;
        }
        Ok(())
    }

    /// Records whose alerts the alert log holds: a detector stopped again while it
    /// still reads again what an earlier run judged covers what that run did.
    fn covered(&self) -> u64 {
        self.released.max(self.written_before)
    }

    /// The alert log on disk (fsync'd): its length in bytes.
    fn sync(&mut self) -> Result<u64, DetectError> {
        self.alerts
            .flush()
            .map_err(|e| format!("cannot write alerts: {e}"))?;
        let Some(f) = &self.file else { return Ok(0) };
        f.sync_data()
            .and_then(|_| f.metadata())
            .map(|m| m.len())
            .map_err(|e| DetectError::Runtime(format!("cannot write alerts: {e}")))
    }
}

/// Opens the alert log: stdout, or a file cut back to `keep` bytes (what a
/// restarted detector had written when it last saved its progress) and appended to.
fn open_alerts(
    path: Option<&str>,
    keep: u64,
) -> Result<(AlertLog, Option<std::fs::File>), DetectError> {
    let path = path.unwrap_or("-");
    if path == "-" {
        return Ok((AlertLog::new(Box::new(std::io::stdout()), None), None));
    }
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| DetectError::Usage(format!("{path}: cannot open the alert log: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| DetectError::Runtime(format!("{path}: {e}")))?;
    if !meta.is_file() {
        // /dev/null, a FIFO...: nothing to cut back or to sync.
        return Ok((AlertLog::new(Box::new(f), None), None));
    }
    let len = meta.len();
    if len < keep {
        tracing::warn!(
            path,
            len,
            keep,
            "The alert log is shorter than the state file says (rotated or cut?): appending after it"
        );
    } else {
        f.set_len(keep)
            .map_err(|e| DetectError::Runtime(format!("{path}: cannot cut the alert log: {e}")))?;
    }
    let sync = f
        .try_clone()
        .map_err(|e| DetectError::Runtime(format!("{path}: {e}")))?;
    Ok((AlertLog::new(Box::new(f), None), Some(sync)))
}

/// The durable consumer of shard K of N: its name (one per stream, subject prefix
/// and shard) and configuration, reading every exchange and clock record from the
/// stream's first message, acknowledged (all up to one) after their alerts are
/// written.
fn durable(o: &DetectOptions) -> jetstream::consumer::pull::Config {
    let (k, n) = o.shard;
    let clean: String = o
        .nats
        .prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    jetstream::consumer::pull::Config {
        durable_name: Some(format!("apiwatch_{clean}_{k}_of_{n}")),
        description: Some(format!("apiwatch detect --shard {k}/{n}")),
        filter_subject: format!("{}.exchanges.>", o.nats.prefix),
        deliver_policy: jetstream::consumer::DeliverPolicy::All,
        ack_policy: jetstream::consumer::AckPolicy::All,
        // Acknowledged at each save (at most 20,000 records apart): never
        // redelivered meanwhile.
        ack_wait: Duration::from_secs(600),
        max_ack_pending: 1 << 20,
        ..Default::default()
    }
}

/// Runs stage 2 for shard K of N until the input is drained (`--until-idle`) or a
/// signal stops it.
pub fn detect(o: &DetectOptions, cfg: DetectConfig) -> Result<DetectReport, DetectError> {
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nats")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the NATS runtime: {e}"))?,
    );
    // The client's streams spawn and deregister on tokio when dropped: everything
    // below lives (and is dropped) inside the runtime's context.
    let _context = rt.enter();
    let (k, n) = o.shard;
    let state_file = cfg.state_file.clone();
    let mut progress = Progress {
        stream: o.nats.stream.clone(),
        prefix: o.nats.prefix.clone(),
        shard: format!("{k}/{n}"),
        ..Default::default()
    };
    if state_file.is_some() && o.alerts.as_deref().is_none_or(|p| p == "-") {
        return Err(DetectError::Usage(
            "apiwatch detect with a state file needs --alerts FILE (a restart cuts the alert log back to what its state file records)".into(),
        ));
    }
    let restored = match &state_file {
        Some(path) => Progress::load(path, &progress)?,
        None => None,
    };
    let (js, mut exchanges, epochs, mut pending) = rt.block_on(async {
        let client = connect(&o.nats).await?;
        let js = jetstream::new(client);
        let s = stream(&js, &o.nats).await?;
        let err = |e: &dyn std::fmt::Display| format!("{}: cannot consume: {e}", o.nats.stream);
        // Read from the first message again: what was learned is rebuilt from it.
        let config = durable(o);
        let name = config.durable_name.clone().unwrap_or_default();
        let _ = s.delete_consumer(&name).await;
        let mut consumer = s.create_consumer(config).await.map_err(|e| err(&e))?;
        let pending = consumer.info().await.map_or(u64::MAX, |i| i.num_pending);
        let ex = consumer.messages().await.map_err(|e| err(&e))?;
        let ep = s
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("{}.epochs.>", o.nats.prefix),
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| err(&e))?
            .messages()
            .await
            .map_err(|e| err(&e))?;
        Ok::<_, String>((js, ex, ep, pending))
    })?;
    let (alerts, file) = open_alerts(
        o.alerts.as_deref(),
        restored.as_ref().map_or(0, |p| p.alerts_bytes),
    )?;
    let mut engine = Engine::new(cfg);
    if n > 1 {
        let mut epochs = Epochs {
            rt: rt.clone(),
            js: js.clone(),
            messages: epochs,
            subject: format!("{}.epochs.{k}", o.nats.prefix),
            shard: o.shard,
            got: HashMap::new(),
        };
        engine.share_epochs(Box::new(move |epoch, mine| epochs.exchange(epoch, mine)));
    }
    let mut judge = Judge {
        engine,
        alerts,
        file,
        fired: Vec::new(),
        shard: o.shard,
        released: 0,
        written_before: restored.as_ref().map_or(0, |p| p.released),
        report: DetectReport::default(),
    };
    if let Some(p) = &restored {
        tracing::info!(
            released = p.released,
            alerts_bytes = p.alerts_bytes,
            "Restarting: the stream is read again from its start, alerts written before are not written again"
        );
    }
    crate::signals::install();
    let mut merger = Merger::new(o.max_lateness);
    // Read but not yet acknowledged: (stream sequence, acknowledger).
    let mut unacked: VecDeque<(u64, async_nats::jetstream::message::Acker)> = VecDeque::new();
    let mut last_read = 0u64;
    let mut last = Instant::now();
    let mut saved_at = Instant::now();
    let mut saved_released = 0u64;
    let mut save = |judge: &mut Judge,
                    merger: &Merger,
                    unacked: &mut VecDeque<(u64, async_nats::jetstream::message::Acker)>,
                    last_read: u64|
     -> Result<(), DetectError> {
        let bytes = judge.sync()?;
        // Everything before the oldest record still waiting has been judged.
        let floor = merger
            .oldest_waiting()
            .map_or(last_read, |s| s.saturating_sub(1));
        let mut ack = None;
        while unacked.front().is_some_and(|(s, _)| *s <= floor) {
            ack = unacked.pop_front();
        }
        if let Some(path) = &state_file {
            progress.released = judge.covered();
            progress.alerts_bytes = bytes;
            progress.acked = ack.as_ref().map_or(progress.acked, |(s, _)| *s);
            progress.save(path)?;
        }
        if let Some((seq, acker)) = ack {
            let acked = rt.block_on(async { acker.ack().await });
            if let Err(err) = acked {
                tracing::warn!(%err, seq, "Cannot acknowledge to the durable consumer");
            }
        }
        Ok(())
    };
    loop {
        if crate::signals::stopping() {
            judge.report.interrupted = crate::signals::stopped_by();
            break;
        }
        let next = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(100), exchanges.next()).await
        });
        let m = match next {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(err))) => {
                tracing::warn!(%err, "Reading the exchanges");
                continue;
            }
            Ok(None) => break,
            Err(_) => {
                if saved_released != judge.released {
                    save(&mut judge, &merger, &mut unacked, last_read)?;
                    saved_released = judge.released;
                    saved_at = Instant::now();
                }
                if o.until_idle
                    .is_some_and(|d| pending == 0 && last.elapsed() >= d)
                {
                    break;
                }
                continue;
            }
        };
        last = Instant::now();
        let info = m.info().ok().map(|i| (i.pending, i.stream_sequence));
        let seq = info.map_or(last_read + 1, |i| i.1);
        pending = info.map_or(u64::MAX, |i| i.0);
        last_read = seq;
        let (message, acker) = m.split();
        unacked.push_back((seq, acker));
        let clock = match decode(&message.payload) {
            Ok(Decoded::Exchange(meta, ex)) => {
                merger.push(Record { seq, meta, ex });
                false
            }
            Ok(Decoded::Clock(meta)) => {
                merger.clock(meta.sensor, meta.emitted);
                true
            }
            Err(err) => {
                judge.report.unreadable += 1;
                if judge.report.unreadable == 1 {
                    tracing::warn!(%err, subject = %message.subject, "Skipping a record this build cannot read");
                }
                false
            }
        };
        while let Some(r) = merger.pop() {
            judge.record(r)?;
        }
        if clock {
            // A quiet wire still moves time on, as idle time does in one live
            // process (episodes end); at this point of the stream for every detector.
            judge.report.clocks += 1;
            judge.engine.advance(merger.watermark(), &mut judge.fired);
            judge.write()?;
        }
        if judge.released >= saved_released + SAVE_RECORDS || saved_at.elapsed() >= SAVE_EVERY {
            save(&mut judge, &merger, &mut unacked, last_read)?;
            saved_released = judge.released;
            saved_at = Instant::now();
        }
    }
    // Saved before the end's own alerts: a restart cuts them and writes them again
    // at its own end.
    save(&mut judge, &merger, &mut unacked, last_read)?;
    while let Some(r) = merger.take() {
        judge.record(r)?;
    }
    judge.report.late = merger.late;
    judge.report.reordered = merger.reordered;
    if judge.released >= judge.written_before {
        judge.engine.finish(&mut judge.fired);
        judge.written_before = 0;
        judge.write()?;
    }
    // Else stopped while still reading again what the alert log already covers:
    // the end-of-input alerts of this point would be out of place after them.
    judge.sync()?;
    if let Some(path) = &o.endpoints {
        judge.engine.write_inventory(path)?;
    }
    Ok(judge.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A judge of shard 1/1 that had written the alerts of `written_before`
    /// records before a restart.
    fn judge(written_before: u64) -> Judge {
        Judge {
            engine: Engine::new(DetectConfig::default()),
            alerts: AlertLog::new(Box::new(std::io::sink()), None),
            file: None,
            fired: Vec::new(),
            shard: (1, 1),
            released: 0,
            written_before,
            report: DetectReport::default(),
        }
    }

    /// Basic credentials over cleartext HTTP: a posture finding on its first sight.
    fn record(seq: u64, host: &str) -> Record {
        let mut ex =
            crate::http::testing::exchange(seq * 1_000_000_000, 7, "GET", "/api/items", Some(200));
        ex.request_headers.authorization = Some("Basic YW5uOnNlY3JldA==".into());
        ex.request_headers.host = Some(host.into());
        Record {
            seq,
            meta: Default::default(),
            ex: Box::new(ex),
        }
    }

    #[test]
    fn alerts_written_before_a_restart_are_not_written_again() {
        let mut first = judge(0);
        for seq in 1..=4 {
            first
                .record(record(seq, &format!("h{seq}.example")))
                .unwrap();
        }
        let written = first.report.alerts;
        assert!(written >= 4, "{:?}", first.report);
        // Restarted after 3 of them: their alerts are not written again, the 4th's are.
        let mut again = judge(3);
        for seq in 1..=4 {
            again
                .record(record(seq, &format!("h{seq}.example")))
                .unwrap();
        }
        assert_eq!(again.report.rewritten + again.report.alerts, written);
        assert_eq!(again.report.alerts, written / 4);
        // Stopped again while reading again: the log still covers the 3.
        let mut early = judge(3);
        early.record(record(1, "h1.example")).unwrap();
        assert_eq!((early.released, early.covered()), (1, 3));
        assert_eq!(early.report.alerts, 0);
    }
}
