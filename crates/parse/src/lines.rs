//! Cutting a finished input into chunks of whole lines: the one line framer of the readers that
//! read an input to its end (`maillog parse`, and `maillog top`/`report` in
//! `maillog-aggregate`'s scan).
//!
//! This module owns only the framing: every chunk ends at a line end (except the input's last
//! line when it has none), no byte is dropped or repeated, and a line longer than the chunk size
//! makes a longer chunk rather than being cut. Whole lines read before a read error are handed
//! out before the error, so that what could be read still counts; the bytes after the last line
//! end are then dropped. It never looks inside a line (a `\r` before the `\n` stays; each
//! reader's line parser decides) and never cuts one.
//!
//! The tailer of `maillog run` frames lines itself (`maillog-tail`'s `lines`): it follows files
//! that are still being written, so it keeps each line's place in the file, waits for a line's
//! end, and cuts lines to a length limit — none of which a finished input needs.

use std::io::{self, Read};

/// A chunk of whole lines. Its buffer can be handed back to [`LineChunks::next_chunk`] to be
/// reused, so that a long input does not cost fresh memory (and its page faults) per chunk.
#[derive(Debug, Default)]
pub struct LineChunk {
    buf: Vec<u8>,
    len: usize,
}

impl LineChunk {
    /// The chunk's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The lines of `bytes`, each with its `\n` (the last one without, when it has none).
pub fn lines_with_terminator(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1);
        let (line, after) = rest.split_at(end);
        rest = after;
        Some(line)
    })
}

/// Reads an input as a sequence of chunks of whole lines.
pub struct LineChunks<R> {
    reader: R,
    chunk_size: usize,
    carry: Vec<u8>,
    eof: bool,
    /// A read error met after whole lines that were handed out first.
    error: Option<io::Error>,
}

impl<R: Read> LineChunks<R> {
    /// Chunks of about `chunk_size` bytes from `reader`.
    pub fn new(reader: R, chunk_size: usize) -> Self {
        LineChunks {
            reader,
            chunk_size: chunk_size.max(1),
            carry: Vec::new(),
            eof: false,
            error: None,
        }
    }

    /// The next chunk, or `None` at the end of the input; `spare` is a used chunk whose buffer
    /// may be reused. After an error, the next call gives `None`.
    pub fn next_chunk(&mut self, spare: Option<LineChunk>) -> io::Result<Option<LineChunk>> {
        if let Some(error) = self.error.take() {
            self.eof = true;
            self.carry.clear();
            return Err(error);
        }
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
                match read_retrying(&mut self.reader, &mut buf[len..target]) {
                    Ok(n) => {
                        len += n;
                        self.eof = n == 0;
                    }
                    Err(error) => return self.failed(error, buf, len),
                }
            }
            if self.eof {
                return Ok((len > 0).then_some(LineChunk { buf, len }));
            }
            match memchr::memrchr(b'\n', &buf[..len]) {
                Some(last) => {
                    self.carry.extend_from_slice(&buf[last + 1..len]);
                    return Ok(Some(LineChunk { buf, len: last + 1 }));
                }
                // One line longer than the chunk: read on until it ends.
                None => target = len * 2,
            }
        }
    }

    /// A read failed with `buf[..len]` read: its whole lines first, the error on the next call.
    fn failed(
        &mut self,
        error: io::Error,
        buf: Vec<u8>,
        len: usize,
    ) -> io::Result<Option<LineChunk>> {
        self.eof = true;
        match memchr::memrchr(b'\n', &buf[..len]) {
            Some(last) => {
                self.error = Some(error);
                Ok(Some(LineChunk { buf, len: last + 1 }))
            }
            None => Err(error),
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
        let mut reader = LineChunks::new(input, size);
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

    /// Gives its bytes, then fails.
    struct Failing<'a>(&'a [u8]);

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("broken"));
            }
            let n = self.0.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn whole_lines_read_before_an_error_come_before_it() {
        let mut reader = LineChunks::new(Failing(b"a\nbb\ncc"), 1 << 10);
        let first = reader.next_chunk(None).unwrap().unwrap();
        assert_eq!(first.bytes(), b"a\nbb\n");
        assert!(reader.next_chunk(None).is_err());
        assert!(reader.next_chunk(None).unwrap().is_none());
        let mut reader = LineChunks::new(Failing(b"no end"), 1 << 10);
        assert!(reader.next_chunk(None).is_err());
    }

    #[test]
    fn lines_keep_their_terminator() {
        let lines: Vec<&[u8]> = lines_with_terminator(b"a\r\n\nb").collect();
        assert_eq!(lines, vec![&b"a\r\n"[..], b"\n", b"b"]);
        assert_eq!(lines_with_terminator(b"").count(), 0);
    }
}
