//! One direction of a TCP connection turned into an ordered byte stream (RFC 9293).
//!
//! Sequence numbers are mapped to 64-bit stream offsets relative to the first byte
//! (after the SYN, or the first segment seen on a midstream pickup), so wrap-around
//! is handled once here and nowhere else.
//!
//! Policy (documented for operators, as Zeek and Suricata document theirs):
//! - In-order payload is handed to the consumer straight from the capture buffer.
//! - Out-of-order segments are copied and held, up to [`MAX_BUFFERED_BYTES`] and
//!   [`MAX_BUFFERED_SEGMENTS`] per direction.
//! - Overlaps: bytes already delivered are never changed (first copy wins); a held
//!   segment keeps its bytes against a later one starting at the same offset.
//! - A hole becomes a *gap* (reported, then skipped) when the peer acknowledges data
//!   beyond it (it was received but we never saw it), when the hold buffer is full,
//!   or when the stream ends.
//! - FIN ends the stream once every byte before it was delivered; RST ends it at once.
//!   A FIN the peer never took is undone: data sent from the FIN's position on is
//!   held, and when the peer acknowledges more than the FIN's one sequence number the
//!   stream reopens and delivers it (a FIN spoofed before a request, with a bad
//!   checksum or a TTL that dies before the server, cannot hide the request).

use std::collections::BTreeMap;

use crate::decode::tcp_flags;
use crate::time::Nanos;

/// Bytes of out-of-order data held per direction before the oldest hole is declared
/// a gap. 256 KiB covers a full default Linux receive window of reordering.
pub const MAX_BUFFERED_BYTES: usize = 256 * 1024;
/// Out-of-order segments held per direction (bounds bookkeeping for tiny segments).
pub const MAX_BUFFERED_SEGMENTS: usize = 512;
/// ACKs further than this beyond our position are treated as garbage, not as proof
/// of missing data (a real receive window is at most 1 GiB with window scaling).
const MAX_ACK_JUMP: u64 = 1 << 30;

/// What the stream hands to its consumer.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// The next bytes in order, with the capture time of the packet that carried them.
    Data(&'a [u8], Nanos),
    /// This many bytes were never seen and are skipped.
    Gap(u64),
    /// The stream is over (FIN reached, RST, or the flow ended).
    End,
    /// The FIN that ended the stream was not real (the peer acknowledged data sent
    /// after it): the stream goes on.
    Reopen,
}

/// Where a stream's events go. Any closure taking a [`StreamEvent`] is one; the flow
/// table passes a type whose handler is always inlined, so the per-segment path
/// makes no call for in-order data.
pub trait Events {
    fn event(&mut self, ev: StreamEvent<'_>);
}

impl<F: FnMut(StreamEvent<'_>)> Events for F {
    #[inline(always)]
    fn event(&mut self, ev: StreamEvent<'_>) {
        self(ev)
    }
}

/// Counters a stream updates; summed by the flow table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamStats {
    pub gaps: u64,
    pub gap_bytes: u64,
    pub retransmitted_bytes: u64,
    pub out_of_order_segments: u64,
    pub buffer_overflows: u64,
    /// FINs undone because the peer acknowledged data sent after them.
    pub fins_disregarded: u64,
}

impl StreamStats {
    pub fn add(&mut self, o: &StreamStats) {
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.retransmitted_bytes += o.retransmitted_bytes;
        self.out_of_order_segments += o.out_of_order_segments;
        self.fins_disregarded += o.fins_disregarded;
        self.buffer_overflows += o.buffer_overflows;
    }
}

#[derive(Debug)]
struct Held {
    data: Vec<u8>,
    ts: Nanos,
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct Stream {
    /// Sequence number of stream offset 0; `None` until the first SYN or data.
    base: Option<u32>,
    /// Offset of the next byte the consumer expects.
    next: u64,
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
    /// Offset where the sender's FIN sits.
    fin_at: Option<u64>,
    /// Highest offset the peer acknowledged (beyond `next` while a hole is open).
    acked_to: u64,
    ended: bool,
    /// The stream ended at its FIN (not a RST or the flow's end): data after it is
    /// held until the peer shows whether it took the FIN.
    ended_at_fin: bool,
    /// True when the stream was picked up without seeing its SYN.
    pub midstream: bool,
    pub stats: StreamStats,
}

impl Stream {
    /// Whether the stream has seen its start (SYN or first data).
    pub fn started(&self) -> bool {
        self.base.is_some()
    }

