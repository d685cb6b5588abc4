//! The S3 backend: `s3://bucket/prefix`, through aws-sdk-s3.
//!
//! Credentials and region come from the standard AWS chain (environment, shared profile files,
//! web identity, instance metadata); none is ever in `pipeline.toml` or in a log line. For
//! S3-compatible stores an endpoint URL and path-style addressing are settings. Every object is
//! sent with a Content-MD5 the server verifies (and the SDK's CRC32 where it sends one). Errors
//! are classified: what retrying can fix (throttling, 5xx, time-outs, lost connections) and what
//! it cannot (credentials, access, a missing bucket), the latter with a hint at what to check
//! ([`S3Error`], which keeps the SDK's error as its source).
//!
//! Append-only: every write is conditional (`If-None-Match: *` on PutObject and on
//! CompleteMultipartUpload), so a taken key is refused by the store itself; the object is then
//! read back and compared with the file ([`compare`]): same bytes is a put repeated after a
//! crash, other bytes a conflict. For a store that ignores the condition
//! ([`S3Options::conditional_writes`] false) the key is looked up before each write instead,
//! which a second writer of the same key at the same instant could slip past. Multipart
//! uploads are recorded while in flight ([`multipart`]) so that one a kill cut off is aborted at
//! the next start. It never deletes or overwrites an archived object (the archive probe's own
//! object aside).

mod classify;
mod compare;
mod multipart;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{ServerSideEncryption, StorageClass};
use base64::Engine;
use md5::{Digest, Md5};

pub use self::classify::S3Error;
use self::classify::{classify, key_taken};
use crate::pending::Pending;
use crate::{ArchiveError, Cause, Outcome, PutError, UrlError, validate_key};

/// How to reach the store (besides the credentials, which come from the AWS chain).
#[derive(Clone, Debug, PartialEq)]
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
    /// Writes carry `If-None-Match: *`, so that the store refuses a taken key (default true;
    /// AWS S3 and most compatible stores honour it). False for a store that ignores it: each
    /// put then looks the key up first.
    pub conditional_writes: bool,
    /// Where multipart uploads in flight are recorded (one small file each), so that
    /// [`crate::Uploader::start`] aborts the ones a kill cut off. `None`: not recorded (for a
    /// one-off like `maillog check`, which must not abort a running service's uploads).
    pub state_dir: Option<PathBuf>,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            region: None,
            endpoint: None,
            path_style: false,
            profile: None,
            checksum_when_required: false,
            upload: UploadOptions::default(),
            static_credentials: None,
            conditional_writes: true,
            state_dir: None,
        }
    }
}

/// How objects are written.
#[derive(Clone, Debug, PartialEq)]
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
async fn file_body(file: &Path, offset: u64, length: u64) -> Result<(ByteStream, String), Cause> {
    let md5 = content_md5(file, offset, length)
        .await
        .map_err(|e| unreadable(file, e))?;
    let body = ByteStream::read_from()
        .path(file)
        .offset(offset)
        .length(Length::Exact(length))
        .build()
        .await
        .map_err(|e| unreadable(file, e.into()))?;
    Ok((body, md5))
}

/// `file` could not be read (never retried).
fn unreadable(file: &Path, source: std::io::Error) -> Cause {
    Cause::File {
        path: file.to_owned(),
        source,
    }
}

/// One level of a listing with a delimiter: its folders and its objects.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Level {
    /// Keys of the folders (common prefixes), each ending in `/`.
    pub folders: Vec<String>,
    /// Keys of the objects, with their sizes.
    pub objects: Vec<(String, u64)>,
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
    /// Writes carry `If-None-Match: *`.
    conditional: bool,
    /// Where multipart uploads in flight are recorded.
    pending: Option<Arc<Pending>>,
}

/// Why a write did not happen.
enum Refused {
    /// The store says the key is taken.
    Taken,
    /// Anything else.
    Failed(Cause),
}

impl From<Cause> for Refused {
    fn from(cause: Cause) -> Self {
        Refused::Failed(cause)
    }
}

impl From<S3Error> for Refused {
    fn from(e: S3Error) -> Self {
        Refused::Failed(e.into())
    }
}

