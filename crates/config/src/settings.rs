//! From `pipeline.toml` and the flags of `maillog run` to the pipeline's [`Settings`]: the one
//! conversion, section by section. Every value is checked here, before anything runs, and a
//! value that cannot be used is a [`super::ConfigError`] naming the file, line and key (the
//! binary exits 2).
//!
//! Paths are resolved once, here: the config's against its directory (when it was read), the
//! flags' and the defaults' against the working directory. The checkpoint remembers files by
//! these absolute paths. This module never starts anything.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use maillog_archive::{ArchiveUrl, Backoff, S3Options, UploadOptions};
use maillog_batch::{BatchConfig, KeyTemplate, WINDOW_SECONDS, WindowId};
use maillog_parse::{Kind, Zone};
use maillog_pipeline::logging;
use maillog_pipeline::{HealthLimits, LogSettings, MirrorSettings, ServiceSettings, Settings};

use super::{ConfigError, ConfigFile, LogFormat, Source, UploadSection};

/// What the flags of `maillog run` (or `check`) say beside the config file.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--input`, repeated.
    pub inputs: Vec<PathBuf>,
    /// `--archive`.
    pub archive: Option<String>,
    /// `--spool`.
    pub spool: Option<PathBuf>,
    /// `--once` (or `--once=due`, `--once=all`).
    pub once: bool,
    /// `--once=all`.
    pub seal_all: bool,
}

/// The settings of `maillog run` (`need_inputs`: nothing to follow is an error; `check` may
/// have none).
pub fn resolve(flags: Flags, need_inputs: bool) -> Result<Settings> {
    let loaded = super::load_or_default(flags.config.as_deref())?;
    resolve_from(loaded, flags, need_inputs)
}

/// [`resolve`] with the config already read (`maillog check` says which file it was).
pub fn resolve_from(loaded: super::Loaded, flags: Flags, need_inputs: bool) -> Result<Settings> {
    let zone = loaded.zone()?;
    let paths = paths(&flags, &loaded, need_inputs)?;
    let super::Loaded { file, source, .. } = loaded;
    let key_template = key_template(&file, &zone, &source)?;
    let up = &file.upload;
    Ok(Settings {
        inputs: paths.inputs,
        state: paths.state,
        spool: paths.spool,
        archive_url: paths.archive_url,
        s3: s3_options(&file, &source)?,
        upload_concurrency: up.concurrency.unwrap_or(4).max(1),
        keep_uploaded: within(
            &source,
            "upload.keep_uploaded_hours",
            up.keep_uploaded_hours,
            0.0,
            100_000.0,
        )?
        .filter(|h| *h > 0.0)
        .map(|h| Duration::from_secs_f64(h * 3600.0)),
        max_waiting: up.max_waiting_mib.map(|m| m.saturating_mul(1 << 20)),
        key_template,
        host: file.host.clone().unwrap_or_default(),
        year: file.year,
        sendmail_programs: file.sendmail_programs.clone(),
        start_at: file.start_at.into(),
        watch: file.tail.watch.into(),
        poll_interval: Duration::from_millis(
            within(
                &source,
                "tail.poll_interval_ms",
                file.tail.poll_interval_ms,
                10,
                60_000,
            )?
            .unwrap_or(250),
        ),
        max_line_bytes: within(
            &source,
            "tail.max_line_bytes",
            file.tail.max_line_bytes,
            1024,
            1 << 30,
        )?
        .map_or(maillog_parse::DEFAULT_MAX_LINE_BYTES, |b| b as usize),
        batch: batch_config(&file, zone, &source)?,
        commit_every: seconds(
            &source,
            "window.commit_seconds",
            file.window.commit_seconds,
            1.0,
            (0.01, 3600.0),
        )?,
        once: flags.once,
        seal_all: flags.seal_all,
        backoff: backoff(up, &source)?,
        service: service(&file, &source)?,
        mirror: mirror(&file, &source)?,
    })
}

/// `[mirror]`: none unless enabled.
fn mirror(file: &ConfigFile, source: &Source) -> Result<Option<MirrorSettings>> {
    let section = &file.mirror;
    let settle = within(
        source,
        "mirror.settle_minutes",
        section.settle_minutes,
        0.0,
        10_080.0,
    )?
    .unwrap_or(60.0);
    let every = seconds(
        source,
        "mirror.every_seconds",
        section.every_seconds,
        60.0,
        (0.1, 3600.0),
    )?;
    let cache_mib = within(
        source,
        "mirror.stream_cache_mib",
        section.stream_cache_mib,
        0,
        1 << 20,
    )?
    .unwrap_or(1024);
    Ok(section.enabled.unwrap_or(false).then(|| MirrorSettings {
        settle: Duration::from_secs_f64(settle * 60.0),
        every,
        stream_cache_bytes: cache_mib << 20,
    }))
}

