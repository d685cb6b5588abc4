//! What an S3 error means ([`S3Error`]): a message naming the code, the HTTP status and what to
//! check, whether trying again may help (throttling, 5xx, time-outs, lost connections) or not
//! (credentials, access, a missing bucket), and the SDK's error kept as its source. It never
//! retries anything itself and never logs.

use aws_sdk_s3::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStreamError;

/// Whether a conditional write was refused because the key is taken: 412 PreconditionFailed,
/// or 409 ConditionalRequestConflict (another write of the key at the same time).
pub(crate) fn key_taken<E: ProvideErrorMetadata>(
    error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    match error {
        SdkError::ServiceError(e) => {
            let status = e.raw().status().as_u16();
            status == 412
                || matches!(
                    e.err().code(),
                    Some("PreconditionFailed" | "ConditionalRequestConflict")
                )
        }
        _ => false,
    }
}

/// An S3 request failed: what the store said (its code, the HTTP status, what to check), or
/// why it could not be asked. The SDK's error is kept as the source.
#[derive(Debug)]
#[non_exhaustive]
pub enum S3Error {
    /// The store answered with an error.
    Refused {
        /// Its code (`AccessDenied`, `SlowDown`, …); for an answer without a body (HEAD), the
        /// one its status means.
        code: String,
        /// The HTTP status.
        status: u16,
        /// The bucket asked.
        bucket: String,
        /// What the store said, if it said anything.
        message: Option<String>,
        /// What to check, if anything (it begins with ` — `).
        hint: &'static str,
        /// Whether trying again may help.
        retryable: bool,
        /// The SDK's error.
        source: BoxError,
    },
    /// No answer in time.
    TimedOut {
        /// The SDK's error.
        source: BoxError,
    },
    /// The server could not be reached.
    Unreachable {
        /// `time-out`, `connection` or `dispatch`.
        how: &'static str,
        /// The SDK's error.
        source: BoxError,
    },
    /// The answer could not be read.
    BadResponse {
        /// The SDK's error.
        source: BoxError,
    },
    /// The request could not be made (never retried).
    Request {
        /// The SDK's error.
        source: BoxError,
    },
    /// An object's body broke off while it was read.
    BrokeOff {
        /// What was being read (`the download`, `reading the object back`).
        what: &'static str,
        /// Why.
        source: ByteStreamError,
    },
    /// CreateMultipartUpload answered without an upload id.
    NoUploadId,
    /// The store refused a key as taken, yet it is not there (a concurrent write?).
    TakenYetMissing {
        /// The object's key.
        key: String,
    },
}

impl S3Error {
    /// Whether trying again may help: throttling, 5xx, time-outs, lost connections, a damaged
    /// body — not credentials, access, a missing bucket or a request that cannot be made.
    pub fn retryable(&self) -> bool {
        match self {
            S3Error::Refused { retryable, .. } => *retryable,
            S3Error::TimedOut { .. }
            | S3Error::Unreachable { .. }
            | S3Error::BadResponse { .. }
            | S3Error::BrokeOff { .. }
            | S3Error::NoUploadId
            | S3Error::TakenYetMissing { .. } => true,
            S3Error::Request { .. } => false,
        }
    }

    /// Whether trying again cannot help.
    pub fn is_permanent(&self) -> bool {
        !self.retryable()
    }

    /// Whether the store says the bucket or the object is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, S3Error::Refused { status: 404, .. })
            || matches!(self, S3Error::Refused { code, .. }
                if matches!(code.as_str(), "NoSuchBucket" | "NoSuchKey" | "NotFound"))
    }

    /// The HTTP status of the store's answer, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            S3Error::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The store's error code, if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            S3Error::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            S3Error::Refused {
                code,
                status,
                bucket,
                message,
                hint,
                ..
            } => {
                write!(f, "{code} (HTTP {status}) in bucket {bucket}")?;
                if let Some(message) = message {
                    write!(f, ": {message}")?;
                }
                f.write_str(hint)
            }
            S3Error::TimedOut { .. } => f.write_str("timed out"),
            S3Error::Unreachable { how, .. } => write!(
                f,
                "cannot reach the server ({how}) — check the endpoint and the network"
            ),
            S3Error::BadResponse { .. } => f.write_str("unreadable response from the server"),
            S3Error::Request { source } => source.fmt(f),
            S3Error::BrokeOff { what, source } => write!(f, "{what} broke off: {source}"),
            S3Error::NoUploadId => f.write_str("no upload id in the answer"),
            S3Error::TakenYetMissing { key } => write!(
                f,
                "the store refused {key} as taken, yet it is not there (a concurrent write?); \
                 trying again"
            ),
        }
    }
}

