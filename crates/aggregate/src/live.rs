//! The service's live top-N: sliding windows of event time over bounded counters.
//!
//! This module owns when a record counts (its event time against the newest event time seen),
//! the buckets that hold the counts, and how they are merged into an answer. It never reads the
//! clock (the service may be backfilling: "now" is the newest event time seen, and only moves
//! forward), never does I/O, and never holds more than its documented number of keys.
//!
//! # Time
//! For each window there is a ring of buckets aligned on event time (Unix seconds, so aligned
//! to UTC whole minutes/hours): 5 one-minute buckets for `5m`, 12 five-minute buckets for `1h`,
//! 24 one-hour buckets for `24h`. Each bucket holds one counter per [`Dimension`]. A record
//! is counted in the bucket of its time in every ring that still covers that time; one older
//! than a ring's span is not counted there (a late record may thus be in `24h` but not in `5m`).
//! A record newer than any before moves the rings on, and the buckets that fall out are cleared
//! at once (their keys freed), so that no memory is held for time no answer can ask about.
//! "Now" never moves back: one record stamped far in the future empties every window until the
//! records catch up with it (the parser's year rule keeps stamps at most a day after the
//! reference instant).
//!
//! An answer covers the ring's buckets: `from` is the start of the oldest, `until` the end of
//! the current one (the bucket of the newest event time). So a window always spans exactly its
//! length, `until` lies at most one bucket width after the newest event time, and a record
//! stays in it for between `length - width` and `length` after the newest time passes it (50 s
//! to 5 min for `5m`, 55 to 60 min for `1h`, 23 to 24 h for `24h`).
//!
//! # Bounded memory, and what `approximate` means
//! Each counter holds at most `2 × max_keys` distinct keys (the private module `live/counter.rs`
//! says why its bounds hold): when a bucket reaches `2 × max_keys` keys in a dimension it is pruned to
//! the `max_keys` largest, and the largest count pruned becomes its `floor`; keys first seen
//! after that start at the floor. So in the worst case the whole structure holds
//! `(5 + 12 + 24) buckets × 6 dimensions × 2 × max_keys` keys = `492 × max_keys` keys, each a
//! boxed copy of the key (its length rounded up plus the allocator's overhead) and up to about
//! 55 bytes of hash table: about 100 bytes a key for 30-byte keys, so with `max_keys = 1_000`
//! at most about 50 MB, with `max_keys = 10_000` about 500 MB. Typically far less: a bucket only
//! grows to `2 × max_keys` keys when that many distinct keys arrive within its width. A
//! counter's table keeps its capacity when its bucket is reused for a newer time.
//!
//! Merging buckets for an answer sums counts and errors, with one refinement over summing alone:
//! a key missing from a pruned bucket may have had up to that bucket's floor there, so its count
//! and error also get that floor. With it, every entry's `count` is an upper bound of its true
//! number in the window and `count - error` a lower bound — the guarantee of Space-Saving — even
//! when the key was pruned from some buckets and kept in others. `approximate` is true when any
//! bucket of the window was pruned in that dimension; `records` stays exact regardless.
//!
//! # Cost
//! [`LiveTop::add`] finds the record's key in each dimension of its kind (4 for `from`, 2 for
//! `to`) and counts it in each of the 3 rings: 12 or 6 hash look-ups of the key, no allocation
//! for a key already held, amortized O(1) for pruning and for moving the rings on.
//! [`LiveTop::top`] is O(keys held in the window's buckets) plus sorting the first `n`.
//! Measured (release build, one core of a small 2-core machine): about 0.25 µs per record when
//! most keys are already held, about 1 µs when nearly every record brings new keys; `top` takes
//! about 1 to 35 ms with 100 000 to 430 000 keys held. The tables hash with the standard
//! library's keyed SipHash on purpose: the keys are addresses anyone can send mail from, and a
//! fixed hash would let them be chosen to collide.

mod counter;
/// A record's keys and event time, owned (see [`LiveTop::pending`]).
#[derive(Clone, Debug)]
pub struct PendingRecord {
    at: i64,
    keys: Vec<(Dimension, String)>,
}

