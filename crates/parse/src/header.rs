//! The syslog header: when a line was logged, by which host and program.
//!
//! This module owns recognising the three header forms of the archive contract — BSD/RFC 3164
//! (`Jul 12 20:53:00 mail5 sendmail[6229]: `), the same with an ISO 8601 / RFC 3339 time stamp
//! (syslog-ng's `ts-format(iso)`), and RFC 5424 (`<22>1 2024-… host app procid msgid sd msg`) —
//! with the tolerances real logs force: leading blanks, unpadded or zero-padded days, a tag
//! without `[pid]`, the FreeBSD `<mail.info>` token before the host and the Solaris
//! `[ID 801593 mail.info]` after the tag.
//!
//! It never looks into the message, and never decides a year or a time zone: a year-less stamp
//! stays year-less here, and `crate::time` turns stamps into instants.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, take_till1, take_while_m_n, take_while1},
    character::complete::{char, space1},
    combinator::{opt, recognize},
};

/// The longest fraction of a second a stamp may carry (nanoseconds need 9; no logger writes
/// 30). A longer one is not a time stamp, and bounds the text of `ts`.
pub const MAX_FRACTION_DIGITS: usize = 30;

/// The parsed header of one syslog line. Every `&str` borrows from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// When the line was logged; `None` for the RFC 5424 nil time stamp `-`.
    pub stamp: Option<Stamp<'a>>,
    /// The host that logged the line; `None` for the RFC 5424 nil host `-`.
    pub host: Option<&'a str>,
    /// The program (syslog tag or RFC 5424 app-name), `None` for the nil app-name.
    pub program: Option<&'a str>,
    /// The process id from `prog[pid]` or the RFC 5424 procid.
    pub pid: Option<&'a str>,
}

/// A header time stamp, as logged: wall-clock fields, and the date and offset where the form
/// carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp<'a> {
    /// The year, for ISO and RFC 5424 stamps; BSD stamps carry none.
    pub year: Option<i32>,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day of the month, 1 to 31 (not checked against the month here).
    pub day: u8,
    /// `hh:mm:ss` as written, without fraction.
    pub time: &'a str,
    /// Hour, minute and second of `time`.
    pub hms: (u8, u8, u8),
    /// The fraction with its leading dot (`.855197`), or `""`.
    pub fraction: &'a str,
    /// The offset as logged (`Z`, `-07:00`), or `None` where the stamp has none.
    pub offset: Option<LoggedOffset<'a>>,
    /// The whole stamp as written (for ISO stamps with an offset this is already RFC 3339).
    pub raw: &'a str,
}

/// A UTC offset as the line wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedOffset<'a> {
    /// Seconds east of UTC.
    pub seconds: i32,
    /// The text as logged: `Z` or `±hh:mm`.
    pub text: &'a str,
}

/// Splits a line (without its line end) into its header and the message after it.
///
/// Returns `None` when the line does not start, after optional blanks, with one of the
/// contract's header forms; such a line makes no record.
pub fn parse_header(line: &str) -> Option<(Header<'_>, &str)> {
    let line = line.trim_start_matches([' ', '\t']);
    if line.starts_with('<') {
        rfc5424(line).ok().map(|(msg, header)| (header, msg))
    } else {
        bsd_or_iso(line).ok().map(|(msg, header)| (header, msg))
    }
}

/// `STAMP [<fac.pri>] HOST TAG[PID]: [[ID n fac.pri] ]MESSAGE`
fn bsd_or_iso(input: &str) -> IResult<&str, Header<'_>> {
    // A stamp starts with a digit (ISO year) or a letter (BSD month): no need to try both.
    let stamp_parser = if input.starts_with(|c: char| c.is_ascii_digit()) {
        iso_stamp
    } else {
        bsd_stamp
    };
    let (rest, stamp) = stamp_parser(input)?;
    let (rest, _) = space1(rest)?;
    let (rest, _) = opt((freebsd_priority, space1)).parse(rest)?;
    let (rest, host) = token(rest)?;
    let (rest, _) = space1(rest)?;
    let (rest, (program, pid)) = syslog_tag(rest)?;
    let (rest, _) = opt(char(' ')).parse(rest)?;
    let (rest, _) = opt(solaris_message_id).parse(rest)?;
    let header = Header {
        stamp: Some(stamp),
        host: Some(host),
        program: Some(program),
        pid,
    };
    Ok((rest, header))
}

