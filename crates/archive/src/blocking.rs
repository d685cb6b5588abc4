//! The archive from ordinary threads, one request at a time: listing keys, reading an object
//! whole, and putting a file under a key that must not be taken — for what is derived from
//! the archive and written beside it (the columnar mirror), where the [`crate::Uploader`]'s
//! queue and endless retries are not wanted: a failed put is said to the caller, who tries
//! again later.
//!
//! The same guarantees as the uploader's puts: a key once written is never replaced
//! (`link(2)` locally, `If-None-Match: *` on S3); the same bytes under a taken key are
//! success, other bytes [`ArchiveError::Conflict`].
//!
//! It never deletes anything.

use std::path::Path;

use tokio::runtime::Runtime;

use crate::{Archive, ArchiveError, ArchiveUrl, Outcome, PutError, S3Options};

/// What a put did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    /// The key was free: it holds the file now.
    Stored,
    /// The key held the same bytes already.
    AlreadyThere,
}

/// An archive, used from ordinary (non-async) threads.
pub struct BlockingArchive {
    runtime: Runtime,
    archive: Archive,
}

impl BlockingArchive {
    /// The archive at `url`; an S3 one with `s3`'s settings (no request is made yet).
    pub fn connect(url: &ArchiveUrl, s3: &S3Options) -> Result<Self, ArchiveError> {
        let runtime = crate::runtime(&url.to_string(), 1, "maillog-archive-direct")?;
        let archive = runtime.block_on(Archive::connect(url, s3))?;
        Ok(BlockingArchive { runtime, archive })
    }

    /// Every key under `prefix`, with its size, in key order (a missing local folder is an
    /// empty list).
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, ArchiveError> {
        self.runtime
            .block_on(self.archive.list(prefix))
            .map_err(|source| ArchiveError::List {
                archive: self.archive.to_string(),
                prefix: prefix.to_owned(),
                source,
            })
    }

    /// The whole object `key`.
    pub fn read(&self, key: &str) -> Result<Vec<u8>, ArchiveError> {
        let mut bytes = Vec::new();
        self.runtime
            .block_on(self.archive.get(key, &mut bytes))
            .map_err(|source| ArchiveError::Read {
                archive: self.archive.to_string(),
                key: key.to_owned(),
                source,
            })?;
        Ok(bytes)
    }

    /// Puts `file` under `key` unless the key is taken (see the module). Not retried.
    pub fn put_new(&self, file: &Path, key: &str) -> Result<Placed, ArchiveError> {
        let archive = self.archive.to_string();
        match self.runtime.block_on(self.archive.put(file, key)) {
            Ok(Outcome::Stored) => Ok(Placed::Stored),
            Ok(Outcome::AlreadyThere) => Ok(Placed::AlreadyThere),
            Ok(Outcome::Conflict) => Err(ArchiveError::Conflict {
                archive,
                key: key.to_owned(),
            }),
            Err(PutError::Key(source)) => Err(ArchiveError::Key {
                archive,
                key: key.to_owned(),
                source,
            }),
            Err(PutError::Failed(source)) => Err(ArchiveError::Put {
                archive,
                key: key.to_owned(),
                source,
            }),
        }
    }

    /// The local archive's root, where it is one.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.archive {
            Archive::Local(local) => Some(local.root()),
            Archive::S3(_) => None,
        }
    }
}

impl std::fmt::Display for BlockingArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.archive.fmt(f)
    }
}
