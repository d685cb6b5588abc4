//! Counters of what the tailer did, readable while it runs.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What the tailer has done so far. Shared: read it from any thread.
#[derive(Debug, Default, serde::Serialize)]
pub struct TailStats {
    /// Bytes read from files (decompressed for archives).
    pub bytes: AtomicU64,
    /// Chunks handed out.
    pub chunks: AtomicU64,
    /// Lines longer than the limit, cut.
    pub lines_cut: AtomicU64,
    /// Last lines without a newline handed out because their file was final
    /// ([`crate::ChunkKind::PartialLine`]).
    pub partial_lines: AtomicU64,
    /// Files found truncated (copytruncate) and read again from the start.
    pub truncations: AtomicU64,
    /// Truncated files whose unread rest was found in a copy and read from there.
    pub copies_read: AtomicU64,
    /// Files an input names replaced by a file with another inode that starts with the same
    /// content (`sed -i`, an editor, rsync without `--inplace`, a move to another disk): read
    /// on from where the content read ends, not again. Includes [`Self::diverged_files`].
    pub replaced_files: AtomicU64,
    /// Replacements whose content differs from what was read before the read position (an
    /// edit of lines read already): read again from the first line that differs (while
    /// following) or from the start (found after a restart); lines may repeat (logged).
    pub diverged_files: AtomicU64,
    /// Files that stopped being named by an input (renamed or deleted).
    pub rotations: AtomicU64,
    /// Files opened for reading.
    pub files_opened: AtomicU64,
    /// Files read to their end and let go.
    pub files_released: AtomicU64,
    /// Errors reading a file (logged; the file is tried again).
    pub read_errors: AtomicU64,
    /// Known files that vanished (or were truncated) with lines not yet read or committed,
    /// and no copy of them to read instead: their lines are lost (logged as an error).
    pub files_lost: AtomicU64,
    /// Bytes those files held beyond the committed position, as far as the tailer saw them
    /// (a lower bound: what was written after its last look is not known).
    pub bytes_lost: AtomicU64,
}

impl TailStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// A plain-number snapshot of one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

impl fmt::Display for TailStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = TailStats::get;
        write!(
            f,
            "{} bytes in {} chunks from {} files ({} let go); {} rotations, {} truncations \
             ({} continued from a copy); {} replaced by a copy ({} with edited content); {} long lines cut, {} partial lines flushed; \
             {} read errors; {} files lost with {} bytes unread",
            g(&self.bytes),
            g(&self.chunks),
            g(&self.files_opened),
            g(&self.files_released),
            g(&self.rotations),
            g(&self.truncations),
            g(&self.copies_read),
            g(&self.replaced_files),
            g(&self.diverged_files),
            g(&self.lines_cut),
            g(&self.partial_lines),
            g(&self.read_errors),
            g(&self.files_lost),
            g(&self.bytes_lost),
        )
    }
}