/// `<pri>1 STAMP HOST APP PROCID MSGID SD[ MSG]`, with `-` for each nil value.
fn rfc5424(input: &str) -> IResult<&str, Header<'_>> {
    let (rest, _) = (char('<'), take_while_m_n(1, 3, is_digit), tag(">1 ")).parse(input)?;
    let (rest, stamp) = alt((iso_stamp.map(Some), char('-').map(|_| None))).parse(rest)?;
    let (rest, _) = char(' ')(rest)?;
    let (rest, host) = nil_or_token(rest)?;
    let (rest, _) = char(' ')(rest)?;
    let (rest, program) = nil_or_token(rest)?;
    let (rest, _) = char(' ')(rest)?;
    let (rest, pid) = nil_or_token(rest)?;
    let (rest, _) = char(' ')(rest)?;
    let (rest, _msgid) = token(rest)?;
    let (rest, _) = char(' ')(rest)?;
    let (rest, _) = structured_data(rest)?;
    let message = match rest.strip_prefix(' ') {
        Some(message) => message.strip_prefix('\u{feff}').unwrap_or(message),
        None if rest.is_empty() => rest,
        None => return nom_error(rest),
    };
    let header = Header {
        stamp,
        host,
        program,
        pid,
    };
    Ok((message, header))
}

/// `Mmm dd hh:mm:ss[.frac]` with the day space-padded, zero-padded or unpadded.
fn bsd_stamp(input: &str) -> IResult<&str, Stamp<'_>> {
    let (rest, month) = month_name(input)?;
    let (rest, _) = space1(rest)?;
    let (rest, day) = take_while_m_n(1, 2, is_digit).parse(rest)?;
    let (rest, _) = char(' ')(rest)?;
    let (rest, (time, hms)) = clock(rest)?;
    let (rest, fraction) = fraction(rest)?;
    let day = digits_value(day) as u8;
    if !(1..=31).contains(&day) {
        return nom_error(rest);
    }
    let stamp = Stamp {
        year: None,
        month,
        day,
        time,
        hms,
        fraction,
        offset: None,
        raw: &input[..input.len() - rest.len()],
    };
    Ok((rest, stamp))
}

/// `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]` (RFC 3339, offset optional).
fn iso_stamp(input: &str) -> IResult<&str, Stamp<'_>> {
    let (rest, year) = take_while_m_n(4, 4, is_digit).parse(input)?;
    let (rest, month) = (char('-'), two_digits)
        .parse(rest)
        .map(|(r, (_, m))| (r, m))?;
    let (rest, day) = (char('-'), two_digits)
        .parse(rest)
        .map(|(r, (_, d))| (r, d))?;
    let (rest, _) = char('T')(rest)?;
    let (rest, (time, hms)) = clock(rest)?;
    let (rest, fraction) = fraction(rest)?;
    let (rest, offset) = opt(utc_offset).parse(rest)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return nom_error(rest);
    }
    let stamp = Stamp {
        year: Some(digits_value(year) as i32),
        month,
        day,
        time,
        hms,
        fraction,
        offset,
        raw: &input[..input.len() - rest.len()],
    };
    Ok((rest, stamp))
}

/// `hh:mm:ss`, range-checked (read by position: every stamp has one, so it is worth being
/// quick).
fn clock(input: &str) -> IResult<&str, (&str, (u8, u8, u8))> {
    let b = input.as_bytes();
    let digit = |i: usize| b.get(i).filter(|c| c.is_ascii_digit()).map(|c| c - b'0');
    let pair = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    match (pair(0), b.get(2), pair(3), b.get(5), pair(6)) {
        (Some(h), Some(b':'), Some(m), Some(b':'), Some(s)) if h < 24 && m < 60 && s < 60 => {
            // Eight ASCII bytes were checked, so 8 is a char boundary.
            Ok((&input[8..], (&input[..8], (h, m, s))))
        }
        _ => nom_error(input),
    }
}

/// An optional `.ddd…` fraction of a second, of at most [`MAX_FRACTION_DIGITS`] digits.
fn fraction(input: &str) -> IResult<&str, &str> {
    let digits = take_while_m_n(1, MAX_FRACTION_DIGITS, is_digit);
    let (rest, fraction) = opt(recognize((char('.'), digits))).parse(input)?;
    Ok((rest, fraction.unwrap_or("")))
}

