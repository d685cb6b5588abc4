//! `maillog report`: the pflogsumm-style summary of a set of records.
//!
//! Totals (received, delivered, deferred, bounced, rejected, bytes), traffic per day and per
//! hour of the day, top senders and recipients by count and by bytes, delivery per recipient
//! domain with deferrals and delays, the domains mail came from and the relays that handed it
//! in, the reasons of deferrals, bounces and rejects ([`reasons`]) and message sizes
//! ([`sizes`]). The sections and their JSON form are `QUERIES.md`'s;
//! `contrib/spark/maillog_top.py` computes the same. Recipient bytes use the size join of
//! `crate::tally`.
//!
//! It counts and shapes the answer; it never reads input and never renders text for people.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use maillog_parse::Kind;
use serde::Serialize;

pub mod reasons;
pub mod sizes;

use reasons::Reason;
use sizes::{MessageSizes, SizeTally};

use crate::fields::Fields;
use crate::key::Dimension;
use crate::query::{Filter, Key, Status, decimal, delay_seconds, size, status};
use crate::tally::{
    Counts, KeyCounts, Metric, Needs, Ranked, Sizes, Tally, add_counts, merge_counts, rank,
};

/// What a report covers and how long its lists are.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    /// Which records count.
    pub filter: Filter,
    /// Entries per list.
    pub n: usize,
}

/// Delivery to one recipient domain.
#[derive(Debug, Default, Clone, Copy)]
struct DomainStats {
    count: u64,
    delivered: u64,
    deferred: u64,
    bounced: u64,
    bytes: u64,
    delay_sum: u64,
    delays: u64,
    delay_max: u64,
}

impl DomainStats {
    fn add(&mut self, other: &DomainStats) {
        self.count += other.count;
        self.delivered += other.delivered;
        self.deferred += other.deferred;
        self.bounced += other.bounced;
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.delay_sum = self.delay_sum.saturating_add(other.delay_sum);
        self.delays += other.delays;
        self.delay_max = self.delay_max.max(other.delay_max);
    }
}

/// Traffic in one hour of the day.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Hour {
    received: u64,
    delivered: u64,
    deferred: u64,
    bounced: u64,
}

/// A `to` record whose message size was not known when it was read.
#[derive(Debug)]
struct Waiting {
    dest: Option<Box<str>>,
    domain: Option<Box<str>>,
    sent: bool,
    message: u64,
}

/// One thread's counts of a report.
#[derive(Debug)]
pub struct ReportTally<'q> {
    query: &'q ReportQuery,
    received: u64,
    bytes_received: u64,
    delivered: u64,
    deferred: u64,
    bounced: u64,
    /// `to` records of another status, or none.
    other: u64,
    bytes_delivered: u64,
    /// `reject=` lines, when a raw syslog input was read.
    rejected: Option<u64>,
    hours: [Hour; 24],
    /// By the date of `ts` as logged.
    days: BTreeMap<Box<str>, Hour>,
    deferrals: HashMap<Reason, u64>,
    bounces: HashMap<Reason, u64>,
    /// Like `rejected`: none until a raw syslog input was read.
    rejects: Option<HashMap<Reason, u64>>,
    sizes: SizeTally,
    senders: KeyCounts,
    recipients: KeyCounts,
    src_domains: KeyCounts,
    relays: KeyCounts,
    domains: HashMap<String, DomainStats>,
    waiting: Vec<Waiting>,
}

const SRC: Key = Key::Dimension(Dimension::Src);
const DEST: Key = Key::Dimension(Dimension::Dest);
const SRC_DOMAIN: Key = Key::Dimension(Dimension::SrcDomain);
const DEST_DOMAIN: Key = Key::Dimension(Dimension::DestDomain);
const RELAY: Key = Key::Dimension(Dimension::Relay);

impl<'q> ReportTally<'q> {
    /// An empty tally.
    pub fn new(query: &'q ReportQuery) -> Self {
        ReportTally {
            query,
            received: 0,
            bytes_received: 0,
            delivered: 0,
            deferred: 0,
            bounced: 0,
            other: 0,
            bytes_delivered: 0,
            rejected: None,
            hours: [Hour::default(); 24],
            days: BTreeMap::new(),
            deferrals: HashMap::default(),
            bounces: HashMap::default(),
            rejects: None,
            sizes: SizeTally::default(),
            senders: KeyCounts::default(),
            recipients: KeyCounts::default(),
            src_domains: KeyCounts::default(),
            relays: KeyCounts::default(),
            domains: HashMap::default(),
            waiting: Vec::new(),
        }
    }

