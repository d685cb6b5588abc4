//! The dimensions of a top-N and the key a record counts under in each.
//!
//! This module owns the counting rules that the live top-N and `maillog top` must share, so
//! that both answer the same question with the same keys:
//!
//! | dimension | counts | key |
//! |---|---|---|
//! | `src` | `from` records (messages accepted) | `src`: `from=` without brackets; the null sender as `<>` |
//! | `src_domain` | `from` records | the text after the last `@` of `src`, ASCII-lowercased |
//! | `mailserver` | `from` records | `mailserver`: the header host |
//! | `relay` | `from` records | `relay`: the host part of `relay=` |
//! | `dest` | `to` records (one per recipient) | `dest`: one recipient without brackets; `<>` if empty |
//! | `dest_domain` | `to` records | the text after the last `@` of `dest`, ASCII-lowercased |
//!
//! A record of the other kind, or one that lacks the field (no host, no `relay=`, an address
//! without `@` or with nothing after it), has no key in that dimension and is not counted there.
//! Only domains are normalized; every other key is the contract's field exactly as logged.
//!
//! It never counts or stores anything, and allocates only to lowercase a domain that has
//! upper-case letters in it (and then only in [`Dimension::key`], never in the live counters).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use maillog_parse::{Kind, Record};

/// The key the null sender (`from=<>`, whose `src` is `""`) and an empty recipient count under,
/// so that they are visible in a top-N.
pub const NULL_ADDRESS: &str = "<>";

/// What a top-N counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// Recipients (`dest` of `to` records).
    Dest,
    /// Senders (`src` of `from` records).
    Src,
    /// Logging hosts (`mailserver` of `from` records).
    Mailserver,
    /// Relays that handed messages in (`relay` host part of `from` records).
    Relay,
    /// Recipient domains (of `to` records), lowercased.
    DestDomain,
    /// Sender domains (of `from` records), lowercased.
    SrcDomain,
}

/// A dimension name that is none of [`Dimension::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimensionError(pub String);

