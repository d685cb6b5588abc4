//! `pipeline.toml`: what `maillog run` follows, where it keeps its state, where the archive is
//! — read into typed keys ([`ConfigFile`]), then into the pipeline's settings
//! ([`settings::resolve`]); `maillog top` and `report` read its `archive`, `time_zone` and
//! `[s3]` too. The binary drives it; this crate never starts anything.
//!
//! Every key is optional; an unknown key is an error naming it (a typo must not silently fall
//! back to a default). Relative paths are relative to the config file's directory, so the
//! repository's `pipeline.toml` works from anywhere. Command-line flags override the file.

use std::path::{Path, PathBuf, absolute};

use anyhow::{Context, Result};

pub use lookup::{CONFIG_VAR, ConfigOrigin, SYSTEM_CONFIG};
pub use source::{ConfigError, Source};
pub use values::{Checksum, Fields, LogFormat, Sse, Start, Watch};

pub mod lookup;
pub mod preflight;
pub mod settings;
mod source;
mod values;
use maillog_archive::{ArchiveUrl, S3Options};
use maillog_parse::Zone;
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Paths and globs to follow.
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
    /// The spool directory: open windows, sealed files, the lock.
    pub spool: Option<PathBuf>,
    /// Where the positions and the spool state are committed (default: `SPOOL/checkpoint`).
    pub state: Option<PathBuf>,
    /// `file://DIR` (or a path), or `s3://bucket/prefix`.
    pub archive: Option<String>,
    /// The archive key template (`{date}`, `{hour}`, `{kind}`, `{name}`, `{host}`).
    pub key_template: Option<String>,
    /// The `{host}` tag.
    pub host: Option<String>,
    /// Zone of the windows and of stamps without an offset: `UTC`, `+02:00`, `Europe/Berlin`.
    pub time_zone: Option<String>,
    /// A fixed year for year-less stamps (default: inferred).
    pub year: Option<i32>,
    /// More program names to treat as sendmail.
    #[serde(default)]
    pub sendmail_programs: Vec<String>,
    /// `all` (default) or `original`.
    #[serde(default)]
    pub fields: Fields,
    /// Where files start on the first run: `beginning` (default) or `end`.
    #[serde(default)]
    pub start_at: Start,
    /// How files are watched.
    #[serde(default)]
    pub tail: TailSection,
    /// Windows.
    #[serde(default)]
    pub window: WindowSection,
    /// Compression.
    #[serde(default)]
    pub bzip2: Bzip2Section,
    /// How to reach an `s3://` archive (credentials come from the AWS chain, never from here).
    #[serde(default)]
    pub s3: S3Section,
    /// Uploads.
    #[serde(default)]
    pub upload: UploadSection,
    /// The service: stopping, the lock.
    #[serde(default)]
    pub service: ServiceSection,
    /// Logs.
    #[serde(default)]
    pub log: LogSection,
    /// The HTTP endpoint: `/metrics`, `/health`, `/top`.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// When `/health` says unhealthy.
    #[serde(default)]
    pub health: HealthSection,
    /// The live top-N of `/top`.
    #[serde(default)]
    pub top: TopSection,
    /// The columnar mirror the service writes beside the archive.
    #[serde(default)]
    pub mirror: MirrorSection,
}

/// `[mirror]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSection {
    /// The service (and `run --once`) writes the Parquet mirror of the archive's settled hours
    /// beside it, under `mirror/` (default false: it adds about 1.3 times the archive's bytes).
    pub enabled: Option<bool>,
    /// Minutes after an hour's end, by the records' clock, before it is mirrored (default
    /// 60); what the archive gets later goes to a file of its own.
    pub settle_minutes: Option<f64>,
    /// How often the service looks for settled hours, in seconds (default 60).
    pub every_seconds: Option<f64>,
    /// The records of the streams the service compressed, kept in the spool until mirrored so
    /// that the mirror need not decode them again: at most this many MiB (default 1024; 0:
    /// none kept, every file is decoded).
    pub stream_cache_mib: Option<u64>,
}

