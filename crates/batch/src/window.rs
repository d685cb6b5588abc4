//! Windows: which 5-minute file a record belongs to, and what that file is called.
//!
//! A window is aligned to the clock in the configured zone (hh:00, hh:05, … local time) and
//! named by its start, as the contract says: `{kind}-{YYYY-MM-DD-HH-MM}.json.bz2`. Records that
//! arrive after a window was sealed go into further parts, `….part-001.json.bz2` and on, whose
//! names sort after the first. This module is pure arithmetic on names and times.
//!
//! # The hour that repeats
//! Two different windows never share a name. Where a zone falls back (Europe/Berlin at 03:00
//! CEST on the last Sunday of October), the local times of one hour pass twice; the windows of
//! the first pass keep the plain name, the windows of the second pass carry their UTC offset
//! after an underscore: `from-2025-10-26-02-30.json.bz2` (02:30 CEST, 00:30 UTC), then
//! `from-2025-10-26-02-30_+0100.json.bz2` (02:30 CET, 01:30 UTC), whose further parts are
//! `…_+0100.part-001.json.bz2`. The date and hour placeholders of a key are the local ones
//! either way. Zones with a fixed offset, UTC among them, never repeat an hour and never get
//! the suffix.

use std::fmt;

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};
use maillog_parse::{Kind, Zone};
use serde::{Deserialize, Serialize};

/// Window length: 5 minutes.
pub const WINDOW_SECONDS: i64 = 300;

/// One file of the archive: a kind, a window (its start, in UTC seconds) and a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowId {
    /// `from` or `to`.
    #[serde(with = "kind_name")]
    pub kind: Kind,
    /// The window's start, unix seconds.
    pub start: i64,
    /// 0 for the window's first file; 1, 2, … for records that came after it was sealed.
    pub part: u32,
}

impl WindowId {
    /// The window's end (exclusive), unix seconds.
    pub fn end(&self) -> i64 {
        self.start + WINDOW_SECONDS
    }

    /// The window's start as local wall-clock time in `zone`.
    pub fn local_start(&self, zone: &Zone) -> NaiveDateTime {
        let utc = DateTime::<Utc>::from_timestamp(self.start, 0).unwrap_or_default();
        utc.naive_utc() + Duration::seconds(i64::from(zone.offset_at(utc)))
    }

    /// `from-2026-11-25-10-05.json.bz2`, `from-2026-11-25-10-05.part-001.json.bz2`; in the
    /// second pass of an hour that repeats, `from-2025-10-26-02-30_+0100.json.bz2`.
    pub fn file_name(&self, zone: &Zone) -> String {
        let stamp = self.local_start(zone).format("%Y-%m-%d-%H-%M");
        let repeat = match repeated_offset(self.start, zone) {
            Some(offset) => format_offset(offset),
            None => String::new(),
        };
        match self.part {
            0 => format!("{}-{stamp}{repeat}.json.bz2", self.kind.as_str()),
            n => format!(
                "{}-{stamp}{repeat}.part-{n:03}.json.bz2",
                self.kind.as_str()
            ),
        }
    }
}

impl WindowId {
    /// The window a file name names in `zone` — the inverse of [`WindowId::file_name`], for
    /// files found without a state that says which window they hold.
    pub fn from_file_name(name: &str, zone: &Zone) -> Option<WindowId> {
        Self::read_file_name(name, zone, false)
    }

    /// The window of a file name written in `zone` or under another `time_zone` (the archive
    /// outlives a config): as [`WindowId::from_file_name`], and else the name's stamp read at
    /// its own offset (a repeated hour's `_+0100`), or at `zone`'s for that local time — the
    /// start then right to within the two zones' difference. For what must take every window
    /// file of an archive, whichever zone named it (the mirror).
    pub fn from_any_file_name(name: &str, zone: &Zone) -> Option<WindowId> {
        Self::read_file_name(name, zone, true)
    }

