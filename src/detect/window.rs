//! Time windows over packet time: bounded queues of recent events that forget what
//! is older than the window.

use std::collections::{HashMap, VecDeque};

use crate::time::Nanos;

/// How many whole intervals of `span` that began at `start` have ended by `now` (0
/// when `now` is earlier). Division, not a loop: no timestamp can make it spin, and
/// nothing overflows.
pub fn intervals_ended(start: Nanos, span: Nanos, now: Nanos) -> u64 {
    now.saturating_sub(start) / span.max(1)
}

/// Events of the last `span` nanoseconds, at most `cap` of them (the oldest go first).
#[derive(Debug, Clone)]
pub struct Window<T> {
    span: Nanos,
    cap: usize,
    items: VecDeque<(Nanos, T)>,
}

impl<T> Window<T> {
    pub fn new(span: Nanos, cap: usize) -> Self {
        Window {
            span,
            cap,
            items: VecDeque::new(),
        }
    }

    /// Adds an event at `ts` and forgets everything older than the window.
    pub fn push(&mut self, ts: Nanos, item: T) {
        self.expire(ts);
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back((ts, item));
    }

    /// Forgets events older than `now - span`.
    pub fn expire(&mut self, now: Nanos) {
        let horizon = now.saturating_sub(self.span);
        while self.items.front().is_some_and(|(t, _)| *t < horizon) {
            self.items.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Heap bytes held (what the memory budget counts).
    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<(Nanos, T)>()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(_, t)| t)
    }

    /// Time of the oldest event still in the window.
    pub fn first_ts(&self) -> Option<Nanos> {
        self.items.front().map(|(t, _)| *t)
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// Keys seen in the last `span` nanoseconds with how often: distinct counts in O(1)
/// per event however large the window.
#[derive(Debug, Clone)]
pub struct CountingWindow {
    events: Window<u64>,
    counts: HashMap<u64, u32, super::Prehashed>,
}

impl CountingWindow {
    pub fn new(span: Nanos, cap: usize) -> Self {
        CountingWindow {
            events: Window::new(span, cap),
            counts: HashMap::default(),
        }
    }

    pub fn push(&mut self, ts: Nanos, key: u64) {
        self.expire(ts);
        if self.events.items.len() == self.events.cap
            && let Some((_, k)) = self.events.items.pop_front()
        {
            self.forget(k);
        }
        self.events.items.push_back((ts, key));
        *self.counts.entry(key).or_default() += 1;
    }

    pub fn expire(&mut self, now: Nanos) {
        let horizon = now.saturating_sub(self.events.span);
        while self.events.items.front().is_some_and(|(t, _)| *t < horizon) {
            if let Some((_, k)) = self.events.items.pop_front() {
                self.forget(k);
            }
        }
    }

    fn forget(&mut self, k: u64) {
        if let Some(c) = self.counts.get_mut(&k) {
            *c -= 1;
            if *c == 0 {
                self.counts.remove(&k);
            }
        }
    }

    /// Events in the window.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Heap bytes held: the events, and the counts' table (a control byte an entry).
    pub fn heap_bytes(&self) -> usize {
        self.events.heap_bytes() + self.counts.capacity() * (std::mem::size_of::<(u64, u32)>() + 1)
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Distinct keys in the window.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// Whether `key` is in the window.
    pub fn contains(&self, key: u64) -> bool {
        self.counts.contains_key(&key)
    }

    /// Keys with their counts.
    pub fn counts(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.counts.iter().map(|(k, c)| (*k, *c))
    }

    /// Keys in arrival order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = u64> + '_ {
        self.events.items.iter().map(|(_, k)| *k)
    }
}

/// Distinct values among `items` (small sets: sort and count).
pub fn distinct<I: Iterator<Item = u64>>(items: I) -> usize {
    let mut v: Vec<u64> = items.collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// Mean and variance tracked with exponential weighting (Welford-style EWMA):
/// `alpha` is the weight of each new sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ewma {
    pub mean: f64,
    pub var: f64,
    pub samples: u64,
}

impl Ewma {
    /// Forgets an average that is not a number (or a negative one: counts are not):
    /// a corrupt state file. Returns whether it did.
    pub fn sanitize(&mut self) -> bool {
        let ok =
            self.mean.is_finite() && self.var.is_finite() && self.mean >= 0.0 && self.var >= 0.0;
        if !ok {
            *self = Ewma::default();
        }
        !ok
    }

    pub fn update(&mut self, x: f64, alpha: f64) {
        if self.samples == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            let d = x - self.mean;
            self.mean += alpha * d;
            self.var = (1.0 - alpha) * (self.var + alpha * d * d);
        }
        self.samples = self.samples.saturating_add(1);
    }

    pub fn std(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn intervals_end_by_division_even_at_the_end_of_time() {
        assert_eq!(intervals_ended(u64::MAX - 5, 10, u64::MAX), 0);
        assert_eq!(intervals_ended(u64::MAX - 25, 10, u64::MAX), 2);
        assert_eq!(intervals_ended(0, 10, u64::MAX), u64::MAX / 10);
        assert_eq!(intervals_ended(100, 10, 5), 0);
        assert_eq!(intervals_ended(0, 0, 5), 5);
    }

    #[test]
    fn window_forgets_old_events_and_is_bounded() {
        let mut w = Window::new(10 * S, 3);
        w.push(S, 1);
        w.push(2 * S, 2);
        w.push(12 * S, 3);
        assert_eq!(w.iter().copied().collect::<Vec<_>>(), [2, 3]);
        w.push(12 * S, 4);
        w.push(12 * S, 5);
        assert_eq!(w.len(), 3);
        assert_eq!(w.iter().copied().collect::<Vec<_>>(), [3, 4, 5]);
    }

    #[test]
    fn ewma_converges_to_mean_and_spread() {
        let mut e = Ewma::default();
        for i in 0..2000 {
            e.update(if i % 2 == 0 { 8.0 } else { 12.0 }, 0.05);
        }
        assert!((e.mean - 10.0).abs() < 0.5, "{e:?}");
        assert!((e.std() - 2.0).abs() < 0.3, "{e:?}");
    }

    #[test]
    fn counting_window_tracks_distinct_keys_as_events_expire() {
        let mut w = CountingWindow::new(10 * S, 4);
        w.push(S, 7);
        w.push(2 * S, 7);
        w.push(3 * S, 8);
        assert_eq!((w.len(), w.distinct()), (3, 2));
        w.push(12 * S, 9); // the event at 1 s expires
        assert_eq!((w.len(), w.distinct()), (3, 3));
        w.push(12 * S, 9);
        w.push(12 * S, 9); // cap 4: the oldest (7 at 2 s) goes
        assert_eq!((w.len(), w.distinct()), (4, 2));
    }

    #[test]
    fn distinct_counts() {
        assert_eq!(distinct([3, 1, 3, 2, 1].into_iter()), 3);
    }
}
