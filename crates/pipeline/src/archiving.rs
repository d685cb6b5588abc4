//! Handing sealed files to the archive and letting them go from the spool once it has them.
//!
//! The uploads run in the background ([`maillog_archive::Uploader`]): the pipeline only submits
//! sealed files and, at each commit, releases the ones the archive confirmed. The archive is
//! append-only: where its key already holds other bytes (a lost spool, a ledger past its
//! horizon, another host with the same key template) the put is refused as a conflict, and
//! the file is offered again at once as the window's next part (`Batcher::retarget`) — its
//! records are never dropped, and the archived object is never replaced. A file the archive
//! refused for a reason retrying cannot fix stays in the spool and is offered again a minute
//! later (a fixed credential is picked up without a restart); `--once` reports it and exits
//! non-zero once everything is durable.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use maillog_archive::{ArchiveError, Done, Job, Uploader};
use maillog_batch::{Batcher, KeyTemplate, SealedFile, render_key};
use maillog_parse::Zone;

use crate::observe::UploadLatency;

/// How long a file refused for good waits before it is offered again.
const RETRY_REFUSED: Duration = Duration::from_secs(60);

pub struct Archiving {
    uploader: Arc<Uploader>,
    key_template: KeyTemplate,
    zone: Zone,
    host: String,
    /// Sealed files handed to the uploader, not yet back.
    submitted: HashSet<String>,
    /// Files the archive refused for good, and when.
    refused: HashMap<String, Instant>,
    /// The last such refusal.
    pub last_refusal: Option<String>,
    /// Files the archive has confirmed.
    pub archived: u64,
    /// Upload durations, per result.
    latency: UploadLatency,
}

impl Archiving {
    pub fn new(
        uploader: Arc<Uploader>,
        key_template: KeyTemplate,
        zone: Zone,
        host: String,
        latency: UploadLatency,
    ) -> Self {
        Archiving {
            uploader,
            latency,
            key_template,
            zone,
            host,
            submitted: HashSet::new(),
            refused: HashMap::new(),
            last_refusal: None,
            archived: 0,
        }
    }

    /// The key a sealed file is archived under: its part, named in its window's zone (a
    /// window opened before a change of `time_zone` keeps its name), rendered with the key
    /// template and host fixed when it was first committed (a file archived before a change of
    /// `key_template` or `host`, and not yet released, keeps its key).
    pub fn key(&self, file: &SealedFile) -> String {
        let zone = file.zone_or(self.zone);
        match &file.key {
            Some(pin) => render_key(&pin.template, &file.archive_id(), &zone, &pin.host),
            None => (self.key_template).render(&file.archive_id(), &zone, &self.host),
        }
    }

    /// Submits the sealed files not yet submitted, releases the ones the archive confirmed.
    pub fn step(&mut self, batcher: &mut Batcher) -> Result<()> {
        for done in self.uploader.finished() {
            self.submitted.remove(&done.name);
            self.observe(&done);
            match done.result {
                Ok(()) => {
                    crate::fault::crash_point("after-archive");
                    match batcher.release(&done.name) {
                        Ok(()) => self.archived += 1,
                        // Kept and offered again: the archive answers "same bytes" next time.
                        Err(e) if e.is_disk_full() => {
                            tracing::warn!("{e}: the archived file stays in the spool for now");
                        }
                        Err(e) => return Err(e.into()),
                    }
                    crate::fault::crash_point("after-release");
                }
                Err(ArchiveError::Conflict { key, .. }) => {
                    self.name_taken(batcher, &done.name, &key)?
                }
                Err(e) => {
                    let e = anyhow::Error::from(e);
                    tracing::error!(
                        "{e:#}; the file stays in the spool and is offered again in a minute"
                    );
                    self.refused.insert(done.name, Instant::now());
                    self.last_refusal = Some(format!("{e:#}"));
                }
            }
        }
        for file in batcher.sealed().to_vec() {
            if self.submitted.contains(&file.name)
                || self
                    .refused
                    .get(&file.name)
                    .is_some_and(|t| t.elapsed() < RETRY_REFUSED)
            {
                continue;
            }
            let job = Job {
                name: file.name.clone(),
                path: batcher.sealed_path(&file.name),
                key: self.key(&file),
            };
            if self.uploader.submit(job) {
                self.refused.remove(&file.name);
                self.submitted.insert(file.name);
            }
        }
        Ok(())
    }

    /// The archive holds `key` with other bytes: the file goes to the window's next part.
    fn name_taken(&mut self, batcher: &mut Batcher, name: &str, key: &str) -> Result<()> {
        if batcher.retarget(name)?.is_some()
            && let Some(file) = batcher.sealed().iter().find(|s| s.name == name)
        {
            tracing::warn!(
                taken = key,
                now = %self.key(file),
                "the archive already holds this name with other bytes (left untouched): the file goes to the next part"
            );
        }
        Ok(())
    }

    fn observe(&self, done: &Done) {
        let result = match &done.result {
            Ok(()) => "ok",
            Err(ArchiveError::Conflict { .. }) => "taken",
            Err(_) => "refused",
        };
        self.latency
            .0
            .get_or_create(&[("result", result.to_owned())])
            .observe(done.elapsed.as_secs_f64());
    }

    /// A stop: submits what is sealed and waits for the uploads in flight until `deadline`,
    /// releasing what the archive confirms. Returns how many sealed files stay in the spool
    /// (offered again at the next start).
    pub fn drain(&mut self, batcher: &mut Batcher, deadline: Instant) -> Result<usize> {
        self.step(batcher)?;
        while !self.submitted.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    in_flight = self.submitted.len(),
                    "the stop's time is up: unfinished uploads are offered again at the next start"
                );
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
            self.step(batcher)?;
        }
        Ok(batcher.sealed().len())
    }

    /// `--once`: waits until every sealed file is archived or refused for good.
    /// A stop (`stop` says so) ends the wait: what is not archived waits in the spool for
    /// the next run, and the run says so.
    pub fn finish(&mut self, batcher: &mut Batcher, stop: &dyn Fn() -> bool) -> Result<()> {
        self.refused.clear();
        self.step(batcher)?;
        while !self.submitted.is_empty() {
            if stop() {
                bail!(
                    "stopped while {} files were going to the archive: they wait in the spool for the next run",
                    self.submitted.len()
                );
            }
            if let Some(done) = self.uploader.wait(Duration::from_secs(1)) {
                self.submitted.remove(&done.name);
                self.observe(&done);
                match done.result {
                    Ok(()) => {
                        batcher.release(&done.name)?;
                        self.archived += 1;
                    }
                    Err(ArchiveError::Conflict { key, .. }) => {
                        self.name_taken(batcher, &done.name, &key)?;
                        self.step(batcher)?; // offered again at once, as the next part
                    }
                    Err(e) => {
                        let e = anyhow::Error::from(e);
                        tracing::error!("{e:#}; the file stays in the spool");
                        self.last_refusal = Some(format!("{e:#}"));
                    }
                }
            }
        }
        if !batcher.sealed().is_empty() {
            let why = self.last_refusal.clone().unwrap_or_default();
            bail!(
                "{} sealed files could not be archived and wait in the spool: {why}",
                batcher.sealed().len()
            );
        }
        Ok(())
    }
}
