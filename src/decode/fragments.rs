//! IP fragment reassembly (RFC 791 §3.2, RFC 8200 §4.5), bounded and timed out on
//! packet time.
//!
//! Overlaps are resolved first-come-first-kept (the earliest fragment's bytes win),
//! as Zeek and most stacks do. A datagram whose fragments do not all arrive within
//! [`FRAGMENT_TIMEOUT`] is dropped; at [`MAX_PENDING_DATAGRAMS`] the least recently
//! touched datagram is evicted. The bytes held are bounded too: at most
//! [`MAX_DATAGRAM_BYTES`] per datagram (overlapping pieces count every time they
//! arrive) and the table's byte budget (a share of `memory.limit`), beyond which the
//! least recently touched datagrams are evicted. All of it is counted.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::time::Nanos;

/// Linux's default `ipfrag_time` is 30 s.
pub const FRAGMENT_TIMEOUT: Nanos = 30 * 1_000_000_000;
/// Datagrams being reassembled at once; a fragment flood evicts rather than grows.
pub const MAX_PENDING_DATAGRAMS: usize = 4096;
/// Largest datagram (IPv4 total length is 16 bits; IPv6 jumbograms are not fragmented).
pub const MAX_DATAGRAM: usize = 65_535;
/// Fragments kept per datagram (a 64 KiB datagram in 8-byte pieces would need 8192).
const MAX_FRAGMENTS_PER_DATAGRAM: usize = 256;
/// Bytes held for one datagram: its largest size twice over (overlaps and
/// retransmissions); beyond it the datagram is dropped.
pub const MAX_DATAGRAM_BYTES: usize = 2 * MAX_DATAGRAM;
/// The byte budget when none is configured.
pub const DEFAULT_FRAGMENT_BYTES: usize = 16 << 20;

/// Identifies one datagram's fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

#[derive(Debug)]
struct Pending {
    last_seen: Nanos,
    /// (offset, bytes) in arrival order.
    pieces: Vec<(usize, Vec<u8>)>,
    total: Option<usize>,
    /// Bytes held in `pieces`.
    bytes: usize,
}

/// What the table did with the counters an operator cares about.
#[derive(Debug, Default, Clone, Copy)]
pub struct FragmentStats {
    pub reassembled: u64,
    pub timed_out: u64,
    pub evicted: u64,
}

/// The fragment table.
#[derive(Debug)]
pub struct Fragments {
    pending: HashMap<FragmentKey, Pending>,
    last_sweep: Nanos,
    pub stats: FragmentStats,
    /// Bytes held by every pending datagram, and the most allowed.
    bytes: usize,
    budget: usize,
}

impl Default for Fragments {
    fn default() -> Self {
        Fragments::with_budget(DEFAULT_FRAGMENT_BYTES)
    }
}

impl Fragments {
    /// A table holding at most `budget` bytes of fragments.
    pub fn with_budget(budget: usize) -> Self {
        Fragments {
            pending: HashMap::new(),
            last_sweep: 0,
            stats: FragmentStats::default(),
            bytes: 0,
            budget: budget.max(MAX_DATAGRAM_BYTES),
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Stores one fragment. Returns the whole transport payload once complete,
    /// `Ok(None)` while pieces are missing, `Err(())` when the fragment is refused.
    #[allow(clippy::result_unit_err)]
    pub fn insert(
        &mut self,
        key: FragmentKey,
        offset: usize,
        more: bool,
        data: &[u8],
        ts: Nanos,
    ) -> Result<Option<Vec<u8>>, ()> {
        self.expire(ts);
        let end = offset.checked_add(data.len()).ok_or(())?;
        if end > MAX_DATAGRAM {
            return Err(());
        }
        if self.pending.len() >= MAX_PENDING_DATAGRAMS && !self.pending.contains_key(&key) {
            self.evict_oldest();
        }
        // The byte budget: the oldest other datagrams go first.
        while self.bytes + data.len() > self.budget {
            let Some(oldest) = self
                .pending
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.drop_datagram(&oldest);
            self.stats.evicted += 1;
        }
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            last_seen: ts,
            pieces: Vec::new(),
            total: None,
            bytes: 0,
        });
        p.last_seen = ts;
        if p.pieces.len() >= MAX_FRAGMENTS_PER_DATAGRAM
            || p.bytes + data.len() > MAX_DATAGRAM_BYTES
            || self.bytes + data.len() > self.budget
        {
            self.drop_datagram(&key);
            return Err(());
        }
        if !more {
            p.total = Some(end);
        }
        p.pieces.push((offset, data.to_vec()));
        p.bytes += data.len();
        self.bytes += data.len();
        let Some(total) = p.total else {
            return Ok(None);
        };
        // Complete when the pieces cover [0, total) without a hole.
        let mut spans: Vec<(usize, usize)> =
            p.pieces.iter().map(|(o, d)| (*o, o + d.len())).collect();
        spans.sort_unstable();
        let mut covered = 0;
        for (s, e) in spans {
            if s > covered {
                return Ok(None);
            }
            covered = covered.max(e);
        }
        if covered < total {
            return Ok(None);
        }
        let p = self.pending.remove(&key).ok_or(())?;
        self.bytes -= p.bytes;
        let mut out = vec![0u8; total];
        // Later pieces first, so the earliest arrival's bytes are written last and win.
        for (o, d) in p.pieces.iter().rev() {
            let stop = (*o + d.len()).min(total);
            if *o < stop {
                out[*o..stop].copy_from_slice(&d[..stop - o]);
            }
        }
        self.stats.reassembled += 1;
        Ok(Some(out))
    }

