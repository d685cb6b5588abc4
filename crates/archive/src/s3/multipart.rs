//! Multipart uploads: a big file in parts (each but the last at least 5 MiB, each with its
//! Content-MD5), completed with `If-None-Match: *` where writes are conditional.
//!
//! A failed upload is aborted so that no parts are left behind. One a kill cuts off cannot
//! abort itself: while in flight it is recorded in the state directory ([`crate::pending`]),
//! and the next start aborts what is recorded ([`S3Archive::abort_recorded`]). A kill between
//! CreateMultipartUpload and the record, or a lost state directory, still leaves parts: the
//! bucket's lifecycle rule `AbortIncompleteMultipartUpload` (say, after 1 day) is the
//! belt-and-braces. It never deletes an object, only unfinished uploads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};

use super::{Refused, S3Archive, S3Error, classify, file_body, key_taken};
use crate::pending::{Pending, PendingUpload};

impl S3Archive {
    /// Uploads `file` (`size` bytes) in parts as `object_key`.
    pub(super) async fn put_multipart(
        &self,
        file: &Path,
        size: u64,
        object_key: &str,
    ) -> Result<(), Refused> {
        let (bucket, u) = (&self.bucket, &self.upload);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(object_key)
            .set_storage_class(u.storage_class.as_deref().map(StorageClass::from))
            .set_server_side_encryption(u.sse.as_deref().map(ServerSideEncryption::from))
            .set_ssekms_key_id(u.sse_kms_key_id.clone())
            .set_tagging(u.tagging())
            .send()
            .await
            .map_err(|e| classify(e, bucket))?;
        let Some(upload_id) = created.upload_id() else {
            return Err(S3Error::NoUploadId.into());
        };
        let record = self.record(object_key, upload_id).await;
        let result = self.send_parts(file, size, object_key, upload_id).await;
        let finished = match &result {
            Ok(()) => true,
            Err(_) => self.abort(object_key, upload_id).await,
        };
        if finished && let (Some(pending), Some(record)) = (&self.pending, record) {
            forget(pending.clone(), record).await;
        }
        result
    }

    /// Sends the parts and completes the upload.
    async fn send_parts(
        &self,
        file: &Path,
        size: u64,
        object_key: &str,
        upload_id: &str,
    ) -> Result<(), Refused> {
        let bucket = &self.bucket;
        let mut parts = Vec::new();
        let part_size = self.upload.part_size.max(5 << 20);
        let starts = (0..size).step_by(usize::try_from(part_size).unwrap_or(usize::MAX));
        for (i, start) in starts.enumerate() {
            let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let (body, md5) = file_body(file, start, part_size.min(size - start)).await?;
            let part = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(object_key)
                .upload_id(upload_id)
                .part_number(number)
                .content_md5(md5)
                .body(body)
                .send()
                .await
                .map_err(|e| classify(e, bucket))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_owned))
                    .build(),
            );
        }
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(object_key)
            .upload_id(upload_id)
            .set_if_none_match(self.conditional.then(|| "*".to_owned()))
            .multipart_upload(done)
            .send()
            .await;
        match completed {
            Ok(_) => Ok(()),
            Err(e) if self.conditional && key_taken(&e) => Err(Refused::Taken),
            Err(e) => Err(classify(e, bucket).into()),
        }
    }

    /// Records an upload in flight; a record that cannot be written is logged (the lifecycle
    /// rule is left to clear its parts should a kill cut it off).
    async fn record(&self, object_key: &str, upload_id: &str) -> Option<PathBuf> {
        let pending = self.pending.clone()?;
        let (bucket, key, id) = (
            self.bucket.clone(),
            object_key.to_owned(),
            upload_id.to_owned(),
        );
        let dir = pending.dir().display().to_string();
        let recorded =
            tokio::task::spawn_blocking(move || pending.record(&bucket, &key, &id)).await;
        match recorded {
            Ok(Ok(path)) => Some(path),
            Ok(Err(e)) => {
                tracing::warn!(
                    "archive {}: cannot record the multipart upload of {object_key} in {dir}: \
                     {e}; should a kill cut it off, its parts stay until the bucket's \
                     AbortIncompleteMultipartUpload rule clears them",
                    self.url
                );
                None
            }
            Err(e) => {
                tracing::warn!("cannot record a multipart upload: {e}");
                None
            }
        }
    }

    /// Aborts an upload; whether the store has let go of it.
    async fn abort(&self, object_key: &str, upload_id: &str) -> bool {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(upload_id)
            .send()
            .await;
        match aborted {
            Ok(_) => true,
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_upload() => true,
            Err(e) => {
                let e = classify(e, &self.bucket);
                tracing::warn!(
                    "archive {}: cannot abort the multipart upload of {object_key}: {e}{}",
                    self.url,
                    if self.pending.is_some() {
                        "; it stays recorded, the next start tries again"
                    } else {
                        ""
                    }
                );
                false
            }
        }
    }

    /// Aborts the uploads recorded in the state directory (a kill cut them off), best effort:
    /// each is logged; a record stays only where the store could not be reached (the next
    /// start tries again). Returns how many were aborted.
    pub(crate) async fn abort_recorded(&self, uploads: Vec<PendingUpload>) -> usize {
        let Some(pending) = self.pending.clone() else {
            return 0;
        };
        let mut aborted = 0;
        for upload in uploads {
            let answer = self
                .client
                .abort_multipart_upload()
                .bucket(&upload.bucket)
                .key(&upload.key)
                .upload_id(&upload.upload_id)
                .send()
                .await;
            let keep = match answer {
                Ok(_) => {
                    tracing::info!(
                        "archive {}: aborted the multipart upload of {} a stop cut off",
                        self.url,
                        upload.key
                    );
                    aborted += 1;
                    false
                }
                Err(SdkError::ServiceError(e)) if e.err().is_no_such_upload() => false,
                Err(e) => {
                    let e = classify(e, &upload.bucket);
                    tracing::warn!(
                        "archive {}: cannot abort the multipart upload of {} a stop cut off: {e}{}",
                        self.url,
                        upload.key,
                        if e.retryable() {
                            "; the next start tries again"
                        } else {
                            "; left to the bucket's AbortIncompleteMultipartUpload rule"
                        }
                    );
                    e.retryable()
                }
            };
            if !keep {
                forget(pending.clone(), upload.path).await;
            }
        }
        aborted
    }
}

