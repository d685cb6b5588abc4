//! Known files that are gone from where they were: where their content lives on, or what was
//! lost with them.
//!
//! Owns two decisions. A known file that vanished has its entry moved to a copy of its content
//! beside it (logrotate's `compress` replaces `mail.log.2` by `mail.log.2.gz`), so that the copy
//! is the same content to the checkpoint: read on from the same position if unfinished, never
//! read again if finished. And lines of a vanished file that nobody can read any more are said
//! out loud (an error naming the file and the bytes) and counted (`files_lost`, `bytes_lost`).
//! It never reads a line.

use std::path::Path;

use super::TailCore;
use crate::checkpoint::Entry;
use crate::find::{self, Compression};
use crate::identity::FileKey;
use crate::stats::TailStats;

impl TailCore {
    /// Moves the entry of file `key`, which is gone, to the sibling that holds its content,
    /// unless that sibling is known already as that content. Returns whether it moved.
    pub(super) fn move_to_copy(&mut self, key: FileKey) -> bool {
        let Some(e) = self.checkpointer.lock().entries.get(&key).cloned() else {
            return false;
        };
        let Some(found) = find::content_copy(Path::new(&e.path), e.fingerprint, key) else {
            return false;
        };
        let (path, compressed) = (found.path, found.kind != Compression::None);
        let copy = FileKey::of(&found.meta);
        if self.files.iter().any(|f| f.key == copy) {
            return false;
        }
        // An entry the copy's inode has for other content is of a file gone before.
        self.vacate(copy, &found.head, compressed);
        let mut registry = self.checkpointer.lock();
        if registry.entries.contains_key(&copy) {
            return false; // known already as this content
        }
        tracing::info!(from = %e.path, to = %path.display(),
            "a known file was replaced by a copy of it (compressed by the rotation): the copy \
             is known as the same content");
        let path = path.to_string_lossy();
        registry.transfer(key, copy, &path, compressed);
        true
    }

    /// Before file `key` is registered as the content starting with `head` (`compressed` or
    /// not): an entry the key has for other content belongs to a file that is gone (its inode
    /// was reused). That entry moves to a copy of its content, or is forgotten.
    pub(super) fn vacate(&mut self, key: FileKey, head: &[u8], compressed: bool) {
        let other = self
            .checkpointer
            .lock()
            .entries
            .get(&key)
            .is_some_and(|e| e.compressed != compressed || !e.fingerprint.matches(head));
        if other {
            self.gone_elsewhere(key);
        }
    }

    /// The file `key` named is gone (its inode may be another file's now): its entry moves to
    /// a copy of its content, or is forgotten.
    /// At a start, lines it held unread are lost (later, every line of a file let go was
    /// handed out already).
    pub(super) fn gone_elsewhere(&mut self, key: FileKey) {
        self.done.remove(&key);
        if self.move_to_copy(key) {
            return;
        }
        let gone = self.checkpointer.lock().entries.get(&key).cloned();
        if let Some(e) = gone.as_ref().filter(|e| !e.is_complete())
            && self.covered(e)
        {
            return; // its replacement holds it: read from there
        }
        self.checkpointer.lock().forget(key);
        if let Some(e) = gone.filter(|_| !self.started) {
            self.lost(
                &e,
                "file vanished while maillog was stopped (another file has its inode)",
            );
        }
    }

    /// The lines of `e` after its committed position that nobody can read any more (`why`:
    /// what happened to the file). With bytes seen there, an error naming the file and how
    /// many bytes (at least: what was written after maillog last looked is not known), and
    /// the counters. With none seen, a warning: what was written after maillog last saw the
    /// file is lost, if anything was.
    pub(super) fn lost(&self, e: &Entry, why: &str) {
        let seen = e.size.max(e.eof.unwrap_or(0));
        let bytes = seen.saturating_sub(e.offset);
        if bytes > 0 {
            tracing::error!(path = %e.path, committed = e.offset, seen, bytes_lost = bytes,
                "LINES LOST: {why}; at least {bytes} bytes after the committed position were \
                 never read or never committed, and no copy of them is left");
            TailStats::add(&self.stats.files_lost, 1);
            TailStats::add(&self.stats.bytes_lost, bytes);
        } else if !e.is_complete() {
            tracing::warn!(path = %e.path, committed = e.offset,
                "{why}: whatever was written to it after maillog last saw it is lost, if \
                 anything was");
        }
    }
}
