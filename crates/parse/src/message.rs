//! The sendmail message after the header: `QID: from=…` or `QID: to=…` and its fields.
//!
//! This module owns the contract's reading of a sendmail message: a queue id of 8 to 20 ASCII
//! letters and digits, `from=` or `to=` right after it, and the `key=value` fields that follow,
//! separated by `, key=` (or `,key=` for sendmail's own keys), where a comma inside `<…>`,
//! `"…"` or `(…)` separates nothing and `stat=` runs to the end of the line.
//!
//! It never allocates: every value is a slice of the line. It never fails either: a message that
//! is not a record is classified, and malformed fields are read as well as they can be.

use crate::swar;
use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_while_m_n, take_while1},
    character::complete::char,
};

/// Which record a message makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A `from=` line: the message was accepted (one record).
    From,
    /// A `to=` line: a delivery attempt (one record per recipient).
    To,
}

impl Kind {
    /// `"from"` or `"to"`, as in file names and the `kind` key.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::From => "from",
            Kind::To => "to",
        }
    }
}

/// What a sendmail message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// `QID: from=…` or `QID: to=…`.
    Record {
        /// The queue id.
        queue_id: &'a str,
        /// From or to.
        kind: Kind,
        /// The text from `from=`/`to=` to the end of the line.
        fields: &'a str,
    },
    /// One of sendmail's split pieces, `QID[2]: …`.
    Continuation,
    /// Anything else sendmail logs (`ruleset=`, `STARTTLS=`, `NOQUEUE`, `DSN:`, `done;` …).
    Other,
}

/// Reads the message part of a sendmail line.
pub fn classify_message(message: &str) -> Message<'_> {
    let Ok((rest, queue_id)) = queue_id(message) else {
        return Message::Other;
    };
    if continuation_marker(rest).is_ok() {
        return Message::Continuation;
    }
    let Some(fields) = rest.strip_prefix(": ") else {
        return Message::Other;
    };
    let kind = if fields.starts_with("from=") {
        Kind::From
    } else if fields.starts_with("to=") {
        Kind::To
    } else {
        return Message::Other;
    };
    Message::Record {
        queue_id,
        kind,
        fields,
    }
}

/// A queue id: 8 to 20 ASCII letters and digits.
fn queue_id(input: &str) -> IResult<&str, &str> {
    take_while_m_n(8, 20, |c: char| c.is_ascii_alphanumeric()).parse(input)
}

/// `[n]:` after a queue id.
fn continuation_marker(input: &str) -> IResult<&str, ()> {
    let (rest, _) = (
        char('['),
        take_while1(|c: char| c.is_ascii_digit()),
        tag("]:"),
    )
        .parse(input)?;
    Ok((rest, ()))
}

/// Sendmail's own keys: after one of these, `,key=` separates fields even without a space.
const SENDMAIL_KEYS: &[&str] = &[
    "arg1",
    "arg2",
    "auth",
    "authid",
    "bits",
    "bodytype",
    "cipher",
    "class",
    "command",
    "count",
    "ctladdr",
    "daemon",
    "delay",
    "dsn",
    "from",
    "mailer",
    "mech",
    "msgid",
    "nrcpts",
    "ntries",
    "orcpt",
    "pri",
    "proto",
    "quarantine",
    "reason",
    "reject",
    "relay",
    "ruleset",
    "size",
    "stat",
    "tls_verify",
    "tls_version",
    "to",
    "user",
    "verify",
    "version",
    "xdelay",
];

/// The `key=value` fields of a message, in the order logged. Values are trimmed, except `stat`,
/// which is kept byte for byte to the end of the line. Empty values are still yielded (the record
/// leaves them out).
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    /// Fields of `text`, which starts with a key (`from=…`).
    pub fn new(text: &'a str) -> Self {
        Fields { rest: text }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.rest;
        // `rest` starts at a key (`[A-Za-z][A-Za-z0-9_]*=`), so the `=` is a few bytes away.
        let eq = text.bytes().position(|b| b == b'=')?;
        let key = &text[..eq];
        let value_start = eq + 1;
        if key == "stat" {
            self.rest = "";
            return Some((key, &text[value_start..]));
        }
        let (value_end, next_key) = value_extent(text.as_bytes(), value_start);
        self.rest = &text[next_key..];
        Some((key, trim_blanks(&text[value_start..value_end])))
    }
}

/// Where the value starting at `start` ends, and where the next key starts (`bytes.len()` for
/// both at the end). Commas nested in `<…>`, `(…)` or `"…"` separate nothing; if the brackets
/// never balance, the value is read again without nesting, so one stray `<` cannot swallow the
/// fields after it.
///
/// Fast path: most values hold no opening bracket or quote before the next `, key=`; nesting is
/// only tracked when an opener comes first.
fn value_extent(bytes: &[u8], start: usize) -> (usize, usize) {
    let mut at = start;
    loop {
        at = next_fast_stop(bytes, at);
        let Some(&b) = bytes.get(at) else {
            return (bytes.len(), bytes.len());
        };
        if b != b',' {
            return nested_extent(bytes, start);
        }
        if let Some(next_key) = separator_at(bytes, at) {
            return (at, next_key);
        }
        at += 1;
    }
}

