//! Counters of what the tailer did, readable while it runs.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What the tailer has done so far. Shared: read it from any thread.
#[derive(Debug, Default)]
pub struct TailStats {
    /// Bytes read from files (decompressed for archives).
    pub bytes: AtomicU64,
    /// Chunks handed out.
    pub chunks: AtomicU64,
    /// Lines longer than the limit, cut.
    pub lines_cut: AtomicU64,
    /// Unfinished last lines handed out after the writer went quiet.
    pub partial_lines: AtomicU64,
    /// Files found truncated (copytruncate) and read again from the start.
    pub truncations: AtomicU64,
    /// Truncated files whose unread rest was found in a copy and read from there.
    pub copies_read: AtomicU64,
    /// Files that stopped being named by an input (renamed or deleted).
    pub rotations: AtomicU64,
    /// Files opened for reading.
    pub files_opened: AtomicU64,
    /// Files read to their end and let go.
    pub files_released: AtomicU64,
    /// Errors reading a file (logged; the file is tried again).
    pub read_errors: AtomicU64,
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
             ({} continued from a copy); {} long lines cut, {} partial lines flushed; \
             {} read errors",
            g(&self.bytes),
            g(&self.chunks),
            g(&self.files_opened),
            g(&self.files_released),
            g(&self.rotations),
            g(&self.truncations),
            g(&self.copies_read),
            g(&self.lines_cut),
            g(&self.partial_lines),
            g(&self.read_errors),
        )
    }
}
