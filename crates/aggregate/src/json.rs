//! Reading an archive line: one flat JSON object whose values are strings.
//!
//! The archive holds millions of records and `maillog top` must go at the speed of bzip2, so a
//! line is not deserialized: [`Scanner`] finds where each key and value lies in one pass (it
//! looks only for quotes and backslashes, with `memchr`) and [`JsonRecord`] hands out a value
//! borrowed from the line when it is asked for. A value with escapes is decoded by `serde_json`
//! then, and only then.
//!
//! It accepts any flat object (whitespace anywhere JSON allows it; numbers, `true` and `false`
//! as their text; `null` as absent), so records written by other tools count too. It rejects
//! what is not such an object, with the byte offset, and never panics on any input.

use std::borrow::Cow;
use std::fmt;

use maillog_parse::Kind;

use crate::fields::Fields;

/// Why a line is not a flat JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset in the line.
    pub at: usize,
    /// What was expected there.
    pub expected: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a JSON record: expected {} at byte {}",
            self.expected,
            self.at + 1
        )
    }
}

impl std::error::Error for JsonError {}

/// Where a key or a value lies in the line.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// A string with a backslash in it.
    escaped: bool,
}

/// Finds the entries of lines, reusing its memory from line to line.
#[derive(Debug, Default)]
pub struct Scanner {
    entries: Vec<(Span, Span)>,
}

impl Scanner {
    /// Scans `line` (without its line end). `kind` is the record's kind when the file name
    /// says it; otherwise the line's `kind` key does, or else a `dest` makes it a `to` record.
    pub fn scan<'s, 'l>(
        &'s mut self,
        line: &'l [u8],
        kind: Option<Kind>,
    ) -> Result<JsonRecord<'s, 'l>, JsonError> {
        self.entries.clear();
        let mut at = skip_blanks(line, 0);
        at = expect(line, at, b'{', "'{'")?;
        at = skip_blanks(line, at);
        if line.get(at) == Some(&b'}') {
            at += 1;
        } else {
            loop {
                at = expect(line, at, b'"', "a key in quotes")?;
                let key = string(line, at)?;
                at = skip_blanks(line, key.end + 1);
                at = expect(line, at, b':', "':'")?;
                at = skip_blanks(line, at);
                let (value, next) = value(line, at)?;
                if let Some(value) = value {
                    self.entries.push((key, value));
                }
                at = skip_blanks(line, next);
                match line.get(at) {
                    Some(b',') => at = skip_blanks(line, at + 1),
                    Some(b'}') => {
                        at += 1;
                        break;
                    }
                    _ => {
                        return Err(JsonError {
                            at,
                            expected: "',' or '}'",
                        });
                    }
                }
            }
        }
        let end = skip_blanks(line, at);
        if end != line.len() {
            return Err(JsonError {
                at: end,
                expected: "the end of the line",
            });
        }
        let mut record = JsonRecord {
            line,
            entries: &self.entries,
            kind: Kind::From,
        };
        record.kind = match kind {
            Some(kind) => kind,
            None => match record.field("kind").as_deref() {
                Some("to") => Kind::To,
                Some("from") => Kind::From,
                _ if record.find("dest").is_some() => Kind::To,
                _ => Kind::From,
            },
        };
        Ok(record)
    }
}

/// One scanned line.
#[derive(Debug, Clone, Copy)]
pub struct JsonRecord<'s, 'l> {
    line: &'l [u8],
    entries: &'s [(Span, Span)],
    kind: Kind,
}

impl JsonRecord<'_, '_> {
    fn find(&self, name: &str) -> Option<Span> {
        // A repeated key: the last one wins, as in serde_json.
        self.entries
            .iter()
            .rev()
            .find(|(key, _)| self.is(*key, name))
            .map(|(_, value)| *value)
    }

    /// Whether the key at `span` is `name`.
    fn is(&self, span: Span, name: &str) -> bool {
        if span.escaped {
            self.text(span).as_deref() == Some(name)
        } else {
            self.line.get(span.start..span.end) == Some(name.as_bytes())
        }
    }

    fn text(&self, span: Span) -> Option<Cow<'_, str>> {
        let raw = self.line.get(span.start..span.end)?;
        if span.escaped {
            // Decode with the quotes around the raw string; `string` checked they are there.
            let quoted = self.line.get(span.start - 1..span.end + 1)?;
            return serde_json::from_slice::<String>(quoted)
                .ok()
                .map(Cow::Owned);
        }
        Some(String::from_utf8_lossy(raw))
    }
}

impl Fields for JsonRecord<'_, '_> {
    fn kind(&self) -> Kind {
        self.kind
    }

    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        self.text(self.find(name)?)
    }

    fn unix_micros(&self) -> Option<i64> {
        let ts = self.field("ts")?;
        chrono::DateTime::parse_from_rfc3339(&ts)
            .ok()
            .map(|t| t.timestamp_micros())
    }
}

