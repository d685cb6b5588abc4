//! What the running service shows of itself: the Prometheus metrics, the health verdict and the
//! live top-N, shared between the pipeline (which updates them) and the HTTP thread (which
//! reads them; see `http`).
//!
//! The pipeline adds to counters as it goes and publishes gauges at each commit; values that
//! cost a look at the disk (spool bytes and files) are taken when scraped. Nothing here may
//! block the pipeline for longer than a counter update or a short lock.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use maillog_aggregate::LiveTop;
use maillog_archive::UploadStats;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;

/// `/health`'s limits (SIGHUP may change them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthLimits {
    /// Unhealthy once uploads have failed this long without a success.
    pub upload_failing: Duration,
    /// Unhealthy while the spool holds more than this.
    pub max_spool_bytes: u64,
}

type Labels = [(&'static str, String); 1];

/// The metrics the pipeline updates.
#[derive(Clone, Default)]
pub struct Metrics {
    pub lines: Family<Labels, Counter>,
    pub records: Family<Labels, Counter>,
    pub non_records: Family<Labels, Counter>,
    pub windows_open: Gauge,
    pub windows_sealed: Counter,
    pub late_parts: Counter,
    pub records_ahead_of_clock: Counter,
    pub windows_sealed_by_bound: Counter,
    pub archive_name_taken: Counter,
    pub tail_files_lost: Counter,
    pub tail_files_replaced: Counter,
    pub tail_files_diverged: Counter,
    pub lines_cut: Counter,
    pub spool_records_lost: Counter,
    pub spool_records_reread: Counter,
    pub tail_bytes_lost: Counter,
    pub upload_seconds: UploadLatency,
    pub seconds_behind: Gauge,
    spool_bytes: Gauge,
    spool_ceiling_bytes: Gauge,
    spool_files: Gauge,
    checkpoint_age: Gauge,
    uploads_ok: Counter,
    upload_failures: Counter,
    upload_retries: Counter,
    uploads_refused: Counter,
    uploads_failing_seconds: Gauge,
    live_keys: Gauge,
}

/// Upload durations per result (`ok`, `refused`): 10 ms to about 3 min.
#[derive(Clone)]
pub struct UploadLatency(pub Family<Labels, Histogram, fn() -> Histogram>);

impl Default for UploadLatency {
    fn default() -> Self {
        UploadLatency(Family::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 15))
        }))
    }
}

impl Metrics {
    /// Registers every metric under the `maillog_` prefix.
    fn register(&self, registry: &mut Registry) {
        self.register_reading(registry);
        self.register_windows(registry);
        self.register_archive(registry);
    }

    /// What was read: lines, records, what the tailer met.
    fn register_reading(&self, registry: &mut Registry) {
        registry.register(
            "lines_read",
            "Lines read, per input file",
            self.lines.clone(),
        );
        registry.register(
            "records",
            "Records batched, per kind (from, to)",
            self.records.clone(),
        );
        registry.register(
            "non_records",
            "Lines that made no record, per class",
            self.non_records.clone(),
        );
        registry.register(
            "lines_cut",
            "Lines longer than [tail] max_line_bytes, cut to it",
            self.lines_cut.clone(),
        );
        registry.register(
            "tail_files_replaced",
            "Followed files replaced by a copy of their content (read on, not again)",
            self.tail_files_replaced.clone(),
        );
        registry.register(
            "tail_files_diverged",
            "Replacements whose content differed from what was read (read again from the first difference, or from the start after a restart)",
            self.tail_files_diverged.clone(),
        );
        registry.register(
            "tail_files_lost",
            "Files that vanished (a rotation deleted them) before they were read to their end",
            self.tail_files_lost.clone(),
        );
        registry.register(
            "tail_bytes_lost",
            "Bytes of those files never read (at least)",
            self.tail_bytes_lost.clone(),
        );
        registry.register(
            "seconds_behind",
            "Seconds between now and the time of the newest record read",
            self.seconds_behind.clone(),
        );
        registry.register(
            "live_top_keys",
            "Distinct keys held by the live top-N",
            self.live_keys.clone(),
        );
    }

