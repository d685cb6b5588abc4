//! `maillog`: the command-line edge of the pipeline.
//!
//! This binary owns argument parsing, exit codes and messages for humans; every subcommand is a
//! thin driver over a library crate. It never parses log lines itself (that is `maillog-parse`).

mod chunks;
mod parse_cmd;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => parse_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("maillog: {error:#}");
            ExitCode::FAILURE
        }
    }
}
