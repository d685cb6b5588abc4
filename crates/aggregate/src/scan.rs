//! Reading inputs on every core and feeding their records to per-thread tallies.
//!
//! An [`Input`] is a file, stdin, or a stream someone else opens (an S3 object). What it holds
//! is found from its bytes, not its name ([`crate::decompress`]): bzip2 (multistream read whole),
//! gzip, or plain; then JSON lines (first byte `{`) or raw syslog, which is parsed on the fly
//! with `maillog-parse`. The name only tells the kind of an archive file (`from-…`, `to-…`), so that
//! files a query does not need are never opened. A large plain file is cut into byte ranges of
//! whole lines, and a large bzip2 file into runs of its streams (`streams`), so that all cores
//! share it.
//!
//! Worker threads take the next unit of work from a shared counter; `from` files go first, so
//! the size join rarely has to wait. A broken input (unreadable, corrupt or truncated
//! compression, a line that is not JSON) becomes a [`Problem`] naming it; what was read before
//! still counts, and the other inputs go on. Memory is one read buffer per thread plus the
//! tallies: it never holds an input whole.
//!
//! It never decides what counts (that is the tally) and never prints (problems go to a callback).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use maillog_parse::{Kind, NonRecord, Parsed, Parser, YearPolicy, decode};

use crate::decompress::{Compression, decompressed};
use crate::fields::Fields;
use crate::json::Scanner;
use crate::mirror::Columns;
use crate::tally::{Needs, Sizes, Tally};

/// Opens a stream input.
pub type Opener = Box<dyn FnOnce() -> io::Result<Box<dyn Read + Send>> + Send>;

/// Where an input's bytes come from.
pub enum Origin {
    /// A local file.
    Path(PathBuf),
    /// Standard input.
    Stdin,
    /// A stream opened once, when its turn comes.
    Stream(Mutex<Option<Opener>>),
}

/// What an input's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Lines: JSON records or raw syslog, compressed or not (told from the bytes).
    Lines,
    /// A Parquet file of the mirror ([`crate::mirror`]).
    Mirror,
}

/// One input of a query.
pub struct Input {
    /// The name problems and progress use (a path, `-`, `s3://bucket/key`).
    pub name: String,
    /// Where the bytes come from.
    pub origin: Origin,
    /// Its size in bytes, when known before reading.
    pub len: Option<u64>,
    /// What its bytes are.
    pub format: Format,
}

impl Input {
    /// A local file.
    pub fn path(path: PathBuf, len: Option<u64>) -> Input {
        Input {
            name: path.display().to_string(),
            origin: Origin::Path(path),
            len,
            format: Format::Lines,
        }
    }

    /// This input, read as a mirror file.
    pub fn as_mirror(self) -> Input {
        Input {
            format: Format::Mirror,
            ..self
        }
    }

    /// Standard input.
    pub fn stdin() -> Input {
        Input {
            name: "-".to_owned(),
            origin: Origin::Stdin,
            len: None,
            format: Format::Lines,
        }
    }

    /// A stream, opened by `open` when a thread takes it.
    pub fn stream(name: String, len: Option<u64>, open: Opener) -> Input {
        Input {
            name,
            origin: Origin::Stream(Mutex::new(Some(open))),
            len,
            format: Format::Lines,
        }
    }

    /// The kind its file name gives: `from-…` or `to-…`.
    pub fn kind_by_name(&self) -> Option<Kind> {
        let base = self.name.rsplit('/').next().unwrap_or(&self.name);
        if base.starts_with("from-") {
            Some(Kind::From)
        } else if base.starts_with("to-") {
            Some(Kind::To)
        } else {
            None
        }
    }
}

/// Something wrong with one input; the rest of the work goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The input's name.
    pub input: String,
    /// What is wrong, and what of it still counted.
    pub message: String,
}

/// How inputs are read.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Worker threads.
    pub threads: usize,
    /// The parser of raw syslog inputs.
    pub parser: Parser,
    /// The year of year-less stamps; `None`: a file's modification time (stdin, streams: now).
    pub year: Option<i32>,
    /// Plain files are read in ranges of this many bytes (when at least twice as big), and
    /// bzip2 files of an eighth of it (4 MiB) or more in runs of whole streams, so that all
    /// cores share one big file: [`ScanOptions::RANGE_BYTES`].
    pub range_bytes: u64,
}

impl ScanOptions {
    /// The default size of a range of a plain file.
    pub const RANGE_BYTES: u64 = 32 << 20;
}

