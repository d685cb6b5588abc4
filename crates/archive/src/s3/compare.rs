//! Whether a taken key holds the bytes of a file: the object is read back and compared with
//! the file piece by piece, as it arrives (never held whole in memory).
//!
//! Reading it back is right for every object, whatever its ETag means (an MD5 for a plain
//! single-part object; something else for multipart objects, SSE-KMS or SSE-C), and it happens
//! only when a key is taken: a put repeated after a crash, or a real conflict. It never writes.

use std::path::Path;

use aws_sdk_s3::error::SdkError;
use tokio::io::AsyncReadExt;

use super::{S3Archive, S3Error, classify, unreadable};
use crate::{Cause, Outcome};

impl S3Archive {
    /// `None` when `object_key` is not there; else whether it holds the `size` bytes of `file`
    /// ([`Outcome::AlreadyThere`]) or not ([`Outcome::Conflict`]).
    pub(super) async fn compare(
        &self,
        file: &Path,
        size: u64,
        object_key: &str,
    ) -> Result<Option<Outcome>, Cause> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object_key)
            .send()
            .await;
        let object = match got {
            Ok(object) => object,
            Err(SdkError::ServiceError(e))
                if e.err().is_no_such_key() || e.raw().status().as_u16() == 404 =>
            {
                return Ok(None);
            }
            Err(e) => return Err(classify(e, &self.bucket).into()),
        };
        if object
            .content_length()
            .is_some_and(|length| u64::try_from(length).ok() != Some(size))
        {
            return Ok(Some(Outcome::Conflict));
        }
        let mut local = tokio::fs::File::open(file)
            .await
            .map_err(|e| unreadable(file, e))?;
        let (mut body, mut buf, mut compared) = (object.body, Vec::new(), 0u64);
        while let Some(bytes) = body.try_next().await.map_err(|source| S3Error::BrokeOff {
            what: "reading the object back",
            source,
        })? {
            compared += bytes.len() as u64;
            if compared > size {
                return Ok(Some(Outcome::Conflict));
            }
            buf.resize(bytes.len(), 0);
            local
                .read_exact(&mut buf)
                .await
                .map_err(|e| unreadable(file, e))?;
            if buf[..] != bytes[..] {
                return Ok(Some(Outcome::Conflict));
            }
        }
        Ok(Some(if compared == size {
            Outcome::AlreadyThere
        } else {
            Outcome::Conflict
        }))
    }
}
