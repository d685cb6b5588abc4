//! Time ranges as admins type them, and which archive files and folders a range lets a query
//! skip.
//!
//! Owns the values of `--since`, `--until` ([`TimeSpec`]) and `--day` ([`DaySpec`]), what they
//! mean in the configured zone at a given now ([`TimeSpec::resolve`], [`DaySpec::resolve`]),
//! the resulting [`Range`], and whether a file named after a window (`to-2026-11-20-10-05…`)
//! or a folder named after a date (`2026-11-20/`, `dt=2026-11-20/`) can hold a record in it.
//!
//! The forms: `now`, `today`, `yesterday` (their local midnight); a duration back from now
//! (`90s`, `30m`, `2h`, `7d`, `1w`, `1h30m`: humantime's units); RFC 3339 with its offset
//! (`2026-11-20T10:00:00+01:00`, `…Z`); `YYYY-MM-DD[THH:MM[:SS]]` (a space for the `T` works
//! too) and `HH:MM[:SS]` (today) in the configured zone.
//!
//! Skipping: a window's records have event times inside the window, parts included, so a
//! file whose window ends before the range or starts after it holds none of it. Names are read
//! in the configured zone, with a margin of [`NAME_MARGIN`] on each side (a daylight-saving
//! hour, a window name read in the zone of the other pass). A name that is not a window's (in
//! that zone) is never skipped. An archive written under another `time_zone` must be queried
//! with that config (README, "Queries").
//!
//! It never reads a file nor lists a bucket ([`crate::inputs`] does, asking this module).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use maillog_batch::window::{WINDOW_SECONDS, WindowId};
use maillog_parse::{Kind, Zone};

/// How far outside a range a window or a day named in the configured zone is still read.
pub const NAME_MARGIN: i64 = 3600;

/// An instant range: microseconds since the Unix epoch, `since` inclusive, `until` exclusive;
/// an open side is unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// The first instant in the range.
    pub since: Option<i64>,
    /// The first instant after the range.
    pub until: Option<i64>,
}

impl Range {
    /// Whether the instant `micros` is in the range.
    pub fn contains(&self, micros: i64) -> bool {
        self.since.is_none_or(|since| micros >= since)
            && self.until.is_none_or(|until| micros < until)
    }

    /// Whether the range is unbounded on both sides.
    pub fn is_all(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// Whether `[start, end)` (unix seconds), widened by [`NAME_MARGIN`], meets the range.
    fn meets(&self, start: i64, end: i64) -> bool {
        let (start, end) = (start - NAME_MARGIN, end + NAME_MARGIN);
        self.since.is_none_or(|since| end * 1_000_000 > since)
            && self.until.is_none_or(|until| start * 1_000_000 < until)
    }

    /// Whether the archive file `name` may hold a record in the range: false only for a
    /// window's file (read in `zone`) that cannot.
    pub fn may_hold_file(&self, name: &str, zone: &Zone) -> bool {
        if self.is_all() {
            return true;
        }
        let name = name.strip_suffix(".gz").unwrap_or(name);
        let bz2 = match name.strip_suffix(".json") {
            Some(stem) => format!("{stem}.json.bz2"),
            None => name.to_owned(),
        };
        match WindowId::from_file_name(&bz2, zone) {
            Some(id) => self.meets(id.start, id.start + WINDOW_SECONDS),
            None => true,
        }
    }

    /// Whether the folder `segment` (one path segment) may hold records in the range: false
    /// only for a date (`2026-11-20`, `dt=2026-11-20`: a local date in `zone`) that cannot.
    pub fn may_hold_dir(&self, segment: &str, zone: &Zone) -> bool {
        if self.is_all() {
            return true;
        }
        let date = segment.strip_prefix("dt=").unwrap_or(segment);
        let Ok(day) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
            return true;
        };
        let Some(next) = day.checked_add_days(Days::new(1)) else {
            return true;
        };
        self.meets(local_midnight(day, zone), local_midnight(next, zone))
    }
}

