//! What an S3 error means: a message naming the code, the HTTP status and what to check, and
//! whether trying again may help (throttling, 5xx, time-outs, lost connections) or not
//! (credentials, access, a missing bucket). It never retries anything itself.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::Failure;

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

/// What the server said, and whether it is worth trying again.
pub(crate) fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    bucket: &str,
) -> Failure {
    match error {
        SdkError::ServiceError(e) => {
            // A HEAD answer has no body, so no code: the status says it then.
            let status = e.raw().status().as_u16();
            let code = e.err().code().unwrap_or(match status {
                403 => "AccessDenied",
                404 => "NoSuchBucket",
                500..=599 => "InternalError",
                _ => "unknown error",
            });
            let said = e.err().message().unwrap_or("");
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
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            Failure {
                message: format!("{code} (HTTP {status}) in bucket {bucket}{said}{hint}"),
                retryable,
            }
        }
        SdkError::TimeoutError(_) => Failure {
            message: "timed out".into(),
            retryable: true,
        },
        SdkError::DispatchFailure(e) => Failure {
            message: format!(
                "cannot reach the server ({}) — check the endpoint and the network",
                if e.is_timeout() {
                    "time-out"
                } else if e.is_io() {
                    "connection"
                } else {
                    "dispatch"
                }
            ),
            retryable: true,
        },
        SdkError::ResponseError(_) => Failure {
            message: "unreadable response from the server".into(),
            retryable: true,
        },
        other => Failure {
            message: format!("{other}"),
            retryable: false,
        },
    }
}
