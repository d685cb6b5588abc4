//! Taking a chunk: its lines parsed, their records routed into windows, counted.
//!
//! Each line's position is followed as it is taken: the line that opens a window gives the
//! window its origin, and a line read once already (a replay of windows the spool lost, see
//! `replay`) gives only the records of a lost window. This module never commits: the records
//! are durable at the next commit, with the chunk's ack.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::Result;
use chrono::{DateTime, Utc};
use maillog_parse::{Kind, NonRecord, Parsed, YearPolicy, decode};
use maillog_tail::{Chunk, ChunkKind};

use super::{Pipeline, unix_now};
use crate::observe::Metrics;

impl Pipeline {
    /// Parses a chunk's lines and routes their records.
    pub(super) fn take(&mut self, chunk: &Chunk) -> Result<()> {
        let now = unix_now();
        self.batcher.tick(now);
        // Records stamped past this do not go to the live top-N (one clock reading a chunk).
        let live_latest = now.saturating_add(self.settings.batch.max_skew);
        if self.settings.year.is_none() {
            let reference = if self.settings.once {
                self.mtime(&chunk.path)
            } else {
                let max_skew = self.settings.batch.max_skew;
                self.year_reference.advance(now, max_skew)
            };
            let at = DateTime::<Utc>::from_timestamp(reference, 0).unwrap_or_default();
            self.parser.set_year_policy(YearPolicy::Reference(at));
        }
        if chunk.kind == ChunkKind::CutLine {
            self.cut_line(chunk);
        }
        let epoch = chunk.ack.epoch;
        let mut counts = ChunkCounts::default();
        let mut next = chunk.start;
        for line in chunk.lines() {
            let offset = next;
            // A cut or unterminated line is the chunk's only one; it ends where the ack says.
            next = match chunk.kind {
                ChunkKind::Lines => offset + line.len() as u64 + 1,
                ChunkKind::CutLine | ChunkKind::PartialLine => chunk.ack.offset,
            };
            if self
                .replay
                .as_ref()
                .is_some_and(|r| r.read_before(epoch, next))
            {
                self.take_again(line, epoch, offset)?;
                continue;
            }
            counts.lines += 1;
            let decoded = decode(line);
            let parsed = self.parser.parse(&decoded.text);
            self.stats.count(&parsed, decoded.lossy);
            match &parsed {
                Parsed::Event(event) => {
                    if let Some(opened) = self.add_when_possible(event)? {
                        self.origins.opened(opened, epoch, offset);
                    }
                    self.newest = self.newest.max(event.at.unix_seconds());
                    counts.records[event.kind as usize] += event.record_count() as u64;
                    if let Some(live) = self.observed.live.as_ref() {
                        self.live_feed.add(live, event, live_latest);
                    }
                }
                Parsed::NonRecord(class) => counts.non_records[*class as usize] += 1,
            }
        }
        self.origins.read(epoch, chunk.ack.offset);
        counts.publish(&self.observed.metrics, &chunk.path);
        self.acks.push(chunk.ack);
        // Windows the chunk made due start sealing now, not at the next commit: a backfill
        // reads many windows a second, and each open one holds a block in memory.
        self.batcher.seal_due(false);
        Ok(())
    }

    /// A line read once already, at `offset` in content `epoch`: only a record of a window
    /// the spool lost, from that window's origin on, is taken (every other record of it is in
    /// the spool or the archive). It is counted nowhere else: it was counted when first read.
    fn take_again(&mut self, line: &[u8], epoch: u32, offset: u64) -> Result<()> {
        let decoded = decode(line);
        let Parsed::Event(event) = self.parser.parse(&decoded.text) else {
            return Ok(());
        };
        let window = self.batcher.window_of(event.kind, event.at.unix_seconds());
        let Some(replay) = self.replay.as_mut() else {
            return Ok(());
        };
        let Some(lost) = replay.keeps(window, epoch, offset) else {
            return Ok(());
        };
        lost.found += event.record_count() as u64;
        if let Some(opened) = self.add_when_possible(&event)? {
            self.origins.opened(opened, epoch, offset);
        }
        Ok(())
    }

    /// The replay is over (every content read past where it was, or gone; `all`: the inputs
    /// are read to their end): each lost window's records found again are weighed against
    /// what it held, and a shortfall is said precisely and counted.
    pub(super) fn finish_replay(&mut self, all: bool) {
        let Some(replay) = &self.replay else {
            return;
        };
        let known = self
            .checkpointer
            .entries()
            .iter()
            .map(|e| e.epoch)
            .collect();
        if !all && !replay.is_done(|e| self.origins.read_to(e), &known) {
            return;
        }
        let metrics = &self.observed.metrics;
        for lost in &replay.lost {
            metrics
                .spool_records_reread
                .inc_by(lost.found.min(lost.expected));
            if lost.found >= lost.expected {
                tracing::info!(window = %lost.name, records = lost.expected,
                    "the records of a window the spool lost were read again from the log files");
            } else {
                let missing = lost.expected - lost.found;
                tracing::error!(window = %lost.name, records = lost.expected, missing,
                    "RECORDS LOST: of a window the spool lost, these records could not be read again: their lines are no longer in the log files (rotated away and deleted, or replaced)");
                metrics.spool_records_lost.inc_by(missing);
            }
        }
        self.replay = None;
    }

    /// A line longer than the limit, cut to it: counted, and said at most once a minute.
    fn cut_line(&mut self, chunk: &Chunk) {
        self.stats.cut_lines += 1;
        self.observed.metrics.lines_cut.inc();
        if self
            .last_cut_warning
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            self.last_cut_warning = Some(Instant::now());
            tracing::warn!(
                path = %chunk.path.display(),
                offset = chunk.start,
                limit = self.settings.max_line_bytes,
                cut_so_far = self.stats.cut_lines,
                "a line longer than [tail] max_line_bytes: its first bytes are kept (maillog parse cuts it the same way)"
            );
        }
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
}

/// What one chunk added to the counters (published once per chunk, not per line).
#[derive(Default)]
struct ChunkCounts {
    lines: u64,
    records: [u64; 2],
    non_records: [u64; NonRecord::ALL.len()],
}

impl ChunkCounts {
    fn publish(&self, metrics: &Metrics, path: &Path) {
        metrics
            .lines
            .get_or_create(&[("file", path.display().to_string())])
            .inc_by(self.lines);
        for kind in [Kind::From, Kind::To] {
            let n = self.records[kind as usize];
            if n > 0 {
                metrics
                    .records
                    .get_or_create(&[("kind", kind.as_str().to_owned())])
                    .inc_by(n);
            }
        }
        for class in NonRecord::ALL {
            let n = self.non_records[class as usize];
            if n > 0 {
                metrics
                    .non_records
                    .get_or_create(&[("class", class.as_str().to_owned())])
                    .inc_by(n);
            }
        }
    }
}
