//! Cutting what was read into complete lines.
//!
//! Reads end anywhere; only whole lines may leave the tailer, each with its place in the file.
//! The bytes after the last newline (a line still being written) wait in a carry buffer for
//! their newline. A line longer than the limit keeps its first `max_line` bytes, skips the
//! rest up to its newline, and is handed out as a cut line: memory stays bounded, the line is
//! counted, and the lines after it are untouched.
//!
//! The splitter never reads files and never decides when a partial line is final (its file let
//! go, or a backfill run ends): [`crate::tailer`] does.
//!
//! It is not `maillog-parse`'s `lines`, the framer of inputs read to their end (`maillog
//! parse`, `maillog top`): a followed file is still being written, so this one keeps each
//! line's byte offsets (the checkpoint commits them), holds a partial line across reads until
//! its newline or its file is final, and cuts lines to a bound so that memory stays bounded;
//! the other has none of these and keeps every line whole.

use memchr::{memchr, memrchr};

/// What a piece of output holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    /// Complete lines exactly as in the file: `data` is the file's bytes `start..end`.
    Lines,
    /// One line longer than the limit: its first `max_line` bytes and a `\n`.
    CutLine,
    /// The last line of a file that is final (rotated away or deleted and quiet for the rotate
    /// wait, a copy, an archive, or a backfill run's end with
    /// [`crate::TailConfig::finish_partial_lines`]) that has no newline; a `\n` is added. A
    /// file an input names is never taken to be final while it is followed.
    PartialLine,
}

/// Lines cut from a file, before they are labelled with the file.
#[derive(Debug)]
pub(crate) struct Piece {
    pub start: u64,
    pub end: u64,
    pub data: Vec<u8>,
    pub kind: ChunkKind,
}

#[derive(Debug)]
pub(crate) struct LineSplitter {
    max_line: usize,
    /// The file's bytes from `delivered` on: a line without its newline yet.
    carry: Vec<u8>,
    /// While skipping the rest of an over-long line: the part kept.
    cut: Option<Vec<u8>>,
    /// Position just after the last line handed out.
    delivered: u64,
    /// Position just after the last byte read.
    consumed: u64,
    /// Leading bytes of the buffer last handed out by `buffer` that are known newline-free.
    scan_from: usize,
}

impl LineSplitter {
    pub(crate) fn new(max_line: usize, position: u64) -> Self {
        LineSplitter {
            max_line: max_line.max(2),
            carry: Vec::new(),
            cut: None,
            delivered: position,
            consumed: position,
            scan_from: 0,
        }
    }

    /// Position just after the last line handed out: where a restart would resume.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Position just after the last byte read.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Whether bytes of an unfinished line are waiting.
    pub(crate) fn has_partial(&self) -> bool {
        self.consumed > self.delivered
    }

    /// Starts over at `position` (a truncated file), dropping any unfinished line.
    pub(crate) fn reset(&mut self, position: u64) {
        *self = LineSplitter::new(self.max_line, position);
    }

    /// A buffer to read up to `read_size` more bytes into; pass it to [`Self::consume`].
    pub(crate) fn buffer(&mut self, read_size: usize) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.carry.len() + read_size);
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        self.scan_from = buf.len();
        buf
    }

    /// Takes a buffer from [`Self::buffer`] with the new bytes appended.
    pub(crate) fn consume(&mut self, mut buf: Vec<u8>, out: &mut dyn FnMut(Piece)) {
        self.consumed += (buf.len() - self.scan_from) as u64;
        if let Some(kept) = self.cut.as_mut() {
            let Some(newline) = memchr(b'\n', &buf) else {
                return; // still inside the over-long line: skip
            };
            let end = self.consumed - (buf.len() - newline - 1) as u64;
            let mut data = std::mem::take(kept);
            data.push(b'\n');
            out(Piece {
                start: self.delivered,
                end,
                data,
                kind: ChunkKind::CutLine,
            });
            self.cut = None;
            self.delivered = end;
            buf.drain(..=newline); // copies the rest: only after an over-long line
            self.scan_from = 0;
        }
        match memrchr(b'\n', &buf[self.scan_from..]) {
            None => self.carry = buf,
            Some(i) => {
                let last = self.scan_from + i;
                self.carry = buf[last + 1..].to_vec();
                buf.truncate(last + 1);
                self.emit_lines(buf, out);
            }
        }
        if self.carry.len() > self.max_line {
            self.carry.truncate(self.max_line);
            self.cut = Some(std::mem::take(&mut self.carry));
        }
    }

    /// Hands out what is left of an unfinished line (the file is final). Returns whether
    /// there was anything.
    pub(crate) fn flush_partial(&mut self, out: &mut dyn FnMut(Piece)) -> bool {
        if !self.has_partial() {
            return false;
        }
        let (mut data, kind) = match self.cut.take() {
            Some(kept) => (kept, ChunkKind::CutLine),
            None => (std::mem::take(&mut self.carry), ChunkKind::PartialLine),
        };
        data.push(b'\n');
        out(Piece {
            start: self.delivered,
            end: self.consumed,
            data,
            kind,
        });
        self.delivered = self.consumed;
        true
    }

    /// `lines` ends with a newline and starts at `delivered`.
    fn emit_lines(&mut self, lines: Vec<u8>, out: &mut dyn FnMut(Piece)) {
        let start = self.delivered;
        self.delivered += lines.len() as u64;
        if no_line_longer_than(&lines, self.max_line) {
            out(Piece {
                start,
                end: self.delivered,
                data: lines,
                kind: ChunkKind::Lines,
            });
            return;
        }
        // Rare: split around the over-long lines.
        let mut run_start = 0;
        let mut line_start = 0;
        for newline in memchr::memchr_iter(b'\n', &lines) {
            if newline - line_start > self.max_line {
                if run_start < line_start {
                    let data = lines[run_start..line_start].to_vec();
                    let (s, e) = (start + run_start as u64, start + line_start as u64);
                    out(Piece {
                        start: s,
                        end: e,
                        data,
                        kind: ChunkKind::Lines,
                    });
                }
                let mut data = lines[line_start..line_start + self.max_line].to_vec();
                data.push(b'\n');
                let (s, e) = (start + line_start as u64, start + newline as u64 + 1);
                out(Piece {
                    start: s,
                    end: e,
                    data,
                    kind: ChunkKind::CutLine,
                });
                run_start = newline + 1;
            }
            line_start = newline + 1;
        }
        if run_start < lines.len() {
            let data = lines[run_start..].to_vec();
            let s = start + run_start as u64;
            out(Piece {
                start: s,
                end: self.delivered,
                data,
                kind: ChunkKind::Lines,
            });
        }
    }
}

