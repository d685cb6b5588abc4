//! Archive records to Arrow columns ([`to_batch`]) and back ([`from_batch`]).
//!
//! A record is a JSON object of strings (the contract). Going in, each key goes to its column
//! ([`crate::schema::STRING_FIELDS`]) or to `other`, and the typed columns are derived; coming
//! back, the strings and `other` make the record again, equal as a map to the one that went in
//! (key order is not kept: the contract does not give it a meaning).
//!
//! It never reads or writes a file.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, MapBuilder, StringBuilder, TimestampMicrosecondBuilder};
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
    let mut kinds = StringBuilder::new();
    let mut strings: Vec<StringBuilder> =
        STRING_FIELDS.iter().map(|_| StringBuilder::new()).collect();
    let mut other = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut ts_utc = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let (mut size, mut delay, mut xdelay) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    for record in records {
        kinds.append_value(kind.as_str());
        for (name, column) in STRING_FIELDS.iter().zip(&mut strings) {
            column.append_option(record.get(*name));
        }
        for (key, value) in record {
            if !STRING_FIELDS.contains(&key.as_str()) {
                other.keys().append_value(key);
                other.values().append_value(value);
            }
        }
        other.append(true)?;
        ts_utc.append_option(record.get("ts").and_then(|ts| ts_micros(ts)));
        size.append_option(record.get("size").and_then(|s| digits(s)));
        delay.append_option(record.get("delay").and_then(|d| delay_seconds(d)));
        xdelay.append_option(record.get("xdelay").and_then(|d| delay_seconds(d)));
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(kinds.finish())];
    columns.extend(strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(other.finish()));
    columns.push(Arc::new(ts_utc.finish()));
    for mut b in [size, delay, xdelay] {
        columns.push(Arc::new(b.finish()));
    }
    RecordBatch::try_new(schema(), columns)
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
}
