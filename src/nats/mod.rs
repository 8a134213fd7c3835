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

mod detect;
mod publish;
mod wire;

pub use detect::{DetectOptions, DetectReport, detect};
pub use publish::{PublishCounters, Publisher};
pub use wire::{WIRE_VERSION, WireError, decode, encode};

use std::hash::Hasher;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;

/// Defaults of the stream's name and subjects (`--nats-stream`, `--nats-subject`).
pub const DEFAULT_STREAM: &str = "APIWATCH";
pub const DEFAULT_PREFIX: &str = "apiwatch";
/// Partitions a sensor spreads clients over (`--partitions`): many more than
/// detectors, so detectors can be added without moving a client between partitions.
pub const DEFAULT_PARTITIONS: u32 = 64;
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

pub(crate) async fn connect(o: &NatsOptions) -> Result<async_nats::Client, String> {
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
pub(crate) async fn stream(
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

#[cfg(test)]
mod tests {
    use super::*;

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
