//! Opening files for [`TailCore`]: a path an input names, a compressed archive, the copy that
//! holds a truncated file's rest, and the rotated files a restart must finish. Each decides
//! where reading starts from what the checkpoint knows, and registers the file.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{At, TailCore};
use crate::StartAt;
use crate::checkpoint::Entry;
use crate::find::{self, Compression};
use crate::identity::{FileKey, Fingerprint, read_head, read_stream_head, tail_of};
use crate::source::{Followed, Input, Role};
use crate::stats::TailStats;

impl TailCore {
    pub(super) fn open_plain(
        &mut self,
        path: PathBuf,
        mut file: File,
        size: u64,
        key: FileKey,
        now: Instant,
    ) -> io::Result<Followed> {
        let head = read_head(&file)?;
        let known = self.checkpointer.lock().entries.get(&key).cloned();
        let (position, epoch, seq) = match known {
            Some(e) if !e.compressed && e.fingerprint.matches(&head) && size >= e.offset => {
                (e.offset, e.epoch, e.seq)
            }
            Some(e) if e.eof.is_some() || e.compressed => {
                // A file let go earlier is gone and another file has its inode now: the old
                // content was read, and lives on in a copy if the rotation made one.
                self.gone_elsewhere(key);
                (0, 0, 0)
            }
            Some(e) => {
                // The inode is known but the content is not what was read: truncated or
                // replaced while maillog was stopped. The rest may be in a copy.
                tracing::warn!(path = %path.display(), offset = e.offset,
                    "known file was truncated or replaced while stopped: reading it from the start");
                TailStats::add(&self.stats.truncations, 1);
                let at = At::resuming(&e);
                match self.open_copy(&path, e.fingerprint, key, at, now) {
                    Some((_, Some(copy))) => self.files.push(copy),
                    Some((_, None)) => {}
                    None => self.lost(&e, "known file was truncated or replaced while stopped"),
                }
                (0, 0, 0) // new content: a new epoch and place in the order
            }
            None => (self.start_position(&file, size)?, 0, 0),
        };
        file.seek(SeekFrom::Start(position))?;
        let fingerprint = Fingerprint::of(&head);
        let entry = Entry {
            key,
            fingerprint,
            epoch,
            offset: position,
            path: path.to_string_lossy().into_owned(),
            compressed: false,
            seq,
            eof: None,
            size,
            tail: tail_of(&file, size),
            first: 0,
            continues: None,
        };
        let epoch = self.checkpointer.lock().register(entry);
        let max_line = self.config.max_line_bytes;
        Ok(Followed::new(
            path,
            key,
            Input::Plain(file),
            fingerprint,
            epoch,
            position,
            Role::Live,
            max_line,
            now,
        ))
    }

    /// Where a file unknown to the checkpoint starts: at 0, or at the first start with
    /// `start_at = end`, just after its last complete line.
    fn start_position(&self, file: &File, size: u64) -> io::Result<u64> {
        if self.first_start != Some(StartAt::End) || size == 0 {
            return Ok(0);
        }
        let back = size.min(self.config.max_line_bytes as u64);
        let mut tail = vec![0; back as usize];
        file.read_exact_at(&mut tail, size - back)?;
        Ok(match memchr::memrchr(b'\n', &tail) {
            Some(i) => size - back + i as u64 + 1,
            // One line without its newline yet: it starts at 0 (never inside a line).
            None if back == size => 0,
            None => size, // a line longer than the limit: only its cut end is skipped
        })
    }

