//! The sensor's side of `--publish`: records handed to a publisher thread that
//! publishes them to JetStream and awaits their acknowledgements in windows.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use async_nats::jetstream;
use bytes::Bytes;

use super::{Meta, PublishOptions, connect, encode, partition_of, stream};
use crate::detect::DetectConfig;
use crate::http::Exchange;
use crate::identity;

/// Publishes awaiting their acknowledgement before the sensor waits for them all.
const ACK_WINDOW: usize = 1024;

/// What the publisher counted (shared with the metrics and the summary).
#[derive(Debug, Default)]
pub struct PublishCounters {
    /// Exchanges handed to the server.
    pub published: AtomicU64,
    /// ...of which the server acknowledged as stored.
    pub acked: AtomicU64,
    /// Dropped: the buffer was full (live capture), or the server refused or never
    /// acknowledged them.
    pub dropped: AtomicU64,
}

impl PublishCounters {
    /// The counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        for (name, help, v) in [
            (
                "apiwatch_publish_exchanges_total",
                "Exchanges handed to the NATS server (--publish).",
                &self.published,
            ),
            (
                "apiwatch_publish_acked_total",
                "Published exchanges the JetStream server acknowledged as stored.",
                &self.acked,
            ),
            (
                "apiwatch_publish_dropped_total",
                "Exchanges dropped: the publish buffer was full, or the server refused or never acknowledged them.",
                &self.dropped,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Relaxed));
        }
    }
}

/// The sensor's publisher: the packet thread encodes and hands exchanges over a
/// bounded channel to a thread of its own, which publishes them and awaits the
/// acknowledgements in batches of [`ACK_WINDOW`].
pub struct Publisher {
    tx: Option<tokio::sync::mpsc::Sender<(u32, Bytes)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub counters: Arc<PublishCounters>,
    partitions: u32,
    block: bool,
    buf: Vec<u8>,
    key: String,
    trusted: Vec<identity::Cidr>,
    identity: identity::IdentityConfig,
    /// This sensor process's id on every record (random: sensors need no
    /// coordination), and its packet clock: the largest exchange time published.
    sensor: u64,
    emitted: crate::time::Nanos,
}

impl Publisher {
    /// Connects and opens (or creates) the stream, then starts publishing.
    pub fn start(o: &PublishOptions, detect: &DetectConfig) -> Result<Publisher, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the NATS runtime: {e}"))?;
        let js = rt.block_on(async {
            let client = connect(&o.nats).await?;
            let js = jetstream::new(client);
            stream(&js, &o.nats).await?;
            Ok::<_, String>(js)
        })?;
        let subjects: Vec<async_nats::Subject> = (0..o.partitions)
            .map(|p| format!("{}.exchanges.{p}", o.nats.prefix).into())
            .collect();
        let (tx, rx) = tokio::sync::mpsc::channel(o.buffer.max(1));
        let counters = Arc::new(PublishCounters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("nats-publish".into())
            .spawn(move || rt.block_on(publish_loop(js, subjects, rx, c)))
            .map_err(|e| format!("cannot start the NATS publisher: {e}"))?;
        Ok(Publisher {
            tx: Some(tx),
            thread: Some(thread),
            counters,
            partitions: o.partitions.max(1),
            block: o.block,
            buf: Vec::with_capacity(1024),
            key: String::with_capacity(48),
            trusted: detect.trusted_proxies.clone(),
            identity: detect.identity.clone(),
            sensor: identity::IdentityConfig::random_salt()[0],
            emitted: 0,
        })
    }

    /// Publishes one exchange or TLS connection record.
    pub fn exchange(&mut self, ex: &Exchange) {
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
        let msg = (p, Bytes::copy_from_slice(&self.buf));
        let Some(tx) = &self.tx else { return };
        let sent = if self.block {
            tx.blocking_send(msg).is_ok()
        } else {
            tx.try_send(msg).is_ok()
        };
        if !sent {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Publishes what is buffered and waits for its acknowledgements.
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

async fn publish_loop(
    js: jetstream::Context,
    subjects: Vec<async_nats::Subject>,
    mut rx: tokio::sync::mpsc::Receiver<(u32, Bytes)>,
    c: Arc<PublishCounters>,
) {
    let mut window = VecDeque::with_capacity(ACK_WINDOW);
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        for (p, payload) in batch.drain(..) {
            match js.publish(subjects[p as usize].clone(), payload).await {
                Ok(ack) => {
                    c.published.fetch_add(1, Relaxed);
                    window.push_back(ack);
                }
                Err(err) => {
                    c.dropped.fetch_add(1, Relaxed);
                    tracing::debug!(%err, "Cannot publish an exchange");
                }
            }
            if window.len() >= ACK_WINDOW {
                settle(&mut window, &c).await;
            }
        }
    }
    settle(&mut window, &c).await;
}

/// Awaits every acknowledgement in the window (they arrive meanwhile; awaiting them
/// in order costs one wait for the batch).
async fn settle(window: &mut VecDeque<jetstream::context::PublishAckFuture>, c: &PublishCounters) {
    let mut failed = 0;
    for ack in window.drain(..) {
        match ack.await {
            Ok(_) => {
                c.acked.fetch_add(1, Relaxed);
            }
            Err(err) => {
                failed += 1;
                tracing::debug!(%err, "An exchange was not acknowledged");
            }
        }
    }
    if failed > 0 {
        c.dropped.fetch_add(failed, Relaxed);
        tracing::warn!(
            dropped = failed,
            "Published exchanges were not acknowledged by the NATS server"
        );
    }
}