    /// Whether this stream starts just after `seq`: a SYN with that sequence number
    /// opened it (or is its own SYN, retransmitted or captured late).
    pub fn follows_syn(&self, seq: u32) -> bool {
        self.base == Some(seq.wrapping_add(1))
    }

    /// Whether the stream has ended.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether the stream ended at a FIN and holds data sent after it (the FIN may
    /// be undone by the peer's next ACK).
    pub fn holds_after_fin(&self) -> bool {
        self.ended_at_fin && !self.held.is_empty()
    }

    /// Bytes held out of order.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Stream offset of a sequence number, relative to our position (handles wrap).
    fn offset_of(&self, seq: u32) -> Option<u64> {
        let base = self.base?;
        let expected = base.wrapping_add(self.next as u32);
        let delta = seq.wrapping_sub(expected) as i32 as i64;
        let off = self.next as i64 + delta;
        (off >= 0).then_some(off as u64)
    }

    /// Feeds one segment sent in this direction. Inlined into the flow table's
    /// per-segment path (measured: a call here costs 11 M instructions on the bench
    /// capture); the rare after-FIN and reopen paths stay out of line.
    #[inline(always)]
    pub fn segment(
        &mut self,
        seq: u32,
        flags: u8,
        payload: &[u8],
        ts: Nanos,
        out: &mut impl Events,
    ) {
        if self.ended {
            if self.ended_at_fin && !payload.is_empty() {
                self.after_fin(seq, payload, ts);
            }
            return;
        }
        let syn = flags & tcp_flags::SYN != 0;
        if self.base.is_none() {
            if syn {
                self.base = Some(seq.wrapping_add(1));
            } else if !payload.is_empty() || flags & tcp_flags::FIN != 0 {
                self.base = Some(seq);
                self.midstream = true;
            } else {
                return;
            }
        }
        // Data on a SYN (TCP Fast Open) starts one past the SYN's sequence number.
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        if !payload.is_empty() {
            if let Some(off) = self.offset_of(data_seq) {
                self.data_at(off, payload, ts, out);
            } else {
                self.stats.retransmitted_bytes += payload.len() as u64;
            }
        }
        if flags & tcp_flags::FIN != 0
            && let Some(off) = self.offset_of(data_seq)
        {
            self.fin_at = Some(off + payload.len() as u64);
        }
        if flags & tcp_flags::RST != 0 {
            self.finish(out);
            return;
        }
        self.check_fin(out);
    }

    #[inline(always)]
    fn data_at(&mut self, off: u64, payload: &[u8], ts: Nanos, out: &mut impl Events) {
        let end = off + payload.len() as u64;
        if end <= self.next {
            self.stats.retransmitted_bytes += payload.len() as u64;
            return;
        }
        if off <= self.next {
            let skip = (self.next - off) as usize;
            self.stats.retransmitted_bytes += skip as u64;
            out.event(StreamEvent::Data(&payload[skip..], ts));
            self.next = end;
            if !self.held.is_empty() {
                self.drain(out);
            }
            return;
        }
        self.hold(off, payload, ts);
        if self.held_bytes > MAX_BUFFERED_BYTES || self.held.len() > MAX_BUFFERED_SEGMENTS {
            self.stats.buffer_overflows += 1;
            self.skip_to_held(out);
        }
    }

    fn hold(&mut self, off: u64, payload: &[u8], ts: Nanos) {
        self.stats.out_of_order_segments += 1;
        match self.held.get(&off) {
            Some(h) if h.data.len() >= payload.len() => {
                self.stats.retransmitted_bytes += payload.len() as u64;
            }
            Some(h) => {
                // Keep the first copy; hold only the part that extends past it.
                let have = h.data.len();
                self.stats.retransmitted_bytes += have as u64;
                self.hold(off + have as u64, &payload[have..], ts);
            }
            None => {
                self.held_bytes += payload.len();
                self.held.insert(
                    off,
                    Held {
                        data: payload.to_vec(),
                        ts,
                    },
                );
            }
        }
    }