impl S3Archive {
    /// Connects (no request is made yet) to `bucket`, keys under `prefix` (see
    /// [`crate::ArchiveUrl::S3`]).
    pub async fn connect(
        bucket: &str,
        prefix: &str,
        options: &S3Options,
    ) -> Result<S3Archive, ArchiveError> {
        let url = crate::ArchiveUrl::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }
        .to_string();
        let bad = |why: UrlError| ArchiveError::Url {
            url: url.clone(),
            why,
        };
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
        if !prefix.is_empty()
            && let Err(e) = validate_key(prefix)
        {
            return Err(bad(UrlError::Prefix {
                prefix: prefix.to_owned(),
                why: e,
            }));
        }
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
            url,
            bucket_seen: Arc::default(),
            conditional: options.conditional_writes,
            pending: options
                .state_dir
                .clone()
                .map(|dir| Arc::new(Pending::new(dir))),
        })
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether writes carry `If-None-Match: *`.
    pub fn conditional_writes(&self) -> bool {
        self.conditional
    }

    fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Asks for the bucket (once): some S3-compatible stores would create a missing bucket on
    /// the first put, and a misspelt bucket must be an error, not a new bucket.
    async fn check_bucket(&self) -> Result<(), S3Error> {
        if self.bucket_seen.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| classify(e, &self.bucket))?;
        self.bucket_seen.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Uploads `file` as `key`, with a Content-MD5 the server checks, unless the key is taken:
    /// then the object is compared with the file and stays as it is.
    pub(crate) async fn put(&self, file: &Path, key: &str) -> Result<Outcome, PutError> {
        let object_key = self.object_key(key);
        validate_key(&object_key).map_err(PutError::Key)?;
        self.check_bucket().await?;
        let size = tokio::fs::metadata(file)
            .await
            .map_err(|e| unreadable(file, e))?
            .len();
        let multipart = size > self.upload.multipart_threshold;
        // Looking first is the only guard where conditions are off; before a multipart upload
        // it also spares sending every part of a file that is already there.
        if (multipart || !self.conditional)
            && let Some(outcome) = self.compare(file, size, &object_key).await?
        {
            return Ok(outcome);
        }
        let written = if multipart {
            self.put_multipart(file, size, &object_key).await
        } else {
            self.put_single(file, size, &object_key).await
        };
        match written {
            Ok(()) => Ok(Outcome::Stored),
            // A store may answer 412 before it has read the body and close the connection
            // while the body is still on its way (s3s-fs does): the client sees the connection
            // break, not the answer. Or the object arrived and the answer was lost. Either way
            // a look tells; retrying the same put would break the same way.
            Err(Refused::Failed(cause)) if cause.retryable() && self.conditional && !multipart => {
                match self.compare(file, size, &object_key).await {
                    Ok(Some(outcome)) => Ok(outcome),
                    Ok(None) | Err(_) => Err(cause.into()),
                }
            }
            Err(Refused::Failed(cause)) => Err(cause.into()),
            Err(Refused::Taken) => match self.compare(file, size, &object_key).await? {
                Some(outcome) => Ok(outcome),
                None => Err(S3Error::TakenYetMissing { key: object_key }.into()),
            },
        }
    }

    /// One PutObject.
    async fn put_single(&self, file: &Path, size: u64, object_key: &str) -> Result<(), Refused> {
        let (body, md5) = file_body(file, 0, size).await?;
        let u = &self.upload;
        let sent = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object_key)
            .content_md5(md5)
            .set_if_none_match(self.conditional.then(|| "*".to_owned()))
            .set_storage_class(u.storage_class.as_deref().map(StorageClass::from))
            .set_server_side_encryption(u.sse.as_deref().map(ServerSideEncryption::from))
            .set_ssekms_key_id(u.sse_kms_key_id.clone())
            .set_tagging(u.tagging())
            .body(body)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if self.conditional && key_taken(&e) => Err(Refused::Taken),
            Err(e) => Err(classify(e, &self.bucket).into()),
        }
    }

    /// Every key under `prefix` (relative to the archive's prefix) with its size.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, S3Error> {
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
            let page = page.map_err(|e| classify(e, &self.bucket))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push((key.to_owned(), object.size().unwrap_or(0).max(0) as u64));
                }
            }
        }
        Ok(keys)
    }

    /// One level under `prefix` (relative to the archive's prefix; empty or ending in `/`):
    /// the folders there (common prefixes, each ending in `/`) and the objects with their
    /// sizes.
    pub(crate) async fn list_level(&self, prefix: &str) -> Result<Level, S3Error> {
        self.check_bucket().await?;
        let mut level = Level::default();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.object_key(prefix))
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(e, &self.bucket))?;
            for folder in page.common_prefixes() {
                if let Some(key) = folder.prefix().and_then(|k| k.strip_prefix(&self.prefix)) {
                    level.folders.push(key.to_owned());
                }
            }
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    let size = object.size().unwrap_or(0).max(0) as u64;
                    level.objects.push((key.to_owned(), size));
                }
            }
        }
        Ok(level)
    }

    /// Asks for the object `key`: its body, to be streamed.
    pub(crate) async fn body(&self, key: &str) -> Result<ByteStream, S3Error> {
        self.body_of(key, None).await
    }

    /// The body of the object `key`, or of the part of it `range` says (`bytes=-65536`: the
    /// last 64 KiB, or the whole object if it is shorter).
    pub(crate) async fn body_of(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<ByteStream, S3Error> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .set_range(range)
            .send()
            .await
            .map_err(|e| classify(e, &self.bucket))?;
        Ok(object.body)
    }

    /// Streams the object `key` into `out`; returns its length.
    pub(crate) async fn get(
        &self,
        key: &str,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, Cause> {
        let mut body = self.body(key).await?;
        let mut length = 0;
        while let Some(bytes) = body.try_next().await.map_err(|source| S3Error::BrokeOff {
            what: "the download",
            source,
        })? {
            out.write_all(&bytes).map_err(Cause::Output)?;
            length += bytes.len() as u64;
        }
        Ok(length)
    }

    /// Deletes `key`.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let delete = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key));
        delete
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, &self.bucket))
    }

    /// Whether `key` exists.
    pub(crate) async fn has(&self, key: &str) -> Result<bool, S3Error> {
        self.check_bucket().await?;
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key));
        match head.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(false),
            Err(e) => Err(classify(e, &self.bucket)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_prefix_that_can_never_be_written_is_refused_at_once() {
        let options = S3Options {
            region: Some("us-east-1".into()),
            static_credentials: Some(("k".into(), "s".into())),
            ..S3Options::default()
        };
        let e = S3Archive::connect("bucket", "logs//x/", &options)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty segment"), "{e}");
        let archive = S3Archive::connect("bucket", "logs/x/", &options)
            .await
            .unwrap();
        assert_eq!(archive.object_key("a/b"), "logs/x/a/b");
        assert!(archive.conditional_writes(), "on by default");
    }
}