    fn count_from<F: Fields>(&mut self, record: &F, hour: Option<usize>) {
        let bytes = size(record);
        self.received += 1;
        self.bytes_received = self.bytes_received.saturating_add(bytes);
        self.sizes.add(bytes);
        if let Some(hour) = hour {
            self.hours[hour].received += 1;
        }
        let one = Counts { count: 1, bytes };
        for (key, counts) in [
            (&SRC, &mut self.senders),
            (&SRC_DOMAIN, &mut self.src_domains),
            (&RELAY, &mut self.relays),
        ] {
            if let Some(value) = key.value(record) {
                add_counts(counts, &value, one);
            }
        }
    }

    /// Counts a `to` record; its status.
    fn count_to<F: Fields>(
        &mut self,
        record: &F,
        hour: Option<usize>,
        sizes: &Sizes,
    ) -> Option<Status> {
        let status = status(record);
        let sent = status == Some(Status::Sent);
        if let Some(hour) = hour {
            self.hours[hour].count(status);
        }
        let reasons = match status {
            Some(Status::Sent) => None,
            Some(Status::Deferred) => Some(&mut self.deferrals),
            Some(Status::Bounced) => Some(&mut self.bounces),
            _ => None,
        };
        if let Some(reasons) = reasons {
            let stat = record.field("stat");
            let reason = Reason::of_delivery(
                record.field("dsn").as_deref(),
                stat.as_deref().unwrap_or(""),
            );
            *reasons.entry(reason).or_default() += 1;
        }
        *match status {
            Some(Status::Sent) => &mut self.delivered,
            Some(Status::Deferred) => &mut self.deferred,
            Some(Status::Bounced) => &mut self.bounced,
            _ => &mut self.other,
        } += 1;
        let message = Sizes::message_of(record);
        let known = sizes.get(message);
        let bytes = known.unwrap_or(0);
        let dest = DEST.value(record);
        let domain = DEST_DOMAIN.value(record);
        if known.is_none() {
            self.waiting.push(Waiting {
                dest: dest.as_deref().map(Box::from),
                domain: domain.as_deref().map(Box::from),
                sent,
                message,
            });
        }
        if let Some(dest) = &dest {
            add_counts(&mut self.recipients, dest, Counts { count: 1, bytes });
        }
        if sent {
            self.bytes_delivered = self.bytes_delivered.saturating_add(bytes);
        }
        if let Some(domain) = &domain {
            let stats = self.domains.entry_ref(&**domain).or_default();
            stats.count += 1;
            match status {
                Some(Status::Sent) => {
                    stats.delivered += 1;
                    stats.bytes = stats.bytes.saturating_add(bytes);
                    let delay = record.field("delay");
                    if let Some(seconds) = delay.as_deref().and_then(delay_seconds) {
                        stats.delay_sum = stats.delay_sum.saturating_add(seconds);
                        stats.delays += 1;
                        stats.delay_max = stats.delay_max.max(seconds);
                    }
                }
                Some(Status::Deferred) => stats.deferred += 1,
                Some(Status::Bounced) => stats.bounced += 1,
                _ => {}
            }
        }
        status
    }

    /// The report (of the merged, settled tally).
    pub fn answer(&self) -> Report {
        let n = self.query.n;
        let mut domains: Vec<(&str, &DomainStats)> =
            self.domains.iter().map(|(d, s)| (&**d, s)).collect();
        domains.sort_unstable_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        domains.truncate(n);
        Report {
            totals: Totals {
                received: self.received,
                delivered: self.delivered,
                deferred: self.deferred,
                bounced: self.bounced,
                rejected: self.rejected,
                bytes_received: self.bytes_received,
                bytes_delivered: self.bytes_delivered,
                senders: self.senders.len() as u64,
                recipients: self.recipients.len() as u64,
            },
            per_day: self
                .days
                .iter()
                .map(|(day, h)| DayRow {
                    day: day.to_string(),
                    received: h.received,
                    delivered: h.delivered,
                    deferred: h.deferred,
                    bounced: h.bounced,
                })
                .collect(),
            per_hour: (0..24)
                .map(|h| HourRow {
                    hour: format!("{h:02}"),
                    received: self.hours[h].received,
                    delivered: self.hours[h].delivered,
                    deferred: self.hours[h].deferred,
                    bounced: self.hours[h].bounced,
                })
                .collect(),
            top_senders_by_count: rank(&self.senders, Metric::Count, n, true),
            top_senders_by_bytes: rank(&self.senders, Metric::Bytes, n, true),
            top_recipients_by_count: rank(&self.recipients, Metric::Count, n, true),
            top_recipients_by_bytes: rank(&self.recipients, Metric::Bytes, n, true),
            domains: domains
                .into_iter()
                .map(|(domain, s)| DomainRow {
                    domain: domain.to_owned(),
                    count: s.count,
                    delivered: s.delivered,
                    deferred: s.deferred,
                    bounced: s.bounced,
                    bytes: s.bytes,
                    avg_delay: (s.delays > 0).then(|| s.delay_sum as f64 / s.delays as f64),
                    max_delay: (s.delays > 0).then_some(s.delay_max),
                })
                .collect(),
            received_domains: rank(&self.src_domains, Metric::Count, n, true),
            top_relays: rank(&self.relays, Metric::Count, n, true),
            deferral_reasons: ranked_reasons(&self.deferrals, n),
            bounce_reasons: ranked_reasons(&self.bounces, n),
            reject_reasons: self.rejects.as_ref().map(|r| ranked_reasons(r, n)),
            message_sizes: self.sizes.answer(),
        }
    }
}

