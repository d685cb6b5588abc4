//! The archive's errors: what failed ([`ArchiveError`]: the archive, the key, the operation)
//! and why ([`Cause`]: the local file system, a file maillog reads, or the S3 store), each
//! keeping the error it came from — the `std::io::Error`, the SDK's error — typed, so that a
//! caller asks [`ArchiveError::is_disk_full`], [`ArchiveError::is_not_found`] or
//! [`ArchiveError::is_permanent`] instead of reading a message.
//!
//! One rule for the messages, here and in [`crate::s3::S3Error`]: an error's message tells its
//! own words and then what its cause says, one line that reads whole in a log (`{e}`);
//! [`Error::source`] is the first error below whose words the message does not tell (the
//! SDK's error under the S3 store's answer, the I/O error under a broken download), so
//! `anyhow`'s `{:#}` adds only what is new and never repeats a line. This module never logs,
//! never retries and never decides what a caller does about an error.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::key::KeyError;
use crate::s3::S3Error;

/// An archive operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The URL names no archive this build knows.
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: UrlError,
    },
    /// The archive's runtime (its threads) could not be started.
    Runtime {
        /// The archive's URL.
        url: String,
        /// Why.
        source: io::Error,
    },
    /// Copying a file in failed.
    Put {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
        /// Why.
        source: Cause,
    },
    /// The key holds other bytes than the file: the archive is append-only, the object stays
    /// as it is. Never retried: the caller puts the records under another key.
    Conflict {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
    },
    /// The key can never be written (refused before any request).
    Key {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
        /// What is wrong with it.
        source: KeyError,
    },
    /// Asking whether a key exists failed.
    Lookup {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
        /// Why.
        source: Cause,
    },
    /// Asking whether a key exists failed, and the caller stopped waiting for an answer.
    Stopped {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
        /// Why the last try failed.
        source: Cause,
    },
    /// Listing the keys under a prefix failed.
    List {
        /// The archive.
        archive: String,
        /// The key prefix.
        prefix: String,
        /// Why.
        source: Cause,
    },
    /// Reading an object back failed.
    Read {
        /// The archive.
        archive: String,
        /// The key.
        key: String,
        /// Why.
        source: Cause,
    },
    /// A step of the archive probe ([`crate::Uploader::probe`]) failed.
    Probe {
        /// The archive.
        archive: String,
        /// The probe's key.
        key: String,
        /// The step, such as `put` or `read back`.
        step: &'static str,
        /// What went wrong.
        source: ProbeFailure,
    },
}

impl ArchiveError {
    /// Why it failed, where an operation of the archive failed.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            ArchiveError::Put { source, .. }
            | ArchiveError::Lookup { source, .. }
            | ArchiveError::Stopped { source, .. }
            | ArchiveError::List { source, .. }
            | ArchiveError::Read { source, .. }
            | ArchiveError::Probe {
                source: ProbeFailure::Failed(source),
                ..
            } => Some(source),
            _ => None,
        }
    }

    /// Whether a file system was full (or over quota): waiting for room may fix it.
    pub fn is_disk_full(&self) -> bool {
        match self {
            ArchiveError::Runtime { source, .. } => is_disk_full(source),
            _ => self.cause().is_some_and(Cause::is_disk_full),
        }
    }

    /// Whether what was asked for is not there: a missing bucket, object or file.
    pub fn is_not_found(&self) -> bool {
        self.cause().is_some_and(Cause::is_not_found)
    }

    /// Whether trying the same again cannot help: a bad URL or key, a taken key, refused
    /// credentials or access, a missing bucket, an unreadable file.
    pub fn is_permanent(&self) -> bool {
        match self {
            ArchiveError::Url { .. } | ArchiveError::Conflict { .. } | ArchiveError::Key { .. } => {
                true
            }
            ArchiveError::Runtime { .. } => false,
            ArchiveError::Probe { source, .. } => {
                !matches!(source, ProbeFailure::Failed(cause) if cause.retryable())
            }
            _ => self.cause().is_some_and(|cause| !cause.retryable()),
        }
    }
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::Url { url, why } => write!(f, "archive URL {url:?}: {why}"),
            ArchiveError::Runtime { url, source } => {
                write!(f, "archive {url}: cannot start its threads: {source}")
            }
            ArchiveError::Put {
                archive,
                key,
                source,
            } => write!(f, "archive {archive}: cannot put {key}: {source}"),
            ArchiveError::Conflict { archive, key } => write!(
                f,
                "archive {archive}: {key} is already archived with other bytes; the archive is \
                 append-only, it stays as it is"
            ),
            ArchiveError::Key {
                archive,
                key,
                source,
            } => write!(f, "archive {archive}: cannot put {key:?}: {source}"),
            ArchiveError::Lookup {
                archive,
                key,
                source,
            } => write!(f, "archive {archive}: cannot look up {key}: {source}"),
            ArchiveError::Stopped {
                archive,
                key,
                source,
            } => write!(
                f,
                "archive {archive}: cannot look up {key}: {source}; stopped waiting for an answer"
            ),
            ArchiveError::List {
                archive,
                prefix,
                source,
            } => write!(
                f,
                "archive {archive}: cannot list the keys under {prefix:?}: {source}"
            ),
            ArchiveError::Read {
                archive,
                key,
                source,
            } => write!(f, "archive {archive}: cannot read {key}: {source}"),
            ArchiveError::Probe {
                archive,
                key,
                step,
                source,
            } => write!(
                f,
                "archive {archive}: the probe with {key} failed: {step}: {source}"
            ),
        }
    }
}