/// `Z` or `±hh:mm`.
fn utc_offset(input: &str) -> IResult<&str, LoggedOffset<'_>> {
    if let Some(rest) = input.strip_prefix('Z') {
        return Ok((
            rest,
            LoggedOffset {
                seconds: 0,
                text: "Z",
            },
        ));
    }
    let (rest, (sign, h, _, m)) = (
        alt((char('+'), char('-'))),
        two_digits,
        char(':'),
        two_digits,
    )
        .parse(input)?;
    if h > 23 || m > 59 {
        return nom_error(input);
    }
    let magnitude = i32::from(h) * 3600 + i32::from(m) * 60;
    let seconds = if sign == '-' { -magnitude } else { magnitude };
    Ok((
        rest,
        LoggedOffset {
            seconds,
            text: &input[..6],
        },
    ))
}

/// `prog[pid]:` or `prog:`; the program ends at `[`, `:` or a blank.
fn syslog_tag(input: &str) -> IResult<&str, (&str, Option<&str>)> {
    let (rest, program) = take_till1(|c| c == '[' || c == ':' || c == ' ')(input)?;
    let (rest, pid) = opt((char('['), take_while1(is_digit), char(']')))
        .map(|pid| pid.map(|(_, pid, _)| pid))
        .parse(rest)?;
    let (rest, _) = char(':')(rest)?;
    Ok((rest, (program, pid)))
}

/// FreeBSD `syslogd -v`: `<mail.info>` between the stamp and the host.
fn freebsd_priority(input: &str) -> IResult<&str, &str> {
    recognize((
        char('<'),
        take_while1(is_word),
        char('.'),
        take_while1(is_word),
        char('>'),
    ))
    .parse(input)
}

/// Solaris: `[ID 801593 mail.info] ` after the tag.
fn solaris_message_id(input: &str) -> IResult<&str, &str> {
    recognize((
        tag("[ID "),
        take_while1(is_digit),
        char(' '),
        take_while1(|c: char| c != ']' && c != ' '),
        tag("] "),
    ))
    .parse(input)
}

/// RFC 5424 STRUCTURED-DATA: `-`, or one or more `[id param="value"…]` elements whose values
/// may escape `"`, `\` and `]` with a backslash.
fn structured_data(input: &str) -> IResult<&str, &str> {
    if let Some(rest) = input.strip_prefix('-') {
        return Ok((rest, "-"));
    }
    let bytes = input.as_bytes();
    let mut at = 0;
    while bytes.get(at) == Some(&b'[') {
        at += 1;
        let mut in_quotes = false;
        loop {
            match bytes.get(at) {
                None => return nom_error(input),
                Some(b'\\') if in_quotes => at += 2,
                Some(b'"') => {
                    in_quotes = !in_quotes;
                    at += 1;
                }
                Some(b']') if !in_quotes => {
                    at += 1;
                    break;
                }
                Some(_) => at += 1,
            }
        }
    }
    if at == 0 {
        return nom_error(input);
    }
    // `at` is just past an ASCII `]`, so it is a char boundary.
    Ok((&input[at..], &input[..at]))
}

fn nil_or_token(input: &str) -> IResult<&str, Option<&str>> {
    let (rest, value) = token(input)?;
    Ok((rest, (value != "-").then_some(value)))
}

/// A run of anything but blanks.
fn token(input: &str) -> IResult<&str, &str> {
    take_till1(|c| c == ' ' || c == '\t')(input)
}

/// Month names as syslog writes them (and the records carry them).
pub const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month_name(input: &str) -> IResult<&str, u8> {
    let name = input.get(..3).unwrap_or("");
    match MONTH_NAMES.iter().position(|m| *m == name) {
        Some(index) => Ok((&input[3..], index as u8 + 1)),
        None => nom_error(input),
    }
}

fn two_digits(input: &str) -> IResult<&str, u8> {
    let (rest, digits) = take_while_m_n(2, 2, is_digit).parse(input)?;
    Ok((rest, digits_value(digits) as u8))
}

