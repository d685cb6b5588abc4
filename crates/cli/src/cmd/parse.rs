//! `maillog parse`: syslog files in, the archive's records out as NDJSON, a summary on stderr.
//!
//! This module owns the arguments, the settings it takes from the config (`time_zone`, `year`,
//! `sendmail_programs`, each overridden by its flag), opening the named files (or stdin),
//! choosing each file's year reference (its modification time — a compressed file's own — now
//! for stdin, or the year), the summaries on stderr and the exit code. A file that cannot be
//! read is reported by name and the others are still parsed; lines that make no record are only
//! counted. Telling bzip2 and gzip from their first bytes and decompressing them is
//! `maillog_aggregate::decompress`'s; parsing an input on every core with the records in input
//! order is `maillog_parse::stream`'s; this module never interprets a line.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use maillog_aggregate::decompress::decompressed;
use maillog_parse::stream::{Output, StreamError, parse_stream};
use maillog_parse::{FieldsMode, ParseStats, Parser, TimeContext, YearPolicy, Zone};

use crate::args::KindArg;

/// Arguments of `maillog parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Write only the original pipeline's fields (no ts, relay_ip or other sendmail keys).
    #[arg(long)]
    original_fields: bool,

    /// Write only records of this kind (and leave the `kind` key out).
    #[arg(long, value_enum)]
    kind: Option<KindArg>,

    /// Time zone of stamps without an offset: UTC, an offset such as +02:00, or an IANA name
    /// [default: the config's time_zone, else UTC].
    #[arg(long, value_parser = parse_zone)]
    tz: Option<Zone>,

    /// Year of year-less (BSD) stamps [default: the config's year]. Without either, a file's
    /// modification time (a compressed file's own; stdin: now) is the reference: the latest
    /// year that puts the line no more than a day after it.
    #[arg(long)]
    year: Option<i32>,

    /// A further program name to treat as sendmail (repeatable; given, it replaces the
    /// config's sendmail_programs).
    #[arg(long = "sendmail-program", value_name = "NAME")]
    sendmail_programs: Vec<String>,

    /// The config whose time_zone, year and sendmail_programs are used [default:
    /// $MAILLOG_CONFIG, else ./pipeline.toml, else /etc/maillog/pipeline.toml, else the
    /// built-in defaults].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Lines longer than this many bytes (without the newline) keep their first N bytes, as
    /// `maillog run` cuts them (`[tail] max_line_bytes`); counted in the summary.
    #[arg(long, value_name = "N", default_value_t = maillog_parse::DEFAULT_MAX_LINE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..=1 << 30))]
    max_line_bytes: usize,

    /// Parsing threads (default: one per core). Records come out in input order regardless.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// Files to read, plain, gzip or bzip2 (told from their first bytes); `-` is stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    files: Vec<PathBuf>,
}

fn parse_zone(text: &str) -> Result<Zone, String> {
    text.parse::<Zone>().map_err(|e| e.to_string())
}

/// Runs `maillog parse`: exit 0 when every file was read, 1 when one could not be (2, through
/// `main`, when the config cannot be used).
pub fn run(args: ParseArgs) -> Result<ExitCode> {
    let config = ParseConfig::load(&args)?;
    let mode = if args.original_fields {
        FieldsMode::Original
    } else {
        FieldsMode::All
    };
    let fallback = YearPolicy::Reference(Utc::now());
    let parser = Parser::new(TimeContext::new(config.zone, fallback), &config.programs);
    let output = Output {
        mode,
        only: args.kind.map(Into::into),
        max_line: args.max_line_bytes,
    };
    let threads = args
        .threads
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut total = ParseStats::default();
    let mut failed = 0usize;

    for path in &args.files {
        let stats = match parse_input(path, &parser, config.year, output, threads) {
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

/// What `maillog parse` takes from the config file, each overridden by its flag.
struct ParseConfig {
    zone: Zone,
    year: Option<i32>,
    programs: Vec<String>,
}

impl ParseConfig {
    /// The config `maillog_config::load_or_default` finds; its `time_zone` is checked even when
    /// `--tz` is given (a config that cannot be used is an error either way).
    fn load(args: &ParseArgs) -> Result<ParseConfig> {
        let loaded = maillog_config::load_or_default(args.config.as_deref())?;
        let zone = loaded.zone()?;
        let file = loaded.file;
        Ok(ParseConfig {
            zone: args.tz.unwrap_or(zone),
            year: args.year.or(file.year),
            programs: if args.sendmail_programs.is_empty() {
                file.sendmail_programs
            } else {
                args.sendmail_programs.clone()
            },
        })
    }
}

/// Parses one input on `threads` threads, writing its records to stdout, and returns its
/// counts.
fn parse_input(
    path: &Path,
    parser: &Parser,
    year: Option<i32>,
    output: Output,
    threads: usize,
) -> Result<ParseStats> {
    let (reader, reference) = open_input(path)?;
    let mut parser = parser.clone();
    parser.set_year_policy(match year {
        Some(year) => YearPolicy::Fixed(year),
        None => YearPolicy::Reference(reference),
    });
    match parse_stream(reader, &parser, output, threads, &mut io::stdout().lock()) {
        Ok(stats) => Ok(stats),
        Err(StreamError::Write(error)) => Err(error).context("cannot write to stdout"),
        Err(StreamError::Read { lines, source }) => Err(source)
            .with_context(|| format!("cannot read {} after line {lines}", path.display())),
    }
}

/// Opens an input, decompressed when its first bytes say bzip2 or gzip, and gives the instant
/// year-less stamps are read against: a file's modification time (a finished file's lines are
/// not after it; for a compressed file, the compressed file's), or now for stdin.
fn open_input(path: &Path) -> Result<(impl Read + Send + use<>, DateTime<Utc>)> {
    let (raw, reference): (Box<dyn Read + Send>, _) = if path == Path::new("-") {
        (Box::new(io::stdin()), Utc::now())
    } else {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let modified = file
            .metadata()
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(|_| Utc::now());
        (Box::new(file), modified)
    };
    let reader = decompressed(BufReader::with_capacity(256 << 10, raw))
        .with_context(|| format!("cannot read {}", name(path)))?;
    Ok((reader, reference))
}

/// An input's name in messages: its path, or `stdin` for `-`.
fn name(path: &Path) -> String {
    if path == Path::new("-") {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
