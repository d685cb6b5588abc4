//! File identity: which file on disk a followed file is, whatever its name is now.
//!
//! A path names different files over time (rotation), and an inode number is reused once a file
//! is deleted. A followed file is therefore known by its device and inode *and* a fingerprint of
//! its first bytes (up to [`FINGERPRINT_BYTES`]): a new file that got the old inode starts with
//! different bytes, and a truncated-and-rewritten file (copytruncate) too. And a file with
//! another inode that holds the same bytes is the same content (a copy renamed over it): told
//! by comparing the two byte for byte ([`common_prefix`]) while both are open, and after a
//! restart by the head fingerprint plus a fingerprint of the KiB before the length last seen
//! ([`read_before`], stored as [`crate::checkpoint::Entry::tail`]). A KiB covers 10–20 syslog
//! lines with their timestamps, pids and queue ids: two files that share it are one content
//! in practice (Vector's checksum fingerprint reads the first line or 256 bytes; one line alone
//! mixes up files that start alike, vector#17240). A young file shorter than a KiB is
//! fingerprinted whole, and the fingerprint grows with it. This module only computes and
//! compares identities; it never decides what to do about a mismatch.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// How many leading bytes the fingerprint covers once the file is that long. Several syslog
/// lines: enough that two files starting with the same line are still told apart.
pub const FINGERPRINT_BYTES: usize = 1024;

/// Device and inode of a file: stable across renames, reused after deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileKey {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileKey {
    /// The key of the file `meta` describes.
    pub fn of(meta: &Metadata) -> Self {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// A CRC-32 of a file's first `len` bytes (of its decompressed content for `.gz`/`.bz2`).
///
/// While a file is shorter than [`FINGERPRINT_BYTES`] its fingerprint covers what there is and
/// grows with it; a prefix check keeps the old and new agreeing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many leading bytes are covered.
    pub len: u32,
    /// CRC-32 of those bytes.
    pub crc: u32,
}

impl Fingerprint {
    /// The fingerprint of `head`, the first bytes of a file (at most [`FINGERPRINT_BYTES`] used).
    pub fn of(head: &[u8]) -> Self {
        let head = &head[..head.len().min(FINGERPRINT_BYTES)];
        // A slice of at most FINGERPRINT_BYTES always fits in u32.
        let len = u32::try_from(head.len()).unwrap_or(u32::MAX);
        Fingerprint {
            len,
            crc: crc32fast::hash(head),
        }
    }

    /// Does a file whose first bytes are `head` start with the content fingerprinted here?
    /// False when `head` is shorter than what the fingerprint covers (the file shrank).
    pub fn matches(&self, head: &[u8]) -> bool {
        let len = self.len as usize;
        head.len() >= len && crc32fast::hash(&head[..len]) == self.crc
    }

    /// Whether the fingerprint still grows with the file.
    pub fn is_complete(&self) -> bool {
        self.len as usize >= FINGERPRINT_BYTES
    }
}

