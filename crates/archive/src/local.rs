//! The local directory backend (`file://…`), the embedded default that stands in for S3.
//!
//! It owns the layout (a key is a path under the root; copies in progress are hidden
//! `.NAME.PID-N.partial` files next to it) and the append-only rule there: a key, once
//! written, is never replaced, whatever a second put brings. It never deletes an archived file
//! (the archive probe's own object aside, through [`crate::Archive`]) and never touches the source.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Outcome;
use crate::key::validate_key;

/// A directory holding the archive's keys as paths.
#[derive(Clone, Debug)]
pub struct LocalArchive {
    root: PathBuf,
}

impl LocalArchive {
    /// The archive rooted at `root` (created on the first put).
    pub fn new(root: PathBuf) -> Self {
        LocalArchive { root }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every file under `prefix` (a key prefix), as keys with their sizes.
    pub(crate) fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let mut keys = Vec::new();
        // Only the folder the prefix names is walked (`mirror/` need not walk the archive).
        let start = match prefix.rfind('/') {
            Some(end) => self.root.join(&prefix[..end]),
            None => self.root.clone(),
        };
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(key) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = key.to_string_lossy().into_owned();
                let hidden = key
                    .split('/')
                    .any(|part| part.starts_with('.') && part.ends_with(".partial"));
                if key.starts_with(prefix) && !hidden {
                    keys.push((key, entry.metadata()?.len()));
                }
            }
        }
        Ok(keys)
    }

    /// Copies `file` in under `key` without ever replacing what is there: the copy is written
    /// under a hidden temporary name, verified, and linked to its key with `link(2)`, which
    /// fails when the key exists. An existing key holding the same bytes is
    /// [`Outcome::AlreadyThere`], other bytes [`Outcome::Conflict`]; either way it is unchanged.
    pub(crate) fn put(&self, file: &Path, key: &str) -> io::Result<Outcome> {
        validate_key(key).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("key {key:?}: {e}"))
        })?;
        let dest = self.root.join(key);
        let dir = dest.parent().unwrap_or(&self.root).to_owned();
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fs::create_dir_all(&dir)?;
        if dest.symlink_metadata().is_ok() {
            sweep(&dir, &name, None);
            return compare(file, &dest);
        }
        let tmp = dir.join(format!(
            ".{name}.{}-{}.partial",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let outcome = self.place(file, &tmp, &dest);
        let _ = fs::remove_file(&tmp);
        sweep(&dir, &name, Some(&tmp));
        let outcome = outcome?;
        File::open(&dir)?.sync_all()?;
        Ok(outcome)
    }

    /// Copies `file` to `tmp`, verifies the copy and gives it the name `dest` unless taken.
    fn place(&self, file: &Path, tmp: &Path, dest: &Path) -> io::Result<Outcome> {
        {
            let mut from = File::open(file)?;
            let mut to = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(tmp)?;
            io::copy(&mut from, &mut to)?;
            to.sync_all()?;
        }
        let (want, got) = (checksum(file)?, checksum(tmp)?);
        if want != got {
            return Err(io::Error::other(format!(
                "copy differs from the original ({} bytes crc32 {:08x} vs {} bytes crc32 {:08x})",
                got.0, got.1, want.0, want.1
            )));
        }
        crash_point("archive-copy");
        match fs::hard_link(tmp, dest) {
            Ok(()) => Ok(Outcome::Stored),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => compare(file, dest),
            // A file system without hard links (FAT, some network mounts): look, then
            // rename. Only a second writer of the same key at the same instant can slip
            // between the two.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                ) =>
            {
                if dest.symlink_metadata().is_ok() {
                    return compare(file, dest);
                }
                fs::rename(tmp, dest)?;
                Ok(Outcome::Stored)
            }
            Err(e) => Err(e),
        }
    }
}

