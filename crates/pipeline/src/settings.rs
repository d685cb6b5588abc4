//! What `maillog run` is told: the settings, resolved from the config file and the flags by
//! the binary, and what the service brings (signals, log level, a way to read the settings
//! again). This module only holds them; it never reads a file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use maillog_archive::{ArchiveUrl, Backoff, S3Options};
use maillog_batch::{BatchConfig, KeyTemplate};
use maillog_tail::{StartAt, WatchMode};

use crate::lifecycle::Signals;
use crate::logging::LogHandle;
use crate::observe::HealthLimits;

/// Everything `maillog run` needs, resolved from the config file and the flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Paths and globs to follow, absolute.
    pub inputs: Vec<PathBuf>,
    /// The spool directory (window files, lock, multipart records), absolute.
    pub spool: PathBuf,
    /// The checkpoint directory.
    pub state: PathBuf,
    /// Where the archive is.
    pub archive_url: ArchiveUrl,
    /// How to reach S3 (`[s3]`, `[upload]`).
    pub s3: S3Options,
    /// Files copied into the archive at once.
    pub upload_concurrency: usize,
    /// Keep archived files in the spool's `uploaded/` this long (none: delete them).
    pub keep_uploaded: Option<Duration>,
    /// Bytes of sealed files waiting for the archive past which reading stops.
    pub max_waiting: Option<u64>,
    /// The archive key of a window file (`mail_logs/{date}/{name}`).
    pub key_template: KeyTemplate,
    /// What `{host}` in the key template renders as.
    pub host: String,
    /// The year of year-less stamps (none: inferred from a reference instant).
    pub year: Option<i32>,
    /// Syslog program names taken for sendmail.
    pub sendmail_programs: Vec<String>,
    /// Where files found at the first start begin.
    pub start_at: StartAt,
    /// How the tailer watches files.
    pub watch: WatchMode,
    /// How often files are looked at without inotify.
    pub poll_interval: Duration,
    /// Longer lines keep their first this many bytes.
    pub max_line_bytes: usize,
    /// How records are batched into windows.
    pub batch: BatchConfig,
    /// How often the spool is made durable and committed with the positions.
    pub commit_every: Duration,
    /// Read the inputs to their end and exit (`--once`), rather than follow them.
    pub once: bool,
    /// With `once`: seal every window and take an unterminated last line as a line
    /// (`--once=all`, a backfill), rather than seal only what is due and leave the rest for
    /// the next run (`--once`, `--once=due`).
    pub seal_all: bool,
    /// Retries of the archive.
    pub backoff: Backoff,
    /// The service's own settings.
    pub service: ServiceSettings,
    /// The columnar mirror, if written (`[mirror]`).
    pub mirror: Option<MirrorSettings>,
}

/// `[mirror]`: the Parquet mirror written beside the archive as hours settle.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorSettings {
    /// How long after an hour's end (by the records' clock, the watermark) it is mirrored.
    pub settle: Duration,
    /// How often settled hours are looked for.
    pub every: Duration,
    /// At most this many bytes of compressed streams' records kept for the mirror
    /// (`maillog_mirror::cache`; 0: none).
    pub stream_cache_bytes: u64,
}

/// The settings of the long-running service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSettings {
    /// How long SIGTERM/SIGINT may take.
    pub shutdown: Duration,
    /// Its logs.
    pub log: LogSettings,
    /// Where `/metrics`, `/health`, `/top` are served.
    pub metrics: Option<SocketAddr>,
    /// When `/health` says unhealthy.
    pub health: HealthLimits,
    /// The live top-N's cap (0: off).
    pub top_max_keys: usize,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// JSON lines rather than text.
    pub json: bool,
    /// A level or filter (`info`, `maillog_tail=debug,warn`).
    pub level: String,
}

impl Settings {
    /// Following `inputs` (absolute paths or globs) with the spool in `spool`, into
    /// `archive`, everything else as an empty `pipeline.toml` has it (`maillog-config` checks
    /// that the two agree): UTC windows, 2 minutes of lateness, bzip2 -9, a commit a second,
    /// the original key layout, polling every 250 ms, following (not `--once`).
    pub fn new(inputs: Vec<PathBuf>, spool: PathBuf, archive: ArchiveUrl) -> Settings {
        Settings {
            inputs,
            state: spool.join("checkpoint"),
            spool,
            archive_url: archive,
            s3: S3Options::default(),
            upload_concurrency: 4,
            keep_uploaded: None,
            max_waiting: None,
            key_template: KeyTemplate::original(),
            host: String::new(),
            year: None,
            sendmail_programs: Vec::new(),
            start_at: StartAt::Beginning,
            watch: WatchMode::Poll,
            poll_interval: Duration::from_millis(250),
            max_line_bytes: maillog_parse::DEFAULT_MAX_LINE_BYTES,
            batch: BatchConfig::new(maillog_parse::Zone::Utc),
            commit_every: Duration::from_secs(1),
            once: false,
            seal_all: false,
            backoff: Backoff::default(),
            service: ServiceSettings {
                shutdown: Duration::from_secs(20),
                log: LogSettings {
                    json: false,
                    level: "info".into(),
                },
                metrics: None,
                health: HealthLimits {
                    upload_failing: Duration::from_secs(600),
                    max_spool_bytes: 1024 << 20,
                },
                top_max_keys: 128,
            },
            mirror: None,
        }
    }
}

/// What the service brings to the pipeline: its signals, its log level control, and how to
/// read the settings again.
pub struct Service {
    /// SIGTERM, SIGINT, SIGHUP.
    pub signals: Signals,
    /// Changes the log level on SIGHUP.
    pub log: Option<LogHandle>,
    /// Reads the settings again (SIGHUP). Handed in rather than called: reading the config
    /// file is `maillog-config`'s, which depends on this crate for [`Settings`].
    pub reread: Option<Box<dyn Fn() -> Result<Settings>>>,
}