    /// Delivers held segments that have become contiguous.
    fn drain(&mut self, out: &mut impl Events) {
        while let Some(entry) = self.held.first_entry() {
            let off = *entry.key();
            if off > self.next {
                break;
            }
            let h = entry.remove();
            self.held_bytes -= h.data.len();
            let end = off + h.data.len() as u64;
            if end <= self.next {
                self.stats.retransmitted_bytes += h.data.len() as u64;
                continue;
            }
            let skip = (self.next - off) as usize;
            self.stats.retransmitted_bytes += skip as u64;
            out.event(StreamEvent::Data(&h.data[skip..], h.ts));
            self.next = end;
        }
    }

    /// Memory pressure: every hole before held data is declared a gap, so nothing
    /// stays held. Returns whether anything was held.
    pub fn give_up_holes(&mut self, out: &mut impl Events) -> bool {
        let held = !self.held.is_empty();
        while !self.held.is_empty() {
            self.skip_to_held(out);
        }
        held
    }

    /// Declares the hole before the first held segment a gap and moves past it.
    fn skip_to_held(&mut self, out: &mut impl Events) {
        if let Some((&off, _)) = self.held.first_key_value() {
            if off > self.next {
                self.gap(off - self.next, out);
            }
            self.drain(out);
        }
    }

    fn gap(&mut self, len: u64, out: &mut impl Events) {
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        out.event(StreamEvent::Gap(len));
        self.next += len;
    }

    /// The peer acknowledged up to `ack`. A hole below that point will never be
    /// filled (the receiver got bytes the sensor missed), but it is only declared a
    /// gap when this ACK comes after evidence that bytes exist beyond the hole (a held
    /// segment or the FIN): on a span port an ACK can overtake the data it
    /// acknowledges, and a gap declared then would throw that data away.
    #[inline]
    pub fn acked(&mut self, ack: u32, out: &mut impl Events) {
        if self.ended {
            if self.ended_at_fin && !self.held.is_empty() {
                self.reopen_if_acked(ack, out);
            }
            return;
        }
        let Some(acked) = self.offset_of(ack) else {
            return;
        };
        if acked <= self.next || acked - self.next > MAX_ACK_JUMP {
            return;
        }
        self.acked_to = self.acked_to.max(acked);
        self.skip_acked_holes(out);
    }

    /// Declares gaps for holes that lie below the acknowledged point.
    fn skip_acked_holes(&mut self, out: &mut impl Events) {
        loop {
            match self.held.first_key_value() {
                Some((&off, _)) if off > self.next && off <= self.acked_to => {
                    self.skip_to_held(out)
                }
                Some((&off, _)) if off <= self.next => self.drain(out),
                _ => break,
            }
        }
        if let Some(fin) = self.fin_at {
            // The FIN occupies one sequence number that carries no data.
            if fin > self.next && self.acked_to >= fin && self.held.is_empty() {
                self.gap(fin - self.next, out);
            }
        }
        self.check_fin(out);
    }

    #[inline]
    fn check_fin(&mut self, out: &mut impl Events) {
        if self.fin_at.is_some_and(|f| self.next >= f) {
            self.ended = true;
            self.ended_at_fin = true;
            self.held.clear();
            self.held_bytes = 0;
            out.event(StreamEvent::End);
        }
    }

    /// Data sent after the FIN that ended the stream: a real sender sends none, so
    /// it is held (within the usual bounds) until the peer's ACKs tell whether the
    /// FIN was taken.
    #[cold]
    #[inline(never)]
    fn after_fin(&mut self, seq: u32, payload: &[u8], ts: Nanos) {
        let Some(off) = self.offset_of(seq) else {
            return;
        };
        if off < self.next
            || self.held_bytes + payload.len() > MAX_BUFFERED_BYTES
            || self.held.len() >= MAX_BUFFERED_SEGMENTS
        {
            return;
        }
        self.hold(off, payload, ts);
    }

