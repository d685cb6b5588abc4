//! The pipeline of `maillog run`: tailer → parser → windows → spool → archive.
//!
//! The tailer runs on its own thread and hands chunks of lines through a bounded channel; this
//! thread parses them and routes the records into the batcher, whose bzip2 workers compress on
//! every core. About once a second (a *commit*): windows whose time has come are sealed, the
//! spool is made durable, and its state is committed together with the positions of every line
//! routed so far — one atomic write, so a crash anywhere loses and repeats nothing (see
//! `maillog_batch`'s docs) — then sealed files go to the archive and leave the spool.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use maillog_batch::{ArchiveHas, BatchConfig, BatchState, BatchStats, Batcher, render_key};
use maillog_parse::{ParseStats, Parsed, Parser, TimeContext, YearPolicy, decode};
use maillog_tail::{Ack, Checkpointer, Chunk, StartAt, Tail, TailConfig, TailHandle, TailStats};
use maillog_upload::{Backoff, S3Options, Uploader};

use crate::archiving::Archiving;

/// Everything `maillog run` needs, resolved from the config file and the flags.
#[derive(Debug)]
pub struct Settings {
    pub inputs: Vec<PathBuf>,
    pub spool: PathBuf,
    pub archive_url: String,
    pub s3: S3Options,
    pub upload_concurrency: usize,
    pub keep_uploaded: Option<Duration>,
    pub max_waiting: Option<u64>,
    pub key_template: String,
    pub host: String,
    pub year: Option<i32>,
    pub sendmail_programs: Vec<String>,
    pub start_at: StartAt,
    pub batch: BatchConfig,
    pub commit_every: Duration,
    pub once: bool,
}

/// The counters printed at the end.
pub struct Summary {
    parse: ParseStats,
    batch: BatchStats,
    archived: u64,
    tail: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.batch;
        writeln!(f, "maillog run: {}", self.parse)?;
        writeln!(
            f,
            "maillog run: {} windows sealed ({} late parts), {} archived; {} bytes of records in, {} bytes of bzip2 out",
            b.windows_sealed, b.late_parts, self.archived, b.bytes_in, b.bytes_out
        )?;
        write!(f, "maillog run: tailer: {}", self.tail)
    }
}

struct Pipeline {
    settings: Settings,
    chunks: tokio::sync::mpsc::Receiver<Chunk>,
    checkpointer: Checkpointer,
    tail_handle: Option<TailHandle>,
    tail_stats: Arc<TailStats>,
    batcher: Batcher,
    parser: Parser,
    stats: ParseStats,
    acks: Vec<Ack>,
    archiving: Archiving,
    /// Modification times of inputs (the year reference of a backfill).
    mtimes: HashMap<Arc<Path>, i64>,
}

/// Runs until the inputs are read (`--once`) or forever.
pub fn run(settings: Settings) -> Result<Summary> {
    std::fs::create_dir_all(&settings.spool)
        .with_context(|| format!("cannot create the spool {}", settings.spool.display()))?;
    let mut tail_config =
        TailConfig::new(settings.inputs.clone(), settings.spool.join("checkpoint"));
    tail_config.follow = !settings.once;
    tail_config.start_at = settings.start_at;
    let tail = maillog_tail::spawn(tail_config).context("cannot start the tailer")?;
    let state: Option<BatchState> = match tail.checkpointer.state() {
        Some(value) => Some(serde_json::from_value(value).with_context(|| {
            format!(
                "the spool state in {} is not readable",
                settings.spool.join("checkpoint").display()
            )
        })?),
        None => None,
    };
    let uploader = Uploader::start(
        &settings.archive_url,
        &settings.s3,
        settings.upload_concurrency,
        Backoff::default(),
    )?;
    let uploader = Arc::new(uploader);
    let archiving = Archiving::new(
        Arc::clone(&uploader),
        settings.key_template.clone(),
        settings.batch.zone,
        settings.host.clone(),
    );
    let archive_has: ArchiveHas = {
        let (uploader, template) = (Arc::clone(&uploader), settings.key_template.clone());
        let (zone, host) = (settings.batch.zone, settings.host.clone());
        Box::new(move |id| {
            uploader
                .has(&render_key(&template, id, &zone, &host))
                .map_err(|e| e.to_string())
        })
    };
    let windows = settings.spool.join("windows");
    let (mut batcher, recovery) =
        Batcher::open(&windows, settings.batch.clone(), state, archive_has)?;
    batcher.set_keep_uploaded(settings.keep_uploaded);
    if recovery.resumed > 0 || !recovery.discarded.is_empty() {
        tracing::info!(resumed = recovery.resumed, discarded = ?recovery.discarded,
            "spool resumed from the last commit");
    }
    for file in &recovery.missing_sealed {
        if !uploader.has(&archiving.key(&file.id))? {
            bail!(
                "the spool lost the sealed file {} (not in {} either)",
                file.name,
                uploader.archive()
            );
        }
    }
    let year = match settings.year {
        Some(year) => YearPolicy::Fixed(year),
        None => YearPolicy::Reference(Utc::now()),
    };
    let parser = Parser::new(
        TimeContext::new(settings.batch.zone, year),
        &settings.sendmail_programs,
    );
    let Tail {
        chunks,
        checkpointer,
        stats: tail_stats,
        handle,
    } = tail;
    let mut pipeline = Pipeline {
        settings,
        chunks,
        checkpointer,
        tail_handle: Some(handle),
        tail_stats,
        batcher,
        parser,
        stats: ParseStats::default(),
        acks: Vec::new(),
        archiving,
        mtimes: HashMap::new(),
    };
    pipeline.run()?;
    let tail_stats = pipeline.tail_stats.to_string();
    Ok(Summary {
        parse: pipeline.stats,
        batch: pipeline.batcher.stats(),
        archived: pipeline.archiving.archived,
        tail: tail_stats,
    })
}

