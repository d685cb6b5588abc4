//! `maillog top` and `maillog report`: the archive's questions, from the shell.
//!
//! This module owns the arguments, the settings taken from the config (time zone, year and
//! sendmail programs for raw syslog, `[s3]` for `s3://` inputs, the archive as the default
//! input), the progress bar, the messages about broken inputs and the exit code: 0 when every
//! input was read whole, 1 when one was not (the answer is printed either way, counting what
//! could be read), 0 again with `--keep-going`. The counting is `maillog_aggregate`'s.

mod inputs;
mod progress;
mod render;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use maillog_aggregate::query::{Filter, Key, Where, parse_instant};
use maillog_aggregate::report::{ReportQuery, ReportTally};
use maillog_aggregate::scan::{self, Input, Outcome, Problem, ScanOptions};
use maillog_aggregate::tally::{Metric, Tally, TopQuery, TopTally};
use maillog_parse::{Kind, Parser, TimeContext, YearPolicy};
use maillog_upload::S3Options;

use crate::config;
use render::Format;

/// What every query takes: inputs, time range, output, how to read.
#[derive(Debug, Args)]
pub struct Scope {
    /// Archive directories, archive files (.json.bz2, .json.gz, .json), raw syslog files, `-`
    /// for stdin, or s3://bucket/prefix (with `*` globs). Default: the configured archive.
    #[arg(value_name = "INPUT")]
    inputs: Vec<String>,

    /// Only records at or after this time: RFC 3339, or YYYY-MM-DD[THH:MM[:SS]] in UTC.
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    since: Option<i64>,

    /// Only records before this time (same forms as --since).
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    until: Option<i64>,

    /// Entries per list.
    #[arg(short = 'n', long = "limit", value_name = "N", default_value_t = 10)]
    n: usize,

    /// Output: an aligned table, or JSON / CSV for programs.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,

    /// Exit 0 even when an input was broken (it is still named on stderr).
    #[arg(long)]
    keep_going: bool,

    /// Reading threads (default: one per core; at least 8 when reading from S3).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// The config whose time zone, year, sendmail programs, [s3] and archive are used
    /// (default: ./pipeline.toml when present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Year of year-less stamps in raw syslog (default: the file's modification time).
    #[arg(long)]
    year: Option<i32>,

    /// No progress bar, even on a terminal.
    #[arg(long)]
    quiet: bool,
}

/// Arguments of `maillog top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// What to count by: mailserver, src, dest, relay, src_domain, dest_domain, status, or any
    /// record field (mailer, dsn, …).
    #[arg(long, value_name = "KEY")]
    by: Key,

    /// The records counted (default: `to` for dest*, status and delivery fields, else `from`).
    #[arg(long, value_enum)]
    kind: Option<KindArg>,

    /// What ranks: records, or message bytes (`to` records get their `from`'s size).
    #[arg(long, value_enum, default_value = "count")]
    metric: MetricArg,

    /// Only records whose FIELD (any key above) is VALUE; repeatable, all must hold.
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    wheres: Vec<Where>,

    #[command(flatten)]
    scope: Scope,
}

/// Arguments of `maillog report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    scope: Scope,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    From,
    To,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MetricArg {
    Count,
    Bytes,
}

/// Runs `maillog top`.
pub fn top(args: TopArgs) -> Result<ExitCode> {
    let query = TopQuery {
        kind: match args.kind {
            Some(KindArg::From) => Kind::From,
            Some(KindArg::To) => Kind::To,
            None => args.by.default_kind(),
        },
        key: args.by,
        metric: match args.metric {
            MetricArg::Count => Metric::Count,
            MetricArg::Bytes => Metric::Bytes,
        },
        filter: filter(&args.scope, args.wheres),
        n: args.scope.n,
    };
    let scope = &args.scope;
    let (outcome, problems) = run(scope, || TopTally::new(&query))?;
    let rows = outcome.tally.answer();
    write(|out| render::top(out, scope.format, &query.key.to_string(), &rows))?;
    Ok(finish(scope, &outcome, problems))
}

