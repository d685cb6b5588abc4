//! The tailer's decisions, one pass at a time: which files the inputs name, what rotation,
//! deletion and truncation mean for each, and when a file is read to its end and let go.
//!
//! [`TailCore::pass`] is synchronous and takes the time as an argument, so the model test can
//! drive it step by step; [`crate::runner`] drives it from a thread on file events and a timer.
//!
//! Order: files are kept oldest first. A rotated file, or a copy holding the rest of a
//! truncated file, is read to its end before any file after it, so lines leave in the order
//! they were written. The core never commits a position: only the consumer does.

mod gone;
mod open;
mod replaced;
mod siblings;

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::{CheckpointStore, Continues, Entry, Loaded};
use crate::find::{self, Compression};
use crate::identity::{FileKey, Fingerprint};
use crate::lines::ChunkKind;
use crate::registry::{Checkpointer, Registry};
use crate::source::{Chunk, Followed, Look, Role};
use crate::stats::TailStats;
use crate::{StartAt, TailConfig, TailError};

/// How much one file may read in one pass before the others get their turn.
const PASS_BUDGET: u64 = 16 << 20;
/// How often entries of files that no longer exist are dropped from the registry.
const FORGET_INTERVAL: Duration = Duration::from_secs(60);

/// How the checkpoint was found at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointOrigin {
    /// No checkpoint: a first start; files found start at the configured position.
    FirstStart,
    /// The newest generation was read.
    Resumed,
    /// The newest slot was damaged; the previous generation was used (lines committed after
    /// it may be delivered again).
    PreviousGeneration(Vec<String>),
    /// No slot was readable: files found start at the configured position.
    Unreadable(Vec<String>),
}

/// Where a newly opened file starts: the read position, its committed position, its place in
/// the order of contents and which content it is (0: new, assigned by the registry).
#[derive(Clone, Copy, Debug, Default)]
struct At {
    read_from: u64,
    committed: u64,
    seq: u64,
    /// The epoch of the content the file holds when it is known content found in another file
    /// (a copy copytruncate made, a rotation compressed): a content keeps its epoch wherever
    /// it lives, so positions kept by epoch (a replay's origins) still find it.
    epoch: u32,
    /// Where reading that content began (see `Entry::first`).
    first: u64,
    /// The older content that content starts with (see `Entry::continues`).
    continues: Option<Continues>,
}

impl At {
    /// Where the known content `e` is: read and committed to its position.
    fn resuming(e: &Entry) -> Self {
        At {
            read_from: e.offset,
            committed: e.offset,
            seq: e.seq,
            epoch: e.epoch,
            first: e.first,
            continues: e.continues,
        }
    }
}

/// What a pass found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassReport {
    /// Some file has more to read now (the pass stopped at its budget).
    pub more: bool,
}

/// The tailer's state: followed files, the registry, what is done.
pub struct TailCore {
    config: TailConfig,
    checkpointer: Checkpointer,
    files: Vec<Followed>,
    /// Archives read to their end: not opened again while they exist.
    done: HashSet<FileKey>,
    /// Paths named by an input that could not be opened (warned about once).
    unreadable: HashSet<PathBuf>,
    /// Siblings of the inputs looked at and left alone.
    judged: siblings::Judged,
    /// Files replaced by a copy while followed: the replacement, its epoch, and where its own
    /// content starts (see [`replaced`]).
    replaced: std::collections::HashMap<FileKey, (FileKey, u32, u64)>,
    /// Where files unknown to the checkpoint start, until the first scan is over.
    first_start: Option<StartAt>,
    started: bool,
    last_forget: Option<Instant>,
    stats: Arc<TailStats>,
    origin: CheckpointOrigin,
}