/// The first byte at or after `from` that [`value_extent`]'s fast path stops at — a comma, or
/// an opener (`<`, `(`, `"`) that needs nesting — or `bytes.len()`. Eight bytes at a time.
fn next_fast_stop(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while at + 8 <= bytes.len() {
        let w = swar::word_at(bytes, at);
        let stops = swar::equal_to(w, b',')
            | swar::equal_to(w, b'<')
            | swar::equal_to(w, b'(')
            | swar::equal_to(w, b'"');
        if stops != 0 {
            return at + swar::first(stops);
        }
        at += 8;
    }
    while at < bytes.len() && !matches!(bytes[at], b',' | b'<' | b'(' | b'"') {
        at += 1;
    }
    at
}

/// Bytes a key is made of.
const KEY_BYTE: [bool; 256] =
    byte_set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");

const fn byte_set(members: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < members.len() {
        table[members[i] as usize] = true;
        i += 1;
    }
    table
}

/// [`value_extent`] with nesting tracked byte by byte.
fn nested_extent(bytes: &[u8], start: usize) -> (usize, usize) {
    if let Some(found) = find_separator(bytes, start, true) {
        return found;
    }
    find_separator(bytes, start, false).unwrap_or((bytes.len(), bytes.len()))
}

/// Bytes the nested separator scan has to look at; runs of other bytes are skipped.
const SPECIAL: [bool; 256] = byte_set(b",<>()\"\\");

/// The first field separator after `start`, or `None` when nesting was on and did not balance
/// by the end of the line (`Some((len, len))` when it did and no separator follows).
fn find_separator(bytes: &[u8], start: usize, nesting: bool) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut at = start;
    loop {
        while at < bytes.len() && !SPECIAL[usize::from(bytes[at])] {
            at += 1;
        }
        let Some(&b) = bytes.get(at) else { break };
        match b {
            b'\\' if quoted => at += 1,
            b'"' if nesting => quoted = !quoted,
            b'<' | b'(' if nesting && !quoted => depth += 1,
            b'>' | b')' if nesting && !quoted => depth = depth.saturating_sub(1),
            b',' if depth == 0 && !quoted => {
                if let Some(next_key) = separator_at(bytes, at) {
                    return Some((at, next_key));
                }
            }
            _ => {}
        }
        at += 1;
    }
    (depth == 0 && !quoted).then_some((bytes.len(), bytes.len()))
}

/// If the comma at `comma` separates fields, where the next key starts: `, key=` for any key,
/// `,key=` for one of sendmail's keys.
fn separator_at(bytes: &[u8], comma: usize) -> Option<usize> {
    let after = comma + 1;
    let key_start = after + bytes[after..].iter().take_while(|b| **b == b' ').count();
    let key_len = bytes[key_start..]
        .iter()
        .take_while(|b| KEY_BYTE[usize::from(**b)])
        .count();
    let key_end = key_start + key_len;
    if key_len == 0 || !bytes[key_start].is_ascii_alphabetic() || bytes.get(key_end) != Some(&b'=')
    {
        return None;
    }
    let spaced = key_start > after;
    let key = &bytes[key_start..key_end];
    (spaced || SENDMAIL_KEYS.iter().any(|k| k.as_bytes() == key)).then_some(key_start)
}

/// The recipients of a `to=` value, in the order logged: split at commas outside `<…>`, `(…)`
/// and `"…"`, trimmed, angle brackets removed; empty pieces and sendmail's `[more]` marker of a
/// cut list are not recipients.
pub fn recipients(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(list);
    std::iter::from_fn(move || {
        loop {
            let text = rest?;
            let end = list_comma(text.as_bytes());
            let piece = trim_blanks(&text[..end]);
            rest = text.get(end + 1..);
            if !piece.is_empty() && piece != "[more]" {
                return Some(strip_angle(piece));
            }
        }
    })
}

/// The first comma outside `<…>`, `(…)` and `"…"`, or the length.
fn list_comma(bytes: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if quoted => at += 1,
            b'"' => quoted = !quoted,
            b'<' | b'(' if !quoted => depth += 1,
            b'>' | b')' if !quoted => depth = depth.saturating_sub(1),
            b',' if depth == 0 && !quoted => return at,
            _ => {}
        }
        at += 1;
    }
    bytes.len()
}

/// `text` without leading and trailing spaces and tabs.
fn trim_blanks(text: &str) -> &str {
    let bytes = text.as_bytes();
    let start = bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let end = bytes.len()
        - bytes[start..]
            .iter()
            .rev()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
    // Only ASCII blanks were cut, so both ends are char boundaries.
    &text[start..end]
}

/// `<addr>` → `addr`; anything else as logged. `<>` becomes `""`.
pub fn strip_angle(value: &str) -> &str {
    value
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(value)
}

