//! The records of the bzip2 streams the service made, kept until the mirror has them, so that
//! a mirror pass need not decode the archive's files again (decoding was nearly half of a
//! pass's work).
//!
//! The service's compressors tell the cache of every stream they make with the records it
//! holds ([`StreamTap`]); the cache writes those records to a file of its folder (in the spool)
//! named by the SHA-256 of the stream. A pass reads an archive file, cuts it into its streams
//! ([`stream_starts`]) and takes each stream's records from the cache; if one is not there, the
//! whole file is decoded as before. What is kept is named by the stream's own bytes, so the
//! cache can only miss, never give other records than decoding would: a file written for a
//! window that was cut back after a crash is simply never asked for, and a file torn by a
//! power cut fails its check (length and CRC-32 in its head) and is a miss.
//!
//! Bounded: past `limit` bytes, or when keeping one would leave less than `limit` bytes free on
//! the spool's file system (the windows need the room more: a window waiting for room keeps its
//! hour from being mirrored, and so the cache from being emptied; they always have at least as
//! much as the cache could take), streams are not kept (they are decoded when mirrored).
//! Streams are removed once a mirror file holding them is in the archive; the ones never asked for (a
//! window cut back, a file the mirror got elsewhere) go when older than [`MAX_AGE`].
//!
//! It never fails its caller: a cache that cannot write, read or remove is a cache that misses.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use maillog_batch::compress::{StreamTap, stream_starts};
use sha2::{Digest, Sha256};

/// Kept streams not asked for in this long are removed ([`StreamCache::sweep`]): a pass looks
/// a week back.
pub const MAX_AGE: Duration = Duration::from_secs(8 * 86_400);

/// A kept stream's file: this, the records' length (u64, little-endian), their CRC-32, then
/// the records.
const MAGIC: &[u8; 8] = b"MLSTRM1\n";
const HEAD: usize = MAGIC.len() + 8 + 4;

/// The records of the streams the service made, in a folder of its own.
pub struct StreamCache {
    dir: PathBuf,
    limit: u64,
    /// Bytes in the folder, as this process counts them.
    bytes: AtomicU64,
}

/// The SHA-256 of a stream, in hex: its file's name.
pub type StreamName = String;

fn name_of(stream: &[u8]) -> StreamName {
    let digest = Sha256::digest(stream);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl StreamCache {
    /// The cache in `dir` (created), holding at most `limit` bytes; streams older than
    /// [`MAX_AGE`] are removed now.
    pub fn open(dir: &Path, limit: u64) -> io::Result<StreamCache> {
        fs::create_dir_all(dir)?;
        let cache = StreamCache {
            dir: dir.to_owned(),
            limit,
            bytes: AtomicU64::new(0),
        };
        cache.sweep(MAX_AGE);
        Ok(cache)
    }

    /// Removes the streams older than `age`, and counts the bytes of the rest.
    pub fn sweep(&self, age: Duration) {
        let now = SystemTime::now();
        let mut bytes = 0;
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let old = meta
                .modified()
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|d| d >= age);
            if old || entry.file_name().to_string_lossy().starts_with('.') {
                let _ = fs::remove_file(entry.path());
            } else {
                bytes += meta.len();
            }
        }
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    /// The names of the streams of the bzip2 file `bytes` (a chain of streams), if the cache
    /// holds every one of them; their records are read with [`StreamCache::records`].
    pub fn kept(&self, bytes: &[u8]) -> Option<Vec<StreamName>> {
        let starts = stream_starts(bytes);
        if starts.first() != Some(&0) {
            return None;
        }
        let mut names = Vec::with_capacity(starts.len());
        for (i, start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(bytes.len());
            let name = name_of(&bytes[*start..end]);
            if !self.dir.join(&name).is_file() {
                return None;
            }
            names.push(name);
        }
        Some(names)
    }

    /// The records of the kept stream `name`. A stream torn since it was kept (a power cut)
    /// is removed, and is an error: the next pass decodes its file.
    pub fn records(&self, name: &str) -> io::Result<Vec<u8>> {
        let path = self.dir.join(name);
        let mut kept = fs::read(&path)?;
        match checked(&kept) {
            Some(records) => {
                let at = kept.len() - records.len();
                Ok(kept.split_off(at))
            }
            None => {
                self.forget(&[name.to_owned()]);
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: a kept stream torn since it was kept (removed; the next pass decodes its file)",
                        path.display()
                    ),
                ))
            }
        }
    }

    /// The records of the streams `names`, in order, as one reader: each stream's file is read
    /// when the one before it is done.
    pub fn reader(&self, names: Vec<StreamName>) -> impl io::Read + '_ {
        Kept {
            cache: self,
            names,
            next: 0,
            current: io::Cursor::new(Vec::new()),
        }
    }

    /// Removes the streams `names` (their records are in the mirror now).
    pub fn forget(&self, names: &[StreamName]) {
        for name in names {
            let path = self.dir.join(name);
            if let Ok(meta) = fs::metadata(&path)
                && fs::remove_file(&path).is_ok()
            {
                let _ = self
                    .bytes
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                        Some(b.saturating_sub(meta.len()))
                    });
            }
        }
    }

    /// Bytes kept.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn keep(&self, raw: &[u8], stream: &[u8]) -> io::Result<()> {
        let size = (HEAD + raw.len()) as u64;
        if self.bytes.fetch_add(size, Ordering::Relaxed) + size > self.limit
            || !room_for(&self.dir, size, self.limit)
        {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            return Ok(());
        }
        let name = name_of(stream);
        let path = self.dir.join(&name);
        let aside = self.dir.join(format!(".{name}"));
        let written = (|| {
            let mut file = fs::File::create(&aside)?;
            file.write_all(MAGIC)?;
            file.write_all(&(raw.len() as u64).to_le_bytes())?;
            file.write_all(&crc32fast::hash(raw).to_le_bytes())?;
            file.write_all(raw)?;
            fs::rename(&aside, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&aside);
            self.bytes.fetch_sub(size, Ordering::Relaxed);
        }
        written
    }
}

