//! The running pipeline: the loop that takes chunks from the tailer, routes their records,
//! commits, and hands sealed files to the archive.
//!
//! The tailer runs on its own thread and hands chunks of lines through a bounded channel; this
//! thread parses them and routes the records into the batcher, whose bzip2 workers compress on
//! every core. About once a second (a *commit*): windows whose time has come are sealed, the
//! spool is made durable, and its state is committed together with the positions of every line
//! routed so far — one atomic write, so a crash anywhere loses and repeats nothing (see
//! `maillog_batch`'s docs) — then sealed files go to the archive and leave the spool.
//!
//! As a service (`service`): the spool is locked for one instance; signals are looked at
//! between two chunks (a stop commits and returns, SIGHUP re-reads the config); counters go to
//! `crate::observe` as chunks are taken and gauges at each commit. This module never blocks
//! on the HTTP side: it only adds to counters and tries the live top-N's lock (`live_feed`).

mod disk_full;
mod service;
mod summary;
mod take;

pub use summary::Summary;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use chrono::Utc;
use maillog_archive::Uploader;
use maillog_batch::{BatchConfig, BatchState, Batcher};
use maillog_parse::{ParseStats, Parser, TimeContext, YearPolicy};
use maillog_tail::{
    Ack, CheckpointOrigin, Checkpointer, Chunk, Tail, TailConfig, TailCore, TailHandle, TailStats,
};

use crate::archiving::Archiving;
use crate::fault::crash_point;
use crate::lifecycle::{Signals, SpoolLock};
use crate::live_feed::LiveFeed;
use crate::mirroring::Mirroring;
use crate::notify::{self, Notifier};
use crate::observe::Observed;
use crate::replay::{Committed, Origins, Replay};
use crate::settings::{Service, Settings};
use crate::year::YearReference;

struct Pipeline {
    settings: Settings,
    service: Service,
    observed: Arc<Observed>,
    /// The newest record time read (unix seconds).
    newest: i64,
    chunks: std::sync::mpsc::Receiver<Chunk>,
    checkpointer: Checkpointer,
    tail_handle: Option<TailHandle>,
    tail_stats: Arc<TailStats>,
    batcher: Batcher,
    parser: Parser,
    stats: ParseStats,
    acks: Vec<Ack>,
    archiving: Archiving,
    /// The Parquet mirror's writer, when `[mirror]` is enabled.
    mirroring: Option<Mirroring>,
    /// Modification times of inputs (the year reference of a backfill).
    mtimes: HashMap<Arc<Path>, i64>,
    /// Records ahead of the clock already warned about.
    outliers_reported: u64,
    live_feed: LiveFeed,
    /// When a cut line was last warned about.
    last_cut_warning: Option<Instant>,
    /// Where the open windows' lines begin.
    origins: Origins,
    /// Lines read again for windows the spool lost, until done.
    replay: Option<Replay>,
    /// What year-less stamps are resolved against while following.
    year_reference: YearReference,
    /// What systemd is told.
    notifier: Notifier,
}

/// Runs until the inputs are read (`--once`), a stop signal, or forever.
pub fn run(settings: Settings, service: Service) -> Result<Summary> {
    let lock = lock_spool(&settings)?;
    let observed = observe(&settings)?;
    let tail = TailCore::open(tail_config(&settings)).context("cannot start the tailer")?;
    let checkpointer = tail.checkpointer();
    let state = committed_state(&checkpointer, tail.origin(), &settings)?;
    let (uploader, archiving) = start_archiving(&settings, &observed)?;
    let mirroring = Mirroring::start(&settings)?;
    let windows = settings.spool.join("windows");
    let batch_state = state.as_ref().map(|s| s.batch.clone());
    let batch = BatchConfig {
        tap: mirroring.as_ref().and_then(Mirroring::tap),
        ..settings.batch.clone()
    };
    let (mut batcher, recovery) = Batcher::open(&windows, batch, batch_state, unix_now())?;
    batcher.set_keep_uploaded(settings.keep_uploaded);
    if recovery.resumed > 0 || !recovery.discarded.is_empty() {
        tracing::info!(resumed = recovery.resumed, discarded = ?recovery.discarded,
            "spool resumed from the last commit");
    }
    let state = state.unwrap_or_default();
    let replay = read_lost_windows_again(&recovery.lost_windows, &state, &checkpointer, &observed);
    let origins = Origins::new(&state.origins, &checkpointer);
    if let Some(replay) = &replay {
        commit_replay_plan(replay, &state, &mut batcher, &checkpointer, &settings)?;
    }
    check_missing_sealed(
        recovery.missing_sealed,
        &archiving,
        &uploader,
        &observed,
        &service.signals,
    );
    let Tail {
        chunks,
        checkpointer,
        stats: tail_stats,
        handle,
    } = maillog_tail::start(tail).context("cannot start the tailer")?;
    tracing::info!(
        inputs = ?settings.inputs,
        spool = %settings.spool.display(),
        archive = %settings.archive_url,
        lock = %lock.path.display(),
        "maillog run started"
    );
    let mut pipeline = Pipeline {
        parser: parser_of(&settings),
        settings,
        service,
        observed,
        newest: i64::MIN,
        chunks,
        checkpointer,
        tail_handle: Some(handle),
        tail_stats,
        batcher,
        stats: ParseStats::default(),
        acks: Vec::new(),
        archiving,
        mirroring,
        mtimes: HashMap::new(),
        outliers_reported: 0,
        live_feed: LiveFeed::default(),
        last_cut_warning: None,
        origins,
        replay,
        year_reference: state.year_reference,
        notifier: Notifier::from_env(),
    };
    let ran = pipeline.run();
    if let Some(mirroring) = &mut pipeline.mirroring {
        mirroring.stop();
    }
    ran?;
    Ok(Summary {
        parse: pipeline.stats,
        batch: pipeline.batcher.stats(),
        archived: pipeline.archiving.archived,
        mirrored: pipeline.mirroring.as_ref().map_or(0, |m| m.written),
        tail: Arc::clone(&pipeline.tail_stats),
    })
}

