//! Counting: per-thread tallies, the size join, and ranked answers.
//!
//! Each worker thread keeps its own [`Tally`] (plain hash maps, no locking on the hot path);
//! they are merged when every input is read, so memory grows with the distinct keys, not with
//! the input. The one thing threads share is [`Sizes`], the message sizes by queue id that give
//! a `to` record its bytes (pflogsumm's join): a record's `from` line may be in a file another
//! thread reads. A `to` record whose `from` is not known yet is set aside and settled at the end
//! ([`Tally::settle`]), so the answer does not depend on the order files are read in.
//!
//! It never reads input (that is `crate::scan`) and never prints.

use std::hash::{BuildHasher, Hash, Hasher};

use dashmap::DashMap;
use hashbrown::HashMap;
use maillog_parse::Kind;
use serde::Serialize;

use crate::fields::Fields;
use crate::query::{Filter, Key, KindError, check_kinds, size};

/// How much a key has.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Records.
    pub count: u64,
    /// Bytes of their messages.
    pub bytes: u64,
}

impl Counts {
    /// Adds `other`; sums stop at the largest number rather than wrap.
    pub fn add(&mut self, other: Counts) {
        self.count = self.count.saturating_add(other.count);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Counts by key.
pub type KeyCounts = HashMap<String, Counts>;

/// Adds `counts` of one key into `into`.
pub(crate) fn add_counts(into: &mut KeyCounts, key: &str, counts: Counts) {
    let entry = into.entry_ref(key).or_default();
    entry.add(counts);
}

/// Merges `from` into `into`.
pub(crate) fn merge_counts(into: &mut KeyCounts, from: KeyCounts) {
    if into.is_empty() {
        *into = from;
        return;
    }
    for (key, counts) in from {
        into.entry(key).or_default().add(counts);
    }
}

/// The message sizes of `from` records by (`mailserver`, `sendmailid`), shared by the threads.
#[derive(Debug, Default)]
pub struct Sizes {
    by_message: DashMap<u64, u64>,
}

impl Sizes {
    /// The join key of a record: a hash of its `mailserver` and `sendmailid`. 64 bits: two
    /// messages of a day's archive collide with a probability far below one in a million.
    pub fn message_of<F: Fields>(record: &F) -> u64 {
        let mut hasher =
            foldhash::fast::FixedState::with_seed(0x006d_6169_6c6c_6f67).build_hasher();
        record.field("mailserver").hash(&mut hasher);
        record.field("sendmailid").hash(&mut hasher);
        hasher.finish()
    }

    /// Notes the size of a `from` record. Two `from` records of one message (a queue id
    /// reused, a record repeated): the larger size counts, whichever is read first.
    pub fn note<F: Fields>(&self, record: &F) {
        let size = size(record);
        self.by_message
            .entry(Sizes::message_of(record))
            .and_modify(|known| *known = (*known).max(size))
            .or_insert(size);
    }

    /// The size of a message, when its `from` record was noted.
    pub fn get(&self, message: u64) -> Option<u64> {
        self.by_message.get(&message).map(|size| *size)
    }

    /// How many messages are known.
    pub fn len(&self) -> usize {
        self.by_message.len()
    }

    /// Whether no message is known.
    pub fn is_empty(&self) -> bool {
        self.by_message.is_empty()
    }
}

/// What a tally needs read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// `from` records (counted or joined).
    pub from: bool,
    /// `to` records.
    pub to: bool,
    /// Message sizes for `to` records.
    pub sizes: bool,
}

impl Needs {
    /// Whether a file of this kind must be read.
    pub fn reads(&self, kind: Kind) -> bool {
        match kind {
            Kind::From => self.from || self.sizes,
            Kind::To => self.to,
        }
    }
}

/// One thread's counts of a query, merged with the others' at the end.
pub trait Tally: Send + Sized {
    /// What the tally needs read.
    fn needs(&self) -> Needs;
    /// The fields it reads, so that a mirror file is read in those columns only; `None` (the
    /// default): every field.
    fn columns(&self) -> crate::mirror::Columns {
        None
    }
    /// Counts one record. `sizes` holds the sizes of the `from` records read so far.
    fn record<F: Fields>(&mut self, record: &F, sizes: &Sizes);
    /// Counts a sendmail `reject=` line of a raw syslog input (`value`: what follows
    /// `reject=`).
    fn rejected_line(&mut self, value: &str) {
        let _ = value;
    }
    /// Notes that a raw syslog input is being read (so rejects are known).
    fn saw_raw_input(&mut self) {}
    /// Settles what waited for a size, once every input is read.
    fn settle(&mut self, sizes: &Sizes);
    /// Adds another thread's (settled) tally.
    fn merge(&mut self, other: Self);
}

/// What `--metric` ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    /// Records.
    #[default]
    Count,
    /// Message bytes.
    Bytes,
}