impl StreamTap for StreamCache {
    fn compressed(&self, raw: &[u8], stream: &[u8]) {
        // A full disk, a removed folder: this stream is decoded when it is mirrored.
        let _ = self.keep(raw, stream);
    }
}

/// Whether `size` more bytes in `dir` leave at least `reserve` free on its file system.
fn room_for(dir: &Path, size: u64, reserve: u64) -> bool {
    let Ok(fs) = nix::sys::statvfs::statvfs(dir) else {
        return false;
    };
    let free = fs.blocks_available().saturating_mul(fs.fragment_size());
    free.saturating_sub(size) >= reserve
}

/// The records of kept streams, one after the other ([`StreamCache::reader`]).
struct Kept<'a> {
    cache: &'a StreamCache,
    names: Vec<StreamName>,
    next: usize,
    current: io::Cursor<Vec<u8>>,
}

impl io::Read for Kept<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(name) = self.names.get(self.next) else {
                return Ok(0);
            };
            self.current = io::Cursor::new(self.cache.records(name)?);
            self.next += 1;
        }
    }
}

/// The records of a kept stream's file, if it is whole.
fn checked(kept: &[u8]) -> Option<&[u8]> {
    let rest = kept.strip_prefix(MAGIC)?;
    let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    let crc = u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?);
    let records = rest.get(12..)?;
    (records.len() as u64 == len && crc32fast::hash(records) == crc).then_some(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use maillog_batch::compress::compress;
    use std::io::Read;

    #[test]
    fn a_file_whose_streams_were_kept_is_read_from_the_cache_and_nothing_else_is() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = StreamCache::open(&dir.path().join("streams"), 1 << 20).expect("cache");
        let blocks = [
            b"{\"a\":\"1\"}\n".repeat(100),
            b"{\"b\":\"2\"}\n".repeat(50),
        ];
        let streams: Vec<Vec<u8>> = blocks.iter().map(|b| compress(b, 9).unwrap()).collect();
        for (raw, stream) in blocks.iter().zip(&streams) {
            cache.compressed(raw, stream);
        }
        let file = streams.concat();
        let names = cache.kept(&file).expect("every stream kept");
        assert_eq!(names.len(), 2);
        let mut records = Vec::new();
        cache
            .reader(names.clone())
            .read_to_end(&mut records)
            .unwrap();
        assert_eq!(records, blocks.concat());
        // A stream it does not hold: a miss, whatever it holds of the others.
        let other = compress(b"{\"c\":\"3\"}\n", 9).unwrap();
        assert!(cache.kept(&[file.clone(), other].concat()).is_none());
        // A torn file is an error, not records, and is gone: the next pass decodes.
        let torn = dir.path().join("streams").join(&names[1]);
        let whole = fs::read(&torn).unwrap();
        fs::write(&torn, &whole[..whole.len() - 3]).unwrap();
        assert!(
            cache
                .reader(names.clone())
                .read_to_end(&mut Vec::new())
                .is_err()
        );
        assert!(cache.kept(&file).is_none());
        cache.compressed(&blocks[1], &streams[1]);
        cache.sweep(MAX_AGE); // counts again what this test wrote behind its back
        // Forgotten once mirrored; past its limit it keeps nothing more.
        cache.forget(&names);
        assert!(cache.kept(&file).is_none());
        assert_eq!(cache.bytes(), 0);
        let small = StreamCache::open(&dir.path().join("small"), 100).expect("cache");
        small.compressed(&blocks[0], &streams[0]);
        assert!(small.kept(&streams[0]).is_none());
        // A disk that would keep less free than the limit keeps nothing more.
        assert!(room_for(dir.path(), 1, 0));
        assert!(!room_for(dir.path(), 1, u64::MAX / 2));
        // Old streams go at a sweep.
        cache.compressed(&blocks[0], &streams[0]);
        assert!(cache.kept(&streams[0]).is_some());
        cache.sweep(Duration::ZERO);
        assert!(cache.kept(&streams[0]).is_none());
    }
}
