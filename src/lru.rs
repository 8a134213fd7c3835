//! Bounded tables evict in bulk: when a table is full, the least recently seen
//! sixteenth goes at once, so eviction costs O(n) once per n/16 insertions.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// The keys of the `n` entries of `map` with the oldest `age` (ties broken by key,
/// so the choice does not depend on hash order).
pub fn oldest<K, V, S, A>(map: &HashMap<K, V, S>, n: usize, age: impl Fn(&V) -> A) -> Vec<K>
where
    K: Copy + Ord + Hash + Eq,
    A: Ord + Copy,
    S: BuildHasher,
{
    let mut by_age: Vec<(A, K)> = map.iter().map(|(k, v)| (age(v), *k)).collect();
    if n < by_age.len() {
        // O(n) partition instead of sorting the whole table.
        by_age.select_nth_unstable(n);
        by_age.truncate(n);
    }
    by_age.sort_unstable();
    by_age.into_iter().map(|(_, k)| k).collect()
}

/// How many entries a full table of `capacity` evicts at once.
pub fn batch(capacity: usize) -> usize {
    (capacity / 16).max(1)
}

/// Hasher for tables keyed by values that are already hashes: fixed, so iteration
/// order is the same on every run.
pub type Prehashed = foldhash::fast::FixedState;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_oldest_deterministically() {
        let m: HashMap<u32, u64> = [(1, 50), (2, 10), (3, 10), (4, 99)].into_iter().collect();
        assert_eq!(oldest(&m, 2, |v| *v), [2, 3]);
        assert_eq!(batch(100_000), 6250);
        assert_eq!(batch(3), 1);
    }
}
