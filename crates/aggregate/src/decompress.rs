//! Compressed inputs: what an input holds, told from its first bytes — bzip2 (`BZh`), gzip
//! (`1f 8b`) or plain — never from its name, and a reader of its whole content: every stream of
//! a multistream bzip2 file (`pbzip2`, the archive's own 900 kB blocks), every member of a
//! multi-member gzip file (`cat a.gz b.gz`).
//!
//! It owns only the magic bytes and the choice of decoder. It never opens files, never reads
//! lines and never decides what an error means for its caller; `maillog top`/`report` (through
//! [`crate::scan`]) and `maillog parse` read through it.

use std::io::{self, BufRead, Cursor, Read};

/// How an input is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Neither bzip2 nor gzip: read as it is.
    None,
    /// bzip2, every stream read.
    Bzip2,
    /// gzip, every member read.
    Gzip,
}

impl Compression {
    /// The compression whose magic bytes `head` starts with (three bytes tell them apart).
    pub fn of(head: &[u8]) -> Compression {
        if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// The bytes read to tell the compression, put back in front of the rest.
type Sniffed<R> = io::Chain<Cursor<Vec<u8>>, R>;

/// An input's content, decompressed if its first bytes say it is compressed.
pub enum Decoded<R: BufRead> {
    /// Plain: the bytes as they are.
    Plain(Sniffed<R>),
    /// Every bzip2 stream, one after the other.
    Bzip2(bzip2::bufread::MultiBzDecoder<Sniffed<R>>),
    /// Every gzip member, one after the other.
    Gzip(flate2::bufread::MultiGzDecoder<Sniffed<R>>),
}

impl<R: BufRead> Decoded<R> {
    /// What the content was compressed with.
    pub fn compression(&self) -> Compression {
        match self {
            Decoded::Plain(_) => Compression::None,
            Decoded::Bzip2(_) => Compression::Bzip2,
            Decoded::Gzip(_) => Compression::Gzip,
        }
    }
}

impl<R: BufRead> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Plain(r) => r.read(buf),
            Decoded::Bzip2(r) => r.read(buf),
            Decoded::Gzip(r) => r.read(buf),
        }
    }
}

/// Reads the first bytes of `reader` to tell its compression and returns a reader of its
/// content. The first bytes are read whole even when they come one by one (a pipe), so a
/// compressed stdin is told as surely as a file. An error reading them is returned.
pub fn decompressed<R: BufRead>(mut reader: R) -> io::Result<Decoded<R>> {
    let mut head = [0u8; 3];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(read) => n += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = Compression::of(&head[..n]);
    let sniffed = Cursor::new(head[..n].to_vec()).chain(reader);
    Ok(match kind {
        Compression::None => Decoded::Plain(sniffed),
        Compression::Bzip2 => Decoded::Bzip2(bzip2::bufread::MultiBzDecoder::new(sniffed)),
        Compression::Gzip => Decoded::Gzip(flate2::bufread::MultiGzDecoder::new(sniffed)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{BufReader, Read, Write};

    use super::*;

    /// A reader that gives one byte per read, as a slow pipe may.
    struct OneByOne<'a>(&'a [u8]);

    impl Read for OneByOne<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn read_all(bytes: &[u8]) -> (Compression, String) {
        // A one-byte buffer: the magic bytes arrive in three reads.
        let mut decoded = decompressed(BufReader::with_capacity(1, OneByOne(bytes))).unwrap();
        let mut text = String::new();
        decoded.read_to_string(&mut text).unwrap();
        (decoded.compression(), text)
    }

    #[test]
    fn every_stream_and_member_is_read_and_plain_is_left_alone() {
        let mut bz = Vec::new();
        for part in ["one\n", "two\n"] {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            bz.extend(e.finish().unwrap());
        }
        let mut gz = Vec::new();
        for part in ["one\n", "two\n"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            gz.extend(e.finish().unwrap());
        }
        assert_eq!(read_all(&bz), (Compression::Bzip2, "one\ntwo\n".into()));
        assert_eq!(read_all(&gz), (Compression::Gzip, "one\ntwo\n".into()));
        assert_eq!(read_all(b"BZ"), (Compression::None, "BZ".into()));
        assert_eq!(read_all(b""), (Compression::None, String::new()));
        assert_eq!(read_all(b"one\n"), (Compression::None, "one\n".into()));
    }
}
