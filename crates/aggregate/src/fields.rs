//! A record seen through its field names, whatever it was read from.
//!
//! `maillog top` counts records from the archive's JSON lines and from raw syslog lines parsed on
//! the fly; the queries (`crate::query`) must not care which. [`Fields`] is that common view: the
//! record's kind, its time, and any field by the contract's name. This module owns the view of a
//! parsed [`Record`]; `crate::json` owns the view of a JSON line.
//!
//! It never normalizes a value (that is the queries' job) and never allocates for a field that
//! the line carries as it is, except `ts` of a parsed record, which has to be written out.

use std::borrow::Cow;

use chrono::Datelike;
use maillog_parse::time::TsBuf;
use maillog_parse::{Kind, Record};

/// A record as the queries read it.
pub trait Fields {
    /// From or to.
    fn kind(&self) -> Kind;

    /// The value of the field named as in the archive contract (`src`, `dest`, `size`, `ts`,
    /// `dsn`, …), or `None` when the record does not carry it.
    fn field(&self, name: &str) -> Option<Cow<'_, str>>;

    /// When the event happened (`ts`), in microseconds since the Unix epoch, when known.
    fn unix_micros(&self) -> Option<i64>;

    /// The date of `ts` as logged (its first ten bytes, `YYYY-MM-DD`), when known. By
    /// default from [`Fields::field`]; a view that writes `ts` out gives it without that.
    fn ts_date(&self) -> Option<[u8; 10]> {
        let ts = self.field("ts")?;
        ts.as_bytes().get(..10)?.try_into().ok()
    }
}

impl Fields for Record<'_, '_> {
    fn kind(&self) -> Kind {
        self.event.kind
    }

    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        let event = self.event;
        let from = event.kind == Kind::From;
        let to = !from;
        let value = match name {
            "sendmailid" => Some(event.queue_id),
            "pid" => event.pid,
            "time" => Some(event.time),
            "mailserver" => event.host,
            "month" => return month_name(event.month).map(Cow::Borrowed),
            "day" => return (event.day > 0).then(|| Cow::Owned(event.day.to_string())),
            "ts" => {
                let mut buf = TsBuf::default();
                return Some(Cow::Owned(event.at.rfc3339(&mut buf).to_owned()));
            }
            "src" if from => event.src(),
            "size" if from => event.size,
            "classnumber" if from => event.class,
            "nrcpts" if from => event.nrcpts,
            "msgid" if from => event
                .msgid
                .map(|m| m.trim_start_matches('<').trim_end_matches('>')),
            "dest" if to => self.dest,
            "delay" if to => event.delay,
            "xdelay" if to => event.xdelay,
            "stat" if to => event.stat,
            "relay" => event.relay_parts().0,
            "relay_ip" => event.relay_parts().1,
            _ => event
                .extras
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| *value),
        };
        // The writer leaves empty values out (except `src` of the null sender): so does the view.
        value
            .filter(|v| !v.is_empty() || name == "src")
            .map(Cow::Borrowed)
    }

    fn unix_micros(&self) -> Option<i64> {
        let at = &self.event.at;
        // The logged fraction (`.123456789`), to whole microseconds.
        let digits = at.fraction.trim_start_matches('.').as_bytes();
        let micros = (0..6).fold(0i64, |micros, i| {
            let digit = digits
                .get(i)
                .map_or(0, |d| i64::from(d.wrapping_sub(b'0') % 10));
            micros * 10 + digit
        });
        Some(at.unix_seconds() * 1_000_000 + micros)
    }

    fn ts_date(&self) -> Option<[u8; 10]> {
        let at = &self.event.at;
        if let Some(logged) = at.logged {
            return logged.as_bytes().get(..10)?.try_into().ok();
        }
        // The date of the wall clock `ts` is written from, without writing `ts`.
        let date = at.local.date();
        let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
        let mut out = *b"0000-00-00";
        for (at, value, digits) in [(0, year, 4), (5, date.month(), 2), (8, date.day(), 2)] {
            for i in 0..digits {
                // A digit: `value / 10^k % 10` is below 10.
                out[at + digits - 1 - i] = b'0' + (value / 10u32.pow(i as u32) % 10) as u8;
            }
        }
        Some(out)
    }
}

fn month_name(month: u8) -> Option<&'static str> {
    maillog_parse::header::MONTH_NAMES
        .get(usize::from(month).checked_sub(1)?)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use maillog_parse::{FieldsMode, Parsed, Parser, TimeContext, YearPolicy, Zone};

    /// Every field of the JSON the pipeline writes is what the view gives, and nothing more.
    #[test]
    fn the_view_of_a_parsed_record_is_its_json() {
        let parser = Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2011)), &[]);
        let lines = [
            "Jul 12 20:53:00 mail5 sendmail[6229]: p6D0r0u1006229: from=<info@example.com>, size=57395, class=0, nrcpts=1, msgid=<W.1@example.com>, proto=ESMTP, daemon=MTA, relay=app03.example.com [10.1.2.3]",
            "Jul 12 20:53:00 mail2 sendmail[6406]: p6D0qwvm006395: to=<a@gmail.com>,<b@x.org>, delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=120395, relay=gmail-smtp-in.l.google.com. [74.125.1.2], dsn=2.0.0, stat=Sent (OK 1310518380 pd12)",
            "Jul  2 01:02:03 mail2 sm-mta: p6D0qwvm006396: from=<>, size=10, relay=[127.0.0.1] [127.0.0.1]",
            "2011-07-02T01:02:03.25+02:00 mail2 sm-mta: p6D0qwvm006397: from=<>, size=10, relay=[127.0.0.1] [127.0.0.1]",
        ];
        for line in lines {
            let Parsed::Event(event) = parser.parse(line) else {
                panic!("not a record: {line}");
            };
            for record in event.records() {
                let json: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&record.to_json(FieldsMode::All)).expect("JSON");
                for (name, value) in &json {
                    assert_eq!(
                        record.field(name).as_deref(),
                        value.as_str(),
                        "{name} of {line}"
                    );
                }
                let ts = json["ts"].as_str().expect("ts");
                let date = record.ts_date().expect("a date");
                assert_eq!(std::str::from_utf8(&date).ok(), ts.get(..10), "{line}");
                for name in ["dest", "src", "size", "stat", "nosuch", "relay_ip", "pid"] {
                    if !json.contains_key(name) {
                        assert_eq!(record.field(name), None, "{name} of {line}");
                    }
                }
            }
        }
    }
}