/// Counts `key` of `dimension` at `at` in every ring that has a bucket for it.
fn count(
    rings: &mut [Ring],
    scratch: &mut Scratch,
    max_keys: usize,
    at: i64,
    dimension: Dimension,
    key: &str,
) {
    for ring in rings.iter_mut() {
        if let Some(bucket) = ring.bucket_mut(at) {
            bucket.counters[dimension.index()].add(key, max_keys, scratch);
        }
    }
}

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use maillog_parse::Record;
use serde::Serialize;

use crate::key::Dimension;
use counter::{Counter, Scratch};

/// The span an answer covers, sliding over event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LiveWindow {
    /// The last 5 minutes (`5m`): 5 one-minute buckets.
    FiveMinutes,
    /// The last hour (`1h`): 12 five-minute buckets.
    Hour,
    /// The last 24 hours (`24h`): 24 one-hour buckets.
    Day,
}

impl LiveWindow {
    /// Every window, shortest first.
    pub const ALL: [LiveWindow; 3] = [LiveWindow::FiveMinutes, LiveWindow::Hour, LiveWindow::Day];

    /// The window's name in queries and answers (`window=`): `5m`, `1h`, `24h`.
    pub fn as_str(self) -> &'static str {
        match self {
            LiveWindow::FiveMinutes => "5m",
            LiveWindow::Hour => "1h",
            LiveWindow::Day => "24h",
        }
    }

    /// The width of one bucket, in seconds.
    pub fn bucket_seconds(self) -> i64 {
        match self {
            LiveWindow::FiveMinutes => 60,
            LiveWindow::Hour => 300,
            LiveWindow::Day => 3600,
        }
    }

    /// How many buckets the window spans.
    pub fn buckets(self) -> usize {
        match self {
            LiveWindow::FiveMinutes => 5,
            LiveWindow::Hour => 12,
            LiveWindow::Day => 24,
        }
    }

    /// The window's length in seconds (`bucket_seconds × buckets`).
    pub fn span_seconds(self) -> i64 {
        self.bucket_seconds() * self.buckets() as i64
    }

    fn index(self) -> usize {
        match self {
            LiveWindow::FiveMinutes => 0,
            LiveWindow::Hour => 1,
            LiveWindow::Day => 2,
        }
    }
}