/// What a scan did.
#[derive(Debug)]
pub struct Outcome<T> {
    /// The merged, settled tally.
    pub tally: T,
    /// Inputs read (whole or in part).
    pub inputs_read: usize,
    /// Inputs not opened because the query does not need their kind.
    pub inputs_skipped: usize,
    /// Records seen (of every kind read).
    pub records: u64,
    /// Problems reported.
    pub problems: usize,
}

/// Bad lines reported one by one per unit of work; the rest are counted.
const BAD_LINES_SHOWN: u64 = 3;

/// A piece of work: an input, a byte range of a plain file, or a run of whole bzip2 streams
/// of a file (`streams`: `range` is then where they are, see `streams`).
#[derive(Debug, Clone, Copy)]
struct Unit {
    input: usize,
    range: Option<(u64, u64)>,
    streams: bool,
}

/// Shared by the workers.
struct Shared<'a> {
    inputs: &'a [Input],
    options: &'a ScanOptions,
    needs: Needs,
    /// The columns of mirror files to read.
    columns: Columns,
    sizes: Sizes,
    read: &'a AtomicU64,
    report: &'a (dyn Fn(Problem) + Sync),
    problems: AtomicUsize,
    records: AtomicU64,
    /// For raw syslog: the text every line of a needed record holds, when only one kind is
    /// needed (`: to=` or `: from=`, which the parser requires right after the queue id), so
    /// that the other lines are never parsed.
    needle: Option<memchr::memmem::Finder<'static>>,
    /// The cut lines at the ends of the units of bzip2 streams, joined after the scan.
    seams: Mutex<Vec<streams::Seam>>,
}

/// Reads every input on `options.threads` threads into tallies made by `make`, merges them,
/// and settles the size join. `read` counts the input bytes consumed (for a progress bar);
/// `report` gets each problem as it is found.
pub fn scan<T: Tally>(
    inputs: &[Input],
    options: &ScanOptions,
    make: impl Fn() -> T + Sync,
    read: &AtomicU64,
    report: &(dyn Fn(Problem) + Sync),
) -> Outcome<T> {
    let (needs, columns) = {
        let tally = make();
        (tally.needs(), tally.columns())
    };
    let (units, skipped) = plan(inputs, needs, options);
    let shared = Shared {
        inputs,
        options,
        needs,
        columns,
        sizes: Sizes::default(),
        read,
        report,
        problems: AtomicUsize::new(0),
        records: AtomicU64::new(0),
        seams: Mutex::new(Vec::new()),
        needle: match (needs.reads(Kind::From), needs.reads(Kind::To)) {
            (false, true) => Some(memchr::memmem::Finder::new(b": to=")),
            (true, false) => Some(memchr::memmem::Finder::new(b": from=")),
            _ => None,
        },
    };
    let next = AtomicUsize::new(0);
    let threads = options.threads.clamp(1, units.len().max(1));
    let mut tallies: Vec<T> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut tally = make();
                    let mut worker = Worker::default();
                    while let Some(unit) = units.get(next.fetch_add(1, Ordering::Relaxed)) {
                        worker.run(&shared, *unit, &mut tally);
                    }
                    tally
                })
            })
            .collect();
        // A panic is a bug: passed on whole, never a silently smaller answer.
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect()
    });
    tallies.push(streams::count_seams(&shared, make()));
    let mut tally = tallies.pop().unwrap_or_else(&make);
    tally.settle(&shared.sizes);
    for mut other in tallies {
        other.settle(&shared.sizes);
        tally.merge(other);
    }
    let inputs_read = {
        let mut seen: Vec<usize> = units.iter().map(|u| u.input).collect();
        seen.dedup();
        seen.len()
    };
    Outcome {
        tally,
        inputs_read,
        inputs_skipped: skipped,
        records: shared.records.load(Ordering::Relaxed),
        problems: shared.problems.load(Ordering::Relaxed),
    }
}

