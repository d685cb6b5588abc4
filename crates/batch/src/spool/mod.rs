//! The spool: the window files on disk between the tailer and the archive, and what of them is
//! durable.
//!
//! Layout under the spool directory:
//! - `open/NAME` — the complete bzip2 streams of an open window (one per 900 kB block);
//! - `open/NAME.block-K.ndjson` — the records of its block K while K is not in the streams
//!   file yet (the block being filled, and full blocks still being compressed);
//! - `sealed/NAME` — a finished window file, immutable, waiting for the archive.
//!
//! What is durable is what the last committed [`SpoolState`] says: for each open window the
//! length of its streams file, the blocks not yet in it (their raw files) and the current
//! block's raw length; and the list of sealed files. Compression never holds up a commit: a
//! block still being compressed is durable as its raw file, and is compressed again after a
//! crash. A window being sealed waits, still open, until its last block is compressed. [`Spool::sync`] makes the files reach those lengths (fsync) before the caller
//! commits the state together with the tailer positions (one atomic write); only then are
//! obsolete raw files deleted. At [`Spool::open`] every file is cut back to the committed state:
//! bytes written after it (a torn write, a block compressed but not yet committed, a window
//! sealed after the commit) are removed, and the tailer delivers their lines again. A crash at
//! any instant therefore loses nothing and duplicates nothing.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use maillog_parse::Zone;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::compress::{BLOCK_BYTES, Compressor, Pending};

mod error;
mod recover;
mod salvage;
mod sealed;
mod usage;
use crate::window::WindowId;
pub use error::SpoolError;
pub(crate) use error::{SHORTER_THAN_COMMITTED, at, disk_full};
pub use sealed::{KeyPin, SealedFile};
pub use usage::{Usage, usage};

/// A zone kept in the state, else the configured one (a state written by a version that did
/// not keep it, or a zone this build cannot read).
fn parse_zone(kept: Option<&str>, configured: Zone) -> Zone {
    kept.and_then(|z| z.parse().ok()).unwrap_or(configured)
}

/// Spool files are readable by the service's group (operators, backup), by no one else.
const FILE_MODE: u32 = 0o640;
/// Spool directories likewise.
const DIR_MODE: u32 = 0o750;

/// Creates (or empties) a spool file with [`FILE_MODE`].
fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates a spool directory (and its parents) with [`DIR_MODE`].
pub(crate) fn create_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// The durable state of one open window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenState {
    /// Which window.
    pub id: WindowId,
    /// Length of the streams file.
    pub bz2_len: u64,
    /// The first block not in the streams file: blocks `first_block..block` are complete and
    /// in their raw files, being compressed.
    #[serde(default)]
    pub first_block: u64,
    /// The block being filled.
    pub block: u64,
    /// Its length in the raw file.
    pub raw_len: u64,
    /// Records in the window so far.
    pub records: u64,
    /// Watermark when the window was opened (late parts are sealed by it).
    pub opened_at: i64,
    /// Its last block has been handed to the compressors: it is sealed once they are done.
    #[serde(default)]
    pub sealing: bool,
    /// The zone it was opened in (its name's), kept so that a window opened before a change
    /// of `time_zone` is finished under its own name; `None` in states written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

impl OpenState {
    /// The zone its name is in: its own, else `configured`.
    pub fn zone_or(&self, configured: Zone) -> Zone {
        parse_zone(self.zone.as_deref(), configured)
    }
}

/// The spool's durable state: committed with the tailer positions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolState {
    /// Open windows.
    pub open: Vec<OpenState>,
    /// Sealed files not yet archived.
    pub sealed: Vec<SealedFile>,
}

struct OpenWindow {
    name: String,
    /// The zone its name is in.
    zone: Zone,
    bz2: File,
    bz2_len: u64,
    block: u64,
    /// The records of the current block, all of them.
    raw: Vec<u8>,
    /// How much of `raw` is in the raw file.
    raw_written: usize,
    raw_file: Option<File>,
    /// Blocks being compressed, in order.
    in_flight: VecDeque<InFlight>,
    records: u64,
    opened_at: i64,
    sealing: bool,
    /// Written since the last sync.
    dirty: bool,
    /// Streams appended since the last fsync.
    unsynced: bool,
}

/// A full block handed to the compressors.
struct InFlight {
    block: u64,
    raw: Arc<Vec<u8>>,
    pending: Pending,
    /// The compressed stream, once taken from the worker and until it is in the file.
    stream: Option<Vec<u8>>,
    /// Its raw file and how much of the block is in it.
    raw_file: Option<File>,
    raw_written: usize,
}

