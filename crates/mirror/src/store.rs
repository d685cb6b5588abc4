//! The mirror's files in the archive, under `mirror/` beside the archive's own keys (see
//! [`crate::plan`]), on disk or in S3 alike: through [`BlockingArchive`], whose put never
//! replaces a key (`link(2)` locally, `If-None-Match: *` on S3).
//!
//! Writing a file: its Parquet bytes (zstd) go to a file in a scratch folder of the caller's
//! (the spool for the service, a temporary folder for `compact`), which is put under the
//! file's key. If the key holds the same bytes (a run killed after the put, before it could
//! note it), that is success; other bytes are an error, said with the key. A kill at any
//! moment leaves the key whole or absent: the archive's put is atomic.
//!
//! Every file's footer says which archive files it holds (`maillog.mirror.covers`, a JSON list
//! of keys) and the schema version, so the mirror describes itself: nothing beside it to keep
//! in step. Reading the archive's files (bzip2, every stream) is here too.
//!
//! It never writes to the archive's own keys, and never deletes anything.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use maillog_archive::{ArchiveError, BlockingArchive, Placed};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::cache::{StreamCache, StreamName};
use crate::plan::Group;
use crate::records::{self, Columns, Record};
use crate::schema::{COVERS, PREFIX, SCHEMA_VERSION, VERSION, schema};

/// Why the mirror could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The archive refused a listing, a read or a put.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A scratch file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("{key}: {source}")]
    Parquet {
        /// The mirror file's key.
        key: String,
        /// What the Parquet library said.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An archive file that could not be decompressed.
    #[error("{key}: {source}")]
    Bzip2 {
        /// The archive file's key.
        key: String,
        /// What the decoder said.
        #[source]
        source: io::Error,
    },
    /// An archive line that is not a record of strings.
    #[error("{key} line {line}: {source}")]
    Record {
        /// The archive file's key.
        key: String,
        /// 1-based.
        line: usize,
        /// Why.
        #[source]
        source: records::RecordError,
    },
    /// A mirror file that is not one (no list of the archive files it holds).
    #[error("{key}: not a mirror file: {why}")]
    NotMirror {
        /// The file's key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

impl MirrorError {
    /// Whether the mirror file's key holds other bytes than the ones made now (another
    /// writer's, or an older version's): the key stays as it is.
    pub fn is_conflict(&self) -> bool {
        matches!(self, MirrorError::Archive(ArchiveError::Conflict { .. }))
    }
}

/// What writing a mirror file took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Made {
    /// Records written.
    pub records: usize,
    /// Archive files decoded from bzip2 (the others' records were in the stream cache).
    pub decoded: usize,
}

/// A mirror file: its key and the archive files it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorFile {
    /// Under the archive's root.
    pub key: String,
    /// Archive keys.
    pub covers: Vec<String>,
}

/// The archive, and its mirror under `mirror/`.
pub struct MirrorStore {
    archive: BlockingArchive,
    scratch: PathBuf,
    /// The records of streams the service made, taken rather than decoded.
    cache: Option<Arc<StreamCache>>,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> MirrorError + '_ {
    move |source| MirrorError::Io {
        path: path.to_owned(),
        source,
    }
}

impl MirrorStore {
    /// The mirror of `archive`; files are made in `scratch` (created if need be) before they
    /// are put.
    pub fn new(archive: BlockingArchive, scratch: &Path) -> Self {
        MirrorStore {
            archive,
            scratch: scratch.to_owned(),
            cache: None,
        }
    }

    /// The same, taking the records of the archive's streams from `cache` where it has them
    /// (the service's: see [`crate::cache`]).
    pub fn with_cache(self, cache: Arc<StreamCache>) -> Self {
        MirrorStore {
            cache: Some(cache),
            ..self
        }
    }

    /// The archive, as its URL says.
    pub fn archive(&self) -> &BlockingArchive {
        &self.archive
    }