/// The units of work, in the order they are taken: `from` files first (their sizes feed the
/// join), then the rest, the largest first within each; and how many inputs need no reading.
fn plan(inputs: &[Input], needs: Needs, options: &ScanOptions) -> (Vec<Unit>, usize) {
    let range = options.range_bytes.max(1);
    let mut order: Vec<usize> = Vec::new();
    let mut skipped = 0;
    for (i, input) in inputs.iter().enumerate() {
        match input.kind_by_name() {
            Some(kind) if !needs.reads(kind) => skipped += 1,
            _ => order.push(i),
        }
    }
    order.sort_by_key(|&i| {
        let input = &inputs[i];
        let first = input.kind_by_name() == Some(Kind::From);
        (!first, std::cmp::Reverse(input.len.unwrap_or(0)))
    });
    let mut units = Vec::new();
    for i in order {
        match (&inputs[i].origin, inputs[i].len) {
            (Origin::Path(path), Some(len))
                if len >= 2 * range && inputs[i].format == Format::Lines && is_plain(path) =>
            {
                let mut start = 0;
                while start < len {
                    let end = (start + range).min(len);
                    units.push(Unit {
                        input: i,
                        range: Some((start, end)),
                        streams: false,
                    });
                    start = end;
                }
            }
            (Origin::Path(path), Some(len))
                if options.threads > 1 && len >= range / 8 && inputs[i].format == Format::Lines =>
            {
                units.extend(streams::units(i, path, len));
            }
            _ => units.push(Unit {
                input: i,
                range: None,
                streams: false,
            }),
        }
    }
    (units, skipped)
}

/// Whether a file is neither bzip2 nor gzip (an unreadable file is not split; opening it again
/// reports the problem).
fn is_plain(path: &Path) -> bool {
    let mut magic = [0u8; 3];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| Compression::of(&magic) == Compression::None)
}

/// Counts the bytes read from an input, for the progress bar.
struct Counted<'a, R> {
    inner: R,
    read: &'a AtomicU64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// One worker thread's reusable buffers.
#[derive(Default)]
struct Worker {
    lines: LineBuffer,
    scanner: Scanner,
}

/// What one unit of work met.
#[derive(Debug, Default)]
struct UnitCounts {
    lines: u64,
    records: u64,
    bad_lines: u64,
}

impl Shared<'_> {
    /// Says how many of a unit's `bad_lines` were not reported one by one (past
    /// [`BAD_LINES_SHOWN`]), and where (`in the range from byte 0`).
    fn report_unshown(&self, input: &Input, bad_lines: u64, place: &str) {
        if bad_lines > BAD_LINES_SHOWN {
            self.problems.fetch_add(1, Ordering::Relaxed);
            (self.report)(Problem {
                input: input.name.clone(),
                message: format!(
                    "{} more lines that are not JSON records {place}",
                    bad_lines - BAD_LINES_SHOWN
                ),
            });
        }
    }
}

impl Worker {
    fn run<T: Tally>(&mut self, shared: &Shared<'_>, unit: Unit, tally: &mut T) {
        let input = &shared.inputs[unit.input];
        let mut counts = UnitCounts::default();
        let result = self.read_unit(shared, unit, tally, &mut counts);
        shared.records.fetch_add(counts.records, Ordering::Relaxed);
        let place = match unit.range {
            Some((start, _)) => format!("the range from byte {start}"),
            None => "it".to_owned(),
        };
        shared.report_unshown(input, counts.bad_lines, &format!("in {place}"));
        if let Err(error) = result {
            shared.problems.fetch_add(1, Ordering::Relaxed);
            (shared.report)(Problem {
                input: input.name.clone(),
                message: format!(
                    "{error} (after {} lines of {place}, whose {} records are counted)",
                    counts.lines, counts.records
                ),
            });
        }
    }

    fn read_unit<T: Tally>(
        &mut self,
        shared: &Shared<'_>,
        unit: Unit,
        tally: &mut T,
        counts: &mut UnitCounts,
    ) -> io::Result<()> {
        let input = &shared.inputs[unit.input];
        if input.format == Format::Mirror {
            return columnar::mirror_file(shared, input, tally, counts);
        }
        if unit.streams {
            return streams::read_unit(self, shared, unit, tally, counts);
        }
        let Opened {
            reader: raw,
            reference,
            limit,
        } = open(input, unit.range)?;
        let counted = Counted {
            inner: raw,
            read: shared.read,
        };
        let buffered = BufReader::with_capacity(256 << 10, counted);
        let mut decoded = decompressed(buffered)?;
        let mut lines = LineCounter::new(shared, input, reference, limit.is_some());
        let scanner = &mut self.scanner;
        self.lines.each(&mut decoded, limit, |line| {
            lines.line(scanner, line, tally, counts);
        })
    }
}

