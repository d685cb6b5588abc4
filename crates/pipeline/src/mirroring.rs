//! Writing the columnar mirror as hours settle (`[mirror] enabled`), beside the archive.
//!
//! The mirror is derived from what the archive holds, never from the spool's windows: a pass
//! ([`maillog_mirror::pass`]) lists the archive's last days, plans what has settled and puts
//! each mirror file whole under a key that is never replaced. So a kill at any moment leaves
//! no partial or second file, and the next pass (of this run, the next run or `maillog
//! compact`) plans again from what is there.
//!
//! Passes run on a thread of their own, one at a time, writing one file at a time: the
//! compressors have the other cores, and a pass holds one Parquet writer's row group in memory,
//! not one per core. The pipeline asks for a pass at most every `[mirror] every_seconds` after
//! a commit and never waits for it (a pass in progress is simply not asked again). An hour
//! settles by the records' clock (the batcher's watermark, which follows a backfill as it is
//! read), `settle` after its end, and not while a window of it is in the spool (open, being
//! sealed, or waiting for the archive). `--once` asks for a last pass after everything is
//! archived and waits for it; that one runs alone and writes on every core. A stop does not
//! wait for a pass in progress.
//!
//! The compressors tell the mirror's stream cache (`spool/mirror-streams/`,
//! [`maillog_mirror::cache`]) of each stream they make, so that a pass takes the records of the
//! archive's files from there rather than decoding them; what the cache does not hold is
//! decoded. The cache can only miss: what it gives is named by the stream's bytes.
//!
//! It never touches the spool's windows or the archive's own keys.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use maillog_archive::BlockingArchive;
use maillog_batch::compress::{StreamTap, Tap};
use maillog_batch::{Batcher, KeyTemplate, WindowId, window_start};
use maillog_mirror::plan::hour_stem;
use maillog_mirror::{Clock, Known, MirrorStore, Passed, Scope, StreamCache, pass};
use maillog_parse::{Kind, Zone};

use crate::settings::{MirrorSettings, Settings};

/// Days back from the watermark a pass looks at (the ledger's horizon): what the archive gets
/// later than that is mirrored by `maillog compact`.
const HORIZON_DAYS: i64 = 7;

/// How often the stream cache is swept of what is older than its age.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// How many times the last pass of `--once` is tried.
const FINAL_ATTEMPTS: usize = 4;

/// One pass to run.
struct Request {
    scope: Scope,
    clock: Clock,
    /// Dates of [`Mirroring::spool_dates`] it mirrors for good (every hour settled, none
    /// busy): forgotten once it succeeds.
    done_dates: Vec<String>,
    /// The threads that write its files.
    threads: usize,
}

/// The pipeline's side of the mirror's thread.
pub struct Mirroring {
    /// The records of the streams the compressors made, kept until mirrored.
    cache: Option<Arc<StreamCache>>,
    settings: MirrorSettings,
    key_template: KeyTemplate,
    zone: Zone,
    host: String,
    requests: Option<SyncSender<Request>>,
    results: Receiver<Result<Passed, String>>,
    thread: Option<JoinHandle<()>>,
    /// Local dates of the windows this run sealed (a window start of each): looked at by
    /// every pass until all their hours are mirrored — a backfill's dates are older than the
    /// last days.
    spool_dates: BTreeMap<String, i64>,
    /// A pass was asked for and has not answered, and the dates it mirrors for good.
    in_flight: Option<Vec<String>>,
    last_asked: Option<Instant>,
    /// Mirror files written by this run.
    pub written: u64,
    /// The last pass's failure, if it failed.
    pub last_error: Option<String>,
}

impl Mirroring {
    /// The mirror's thread, when `[mirror]` is enabled. Files are made in the spool's
    /// `mirror/` before they are put.
    pub fn start(settings: &Settings) -> Result<Option<Mirroring>> {
        let Some(mirror) = settings.mirror.clone() else {
            return Ok(None);
        };
        let archive = BlockingArchive::connect(&settings.archive_url, &settings.s3)?;
        // Files a killed pass was making: the spool is this process's alone (locked).
        let scratch = settings.spool.join("mirror");
        let _ = std::fs::remove_dir_all(&scratch);
        let mut store = MirrorStore::new(archive, &scratch);
        let cache = match mirror.stream_cache_bytes {
            0 => None,
            limit => {
                let dir = settings.spool.join("mirror-streams");
                let cache = StreamCache::open(&dir, limit)
                    .with_context(|| format!("cannot open {}", dir.display()))?;
                Some(Arc::new(cache))
            }
        };
        if let Some(cache) = &cache {
            store = store.with_cache(Arc::clone(cache));
        }
        let zone = settings.batch.zone;
        let (requests, inbox) = mpsc::sync_channel::<Request>(1);
        let (outbox, results) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("maillog-mirror".into())
            .spawn({
                let cache = cache.clone();
                move || serve(&store, cache.as_deref(), &zone, &inbox, &outbox)
            })
            .context("cannot start the mirror's thread")?;
        Ok(Some(Mirroring {
            cache,
            settings: mirror,
            key_template: settings.key_template.clone(),
            zone,
            host: settings.host.clone(),
            requests: Some(requests),
            results,
            thread: Some(thread),
            spool_dates: BTreeMap::new(),
            in_flight: None,
            last_asked: None,
            written: 0,
            last_error: None,
        }))
    }