    /// Every archive file (`*.json.bz2`) under `prefix` (empty: all), outside the mirror, as
    /// keys in order.
    pub fn archive_files(&self, prefix: &str) -> Result<Vec<String>, MirrorError> {
        let mirror = format!("{PREFIX}/");
        let mut keys: Vec<String> = self
            .archive
            .list(prefix)?
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| !key.starts_with(&mirror) && key.ends_with(".json.bz2"))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// The keys of the mirror files under `prefix` (`mirror/`: all), in order.
    pub fn mirror_keys(&self, prefix: &str) -> Result<Vec<String>, MirrorError> {
        let mut keys: Vec<String> = self
            .archive
            .list(prefix)?
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| key.ends_with(".parquet") && !is_hidden(key))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Every mirror file, with what it holds, in key order.
    pub fn mirror_files(&self) -> Result<Vec<MirrorFile>, MirrorError> {
        self.mirror_keys(&format!("{PREFIX}/"))?
            .into_iter()
            .map(|key| {
                let covers = self.covers(&key)?;
                Ok(MirrorFile { key, covers })
            })
            .collect()
    }

    /// The records of the archive file `key`, in order.
    pub fn archive_records(&self, key: &str) -> Result<Vec<Record>, MirrorError> {
        let bytes = self.archive.read(key)?;
        let reader = BufReader::new(bzip2::read::MultiBzDecoder::new(&bytes[..]));
        let mut out = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|source| MirrorError::Bzip2 {
                key: key.to_owned(),
                source,
            })?;
            if line.is_empty() {
                continue;
            }
            let record = records::parse_line(&line).map_err(|source| MirrorError::Record {
                key: key.to_owned(),
                line: i + 1,
                source,
            })?;
            out.push(record);
        }
        Ok(out)
    }

    /// The records of the mirror file `key`, with their kinds.
    pub fn mirror_records(&self, key: &str) -> Result<Vec<(String, Record)>, MirrorError> {
        let parquet = |source| MirrorError::Parquet {
            key: key.to_owned(),
            source,
        };
        let bytes = Bytes::from(self.archive.read(key)?);
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(parquet)?
            .build()
            .map_err(parquet)?;
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| parquet(e.into()))?;
            out.extend(records::from_batch(&batch).map_err(|e| parquet(e.into()))?);
        }
        Ok(out)
    }

    /// Writes the mirror file of `group`: the records of its archive files, one archive file
    /// at a time (memory holds one file's lines and a batch's columns), in the order of
    /// `group.covers` (see the module). Returns what it made, or `None` when the key held the
    /// same bytes.
    pub fn write(&self, group: &Group) -> Result<Option<Made>, MirrorError> {
        fs::create_dir_all(&self.scratch).map_err(io_error(&self.scratch))?;
        let name = group.key.rsplit('/').next().unwrap_or(&group.key);
        let scratch = self
            .scratch
            .join(format!(".{name}.{}.tmp", std::process::id()));
        let made = self.make(group, &scratch);
        let placed = made.and_then(|(made, streams)| {
            let placed = self.archive.put_new(&scratch, &group.key)?;
            if let Some(cache) = &self.cache {
                cache.forget(&streams);
            }
            Ok((placed == Placed::Stored).then_some(made))
        });
        let _ = fs::remove_file(&scratch);
        placed
    }

    /// The Parquet file of `group` at `path`; the records in it, and the cached streams they
    /// were taken from.
    fn make(&self, group: &Group, path: &Path) -> Result<(Made, Vec<StreamName>), MirrorError> {
        let parquet = |source| MirrorError::Parquet {
            key: group.key.clone(),
            source,
        };
        let file = File::create(path).map_err(io_error(path))?;
        let properties = properties(&group.covers).map_err(parquet)?;
        let mut writer = ArrowWriter::try_new(file, schema(), Some(properties)).map_err(parquet)?;
        let mut made = Made::default();
        let mut streams = Vec::new();
        let mut columns = Columns::new(group.kind);
        for key in &group.covers {
            let (lines, cached) = self.archive_lines(key)?;
            if cached.is_empty() {
                made.decoded += 1;
            }
            // Batches of BATCH_ROWS from each archive file's start, whichever way its lines
            // came: the same bytes.
            let mut write = |columns: &mut Columns| {
                made.records += columns.len();
                let batch = columns.finish().map_err(|e| parquet(e.into()))?;
                writer.write(&batch).map_err(parquet)
            };
            push_lines(&mut columns, key, lines, &mut write)?;
            if !columns.is_empty() {
                write(&mut columns)?;
            }
            streams.extend(cached);
        }
        writer.close().map_err(parquet)?;
        Ok((made, streams))
    }

    /// The lines of the archive file `key` as a reader: from the cache if it holds every
    /// stream of it (with those streams' names), else decoded as they are read.
    fn archive_lines(
        &self,
        key: &str,
    ) -> Result<(Box<dyn Read + '_>, Vec<StreamName>), MirrorError> {
        let bytes = self.archive.read(key)?;
        if let Some(cache) = &self.cache
            && let Some(names) = cache.kept(&bytes)
        {
            return Ok((Box::new(cache.reader(names.clone())), names));
        }
        let decoder = bzip2::read::MultiBzDecoder::new(io::Cursor::new(bytes));
        Ok((Box::new(decoder), Vec::new()))
    }

    /// The archive files the mirror file `key` holds, from its footer.
    pub fn covers(&self, key: &str) -> Result<Vec<String>, MirrorError> {
        let not = |why: &str| MirrorError::NotMirror {
            key: key.to_owned(),
            why: why.to_owned(),
        };
        let bytes = Bytes::from(self.archive.read(key)?);
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|source| {
            MirrorError::Parquet {
                key: key.to_owned(),
                source,
            }
        })?;
        let metadata = builder.metadata().file_metadata();
        let text = metadata
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == COVERS))
            .and_then(|k| k.value.clone())
            .ok_or_else(|| not("no maillog.mirror.covers in its footer"))?;
        serde_json::from_str(&text).map_err(|_| not("maillog.mirror.covers is not a list of keys"))
    }
}

