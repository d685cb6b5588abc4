//! Rotated files nothing has read, found beside the input paths: created and rotated away
//! between two looks, or rotated (once or many times, compressed or not) while maillog was
//! stopped.
//!
//! Owns which sibling of an input (`mail.log.1`, `mail.log.2.gz`, `mail.log-20261125`) is
//! content nobody has read, and the order such files are read in (the order they were
//! written: [`find::sort_in_write_order`]). It never reads content twice: a sibling the
//! checkpoint knows, or whose first bytes are those of known content (a copy, or the
//! compressed rotation of a file read already), is left alone.

use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use super::TailCore;
use crate::checkpoint::Entry;
use crate::find::{self, Compression};
use crate::identity::{FileKey, Fingerprint, read_head, read_stream_head};
use crate::source::{Followed, Input, Role};
use crate::stats::TailStats;

/// Siblings looked at and left alone (a copy of known content, or unreadable), with their
/// size and modification time then: not opened (nor decompressed) again at every rescan while
/// they stay as they are.
pub(super) type Judged = HashMap<FileKey, (u64, Option<SystemTime>)>;

impl TailCore {
    /// Finds and opens the rotated files nothing has read: a sibling of an input path that
    /// the checkpoint does not know, that was written to after the first checkpoint, and that
    /// is not a copy of known content. They are read oldest first, from their start, after
    /// the files followed so far and before those the inputs name now. A compressed one is
    /// taken once it has been quiet for the rotate wait (it may still be being compressed).
    ///
    /// A sibling last written before the first checkpoint holds content from before maillog:
    /// it is not read, but it is registered as known, so that its compressed copy (made a
    /// rotation later, and stamped with the time it was made) is known too.
    pub(super) fn adopt_unknown_siblings(&mut self, now: Instant) {
        let created = self.checkpointer.lock().created;
        let mut adopted = Vec::new();
        let mut seen = HashSet::new();
        for input in self.config.inputs.clone() {
            let text = input.to_string_lossy().into_owned();
            if !text.contains(['*', '?', '[']) {
                self.siblings_of(&input, None, created, now, &mut adopted, &mut seen);
                continue;
            }
            // A glob names its live files itself; their rotations (`mail.log.1` beside
            // `*.log`'s `mail.log`) are the siblings of the files it names now, and of those
            // it named that the checkpoint knows.
            let Ok(pattern) = glob::Pattern::new(&text) else {
                continue;
            };
            let mut named: Vec<PathBuf> =
                find::expand(&input).into_iter().map(|(p, _)| p).collect();
            named.extend(
                self.checkpointer
                    .lock()
                    .entries
                    .values()
                    .map(|e| PathBuf::from(&e.path))
                    .filter(|p| pattern.matches_path(p)),
            );
            named.sort();
            named.dedup();
            for path in named {
                self.siblings_of(&path, Some(&pattern), created, now, &mut adopted, &mut seen);
            }
        }
        self.judged.retain(|key, _| seen.contains(key));
        TailStats::add(&self.stats.files_opened, adopted.len() as u64);
        self.files.extend(adopted);
    }

