//! The window router: records in, windows opened, filled and sealed on time.
//!
//! Each record goes to the window of its event time. The watermark is the newest event time
//! seen — moved forward by the wall clock too while the inputs are caught up and quiet — and a
//! window is sealed once the watermark passes its end plus the allowed lateness. A record whose
//! window has already been sealed opens a further part of it; a late part is sealed once the
//! watermark has moved the lateness past its opening. Nothing is dropped.
//!
//! # Time that cannot be trusted
//! Event times come from the network, and a server's clock (or a forged datagram) can lie. A
//! record stamped more than [`BatchConfig::max_skew`] past the wall clock is archived in its
//! window like any other, but does not move the watermark, and the watermark itself is never
//! ahead of the wall clock by more than the skew — also when a persisted one was, or when the
//! wall clock jumps back. Windows the watermark cannot close are sealed by bounds instead: a
//! window open longer than [`BatchConfig::max_open_age`] of wall time, and, past
//! [`BatchConfig::max_open_windows`], the windows farthest from the watermark.
//!
//! # Which part a window opens
//! A window that is not open starts at the first part the [`Ledger`] does not know as archived
//! and the spool does not hold. The reading thread never asks the archive: where the ledger
//! does not know (beyond its horizon, a lost spool), the archive's conditional write refuses a
//! taken name and [`Batcher::retarget`] moves the file to a further part.

use maillog_parse::{Event, FieldsMode, Kind, Zone};
use serde::{Deserialize, Serialize};

use crate::compress::Compressor;
use crate::ledger::Ledger;
use crate::spool::{Recovery, SealedFile, Spool, SpoolError, SpoolState};
use crate::window::{WINDOW_SECONDS, WindowId, window_start};

/// How records are batched.
#[derive(Clone, Debug, PartialEq)]
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
    /// Seconds an event may be stamped past the wall clock and still move the watermark
    /// (default 300).
    pub max_skew: i64,
    /// Seconds of wall time a window may stay open before it is sealed whatever the watermark
    /// says (default 900).
    pub max_open_age: i64,
    /// Open windows at most; past it, the ones farthest from the watermark are sealed
    /// (default 64).
    pub max_open_windows: usize,
    /// Seconds of windows, back from the newest it knows, the ledger of archived names
    /// remembers (default 7 days).
    pub ledger_horizon: i64,
    /// Told of every bzip2 stream made, with its records (default none; the mirror's cache).
    pub tap: Option<crate::compress::Tap>,
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
            max_skew: 300,
            max_open_age: 900,
            max_open_windows: 64,
            ledger_horizon: 7 * 86400,
            tap: None,
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
}

/// Counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    /// `from` records batched.
    pub from_records: u64,
    /// `to` records batched.
    pub to_records: u64,
    /// Window files sealed.
    pub windows_sealed: u64,
    /// Of those, further parts of windows sealed before.
    pub late_parts: u64,
    /// Records stamped beyond the wall clock plus the skew (they did not move the watermark).
    pub ahead_of_clock: u64,
    /// Windows sealed by a bound (open too long, too many open) rather than by the watermark.
    pub sealed_by_bound: u64,
    /// Sealed files archived as a further part because the archive held their name.
    pub retargeted: u64,
    /// JSON bytes in.
    pub bytes_in: u64,
    /// Compressed bytes out (sealed files).
    pub bytes_out: u64,
}

/// Routes records to windows in the spool.
pub struct Batcher {
    config: BatchConfig,
    spool: Spool,
    watermark: i64,
    stats: BatchStats,
    ledger: Ledger,
    /// Archived names the ledger could not take yet (a full disk).
    ledger_pending: Vec<WindowId>,
    /// The wall clock (unix seconds) as the caller last told it ([`Batcher::tick`]).
    now: i64,
    /// When each open window was opened, by the wall clock.
    opened_wall: std::collections::HashMap<WindowId, i64>,
    json: Vec<u8>,
}