impl Error for ArchiveError {
    /// Below what the message tells (see the module's rule).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ArchiveError::Runtime { source, .. } => source.source(),
            ArchiveError::Probe { source, .. } => source.source(),
            _ => self.cause().and_then(Error::source),
        }
    }
}

/// What is wrong with an archive URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// `file://` and nothing after it.
    #[error("no directory after file://")]
    NoDirectory,
    /// Neither `file://` nor `s3://`.
    #[error("unknown scheme {scheme:?}; expected file:// or s3://")]
    UnknownScheme {
        /// The scheme given.
        scheme: String,
    },
    /// The URL is empty.
    #[error("empty")]
    Empty,
    /// `s3://` and no bucket.
    #[error("no bucket after s3://")]
    NoBucket,
    /// The key prefix after the bucket can never be written.
    #[error("the key prefix {prefix:?}: {why}")]
    Prefix {
        /// The prefix.
        prefix: String,
        /// What is wrong with it.
        why: KeyError,
    },
}

/// Why an operation of the archive failed: the error it came from, typed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Cause {
    /// The local archive's file system failed (a copy, a link, a listing, a read). Retried
    /// unless access is denied or the input is invalid.
    Local(io::Error),
    /// A file maillog reads to send or compare could not be read. Never retried: the spool's
    /// file is gone or unreadable.
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// What a download is written into refused it. Never retried.
    Output(io::Error),
    /// The S3 store refused, or could not be reached (boxed: its answer is big).
    S3(Box<S3Error>),
    /// The task that ran a local copy ended without an answer (it panicked). Never retried.
    Task(tokio::task::JoinError),
}

impl Cause {
    /// Whether trying again may help.
    pub fn retryable(&self) -> bool {
        match self {
            // A local archive's folder that cannot be written: only the operator fixes that
            // (a full disk can free itself, a mount can come back).
            Cause::Local(e) => !matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::IsADirectory
                    | io::ErrorKind::ReadOnlyFilesystem
                    | io::ErrorKind::InvalidFilename
            ),
            Cause::File { .. } | Cause::Output(_) | Cause::Task(_) => false,
            Cause::S3(e) => e.retryable(),
        }
    }

    /// The I/O error, where a file failed.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Cause::Local(e) | Cause::File { source: e, .. } | Cause::Output(e) => Some(e),
            Cause::S3(_) | Cause::Task(_) => None,
        }
    }

    /// The S3 store's error, where the store failed.
    pub fn s3_error(&self) -> Option<&S3Error> {
        match self {
            Cause::S3(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// Whether a file system was full (or over quota).
    pub fn is_disk_full(&self) -> bool {
        self.io_error().is_some_and(is_disk_full)
    }

    /// Whether what was asked for is not there: a missing bucket, object or file.
    pub fn is_not_found(&self) -> bool {
        match self {
            Cause::S3(e) => e.is_not_found(),
            _ => self
                .io_error()
                .is_some_and(|e| e.kind() == io::ErrorKind::NotFound),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Local(e) => e.fmt(f),
            Cause::File { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Cause::Output(e) => write!(f, "cannot write what was read: {e}"),
            Cause::S3(e) => e.fmt(f),
            Cause::Task(e) => write!(f, "the copy did not finish: {e}"),
        }
    }
}

impl Error for Cause {
    /// Below what the message tells (see the module's rule).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Cause::Local(e) | Cause::File { source: e, .. } | Cause::Output(e) => e.source(),
            Cause::S3(e) => e.source(),
            Cause::Task(e) => e.source(),
        }
    }
}

impl From<S3Error> for Cause {
    fn from(e: S3Error) -> Self {
        Cause::S3(Box::new(e))
    }
}

/// What the archive probe found wrong at one step.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProbeFailure {
    /// The archive (or the local probe file) failed.
    Failed(Cause),
    /// The probe's key can never be written.
    Key(KeyError),
    /// The new key held other bytes already.
    Taken,
    /// The object is not there after the put.
    Missing,
    /// What was read back differs from what was put.
    Differs,
    /// The store ignores `If-None-Match: *`: other bytes replaced the object.
    ConditionsIgnored,
    /// Other bytes under the same key were not refused.
    NotRefused {
        /// What the put answered.
        outcome: &'static str,
        /// Whether the object was replaced.
        replaced: bool,
    },
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::Failed(cause) => cause.fmt(f),
            ProbeFailure::Key(e) => e.fmt(f),
            ProbeFailure::Taken => f.write_str("the new key holds other bytes already"),
            ProbeFailure::Missing => f.write_str("the object is not there after the put"),
            ProbeFailure::Differs => f.write_str("the content differs"),
            ProbeFailure::ConditionsIgnored => f.write_str(
                "the store ignores them: other bytes put under the same key with \
                 If-None-Match: * replaced the object; set [s3] conditional_writes = false \
                 (each put then looks the key up first)",
            ),
            ProbeFailure::NotRefused { outcome, replaced } => write!(
                f,
                "expected a refusal, got {outcome}; the object {}",
                if *replaced { "replaced" } else { "unchanged" }
            ),
        }
    }
}

