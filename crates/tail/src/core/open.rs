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
use crate::identity::{FileKey, Fingerprint, read_head, read_stream_head};
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
            Some(e) => {
                // The inode is known but the content is not what was read: truncated or
                // replaced while maillog was stopped. The rest may be in a copy.
                tracing::warn!(path = %path.display(), offset = e.offset,
                    "known file was truncated or replaced while stopped: reading it from the start");
                TailStats::add(&self.stats.truncations, 1);
                let at = At {
                    read_from: e.offset,
                    committed: e.offset,
                    seq: e.seq,
                };
                if let Some((_, Some(copy))) = self.open_copy(&path, e.fingerprint, key, at, now) {
                    self.files.push(copy);
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
                Some(e) => At {
                    read_from: e.offset,
                    committed: e.offset,
                    seq: e.seq,
                },
                None => At {
                    read_from: 0,
                    committed: 0,
                    seq: 0,
                },
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
    fn registered(
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
            epoch: 0,
            offset: at.committed,
            path: path.to_string_lossy().into_owned(),
            compressed: true,
            seq: at.seq,
            eof: None,
            size: at.read_from,
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
        let (path, meta, mut file, kind) = find::content_copy(original, fingerprint, not)?;
        let key = FileKey::of(&meta);
        if self.files.iter().any(|f| f.key == key) {
            return None; // followed already (an input names it)
        }
        let max_line = self.config.max_line_bytes;
        if kind == Compression::None && meta.len() <= from {
            // The copy was made before the last lines were read from the file itself: it
            // holds nothing unread. Known, and let go (complete once the lines it holds are
            // committed), so it is never taken for a file nobody has read.
            let len = meta.len();
            self.checkpointer.lock().register(Entry {
                key,
                fingerprint,
                epoch: 0,
                offset: at.committed.min(len),
                path: path.to_string_lossy().into_owned(),
                compressed: false,
                seq: at.seq,
                eof: Some(len),
                size: len,
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
                epoch: 0,
                offset: at.committed,
                path: path.to_string_lossy().into_owned(),
                compressed: false,
                seq: at.seq,
                eof: None,
                size: meta.len(),
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
    /// unread lines, oldest first (the ones an input still names become live again in the
    /// rescan; the others were rotated while maillog was stopped and are finished first).
    pub(super) fn resume_unfinished(&mut self, now: Instant) {
        let followed: HashSet<FileKey> = self.files.iter().map(|f| f.key).collect();
        let mut entries: Vec<Entry> = self.checkpointer.lock().entries.values().cloned().collect();
        entries.sort_by_key(|e| e.seq); // oldest content first
        let mut resumed = Vec::new();
        for e in entries {
            if e.compressed || followed.contains(&e.key) {
                continue; // archives are read only while an input names them
            }
            match self.reopen(&e, now) {
                Ok(files) => resumed.extend(files),
                Err(err) => tracing::warn!(path = %e.path, "cannot reopen: {err}"),
            }
        }
        TailStats::add(&self.stats.files_opened, resumed.len() as u64);
        self.files.splice(0..0, resumed);
    }

    /// Finds a known file by identity; opens it if it has unread lines (and, if it was
    /// truncated while maillog was stopped, the copy of its old content first). Forgets it if
    /// it is gone.
    fn reopen(&mut self, e: &Entry, now: Instant) -> io::Result<Vec<Followed>> {
        let last = PathBuf::from(&e.path);
        let at = At {
            read_from: e.offset,
            committed: e.offset,
            seq: e.seq,
        };
        let found = fs::metadata(&last)
            .ok()
            .filter(|m| FileKey::of(m) == e.key)
            .map(|m| (last.clone(), m))
            .or_else(|| find::by_key(last.parent()?, e.key));
        let Some((path, meta)) = found else {
            self.checkpointer.lock().forget(e.key);
            let copy = self
                .open_copy(&last, e.fingerprint, e.key, at, now)
                .and_then(|c| c.1);
            if copy.is_none() && !e.is_complete() {
                tracing::warn!(path = %e.path, committed = e.offset,
                    "file vanished while maillog was stopped: lines after the committed position are lost");
            }
            return Ok(copy.into_iter().collect());
        };
        let mut file = File::open(&path)?;
        let head = read_head(&file)?;
        if !e.fingerprint.matches(&head) || meta.len() < e.offset {
            // Truncated and rewritten (copytruncate) while maillog was stopped, or another file
            // got the inode: the rest of the old content may be in a copy; what the file holds
            // now is new, and is found like any unknown file (in the order it was written).
            tracing::warn!(path = %path.display(), committed = e.offset,
                "known file was truncated or replaced while stopped: its content is new");
            TailStats::add(&self.stats.truncations, 1);
            self.checkpointer.lock().forget(e.key);
            let copy = self.open_copy(&last, e.fingerprint, e.key, at, now);
            return Ok(copy.and_then(|c| c.1).into_iter().collect());
        }
        self.checkpointer
            .lock()
            .update(e.key, e.fingerprint, &path.to_string_lossy());
        if e.eof.is_some() && meta.len() == e.offset {
            return Ok(Vec::new()); // let go before the stop, and nothing written since
        }
        // Rotated while maillog was stopped: its writer may still be at it (until it reopens),
        // so it is followed like any rotated file, then let go.
        tracing::info!(path = %path.display(), from = e.offset, size = meta.len(),
            "rotated while maillog was stopped: finishing it");
        file.seek(SeekFrom::Start(e.offset))?;
        let input = Input::Plain(file);
        let (role, max_line) = (Role::Rotated { since: now }, self.config.max_line_bytes);
        let (fp, epoch, offset) = (e.fingerprint, e.epoch, e.offset);
        Ok(vec![Followed::new(
            path, e.key, input, fp, epoch, offset, role, max_line, now,
        )])
    }

    /// Rotated files nothing has read: a sibling of an input path (`mail.log.1`,
    /// `mail.log-20261125`) that the checkpoint does not know, that was written to after the
    /// first checkpoint, and that is not a copy of known content, was created and rotated away
    /// between two looks (or while maillog was stopped). It is read from its start, after the
    /// files followed so far and before those the inputs name now. Compressed ones are left
    /// alone (name them as inputs to backfill them).
    pub(super) fn adopt_unknown_siblings(&mut self, now: Instant) {
        let created = self.checkpointer.lock().created;
        let mut candidates = Vec::new();
        for input in self.config.inputs.clone() {
            if input.to_string_lossy().contains(['*', '?', '[']) {
                continue; // a glob names its files itself
            }
            for (path, meta) in find::unknown_siblings(&input, created) {
                let key = FileKey::of(&meta);
                let known = self.files.iter().any(|f| f.key == key)
                    || self.done.contains(&key)
                    || self.checkpointer.lock().entries.contains_key(&key);
                if !known {
                    candidates.push((meta.modified().ok(), path, key));
                }
            }
        }
        // Oldest first: they are registered (and so ordered after a restart) in this order.
        candidates.sort();
        let mut adopted = Vec::new();
        for (_, path, key) in candidates {
            match self.adopt(path.clone(), key, now) {
                Ok(Some(f)) => adopted.push(f),
                Ok(None) => {}
                Err(e) => tracing::warn!(path = %path.display(), "cannot open: {e}"),
            }
        }
        TailStats::add(&self.stats.files_opened, adopted.len() as u64);
        self.files.extend(adopted);
    }

    fn adopt(&mut self, path: PathBuf, key: FileKey, now: Instant) -> io::Result<Option<Followed>> {
        let file = File::open(&path)?;
        if find::compression_of(&file)? != Compression::None {
            return Ok(None);
        }
        let head = read_head(&file)?;
        if head.is_empty() {
            return Ok(None); // nothing to read, nothing to tell it by: looked at again later
        }
        let copy_of_known = {
            let registry = self.checkpointer.lock();
            let fps = registry.entries.values().map(|e| e.fingerprint);
            let mut fps = fps.chain(self.files.iter().map(|f| f.fingerprint));
            // A copy logrotate is still writing may be shorter than a fingerprint: compared
            // byte for byte with the followed files' first bytes.
            let prefix = |known: &[u8]| {
                let n = known.len().min(head.len());
                !known.is_empty() && known[..n] == head[..n]
            };
            fps.any(|fp| fp.len > 0 && fp.matches(&head))
                || self.files.iter().any(|f| prefix(&f.head))
        };
        if copy_of_known {
            return Ok(None); // a copy of content read (or being read) already
        }
        tracing::info!(path = %path.display(),
            "a rotated file nothing has read yet (created and rotated between two looks): reading it");
        let fingerprint = Fingerprint::of(&head);
        let entry = Entry {
            key,
            fingerprint,
            epoch: 0,
            offset: 0,
            path: path.to_string_lossy().into_owned(),
            compressed: false,
            seq: 0,
            eof: None,
            size: 0,
        };
        let epoch = self.checkpointer.lock().register(entry);
        let max_line = self.config.max_line_bytes;
        let role = Role::Rotated { since: now };
        Ok(Some(Followed::new(
            path,
            key,
            Input::Plain(file),
            fingerprint,
            epoch,
            0,
            role,
            max_line,
            now,
        )))
    }
}