/// A `relay=` value split into its host part and bracketed address:
/// `host [ip] (may be forged)` → (`host`, `ip`); `[ip] [ip2]` → (`ip`, `ip2`);
/// `[ip]` → (`ip`, `ip`); `root@localhost` → (`root@localhost`, none).
pub fn split_relay(value: &str) -> (&str, Option<&str>) {
    if let Some(inner) = value.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return (value, None);
        };
        let address = &inner[..close];
        let second = bracketed(inner[close + 1..].trim_start());
        return (address, Some(second.unwrap_or(address)));
    }
    match value.split_once(' ') {
        Some((host, rest)) => (host, bracketed(rest.trim_start())),
        None => (value, None),
    }
}

/// The content of a leading `[…]`.
fn bracketed(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('[')?;
    inner.find(']').map(|close| &inner[..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<(&str, &str)> {
        Fields::new(text).collect()
    }

    #[test]
    fn record_messages_need_a_queue_id_and_from_or_to_right_after_it() {
        assert!(matches!(
            classify_message("06J1e4G4012711: from=sergey, size=1"),
            Message::Record {
                queue_id: "06J1e4G4012711",
                kind: Kind::From,
                ..
            }
        ));
        assert!(matches!(
            classify_message("kBC502520512: to=root"),
            Message::Record { kind: Kind::To, .. }
        ));
        for other in [
            "NOQUEUE: connect from root@localhost",
            "STARTTLS=client, relay=x, version=TLSv1.3",
            "j4K970hV028494: j4K975hV028499: DSN: Service unavailable",
            "u31FFPtp032300: Milter: to=<a@b>, reject=550",
            "u31FFPtp032300: done; delay=00:00:00, ntries=2",
            "abc1234: from=<too-short-id>",
            "abcdefghijklmnopqrstu: from=<21-char-id>",
            "06J1e4G4012711: fromage=1",
        ] {
            assert_eq!(classify_message(other), Message::Other, "{other}");
        }
        assert_eq!(
            classify_message("j4KDbUaV007215[2]: \\263\\273"),
            Message::Continuation
        );
    }

    #[test]
    fn values_keep_commas_inside_brackets_quotes_and_parentheses() {
        assert_eq!(
            fields(r#"from=<"o'neil, jr"@example.com>, size=5, relay=h [1.2.3.4] (may be forged)"#),
            [
                ("from", r#"<"o'neil, jr"@example.com>"#),
                ("size", "5"),
                ("relay", "h [1.2.3.4] (may be forged)")
            ]
        );
        assert_eq!(
            fields("to=<a@x>,<b@y>, ctladdr=root (0/0), delay=1+00:00:15"),
            [
                ("to", "<a@x>,<b@y>"),
                ("ctladdr", "root (0/0)"),
                ("delay", "1+00:00:15")
            ]
        );
    }

    #[test]
    fn stat_runs_to_the_end_of_the_line_byte_for_byte() {
        let text = "to=<a>, dsn=2.0.0, stat=Sent (Requested mail action okay, completed.  Message-ID=<x>)  ";
        assert_eq!(
            fields(text).last().copied(),
            Some((
                "stat",
                "Sent (Requested mail action okay, completed.  Message-ID=<x>)  "
            ))
        );
    }

    #[test]
    fn unspaced_separator_only_before_sendmail_keys() {
        assert_eq!(
            fields("to=<a>, dsn=5.0.0,stat=Service unavailable"),
            [
                ("to", "<a>"),
                ("dsn", "5.0.0"),
                ("stat", "Service unavailable")
            ]
        );
        assert_eq!(
            fields("to=<a>, reject=x,foo=bar"),
            [("to", "<a>"), ("reject", "x,foo=bar")]
        );
    }

    #[test]
    fn unbalanced_brackets_do_not_swallow_later_fields() {
        assert_eq!(
            fields("from=<broken@example.com, size=10, relay=h"),
            [
                ("from", "<broken@example.com"),
                ("size", "10"),
                ("relay", "h")
            ]
        );
    }

    #[test]
    fn recipients_split_outside_brackets_and_skip_more_markers() {
        let list: Vec<_> = recipients(r#"<a@x>,<"b, c"@y>, root,[more],"#).collect();
        assert_eq!(list, [r#"a@x"#, r#""b, c"@y"#, "root"]);
        assert_eq!(recipients("<>").collect::<Vec<_>>(), [""]);
        assert_eq!(recipients("").count(), 0);
    }

    #[test]
    fn relay_shapes() {
        assert_eq!(
            split_relay("gmail-smtp-in.l.google.com. [74.125.1.2]"),
            ("gmail-smtp-in.l.google.com.", Some("74.125.1.2"))
        );
        assert_eq!(
            split_relay("h [1.2.3.4] (may be forged)"),
            ("h", Some("1.2.3.4"))
        );
        assert_eq!(
            split_relay("[127.0.0.1] [127.0.0.1]"),
            ("127.0.0.1", Some("127.0.0.1"))
        );
        assert_eq!(split_relay("[IPv6:::1]"), ("IPv6:::1", Some("IPv6:::1")));
        assert_eq!(split_relay("root@localhost"), ("root@localhost", None));
        assert_eq!(
            split_relay("mta6.am0.yahoodns.net."),
            ("mta6.am0.yahoodns.net.", None)
        );
        assert_eq!(split_relay("[unclosed"), ("[unclosed", None));
    }
}