    /// What the batcher's compressors tell of each stream they make: the stream cache, if
    /// kept.
    pub fn tap(&self) -> Option<Tap> {
        self.cache
            .as_ref()
            .map(|cache| Tap(Arc::clone(cache) as Arc<dyn StreamTap>))
    }

    /// After a commit: takes a finished pass's answer, and asks for the next pass when it is
    /// time. Never waits.
    pub fn step(&mut self, batcher: &Batcher) {
        self.note_spool_dates(batcher);
        while let Ok(answer) = self.results.try_recv() {
            self.take(answer);
        }
        let due = self
            .last_asked
            .is_none_or(|at| at.elapsed() >= self.settings.every);
        if self.in_flight.is_some() || !due {
            return;
        }
        let request = self.request(batcher);
        if let Some(requests) = &self.requests {
            let done = request.done_dates.clone();
            match requests.try_send(request) {
                Ok(()) => {
                    self.in_flight = Some(done);
                    self.last_asked = Some(Instant::now());
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// The end of `--once`: a last pass over what is archived now, waited for (a stop ends
    /// the wait), tried again a few times a second apart if it fails (a full disk, a store
    /// that blinked). Returns its failure, if it kept failing.
    pub fn finish(&mut self, batcher: &Batcher, stop: &dyn Fn() -> bool) -> Option<String> {
        self.note_spool_dates(batcher);
        while self.in_flight.is_some() && !stop() {
            self.wait_answer(Duration::from_millis(200));
        }
        for attempt in 0..FINAL_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            let request = Request {
                threads: pass::cores(), // the compressors are done
                ..self.request(batcher)
            };
            let done = request.done_dates.clone();
            let Some(requests) = &self.requests else {
                break;
            };
            if requests.send(request).is_err() {
                break;
            }
            self.in_flight = Some(done);
            while self.in_flight.is_some() && !stop() {
                self.wait_answer(Duration::from_millis(200));
            }
            if self.last_error.is_none() || stop() {
                break;
            }
        }
        self.last_error.clone()
    }

    /// A stop: no further pass; one in progress is not waited for (what it had not put is
    /// planned again by the next).
    pub fn stop(&mut self) {
        self.requests = None;
        if self.in_flight.is_none()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }

    /// The dates of the windows in the spool.
    fn note_spool_dates(&mut self, batcher: &Batcher) {
        for id in batcher.windows_in_spool() {
            let date = id.local_start(&self.zone).format("%Y-%m-%d").to_string();
            self.spool_dates.entry(date).or_insert(id.start);
        }
    }

    fn wait_answer(&mut self, timeout: Duration) {
        match self.results.recv_timeout(timeout) {
            Ok(answer) => self.take(answer),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => self.in_flight = None,
        }
    }

    fn take(&mut self, answer: Result<Passed, String>) {
        let done = self.in_flight.take().unwrap_or_default();
        match answer {
            Ok(passed) => {
                for date in done {
                    self.spool_dates.remove(&date);
                }
                self.written += passed.written as u64;
                self.last_error = None;
                if passed.written > 0 {
                    tracing::info!(
                        files = passed.written,
                        records = passed.records,
                        archive_files = passed.archive_files,
                        decoded = passed.decoded,
                        "mirror: settled hours written as Parquet"
                    );
                }
                for key in passed.conflicts {
                    tracing::warn!(
                        key,
                        "mirror: the key holds another writer's file (left as it is); its archive files are mirrored by the next pass"
                    );
                }
            }
            Err(e) => {
                tracing::error!("mirror: {e}; the next pass tries again");
                self.last_error = Some(e);
            }
        }
    }

    /// A pass over the last days and the dates this run sealed, by the batcher's clock.
    fn request(&self, batcher: &Batcher) -> Request {
        // The records' clock; before any record (a first start, a lost checkpoint: the
        // watermark is unset, i64::MIN) the wall clock.
        let now = match batcher.watermark() {
            at if at < 0 => chrono::Utc::now().timestamp(),
            at => at,
        };
        let settle = i64::try_from(self.settings.settle.as_secs()).unwrap_or(i64::MAX);
        let busy: BTreeSet<String> = batcher
            .windows_in_spool()
            .iter()
            .filter_map(|id| hour_stem(&id.file_name(&self.zone)))
            .collect();
        // A date is mirrored for good once its last hour has settled and none of its windows
        // waits in the spool.
        let settled_before = local_date(now.saturating_sub(settle + 3600), &self.zone);
        let done_dates = self
            .spool_dates
            .keys()
            .filter(|date| **date < settled_before && !busy.iter().any(|h| h.contains(*date)))
            .cloned()
            .collect();
        let last_days = (0..=HORIZON_DAYS).map(|day| now.saturating_sub(day * 86_400));
        let starts = last_days.chain(self.spool_dates.values().copied());
        Request {
            scope: scope(&self.key_template, &self.zone, &self.host, starts),
            clock: Clock { now, settle, busy },
            done_dates,
            threads: 1,
        }
    }
}

/// `YYYY-MM-DD` of `at` in `zone`.
fn local_date(at: i64, zone: &Zone) -> String {
    let id = WindowId {
        kind: Kind::To,
        start: window_start(at, zone),
        part: 0,
    };
    id.local_start(zone).format("%Y-%m-%d").to_string()
}

/// The mirror's thread: a pass per request, until the pipeline lets go.
fn serve(
    store: &MirrorStore,
    cache: Option<&StreamCache>,
    zone: &Zone,
    inbox: &Receiver<Request>,
    outbox: &mpsc::Sender<Result<Passed, String>>,
) {
    let mut known = Known::default();
    let mut swept = Instant::now();
    while let Ok(request) = inbox.recv() {
        if let Some(cache) = cache
            && swept.elapsed() >= SWEEP_EVERY
        {
            // Streams never asked for (a window cut back by a restart, an hour mirrored by
            // another writer) go with age.
            cache.sweep(maillog_mirror::cache::MAX_AGE);
            swept = Instant::now();
        }
        let (scope, clock) = (&request.scope, &request.clock);
        let passed = pass::run(store, scope, zone, clock, &mut known, request.threads);
        if outbox.send(passed.map_err(|e| e.to_string())).is_err() {
            return;
        }
    }
}

/// The archive's prefixes and the mirror's dates of the local dates of `starts`: for each
/// date and kind, the key of a window of that date cut after the date's first place in it
/// (`mail_logs/2025-12-31`, `logs/mx1/to-2025-12-31`), or after its last `/` where the key has
/// no date.
fn scope(
    template: &KeyTemplate,
    zone: &Zone,
    host: &str,
    starts: impl Iterator<Item = i64>,
) -> Scope {
    let mut archive = BTreeSet::new();
    let mut dates = BTreeSet::new();
    for at in starts {
        let start = window_start(at, zone);
        for kind in [Kind::From, Kind::To] {
            let id = WindowId {
                kind,
                start,
                part: 0,
            };
            let date = id.local_start(zone).format("%Y-%m-%d").to_string();
            let key = template.render(&id, zone, host);
            let cut = match key.find(&date) {
                Some(at) => at + date.len(),
                None => key.rfind('/').map_or(0, |at| at + 1),
            };
            archive.insert(key[..cut].to_owned());
            dates.insert(date);
        }
    }
    Scope::Recent {
        archive: archive.into_iter().collect(),
        dates: dates.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_days_are_listed_by_their_folders() {
        // 2025-12-31T23:30Z.
        let now = 1_767_223_800;
        let days = || (0..=HORIZON_DAYS).map(|day| now - day * 86_400);
        let Scope::Recent { archive, dates } =
            scope(&KeyTemplate::original(), &Zone::Utc, "", days())
        else {
            panic!("a recent scope");
        };
        assert_eq!(dates.len(), 8);
        assert_eq!(dates.last().map(String::as_str), Some("2025-12-31"));
        assert_eq!(
            archive.last().map(String::as_str),
            Some("mail_logs/2025-12-31")
        );
        assert_eq!(archive.len(), 8);
        // A template whose folders have no date: the folder, listed once.
        let flat = KeyTemplate::parse("logs/{host}/{name}").unwrap();
        let Scope::Recent { archive, .. } = scope(&flat, &Zone::Utc, "mx1", days()) else {
            panic!("a recent scope");
        };
        assert_eq!(archive.len(), 16, "{archive:?}"); // each kind and date: logs/mx1/to-2025-12-31
        assert!(
            archive.iter().any(|a| a == "logs/mx1/to-2025-12-31"),
            "{archive:?}"
        );
    }
}
