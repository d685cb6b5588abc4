//! What `maillog top` and `maillog report` share: the arguments of a query's scope, the
//! settings taken from the config (time zone, year and sendmail programs for raw syslog, `[s3]`
//! for `s3://` inputs, the archive as the default input), writing the answer to stdout, and the
//! exit code: 0 when every input was read whole, 1 when one was not (the answer is printed
//! either way, counting what could be read), 0 again with `--keep-going`.
//!
//! It never resolves or reads inputs and never counts: running a query is
//! `maillog_aggregate::runner`'s; problems and the progress bar are [`crate::progress`]'s.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use maillog_aggregate::inputs::Source;
use maillog_aggregate::inputs::{Bucket, BucketError, Listing};
use maillog_aggregate::query::{Filter, Where};
use maillog_aggregate::range::{BOTH_KINDS, DaySpec, Range, Selection, TimeSpec};
use maillog_aggregate::runner::{self, QueryInputs};
use maillog_aggregate::scan::Outcome;
use maillog_aggregate::tally::Tally;
use maillog_archive::{ArchiveUrl, S3Options, S3Reader};
use maillog_parse::{Parser, TimeContext, YearPolicy};

use crate::progress::Terminal;
use crate::render::Format;

/// What every query takes: inputs, time range, output, how to read.
#[derive(Debug, Args)]
pub struct Scope {
    /// Archive directories, archive files (.json.bz2, .json.gz, .json), raw syslog files, `-`
    /// for stdin, or s3://bucket/prefix (with `*` globs). Default: the configured archive.
    #[arg(value_name = "INPUT")]
    inputs: Vec<String>,

    /// Only records at or after this time: now, today, yesterday, a duration back from now
    /// (2h, 7d, 1h30m), YYYY-MM-DD[THH:MM[:SS]] or HH:MM in the configured time zone, or RFC
    /// 3339 with an offset.
    #[arg(long, value_name = "T")]
    since: Option<TimeSpec>,

    /// Only records before this time (same forms as --since).
    #[arg(long, value_name = "T")]
    until: Option<TimeSpec>,

    /// Only records of this calendar day in the configured time zone: today, yesterday or
    /// YYYY-MM-DD.
    #[arg(long, value_name = "DATE", conflicts_with_all = ["since", "until"])]
    day: Option<DaySpec>,

    /// Entries per list.
    #[arg(short = 'n', long = "limit", value_name = "N", default_value_t = 10)]
    pub n: usize,

    /// Output: an aligned table, or JSON / CSV for programs.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Exit 0 even when an input was broken (it is still named on stderr).
    #[arg(long)]
    keep_going: bool,

    /// Where an archive's records are read: auto (its Parquet mirror, written by `maillog
    /// compact` or `[mirror]`, where it holds them, the bzip2 files elsewhere), bzip2 or
    /// parquet (only those). The answers are the same; the mirror is read in the columns the
    /// query needs.
    #[arg(long, value_name = "SOURCE", default_value = "auto")]
    source: Source,

    /// Reading threads (default: one per core; at least 8 when reading from S3).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// The config whose time zone, year, sendmail programs, [s3] and archive are used
    /// [default: $MAILLOG_CONFIG, else ./pipeline.toml, else /etc/maillog/pipeline.toml, else
    /// the built-in defaults].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Year of year-less stamps in raw syslog (default: the file's modification time).
    #[arg(long)]
    year: Option<i32>,

    /// No progress bar, even on a terminal.
    #[arg(long)]
    quiet: bool,
}

impl Scope {
    /// Loads the config the query runs with (see [`QueryConfig`]).
    pub fn config(&self) -> Result<QueryConfig> {
        QueryConfig::load(self)
    }