impl Error for ProbeFailure {
    /// Below what the message tells (see the module's rule).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ProbeFailure::Failed(cause) => cause.source(),
            _ => None,
        }
    }
}

impl From<Cause> for ProbeFailure {
    fn from(cause: Cause) -> Self {
        ProbeFailure::Failed(cause)
    }
}

/// Why a put did not happen.
#[derive(Debug)]
pub(crate) enum PutError {
    /// The key can never be written.
    Key(KeyError),
    /// Anything else, retryable or not.
    Failed(Cause),
}

impl From<Cause> for PutError {
    fn from(cause: Cause) -> Self {
        PutError::Failed(cause)
    }
}

impl From<S3Error> for PutError {
    fn from(e: S3Error) -> Self {
        PutError::Failed(e.into())
    }
}

impl From<PutError> for ProbeFailure {
    fn from(e: PutError) -> Self {
        match e {
            PutError::Key(e) => ProbeFailure::Key(e),
            PutError::Failed(cause) => ProbeFailure::Failed(cause),
        }
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(source: Cause) -> ArchiveError {
        ArchiveError::Put {
            archive: "file:///a".into(),
            key: "k".into(),
            source,
        }
    }

    #[test]
    fn an_io_cause_is_told_in_the_message_and_asked_by_kind() {
        let full = put(Cause::Local(io::Error::from(io::ErrorKind::StorageFull)));
        assert!(full.is_disk_full() && !full.is_permanent() && !full.is_not_found());
        let said = full.to_string();
        assert!(
            said.starts_with("archive file:///a: cannot put k: "),
            "{said}"
        );
        assert!(
            said.len() > "archive file:///a: cannot put k: ".len(),
            "{said}"
        );
        assert!(
            full.source().is_none(),
            "nothing below what the message tells"
        );

        let gone = put(Cause::File {
            path: "/spool/x".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        });
        assert!(gone.is_not_found() && gone.is_permanent() && !gone.is_disk_full());
        assert!(
            gone.to_string()
                .starts_with("archive file:///a: cannot put k: cannot read /spool/x: "),
            "{gone}"
        );
        let denied = put(Cause::Local(io::Error::from(
            io::ErrorKind::PermissionDenied,
        )));
        assert!(denied.is_permanent());
        for kind in [
            io::ErrorKind::NotADirectory,
            io::ErrorKind::ReadOnlyFilesystem,
        ] {
            assert!(
                put(Cause::Local(io::Error::from(kind))).is_permanent(),
                "{kind:?}"
            );
        }
        let unmounted = put(Cause::Local(io::Error::from(io::ErrorKind::NotFound)));
        assert!(!unmounted.is_permanent(), "a mount may come back");
    }

    /// An error that tells its own words and keeps what it came from.
    #[derive(Debug, thiserror::Error)]
    #[error("the mount went away")]
    struct Mount(#[source] io::Error);

    #[test]
    fn what_the_message_does_not_tell_is_the_source() {
        let reset = || io::Error::from(io::ErrorKind::ConnectionReset);
        let e = put(Cause::Local(io::Error::other(Mount(reset()))));
        assert!(
            e.to_string().ends_with("cannot put k: the mount went away"),
            "{e}"
        );
        let below = e.source().map(ToString::to_string);
        assert_eq!(below, Some(reset().to_string()));
    }

    #[test]
    fn findings_are_permanent_and_told_in_the_message() {
        let key = ArchiveError::Key {
            archive: "s3://b".into(),
            key: "a//b".into(),
            source: KeyError::EmptySegment,
        };
        assert!(key.is_permanent() && key.source().is_none());
        assert!(key.to_string().contains("empty segment"), "{key}");
        let probe = ArchiveError::Probe {
            archive: "s3://b".into(),
            key: ".maillog-probe/p".into(),
            step: "read back",
            source: ProbeFailure::Differs,
        };
        assert!(probe.is_permanent());
        assert_eq!(
            probe.to_string(),
            "archive s3://b: the probe with .maillog-probe/p failed: read back: the content differs"
        );
        let url = ArchiveError::Url {
            url: "ftp://x".into(),
            why: UrlError::UnknownScheme {
                scheme: "ftp".into(),
            },
        };
        assert!(url.is_permanent());
        assert!(url.to_string().contains("unknown scheme \"ftp\""), "{url}");
    }
}