/// The value of a run of at most four ASCII digits (checked by the caller's parser).
fn digits_value(digits: &str) -> u32 {
    digits.bytes().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn nom_error<T>(input: &str) -> IResult<&str, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        input,
        nom::error::ErrorKind::Verify,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(line: &str) -> (Header<'_>, &str) {
        parse_header(line).unwrap_or_else(|| panic!("no header in {line:?}"))
    }

    #[test]
    fn bsd_header_with_padded_unpadded_and_zero_padded_days() {
        for (line, day) in [
            ("Jun  4 12:25:26 mail sendmail[21691]: msg", 4),
            ("Nov 9 12:01:31 src@eadmin1 sendmail[4306]: msg", 9),
            ("Nov 09 12:01:31 host sendmail[4306]: msg", 9),
            ("Jul 12 20:53:00 mail5 sendmail[6229]: msg", 12),
        ] {
            let (h, msg) = header(line);
            let stamp = h.stamp.unwrap();
            assert_eq!((stamp.day, msg), (day, "msg"), "{line}");
            assert_eq!(h.program, Some("sendmail"));
        }
    }

    #[test]
    fn freebsd_priority_and_solaris_id_are_skipped() {
        let (h, msg) = header("Jun 17 14:37:39 <mail.notice> robin sm-mta[2794]: x: y");
        assert_eq!(
            (h.host, h.program, h.pid, msg),
            (Some("robin"), Some("sm-mta"), Some("2794"), "x: y")
        );
        let (h, msg) = header(
            "Dec 12 00:00:02 machinename sendmail[20512]: [ID 801593 mail.info] kBC502520512: from=root",
        );
        assert_eq!(
            (h.host, msg),
            (Some("machinename"), "kBC502520512: from=root")
        );
    }

    #[test]
    fn tag_without_pid_and_leading_blanks() {
        let (h, msg) = header("  Jun 22 09:23:54 mail sendmail: sendmail startup succeeded");
        assert_eq!(
            (h.program, h.pid, msg),
            (Some("sendmail"), None, "sendmail startup succeeded")
        );
    }

    #[test]
    fn iso_header_keeps_offset_and_fraction() {
        let (h, msg) = header("2024-06-19T05:25:41.855197-07:00 m0000123 sendmail[17965]: q: to=x");
        let s = h.stamp.unwrap();
        assert_eq!(
            (s.year, s.month, s.day, s.time),
            (Some(2024), 6, 19, "05:25:41")
        );
        assert_eq!(s.fraction, ".855197");
        assert_eq!(s.offset.unwrap().seconds, -7 * 3600);
        assert_eq!(s.raw, "2024-06-19T05:25:41.855197-07:00");
        assert_eq!(msg, "q: to=x");
        let (h, _) = header("2024-06-19T05:25:41 host sendmail[1]: m");
        assert_eq!(h.stamp.unwrap().offset, None);
    }

    #[test]
    fn rfc5424_with_nil_values_and_structured_data() {
        let (h, msg) = header(
            r#"<22>1 2024-01-02T03:04:05Z mx1 sendmail 4711 - [x@1 a="q\]\"" b="2"][y@2] abc: from=<>"#,
        );
        assert_eq!(
            (h.host, h.program, h.pid, msg),
            (Some("mx1"), Some("sendmail"), Some("4711"), "abc: from=<>")
        );
        let (h, msg) = header("<22>1 - - sendmail - - - m");
        assert_eq!((h.stamp, h.host, h.pid, msg), (None, None, None, "m"));
        let (_, msg) = header("<22>1 2024-01-02T03:04:05Z h sendmail 1 ID47 - \u{feff}bom");
        assert_eq!(msg, "bom");
    }

    #[test]
    fn foreign_prefixes_and_garbage_have_no_header() {
        for line in [
            "- 1131566491 2005.11.09 eadmin1 Nov 9 12:01:31 src@eadmin1 sendmail[4306]: x",
            "sm-mta[20900]: k4PK8NYf020900: ruleset=check_mail",
            "",
            "Jul 32 20:53:00 h sendmail[1]: x",
            "Jul 12 24:53:00 h sendmail[1]: x",
            "Jul 12 20:53:00 h",
            "<22>1 2024-13-02T03:04:05Z h sendmail 1 - - m",
            "<22>1 2024-01-02T03:04:05Z h sendmail 1 - [unterminated",
        ] {
            assert!(parse_header(line).is_none(), "{line:?}");
        }
    }
}
