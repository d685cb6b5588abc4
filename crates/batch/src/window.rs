//! Windows: which 5-minute file a record belongs to, and what that file is called.
//!
//! A window is aligned to the clock in the configured zone (hh:00, hh:05, … local time) and
//! named by its start, as the contract says: `{kind}-{YYYY-MM-DD-HH-MM}.json.bz2`. Records that
//! arrive after a window was sealed go into further parts, `….part-001.json.bz2` and on, whose
//! names sort after the first. This module is pure arithmetic on names and times.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
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

    /// `from-2026-11-25-10-05.json.bz2`, `from-2026-11-25-10-05.part-001.json.bz2`.
    pub fn file_name(&self, zone: &Zone) -> String {
        let stamp = self.local_start(zone).format("%Y-%m-%d-%H-%M");
        match self.part {
            0 => format!("{}-{stamp}.json.bz2", self.kind.as_str()),
            n => format!("{}-{stamp}.part-{n:03}.json.bz2", self.kind.as_str()),
        }
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