/// The first `n` reasons by count, ties by DSN (none first) and text.
fn ranked_reasons(reasons: &HashMap<Reason, u64>, n: usize) -> Vec<ReasonRow> {
    let mut rows: Vec<(&Reason, u64)> = reasons.iter().map(|(r, c)| (r, *c)).collect();
    rows.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    rows.truncate(n);
    rows.into_iter()
        .map(|(reason, count)| ReasonRow {
            dsn: reason.dsn.as_deref().map(str::to_owned),
            reason: reason.text.to_string(),
            count,
        })
        .collect()
}

impl Hour {
    /// A `to` record of `status`.
    fn count(&mut self, status: Option<Status>) {
        match status {
            Some(Status::Sent) => self.delivered += 1,
            Some(Status::Deferred) => self.deferred += 1,
            Some(Status::Bounced) => self.bounced += 1,
            _ => {}
        }
    }

    fn add(&mut self, other: &Hour) {
        self.received += other.received;
        self.delivered += other.delivered;
        self.deferred += other.deferred;
        self.bounced += other.bounced;
    }
}

/// Adds `other`'s reason counts to `mine`.
fn merge_reasons(mine: &mut HashMap<Reason, u64>, other: HashMap<Reason, u64>) {
    for (reason, count) in other {
        *mine.entry(reason).or_default() += count;
    }
}

/// The hour of the day of a record's `time` (`hh:mm:ss` as logged).
fn hour_of<F: Fields>(record: &F) -> Option<usize> {
    let time = record.field("time")?;
    let hour = decimal(time.get(..2)?)?;
    (hour < 24).then_some(hour as usize)
}