/// Temporary names of this process's copies (with its pid): two puts never share one.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary copies of `name` in `dir` but `keep`: what a kill in the middle of a
/// put left (a put going on elsewhere at that instant fails and is retried).
fn sweep(dir: &Path, name: &str, keep: Option<&Path>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let path = entry.path();
        if file_name.starts_with(&prefix)
            && file_name.ends_with(".partial")
            && keep != Some(path.as_path())
        {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Whether `archived` holds the bytes of `file`: [`Outcome::AlreadyThere`] or
/// [`Outcome::Conflict`].
fn compare(file: &Path, archived: &Path) -> io::Result<Outcome> {
    let (mut a, mut b) = (File::open(file)?, File::open(archived)?);
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(Outcome::Conflict);
    }
    let (mut x, mut y) = (vec![0; 256 << 10], vec![0; 256 << 10]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if x[..n] != y[..m] {
            return Ok(Outcome::Conflict);
        }
        if n == 0 {
            return Ok(Outcome::AlreadyThere);
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Fault injection for the pipeline's crash test: with `MAILLOG_CRASH_AT=archive-copy` the
/// process stops in the middle of a put — the copy written, not yet under its key — and says
/// so: the test kills it.
fn crash_point(name: &str) {
    if std::env::var_os("MAILLOG_CRASH_AT").is_some_and(|v| v == name) {
        eprintln!("maillog: MAILLOG_CRASH_AT={name}: stopped here for a SIGKILL");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Length and CRC-32 of a file.
fn checksum(path: &Path) -> io::Result<(u64, u32)> {
    let mut file = File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0; 1 << 20];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((len, hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "mail_logs/2026-11-25/from-2026-11-25-10-05.json.bz2";

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn put_is_atomic_verified_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("from-2026-11-25-10-05.json.bz2");
        fs::write(&src, b"BZh9 pretend").unwrap();
        let archive = LocalArchive::new(dir.path().join("a"));
        assert!(!archive.root().join(KEY).exists());
        assert_eq!(archive.put(&src, KEY).unwrap(), Outcome::Stored);
        assert_eq!(archive.put(&src, KEY).unwrap(), Outcome::AlreadyThere);
        assert_eq!(fs::read(archive.root().join(KEY)).unwrap(), b"BZh9 pretend");
        assert_eq!(
            names(&dir.path().join("a/mail_logs/2026-11-25")),
            ["from-2026-11-25-10-05.json.bz2"],
            "no temporary file left"
        );
        let e = archive.put(&src, "../escape").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("\"..\" segment"), "{e}");
        let e = archive.put(&src, "logs//x").unwrap_err();
        assert!(e.to_string().contains("empty segment"), "{e}");
    }

    #[test]
    fn other_bytes_never_replace_an_archived_file() {
        let dir = tempfile::tempdir().unwrap();
        let archive = LocalArchive::new(dir.path().join("a"));
        let (first, same_length, longer) = (
            dir.path().join("first"),
            dir.path().join("same-length"),
            dir.path().join("longer"),
        );
        fs::write(&first, b"BZh9 first copy").unwrap();
        fs::write(&same_length, b"BZh9 other copy").unwrap();
        fs::write(&longer, b"BZh9 first copy and more").unwrap();
        assert_eq!(archive.put(&first, KEY).unwrap(), Outcome::Stored);
        for other in [&same_length, &longer] {
            assert_eq!(archive.put(other, KEY).unwrap(), Outcome::Conflict);
            assert_eq!(
                fs::read(archive.root().join(KEY)).unwrap(),
                b"BZh9 first copy",
                "the archived file is unchanged"
            );
        }
        assert_eq!(archive.put(&first, KEY).unwrap(), Outcome::AlreadyThere);
        assert_eq!(
            names(&dir.path().join("a/mail_logs/2026-11-25")),
            ["from-2026-11-25-10-05.json.bz2"],
            "no temporary file left"
        );
    }

    #[test]
    fn a_copy_a_kill_left_behind_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let archive = LocalArchive::new(dir.path().join("a"));
        let src = dir.path().join("src");
        fs::write(&src, b"BZh9 pretend").unwrap();
        let day = dir.path().join("a/mail_logs/2026-11-25");
        fs::create_dir_all(&day).unwrap();
        let left = day.join(".from-2026-11-25-10-05.json.bz2.4242-0.partial");
        fs::write(&left, b"BZh9 pre").unwrap();
        let other = day.join(".to-2026-11-25-10-05.json.bz2.4242-1.partial");
        fs::write(&other, b"another key's").unwrap();
        assert_eq!(archive.list("").unwrap(), Vec::new(), "copies are hidden");
        assert_eq!(archive.put(&src, KEY).unwrap(), Outcome::Stored);
        assert!(!left.exists(), "this key's leftover is gone");
        assert!(other.exists(), "another key's copy is left alone");
        fs::write(&left, b"BZh9 pre").unwrap();
        assert_eq!(archive.put(&src, KEY).unwrap(), Outcome::AlreadyThere);
        assert!(!left.exists(), "swept on an idempotent put too");
    }
}
