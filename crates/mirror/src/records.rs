//! Archive records to Arrow columns ([`to_batch`]) and back ([`from_batch`]).
//!
//! A record is a JSON object of strings (the contract). Going in, each key goes to its column
//! ([`crate::schema::STRING_FIELDS`]) or to `other`, and the typed columns are derived; coming
//! back, the strings and `other` make the record again, equal as a map to the one that went in
//! (key order is not kept: the contract does not give it a meaning).
//!
//! It never reads or writes a file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Int64Builder, MapBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef, MapArray, RecordBatch, StringArray};
use arrow_schema::ArrowError;
use maillog_parse::Kind;

use crate::schema::{STRING_FIELDS, schema};

/// A record: field name to value, every value a string.
pub type Record = BTreeMap<String, String>;

/// Why a record cannot be mirrored.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A value that is not a string (the contract has only strings).
    #[error("field {0:?} is not a string")]
    NotAString(String),
    /// Not a JSON object.
    #[error("not a JSON object of strings: {0}")]
    NotAnObject(String),
}

/// A JSON line of the archive as a record.
pub fn parse_line(line: &str) -> Result<Record, RecordError> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| RecordError::NotAnObject(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(RecordError::NotAnObject("not an object".to_owned()));
    };
    map.into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => Ok((key, text)),
            _ => Err(RecordError::NotAString(key)),
        })
        .collect()
}

/// The records of one kind as a batch of the mirror's schema.
pub fn to_batch(kind: Kind, records: &[Record]) -> Result<RecordBatch, ArrowError> {
    let mut columns = Columns::new(kind);
    for record in records {
        columns.push_record(record);
    }
    columns.finish()
}

/// A record's fields as [`Columns`] takes them: the value of each of [`STRING_FIELDS`], and
/// the other keys in key order, each once.
struct Fields<'a> {
    strings: [Option<Cow<'a, str>>; STRING_FIELDS.len()],
    other: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// The mirror's columns of one kind being built, a record at a time. A JSON line is read
/// straight into them ([`Columns::push_line`]), with no map per record: the mirror is written
/// from every archived record, and a map each was a fifth of its cost.
pub struct Columns {
    kind: Kind,
    kinds: StringBuilder,
    strings: Vec<StringBuilder>,
    other: MapBuilder<StringBuilder, StringBuilder>,
    ts_utc: TimestampMicrosecondBuilder,
    size: Int64Builder,
    delay: Int64Builder,
    xdelay: Int64Builder,
}

impl Columns {
    /// No records yet, of `kind`.
    pub fn new(kind: Kind) -> Self {
        Columns {
            kind,
            kinds: StringBuilder::new(),
            strings: STRING_FIELDS.iter().map(|_| StringBuilder::new()).collect(),
            other: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            ts_utc: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            size: Int64Builder::new(),
            delay: Int64Builder::new(),
            xdelay: Int64Builder::new(),
        }
    }

    /// Adds the record of a JSON line of the archive.
    pub fn push_line(&mut self, line: &str) -> Result<(), RecordError> {
        match fields_of(line) {
            Some(fields) => self.push(&fields),
            // Not the common shape (a value not a string, not an object, a JSON error): the
            // map-building reader says why, or reads what this one would not.
            None => self.push_record(&parse_line(line)?),
        }
        Ok(())
    }

    /// Adds a record.
    pub fn push_record(&mut self, record: &Record) {
        let mut fields = Fields {
            strings: Default::default(),
            other: Vec::new(),
        };
        for (key, value) in record {
            match field_index(key) {
                Some(i) => fields.strings[i] = Some(Cow::Borrowed(value)),
                None => fields
                    .other
                    .push((Cow::Borrowed(key), Cow::Borrowed(value))),
            }
        }
        self.push(&fields);
    }

    fn push(&mut self, fields: &Fields<'_>) {
        self.kinds.append_value(self.kind.as_str());
        for (value, column) in fields.strings.iter().zip(&mut self.strings) {
            column.append_option(value.as_deref());
        }
        for (key, value) in &fields.other {
            self.other.keys().append_value(key);
            self.other.values().append_value(value);
        }
        // Cannot fail: keys and values were appended in pairs just above.
        let _ = self.other.append(true);
        let field = |name: &str| field_index(name).and_then(|i| fields.strings[i].as_deref());
        self.ts_utc.append_option(field("ts").and_then(ts_micros));
        self.size.append_option(field("size").and_then(digits));
        self.delay
            .append_option(field("delay").and_then(delay_seconds));
        self.xdelay
            .append_option(field("xdelay").and_then(delay_seconds));
    }

    /// Records added since the last [`Columns::finish`].
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records added as a batch; the builders start again empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.kinds.finish())];
        columns.extend(
            self.strings
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.push(Arc::new(self.other.finish()));
        columns.push(Arc::new(self.ts_utc.finish()));
        for b in [&mut self.size, &mut self.delay, &mut self.xdelay] {
            columns.push(Arc::new(b.finish()));
        }
        RecordBatch::try_new(schema(), columns)
    }
}