/// Where things are, made absolute.
struct Paths {
    inputs: Vec<PathBuf>,
    spool: PathBuf,
    state: PathBuf,
    archive_url: ArchiveUrl,
}

fn paths(flags: &Flags, loaded: &super::Loaded, need_inputs: bool) -> Result<Paths> {
    let file = &loaded.file;
    let inputs = if flags.inputs.is_empty() {
        &file.inputs
    } else {
        &flags.inputs
    };
    let inputs = inputs
        .iter()
        .map(|p| absolute_path(p))
        .collect::<Result<Vec<_>>>()?;
    if inputs.is_empty() && need_inputs {
        return Err(ConfigError(
            "nothing to follow: give --input PATH_OR_GLOB or `inputs` in the config".into(),
        )
        .into());
    }
    let spool = flags.spool.as_ref().or(file.spool.as_ref());
    let spool = absolute_path(spool.map_or(Path::new("spool"), |s| s.as_path()))?;
    let state = match &file.state {
        Some(state) => absolute_path(state)?,
        None => spool.join("checkpoint"),
    };
    // Parsed once, here: a bad URL is an error now, not at the first seal.
    let cwd = std::env::current_dir().context("cannot tell the working directory")?;
    let archive_url = match &flags.archive {
        Some(text) => text
            .parse::<ArchiveUrl>()
            .map_err(|e| ConfigError(format!("--archive: archive URL {text:?}: {e}")))?
            .under(&cwd),
        None => match loaded.archive()? {
            Some(url) => url,
            None => ArchiveUrl::Local(cwd.join("archive")),
        },
    };
    Ok(Paths {
        inputs,
        spool,
        state,
        archive_url,
    })
}