    /// A compressed archive: read once, start to end (or from where a restart left it).
    pub(super) fn open_archive(
        &mut self,
        path: PathBuf,
        file: File,
        kind: Compression,
        key: FileKey,
        now: Instant,
    ) -> io::Result<Option<Followed>> {
        let mut reader = find::decompressor(file, kind);
        let head = read_stream_head(&mut *reader)?;
        self.vacate(key, &head, true);
        let at = {
            let registry = self.checkpointer.lock();
            let same = |e: &&Entry| e.fingerprint.len > 0 && e.fingerprint.matches(&head);
            // This archive itself, or a plain file read before it was compressed.
            let known = registry
                .entries
                .get(&key)
                .filter(|e| e.compressed)
                .filter(same)
                .or_else(|| {
                    registry
                        .entries
                        .values()
                        .filter(same)
                        .find(|e| !e.compressed && self.files.iter().all(|f| f.key != e.key))
                });
            match known {
                Some(e) if e.is_complete() => {
                    self.done.insert(key);
                    return Ok(None);
                }
                // This archive itself keeps its content's epoch; a plain file it is a copy of
                // (still known under its own inode) keeps its own, and the archive gets one.
                Some(e) if e.key == key => At::resuming(e),
                Some(e) => At {
                    read_from: e.offset,
                    committed: e.offset,
                    seq: e.seq,
                    ..At::default()
                },
                None => At::default(),
            }
        };
        let position = at.read_from;
        let mut reader: Box<dyn Read + Send> = Box::new(Cursor::new(head.clone()).chain(reader));
        if io::copy(&mut (&mut reader).take(position), &mut io::sink())? < position {
            return Ok(None); // shorter than what was read of it: nothing left
        }
        tracing::info!(path = %path.display(), from = position, "reading archive");
        let fingerprint = Fingerprint::of(&head);
        Ok(Some(self.registered(
            path,
            key,
            reader,
            fingerprint,
            at,
            Role::Archive,
            now,
        )))
    }

