//! Message size statistics of a report: how many messages, the smallest, the largest, the
//! mean, and how many fall in each decade of size from 1 KiB to 10 MiB.
//!
//! It only adds sizes up (every `from` record counts, with the size `crate::query::size` gives
//! it: 0 when it has none); the report decides which records count.

use serde::Serialize;

/// The upper bounds (exclusive) of the buckets; the last bucket has none.
pub const BUCKET_BOUNDS: [u64; 5] = [1 << 10, 10 << 10, 100 << 10, 1 << 20, 10 << 20];

/// Sizes seen so far (mergeable).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SizeTally {
    messages: u64,
    min: Option<u64>,
    max: u64,
    total: u128,
    buckets: [u64; BUCKET_BOUNDS.len() + 1],
}

impl SizeTally {
    /// One message of `bytes`.
    pub fn add(&mut self, bytes: u64) {
        self.messages += 1;
        self.min = Some(self.min.map_or(bytes, |m| m.min(bytes)));
        self.max = self.max.max(bytes);
        self.total += u128::from(bytes);
        let bucket = BUCKET_BOUNDS.iter().take_while(|&&b| bytes >= b).count();
        self.buckets[bucket] += 1;
    }

    /// Another thread's sizes.
    pub fn merge(&mut self, other: &SizeTally) {
        self.messages += other.messages;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = self.max.max(other.max);
        self.total += other.total;
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
    }

    /// The statistics, as the report's JSON has them.
    pub fn answer(&self) -> MessageSizes {
        let seen = self.messages > 0;
        MessageSizes {
            messages: self.messages,
            min: self.min,
            max: seen.then_some(self.max),
            mean: seen.then(|| self.total as f64 / self.messages as f64),
            buckets: (0..self.buckets.len())
                .map(|i| SizeBucket {
                    up_to: BUCKET_BOUNDS.get(i).copied(),
                    count: self.buckets[i],
                })
                .collect(),
        }
    }
}

/// The message size section of a report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MessageSizes {
    /// Messages accepted (`from` records).
    pub messages: u64,
    /// The smallest size; none without messages.
    pub min: Option<u64>,
    /// The largest size; none without messages.
    pub max: Option<u64>,
    /// The mean size; none without messages.
    pub mean: Option<f64>,
    /// How many messages are smaller than each bound (and not smaller than the one before).
    pub buckets: Vec<SizeBucket>,
}

/// Messages whose size is below `up_to` and at or above the previous bucket's.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SizeBucket {
    /// The bound in bytes, exclusive; none for the last bucket.
    pub up_to: Option<u64>,
    /// Messages in the bucket.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fall_in_their_decade_and_merge() {
        let mut a = SizeTally::default();
        for bytes in [0, 1023, 1024, 5_000_000] {
            a.add(bytes);
        }
        let mut b = SizeTally::default();
        b.add(20 << 20);
        a.merge(&b);
        let answer = a.answer();
        assert_eq!(
            (answer.messages, answer.min, answer.max),
            (5, Some(0), Some(20 << 20))
        );
        let counts: Vec<u64> = answer.buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 1, 0, 0, 1, 1]);
        assert_eq!(answer.buckets[5].up_to, None);
        let empty = SizeTally::default().answer();
        assert_eq!((empty.min, empty.max, empty.mean), (None, None, None));
    }
}
