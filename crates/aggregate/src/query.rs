//! What a query counts: its key, the records it takes, the metric and the filters.
//!
//! This module is `QUERIES.md` (beside `Cargo.toml`) in code: the keys a record counts under
//! (`src` with the null sender as `<>`, domains lowercased, `status` from `dsn`/`stat`, any
//! other known field as stored), the default kind of each key (the kind that carries it, from
//! `crate::names`), the check that the kind counted carries the keys named, `--where` and
//! `--since`/`--until`.
//! `contrib/spark/maillog_top.py` implements the same rules; a test holds them equal.
//!
//! It never counts or reads anything: it answers questions about one record.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use maillog_parse::Kind;

use crate::fields::Fields;
use crate::key::{Dimension, NULL_ADDRESS};
use crate::names::{Carrier, Field, UnknownKey};
use crate::range::Range;

/// What records are counted by: a dimension of the live top, the delivery status, or a known
/// field (one of [`FIELDS`](crate::names::FIELDS)). Parsed once, from a known name only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `src`, `dest`, their domains, `mailserver`, `relay`.
    Dimension(Dimension),
    /// `Sent`, `Deferred`, `Bounced`, `Queued` or `Other`, from `dsn` and `stat`.
    Status,
    /// Any other known field of the record, as stored.
    Field(Field),
}

impl FromStr for Key {
    type Err = UnknownKey;

    /// One of the known names ([`crate::names::known`]), exactly; anything else is an error
    /// with the closest known name.
    fn from_str(text: &str) -> Result<Self, UnknownKey> {
        if let Ok(dimension) = text.parse::<Dimension>() {
            return Ok(Key::Dimension(dimension));
        }
        if text == "status" {
            return Ok(Key::Status);
        }
        Field::lookup(text)
            .map(Key::Field)
            .ok_or_else(|| UnknownKey::new(text))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Key {
    /// The key's name in queries and answers.
    pub fn name(self) -> &'static str {
        match self {
            Key::Dimension(dimension) => dimension.as_str(),
            Key::Status => "status",
            Key::Field(field) => field.name(),
        }
    }

    /// The records that carry the key: `to` for recipients, their domains, the status and the
    /// delivery fields (`mailer`, `dsn`, `delay`, …); `from` for senders, their domains and the
    /// message fields (`size`, `proto`, …); both for the header's fields and `relay`.
    pub fn carrier(self) -> Carrier {
        match self {
            Key::Dimension(Dimension::Mailserver | Dimension::Relay) => Carrier::Both,
            Key::Dimension(dimension) => match dimension.kind() {
                Kind::From => Carrier::From,
                Kind::To => Carrier::To,
            },
            Key::Status => Carrier::To,
            Key::Field(field) => field.carrier(),
        }
    }

    /// The kind of records the key counts unless told otherwise: the kind that carries it, and
    /// `from` (messages accepted) for a key both kinds carry.
    pub fn default_kind(self) -> Kind {
        self.carrier().default_kind()
    }

    /// The fields [`Key::value`] reads.
    pub fn fields(self) -> Vec<&'static str> {
        match self {
            Key::Dimension(Dimension::Src | Dimension::SrcDomain) => vec!["src"],
            Key::Dimension(Dimension::Dest | Dimension::DestDomain) => vec!["dest"],
            Key::Dimension(Dimension::Mailserver) => vec!["mailserver"],
            Key::Dimension(Dimension::Relay) => vec!["relay"],
            Key::Status => vec!["dsn", "stat"],
            Key::Field(field) => vec![field.name()],
        }
    }

    /// The value `record` has for this key, or `None` when it has none (see `QUERIES.md`).
    /// Unlike [`Dimension::key`], it does not look at the record's kind.
    pub fn value<'r, F: Fields>(&self, record: &'r F) -> Option<Cow<'r, str>> {
        match self {
            Key::Dimension(Dimension::Src) => record.field("src").map(visible),
            Key::Dimension(Dimension::Dest) => record.field("dest").map(visible),
            Key::Dimension(Dimension::SrcDomain) => record.field("src").and_then(domain),
            Key::Dimension(Dimension::DestDomain) => record.field("dest").and_then(domain),
            Key::Dimension(Dimension::Mailserver) => record.field("mailserver"),
            Key::Dimension(Dimension::Relay) => record.field("relay"),
            Key::Status => status(record).map(|s| Cow::Borrowed(s.as_str())),
            Key::Field(field) => record.field(field.name()),
        }
    }
}

/// The outcome of a delivery attempt (a `to` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Delivered (`dsn=2.…`, `stat=Sent …`).
    Sent,
    /// To be tried again (`dsn=4.…`, `stat=Deferred: …`).
    Deferred,
    /// Given up, returned to the sender (`dsn=5.…`).
    Bounced,
    /// Queued for later (`stat=queued`).
    Queued,
    /// Any other `stat`.
    Other,
}

