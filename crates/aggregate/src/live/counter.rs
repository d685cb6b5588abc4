//! One bucket's counts for one dimension, with at most `2 × max_keys` distinct keys.
//!
//! This module owns the bounded counting (lossy counting / Space-Saving style): keys are counted
//! exactly until the counter holds `2 × max_keys` of them; then it is pruned to the `max_keys`
//! largest (ties: the smaller key stays), and the largest count pruned becomes the counter's
//! `floor`. A key first seen after a prune starts at `floor + 1` with `error = floor`.
//!
//! The invariant it keeps, for every key `k` and its true number of records `t` in this bucket:
//! - `k` held with `count`, `error`: `count - error <= t <= count`;
//! - `k` not held: `t <= floor`.
//!
//! Why: a key pruned had a count (an upper bound of its true count) of at most the floor it
//! leaves behind, and floors only grow; a key coming back starts at that floor plus its new
//! records, so its count stays an upper bound, and it has at least `count - floor` records.
//!
//! Adding a key already held allocates nothing (looked up by `&str`); a new key allocates its
//! boxed copy; a prune costs O(max_keys) once per `max_keys` new keys, O(1) amortized. It never
//! knows about time or windows (that is `super`), and never drops a record from `records`.

use std::collections::HashMap;

/// A key's count and its maximum overcount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    /// An upper bound of the key's records (exact when `error` is 0).
    pub count: u64,
    /// How much `count` may exceed the true number.
    pub error: u64,
}

/// Room the counter reuses while pruning (shared by all the counters of a `LiveTop`).
pub(super) type Scratch = Vec<(Box<str>, Tally)>;

/// The counts of one dimension in one bucket.
#[derive(Debug, Default)]
pub(super) struct Counter {
    counts: HashMap<Box<str>, Tally>,
    /// The largest count ever pruned: the most a key not held may have had; 0 until a prune.
    floor: u64,
    /// Records counted, exactly.
    records: u64,
}

impl Counter {
    /// Counts one record under `key`. `max_keys` is at least 1.
    pub fn add(&mut self, key: &str, max_keys: usize, scratch: &mut Scratch) {
        self.records += 1;
        if let Some(tally) = self.counts.get_mut(key) {
            tally.count += 1;
            return;
        }
        let tally = Tally {
            count: self.floor + 1,
            error: self.floor,
        };
        self.counts.insert(key.into(), tally);
        if self.counts.len() >= max_keys.saturating_mul(2) {
            self.prune(max_keys, scratch);
        }
    }

    /// Keeps the `max_keys` largest counts (the smaller key wins a tie, so that the result does
    /// not depend on hashing) and raises the floor to the largest count dropped.
    fn prune(&mut self, max_keys: usize, scratch: &mut Scratch) {
        if self.counts.len() <= max_keys {
            return;
        }
        scratch.clear();
        scratch.extend(self.counts.drain());
        let order = |a: &(Box<str>, Tally), b: &(Box<str>, Tally)| {
            b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0))
        };
        // After this, scratch[..max_keys] are the largest and scratch[max_keys] is the largest of
        // the rest (len > max_keys, checked above).
        let (_, first_dropped, _) = scratch.select_nth_unstable_by(max_keys, order);
        self.floor = self.floor.max(first_dropped.1.count);
        self.counts.extend(scratch.drain(..max_keys));
        scratch.clear();
    }

    /// Forgets everything (the bucket is reused for a new time); keeps the table's capacity.
    pub fn clear(&mut self) {
        self.counts.clear();
        self.floor = 0;
        self.records = 0;
    }

    /// The most a key not held may have had in this bucket; 0 when the counts are exact.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Whether the counter was ever pruned since it was last cleared.
    pub fn is_pruned(&self) -> bool {
        // A prune drops at least one key with a count of at least 1.
        self.floor > 0
    }

    /// Records counted since the counter was last cleared.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Distinct keys held.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// The keys held and their tallies, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Tally)> {
        self.counts.iter().map(|(key, tally)| (&**key, *tally))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The counter's bounds against exact counts. Never involves time.

    use super::*;

    #[test]
    fn exact_below_the_cap() {
        let mut counter = Counter::default();
        let mut scratch = Scratch::new();
        for key in ["a", "b", "a", "c", "a", "b"] {
            counter.add(key, 2, &mut scratch);
        }
        // 3 keys < 2 × 2: no prune.
        let mut held: Vec<_> = counter.iter().map(|(k, t)| (k.to_owned(), t)).collect();
        held.sort_by(|a, b| a.0.cmp(&b.0));
        let tally = |count| Tally { count, error: 0 };
        assert_eq!(
            held,
            [
                ("a".to_owned(), tally(3)),
                ("b".to_owned(), tally(2)),
                ("c".to_owned(), tally(1))
            ]
        );
        assert!(!counter.is_pruned());
        assert_eq!(counter.records(), 6);
    }

    #[test]
    fn prune_keeps_the_largest_and_bounds_every_key() {
        let max_keys = 3;
        let mut counter = Counter::default();
        let mut scratch = Scratch::new();
        let mut truth: HashMap<String, u64> = HashMap::new();
        // A pseudo-random stream over 40 keys, skewed to the small ones.
        let mut state = 7u64;
        for _ in 0..2000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (state >> 33) % 1000;
            let key = format!("k{}", r * r / 25_000);
            counter.add(&key, max_keys, &mut scratch);
            *truth.entry(key).or_default() += 1;
            assert!(counter.len() < 2 * max_keys);
        }
        assert!(counter.is_pruned());
        assert_eq!(counter.records(), 2000);
        for (key, true_count) in &truth {
            match counter.iter().find(|(k, _)| k == key) {
                Some((_, tally)) => {
                    assert!(tally.count - tally.error <= *true_count, "{key}");
                    assert!(*true_count <= tally.count, "{key}");
                }
                None => assert!(*true_count <= counter.floor(), "{key}"),
            }
        }
        // The heaviest key is held.
        let heaviest = truth.iter().max_by_key(|(_, c)| **c).unwrap().0;
        assert!(counter.iter().any(|(k, _)| k == heaviest));
        counter.clear();
        assert_eq!(
            (counter.len(), counter.floor(), counter.records()),
            (0, 0, 0)
        );
    }
}