impl std::error::Error for S3Error {
    /// Below what the message tells: the SDK's error under a classified answer (the message
    /// tells the code and status it carries, not its own words), else the source of the error
    /// whose words the message tells.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            S3Error::Refused { source, .. }
            | S3Error::TimedOut { source }
            | S3Error::Unreachable { source, .. }
            | S3Error::BadResponse { source } => Some(source.as_ref()),
            S3Error::Request { source } => source.source(),
            S3Error::BrokeOff { source, .. } => source.source(),
            S3Error::NoUploadId | S3Error::TakenYetMissing { .. } => None,
        }
    }
}

/// What the server said, and whether it is worth trying again; the SDK's error is kept.
pub(crate) fn classify<E>(
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    bucket: &str,
) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(e) => {
            // A HEAD answer has no body, so no code: the status says it then.
            let status = e.raw().status().as_u16();
            let code = e.err().code().unwrap_or(match status {
                403 => "AccessDenied",
                404 => "NoSuchBucket",
                500..=599 => "InternalError",
                _ => "unknown error",
            });
            let (retryable, hint) = match code {
                "SlowDown"
                | "RequestTimeout"
                | "InternalError"
                | "ServiceUnavailable"
                | "Throttling"
                | "ThrottlingException"
                | "RequestTimeTooSkewed" => (true, ""),
                "NoSuchBucket" | "NotFound" => {
                    (false, " — no such bucket: check its name and region")
                }
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "AccessDenied"
                | "ExpiredToken"
                | "InvalidToken" => (
                    false,
                    " — check the credentials (environment, profile or role) and the bucket's policy",
                ),
                "BadDigest" | "InvalidDigest" => (true, " — the object was damaged on the way"),
                "NotImplemented" => (
                    false,
                    " — the store does not implement this request (a put: set [s3] conditional_writes = false if it lacks If-None-Match)",
                ),
                _ => (false, ""),
            };
            S3Error::Refused {
                code: code.to_owned(),
                status,
                bucket: bucket.to_owned(),
                message: e
                    .err()
                    .message()
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned),
                hint,
                retryable,
                source: Box::new(error),
            }
        }
        SdkError::TimeoutError(_) => S3Error::TimedOut {
            source: Box::new(error),
        },
        SdkError::DispatchFailure(e) => S3Error::Unreachable {
            how: if e.is_timeout() {
                "time-out"
            } else if e.is_io() {
                "connection"
            } else {
                "dispatch"
            },
            source: Box::new(error),
        },
        SdkError::ResponseError(_) => S3Error::BadResponse {
            source: Box::new(error),
        },
        _ => S3Error::Request {
            source: Box::new(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_s3::operation::head_object::HeadObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    type HeadError = SdkError<HeadObjectError, HttpResponse>;

    /// The store's answer: `status`, with `code` and `message` in its body (none: a HEAD).
    fn answer(status: u16, code: Option<&str>, message: Option<&str>) -> HeadError {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        if let Some(message) = message {
            meta = meta.message(message);
        }
        // A status in 100..=999 is always valid.
        let status = status.try_into().expect("a valid status");
        SdkError::service_error(
            HeadObjectError::generic(meta.build()),
            HttpResponse::new(status, SdkBody::empty()),
        )
    }

    /// Every message of the chain below `e`, in order.
    fn below(e: &(dyn Error + 'static)) -> Vec<String> {
        let mut chain = Vec::new();
        let mut next = e.source();
        while let Some(e) = next {
            chain.push(e.to_string());
            next = e.source();
        }
        chain
    }

    #[test]
    fn what_retrying_can_fix_is_retried() {
        for (status, code) in [
            (503, Some("SlowDown")),
            (500, None),
            (400, Some("RequestTimeout")),
            (400, Some("BadDigest")),
        ] {
            let e = classify(answer(status, code, None), "b");
            assert!(e.retryable(), "{e}");
            assert!(!e.is_permanent(), "{e}");
        }
        let e = classify(HeadError::timeout_error("slow"), "b");
        assert!(e.retryable());
        assert_eq!(e.to_string(), "timed out");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = classify(
            HeadError::dispatch_failure(ConnectorError::io(refused.into())),
            "b",
        );
        assert!(e.retryable());
        assert_eq!(
            e.to_string(),
            "cannot reach the server (connection) — check the endpoint and the network"
        );
        // The SDK's error is kept: the reason the connection failed is in the chain.
        let chain = below(&e);
        assert!(
            chain.iter().any(|m| m.contains("connection refused")),
            "{chain:?}"
        );
        assert!(
            e.source()
                .is_some_and(|s| s.downcast_ref::<HeadError>().is_some())
        );
    }

    #[test]
    fn what_retrying_cannot_fix_is_permanent_and_says_what_to_check() {
        let e = classify(answer(403, None, None), "archive");
        assert!(e.is_permanent());
        assert_eq!((e.code(), e.status()), (Some("AccessDenied"), Some(403)));
        assert_eq!(
            e.to_string(),
            "AccessDenied (HTTP 403) in bucket archive — check the credentials (environment, \
             profile or role) and the bucket's policy"
        );
        let e = classify(
            answer(403, Some("InvalidAccessKeyId"), Some("no such key id")),
            "b",
        );
        assert!(e.is_permanent());
        assert!(
            e.to_string()
                .starts_with("InvalidAccessKeyId (HTTP 403) in bucket b: no such key id — check"),
            "{e}"
        );
        let e = classify(answer(404, None, None), "nope");
        assert!(e.is_permanent() && e.is_not_found());
        assert!(
            e.to_string()
                .ends_with("in bucket nope — no such bucket: check its name and region"),
            "{e}"
        );
        let e = classify(answer(501, Some("NotImplemented"), None), "b");
        assert!(e.is_permanent());
        assert!(e.to_string().contains("conditional_writes = false"), "{e}");
        let e = classify(HeadError::construction_failure("no region"), "b");
        assert!(e.is_permanent());
        assert!(!e.is_not_found());
    }

    #[test]
    fn a_taken_key_is_told_by_412_or_its_code() {
        assert!(key_taken(&answer(412, None, None)));
        assert!(key_taken(&answer(
            409,
            Some("ConditionalRequestConflict"),
            None
        )));
        assert!(!key_taken(&answer(409, Some("OperationAborted"), None)));
        assert!(!key_taken(&answer(403, None, None)));
    }

    #[test]
    fn an_archive_error_tells_the_store_once_and_keeps_the_sdk_error_below() {
        let e = crate::ArchiveError::Put {
            archive: "s3://archive/p".into(),
            key: "k".into(),
            source: classify(
                answer(403, Some("AccessDenied"), Some("Access Denied")),
                "archive",
            )
            .into(),
        };
        assert_eq!(
            e.to_string(),
            "archive s3://archive/p: cannot put k: AccessDenied (HTTP 403) in bucket archive: \
             Access Denied — check the credentials (environment, profile or role) and the \
             bucket's policy"
        );
        let chain = below(&e);
        assert_eq!(chain.first().map(String::as_str), Some("service error"));
        assert!(!chain.iter().any(|m| m.contains("HTTP 403")), "{chain:?}");
        assert!(e.is_permanent() && !e.is_not_found() && !e.is_disk_full());
    }
}
