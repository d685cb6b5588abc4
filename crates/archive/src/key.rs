//! Archive keys that can never be written: [`validate_key`] says what is wrong with one before
//! any put, so that such a key fails at once instead of being retried forever.
//!
//! It owns the rules shared by every backend (a key is `/`-separated segments, none empty,
//! `.` or `..`, at most 1024 bytes, without the characters S3 cannot carry). It never looks at
//! an archive and never rewrites a key: a bad key is the caller's to fix.

/// The most bytes S3 accepts in a key.
pub const MAX_KEY_BYTES: usize = 1024;

/// What is wrong with an archive key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing at all.
    #[error("empty key")]
    Empty,
    /// `/x`: S3 would keep the slash, a directory would lose it.
    #[error("leading '/'")]
    LeadingSlash,
    /// `a//b` or `a/`: no file can have an empty name.
    #[error("empty segment (two '/' in a row, or a '/' at the end)")]
    EmptySegment,
    /// `a/./b`, `a/../b`: a path would resolve it elsewhere.
    #[error("a {segment:?} segment")]
    DotSegment {
        /// `.` or `..`.
        segment: &'static str,
    },
    /// Longer than S3 allows.
    #[error("{bytes} bytes, more than the {MAX_KEY_BYTES} S3 allows")]
    TooLong {
        /// The key's length in bytes.
        bytes: usize,
    },
    /// A control character (or U+FFFE/U+FFFF), which S3's XML answers cannot carry.
    #[error("character {character:?} at byte {at}: S3 keys cannot carry control characters")]
    Character {
        /// The character.
        character: char,
        /// Its byte offset in the key.
        at: usize,
    },
}

/// Whether `key` can be written to every archive: `Ok`, or what is wrong with it.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong { bytes: key.len() });
    }
    if let Some((at, character)) = key
        .char_indices()
        .find(|&(_, c)| c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
    {
        return Err(KeyError::Character { character, at });
    }
    if key.starts_with('/') {
        return Err(KeyError::LeadingSlash);
    }
    for segment in key.split('/') {
        match segment {
            "" => return Err(KeyError::EmptySegment),
            "." => return Err(KeyError::DotSegment { segment: "." }),
            ".." => return Err(KeyError::DotSegment { segment: ".." }),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_keys() {
        for key in [
            "mail_logs/2025-11-20/from-2025-11-20-10-05.json.bz2",
            "mail_logs/dt=2025-11-20/host=a.b/to-2025-11-20-10-05.1.json.bz2",
            "x",
            ".hidden/...x/..y",
            "ünïcode/日本",
        ] {
            assert_eq!(validate_key(key), Ok(()), "{key}");
        }
        assert_eq!(validate_key(&"a".repeat(MAX_KEY_BYTES)), Ok(()));
    }

    #[test]
    fn bad_keys_say_what_is_wrong() {
        let cases: [(&str, KeyError, &str); 9] = [
            ("", KeyError::Empty, "empty key"),
            (
                "logs//2025-11-20/x",
                KeyError::EmptySegment,
                "empty segment",
            ),
            ("logs/x/", KeyError::EmptySegment, "empty segment"),
            ("/logs/x", KeyError::LeadingSlash, "leading '/'"),
            (
                "logs/./x",
                KeyError::DotSegment { segment: "." },
                "a \".\" segment",
            ),
            (
                "logs/../x",
                KeyError::DotSegment { segment: ".." },
                "a \"..\" segment",
            ),
            ("..", KeyError::DotSegment { segment: ".." }, "\"..\""),
            (
                "logs/a\nb",
                KeyError::Character {
                    character: '\n',
                    at: 6,
                },
                "control characters",
            ),
            (
                "logs/\u{0}",
                KeyError::Character {
                    character: '\0',
                    at: 5,
                },
                "at byte 5",
            ),
        ];
        for (key, want, says) in cases {
            let got = validate_key(key).unwrap_err();
            assert_eq!(got, want, "{key:?}");
            assert!(got.to_string().contains(says), "{key:?}: {got}");
        }
        let long = "a/".repeat(512) + "b";
        let e = validate_key(&long).unwrap_err();
        assert_eq!(e, KeyError::TooLong { bytes: 1025 });
        assert!(e.to_string().contains("1025 bytes"), "{e}");
    }
}
