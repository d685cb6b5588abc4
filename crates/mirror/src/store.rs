//! A mirror on local disk, under the archive's root (`mirror/…`, see [`crate::plan`]).
//!
//! Writing a file: its Parquet bytes (zstd) go to a hidden temporary file in the target
//! folder, synced, then hard-linked to the file's name — which fails if a file has that name
//! already: a mirror file is never replaced. If the file there has the same bytes (a run
//! killed after the link, before it could note it), that is success; other bytes are an
//! error, said with both. The temporary file is removed; one left by a kill is hidden (a dot
//! name, never listed) and removed by the next write to that folder.
//!
//! Every file's footer says which archive files it holds (`maillog.mirror.covers`, a JSON list
//! of keys) and the schema version, so the mirror describes itself: nothing beside it to keep
//! in step. Reading the archive's files (bzip2, every stream) is here too.
//!
//! It never writes to the archive.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::plan::PREFIX;
use crate::records::{self, Record};
use crate::schema::{SCHEMA_VERSION, schema};

/// The footer key listing the archive files a mirror file holds.
pub const COVERS: &str = "maillog.mirror.covers";
/// The footer key of the schema version.
pub const VERSION: &str = "maillog.mirror.schema";

/// Why the mirror could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A file could not be read, written or listed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the Parquet library said.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An archive line that is not a record of strings.
    #[error("{path} line {line}: {source}")]
    Record {
        /// The archive file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// Why.
        #[source]
        source: records::RecordError,
    },
    /// A mirror file that is not one (no list of the archive files it holds).
    #[error("{path}: not a mirror file: {why}")]
    NotMirror {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A mirror file exists with other bytes than the ones it should have: never replaced.
    #[error("{path} exists with other content ({existing} bytes, {new} now): left as it is")]
    Differs {
        /// The file.
        path: PathBuf,
        /// Its size.
        existing: u64,
        /// The size of the bytes made now.
        new: u64,
    },
}

/// A mirror file: its key and the archive files it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorFile {
    /// Under the archive's root.
    pub key: String,
    /// Archive keys.
    pub covers: Vec<String>,
}

/// The archive at `root` on disk, and its mirror under `root/mirror`.
pub struct LocalMirror {
    root: PathBuf,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> MirrorError + '_ {
    move |source| MirrorError::Io {
        path: path.to_owned(),
        source,
    }
}

impl LocalMirror {
    /// The archive at `root`.
    pub fn new(root: &Path) -> Self {
        LocalMirror {
            root: root.to_owned(),
        }
    }

    /// Every archive file (`*.json.bz2`) under the root, outside the mirror, as keys in order.
    pub fn archive_files(&self) -> Result<Vec<String>, MirrorError> {
        let mut keys = Vec::new();
        self.walk(&self.root, &mut |key, name| {
            if !key.starts_with(&format!("{PREFIX}/")) && name.ends_with(".json.bz2") {
                keys.push(key.to_owned());
            }
        })?;
        keys.sort();
        Ok(keys)
    }

    /// Every mirror file, with what it holds, in key order.
    pub fn mirror_files(&self) -> Result<Vec<MirrorFile>, MirrorError> {
        let mut keys = Vec::new();
        let dir = self.root.join(PREFIX);
        if dir.exists() {
            self.walk(&dir, &mut |key, name| {
                if name.ends_with(".parquet") {
                    keys.push(key.to_owned());
                }
            })?;
        }
        keys.sort();
        keys.into_iter()
            .map(|key| {
                let covers = self.covers(&key)?;
                Ok(MirrorFile { key, covers })
            })
            .collect()
    }

    /// The records of the archive file `key`, in order.
    pub fn archive_records(&self, key: &str) -> Result<Vec<Record>, MirrorError> {
        let path = self.root.join(key);
        let file = File::open(&path).map_err(io_error(&path))?;
        let reader = BufReader::new(bzip2::read::MultiBzDecoder::new(file));
        let mut out = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(io_error(&path))?;
            if line.is_empty() {
                continue;
            }
            let record = records::parse_line(&line).map_err(|source| MirrorError::Record {
                path: path.clone(),
                line: i + 1,
                source,
            })?;
            out.push(record);
        }
        Ok(out)
    }

    /// The records of the mirror file `key`, with their kinds.
    pub fn mirror_records(&self, key: &str) -> Result<Vec<(String, Record)>, MirrorError> {
        let path = self.root.join(key);
        let parquet = |source| MirrorError::Parquet {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io_error(&path))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
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

    /// Writes the mirror file `key` holding `batch`, the records of the archive files `covers`
    /// (see the module). Returns whether it wrote it (false: it was there, the same).
    pub fn write(
        &self,
        key: &str,
        covers: &[String],
        batch: &RecordBatch,
    ) -> Result<bool, MirrorError> {
        let path = self.root.join(key);
        let bytes = parquet_bytes(covers, batch).map_err(|source| MirrorError::Parquet {
            path: path.clone(),
            source,
        })?;
        let dir = path.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        remove_stale_temporaries(&dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut file = File::create(&temporary).map_err(io_error(&temporary))?;
        file.write_all(&bytes).map_err(io_error(&temporary))?;
        file.sync_all().map_err(io_error(&temporary))?;
        drop(file);
        let linked = fs::hard_link(&temporary, &path);
        let _ = fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_error(&dir))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let existing = fs::read(&path).map_err(io_error(&path))?;
                if existing == bytes {
                    Ok(false)
                } else {
                    Err(MirrorError::Differs {
                        path,
                        existing: existing.len() as u64,
                        new: bytes.len() as u64,
                    })
                }
            }
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    /// The archive files the mirror file `key` holds, from its footer.
    fn covers(&self, key: &str) -> Result<Vec<String>, MirrorError> {
        let path = self.root.join(key);
        let not = |why: &str| MirrorError::NotMirror {
            path: path.clone(),
            why: why.to_owned(),
        };
        let file = File::open(&path).map_err(io_error(&path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| {
            MirrorError::Parquet {
                path: path.clone(),
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

    /// Calls `found(key, name)` for every file under `dir` (keys relative to the root; hidden
    /// names skipped; symbolic links not followed).
    fn walk(&self, dir: &Path, found: &mut dyn FnMut(&str, &str)) -> Result<(), MirrorError> {
        let mut folders = vec![dir.to_owned()];
        while let Some(folder) = folders.pop() {
            for entry in fs::read_dir(&folder).map_err(io_error(&folder))? {
                let entry = entry.map_err(io_error(&folder))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let kind = entry.file_type().map_err(io_error(&entry.path()))?;
                if kind.is_dir() {
                    folders.push(entry.path());
                } else if kind.is_file()
                    && let Ok(key) = entry.path().strip_prefix(&self.root)
                {
                    found(&key.to_string_lossy(), &name);
                }
            }
        }
        Ok(())
    }
}

/// The Parquet bytes of a mirror file: zstd, one row group per 128 Ki rows, the footer saying
/// what it holds. The same records give the same bytes.
fn parquet_bytes(
    covers: &[String],
    batch: &RecordBatch,
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let covers = serde_json::to_string(covers).unwrap_or_default();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(COVERS.to_owned(), covers),
            KeyValue::new(VERSION.to_owned(), SCHEMA_VERSION.to_owned()),
        ]))
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(bytes)
}

/// Removes the temporary files a killed write left in `dir`.
fn remove_stale_temporaries(dir: &Path) -> Result<(), MirrorError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

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