/// Which of [`STRING_FIELDS`] `key` is (a test keeps the two in step).
fn field_index(key: &str) -> Option<usize> {
    Some(match key {
        "sendmailid" => 0,
        "pid" => 1,
        "month" => 2,
        "day" => 3,
        "time" => 4,
        "mailserver" => 5,
        "src" => 6,
        "size" => 7,
        "classnumber" => 8,
        "nrcpts" => 9,
        "msgid" => 10,
        "relay" => 11,
        "dest" => 12,
        "delay" => 13,
        "xdelay" => 14,
        "stat" => 15,
        "ts" => 16,
        "relay_ip" => 17,
        "mailer" => 18,
        "pri" => 19,
        "dsn" => 20,
        "proto" => 21,
        "daemon" => 22,
        "ctladdr" => 23,
        _ => return None,
    })
}

/// The fields of a JSON object of strings, borrowed from `line` where no escape was undone;
/// `None` if it is not one (the caller reads it the slow way, which says why). A key given
/// twice keeps its last value, as a map would.
fn fields_of(line: &str) -> Option<Fields<'_>> {
    use serde::Deserializer as _;
    let mut de = serde_json::Deserializer::from_str(line);
    let fields = (&mut de).deserialize_map(FieldsVisitor).ok()?;
    de.end().ok()?;
    Some(fields)
}

struct FieldsVisitor;

impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object of strings")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields {
            strings: Default::default(),
            other: Vec::new(),
        };
        while let Some(key) = map.next_key_seed(Text)? {
            let value = map.next_value_seed(Text)?;
            match field_index(&key) {
                Some(i) => fields.strings[i] = Some(value),
                None => fields.other.push((key, value)),
            }
        }
        if fields.other.len() > 1 {
            // In key order, the last of a key given twice (a stable sort keeps their order).
            fields.other.sort_by(|a, b| a.0.cmp(&b.0));
            let mut kept: Vec<(Cow<'de, str>, Cow<'de, str>)> = Vec::new();
            for pair in fields.other.drain(..) {
                match kept.last_mut() {
                    Some(last) if last.0 == pair.0 => *last = pair,
                    _ => kept.push(pair),
                }
            }
            fields.other = kept;
        }
        Ok(fields)
    }
}

/// A JSON string, borrowed when it has no escapes.
struct Text;

impl<'de> serde::de::DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(text))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text.to_owned()))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(text))
    }
}