/// The range a query asks for, and the zone the archive's names are read in: which files and
/// folders it may skip unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The records' event times.
    pub range: Range,
    /// The configured zone.
    pub zone: Zone,
    /// The query joins `to` records with the sizes of their messages' `from` records, which
    /// were logged earlier, maybe days before the range (a message deferred): `from` files
    /// and date folders before the range are read then (never those after it).
    pub joins_sizes: bool,
    /// The kinds of record the query reads: the mirror's folder of the other (`mirror/from/`,
    /// `mirror/to/`) is not walked, nor its files' footers read. (The scan skips the archive's
    /// files of that kind by name, counting them as skipped.)
    pub kinds: &'static [Kind],
}

impl Selection {
    /// Everything: nothing is skipped.
    pub fn all() -> Self {
        Selection {
            range: Range::default(),
            zone: Zone::Utc,
            joins_sizes: false,
            kinds: BOTH_KINDS,
        }
    }

    /// [`Range::may_hold_file`] in the zone (a `from` file of the join: before the range's
    /// end).
    pub fn may_hold_file(&self, name: &str) -> bool {
        let range = match self.joins_sizes && name.starts_with("from-") {
            true => self.until_only(),
            false => self.range,
        };
        range.may_hold_file(name, &self.zone)
    }

    /// [`Range::may_hold_dir`] in the zone (with the join: before the range's end).
    pub fn may_hold_dir(&self, segment: &str) -> bool {
        let range = match self.joins_sizes {
            true => self.until_only(),
            false => self.range,
        };
        range.may_hold_dir(segment, &self.zone)
    }

    /// The kinds of record read by a query that reads `from` and `to` records as told.
    pub fn kinds_read(from: bool, to: bool) -> &'static [Kind] {
        match (from, to) {
            (true, false) => &[Kind::From],
            (false, true) => &[Kind::To],
            _ => BOTH_KINDS,
        }
    }

    /// The range with no start.
    fn until_only(&self) -> Range {
        Range {
            since: None,
            until: self.range.until,
        }
    }
}

/// Both kinds of record, `from` first.
pub const BOTH_KINDS: &[Kind] = &[Kind::From, Kind::To];

/// A range that holds no instant: `--until` at or before `--since`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the range {0} is empty: --until must be after --since")]
pub struct EmptyRange(pub Range);

impl Range {
    /// `since` and `until` resolved in `zone` at `now`; an empty range is an error (a typo
    /// more often than a question).
    pub fn of(
        since: Option<TimeSpec>,
        until: Option<TimeSpec>,
        zone: &Zone,
        now: DateTime<Utc>,
    ) -> Result<Range, EmptyRange> {
        let range = Range {
            since: since.map(|t| t.resolve(zone, now)),
            until: until.map(|t| t.resolve(zone, now)),
        };
        match (range.since, range.until) {
            (Some(since), Some(until)) if until <= since => Err(EmptyRange(range)),
            _ => Ok(range),
        }
    }
}

/// A value of `--since`/`--until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    /// The moment the query runs.
    Now,
    /// A local day's midnight.
    Day(DaySpec),
    /// That long before now.
    Ago(std::time::Duration),
    /// An instant with its offset (RFC 3339), microseconds since the epoch.
    Instant(i64),
    /// A wall-clock time in the configured zone.
    Local(NaiveDateTime),
    /// A wall-clock time today in the configured zone.
    TimeToday(NaiveTime),
}

/// A value of `--day`: a calendar day in the configured zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaySpec {
    /// Today, where the configured zone is.
    Today,
    /// The day before.
    Yesterday,
    /// That date.
    Date(NaiveDate),
}

/// A `--since`/`--until`/`--day` value in none of the forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a {what}: expected {forms}")]
pub struct SpecError {
    text: String,
    what: &'static str,
    forms: &'static str,
}

const TIME_FORMS: &str = "now, today, yesterday, a duration back from now (2h, 7d, 1h30m), \
    YYYY-MM-DD[THH:MM[:SS]] or HH:MM in the configured time zone, or RFC 3339 with an offset \
    (2026-11-20T10:00:00+01:00)";
const DAY_FORMS: &str = "today, yesterday or YYYY-MM-DD (a day in the configured time zone)";