/// One line of a top-N answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked {
    /// The key.
    pub key: String,
    /// Records.
    pub count: u64,
    /// Bytes, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// The `n` largest keys by `metric`, ties by key ascending; `bytes` only if `with_bytes`.
pub fn rank(counts: &KeyCounts, metric: Metric, n: usize, with_bytes: bool) -> Vec<Ranked> {
    let mut all: Vec<(&str, Counts)> = counts.iter().map(|(k, c)| (&**k, *c)).collect();
    let measure = |c: &Counts| match metric {
        Metric::Count => c.count,
        Metric::Bytes => c.bytes,
    };
    let order = |a: &(&str, Counts), b: &(&str, Counts)| {
        measure(&b.1).cmp(&measure(&a.1)).then_with(|| a.0.cmp(b.0))
    };
    if n < all.len() {
        all.select_nth_unstable_by(n, order);
        all.truncate(n);
    }
    all.sort_unstable_by(order);
    all.into_iter()
        .map(|(key, c)| Ranked {
            key: key.to_owned(),
            count: c.count,
            bytes: with_bytes.then_some(c.bytes),
        })
        .collect()
}

/// `maillog top`: what is counted, how, and how many are answered.
#[derive(Debug, Clone)]
pub struct TopQuery {
    /// What records are counted by.
    pub key: Key,
    /// The records counted.
    pub kind: Kind,
    /// What ranks.
    pub metric: Metric,
    /// Which records count.
    pub filter: Filter,
    /// How many keys are answered.
    pub n: usize,
}

impl TopQuery {
    /// Whether answers carry bytes: always for `from` records (their own size), for `to`
    /// records when ranked by bytes (the join costs).
    pub fn with_bytes(&self) -> bool {
        self.kind == Kind::From || self.metric == Metric::Bytes
    }

    /// Whether the records counted may carry the key and every `--where` field: a query on a
    /// key the other kind carries would count nothing, always.
    pub fn check(&self) -> Result<(), KindError> {
        check_kinds(self.key, self.kind, &self.filter.wheres)
    }

    /// The keys the query names: `--by`, then every `--where` field.
    fn named(&self) -> impl Iterator<Item = Key> + '_ {
        std::iter::once(self.key).chain(self.filter.wheres.iter().map(|w| w.key))
    }
}

/// One thread's counts of a [`TopQuery`].
#[derive(Debug)]
pub struct TopTally<'q> {
    query: &'q TopQuery,
    counts: KeyCounts,
    /// `to` records whose message size was not known when they were read.
    waiting: Vec<(Box<str>, u64)>,
    /// For each key the query names ([`TopQuery::named`]): whether a record of the kind
    /// counted, filtered or not, had a value for it.
    seen: Vec<bool>,
    /// How many of `seen` are false: once 0, records are no longer looked at for it.
    unseen: usize,
}

impl<'q> TopTally<'q> {
    /// An empty tally of `query`.
    pub fn new(query: &'q TopQuery) -> Self {
        TopTally {
            query,
            counts: KeyCounts::default(),
            waiting: Vec::new(),
            seen: query.named().map(|_| false).collect(),
            unseen: query.named().count(),
        }
    }

    /// The keys the query names that no record of the kind counted had a value for, each once
    /// (of the merged tally): a field the data scanned does not have.
    pub fn absent(&self) -> Vec<Key> {
        let mut absent: Vec<Key> = Vec::new();
        for (key, seen) in self.query.named().zip(&self.seen) {
            if !seen && !absent.contains(&key) {
                absent.push(key);
            }
        }
        absent
    }

    /// Notes which named keys `record` has a value for.
    fn look<F: Fields>(&mut self, record: &F) {
        for (key, seen) in self.query.named().zip(self.seen.iter_mut()) {
            if !*seen && key.value(record).is_some() {
                *seen = true;
                self.unseen -= 1;
            }
        }
    }

    /// The answer (of the merged, settled tally).
    pub fn answer(&self) -> Vec<Ranked> {
        let query = self.query;
        rank(&self.counts, query.metric, query.n, query.with_bytes())
    }

    /// Counts by key (of the merged, settled tally).
    pub fn counts(&self) -> &KeyCounts {
        &self.counts
    }
}

