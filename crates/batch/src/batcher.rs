//! The window router: records in, windows opened, filled and sealed on time.
//!
//! Each record goes to the window of its event time. The watermark is the newest event time
//! seen — moved forward by the wall clock too while the inputs are caught up and quiet — and a
//! window is sealed once the watermark passes its end plus the allowed lateness. A record whose
//! window has already been sealed opens a further part of it; a late part is sealed once the
//! watermark has moved the lateness past its opening. Nothing is dropped.

use std::path::Path;

use maillog_parse::{Event, FieldsMode, Kind, Zone};
use serde::{Deserialize, Serialize};

use crate::compress::Compressor;
use crate::spool::{Recovery, SealedFile, Spool, SpoolError, SpoolState};
use crate::window::{WindowId, window_start};

/// How records are batched.
#[derive(Clone, Debug)]
pub struct BatchConfig {
    /// The zone windows are aligned in and named by.
    pub zone: Zone,
    /// Seconds a window stays open after its end for records that come late (default 120).
    pub lateness: i64,
    /// Which fields the records carry.
    pub fields: FieldsMode,
    /// bzip2 level, 1–9 (default 9).
    pub level: u32,
    /// Compressing threads (default: one per core).
    pub threads: usize,
}

impl BatchConfig {
    /// UTC, 2 minutes of lateness, all fields, bzip2 -9 on every core.
    pub fn new(zone: Zone) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        BatchConfig {
            zone,
            lateness: 120,
            fields: FieldsMode::All,
            level: 9,
            threads,
        }
    }
}

/// What the batcher commits with the tailer positions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchState {
    /// The window files.
    pub spool: SpoolState,
    /// The watermark (unix seconds): it never goes back, across restarts too.
    pub watermark: i64,
    /// The instant year-less stamps were resolved against, kept so a replay after a crash
    /// infers the same year.
    pub year_reference: Option<i64>,
}

/// Counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// `from` records batched.
    pub from_records: u64,
    /// `to` records batched.
    pub to_records: u64,
    /// Window files sealed.
    pub windows_sealed: u64,
    /// Of those, further parts of windows sealed before.
    pub late_parts: u64,
    /// JSON bytes in.
    pub bytes_in: u64,
    /// Compressed bytes out (sealed files).
    pub bytes_out: u64,
}

/// Whether a file of a window is already in the archive (asked when a window opens).
/// Asked only for windows whose time has passed (a window not yet due was never sealed, so no
/// part of it can be in the archive); an error stops the batcher rather than risk overwriting
/// an archived part.
pub type ArchiveHas = Box<dyn Fn(&WindowId) -> Result<bool, String> + Send>;

/// Routes records to windows in the spool.
pub struct Batcher {
    config: BatchConfig,
    spool: Spool,
    watermark: i64,
    year_reference: Option<i64>,
    stats: BatchStats,
    archive_has: ArchiveHas,
    json: Vec<u8>,
}

impl Batcher {
    /// Opens the spool in `dir`, resuming from `state` (the last committed one).
    pub fn open(
        dir: &std::path::Path,
        config: BatchConfig,
        state: Option<BatchState>,
        archive_has: ArchiveHas,
    ) -> Result<(Batcher, Recovery), SpoolError> {
        let compressor = Compressor::new(config.threads, config.level)
            .map_err(|e| SpoolError::new("start compressors", dir, e))?;
        let (watermark, year_reference, spool_state) = match state {
            Some(s) => (s.watermark, s.year_reference, Some(s.spool)),
            None => (i64::MIN, None, None),
        };
        let (spool, recovery) = Spool::open(dir, config.zone, spool_state, compressor)?;
        let batcher = Batcher {
            config,
            spool,
            watermark,
            year_reference,
            stats: BatchStats::default(),
            archive_has,
            json: Vec::with_capacity(4096),
        };
        Ok((batcher, recovery))
    }

    /// The counters so far.
    pub fn stats(&self) -> BatchStats {
        self.stats
    }

    /// The watermark (unix seconds; `i64::MIN` before any record).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The year reference kept in the state.
    pub fn year_reference(&self) -> Option<i64> {
        self.year_reference
    }

    /// Sets the year reference kept in the state.
    pub fn set_year_reference(&mut self, reference: i64) {
        self.year_reference = Some(reference);
    }

