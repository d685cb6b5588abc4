//! A sendmail event — one parsed `from=` or `to=` line — and the records it makes.
//!
//! This module owns gathering a line's fields into the contract's shape: the original fields
//! (`src`, `size`, `classnumber`, … / `dest`, `delay`, `stat`, …), the added ones (`ts`,
//! `relay_ip`, and every other key under sendmail's own name), last value winning for a
//! repeated key, and one record per recipient of a `to=` list.
//!
//! Everything borrows from the line; it never allocates except when a line carries more
//! unusual keys than fit inline. It never writes JSON (that is `crate::record`).

use crate::header::Header;
use crate::message::{Fields, Kind, recipients, split_relay, strip_angle};
use crate::time::EventTime;

/// How many added keys a line may carry before they spill to the heap.
const INLINE_EXTRAS: usize = 8;

/// One parsed `from=` or `to=` line of a sendmail program.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// From or to.
    pub kind: Kind,
    /// The queue id (`sendmailid`).
    pub queue_id: &'a str,
    /// Month, 1 to 12, of the stamp as written.
    pub month: u8,
    /// Day of the month of the stamp as written.
    pub day: u8,
    /// `hh:mm:ss` of the stamp as written.
    pub time: &'a str,
    /// The logging host (`mailserver`), when the header names one.
    pub host: Option<&'a str>,
    /// The process id, when the header carries one.
    pub pid: Option<&'a str>,
    /// When the event happened (`ts`).
    pub at: EventTime<'a>,
    /// `from=` (brackets kept) or the raw `to=` list.
    pub address: Option<&'a str>,
    /// The values of the original fields other than the address.
    pub size: Option<&'a str>,
    /// `class=`.
    pub class: Option<&'a str>,
    /// `nrcpts=`.
    pub nrcpts: Option<&'a str>,
    /// `msgid=` (brackets kept).
    pub msgid: Option<&'a str>,
    /// `relay=` as logged.
    pub relay: Option<&'a str>,
    /// `relay=` split into its host part and bracketed address (once, when gathered).
    relay_parts: (Option<&'a str>, Option<&'a str>),
    /// `delay=`.
    pub delay: Option<&'a str>,
    /// `xdelay=`.
    pub xdelay: Option<&'a str>,
    /// `stat=`, to the end of the line.
    pub stat: Option<&'a str>,
    /// Every other key, in the order first logged, last value winning.
    pub extras: Extras<'a>,
    /// How many records the event makes (counted once, when gathered).
    record_count: usize,
    /// Whether the line holds a byte JSON must escape (`"`, `\\`, a control character);
    /// when it does not, no value taken from it needs checking.
    pub(crate) needs_escape: bool,
}

/// The added `key=value` fields of a line.
pub type Extras<'a> = smallvec::SmallVec<[(&'a str, &'a str); INLINE_EXTRAS]>;

impl<'a> Event<'a> {
    /// Gathers the fields of a record message (`fields` starts at `from=`/`to=`).
    #[inline(always)]
    pub(crate) fn new(
        header: &Header<'a>,
        at: EventTime<'a>,
        queue_id: &'a str,
        kind: Kind,
        fields: &'a str,
    ) -> Self {
        let stamp_time = header.stamp.map_or("", |s| s.time);
        let (month, day) = header.stamp.map_or((0, 0), |s| (s.month, s.day));
        let mut event = Event {
            kind,
            queue_id,
            month,
            day,
            time: stamp_time,
            host: header.host,
            pid: header.pid,
            at,
            address: None,
            size: None,
            class: None,
            nrcpts: None,
            msgid: None,
            relay: None,
            relay_parts: (None, None),
            delay: None,
            xdelay: None,
            stat: None,
            extras: Extras::new(),
            record_count: 0,
            needs_escape: true,
        };
        for (key, value) in Fields::new(fields) {
            event.set(key, value);
        }
        if let Some(relay) = event.relay {
            let (host, ip) = split_relay(relay);
            event.relay_parts = (Some(host), ip);
        }
        event.record_count = match kind {
            Kind::From => 1,
            Kind::To => event.recipients().count(),
        };
        event
    }

    fn set(&mut self, key: &'a str, value: &'a str) {
        let value = (!value.is_empty()).then_some(value);
        let slot = match key {
            "from" if self.kind == Kind::From => &mut self.address,
            "to" if self.kind == Kind::To => &mut self.address,
            "size" => &mut self.size,
            "class" => &mut self.class,
            "nrcpts" => &mut self.nrcpts,
            "msgid" => &mut self.msgid,
            "relay" => &mut self.relay,
            "delay" => &mut self.delay,
            "xdelay" => &mut self.xdelay,
            "stat" => &mut self.stat,
            // The other kind's address is an original field too: never added again.
            "from" | "to" => return,
            // Names a record already uses: adding them would give a record a key twice.
            "kind" | "sendmailid" | "pid" | "month" | "day" | "time" | "mailserver" | "src"
            | "dest" | "classnumber" | "ts" | "relay_ip" => return,
            _ => {
                self.set_extra(key, value);
                return;
            }
        };
        // A repeated key: the last one wins, also when it is empty.
        *slot = value;
    }

    fn set_extra(&mut self, key: &'a str, value: Option<&'a str>) {
        let existing = self.extras.iter().position(|(k, _)| *k == key);
        match (existing, value) {
            (Some(index), Some(value)) => self.extras[index].1 = value,
            (Some(index), None) => {
                self.extras.remove(index);
            }
            (None, Some(value)) => self.extras.push((key, value)),
            (None, None) => {}
        }
    }

    /// The sender (`src`): `from=` without angle brackets; `""` for the null sender `<>`.
    pub fn src(&self) -> Option<&'a str> {
        match self.kind {
            Kind::From => self.address.map(strip_angle),
            Kind::To => None,
        }
    }

    /// The recipients of a `to=` line, in the order logged (none for a `from=` line).
    pub fn recipients(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let list = match self.kind {
            Kind::To => self.address.unwrap_or(""),
            Kind::From => "",
        };
        recipients(list)
    }

    /// How many records this event makes.
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// The records of this event: one for `from=`, one per recipient for `to=`.
    pub fn records(&self) -> impl Iterator<Item = Record<'_, 'a>> {
        let from = (self.kind == Kind::From).then_some(Record {
            event: self,
            dest: None,
        });
        let to = self.recipients().map(|dest| Record {
            event: self,
            dest: Some(dest),
        });
        from.into_iter().chain(to)
    }

    /// The relay's host part and its bracketed address.
    pub fn relay_parts(&self) -> (Option<&'a str>, Option<&'a str>) {
        self.relay_parts
    }
}

/// One archive record: a `from` event, or one recipient of a `to` event.
#[derive(Debug, Clone, Copy)]
pub struct Record<'e, 'a> {
    /// The event the record comes from.
    pub event: &'e Event<'a>,
    /// The recipient, for a `to` record.
    pub dest: Option<&'a str>,
}

impl Record<'_, '_> {
    /// From or to.
    pub fn kind(&self) -> Kind {
        self.event.kind
    }
}
