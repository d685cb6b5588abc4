//! The spool's disk is full: reading stops, nothing is lost, and the pipeline goes on by
//! itself once there is room.
//!
//! Two places meet a full disk: a commit (sealing, the spool's fsyncs, the checkpoint) and a
//! record that opens a window (its file is created). Either waits, trying again every few
//! seconds; meanwhile the tailer waits on its full channel. While waiting, files the archive
//! confirmed are still released from the spool — that is what frees the disk when the archive
//! was the reason it filled. Nothing here commits half a chunk: a record that cannot open its
//! window is tried again before the next line is taken.

use std::time::Duration;

use anyhow::Result;
use maillog_batch::WindowId;
use maillog_parse::Event;

use super::{Pipeline, Seal};

/// How long a full disk is waited on between two tries.
const RETRY: Duration = Duration::from_secs(2);

impl Pipeline {
    /// [`Self::commit`]; while the spool's disk is full, the commit is tried again every few
    /// seconds, and archived files leave the spool meanwhile.
    pub(super) fn commit_when_possible(&mut self, mut seal: Seal) -> Result<()> {
        let mut said = false;
        loop {
            match self.commit(seal) {
                Err(e) if is_disk_full(&e) => {
                    self.wait_for_room(&e, &mut said)?;
                    if seal == Seal::Due {
                        seal = Seal::DueWaiting;
                    }
                }
                Err(e) => return Err(e),
                Ok(()) => {
                    if said {
                        tracing::info!("the spool has room again: reading on");
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Adds an event's records; while the window they open cannot be created for a full
    /// disk, waits as a commit does. Returns the window it opened, if it opened one.
    pub(super) fn add_when_possible(&mut self, event: &Event<'_>) -> Result<Option<WindowId>> {
        let mut said = false;
        loop {
            match self.batcher.add(event) {
                Err(e) if e.is_disk_full() => self.wait_for_room(&e.into(), &mut said)?,
                Err(e) => return Err(e.into()),
                Ok(opened) => {
                    if said {
                        tracing::info!("the spool has room again: reading on");
                    }
                    return Ok(opened);
                }
            }
        }
    }

    /// One wait for room: said once, given up on a stop, archived files released meanwhile.
    fn wait_for_room(&mut self, error: &anyhow::Error, said: &mut bool) -> Result<()> {
        if !*said {
            tracing::error!(
                "{error:#}: the spool's disk is full; reading stopped until there is room"
            );
            *said = true;
        }
        if self.service.signals.stop_requested() {
            anyhow::bail!("stopping while the spool's disk is full: {error:#}");
        }
        self.notifier.alive(); // waiting for a known reason, not stuck
        if let Err(e) = self.archiving.step(&mut self.batcher) {
            tracing::debug!("releasing archived files waits: {e:#}");
        }
        std::thread::sleep(RETRY);
        Ok(())
    }
}

/// Whether an error is a file system being full (or over quota): the spool's, the
/// checkpoint's, or a local archive's. Every error in the chain is asked: an I/O error by its
/// kind, the spool's and the archive's errors by their own `is_disk_full`, which look at the
/// I/O error they keep.
pub(super) fn is_disk_full(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        }) || cause
            .downcast_ref::<maillog_batch::SpoolError>()
            .is_some_and(maillog_batch::SpoolError::is_disk_full)
            || cause
                .downcast_ref::<maillog_archive::ArchiveError>()
                .is_some_and(maillog_archive::ArchiveError::is_disk_full)
    })
}

#[cfg(test)]
mod tests {
    use super::is_disk_full;

    #[test]
    fn a_full_disk_is_told_through_the_chain() {
        let full = || std::io::Error::from(std::io::ErrorKind::StorageFull);
        let spool = maillog_batch::SpoolError::new("write", std::path::Path::new("x"), full());
        assert!(is_disk_full(&anyhow::Error::from(spool).context("commit")));
        let archive = maillog_archive::ArchiveError::Put {
            archive: "file:///a".into(),
            key: "k".into(),
            source: maillog_archive::Cause::Local(full()),
        };
        assert!(is_disk_full(&anyhow::Error::from(archive)));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!is_disk_full(&anyhow::Error::from(other).context("commit")));
    }
}
