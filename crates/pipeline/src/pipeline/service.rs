//! The pipeline as a service: a graceful stop, SIGHUP, and the gauges published at each commit.
//!
//! A stop (SIGTERM/SIGINT) stops reading, commits — open windows stay open in the spool, so the
//! next start resumes them and adds no extra parts — gives in-flight uploads until the bound
//! (`[service] shutdown_seconds`), commits what they released, and returns. Chunks the tailer
//! had handed out but the pipeline had not taken are not acknowledged: the next start reads
//! them again. Nothing here may lose what a commit made durable.

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};

use super::{Pipeline, Seal, Settings, tail_config, unix_now};
use maillog_tail::TailStats;

use crate::observe::now_ms;
use crate::settings::ServiceSettings;

impl Pipeline {
    /// SIGTERM/SIGINT: stop within the bound, everything durable.
    pub(super) fn shut_down(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.settings.service.shutdown;
        self.observed.stopping.store(true, Ordering::Relaxed);
        self.notifier.stopping();
        tracing::info!(
            "stop signal: reading stopped, committing; uploads get {:?} (a second signal exits at once)",
            self.settings.service.shutdown
        );
        self.stop_tailer()?;
        self.commit_when_possible(Seal::Due)?;
        if let Some(mirroring) = &mut self.mirroring {
            mirroring.stop();
        }
        let waiting = self.archiving.drain(&mut self.batcher, deadline)?;
        self.commit_when_possible(Seal::Due)?; // the released files leave the state
        let open = self.batcher.stats();
        tracing::info!(
            sealed_waiting = waiting,
            windows_sealed = open.windows_sealed,
            "stopped: open windows stay in the spool and resume at the next start"
        );
        Ok(())
    }

    /// A chunk could not be taken. When that is because a stop gave up waiting for the
    /// archive, the process ends without a commit — as after a crash, what was read since the
    /// last commit is read again at the next start — since the chunk is half taken. Any other
    /// error is the pipeline's failure.
    pub(super) fn stopped_while_taking(&mut self, error: anyhow::Error) -> Result<()> {
        if !self.service.signals.stop_requested() {
            return Err(error);
        }
        tracing::warn!(
            "stop signal while waiting for the archive ({error:#}): stopped without a last commit; what was read since the previous one is read again at the next start"
        );
        Ok(())
    }

    /// Stops the tailer; what it handed out but was not taken is dropped unacknowledged.
    fn stop_tailer(&mut self) -> Result<()> {
        if let Some(handle) = self.tail_handle.take() {
            handle.stop();
            // A send blocked on the full channel returns once the receiver is gone.
            drop(std::mem::replace(
                &mut self.chunks,
                std::sync::mpsc::sync_channel(1).1,
            ));
            handle.join().context("the tailer stopped")?;
        }
        Ok(())
    }

