//! One generated log line: what it says (typed), its text, and the records it must make.
//!
//! This module owns the two renderings of a line — the syslog text, in one of three header
//! styles, and the archive records the contract says that text makes — from one typed value, so
//! that a parser's output can be checked against what was meant rather than against another
//! reading of the text. It never decides what happens (that is `crate::activity`).

use chrono::{Datelike, NaiveDateTime, Timelike};

/// How the syslog header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderStyle {
    /// `Dec 31 23:59:58 mail03 sm-mta[4711]: ` (syslog-ng's default file format).
    #[default]
    Bsd,
    /// `2025-12-31T23:59:58+00:00 mail03 sm-mta[4711]: ` (syslog-ng `ts-format(iso)`).
    Iso,
    /// `<22>1 2025-12-31T23:59:58+00:00 mail03 sm-mta 4711 - - ` (RFC 5424).
    Rfc5424,
}

/// An address as logged: in angle brackets or bare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The address without brackets (`""` for the null sender).
    pub text: String,
    /// Whether it is logged as `<text>`.
    pub bracketed: bool,
}

impl Address {
    /// `<text>`
    pub fn angle(text: impl Into<String>) -> Self {
        Address {
            text: text.into(),
            bracketed: true,
        }
    }

    /// `text`, without brackets (`from=root`).
    pub fn bare(text: impl Into<String>) -> Self {
        Address {
            text: text.into(),
            bracketed: false,
        }
    }

    fn render(&self, out: &mut String) {
        if self.bracketed {
            out.push('<');
            out.push_str(&self.text);
            out.push('>');
        } else {
            out.push_str(&self.text);
        }
    }
}

/// A `relay=` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relay {
    /// `host [ip]`, optionally followed by ` (may be forged)`.
    HostIp {
        /// Host part (may end in a dot).
        host: String,
        /// Bracketed address.
        ip: String,
        /// Whether sendmail added `(may be forged)`.
        forged: bool,
    },
    /// `[ip] [ip]`: an address-only relay.
    IpIp(String),
    /// A bare word: `root@localhost`, `localhost`, `mx.example.org.`.
    Word(String),
}

/// A field's value, typed so that its record form is known without parsing its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Kept as logged.
    Plain(String),
    /// `from=`: the record's `src`.
    Sender(Address),
    /// `to=`: one record per recipient.
    Recipients(Vec<Address>),
    /// `msgid=<…>`: brackets removed in the record.
    MsgId(String),
    /// `relay=`: split into `relay` and `relay_ip`.
    Relay(Relay),
}

/// What a line says after its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `QID: key=value, …` — a from or to record line when the first key is `from` or `to`.
    Fields {
        /// The queue id, or `None` for messages logged without one (`ruleset=check_relay`).
        queue_id: Option<String>,
        /// The fields in order.
        fields: Vec<(&'static str, Value)>,
    },
    /// Free text after the tag, no record.
    Text(String),
}

/// One line of the aggregated log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The wall-clock time written in the header (the server's clock, skew included), UTC.
    pub at: NaiveDateTime,
    /// The host in the header.
    pub host: String,
    /// The program tag.
    pub program: &'static str,
    /// The process id.
    pub pid: u32,
    /// What it says.
    pub body: Body,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A record as the contract says the line's text makes it: its kind and its JSON object's keys
/// and values, `ts` included (written for UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedRecord {
    /// `from` or `to`.
    pub kind: &'static str,
    /// Keys and values, original fields first.
    pub fields: Vec<(&'static str, String)>,
}

impl LogLine {
    /// The line's text, without a line end.
    pub fn render(&self, style: HeaderStyle) -> String {
        let mut out = String::with_capacity(256);
        self.render_into(style, &mut out);
        out
    }

