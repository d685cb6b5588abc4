//! The S3 backend: `s3://bucket/prefix`, through aws-sdk-s3.
//!
//! Credentials and region come from the standard AWS chain (environment, shared profile files,
//! web identity, instance metadata); none is ever in `pipeline.toml` or in a log line. For
//! S3-compatible stores an endpoint URL and path-style addressing are settings. Every object is
//! sent with a Content-MD5 the server verifies (and the SDK's CRC32 where it sends one). Errors
//! are classified: what retrying can fix (throttling, 5xx, time-outs, lost connections) and what
//! it cannot (credentials, access, a missing bucket), the latter with a hint at what to check.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};
use base64::Engine;
use md5::{Digest, Md5};

use crate::ArchiveError;

/// How to reach the store (besides the credentials, which come from the AWS chain).
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// The region; default: the AWS chain's, else `us-east-1`.
    pub region: Option<String>,
    /// An S3-compatible store's URL, such as `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need.
    pub path_style: bool,
    /// A profile of the shared AWS config files.
    pub profile: Option<String>,
    /// Send the SDK's own request checksums (CRC32) only where an operation requires them:
    /// for S3-compatible stores that reject them. Content-MD5 is sent either way.
    pub checksum_when_required: bool,
    /// How objects are written.
    pub upload: UploadOptions,
    /// Fixed credentials (access key, secret) instead of the AWS chain: for embedding and
    /// tests. `pipeline.toml` has no way to set them.
    pub static_credentials: Option<(String, String)>,
}

/// How objects are written.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    /// Files bigger than this go up in parts (default 64 MiB).
    pub multipart_threshold: u64,
    /// The part size (default 16 MiB; at least 5 MiB).
    pub part_size: u64,
    /// `STANDARD`, `STANDARD_IA`, `GLACIER_IR`, … (default: the bucket's).
    pub storage_class: Option<String>,
    /// `AES256` or `aws:kms`.
    pub sse: Option<String>,
    /// The KMS key for `aws:kms`.
    pub sse_kms_key_id: Option<String>,
    /// Object tags.
    pub tags: Vec<(String, String)>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            multipart_threshold: 64 << 20,
            part_size: 16 << 20,
            storage_class: None,
            sse: None,
            sse_kms_key_id: None,
            tags: Vec::new(),
        }
    }
}

impl UploadOptions {
    /// The tags as S3 wants them: `k1=v1&k2=v2`, URL-encoded.
    fn tagging(&self) -> Option<String> {
        (!self.tags.is_empty()).then(|| {
            let encode = |s: &str| -> String {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect()
            };
            let pairs: Vec<String> = self
                .tags
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            pairs.join("&")
        })
    }
}

/// The Content-MD5 of `length` bytes of `file` from `offset`, read in small pieces: a window
/// file is never held in memory whole (a 5-minute window at 10,000 lines/s is ~30 MB).
async fn content_md5(file: &Path, offset: u64, length: u64) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(file).await?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut f = f.take(length);
    let (mut md5, mut buf) = (Md5::new(), vec![0u8; 256 << 10]);
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(md5.finalize()))
}

/// A body streamed from `length` bytes of `file` at `offset`, and its Content-MD5.
async fn file_body(
    file: &Path,
    offset: u64,
    length: u64,
) -> Result<(ByteStream, String), S3Failure> {
    let unreadable = |e: &dyn std::fmt::Display| S3Failure {
        message: format!("cannot read {}: {e}", file.display()),
        retryable: false,
    };
    let md5 = content_md5(file, offset, length)
        .await
        .map_err(|e| unreadable(&e))?;
    let body = ByteStream::read_from()
        .path(file)
        .offset(offset)
        .length(Length::Exact(length))
        .build()
        .await
        .map_err(|e| unreadable(&e))?;
    Ok((body, md5))
}

/// A bucket and key prefix.
#[derive(Clone, Debug)]
pub struct S3Archive {
    client: Client,
    upload: UploadOptions,
    bucket: String,
    prefix: String,
    url: String,
    /// The bucket answered once: no need to ask again.
    bucket_seen: Arc<AtomicBool>,
}

/// Why a put or a head failed, and whether trying again may help.
#[derive(Debug)]
pub(crate) struct S3Failure {
    pub message: String,
    pub retryable: bool,
}