impl Tally for TopTally<'_> {
    fn needs(&self) -> Needs {
        let kind = self.query.kind;
        Needs {
            from: kind == Kind::From,
            to: kind == Kind::To,
            sizes: kind == Kind::To && self.query.metric == Metric::Bytes,
        }
    }

    fn columns(&self) -> crate::mirror::Columns {
        let query = self.query;
        let mut fields: Vec<&'static str> = query.named().flat_map(Key::fields).collect();
        // `size` of what it counts (from), and the join of sizes (to, by bytes); the time
        // is read from `ts_utc`, always.
        fields.push("size");
        if self.needs().sizes {
            fields.extend(["mailserver", "sendmailid"]);
        }
        Some(fields)
    }

    fn record<F: Fields>(&mut self, record: &F, sizes: &Sizes) {
        let query = self.query;
        if record.kind() != query.kind {
            return;
        }
        if self.unseen > 0 {
            self.look(record);
        }
        if !query.filter.accepts(record) {
            return;
        }
        let Some(key) = query.key.value(record) else {
            return;
        };
        let bytes = match query.kind {
            Kind::From => size(record),
            Kind::To if query.metric == Metric::Bytes => {
                let message = Sizes::message_of(record);
                sizes.get(message).unwrap_or_else(|| {
                    self.waiting.push((key.as_ref().into(), message));
                    0
                })
            }
            Kind::To => 0,
        };
        add_counts(&mut self.counts, &key, Counts { count: 1, bytes });
    }

    fn settle(&mut self, sizes: &Sizes) {
        for (key, message) in self.waiting.drain(..) {
            let bytes = sizes.get(message).unwrap_or(0);
            add_counts(&mut self.counts, &key, Counts { count: 0, bytes });
        }
    }

    fn merge(&mut self, other: Self) {
        merge_counts(&mut self.counts, other.counts);
        for (seen, other) in self.seen.iter_mut().zip(other.seen) {
            *seen |= other;
        }
        self.unseen = self.seen.iter().filter(|seen| !**seen).count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Scanner;

    #[test]
    fn the_larger_of_two_sizes_of_one_message_counts_in_any_order() {
        let lines: [&[u8]; 2] = [
            br#"{"sendmailid":"q1","mailserver":"m","size":"100"}"#,
            br#"{"sendmailid":"q1","mailserver":"m","size":"300"}"#,
        ];
        for order in [[0, 1], [1, 0]] {
            let sizes = Sizes::default();
            let mut scanner = Scanner::default();
            for i in order {
                sizes.note(&scanner.scan(lines[i], Some(Kind::From)).expect("JSON"));
            }
            let to = scanner
                .scan(br#"{"sendmailid":"q1","mailserver":"m","dest":"a"}"#, None)
                .expect("JSON");
            assert_eq!(sizes.get(Sizes::message_of(&to)), Some(300));
        }
    }

    #[test]
    fn keys_no_record_of_the_kind_has_are_absent_until_one_has_them() {
        let query = TopQuery {
            key: "mailer".parse().expect("key"),
            kind: Kind::To,
            metric: Metric::Count,
            filter: Filter {
                wheres: vec![
                    "dsn=5.1.1".parse().expect("where"),
                    "mailer=x".parse().expect("where"),
                ],
                range: Default::default(),
            },
            n: 10,
        };
        let key = |k: &str| k.parse::<Key>().expect("key");
        let sizes = Sizes::default();
        let mut scanner = Scanner::default();
        let mut one = TopTally::new(&query);
        assert_eq!(one.absent(), [key("mailer"), key("dsn")]);
        // A `from` record is not looked at; a `to` record is, filtered out or not.
        one.record(
            &scanner
                .scan(br#"{"mailer":"esmtp"}"#, Some(Kind::From))
                .expect("JSON"),
            &sizes,
        );
        assert_eq!(one.absent(), [key("mailer"), key("dsn")]);
        one.record(
            &scanner
                .scan(br#"{"dsn":"2.0.0"}"#, Some(Kind::To))
                .expect("JSON"),
            &sizes,
        );
        assert_eq!(one.absent(), [key("mailer")]);
        assert!(one.answer().is_empty());
        let mut other = TopTally::new(&query);
        other.record(
            &scanner
                .scan(br#"{"mailer":"esmtp"}"#, Some(Kind::To))
                .expect("JSON"),
            &sizes,
        );
        assert_eq!(other.absent(), [key("dsn")]);
        one.merge(other);
        assert_eq!(one.absent(), []);
    }

    #[test]
    fn sums_stop_at_the_largest_number() {
        let mut counts = Counts {
            count: 1,
            bytes: u64::MAX - 1,
        };
        counts.add(Counts { count: 1, bytes: 5 });
        assert_eq!(
            counts,
            Counts {
                count: 2,
                bytes: u64::MAX
            }
        );
    }
}
