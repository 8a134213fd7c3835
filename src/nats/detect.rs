//! `apiwatch detect`: stage 2 for one shard of the clients, read from the stream.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{NatsOptions, connect, decode, shard_of, stream};
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

/// Runs stage 2 for shard K of N until the input is drained (`--until-idle`) or a
/// signal stops it.
pub fn detect(o: &DetectOptions, cfg: DetectConfig) -> Result<DetectReport, String> {
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
    let ordered = |filter: String| jetstream::consumer::pull::OrderedConfig {
        filter_subject: filter,
        deliver_policy: jetstream::consumer::DeliverPolicy::All,
        ..Default::default()
    };
    let (js, mut exchanges, epochs) = rt.block_on(async {
        let client = connect(&o.nats).await?;
        let js = jetstream::new(client);
        let s = stream(&js, &o.nats).await?;
        let err = |e: &dyn std::fmt::Display| format!("{}: cannot consume: {e}", o.nats.stream);
        let ex = s
            .create_consumer(ordered(format!("{}.exchanges.>", o.nats.prefix)))
            .await
            .map_err(|e| err(&e))?
            .messages()
            .await
            .map_err(|e| err(&e))?;
        let ep = s
            .create_consumer(ordered(format!("{}.epochs.>", o.nats.prefix)))
            .await
            .map_err(|e| err(&e))?
            .messages()
            .await
            .map_err(|e| err(&e))?;
        Ok::<_, String>((js, ex, ep))
    })?;
    let out = crate::sensor::open_output(o.alerts.as_deref().unwrap_or("-"), "alerts", None)
        .map_err(|e| e.to_string())?;
    let mut alerts = AlertLog::new(out, None);
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
    crate::signals::install();
    let mut report = DetectReport::default();
    let mut fired: Vec<Alert> = Vec::new();
    let mut last = Instant::now();
    let mut pending = u64::MAX;
    let write = |fired: &mut Vec<Alert>,
                 engine: &mut Engine,
                 alerts: &mut AlertLog,
                 report: &mut DetectReport|
     -> Result<(), String> {
        for a in fired.drain(..) {
            engine.count(&a);
            report.alerts += 1;
            alerts
                .write(&a)
                .map_err(|e| format!("cannot write alerts: {e}"))?;
        }
        Ok(())
    };
    loop {
        if crate::signals::stopping() {
            report.interrupted = crate::signals::stopped_by();
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
                if o.until_idle
                    .is_some_and(|d| pending == 0 && last.elapsed() >= d)
                {
                    break;
                }
                continue;
            }
        };
        last = Instant::now();
        pending = m.info().map_or(u64::MAX, |i| i.pending);
        let (partition, ex) = match decode(&m.payload) {
            Ok(x) => x,
            Err(err) => {
                report.unreadable += 1;
                if report.unreadable == 1 {
                    tracing::warn!(%err, subject = %m.subject, "Skipping a record this build cannot read");
                }
                continue;
            }
        };
        report.exchanges += 1;
        if ex.tls.is_some() {
            // A TLS connection's record: posture's TLS findings are global and the
            // encrypted-traffic detector keeps its own per-client state, so shard 1
            // judges them all, as one process does.
            if k == 1 {
                engine.encrypted(&ex, &mut fired);
                write(&mut fired, &mut engine, &mut alerts, &mut report)?;
            }
            continue;
        }
        let mine = shard_of(partition, n) == k;
        let Some(mut r) = engine.route(&ex, &mut fired) else {
            write(&mut fired, &mut engine, &mut alerts, &mut report)?;
            continue;
        };
        // Posture findings are global: shard 1 works them out and writes them.
        let posture = if k == 1 && crate::posture::may_find(&ex, r.has_query()) {
            engine.posture(&ex, Some((r.endpoint(), r.query(&ex))))
        } else {
            Vec::new()
        };
        if mine {
            report.judged += 1;
            let global = r.take_global();
            engine.judge(r, std::borrow::Cow::Borrowed(&ex), &mut fired);
            if k == 1 {
                fired.extend(global.into_iter().flatten());
            }
        } else if k == 1 {
            fired.extend(r.take_global().into_iter().flatten());
        }
        if !posture.is_empty() {
            engine.raise(posture, &mut fired);
        }
        write(&mut fired, &mut engine, &mut alerts, &mut report)?;
    }
    engine.finish(&mut fired);
    write(&mut fired, &mut engine, &mut alerts, &mut report)?;
    alerts
        .flush()
        .map_err(|e| format!("cannot write alerts: {e}"))?;
    if let Some(path) = &o.endpoints {
        engine
            .inventory_documents(path.is_dir())
            .write(path)
            .map_err(|e| {
                format!(
                    "{}: cannot write the endpoint inventory: {e}",
                    path.display()
                )
            })?;
    }
    Ok(report)
}
