//! Read-ahead of a mapped capture file, spread over the work done on what was read.
//!
//! Replaying a mapped capture on one core brings every byte of the file from memory
//! through that core, and the work per packet is uneven: most packets (acknowledgements,
//! body segments) take tens of nanoseconds, the few that carry an HTTP head or finish an
//! exchange take microseconds. Hints given only as each record is read (the reader keeps
//! the file asked for [`AHEAD`] bytes ahead) come in bursts during runs of light
//! packets, where they queue behind memory, while the heavy packets leave memory idle.
//! So the stages with heavy work per head or exchange call [`during_work`] at a few
//! points: each call asks for a few more lines, up to [`MAX_AHEAD`] bytes ahead of the
//! reader, and the file streams in while they compute. Measured on a 2.8 GB capture
//! (docs/performance.md): 6 % off a whole run's wall time.
//!
//! The state is per thread: the reader publishes its mapping and position on the thread
//! that reads. Where no mapped file is read on the calling thread (workers fed by a
//! reader thread, live capture, streamed input), [`during_work`] does nothing.
//!
//! Hints are `prefetcht2` (into L2): the stream ahead stays out of L1, where the
//! flows' and clients' state is; a non-temporal hint would be evicted before use.

use std::cell::Cell;

/// How far ahead of the reader the file is always asked for, in bytes.
pub const AHEAD: usize = 8192;
/// How far ahead the hints given during work may go, in bytes.
pub const MAX_AHEAD: usize = 64 * 1024;
/// Cache lines asked for per [`during_work`] call.
const LINES_PER_CALL: usize = 16;
/// Cache lines asked for per step (one block, unrolled).
const BLOCK: usize = 256;

#[derive(Clone, Copy)]
struct Stream {
    /// Address of the mapping (0: none on this thread).
    base: usize,
    /// Offsets below this were asked for.
    frontier: usize,
    /// Hints during work stop here (`MAX_AHEAD` past the reader, or the file's end).
    limit: usize,
}

const NONE: Stream = Stream {
    base: 0,
    frontier: 0,
    limit: 0,
};

thread_local! {
    static STREAM: Cell<Stream> = const { Cell::new(NONE) };
}

/// A mapped file starts being read on this thread.
pub(crate) fn start(bytes: &[u8]) {
    STREAM.set(Stream {
        base: bytes.as_ptr().expose_provenance(),
        ..NONE
    });
}

/// The mapped file `bytes` is no longer read on this thread.
pub(crate) fn stop(bytes: &[u8]) {
    if STREAM.get().base == bytes.as_ptr().expose_provenance() {
        STREAM.set(NONE);
    }
}

/// The reader read the record of `bytes` that ends at `to`: every line up to [`AHEAD`]
/// bytes past it that was not asked for yet is.
#[inline]
pub(crate) fn after_record(bytes: &[u8], to: usize) {
    let mut s = STREAM.get();
    if s.base != bytes.as_ptr().expose_provenance() {
        return;
    }
    let len = bytes.len();
    s.frontier = hint(s.base, s.frontier, to.saturating_add(AHEAD).min(len));
    s.limit = to.saturating_add(MAX_AHEAD).min(len);
    STREAM.set(s);
}

/// Heavy work is about to be done on this thread: asks for a few more lines of the
/// file being read here, if any, while the work keeps the core busy.
#[inline]
pub fn during_work() {
    let mut s = STREAM.get();
    if s.frontier >= s.limit {
        return;
    }
    let to = s.limit.min(s.frontier + 64 * LINES_PER_CALL);
    s.frontier = hint(s.base, s.frontier, to);
    STREAM.set(s);
}

/// How far the hints have gone into the file read on this thread (0: none read).
#[cfg(test)]
pub(crate) fn frontier() -> usize {
    STREAM.get().frontier
}

/// Asks for the lines of the mapping at `base` from offset `from` on until `to` is
/// covered, a block at a time; returns where the hints stopped (`to` rounded up to
/// a block, or `from` when it was already there).
#[inline]
fn hint(base: usize, from: usize, to: usize) -> usize {
    let mut at = from;
    #[cfg(target_arch = "x86_64")]
    while at < to {
        let p = std::ptr::with_exposed_provenance::<u8>(base).wrapping_add(at);
        for line in 0..BLOCK / 64 {
            // SAFETY: a prefetch is a hint that reads nothing into the program and
            // never faults, whatever the address (the last block may reach up to 255
            // bytes past the file, or the mapping may be gone); the pointer is only
            // formed with `wrapping_add`, never dereferenced.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T2 }>(
                    p.wrapping_add(64 * line).cast(),
                )
            };
        }
        at += BLOCK;
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        at = at.max(to);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_follows_the_reader_and_work_moves_it_on_up_to_the_limit() {
        let file = vec![0u8; 200_000];
        start(&file);
        after_record(&file, 1000);
        let s = STREAM.get();
        assert!(s.frontier >= 1000 + AHEAD && s.frontier < 1000 + AHEAD + BLOCK);
        assert_eq!(s.limit, 1000 + MAX_AHEAD);
        // Work moves the frontier on a call at a time, never past the limit.
        let before = s.frontier;
        during_work();
        assert_eq!(STREAM.get().frontier, before + 64 * LINES_PER_CALL);
        for _ in 0..1000 {
            during_work();
        }
        assert!(STREAM.get().frontier >= STREAM.get().limit);
        assert!(STREAM.get().frontier < STREAM.get().limit + BLOCK);
        // The reader catching up does not ask again for what work asked for.
        let f = STREAM.get().frontier;
        after_record(&file, 2000);
        assert_eq!(STREAM.get().frontier, f);
        // Near the end, nothing past the file is aimed at beyond the last block.
        after_record(&file, file.len());
        assert!(STREAM.get().limit == file.len());
        assert!(STREAM.get().frontier < file.len() + BLOCK);
        during_work();
        assert!(STREAM.get().frontier < file.len() + BLOCK);
        // Another file, or none: nothing is asked for on its behalf.
        let other = vec![0u8; 10];
        after_record(&other, 5);
        assert_eq!(STREAM.get().limit, file.len());
        stop(&file);
        during_work();
        assert_eq!(STREAM.get().frontier, 0);
    }
}
