//! One bzip2 file read on every core. The archive's files are chains of independent bzip2
//! streams, one per 900 kB block (`maillog_batch`'s compressors), so a big file is cut at
//! stream starts into units of a few streams, each decoded by whichever worker is free: few or
//! uneven files keep every core busy. Blocks are cut by size, so a line may run across a cut:
//! a unit counts the lines wholly inside it and keeps the bytes before its first line end and
//! after its last (a [`Seam`]); after the scan, the seams of a file are joined in order into
//! the lines they cut, and those are counted.
//!
//! Streams are found by `maillog_batch::compress::stream_starts`. A file with fewer than [`STREAMS_PER_UNIT`] twice, or unreadable, is one unit
//! as before.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::{Counted, LineCounter, Origin, Shared, Unit, UnitCounts, Worker};
use crate::json::Scanner;
use crate::tally::Tally;

/// Streams per unit (about 3.6 MB of lines).
const STREAMS_PER_UNIT: usize = 4;

/// The ends of a unit's decoded bytes, around the lines it counted.
pub(super) struct Seam {
    input: usize,
    /// Where the unit starts in the file (the seams' order).
    start: u64,
    /// The bytes before its first line end (all of them when it has none).
    head: Vec<u8>,
    /// Whether it has a line end.
    ends_a_line: bool,
    /// The bytes after its last line end.
    tail: Vec<u8>,
    /// The year-less stamps' reference instant (the file's modification time).
    reference: DateTime<Utc>,
}

/// The units of the bzip2 file `path` (`len` bytes): runs of [`STREAMS_PER_UNIT`] streams, or
/// the whole file as one unit.
pub(super) fn units(input: usize, path: &Path, len: u64) -> Vec<Unit> {
    let whole = Unit {
        input,
        range: None,
        streams: false,
    };
    let starts = match stream_starts(path) {
        Ok(starts) if starts.len() >= 2 * STREAMS_PER_UNIT => starts,
        _ => return vec![whole],
    };
    let firsts: Vec<u64> = starts.iter().step_by(STREAMS_PER_UNIT).copied().collect();
    firsts
        .iter()
        .enumerate()
        .map(|(i, start)| Unit {
            input,
            range: Some((*start, firsts.get(i + 1).copied().unwrap_or(len))),
            streams: true,
        })
        .collect()
}

/// Where each bzip2 stream of `path` starts (none if it is not bzip2).
fn stream_starts(path: &Path) -> io::Result<Vec<u64>> {
    let bytes = std::fs::read(path)?;
    Ok(maillog_batch::compress::stream_starts(&bytes)
        .into_iter()
        .map(|at| at as u64)
        .collect())
}

/// Decodes a unit's streams, counts the lines wholly inside them, and keeps its seam. What was
/// decoded before an error counts, as for any input.
pub(super) fn read_unit<T: Tally>(
    worker: &mut Worker,
    shared: &Shared<'_>,
    unit: Unit,
    tally: &mut T,
    counts: &mut UnitCounts,
) -> io::Result<()> {
    let input = &shared.inputs[unit.input];
    let (Origin::Path(path), Some((start, end))) = (&input.origin, unit.range) else {
        return Err(io::Error::other("a unit of streams of no file"));
    };
    let mut file = File::open(path)?;
    let modified = file
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    file.seek(SeekFrom::Start(start))?;
    let raw = Counted {
        inner: file.take(end - start),
        read: shared.read,
    };
    let mut decoded = Vec::new();
    let result = bzip2::bufread::MultiBzDecoder::new(BufReader::with_capacity(256 << 10, raw))
        .read_to_end(&mut decoded);
    let reference = DateTime::<Utc>::from(modified);
    let first = memchr::memchr(b'\n', &decoded);
    let last = memchr::memrchr(b'\n', &decoded);
    let (head, inside, tail) = match (first, last) {
        (Some(first), Some(last)) => (
            &decoded[..first],
            &decoded[first + 1..=last],
            &decoded[last + 1..],
        ),
        _ => (&decoded[..], &[][..], &[][..]),
    };
    let mut lines = LineCounter::new(shared, input, reference, true);
    let scanner = &mut worker.scanner;
    worker.lines.each(&mut &inside[..], None, |line| {
        lines.line(scanner, line, tally, counts);
    })?;
    let seam = Seam {
        input: unit.input,
        start,
        head: head.to_vec(),
        ends_a_line: first.is_some(),
        tail: tail.to_vec(),
        reference,
    };
    if let Ok(mut seams) = shared.seams.lock() {
        seams.push(seam);
    }
    result.map(drop)
}

/// Joins every file's seams in order into the lines they cut and counts them into `tally`.
pub(super) fn count_seams<T: Tally>(shared: &Shared<'_>, mut tally: T) -> T {
    let mut seams = match shared.seams.lock() {
        Ok(mut seams) => std::mem::take(&mut *seams),
        Err(_) => return tally, // a worker panicked: the scan passes the panic on
    };
    seams.sort_by_key(|seam| (seam.input, seam.start));
    let mut scanner = Scanner::default();
    for file in seams.chunk_by(|a, b| a.input == b.input) {
        let input = &shared.inputs[file[0].input];
        let mut lines = LineCounter::new(shared, input, file[0].reference, true);
        let mut counts = UnitCounts::default();
        let mut line = Vec::new();
        let mut count = |line: &[u8], counts: &mut UnitCounts| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            lines.line(&mut scanner, line, &mut tally, counts);
        };
        for seam in file {
            line.extend_from_slice(&seam.head);
            if seam.ends_a_line {
                count(&line, &mut counts);
                line.clear();
                line.extend_from_slice(&seam.tail);
            }
        }
        if !line.is_empty() {
            count(&line, &mut counts); // the last line, without a line end
        }
        shared.records.fetch_add(counts.records, Ordering::Relaxed);
        shared.report_unshown(input, counts.bad_lines, "where its streams meet");
    }
    tally
}