    /// Drops datagrams idle for longer than the timeout (swept at most once a second).
    fn expire(&mut self, now: Nanos) {
        if now < self.last_sweep.saturating_add(1_000_000_000) {
            return;
        }
        self.last_sweep = now;
        let before = self.pending.len();
        let bytes = &mut self.bytes;
        self.pending.retain(|_, p| {
            let keep = now.saturating_sub(p.last_seen) <= FRAGMENT_TIMEOUT;
            if !keep {
                *bytes -= p.bytes;
            }
            keep
        });
        self.stats.timed_out += (before - self.pending.len()) as u64;
    }

    fn drop_datagram(&mut self, key: &FragmentKey) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes -= p.bytes;
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(k) = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.last_seen)
            .map(|(k, _)| *k)
        {
            self.drop_datagram(&k);
            self.stats.evicted += 1;
        }
    }

    /// Datagrams waiting for fragments.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            proto: 6,
        }
    }

    #[test]
    fn overlapping_floods_stay_inside_the_byte_budget() {
        // 100 datagrams, each sent as 255 overlapping 64 KB pieces: 1.6 GB once.
        let budget = 8 << 20;
        let mut f = Fragments::with_budget(budget);
        let piece = vec![0u8; 65_000];
        let mut peak = 0;
        for id in 0..100 {
            for i in 0..255 {
                let _ = f.insert(key(id), i % 2 * 8, true, &piece, u64::from(id));
                peak = peak.max(f.bytes());
            }
        }
        assert!(peak <= budget, "{peak}");
        // One datagram never holds more than twice the largest datagram.
        assert!(f.pending.values().all(|p| p.bytes <= MAX_DATAGRAM_BYTES));
        // Two pieces each, 100 of them: 13 MB, so the budget evicted.
        let mut g = Fragments::with_budget(budget);
        for id in 0..100 {
            for i in 0..2 {
                let _ = g.insert(key(id), i * 8, true, &piece, u64::from(id));
            }
            assert!(g.bytes() <= budget);
        }
        assert!(g.stats.evicted > 0);
        // A datagram that arrives whole afterwards still reassembles.
        assert_eq!(f.insert(key(999), 0, true, b"ABCDEFGH", 200), Ok(None));
        assert_eq!(
            f.insert(key(999), 8, false, b"IJ", 200),
            Ok(Some(b"ABCDEFGHIJ".to_vec()))
        );
    }

    #[test]
    fn out_of_order_fragments_reassemble() {
        let mut f = Fragments::default();
        assert_eq!(f.insert(key(1), 8, false, b"WORLD!!!", 0), Ok(None));
        assert_eq!(
            f.insert(key(1), 0, true, b"HELLO...", 0),
            Ok(Some(b"HELLO...WORLD!!!".to_vec()))
        );
        assert!(f.is_empty());
    }

    #[test]
    fn overlap_keeps_first_arrival() {
        let mut f = Fragments::default();
        assert_eq!(f.insert(key(2), 0, true, b"AAAAAAAA", 0), Ok(None));
        assert_eq!(
            f.insert(key(2), 0, false, b"BBBBBBBBCC", 0),
            Ok(Some(b"AAAAAAAACC".to_vec()))
        );
    }

    #[test]
    fn timeout_and_bounds() {
        let mut f = Fragments::default();
        assert_eq!(f.insert(key(3), 0, true, b"AAAAAAAA", 0), Ok(None));
        assert_eq!(
            f.insert(
                key(4),
                0,
                true,
                b"AAAAAAAA",
                FRAGMENT_TIMEOUT + 2_000_000_000
            ),
            Ok(None)
        );
        assert_eq!(f.stats.timed_out, 1);
        assert_eq!(f.insert(key(5), 65_530, false, b"too long", 0), Err(()));
        for id in 0..(MAX_PENDING_DATAGRAMS as u32 + 10) {
            let _ = f.insert(key(100 + id), 0, true, b"x", FRAGMENT_TIMEOUT * 3);
        }
        assert_eq!(f.len(), MAX_PENDING_DATAGRAMS);
        assert!(f.stats.evicted >= 10);
    }
}
