//! Packet sources.
//!
//! A source hands out one [`Packet`] at a time, borrowed from its own buffer, so
//! the decode and reassembly stages see capture bytes without a copy. Files are read
//! by the pure-Rust reader in [`file`] (pcap in both byte orders and both timestamp
//! precisions, pcapng with several interfaces, gzip, stdin); live capture backends
//! implement the same trait.

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

/// Anything that yields packets in capture order.
pub trait PacketSource {
    /// The next packet, `Ok(None)` at the end of input.
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError>;
}
