//! Follows the mail log syslog-ng writes — through rotation, truncation and restarts — and
//! turns it into chunks of complete lines, each with its position, losing and repeating nothing.
//!
//! # How it is used
//! [`spawn`] starts a thread that follows [`TailConfig::inputs`] and sends [`Chunk`]s into a
//! bounded channel (a slow consumer makes the tailer wait; memory stays flat). The consumer
//! hands each chunk's [`Ack`] to [`Checkpointer::commit`] once the lines are durable
//! downstream; only then does the checkpoint move. After a crash the tailer resumes at the
//! last committed position: lines after it are delivered again, lines before it never.
//!
//! # What it guarantees, and the limits
//! - Files are known by device, inode and a fingerprint of their first bytes ([`identity`]),
//!   so a renamed file is still the same file and a reused inode is a new one.
//! - A file is who its content says it is: the log replaced by a copy with another inode
//!   (`sed -i`, an editor saving, rsync without `--inplace`, `cp mail.log x && mv x
//!   mail.log`, /var/log moved to another disk) that starts with all of the content read is
//!   read on from there, not again, while following and across a restart; the replaced file
//!   is read to its end (a writer may not have reopened yet) and its lines not committed are
//!   taken from the replacement if it is deleted. A copy whose first KiB is the same but whose
//!   bytes before the read position differ (lines read already were edited) is read from the
//!   first line that differs while following, and from its start when found after a restart
//!   (the replaced file is gone, the point cannot be found): nothing is lost, edited lines and
//!   the ones after them come again, logged and counted ([`TailStats::replaced_files`],
//!   [`TailStats::diverged_files`]). A new file whose first KiB differs (or shorter than that
//!   and not the old content) is a new file, read from its start.
//! - Rename + create rotation (logrotate `create`, or `mv` + `syslog-ng-ctl reopen`): the old
//!   file is read to its end, including lines written to it after the rename, and let go once
//!   it has been quiet for [`TailConfig::rotate_wait`]; then the new file is read from its
//!   start. A file deleted while open is read to its end the same way; a rotated file its
//!   writer still writes to after it was let go (the writer never reopened) is followed again.
//!   This is the recommended setup (`contrib/logrotate/mail`); so are date-named files
//!   written by syslog-ng.
//! - Stopped across rotations (any number, `compress` and `delaycompress` or not): after a
//!   restart, every line written after the committed positions is read once, oldest first,
//!   before the file the input names now. A known file with unread lines is found by identity,
//!   or — once logrotate compressed it — by the content of its copy (`mail.log.3.gz`), and
//!   finished from its committed position. A rotation nothing has read (written while maillog
//!   was stopped, or created and rotated away between two looks) is found as a sibling of an
//!   input path (`mail.log.1`, `mail.log.2.gz`, `mail.log.2.bz2`, `mail.log-20261125`) that
//!   the checkpoint does not know, that was written to after the first checkpoint, and that
//!   is not a copy of known content; a compressed one once it has been quiet for the rotate
//!   wait (it may still be being compressed). They are read in the order the names give —
//!   `mail.log.3.gz`, then `mail.log.2.gz`, then `mail.log.1`; date suffixes by name — with
//!   the modification time only as a fallback (gzip stamps a file with the time it was
//!   compressed). A compressed file is registered in the checkpoint, so it is read once, and
//!   a copy of content read already (a file compressed after it was read) is known as that
//!   content: never read again. Limits: a rotation last written before the first checkpoint
//!   is content from before maillog and is not read (nor its compressed copy); one compressed
//!   with xz, zstd, lz4 or compress is reported as an error and not read; a compressed
//!   rotation still being written at the start is read once quiet, after lines of newer files
//!   (out of order, not lost); and lines a writer added to a rotated file after it was let go
//!   and before it was compressed while maillog was stopped are not read (the copy is known
//!   content).
//! - Lines that are gone are said to be gone. When a known file with lines not yet read or
//!   not yet committed vanished with no copy of it left (`rotate N` ran out while maillog was
//!   stopped, or it was deleted by hand), an error names the file and the bytes lost — at
//!   least those between the committed position and the file's length when the tailer last
//!   saw it ([`checkpoint::Entry::size`]) — and [`TailStats::files_lost`] and
//!   [`TailStats::bytes_lost`] count them. **What cannot be detected**: a rotation deleted
//!   before the tailer ever saw it (written, rotated and deleted all while maillog was
//!   stopped, or `rotate 0`) leaves no trace to tell by; and what was written to a known file
//!   after the tailer last saw it is lost uncounted (a warning says it may be). Keep `rotate N`
//!   longer than any stop.
//! - copytruncate: detected when the size drops below the read position or the first bytes
//!   change; the file is read again from 0 (counted and logged). The unread rest of the old
//!   content is read from the copy when a sibling (`mail.log.1`, `mail.log.1.gz`, …) holds it.
//!   **The window of loss copytruncate has by construction**: lines the writer appends between
//!   logrotate's copy and its truncate are in neither file, and no reader can get them back;
//!   and if a file is truncated twice before the tailer looks (within the recheck interval
//!   without an inotify event), the content between the two truncations is missed.
//! - Only complete lines leave, and a committed position is always at the end of a line. A
//!   last line without its newline in a file an input names (the writer has not flushed the
//!   rest yet) is never handed out, however long it waits: it is read when its newline
//!   arrives. Only once a file is final — rotated away or deleted and quiet for
//!   [`TailConfig::rotate_wait`], a copy or an archive read to its end — is its unterminated
//!   last line handed out, with a newline added ([`ChunkKind::PartialLine`]). A run that does
//!   not follow leaves such a line unread for the next run, unless
//!   [`TailConfig::finish_partial_lines`] says the files are finished (a backfill). Lines
//!   longer than [`TailConfig::max_line_bytes`] are cut ([`ChunkKind::CutLine`]) and counted.
//! - Checkpoints ([`checkpoint`]) are written atomically with the previous generation kept; a
//!   damaged or missing one is reported loudly and the configured [`StartAt`] applies.
//! - Compressed archives (`.gz`, `.bz2`, recognised by content) named by an input are read
//!   once, start to end, and remembered as done.
//! - New data is noticed through inotify, with a timer recheck (size, inode, first bytes, and
//!   a rescan of the inputs) every [`TailConfig::recheck_interval`] since events can be lost;
//!   where inotify is unavailable the timer alone drives it, every
//!   [`TailConfig::poll_interval`]. An idle tailer sleeps.

