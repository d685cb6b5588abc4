//! From the bytes of one line to the text the parser reads.
//!
//! This module owns the physical line: it removes the line end (`\n`, `\r\n`, or a lone `\r` on
//! a last line without newline) and turns bytes that are not UTF-8 into U+FFFD. Such a line is
//! never lost: it is decoded lossily and flagged so that callers count it.
//!
//! It never splits a stream into lines (callers own their framing) and never copies a line that
//! is valid UTF-8.

use std::borrow::Cow;

/// One line as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The line without its line end; borrowed unless it had to be repaired.
    pub text: Cow<'a, str>,
    /// Whether bytes that are not UTF-8 were replaced by U+FFFD.
    pub lossy: bool,
}

/// Decodes one line (with or without its line end).
pub fn decode(raw: &[u8]) -> Decoded<'_> {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    match std::str::from_utf8(raw) {
        Ok(text) => Decoded {
            text: Cow::Borrowed(text),
            lossy: false,
        },
        Err(_) => Decoded {
            text: String::from_utf8_lossy(raw),
            lossy: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_are_removed() {
        assert_eq!(decode(b"a\r\n").text, "a");
        assert_eq!(decode(b"a\n").text, "a");
        assert_eq!(decode(b"a").text, "a");
        assert_eq!(decode(b"a\r").text, "a");
        assert_eq!(decode(b"a\n\n").text, "a\n");
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let decoded = decode(b"from=<caf\xe9@x>\n");
        assert_eq!(decoded.text, "from=<caf\u{fffd}@x>");
        assert!(decoded.lossy);
        assert!(!decode("from=<café@x>".as_bytes()).lossy);
    }
}