impl fmt::Display for DimensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown dimension {:?}: expected one of ", self.0)?;
        for (i, dimension) in Dimension::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(dimension.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for DimensionError {}

/// A key as a record carries it, before any normalization.
enum RawKey<'a> {
    /// Counted as it is.
    AsLogged(&'a str),
    /// A domain: counted ASCII-lowercased.
    Domain(&'a str),
}

impl Dimension {
    /// Every dimension, in the order of the service's documentation.
    pub const ALL: [Dimension; 6] = [
        Dimension::Dest,
        Dimension::Src,
        Dimension::Mailserver,
        Dimension::Relay,
        Dimension::DestDomain,
        Dimension::SrcDomain,
    ];

    /// The dimension's name in queries and answers (`by=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Dest => "dest",
            Dimension::Src => "src",
            Dimension::Mailserver => "mailserver",
            Dimension::Relay => "relay",
            Dimension::DestDomain => "dest_domain",
            Dimension::SrcDomain => "src_domain",
        }
    }

    /// The kind of record this dimension counts: `from` (messages accepted) or `to` (one per
    /// recipient).
    pub fn kind(self) -> Kind {
        match self {
            Dimension::Dest | Dimension::DestDomain => Kind::To,
            Dimension::Src | Dimension::Mailserver | Dimension::Relay | Dimension::SrcDomain => {
                Kind::From
            }
        }
    }

    /// The position of the dimension in [`Dimension::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Dimension::Dest => 0,
            Dimension::Src => 1,
            Dimension::Mailserver => 2,
            Dimension::Relay => 3,
            Dimension::DestDomain => 4,
            Dimension::SrcDomain => 5,
        }
    }

    /// The key `record` counts under in this dimension, or `None` when it is not counted here
    /// (the other kind, or the field is missing; see the module docs). Borrowed from the line
    /// except for a domain with upper-case letters.
    pub fn key<'a>(self, record: &Record<'_, 'a>) -> Option<Cow<'a, str>> {
        match self.raw_key(record)? {
            RawKey::AsLogged(key) => Some(Cow::Borrowed(key)),
            RawKey::Domain(domain) if has_upper(domain) => {
                Some(Cow::Owned(domain.to_ascii_lowercase()))
            }
            RawKey::Domain(domain) => Some(Cow::Borrowed(domain)),
        }
    }

    /// [`Dimension::key`] without allocating: a domain that needs lowercasing is written into
    /// `buf` (whose capacity is reused from call to call).
    pub(crate) fn key_in<'k, 'a: 'k>(
        self,
        record: &Record<'_, 'a>,
        buf: &'k mut String,
    ) -> Option<&'k str> {
        match self.raw_key(record)? {
            RawKey::AsLogged(key) => Some(key),
            RawKey::Domain(domain) if has_upper(domain) => {
                buf.clear();
                buf.push_str(domain);
                buf.make_ascii_lowercase();
                Some(buf.as_str())
            }
            RawKey::Domain(domain) => Some(domain),
        }
    }

    fn raw_key<'a>(self, record: &Record<'_, 'a>) -> Option<RawKey<'a>> {
        if record.kind() != self.kind() {
            return None;
        }
        let event = record.event;
        match self {
            Dimension::Src => event.src().map(|src| RawKey::AsLogged(visible(src))),
            Dimension::Dest => record.dest.map(|dest| RawKey::AsLogged(visible(dest))),
            Dimension::Mailserver => event.host.map(RawKey::AsLogged),
            Dimension::Relay => event.relay_parts().0.map(RawKey::AsLogged),
            Dimension::SrcDomain => event.src().and_then(domain).map(RawKey::Domain),
            Dimension::DestDomain => record.dest.and_then(domain).map(RawKey::Domain),
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dimension {
    type Err = DimensionError;

    /// One of the names [`Dimension::as_str`] gives, exactly.
    fn from_str(text: &str) -> Result<Self, DimensionError> {
        Dimension::ALL
            .into_iter()
            .find(|dimension| dimension.as_str() == text)
            .ok_or_else(|| DimensionError(text.to_owned()))
    }
}

/// An empty address (the null sender) as [`NULL_ADDRESS`].
fn visible(address: &str) -> &str {
    if address.is_empty() {
        NULL_ADDRESS
    } else {
        address
    }
}

/// The text after the last `@`, when there is some.
fn domain(address: &str) -> Option<&str> {
    let (_, domain) = address.rsplit_once('@')?;
    (!domain.is_empty()).then_some(domain)
}

fn has_upper(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The counting rules on parsed lines. Never counts; only asks for keys.

    use super::*;
    use maillog_parse::{Parsed, Parser, TimeContext, YearPolicy, Zone};

    const HEAD: &str = "Jul 12 20:53:00 mx1 sendmail[123]: p6CKr0Yx012345: ";

    /// The keys of every record of `line` in `dimension`.
    fn keys(dimension: Dimension, line: &str) -> Vec<Option<String>> {
        let parser = Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2025)), &[]);
        let Parsed::Event(event) = parser.parse(line) else {
            panic!("no record: {line}")
        };
        event
            .records()
            .map(|record| {
                let mut buf = String::new();
                let key = dimension.key(&record).map(Cow::into_owned);
                // The buffered form gives the same key.
                assert_eq!(dimension.key_in(&record, &mut buf).map(str::to_owned), key);
                key
            })
            .collect()
    }

    fn from_line(rest: &str) -> String {
        format!("{HEAD}from={rest}, size=1, class=0, nrcpts=1, msgid=<x@y>, proto=ESMTP")
    }

    #[test]
    fn from_records_count_src_mailserver_relay_and_domain() {
        let line = from_line("<Info@Example.COM>, relay=mail.b.com [10.0.0.1]");
        let one = |key: &str| vec![Some(key.to_owned())];
        assert_eq!(keys(Dimension::Src, &line), one("Info@Example.COM"));
        assert_eq!(keys(Dimension::SrcDomain, &line), one("example.com"));
        assert_eq!(keys(Dimension::Mailserver, &line), one("mx1"));
        assert_eq!(keys(Dimension::Relay, &line), one("mail.b.com"));
        assert_eq!(keys(Dimension::Dest, &line), vec![None]);
        assert_eq!(keys(Dimension::DestDomain, &line), vec![None]);
    }

    #[test]
    fn to_records_count_one_dest_per_recipient() {
        let line = format!(
            "{HEAD}to=<c@D.org>,<e@d.org>,root, delay=00:00:01, mailer=esmtp, \
             relay=mx.d.org. [10.0.0.2], dsn=2.0.0, stat=Sent (ok)"
        );
        let dests: Vec<_> = ["c@D.org", "e@d.org", "root"]
            .map(|d| Some(d.to_owned()))
            .into();
        assert_eq!(keys(Dimension::Dest, &line), dests);
        assert_eq!(
            keys(Dimension::DestDomain, &line),
            vec![Some("d.org".to_owned()), Some("d.org".to_owned()), None]
        );
        // `to` records count only in dest and dest_domain.
        for dimension in [
            Dimension::Src,
            Dimension::SrcDomain,
            Dimension::Mailserver,
            Dimension::Relay,
        ] {
            assert_eq!(keys(dimension, &line), vec![None, None, None]);
        }
    }

    #[test]
    fn null_sender_is_visible_and_has_no_domain() {
        let line = from_line("<>");
        assert_eq!(keys(Dimension::Src, &line), vec![Some("<>".to_owned())]);
        assert_eq!(keys(Dimension::SrcDomain, &line), vec![None]);
        // No relay= on the line: no relay key.
        assert_eq!(keys(Dimension::Relay, &line), vec![None]);
    }

    #[test]
    fn domains_are_after_the_last_at_and_lowercased_only_when_needed() {
        let line = from_line(r#"<"a@b"@Mail.Example.NET>"#);
        assert_eq!(
            keys(Dimension::SrcDomain, &line),
            vec![Some("mail.example.net".to_owned())]
        );
        assert_eq!(
            keys(Dimension::SrcDomain, &from_line("<user@>")),
            vec![None]
        );
        assert_eq!(keys(Dimension::SrcDomain, &from_line("root")), vec![None]);
        let parser = Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2025)), &[]);
        let lower = from_line("<a@b.com>");
        let Parsed::Event(event) = parser.parse(&lower) else {
            panic!("no record")
        };
        let record = event.records().next().unwrap();
        assert!(matches!(
            Dimension::SrcDomain.key(&record),
            Some(Cow::Borrowed("b.com"))
        ));
    }

    #[test]
    fn dimension_names_round_trip_and_errors_list_them() {
        for dimension in Dimension::ALL {
            assert_eq!(dimension.as_str().parse::<Dimension>(), Ok(dimension));
            assert_eq!(Dimension::ALL[dimension.index()], dimension);
            assert_eq!(dimension.to_string(), dimension.as_str());
        }
        let error = "sender".parse::<Dimension>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown dimension \"sender\": expected one of \
             dest, src, mailserver, relay, dest_domain, src_domain"
        );
        assert!("DEST".parse::<Dimension>().is_err());
        assert!("".parse::<Dimension>().is_err());
    }
}
