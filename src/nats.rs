//! Beyond one machine (issue #27): a sensor publishes its exchanges to a NATS
//! JetStream stream (`--publish`), detector processes consume it and run stage 2
//! for their share of the clients (`apiwatch detect --from ... --shard K/N`).
//!
//! Design (see docs/distributed.md):
//! - Subjects: `<prefix>.exchanges.<partition>`, the partition a stable hash
//!   (SipHash-2-4, fixed keys) of the client key the sensor's identity settings give,
//!   so one client always lands in one partition; `<prefix>.epochs.<shard>` carries
//!   the detectors' per-epoch population contributions.
//! - Every detector reads the whole exchange stream in order and runs the engine's
//!   global half ([`Engine::route`]) for every exchange, and the per-client half
//!   ([`Engine::judge`]) only for the partitions of its shard. Global alerts
//!   (distributed stuffing, token misuse, posture) are written by shard 1 only.
//! - The population baseline hears from every client: at each epoch (one second of
//!   packet time) each detector publishes what its clients contributed and waits for
//!   the others' before applying them in exchange order, as one process would.

use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::detect::burst::Contribution;
use crate::detect::{Alert, DetectConfig, Engine};
use crate::export::alert_log::AlertLog;
use crate::http::{Exchange, FlowInfo, Headers, Text};
use crate::identity::{self, KeyMode};
use crate::time::Nanos;

/// The first byte of every published exchange: the record layout below. A
/// detector refuses (counts and skips) any other.
pub const WIRE_VERSION: u8 = 1;
/// The first byte of an epoch's contributions.
const EPOCH_VERSION: u8 = 1;

/// Defaults of the stream's name and subjects (`--nats-stream`, `--nats-subject`).
pub const DEFAULT_STREAM: &str = "APIWATCH";
pub const DEFAULT_PREFIX: &str = "apiwatch";
/// Partitions a sensor spreads clients over (`--partitions`): many more than
/// detectors, so detectors can be added without moving a client between partitions.
pub const DEFAULT_PARTITIONS: u32 = 64;
/// Publishes awaiting their acknowledgement before the sensor waits for them all.
const ACK_WINDOW: usize = 1024;
/// Exchanges buffered between the packet thread and the publisher (`-i`: beyond
/// this they are dropped and counted; `-r`: the reader waits).
pub const DEFAULT_BUFFER: usize = 65_536;

/// Where the stream lives and how to reach it (shared by sensors and detectors).
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://HOST:PORT` (several, comma-separated, for a cluster).
    pub url: String,
    pub stream: String,
    pub prefix: String,
    /// `--nats-creds FILE`: a NATS credentials file (JWT and NKey seed).
    pub creds: Option<PathBuf>,
}

impl NatsOptions {
    pub fn new(url: String) -> Self {
        NatsOptions {
            url,
            stream: DEFAULT_STREAM.into(),
            prefix: DEFAULT_PREFIX.into(),
            creds: None,
        }
    }
}

/// `--publish`: the sensor's side.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub nats: NatsOptions,
    pub partitions: u32,
    /// Exchanges buffered while the server is slow or away.
    pub buffer: usize,
    /// Wait for room instead of dropping (replays: nothing is lost to a slow server).
    pub block: bool,
}

/// An exchange as published: what detection reads of it, in the order of
/// [`Exchange`]'s fields. Left out: the TLS handshake summary (TLS records are not
/// published in this version), `Referer`/`Origin`/proxy headers (`Headers::extra`),
/// the interim response, reason phrase and response version (exchange log only).
/// Borrowed when written, owned when read ([`Owned`]): the two must list the same
/// fields in the same order (a unit test checks the round trip).
#[derive(Serialize)]
struct Wire<'a> {
    partition: u32,
    ts: Nanos,
    client_ip: IpAddr,
    client_port: u16,
    server_ip: IpAddr,
    server_port: u16,
    trans_depth: u32,
    method: &'a Option<Text>,
    uri: &'a Option<Text>,
    version: &'a Option<Text>,
    request_headers: &'a Headers,
    request_body_len: u64,
    #[serde(with = "serde_bytes_ref")]
    request_body_prefix: &'a [u8],
    body_credentials: &'a Option<crate::credentials::Credentials>,
    #[serde(with = "serde_bytes_ref")]
    response_body_prefix: &'a [u8],
    status: Option<u16>,
    response_headers: &'a Option<Headers>,
    response_body_len: Option<u64>,
    response_ts: Option<Nanos>,
    incomplete: bool,
    flow: FlowInfo,
    decrypted: bool,
    h2: Option<&'a crate::http::h2::StreamInfo>,
    /// The sensitive values the sensor counted in the response (counts only).
    sensitive: Option<[u32; 4]>,
}

