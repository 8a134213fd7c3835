//! Packet sources.
//!
//! A source hands out one [`Packet`] at a time, borrowed from its own buffer, so
//! the decode and reassembly stages see capture bytes without a copy. Files are read
//! by the pure-Rust reader in [`file`] (pcap in both byte orders and both timestamp
//! precisions, pcapng with several interfaces, gzip, stdin); live capture backends
//! implement the same trait.

pub mod bpf;
pub mod file;
#[cfg(target_os = "linux")]
pub mod live;
pub mod mapped;
#[cfg(feature = "libpcap")]
pub mod pcap_live;
pub mod readahead;

use std::io;

use bpf::FilterError;

pub use file::{CaptureError, FileSource};

pub use crate::time::{MAX_TIME, Nanos};

/// One captured frame as the source delivered it.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture timestamp.
    pub ts: Nanos,
    /// Link-layer type (LINKTYPE_* numbers from tcpdump.org).
    pub linktype: u32,
    /// Captured bytes (may be shorter than `orig_len` when a snap length applied).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub orig_len: u32,
}

/// How to set up the capture sockets (`[capture]` in the config file and flags).
#[derive(Debug, Clone)]
pub struct RingOptions {
    /// Ring memory per socket, in MiB (0: [`RingOptions::per_worker`] decides).
    pub ring_mib: usize,
    /// How long the kernel waits before handing over a block that is not full (ms).
    pub block_timeout_ms: u32,
    /// Promiscuous mode (ignored for `any`).
    pub promiscuous: bool,
}

impl Default for RingOptions {
    fn default() -> Self {
        // 10 ms keeps quiet-wire latency low (Suricata's af-packet uses the same order).
        RingOptions {
            ring_mib: 0,
            block_timeout_ms: 10,
            promiscuous: true,
        }
    }
}

impl RingOptions {
    /// The ring of each of `workers` sockets: as configured, or 64 MiB each (~0.5 s
    /// of a saturated 1 Gbit/s link) up to 4 workers, then 256 MiB shared, at least
    /// 16 MiB each: the fanout gives each socket its share of the traffic, and one
    /// worker per core must not reserve gigabytes on a large machine.
    pub fn per_worker(&self, workers: usize) -> usize {
        match self.ring_mib {
            0 => (256 / workers.max(1)).clamp(16, 64),
            n => n,
        }
    }
}

/// A classic BPF instruction (struct sock_filter).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Why an interface cannot be captured from.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{0}: no such interface (see `ip link`)")]
    NoSuchInterface(String),
    #[error(
        "{0}: capture needs CAP_NET_RAW: run as root or `setcap cap_net_raw,cap_net_admin+ep` on the binary"
    )]
    Permission(String),
    #[error("{0}: interface is down: bring it up with `ip link set {0} up`")]
    Down(String),
    #[error("{0}: {1}")]
    Os(String, io::Error),
    #[error("{0}")]
    Filter(FilterError),
    #[error("{0}")]
    Option(String),
}

impl LiveError {
    /// Errors the user can fix by changing the command (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            LiveError::NoSuchInterface(_)
                | LiveError::Permission(_)
                | LiveError::Filter(_)
                | LiveError::Option(_)
        )
    }
}

/// Kernel counters, accumulated.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelStats {
    pub packets: u64,
    pub drops: u64,
    /// Times the ring was full and the kernel froze the queue.
    pub freezes: u64,
}

/// A live packet source: the AF_PACKET ring here, or libpcap (feature `libpcap`).
pub trait LiveCapture: Send {
    /// The next packet; `None` when nothing arrived within about 200 ms.
    fn next_packet(&mut self) -> io::Result<Option<Packet<'_>>>;
    /// Kernel counters so far.
    fn kernel_stats(&mut self) -> KernelStats;
}

/// A fanout group id for this process: the same for all its sockets, different
/// from other processes'.
pub fn fanout_group() -> u16 {
    (std::process::id() & 0xffff) as u16
}

/// Anything that yields packets in capture order.
pub trait PacketSource {
    /// The next packet, `Ok(None)` at the end of input.
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError>;
}

#[cfg(test)]
mod tests {
    use super::RingOptions;

    #[test]
    fn default_rings_shrink_with_many_workers_and_explicit_sizes_stay() {
        let auto = RingOptions::default();
        let sizes: Vec<usize> = [1, 4, 8, 16, 64].map(|n| auto.per_worker(n)).to_vec();
        assert_eq!(sizes, [64, 64, 32, 16, 16]);
        let set = RingOptions {
            ring_mib: 200,
            ..RingOptions::default()
        };
        assert_eq!(set.per_worker(16), 200);
    }
}