/// `[tail]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailSection {
    /// `poll` (default: every `poll_interval_ms`, which costs less than inotify on a file
    /// written all the time) or `events` (inotify, with a timer recheck every second).
    #[serde(default)]
    pub watch: Watch,
    /// With `watch = "poll"`: how often files are looked at, in milliseconds (default 250).
    pub poll_interval_ms: Option<u64>,
    /// Longer lines keep their first this many bytes (default 1 MiB), as `maillog parse
    /// --max-line-bytes` cuts them.
    pub max_line_bytes: Option<u64>,
}

/// `[service]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// Seconds SIGTERM/SIGINT may take to make everything durable and let in-flight uploads
    /// finish (default 20); what is not uploaded by then waits in the spool.
    pub shutdown_seconds: Option<f64>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter: `info` (default), `debug`, `maillog=debug,warn`, …; the environment
    /// variable `MAILLOG_LOG` overrides it.
    pub level: Option<String>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// `host:port` to serve `/metrics`, `/health` and `/top` on (default: none).
    pub address: Option<String>,
}

/// `[health]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// Unhealthy once uploads have failed this many seconds in a row (default 600).
    pub upload_failing_seconds: Option<f64>,
    /// Unhealthy while the spool holds more than this many MiB (default 1024).
    pub max_spool_mib: Option<u64>,
}

/// `[top]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopSection {
    /// Distinct keys counted exactly per key kind and time bucket (default 128); beyond it a
    /// heavy-hitters sketch, and answers say `approximate`. 0 turns the live top-N off.
    pub max_keys: Option<usize>,
}

/// `[s3]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    /// The region (default: the AWS chain's, else us-east-1).
    pub region: Option<String>,
    /// An S3-compatible store's URL.
    pub endpoint: Option<String>,
    /// Path-style addressing (most S3-compatible stores need it).
    pub path_style: Option<bool>,
    /// A profile of the shared AWS config files.
    pub profile: Option<String>,
    /// `when_supported` (default: the SDK adds CRC32 checksums) or `when_required` (for
    /// stores that reject them; Content-MD5 is sent either way).
    #[serde(default)]
    pub checksum: Checksum,
    /// Writes carry `If-None-Match: *`, so the store itself refuses to replace an archived
    /// object (default true). False for a store that ignores the condition (`maillog check
    /// --probe-archive` tells): each put then looks the key up first.
    pub conditional_writes: Option<bool>,
}

impl S3Section {
    /// How to reach the store, for writing and reading alike (`[upload]` adds how to write).
    pub fn options(&self) -> S3Options {
        S3Options {
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            path_style: self.path_style.unwrap_or(false),
            profile: self.profile.clone(),
            checksum_when_required: self.checksum == Checksum::WhenRequired,
            conditional_writes: self.conditional_writes.unwrap_or(true),
            ..S3Options::default()
        }
    }
}

/// `[upload]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSection {
    /// Uploads at once (default 4).
    pub concurrency: Option<usize>,
    /// S3: files bigger than this many MiB go up in parts (default 64).
    pub multipart_threshold_mib: Option<u64>,
    /// S3: the part size in MiB (default 16; at least 5).
    pub part_size_mib: Option<u64>,
    /// S3: the storage class (`STANDARD_IA`, `GLACIER_IR`, …).
    pub storage_class: Option<String>,
    /// S3: server-side encryption, `AES256` or `aws:kms`.
    pub sse: Option<Sse>,
    /// S3: the KMS key id for `aws:kms`.
    pub sse_kms_key_id: Option<String>,
    /// S3: object tags.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Keep archived files in the spool's `windows/uploaded/` this many hours (default 0:
    /// delete them once the archive has them).
    pub keep_uploaded_hours: Option<f64>,
    /// Stop reading while sealed files waiting for the archive pass this many MiB (default:
    /// no ceiling) — rather than fill the disk while the archive is unreachable.
    pub max_waiting_mib: Option<u64>,
    /// The first wait before a failed upload is tried again, in seconds (default 0.5); it
    /// doubles at each failure.
    pub retry_first_seconds: Option<f64>,
    /// The longest wait between two tries, in seconds (default 60). Retries never give up:
    /// the file waits in the spool.
    pub retry_max_seconds: Option<f64>,
}

