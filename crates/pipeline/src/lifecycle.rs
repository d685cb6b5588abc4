//! The service's life: the signals that stop or refresh it, and the lock that keeps a second
//! instance off its spool.
//!
//! - SIGTERM / SIGINT: the pipeline stops reading, makes everything durable, gives in-flight
//!   uploads a bounded time, and exits 0 (open windows stay in the spool and resume at the next
//!   start). A second SIGTERM / SIGINT exits at once (143 / 130) from the signal handler: what
//!   was committed is durable, what was not is read again at the next start — the same
//!   guarantee as after a crash.
//! - SIGHUP: look at the inputs again now and re-read the config (see `pipeline`).
//!
//! This module only records that a signal came; the pipeline decides what to do at a safe
//! point. It never exits except on the second stop signal.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::flag;

/// The signals received so far.
#[derive(Clone)]
pub struct Signals {
    stop: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> Result<Signals> {
        let stop = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        for (signal, status) in [(SIGTERM, 143), (SIGINT, 130)] {
            // Registered first, so it sees the flag as the previous signal left it: set means
            // this is the second signal.
            flag::register_conditional_shutdown(signal, status, Arc::clone(&stop))
                .context("cannot install a signal handler")?;
            flag::register(signal, Arc::clone(&stop)).context("cannot install a signal handler")?;
        }
        flag::register(SIGHUP, Arc::clone(&hup)).context("cannot install a signal handler")?;
        Ok(Signals { stop, hup })
    }

    /// Whether SIGTERM or SIGINT came.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Whether SIGHUP came since the last call.
    pub fn take_hup(&self) -> bool {
        self.hup.swap(false, Ordering::SeqCst)
    }
}

/// The lock on a spool, held while the process lives (the kernel releases it when the process
/// ends, however it ends: no stale lock after a crash).
pub struct SpoolLock {
    _file: File,
    pub path: PathBuf,
}

impl SpoolLock {
    /// Takes `SPOOL/lock`, or says which process holds it.
    pub fn acquire(spool: &Path) -> Result<SpoolLock> {
        let path = spool.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                bail!(
                    "another maillog{holder} is running on the spool {}: one instance per spool (lock file {})",
                    spool.display(),
                    path.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write the lock file {}", path.display()))?;
        Ok(SpoolLock { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_spool_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = SpoolLock::acquire(dir.path()).unwrap();
        let e = format!("{:#}", SpoolLock::acquire(dir.path()).err().unwrap());
        let pid = std::process::id();
        assert!(
            e.starts_with(&format!("another maillog (pid {pid}) is running")),
            "{e}"
        );
        drop(first);
        SpoolLock::acquire(dir.path()).unwrap();
    }
}
