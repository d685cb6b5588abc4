//! The mirror's columns (`SCHEMA.md` says the same for people).
//!
//! - `kind`: `from` or `to` (the archive file's kind), never null.
//! - One string column per field the archive commonly has, holding exactly the string of the
//!   JSON record, null where the record has no such field ([`STRING_FIELDS`]).
//! - `other`: every other key of the record, as a map of string to string (sendmail writes new
//!   keys; none is dropped).
//! - Typed columns, derived, for queries: `ts_utc` (timestamp, microseconds, UTC) from `ts`;
//!   `size_bytes` from `size`; `delay_seconds`, `xdelay_seconds` from `delay`, `xdelay`
//!   (`[D+]HH:MM:SS`). Null where the string is absent or not of that form. They are never
//!   read back into a record: the strings are the record.
//!
//! It never reads or writes a file.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// The fields that are columns of their own, as strings: the contract's original fields, `ts`,
/// `relay_ip`, and sendmail's keys the corpus carries most.
pub const STRING_FIELDS: &[&str] = &[
    "sendmailid",
    "pid",
    "month",
    "day",
    "time",
    "mailserver",
    "src",
    "size",
    "classnumber",
    "nrcpts",
    "msgid",
    "relay",
    "dest",
    "delay",
    "xdelay",
    "stat",
    "ts",
    "relay_ip",
    "mailer",
    "pri",
    "dsn",
    "proto",
    "daemon",
    "ctladdr",
];

/// The typed columns, after the strings and `other`.
pub const TYPED_FIELDS: &[&str] = &["ts_utc", "size_bytes", "delay_seconds", "xdelay_seconds"];

/// The version of the columns, in every file's footer (`maillog.mirror.schema`).
pub const SCHEMA_VERSION: &str = "1";

/// The footer key listing the archive files a mirror file holds (a JSON list of keys under
/// the archive's root).
pub const COVERS: &str = "maillog.mirror.covers";
/// The footer key of the schema version.
pub const VERSION: &str = "maillog.mirror.schema";
/// The folder of the mirror under the archive's root.
pub const PREFIX: &str = "mirror";

/// The Arrow schema of every mirror file.
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = vec![Field::new("kind", DataType::Utf8, false)];
        fields.extend(
            STRING_FIELDS
                .iter()
                .map(|name| Field::new(*name, DataType::Utf8, true)),
        );
        fields.push(Field::new_map(
            "other",
            "entries",
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
            false,
            true,
        ));
        fields.push(Field::new(
            "ts_utc",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ));
        for name in ["size_bytes", "delay_seconds", "xdelay_seconds"] {
            fields.push(Field::new(name, DataType::Int64, true));
        }
        Arc::new(Schema::new(Fields::from(fields)))
    });
    Arc::clone(&SCHEMA)
}