    fn read_file_name(name: &str, zone: &Zone, lenient: bool) -> Option<WindowId> {
        let stem = name.strip_suffix(".json.bz2")?;
        let (stem, part) = match stem.rsplit_once(".part-") {
            Some((stem, part)) => (stem, part.parse().ok()?),
            None => (stem, 0),
        };
        let (kind, stamp) = if let Some(rest) = stem.strip_prefix("from-") {
            (Kind::From, rest)
        } else {
            (Kind::To, stem.strip_prefix("to-")?)
        };
        let (stamp, repeat) = match stamp.split_once('_') {
            Some((stamp, offset)) => (stamp, Some(offset)),
            None => (stamp, None),
        };
        let local = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d-%H-%M").ok()?;
        let offset = match repeat {
            Some(offset) => {
                let sign = match offset.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let (hours, minutes) = (offset.get(1..3)?, offset.get(3..5)?);
                sign * (hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60)
            }
            None => i64::from(zone.offset_of_local(local)),
        };
        let start = local.and_utc().timestamp() - offset;
        let id = WindowId { kind, start, part };
        if id.file_name(zone) == name {
            return Some(id);
        }
        if !lenient {
            return None;
        }
        // Not a name `zone` gives: one written under another `time_zone` — a repeated hour's
        // name, with its own offset, where `zone` repeats no hour; a local time `zone` skips.
        // The same window at the offset the name was read with, named without the suffix of a
        // repeated hour: the name is a window's if that gives it back (a 5-minute mark, the
        // part as written).
        let fixed = Zone::Fixed(FixedOffset::east_opt(i32::try_from(offset).ok()?)?);
        let plain = match repeat {
            Some(offset) => name.replacen(&format!("_{offset}"), "", 1),
            None => name.to_owned(),
        };
        let window = window_start(start, &fixed) == start;
        (window && id.file_name(&fixed) == plain).then_some(id)
    }
}

impl fmt::Display for WindowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.kind.as_str(), self.start, self.part)
    }
}

/// The start (unix seconds) of the window holding instant `unix` in `zone`: local time floored
/// to 5 minutes, back to UTC. Zones whose offset is not a multiple of 5 minutes still get
/// windows on their own clock's 5-minute marks.
pub fn window_start(unix: i64, zone: &Zone) -> i64 {
    let utc = DateTime::<Utc>::from_timestamp(unix, 0).unwrap_or_default();
    let offset = i64::from(zone.offset_at(utc));
    let local = unix + offset;
    local - local.rem_euclid(WINDOW_SECONDS) - offset
}

/// How far back a fall-back transition is looked for: longer than any zone's repeated span.
const REPEAT_LOOKBACK: i64 = 3 * 3600;

/// The UTC offset of `start` when its local time already passed once, earlier, under a larger
/// offset (the second pass of an hour that repeats); `None` otherwise.
fn repeated_offset(start: i64, zone: &Zone) -> Option<i32> {
    let offset_at = |unix: i64| {
        let utc = DateTime::<Utc>::from_timestamp(unix, 0).unwrap_or_default();
        zone.offset_at(utc)
    };
    let now = offset_at(start);
    let before = offset_at(start - REPEAT_LOOKBACK);
    let gained = i64::from(before) - i64::from(now);
    // The same local time `gained` seconds earlier in UTC, under the larger offset.
    (gained > 0 && offset_at(start - gained) == before).then_some(now)
}

/// `_+0100`, `_-0330`.
fn format_offset(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    format!("_{sign}{:02}{:02}", minutes / 60, minutes % 60)
}

/// Renders an archive key from a template: `{date}` (`YYYY-MM-DD` of the window's start),
/// `{hour}` (`HH`), `{kind}`, `{name}` (the file name) and `{host}` (a tag for several central
/// hosts writing one bucket). The default is the original layout,
/// `mail_logs/{date}/{name}`; Hive style is `mail_logs/dt={date}/{name}`.
pub fn render_key(template: &str, id: &WindowId, zone: &Zone, host: &str) -> String {
    let local = id.local_start(zone);
    template
        .replace("{date}", &local.format("%Y-%m-%d").to_string())
        .replace("{hour}", &local.format("%H").to_string())
        .replace("{kind}", id.kind.as_str())
        .replace("{host}", host)
        .replace("{name}", &id.file_name(zone))
}

/// The placeholders [`render_key`] knows.
pub const KEY_PLACEHOLDERS: [&str; 5] = ["{date}", "{hour}", "{kind}", "{name}", "{host}"];

/// An archive key template, checked once when it is parsed: it names the file (`{name}`), so
/// no two window files share a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate(String);

/// A key template that cannot name window files.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} must contain {{name}} (placeholders: {KEY_PLACEHOLDERS:?})")]
pub struct KeyTemplateError(String);

