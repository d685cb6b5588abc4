//! Event time: from a header's stamp to the record's `ts`.
//!
//! This module owns the configured time zone, the year policy for year-less (BSD) stamps and the
//! RFC 3339 text of `ts`. The contract's rule for a year-less stamp: in the configured zone, the
//! latest year that does not put the event more than a day after the reference instant (the time
//! the line is read, a finished file's modification time, or a configured year).
//!
//! It never reads text (that is `crate::header`) and never reads the clock: the caller hands in
//! the reference instant, so that a replay with the same reference infers the same year.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset,
    TimeZone, Timelike, Utc,
};

use crate::header::{MAX_FRACTION_DIGITS, Stamp};

/// The time zone year-less and offset-less stamps are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// UTC, the default.
    Utc,
    /// A fixed offset such as `+02:00`.
    Fixed(FixedOffset),
    /// An IANA zone such as `Europe/Berlin`, daylight saving time included.
    Named(chrono_tz::Tz),
}

/// A time zone setting that is none of `UTC`, `±hh:mm` or an IANA zone name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown time zone {0:?}: expected UTC, an offset such as +02:00, or an IANA name such as Europe/Berlin"
)]
pub struct ZoneError(pub String);

impl FromStr for Zone {
    type Err = ZoneError;

    fn from_str(text: &str) -> Result<Self, ZoneError> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("utc") || trimmed == "Z" {
            return Ok(Zone::Utc);
        }
        if let Some(offset) = parse_fixed_offset(trimmed) {
            return Ok(Zone::Fixed(offset));
        }
        trimmed
            .parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| ZoneError(text.to_owned()))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Utc => f.write_str("UTC"),
            Zone::Fixed(offset) => write!(f, "{offset}"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

impl Zone {
    /// The offset (seconds east of UTC) of a wall-clock time in this zone. In a daylight saving
    /// overlap the earlier instant wins; in a gap, the offset from before the gap applies.
    pub fn offset_of_local(&self, local: NaiveDateTime) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(offset) => offset.local_minus_utc(),
            Zone::Named(tz) => match tz.offset_from_local_datetime(&local) {
                LocalResult::Single(offset) | LocalResult::Ambiguous(offset, _) => {
                    offset.fix().local_minus_utc()
                }
                LocalResult::None => tz
                    .offset_from_utc_datetime(&(local - Duration::hours(24)))
                    .fix()
                    .local_minus_utc(),
            },
        }
    }

    /// The offset (seconds east of UTC) in effect at an instant.
    pub fn offset_at(&self, instant: DateTime<Utc>) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(offset) => offset.local_minus_utc(),
            Zone::Named(tz) => tz
                .offset_from_utc_datetime(&instant.naive_utc())
                .fix()
                .local_minus_utc(),
        }
    }
}

/// `±hh:mm` or `±hhmm`.
fn parse_fixed_offset(text: &str) -> Option<FixedOffset> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// How a year-less stamp gets its year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearPolicy {
    /// Every year-less stamp is in this year.
    Fixed(i32),
    /// The latest year that puts the event no more than a day after this instant.
    Reference(DateTime<Utc>),
}

/// The zone and year policy that turn stamps into event times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeContext {
    /// The zone of year-less and offset-less stamps.
    pub zone: Zone,
    /// Where year-less stamps take their year from.
    pub year: YearPolicy,
}

impl TimeContext {
    /// A context in `zone` with the given year policy.
    pub fn new(zone: Zone, year: YearPolicy) -> Self {
        TimeContext { zone, year }
    }

