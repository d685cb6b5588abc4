//! The maillog line parser: one syslog line in, a sendmail event or a classified non-record out.
//!
//! This crate owns the reading half of `CONTRACT.md` (in `../shared/`): which lines are records,
//! what their fields are, and their JSON form. A line is read in three steps, each its own module:
//!
//! 1. [`decode`]: bytes to text — the line end (`\n`, `\r\n`) removed, bytes that are not UTF-8
//!    replaced by U+FFFD and counted, never dropped;
//! 2. [`header`]: the syslog header (BSD, ISO 8601, RFC 5424) — stamp, host, program, pid;
//! 3. [`message`]: the sendmail message — queue id, `from=`/`to=`, `key=value` fields;
//!
//! then [`event`] gathers the fields into an [`Event`], whose [`Record`]s serialize as the
//! contract's JSON ([`record`]), with `ts` from [`time`].
//!
//! The parser is zero-copy (every field borrows from the line) and total: it never panics and
//! never fails on any input; lines that make no record are classified ([`NonRecord`]) and
//! counted ([`ParseStats`]). The parser does no I/O and never reads the clock.
//!
//! Two modules read inputs, for the readers that take an input to its end: [`lines`] cuts a
//! reader into chunks of whole lines, and [`stream`] parses one input on every core, its records
//! out in input order (`maillog parse`). They are the only ones that read or spawn threads.

pub mod decode;
pub mod event;
pub mod header;
pub mod lines;
pub mod message;
pub mod record;
pub mod stats;
pub mod stream;
mod swar;
pub mod time;

pub use decode::{Decoded, decode};
pub use event::{Event, Record};
pub use message::Kind;
pub use record::FieldsMode;
pub use stats::ParseStats;
pub use time::{EventTime, TimeContext, YearPolicy, Zone, ZoneError};

use header::parse_header;
use message::{Message, classify_message};

/// The longest line kept whole, in bytes (without its newline); a longer one keeps its first
/// this many bytes. One limit for every reader — the tailer of `maillog run` and
/// `maillog parse` — so that a line gives the same record whatever reads it. 1 MiB: sixteen
/// times syslog-ng's default message size (`log-msg-size(65536)`).
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// Program names that are sendmail unless configured otherwise.
pub const DEFAULT_SENDMAIL_PROGRAMS: &[&str] = &[
    "sendmail",
    "sm-mta",
    "sm-msp-queue",
    "sm-smmsp-queue",
    "sm-acceptingconnections",
];

/// Why a line makes no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NonRecord {
    /// A well-formed syslog line of a program that is not sendmail (postfix, cron, kernel, …).
    OtherProgram,
    /// A sendmail line that is not a `from=`/`to=` record: `ruleset=`/`reject=`, `STARTTLS=`,
    /// `NOQUEUE`, DSN notices, `done;`, a `to=` without recipients, …
    SendmailOther,
    /// A piece of a message split over lines: sendmail's `QID[2]: …`, or a line that starts
    /// with blanks and has no header (a wrapped line).
    Continuation,
    /// No header the contract knows (none at all, a foreign prefix, garbage, an empty line), or
    /// a record line whose time stamp is no real time (the RFC 5424 nil stamp, `Feb 30`).
    Unparseable,
}

impl NonRecord {
    /// Every class, in the order reports list them.
    pub const ALL: [NonRecord; 4] = [
        NonRecord::OtherProgram,
        NonRecord::SendmailOther,
        NonRecord::Continuation,
        NonRecord::Unparseable,
    ];

    /// The class's name in summaries and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            NonRecord::OtherProgram => "other-program",
            NonRecord::SendmailOther => "sendmail-other",
            NonRecord::Continuation => "continuation",
            NonRecord::Unparseable => "unparseable",
        }
    }
}

/// What one line is.
#[derive(Debug, Clone)]
// Boxing the event would cost an allocation per line on the hottest path.
#[allow(clippy::large_enum_variant)]
pub enum Parsed<'a> {
    /// A `from=` or `to=` line of a sendmail program: one or more records.
    Event(Event<'a>),
    /// Any other line.
    NonRecord(NonRecord),
}

/// Parses lines with a fixed set of sendmail program names and a time context.
#[derive(Debug, Clone)]
pub struct Parser {
    programs: Vec<String>,
    time: TimeContext,
}

impl Parser {
    /// A parser that treats the [`DEFAULT_SENDMAIL_PROGRAMS`] and `extra_programs` as sendmail.
    pub fn new(time: TimeContext, extra_programs: &[String]) -> Self {
        let mut programs: Vec<String> = DEFAULT_SENDMAIL_PROGRAMS
            .iter()
            .map(|p| (*p).to_owned())
            .collect();
        for program in extra_programs {
            if !programs.contains(program) {
                programs.push(program.clone());
            }
        }
        Parser { programs, time }
    }

    /// The time context year-less stamps are resolved in.
    pub fn time_context(&self) -> &TimeContext {
        &self.time
    }

    /// Changes where year-less stamps take their year from (a live tailer moves the reference
    /// forward as it reads).
    pub fn set_year_policy(&mut self, year: YearPolicy) {
        self.time.year = year;
    }

    /// Whether `program` is one of the sendmail names.
    pub fn is_sendmail(&self, program: &str) -> bool {
        self.programs.iter().any(|p| p == program)
    }

    /// Reads one line, without its line end (see [`decode`]).
    pub fn parse<'a>(&self, line: &'a str) -> Parsed<'a> {
        let Some((header, message)) = parse_header(line) else {
            return Parsed::NonRecord(headerless_class(line));
        };
        match header.program {
            Some(program) if self.is_sendmail(program) => {}
            _ => return Parsed::NonRecord(NonRecord::OtherProgram),
        }
        let (queue_id, kind, fields) = match classify_message(message) {
            Message::Record {
                queue_id,
                kind,
                fields,
            } => (queue_id, kind, fields),
            Message::Continuation => return Parsed::NonRecord(NonRecord::Continuation),
            Message::Other => return Parsed::NonRecord(NonRecord::SendmailOther),
        };
        let Some(at) = header.stamp.and_then(|stamp| self.time.resolve(&stamp)) else {
            return Parsed::NonRecord(NonRecord::Unparseable);
        };
        let mut event = Event::new(&header, at, queue_id, kind, fields);
        event.needs_escape = record::needs_escape(line.as_bytes());
        if event.record_count() == 0 {
            return Parsed::NonRecord(NonRecord::SendmailOther);
        }
        Parsed::Event(event)
    }
}

/// A line without a header is the wrapped tail of another when it starts with blanks.
fn headerless_class(line: &str) -> NonRecord {
    let wrapped = line.starts_with([' ', '\t']);
    if wrapped && !line.trim().is_empty() {
        NonRecord::Continuation
    } else {
        NonRecord::Unparseable
    }
}
