//! `maillog run`: settings from `pipeline.toml` and the flags, then the pipeline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use maillog_pipeline::logging;
use maillog_pipeline::{Service, Settings, Signals};

use maillog_config::ConfigOrigin;
use maillog_config::settings::{self, Flags};

use crate::args::Output;

/// Arguments of `maillog run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The config file [default: $MAILLOG_CONFIG, else ./pipeline.toml, else
    /// /etc/maillog/pipeline.toml, else the built-in defaults].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A path or glob to follow instead of the config's inputs (repeatable).
    #[arg(long = "input", value_name = "PATH_OR_GLOB")]
    inputs: Vec<PathBuf>,
    /// The archive: file://DIR (or a path), or s3://bucket/prefix.
    #[arg(long, value_name = "URL")]
    archive: Option<String>,
    /// The spool directory (checkpoint, open windows, sealed files).
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// Read every input to its end, archive what is due, and exit: `--once` (or `--once=due`)
    /// seals the windows whose time has come and leaves the others, and an unterminated last
    /// line, in the spool for the next run (a job every few minutes); `--once=all` seals
    /// everything and takes a last line without a newline as a line (a backfill).
    #[arg(long, value_name = "WHAT", num_args = 0..=1, require_equals = true, default_missing_value = "due")]
    once: Option<Once>,
    /// The summary at the end: `text` on stderr for people, `json` (one object on stdout:
    /// lines, records, windows sealed, files archived, the tailer's counters) for programs.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    format: Output,
}

/// What `--once` seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Once {
    /// The windows that are due; the rest waits in the spool for the next run.
    Due,
    /// Every window, and a last line without its newline (a backfill of finished files).
    All,
}

/// `maillog run`: the pipeline, as a service unless `--once`.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let (format, once) = (args.format, args.once.is_some());
    let (settings, origin) = settings(args.clone(), true)?;
    let log = logging::init(settings.service.log.json, &settings.service.log.level)?;
    // Said again now that the service's own logs are set up (the lookup's came before them).
    tracing::debug!(config = %origin, "config");
    let service = Service {
        signals: Signals::install()?,
        log: Some(log),
        reread: Some(Box::new(move || settings_of(args.clone()))),
    };
    let summary = maillog_pipeline::run(settings, service)?;
    match format {
        Output::Text => eprintln!("{summary}"),
        Output::Json => println!("{}", serde_json::to_string(&summary)?),
    }
    let unread = summary.read_errors();
    if once && unread > 0 {
        eprintln!(
            "maillog: {unread} read error(s): an input could not be read (the warnings above \
             name it; `maillog check` names the fix)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The settings again (SIGHUP), from the same flags and the config file as it is now.
fn settings_of(args: RunArgs) -> Result<Settings> {
    settings(args, true).map(|(settings, _)| settings)
}

/// The settings from the config file and the flags (`need_inputs`: nothing to follow is an
/// error), and which config file that was.
fn settings(args: RunArgs, need_inputs: bool) -> Result<(Settings, ConfigOrigin)> {
    let loaded = maillog_config::load_or_default(args.config.as_deref())?;
    let origin = loaded.origin.clone();
    let flags = Flags {
        config: args.config,
        inputs: args.inputs,
        archive: args.archive,
        spool: args.spool,
        once: args.once.is_some(),
        seal_all: args.once == Some(Once::All),
    };
    let settings = settings::resolve_from(loaded, flags, need_inputs)?;
    Ok((settings, origin))
}