/// `[window]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSection {
    /// Seconds a window stays open after its end (default 120).
    pub lateness_seconds: Option<u32>,
    /// Seconds between commits of the spool and the positions (default 1).
    pub commit_seconds: Option<f64>,
    /// Seconds an event may be stamped past the wall clock and still move the watermark
    /// (default 300).
    pub max_skew_seconds: Option<u32>,
    /// Seconds of wall time a window may stay open at most (default 900).
    pub max_open_seconds: Option<u32>,
    /// Windows open at most (default 64).
    pub max_open_windows: Option<u32>,
}

/// `[bzip2]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bzip2Section {
    /// 1–9 (default 9).
    pub level: Option<u32>,
    /// Compressing threads; 0 or absent: one per core.
    pub threads: Option<usize>,
}

/// A config file as read: its settings, and its text to place errors found later.
pub struct Loaded {
    /// The keys, typed.
    pub file: ConfigFile,
    /// The text, to place an error found later.
    pub source: Source,
    /// The directory relative paths are taken against: the file's (the working directory
    /// for the defaults).
    pub base: PathBuf,
    /// Which file it is, and why that one ([`lookup`]).
    pub origin: ConfigOrigin,
}

/// The config `maillog` runs with: `flag` (`--config`), else the one [`lookup`] finds, else
/// the defaults. Which one is said at debug level.
pub fn load_or_default(flag: Option<&Path>) -> Result<Loaded> {
    let origin = lookup::Candidates::of_process(flag).choose();
    tracing::debug!(config = %origin, "config");
    let Some(path) = origin.path() else {
        return Ok(Loaded {
            file: ConfigFile::default(),
            source: Source::defaults(),
            base: std::env::current_dir().context("cannot tell the working directory")?,
            origin,
        });
    };
    let mut loaded = load(path)?;
    loaded.origin = origin;
    Ok(loaded)
}

impl Loaded {
    /// `archive`, parsed, a relative directory taken against the config's; `None` when
    /// absent. An error names the key.
    pub fn archive(&self) -> Result<Option<ArchiveUrl>> {
        let Some(text) = &self.file.archive else {
            return Ok(None);
        };
        let url: ArchiveUrl = text.parse().map_err(|e| {
            self.source
                .invalid("archive", format!("archive URL {text:?}: {e}"))
        })?;
        Ok(Some(url.under(&self.base)))
    }

    /// `time_zone`, UTC when absent; an error names the key.
    pub fn zone(&self) -> Result<Zone> {
        match &self.file.time_zone {
            Some(text) => text
                .parse()
                .map_err(|e| self.source.invalid("time_zone", format!("{text:?}: {e}"))),
            None => Ok(Zone::Utc),
        }
    }
}

/// Reads a config file; relative paths become absolute, relative to its directory. Errors
/// name the file, the line and the key.
pub fn load(path: &Path) -> Result<Loaded> {
    // A config that cannot be read cannot be used: exit 2, as for a key that is wrong.
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    let source = Source::new(path, text);
    let mut config: ConfigFile = toml::from_str(source.text()).map_err(|e| source.explain(&e))?;
    // Absolute, once: the checkpoint remembers files by these paths, and a run from another
    // working directory must find the same ones.
    let base = path.parent().unwrap_or(Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let base = &absolute(base)
        .with_context(|| format!("cannot resolve the directory of {}", path.display()))?;
    for input in &mut config.inputs {
        *input = base.join(&*input);
    }
    for dir in [&mut config.spool, &mut config.state].into_iter().flatten() {
        *dir = base.join(&*dir);
    }
    Ok(Loaded {
        file: config,
        source,
        base: base.clone(),
        origin: ConfigOrigin::Flag(path.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "inputs = [\"a.log\"]\nspoool = \"x\"\n").unwrap();
        let e = format!("{:#}", load(&path).err().unwrap());
        assert!(
            e.ends_with("p.toml:2:1: unknown key `spoool`; did you mean `spool`?"),
            "{e}"
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "inputs = [\"logs/*.log\"]\nspool = \"s\"\narchive = \"file://a\"\n",
        )
        .unwrap();
        let loaded = load(&path).unwrap();
        let c = &loaded.file;
        assert_eq!(c.inputs[0], dir.path().join("logs/*.log"));
        assert_eq!(c.spool, Some(dir.path().join("s")));
        let archive = loaded.archive().unwrap().unwrap();
        assert_eq!(archive, ArchiveUrl::Local(dir.path().join("a")));
    }
}
