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

pub use file::{CaptureError, FileSource};

/// Nanoseconds since the Unix epoch, taken from the capture (never the wall clock).
pub type Nanos = u64;

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
    /// Ring memory per socket, in MiB.
    pub ring_mib: usize,
    /// How long the kernel waits before handing over a block that is not full (ms).
    pub block_timeout_ms: u32,
    /// Promiscuous mode (ignored for `any`).
    pub promiscuous: bool,
}

impl Default for RingOptions {
    fn default() -> Self {
        // 64 MiB per worker holds ~0.5 s of a saturated 1 Gbit/s link; 10 ms keeps
        // quiet-wire latency low (Suricata's af-packet uses the same order).
        RingOptions {
            ring_mib: 64,
            block_timeout_ms: 10,
            promiscuous: true,
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

/// Anything that yields packets in capture order.
pub trait PacketSource {
    /// The next packet, `Ok(None)` at the end of input.
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError>;
}