/// The spool, created if need be and locked for this process.
fn lock_spool(settings: &Settings) -> Result<SpoolLock> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&settings.spool)
        .with_context(|| format!("cannot create the spool {}", settings.spool.display()))?;
    let lock = SpoolLock::acquire(&settings.spool)?;
    if is_root() && !settings.once {
        tracing::warn!(
            "running as root: the service needs no privileges; run it as its own user with read access to the logs (contrib/systemd/maillog.service)"
        );
    }
    Ok(lock)
}

/// The metrics, health and live top-N, served over HTTP when an address is set.
fn observe(settings: &Settings) -> Result<Arc<Observed>> {
    let service = &settings.service;
    let observed = Observed::new(&settings.spool, service.health, service.top_max_keys);
    let observed = Arc::new(observed);
    if let Some(address) = service.metrics {
        let bound = crate::http::serve(address, Arc::clone(&observed))?;
        tracing::info!("serving /metrics, /health and /top on http://{bound}");
    }
    Ok(observed)
}

/// What the last commit saved beside the positions: none at a first start, or when the
/// checkpoint was lost (the spool's files are then offered to the archive again, see
/// `maillog_batch`'s salvage). A checkpoint found without a state is the tailer's first, of a
/// run killed before its first commit: nothing was committed, so the spool's files are beyond
/// the committed state and go — their lines are read again from those positions.
fn committed_state(
    checkpointer: &Checkpointer,
    origin: &CheckpointOrigin,
    settings: &Settings,
) -> Result<Option<Committed>> {
    let Some(value) = checkpointer.state() else {
        let found = matches!(
            origin,
            CheckpointOrigin::Resumed | CheckpointOrigin::PreviousGeneration(_)
        );
        let nothing = Committed {
            batch: BatchState {
                watermark: i64::MIN,
                ..BatchState::default()
            },
            ..Committed::default()
        };
        return Ok(found.then_some(nothing));
    };
    let state = serde_json::from_value(value).with_context(|| {
        let dir = settings.state.display();
        format!("the spool state in {dir} is not readable")
    })?;
    Ok(Some(state))
}

/// The uploader, and the archiving of sealed files through it.
fn start_archiving(settings: &Settings, observed: &Observed) -> Result<(Arc<Uploader>, Archiving)> {
    // Multipart uploads are recorded in the spool, so that one cut by a crash is aborted at
    // the next start (`maillog check` leaves this off: it must not touch a running service's).
    let mut s3 = settings.s3.clone();
    s3.state_dir = Some(settings.spool.join("multipart"));
    let concurrency = settings.upload_concurrency;
    let uploader = Uploader::start(&settings.archive_url, &s3, concurrency, settings.backoff)?;
    let uploader = Arc::new(uploader);
    let _ = observed.uploads.set(uploader.stats());
    let archiving = Archiving::new(
        Arc::clone(&uploader),
        settings.key_template.clone(),
        settings.batch.zone,
        settings.host.clone(),
        observed.metrics.upload_seconds.clone(),
    );
    Ok((uploader, archiving))
}

/// The plan to read lost windows again is committed before the tailer moves: a crash from
/// here on goes on with it (a checkpoint with the positions moved back but without it would
/// take the lines read again for new ones).
fn commit_replay_plan(
    replay: &Replay,
    state: &Committed,
    batcher: &mut Batcher,
    checkpointer: &Checkpointer,
    settings: &Settings,
) -> Result<()> {
    let template = settings.key_template.as_str();
    let (batch, _) = batcher.sync_pinned(false, template, &settings.host)?;
    let committed = Committed {
        origins: state.origins.clone(),
        replay: Some(replay.clone()),
        year_reference: state.year_reference,
        batch,
    };
    checkpointer.commit_with(&[], serde_json::to_value(&committed)?)?;
    batcher.committed();
    Ok(())
}