/// Records a batch holds at most as a mirror file is made: its columns stay small however big
/// an archive file is (a window's at 1,000 lines/s is about 150,000 records).
const BATCH_ROWS: usize = 8192;

/// The archive file `key`'s `lines` (JSON lines, empty ones skipped, as `BufRead::lines` cuts
/// them) added to `columns`, handed to `write` whenever they hold [`BATCH_ROWS`].
fn push_lines(
    columns: &mut Columns,
    key: &str,
    lines: impl Read,
    write: &mut impl FnMut(&mut Columns) -> Result<(), MirrorError>,
) -> Result<(), MirrorError> {
    // Big reads: the decoder's cost is per call as much as per byte.
    let mut lines = BufReader::with_capacity(1 << 20, lines);
    let mut line = Vec::new();
    for i in 0.. {
        line.clear();
        let read = lines
            .read_until(b'\n', &mut line)
            .map_err(|source| MirrorError::Bzip2 {
                key: key.to_owned(),
                source,
            })?;
        if read == 0 {
            break;
        }
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let record = |source| MirrorError::Record {
            key: key.to_owned(),
            line: i + 1,
            source,
        };
        let text = std::str::from_utf8(line)
            .map_err(|_| record(records::RecordError::NotAnObject("not UTF-8".to_owned())))?;
        columns.push_line(text).map_err(record)?;
        if columns.len() >= BATCH_ROWS {
            write(columns)?;
        }
    }
    Ok(())
}

/// Whether a key has a hidden part (a dot name: a local put's temporary file).
fn is_hidden(key: &str) -> bool {
    key.split('/').any(|part| part.starts_with('.'))
}

/// How a mirror file is written: zstd, one row group per 128 Ki rows, the footer saying what
/// it holds. The same records give the same bytes.
///
/// zstd level 1: on this data it makes files no bigger than level 3 (0.3% smaller on a day of
/// 1M lines, 0.25% on 30 days of 1.2M), for 7% less of a pass's CPU (BENCHMARKS.md).
fn properties(covers: &[String]) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let covers = serde_json::to_string(covers).unwrap_or_default();
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(COVERS.to_owned(), covers),
            KeyValue::new(VERSION.to_owned(), SCHEMA_VERSION.to_owned()),
        ]));
    // Nearly a value per record: a dictionary only adds its pages (1.36x the archive's
    // bytes with, about 1.28x without; BENCHMARKS.md).
    for column in UNIQUE_COLUMNS {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), false);
    }
    Ok(builder.build())
}

/// The columns whose values rarely repeat within an hour.
const UNIQUE_COLUMNS: &[&str] = &["sendmailid", "msgid", "pid", "time", "ts", "ts_utc"];

/// The set of archive keys the mirror files hold, and the keys held twice.
pub fn covered(files: &[MirrorFile]) -> (BTreeSet<String>, Vec<String>) {
    let mut all = BTreeSet::new();
    let mut twice = Vec::new();
    for file in files {
        for key in &file.covers {
            if !all.insert(key.clone()) {
                twice.push(key.clone());
            }
        }
    }
    (all, twice)
}