/// What [`Spool::open`] found and did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Open windows resumed.
    pub resumed: usize,
    /// Files removed because the committed state did not have them (their lines come again).
    pub discarded: Vec<String>,
    /// Sealed files the state lists that are no longer in the spool (archived and released
    /// just before a stop: the caller checks the archive has them).
    pub missing_sealed: Vec<SealedFile>,
    /// Open windows the state lists whose files are gone or shorter than committed (a spool
    /// wiped or edited while the checkpoint was kept): their committed records are not in the
    /// spool any more (the caller reads their lines again where it can). What is left of them
    /// is moved to `orphaned/`.
    pub lost_windows: Vec<LostWindow>,
    /// Records of a spool found without a state, offered to the archive again.
    pub salvaged_records: u64,
}

/// An open window the spool could not resume.
#[derive(Debug)]
pub struct LostWindow {
    /// Which window.
    pub id: WindowId,
    /// Its file name.
    pub name: String,
    /// Records the state says it held.
    pub records: u64,
    /// Why it could not be resumed.
    pub why: String,
}

/// The open windows and sealed files on disk.
pub struct Spool {
    open_dir: PathBuf,
    sealed_dir: PathBuf,
    zone: Zone,
    windows: BTreeMap<WindowId, OpenWindow>,
    sealed: Vec<SealedFile>,
    compressor: Compressor,
    /// Raw files the state being built no longer needs.
    obsolete: Vec<PathBuf>,
    /// Raw files the last committed state no longer needs — but the one before it, the
    /// checkpoint's previous generation, may: deleted after the next commit.
    obsolete_committed: Vec<PathBuf>,
    /// Keep archived files this long in `uploaded/` (none: delete them).
    keep_uploaded: Option<std::time::Duration>,
}

impl Spool {
    fn raw_name(&self, name: &str, block: u64) -> String {
        raw_name(name, block)
    }

    fn raw_path(&self, name: &str, block: u64) -> PathBuf {
        self.open_dir.join(self.raw_name(name, block))
    }