    /// [`Self::adopt_unknown_siblings`] for the siblings of one path an input names (those
    /// a glob names itself left to it).
    fn siblings_of(
        &mut self,
        input: &Path,
        glob: Option<&glob::Pattern>,
        created: u64,
        now: Instant,
        adopted: &mut Vec<Followed>,
        seen: &mut HashSet<FileKey>,
    ) {
        for (path, meta) in find::siblings(input) {
            if glob.is_some_and(|g| g.matches_path(&path)) {
                continue; // named by the input itself
            }
            let key = FileKey::of(&meta);
            let stamp = (meta.len(), meta.modified().ok());
            seen.insert(key);
            if self.files.iter().any(|f| f.key == key)
                || adopted.iter().any(|f| f.key == key)
                || self.judged.get(&key) == Some(&stamp)
            {
                continue; // followed, or looked at as it is now
            }
            let looked = if self.still_known(&path, key) {
                self.judged.insert(key, stamp);
                self.written_after_let_go(&path, key, &meta, now)
            } else if find::written_since(&meta, created) {
                match self.rotated_replacement(input, &path, key, now) {
                    Ok(None) => self.adopt(&path, key, &meta, now),
                    found => found,
                }
            } else {
                self.judged.insert(key, stamp);
                self.predates(&path, key, &meta).map(|()| None)
            };
            match looked {
                Ok(Some(f)) => adopted.push(f),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cannot read: {e}");
                    TailStats::add(&self.stats.read_errors, 1);
                    self.judged.insert(key, stamp); // said once, until it changes
                }
            }
        }
    }

    /// Whether the checkpoint knows the file at `path`: an entry for its inode whose content
    /// it holds. An entry for its inode with other content is of a file that is gone, whose
    /// inode gzip (or another writer) got: that entry moves to its content's copy, or is
    /// forgotten, and the file is unknown.
    fn still_known(&mut self, path: &Path, key: FileKey) -> bool {
        let Some((compressed, fingerprint)) = self
            .checkpointer
            .lock()
            .entries
            .get(&key)
            .map(|e| (e.compressed, e.fingerprint))
        else {
            return false;
        };
        let same = match find::content_head(path) {
            Ok((_, kind, head)) => {
                (kind != Compression::None) == compressed && fingerprint.matches(&head)
            }
            Err(_) => true, // cannot tell now: left as it is
        };
        if !same {
            self.gone_elsewhere(key);
        }
        same
    }

    /// Whether content starting with `head` is known: read, being read, or let go.
    fn copy_of_known(&self, head: &[u8]) -> bool {
        let registry = self.checkpointer.lock();
        let fps = registry.entries.values().map(|e| e.fingerprint);
        let mut fps = fps.chain(self.files.iter().map(|f| f.fingerprint));
        // A copy logrotate is still writing may be shorter than a fingerprint, and a followed
        // file may have grown past its fingerprint since it was last read: compared byte for
        // byte with the followed files' first bytes as they are now.
        let prefix = |known: &[u8]| {
            let n = known.len().min(head.len());
            !known.is_empty() && known[..n] == head[..n]
        };
        fps.any(|fp| fp.len > 0 && fp.matches(head))
            || self.files.iter().any(|f| prefix(&f.current_head()))
    }

    fn adopt(
        &mut self,
        path: &Path,
        key: FileKey,
        meta: &Metadata,
        now: Instant,
    ) -> io::Result<Option<Followed>> {
        let file = File::open(path)?;
        let kind = find::compression_of(&file)?;
        if kind != Compression::None && !find::quiet_for(meta, self.config.rotate_wait) {
            return Ok(None); // perhaps still being compressed: looked at again later
        }
        if let Some(format) = find::unreadable_compression(&file)? {
            tracing::error!(path = %path.display(), format,
                "a rotated file nothing has read is compressed in a format maillog cannot read: \
                 its lines are NOT read (compress with gzip or bzip2)");
            self.judged.insert(key, (meta.len(), meta.modified().ok()));
            return Ok(None);
        }
        let (head, input) = match kind {
            Compression::None => (read_head(&file)?, Input::Plain(file)),
            _ => {
                let mut reader = find::decompressor(file, kind);
                let head = read_stream_head(&mut *reader)?;
                let again: Box<dyn Read + Send> = Box::new(Cursor::new(head.clone()).chain(reader));
                (head, Input::Compressed(again))
            }
        };
        if head.is_empty() {
            return Ok(None); // nothing to read, nothing to tell it by: looked at again later
        }
        if self.copy_of_known(&head) {
            self.judged.insert(key, (meta.len(), meta.modified().ok()));
            return Ok(None); // a copy of content read (or being read) already
        }
        let compressed = kind != Compression::None;
        tracing::info!(path = %path.display(), compressed,
            "a rotated file nothing has read yet (rotated between two looks, or while maillog \
             was stopped): reading it");
        let fingerprint = Fingerprint::of(&head);
        let epoch = self.checkpointer.lock().register(Entry {
            key,
            fingerprint,
            epoch: 0,
            offset: 0,
            path: path.to_string_lossy().into_owned(),
            compressed,
            seq: 0,
            eof: None,
            size: if compressed { 0 } else { meta.len() },
            tail: None,
            first: 0,
            continues: None,
        });
        // A plain one may still be written to by a writer that has not reopened yet.
        let role = if compressed {
            Role::Predecessor
        } else {
            Role::Rotated { since: now }
        };
        let max_line = self.config.max_line_bytes;
        let path = path.to_owned();
        Ok(Some(Followed::new(
            path,
            key,
            input,
            fingerprint,
            epoch,
            0,
            role,
            max_line,
            now,
        )))
    }

    /// A known plain file let go earlier that has grown since: its writer still writes to it
    /// (it has not reopened its file after the rotation). Followed again from where it was
    /// let go.
    fn written_after_let_go(
        &mut self,
        path: &Path,
        key: FileKey,
        meta: &Metadata,
        now: Instant,
    ) -> io::Result<Option<Followed>> {
        let Some(e) = self.checkpointer.lock().entries.get(&key).cloned() else {
            return Ok(None);
        };
        let Some(eof) = e.eof.filter(|&eof| !e.compressed && meta.len() > eof) else {
            return Ok(None);
        };
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(eof))?;
        tracing::warn!(path = %path.display(), from = eof,
            "written to after it was let go (has its writer not reopened its file?): reading on");
        self.checkpointer.lock().followed_again(key);
        let (max_line, role) = (self.config.max_line_bytes, Role::Rotated { since: now });
        let path = path.to_owned();
        let input = Input::Plain(file);
        Ok(Some(Followed::new(
            path,
            key,
            input,
            e.fingerprint,
            e.epoch,
            eof,
            role,
            max_line,
            now,
        )))
    }

    /// Registers a plain sibling last written before the first checkpoint as known and read.
    fn predates(&mut self, path: &Path, key: FileKey, meta: &Metadata) -> io::Result<()> {
        let file = File::open(path)?;
        if find::compression_of(&file)? != Compression::None {
            return Ok(()); // compressed already: it will not be copied again
        }
        let head = read_head(&file)?;
        if head.is_empty() {
            return Ok(());
        }
        tracing::debug!(path = %path.display(),
            "older than the first checkpoint: not read (known, so its compressed copy is too)");
        let len = meta.len();
        self.checkpointer.lock().register(Entry {
            key,
            fingerprint: Fingerprint::of(&head),
            epoch: 0,
            offset: len,
            path: path.to_string_lossy().into_owned(),
            compressed: false,
            seq: 0,
            eof: Some(len),
            size: len,
            tail: None,
            first: 0,
            continues: None,
        });
        Ok(())
    }
}
