//! `maillog`: the command-line edge of the pipeline.
//!
//! This binary owns argument parsing, exit codes and output for humans (messages, the
//! progress bar, the answers' tables, JSON and CSV in [`render`]); every subcommand is a file
//! of [`cmd`] that drives library crates: the config (`maillog-config`), then `run` the
//! pipeline (`maillog-pipeline`), `parse` the parser (`maillog-parse`), `top` and `report` the
//! aggregation (`maillog-aggregate`). It never parses log lines, reads inputs or counts records
//! itself.

mod args;
mod cmd;
mod help;
mod progress;
mod render;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cmd::{check, docs, mirror, parse, report, run, top};

/// Parse, batch, archive and report on the sendmail logs of a mail cluster.
#[derive(Debug, Parser)]
#[command(name = "maillog", version, about, propagate_version = true,
          after_long_help = help::top_level_long_help())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse syslog files into NDJSON records on stdout, with a summary on stderr.
    #[command(after_long_help = help::subcommand_long_help(help::PARSE_EXAMPLES))]
    Parse(parse::ParseArgs),
    /// Follow the logs, batch the records into 5-minute bzip2 files, archive them.
    #[command(after_long_help = help::subcommand_long_help(help::RUN_EXAMPLES))]
    Run(run::RunArgs),
    /// Check the configuration (and, with --probe-archive, the archive) without running.
    #[command(after_long_help = help::subcommand_long_help(help::CHECK_EXAMPLES))]
    Check(check::CheckArgs),
    /// The top keys of the archive, raw logs or S3: senders, recipients, servers, relays, ….
    #[command(after_long_help = help::subcommand_long_help(help::TOP_EXAMPLES))]
    Top(top::TopArgs),
    /// A pflogsumm-style summary: totals, per hour, top senders/recipients, domains, relays.
    #[command(after_long_help = help::subcommand_long_help(help::REPORT_EXAMPLES))]
    Report(report::ReportArgs),
    /// Write the columnar mirror (Parquet) of an archive's settled hours, on disk or S3; idempotent.
    #[command(after_long_help = help::subcommand_long_help(help::COMPACT_EXAMPLES))]
    Compact(mirror::CompactArgs),
    /// Compare the mirror with the archive (records as multisets); exit 1 on a difference.
    #[command(after_long_help = help::subcommand_long_help(help::VERIFY_EXAMPLES))]
    Verify(mirror::VerifyArgs),
    /// Print the completion script for a shell on stdout.
    #[command(after_long_help = help::subcommand_long_help(help::COMPLETIONS_EXAMPLES))]
    Completions(docs::CompletionsArgs),
    /// Write the man pages (maillog.1, maillog-SUBCOMMAND.1) into a directory.
    #[command(hide = true)]
    Manpages(docs::ManpagesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        maillog_pipeline::logging::init_default(); // `run` sets up its logs from its config
    }
    let result = match cli.command {
        Command::Parse(args) => parse::run(args),
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::check(args),
        Command::Top(args) => top::run(args),
        Command::Report(args) => report::run(args),
        Command::Compact(args) => mirror::compact(args),
        Command::Verify(args) => mirror::verify(args),
        Command::Completions(args) => docs::completions(args),
        Command::Manpages(args) => docs::manpages(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("maillog: {error:#}");
            // A config that cannot be used, keys of a query that would count nothing, or an empty
            // range: 2, as
            // for a wrong argument (clap's own code).
            if error
                .downcast_ref::<maillog_config::ConfigError>()
                .is_some()
                || error
                    .downcast_ref::<maillog_aggregate::query::KindError>()
                    .is_some()
                || error
                    .downcast_ref::<maillog_aggregate::range::EmptyRange>()
                    .is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