pub mod checkpoint;
mod find;
pub mod identity;
mod lines;
mod registry;
mod runner;
mod source;
mod stats;
mod tailer;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::checkpoint::SaveError;
pub use crate::lines::ChunkKind;
pub use crate::registry::{Ack, Checkpointer};
pub use crate::runner::{Tail, TailHandle, spawn, start};
pub use crate::source::Chunk;
pub use crate::stats::TailStats;
pub use crate::tailer::{CheckpointOrigin, PassReport, TailCore};

/// Where files found at the first start (no checkpoint, or an unreadable one) begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StartAt {
    /// At their first line.
    #[default]
    Beginning,
    /// After their last complete line: only what is written from now on.
    End,
}

/// How changes are noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WatchMode {
    /// inotify events plus a timer recheck; the timer alone where inotify is unavailable.
    #[default]
    Auto,
    /// The timer alone, every `poll_interval` (for file systems without inotify: NFS, FUSE).
    Poll,
}

/// What to follow and how.
#[derive(Clone, Debug)]
pub struct TailConfig {
    /// Paths and globs (`/var/log/mail/*.log`); files they name later are picked up too.
    pub inputs: Vec<PathBuf>,
    /// Where the checkpoint lives.
    pub checkpoint_dir: PathBuf,
    /// Where files found at the first start begin.
    pub start_at: StartAt,
    /// Longer lines are cut to this many bytes (default 1 MiB: sixteen times syslog-ng's
    /// default message size, so nothing it writes by default is cut). `maillog parse` cuts at
    /// the same limit in the same way.
    pub max_line_bytes: usize,
    /// How long a rotated or deleted file must be quiet before it is let go (then a last line
    /// without its newline is final), and a compressed rotation nothing has read before it is
    /// read (it may still be being compressed). Default 5 s.
    pub rotate_wait: Duration,
    /// The timer recheck with inotify (default 1 s).
    pub recheck_interval: Duration,
    /// The timer without inotify (default 250 ms).
    pub poll_interval: Duration,
    /// inotify or polling.
    pub watch: WatchMode,
    /// Keep following (a service) or stop when every file is read to its end (`--once`).
    pub follow: bool,
    /// At the end of a run that does not follow: what becomes of a last line without its
    /// newline in a file an input names (default false). False: it is left unread (the
    /// position stays at the end of the last complete line; the next run reads the line once
    /// its newline is there). True, for a backfill of files that are finished: it is taken as
    /// a line, with a newline added ([`ChunkKind::PartialLine`]).
    pub finish_partial_lines: bool,
    /// Chunks in flight between the tailer and the consumer.
    pub channel_capacity: usize,
    /// Bytes per read, and at most per chunk (default 1 MiB: each chunk costs a hand-over
    /// between threads, measured at ~20 µs; with 256 KiB chunks that was a third of the time).
    pub read_bytes: usize,
}

impl TailConfig {
    /// Following `inputs`, checkpoints in `checkpoint_dir`, everything else default.
    pub fn new(inputs: Vec<PathBuf>, checkpoint_dir: PathBuf) -> Self {
        TailConfig {
            inputs,
            checkpoint_dir,
            start_at: StartAt::Beginning,
            max_line_bytes: 1024 * 1024,
            rotate_wait: Duration::from_secs(5),
            recheck_interval: Duration::from_secs(1),
            poll_interval: Duration::from_millis(250),
            watch: WatchMode::Auto,
            follow: true,
            finish_partial_lines: false,
            channel_capacity: 16,
            read_bytes: 1024 * 1024,
        }
    }
}

/// Why the tailer stopped.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The checkpoint could not be saved.
    #[error(transparent)]
    Checkpoint(#[from] SaveError),
    /// The consumer dropped its end of the channel.
    #[error("the consumer of the lines has gone")]
    Closed,
    /// The tailer thread could not be started.
    #[error("cannot start the tailer thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The tailer thread panicked (a bug: please report it with the log).
    #[error("the tailer thread panicked")]
    Panicked,
}
