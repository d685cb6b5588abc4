//! What `maillog run` prints at the end: the counters of the run.

use std::fmt;
use std::sync::Arc;

use maillog_batch::BatchStats;
use maillog_parse::ParseStats;
use maillog_tail::TailStats;

/// The counters printed at the end.
///
/// Its JSON form (`maillog run --once --format json`) is one object: `parse` (lines and
/// records read), `batch` (windows sealed, bytes in and out), `archived` (files archived by
/// this run), `mirrored` (mirror files written by this run, `[mirror]`) and `tail` (the
/// tailer's counters, `files_lost` and `bytes_lost` among them).
#[derive(serde::Serialize)]
pub struct Summary {
    pub(super) parse: ParseStats,
    pub(super) batch: BatchStats,
    pub(super) archived: u64,
    pub(super) mirrored: u64,
    pub(super) tail: Arc<TailStats>,
}

impl Summary {
    /// Inputs that could not be opened or read (permissions, mostly): a `--once` run that
    /// met one did not do its work, whatever it archived.
    pub fn read_errors(&self) -> u64 {
        TailStats::get(&self.tail.read_errors)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.batch;
        writeln!(f, "maillog run: {}", self.parse)?;
        writeln!(
            f,
            "maillog run: {} windows sealed ({} late parts), {} archived; {} bytes of records in, {} bytes of bzip2 out",
            b.windows_sealed, b.late_parts, self.archived, b.bytes_in, b.bytes_out
        )?;
        if self.mirrored > 0 {
            writeln!(f, "maillog run: {} mirror files written", self.mirrored)?;
        }
        write!(f, "maillog run: tailer: {}", self.tail)
    }
}
