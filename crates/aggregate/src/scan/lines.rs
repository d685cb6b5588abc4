//! The lines of a decompressed stream, for the scan's workers.
//!
//! The framing is `maillog_parse::lines`' (chunks of whole lines, a line longer than the chunk
//! kept whole, the last line even without a line end, whole lines read before an error counted
//! before it); this module owns only what the scan adds: every line handed out ends before its
//! `\n` (and a `\r` before it), a range stops before the first line that starts past its limit,
//! and one buffer per thread serves every input. It never looks inside a line.

use std::io::{self, Read};

use maillog_parse::lines::{LineChunk, LineChunks};

/// Cuts streams into lines without copying them, reusing one buffer per thread.
#[derive(Default)]
pub(super) struct LineBuffer {
    spare: Option<LineChunk>,
}

impl LineBuffer {
    const CHUNK: usize = 1 << 20;

    /// Calls `line` for each line of `reader` (without `\n` and `\r`), the last one even without
    /// a line end. With `limit`, stops before a line that starts at or after byte `limit`.
    pub(super) fn each(
        &mut self,
        reader: &mut dyn Read,
        limit: Option<u64>,
        mut line: impl FnMut(&[u8]),
    ) -> io::Result<()> {
        let limit = limit.unwrap_or(u64::MAX);
        let mut chunks = LineChunks::new(reader, Self::CHUNK);
        let mut consumed: u64 = 0; // bytes of the stream before the current line
        while let Some(chunk) = chunks.next_chunk(self.spare.take())? {
            let mut rest = chunk.bytes();
            while !rest.is_empty() {
                if consumed >= limit {
                    self.spare = Some(chunk);
                    return Ok(());
                }
                let (text, taken) = match memchr::memchr(b'\n', rest) {
                    Some(at) => (&rest[..at], at + 1),
                    None => (rest, rest.len()),
                };
                line(text.strip_suffix(b"\r").unwrap_or(text));
                rest = &rest[taken..];
                consumed += taken as u64;
            }
            self.spare = Some(chunk);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_whole_whatever_the_reads() {
        let text = b"a\r\nbb\n\nccc";
        let mut lines = LineBuffer::default();
        let mut seen = Vec::new();
        lines
            .each(&mut &text[..], None, |l| seen.push(l.to_vec()))
            .expect("in memory");
        assert_eq!(
            seen,
            vec![b"a".to_vec(), b"bb".to_vec(), b"".to_vec(), b"ccc".to_vec()]
        );
        let mut seen = Vec::new();
        lines
            .each(&mut &text[..], Some(4), |l| seen.push(l.to_vec()))
            .expect("in memory");
        assert_eq!(seen, vec![b"a".to_vec(), b"bb".to_vec()]);
        let mut seen = Vec::new();
        lines
            .each(&mut &text[..], Some(7), |l| seen.push(l.to_vec()))
            .expect("in memory");
        assert_eq!(seen, vec![b"a".to_vec(), b"bb".to_vec(), b"".to_vec()]);
    }
}