/// Removes a record, off the runtime's threads; a failure is logged (the next start finds the
/// upload gone and removes the record then).
async fn forget(pending: Arc<Pending>, record: PathBuf) {
    let shown = record.display().to_string();
    let removed = tokio::task::spawn_blocking(move || pending.remove(&record)).await;
    if let Ok(Err(e)) = removed {
        tracing::warn!("cannot remove the record {shown}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use maillog_testkit::s3::{ACCESS_KEY, S3Server, SECRET_KEY, have_s3s_fs};

    use super::*;
    use crate::S3Options;
    use aws_sdk_s3::primitives::ByteStream;

    /// The upload ids of multipart uploads the server holds parts or state of.
    fn open_uploads(server: &S3Server) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&server.data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload"))
            .collect();
        names.sort();
        names
    }

    fn options(server: &S3Server, dir: &Path) -> S3Options {
        S3Options {
            region: Some("us-east-1".into()),
            endpoint: Some(server.endpoint()),
            path_style: true,
            static_credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
            state_dir: Some(dir.join("multipart")),
            ..S3Options::default()
        }
    }

    /// The store refuses CompleteMultipartUpload on a taken key (`If-None-Match: *`, 412):
    /// the upload is aborted, no part stays, the object is unchanged, nothing stays recorded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn completing_on_a_taken_key_is_refused_and_aborted() {
        let dir = tempfile::tempdir().unwrap();
        if !have_s3s_fs() {
            return;
        }
        let server = S3Server::start(&dir.path().join("s3"), "bucket");
        let archive = S3Archive::connect("bucket", "p", &options(&server, dir.path()))
            .await
            .unwrap();
        let key = archive.object_key("taken.json.bz2");
        archive
            .client
            .put_object()
            .bucket("bucket")
            .key(&key)
            .body(ByteStream::from_static(b"first"))
            .send()
            .await
            .unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![1u8; (5 << 20) + 1000]).unwrap();
        let refused = archive.put_multipart(&file, (5 << 20) + 1000, &key).await;
        assert!(
            matches!(refused, Err(Refused::Taken)),
            "not refused as taken"
        );
        assert_eq!(open_uploads(&server), Vec::<String>::new(), "parts left");
        assert_eq!(
            std::fs::read(dir.path().join("s3/bucket").join(&key)).unwrap(),
            b"first"
        );
        let pending = archive.pending.clone().unwrap();
        assert_eq!(pending.list().unwrap(), Vec::new(), "records left");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_recorded_upload_is_aborted() {
        let dir = tempfile::tempdir().unwrap();
        if !have_s3s_fs() {
            return;
        }
        let server = S3Server::start(&dir.path().join("s3"), "bucket");
        let archive = S3Archive::connect("bucket", "p", &options(&server, dir.path()))
            .await
            .unwrap();
        // What a kill leaves: an upload created, a part sent, the record written.
        let key = archive.object_key("cut/off.json.bz2");
        let created = archive
            .client
            .create_multipart_upload()
            .bucket("bucket")
            .key(&key)
            .send()
            .await
            .unwrap();
        let id = created.upload_id().unwrap();
        archive
            .client
            .upload_part()
            .bucket("bucket")
            .key(&key)
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from(vec![7u8; 1 << 20]))
            .send()
            .await
            .unwrap();
        archive.record(&key, id).await.unwrap();
        assert!(!open_uploads(&server).is_empty());
        // And one whose abort never answers: gone already.
        let pending = archive.pending.clone().unwrap();
        pending
            .record("bucket", "p/gone", "00000000-0000-0000-0000-000000000000")
            .unwrap();

        let uploads = pending.list().unwrap();
        assert_eq!(uploads.len(), 2);
        assert_eq!(archive.abort_recorded(uploads).await, 1);
        assert_eq!(open_uploads(&server), Vec::<String>::new(), "parts left");
        assert_eq!(pending.list().unwrap(), Vec::new(), "records left");
    }
}