    /// Registers and builds a followed compressed file, read from `position`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn registered(
        &mut self,
        path: PathBuf,
        key: FileKey,
        reader: Box<dyn Read + Send>,
        fingerprint: Fingerprint,
        at: At,
        role: Role,
        now: Instant,
    ) -> Followed {
        let epoch = self.checkpointer.lock().register(Entry {
            key,
            fingerprint,
            epoch: at.epoch,
            offset: at.committed,
            path: path.to_string_lossy().into_owned(),
            compressed: true,
            seq: at.seq,
            eof: None,
            size: at.read_from,
            tail: None,
            first: at.first,
            continues: at.continues,
        });
        let input = Input::Compressed(reader);
        let max_line = self.config.max_line_bytes;
        Followed::new(
            path,
            key,
            input,
            fingerprint,
            epoch,
            at.read_from,
            role,
            max_line,
            now,
        )
    }

    /// Opens the sibling holding `original`'s content (see [`find::content_copy`]) at `at`.
    pub(super) fn open_copy(
        &mut self,
        original: &Path,
        fingerprint: Fingerprint,
        not: FileKey,
        at: At,
        now: Instant,
    ) -> Option<(FileKey, Option<Followed>)> {
        let from = at.read_from;
        let found = find::content_copy(original, fingerprint, not)?;
        let (path, meta, mut file, kind) = (found.path, found.meta, found.file, found.kind);
        let key = FileKey::of(&meta);
        if self.files.iter().any(|f| f.key == key) {
            return None; // followed already (an input names it)
        }
        self.vacate(key, &found.head, kind != Compression::None);
        let max_line = self.config.max_line_bytes;
        if kind == Compression::None && meta.len() <= from {
            // The copy was made before the last lines were read from the file itself: it
            // holds nothing unread. Known, and let go (complete once the lines it holds are
            // committed), so it is never taken for a file nobody has read.
            let len = meta.len();
            self.checkpointer.lock().register(Entry {
                key,
                fingerprint,
                epoch: at.epoch,
                offset: at.committed.min(len),
                path: path.to_string_lossy().into_owned(),
                compressed: false,
                seq: at.seq,
                eof: Some(len),
                size: len,
                tail: None,
                first: at.first.min(len),
                continues: at.continues,
            });
            return Some((key, None));
        }
        if kind == Compression::None {
            if file.seek(SeekFrom::Start(from)).is_err() {
                return None;
            }
            let entry = Entry {
                key,
                fingerprint,
                epoch: at.epoch,
                offset: at.committed,
                path: path.to_string_lossy().into_owned(),
                compressed: false,
                seq: at.seq,
                eof: None,
                size: meta.len(),
                tail: None,
                first: at.first,
                continues: at.continues,
            };
            let epoch = self.checkpointer.lock().register(entry);
            let input = Input::Plain(file);
            let role = Role::Predecessor;
            let f = Followed::new(
                path,
                key,
                input,
                fingerprint,
                epoch,
                from,
                role,
                max_line,
                now,
            );
            return Some((key, Some(f)));
        }
        let mut reader = find::decompressor(file, kind);
        let skipped = io::copy(&mut (&mut reader).take(from), &mut io::sink()).ok()?;
        let role = Role::Predecessor;
        let f = (skipped == from)
            .then(|| self.registered(path, key, reader, fingerprint, at, role, now));
        Some((key, f))
    }

    /// After a restart, before the first rescan: files the checkpoint knows that still have
    /// unread (or uncommitted) lines, oldest first (the ones an input still names become live
    /// again in the rescan; the others were rotated while maillog was stopped and are finished
    /// first, compressed or not).
    pub(super) fn resume_unfinished(&mut self, now: Instant) {
        let mut followed: HashSet<FileKey> = self.files.iter().map(|f| f.key).collect();
        let mut resumed: Vec<Followed> = Vec::new();
        let mut seen = HashSet::new();
        // An entry may move to another file while others are resumed (the file's content
        // found in a copy, or its replacement): looked at again, under its new key, until
        // nothing moves (a few rounds at most).
        for _ in 0..4 {
            let mut entries: Vec<Entry> = {
                let registry = self.checkpointer.lock();
                let entries = registry.entries.values();
                entries
                    .filter(|e| !seen.contains(&(e.key, e.epoch)))
                    .cloned()
                    .collect()
            };
            if entries.is_empty() {
                break;
            }
            entries.sort_by_key(|e| e.seq); // oldest content first
            for e in entries {
                seen.insert((e.key, e.epoch));
                followed.extend(resumed.iter().map(|f| f.key));
                // An entry replaced or forgotten meanwhile (its inode was a copy's) is no
                // more; one whose position moved back (a replaced file's lines not committed
                // are read from its replacement) is taken as it is now.
                let current = self.checkpointer.lock().entries.get(&e.key).cloned();
                let current =
                    current.filter(|c| c.epoch == e.epoch && c.fingerprint == e.fingerprint);
                let Some(e) = current else {
                    continue;
                };
                if followed.contains(&e.key) || (e.compressed && e.is_complete()) {
                    continue;
                }
                let reopened = if e.compressed {
                    self.resume_compressed(&e, now).map(Vec::from_iter)
                } else {
                    self.reopen(&e, now)
                };
                match reopened {
                    Ok(files) => resumed.extend(files),
                    Err(err) => tracing::warn!(path = %e.path, "cannot reopen: {err}"),
                }
            }
        }
        {
            let registry = self.checkpointer.lock();
            let seq = |f: &Followed| registry.entries.get(&f.key).map_or(u64::MAX, |e| e.seq);
            resumed.sort_by_cached_key(seq);
        }
        TailStats::add(&self.stats.files_opened, resumed.len() as u64);
        self.files.splice(0..0, resumed);
    }

    /// Where a known file is now: at its last path, or renamed beside it (and compressed, or
    /// not, as it was: a compressed file with the inode of a plain one deleted is a copy).
    pub(super) fn find_known(e: &Entry) -> Option<(PathBuf, fs::Metadata)> {
        let last = PathBuf::from(&e.path);
        let found = fs::metadata(&last)
            .ok()
            .filter(|m| FileKey::of(m) == e.key)
            .map(|m| (last.clone(), m))
            .or_else(|| find::by_key(last.parent()?, e.key))?;
        let kind = File::open(&found.0).and_then(|f| find::compression_of(&f));
        kind.is_ok_and(|k| (k != Compression::None) == e.compressed)
            .then_some(found)
    }

    /// Finds a known file by identity; opens it if it has unread lines (and, if it was
    /// truncated while maillog was stopped, the copy of its old content first). If it is gone,
    /// its content may be in a copy (compressed by the rotation): read on from there, or, read
    /// already, known there. Otherwise what it held unread is lost: said, and counted.
    fn reopen(&mut self, e: &Entry, now: Instant) -> io::Result<Vec<Followed>> {
        let last = PathBuf::from(&e.path);
        let at = At::resuming(e);
        let Some((path, meta)) = Self::find_known(e) else {
            if self.replaced_while_stopped(e) {
                return Ok(Vec::new()); // its path names a copy of it now
            }
            if e.is_complete() {
                self.gone_elsewhere(e.key);
                return Ok(Vec::new());
            }
            self.checkpointer.lock().forget(e.key);
            let copy = self.open_copy(&last, e.fingerprint, e.key, at, now);
            if copy.is_none() {
                self.lost(e, "file vanished while maillog was stopped");
            }
            let mut copy = copy.and_then(|c| c.1);
            if let Some(f) = copy.as_mut().filter(|f| !f.is_compressed()) {
                // Perhaps no copy but the file's replacement (a new inode with its content),
                // rotated since: its writer may still be at it, as with any rotated file.
                f.role = Role::Rotated { since: now };
            }
            return Ok(copy.into_iter().collect());
        };
        let mut file = File::open(&path)?;
        let head = read_head(&file)?;
        if e.fingerprint.matches(&head)
            && let Some(newer) = self.superseded(e, &file, meta.len())
        {
            // Its inode went to a copy of a replacement of it (known under the same path):
            // that content takes the file, from its own position.
            self.hand_over(e, newer);
            return Ok(Vec::new());
        }
        if e.is_complete() && !e.fingerprint.matches(&head) {
            // Read and committed to its end, and another file has its inode now: nothing to
            // finish; its copy (if the rotation compressed it) is known as it.
            self.gone_elsewhere(e.key);
            return Ok(Vec::new());
        }
        if !e.fingerprint.matches(&head) || meta.len() < e.offset {
            // Truncated and rewritten (copytruncate) while maillog was stopped, or another file
            // got the inode: the rest of the old content may be in a copy; what the file holds
            // now is new, and is found like any unknown file (in the order it was written).
            tracing::warn!(path = %path.display(), committed = e.offset,
                "known file was truncated or replaced while stopped: its content is new");
            if self.covered(e) {
                return Ok(Vec::new()); // its inode went to a file made after it was replaced
            }
            TailStats::add(&self.stats.truncations, 1);
            self.checkpointer.lock().forget(e.key);
            let copy = self.open_copy(&last, e.fingerprint, e.key, at, now);
            if copy.is_none() {
                self.lost(
                    e,
                    "known file was truncated or replaced while maillog was stopped",
                );
            }
            return Ok(copy.and_then(|c| c.1).into_iter().collect());
        }
        let mut registry = self.checkpointer.lock();
        registry.update(e.key, e.fingerprint, &path.to_string_lossy());
        if e.eof.is_some() && meta.len() == e.offset {
            return Ok(Vec::new()); // let go before the stop, and nothing written since
        }
        registry.followed_again(e.key); // written to after it was let go, perhaps
        drop(registry);
        // Followed like any rotated file until the rescan finds an input naming it (then it is
        // live again); rotated while maillog was stopped, its writer may still be at it (until
        // it reopens), and it is let go once quiet.
        let named = self.config.inputs.iter();
        if named
            .flat_map(|input| find::expand(input))
            .any(|(p, _)| p == path)
        {
            tracing::info!(path = %path.display(), from = e.offset, size = meta.len(),
                "reading on from the checkpoint");
        } else {
            tracing::info!(path = %path.display(), from = e.offset, size = meta.len(),
                "rotated while maillog was stopped: finishing it");
        }
        file.seek(SeekFrom::Start(e.offset))?;
        let input = Input::Plain(file);
        let (role, max_line) = (Role::Rotated { since: now }, self.config.max_line_bytes);
        let (fp, epoch, offset) = (e.fingerprint, e.epoch, e.offset);
        let mut f = Followed::new(path, e.key, input, fp, epoch, offset, role, max_line, now);
        f.named_as = last; // a copy of it at its old path is the same content
        Ok(vec![f])
    }

    /// A compressed file read in part, or not committed to its end, before the stop (a
    /// rotation found by its content, an unknown sibling, an archive): read on from the
    /// committed position.
    fn resume_compressed(&mut self, e: &Entry, now: Instant) -> io::Result<Option<Followed>> {
        let found = Self::find_known(e);
        let opened = match found {
            Some((path, _)) => {
                let file = File::open(&path)?;
                let kind = find::compression_of(&file)?;
                let mut reader = find::decompressor(file, kind);
                let head = read_stream_head(&mut *reader)?;
                let same = kind != Compression::None && e.fingerprint.matches(&head);
                same.then(|| (path, Cursor::new(head).chain(reader)))
            }
            None => None,
        };
        let Some((path, reader)) = opened else {
            self.checkpointer.lock().forget(e.key);
            self.lost(
                e,
                "compressed file vanished (or was replaced) while maillog was stopped",
            );
            return Ok(None);
        };
        let mut reader: Box<dyn Read + Send> = Box::new(reader);
        if io::copy(&mut (&mut reader).take(e.offset), &mut io::sink())? < e.offset {
            return Ok(None); // shorter than what was read of it: nothing left
        }
        tracing::info!(path = %path.display(), from = e.offset,
            "compressed file not finished before the stop: finishing it");
        let at = At::resuming(e);
        let role = Role::Predecessor;
        Ok(Some(self.registered(
            path,
            e.key,
            reader,
            e.fingerprint,
            at,
            role,
            now,
        )))
    }
}