impl FromStr for DaySpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "today" => Ok(DaySpec::Today),
            "yesterday" => Ok(DaySpec::Yesterday),
            date => NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map(DaySpec::Date)
                .map_err(|_| SpecError {
                    text: text.to_owned(),
                    what: "day",
                    forms: DAY_FORMS,
                }),
        }
    }
}

impl FromStr for TimeSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("now") {
            return Ok(TimeSpec::Now);
        }
        if let Ok(day) = trimmed.parse::<DaySpec>() {
            return Ok(TimeSpec::Day(day));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(trimmed) {
            return Ok(TimeSpec::Instant(t.timestamp_micros()));
        }
        let normalized = trimmed.replacen(' ', "T", 1);
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(&normalized, format) {
                return Ok(TimeSpec::Local(t));
            }
        }
        for format in ["%H:%M:%S", "%H:%M"] {
            if let Ok(t) = NaiveTime::parse_from_str(trimmed, format) {
                return Ok(TimeSpec::TimeToday(t));
            }
        }
        // Digits first: "2h", "7d" — never a word that merely parses as a duration.
        if trimmed.starts_with(|c: char| c.is_ascii_digit())
            && let Ok(ago) = humantime::parse_duration(trimmed)
        {
            return Ok(TimeSpec::Ago(ago));
        }
        Err(SpecError {
            text: text.to_owned(),
            what: "time",
            forms: TIME_FORMS,
        })
    }
}

impl TimeSpec {
    /// The instant (microseconds since the epoch) this means in `zone` at `now`.
    pub fn resolve(&self, zone: &Zone, now: DateTime<Utc>) -> i64 {
        match *self {
            TimeSpec::Now => now.timestamp_micros(),
            TimeSpec::Day(day) => day.resolve(zone, now).0,
            TimeSpec::Ago(ago) => {
                let ago = i64::try_from(ago.as_micros()).unwrap_or(i64::MAX);
                now.timestamp_micros().saturating_sub(ago)
            }
            TimeSpec::Instant(micros) => micros,
            TimeSpec::Local(local) => local_micros(local, zone),
            TimeSpec::TimeToday(time) => local_micros(local_date(now, zone).and_time(time), zone),
        }
    }
}

impl DaySpec {
    /// The day as a range `[midnight, next midnight)` in `zone` (microseconds), at `now`.
    pub fn resolve(&self, zone: &Zone, now: DateTime<Utc>) -> (i64, i64) {
        let today = local_date(now, zone);
        let day = match *self {
            DaySpec::Today => today,
            DaySpec::Yesterday => today.pred_opt().unwrap_or(today),
            DaySpec::Date(date) => date,
        };
        let next = day.succ_opt().unwrap_or(day);
        (
            local_midnight(day, zone) * 1_000_000,
            local_midnight(next, zone) * 1_000_000,
        )
    }

    /// The range of this day.
    pub fn range(&self, zone: &Zone, now: DateTime<Utc>) -> Range {
        let (since, until) = self.resolve(zone, now);
        Range {
            since: Some(since),
            until: Some(until),
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |micros: Option<i64>| {
            micros
                .and_then(DateTime::from_timestamp_micros)
                .map_or_else(|| "…".to_owned(), |t| t.to_rfc3339())
        };
        write!(f, "[{}, {})", side(self.since), side(self.until))
    }
}

/// The local date of `now` in `zone`.
fn local_date(now: DateTime<Utc>, zone: &Zone) -> NaiveDate {
    let offset = chrono::Duration::seconds(i64::from(zone.offset_at(now)));
    (now.naive_utc() + offset).date()
}

/// Microseconds since the epoch of the wall-clock time `local` in `zone`.
fn local_micros(local: NaiveDateTime, zone: &Zone) -> i64 {
    local.and_utc().timestamp_micros() - i64::from(zone.offset_of_local(local)) * 1_000_000
}

/// Unix seconds of `day`'s midnight in `zone`.
fn local_midnight(day: NaiveDate, zone: &Zone) -> i64 {
    let midnight = day.and_time(NaiveTime::MIN);
    midnight.and_utc().timestamp() - i64::from(zone.offset_of_local(midnight))
}

#[cfg(test)]
mod tests;