#[derive(Deserialize)]
struct Owned {
    partition: u32,
    ts: Nanos,
    client_ip: IpAddr,
    client_port: u16,
    server_ip: IpAddr,
    server_port: u16,
    trans_depth: u32,
    method: Option<Text>,
    uri: Option<Text>,
    version: Option<Text>,
    request_headers: Headers,
    request_body_len: u64,
    request_body_prefix: Vec<u8>,
    body_credentials: Option<crate::credentials::Credentials>,
    response_body_prefix: Vec<u8>,
    status: Option<u16>,
    response_headers: Option<Headers>,
    response_body_len: Option<u64>,
    response_ts: Option<Nanos>,
    incomplete: bool,
    flow: FlowInfo,
    decrypted: bool,
    h2: Option<crate::http::h2::StreamInfo>,
    sensitive: Option<[u32; 4]>,
}

/// Byte slices as postcard byte strings (length and bytes), read back as `Vec<u8>`.
mod serde_bytes_ref {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

/// Why a published record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("empty record")]
    Empty,
    #[error("record format version {0} (this build reads {WIRE_VERSION})")]
    Version(u8),
    #[error("corrupt record: {0}")]
    Corrupt(#[from] postcard::Error),
}

/// A keyed hash of a secret, as 32 hex digits: what the record carries instead of
/// it. The same secret gives the same text on every sensor that shares the key (the
/// identity salt), so detectors key, count and compare principals as one process
/// does, without the secret.
fn sealed(key: [u64; 2], secret: &[u8]) -> String {
    use std::hash::Hasher;
    let mut out = String::with_capacity(32);
    for k in [key[0], key[1]] {
        let mut h = siphasher::sip::SipHasher24::new_with_keys(k, !k ^ 0x6e61_7473);
        h.write(secret);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// An `Authorization` value without its secret: a Basic user name stays (login
/// detection counts users) with the password dropped; a JWT keeps its header and
/// claims (posture reads `alg` and `exp`; without a signature it cannot be
/// replayed) with the signature sealed; any other credential is sealed whole.
fn redact_authorization(a: &str, key: [u64; 2]) -> String {
    let t = a.trim();
    let Some((scheme, cred)) = t.split_once(' ') else {
        return sealed(key, t.as_bytes());
    };
    let cred = cred.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let user = crate::credentials::basic_username(t).unwrap_or_default();
        let mut plain = user;
        plain.push(b':');
        return format!("{scheme} {}", base64_encode(&plain));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let mut parts = cred.splitn(3, '.');
        if let (Some(h), Some(p), Some(sig)) = (parts.next(), parts.next(), parts.next())
            && h.starts_with("eyJ")
        {
            let sig = if sig.is_empty() {
                String::new()
            } else {
                sealed(key, sig.as_bytes())
            };
            return format!("{scheme} {h}.{p}.{sig}");
        }
    }
    format!("{scheme} {}", sealed(key, cred.as_bytes()))
}

/// Standard base64 with padding.
fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A target with the values of secret-named query parameters replaced (the path is
/// kept: routes and object ids are judged on it).
fn redact_query(uri: &str) -> Option<String> {
    let (path, query) = uri.split_once('?')?;
    let secret = |p: &str| {
        p.split_once('=')
            .is_some_and(|(k, v)| !v.is_empty() && crate::redact::is_secret_name(k))
    };
    if !query.split('&').any(secret) {
        return None;
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if secret(p) => format!("{k}=REDACTED"),
            _ => p.to_string(),
        })
        .collect();
    Some(format!("{path}?{}", pairs.join("&")))
}

/// The bytes published for one exchange: [`WIRE_VERSION`], then the postcard
/// record. Secrets are redacted first (`key`: the identity salt, shared by the
/// sensors): `Authorization` and API keys as [`redact_authorization`] and
/// [`sealed`] make them, secret query values replaced, a body that carries a
/// password left out (what detection needs of it, the user name and that a password
/// was there, travels in `body_credentials`, the user name sealed). `cookie_mode`:
/// the clients are keyed by a cookie, so the `Cookie` header travels (sealed);
/// otherwise only its presence does.
pub fn encode(ex: &Exchange, partition: u32, cookie_mode: bool, key: [u64; 2], out: &mut Vec<u8>) {
    out.clear();
    out.push(WIRE_VERSION);
    let h = &ex.request_headers;
    let redacted;
    let request_headers = if h.authorization.is_some() || h.api_key.is_some() || h.cookie.is_some()
    {
        let mut r = h.clone();
        r.authorization = h
            .authorization
            .as_deref()
            .map(|a| redact_authorization(a, key).into());
        r.api_key = h
            .api_key
            .as_deref()
            .map(|k| sealed(key, k.trim().as_bytes()).into());
        r.cookie = h.cookie.as_deref().map(|c| {
            if cookie_mode {
                // Each value sealed, names kept: the keying cookie is found by name.
                c.split(';')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => {
                            format!("{}={}", k.trim(), sealed(key, v.trim().as_bytes()))
                        }
                        None => kv.trim().to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                String::new()
            }
        });
        redacted = r;
        &redacted
    } else {
        h
    };
    let uri = ex
        .uri
        .as_deref()
        .and_then(redact_query)
        .map(|u| Some(Text::from(u)));
    let uri = uri.as_ref().unwrap_or(&ex.uri);
    let password = ex.body_credentials.as_ref().is_some_and(|c| c.password);
    let body_credentials = ex
        .body_credentials
        .as_ref()
        .map(|c| crate::credentials::Credentials {
            user: c
                .user
                .as_deref()
                .map(|u| sealed(key, u).into_bytes().into_boxed_slice()),
            ..c.clone()
        });
    let request_body_prefix: &[u8] = if password {
        &[]
    } else {
        &ex.request_body_prefix
    };
    let w = Wire {
        partition,
        ts: ex.ts,
        client_ip: ex.client_ip,
        client_port: ex.client_port,
        server_ip: ex.server_ip,
        server_port: ex.server_port,
        trans_depth: ex.trans_depth,
        method: &ex.method,
        uri,
        version: &ex.version,
        request_headers,
        request_body_len: ex.request_body_len,
        request_body_prefix,
        body_credentials: &body_credentials,
        response_body_prefix: &ex.response_body_prefix,
        status: ex.status,
        response_headers: &ex.response_headers,
        response_body_len: ex.response_body_len,
        response_ts: ex.response_ts,
        incomplete: ex.incomplete,
        flow: ex.flow,
        decrypted: ex.decrypted,
        h2: ex.h2.as_deref(),
        sensitive: ex.sensitive.counts().map(|c| c.0),
    };
    // Writing into a Vec cannot fail.
    let taken = std::mem::take(out);
    *out = postcard::to_extend(&w, taken).unwrap_or_else(|_| vec![WIRE_VERSION]);
}

/// Reads a published exchange back: its partition and the exchange.
pub fn decode(bytes: &[u8]) -> Result<(u32, Exchange), WireError> {
    let (&v, rest) = bytes.split_first().ok_or(WireError::Empty)?;
    if v != WIRE_VERSION {
        return Err(WireError::Version(v));
    }
    let o: Owned = postcard::from_bytes(rest)?;
    let mut ex = Exchange::vacant();
    ex.ts = o.ts;
    ex.client_ip = o.client_ip;
    ex.client_port = o.client_port;
    ex.server_ip = o.server_ip;
    ex.server_port = o.server_port;
    ex.trans_depth = o.trans_depth;
    ex.method = o.method;
    ex.uri = o.uri;
    ex.version = o.version;
    ex.request_headers = o.request_headers;
    ex.request_body_len = o.request_body_len;
    ex.request_body_prefix = o.request_body_prefix;
    ex.body_credentials = o.body_credentials;
    ex.response_body_prefix = o.response_body_prefix;
    ex.status = o.status;
    ex.response_headers = o.response_headers;
    ex.response_body_len = o.response_body_len;
    ex.response_ts = o.response_ts;
    ex.incomplete = o.incomplete;
    ex.flow = o.flow;
    ex.decrypted = o.decrypted;
    ex.h2 = o.h2.map(Box::new);
    if let Some(c) = o.sensitive {
        ex.sensitive = crate::sensitive::Found {
            outcome: crate::sensitive::Outcome::Scanned,
            counts: Some(Box::new(crate::sensitive::Counts(c))),
        };
    }
    Ok((o.partition, ex))
}

/// The partition of a client key: stable across processes, builds and restarts
/// (SipHash-2-4 with fixed keys over the key as alerts write it).
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    let mut h = siphasher::sip::SipHasher24::new_with_keys(0x6170_6977_6174_6368, 0x6e61_7473);
    h.write(key.as_bytes());
    (h.finish() % u64::from(partitions.max(1))) as u32
}

/// Which shard of `n` owns `partition` (shards numbered from 1).
pub fn shard_of(partition: u32, n: u32) -> u32 {
    partition % n.max(1) + 1
}

/// A `--shard K/N` value.
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("--shard: '{s}' is not K/N with 1 <= K <= N <= 1024 (e.g. 1/2)");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n || n > 1024 {
        return Err(bad());
    }
    Ok((k, n))
}

