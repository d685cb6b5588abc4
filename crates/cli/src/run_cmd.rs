//! `maillog run`: settings from `pipeline.toml` and the flags, then the pipeline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use maillog_batch::{BatchConfig, WindowId, render_key, window::KEY_PLACEHOLDERS};
use maillog_parse::{FieldsMode, Kind, Zone};
use maillog_tail::{StartAt, WatchMode};
use maillog_upload::{Archive, Backoff, S3Options, UploadOptions};

use crate::config::{self, Loaded};
use maillog_pipeline::logging;
use maillog_pipeline::{HealthLimits, LogSettings, Service, ServiceSettings, Settings, Signals};

/// Arguments of `maillog run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The config file [default: pipeline.toml in the current directory, if there is one].
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
}

/// What `--once` seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Once {
    /// The windows that are due; the rest waits in the spool for the next run.
    Due,
    /// Every window, and a last line without its newline (a backfill of finished files).
    All,
}

/// Arguments of `maillog check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The config file [default: pipeline.toml in the current directory, if there is one].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The archive to check instead of the config's: file://DIR or s3://bucket/prefix.
    #[arg(long, value_name = "URL")]
    archive: Option<String>,
    /// Also try the archive for real: put a small object, find it, read it back, delete it.
    #[arg(long)]
    probe_archive: bool,
}

/// `maillog check`: the settings are read and checked without running anything; with
/// `--probe-archive`, a real round trip through the archive.
pub fn check(args: CheckArgs) -> Result<ExitCode> {
    let run = RunArgs {
        config: args.config,
        inputs: Vec::new(),
        archive: args.archive,
        spool: None,
        once: Some(Once::Due),
    };
    let settings = settings(run, false)?;
    println!("inputs: {:?}", settings.inputs);
    println!("spool: {}", settings.spool.display());
    println!(
        "archive: {} (keys: {})",
        settings.archive_url, settings.key_template
    );
    println!(
        "zone: {}; lateness: {} s; bzip2 level {}",
        settings.batch.zone, settings.batch.lateness, settings.batch.level
    );
    let service = &settings.service;
    match service.metrics {
        Some(address) => println!("metrics: http://{address}/metrics, /health, /top"),
        None => println!("metrics: off ([metrics] address)"),
    }
    println!(
        "health: unhealthy after {} s of failing uploads or above {} MiB of spool",
        service.health.upload_failing.as_secs(),
        service.health.max_spool_bytes >> 20
    );
    println!(
        "stop: within {:?}; logs: {} at {:?}",
        service.shutdown,
        if service.log.json { "json" } else { "text" },
        service.log.level
    );
    if args.probe_archive {
        let uploader = maillog_upload::Uploader::start(
            &settings.archive_url,
            &settings.s3,
            1,
            maillog_upload::Backoff::default(),
        )?;
        let dir = std::env::temp_dir();
        for step in uploader.probe(&dir)? {
            println!("archive probe: {step}");
        }
        println!("archive probe: OK");
    }
    println!("config OK");
    Ok(ExitCode::SUCCESS)
}

/// Renders the key template for a sample window (a further part, so every placeholder and
/// suffix is there) and checks that the archive could take it: an empty segment (a `{host}`
/// left unset), `.` or `..`, a leading `/`, too long, or characters S3 refuses are refused
/// before anything is written, never retried at the archive.
fn check_sample_key(template: &str, zone: &Zone, host: &str) -> Result<(), String> {
    let sample = WindowId {
        kind: Kind::From,
        start: 1_764_676_800, // 2025-12-02T12:00:00Z
        part: 1,
    };
    let key = render_key(template, &sample, zone, host);
    maillog_upload::validate_key(&key).map_err(|e| {
        let hint = if template.contains("{host}") && host.is_empty() {
            " (`{host}` renders empty: set `host`)"
        } else {
            ""
        };
        format!("{template:?} renders {key:?} for a sample window: {e}{hint}")
    })
}