/// The records of a batch of the mirror's schema, with their kind (`from`, `to`).
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<(String, Record)>, ArrowError> {
    let string = |name: &str| -> Result<&StringArray, ArrowError> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| ArrowError::SchemaError(format!("no string column {name:?}")))
    };
    let kinds = string("kind")?;
    let strings = STRING_FIELDS
        .iter()
        .map(|name| string(name))
        .collect::<Result<Vec<_>, _>>()?;
    let other = batch
        .column_by_name("other")
        .and_then(|c| c.as_any().downcast_ref::<MapArray>())
        .ok_or_else(|| ArrowError::SchemaError("no map column \"other\"".to_owned()))?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut record = Record::new();
        for (name, column) in STRING_FIELDS.iter().zip(&strings) {
            if column.is_valid(row) {
                record.insert((*name).to_owned(), column.value(row).to_owned());
            }
        }
        if other.is_valid(row) {
            let entries = other.value(row);
            let keys = entries.column(0).as_any().downcast_ref::<StringArray>();
            let values = entries.column(1).as_any().downcast_ref::<StringArray>();
            if let (Some(keys), Some(values)) = (keys, values) {
                for i in 0..keys.len() {
                    record.insert(keys.value(i).to_owned(), values.value(i).to_owned());
                }
            }
        }
        out.push((kinds.value(row).to_owned(), record));
    }
    Ok(out)
}

/// `ts` (RFC 3339) in microseconds since the epoch.
fn ts_micros(ts: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// ASCII digits only, below 2^63 (as the queries read `size`).
fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `[D+]HH:MM:SS` in seconds.
fn delay_seconds(delay: &str) -> Option<i64> {
    let (days, clock) = match delay.split_once('+') {
        Some((days, clock)) => (digits(days)?, clock),
        None => (0, delay),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, m, s] = parts[..] else {
        return None;
    };
    let (h, m, s) = (digits(h)?, digits(m)?, digits(s)?);
    days.checked_mul(86_400)?
        .checked_add(h.checked_mul(3_600)?)?
        .checked_add(m.checked_mul(60)?)?
        .checked_add(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_comes_back_as_it_went_in_with_typed_columns_beside() {
        let lines = [
            r#"{"sendmailid":"q1","ts":"2025-12-31T23:15:00.25+01:00","size":"1234","src":"","bodytype":"8BITMIME","pid":"12"}"#,
            r#"{"sendmailid":"q2","delay":"1+00:00:15","dest":"a@b.org","stat":"Sent (ok  )","size":"x9"}"#,
        ];
        let records: Vec<Record> = lines
            .iter()
            .map(|l| parse_line(l).expect("record"))
            .collect();
        let batch = to_batch(Kind::From, &records).expect("batch");
        let back: Vec<Record> = from_batch(&batch)
            .expect("records")
            .into_iter()
            .map(|(kind, r)| {
                assert_eq!(kind, "from");
                r
            })
            .collect();
        assert_eq!(back, records);
        let ints = |name: &str| {
            let column = batch.column_by_name(name).expect("column");
            let ints = column
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .expect("ints");
            (0..ints.len())
                .map(|i| ints.is_valid(i).then(|| ints.value(i)))
                .collect::<Vec<_>>()
        };
        assert_eq!(ints("size_bytes"), [Some(1234), None]);
        assert_eq!(ints("delay_seconds"), [None, Some(86_415)]);
        assert!(parse_line(r#"{"size":5}"#).is_err());
    }

    #[test]
    fn a_json_line_read_straight_into_columns_is_the_batch_of_its_map() {
        for (i, name) in STRING_FIELDS.iter().enumerate() {
            assert_eq!(field_index(name), Some(i), "{name}");
        }
        let lines = [
            r#"{"sendmailid":"q1","ts":"2025-12-31T23:15:00.25+01:00","size":"1234","src":"","zz":"1","aa":"2"}"#,
            r#"{"dest":"a\"b@c.org","delay":"1+00:00:15","other":"x","dest":"last","aa":"3","aa":"4"}"#,
            r#"{"stat":"Sent (\u00e9t\u00e9)","mailer":"esmtp"}"#,
            r#"{}"#,
        ];
        let mut columns = Columns::new(Kind::To);
        for line in lines {
            columns.push_line(line).expect("a record");
        }
        let fast = columns.finish().expect("batch");
        let records: Vec<Record> = lines.iter().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(fast, to_batch(Kind::To, &records).expect("batch"));
        // Lines that are not records of strings say why, and add nothing.
        for bad in [r#"{"size":5}"#, "[1]", r#"{"a":"b"} x"#, "{"] {
            assert!(columns.push_line(bad).is_err(), "{bad}");
        }
        assert!(columns.is_empty());
    }
}