impl Status {
    /// The status's name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "Sent",
            Status::Deferred => "Deferred",
            Status::Bounced => "Bounced",
            Status::Queued => "Queued",
            Status::Other => "Other",
        }
    }
}

/// The status of a record: by the class of its `dsn`, else by the start of its `stat`.
pub fn status<F: Fields>(record: &F) -> Option<Status> {
    let by_dsn = record
        .field("dsn")
        .and_then(|dsn| match dsn.as_bytes().first() {
            Some(b'2') => Some(Status::Sent),
            Some(b'4') => Some(Status::Deferred),
            Some(b'5') => Some(Status::Bounced),
            _ => None,
        });
    if by_dsn.is_some() {
        return by_dsn;
    }
    let stat = record.field("stat")?;
    Some(if stat.starts_with("Sent") {
        Status::Sent
    } else if stat.starts_with("Deferred") {
        Status::Deferred
    } else if stat.len() >= 6 && stat.as_bytes()[..6].eq_ignore_ascii_case(b"queued") {
        Status::Queued
    } else {
        Status::Other
    })
}

/// The null address as `<>`.
fn visible(address: Cow<'_, str>) -> Cow<'_, str> {
    if address.is_empty() {
        Cow::Borrowed(NULL_ADDRESS)
    } else {
        address
    }
}

/// The text after the last `@`, ASCII-lowercased, when there is some.
fn domain(address: Cow<'_, str>) -> Option<Cow<'_, str>> {
    let at = address.rfind('@')?;
    if at + 1 == address.len() {
        return None;
    }
    let domain = match address {
        Cow::Borrowed(a) => Cow::Borrowed(&a[at + 1..]),
        Cow::Owned(a) => Cow::Owned(a[at + 1..].to_owned()),
    };
    Some(if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(domain.to_ascii_lowercase())
    } else {
        domain
    })
}

/// The message size of a record (`size`): 0 when absent, or not a decimal number (digits
/// only) below 2^63.
pub fn size<F: Fields>(record: &F) -> u64 {
    record
        .field("size")
        .and_then(|s| decimal(&s))
        .filter(|&n| i64::try_from(n).is_ok())
        .unwrap_or(0)
}

/// A number written in ASCII digits only (no sign, no blanks), as sendmail writes them.
pub fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `--where FIELD=VALUE`: the record's value for the key FIELD equals VALUE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Where {
    /// The key whose value is compared.
    pub key: Key,
    /// The value it must have.
    pub value: String,
}

impl FromStr for Where {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (field, value) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not FIELD=VALUE"))?;
        let key = field.parse::<Key>().map_err(|e| e.to_string())?;
        Ok(Where {
            key,
            value: value.to_owned(),
        })
    }
}

/// The records a query takes: `--where`, `--since`, `--until`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// All must hold.
    pub wheres: Vec<Where>,
    /// The records' event times.
    pub range: Range,
}

impl Filter {
    /// Whether `record` passes.
    pub fn accepts<F: Fields>(&self, record: &F) -> bool {
        if !self.range.is_all() && !record.unix_micros().is_some_and(|t| self.range.contains(t)) {
            return false;
        }
        self.wheres
            .iter()
            .all(|w| w.key.value(record).as_deref() == Some(w.value.as_str()))
    }
}

/// A key of a query (`--by`, or a `--where` field) that the records it counts never carry, so
/// that it would count nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{option} {key}: `{key}` is on {carrier}, and this query counts {} records; it would \
     count nothing (a query counts one kind of record; it never joins a `from` record with its \
     `to` records)",
    .kind.as_str()
)]
pub struct KindError {
    /// `--by` or `--where`.
    pub option: &'static str,
    /// The key.
    pub key: Key,
    /// The records that carry it.
    pub carrier: Carrier,
    /// The kind the query counts.
    pub kind: Kind,
}

/// Checks that records of `kind` may carry `by` and every `--where` field.
pub fn check_kinds(by: Key, kind: Kind, wheres: &[Where]) -> Result<(), KindError> {
    let named = std::iter::once(("--by", by)).chain(wheres.iter().map(|w| ("--where", w.key)));
    for (option, key) in named {
        let carrier = key.carrier();
        if !carrier.carries(kind) {
            return Err(KindError {
                option,
                key,
                carrier,
                kind,
            });
        }
    }
    Ok(())
}

/// Seconds of a sendmail delay, `[D+]HH:MM:SS`.
pub fn delay_seconds(delay: &str) -> Option<u64> {
    let (days, clock) = match delay.split_once('+') {
        Some((days, clock)) => (decimal(days)?, clock),
        None => (0, delay),
    };
    let mut parts = clock.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (h, m, s) = (decimal(h)?, decimal(m)?, decimal(s)?);
    days.checked_mul(86_400)?
        .checked_add(h.checked_mul(3_600)?)?
        .checked_add(m.checked_mul(60)?)?
        .checked_add(s)
}

#[cfg(test)]
mod tests;
