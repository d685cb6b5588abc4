//! `maillog parse`: syslog files in, the archive's records out as NDJSON, a summary on stderr.
//!
//! This module owns reading the named files (or stdin) line by line, choosing each file's year
//! reference (its modification time, now for stdin, or `--year`), and writing records. A file
//! that cannot be read is reported by name and the others are still parsed; lines that make no
//! record are only counted. It never interprets a line itself.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};

use bstr::io::BufReadExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use maillog_parse::{
    FieldsMode, Kind, ParseStats, Parsed, Parser, TimeContext, YearPolicy, Zone, decode,
};

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

/// How many bytes of NDJSON to gather before writing them out.
const OUTPUT_CHUNK: usize = 256 * 1024;

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
    let mut parser = Parser::new(TimeContext::new(args.tz, fallback), &args.sendmail_programs);
    let mut out = Output::new(mode, only);
    let mut total = ParseStats::default();
    let mut failed = 0usize;

    for path in &args.files {
        let stats = match parse_input(path, &mut parser, args.year, &mut out) {
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
    match out.flush() {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        result => result.context("cannot write to stdout")?,
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

/// Parses one input into `out` and returns its counts.
fn parse_input(
    path: &Path,
    parser: &mut Parser,
    year: Option<i32>,
    out: &mut Output,
) -> Result<ParseStats> {
    let (reader, reference): (Box<dyn Read>, _) = if path == Path::new("-") {
        (Box::new(io::stdin().lock()), Utc::now())
    } else {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let modified = file
            .metadata()
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        (Box::new(file), modified)
    };
    parser.set_year_policy(match year {
        Some(year) => YearPolicy::Fixed(year),
        None => YearPolicy::Reference(reference),
    });
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut stats = ParseStats::default();
    let mut write_error = None;
    let read = reader.for_byte_line_with_terminator(|line| {
        let decoded = decode(line);
        let parsed = parser.parse(&decoded.text);
        stats.count(&parsed, decoded.lossy);
        if let Parsed::Event(event) = &parsed
            && let Err(error) = out.write_event(event)
        {
            write_error = Some(error);
            return Ok(false);
        }
        Ok(true)
    });
    if let Some(error) = write_error {
        return Err(error).context("cannot write to stdout");
    }
    read.with_context(|| format!("cannot read {} after line {}", path.display(), stats.lines))?;
    Ok(stats)
}

/// NDJSON records gathered in a buffer and written to stdout in large chunks.
struct Output {
    mode: FieldsMode,
    only: Option<Kind>,
    buf: Vec<u8>,
    stdout: io::Stdout,
}

impl Output {
    fn new(mode: FieldsMode, only: Option<Kind>) -> Self {
        Output {
            mode,
            only,
            buf: Vec::with_capacity(OUTPUT_CHUNK + 64 * 1024),
            stdout: io::stdout(),
        }
    }

    fn write_event(&mut self, event: &maillog_parse::Event<'_>) -> io::Result<()> {
        if self.only.is_some_and(|kind| kind != event.kind) {
            return Ok(());
        }
        for record in event.records() {
            match self.only {
                Some(_) => record.write_json(self.mode, &mut self.buf),
                None => record.write_json_with_kind(self.mode, &mut self.buf),
            }
            self.buf.push(b'\n');
        }
        if self.buf.len() >= OUTPUT_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut stdout = self.stdout.lock();
        stdout.write_all(&self.buf)?;
        stdout.flush()?;
        self.buf.clear();
        Ok(())
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