    /// Appends the line's text (without a line end) to `out`.
    pub fn render_into(&self, style: HeaderStyle, out: &mut String) {
        use std::fmt::Write;
        let t = self.at;
        let clock = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
        let date = format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day());
        // Writing into a String cannot fail.
        let _ = match style {
            HeaderStyle::Bsd => write!(
                out,
                "{} {:>2} {clock} {} {}[{}]: ",
                MONTHS[t.month0() as usize],
                t.day(),
                self.host,
                self.program,
                self.pid
            ),
            HeaderStyle::Iso => {
                write!(
                    out,
                    "{date}T{clock}+00:00 {} {}[{}]: ",
                    self.host, self.program, self.pid
                )
            }
            HeaderStyle::Rfc5424 => write!(
                out,
                "<22>1 {date}T{clock}+00:00 {} {} {} - - ",
                self.host, self.program, self.pid
            ),
        };
        match &self.body {
            Body::Text(text) => out.push_str(text),
            Body::Fields { queue_id, fields } => {
                if let Some(queue_id) = queue_id {
                    out.push_str(queue_id);
                    out.push_str(": ");
                }
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(key);
                    out.push('=');
                    render_value(value, out);
                }
            }
        }
    }

    /// The records this line makes under the contract (none for a non-record line). `ts` is
    /// written as `+00:00`, the generator's clock being UTC. One function on purpose: it
    /// reads top to bottom in the contract's field order (header, the kind's body, tail), the
    /// independent statement of that order the parser's tests compare against.
    pub fn expected_records(&self) -> Vec<ExpectedRecord> {
        let Body::Fields {
            queue_id: Some(queue_id),
            fields,
        } = &self.body
        else {
            return Vec::new();
        };
        let kind = match fields.first() {
            Some(("from", _)) => "from",
            Some(("to", _)) => "to",
            _ => return Vec::new(),
        };
        if !SENDMAIL_PROGRAMS.contains(&self.program) {
            // postfix and other programs write from= lines too; they are not records.
            return Vec::new();
        }
        let t = self.at;
        let header = [
            ("sendmailid", queue_id.clone()),
            ("pid", self.pid.to_string()),
            ("month", MONTHS[t.month0() as usize].to_owned()),
            ("day", t.day().to_string()),
            (
                "time",
                format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
            ),
            ("mailserver", self.host.clone()),
        ];
        let ts = format!("{}+00:00", t.format("%Y-%m-%dT%H:%M:%S"));
        let field = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
        let plain = |key: &str| match field(key) {
            Some(Value::Plain(v)) => Some(v.clone()),
            _ => None,
        };
        let (relay, relay_ip) = match field("relay") {
            Some(Value::Relay(relay)) => relay_parts(relay),
            _ => (None, None),
        };
        let mut tail = vec![("ts", ts)];
        tail.extend(relay_ip.map(|ip| ("relay_ip", ip)));
        tail.extend(
            fields
                .iter()
                .filter(|(k, _)| !ORIGINAL_KEYS.contains(k))
                .filter_map(|(k, v)| match v {
                    Value::Plain(v) => Some((*k, v.clone())),
                    _ => None,
                }),
        );
        let mut body = Vec::new();
        let push = |body: &mut Vec<(&'static str, String)>, key, value: Option<String>| {
            body.extend(value.map(|v| (key, v)));
        };
        let records = match field(kind) {
            Some(Value::Sender(address)) => {
                push(&mut body, "src", Some(address.text.clone()));
                push(&mut body, "size", plain("size"));
                push(&mut body, "classnumber", plain("class"));
                push(&mut body, "nrcpts", plain("nrcpts"));
                if let Some(Value::MsgId(id)) = field("msgid") {
                    push(&mut body, "msgid", Some(id.clone()));
                }
                push(&mut body, "relay", relay);
                vec![body]
            }
            Some(Value::Recipients(list)) => list
                .iter()
                .map(|dest| {
                    let mut body = Vec::new();
                    push(&mut body, "dest", Some(dest.text.clone()));
                    push(&mut body, "delay", plain("delay"));
                    push(&mut body, "xdelay", plain("xdelay"));
                    push(&mut body, "stat", plain("stat"));
                    push(&mut body, "relay", relay.clone());
                    body
                })
                .collect(),
            _ => Vec::new(),
        };
        records
            .into_iter()
            .map(|body| ExpectedRecord {
                kind,
                fields: header
                    .iter()
                    .cloned()
                    .chain(body)
                    .chain(tail.iter().cloned())
                    .collect(),
            })
            .collect()
    }
}

/// The program names the generator writes for sendmail (all among the contract's defaults).
pub const SENDMAIL_PROGRAMS: &[&str] = &["sendmail", "sm-mta", "sm-msp-queue"];

/// Keys whose record fields are the original ones (not added again).
const ORIGINAL_KEYS: &[&str] = &[
    "class", "from", "to", "size", "nrcpts", "msgid", "relay", "delay", "xdelay", "stat",
];

fn relay_parts(relay: &Relay) -> (Option<String>, Option<String>) {
    match relay {
        Relay::HostIp { host, ip, .. } => (Some(host.clone()), Some(ip.clone())),
        Relay::IpIp(ip) => (Some(ip.clone()), Some(ip.clone())),
        Relay::Word(word) => (Some(word.clone()), None),
    }
}

/// Appends a value as sendmail logs it.
pub(crate) fn render_value(value: &Value, out: &mut String) {
    match value {
        Value::Plain(text) => out.push_str(text),
        Value::Sender(address) => address.render(out),
        Value::Recipients(list) => {
            for (i, address) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                address.render(out);
            }
        }
        Value::MsgId(id) => {
            out.push('<');
            out.push_str(id);
            out.push('>');
        }
        Value::Relay(Relay::HostIp { host, ip, forged }) => {
            out.push_str(host);
            out.push_str(" [");
            out.push_str(ip);
            out.push(']');
            if *forged {
                out.push_str(" (may be forged)");
            }
        }
        Value::Relay(Relay::IpIp(ip)) => {
            out.push('[');
            out.push_str(ip);
            out.push_str("] [");
            out.push_str(ip);
            out.push(']');
        }
        Value::Relay(Relay::Word(word)) => out.push_str(word),
    }
}