    /// The windows taking records (not being sealed), with the watermark each was opened at.
    pub fn open_windows(&self) -> impl Iterator<Item = (WindowId, i64)> + '_ {
        self.windows
            .iter()
            .filter(|(_, w)| !w.sealing)
            .map(|(id, w)| (*id, w.opened_at))
    }

    /// Every window the spool holds records of but has not handed over whole: taking
    /// records or being sealed.
    pub fn unsealed_windows(&self) -> impl Iterator<Item = WindowId> + '_ {
        self.windows.keys().copied()
    }

    /// Whether a file of this name is in the spool (open or sealed).
    pub fn has_name(&self, name: &str) -> bool {
        self.open_dir.join(name).exists() || self.sealed_dir.join(name).exists()
    }

    /// Opens a window (its file is created empty).
    pub fn open_window(&mut self, id: WindowId, opened_at: i64) -> Result<(), SpoolError> {
        let name = id.file_name(&self.zone);
        let path = self.open_dir.join(&name);
        let bz2 = at("create", &path, create_file(&path))?;
        let window = OpenWindow {
            name,
            zone: self.zone,
            bz2,
            bz2_len: 0,
            block: 0,
            raw: Vec::new(),
            raw_written: 0,
            raw_file: None,
            in_flight: VecDeque::new(),
            records: 0,
            opened_at,
            sealing: false,
            dirty: true,
            unsynced: false,
        };
        self.windows.insert(id, window);
        Ok(())
    }

    /// Appends one record (a JSON line with its `\n`) to an open window. A full block goes to
    /// the compressors.
    pub fn append(&mut self, id: &WindowId, record: &[u8]) -> Result<(), SpoolError> {
        let Some(w) = self.windows.get_mut(id) else {
            let e = io::Error::other("window not open");
            return Err(SpoolError::new("append", &self.open_dir, e));
        };
        let full = !w.raw.is_empty() && w.raw.len() + record.len() > BLOCK_BYTES;
        if full {
            dispatch(w, &self.compressor);
        }
        w.raw.extend_from_slice(record);
        w.records += 1;
        w.dirty = true;
        if full && let Err(e) = self.reap_all() {
            // Not durable yet anyway: the next sync writes them again, and reports the error.
            tracing::debug!("appending compressed blocks waits for the next sync: {e}");
        }
        Ok(())
    }

    /// Makes everything appended so far durable without waiting for the compressors (with
    /// `wait`, after waiting for them): finished blocks are appended to their streams file,
    /// blocks still being compressed and the current block are written to their raw files,
    /// everything is fsynced. Windows being sealed whose last block is done are sealed (moved
    /// to `sealed/`) and returned.
    pub fn sync(&mut self, wait: bool) -> Result<Vec<SealedFile>, SpoolError> {
        let open_dir = self.open_dir.clone();
        let mut done = Vec::new();
        for (id, w) in self.windows.iter_mut() {
            if !w.dirty && w.in_flight.is_empty() && !w.sealing {
                continue;
            }
            let path = open_dir.join(&w.name);
            reap(w, &open_dir, &mut self.obsolete, wait)?;
            if w.unsynced {
                at("fsync", &path, w.bz2.sync_data())?;
                w.unsynced = false;
            }
            for block in w.in_flight.iter_mut() {
                let raw_path = open_dir.join(raw_name(&w.name, block.block));
                write_raw(
                    &raw_path,
                    &mut block.raw_file,
                    &mut block.raw_written,
                    &block.raw,
                )?;
            }
            let raw_path = open_dir.join(raw_name(&w.name, w.block));
            write_raw(&raw_path, &mut w.raw_file, &mut w.raw_written, &w.raw)?;
            w.dirty = false;
            if w.sealing && w.in_flight.is_empty() {
                done.push(*id);
            }
        }
        sync_dir(&self.open_dir)?;
        let mut sealed = Vec::new();
        for id in done {
            if let Some(file) = self.finish_seal(&id)? {
                sealed.push(file);
            }
        }
        Ok(sealed)
    }

    /// Appends every block already compressed to its file (not yet fsynced: [`Self::sync`]
    /// does that before the state is taken), so finished blocks do not wait in memory.
    fn reap_all(&mut self) -> Result<(), SpoolError> {
        for w in self.windows.values_mut() {
            reap(w, &self.open_dir, &mut self.obsolete, false)?;
        }
        Ok(())
    }

    /// Starts sealing a window: its last block goes to the compressors; [`Self::sync`] moves
    /// it to `sealed/` once they are done. Records for it go to a further part from now on.
    pub fn seal(&mut self, id: &WindowId) {
        if let Some(w) = self.windows.get_mut(id) {
            if !w.raw.is_empty() {
                dispatch(w, &self.compressor);
            }
            w.sealing = true;
            w.dirty = true;
        }
        if let Err(e) = self.reap_all() {
            tracing::debug!("appending compressed blocks waits for the next sync: {e}");
        }
    }

    /// The window leaves the open set only once its file is sealed: a failure (disk full)
    /// leaves it open, to be sealed at the next sync.
    fn finish_seal(&mut self, id: &WindowId) -> Result<Option<SealedFile>, SpoolError> {
        let Some(w) = self.windows.get(id) else {
            return Ok(None);
        };
        let path = self.open_dir.join(&w.name);
        if w.records > 0 {
            at("fsync", &path, w.bz2.sync_all())?;
            let to = self.sealed_dir.join(&w.name);
            at("seal", &path, fs::rename(&path, &to))?;
            sync_dir(&self.sealed_dir)?;
        } else {
            at("remove", &path, fs::remove_file(&path))?;
        }
        sync_dir(&self.open_dir)?;
        let Some(w) = self.windows.remove(id) else {
            return Ok(None);
        };
        if w.raw_file.is_some() {
            self.obsolete.push(self.raw_path(&w.name, w.block));
        }
        if w.records == 0 {
            return Ok(None);
        }
        let sealed = SealedFile {
            id: *id,
            name: w.name,
            records: w.records,
            bytes: w.bz2_len,
            archive_part: None,
            zone: Some(w.zone.to_string()),
            key: None,
        };
        self.sealed.push(sealed.clone());
        Ok(Some(sealed))
    }

    /// The durable state, valid after [`Self::sync`] (commit it with the tailer positions).
    pub fn state(&self) -> SpoolState {
        let open = self
            .windows
            .iter()
            .map(|(id, w)| OpenState {
                id: *id,
                bz2_len: w.bz2_len,
                first_block: w.in_flight.front().map_or(w.block, |b| b.block),
                block: w.block,
                raw_len: w.raw_written as u64,
                records: w.records,
                opened_at: w.opened_at,
                sealing: w.sealing,
                zone: Some(w.zone.to_string()),
            })
            .collect();
        SpoolState {
            open,
            sealed: self.sealed.clone(),
        }
    }

    /// After the state was committed: raw files that neither it nor the generation before it
    /// needs are deleted. (The checkpoint falls back to the previous generation when the
    /// newest is damaged; that generation must still find every file it names.)
    pub fn committed(&mut self) {
        let now_obsolete = std::mem::take(&mut self.obsolete);
        let deletable = std::mem::replace(&mut self.obsolete_committed, now_obsolete);
        for path in deletable {
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), "cannot remove: {e}");
            }
        }
    }

    /// Fixes the key template and host of every sealed file not fixed yet (see
    /// [`SealedFile::pin_key`]).
    pub fn pin_keys(&mut self, template: &str, host: &str) {
        for file in &mut self.sealed {
            file.pin_key(template, host);
        }
    }

    /// Sealed files waiting for the archive, oldest first.
    pub fn sealed(&self) -> &[SealedFile] {
        &self.sealed
    }

    /// Where a sealed file is.
    pub fn sealed_path(&self, name: &str) -> PathBuf {
        self.sealed_dir.join(name)
    }

    /// The archive has the file: it leaves the spool (and the next committed state).
    pub fn release(&mut self, name: &str) -> Result<(), SpoolError> {
        let path = self.sealed_dir.join(name);
        let gone = match self.keep_uploaded {
            Some(keep) => self.keep(&path, name, keep),
            None => fs::remove_file(&path),
        };
        match gone {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return at("release", &path, Err(e)),
            _ => {}
        }
        self.sealed.retain(|s| s.name != name);
        Ok(())
    }

    /// The archive holds the sealed file's name with other bytes: it is archived as `part`
    /// instead (from the next commit on; until then a restart finds the name taken again).
    pub fn retarget(&mut self, name: &str, part: u32) {
        if let Some(file) = self.sealed.iter_mut().find(|s| s.name == name) {
            file.archive_part = Some(part);
        }
    }

    /// Keeps archived files in `uploaded/` for `keep` after their upload (none: delete them).
    pub fn set_keep_uploaded(&mut self, keep: Option<std::time::Duration>) {
        self.keep_uploaded = keep;
    }

    /// Moves an archived file to `uploaded/`, stamped now, and deletes what is older than
    /// `keep` there.
    fn keep(&self, path: &Path, name: &str, keep: std::time::Duration) -> io::Result<()> {
        let dir = self.sealed_dir.with_file_name("uploaded");
        create_dir(&dir)?;
        let to = dir.join(name);
        fs::rename(path, &to)?;
        File::options()
            .write(true)
            .open(&to)?
            .set_modified(std::time::SystemTime::now())?;
        for entry in fs::read_dir(&dir)?.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if old.is_some_and(|age| age > keep) {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Bytes of sealed files waiting for the archive.
    pub fn sealed_bytes(&self) -> u64 {
        self.sealed.iter().map(|s| s.bytes).sum()
    }
}

/// Appends the window's blocks whose compression is done (all of them, waiting, with `wait`),
/// in order; their raw files become obsolete.
fn reap(
    w: &mut OpenWindow,
    open_dir: &Path,
    obsolete: &mut Vec<PathBuf>,
    wait: bool,
) -> Result<(), SpoolError> {
    let path = open_dir.join(&w.name);
    while let Some(front) = w.in_flight.front_mut() {
        if front.stream.is_none() {
            let result = if wait {
                Some(front.pending.wait())
            } else {
                front.pending.try_wait()
            };
            let Some(result) = result else { break };
            front.stream = Some(at("compress", &path, result)?);
        }
        let stream = front.stream.as_deref().unwrap_or_default();
        // At the known length, not "append": a retry after a failed write (disk full)
        // overwrites what the failure left, instead of adding to it; the stream is kept
        // until it is written.
        at("write", &path, w.bz2.write_all_at(stream, w.bz2_len))?;
        w.bz2_len += stream.len() as u64;
        w.unsynced = true;
        w.dirty = true;
        if let Some(block) = w.in_flight.pop_front()
            && (block.raw_file.is_some() || block.raw_written > 0)
        {
            obsolete.push(open_dir.join(raw_name(&w.name, block.block)));
        }
    }
    Ok(())
}

/// Hands a window's current block to the compressors and starts the next.
fn dispatch(w: &mut OpenWindow, compressor: &Compressor) {
    let raw = Arc::new(std::mem::replace(
        &mut w.raw,
        Vec::with_capacity(BLOCK_BYTES),
    ));
    let pending = compressor.submit(Arc::clone(&raw));
    let (raw_file, raw_written) = (w.raw_file.take(), w.raw_written);
    let block = w.block;
    w.in_flight.push_back(InFlight {
        block,
        raw,
        pending,
        stream: None,
        raw_file,
        raw_written,
    });
    w.block += 1;
    w.raw_written = 0;
    w.dirty = true;
}

fn raw_name(name: &str, block: u64) -> String {
    format!("{name}.block-{block:06}.ndjson")
}

/// Writes what is missing of `raw` to its raw file and fsyncs it.
fn write_raw(
    path: &Path,
    file: &mut Option<File>,
    written: &mut usize,
    raw: &[u8],
) -> Result<(), SpoolError> {
    if *written >= raw.len() {
        return Ok(());
    }
    if file.is_none() {
        let created = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(path);
        *file = Some(at("create", path, created)?);
    }
    if let Some(f) = file.as_mut() {
        at(
            "write",
            path,
            f.write_all_at(&raw[*written..], *written as u64),
        )?;
        at("fsync", path, f.sync_data())?;
    }
    *written = raw.len();
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    at("fsync", dir, File::open(dir).and_then(|d| d.sync_all()))
}