/// A quick proof that no line of `lines` is longer than `max` bytes (without its newline): a
/// longer line would cover a whole aligned block of `max / 2` bytes, so it is enough that every
/// such block holds a newline — one short `memchr` per block instead of one per line.
fn no_line_longer_than(lines: &[u8], max: usize) -> bool {
    if lines.len() <= max {
        return true;
    }
    let block = max / 2;
    lines
        .chunks_exact(block)
        .all(|b| memchr(b'\n', b).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in reads of `step` bytes and returns the pieces, flushing at the end.
    fn split(input: &[u8], step: usize, max: usize, flush: bool) -> (Vec<Piece>, LineSplitter) {
        let mut splitter = LineSplitter::new(max, 100);
        let mut pieces = Vec::new();
        for part in input.chunks(step) {
            let mut buf = splitter.buffer(step);
            buf.extend_from_slice(part);
            splitter.consume(buf, &mut |p| pieces.push(p));
        }
        if flush {
            splitter.flush_partial(&mut |p| pieces.push(p));
        }
        (pieces, splitter)
    }

    fn lines_of(pieces: &[Piece]) -> Vec<String> {
        let all: Vec<u8> = pieces.iter().flat_map(|p| p.data.clone()).collect();
        String::from_utf8(all)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn only_complete_lines_leave_and_positions_are_the_files() {
        let input = b"one\ntwo\nthree\nfou";
        for step in 1..=input.len() {
            let (pieces, splitter) = split(input, step, 64, false);
            assert_eq!(lines_of(&pieces), ["one", "two", "three"], "step {step}");
            assert_eq!(splitter.delivered(), 100 + 14);
            assert_eq!(splitter.consumed(), 100 + input.len() as u64);
            for p in &pieces {
                assert_eq!(p.kind, ChunkKind::Lines);
                assert_eq!(
                    &input[(p.start - 100) as usize..(p.end - 100) as usize],
                    &p.data[..]
                );
            }
        }
    }

    #[test]
    fn a_partial_line_is_flushed_with_a_newline_added() {
        let (pieces, splitter) = split(b"one\nfou", 3, 64, true);
        assert_eq!(lines_of(&pieces), ["one", "fou"]);
        let last = pieces.last().unwrap();
        assert_eq!(
            (last.kind, last.start, last.end),
            (ChunkKind::PartialLine, 104, 107)
        );
        assert!(!splitter.has_partial());
    }

    #[test]
    fn long_lines_are_cut_counted_and_the_rest_survives() {
        let long = "x".repeat(50);
        let input = format!("a\n{long}\nb\nc\n{long}{long}\nd\n{long}");
        for step in [1, 7, 16, 33, 200] {
            let (pieces, _) = split(input.as_bytes(), step, 16, true);
            let cut = "x".repeat(16);
            assert_eq!(
                lines_of(&pieces),
                ["a", &cut, "b", "c", &cut, "d", &cut],
                "step {step}"
            );
            let cuts: Vec<_> = pieces
                .iter()
                .filter(|p| p.kind == ChunkKind::CutLine)
                .collect();
            assert_eq!(cuts.len(), 3, "step {step}");
            assert_eq!((cuts[0].start, cuts[0].end), (102, 153), "step {step}");
            assert_eq!(cuts[2].end, 100 + input.len() as u64, "step {step}");
        }
    }

    #[test]
    fn the_block_test_never_passes_a_long_line() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2000 {
            let mut text = Vec::new();
            for _ in 0..20 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                text.extend(std::iter::repeat_n(b'x', (rng % 40) as usize));
                text.push(b'\n');
            }
            let max = 2 + (rng % 40) as usize;
            let longest = text.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap();
            if no_line_longer_than(&text, max) {
                assert!(longest <= max, "max {max}, longest {longest}");
            }
        }
    }
}
