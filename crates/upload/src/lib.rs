//! The archive: where sealed window files end up, under their keys.
//!
//! One interface, [`Archive`], with a backend per URL scheme. The first is a local directory
//! (`file://…`), the embedded default that stands in for S3: a file is copied in under a
//! temporary name, fsynced, compared with the original (length and CRC-32), renamed to its key
//! and the directory fsynced — so a key either holds the whole verified file or nothing, and
//! putting the same file twice is harmless. The archive never deletes or changes the source:
//! releasing it from the spool is the caller's step, after `put` returned.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// An archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The URL names no archive this build knows.
    #[error("archive URL {url:?}: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// Copying a file in failed.
    #[error("archive {archive}: cannot put {key}: {source}")]
    Put {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Where sealed files go.
#[derive(Clone, Debug)]
pub enum Archive {
    /// A directory on a local (or mounted) file system.
    Local(LocalArchive),
}

impl Archive {
    /// From a URL: `file:///abs/dir`, `file://relative/dir`, or a plain path.
    pub fn from_url(url: &str) -> Result<Archive, ArchiveError> {
        let bad = |why: &str| ArchiveError::Url {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(bad("no directory after file://"));
            }
            return Ok(Archive::Local(LocalArchive::new(PathBuf::from(path))));
        }
        if url.starts_with("s3://") {
            return Err(bad(
                "S3 archives are not built yet (issue 5); use file://DIR",
            ));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(bad(&format!(
                "unknown scheme {scheme:?}; expected file:// (or a path)"
            )));
        }
        if url.is_empty() {
            return Err(bad("empty"));
        }
        Ok(Archive::Local(LocalArchive::new(PathBuf::from(url))))
    }

    /// Copies `file` in under `key`, verified. Idempotent.
    pub fn put(&self, file: &Path, key: &str) -> Result<(), ArchiveError> {
        match self {
            Archive::Local(local) => local.put(file, key).map_err(|source| ArchiveError::Put {
                archive: self.to_string(),
                key: key.to_owned(),
                source,
            }),
        }
    }

    /// Whether `key` is in the archive.
    pub fn has(&self, key: &str) -> bool {
        match self {
            Archive::Local(local) => local.root.join(key).is_file(),
        }
    }
}

impl std::fmt::Display for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Archive::Local(local) => write!(f, "file://{}", local.root.display()),
        }
    }
}

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

    fn put(&self, file: &Path, key: &str) -> io::Result<()> {
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
    fn urls() {
        assert!(matches!(
            Archive::from_url("file:///var/archive"),
            Ok(Archive::Local(_))
        ));
        assert!(matches!(
            Archive::from_url("archive"),
            Ok(Archive::Local(_))
        ));
        let e = Archive::from_url("ftp://x").unwrap_err().to_string();
        assert!(e.contains("unknown scheme \"ftp\""), "{e}");
        assert!(Archive::from_url("file://").is_err());
    }

    #[test]
    fn put_is_atomic_verified_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("from-2026-11-25-10-05.json.bz2");
        fs::write(&src, b"BZh9 pretend").unwrap();
        let archive =
            Archive::from_url(&format!("file://{}", dir.path().join("a").display())).unwrap();
        let key = "mail_logs/2026-11-25/from-2026-11-25-10-05.json.bz2";
        assert!(!archive.has(key));
        archive.put(&src, key).unwrap();
        archive.put(&src, key).unwrap();
        assert!(archive.has(key));
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
