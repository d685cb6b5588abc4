//! A small tmpfs of the test's own, to fill the spool's disk for real: mounted on a directory,
//! filled to the last byte with a filler file and freed again, unmounted on drop. Mounting
//! needs root (CI has it).
#![allow(clippy::unwrap_used)] // test support: a failure is the test's failure

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A mounted tmpfs.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`"16m"`) on `dir` (created); `None` where mounting is not
    /// allowed (not root) — never under `CI=true`, where a test that cannot run fails.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok || std::env::var_os("CI").is_none_or(|v| v != "true"),
            "cannot mount a tmpfs on {} under CI=true",
            dir.display()
        );
        ok.then(|| Tmpfs {
            dir: dir.to_owned(),
        })
    }

    /// Gives it another size (`"64m"`): room again, or less.
    pub fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success(), "remount {}", self.dir.display());
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Fills it: a file of zeros grows until the disk says ENOSPC.
    pub fn fill(&self) {
        self.fill_leaving(0);
    }

    /// Fills it but for about `room` bytes (whole pages): enough for a process to start
    /// (a lock file), not to work.
    pub fn fill_leaving(&self, room: u64) {
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(self.filler())
            .unwrap();
        let block = vec![0u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::StorageFull => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("filling {}: {e}", self.dir.display()),
            }
        }
        let len = file.metadata().unwrap().len();
        file.set_len(len.saturating_sub(room)).unwrap();
    }

    /// Frees what [`Tmpfs::fill`] took.
    pub fn free(&self) {
        let _ = fs::remove_file(self.filler());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
