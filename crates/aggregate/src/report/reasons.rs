//! Why mail was deferred, bounced or rejected, grouped as pflogsumm groups it: by DSN and the
//! reason text with what differs from message to message masked, so that one cause is one
//! line however many hosts and addresses it hit.
//!
//! The text: a `to` record's `stat` (without sendmail's `Deferred: ` prefix), or a `reject=`
//! value after its SMTP code and DSN. Masked, in this order: `<…>` → `<>`, `[…]` → `[]`, IPv4
//! addresses → `*`, host names (dotted words whose last label starts with a letter:
//! `mx1.example.org.`) → `*`; then blanks collapse to one space. `QUERIES.md` says the same, and the Spark job does the same.
//!
//! It never counts (the report does) and never reads input.

use std::sync::LazyLock;

use regex::Regex;

/// `<…>`: an address.
static ANGLED: LazyLock<Regex> = LazyLock::new(|| regex(r"<[^>]*>"));
/// `[…]`: an IP address (sendmail brackets them).
static BRACKETED: LazyLock<Regex> = LazyLock::new(|| regex(r"\[[^\]]*\]"));
/// An IPv4 address outside brackets (DNS blocklist rejects name the client's).
static IPV4: LazyLock<Regex> = LazyLock::new(|| regex(r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b"));
/// A host name: dotted words, the last starting with a letter (so `5.7.1` is not one).
static HOST: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*\.?"));

/// Compiles a pattern written in this file.
fn regex(pattern: &str) -> Regex {
    // The patterns of this file are fixed and valid: the tests compile every one.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("a valid pattern")
}

/// One group of reasons: the DSN (none when the line has none) and the masked text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reason {
    /// `4.4.1`, `5.1.1`, …
    pub dsn: Option<Box<str>>,
    /// The masked text.
    pub text: Box<str>,
}

impl Reason {
    /// The reason of a deferred or bounced `to` record: its `dsn` and its `stat`.
    pub fn of_delivery(dsn: Option<&str>, stat: &str) -> Reason {
        let stat = stat
            .strip_prefix("Deferred: ")
            .or_else(|| stat.strip_prefix("Deferred"))
            .unwrap_or(stat);
        Reason {
            dsn: dsn.filter(|d| !d.is_empty()).map(Box::from),
            text: mask(stat).into(),
        }
    }

    /// The reason of a `reject=` value: `550 5.7.1 <a@b.org>... Relaying denied` gives DSN
    /// `5.7.1` and `<>... Relaying denied`.
    pub fn of_reject(value: &str) -> Reason {
        let mut rest = value.trim_start();
        let code = rest.split_whitespace().next().unwrap_or("");
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) {
            rest = rest[3..].trim_start();
        }
        let word = rest.split_whitespace().next().unwrap_or("");
        let dsn = is_dsn(word).then(|| {
            rest = rest[word.len()..].trim_start();
            Box::from(word)
        });
        Reason {
            dsn,
            text: mask(rest).into(),
        }
    }
}

/// `d.d.d` (digits, the first one digit).
fn is_dsn(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].len() == 1
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The text with addresses, bracketed parts and host names masked, blanks collapsed.
pub fn mask(text: &str) -> String {
    let text = ANGLED.replace_all(text, "<>");
    let text = BRACKETED.replace_all(&text, "[]");
    let text = IPV4.replace_all(&text, "*");
    let text = HOST.replace_all(&text, "*");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cause_is_one_reason_whatever_the_hosts_and_addresses() {
        let a = Reason::of_delivery(
            Some("4.4.1"),
            "Deferred: Connection timed out with mx1.example.org.",
        );
        let b = Reason::of_delivery(
            Some("4.4.1"),
            "Deferred: Connection timed out with mx.b.net",
        );
        assert_eq!(a, b);
        assert_eq!(&*a.text, "Connection timed out with *");
        let user = Reason::of_delivery(Some("5.1.1"), "User unknown");
        assert_eq!(
            (user.dsn.as_deref(), &*user.text),
            (Some("5.1.1"), "User unknown")
        );
        assert_eq!(
            mask("450 4.7.1 <x@y.org>: Recipient   address rejected [10.0.0.1]"),
            "450 4.7.1 <>: Recipient address rejected []"
        );
        assert_eq!(Reason::of_delivery(None, "Deferred").text.as_ref(), "");
    }

    #[test]
    fn a_reject_gives_its_dsn_and_the_rest() {
        let r = Reason::of_reject("550 5.7.1 <mifa@harose.org>... Relaying denied");
        assert_eq!(
            (r.dsn.as_deref(), &*r.text),
            (Some("5.7.1"), "<>... Relaying denied")
        );
        let r = Reason::of_reject("550 5.7.1 Rejected: 101.118.243.14 listed at zen.spamhaus.org");
        assert_eq!(&*r.text, "Rejected: * listed at *");
        let r = Reason::of_reject("553 sorry, that domain isn't in my list (#5.7.1)");
        assert_eq!(
            (r.dsn.as_deref(), &*r.text),
            (None, "sorry, that domain isn't in my list (#5.7.1)")
        );
        assert_eq!(Reason::of_reject("").text.as_ref(), "");
    }
}
