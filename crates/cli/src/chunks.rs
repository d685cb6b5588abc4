//! Cutting an input into chunks of whole lines, so that several threads can parse it.
//!
//! This module owns only the framing: every chunk ends at a line end (except the input's last
//! line when it has none), no byte is dropped or repeated, and a line longer than the chunk size
//! makes a longer chunk rather than being cut. It never looks inside a line.

use std::io::{self, Read};

/// A chunk of whole lines. Its buffer can be handed back to [`ChunkReader::next_chunk`] to be
/// reused, so that a long input does not cost fresh memory (and its page faults) per chunk.
#[derive(Debug, Default)]
pub struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl Chunk {
    /// The chunk's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Reads an input as a sequence of chunks of whole lines.
pub struct ChunkReader<R> {
    reader: R,
    chunk_size: usize,
    carry: Vec<u8>,
    eof: bool,
}

impl<R: Read> ChunkReader<R> {
    /// Chunks of about `chunk_size` bytes from `reader`.
    pub fn new(reader: R, chunk_size: usize) -> Self {
        ChunkReader {
            reader,
            chunk_size: chunk_size.max(1),
            carry: Vec::new(),
            eof: false,
        }
    }

    /// The next chunk, or `None` at the end of the input; `spare` is a used chunk whose buffer
    /// may be reused.
    pub fn next_chunk(&mut self, spare: Option<Chunk>) -> io::Result<Option<Chunk>> {
        let mut buf = spare.map(|c| c.buf).unwrap_or_default();
        let mut target = self.chunk_size.max(self.carry.len() + 1);
        if buf.len() < target {
            buf.resize(target, 0);
        }
        buf[..self.carry.len()].copy_from_slice(&self.carry);
        let mut len = self.carry.len();
        self.carry.clear();
        loop {
            while !self.eof && len < target {
                if buf.len() < target {
                    buf.resize(target, 0);
                }
                let n = read_retrying(&mut self.reader, &mut buf[len..target])?;
                len += n;
                self.eof = n == 0;
            }
            if self.eof {
                return Ok((len > 0).then_some(Chunk { buf, len }));
            }
            match memchr::memrchr(b'\n', &buf[..len]) {
                Some(last) => {
                    self.carry.extend_from_slice(&buf[last + 1..len]);
                    return Ok(Some(Chunk { buf, len: last + 1 }));
                }
                // One line longer than the chunk: read on until it ends.
                None => target = len * 2,
            }
        }
    }
}

fn read_retrying(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(input: &[u8], size: usize) -> Vec<Vec<u8>> {
        let mut reader = ChunkReader::new(input, size);
        let mut out = Vec::new();
        let mut spare = None;
        while let Some(chunk) = reader.next_chunk(spare.take()).unwrap() {
            out.push(chunk.bytes().to_vec());
            // Reuse every other buffer, so both paths are exercised.
            if out.len() % 2 == 0 {
                spare = Some(chunk);
            }
        }
        out
    }

    #[test]
    fn chunks_hold_whole_lines_and_every_byte_once() {
        let input = b"one\ntwo\nthree\nfour without end";
        for size in 1..input.len() + 3 {
            let parts = chunks(input, size);
            assert_eq!(parts.concat(), input, "size {size}");
            for part in &parts[..parts.len() - 1] {
                assert!(part.ends_with(b"\n"), "size {size}: {part:?}");
            }
        }
        assert!(chunks(b"", 4).is_empty());
    }

    #[test]
    fn a_line_longer_than_the_chunk_size_is_kept_whole() {
        let long = [b'x'; 1000];
        let input = [&long[..], b"\nshort\n"].concat();
        let parts = chunks(&input, 16);
        assert!(parts[0].starts_with(&long) && parts[0][1000] == b'\n');
        assert_eq!(parts.concat(), input);
    }
}