impl Batcher {
    /// Opens the spool in `dir`, resuming from `state` (the last committed one); `now` is the
    /// wall clock (unix seconds).
    pub fn open(
        dir: &std::path::Path,
        config: BatchConfig,
        state: Option<BatchState>,
        now: i64,
    ) -> Result<(Batcher, Recovery), SpoolError> {
        let compressor = Compressor::new(config.threads, config.level, config.tap.clone())
            .map_err(|e| SpoolError::new("start compressors", dir, e))?;
        let (watermark, spool_state) = match state {
            Some(s) => (s.watermark, Some(s.spool)),
            None => (i64::MIN, None),
        };
        let (spool, recovery) = Spool::open(dir, config.zone, spool_state, compressor)?;
        let ledger = Ledger::open(dir, config.ledger_horizon)?;
        // A window resumed from the spool counts its open age from this start: its opening
        // time by the wall clock is not kept, and a clock that lied then must not seal it now.
        let opened_wall = spool.open_windows().map(|(id, _)| (id, now)).collect();
        let mut batcher = Batcher {
            config,
            spool,
            watermark,
            stats: BatchStats::default(),
            ledger,
            ledger_pending: Vec::new(),
            now,
            opened_wall,
            json: Vec::with_capacity(4096),
        };
        batcher.tick(now);
        Ok((batcher, recovery))
    }