    /// The windows and the spool.
    fn register_windows(&self, registry: &mut Registry) {
        registry.register(
            "windows_open",
            "Windows open in the spool",
            self.windows_open.clone(),
        );
        registry.register(
            "windows_sealed",
            "Window files sealed",
            self.windows_sealed.clone(),
        );
        registry.register(
            "late_parts",
            "Window files sealed as further parts of a window sealed before (late records)",
            self.late_parts.clone(),
        );
        registry.register(
            "records_ahead_of_clock",
            "Records stamped past the wall clock plus the skew: archived, but they did not move the watermark",
            self.records_ahead_of_clock.clone(),
        );
        registry.register(
            "windows_sealed_by_bound",
            "Windows sealed because they were open too long or too many were open, not by the watermark",
            self.windows_sealed_by_bound.clone(),
        );
        registry.register(
            "spool_records_lost",
            "Committed records the spool no longer held at a start (wiped or edited while the checkpoint was kept)",
            self.spool_records_lost.clone(),
        );
        registry.register(
            "spool_records_reread",
            "Records of open windows the spool lost, read again from the log files",
            self.spool_records_reread.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes in the spool's window files",
            self.spool_bytes.clone(),
        );
        registry.register(
            "spool_ceiling_bytes",
            "[health] max_spool_mib: above this many bytes in the spool /health answers 503",
            self.spool_ceiling_bytes.clone(),
        );
        registry.register(
            "spool_files",
            "Window files in the spool",
            self.spool_files.clone(),
        );
        registry.register(
            "checkpoint_age_seconds",
            "Seconds since positions and spool were last committed",
            self.checkpoint_age.clone(),
        );
    }

    /// The archive: uploads, their failures and durations.
    fn register_archive(&self, registry: &mut Registry) {
        registry.register(
            "archive_name_taken",
            "Sealed files archived as a further part because the archive held their name with other bytes",
            self.archive_name_taken.clone(),
        );
        registry.register(
            "uploads",
            "Files the archive confirmed",
            self.uploads_ok.clone(),
        );
        registry.register(
            "upload_failures",
            "Upload tries that failed (retries included)",
            self.upload_failures.clone(),
        );
        registry.register(
            "upload_retries",
            "Upload tries that were retries",
            self.upload_retries.clone(),
        );
        registry.register(
            "uploads_refused",
            "Files the archive refused for a reason retrying cannot fix (they wait in the spool)",
            self.uploads_refused.clone(),
        );
        registry.register(
            "uploads_failing_seconds",
            "Seconds the uploads have failed without a success (0: they do not)",
            self.uploads_failing_seconds.clone(),
        );
        registry.register(
            "upload_duration_seconds",
            "From the first try of a file to the archive's confirmation, per result",
            self.upload_seconds.0.clone(),
        );
    }
}

/// Everything the HTTP thread can see.
pub struct Observed {
    pub metrics: Metrics,
    registry: Registry,
    /// The live top-N (absent with `[top] max_keys = 0`).
    pub live: Option<Mutex<LiveTop>>,
    /// When positions and spool were last committed (unix milliseconds).
    pub last_commit_ms: AtomicI64,
    /// The uploader's counters, once it runs.
    pub uploads: OnceLock<Arc<UploadStats>>,
    /// Set when the service is stopping.
    pub stopping: AtomicBool,
    limits: Mutex<HealthLimits>,
    spool: PathBuf,
    /// Upload counters already turned into metrics.
    seen: Mutex<[u64; 4]>,
}

impl Observed {
    pub fn new(spool: &Path, limits: HealthLimits, top_max_keys: usize) -> Self {
        let metrics = Metrics::default();
        let mut registry = Registry::with_prefix("maillog");
        metrics.register(&mut registry);
        metrics.spool_ceiling_bytes.set(ceiling(&limits));
        Observed {
            metrics,
            registry,
            live: (top_max_keys > 0).then(|| Mutex::new(LiveTop::new(top_max_keys))),
            last_commit_ms: AtomicI64::new(now_ms()),
            uploads: OnceLock::new(),
            stopping: AtomicBool::new(false),
            limits: Mutex::new(limits),
            spool: spool.to_path_buf(),
            seen: Mutex::new([0; 4]),
        }
    }