impl fmt::Display for LiveWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A window name that is none of `5m`, `1h`, `24h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveWindowError(pub String);

impl fmt::Display for LiveWindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown window {:?}: expected one of 5m, 1h, 24h",
            self.0
        )
    }
}

impl std::error::Error for LiveWindowError {}

impl FromStr for LiveWindow {
    type Err = LiveWindowError;

    /// `5m`, `1h` or `24h`, exactly.
    fn from_str(text: &str) -> Result<Self, LiveWindowError> {
        LiveWindow::ALL
            .into_iter()
            .find(|window| window.as_str() == text)
            .ok_or_else(|| LiveWindowError(text.to_owned()))
    }
}

/// The answer to a top-N query, as the service serves it in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopAnswer {
    /// The dimension ([`Dimension::as_str`]).
    pub by: &'static str,
    /// The window ([`LiveWindow::as_str`]).
    pub window: &'static str,
    /// Start of the span the window's buckets cover (Unix seconds, inclusive); 0 before any
    /// record.
    pub from: i64,
    /// End of that span (Unix seconds, exclusive); 0 before any record.
    pub until: i64,
    /// Records counted in this dimension in the window (those of its kind that have a key),
    /// exactly, even when the keys' counts are approximate.
    pub records: u64,
    /// Whether some counts are upper bounds rather than exact (see each entry's `error`).
    pub approximate: bool,
    /// The largest keys: by count descending, ties by key ascending.
    pub keys: Vec<TopEntry>,
}

/// One key of a [`TopAnswer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopEntry {
    /// The key ([`Dimension::key`]).
    pub key: String,
    /// Records counted under the key: exact when `error` is 0, otherwise an upper bound.
    pub count: u64,
    /// How much `count` may exceed the true number (it is at least `count - error`); left out
    /// of the JSON when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub error: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Live top-N counters over the records the service parses, in sliding windows of event time,
/// with memory bounded by `max_keys` (see the module docs).
#[derive(Debug)]
pub struct LiveTop {
    max_keys: usize,
    /// The newest event time seen (Unix seconds), once a record was added.
    newest: Option<i64>,
    /// One ring per window, in the order of [`LiveWindow::ALL`].
    rings: [Ring; 3],
    scratch: Scratch,
    /// Where a domain is lowercased without allocating each time.
    key_buf: String,
}

impl LiveTop {
    /// Empty counters keeping at most `max_keys` keys exactly per bucket and dimension (at
    /// least 1; 0 is taken as 1).
    pub fn new(max_keys: usize) -> Self {
        LiveTop {
            max_keys: max_keys.max(1),
            newest: None,
            rings: LiveWindow::ALL.map(Ring::new),
            scratch: Scratch::new(),
            key_buf: String::new(),
        }
    }

    /// Counts one record at its event time, in every dimension it has a key in.
    pub fn add(&mut self, record: &Record<'_, '_>) {
        let at = record.event.at.unix_seconds();
        self.advance(at);
        let LiveTop {
            max_keys,
            rings,
            scratch,
            key_buf,
            ..
        } = self;
        for dimension in Dimension::ALL {
            if dimension.kind() != record.kind() {
                continue;
            }
            if let Some(key) = dimension.key_in(record, key_buf) {
                count(rings, scratch, *max_keys, at, dimension, key);
            }
        }
    }

    /// A record's keys, owned, to be counted later with [`LiveTop::add_pending`] (while the
    /// live top-N is busy answering, its writer does not wait).
    pub fn pending(record: &Record<'_, '_>) -> PendingRecord {
        let mut buf = String::new();
        let keys = Dimension::ALL
            .into_iter()
            .filter(|d| d.kind() == record.kind())
            .filter_map(|d| Some((d, d.key_in(record, &mut buf)?.to_owned())))
            .collect();
        PendingRecord {
            at: record.event.at.unix_seconds(),
            keys,
        }
    }

    /// Counts a record kept by [`LiveTop::pending`], as [`LiveTop::add`] would have.
    pub fn add_pending(&mut self, record: &PendingRecord) {
        self.advance(record.at);
        let LiveTop {
            max_keys,
            rings,
            scratch,
            ..
        } = self;
        for (dimension, key) in &record.keys {
            count(rings, scratch, *max_keys, record.at, *dimension, key);
        }
    }

    /// The `n` largest keys of `by` in `window`.
    pub fn top(&self, by: Dimension, n: usize, window: LiveWindow) -> TopAnswer {
        let ring = &self.rings[window.index()];
        let mut answer = TopAnswer {
            by: by.as_str(),
            window: window.as_str(),
            from: 0,
            until: 0,
            records: 0,
            approximate: false,
            keys: Vec::new(),
        };
        if self.newest.is_none() {
            return answer;
        }
        (answer.from, answer.until) = ring.span();
        let mut merged: HashMap<&str, Merged> = HashMap::new();
        let mut floors = 0u64;
        for bucket in &ring.buckets {
            let counter = &bucket.counters[by.index()];
            answer.records += counter.records();
            answer.approximate |= counter.is_pruned();
            floors += counter.floor();
            for (key, tally) in counter.iter() {
                let entry = merged.entry(key).or_default();
                entry.count += tally.count;
                entry.error += tally.error;
                entry.floors_present += counter.floor();
            }
        }
        let mut entries: Vec<(&str, Merged)> = merged.into_iter().collect();
        let order = |a: &(&str, Merged), b: &(&str, Merged)| {
            b.1.upper(floors)
                .cmp(&a.1.upper(floors))
                .then_with(|| a.0.cmp(b.0))
        };
        if n < entries.len() {
            entries.select_nth_unstable_by(n, order);
            entries.truncate(n);
        }
        entries.sort_unstable_by(order);
        answer.keys = entries
            .into_iter()
            .map(|(key, merged)| TopEntry {
                key: key.to_owned(),
                count: merged.upper(floors),
                error: merged.error + (floors - merged.floors_present),
            })
            .collect();
        answer
    }

    /// Distinct keys held in total, over every bucket and dimension (for a metric); at most
    /// `492 × max_keys`.
    pub fn approx_memory_keys(&self) -> usize {
        self.rings
            .iter()
            .flat_map(|ring| &ring.buckets)
            .flat_map(|bucket| &bucket.counters)
            .map(Counter::len)
            .sum()
    }

    /// The cap on keys held exactly per bucket and dimension.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The newest event time seen (Unix seconds): the "now" of every window.
    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    /// Moves "now" to `at` when it is newer, clearing the buckets that fall out of the rings.
    fn advance(&mut self, at: i64) {
        match self.newest {
            Some(newest) if at <= newest => {}
            Some(_) => {
                for ring in &mut self.rings {
                    ring.advance(at);
                }
                self.newest = Some(at);
            }
            None => {
                for ring in &mut self.rings {
                    ring.start(at);
                }
                self.newest = Some(at);
            }
        }
    }
}

/// A key's sums over the buckets of a window.
#[derive(Debug, Default, Clone, Copy)]
struct Merged {
    count: u64,
    error: u64,
    /// The floors of the buckets that hold the key (the others add theirs to count and error).
    floors_present: u64,
}

impl Merged {
    /// The key's count: its sums plus the floor of every pruned bucket that does not hold it.
    fn upper(&self, floors: u64) -> u64 {
        self.count + (floors - self.floors_present)
    }
}

/// The buckets of one window, in a circle: bucket number `i` (time `i × width` to
/// `(i + 1) × width`) lives in slot `i mod len`.
#[derive(Debug)]
struct Ring {
    width: i64,
    /// The number of the newest bucket (the one of the newest event time).
    current: i64,
    /// Invariant: slot `s` holds the bucket numbered `i` with `i mod len = s` and
    /// `current - len < i <= current`; buckets of time not yet seen are empty.
    buckets: Vec<Bucket>,
}

/// The counters of one time bucket, one per dimension (in the order of [`Dimension::ALL`]).
#[derive(Debug, Default)]
struct Bucket {
    counters: [Counter; 6],
}

impl Ring {
    fn new(window: LiveWindow) -> Self {
        Ring {
            width: window.bucket_seconds(),
            current: 0,
            buckets: (0..window.buckets()).map(|_| Bucket::default()).collect(),
        }
    }

    fn len(&self) -> i64 {
        self.buckets.len() as i64
    }

    /// The first time: every bucket is empty; only the current number is set.
    fn start(&mut self, at: i64) {
        self.current = at.div_euclid(self.width);
    }

    /// Moves the newest bucket to the one of `at` (not older than the current one), clearing
    /// the slots that now hold newer bucket numbers: at most `len` of them, however far it
    /// jumps.
    fn advance(&mut self, at: i64) {
        let target = at.div_euclid(self.width);
        if target <= self.current {
            return;
        }
        let first = (self.current + 1).max(target - self.len() + 1);
        for number in first..=target {
            let slot = self.slot(number);
            for counter in &mut self.buckets[slot].counters {
                counter.clear();
            }
        }
        self.current = target;
    }

    /// The bucket of time `at` (not newer than the newest), or `None` when the ring no longer
    /// covers it.
    fn bucket_mut(&mut self, at: i64) -> Option<&mut Bucket> {
        let number = at.div_euclid(self.width);
        if number <= self.current - self.len() || number > self.current {
            return None;
        }
        let slot = self.slot(number);
        self.buckets.get_mut(slot)
    }

    fn slot(&self, number: i64) -> usize {
        // rem_euclid of a positive length is in 0..len, which fits a usize.
        number.rem_euclid(self.len()) as usize
    }

    /// Start (inclusive) and end (exclusive) of the time the ring covers, in Unix seconds.
    fn span(&self) -> (i64, i64) {
        (
            (self.current - self.len() + 1) * self.width,
            (self.current + 1) * self.width,
        )
    }
}
