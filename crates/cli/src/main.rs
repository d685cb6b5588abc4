//! `maillog`: the command-line edge of the pipeline.
//!
//! This binary owns argument parsing, the config file, exit codes and messages for humans;
//! every subcommand drives a library crate: `run` the pipeline (`maillog-pipeline`), `parse`
//! the parser, `top` and `report` the aggregation (`maillog-aggregate`). It never parses log
//! lines itself (that is `maillog-parse`).

mod chunks;
mod config;
mod parse_cmd;
mod query;
mod run_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Parse, batch, archive and report on the sendmail logs of a mail cluster.
#[derive(Debug, Parser)]
#[command(name = "maillog", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse syslog files into NDJSON records on stdout, with a summary on stderr.
    Parse(parse_cmd::ParseArgs),
    /// Follow the logs, batch the records into 5-minute bzip2 files, archive them.
    Run(run_cmd::RunArgs),
    /// Check the configuration (and, with --probe-archive, the archive) without running.
    Check(run_cmd::CheckArgs),
    /// The top keys of the archive, raw logs or S3: senders, recipients, servers, relays, ….
    Top(query::TopArgs),
    /// A pflogsumm-style summary: totals, per hour, top senders/recipients, domains, relays.
    Report(query::ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        maillog_pipeline::logging::init_default(); // `run` sets up its logs from its config
    }
    let result = match cli.command {
        Command::Parse(args) => parse_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Check(args) => run_cmd::check(args),
        Command::Top(args) => query::top(args),
        Command::Report(args) => query::report(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("maillog: {error:#}");
            // A config that cannot be used: 2, as for a wrong argument (clap's own code).
            if error.downcast_ref::<config::ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
