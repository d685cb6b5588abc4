//! Cutting a decompressed stream into lines, for the scan's workers.
//!
//! It owns only the framing: every line handed out ends before its `\n` (and a `\r` before
//! it), the last line counts even without a line end, nothing is dropped or repeated, and a
//! range stops before the first line that starts past its limit. It never looks inside a line.

use std::io::{self, Read};

/// Cuts a stream into lines without copying them, in one growing buffer per thread.
#[derive(Default)]
pub(super) struct LineBuffer {
    buf: Vec<u8>,
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
        if self.buf.len() < Self::CHUNK {
            self.buf.resize(Self::CHUNK, 0);
        }
        let (mut start, mut filled) = (0usize, 0usize);
        let mut consumed: u64 = 0; // bytes of the stream before `buf[start]`
        loop {
            while let Some(at) = memchr::memchr(b'\n', &self.buf[start..filled]) {
                if limit.is_some_and(|limit| consumed >= limit) {
                    return Ok(());
                }
                let text = &self.buf[start..start + at];
                line(text.strip_suffix(b"\r").unwrap_or(text));
                start += at + 1;
                consumed += at as u64 + 1;
            }
            if start > 0 {
                self.buf.copy_within(start..filled, 0);
                filled -= start;
                start = 0;
            }
            if filled == self.buf.len() {
                let longer = self.buf.len() * 2;
                self.buf.resize(longer, 0);
            }
            let n = match reader.read(&mut self.buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                if filled > 0 && limit.is_none_or(|limit| consumed < limit) {
                    let text = &self.buf[..filled];
                    line(text.strip_suffix(b"\r").unwrap_or(text));
                }
                return Ok(());
            }
            filled += n;
        }
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
    }
}