/// The parser, with the year policy of the settings.
fn parser_of(settings: &Settings) -> Parser {
    let year = match settings.year {
        Some(year) => YearPolicy::Fixed(year),
        None => YearPolicy::Reference(Utc::now()),
    };
    let context = TimeContext::new(settings.batch.zone, year);
    Parser::new(context, &settings.sendmail_programs)
}

/// Open windows the spool could not resume (wiped, edited; what is left of them is moved to
/// `orphaned/`): their lines are read again from where each window began (`replay`), said;
/// one that cannot be (no origin kept) is said precisely and counted. The service goes on.
fn read_lost_windows_again(
    lost: &[maillog_batch::LostWindow],
    state: &Committed,
    checkpointer: &Checkpointer,
    observed: &Observed,
) -> Option<Replay> {
    let started = Replay::start(lost, state, checkpointer);
    for (name, records, why) in started.unrecoverable {
        tracing::error!(
            window = %name,
            records,
            why = %why,
            "RECORDS LOST: the checkpoint names an open window the spool no longer holds whole (a spool wiped or edited while the checkpoint was kept), and where its lines begin was not kept (a state written by an older version): what is left of it is in orphaned/"
        );
        observed.metrics.spool_records_lost.inc_by(records);
    }
    let replay = started.replay?;
    for window in lost
        .iter()
        .filter(|w| replay.lost.iter().any(|l| l.window == w.id))
    {
        tracing::warn!(
            window = %window.name,
            records = window.records,
            why = %window.why,
            "the spool lost an open window (wiped or edited while the checkpoint was kept): its records are read again from the log files; what was left of it is in orphaned/"
        );
    }
    Some(replay)
}