async fn connect(o: &NatsOptions) -> Result<async_nats::Client, String> {
    let mut opts = async_nats::ConnectOptions::new()
        .name("apiwatch")
        .connection_timeout(Duration::from_secs(5));
    if let Some(path) = &o.creds {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| format!("--nats-creds {}: {e}", path.display()))?;
    }
    opts.connect(o.url.as_str())
        .await
        .map_err(|e| format!("{}: cannot connect to NATS: {e}", o.url))
}

/// The stream, created when missing: limits retention (what the server's limits
/// allow is kept; size it with `nats stream edit`, see docs/distributed.md).
async fn stream(
    js: &jetstream::Context,
    o: &NatsOptions,
) -> Result<jetstream::stream::Stream, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: o.stream.clone(),
        subjects: vec![
            format!("{}.exchanges.>", o.prefix),
            format!("{}.epochs.>", o.prefix),
        ],
        ..Default::default()
    })
    .await
    .map_err(|e| format!("{}: cannot create or open stream {}: {e}", o.url, o.stream))
}

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
    /// TLS connections' records, not published in this version.
    pub skipped_tls: AtomicU64,
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
    cookie_mode: bool,
    buf: Vec<u8>,
    key: String,
    trusted: Vec<identity::Cidr>,
    identity: identity::IdentityConfig,
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
            cookie_mode: matches!(detect.identity.mode, KeyMode::Cookie(_)),
            buf: Vec::with_capacity(1024),
            key: String::with_capacity(48),
            trusted: detect.trusted_proxies.clone(),
            identity: detect.identity.clone(),
        })
    }

    /// Publishes one exchange (a TLS connection's record is counted and skipped).
    pub fn exchange(&mut self, ex: &Exchange) {
        if ex.is_tls() {
            self.counters.skipped_tls.fetch_add(1, Relaxed);
            return;
        }
        let ip = identity::client_ip(ex, &self.trusted);
        let id = identity::client_id(ex, ip, &self.identity);
        self.key.clear();
        id.write_key(&mut self.key);
        let p = partition_of(&self.key, self.partitions);
        encode(ex, p, self.cookie_mode, self.identity.salt, &mut self.buf);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_survives_the_wire() {
        let mut ex = crate::http::testing::exchange(7, 3, "GET", "/api/items?page=2", Some(200));
        ex.response_headers = Some(Headers {
            content_type: Some("application/json".into()),
            ..Default::default()
        });
        ex.response_body_prefix = br#"{"items":[]}"#.to_vec();
        ex.response_body_len = Some(12);
        ex.flow.id = 42;
        ex.sensitive = crate::sensitive::Found {
            outcome: crate::sensitive::Outcome::Scanned,
            counts: Some(Box::new(crate::sensitive::Counts([2, 1, 0, 0]))),
        };
        let mut buf = Vec::new();
        encode(&ex, 5, false, [1, 2], &mut buf);
        assert_eq!(buf[0], WIRE_VERSION);
        let (p, back) = decode(&buf).unwrap();
        assert_eq!(p, 5);
        assert_eq!(back, ex, "an exchange without secrets travels whole");
        assert!(matches!(decode(&[9]), Err(WireError::Version(9))));
        assert!(decode(&[WIRE_VERSION, 0xff]).is_err());
    }

    /// No secret is published: what detection needs travels instead (the Basic
    /// user name, a JWT's header and claims, keyed hashes that compare equal
    /// across sensors sharing the salt).
    #[test]
    fn secrets_do_not_travel_what_detection_needs_does() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2lnbmF0dXJlLXNlY3JldA";
        let mut ex = crate::http::testing::exchange(
            7,
            3,
            "POST",
            "/api/login?api_key=k3y-s3cret&x=1",
            Some(401),
        );
        ex.request_headers.authorization = Some("Basic Y2Fyb2w6aHVudGVyMg==".into());
        ex.request_headers.api_key = Some("AKIA-secret-key".into());
        ex.request_headers.cookie = Some("sid=cookie-secret".into());
        ex.request_body_prefix = b"user=carol&password=hunter2".to_vec();
        ex.body_credentials = Some(crate::credentials::Credentials {
            user: Some(b"carol".to_vec().into()),
            password: true,
            graphql: false,
        });
        let mut buf = Vec::new();
        encode(&ex, 5, false, [1, 2], &mut buf);
        let text = String::from_utf8_lossy(&buf).to_string();
        for secret in [
            "hunter2",
            "k3y-s3cret",
            "AKIA-secret-key",
            "cookie-secret",
            "Y2Fyb2w6aHVudGVyMg",
        ] {
            assert!(!text.contains(secret), "{secret} published");
        }
        let (_, back) = decode(&buf).unwrap();
        let auth = back.request_headers.authorization.as_deref().unwrap();
        assert_eq!(
            crate::credentials::basic_username(auth).as_deref(),
            Some(&b"carol"[..])
        );
        assert_eq!(back.uri.as_deref(), Some("/api/login?api_key=REDACTED&x=1"));
        assert!(back.request_body_prefix.is_empty());
        let c = back.body_credentials.as_ref().unwrap();
        assert!(c.password && c.user.as_deref() != Some(&b"carol"[..]));
        assert_eq!(back.request_headers.cookie.as_deref(), Some(""));
        // The same API key on another sensor with the same salt: the same text.
        let mut again = Vec::new();
        encode(&ex, 5, false, [1, 2], &mut again);
        assert_eq!(
            decode(&again).unwrap().1.request_headers.api_key,
            back.request_headers.api_key
        );
        // A JWT keeps its header and claims, its signature sealed.
        ex.request_headers.authorization = Some(format!("Bearer {jwt}").into());
        encode(&ex, 5, false, [1, 2], &mut buf);
        let (_, back) = decode(&buf).unwrap();
        let auth = back.request_headers.authorization.unwrap();
        assert!(
            auth.starts_with("Bearer eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9."),
            "{auth}"
        );
        assert!(!auth.contains("c2lnbmF0dXJl"));
        // With cookie keying the cookie's values are sealed, its names kept.
        encode(&ex, 5, true, [1, 2], &mut buf);
        let (_, back) = decode(&buf).unwrap();
        let cookie = back.request_headers.cookie.unwrap();
        assert!(
            cookie.starts_with("sid=") && !cookie.contains("cookie-secret"),
            "{cookie}"
        );
    }

    #[test]
    fn partitions_are_stable_and_shards_cover_them() {
        assert_eq!(
            partition_of("ip:10.0.0.1", 64),
            partition_of("ip:10.0.0.1", 64)
        );
        let p: std::collections::BTreeSet<u32> = (0..=255)
            .map(|i| partition_of(&format!("ip:10.0.0.{i}"), 8))
            .collect();
        assert_eq!(p.len(), 8);
        for part in 0..64 {
            let owners: Vec<u32> = (1..=3).filter(|k| shard_of(part, 3) == *k).collect();
            assert_eq!(owners.len(), 1);
        }
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(parse_shard("0/2").is_err() && parse_shard("3/2").is_err());
    }
}
