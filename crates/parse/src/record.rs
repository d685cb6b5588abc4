//! The JSON form of a record, as the archive contract fixes it.
//!
//! This module owns the keys, their order and their values: every value a JSON string, a field
//! the line does not carry left out (never `""`, except `src` of the null sender), the original
//! fields first in the contract's order, then the added ones. [`FieldsMode::Original`] leaves the
//! added fields out for consumers that want the original records exactly.
//!
//! It never decides what a line means (that is `crate::event`) and never writes bytes itself:
//! it is a `serde::Serialize` view, so callers choose the writer and reuse their buffers.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::event::Record;
use crate::message::Kind;
use crate::time::TsBuf;

/// Which fields a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldsMode {
    /// The original fields and the added ones (`ts`, `relay_ip`, every other key).
    #[default]
    All,
    /// The original fields only, as the original pipeline wrote them.
    Original,
}

/// A record ready to serialize as one JSON object.
#[derive(Debug, Clone, Copy)]
pub struct RecordJson<'r, 'e, 'a> {
    record: &'r Record<'e, 'a>,
    mode: FieldsMode,
    with_kind: bool,
}

impl<'e, 'a> Record<'e, 'a> {
    /// The record as the archive stores it.
    pub fn json(&self, mode: FieldsMode) -> RecordJson<'_, 'e, 'a> {
        RecordJson {
            record: self,
            mode,
            with_kind: false,
        }
    }

    /// The record with `"kind":"from"|"to"` as its first key (for `maillog parse`, where both
    /// kinds share one stream; archive files never carry it).
    pub fn json_with_kind(&self, mode: FieldsMode) -> RecordJson<'_, 'e, 'a> {
        RecordJson {
            record: self,
            mode,
            with_kind: true,
        }
    }
}

const MONTHS: [&str; 13] = [
    "", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

const DAYS: [&str; 32] = [
    "", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
];

impl Serialize for RecordJson<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.record;
        let event = record.event;
        let (relay, relay_ip) = event.relay_parts();
        let (relay, relay_ip) = (non_empty(relay), non_empty(relay_ip));
        let mut map = serializer.serialize_map(None)?;
        if self.with_kind {
            map.serialize_entry("kind", event.kind.as_str())?;
        }
        map.serialize_entry("sendmailid", event.queue_id)?;
        entry(&mut map, "pid", event.pid)?;
        let month = MONTHS.get(usize::from(event.month)).copied().unwrap_or("");
        map.serialize_entry("month", month)?;
        let day = DAYS.get(usize::from(event.day)).copied().unwrap_or("");
        map.serialize_entry("day", day)?;
        map.serialize_entry("time", event.time)?;
        entry(&mut map, "mailserver", event.host)?;
        match event.kind {
            Kind::From => {
                entry(&mut map, "src", event.src())?;
                entry(&mut map, "size", event.size)?;
                entry(&mut map, "classnumber", event.class)?;
                entry(&mut map, "nrcpts", event.nrcpts)?;
                let msgid = event.msgid.map(crate::message::strip_angle);
                entry(&mut map, "msgid", non_empty(msgid))?;
                entry(&mut map, "relay", relay)?;
            }
            Kind::To => {
                entry(&mut map, "dest", record.dest)?;
                entry(&mut map, "delay", event.delay)?;
                entry(&mut map, "xdelay", event.xdelay)?;
                entry(&mut map, "stat", event.stat)?;
                entry(&mut map, "relay", relay)?;
            }
        }
        if self.mode == FieldsMode::All {
            let mut ts = TsBuf::default();
            map.serialize_entry("ts", event.at.rfc3339(&mut ts))?;
            entry(&mut map, "relay_ip", relay_ip)?;
            for (key, value) in &event.extras {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

fn entry<M: SerializeMap>(map: &mut M, key: &str, value: Option<&str>) -> Result<(), M::Error> {
    match value {
        Some(value) => map.serialize_entry(key, value),
        None => Ok(()),
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}
