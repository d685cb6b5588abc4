//! The multipart uploads in flight, recorded on disk so that one cut off by a kill can be
//! aborted at the next start instead of leaving its parts in the bucket (billed, invisible).
//!
//! It owns one small file per upload in a directory the caller names: the bucket, the object
//! key and the upload id, written durably (temp + fsync + rename + fsync of the directory)
//! before the first part is sent, and removed once the upload is completed or aborted. It never
//! talks to the store: the S3 backend aborts what [`Pending::list`] gives back.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

/// The suffix of a record.
const SUFFIX: &str = ".upload";

/// A directory of records.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    dir: PathBuf,
}

/// One recorded upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingUpload {
    pub bucket: String,
    /// The object key (with the archive's prefix).
    pub key: String,
    pub upload_id: String,
    /// The record.
    pub path: PathBuf,
}

impl Pending {
    pub fn new(dir: PathBuf) -> Self {
        Pending { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records an upload, durably; returns the record's path.
    pub fn record(&self, bucket: &str, key: &str, upload_id: &str) -> io::Result<PathBuf> {
        if [bucket, key, upload_id].iter().any(|s| s.contains('\n')) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a line break in a bucket, key or upload id",
            ));
        }
        fs::create_dir_all(&self.dir)?;
        let name = hex(&Md5::digest(format!("{bucket}\n{key}\n{upload_id}")));
        let path = self.dir.join(format!("{name}{SUFFIX}"));
        let tmp = self.dir.join(format!(".{name}.tmp"));
        {
            let mut file = File::create(&tmp)?;
            file.write_all(format!("{bucket}\n{key}\n{upload_id}\n").as_bytes())?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(path)
    }

    /// Removes a record (done: the upload was completed or aborted).
    pub fn remove(&self, record: &Path) -> io::Result<()> {
        match fs::remove_file(record) {
            Ok(()) => File::open(&self.dir)?.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every recorded upload. A record that cannot be read (not written by this module) is
    /// removed with a warning; a temp file a kill left is removed silently.
    pub fn list(&self) -> io::Result<Vec<PendingUpload>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut uploads = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(SUFFIX) {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            match lines[..] {
                [bucket, key, upload_id] if !bucket.is_empty() && !upload_id.is_empty() => {
                    uploads.push(PendingUpload {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                        upload_id: upload_id.to_owned(),
                        path,
                    });
                }
                _ => {
                    tracing::warn!(
                        "{}: not a record of a multipart upload; removed",
                        path.display()
                    );
                    let _ = fs::remove_file(&path);
                }
            }
        }
        uploads.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(uploads)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let pending = Pending::new(dir.path().join("multipart"));
        assert_eq!(pending.list().unwrap(), Vec::new(), "no directory yet");
        let a = pending.record("bucket", "p/a.json.bz2", "id-1").unwrap();
        let b = pending.record("bucket", "p/b.json.bz2", "id-2").unwrap();
        assert_ne!(a, b);
        let again = Pending::new(dir.path().join("multipart"));
        let listed = again.list().unwrap();
        assert_eq!(listed.len(), 2);
        let found = listed.iter().find(|u| u.path == a).unwrap();
        assert_eq!(
            (
                found.bucket.as_str(),
                found.key.as_str(),
                found.upload_id.as_str()
            ),
            ("bucket", "p/a.json.bz2", "id-1")
        );
        again.remove(&a).unwrap();
        again.remove(&a).unwrap();
        assert_eq!(again.list().unwrap().len(), 1);
        assert!(pending.record("bucket", "a\nb", "id").is_err());
    }

    #[test]
    fn junk_and_leftovers_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let pending = Pending::new(dir.path().to_owned());
        fs::write(dir.path().join("x.upload"), "only one line\n").unwrap();
        fs::write(dir.path().join(".abc.tmp"), "bucket\nk").unwrap();
        fs::write(dir.path().join("other"), "kept").unwrap();
        assert_eq!(pending.list().unwrap(), Vec::new());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("other")]);
    }
}
