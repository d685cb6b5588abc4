//! The lines the model writes: sendmail `from=`/`to=` lines and a few lines that make no record,
//! each with a queue id of its own (so every record is unique and a lost or repeated one can be
//! named), stamped in the styles the pipeline must handle.
//!
//! Event times are chosen so that the truth — `maillog parse` of the lines — is well defined:
//! ISO stamps carry their offset; year-less (BSD) stamps are either resolved with a fixed
//! `year` (config `year`, `maillog parse --year`) or are within minutes of the wall clock,
//! where every reference the pipeline or `maillog parse` may use (the time a line is read, a
//! file's modification time) infers the same year.

use chrono::{DateTime, Datelike, NaiveDate, Weekday};

use super::rng::Rng;

/// The zones a case may run in: one without daylight saving, and two whose fall-back hours
/// repeat on different days; and a fixed offset, which a config edit may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zone {
    Utc,
    Berlin,
    NewYork,
    /// `+01:00`: Berlin's winter offset, all year.
    PlusOne,
}

impl Zone {
    /// The `time_zone` of the config and `maillog parse --tz`.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Utc => "UTC",
            Zone::Berlin => "Europe/Berlin",
            Zone::NewYork => "America/New_York",
            Zone::PlusOne => "+01:00",
        }
    }

    /// The zone's offset from UTC at `unix`, in seconds (the EU and US rules of today).
    pub fn offset(self, unix: i64) -> i32 {
        let year = DateTime::from_timestamp(unix, 0).unwrap().year();
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
        match self {
            Zone::Utc => 0,
            Zone::PlusOne => 3600,
            Zone::Berlin => {
                // Summer time from the last Sunday of March, 01:00 UTC, to the last Sunday of
                // October, 01:00 UTC.
                let start = midnight(last_sunday(year, 3)) + 3600;
                let end = midnight(last_sunday(year, 10)) + 3600;
                if (start..end).contains(&unix) {
                    7200
                } else {
                    3600
                }
            }
            Zone::NewYork => {
                // From the second Sunday of March, 02:00 EST, to the first Sunday of November,
                // 02:00 EDT.
                let start = midnight(nth_sunday(year, 3, 2)) + 7 * 3600;
                let end = midnight(nth_sunday(year, 11, 1)) + 6 * 3600;
                if (start..end).contains(&unix) {
                    -4 * 3600
                } else {
                    -5 * 3600
                }
            }
        }
    }

    /// The UTC instant the clocks fall back at in 2025 (UTC and `+01:00`: Berlin's, where
    /// nothing repeats).
    pub fn fall_back_2025(self) -> i64 {
        let at = |d: &str| {
            DateTime::parse_from_rfc3339(d)
                .unwrap()
                .with_timezone(&chrono::Utc)
                .timestamp()
        };
        match self {
            Zone::Utc | Zone::Berlin | Zone::PlusOne => at("2025-10-26T01:00:00Z"),
            Zone::NewYork => at("2025-11-02T06:00:00Z"),
        }
    }
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let mut d = NaiveDate::from_ymd_opt(year, month + 1, 1)
        .unwrap()
        .pred_opt()
        .unwrap();
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt().unwrap();
    }
    d
}

fn nth_sunday(year: i32, month: u32, n: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n as u8).unwrap()
}

/// An ISO 8601 stamp of `unix` with `zone`'s offset: `2026-12-03T10:00:10+01:00`.
pub fn iso(zone: Zone, unix: i64) -> String {
    let offset = zone.offset(unix);
    let local = DateTime::from_timestamp(unix + i64::from(offset), 0).unwrap();
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.unsigned_abs();
    format!(
        "{}{sign}{:02}:{:02}",
        local.format("%Y-%m-%dT%H:%M:%S"),
        o / 3600,
        o % 3600 / 60
    )
}

/// A BSD stamp of `unix` in `zone`'s local time: `Dec  3 10:00:10`.
pub fn bsd(zone: Zone, unix: i64) -> String {
    let local = DateTime::from_timestamp(unix + i64::from(zone.offset(unix)), 0).unwrap();
    local.format("%b %e %H:%M:%S").to_string()
}

/// The wall clock, unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// What the body of a line is: a `from=` record, a `to=` record with one or two recipients, or
/// a sendmail line that makes no record.
fn body(rng: &mut Rng, qid: &str, n: u64) -> String {
    let k = rng.below(9) + 1;
    match rng.below(10) {
        0..=5 => format!(
            "{qid}: from=<user{n}@example.com>, size={}, class=0, nrcpts=1, \
             msgid=<{qid}.{n}@example.com>, proto=ESMTP, daemon=MTA, \
             relay=app0{k}.example.com [10.1.2.{k}]",
            rng.below(90_000) + 300
        ),
        6..=8 => {
            let to = if rng.below(3) == 0 {
                format!("<rcpt{n}@example.net>,<copy{n}@example.org>")
            } else {
                format!("<rcpt{n}@example.net>")
            };
            format!(
                "{qid}: to={to}, delay=00:00:0{k}, xdelay=00:00:0{k}, mailer=esmtp, \
                 pri=12{n}, relay=mx{k}.example.net. [192.0.2.{k}], dsn=2.0.0, \
                 stat=Sent (OK, id {n})"
            )
        }
        _ => format!(
            "{qid}: ruleset=check_rcpt, arg1=<spam{n}@example.biz>, \
             relay=host{k}.example.biz [198.51.100.{k}], reject=550 5.7.1 Relaying denied"
        ),
    }
}

/// One whole line (without its newline): `stamp host sendmail[pid]: body`.
pub fn line(rng: &mut Rng, stamp: &str, n: u64) -> String {
    let host = rng.below(4) + 1;
    let program = ["sendmail", "sm-mta"][rng.below(2) as usize];
    let qid = format!("q{n:011}M{host}");
    let body = body(rng, &qid, n);
    format!(
        "{stamp} mail{host} {program}[{}]: {body}",
        1000 + n % 30_000
    )
}

/// A `to=` line of exactly `len` bytes (without its newline): its `stat=`, which runs to the
/// end of the line, is padded. Lengths around 64 KiB and 1 MiB find where a reader cuts.
pub fn long_line(stamp: &str, n: u64, len: usize) -> String {
    let qid = format!("q{n:011}L1");
    let mut line = format!(
        "{stamp} mail1 sm-mta[{}]: {qid}: to=<rcpt{n}@example.net>, delay=00:00:01, \
         xdelay=00:00:01, mailer=esmtp, pri=120{n}, relay=mx.example.net. [192.0.2.9], \
         dsn=5.0.0, stat=Service unavailable (reply: ",
        1000 + n % 30_000
    );
    let pad = len.saturating_sub(line.len() + 1);
    line.extend(std::iter::repeat_n('x', pad));
    line.push(')');
    line
}
