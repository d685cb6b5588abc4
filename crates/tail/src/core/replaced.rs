//! A file an input names replaced by a file with another inode that holds the same content:
//! `sed -i`, an editor saving, rsync without `--inplace`, `cp mail.log x && mv x mail.log`,
//! /var/log moved to another disk (another device too). A file is who its content says it is.
//!
//! Owns one decision: whether a new file at a path is the content known there — the file
//! followed under that name, or, after a restart, the checkpoint's entry for it — and where
//! reading it starts. The rule, the same for every way a file can be replaced:
//! - **The same content**: the new file starts with all the bytes known of the old one (its
//!   first KiB at least, so that files that merely start alike — the same first line — are
//!   never taken for each other). It is read on from where the old content ends, never again.
//!   While following, the two files are compared byte for byte (paid once per replacement);
//!   after a restart, by the first KiB and the KiB before the length last seen
//!   ([`crate::checkpoint::Entry::tail`]), since the old file is gone.
//! - **Edited content** (the same first KiB, then bytes that differ before the read
//!   position: an edit of lines read already): while following, the new file is read from
//!   the start of the first line that differs — what is before it was read and is unchanged;
//!   what follows is delivered again (edited lines, and the lines after them). After a
//!   restart the point of difference cannot be found (the old file is gone): the new file is
//!   read from its start. Either way nothing is lost and lines may repeat: logged as a
//!   warning, counted in [`crate::TailStats::diverged_files`].
//! - Anything else (a different first KiB, or a new file shorter than what its first KiB
//!   must cover: it cannot be told yet) is a new file, read from its start, as before.
//!
//! While following, the replaced file itself is left to the rotation logic: it is no longer
//! named, so it is read on from its read position to its end (lines a writer that has not
//! reopened yet still appends to it are not lost) and let go once quiet. Its lines before the
//! point where the two files part are committed for both ([`Registry::shares`]), so a restart
//! resumes the new file where the consumer's commits are.
//!
//! It never reads a line, and never decides about rotation or truncation (a copytruncate keeps
//! the inode: it is never seen here).
//!
//! [`Registry::shares`]: crate::registry::Registry::shares

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use super::TailCore;
use crate::checkpoint::Entry;
use crate::find::{self, Compression};
use crate::identity::{FINGERPRINT_BYTES, FileKey, Fingerprint, common_prefix, read_head};
use crate::source::{Followed, Input, Role};
use crate::stats::TailStats;

impl TailCore {
    /// A plain file with inode `key` that `path` names now, not followed yet: if a file
    /// followed under that name holds content it starts with, opens it where that content
    /// parts from it (see the module). None: another file.
    pub(super) fn open_replacement(
        &mut self,
        path: &Path,
        file: &File,
        size: u64,
        key: FileKey,
        now: Instant,
    ) -> io::Result<Option<Followed>> {
        let old = self.files.iter().rev().find(|f| {
            f.named_as == path
                && f.key != key
                && matches!(f.role, Role::Live | Role::Rotated { .. })
        });
        let Some((old, old_file)) = old.and_then(|f| Some((f, f.plain_file()?))) else {
            return Ok(None);
        };
        let old_len = old_file.metadata()?.len();
        if old_len == 0 {
            return Ok(None); // nothing to recognise
        }
        let common = common_prefix(old_file, file, old_len.min(size))?;
        if common < old_len.min(FINGERPRINT_BYTES as u64) {
            return Ok(None); // another file, or too short to tell: new
        }
        let read = old.delivered();
        let max_line = self.config.max_line_bytes as u64;
        // Where the new file's own content starts: the first line not wholly shared.
        let start = if common >= read {
            line_start(
                file,
                read.max(common.saturating_sub(max_line)),
                common,
                read,
            )?
        } else {
            let lo = common.saturating_sub(max_line);
            line_start(file, lo, common, lo)?
        };
        let (old_key, old_epoch, old_path) = (old.key, old.epoch, old.path.clone());
        TailStats::add(&self.stats.replaced_files, 1);
        if start < read {
            TailStats::add(&self.stats.diverged_files, 1);
            tracing::warn!(path = %path.display(), read_to = read, differs_at = common,
                from = start, "replaced by a copy whose content was edited before the read \
                position: reading it again from the first line that differs (lines may repeat)");
        } else {
            tracing::info!(path = %path.display(), read_to = read, from = start,
                "replaced by a copy of the same content (new inode): reading on, not again");
        }
        let head = read_head(file)?;
        let mut file = file.try_clone()?;
        file.seek(SeekFrom::Start(start))?;
        let fingerprint = Fingerprint::of(&head);
        let mut registry = self.checkpointer.lock();
        let committed = registry
            .entries
            .get(&old_key)
            .filter(|e| e.epoch == old_epoch)
            .map_or(start, |e| e.offset.min(start));
        let epoch = registry.register(Entry {
            key,
            fingerprint,
            epoch: 0,
            offset: committed,
            path: path.to_string_lossy().into_owned(),
            compressed: false,
            seq: 0,
            eof: None,
            size,
            tail: None,
        });
        registry.shares(old_key, old_epoch, key, start);
        drop(registry);
        tracing::debug!(old = %old_path.display(), "the replaced file is read to its end");
        Ok(Some(Followed::new(
            path.to_owned(),
            key,
            Input::Plain(file),
            fingerprint,
            epoch,
            start,
            Role::Live,
            self.config.max_line_bytes,
            now,
        )))
    }