/// Sealed files the state lists but the spool no longer holds were archived and released
/// just before a stop — or lost. Asked of the archive in the background: reading never waits
/// for it. One it does not have is said precisely and counted.
fn check_missing_sealed(
    missing: Vec<maillog_batch::SealedFile>,
    archiving: &Archiving,
    uploader: &Arc<Uploader>,
    observed: &Arc<Observed>,
    signals: &Signals,
) {
    if missing.is_empty() {
        return;
    }
    let keys: Vec<_> = missing
        .iter()
        .map(|f| (f.clone(), archiving.key(f)))
        .collect();
    let (uploader, observed, signals) =
        (Arc::clone(uploader), Arc::clone(observed), signals.clone());
    let check = move || {
        for (file, key) in keys {
            match uploader.has_unless(&key, &|| signals.stop_requested()) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(file = %file.name, records = file.records, key,
                        "RECORDS LOST: the spool lost a sealed file the archive does not have");
                    observed.metrics.spool_records_lost.inc_by(file.records);
                }
                Err(e) => tracing::warn!(
                    "cannot tell whether {key} was archived: {:#}",
                    anyhow::Error::from(e)
                ),
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("maillog-check-sealed".into())
        .spawn(check)
    {
        tracing::warn!("cannot check the sealed files missing from the spool: {e}");
    }
}

/// The tailer's settings.
fn tail_config(settings: &Settings) -> TailConfig {
    let mut config = TailConfig::new(settings.inputs.clone(), settings.state.clone());
    config.follow = !settings.once;
    config.finish_partial_lines = settings.once && settings.seal_all;
    config.start_at = settings.start_at;
    config.watch = settings.watch;
    config.poll_interval = settings.poll_interval;
    config.max_line_bytes = settings.max_line_bytes;
    config
}

impl Pipeline {
    fn run(&mut self) -> Result<()> {
        let mut last_commit = Instant::now();
        let mut last_chunk = Instant::now();
        let mut last_report = Instant::now();
        loop {
            if self.service.signals.stop_requested() {
                return self.shut_down();
            }
            if self.service.signals.take_hup() {
                self.reload();
            }
            let wait = self
                .settings
                .commit_every
                .saturating_sub(last_commit.elapsed());
            let wait = wait.min(Duration::from_millis(200));
            match self.chunks.recv_timeout(wait) {
                Ok(chunk) => {
                    last_chunk = Instant::now();
                    if let Err(e) = self.take(&chunk) {
                        return self.stopped_while_taking(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break, // the tailer is done (or failed: see below)
                // Quiet for a while, not merely between two reads: an input that lags the
                // clock (a backlog, a replay) is read faster than it is written, and a wall
                // clock moving its watermark would make every one of its windows late.
                Err(RecvTimeoutError::Timeout)
                    if !self.settings.once && last_chunk.elapsed() >= QUIET =>
                {
                    self.batcher.idle(unix_now())
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if last_commit.elapsed() >= self.settings.commit_every {
                self.commit_when_possible(Seal::Due)?;
                last_commit = Instant::now();
                self.wait_below_ceiling()?;
            }
            if last_report.elapsed() >= Duration::from_secs(60) {
                last_report = Instant::now();
                self.report_time_outliers();
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
        if self.service.signals.stop_requested() {
            return self.shut_down();
        }
        // Every input is read to its end: the wall clock says what is due (`--once=all`
        // seals everything, a backfill); a replay has read all it can.
        self.finish_replay(true);
        self.batcher.idle(unix_now());
        let end = if self.settings.seal_all {
            Seal::All
        } else {
            Seal::DueNow
        };
        self.commit_when_possible(end)?;
        let signals = self.service.signals.clone();
        let archived = self
            .archiving
            .finish(&mut self.batcher, &|| signals.stop_requested());
        self.commit_when_possible(end)?; // the released files leave the state
        self.report_time_outliers();
        archived?;
        self.mirror_at_the_end()
    }

    /// The end of `--once`, everything archived: a last mirror pass, waited for. A failure
    /// fails the run (the archive is complete; the mirror is written by the next run or
    /// `maillog compact`).
    fn mirror_at_the_end(&mut self) -> Result<()> {
        let Some(mirroring) = &mut self.mirroring else {
            return Ok(());
        };
        let signals = self.service.signals.clone();
        match mirroring.finish(&self.batcher, &|| signals.stop_requested()) {
            Some(e) => anyhow::bail!(
                "everything is archived, but the mirror could not be written: {e}; the next run or `maillog compact` writes it"
            ),
            None => Ok(()),
        }
    }

    /// Records stamped beyond the wall clock plus the skew, said at most once a minute.
    fn report_time_outliers(&mut self) {
        let ahead = self.batcher.stats().ahead_of_clock;
        if ahead > self.outliers_reported {
            tracing::warn!(
                records = ahead - self.outliers_reported,
                skew_seconds = self.settings.batch.max_skew,
                "records stamped ahead of the wall clock: archived in their windows, but they do not move the watermark (a server's clock, or a forged message?)"
            );
            self.outliers_reported = ahead;
        }
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
            if self.service.signals.stop_requested() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(1));
            self.commit_when_possible(Seal::Due)?;
        }
        tracing::info!("the archive caught up: reading on");
        Ok(())
    }

    /// Seals what is due (see [`Seal`]), makes the spool durable, commits it with the
    /// positions, then archives sealed files.
    fn commit(&mut self, seal: Seal) -> Result<()> {
        match seal {
            Seal::Due | Seal::DueWaiting => self.batcher.seal_due(false),
            Seal::DueNow => self.batcher.seal_windows_due(),
            Seal::All => self.batcher.seal_due(true),
        }
        let (template, host) = (self.settings.key_template.as_str(), &self.settings.host);
        let (state, sealed) = self
            .batcher
            .sync_pinned(seal != Seal::Due, template, host)?;
        if !sealed.is_empty() {
            crash_point("after-seal");
        }
        let open = state.spool.open.len();
        self.finish_replay(false);
        let committed = Committed {
            origins: self.origins.committed(&state, &self.checkpointer),
            replay: self.replay.clone(),
            year_reference: self.year_reference,
            batch: state,
        };
        let value = serde_json::to_value(&committed).context("cannot serialize the spool state")?;
        self.checkpointer.commit_with(&self.acks, value)?;
        self.acks.clear();
        self.batcher.committed();
        self.publish(open);
        self.notifier.committed(notify::Status {
            records: self.stats.from_records + self.stats.to_records,
            windows_open: open,
            waiting: self.batcher.sealed().len(),
        });
        self.archiving.step(&mut self.batcher)?;
        if let Some(mirroring) = &mut self.mirroring {
            mirroring.step(&self.batcher);
        }
        Ok(())
    }
}

/// How long the inputs must give nothing before the wall clock moves the watermark.
const QUIET: Duration = Duration::from_secs(2);

/// What a commit seals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seal {
    /// The windows that are due; a seal whose compression is not done yet waits for the next
    /// commit (the service, every second).
    Due,
    /// What `Due` seals, waiting for the compression (a retry on a full disk: a block the
    /// compressors finished needs a tenth of its raw file's room).
    DueWaiting,
    /// The windows that are due, further parts included, waiting for their compression (the
    /// end of `--once`).
    DueNow,
    /// Every window, waiting for the compression (the end of `--once=all`).
    All,
}

/// Whether the process runs as root (the owner of `/proc/self` is its effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