    /// Adds every record of a parsed event.
    pub fn add(&mut self, event: &Event<'_>) -> Result<(), SpoolError> {
        let at = event.at.unix_seconds();
        let id = self.route(event.kind, window_start(at, &self.config.zone))?;
        for record in event.records() {
            self.json.clear();
            record.write_json(self.config.fields, &mut self.json);
            self.json.push(b'\n');
            self.spool.append(&id, &self.json)?;
            self.stats.bytes_in += self.json.len() as u64;
            match event.kind {
                Kind::From => self.stats.from_records += 1,
                Kind::To => self.stats.to_records += 1,
            }
        }
        self.watermark = self.watermark.max(at);
        Ok(())
    }

    /// The open file for records of `kind` in the window starting at `start`, opened if need be.
    fn route(&mut self, kind: Kind, start: i64) -> Result<WindowId, SpoolError> {
        let newest_open = self
            .spool
            .open_windows()
            .map(|(id, _)| id)
            .filter(|id| id.kind == kind && id.start == start)
            .max();
        if let Some(id) = newest_open {
            return Ok(id);
        }
        // Not open: a new window, or one sealed before (then a further part).
        let zone = self.config.zone;
        let mut id = WindowId {
            kind,
            start,
            part: 0,
        };
        let sealed_before = id.end().saturating_add(self.config.lateness) <= self.watermark;
        loop {
            let in_spool = self.spool.has_name(&id.file_name(&zone));
            let archived = !in_spool
                && sealed_before
                && (self.archive_has)(&id).map_err(|e| {
                    SpoolError::new(
                        "look up a window in the archive",
                        Path::new(&id.file_name(&zone)),
                        std::io::Error::other(e),
                    )
                })?;
            if !in_spool && !archived {
                break;
            }
            id.part += 1;
        }
        if id.part > 0 {
            tracing::info!(window = %id.file_name(&zone), "a record for a sealed window: further part");
        }
        self.spool.open_window(id, self.watermark)?;
        Ok(id)
    }

    /// The inputs are caught up and quiet: the wall clock (unix seconds) moves the watermark.
    pub fn idle(&mut self, now: i64) {
        self.watermark = self.watermark.max(now);
    }

    /// Starts sealing the windows whose time has come (all of them with `everything`). Call
    /// before [`Self::sync`], which finishes the seals whose compression is done.
    pub fn seal_due(&mut self, everything: bool) {
        let lateness = self.config.lateness;
        let watermark = self.watermark;
        let due: Vec<WindowId> = self
            .spool
            .open_windows()
            .filter(|(id, opened_at)| {
                let closes = if id.part == 0 {
                    id.end()
                } else {
                    id.end().max(*opened_at)
                };
                everything || closes.saturating_add(lateness) <= watermark
            })
            .map(|(id, _)| id)
            .collect();
        for id in due {
            self.spool.seal(&id);
        }
    }

    /// Makes everything added so far durable (waiting for the compressors with `wait`) and
    /// returns the state to commit with the tailer positions of the lines added so far, and
    /// the files sealed now.
    pub fn sync(&mut self, wait: bool) -> Result<(BatchState, Vec<SealedFile>), SpoolError> {
        let sealed = self.spool.sync(wait)?;
        for file in &sealed {
            self.stats.windows_sealed += 1;
            self.stats.late_parts += u64::from(file.id.part > 0);
            self.stats.bytes_out += file.bytes;
        }
        let state = BatchState {
            spool: self.spool.state(),
            watermark: self.watermark,
            year_reference: self.year_reference,
        };
        Ok((state, sealed))
    }

    /// The state from [`Self::sync`] is committed: files it no longer needs are removed.
    pub fn committed(&mut self) {
        self.spool.committed();
    }

    /// Sealed files waiting for the archive.
    pub fn sealed(&self) -> &[SealedFile] {
        self.spool.sealed()
    }

    /// Where a sealed file is.
    pub fn sealed_path(&self, name: &str) -> std::path::PathBuf {
        self.spool.sealed_path(name)
    }

    /// The archive has a sealed file: it leaves the spool with the next commit.
    pub fn release(&mut self, name: &str) -> Result<(), SpoolError> {
        self.spool.release(name)
    }

    /// Keeps archived files in the spool's `uploaded/` for this long (none: delete them).
    pub fn set_keep_uploaded(&mut self, keep: Option<std::time::Duration>) {
        self.spool.set_keep_uploaded(keep);
    }

    /// Bytes of sealed files waiting for the archive.
    pub fn sealed_bytes(&self) -> u64 {
        self.spool.sealed_bytes()
    }
}