    /// After a restart: the known plain file `e` is nowhere to be found, and its path names a
    /// file with another inode. If that one starts with `e`'s content, `e`'s entry is taken
    /// care of (see the module); returns whether it was.
    pub(super) fn replaced_while_stopped(&mut self, e: &Entry) -> bool {
        if e.compressed || e.fingerprint.len == 0 || e.is_complete() {
            return false;
        }
        let path = Path::new(&e.path);
        let Ok(file) = File::open(path) else {
            return false;
        };
        let Ok(meta) = file.metadata() else {
            return false;
        };
        let key = FileKey::of(&meta);
        let plain = find::compression_of(&file).is_ok_and(|k| k == Compression::None);
        if key == e.key || !meta.is_file() || !plain {
            return false;
        }
        let Ok(head) = read_head(&file) else {
            return false;
        };
        if !e.fingerprint.matches(&head) {
            return false; // another file
        }
        // Everything seen of `e` is there, at the same place: its first KiB and the KiB
        // before the length last seen (or the first KiB covers all of it).
        let whole = meta.len() >= e.size
            && match e.tail {
                Some(tail) => tail.matches_before(&file, e.size).unwrap_or(false),
                None => u64::from(e.fingerprint.len) >= e.size,
            };
        self.vacate(key, &head, false);
        let known = self.checkpointer.lock().entries.contains_key(&key);
        let path_text = e.path.clone();
        if whole && !known {
            tracing::info!(path = %path_text, committed = e.offset,
                "replaced by a copy of the same content (new inode) while maillog was \
                 stopped: reading on from the committed position, not again");
            TailStats::add(&self.stats.replaced_files, 1);
            self.checkpointer
                .lock()
                .transfer(e.key, key, &path_text, false);
            return true;
        }
        self.checkpointer.lock().forget(e.key);
        if known {
            // Replaced while following, before the stop: the copy is known already, and holds
            // the replaced file's lines up to where the two part (its position moved with
            // theirs). Lines only the replaced file held, not committed, are gone with it.
            if !whole {
                let mut lost = e.clone();
                lost.offset = e.offset.max(e.size.min(meta.len()));
                self.lost(&lost, "replaced file vanished while maillog was stopped");
            }
            return true;
        }
        TailStats::add(&self.stats.replaced_files, 1);
        TailStats::add(&self.stats.diverged_files, 1);
        tracing::warn!(path = %path_text, committed = e.offset, seen = e.size,
            "replaced while maillog was stopped by a file that starts alike but differs \
             before the position read (edited?): reading it from the start; lines read before \
             may be delivered again");
        true
    }
}

/// Where the last line that starts in `lo..=at` starts (just after the last newline in
/// `lo..at`); `none` if no newline is there.
fn line_start(file: &File, lo: u64, at: u64, none: u64) -> io::Result<u64> {
    if at <= lo {
        return Ok(at.min(none.max(lo)));
    }
    // At most max_line_bytes (a usize): fits.
    let mut buf = vec![0; usize::try_from(at - lo).unwrap_or(usize::MAX)];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], lo + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(match memchr::memrchr(b'\n', &buf[..filled]) {
        Some(i) => lo + i as u64 + 1,
        None => none,
    })
}
