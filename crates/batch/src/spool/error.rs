//! Why a spool operation failed: the action, the file and the I/O error, and what a caller
//! can do about it (wait for room, or take the file as lost).

use std::io;
use std::path::{Path, PathBuf};

/// The action of the error for a window file shorter than its committed length.
pub(crate) const SHORTER_THAN_COMMITTED: &str = "resume (file shorter than committed)";

/// A spool operation failed on a file.
#[derive(Debug, thiserror::Error)]
#[error("spool: {action} {path}: {source}")]
pub struct SpoolError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl SpoolError {
    /// Whether the spool's file system is full (or over quota): waiting may fix it.
    pub fn is_disk_full(&self) -> bool {
        disk_full(&self.source)
    }
}

/// Whether an I/O error is a full file system (or quota): waiting may fix it.
pub(crate) fn disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl SpoolError {
    /// Whether the file is gone or holds less than was committed: what the state says of it
    /// cannot be had from the spool any more (waiting will not help).
    pub fn is_lost(&self) -> bool {
        self.source.kind() == io::ErrorKind::NotFound || self.action == SHORTER_THAN_COMMITTED
    }

    /// An error of `action` on `path`.
    pub fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        SpoolError {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

pub(crate) fn at<T>(action: &'static str, path: &Path, r: io::Result<T>) -> Result<T, SpoolError> {
    r.map_err(|source| SpoolError {
        action,
        path: path.to_owned(),
        source,
    })
}
