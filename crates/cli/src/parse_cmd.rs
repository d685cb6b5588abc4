//! `maillog parse`: syslog files in, the archive's records out as NDJSON, a summary on stderr.
//!
//! This module owns reading the named files (or stdin) in chunks of whole lines, parsing them on
//! every core, writing the records in input order, and choosing each file's year reference (its
//! modification time, now for stdin, or `--year`). A file that cannot be read is reported by name
//! and the others are still parsed; lines that make no record are only counted. It never
//! interprets a line itself.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::{Context, Result};
use bstr::ByteSlice;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use maillog_parse::{
    FieldsMode, Kind, ParseStats, Parsed, Parser, TimeContext, YearPolicy, Zone, decode,
};

use crate::chunks::{Chunk, ChunkReader};

/// Arguments of `maillog parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Write only the original pipeline's fields (no ts, relay_ip or other sendmail keys).
    #[arg(long)]
    original_fields: bool,

    /// Write only records of this kind (and leave the `kind` key out).
    #[arg(long, value_enum)]
    kind: Option<KindArg>,

    /// Time zone of stamps without an offset: UTC, an offset such as +02:00, or an IANA name.
    #[arg(long, default_value = "UTC", value_parser = parse_zone)]
    tz: Zone,

    /// Year of year-less (BSD) stamps. Without it, a file's modification time (stdin: now) is
    /// the reference: the latest year that puts the line no more than a day after it.
    #[arg(long)]
    year: Option<i32>,

    /// A further program name to treat as sendmail (repeatable).
    #[arg(long = "sendmail-program", value_name = "NAME")]
    sendmail_programs: Vec<String>,

    /// Lines longer than this many bytes (without the newline) keep their first N bytes, as
    /// `maillog run` cuts them (`[tail] max_line_bytes`); counted in the summary.
    #[arg(long, value_name = "N", default_value_t = maillog_parse::DEFAULT_MAX_LINE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=1 << 30))]
    max_line_bytes: usize,

    /// Parsing threads (default: one per core). Records come out in input order regardless.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// Files to read; `-` is stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    From,
    To,
}

fn parse_zone(text: &str) -> Result<Zone, String> {
    text.parse::<Zone>().map_err(|e| e.to_string())
}

/// How many bytes of input each parsing thread takes at a time.
const CHUNK_SIZE: usize = 1 << 20;

