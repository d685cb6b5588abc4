//! Where in the config file a key is: every config error names the file, the line and the key.
//!
//! serde and toml report unknown keys and wrong types with a byte span; this module turns the
//! span into `file:line:column`, the dotted key under it (found in toml's spanned document),
//! and, for an unknown key, the closest known key ("did you mean"). Checks of values made after
//! deserializing ask it for the line of their key. It never decides what is valid.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// How similar (Jaro–Winkler) an unknown key must be to a known one to be suggested.
const SUGGEST_ABOVE: f64 = 0.8;

/// A config that cannot be used, with its place (file, line, column, key): the binary exits
/// with 2 for it, as for a wrong argument, and never starts anything.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A config file's text, kept to locate its keys.
#[derive(Debug, Clone)]
pub struct Source {
    path: PathBuf,
    text: String,
}

impl Source {
    /// The text of the file at `path`.
    pub fn new(path: &Path, text: String) -> Self {
        Source {
            path: path.to_path_buf(),
            text,
        }
    }

    /// No file: the built-in defaults (errors then name the key only).
    pub fn defaults() -> Self {
        Source {
            path: PathBuf::new(),
            text: String::new(),
        }
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `file:line:column: ` of a byte offset, or `file: ` without one.
    fn place(&self, offset: Option<usize>) -> String {
        if self.path.as_os_str().is_empty() {
            return String::new();
        }
        match offset {
            Some(offset) => {
                let (line, column) = line_column(&self.text, offset);
                format!("{}:{line}:{column}: ", self.path.display())
            }
            None => format!("{}: ", self.path.display()),
        }
    }

    /// An error about the value of `key` (dotted: `upload.sse`), placed at its line (a
    /// [`ConfigError`]).
    pub fn invalid(&self, key: &str, message: impl std::fmt::Display) -> anyhow::Error {
        let offset = self.span_of(key).map(|span| span.start);
        ConfigError(format!("{}key `{key}`: {message}", self.place(offset))).into()
    }

    /// The span of a dotted key in the file, if it is there.
    fn span_of(&self, key: &str) -> Option<Range<usize>> {
        let doc = DeTable::parse(&self.text).ok()?;
        let mut table = doc.get_ref();
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            let (name, value) = table.get_key_value(part)?;
            if parts.peek().is_none() {
                return Some(name.span());
            }
            table = value.get_ref().as_table()?;
        }
        None
    }

    /// Rewrites a toml/serde error into one that names the place, the key and, for an unknown
    /// key, the known key it most resembles.
    pub fn explain(&self, error: &toml::de::Error) -> anyhow::Error {
        let offset = error.span().map(|span| span.start);
        let place = self.place(offset);
        let message = error.message().trim();
        let key = offset.and_then(|offset| self.key_at(offset));
        if let Some((unknown, known)) = parse_unknown_field(message) {
            let section = key
                .as_deref()
                .and_then(|k| k.rsplit_once('.'))
                .map(|(section, _)| format!(" in [{section}]"))
                .unwrap_or_default();
            let hint = match suggest(&unknown, &known) {
                Some(best) => format!("; did you mean `{best}`?"),
                None if known.is_empty() => String::new(),
                None => format!("; expected one of: {}", known.join(", ")),
            };
            return ConfigError(format!("{place}unknown key `{unknown}`{section}{hint}")).into();
        }
        let first_line = message.lines().next().unwrap_or(message);
        let text = match key {
            Some(key) => format!("{place}key `{key}`: {first_line}"),
            None => format!("{place}{first_line}"),
        };
        ConfigError(text).into()
    }

    /// The dotted key whose name or value covers `offset`, the innermost one.
    fn key_at(&self, offset: usize) -> Option<String> {
        let doc = DeTable::parse(&self.text).ok()?;
        let mut path = Vec::new();
        find_key(doc.get_ref(), offset, &mut path).then(|| path.join("."))
    }
}

fn find_key(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (name, value) in table {
        let in_value = value.span().contains(&offset);
        if name.span().contains(&offset) || in_value {
            path.push(name.get_ref().to_string());
            if let (true, DeValue::Table(inner)) = (in_value, value.get_ref()) {
                find_key(inner, offset, path);
            }
            return true;
        }
        // `[section]` headers: the table's span may not cover its keys; look inside anyway.
        if let DeValue::Table(inner) = value.get_ref() {
            path.push(name.get_ref().to_string());
            if find_key(inner, offset, path) {
                return true;
            }
            path.pop();
        }
    }
    false
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`", or "there are
/// no fields"): the unknown key and the known ones.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let known = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((unknown.to_string(), known))
}

/// The known key most like `unknown`, if one is close enough.
fn suggest(unknown: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), k))
        .filter(|(score, _)| *score > SUGGEST_ABOVE)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        assert_eq!(line_column("a = 1\nbb = 2\n", 0), (1, 1));
        assert_eq!(line_column("a = 1\nbb = 2\n", 7), (2, 2));
    }

    #[test]
    fn serde_messages_give_the_known_keys() {
        let (unknown, known) =
            parse_unknown_field("unknown field `spoool`, expected one of `inputs`, `spool`")
                .unwrap();
        assert_eq!(unknown, "spoool");
        assert_eq!(known, ["inputs", "spool"]);
        assert_eq!(suggest("spoool", &known).as_deref(), Some("spool"));
        assert_eq!(suggest("zzz", &known), None);
    }

    #[test]
    fn values_are_located_by_their_dotted_key() {
        let source = Source::new(
            Path::new("p.toml"),
            "spool = \"s\"\n\n[upload]\n# c\nsse = \"x\"\n".into(),
        );
        let e = source.invalid("upload.sse", "nope").to_string();
        assert_eq!(e, "p.toml:5:1: key `upload.sse`: nope");
        let e = source.invalid("upload.concurrency", "nope").to_string();
        assert_eq!(e, "p.toml: key `upload.concurrency`: nope");
    }
}