/// Reads up to [`FINGERPRINT_BYTES`] from the start of `file` without moving its read position.
pub fn read_head(file: &File) -> io::Result<Vec<u8>> {
    let mut head = vec![0; FINGERPRINT_BYTES];
    let mut filled = 0;
    while filled < head.len() {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok(head)
}

/// Reads up to [`FINGERPRINT_BYTES`] just before position `end` of `file` (fewer when the file
/// is shorter than `end`, or `end` is less than that).
pub fn read_before(file: &File, end: u64) -> io::Result<Vec<u8>> {
    let start = end.saturating_sub(FINGERPRINT_BYTES as u64);
    let mut buf = vec![0; (end - start) as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], start + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The fingerprint of the bytes of `file` just before `end` (see [`read_before`]); None if
/// they cannot be read.
pub fn tail_of(file: &File, end: u64) -> Option<Fingerprint> {
    read_before(file, end).ok().map(|b| Fingerprint::of(&b))
}

/// How many leading bytes `a` and `b` have in common, compared up to `limit` (and the end of
/// the shorter one). Reads both in blocks of 64 KiB: a whole file's prefix in the worst case,
/// which is paid once when a file is replaced by a copy, never while following.
pub fn common_prefix(a: &File, b: &File, limit: u64) -> io::Result<u64> {
    const BLOCK: usize = 64 * 1024;
    let (mut x, mut y) = (vec![0; BLOCK], vec![0; BLOCK]);
    let mut at = 0u64;
    while at < limit {
        let want = (limit - at).min(BLOCK as u64) as usize;
        let n = a.read_at(&mut x[..want], at)?;
        let m = b.read_at(&mut y[..want], at)?;
        let n = n.min(m);
        if let Some(i) = x[..n].iter().zip(&y[..n]).position(|(p, q)| p != q) {
            return Ok(at + i as u64);
        }
        if n == 0 {
            break;
        }
        at += n as u64;
    }
    Ok(at.min(limit))
}

impl Fingerprint {
    /// Do the bytes of `file` just before `end` (as many as fingerprinted) match this
    /// fingerprint of the bytes before a position ([`read_before`])? False when the file is
    /// shorter.
    pub fn matches_before(&self, file: &File, end: u64) -> io::Result<bool> {
        let len = u64::from(self.len);
        if end < len {
            return Ok(false);
        }
        let bytes = read_before(file, end)?;
        let skip = bytes.len().saturating_sub(self.len as usize);
        Ok(bytes.len() >= self.len as usize && crc32fast::hash(&bytes[skip..]) == self.crc)
    }
}

/// Reads up to [`FINGERPRINT_BYTES`] from a stream (a decompressor), consuming them.
pub fn read_stream_head(reader: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
    reader
        .take(FINGERPRINT_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_file_keeps_matching_its_shorter_fingerprint() {
        let short = Fingerprint::of(b"Nov 25 11:44:29 mx1 sendmail[1]: ");
        assert!(short.matches(b"Nov 25 11:44:29 mx1 sendmail[1]: AB123: from=<a@b>\n"));
        assert!(
            !short.matches(b"Nov 25"),
            "a shorter file has lost what was fingerprinted"
        );
        assert!(!short.matches(b"Nov 26 00:00:00 mx1 sendmail[1]: other content"));
    }

    #[test]
    fn the_bytes_before_a_position_and_a_common_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, &text).unwrap();
        let mut edited = text.clone();
        edited[3000] ^= 1;
        std::fs::write(&b, &edited).unwrap();
        let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
        assert_eq!(common_prefix(&fa, &fb, 5000).unwrap(), 3000);
        assert_eq!(common_prefix(&fa, &fb, 2000).unwrap(), 2000);
        assert_eq!(
            common_prefix(&fa, &fa, 9000).unwrap(),
            5000,
            "up to the end"
        );
        let before = Fingerprint::of(&read_before(&fa, 2500).unwrap());
        assert_eq!(before.len as usize, FINGERPRINT_BYTES);
        assert!(before.matches_before(&fb, 2500).unwrap());
        assert!(!before.matches_before(&fb, 3500).unwrap());
        let young = Fingerprint::of(&read_before(&fa, 10).unwrap());
        assert_eq!(young.len, 10);
        assert!(young.matches_before(&fb, 10).unwrap());
        assert!(
            !young.matches_before(&fb, 5).unwrap(),
            "shorter than fingerprinted"
        );
    }

    #[test]
    fn only_the_first_bytes_count() {
        let long = vec![b'x'; 3 * FINGERPRINT_BYTES];
        let fp = Fingerprint::of(&long);
        assert_eq!(fp.len as usize, FINGERPRINT_BYTES);
        assert!(fp.is_complete());
        assert!(fp.matches(&long[..FINGERPRINT_BYTES]));
    }
}