impl TailCore {
    /// Loads the checkpoint (warning loudly when it is damaged or unreadable).
    pub fn open(config: TailConfig) -> Result<Self, TailError> {
        let dir = config.checkpoint_dir.clone();
        let (store, loaded) = CheckpointStore::open(&dir)?;
        let (entries, state, created, origin) = match loaded {
            Loaded::Missing => {
                tracing::info!(dir = %dir.display(), start = ?config.start_at,
                    "no checkpoint yet: files found now start at the configured position");
                (Vec::new(), None, None, CheckpointOrigin::FirstStart)
            }
            Loaded::Found {
                checkpoint,
                damaged,
            } if damaged.is_empty() => (
                checkpoint.entries,
                checkpoint.state,
                Some(checkpoint.created),
                CheckpointOrigin::Resumed,
            ),
            Loaded::Found {
                checkpoint,
                damaged,
            } => {
                tracing::warn!(dir = %dir.display(), damaged = ?damaged,
                    "the newest checkpoint is damaged: resuming from the previous generation \
                     (lines committed after it will be delivered again)");
                (
                    checkpoint.entries,
                    checkpoint.state,
                    Some(checkpoint.created),
                    CheckpointOrigin::PreviousGeneration(damaged),
                )
            }
            Loaded::Unreadable { damaged } => {
                tracing::error!(dir = %dir.display(), damaged = ?damaged, start = ?config.start_at,
                    "NO READABLE CHECKPOINT: positions are lost; files start at the configured \
                     position (the damaged files are left in place)");
                (
                    Vec::new(),
                    None,
                    None,
                    CheckpointOrigin::Unreadable(damaged),
                )
            }
        };
        let first_start = match origin {
            CheckpointOrigin::FirstStart | CheckpointOrigin::Unreadable(_) => Some(config.start_at),
            _ => None,
        };
        Ok(TailCore {
            checkpointer: Checkpointer::new(Registry::new(store, entries, state, created)),
            config,
            files: Vec::new(),
            done: HashSet::new(),
            unreadable: HashSet::new(),
            judged: siblings::Judged::new(),
            replaced: std::collections::HashMap::new(),
            first_start,
            started: false,
            last_forget: None,
            stats: Arc::default(),
            origin,
        })
    }

    /// The consumer's handle for commits.
    pub fn checkpointer(&self) -> Checkpointer {
        self.checkpointer.clone()
    }

    /// What it follows and how.
    pub fn config(&self) -> &TailConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> Arc<TailStats> {
        Arc::clone(&self.stats)
    }

    /// How the checkpoint was found at start.
    pub fn origin(&self) -> &CheckpointOrigin {
        &self.origin
    }

    /// The paths of the files followed now, oldest first.
    pub fn followed(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }

    /// One pass: rescan the inputs if asked (always the first time), then read what every file
    /// gained, handing out chunks through `send` (which returns false once the consumer is
    /// gone), and let go of files that are done.
    pub fn pass(
        &mut self,
        now: Instant,
        rescan: bool,
        send: &mut dyn FnMut(Chunk) -> bool,
    ) -> Result<PassReport, TailError> {
        if !self.started {
            self.resume_unfinished(now);
        }
        if rescan || !self.started {
            self.rescan(now);
        }
        if !self.started {
            self.started = true;
            self.first_start = None;
            // Positions chosen now (a start at the end) must survive a restart before the
            // first commit.
            if let Err(e) = self.checkpointer.lock().save() {
                tracing::warn!("{e}; trying again after the next pass");
            }
        }
        let stats = Arc::clone(&self.stats);
        let closed = Cell::new(false);
        let mut emit = counting(&stats, send, &closed);
        let mut more = false;
        let mut truncated_now = HashSet::new();
        let mut i = 0;
        while i < self.files.len() {
            let f = &mut self.files[i];
            let checkpointer = &self.checkpointer;
            let mut grew = |f: &Followed| {
                let path = f.path.to_string_lossy();
                let mut registry = checkpointer.lock();
                registry.update(f.key, f.fingerprint, &path);
                registry.saw(f.key, f.epoch, f.seen_size(), f.tail_print());
            };
            let looked = f.look(
                PASS_BUDGET,
                self.config.read_bytes,
                now,
                &mut grew,
                &mut emit,
            );
            if closed.get() {
                return Err(TailError::Closed);
            }
            let look = match looked {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(path = %f.path.display(), "cannot read: {e}");
                    TailStats::add(&self.stats.read_errors, 1);
                    i += 1;
                    continue;
                }
            };
            match look {
                Look::Truncated { head } if truncated_now.insert(f.key) => {
                    self.on_truncated(i, &head, now, &mut emit);
                    continue; // a copy may now sit at `i`: read it first
                }
                Look::Truncated { .. } => {}
                Look::Read { eof: false, .. } => {
                    more = true;
                    if f.role.goes_first() {
                        break; // later files wait until this one is read to its end
                    }
                }
                Look::Read { eof: true, .. } => {
                    if self.let_go_if_done(i, now, &mut emit) {
                        continue;
                    }
                }
            }
            i += 1;
        }
        if closed.get() {
            return Err(TailError::Closed);
        }
        if let Err(e) = self.checkpointer.lock().save_if_dirty() {
            // Only the files' identities are at stake (positions move only with commits):
            // try again after the next pass rather than stop reading.
            tracing::warn!("{e}; trying again");
        }
        Ok(PassReport { more })
    }

    /// The end of a run that does not follow (`--once`): lets every file go that is read to
    /// its end for good — a copy, an archive, a rotated (or deleted) file not written to for
    /// the rotate wait; the others are found again by the next run. A last line without its
    /// newline is handed out (with a newline added) only where the file is let go, or anywhere
    /// with [`TailConfig::finish_partial_lines`]. Elsewhere it is left unread: the file stays
    /// known at the end of its last complete line, and the next run reads the line whole.
    pub fn finish(&mut self, send: &mut dyn FnMut(Chunk) -> bool) -> Result<(), TailError> {
        let stats = Arc::clone(&self.stats);
        let closed = Cell::new(false);
        let mut emit = counting(&stats, send, &closed);
        let (take_partial, wait) = (self.config.finish_partial_lines, self.config.rotate_wait);
        for mut f in std::mem::take(&mut self.files) {
            let done = match f.role {
                Role::Live => false,
                // Its writer may not have reopened yet.
                Role::Rotated { .. } => f.quiet_on_disk(wait),
                Role::Predecessor | Role::Archive => true,
            };
            if done || take_partial {
                f.flush_partial(&mut emit);
            }
            if done && !f.has_partial() {
                self.release(&f);
            }
        }
        self.checkpointer.lock().save_if_dirty()?;
        if closed.get() {
            Err(TailError::Closed)
        } else {
            Ok(())
        }
    }

    fn rescan(&mut self, now: Instant) {
        for f in &mut self.files {
            f.named = false;
        }
        // Newer than every file followed so far, older than any the inputs name now.
        self.adopt_unknown_siblings(now);
        for input in self.config.inputs.clone() {
            for (path, _) in find::expand(&input) {
                match self.follow(path.clone(), now) {
                    Ok(()) => {
                        self.unreadable.remove(&path);
                    }
                    // Said once per path (the rescan runs every second), again once it recovers.
                    Err(e) if self.unreadable.insert(path.clone()) => {
                        tracing::warn!(path = %path.display(), "cannot open: {e}");
                        TailStats::add(&self.stats.read_errors, 1);
                    }
                    Err(_) => {}
                }
            }
        }
        for f in &mut self.files {
            if f.role == Role::Live && !f.named {
                tracing::info!(path = %f.path.display(),
                    "no longer named by an input (rotated or deleted): reading it to its end");
                f.role = Role::Rotated { since: now };
                TailStats::add(&self.stats.rotations, 1);
            }
        }

        if self
            .last_forget
            .is_none_or(|t| now.duration_since(t) >= FORGET_INTERVAL)
        {
            self.last_forget = Some(now);
            self.forget_vanished();
        }
    }

    /// A path an input names now: already followed (perhaps under another name), done, or new.
    fn follow(&mut self, path: PathBuf, now: Instant) -> io::Result<()> {
        let file = File::open(&path)?;
        let meta = file.metadata()?;
        let key = FileKey::of(&meta);
        if let Some(f) = self.files.iter_mut().find(|f| f.key == key) {
            f.named = true;
            if f.path != path {
                self.checkpointer
                    .lock()
                    .update(key, f.fingerprint, &path.to_string_lossy());
                f.set_path(path.clone());
            }
            f.named_as = path;
            if let Role::Rotated { .. } = f.role {
                f.role = Role::Live; // named again
            }
            return Ok(());
        }
        let kind = find::compression_of(&file)?;
        if self.done.contains(&key) {
            if kind != Compression::None {
                return Ok(());
            }
            // A plain file with the inode of a compressed one read to its end: that one is
            // gone.
            self.gone_elsewhere(key);
        }
        if kind == Compression::None
            && let Some(f) = self.open_replacement(&path, &file, meta.len(), key, now)?
        {
            TailStats::add(&self.stats.files_opened, 1);
            self.files.push(f);
            return Ok(());
        }
        let opened = match kind {
            Compression::None => Some(self.open_plain(path, file, meta.len(), key, now)?),
            _ => self.open_archive(path, file, kind, key, now)?,
        };
        if let Some(f) = opened {
            TailStats::add(&self.stats.files_opened, 1);
            self.files.push(f);
        }
        Ok(())
    }

    /// The file at `i` was truncated (or rewritten): read the rest of its old content from a
    /// copy if there is one, then start it over.
    fn on_truncated(&mut self, i: usize, head: &[u8], now: Instant, emit: &mut dyn FnMut(Chunk)) {
        TailStats::add(&self.stats.truncations, 1);
        let (path, named_as, fingerprint, key, from) = {
            let f = &self.files[i];
            (
                f.path.clone(),
                f.named_as.clone(),
                f.fingerprint,
                f.key,
                f.delivered(),
            )
        };
        tracing::warn!(path = %path.display(), read_to = from,
            "file truncated (copytruncate?): reading it again from the start");
        // Lines between the committed position and `from` are handed out but maybe not yet
        // durable: the copy's entry starts at the committed position, so a crash re-reads them.
        let (committed, seq, first, continues) = self
            .checkpointer
            .lock()
            .entries
            .get(&key)
            .map_or((from, 0, from, None), |e| {
                (e.offset, e.seq, e.first, e.continues)
            });
        let at = At {
            read_from: from,
            committed: committed.min(from),
            seq,
            epoch: self.files[i].epoch,
            first,
            continues,
        };
        // The copy is named after the input's name (mail.log.1), wherever the file is now.
        let found = self.open_copy(&named_as, fingerprint, key, at, now);
        let (copy_key, copy) = match found {
            Some((copy_key, copy)) => (Some(copy_key), copy),
            None => (None, None),
        };
        let f = &mut self.files[i];
        if copy.is_none() {
            f.flush_partial(emit); // the start of a line whose rest is gone: better than nothing
        }
        let old_epoch = f.epoch;
        let mut registry = self.checkpointer.lock();
        let epoch = registry.truncated(key, Fingerprint::of(head));
        if let Some(copy_key) = copy_key {
            registry.moved(key, old_epoch, copy_key);
        }
        drop(registry);
        if let Err(e) = f.restart(head, epoch) {
            tracing::warn!(path = %path.display(), "cannot rewind: {e}");
        }
        if let Some(copy) = copy {
            tracing::info!(path = %copy.path.display(), from,
                "the unread rest of the truncated file is in this copy: reading it first");
            TailStats::add(&self.stats.copies_read, 1);
            self.files.insert(i, copy);
        }
    }

    /// Drops registry entries of files let go earlier that no longer exist anywhere near —
    /// unless a copy holds their content (compressed by the rotation): the copy takes the entry.
    fn forget_vanished(&mut self) {
        let followed: HashSet<FileKey> = self.files.iter().map(|f| f.key).collect();
        let vanished: Vec<FileKey> = {
            let registry = self.checkpointer.lock();
            let gone = |key: &FileKey, e: &crate::checkpoint::Entry| {
                let path = Path::new(&e.path);
                let here = fs::metadata(path).is_ok_and(|m| FileKey::of(&m) == *key);
                let near = || {
                    path.parent()
                        .and_then(|dir| find::by_key(dir, *key))
                        .is_some()
                };
                !followed.contains(key) && e.eof.is_some() && !here && !near()
            };
            let entries = registry.entries.iter();
            entries
                .filter(|(k, e)| gone(k, e))
                .map(|(k, _)| *k)
                .collect()
        };
        for key in vanished {
            if !self.move_to_copy(key) {
                let mut registry = self.checkpointer.lock();
                registry.entries.remove(&key);
                registry.dirty = true;
            }
        }
        let registry = self.checkpointer.lock();
        self.done.retain(|key| registry.entries.contains_key(key));
    }

    /// Lets go of file `i` if it is done; returns whether it was removed.
    fn let_go_if_done(&mut self, i: usize, now: Instant, emit: &mut dyn FnMut(Chunk)) -> bool {
        let wait = self.config.rotate_wait;
        let f = &mut self.files[i];
        if f.role == Role::Live && f.deleted {
            tracing::info!(path = %f.path.display(), "deleted: reading it to its end");
            f.role = Role::Rotated { since: now };
            TailStats::add(&self.stats.rotations, 1);
        }
        let quiet = now.saturating_duration_since(f.last_growth);
        let release = match f.role {
            Role::Predecessor | Role::Archive => true,
            Role::Rotated { since } => {
                now.saturating_duration_since(since) >= wait && quiet >= wait
            }
            // A last line without its newline waits for it, however long: the writer may
            // not have flushed the rest yet.
            Role::Live => false,
        };
        if !release {
            return false;
        }
        f.flush_partial(emit); // the file is final: its last line is whole as it is
        let f = self.files.remove(i);
        tracing::info!(path = %f.path.display(), "read to its end: let go");
        self.release(&f);
        if f.is_compressed() {
            self.done.insert(f.key);
        }
        TailStats::add(&self.stats.files_released, 1);
        true
    }

    /// Records `f` as read to its end. A deleted file nobody can open again is forgotten,
    /// unless a copy of it is left (compressed by the rotation): the copy takes its entry.
    fn release(&mut self, f: &Followed) {
        self.checkpointer
            .lock()
            .released(f.key, f.delivered(), false);
        let replacement = self.replaced.remove(&f.key);
        if f.deleted
            && let Some((to, epoch, upto)) = replacement
        {
            // Its lines not committed are its replacement's too: taken there.
            self.checkpointer
                .lock()
                .hand_over(f.key, f.epoch, (to, epoch), upto);
        }
        if f.deleted && !self.move_to_copy(f.key) {
            self.checkpointer
                .lock()
                .released(f.key, f.delivered(), true);
        }
    }
}

/// Counts every chunk and sends it on; once `send` says the consumer is gone, `closed` is set
/// and the rest are dropped.
fn counting<'a>(
    stats: &'a TailStats,
    send: &'a mut dyn FnMut(Chunk) -> bool,
    closed: &'a Cell<bool>,
) -> impl FnMut(Chunk) + 'a {
    move |chunk| {
        count(stats, &chunk);
        if !closed.get() && !send(chunk) {
            closed.set(true);
        }
    }
}

fn count(stats: &TailStats, chunk: &Chunk) {
    TailStats::add(&stats.chunks, 1);
    TailStats::add(&stats.bytes, chunk.ack.offset - chunk.start);
    match chunk.kind {
        ChunkKind::Lines => {}
        ChunkKind::CutLine => TailStats::add(&stats.lines_cut, 1),
        ChunkKind::PartialLine => TailStats::add(&stats.partial_lines, 1),
    }
}