    /// The peer acknowledged past the FIN's one sequence number: it never took the
    /// FIN, it took the data after it. The stream reopens and delivers that data.
    #[cold]
    #[inline(never)]
    fn reopen_if_acked(&mut self, ack: u32, out: &mut impl Events) {
        let (Some(fin), Some(acked)) = (self.fin_at, self.offset_of(ack)) else {
            return;
        };
        if acked <= fin + 1 || acked - fin > MAX_ACK_JUMP {
            return;
        }
        self.ended = false;
        self.ended_at_fin = false;
        self.fin_at = None;
        self.stats.fins_disregarded += 1;
        out.event(StreamEvent::Reopen);
        self.acked_to = self.acked_to.max(acked);
        self.skip_acked_holes(out);
    }

    /// Ends the stream now: held data after holes is delivered with gaps, then End.
    pub fn finish(&mut self, out: &mut impl Events) {
        if self.ended {
            // Data held after a FIN nobody disputed is dropped with the stream.
            self.ended_at_fin = false;
            self.held.clear();
            self.held_bytes = 0;
            return;
        }
        while !self.held.is_empty() {
            self.skip_to_held(out);
        }
        self.ended = true;
        self.ended_at_fin = false;
        self.held.clear();
        self.held_bytes = 0;
        out.event(StreamEvent::End);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: u8 = tcp_flags::SYN;
    const ACK: u8 = tcp_flags::ACK;
    const FIN: u8 = tcp_flags::FIN | tcp_flags::ACK;

    #[derive(Debug, PartialEq)]
    enum Ev {
        D(Vec<u8>),
        G(u64),
        E,
        R,
    }

    fn collect(events: &mut Vec<Ev>) -> impl FnMut(StreamEvent<'_>) + '_ {
        |e| {
            events.push(match e {
                StreamEvent::Data(d, _) => Ev::D(d.to_vec()),
                StreamEvent::Gap(n) => Ev::G(n),
                StreamEvent::End => Ev::E,
                StreamEvent::Reopen => Ev::R,
            })
        }
    }

    fn joined(events: &[Ev]) -> Vec<u8> {
        events
            .iter()
            .flat_map(|e| match e {
                Ev::D(d) => d.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn in_order_after_syn_then_fin() {
        let mut s = Stream::default();
        let mut ev = Vec::new();
        let mut out = collect(&mut ev);
        s.segment(100, SYN, b"", 0, &mut out);
        s.segment(101, ACK, b"hello ", 0, &mut out);
        s.segment(107, FIN, b"world", 0, &mut out);
        drop(out);
        assert_eq!(
            ev,
            vec![Ev::D(b"hello ".to_vec()), Ev::D(b"world".to_vec()), Ev::E]
        );
        assert!(!s.midstream);
    }

    #[test]
    fn reordered_duplicated_and_overlapping_segments() {
        let mut s = Stream::default();
        let mut ev = Vec::new();
        let mut out = collect(&mut ev);
        s.segment(0, SYN, b"", 0, &mut out);
        s.segment(7, ACK, b"3456789", 0, &mut out); // ahead: held
        s.segment(7, ACK, b"34", 0, &mut out); // duplicate of held start
        s.segment(1, ACK, b"abc", 0, &mut out);
        s.segment(1, ACK, b"abc", 0, &mut out); // retransmission
        s.segment(3, ACK, b"cXYZ", 0, &mut out); // overlaps delivered 'c', fills hole
        drop(out);
        assert_eq!(joined(&ev), b"abcXYZ3456789");
        assert_eq!(s.held_bytes(), 0);
        assert!(s.stats.retransmitted_bytes >= 4);
    }

    #[test]
    fn sequence_wraparound() {
        let mut s = Stream::default();
        let mut ev = Vec::new();
        let mut out = collect(&mut ev);
        s.segment(u32::MAX - 2, SYN, b"", 0, &mut out);
        s.segment(u32::MAX - 1, ACK, b"ab", 0, &mut out);
        s.segment(0, ACK, b"cd", 0, &mut out);
        drop(out);
        assert_eq!(joined(&ev), b"abcd");
    }

    #[test]
    fn ack_beyond_hole_declares_gap() {
        let mut s = Stream::default();
        let mut ev = Vec::new();
        let mut out = collect(&mut ev);
        s.segment(0, SYN, b"", 0, &mut out);
        s.segment(1, ACK, b"aa", 0, &mut out);
        s.segment(6, ACK, b"ff", 0, &mut out);
        s.acked(8, &mut out);
        drop(out);
        assert_eq!(
            ev,
            vec![Ev::D(b"aa".to_vec()), Ev::G(3), Ev::D(b"ff".to_vec())]
        );
        assert_eq!(s.stats.gaps, 1);
    }

    #[test]
    fn ack_that_overtakes_its_data_is_not_a_gap() {
        let mut s = Stream::default();
        let mut ev = Vec::new();
        let mut out = collect(&mut ev);
        s.segment(0, SYN, b"", 0, &mut out);
        s.acked(9, &mut out); // the peer's ACK arrived first
        s.segment(1, ACK, b"abcd", 0, &mut out);
        s.segment(5, ACK, b"efgh", 0, &mut out);
        drop(out);
        assert_eq!(ev, vec![Ev::D(b"abcd".to_vec()), Ev::D(b"efgh".to_vec())]);
        assert_eq!(s.stats.gaps, 0);
    }

    #[test]
    fn acked_hole_becomes_a_gap_when_later_data_or_the_fin_shows_up() {
        let mut s = Stream::default();
        let mut ev = Vec::new();
        let mut out = collect(&mut ev);
        s.segment(0, SYN, b"", 0, &mut out);
        s.segment(1, ACK, b"ab", 0, &mut out);
        s.acked(7, &mut out); // may have overtaken bytes 3..6: not yet a gap
        s.segment(7, ACK, b"gh", 0, &mut out);
        s.segment(9, FIN, b"", 0, &mut out);
        s.acked(10, &mut out); // the hole outlived a later ACK: bytes 3..6 are lost
        drop(out);
        assert_eq!(
            ev,
            vec![
                Ev::D(b"ab".to_vec()),
                Ev::G(4),
                Ev::D(b"gh".to_vec()),
                Ev::E
            ]
        );

        // The last bytes before the FIN are missing: the FIN proves they existed.
        let mut s = Stream::default();
        let mut ev = Vec::new();
        let mut out = collect(&mut ev);
        s.segment(0, SYN, b"", 0, &mut out);
        s.segment(1, ACK, b"ab", 0, &mut out);
        s.segment(6, FIN, b"", 0, &mut out);
        s.acked(7, &mut out);
        drop(out);
        assert_eq!(ev, vec![Ev::D(b"ab".to_vec()), Ev::G(3), Ev::E]);
    }

    #[test]
    fn midstream_pickup_and_finish_flushes_holes() {
        let mut s = Stream::default();
        let mut ev = Vec::new();
        let mut out = collect(&mut ev);
        s.segment(5000, ACK, b"mid", 0, &mut out);
        s.segment(5010, ACK, b"later", 0, &mut out);
        s.finish(&mut out);
        drop(out);
        assert!(s.midstream);
        assert_eq!(
            ev,
            vec![
                Ev::D(b"mid".to_vec()),
                Ev::G(7),
                Ev::D(b"later".to_vec()),
                Ev::E
            ]
        );
    }

    #[test]
    fn hold_buffer_is_bounded() {
        let mut s = Stream::default();
        let mut ev = Vec::new();
        let mut out = collect(&mut ev);
        s.segment(0, SYN, b"", 0, &mut out);
        let chunk = vec![b'x'; 1000];
        for i in 0..400u32 {
            s.segment(1001 + i * 1000, ACK, &chunk, 0, &mut out);
        }
        drop(out);
        assert!(s.held_bytes() <= MAX_BUFFERED_BYTES);
        assert!(s.stats.buffer_overflows >= 1);
        assert_eq!(ev.first(), Some(&Ev::G(1000)));
    }
}
