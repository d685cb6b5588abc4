//! The service's own logs: `tracing` to stderr (journald under systemd), as text or JSON lines,
//! at a level from the config (`[log] level`) or the environment (`MAILLOG_LOG`, which wins).
//!
//! The level can change while running (SIGHUP re-reads the config); the format cannot. This
//! module never decides what is logged, only where and how.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use tracing_subscriber::filter::{EnvFilter, ParseError};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, fmt, reload};

/// The environment variable that overrides `[log] level`.
pub const LEVEL_VARIABLE: &str = "MAILLOG_LOG";

/// Parses a level or filter (`info`, `debug`, `maillog_tail=debug,warn`).
pub fn filter(level: &str) -> Result<EnvFilter, ParseError> {
    EnvFilter::builder().parse(level)
}

/// Changes the level of the running service.
pub struct LogHandle {
    reload: reload::Handle<EnvFilter, Registry>,
}

impl LogHandle {
    /// Sets the level from the config (the environment variable, when set, still wins).
    pub fn set_level(&self, level: &str) -> Result<()> {
        let level = std::env::var(LEVEL_VARIABLE).unwrap_or_else(|_| level.to_owned());
        let filter = filter(&level).with_context(|| format!("log level {level:?}"))?;
        self.reload
            .reload(filter)
            .context("cannot change the log level")
    }
}

/// Logs for the subcommands that are not the service: text, `MAILLOG_LOG` or `info`.
pub fn init_default() {
    let level = std::env::var(LEVEL_VARIABLE).unwrap_or_else(|_| "info".into());
    let filter = filter(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(text_layer())
        .try_init();
}

/// Logs for the service.
pub fn init(json: bool, level: &str) -> Result<LogHandle> {
    let level = std::env::var(LEVEL_VARIABLE).unwrap_or_else(|_| level.to_owned());
    let filter = filter(&level).with_context(|| format!("log level {level:?}"))?;
    let (filter, reload) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_current_span(false),
            )
            .try_init()
    } else {
        registry.with(text_layer()).try_init()
    };
    installed.context("cannot set up logging")?;
    Ok(LogHandle { reload })
}

fn text_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
}