    pub fn set_limits(&self, limits: HealthLimits) {
        self.metrics.spool_ceiling_bytes.set(ceiling(&limits));
        if let Ok(mut l) = self.limits.lock() {
            *l = limits;
        }
    }

    /// The metrics in the Prometheus text format, brought up to date.
    pub fn render_metrics(&self) -> String {
        self.refresh();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Takes the values that are read rather than counted.
    fn refresh(&self) {
        let m = &self.metrics;
        let usage = maillog_batch::spool::usage(&self.spool.join("windows"));
        let (files, bytes) = (usage.files, usage.bytes);
        m.spool_files.set(files as i64);
        m.spool_bytes.set(bytes as i64);
        let age = (now_ms() - self.last_commit_ms.load(Ordering::Relaxed)).max(0) / 1000;
        m.checkpoint_age.set(age);
        if let Some(live) = &self.live
            && let Ok(live) = live.lock()
        {
            m.live_keys.set(live.approx_memory_keys() as i64);
        }
        if let Some(up) = self.uploads.get() {
            let now = [
                up.succeeded.load(Ordering::Relaxed),
                up.failed_tries.load(Ordering::Relaxed),
                up.retries.load(Ordering::Relaxed),
                up.refused.load(Ordering::Relaxed),
            ];
            if let Ok(mut seen) = self.seen.lock() {
                let counters = [
                    &m.uploads_ok,
                    &m.upload_failures,
                    &m.upload_retries,
                    &m.uploads_refused,
                ];
                for ((counter, now), seen) in counters.iter().zip(now).zip(seen.iter_mut()) {
                    counter.inc_by(now.saturating_sub(*seen));
                    *seen = now.max(*seen);
                }
            }
            let failing = up.failing_for().map_or(0, |d| d.as_secs() as i64);
            m.uploads_failing_seconds.set(failing);
        }
    }

    /// The health verdict.
    pub fn health(&self) -> Health {
        let limits = self.limits.lock().map_or(
            HealthLimits {
                upload_failing: Duration::MAX,
                max_spool_bytes: u64::MAX,
            },
            |l| *l,
        );
        let usage = maillog_batch::spool::usage(&self.spool.join("windows"));
        let (spool_files, spool_bytes) = (usage.files, usage.bytes);
        let failing = self.uploads.get().and_then(|u| u.failing_for());
        let mut problems = Vec::new();
        if let Some(failing) = failing
            && failing > limits.upload_failing
        {
            problems.push(format!(
                "uploads have failed for {} s (limit {} s)",
                failing.as_secs(),
                limits.upload_failing.as_secs()
            ));
        }
        if spool_bytes > limits.max_spool_bytes {
            problems.push(format!(
                "the spool holds {spool_bytes} bytes (limit {})",
                limits.max_spool_bytes
            ));
        }
        Health {
            status: if problems.is_empty() {
                "ok"
            } else {
                "unhealthy"
            },
            problems,
            stopping: self.stopping.load(Ordering::Relaxed),
            uploads_failing_seconds: failing.map_or(0, |d| d.as_secs()),
            spool_bytes,
            spool_files,
            checkpoint_age_seconds: (now_ms() - self.last_commit_ms.load(Ordering::Relaxed)).max(0)
                / 1000,
        }
    }
}

/// The spool's health ceiling as a gauge's value (a limit past `i64::MAX` is no limit).
fn ceiling(limits: &HealthLimits) -> i64 {
    i64::try_from(limits.max_spool_bytes).unwrap_or(i64::MAX)
}

/// `/health`'s answer.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub problems: Vec<String>,
    pub stopping: bool,
    pub uploads_failing_seconds: u64,
    pub spool_bytes: u64,
    pub spool_files: u64,
    pub checkpoint_age_seconds: i64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
