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

mod error;
pub mod key;
pub mod local;
mod pending;
pub mod read;
pub mod s3;
pub mod uploader;

use std::io;
use std::path::{Path, PathBuf};

pub(crate) use crate::error::PutError;
pub use crate::error::{ArchiveError, Cause, ProbeFailure, UrlError};
pub use crate::key::{KeyError, MAX_KEY_BYTES, validate_key};
pub use crate::local::LocalArchive;
pub use crate::read::{ObjectReader, S3Reader};
pub use crate::s3::{S3Archive, S3Error, S3Options, UploadOptions};
pub use crate::uploader::{Backoff, Done, Job, UploadStats, Uploader};

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
        .map_err(|source| ArchiveError::Runtime {
            url: url.to_owned(),
            source,
        })
}

impl Archive {
    /// A local archive from a URL: `file:///abs/dir`, `file://relative/dir`, or a plain path.
    /// `s3://` URLs need [`Archive::connect`].
    pub fn from_url(url: &str) -> Result<Archive, ArchiveError> {
        let bad = |why: UrlError| ArchiveError::Url {
            url: url.to_owned(),
            why,
        };
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(bad(UrlError::NoDirectory));
            }
            return Ok(Archive::Local(LocalArchive::new(PathBuf::from(path))));
        }
        if url.starts_with("s3://") {
            return Err(bad(UrlError::NeedsConnection));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(bad(UrlError::UnknownScheme {
                scheme: scheme.to_owned(),
            }));
        }
        if url.is_empty() {
            return Err(bad(UrlError::Empty));
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
                    Ok(Err(e)) => Err(Cause::Local(e).into()),
                    Err(e) => Err(Cause::Task(e).into()),
                }
            }
            Archive::S3(s3) => s3.put(file, key).await,
        }
    }

    /// Whether `key` is in the archive.
    pub(crate) async fn has(&self, key: &str) -> Result<bool, Cause> {
        match self {
            Archive::Local(local) => Ok(local.root().join(key).is_file()),
            Archive::S3(s3) => Ok(s3.has(key).await?),
        }
    }
}

impl Archive {
    /// Every key under `prefix`, with its size, in key order.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, Cause> {
        let mut keys = match self {
            Archive::Local(local) => local.list(prefix).map_err(Cause::Local)?,
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
    ) -> Result<u64, Cause> {
        match self {
            Archive::Local(local) => {
                let mut file = std::fs::File::open(local.root().join(key)).map_err(Cause::Local)?;
                io::copy(&mut file, out).map_err(Cause::Local)
            }
            Archive::S3(s3) => s3.get(key, out).await,
        }
    }

    /// Deletes `key` (the archive probe's own object only).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), Cause> {
        match self {
            Archive::Local(local) => {
                std::fs::remove_file(local.root().join(key)).map_err(Cause::Local)
            }
            Archive::S3(s3) => Ok(s3.delete(key).await?),
        }
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
