//! The local directory backend (`file://…`), the embedded default that stands in for S3.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

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
        let mut stack = vec![self.root.clone()];
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

    pub(crate) fn put(&self, file: &Path, key: &str) -> io::Result<()> {
        if key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(io::Error::other(format!("bad key {key:?}")));
        }
        let dest = self.root.join(key);
        let dir = dest.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(
            ".{}.partial",
            dest.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        fs::copy(file, &tmp)?;
        File::open(&tmp)?.sync_all()?;
        let (want, got) = (checksum(file)?, checksum(&tmp)?);
        if want != got {
            let _ = fs::remove_file(&tmp);
            return Err(io::Error::other(format!(
                "copy differs from the original ({} bytes crc32 {:08x} vs {} bytes crc32 {:08x})",
                got.0, got.1, want.0, want.1
            )));
        }
        crash_point("archive-copy");
        fs::rename(&tmp, &dest)?;
        File::open(&dir)?.sync_all()
    }
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

    #[test]
    fn put_is_atomic_verified_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("from-2026-11-25-10-05.json.bz2");
        fs::write(&src, b"BZh9 pretend").unwrap();
        let archive = LocalArchive::new(dir.path().join("a"));
        let key = "mail_logs/2026-11-25/from-2026-11-25-10-05.json.bz2";
        assert!(!archive.root().join(key).exists());
        archive.put(&src, key).unwrap();
        archive.put(&src, key).unwrap();
        assert!(archive.root().join(key).is_file());
        assert_eq!(
            fs::read(dir.path().join("a").join(key)).unwrap(),
            b"BZh9 pretend"
        );
        let leftovers = fs::read_dir(dir.path().join("a/mail_logs/2026-11-25"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 1, "no temporary file left");
        assert!(archive.put(&src, "../escape").is_err());
    }
}