/// `path`, absolute against the working directory (no file system access, no symlinks
/// resolved: `..` stays as written).
fn absolute_path(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// `maillog run`: the pipeline, as a service unless `--once`.
pub fn run(args: RunArgs) -> Result<ExitCode> {
    let settings = settings(args.clone(), true)?;
    let log = logging::init(settings.service.log.json, &settings.service.log.level)?;
    let service = Service {
        signals: Signals::install()?,
        log: Some(log),
        reread: Some(Box::new(move || settings_of(args.clone()))),
    };
    let summary = maillog_pipeline::run(settings, service)?;
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// The settings again (SIGHUP), from the same flags and the config file as it is now.
fn settings_of(args: RunArgs) -> Result<Settings> {
    settings(args, true)
}

fn settings(args: RunArgs, need_inputs: bool) -> Result<Settings> {
    let loaded = config::load_or_default(args.config.as_deref())?;
    let zone = loaded.zone()?;
    let Loaded { file, source } = loaded;

    // Paths are resolved once, here: the config's against its directory (when it was read),
    // the flags' and the defaults' against the working directory. The checkpoint remembers
    // files by these absolute paths.
    let inputs = if args.inputs.is_empty() {
        file.inputs
    } else {
        args.inputs
    };
    let inputs = inputs
        .iter()
        .map(|p| absolute_path(p))
        .collect::<Result<Vec<_>>>()?;
    if inputs.is_empty() && need_inputs {
        return Err(config::ConfigError(
            "nothing to follow: give --input PATH_OR_GLOB or `inputs` in the config".into(),
        )
        .into());
    }
    let spool = absolute_path(
        &args
            .spool
            .or(file.spool)
            .unwrap_or_else(|| PathBuf::from("spool")),
    )?;
    let archive_from_flag = args.archive.is_some();
    let archive_url = args
        .archive
        .or(file.archive)
        .unwrap_or_else(|| "file://archive".into());
    let cwd = std::env::current_dir().context("cannot tell the working directory")?;
    let archive_url = config::archive_under(&archive_url, &cwd);
    if !archive_url.starts_with("s3://") {
        // A bad URL is an error now, not at the first seal.
        if let Err(e) = Archive::from_url(&archive_url) {
            return Err(if archive_from_flag {
                config::ConfigError(format!("--archive: {e}")).into()
            } else {
                source.invalid("archive", e)
            });
        }
    }
    let up = &file.upload;
    if let Some(sse) = &up.sse
        && sse != "AES256"
        && sse != "aws:kms"
    {
        return Err(source.invalid(
            "upload.sse",
            format!("{sse:?}: expected \"AES256\" or \"aws:kms\""),
        ));
    }
    if up.part_size_mib.is_some_and(|p| p < 5) {
        return Err(source.invalid("upload.part_size_mib", "S3 parts are at least 5 MiB"));
    }
    if let Some(h) = up.keep_uploaded_hours
        && !(0.0..=100_000.0).contains(&h)
    {
        return Err(source.invalid(
            "upload.keep_uploaded_hours",
            format!("{h}: expected 0 to 100000"),
        ));
    }
    let defaults = UploadOptions::default();
    let s3 = S3Options {
        upload: UploadOptions {
            multipart_threshold: up
                .multipart_threshold_mib
                .map_or(defaults.multipart_threshold, |m| m << 20),
            part_size: up.part_size_mib.map_or(defaults.part_size, |m| m << 20),
            storage_class: up.storage_class.clone(),
            sse: up.sse.clone(),
            sse_kms_key_id: up.sse_kms_key_id.clone(),
            tags: up
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        // `state_dir` is set by the pipeline (its spool), never by `check`: its probe must
        // not abort a running service's uploads.
        ..file.s3.options(&source)?
    };
    let key_template = file
        .key_template
        .unwrap_or_else(|| "mail_logs/{date}/{name}".into());
    if !key_template.contains("{name}") {
        return Err(source.invalid(
            "key_template",
            format!("{key_template:?} must contain {{name}} (placeholders: {KEY_PLACEHOLDERS:?})"),
        ));
    }
    check_sample_key(&key_template, &zone, file.host.as_deref().unwrap_or(""))
        .map_err(|why| source.invalid("key_template", why))?;
    let fields = match file.fields.as_deref() {
        None | Some("all") => FieldsMode::All,
        Some("original") => FieldsMode::Original,
        Some(other) => {
            return Err(source.invalid(
                "fields",
                format!("{other:?}: expected \"all\" or \"original\""),
            ));
        }
    };
    let start_at = match file.start_at.as_deref() {
        None | Some("beginning") => StartAt::Beginning,
        Some("end") => StartAt::End,
        Some(other) => {
            return Err(source.invalid(
                "start_at",
                format!("{other:?}: expected \"beginning\" or \"end\""),
            ));
        }
    };
    let mut batch = BatchConfig::new(zone);
    batch.fields = fields;
    if let Some(lateness) = file.window.lateness_seconds {
        batch.lateness = i64::from(lateness);
    }
    if let Some(skew) = file.window.max_skew_seconds {
        batch.max_skew = i64::from(skew);
    }
    if let Some(age) = file.window.max_open_seconds {
        let least = batch.lateness + maillog_batch::WINDOW_SECONDS;
        if i64::from(age) < least {
            return Err(source.invalid(
                "window.max_open_seconds",
                format!("{age}: at least a window and its lateness ({least})"),
            ));
        }
        batch.max_open_age = i64::from(age);
    }
    if let Some(windows) = file.window.max_open_windows {
        if windows < 4 {
            return Err(source.invalid(
                "window.max_open_windows",
                format!("{windows}: at least 4 (two kinds, the window and the one before)"),
            ));
        }
        batch.max_open_windows = windows as usize;
    }
    if let Some(level) = file.bzip2.level {
        if !(1..=9).contains(&level) {
            return Err(source.invalid("bzip2.level", format!("{level}: expected 1 to 9")));
        }
        batch.level = level;
    }
    if let Some(threads) = file.bzip2.threads.filter(|t| *t > 0) {
        batch.threads = threads;
    }
    let seconds = |key: &str, value: Option<f64>, default: f64, range: (f64, f64)| {
        let value = value.unwrap_or(default);
        if (range.0..=range.1).contains(&value) {
            Ok(Duration::from_secs_f64(value))
        } else {
            Err(source.invalid(key, format!("{value}: expected {} to {}", range.0, range.1)))
        }
    };
    let backoff = Backoff {
        first: seconds(
            "upload.retry_first_seconds",
            up.retry_first_seconds,
            0.5,
            (0.01, 3600.0),
        )?,
        max: seconds(
            "upload.retry_max_seconds",
            up.retry_max_seconds,
            60.0,
            (0.01, 86_400.0),
        )?,
    };
    let shutdown = seconds(
        "service.shutdown_seconds",
        file.service.shutdown_seconds,
        20.0,
        (0.0, 3600.0),
    )?;
    let upload_failing = seconds(
        "health.upload_failing_seconds",
        file.health.upload_failing_seconds,
        600.0,
        (1.0, 604_800.0),
    )?;
    let metrics = match &file.metrics.address {
        None => None,
        Some(text) => Some(text.parse::<SocketAddr>().map_err(|e| {
            source.invalid(
                "metrics.address",
                format!("{text:?}: {e} (expected host:port)"),
            )
        })?),
    };
    let log = LogSettings {
        json: match file.log.format.as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(source.invalid(
                    "log.format",
                    format!("{other:?}: expected \"text\" or \"json\""),
                ));
            }
        },
        level: file.log.level.clone().unwrap_or_else(|| "info".into()),
    };
    if let Err(e) = logging::filter(&log.level) {
        return Err(source.invalid("log.level", format!("{:?}: {e}", log.level)));
    }
    // Polling is the default: on a file written all the time it costs less than inotify (an
    // event per write), and when idle next to nothing (BENCHMARKS.md, "The service").
    let watch = match file.tail.watch.as_deref() {
        Some("events") => WatchMode::Auto,
        None | Some("poll") => WatchMode::Poll,
        Some(other) => {
            return Err(source.invalid(
                "tail.watch",
                format!("{other:?}: expected \"events\" or \"poll\""),
            ));
        }
    };
    let max_line_bytes = file
        .tail
        .max_line_bytes
        .unwrap_or(maillog_parse::DEFAULT_MAX_LINE_BYTES as u64);
    if !(1024..=1 << 30).contains(&max_line_bytes) {
        return Err(source.invalid(
            "tail.max_line_bytes",
            format!("{max_line_bytes}: expected 1024 to 1073741824"),
        ));
    }
    let poll_interval = file.tail.poll_interval_ms.unwrap_or(250);
    if !(10..=60_000).contains(&poll_interval) {
        return Err(source.invalid(
            "tail.poll_interval_ms",
            format!("{poll_interval}: expected 10 to 60000"),
        ));
    }
    let commit_every = file.window.commit_seconds.unwrap_or(1.0);
    if !(0.01..=3600.0).contains(&commit_every) {
        return Err(source.invalid(
            "window.commit_seconds",
            format!("{commit_every}: expected 0.01 to 3600"),
        ));
    }
    let state = match file.state {
        Some(state) => absolute_path(&state)?,
        None => spool.join("checkpoint"),
    };
    Ok(Settings {
        inputs,
        state,
        spool,
        archive_url,
        s3,
        upload_concurrency: file.upload.concurrency.unwrap_or(4).max(1),
        keep_uploaded: file
            .upload
            .keep_uploaded_hours
            .filter(|h| *h > 0.0)
            .map(|h| Duration::from_secs_f64(h * 3600.0)),
        max_waiting: file
            .upload
            .max_waiting_mib
            .map(|m| m.saturating_mul(1 << 20)),
        key_template,
        host: file.host.unwrap_or_default(),
        year: file.year,
        sendmail_programs: file.sendmail_programs,
        start_at,
        watch,
        poll_interval: Duration::from_millis(poll_interval),
        max_line_bytes: max_line_bytes as usize,
        batch,
        commit_every: Duration::from_secs_f64(commit_every),
        once: args.once.is_some(),
        seal_all: args.once == Some(Once::All),
        backoff,
        service: ServiceSettings {
            shutdown,
            log,
            metrics,
            health: HealthLimits {
                upload_failing,
                max_spool_bytes: file
                    .health
                    .max_spool_mib
                    .unwrap_or(1024)
                    .saturating_mul(1 << 20),
            },
            top_max_keys: file.top.max_keys.unwrap_or(128),
        },
    })
}