/// Counts the lines of one input (or a part of it), what they are told by the first non-blank
/// one.
struct LineCounter<'s, 'a> {
    shared: &'s Shared<'a>,
    input: &'s Input,
    /// The year-less stamps' reference instant.
    reference: DateTime<Utc>,
    /// Read in parts, so line numbers are not known.
    ranged: bool,
    content: Content,
}

impl<'s, 'a> LineCounter<'s, 'a> {
    fn new(
        shared: &'s Shared<'a>,
        input: &'s Input,
        reference: DateTime<Utc>,
        ranged: bool,
    ) -> Self {
        LineCounter {
            shared,
            input,
            reference,
            ranged,
            content: Content::Unknown,
        }
    }

    fn line<T: Tally>(
        &mut self,
        scanner: &mut Scanner,
        line: &[u8],
        tally: &mut T,
        counts: &mut UnitCounts,
    ) {
        let shared = self.shared;
        counts.lines += 1;
        if let Content::Unknown = self.content {
            match line.iter().find(|b| !b.is_ascii_whitespace()) {
                None => return, // a blank line tells nothing
                Some(b'{') => self.content = Content::Json,
                Some(_) => {
                    let mut parser = shared.options.parser.clone();
                    parser.set_year_policy(match shared.options.year {
                        Some(year) => YearPolicy::Fixed(year),
                        None => YearPolicy::Reference(self.reference),
                    });
                    self.content = Content::Syslog(parser);
                    tally.saw_raw_input();
                }
            }
        }
        match &self.content {
            Content::Json => {
                let at = JsonInput {
                    name: &self.input.name,
                    kind: self.input.kind_by_name(),
                    ranged: self.ranged,
                };
                json_line(shared, scanner, &at, line, tally, counts);
            }
            Content::Syslog(parser) => syslog_line(shared, parser, line, tally, counts),
            Content::Unknown => {}
        }
    }
}

/// What an input's lines are, once its first non-blank line told.
enum Content {
    Unknown,
    Json,
    Syslog(Parser),
}

/// The JSON input a line is of.
struct JsonInput<'a> {
    name: &'a str,
    /// The kind its name gives.
    kind: Option<Kind>,
    /// Read in ranges, so line numbers are not known.
    ranged: bool,
}

/// Counts one line of a JSON input; a line that is not a JSON record is a problem.
fn json_line<T: Tally>(
    shared: &Shared<'_>,
    scanner: &mut Scanner,
    input: &JsonInput<'_>,
    line: &[u8],
    tally: &mut T,
    counts: &mut UnitCounts,
) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match scanner.scan(line, input.kind) {
        Ok(record) => count(shared, &record, tally, counts),
        Err(error) => {
            counts.bad_lines += 1;
            if counts.bad_lines <= BAD_LINES_SHOWN {
                shared.problems.fetch_add(1, Ordering::Relaxed);
                let place = if input.ranged {
                    "a line".to_owned()
                } else {
                    format!("line {}", counts.lines)
                };
                (shared.report)(Problem {
                    input: input.name.to_owned(),
                    message: format!("{place}: {error}"),
                });
            }
        }
    }
}

/// Counts one record, noting its size first when it is a `from` record the join needs.
fn count<F: Fields, T: Tally>(
    shared: &Shared<'_>,
    record: &F,
    tally: &mut T,
    counts: &mut UnitCounts,
) {
    counts.records += 1;
    if shared.needs.sizes && record.kind() == Kind::From {
        shared.sizes.note(record);
    }
    tally.record(record, &shared.sizes);
}

/// Counts the records of one raw syslog line, and `reject=` lines.
fn syslog_line<T: Tally>(
    shared: &Shared<'_>,
    parser: &Parser,
    line: &[u8],
    tally: &mut T,
    counts: &mut UnitCounts,
) {
    if let Some(needle) = &shared.needle
        && needle.find(line).is_none()
    {
        return;
    }
    let text = decode(line);
    match parser.parse(&text.text) {
        Parsed::Event(event) => {
            for record in event.records() {
                count(shared, &record, tally, counts);
            }
        }
        Parsed::NonRecord(NonRecord::SendmailOther) => {
            // `reject=` is the last field of the line: its value runs to the end.
            if let Some(at) = text.text.find("reject=") {
                tally.rejected_line(&text.text[at + "reject=".len()..]);
            }
        }
        Parsed::NonRecord(_) => {}
    }
}

mod columnar;
mod lines;
mod open;
mod streams;
#[cfg(test)]
mod tests;

use lines::LineBuffer;
use open::{Opened, open};
