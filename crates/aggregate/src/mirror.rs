//! Reading the Parquet mirror (`maillog_mirror`, `SCHEMA.md`) for the queries: which archive
//! files a mirror file holds (its footer), and its records as [`Fields`], reading only the
//! columns a query needs.
//!
//! A row is the record the archive has: each string column is the field, byte for byte (null:
//! absent), and `other` holds the rest; so a query counts a mirror file exactly as it counts
//! the archive files it holds. Time comes from `ts_utc`, which the mirror derived from `ts`
//! with the same RFC 3339 reading as [`crate::json`]'s.
//!
//! It never decides which files to read (that is [`crate::inputs`]) and never writes.

use std::borrow::Cow;
use std::io;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, MapArray, PrimitiveArray, RecordBatch, StringArray};
use maillog_mirror::schema::{COVERS, STRING_FIELDS};
use maillog_parse::Kind;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use crate::fields::Fields;

/// The columns a query reads: `None` for every column, else these fields (a name that is not
/// a column of its own is looked up in `other`).
pub type Columns = Option<Vec<&'static str>>;

fn parquet_error(e: parquet::errors::ParquetError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The archive files (keys under the archive's root) the mirror file `source` holds, from
/// its footer; an error for a Parquet file that is not a mirror file.
pub fn covers<R: ChunkReader + 'static>(source: R) -> io::Result<Vec<String>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(source).map_err(parquet_error)?;
    let text = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == COVERS))
        .and_then(|k| k.value.clone())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a mirror file"))?;
    serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The batches of the mirror file `source`, of `columns` (and `kind`, and `ts_utc` for time).
pub fn batches<R: ChunkReader + 'static>(
    source: R,
    columns: &Columns,
) -> io::Result<ParquetRecordBatchReader> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(source).map_err(parquet_error)?;
    let builder = match columns {
        None => builder,
        Some(fields) => {
            let mut names = vec!["kind", "ts_utc"];
            for field in fields {
                names.push(if STRING_FIELDS.contains(field) {
                    field
                } else {
                    "other"
                });
            }
            let mask = ProjectionMask::columns(builder.parquet_schema(), names);
            builder.with_projection(mask)
        }
    };
    builder.with_batch_size(8192).build().map_err(parquet_error)
}

/// A batch's columns, found once.
pub struct BatchView<'a> {
    kinds: &'a StringArray,
    /// By the index of [`STRING_FIELDS`]; `None` where not read.
    strings: Vec<Option<&'a StringArray>>,
    other: Option<&'a MapArray>,
    ts_utc: Option<&'a PrimitiveArray<TimestampMicrosecondType>>,
    rows: usize,
}

impl<'a> BatchView<'a> {
    /// The view of `batch`; an error if it has no `kind` column (not a mirror file).
    pub fn new(batch: &'a RecordBatch) -> io::Result<Self> {
        let string = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
        };
        let kinds = string("kind").ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "no string column \"kind\"")
        })?;
        Ok(BatchView {
            kinds,
            strings: STRING_FIELDS.iter().map(|name| string(name)).collect(),
            other: batch.column_by_name("other").and_then(|c| c.as_map_opt()),
            ts_utc: batch
                .column_by_name("ts_utc")
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>()),
            rows: batch.num_rows(),
        })
    }

    /// Its rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `row` as a record (`row` below [`BatchView::rows`]).
    pub fn row(&self, row: usize) -> Row<'_, 'a> {
        let kind = if self.kinds.value(row) == "from" {
            Kind::From
        } else {
            Kind::To
        };
        Row {
            view: self,
            row,
            kind,
        }
    }
}

/// One row of a mirror file, as the queries read a record.
pub struct Row<'v, 'a> {
    view: &'v BatchView<'a>,
    row: usize,
    kind: Kind,
}

impl Fields for Row<'_, '_> {
    fn kind(&self) -> Kind {
        self.kind
    }

    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        let view = self.view;
        if let Some(at) = STRING_FIELDS.iter().position(|f| *f == name) {
            let column = view.strings.get(at).copied().flatten()?;
            return column
                .is_valid(self.row)
                .then(|| Cow::Borrowed(column.value(self.row)));
        }
        let other = view.other?;
        if !other.is_valid(self.row) {
            return None;
        }
        let entries = other.value(self.row);
        let keys = entries.column(0).as_string_opt::<i32>()?;
        let values = entries.column(1).as_string_opt::<i32>()?;
        (0..keys.len())
            .find(|i| keys.value(*i) == name)
            .filter(|i| values.is_valid(*i))
            .map(|i| Cow::Owned(values.value(i).to_owned()))
    }

    fn unix_micros(&self) -> Option<i64> {
        let ts = self.view.ts_utc?;
        ts.is_valid(self.row).then(|| ts.value(self.row))
    }
}