impl Tally for ReportTally<'_> {
    fn needs(&self) -> Needs {
        Needs {
            from: true,
            to: true,
            sizes: true,
        }
    }

    fn record<F: Fields>(&mut self, record: &F, sizes: &Sizes) {
        if !self.query.filter.accepts(record) {
            return;
        }
        let hour = hour_of(record);
        let to = match record.kind() {
            Kind::From => {
                self.count_from(record, hour);
                None
            }
            Kind::To => Some(self.count_to(record, hour, sizes)),
        };
        // The day of `ts` as logged (its own offset), as the hour is the logged `time`'s.
        let date = record.ts_date();
        if let Some(day) = date.as_ref().and_then(|d| std::str::from_utf8(d).ok()) {
            let row = match self.days.get_mut(day) {
                Some(row) => row,
                None => self.days.entry(Box::from(day)).or_default(),
            };
            match to {
                None => row.received += 1,
                Some(status) => row.count(status),
            }
        }
    }

    fn rejected_line(&mut self, value: &str) {
        *self.rejected.get_or_insert(0) += 1;
        let rejects = self.rejects.get_or_insert_with(HashMap::default);
        *rejects.entry(Reason::of_reject(value)).or_default() += 1;
    }

    fn saw_raw_input(&mut self) {
        self.rejected.get_or_insert(0);
        self.rejects.get_or_insert_with(HashMap::default);
    }

    fn settle(&mut self, sizes: &Sizes) {
        for waiting in std::mem::take(&mut self.waiting) {
            let bytes = sizes.get(waiting.message).unwrap_or(0);
            if let Some(dest) = &waiting.dest {
                add_counts(&mut self.recipients, dest, Counts { count: 0, bytes });
            }
            if waiting.sent {
                self.bytes_delivered = self.bytes_delivered.saturating_add(bytes);
                if let Some(domain) = &waiting.domain {
                    let stats = self.domains.entry_ref(&**domain).or_default();
                    stats.bytes = stats.bytes.saturating_add(bytes);
                }
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.received += other.received;
        self.bytes_received = self.bytes_received.saturating_add(other.bytes_received);
        self.delivered += other.delivered;
        self.deferred += other.deferred;
        self.bounced += other.bounced;
        self.other += other.other;
        self.bytes_delivered = self.bytes_delivered.saturating_add(other.bytes_delivered);
        self.rejected = match (self.rejected, other.rejected) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        for (mine, theirs) in self.hours.iter_mut().zip(other.hours) {
            mine.add(&theirs);
        }
        for (day, theirs) in other.days {
            self.days.entry(day).or_default().add(&theirs);
        }
        merge_reasons(&mut self.deferrals, other.deferrals);
        merge_reasons(&mut self.bounces, other.bounces);
        self.rejects = match (self.rejects.take(), other.rejects) {
            (Some(mut mine), Some(theirs)) => {
                merge_reasons(&mut mine, theirs);
                Some(mine)
            }
            (mine, theirs) => mine.or(theirs),
        };
        self.sizes.merge(&other.sizes);
        merge_counts(&mut self.senders, other.senders);
        merge_counts(&mut self.recipients, other.recipients);
        merge_counts(&mut self.src_domains, other.src_domains);
        merge_counts(&mut self.relays, other.relays);
        for (domain, stats) in other.domains {
            self.domains.entry(domain).or_default().add(&stats);
        }
    }
}

/// The summary, as `maillog report --format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Totals.
    pub totals: Totals,
    /// Traffic per day (the date of `ts` as logged), in date order.
    pub per_day: Vec<DayRow>,
    /// Traffic per hour of the day, 00 to 23.
    pub per_hour: Vec<HourRow>,
    /// Senders with the most messages.
    pub top_senders_by_count: Vec<Ranked>,
    /// Senders with the most bytes.
    pub top_senders_by_bytes: Vec<Ranked>,
    /// Recipients with the most deliveries (attempts).
    pub top_recipients_by_count: Vec<Ranked>,
    /// Recipients with the most bytes.
    pub top_recipients_by_bytes: Vec<Ranked>,
    /// Delivery per recipient domain.
    pub domains: Vec<DomainRow>,
    /// The domains mail came from.
    pub received_domains: Vec<Ranked>,
    /// The relays that handed mail in.
    pub top_relays: Vec<Ranked>,
    /// Why deliveries were deferred.
    pub deferral_reasons: Vec<ReasonRow>,
    /// Why deliveries bounced.
    pub bounce_reasons: Vec<ReasonRow>,
    /// Why `reject=` lines rejected; none when no input was raw syslog.
    pub reject_reasons: Option<Vec<ReasonRow>>,
    /// Sizes of the messages accepted.
    pub message_sizes: MessageSizes,
}

/// One day's traffic.
#[derive(Debug, Clone, Serialize)]
pub struct DayRow {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Messages accepted.
    pub received: u64,
    /// Deliveries.
    pub delivered: u64,
    /// Deferrals.
    pub deferred: u64,
    /// Bounces.
    pub bounced: u64,
}

/// One group of reasons ([`reasons`]).
#[derive(Debug, Clone, Serialize)]
pub struct ReasonRow {
    /// The DSN, if the line had one.
    pub dsn: Option<String>,
    /// The masked reason.
    pub reason: String,
    /// Records (or `reject=` lines) with it.
    pub count: u64,
}

/// The report's totals.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// `from` records: messages accepted.
    pub received: u64,
    /// `to` records with status Sent.
    pub delivered: u64,
    /// `to` records with status Deferred.
    pub deferred: u64,
    /// `to` records with status Bounced.
    pub bounced: u64,
    /// `reject=` lines of raw syslog inputs; `None` when no input was raw syslog.
    pub rejected: Option<u64>,
    /// Sizes of the messages accepted.
    pub bytes_received: u64,
    /// Sizes of the messages delivered, once per recipient.
    pub bytes_delivered: u64,
    /// Distinct senders.
    pub senders: u64,
    /// Distinct recipients.
    pub recipients: u64,
}

/// One hour of the day.
#[derive(Debug, Clone, Serialize)]
pub struct HourRow {
    /// `00` to `23`.
    pub hour: String,
    /// Messages accepted.
    pub received: u64,
    /// Deliveries.
    pub delivered: u64,
    /// Deferrals.
    pub deferred: u64,
    /// Bounces.
    pub bounced: u64,
}

/// Delivery to one domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainRow {
    /// The recipient domain, lowercased.
    pub domain: String,
    /// `to` records.
    pub count: u64,
    /// Sent.
    pub delivered: u64,
    /// Deferred.
    pub deferred: u64,
    /// Bounced.
    pub bounced: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Mean delay of the deliveries, in seconds.
    pub avg_delay: Option<f64>,
    /// Longest delay of a delivery, in seconds.
    pub max_delay: Option<u64>,
}
