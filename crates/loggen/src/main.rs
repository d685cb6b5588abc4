//! `maillog-loggen`: writes a generated sendmail cluster log to stdout or a file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDateTime;
use clap::{Parser, ValueEnum};
use maillog_loggen::{Config, HeaderStyle, write_log};

/// Generate the aggregated syslog file of a sendmail cluster, deterministically from a seed.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Number of lines.
    #[arg(long, default_value_t = 10_000)]
    lines: u64,
    /// Seed of the random choices: the same arguments give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Wall-clock (UTC) time of the first line, `YYYY-MM-DDTHH:MM:SS`.
    #[arg(long, default_value = "2025-12-31T23:15:00")]
    start: NaiveDateTime,
    /// Number of mail servers.
    #[arg(long, default_value_t = 10)]
    servers: usize,
    /// Mean lines per second.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Header style.
    #[arg(long, value_enum, default_value = "bsd")]
    header: Style,
    /// Write here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Style {
    Bsd,
    Iso,
    Rfc5424,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = Config {
        seed: args.seed,
        lines: args.lines,
        start: args.start,
        servers: args.servers,
        rate: args.rate,
        style: match args.header {
            Style::Bsd => HeaderStyle::Bsd,
            Style::Iso => HeaderStyle::Iso,
            Style::Rfc5424 => HeaderStyle::Rfc5424,
        },
    };
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            write_log(&config, &mut out)
                .and_then(|_| out.flush())
                .with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match write_log(&config, &mut out).and_then(|_| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                result => result.context("cannot write to stdout"),
            }
        }
    }
}