/// `path`, absolute against the working directory (no file system access, no symlinks
/// resolved: `..` stays as written).
fn absolute_path(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// `key_template`, rendered for a sample window and checked before anything is written.
fn key_template(file: &ConfigFile, zone: &Zone, source: &Source) -> Result<KeyTemplate> {
    let template = match &file.key_template {
        Some(text) => KeyTemplate::parse(text).map_err(|e| source.invalid("key_template", e))?,
        None => KeyTemplate::original(),
    };
    check_sample_key(&template, zone, file.host.as_deref().unwrap_or(""))
        .map_err(|why| source.invalid("key_template", why))?;
    Ok(template)
}

/// Renders the key template for a sample window (a further part, so every placeholder and
/// suffix is there) and checks that the archive could take it: an empty segment (a `{host}`
/// left unset), `.` or `..`, a leading `/`, too long, or characters S3 refuses are refused
/// before anything is written, never retried at the archive.
fn check_sample_key(template: &KeyTemplate, zone: &Zone, host: &str) -> Result<(), String> {
    let sample = WindowId {
        kind: Kind::From,
        start: 1_764_676_800, // 2025-12-02T12:00:00Z
        part: 1,
    };
    let key = template.render(&sample, zone, host);
    maillog_archive::validate_key(&key).map_err(|e| {
        let hint = if template.as_str().contains("{host}") && host.is_empty() {
            " (`{host}` renders empty: set `host`)"
        } else {
            ""
        };
        let template = template.as_str();
        format!("{template:?} renders {key:?} for a sample window: {e}{hint}")
    })
}

/// `[s3]` and `[upload]`: how to reach the store and how to write to it.
fn s3_options(file: &ConfigFile, source: &Source) -> Result<S3Options> {
    let up = &file.upload;
    if up.part_size_mib.is_some_and(|p| p < 5) {
        return Err(source.invalid("upload.part_size_mib", "S3 parts are at least 5 MiB"));
    }
    let defaults = UploadOptions::default();
    Ok(S3Options {
        upload: UploadOptions {
            multipart_threshold: up
                .multipart_threshold_mib
                .map_or(defaults.multipart_threshold, |m| m << 20),
            part_size: up.part_size_mib.map_or(defaults.part_size, |m| m << 20),
            storage_class: up.storage_class.clone(),
            sse: up.sse.map(|sse| sse.as_str().to_owned()),
            sse_kms_key_id: up.sse_kms_key_id.clone(),
            tags: up.tags.clone().into_iter().collect(),
        },
        // `state_dir` is set by the pipeline (its spool), never by `check`: its probe must
        // not abort a running service's uploads.
        ..file.s3.options()
    })
}

/// `time_zone`, `fields`, `[window]` and `[bzip2]`.
fn batch_config(file: &ConfigFile, zone: Zone, source: &Source) -> Result<BatchConfig> {
    let mut batch = BatchConfig::new(zone);
    let window = &file.window;
    batch.fields = file.fields.into();
    if let Some(lateness) = window.lateness_seconds {
        batch.lateness = i64::from(lateness);
    }
    if let Some(skew) = window.max_skew_seconds {
        batch.max_skew = i64::from(skew);
    }
    let least = u32::try_from(batch.lateness + WINDOW_SECONDS).unwrap_or(u32::MAX);
    if let Some(age) = window.max_open_seconds {
        if age < least {
            return Err(source.invalid(
                "window.max_open_seconds",
                format!("{age}: at least a window and its lateness ({least})"),
            ));
        }
        batch.max_open_age = i64::from(age);
    }
    if let Some(windows) = window.max_open_windows {
        if windows < 4 {
            return Err(source.invalid(
                "window.max_open_windows",
                format!("{windows}: at least 4 (two kinds, the window and the one before)"),
            ));
        }
        batch.max_open_windows = windows as usize;
    }
    if let Some(level) = within(source, "bzip2.level", file.bzip2.level, 1, 9)? {
        batch.level = level;
    }
    if let Some(threads) = file.bzip2.threads.filter(|t| *t > 0) {
        batch.threads = threads;
    }
    Ok(batch)
}

/// `[upload]`'s retry waits.
fn backoff(up: &UploadSection, source: &Source) -> Result<Backoff> {
    Ok(Backoff {
        first: seconds(
            source,
            "upload.retry_first_seconds",
            up.retry_first_seconds,
            0.5,
            (0.01, 3600.0),
        )?,
        max: seconds(
            source,
            "upload.retry_max_seconds",
            up.retry_max_seconds,
            60.0,
            (0.01, 86_400.0),
        )?,
    })
}

/// `[service]`, `[log]`, `[metrics]`, `[health]` and `[top]`.
fn service(file: &ConfigFile, source: &Source) -> Result<ServiceSettings> {
    let metrics = match &file.metrics.address {
        None => None,
        Some(text) => Some(text.parse::<SocketAddr>().map_err(|e| {
            let why = format!("{text:?}: {e} (expected host:port)");
            source.invalid("metrics.address", why)
        })?),
    };
    let log = LogSettings {
        json: file.log.format == LogFormat::Json,
        level: file.log.level.clone().unwrap_or_else(|| "info".into()),
    };
    if let Err(e) = logging::filter(&log.level) {
        return Err(source.invalid("log.level", format!("{:?}: {e}", log.level)));
    }
    let health = &file.health;
    Ok(ServiceSettings {
        shutdown: seconds(
            source,
            "service.shutdown_seconds",
            file.service.shutdown_seconds,
            20.0,
            (0.0, 3600.0),
        )?,
        log,
        metrics,
        health: HealthLimits {
            upload_failing: seconds(
                source,
                "health.upload_failing_seconds",
                health.upload_failing_seconds,
                600.0,
                (1.0, 604_800.0),
            )?,
            max_spool_bytes: health.max_spool_mib.unwrap_or(1024).saturating_mul(1 << 20),
        },
        top_max_keys: file.top.max_keys.unwrap_or(128),
    })
}

/// `value` if it is within `low..=high` (or absent); else an error naming `key`.
fn within<T: PartialOrd + Display + Copy>(
    source: &Source,
    key: &str,
    value: Option<T>,
    low: T,
    high: T,
) -> Result<Option<T>> {
    match value {
        Some(v) if !(low..=high).contains(&v) => {
            Err(source.invalid(key, format!("{v}: expected {low} to {high}")))
        }
        _ => Ok(value),
    }
}

/// A duration in seconds: `value` or `default`, within `range`.
fn seconds(
    source: &Source,
    key: &str,
    value: Option<f64>,
    default: f64,
    (low, high): (f64, f64),
) -> Result<Duration> {
    let value = within(source, key, value, low, high)?.unwrap_or(default);
    Ok(Duration::from_secs_f64(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_config_gives_the_pipelines_own_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("p.toml");
        std::fs::write(&config, "inputs = [\"mail.log\"]\n").unwrap();
        let flags = Flags {
            config: Some(config),
            ..Flags::default()
        };
        let resolved = resolve(flags, true).unwrap();
        let cwd = std::env::current_dir().unwrap();
        let defaults = Settings::new(
            vec![dir.path().join("mail.log")],
            cwd.join("spool"),
            ArchiveUrl::Local(cwd.join("archive")),
        );
        assert_eq!(resolved, defaults);
    }
}