fn skip_blanks(line: &[u8], mut at: usize) -> usize {
    while matches!(line.get(at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        at += 1;
    }
    at
}

fn expect(line: &[u8], at: usize, byte: u8, expected: &'static str) -> Result<usize, JsonError> {
    if line.get(at) == Some(&byte) {
        Ok(at + 1)
    } else {
        Err(JsonError { at, expected })
    }
}

/// The string whose content starts at `start` (after its opening quote); its `end` is the
/// closing quote's offset.
fn string(line: &[u8], start: usize) -> Result<Span, JsonError> {
    let mut at = start;
    let mut escaped = false;
    loop {
        let rest = line.get(at..).unwrap_or_default();
        match memchr::memchr2(b'"', b'\\', rest) {
            Some(found) if rest[found] == b'"' => {
                return Ok(Span {
                    start,
                    end: at + found,
                    escaped,
                });
            }
            Some(found) => {
                escaped = true;
                at += found + 2;
            }
            None => {
                return Err(JsonError {
                    at: line.len(),
                    expected: "a closing quote",
                });
            }
        }
    }
}

/// A value at `at`: a string, or the text of a number, `true` or `false`; `None` for `null`.
/// Gives the offset after it.
fn value(line: &[u8], at: usize) -> Result<(Option<Span>, usize), JsonError> {
    match line.get(at) {
        Some(b'"') => {
            let span = string(line, at + 1)?;
            Ok((Some(span), span.end + 1))
        }
        Some(b'{' | b'[') | None => Err(JsonError {
            at,
            expected: "a string value",
        }),
        Some(_) => {
            let len = line[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(line.len() - at);
            let end = at + len;
            let literal = &line[at..end];
            let is_number = literal
                .iter()
                .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
            match literal {
                b"null" => Ok((None, end)),
                b"true" | b"false" => Ok((Some(plain(at, end)), end)),
                _ if is_number && !literal.is_empty() => Ok((Some(plain(at, end)), end)),
                _ => Err(JsonError {
                    at,
                    expected: "a string value",
                }),
            }
        }
    }
}

fn plain(start: usize, end: usize) -> Span {
    Span {
        start,
        end,
        escaped: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str, names: &[&str]) -> Result<Vec<Option<String>>, JsonError> {
        let mut scanner = Scanner::default();
        let record = scanner.scan(line.as_bytes(), None)?;
        Ok(names
            .iter()
            .map(|name| record.field(name).map(Cow::into_owned))
            .collect())
    }

    #[test]
    fn values_are_read_as_serde_json_reads_them() {
        let line = r#"{"sendmailid":"p6D0r0u1006229","src":"","dest":"a\"b\\c\u00e9@x","size":"57395","n":12,"t":true,"z":null}"#;
        assert_eq!(
            fields(
                line,
                &["sendmailid", "src", "dest", "size", "n", "t", "z", "no"]
            )
            .unwrap(),
            vec![
                Some("p6D0r0u1006229".into()),
                Some("".into()),
                Some("a\"b\\cé@x".into()),
                Some("57395".into()),
                Some("12".into()),
                Some("true".into()),
                None,
                None,
            ]
        );
    }

    #[test]
    fn whitespace_and_repeated_keys_are_json_s() {
        let line = " { \"dest\" : \"a@x\" ,\t\"dest\":\"b@y\" }\r";
        assert_eq!(fields(line, &["dest"]).unwrap(), vec![Some("b@y".into())]);
        assert_eq!(fields("{}", &["dest"]).unwrap(), vec![None]);
    }

    #[test]
    fn the_kind_comes_from_the_name_the_kind_key_or_a_dest() {
        let mut scanner = Scanner::default();
        let kind = |scanner: &mut Scanner, line: &str, hint| {
            scanner
                .scan(line.as_bytes(), hint)
                .map(|r| r.kind())
                .unwrap()
        };
        assert_eq!(kind(&mut scanner, r#"{"dest":"a"}"#, None), Kind::To);
        assert_eq!(kind(&mut scanner, r#"{"src":"a"}"#, None), Kind::From);
        assert_eq!(
            kind(&mut scanner, r#"{"kind":"from","dest":"a"}"#, None),
            Kind::From
        );
        assert_eq!(
            kind(&mut scanner, r#"{"src":"a"}"#, Some(Kind::To)),
            Kind::To
        );
    }

    #[test]
    fn broken_lines_are_errors_with_their_place() {
        for (line, at) in [
            ("", 0),
            ("{\"dest\":\"a@x\"", 13),
            ("{\"dest\":\"a@x", 12),
            ("{\"dest\":[1]}", 8),
            ("{\"dest\":\"a\"} trailing", 13),
            ("not json", 0),
            ("{\"a\":\"b\\", 8),
            ("{\"a\":bogus}", 5),
        ] {
            let error = fields(line, &["dest"]).expect_err(line);
            assert_eq!(error.at, at, "{line}: {error}");
        }
    }

    #[test]
    fn no_input_panics() {
        let mut scanner = Scanner::default();
        for line in [
            "{\"",
            "{\"a",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":\"\\",
            "{,}",
            "{\"a\":\"b\",}",
            "\u{feff}{}",
        ] {
            let _ = scanner
                .scan(line.as_bytes(), None)
                .map(|r| r.field("a").map(Cow::into_owned));
        }
    }
}
