//! Parsing one input on every core, its records written as NDJSON in input order: the engine of
//! `maillog parse`.
//!
//! This module owns the orchestration: a reader thread cuts the input into chunks of whole lines
//! ([`crate::lines`]), workers parse them (chunk `i` goes to worker `i % threads`), and the
//! calling thread writes the workers' output in chunk order, so the records come out in input
//! order. Every channel is bounded: a slow writer stops the workers, and they stop the reader.
//! Buffers go back to where they came from, so a long input costs no fresh memory per chunk.
//! Lines longer than the limit keep their first bytes, as the tailer of `maillog run` cuts them.
//!
//! It never opens files, never chooses a year reference (the caller sets the parser's year
//! policy) and never prints anything but records.

use std::io::{self, Read, Write};
use std::sync::mpsc;

use crate::lines::{LineChunk, LineChunks, lines_with_terminator};
use crate::{Event, FieldsMode, Kind, ParseStats, Parsed, Parser, decode};

/// How many bytes of input each parsing thread takes at a time.
const CHUNK_SIZE: usize = 1 << 20;

/// Which records are written, and how; lines are cut to the length limit first.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// The fields written.
    pub mode: FieldsMode,
    /// Only records of this kind, without the `kind` key; `None`: all, with it.
    pub only: Option<Kind>,
    /// Lines are cut to this many bytes first (as the tailer cuts them), without the newline.
    pub max_line: usize,
}

/// Why an input was not parsed to its end.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The output could not be written (a reader that went away is a broken pipe).
    #[error("cannot write the records")]
    Write(#[source] io::Error),
    /// The input could not be read after `lines` lines (their records were written).
    #[error("cannot read after line {lines}")]
    Read {
        /// Lines read and parsed before the error.
        lines: u64,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// Parses `reader` with `parser` on `threads` threads, writing the records to `out` in input
/// order; gives the input's counts.
pub fn parse_stream(
    reader: impl Read + Send,
    parser: &Parser,
    output: Output,
    threads: usize,
    out: &mut dyn Write,
) -> Result<ParseStats, StreamError> {
    let threads = threads.max(1);
    let mut stats = ParseStats::default();
    let mut write_result = Ok(());
    let read_result = std::thread::scope(|scope| {
        // Used input chunks go back to the reader, used output buffers back to their worker.
        let (spare_chunk_tx, spare_chunk_rx) = mpsc::sync_channel::<LineChunk>(threads * 3);
        let mut work = Vec::with_capacity(threads);
        let mut done = Vec::with_capacity(threads);
        let mut spare_outputs = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (work_tx, work_rx) = mpsc::sync_channel::<LineChunk>(2);
            let (done_tx, done_rx) = mpsc::sync_channel::<(Vec<u8>, ParseStats)>(2);
            let (spare_output_tx, spare_output_rx) = mpsc::sync_channel::<Vec<u8>>(3);
            let spare_chunk_tx = spare_chunk_tx.clone();
            scope.spawn(move || {
                for chunk in work_rx {
                    let mut bytes = spare_output_rx.try_recv().unwrap_or_default();
                    bytes.clear();
                    let stats = parse_chunk(parser, output, chunk.bytes(), &mut bytes);
                    let _ = spare_chunk_tx.try_send(chunk);
                    if done_tx.send((bytes, stats)).is_err() {
                        break;
                    }
                }
            });
            work.push(work_tx);
            done.push(done_rx);
            spare_outputs.push(spare_output_tx);
        }
        drop(spare_chunk_tx);
        let reader = scope.spawn(move || -> io::Result<()> {
            let mut chunks = LineChunks::new(reader, CHUNK_SIZE);
            let mut next = 0;
            while let Some(chunk) = chunks.next_chunk(spare_chunk_rx.try_recv().ok())? {
                if work[next % work.len()].send(chunk).is_err() {
                    break;
                }
                next += 1;
            }
            Ok(())
        });
        for next in 0.. {
            let Ok((bytes, chunk_stats)) = done[next % done.len()].recv() else {
                break;
            };
            stats.merge(&chunk_stats);
            if let Err(error) = out.write_all(&bytes) {
                write_result = Err(error);
                break;
            }
            let _ = spare_outputs[next % spare_outputs.len()].try_send(bytes);
        }
        drop(done);
        if write_result.is_ok() {
            write_result = out.flush();
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reading thread failed")))
    });
    write_result.map_err(StreamError::Write)?;
    read_result.map_err(|source| StreamError::Read {
        lines: stats.lines,
        source,
    })?;
    Ok(stats)
}

/// Parses a chunk of whole lines into NDJSON appended to `bytes`, and counts them.
fn parse_chunk(parser: &Parser, output: Output, chunk: &[u8], bytes: &mut Vec<u8>) -> ParseStats {
    let mut stats = ParseStats::default();
    for line in lines_with_terminator(chunk) {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let line = if content.len() > output.max_line {
            stats.cut_lines += 1;
            &content[..output.max_line]
        } else {
            line
        };
        let decoded = decode(line);
        let parsed = parser.parse(&decoded.text);
        stats.count(&parsed, decoded.lossy);
        if let Parsed::Event(event) = &parsed {
            output.write_event(event, bytes);
        }
    }
    stats
}

impl Output {
    fn write_event(&self, event: &Event<'_>, bytes: &mut Vec<u8>) {
        if self.only.is_some_and(|kind| kind != event.kind) {
            return;
        }
        for record in event.records() {
            match self.only {
                Some(_) => record.write_json(self.mode, bytes),
                None => record.write_json_with_kind(self.mode, bytes),
            }
            bytes.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TimeContext, YearPolicy, Zone};

    #[test]
    fn records_come_out_in_input_order_whatever_the_threads() {
        let mut input = Vec::new();
        for i in 0..30_000 {
            input.extend_from_slice(
                format!(
                    "Jul 13 00:00:01 mx1 sendmail[1]: q{i:08}: from=<a{i}@x.org>, size=1, \
                     nrcpts=1, relay=[10.0.0.1]\n"
                )
                .as_bytes(),
            );
        }
        let parser = Parser::new(
            TimeContext::new(Zone::Utc, YearPolicy::Fixed(2011)),
            &[] as &[String],
        );
        let output = Output {
            mode: FieldsMode::Original,
            only: None,
            max_line: 1 << 20,
        };
        let mut one = Vec::new();
        let stats = parse_stream(&input[..], &parser, output, 1, &mut one).expect("parsed");
        assert_eq!(stats.lines, 30_000);
        let mut four = Vec::new();
        parse_stream(&input[..], &parser, output, 4, &mut four).expect("parsed");
        assert_eq!(one, four);
        assert_eq!(one.iter().filter(|&&b| b == b'\n').count(), 30_000);
    }
}