    /// The wall clock now (unix seconds). The watermark is never ahead of it by more than the
    /// skew: a persisted one that was (one bad record before the fix, a clock that jumped back
    /// since) is pulled back.
    pub fn tick(&mut self, now: i64) {
        self.now = now;
        let limit = now.saturating_add(self.config.max_skew);
        if self.watermark > limit {
            tracing::warn!(
                watermark = self.watermark,
                now,
                "the watermark was ahead of the wall clock: pulled back"
            );
            self.watermark = limit;
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> BatchStats {
        self.stats
    }

    /// The watermark (unix seconds; `i64::MIN` before any record).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The window a record of `kind` stamped `at` (unix seconds) goes to: its kind and start.
    pub fn window_of(&self, kind: Kind, at: i64) -> (Kind, i64) {
        (kind, window_start(at, &self.config.zone))
    }

    /// Adds every record of a parsed event. Returns the window it opened, if it opened one.
    pub fn add(&mut self, event: &Event<'_>) -> Result<Option<WindowId>, SpoolError> {
        let at = event.at.unix_seconds();
        let (id, opened) = self.route(event.kind, window_start(at, &self.config.zone))?;
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
        if at <= self.now.saturating_add(self.config.max_skew) {
            self.watermark = self.watermark.max(at);
        } else {
            self.stats.ahead_of_clock += event.record_count() as u64;
        }
        Ok(opened.then_some(id))
    }

    /// The open file for records of `kind` in the window starting at `start`, opened if need be
    /// (then `true`).
    fn route(&mut self, kind: Kind, start: i64) -> Result<(WindowId, bool), SpoolError> {
        let newest_open = self
            .spool
            .open_windows()
            .map(|(id, _)| id)
            .filter(|id| id.kind == kind && id.start == start)
            .max();
        if let Some(id) = newest_open {
            return Ok((id, false));
        }
        // Not open: a new window, or one sealed before (then a further part).
        let zone = self.config.zone;
        let mut id = WindowId {
            kind,
            start,
            part: self.ledger.next_part(kind, start),
        };
        while self.spool.has_name(&id.file_name(&zone)) || self.archived_as_by_spool(&id) {
            id.part += 1;
        }
        if id.part > 0 {
            tracing::info!(window = %id.file_name(&zone), "a record for a sealed window: further part");
        }
        // Room for it first: the window a record is about to go into is never the one sealed.
        self.bound_open_windows(self.config.max_open_windows.saturating_sub(1));
        self.spool.open_window(id, self.watermark)?;
        self.opened_wall.insert(id, self.now);
        Ok((id, true))
    }

    /// Whether a sealed file waiting in the spool is to be archived under `id`'s name.
    fn archived_as_by_spool(&self, id: &WindowId) -> bool {
        self.spool.sealed().iter().any(|s| s.archive_id() == *id)
    }

    /// The inputs are caught up and quiet: the wall clock (unix seconds) moves the watermark.
    pub fn idle(&mut self, now: i64) {
        self.tick(now);
        self.watermark = self.watermark.max(now);
    }

    /// Starts sealing the windows whose time has come (all of them with `everything`): by the
    /// watermark, or by the bounds on open age and open windows. Cheap (it only looks at the
    /// open windows and hands last blocks to the compressors): call it as often as records
    /// come; [`Self::sync`] finishes the seals whose compression is done.
    pub fn seal_due(&mut self, everything: bool) {
        self.seal_due_as(everything, false);
    }

    /// The end of a one-shot run: what [`Self::seal_due`] seals, and the further parts of
    /// windows that are due without waiting the lateness after their opening (no more late
    /// records come before the next run, which would otherwise find them due anyway).
    pub fn seal_windows_due(&mut self) {
        self.seal_due_as(false, true);
    }

    fn seal_due_as(&mut self, everything: bool, parts_with_window: bool) {
        let lateness = self.config.lateness;
        let watermark = self.watermark;
        let mut due = Vec::new();
        let mut by_bound = Vec::new();
        for (id, opened_at) in self.spool.open_windows() {
            let closes = if id.part == 0 || parts_with_window {
                id.end()
            } else {
                id.end().max(opened_at.min(watermark))
            };
            let opened_wall = self.opened_wall.get(&id).copied().unwrap_or(self.now);
            // A wall clock that jumped back makes the age negative: counted from now on.
            let age = self.now.saturating_sub(opened_wall.min(self.now));
            if everything || closes.saturating_add(lateness) <= watermark {
                due.push(id);
            } else if age >= self.config.max_open_age {
                by_bound.push(id);
            }
        }
        self.seal(due);
        self.stats.sealed_by_bound += by_bound.len() as u64;
        self.seal(by_bound);
        self.bound_open_windows(self.config.max_open_windows);
    }

    /// Past `keep` open windows ([`BatchConfig::max_open_windows`]), the windows farthest
    /// from the watermark are sealed: outliers go, the live windows stay.
    fn bound_open_windows(&mut self, keep: usize) {
        let mut open: Vec<WindowId> = self.spool.open_windows().map(|(id, _)| id).collect();
        if open.len() <= keep {
            return;
        }
        let watermark = self.watermark;
        let distance = |id: &WindowId| (id.start + WINDOW_SECONDS / 2).abs_diff(watermark);
        open.sort_by_key(|id| std::cmp::Reverse(distance(id)));
        open.truncate(open.len() - keep);
        tracing::debug!(
            windows = open.len(),
            "more windows open than allowed: the farthest sealed"
        );
        self.stats.sealed_by_bound += open.len() as u64;
        self.seal(open);
    }

    fn seal(&mut self, windows: Vec<WindowId>) {
        for id in windows {
            self.opened_wall.remove(&id);
            self.spool.seal(&id);
        }
    }

    /// Makes everything added so far durable (waiting for the compressors with `wait`) and
    /// returns the state to commit with the tailer positions of the lines added so far, and
    /// the files sealed now.
    pub fn sync(&mut self, wait: bool) -> Result<(BatchState, Vec<SealedFile>), SpoolError> {
        let sealed = self.sync_spool(wait)?;
        Ok((self.state(), sealed))
    }

    /// The spool made durable, the files sealed now counted.
    fn sync_spool(&mut self, wait: bool) -> Result<Vec<SealedFile>, SpoolError> {
        let sealed = self.spool.sync(wait)?;
        for file in &sealed {
            self.stats.windows_sealed += 1;
            self.stats.late_parts += u64::from(file.id.part > 0);
            self.stats.bytes_out += file.bytes;
        }
        Ok(sealed)
    }

    /// The state to commit, valid after a sync.
    fn state(&self) -> BatchState {
        BatchState {
            spool: self.spool.state(),
            watermark: self.watermark,
        }
    }

    /// Makes everything added so far durable, as [`Self::sync`], with the key template and
    /// host of every sealed file fixed (see [`crate::SealedFile::pin_key`]) before the state
    /// that lists it is committed: a key changed in the config later never gives a file
    /// archived already a second key.
    pub fn sync_pinned(
        &mut self,
        wait: bool,
        template: &str,
        host: &str,
    ) -> Result<(BatchState, Vec<SealedFile>), SpoolError> {
        let sealed = self.sync_spool(wait)?;
        self.spool.pin_keys(template, host);
        Ok((self.state(), sealed))
    }

    /// The state from [`Self::sync`] is committed: files it no longer needs are removed.
    pub fn committed(&mut self) {
        self.spool.committed();
    }

    /// Sealed files waiting for the archive.
    pub fn sealed(&self) -> &[SealedFile] {
        self.spool.sealed()
    }

    /// Every window whose records are in the spool, not yet in the archive: open, being
    /// sealed, or sealed and waiting for the archive (by the part it is archived as).
    pub fn windows_in_spool(&self) -> Vec<WindowId> {
        let sealed = self.spool.sealed().iter().map(SealedFile::archive_id);
        self.spool.unsealed_windows().chain(sealed).collect()
    }

    /// Where a sealed file is.
    pub fn sealed_path(&self, name: &str) -> std::path::PathBuf {
        self.spool.sealed_path(name)
    }

    /// The archive has a sealed file: it leaves the spool (and the next committed state), and
    /// its name is remembered in the ledger. The file goes first: on a full disk that is the
    /// room the ledger's line needs; a line that cannot be written yet is tried again at the
    /// next release (until then the archive's conditional write guards the name).
    pub fn release(&mut self, name: &str) -> Result<(), SpoolError> {
        let id = self
            .spool
            .sealed()
            .iter()
            .find(|s| s.name == name)
            .map(SealedFile::archive_id);
        self.spool.release(name)?;
        self.ledger_pending.extend(id);
        self.write_ledger()
    }

    /// Writes the names waiting for the ledger.
    fn write_ledger(&mut self) -> Result<(), SpoolError> {
        while let Some(id) = self.ledger_pending.first() {
            match self.ledger.taken(id) {
                Ok(()) => {
                    self.ledger_pending.remove(0);
                }
                Err(e) if e.is_disk_full() => {
                    tracing::debug!("{e}: the ledger's line waits for room");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The archive holds the name a sealed file was to be archived as, with other bytes: the
    /// name is remembered as taken and the file is archived as the next free part. Returns
    /// the part it goes to now.
    pub fn retarget(&mut self, name: &str) -> Result<Option<WindowId>, SpoolError> {
        let Some(file) = self.spool.sealed().iter().find(|s| s.name == name).cloned() else {
            return Ok(None);
        };
        let taken = file.archive_id();
        // Remembered in the ledger, or, on a full disk, as a release's name is: waiting for
        // room (the archive's conditional write guards the name meanwhile).
        self.ledger_pending.push(taken);
        self.write_ledger()?;
        let zone = self.config.zone;
        let mut id = WindowId {
            part: taken.part + 1,
            ..taken
        };
        id.part = id.part.max(self.ledger.next_part(id.kind, id.start));
        let pending = self.ledger_pending.iter();
        let waiting = pending.filter(|p| (p.kind, p.start) == (id.kind, id.start));
        id.part = id.part.max(waiting.map(|p| p.part + 1).max().unwrap_or(0));
        while self.spool.has_name(&id.file_name(&zone))
            || self.spool.open_windows().any(|(open, _)| open == id)
            || self.archived_as_by_spool(&id)
        {
            id.part += 1;
        }
        self.spool.retarget(name, id.part);
        self.stats.retargeted += 1;
        Ok(Some(id))
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
#[cfg(test)]
mod tests;
