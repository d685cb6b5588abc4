//! The names a query may count by or filter on, and the kind of record that carries each.
//!
//! `--by KEY` and the FIELD of `--where FIELD=VALUE` name one of a closed list: the derived keys
//! of [`crate::query::Key`] (`src`, `src_domain`, `mailserver`, `relay`, `dest`, `dest_domain`,
//! `status`), the other fields of the archive contract (`size`, `delay`, `ts`, …), and the keys
//! sendmail logs on `from=`/`to=` lines that a record keeps under their own name (`mailer`,
//! `dsn`, `proto`, …). This module owns that list ([`FIELDS`] for the plain fields), which kind
//! of record carries each name ([`Carrier`]), and the error for a name that is none of them,
//! with the closest known name (Jaro–Winkler above 0.8, as the config's unknown keys).
//!
//! It never reads a record and never decides what a key's value is (that is `crate::query`).

use std::fmt;

use maillog_parse::Kind;

/// The derived keys, in the order the list of known keys gives them (before [`FIELDS`]).
pub const DERIVED: [&str; 7] = [
    "src",
    "src_domain",
    "mailserver",
    "relay",
    "dest",
    "dest_domain",
    "status",
];

/// A known name whose Jaro–Winkler similarity to an unknown one is above this is suggested
/// (the threshold of `maillog-config`'s unknown keys).
const SUGGEST_ABOVE: f64 = 0.8;

/// Which records carry a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// `from` records (messages accepted) only.
    From,
    /// `to` records (one per recipient) only.
    To,
    /// Both kinds (the header's fields, `relay`).
    Both,
}

impl Carrier {
    /// Whether records of `kind` may carry the field.
    pub fn carries(self, kind: Kind) -> bool {
        match self {
            Carrier::From => kind == Kind::From,
            Carrier::To => kind == Kind::To,
            Carrier::Both => true,
        }
    }

    /// The kind a query counts by default: the one that carries the field, `from` for both.
    pub fn default_kind(self) -> Kind {
        match self {
            Carrier::To => Kind::To,
            Carrier::From | Carrier::Both => Kind::From,
        }
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Carrier::From => "from records",
            Carrier::To => "to records",
            Carrier::Both => "from and to records",
        })
    }
}

/// A plain record field a query may name: one of [`FIELDS`], and only those (the name and
/// carrier are private, so a `Field` is always a known one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Field {
    name: &'static str,
    carrier: Carrier,
}

impl Field {
    const fn new(name: &'static str, carrier: Carrier) -> Field {
        Field { name, carrier }
    }

    /// The field's name in the archive contract.
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The records that carry it.
    pub fn carrier(self) -> Carrier {
        self.carrier
    }

    /// The known field of this name, exactly.
    pub fn lookup(name: &str) -> Option<Field> {
        FIELDS.into_iter().find(|field| field.name == name)
    }
}

/// Every plain field, in the order the list of known keys gives them: the contract's fields of
/// both kinds, of `from` records, of `to` records, then sendmail's own keys of `from=` and
/// `to=` lines.
pub const FIELDS: [Field; 28] = [
    Field::new("sendmailid", Carrier::Both),
    Field::new("pid", Carrier::Both),
    Field::new("month", Carrier::Both),
    Field::new("day", Carrier::Both),
    Field::new("time", Carrier::Both),
    Field::new("ts", Carrier::Both),
    Field::new("relay_ip", Carrier::Both),
    Field::new("size", Carrier::From),
    Field::new("classnumber", Carrier::From),
    Field::new("nrcpts", Carrier::From),
    Field::new("msgid", Carrier::From),
    Field::new("delay", Carrier::To),
    Field::new("xdelay", Carrier::To),
    Field::new("stat", Carrier::To),
    Field::new("proto", Carrier::From),
    Field::new("daemon", Carrier::From),
    Field::new("bodytype", Carrier::From),
    Field::new("auth", Carrier::From),
    Field::new("mailer", Carrier::To),
    Field::new("pri", Carrier::To),
    Field::new("dsn", Carrier::To),
    Field::new("ntries", Carrier::To),
    Field::new("ctladdr", Carrier::To),
    // Rarer keys seen in the archive (the shared corpus, the Athena table's columns).
    Field::new("quarantine", Carrier::From),
    Field::new("orcpt", Carrier::To),
    Field::new("tls_verify", Carrier::To),
    Field::new("tls_version", Carrier::To),
    Field::new("cipher", Carrier::To),
];

/// Every known key name: [`DERIVED`], then [`FIELDS`].
pub fn known() -> impl Iterator<Item = &'static str> {
    DERIVED
        .into_iter()
        .chain(FIELDS.into_iter().map(Field::name))
}

/// A `--by` or `--where` name that is no known key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a key{}; the keys are {}", hint(*.suggestion), known().collect::<Vec<_>>().join(", "))]
pub struct UnknownKey {
    /// The name as given.
    pub name: String,
    /// The known name most like it, if one is close enough.
    pub suggestion: Option<&'static str>,
}

impl UnknownKey {
    /// The error for `name`, with the closest known name.
    pub fn new(name: &str) -> UnknownKey {
        let suggestion = known()
            .map(|known| (strsim::jaro_winkler(name, known), known))
            .filter(|(score, _)| *score > SUGGEST_ABOVE)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, known)| known);
        UnknownKey {
            name: name.to_owned(),
            suggestion,
        }
    }
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_key_and_the_list() {
        for (typo, meant) in [
            ("dset", "dest"),
            ("stauts", "status"),
            ("mailr", "mailer"),
            ("src_doamin", "src_domain"),
            ("Dest", "dest"),
        ] {
            assert_eq!(UnknownKey::new(typo).suggestion, Some(meant), "{typo}");
        }
        assert_eq!(UnknownKey::new("zzz").suggestion, None);
        let message = UnknownKey::new("dset").to_string();
        assert!(
            message.starts_with(
                "\"dset\" is not a key (did you mean `dest`?); the keys are src, src_domain, \
                 mailserver, relay, dest, dest_domain, status, sendmailid,"
            ),
            "{message}"
        );
        assert!(
            message.ends_with(", ctladdr, quarantine, orcpt, tls_verify, tls_version, cipher"),
            "{message}"
        );
        assert!(!UnknownKey::new("zzz").to_string().contains("did you mean"));
    }

    #[test]
    fn each_field_is_carried_by_the_kind_that_logs_it() {
        let carrier = |name: &str| Field::lookup(name).unwrap().carrier();
        for name in ["mailer", "pri", "ntries", "delay", "xdelay", "stat", "dsn"] {
            assert_eq!(carrier(name), Carrier::To, "{name}");
            assert_eq!(carrier(name).default_kind(), Kind::To, "{name}");
        }
        for name in ["size", "nrcpts", "proto", "daemon", "msgid"] {
            assert_eq!(carrier(name), Carrier::From, "{name}");
            assert_eq!(carrier(name).default_kind(), Kind::From, "{name}");
        }
        assert_eq!(carrier("pid"), Carrier::Both);
        assert_eq!(Carrier::Both.default_kind(), Kind::From);
        assert!(Carrier::Both.carries(Kind::To) && Carrier::Both.carries(Kind::From));
        assert!(!Carrier::To.carries(Kind::From) && !Carrier::From.carries(Kind::To));
        assert_eq!(Field::lookup("nosuch"), None);
        // No name twice, and no field shadows a derived key.
        let mut names: Vec<_> = known().collect();
        names.sort_unstable();
        let len = names.len();
        names.dedup();
        assert_eq!(names.len(), len);
    }
}