impl KeyTemplate {
    /// The original layout, `mail_logs/{date}/{name}`.
    pub fn original() -> Self {
        KeyTemplate("mail_logs/{date}/{name}".into())
    }

    /// A template as written in the config.
    pub fn parse(text: &str) -> Result<Self, KeyTemplateError> {
        if text.contains("{name}") {
            Ok(KeyTemplate(text.to_owned()))
        } else {
            Err(KeyTemplateError(text.to_owned()))
        }
    }

    /// The key of window file `id`, named in `zone`, for central host `host` ([`render_key`]).
    pub fn render(&self, id: &WindowId, zone: &Zone, host: &str) -> String {
        render_key(&self.0, id, zone, host)
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

mod kind_name {
    use maillog_parse::Kind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        match String::deserialize(d)?.as_str() {
            "from" => Ok(Kind::From),
            "to" => Ok(Kind::To),
            other => Err(serde::de::Error::custom(format!("unknown kind {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp()
    }

    #[test]
    fn windows_are_aligned_to_the_local_clock() {
        let utc = Zone::Utc;
        assert_eq!(
            window_start(unix("2026-11-25T10:07:59Z"), &utc),
            unix("2026-11-25T10:05:00Z")
        );
        assert_eq!(
            window_start(unix("2026-11-25T10:05:00Z"), &utc),
            unix("2026-11-25T10:05:00Z")
        );
        let nepal: Zone = "+05:45".parse().unwrap();
        // 10:07 UTC is 15:52 in Nepal: the window starts at 15:50 local = 10:05 UTC.
        assert_eq!(
            window_start(unix("2026-11-25T10:07:00Z"), &nepal),
            unix("2026-11-25T10:05:00Z")
        );
        let india: Zone = "+05:30".parse().unwrap();
        assert_eq!(
            window_start(unix("2026-11-25T10:07:00Z"), &india),
            unix("2026-11-25T10:05:00Z")
        );
        let odd: Zone = "+00:02".parse().unwrap();
        // 10:07 UTC is 10:09 local: window 10:05 local = 10:03 UTC.
        assert_eq!(
            window_start(unix("2026-11-25T10:07:00Z"), &odd),
            unix("2026-11-25T10:03:00Z")
        );
    }

    /// Every window of the day a zone falls back, and the days around it: no two share a name.
    fn assert_unique_names(zone: &str, day: &str) {
        let zone: Zone = zone.parse().unwrap();
        let first = unix(&format!("{day}T00:00:00Z")) - 86400;
        let mut names = Vec::new();
        for i in 0..(3 * 86400 / WINDOW_SECONDS) {
            let at = first + i * WINDOW_SECONDS;
            let id = WindowId {
                kind: Kind::To,
                start: window_start(at, &zone),
                part: 0,
            };
            names.push((id.start, id.file_name(&zone)));
        }
        names.dedup();
        let mut by_name = names.clone();
        by_name.sort_by(|a, b| a.1.cmp(&b.1));
        by_name.dedup_by(|a, b| a.1 == b.1);
        assert_eq!(by_name.len(), names.len(), "no name is used twice");
    }

    #[test]
    fn the_hour_that_repeats_gets_names_of_its_own() {
        assert_unique_names("Europe/Berlin", "2025-10-26");
        assert_unique_names("America/New_York", "2025-11-02");
        assert_unique_names("Australia/Lord_Howe", "2026-04-05"); // falls back 30 minutes
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        let name = |utc: &str| {
            let start = window_start(unix(utc), &berlin);
            let id = WindowId {
                kind: Kind::From,
                start,
                part: 0,
            };
            (
                id.file_name(&berlin),
                WindowId { part: 1, ..id }.file_name(&berlin),
            )
        };
        assert_eq!(
            name("2025-10-26T00:30:00Z").0,
            "from-2025-10-26-02-30.json.bz2"
        );
        assert_eq!(
            name("2025-10-26T01:30:00Z"),
            (
                "from-2025-10-26-02-30_+0100.json.bz2".to_owned(),
                "from-2025-10-26-02-30_+0100.part-001.json.bz2".to_owned()
            )
        );
        // After the repeated hour, and in spring (an hour skipped, none repeated): plain names.
        assert_eq!(
            name("2025-10-26T02:05:00Z").0,
            "from-2025-10-26-03-05.json.bz2"
        );
        assert_eq!(
            name("2025-03-30T01:05:00Z").0,
            "from-2025-03-30-03-05.json.bz2"
        );
        let ny: Zone = "America/New_York".parse().unwrap();
        let id = WindowId {
            kind: Kind::To,
            start: window_start(unix("2025-11-02T06:10:00Z"), &ny),
            part: 0,
        };
        assert_eq!(id.file_name(&ny), "to-2025-11-02-01-10_-0500.json.bz2");
    }

    #[test]
    fn a_name_gives_back_its_window() {
        for zone in ["UTC", "+05:30", "Europe/Berlin", "America/New_York"] {
            let zone: Zone = zone.parse().unwrap();
            let first = unix("2025-10-25T00:00:00Z");
            for i in 0..(3 * 86400 / WINDOW_SECONDS) {
                for (kind, part) in [(Kind::From, 0), (Kind::To, 3)] {
                    let start = window_start(first + i * WINDOW_SECONDS, &zone);
                    let id = WindowId { kind, start, part };
                    let name = id.file_name(&zone);
                    assert_eq!(WindowId::from_file_name(&name, &zone), Some(id), "{name}");
                }
            }
        }
        let utc = Zone::Utc;
        for bad in [
            "x.json.bz2",
            "from-2025-13-01-00-00.json.bz2",
            "from-2025-10-26-02-30_+01.json.bz2",
        ] {
            assert_eq!(WindowId::from_file_name(bad, &utc), None, "{bad}");
            assert_eq!(WindowId::from_any_file_name(bad, &utc), None, "{bad}");
        }
    }

    #[test]
    fn a_name_another_zone_gave_is_a_window_to_from_any_file_name() {
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        let plus_one: Zone = "+01:00".parse().unwrap();
        // The repeated hour's second pass, named in Berlin, read after a switch to +01:00.
        let name = "to-2025-10-26-02-30_+0100.part-001.json.bz2";
        let id = WindowId {
            kind: Kind::To,
            start: unix("2025-10-26T01:30:00Z"),
            part: 1,
        };
        assert_eq!(WindowId::from_file_name(name, &berlin), Some(id));
        assert_eq!(WindowId::from_file_name(name, &plus_one), None);
        assert_eq!(WindowId::from_any_file_name(name, &plus_one), Some(id));
        // A local time Berlin skips, named under +01:00 and read in Berlin: at Berlin's offset
        // for it (either is within the zones' difference).
        let skipped = "from-2025-03-30-02-05.json.bz2";
        assert_eq!(WindowId::from_file_name(skipped, &berlin), None);
        let read = WindowId::from_any_file_name(skipped, &berlin).expect("a window");
        assert!(
            (read.start - unix("2025-03-30T01:05:00Z")).abs() <= 3600,
            "{read}"
        );
        // Still only windows' names: a 5-minute mark, a part as written.
        for bad in [
            "to-2025-10-26-02-32_+0100.json.bz2",
            "to-2025-10-26-02-30_+0100.part-1.json.bz2",
            "to-2025-10-26-02-30_+01.json.bz2",
        ] {
            assert_eq!(WindowId::from_any_file_name(bad, &plus_one), None, "{bad}");
        }
    }

    #[test]
    fn names_and_keys_follow_the_contract() {
        let zone: Zone = "Europe/Berlin".parse().unwrap();
        let id = WindowId {
            kind: Kind::From,
            start: unix("2026-11-25T23:55:00Z"),
            part: 0,
        };
        assert_eq!(id.file_name(&zone), "from-2026-11-26-00-55.json.bz2");
        let key = render_key("mail_logs/{date}/{name}", &id, &zone, "");
        assert_eq!(key, "mail_logs/2026-11-26/from-2026-11-26-00-55.json.bz2");
        let late = WindowId { part: 2, ..id };
        assert_eq!(
            late.file_name(&zone),
            "from-2026-11-26-00-55.part-002.json.bz2"
        );
        assert!(
            late.file_name(&zone) > id.file_name(&zone),
            "a further part sorts after"
        );
        let hive = render_key(
            "logs/{host}/dt={date}/{kind}/{name}",
            &late,
            &zone,
            "relay1",
        );
        assert_eq!(
            hive,
            "logs/relay1/dt=2026-11-26/from/from-2026-11-26-00-55.part-002.json.bz2"
        );
    }
}