impl Pipeline {
    fn run(&mut self) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let mut last_commit = Instant::now();
        let mut last_report = Instant::now();
        loop {
            let wait = self
                .settings
                .commit_every
                .saturating_sub(last_commit.elapsed());
            let wait = wait.min(Duration::from_millis(200));
            let chunks = &mut self.chunks;
            let received =
                runtime.block_on(async { tokio::time::timeout(wait, chunks.recv()).await });
            match received {
                Ok(Some(chunk)) => self.take(&chunk)?,
                Ok(None) => break, // the tailer is done (or failed: see below)
                Err(_) if !self.settings.once => self.batcher.idle(unix_now()),
                Err(_) => {}
            }
            if last_commit.elapsed() >= self.settings.commit_every {
                self.commit_when_possible(false)?;
                last_commit = Instant::now();
                self.wait_below_ceiling()?;
            }
            if last_report.elapsed() >= Duration::from_secs(60) {
                last_report = Instant::now();
                let waiting = self.batcher.sealed();
                if !waiting.is_empty() {
                    let bytes: u64 = waiting.iter().map(|s| s.bytes).sum();
                    tracing::info!(
                        files = waiting.len(),
                        bytes,
                        "sealed files wait in the spool for the archive"
                    );
                }
            }
        }
        if let Some(handle) = self.tail_handle.take() {
            handle.join().context("the tailer stopped")?;
        }
        self.commit_when_possible(true)?;
        let archived = self.archiving.finish(&mut self.batcher);
        self.commit_when_possible(true)?; // the released files leave the state
        archived
    }

    /// Parses a chunk's lines and routes their records.
    fn take(&mut self, chunk: &Chunk) -> Result<()> {
        if self.settings.year.is_none() {
            let reference = if self.settings.once {
                self.mtime(&chunk.path)
            } else {
                let now = unix_now().max(self.batcher.year_reference().unwrap_or(i64::MIN));
                self.batcher.set_year_reference(now);
                now
            };
            let at = DateTime::<Utc>::from_timestamp(reference, 0).unwrap_or_default();
            self.parser.set_year_policy(YearPolicy::Reference(at));
        }
        for line in chunk.lines() {
            let decoded = decode(line);
            let parsed = self.parser.parse(&decoded.text);
            self.stats.count(&parsed, decoded.lossy);
            if let Parsed::Event(event) = &parsed {
                self.batcher.add(event)?;
            }
        }
        self.acks.push(chunk.ack);
        Ok(())
    }

    fn mtime(&mut self, path: &Arc<Path>) -> i64 {
        *self.mtimes.entry(Arc::clone(path)).or_insert_with(|| {
            std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or_else(unix_now, |d| d.as_secs() as i64)
        })
    }

    /// While the sealed files waiting for the archive pass the ceiling, reading stops (the
    /// tailer waits on its full channel) and the archive is given time to catch up.
    fn wait_below_ceiling(&mut self) -> Result<()> {
        let Some(ceiling) = self.settings.max_waiting else {
            return Ok(());
        };
        if self.batcher.sealed_bytes() <= ceiling {
            return Ok(());
        }
        tracing::warn!(
            waiting = self.batcher.sealed_bytes(),
            ceiling,
            "sealed files waiting for the archive passed the ceiling: reading stopped"
        );
        while self.batcher.sealed_bytes() > ceiling {
            std::thread::sleep(Duration::from_secs(1));
            self.commit_when_possible(false)?;
        }
        tracing::info!("the archive caught up: reading on");
        Ok(())
    }

    /// [`Self::commit`]; while the spool's disk is full, reading stops (the tailer waits on its
    /// full channel) and the commit is tried again every few seconds: nothing is lost.
    fn commit_when_possible(&mut self, everything: bool) -> Result<()> {
        let mut said = false;
        loop {
            match self.commit(everything) {
                Err(e) if is_disk_full(&e) => {
                    if !said {
                        tracing::error!(
                            "{e:#}: the spool's disk is full; reading stopped until there is room"
                        );
                        said = true;
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
                Ok(()) => {
                    if said {
                        tracing::info!("the spool has room again: reading on");
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Seals what is due (everything at the end of `--once`), makes the spool durable, commits
    /// it with the positions, then archives sealed files.
    fn commit(&mut self, everything: bool) -> Result<()> {
        self.batcher.seal_due(everything);
        let (state, sealed) = self.batcher.sync(everything)?;
        if !sealed.is_empty() {
            crash_point("after-seal");
        }
        let value = serde_json::to_value(&state).context("cannot serialize the spool state")?;
        self.checkpointer.commit_with(&self.acks, value)?;
        self.acks.clear();
        self.batcher.committed();
        self.archiving.step(&mut self.batcher)
    }
}

/// Fault injection for the crash test: with `MAILLOG_CRASH_AT=after-seal|after-archive|after-release`
/// the process stops there, the first time it gets there, and says so: the test kills it.
pub fn crash_point(name: &str) {
    if std::env::var_os("MAILLOG_CRASH_AT").is_some_and(|v| v == name) {
        eprintln!("maillog: MAILLOG_CRASH_AT={name}: stopped here for a SIGKILL");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Whether an error is the spool's (or checkpoint's) file system being full.
fn is_disk_full(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        }) || cause
            .downcast_ref::<maillog_batch::SpoolError>()
            .is_some_and(|e| e.is_disk_full())
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
