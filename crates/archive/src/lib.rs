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
//! the queries of `maillog top` and `maillog report`; [`BlockingArchive`] lists, reads and puts from
//! ordinary threads, for what is derived from the archive (the columnar mirror).

mod blocking;
mod error;
pub mod key;
pub mod local;
mod pending;
pub mod read;
pub mod s3;
pub mod uploader;
mod url;

use std::io;
use std::path::Path;

pub use crate::blocking::{BlockingArchive, Placed};
pub(crate) use crate::error::PutError;
pub use crate::error::{ArchiveError, Cause, ProbeFailure, UrlError};
pub use crate::key::{KeyError, MAX_KEY_BYTES, validate_key};
pub use crate::local::LocalArchive;
pub use crate::read::{ObjectReader, S3Reader};
pub use crate::s3::{Level, S3Archive, S3Error, S3Options, UploadOptions};
pub use crate::uploader::{Backoff, Done, Job, UploadStats, Uploader};
pub use crate::url::ArchiveUrl;

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
    /// The archive at `url`; an S3 one with `s3`'s settings (no request is made yet).
    pub async fn connect(url: &ArchiveUrl, s3: &S3Options) -> Result<Archive, ArchiveError> {
        match url {
            ArchiveUrl::Local(dir) => Ok(Archive::Local(LocalArchive::new(dir.clone()))),
            ArchiveUrl::S3 { bucket, prefix } => {
                Ok(Archive::S3(S3Archive::connect(bucket, prefix, s3).await?))
            }
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