impl S3Archive {
    /// Connects (no request is made yet) to `s3://bucket[/prefix]`.
    pub async fn connect(url: &str, options: &S3Options) -> Result<S3Archive, ArchiveError> {
        let bad = |why: &str| ArchiveError::Url {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket after s3://"));
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some((key, secret)) = &options.static_credentials {
            let credentials =
                aws_sdk_s3::config::Credentials::new(key, secret, None, None, "maillog-static");
            loader = loader.credentials_provider(credentials);
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared);
        if shared.region().is_none() {
            config = config.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        config = config.force_path_style(options.path_style);
        if options.checksum_when_required {
            config = config.request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            );
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(S3Archive {
            client: Client::from_conf(config.build()),
            upload: options.upload.clone(),
            bucket: bucket.to_owned(),
            prefix,
            url: url.trim_end_matches('/').to_owned(),
            bucket_seen: Arc::default(),
        })
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Asks for the bucket (once): some S3-compatible stores would create a missing bucket on
    /// the first put, and a misspelt bucket must be an error, not a new bucket.
    async fn check_bucket(&self) -> Result<(), S3Failure> {
        if self.bucket_seen.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| classify(&e, &self.bucket))?;
        self.bucket_seen.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Uploads `file` as `key`, with a Content-MD5 the server checks.
    pub(crate) async fn put(&self, file: &Path, key: &str) -> Result<(), S3Failure> {
        self.check_bucket().await?;
        let size = tokio::fs::metadata(file)
            .await
            .map_err(|e| S3Failure {
                message: format!("cannot read {}: {e}", file.display()),
                retryable: false,
            })?
            .len();
        if size > self.upload.multipart_threshold {
            return self.put_multipart(file, size, key).await;
        }
        let (body, md5) = file_body(file, 0, size).await?;
        let u = &self.upload;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .content_md5(md5)
            .set_storage_class(u.storage_class.as_deref().map(StorageClass::from))
            .set_server_side_encryption(u.sse.as_deref().map(ServerSideEncryption::from))
            .set_ssekms_key_id(u.sse_kms_key_id.clone())
            .set_tagging(u.tagging())
            .body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, &self.bucket))
    }

    /// A big file in parts (each but the last at least 5 MiB, each with its Content-MD5). A
    /// failed upload is aborted so that no parts are left behind.
    async fn put_multipart(&self, file: &Path, size: u64, key: &str) -> Result<(), S3Failure> {
        let (bucket, key, u) = (&self.bucket, self.object_key(key), &self.upload);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(&key)
            .set_storage_class(u.storage_class.as_deref().map(StorageClass::from))
            .set_server_side_encryption(u.sse.as_deref().map(ServerSideEncryption::from))
            .set_ssekms_key_id(u.sse_kms_key_id.clone())
            .set_tagging(u.tagging())
            .send()
            .await
            .map_err(|e| classify(&e, bucket))?;
        let Some(upload_id) = created.upload_id() else {
            return Err(S3Failure {
                message: "no upload id in the answer".into(),
                retryable: true,
            });
        };
        let mut parts = Vec::new();
        let part_size = u.part_size.max(5 << 20);
        let starts = (0..size).step_by(usize::try_from(part_size).unwrap_or(usize::MAX));
        for (i, start) in starts.enumerate() {
            let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let (body, md5) = match file_body(file, start, part_size.min(size - start)).await {
                Ok(part) => part,
                Err(e) => {
                    self.abort(&key, upload_id).await;
                    return Err(e);
                }
            };
            let sent = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(&key)
                .upload_id(upload_id)
                .part_number(number)
                .content_md5(md5)
                .body(body)
                .send()
                .await;
            match sent {
                Ok(part) => parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .build(),
                ),
                Err(e) => {
                    self.abort(&key, upload_id).await;
                    return Err(classify(&e, bucket));
                }
            }
        }
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(&key)
            .upload_id(upload_id)
            .multipart_upload(done)
            .send()
            .await;
        if let Err(e) = completed {
            self.abort(&key, upload_id).await;
            return Err(classify(&e, bucket));
        }
        Ok(())
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            tracing::warn!(
                "archive {}: cannot abort the multipart upload of {key}: {e}",
                self.url
            );
        }
    }

    /// Every key under `prefix` (relative to the archive's prefix) with its size.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, S3Failure> {
        self.check_bucket().await?;
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.object_key(prefix))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(&e, &self.bucket))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push((key.to_owned(), object.size().unwrap_or(0).max(0) as u64));
                }
            }
        }
        Ok(keys)
    }

    /// Asks for the object `key`: its body, to be streamed.
    pub(crate) async fn body(&self, key: &str) -> Result<ByteStream, S3Failure> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| classify(&e, &self.bucket))?;
        Ok(object.body)
    }

    /// Streams the object `key` into `out`; returns its length.
    pub(crate) async fn get(
        &self,
        key: &str,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, S3Failure> {
        let mut body = self.body(key).await?;
        let mut length = 0;
        while let Some(bytes) = body.try_next().await.map_err(|e| S3Failure {
            message: format!("the download broke off: {e}"),
            retryable: true,
        })? {
            out.write_all(&bytes).map_err(|e| S3Failure {
                message: e.to_string(),
                retryable: false,
            })?;
            length += bytes.len() as u64;
        }
        Ok(length)
    }

    /// Deletes `key`.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), S3Failure> {
        let delete = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key));
        delete
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, &self.bucket))
    }

    /// Whether `key` exists.
    pub(crate) async fn has(&self, key: &str) -> Result<bool, S3Failure> {
        self.check_bucket().await?;
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key));
        match head.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(false),
            Err(e) => Err(classify(&e, &self.bucket)),
        }
    }
}

/// What the server said, and whether it is worth trying again.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    bucket: &str,
) -> S3Failure {
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
                _ => (false, ""),
            };
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            S3Failure {
                message: format!("{code} (HTTP {status}) in bucket {bucket}{said}{hint}"),
                retryable,
            }
        }
        SdkError::TimeoutError(_) => S3Failure {
            message: "timed out".into(),
            retryable: true,
        },
        SdkError::DispatchFailure(e) => S3Failure {
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
        SdkError::ResponseError(_) => S3Failure {
            message: "unreadable response from the server".into(),
            retryable: true,
        },
        other => S3Failure {
            message: format!("{other}"),
            retryable: false,
        },
    }
}
