//! The JSON form of a record, as the archive contract fixes it.
//!
//! This module owns the keys, their order and their values: every value a JSON string, a field
//! the line does not carry left out (never `""`, except `src` of the null sender), the original
//! fields first in the contract's order, then the added ones. [`FieldsMode::Original`] leaves the
//! added fields out for consumers that want the original records exactly.
//!
//! Records are written straight into the caller's byte buffer rather than through `serde_json`:
//! this is the pipeline's hottest loop, and a general serializer's per-byte escaping cost a
//! quarter of `maillog parse`'s time. The output is byte-identical to `serde_json`'s for the same
//! keys and values (the tests compare the two on generated, corpus and arbitrary strings).
//!
//! It never decides what a line means (that is `crate::event`).

use crate::event::Record;
use crate::header::MONTH_NAMES;
use crate::message::{Kind, strip_angle};
use crate::swar::{below, equal_to, word_at};
use crate::time::TsBuf;

/// Which fields a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldsMode {
    /// The original fields and the added ones (`ts`, `relay_ip`, every other key).
    #[default]
    All,
    /// The original fields only, as the original pipeline wrote them.
    Original,
}

/// `"name":` for one of the record's own key names, which need no escaping.
macro_rules! key {
    ($name:literal) => {
        concat!("\"", $name, "\":")
    };
}

const DAYS: [&str; 32] = [
    "", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
];

impl Record<'_, '_> {
    /// Appends the record as the archive stores it: one JSON object, no line end.
    pub fn write_json(&self, mode: FieldsMode, out: &mut Vec<u8>) {
        self.write(mode, false, out);
    }

    /// Appends the record with `"kind":"from"|"to"` as its first key (for `maillog parse`, where
    /// both kinds share one stream; archive files never carry it).
    pub fn write_json_with_kind(&self, mode: FieldsMode, out: &mut Vec<u8>) {
        self.write(mode, true, out);
    }

    /// The record as a JSON string (for tests and one-off use; hot paths reuse a buffer).
    pub fn to_json(&self, mode: FieldsMode) -> String {
        let mut out = Vec::with_capacity(512);
        self.write_json(mode, &mut out);
        // Only `str`s and ASCII punctuation were written.
        String::from_utf8(out).expect("JSON text is UTF-8")
    }

    fn write(&self, mode: FieldsMode, with_kind: bool, out: &mut Vec<u8>) {
        let event = self.event;
        let (relay, relay_ip) = event.relay_parts();
        let (relay, relay_ip) = (non_empty(relay), non_empty(relay_ip));
        out.reserve(1024);
        let mut object = Object::open(out, event.needs_escape);
        if with_kind {
            object.known(key!("kind"), event.kind.as_str());
        }
        object.known(key!("sendmailid"), event.queue_id);
        object.maybe(key!("pid"), event.pid);
        object.known(
            key!("month"),
            usize::from(event.month)
                .checked_sub(1)
                .and_then(|m| MONTH_NAMES.get(m))
                .copied()
                .unwrap_or(""),
        );
        object.known(
            key!("day"),
            DAYS.get(usize::from(event.day)).copied().unwrap_or(""),
        );
        object.known(key!("time"), event.time);
        object.maybe(key!("mailserver"), event.host);
        match event.kind {
            Kind::From => {
                object.maybe(key!("src"), event.src());
                object.maybe(key!("size"), event.size);
                object.maybe(key!("classnumber"), event.class);
                object.maybe(key!("nrcpts"), event.nrcpts);
                object.maybe(key!("msgid"), non_empty(event.msgid.map(strip_angle)));
                object.maybe(key!("relay"), relay);
            }
            Kind::To => {
                object.maybe(key!("dest"), self.dest);
                object.maybe(key!("delay"), event.delay);
                object.maybe(key!("xdelay"), event.xdelay);
                object.maybe(key!("stat"), event.stat);
                object.maybe(key!("relay"), relay);
            }
        }
        if mode == FieldsMode::All {
            let mut ts = TsBuf::default();
            object.known(key!("ts"), event.at.rfc3339(&mut ts));
            object.maybe(key!("relay_ip"), relay_ip);
            for (key, value) in &event.extras {
                object.entry(key, value);
            }
        }
        object.close();
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// A JSON object being appended to a buffer.
struct Object<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
    /// Whether values may need escaping (false when the whole line was checked clean).
    check: bool,
}

impl<'o> Object<'o> {
    fn open(out: &'o mut Vec<u8>, check: bool) -> Self {
        out.push(b'{');
        Object {
            out,
            empty: true,
            check,
        }
    }

    fn value(&mut self, value: &str) {
        if self.check {
            write_json_string(self.out, value);
        } else {
            self.out.push(b'"');
            self.out.extend_from_slice(value.as_bytes());
            self.out.push(b'"');
        }
    }

    /// An entry whose key comes from the line (escaped like any string).
    fn entry(&mut self, key: &str, value: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_json_string(self.out, key);
        self.out.push(b':');
        self.value(value);
    }

    /// An entry whose key is one of the record's own names, given already quoted with its
    /// colon (`"src":`, see [`key!`]).
    #[inline]
    fn known(&mut self, quoted_key: &str, value: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.extend_from_slice(quoted_key.as_bytes());
        self.value(value);
    }

    #[inline]
    fn maybe(&mut self, quoted_key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.known(quoted_key, value);
        }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// Appends `text` as a JSON string, escaped exactly as `serde_json` escapes it: `"` and `\`
/// with a backslash, the control characters below U+0020 as `\b \t \n \f \r` or `\u00XX`, and
/// everything else (non-ASCII included) as it is.
#[inline]
pub fn write_json_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.push(b'"');
    if needs_escape(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// Whether any byte needs escaping (`"`, `\\` or below 0x20), eight bytes at a time.
#[inline]
pub(crate) fn needs_escape(bytes: &[u8]) -> bool {
    if bytes.len() < 8 {
        // Built in a register (a padded stack copy would stall on store forwarding); the
        // padding `a` never needs escaping.
        let word = bytes
            .iter()
            .rev()
            .fold(u64::from_le_bytes([b'a'; 8]), |w, &b| {
                (w << 8) | u64::from(b)
            });
        return special_bytes(word) != 0;
    }
    let mut found = 0u64;
    let mut at = 0;
    while at + 8 <= bytes.len() {
        found |= special_bytes(word_at(bytes, at));
        at += 8;
    }
    if at < bytes.len() {
        // The last eight bytes, overlapping what was already checked.
        found |= special_bytes(word_at(bytes, bytes.len() - 8));
    }
    found != 0
}

/// Non-zero when a byte of `word` is below 0x20, `"` or `\\`.
#[inline]
fn special_bytes(word: u64) -> u64 {
    below(word, 0x20) | equal_to(word, b'"') | equal_to(word, b'\\')
}

fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (at, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..0x20 => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..at]);
        out.extend_from_slice(escape);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped(text: &str) -> String {
        let mut out = Vec::new();
        write_json_string(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_serde_json() {
        for text in [
            "",
            "plain",
            "a\"b\\c",
            "tab\there\r\n",
            "\u{1}\u{1f}\u{7f}",
            "café ☃",
            "\u{fffd}",
        ] {
            assert_eq!(
                escaped(text),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_string_escapes_like_serde_json(text in any::<String>()) {
            prop_assert_eq!(escaped(&text), serde_json::to_string(&text).unwrap());
        }
    }
}