/// Runs `maillog parse`: exit 0 when every file was read, 1 when one could not be.
pub fn run(args: ParseArgs) -> Result<ExitCode> {
    let mode = if args.original_fields {
        FieldsMode::Original
    } else {
        FieldsMode::All
    };
    let only = args.kind.map(|k| match k {
        KindArg::From => Kind::From,
        KindArg::To => Kind::To,
    });
    let fallback = YearPolicy::Reference(Utc::now());
    let parser = Parser::new(TimeContext::new(args.tz, fallback), &args.sendmail_programs);
    let sink = Sink {
        mode,
        only,
        max_line: args.max_line_bytes,
    };
    let threads = args
        .threads
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut total = ParseStats::default();
    let mut failed = 0usize;

    for path in &args.files {
        let stats = match parse_input(path, &parser, args.year, sink, threads) {
            Ok(stats) => stats,
            Err(error) if is_broken_pipe(&error) => {
                // The reader went away (`maillog parse … | head`): stop quietly.
                return Ok(ExitCode::SUCCESS);
            }
            Err(error) => {
                eprintln!("maillog parse: {error:#}");
                failed += 1;
                continue;
            }
        };
        if args.files.len() > 1 {
            eprintln!("maillog parse: {}: {stats}", path.display());
        }
        total.merge(&stats);
    }
    eprintln!("maillog parse: {total}");
    if failed > 0 {
        eprintln!(
            "maillog parse: {failed} of {} inputs could not be read",
            args.files.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses one input, writing its records to stdout, and returns its counts.
///
/// A reader thread cuts the input into chunks of whole lines, `threads` workers parse them
/// (chunk `i` goes to worker `i % threads`), and this thread writes the workers' output in
/// chunk order, so the records come out in input order. Every channel is bounded: a slow
/// stdout stops the workers, and they stop the reader.
fn parse_input(
    path: &Path,
    parser: &Parser,
    year: Option<i32>,
    sink: Sink,
    threads: usize,
) -> Result<ParseStats> {
    let (reader, reference) = open_input(path)?;
    let mut parser = parser.clone();
    parser.set_year_policy(match year {
        Some(year) => YearPolicy::Fixed(year),
        None => YearPolicy::Reference(reference),
    });
    let threads = threads.max(1);
    let mut stats = ParseStats::default();
    let mut write_result = Ok(());
    let read_result = std::thread::scope(|scope| {
        // Used input chunks go back to the reader, used output buffers back to their worker.
        let (spare_chunk_tx, spare_chunk_rx) = mpsc::sync_channel::<Chunk>(threads * 3);
        let mut work = Vec::with_capacity(threads);
        let mut done = Vec::with_capacity(threads);
        let mut spare_outputs = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (work_tx, work_rx) = mpsc::sync_channel::<Chunk>(2);
            let (done_tx, done_rx) = mpsc::sync_channel::<(Vec<u8>, ParseStats)>(2);
            let (spare_output_tx, spare_output_rx) = mpsc::sync_channel::<Vec<u8>>(3);
            let (parser, spare_chunk_tx) = (&parser, spare_chunk_tx.clone());
            scope.spawn(move || {
                for chunk in work_rx {
                    let mut output = spare_output_rx.try_recv().unwrap_or_default();
                    output.clear();
                    let stats = parse_chunk(parser, sink, chunk.bytes(), &mut output);
                    let _ = spare_chunk_tx.try_send(chunk);
                    if done_tx.send((output, stats)).is_err() {
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
            let mut chunks = ChunkReader::new(reader, CHUNK_SIZE);
            let mut next = 0;
            while let Some(chunk) = chunks.next_chunk(spare_chunk_rx.try_recv().ok())? {
                if work[next % work.len()].send(chunk).is_err() {
                    break;
                }
                next += 1;
            }
            Ok(())
        });
        let mut stdout = io::stdout().lock();
        for next in 0.. {
            let Ok((output, chunk_stats)) = done[next % done.len()].recv() else {
                break;
            };
            stats.merge(&chunk_stats);
            if let Err(error) = stdout.write_all(&output) {
                write_result = Err(error);
                break;
            }
            let _ = spare_outputs[next % spare_outputs.len()].try_send(output);
        }
        drop(done);
        if write_result.is_ok() {
            write_result = stdout.flush();
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reading thread failed")))
    });
    write_result.context("cannot write to stdout")?;
    read_result
        .with_context(|| format!("cannot read {} after line {}", path.display(), stats.lines))?;
    Ok(stats)
}

/// Opens an input and gives the instant year-less stamps are read against: a file's
/// modification time (a finished file's lines are not after it), or now for stdin.
fn open_input(path: &Path) -> Result<(Box<dyn Read + Send>, DateTime<Utc>)> {
    if path == Path::new("-") {
        return Ok((Box::new(io::stdin()), Utc::now()));
    }
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let modified = file
        .metadata()
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now());
    Ok((Box::new(file), modified))
}

/// Parses a chunk of whole lines into NDJSON appended to `output`, and counts them.
fn parse_chunk(parser: &Parser, sink: Sink, chunk: &[u8], output: &mut Vec<u8>) -> ParseStats {
    let mut stats = ParseStats::default();
    for line in chunk.lines_with_terminator() {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let line = if content.len() > sink.max_line {
            stats.cut_lines += 1;
            &content[..sink.max_line]
        } else {
            line
        };
        let decoded = decode(line);
        let parsed = parser.parse(&decoded.text);
        stats.count(&parsed, decoded.lossy);
        if let Parsed::Event(event) = &parsed {
            sink.write_event(event, output);
        }
    }
    stats
}

/// Which records are written, and how; lines are cut to the length limit first.
#[derive(Debug, Clone, Copy)]
struct Sink {
    mode: FieldsMode,
    only: Option<Kind>,
    /// Lines are cut to this many bytes first (as the tailer cuts them).
    max_line: usize,
}

impl Sink {
    fn write_event(&self, event: &maillog_parse::Event<'_>, out: &mut Vec<u8>) {
        if self.only.is_some_and(|kind| kind != event.kind) {
            return;
        }
        for record in event.records() {
            match self.only {
                Some(_) => record.write_json(self.mode, out),
                None => record.write_json_with_kind(self.mode, out),
            }
            out.push(b'\n');
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