    /// The event time of a stamp, or `None` when no year makes it a real date (`Feb 30`).
    pub fn resolve<'a>(&self, stamp: &Stamp<'a>) -> Option<EventTime<'a>> {
        let (h, m, s) = stamp.hms;
        let at = |year: i32| {
            NaiveDate::from_ymd_opt(year, u32::from(stamp.month), u32::from(stamp.day))?
                .and_hms_opt(u32::from(h), u32::from(m), u32::from(s))
        };
        let (local, offset_seconds) = match (stamp.year, self.year) {
            (Some(year), _) => {
                let local = at(year)?;
                let offset = match stamp.offset {
                    Some(offset) => offset.seconds,
                    None => self.zone.offset_of_local(local),
                };
                (local, offset)
            }
            (None, YearPolicy::Fixed(year)) => {
                let local = at(year)?;
                (local, self.zone.offset_of_local(local))
            }
            (None, YearPolicy::Reference(reference)) => self.infer_year(reference, at)?,
        };
        Some(EventTime {
            local,
            offset_seconds,
            fraction: stamp.fraction,
            logged: stamp.offset.map(|_| stamp.raw),
        })
    }

    /// The latest year whose instant is at most a day after `reference` (leap days look back
    /// up to eight years for a year that has them).
    fn infer_year(
        &self,
        reference: DateTime<Utc>,
        at: impl Fn(i32) -> Option<NaiveDateTime>,
    ) -> Option<(NaiveDateTime, i32)> {
        let limit = reference.timestamp() + 86_400;
        let local_reference =
            reference + Duration::seconds(i64::from(self.zone.offset_at(reference)));
        let reference_year = local_reference.year();
        (reference_year - 8..=reference_year + 1)
            .rev()
            .find_map(|year| {
                let local = at(year)?;
                let offset = self.zone.offset_of_local(local);
                let instant = local.and_utc().timestamp() - i64::from(offset);
                (instant <= limit).then_some((local, offset))
            })
    }
}

/// The time of an event: its wall clock, its UTC offset, and how to write it as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime<'a> {
    /// Wall-clock date and time (whole seconds).
    pub local: NaiveDateTime,
    /// Seconds east of UTC.
    pub offset_seconds: i32,
    /// The logged fraction with its dot, or `""`.
    pub fraction: &'a str,
    /// The stamp as logged, when it already was RFC 3339 with an offset (kept as it is).
    pub logged: Option<&'a str>,
}

impl EventTime<'_> {
    /// Seconds since the Unix epoch (the fraction dropped).
    pub fn unix_seconds(&self) -> i64 {
        self.local.and_utc().timestamp() - i64::from(self.offset_seconds)
    }

    /// Writes the RFC 3339 text of `ts` into `buf` and returns it.
    pub fn rfc3339<'b>(&'b self, buf: &'b mut TsBuf) -> &'b str {
        if let Some(logged) = self.logged {
            return logged;
        }
        buf.format(self)
    }
}

/// A stack buffer for the text of a computed `ts`: `YYYY-MM-DDThh:mm:ss`, the fraction (at most
/// [`MAX_FRACTION_DIGITS`] digits and its dot) and `±hh:mm` always fit in it.
#[derive(Debug)]
pub struct TsBuf {
    bytes: [u8; TS_CAPACITY],
    len: usize,
}

const TS_CAPACITY: usize = 19 + 1 + MAX_FRACTION_DIGITS + 6;

impl Default for TsBuf {
    fn default() -> Self {
        TsBuf {
            bytes: [0; TS_CAPACITY],
            len: 0,
        }
    }
}

impl TsBuf {
    fn format(&mut self, time: &EventTime<'_>) -> &str {
        let d = time.local;
        let offset = time.offset_seconds.unsigned_abs();
        self.len = 0;
        // Years outside 0..=9999 cannot come from a stamp (four digits, or a reference year
        // near it); `rem_euclid` keeps the text four digits wide even so.
        let year = d.year().rem_euclid(10_000) as u32;
        self.two(year / 100);
        self.two(year % 100);
        self.push(b'-');
        self.two(d.month());
        self.push(b'-');
        self.two(d.day());
        self.push(b'T');
        self.two(d.hour());
        self.push(b':');
        self.two(d.minute());
        self.push(b':');
        self.two(d.second());
        for b in time.fraction.bytes() {
            self.push(b);
        }
        self.push(if time.offset_seconds < 0 { b'-' } else { b'+' });
        self.two(offset / 3600);
        self.push(b':');
        self.two(offset % 3600 / 60);
        // Only ASCII digits and punctuation were pushed.
        std::str::from_utf8(&self.bytes[..self.len]).expect("ts is ASCII")
    }