    /// SIGHUP: look at the inputs again now, re-read the config, apply what can change safely
    /// while running (log level, health limits, the inputs) and say what waits for a restart.
    pub(super) fn reload(&mut self) {
        if let Some(handle) = &self.tail_handle {
            handle.rescan();
        }
        let Some(reread) = &self.service.reread else {
            return;
        };
        let new = match reread() {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("SIGHUP: {e:#}; the running settings stay");
                return;
            }
        };
        let old = &self.settings;
        if new.service.log.level != old.service.log.level
            && let Some(log) = &self.service.log
        {
            match log.set_level(&new.service.log.level) {
                Ok(()) => tracing::info!("SIGHUP: log level now {:?}", new.service.log.level),
                Err(e) => tracing::error!("SIGHUP: {e:#}"),
            }
        }
        self.observed.set_limits(new.service.health);
        let later = restart_only_changes(old, &new);
        if !later.is_empty() {
            tracing::warn!(
                "SIGHUP: {} changed; that takes effect at the next start",
                later.join(", ")
            );
        }
        let inputs_changed = new.inputs != old.inputs;
        let (inputs, health, level) = (
            new.inputs.clone(),
            new.service.health,
            new.service.log.level.clone(),
        );
        self.settings.service.health = health;
        self.settings.service.shutdown = new.service.shutdown;
        self.settings.service.log.level = level;
        if inputs_changed {
            if let Err(e) = self.follow_new_inputs(inputs) {
                tracing::error!("SIGHUP: cannot follow the new inputs: {e:#}");
            }
        } else {
            tracing::info!("SIGHUP: inputs looked at again, config re-read");
        }
    }

    /// Restarts the tailer on new inputs: what was taken is committed first, what was handed
    /// out but not taken is read again by the new tailer from the committed positions.
    fn follow_new_inputs(&mut self, inputs: Vec<std::path::PathBuf>) -> Result<()> {
        self.commit_when_possible(Seal::Due)?;
        self.stop_tailer()?;
        let old_inputs = std::mem::replace(&mut self.settings.inputs, inputs);
        let tail = match maillog_tail::spawn(tail_config(&self.settings)) {
            Ok(tail) => tail,
            Err(e) => {
                self.settings.inputs = old_inputs;
                let tail = maillog_tail::spawn(tail_config(&self.settings))
                    .context("cannot restart the tailer on the old inputs")?;
                self.adopt(tail);
                return Err(e).context("the new inputs");
            }
        };
        self.adopt(tail);
        tracing::info!(inputs = ?self.settings.inputs, "SIGHUP: following the new inputs");
        Ok(())
    }

    fn adopt(&mut self, tail: maillog_tail::Tail) {
        self.chunks = tail.chunks;
        self.checkpointer = tail.checkpointer;
        self.tail_stats = tail.stats;
        self.tail_handle = Some(tail.handle);
    }

    /// The gauges, after a commit.
    pub(super) fn publish(&self, windows_open: usize) {
        let m = &self.observed.metrics;
        m.windows_open.set(windows_open as i64);
        let stats = self.batcher.stats();
        m.windows_sealed
            .inc_by(stats.windows_sealed.saturating_sub(m.windows_sealed.get()));
        m.late_parts
            .inc_by(stats.late_parts.saturating_sub(m.late_parts.get()));
        let ahead = &m.records_ahead_of_clock;
        ahead.inc_by(stats.ahead_of_clock.saturating_sub(ahead.get()));
        let by_bound = &m.windows_sealed_by_bound;
        by_bound.inc_by(stats.sealed_by_bound.saturating_sub(by_bound.get()));
        let taken = &m.archive_name_taken;
        taken.inc_by(stats.retargeted.saturating_sub(taken.get()));
        let tail = &self.tail_stats;
        let (files, bytes) = (&m.tail_files_lost, &m.tail_bytes_lost);
        files.inc_by(TailStats::get(&tail.files_lost).saturating_sub(files.get()));
        bytes.inc_by(TailStats::get(&tail.bytes_lost).saturating_sub(bytes.get()));
        let (replaced, diverged) = (&m.tail_files_replaced, &m.tail_files_diverged);
        replaced.inc_by(TailStats::get(&tail.replaced_files).saturating_sub(replaced.get()));
        diverged.inc_by(TailStats::get(&tail.diverged_files).saturating_sub(diverged.get()));
        if self.newest > i64::MIN {
            m.seconds_behind.set((unix_now() - self.newest).max(0));
        }
        self.observed
            .last_commit_ms
            .store(now_ms(), Ordering::Relaxed);
    }
}

/// The settings that differ and cannot change while running. Every field of [`Settings`] is
/// named here (a new one does not compile until it is placed): applied on SIGHUP, or listed.
fn restart_only_changes(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let Settings {
        // Applied on SIGHUP (`reload`).
        inputs: _,
        // What the service was started as, not a setting of the file.
        once: _,
        seal_all: _,
        spool,
        state,
        archive_url,
        s3,
        upload_concurrency,
        keep_uploaded,
        max_waiting,
        key_template,
        host,
        year,
        sendmail_programs,
        start_at,
        watch,
        poll_interval,
        max_line_bytes,
        batch,
        commit_every,
        backoff,
        service,
        mirror,
    } = old;
    let ServiceSettings {
        // Applied on SIGHUP.
        shutdown: _,
        health: _,
        log,
        metrics,
        top_max_keys,
    } = service;
    let checks: [(&'static str, bool); 13] = [
        ("spool", *spool == new.spool),
        ("state", *state == new.state),
        ("archive", *archive_url == new.archive_url),
        (
            "key_template or host",
            *key_template == new.key_template && *host == new.host,
        ),
        ("[s3]", *s3 == new.s3),
        (
            "[upload]",
            (upload_concurrency, backoff, keep_uploaded, max_waiting)
                == (
                    &new.upload_concurrency,
                    &new.backoff,
                    &new.keep_uploaded,
                    &new.max_waiting,
                ),
        ),
        (
            "time_zone, [window], [bzip2] or fields",
            *batch == new.batch && *commit_every == new.commit_every,
        ),
        (
            "year or sendmail_programs",
            *year == new.year && *sendmail_programs == new.sendmail_programs,
        ),
        (
            "[tail] or start_at",
            (watch, poll_interval, max_line_bytes, start_at)
                == (
                    &new.watch,
                    &new.poll_interval,
                    &new.max_line_bytes,
                    &new.start_at,
                ),
        ),
        ("[metrics] address", *metrics == new.service.metrics),
        ("[top] max_keys", *top_max_keys == new.service.top_max_keys),
        ("[mirror]", *mirror == new.mirror),
        // The level is applied on SIGHUP; the format is not.
        ("[log] format", log.json == new.service.log.json),
    ];
    checks
        .into_iter()
        .filter(|(_, unchanged)| !unchanged)
        .map(|(name, _)| name)
        .collect()
}
