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

/// The end of a Parquet file of `len` bytes, read alone (a ranged read of an S3 object), as a
/// [`ChunkReader`]: enough for [`covers`], which reads only the footer. Asking for bytes
/// before it is an error.
pub struct FileEnd {
    len: u64,
    end: bytes::Bytes,
}

impl FileEnd {
    /// The footer of a Parquet file of `len` bytes, read by `tail` (the last N bytes, N never
    /// more than `len`: s3s-fs fails a suffix range longer than the object): one read of the
    /// last 64 KiB, a second of the footer's length when it is longer.
    pub fn read(len: u64, tail: impl Fn(u64) -> io::Result<Vec<u8>>) -> io::Result<FileEnd> {
        let not_parquet = || io::Error::new(io::ErrorKind::InvalidData, "not a Parquet file");
        let mut end = tail(len.min(64 * 1024))?;
        // The file ends with the footer's length (u32, little-endian) and `PAR1`.
        let footer = end
            .len()
            .checked_sub(8)
            .and_then(|at| end.get(at..at + 4))
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(not_parquet)?;
        let wanted = u64::from(footer) + 8;
        if wanted > len {
            return Err(not_parquet());
        }
        if wanted > end.len() as u64 {
            end = tail(wanted)?;
        }
        Ok(FileEnd {
            len,
            end: bytes::Bytes::from(end),
        })
    }
}

impl parquet::file::reader::Length for FileEnd {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for FileEnd {
    type T = bytes::buf::Reader<bytes::Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        let length = usize::try_from(self.len.saturating_sub(start)).unwrap_or(usize::MAX);
        Ok(self.get_bytes(start, length)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let first = self.len.saturating_sub(self.end.len() as u64);
        let at = start
            .checked_sub(first)
            .and_then(|at| usize::try_from(at).ok())
            .filter(|at| at.saturating_add(length) <= self.end.len())
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!(
                    "bytes {start}..+{length} are not in the {} read of the file's end",
                    self.end.len()
                ))
            })?;
        Ok(self.end.slice(at..at + length))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use maillog_mirror::records::{Columns as MirrorColumns, to_batch};
    use maillog_mirror::schema::{COVERS, schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    use std::cell::Cell;

    /// A mirror file holding `covers`, with one record.
    fn mirror_file(covers: &[String]) -> Vec<u8> {
        let mut columns = MirrorColumns::new(Kind::To);
        columns.push_line(r#"{"dest":"a@b.org"}"#).expect("record");
        let batch = columns.finish().expect("batch");
        assert_eq!(
            batch,
            to_batch(
                Kind::To,
                &[[("dest".to_owned(), "a@b.org".to_owned())].into()]
            )
            .expect("batch")
        );
        let properties = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(
                COVERS.to_owned(),
                serde_json::to_string(covers).expect("json"),
            )]))
            .build();
        let mut out = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut out, schema(), Some(properties)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        out
    }

    #[test]
    fn a_footer_is_read_from_the_file_s_end_alone_in_one_read_or_two() {
        for keys in [3, 5_000] {
            // 5,000 keys: a footer of over 64 KiB, read again at its length.
            let held: Vec<String> = (0..keys)
                .map(|i| format!("mail_logs/2025-12-31/to-2025-12-31-23-{i:05}.json.bz2"))
                .collect();
            let file = mirror_file(&held);
            let reads = Cell::new(0);
            let len = file.len() as u64;
            let end = FileEnd::read(len, |n| {
                reads.set(reads.get() + 1);
                assert!(n <= len, "a suffix longer than the object");
                Ok(file[file.len() - n as usize..].to_vec())
            })
            .expect("the end");
            assert_eq!(reads.get(), if keys == 3 { 1 } else { 2 });
            // Past 64 KiB, the records are not in what was read: asking for them says so.
            assert_eq!(end.get_bytes(0, 4).is_err(), keys > 3);
            assert_eq!(covers(end).expect("covers"), held);
        }
        assert!(FileEnd::read(3, |_| Ok(b"abc".to_vec())).is_err());
    }
}
