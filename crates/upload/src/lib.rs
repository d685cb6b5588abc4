//! The archive: where sealed window files end up, under their keys.
//!
//! One interface, [`Archive`], with a backend per URL scheme: a local directory (`file://…`,
//! the embedded default that stands in for S3; [`local`]) and S3 or an S3-compatible store
//! (`s3://bucket/prefix`; [`s3`]). Either way a key holds the whole verified file or nothing,
//! and the archive is append-only: a key once written is never replaced. Putting the same
//! bytes again is harmless (a crash between the put and the spool's release does that); other
//! bytes under a taken key are refused as [`ArchiveError::Conflict`], the archived object
//! unchanged. A key that can never be written ([`validate_key`]) is refused before any put.
//! [`Uploader`] runs the puts: a bounded number
//! at once, retrying what retrying can fix without limit in time, reporting the rest at once.
//! The archive never deletes or changes the source: releasing it from the spool is the
//! caller's step, after a put succeeded. [`read`] lists and streams an S3 archive back, for
//! the queries of `maillog top` and `maillog report`.

pub mod key;
pub mod local;
mod pending;
pub mod read;
pub mod s3;
pub mod uploader;

use std::io;
use std::path::{Path, PathBuf};

pub use crate::key::{KeyError, MAX_KEY_BYTES, validate_key};
pub use crate::local::LocalArchive;
pub use crate::read::{ObjectReader, S3Reader};
pub use crate::s3::{S3Archive, S3Options, UploadOptions};
pub use crate::uploader::{Backoff, Done, Job, UploadStats, Uploader};

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
    #[error("archive {archive}: cannot put {key}: {why}")]
    Put {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
        /// Why.
        why: String,
    },
    /// The key holds other bytes than the file: the archive is append-only, the object stays
    /// as it is. Never retried: the caller puts the records under another key.
    #[error(
        "archive {archive}: {key} is already archived with other bytes; the archive is append-only, it stays as it is"
    )]
    Conflict {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
    },
    /// The key can never be written (refused before any request).
    #[error("archive {archive}: cannot put {key:?}: {source}")]
    Key {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
        /// What is wrong with it.
        source: KeyError,
    },
    /// Asking whether a key exists failed.
    #[error("archive {archive}: cannot look up {key}: {why}")]
    Lookup {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
        /// Why.
        why: String,
    },
}

/// Why an operation failed, and whether trying again may help.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub retryable: bool,
}

/// What a put found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The key was free: it holds the file now.
    Stored,
    /// The key held the same bytes already (a put repeated after a crash).
    AlreadyThere,
    /// The key holds other bytes; they stay.
    Conflict,
}

/// Why a put did not happen.
#[derive(Debug)]
pub(crate) enum PutError {
    /// The key can never be written.
    Key(KeyError),
    /// Anything else, retryable or not.
    Failed(Failure),
}

impl From<Failure> for PutError {
    fn from(f: Failure) -> Self {
        PutError::Failed(f)
    }
}

/// Where sealed files go.
#[derive(Clone, Debug)]
pub enum Archive {
    /// A directory on a local (or mounted) file system.
    Local(LocalArchive),
    /// A bucket of S3 or an S3-compatible store.
    S3(S3Archive),
}

/// A multi-threaded runtime of `threads` workers named `name`, for the archive at `url`.
pub(crate) fn runtime(
    url: &str,
    threads: usize,
    name: &str,
) -> Result<tokio::runtime::Runtime, ArchiveError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| ArchiveError::Url {
            url: url.to_owned(),
            why: e.to_string(),
        })
}

impl Archive {
    /// A local archive from a URL: `file:///abs/dir`, `file://relative/dir`, or a plain path.
    /// `s3://` URLs need [`Archive::connect`].
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
                "an s3:// archive needs a connection (Archive::connect)",
            ));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(bad(&format!(
                "unknown scheme {scheme:?}; expected file:// or s3://"
            )));
        }
        if url.is_empty() {
            return Err(bad("empty"));
        }
        Ok(Archive::Local(LocalArchive::new(PathBuf::from(url))))
    }

    /// Any archive from its URL; `s3://bucket/prefix` with `s3`'s settings.
    pub async fn connect(url: &str, s3: &S3Options) -> Result<Archive, ArchiveError> {
        if url.starts_with("s3://") {
            Ok(Archive::S3(S3Archive::connect(url, s3).await?))
        } else {
            Archive::from_url(url)
        }
    }

    /// Copies `file` in under `key`, verified, unless the key is taken (then it compares).
    pub(crate) async fn put(&self, file: &Path, key: &str) -> Result<Outcome, PutError> {
        validate_key(key).map_err(PutError::Key)?;
        match self {
            Archive::Local(local) => {
                let (local, file, key) = (local.clone(), file.to_owned(), key.to_owned());
                let copied = tokio::task::spawn_blocking(move || local.put(&file, &key)).await;
                match copied {
                    Ok(Ok(outcome)) => Ok(outcome),
                    Ok(Err(e)) => Err(io_failure(&e).into()),
                    Err(e) => Err(Failure {
                        message: e.to_string(),
                        retryable: false,
                    }
                    .into()),
                }
            }
            Archive::S3(s3) => s3.put(file, key).await,
        }
    }

    /// Whether `key` is in the archive.
    pub(crate) async fn has(&self, key: &str) -> Result<bool, Failure> {
        match self {
            Archive::Local(local) => Ok(local.root().join(key).is_file()),
            Archive::S3(s3) => s3.has(key).await,
        }
    }
}

impl Archive {
    /// Every key under `prefix`, with its size, in key order.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, Failure> {
        let mut keys = match self {
            Archive::Local(local) => local.list(prefix).map_err(|e| io_failure(&e))?,
            Archive::S3(s3) => s3.list(prefix).await?,
        };
        keys.sort();
        Ok(keys)
    }

    /// Streams `key` into `out`.
    pub(crate) async fn get(
        &self,
        key: &str,
        out: &mut (dyn io::Write + Send),
    ) -> Result<u64, Failure> {
        match self {
            Archive::Local(local) => {
                let mut file =
                    std::fs::File::open(local.root().join(key)).map_err(|e| io_failure(&e))?;
                io::copy(&mut file, out).map_err(|e| io_failure(&e))
            }
            Archive::S3(s3) => s3.get(key, out).await,
        }
    }

    /// Deletes `key` (the archive probe's own object only).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), Failure> {
        match self {
            Archive::Local(local) => {
                std::fs::remove_file(local.root().join(key)).map_err(|e| io_failure(&e))
            }
            Archive::S3(s3) => s3.delete(key).await,
        }
    }
}

fn io_failure(e: &io::Error) -> Failure {
    let retryable = !matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
    );
    Failure {
        message: e.to_string(),
        retryable,
    }
}

impl std::fmt::Display for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Archive::Local(local) => write!(f, "file://{}", local.root().display()),
            Archive::S3(s3) => f.write_str(s3.url()),
        }
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
}