    /// The filter of the time range (in the config's zone) and `wheres`.
    pub fn filter(&self, wheres: Vec<Where>, config: &QueryConfig) -> Filter {
        Filter {
            wheres,
            range: config.selection.range,
        }
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub fn write(print: impl FnOnce(&mut io::StdoutLock<'_>) -> io::Result<()>) -> Result<()> {
    let mut out = io::stdout().lock();
    match print(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// The exit code, after saying what was not read.
pub fn finish<T>(scope: &Scope, outcome: &Outcome<T>) -> ExitCode {
    if outcome.problems == 0 {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "maillog: {} problem(s) above; the answer counts every record that could be read \
         ({} records from {} inputs)",
        outcome.problems, outcome.records, outcome.inputs_read
    );
    if scope.keep_going {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What a query takes from the config file, and its time range read in the config's zone.
pub struct QueryConfig {
    parser: Parser,
    year: Option<i32>,
    s3: S3Options,
    archive: ArchiveUrl,
    selection: Selection,
}

impl QueryConfig {
    fn load(scope: &Scope) -> Result<QueryConfig> {
        let loaded = maillog_config::load_or_default(scope.config.as_deref())?;
        let zone = loaded.zone()?;
        let file = &loaded.file;
        let parser = Parser::new(
            TimeContext::new(zone, YearPolicy::Reference(chrono::Utc::now())),
            &file.sendmail_programs,
        );
        // The same `[s3]` as `run` reads, `checksum` included.
        let s3 = file.s3.options();
        let cwd = std::env::current_dir().context("cannot tell the working directory")?;
        let archive = loaded.archive()?;
        let archive = archive.unwrap_or_else(|| ArchiveUrl::Local(cwd.join("archive")));
        let now = chrono::Utc::now();
        let range = match scope.day {
            Some(day) => day.range(&zone, now),
            None => Range::of(scope.since, scope.until, &zone, now)?,
        };
        Ok(QueryConfig {
            parser,
            year: scope.year.or(file.year),
            s3,
            archive,
            selection: Selection {
                range,
                zone,
                joins_sizes: false, // set by the runner, which knows the query
                kinds: BOTH_KINDS,  // the same
            },
        })
    }
}

/// An S3 bucket as the query runner reads it.
struct S3Bucket(S3Reader);

impl Bucket for S3Bucket {
    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, BucketError> {
        Ok(self.0.list(prefix)?)
    }

    fn open(&self, key: &str) -> io::Result<Box<dyn io::Read + Send>> {
        let object = self.0.open(key).map_err(io::Error::other)?;
        Ok(Box::new(object))
    }

    fn tail(&self, key: &str, bytes: u64) -> io::Result<Vec<u8>> {
        let mut tail = Vec::new();
        let mut object = self.0.open_tail(key, bytes).map_err(io::Error::other)?;
        io::Read::read_to_end(&mut object, &mut tail)?;
        Ok(tail)
    }

    fn list_level(&self, prefix: &str) -> Result<Listing, BucketError> {
        let level = self.0.list_level(prefix)?;
        Ok(Listing {
            folders: level.folders,
            objects: level.objects,
        })
    }
}

/// Runs a query over the scope's inputs (the configured archive when none is named), problems
/// and progress shown on stderr as they come.
pub fn run<T: Tally>(
    scope: &Scope,
    config: QueryConfig,
    make: impl Fn() -> T + Sync,
) -> Result<Outcome<T>> {
    let args = if scope.inputs.is_empty() {
        // The scan takes a local archive as a directory.
        let archive = &config.archive;
        vec![match archive.local_dir() {
            Some(dir) => dir.display().to_string(),
            None => archive.to_string(),
        }]
    } else {
        scope.inputs.clone()
    };
    let s3 = &config.s3;
    let connect = |bucket: &str| -> Result<Arc<dyn Bucket>, BucketError> {
        let reader = S3Reader::connect(bucket, s3)?;
        Ok(Arc::new(S3Bucket(reader)))
    };
    let query = QueryInputs {
        args: &args,
        threads: scope.threads.map(usize::from),
        parser: config.parser,
        year: config.year,
        connect: &connect,
        selection: config.selection,
        source: scope.source,
    };
    let terminal = Terminal::new(scope.quiet);
    let outcome = runner::run(query, make, &terminal);
    terminal.finish();
    Ok(outcome)
}