/// Runs `maillog report`.
pub fn report(args: ReportArgs) -> Result<ExitCode> {
    let query = ReportQuery {
        filter: filter(&args.scope, Vec::new()),
        n: args.scope.n,
    };
    let scope = &args.scope;
    let (outcome, problems) = run(scope, || ReportTally::new(&query))?;
    let answer = outcome.tally.answer();
    write(|out| render::report(out, scope.format, &answer))?;
    Ok(finish(scope, &outcome, problems))
}

fn filter(scope: &Scope, wheres: Vec<Where>) -> Filter {
    Filter {
        wheres,
        since: scope.since,
        until: scope.until,
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn write(print: impl FnOnce(&mut io::StdoutLock<'_>) -> io::Result<()>) -> Result<()> {
    let mut out = io::stdout().lock();
    match print(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// The exit code, after saying what was not read.
fn finish<T>(scope: &Scope, outcome: &Outcome<T>, problems: usize) -> ExitCode {
    if problems == 0 {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "maillog: {problems} problem(s) above; the answer counts every record that could be read \
         ({} records from {} inputs)",
        outcome.records, outcome.inputs_read
    );
    if scope.keep_going {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The settings a query takes from the config.
struct Settings {
    parser: Parser,
    year: Option<i32>,
    s3: S3Options,
    archive: String,
}

fn settings(scope: &Scope) -> Result<Settings> {
    let loaded = config::load_or_default(scope.config.as_deref())?;
    let zone = loaded.zone()?;
    let file = &loaded.file;
    let parser = Parser::new(
        TimeContext::new(zone, YearPolicy::Reference(chrono::Utc::now())),
        &file.sendmail_programs,
    );
    // The same `[s3]` as `run` reads, `checksum` included.
    let s3 = file.s3.options();
    let archive = file
        .archive
        .clone()
        .unwrap_or_else(|| "file://archive".into());
    Ok(Settings {
        parser,
        year: scope.year.or(file.year),
        s3,
        archive,
    })
}

/// Resolves the inputs and scans them, printing problems as they come; gives the outcome and
/// the number of problems.
fn run<T: Tally>(scope: &Scope, make: impl Fn() -> T + Sync) -> Result<(Outcome<T>, usize)> {
    let settings = settings(scope)?;
    let args = if scope.inputs.is_empty() {
        let archive = &settings.archive;
        vec![
            archive
                .strip_prefix("file://")
                .unwrap_or(archive)
                .to_owned(),
        ]
    } else {
        scope.inputs.clone()
    };
    let resolved = inputs::resolve(&args, &settings.s3);
    let bar: OnceLock<indicatif::ProgressBar> = OnceLock::new();
    let say = |problem: Problem| {
        let line = format!("maillog: {}: {}", problem.input, problem.message);
        match bar.get() {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    };
    let unresolved = resolved.problems.len();
    for problem in resolved.problems {
        say(problem);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match scope.threads {
        Some(n) => usize::from(n),
        None if resolved.remote => cores.max(8),
        None => cores,
    };
    let options = ScanOptions {
        threads,
        parser: settings.parser,
        year: settings.year,
        range_bytes: ScanOptions::RANGE_BYTES,
    };
    let inputs: Vec<Input> = resolved.inputs;
    let total: Option<u64> = inputs.iter().map(|i| i.len).sum();
    let read = AtomicU64::new(0);
    let show = !scope.quiet && progress::wanted();
    let done = progress::Done::default();
    let outcome = std::thread::scope(|threads| {
        if show {
            threads.spawn(|| progress::run(&bar, &read, total, &done));
        }
        let outcome = scan::scan(&inputs, &options, make, &read, &say);
        done.set();
        outcome
    });
    if let Some(bar) = bar.get() {
        bar.finish_and_clear();
    }
    let problems = unresolved + outcome.problems;
    Ok((outcome, problems))
}
