//! The tailer as a service: a thread that drives [`TailCore`] on file events and a timer, and a
//! bounded channel out.
//!
//! The thread sleeps until inotify (through `notify`) reports a change in a watched directory
//! or the recheck timer fires; events are only a wake-up, every decision is made from what the
//! files look like now (events can be late, merged or lost). While a pass leaves data unread
//! it loops without sleeping. Sending blocks when the channel is full: that is the
//! backpressure. The channel is std's bounded `sync_channel`: both ends are plain threads (the
//! tailer's, and the pipeline's loop, which needs only `recv_timeout` between two commits), so
//! an async channel would need a runtime on each side for nothing. It stops when asked ([`TailHandle::stop`]), when the consumer drops the
//! receiver, or — not following — when every file is read to its end.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::find::watch_dir;

/// After a pass that read something, the next starts no sooner than this: the added latency
/// is at most this, and a file written thousands of times a second costs a few passes a
/// second instead of one per write.
const BUSY_GATHER: Duration = Duration::from_millis(10);
use crate::{Checkpointer, Chunk, TailConfig, TailCore, TailError, TailStats, WatchMode};

/// A running tailer: the chunks, the commit handle, the counters and the thread.
pub struct Tail {
    /// Chunks of complete lines, in order per file.
    pub chunks: Receiver<Chunk>,
    /// Commit positions here once their lines are durable.
    pub checkpointer: Checkpointer,
    /// The counters.
    pub stats: Arc<TailStats>,
    /// Stops and joins the thread.
    pub handle: TailHandle,
}

/// Control of the tailer thread.
pub struct TailHandle {
    stop: Arc<AtomicBool>,
    changed: Arc<AtomicBool>,
    wake: SyncSender<()>,
    thread: JoinHandle<Result<(), TailError>>,
}

impl TailHandle {
    /// Asks the thread to stop after its current pass. Keep receiving (or drop the receiver)
    /// so that a send blocked on a full channel returns.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(());
    }

    /// Asks the thread to look at every input again now (new files, rotations), as its
    /// recheck timer would a moment later: what a SIGHUP after a rotation asks for.
    pub fn rescan(&self) {
        self.changed.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(());
    }

    /// Waits for the thread; its error, if it stopped for one.
    pub fn join(self) -> Result<(), TailError> {
        self.thread.join().unwrap_or(Err(TailError::Panicked))
    }
}

/// Loads the checkpoint and starts following.
pub fn spawn(config: TailConfig) -> Result<Tail, TailError> {
    start(TailCore::open(config)?)
}

/// Starts following with a core opened by [`TailCore::open`]: between the two, the consumer
/// may look at the state it saved ([`Checkpointer::state`]) and move positions back
/// ([`Checkpointer::rewind`]).
pub fn start(core: TailCore) -> Result<Tail, TailError> {
    let config = core.config().clone();
    let checkpointer = core.checkpointer();
    let stats = core.stats();
    let (tx, chunks) = sync_channel(config.channel_capacity.max(1));
    let (wake, woken) = sync_channel(1);
    let stop = Arc::new(AtomicBool::new(false));
    let changed = Arc::new(AtomicBool::new(true));
    let thread = {
        let (stop, wake) = (Arc::clone(&stop), wake.clone());
        let changed = Arc::clone(&changed);
        thread::Builder::new()
            .name("maillog-tail".into())
            .spawn(move || run(core, config, tx, (wake, woken), stop, changed))
            .map_err(TailError::Thread)?
    };
    Ok(Tail {
        chunks,
        checkpointer,
        stats,
        handle: TailHandle {
            stop,
            changed,
            wake,
            thread,
        },
    })
}

fn run(
    mut core: TailCore,
    config: TailConfig,
    tx: SyncSender<Chunk>,
    (wake, woken): (SyncSender<()>, Receiver<()>),
    stop: Arc<AtomicBool>,
    changed: Arc<AtomicBool>,
) -> Result<(), TailError> {
    let mut watch = match config.watch {
        WatchMode::Auto if config.follow => DirWatch::new(wake, Arc::clone(&changed)),
        _ => None,
    };
    let interval = if watch.is_some() {
        config.recheck_interval
    } else {
        config.poll_interval
    };
    let mut send = |chunk: Chunk| tx.send(chunk).is_ok();
    let mut last_rescan: Option<Instant> = None;
    let stats = core.stats();
    let mut read_before = 0;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let due = last_rescan.is_none_or(|t| now.duration_since(t) >= interval);
        let rescan = changed.swap(false, Ordering::SeqCst) || due;
        if rescan {
            last_rescan = Some(now);
        }
        let report = match core.pass(now, rescan, &mut send) {
            Err(TailError::Closed) => return Ok(()),
            other => other?,
        };
        if let Some(watch) = watch.as_mut() {
            watch.cover(&config.inputs, &core.followed());
        }
        if !config.follow && !report.more {
            return match core.finish(&mut send) {
                Err(TailError::Closed) => Ok(()),
                other => other,
            };
        }
        if !report.more {
            let _ = woken.recv_timeout(interval);
            // A busy file raises an event per write: after a pass that found data, let the
            // writes gather a little instead of waking for each (lesson 8; see BENCHMARKS.md).
            let read = TailStats::get(&stats.bytes);
            if read != read_before {
                thread::sleep(BUSY_GATHER.saturating_sub(now.elapsed()));
            }
            read_before = read;
            while woken.try_recv().is_ok() {}
        }
    }
    Ok(())
}

/// inotify watches on the directories of the inputs and of the followed files.
struct DirWatch {
    watcher: RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
}

impl DirWatch {
    fn new(wake: SyncSender<()>, changed: Arc<AtomicBool>) -> Option<Self> {
        let handler = move |event: notify::Result<notify::Event>| {
            let kind = event.map(|e| e.kind).unwrap_or(EventKind::Any);
            match kind {
                // Our own opens would wake us for nothing.
                EventKind::Access(AccessKind::Open(_)) => return,
                EventKind::Modify(ModifyKind::Data(_)) | EventKind::Access(_) => {}
                _ => changed.store(true, Ordering::SeqCst),
            }
            let _ = wake.try_send(());
        };
        match notify::recommended_watcher(handler) {
            Ok(watcher) => Some(DirWatch {
                watcher,
                watched: BTreeSet::new(),
            }),
            Err(e) => {
                tracing::warn!("inotify unavailable ({e}): polling instead");
                None
            }
        }
    }

    /// Watches every directory that matters now; one that does not exist yet is tried again
    /// on the next call.
    fn cover(&mut self, inputs: &[PathBuf], followed: &[PathBuf]) {
        let dirs = inputs.iter().map(|i| watch_dir(i)).chain(
            followed
                .iter()
                .filter_map(|p| p.parent().map(PathBuf::from)),
        );
        for dir in dirs {
            if self.watched.contains(&dir) {
                continue;
            }
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir);
                }
                Err(e) => tracing::debug!(dir = %dir.display(), "not watched yet: {e}"),
            }
        }
    }
}
