//! Several sensors' records merged on packet time with a bounded lateness
//! (`apiwatch detect --max-lateness`).
//!
//! Each sensor publishes in its own order with a packet clock that never goes back
//! (`Meta::emitted`). A record is released, in (clock, stream sequence) order, once
//! every sensor still in step has published past its clock, or once the newest
//! clock seen is `lateness` past it, whichever comes first: a sensor that falls
//! quiet or behind holds the others back by `lateness` of packet time at most, and
//! one that is further behind stops counting (its records are then late, taken as
//! they come, and counted). Release depends only on the records read so far, in
//! the stream's order, so every detector releases the same records in the same
//! order; with one sensor that is exactly the sensor's own order.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use crate::http::Exchange;
use crate::time::Nanos;

use super::Meta;

/// A record waiting to be released.
#[derive(Debug)]
pub struct Record {
    /// The stream sequence it was stored at.
    pub seq: u64,
    pub meta: Meta,
    pub ex: Box<Exchange>,
}

impl Record {
    fn key(&self) -> (Nanos, u64) {
        (self.meta.emitted, self.seq)
    }
}

impl PartialEq for Record {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}

impl Eq for Record {}

impl PartialOrd for Record {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Record {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key().cmp(&o.key())
    }
}

/// The merge of every sensor's records.
#[derive(Debug)]
pub struct Merger {
    lateness: Nanos,
    waiting: BinaryHeap<Reverse<Record>>,
    /// Sensors in step: the clock each last published.
    sensors: HashMap<u64, Nanos>,
    /// The newest clock seen.
    newest: Nanos,
    /// The clock of the last record released.
    released: Nanos,
    /// Records released behind one released before them (later than the bound).
    pub late: u64,
    /// Records released before one that was read ahead of them (the merge at work).
    pub reordered: u64,
    /// The highest stream sequence released.
    last_seq: u64,
}

impl Merger {
    pub fn new(lateness: Nanos) -> Merger {
        Merger {
            lateness,
            waiting: BinaryHeap::new(),
            sensors: HashMap::new(),
            newest: 0,
            released: 0,
            late: 0,
            reordered: 0,
            last_seq: 0,
        }
    }

    /// A sensor's clock reached `at` (with a record or alone, in a clock record).
    pub fn clock(&mut self, sensor: u64, at: Nanos) {
        let c = self.sensors.entry(sensor).or_insert(at);
        *c = (*c).max(at);
        if at > self.newest {
            self.newest = at;
            // A sensor more than the bound behind no longer holds anyone back.
            let floor = self.newest.saturating_sub(self.lateness);
            self.sensors.retain(|_, c| *c >= floor);
        }
    }

    pub fn push(&mut self, r: Record) {
        self.clock(r.meta.sensor, r.meta.emitted);
        self.waiting.push(Reverse(r));
    }

    /// Clock up to which every record is released.
    pub fn watermark(&self) -> Nanos {
        let in_step = self.sensors.values().copied().min().unwrap_or(0);
        in_step.max(self.newest.saturating_sub(self.lateness))
    }

    /// The next record due, if any.
    pub fn pop(&mut self) -> Option<Record> {
        let w = self.watermark();
        if self.waiting.peek().is_some_and(|r| r.0.meta.emitted <= w) {
            return self.take();
        }
        None
    }

    /// The next record whatever the watermark (the input has ended).
    pub fn take(&mut self) -> Option<Record> {
        let Reverse(r) = self.waiting.pop()?;
        if r.meta.emitted < self.released {
            self.late += 1;
        }
        if r.seq < self.last_seq {
            self.reordered += 1;
        }
        self.last_seq = self.last_seq.max(r.seq);
        self.released = self.released.max(r.meta.emitted);
        Some(r)
    }

    /// The lowest stream sequence still waiting (everything before it that was read
    /// has been released).
    pub fn oldest_waiting(&self) -> Option<u64> {
        self.waiting.iter().map(|r| r.0.seq).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, sensor: u64, emitted: Nanos) -> Record {
        Record {
            seq,
            meta: Meta {
                partition: 0,
                sensor,
                emitted,
            },
            ex: Box::new(Exchange::vacant()),
        }
    }

    fn drain(m: &mut Merger) -> Vec<u64> {
        std::iter::from_fn(|| m.pop()).map(|r| r.seq).collect()
    }

    const S: Nanos = 1_000_000_000;

    #[test]
    fn one_sensor_keeps_its_own_order() {
        let mut m = Merger::new(2 * S);
        let mut out = Vec::new();
        for (seq, t) in [(1, 5), (2, 5), (3, 9), (4, 9), (5, 30)] {
            m.push(rec(seq, 7, t * S));
            out.extend(drain(&mut m));
        }
        assert_eq!(out, [1, 2, 3, 4, 5]);
        assert_eq!((m.late, m.reordered), (0, 0));
    }

    #[test]
    fn two_sensors_merge_on_their_clocks() {
        let mut m = Merger::new(2 * S);
        // B is known (a clock record) before A's first record: A waits for it.
        m.clock(2, 9 * S);
        let mut out = Vec::new();
        let mut steps = Vec::new();
        for (seq, sensor, t) in [(1, 1, 10), (2, 1, 11), (3, 2, 10), (4, 2, 12), (5, 1, 12)] {
            m.push(rec(seq, sensor, t * S));
            let now = drain(&mut m);
            steps.push(now.len());
            out.extend(now);
        }
        assert_eq!(out, [1, 3, 2, 4, 5]);
        assert_eq!(steps, [0, 0, 2, 1, 2]);
        assert_eq!((m.late, m.reordered), (0, 1));
        // A sensor not seen yet cannot hold anyone back: its first record is late.
        m.push(rec(6, 3, 5 * S));
        assert_eq!(drain(&mut m), [6]);
        assert_eq!(m.late, 1);
    }

    #[test]
    fn a_quiet_sensor_holds_the_others_back_by_the_bound_only() {
        let mut m = Merger::new(2 * S);
        m.push(rec(1, 2, 10 * S)); // B once, then quiet
        let mut out = drain(&mut m);
        for (seq, t) in [(2, 10), (3, 11), (4, 12), (5, 13)] {
            m.push(rec(seq, 1, t * S));
            out.extend(drain(&mut m));
        }
        // At A's 13 s everything up to 11 s is out; B no longer counts.
        assert_eq!(out, [1, 2, 3, 4, 5]);
        // B comes back 5 s behind: taken as it comes, counted late.
        m.push(rec(6, 2, 8 * S));
        assert_eq!(drain(&mut m), [6]);
        assert_eq!(m.late, 1);
        // In step again (B's clock record at 19 s): A's record at 20 s waits for B,
        // B's at 19.5 s goes first, B's clock record at 21 s releases A's.
        m.clock(2, 19 * S);
        m.push(rec(7, 1, 20 * S));
        assert_eq!(drain(&mut m), Vec::<u64>::new());
        m.push(rec(8, 2, 19 * S + S / 2));
        assert_eq!(drain(&mut m), [8]);
        assert_eq!(m.oldest_waiting(), Some(7));
        m.clock(2, 21 * S);
        assert_eq!(drain(&mut m), [7]);
        assert_eq!(m.oldest_waiting(), None);
    }
}
