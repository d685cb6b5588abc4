//! Reading an S3 archive back, for `maillog top` and `maillog report`.
//!
//! [`S3Reader`] lists a bucket and opens objects as plain blocking [`Read`]ers, so that the
//! query threads (ordinary threads, one input each) read S3 objects as they read files. Each
//! open object is a GetObject whose body a task on the reader's own runtime pumps into a bounded
//! channel: a slow reader stops the download instead of buffering the object, so memory per open
//! object is at most [`CHUNKS_AHEAD`] network chunks. As many objects download at once as
//! there are threads reading.
//!
//! It never writes to the archive.

use std::io::{self, Read};
use std::sync::Arc;

use aws_sdk_s3::primitives::{ByteStream, ByteStreamError};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use crate::ArchiveError;
use crate::s3::{Level, S3Archive, S3Error, S3Options};

/// Network chunks buffered ahead of the reader of one object.
pub const CHUNKS_AHEAD: usize = 8;

/// A bucket, read. Cloning is cheap; the runtime lives while a clone or an open object does.
#[derive(Clone)]
pub struct S3Reader {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    archive: S3Archive,
}

impl S3Reader {
    /// Connects to `bucket` (no request is made yet).
    pub fn connect(bucket: &str, options: &S3Options) -> Result<S3Reader, ArchiveError> {
        let runtime = crate::runtime(&format!("s3://{bucket}"), 2, "maillog-s3-read")?;
        let archive = runtime.block_on(S3Archive::connect(bucket, "", options))?;
        Ok(S3Reader {
            inner: Arc::new(Inner { runtime, archive }),
        })
    }

    /// Every key that starts with `prefix`, with its size, in key order.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, ArchiveError> {
        let Inner { runtime, archive } = &*self.inner;
        let mut keys = runtime
            .block_on(archive.list(prefix))
            .map_err(|e| ArchiveError::List {
                archive: archive.url().to_owned(),
                prefix: prefix.to_owned(),
                source: e.into(),
            })?;
        keys.sort();
        Ok(keys)
    }

    /// One level under `prefix` (empty or ending in `/`): its folders and objects, each in key
    /// order.
    pub fn list_level(&self, prefix: &str) -> Result<Level, ArchiveError> {
        let Inner { runtime, archive } = &*self.inner;
        let mut level =
            runtime
                .block_on(archive.list_level(prefix))
                .map_err(|e| ArchiveError::List {
                    archive: archive.url().to_owned(),
                    prefix: prefix.to_owned(),
                    source: e.into(),
                })?;
        level.folders.sort();
        level.objects.sort();
        Ok(level)
    }

    /// Opens the object `key`: the request is sent now, the body streams as it is read.
    pub fn open(&self, key: &str) -> Result<ObjectReader, ArchiveError> {
        self.open_range(key, None)
    }

    /// Opens the last `bytes` bytes of the object `key` (all of it if it is shorter): a
    /// Parquet file's footer without the rest.
    pub fn open_tail(&self, key: &str, bytes: u64) -> Result<ObjectReader, ArchiveError> {
        self.open_range(key, Some(format!("bytes=-{bytes}")))
    }

    fn open_range(&self, key: &str, range: Option<String>) -> Result<ObjectReader, ArchiveError> {
        let Inner { runtime, archive } = &*self.inner;
        let body: ByteStream =
            runtime
                .block_on(archive.body_of(key, range))
                .map_err(|e| ArchiveError::Read {
                    archive: archive.url().to_owned(),
                    key: key.to_owned(),
                    source: e.into(),
                })?;
        let (chunks, receiver) = mpsc::channel(CHUNKS_AHEAD);
        runtime.spawn(pump(body, chunks));
        Ok(ObjectReader {
            chunks: receiver,
            current: bytes::Bytes::new(),
            ended: false,
            _runtime: Arc::clone(&self.inner),
        })
    }
}

/// What the pump hands the reader.
enum Piece {
    Data(bytes::Bytes),
    /// The body is complete. Without it, a closed channel means the download was cut off.
    End,
    Failed(ByteStreamError),
}

/// Moves an object's body into the channel until it ends, breaks, or the reader goes away.
async fn pump(mut body: ByteStream, chunks: mpsc::Sender<Piece>) {
    loop {
        let piece = match body.try_next().await {
            Ok(Some(bytes)) => Piece::Data(bytes),
            Ok(None) => Piece::End,
            Err(e) => Piece::Failed(e),
        };
        let last = !matches!(piece, Piece::Data(_));
        if chunks.send(piece).await.is_err() || last {
            return;
        }
    }
}

/// An S3 object's body as a blocking reader. Not for use inside an async task.
pub struct ObjectReader {
    chunks: mpsc::Receiver<Piece>,
    current: bytes::Bytes,
    ended: bool,
    /// The runtime the pump runs on stays up while the object is read.
    _runtime: Arc<Inner>,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.chunks.blocking_recv() {
                Some(Piece::Data(bytes)) => self.current = bytes,
                Some(Piece::End) => self.ended = true,
                Some(Piece::Failed(source)) => {
                    return Err(io::Error::other(S3Error::BrokeOff {
                        what: "the download",
                        source,
                    }));
                }
                None => return Err(io::Error::other("the download was cut off")),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