    fn two(&mut self, n: u32) {
        self.push(b'0' + (n / 10 % 10) as u8);
        self.push(b'0' + (n % 10) as u8);
    }

    fn push(&mut self, b: u8) {
        // The capacity holds the longest ts (see TS_CAPACITY); a byte past it is dropped
        // rather than panicking.
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::parse_header;

    fn ts(line: &str, ctx: TimeContext) -> String {
        let (header, _) = parse_header(line).unwrap();
        let time = ctx.resolve(&header.stamp.unwrap()).unwrap();
        time.rfc3339(&mut TsBuf::default()).to_owned()
    }

    fn reference(text: &str) -> YearPolicy {
        YearPolicy::Reference(
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc),
        )
    }

    #[test]
    fn year_is_the_latest_not_more_than_a_day_after_the_reference() {
        let ctx = TimeContext::new(Zone::Utc, reference("2026-01-01T00:10:00Z"));
        assert_eq!(
            ts("Dec 31 23:59:59 h p: m", ctx),
            "2025-12-31T23:59:59+00:00"
        );
        assert_eq!(
            ts("Jan  1 00:05:00 h p: m", ctx),
            "2026-01-01T00:05:00+00:00"
        );
        // Up to a day ahead of the reference is still this year (clock skew, a late reader).
        assert_eq!(
            ts("Jan  2 00:09:00 h p: m", ctx),
            "2026-01-02T00:09:00+00:00"
        );
        assert_eq!(
            ts("Jan  2 00:11:00 h p: m", ctx),
            "2025-01-02T00:11:00+00:00"
        );
    }

    #[test]
    fn leap_day_looks_back_to_a_leap_year() {
        let ctx = TimeContext::new(Zone::Utc, reference("2026-06-01T00:00:00Z"));
        assert_eq!(
            ts("Feb 29 12:00:00 h p: m", ctx),
            "2024-02-29T12:00:00+00:00"
        );
        let (header, _) = parse_header("Feb 30 12:00:00 h p: m").unwrap();
        assert_eq!(ctx.resolve(&header.stamp.unwrap()), None);
    }

    #[test]
    fn configured_zone_and_fixed_year() {
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        let ctx = TimeContext::new(berlin, YearPolicy::Fixed(2025));
        assert_eq!(
            ts("Jul 12 20:53:00 h p: m", ctx),
            "2025-07-12T20:53:00+02:00"
        );
        assert_eq!(
            ts("Jan 12 20:53:00 h p: m", ctx),
            "2025-01-12T20:53:00+01:00"
        );
        let fixed = TimeContext::new("-05:30".parse().unwrap(), YearPolicy::Fixed(2025));
        assert_eq!(
            ts("Jan 12 20:53:00 h p: m", fixed),
            "2025-01-12T20:53:00-05:30"
        );
    }

    #[test]
    fn iso_stamps_keep_their_offset_and_fraction() {
        let ctx = TimeContext::new("Europe/Berlin".parse().unwrap(), YearPolicy::Fixed(1999));
        let line = "2024-06-19T05:25:41.855197-07:00 h sendmail[1]: m";
        assert_eq!(ts(line, ctx), "2024-06-19T05:25:41.855197-07:00");
        // No offset logged: the configured zone supplies it; the fraction stays.
        let line = "2024-06-19T05:25:41.5 h sendmail[1]: m";
        assert_eq!(ts(line, ctx), "2024-06-19T05:25:41.5+02:00");
    }

    #[test]
    fn zone_settings_that_are_not_zones_are_errors() {
        assert!("Mars/Olympus".parse::<Zone>().is_err());
        assert!("+25:00".parse::<Zone>().is_err());
        assert_eq!("utc".parse::<Zone>(), Ok(Zone::Utc));
    }
}
