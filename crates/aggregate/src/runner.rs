//! Running a query of `maillog top`/`report`: INPUT arguments in, a settled tally out.
//!
//! This module owns the steps between the two: resolving the arguments ([`crate::inputs`]),
//! choosing the number of reading threads (one per core, at least 8 when an input comes from
//! S3, where reading waits on the network), and scanning ([`crate::scan`]) while a [`Watch`]
//! hears of every problem as it is found and may show progress from a thread of its own,
//! reading the scan's byte counter: the scan never waits on it.
//!
//! It never prints, never draws and never reads a config: the caller's [`Watch`] is the output,
//! and the caller gives the parser, year and bucket client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use maillog_parse::{Kind, Parser};

use crate::inputs::{self, Connect};
use crate::range::Selection;
use crate::scan::{self, Outcome, Problem, ScanOptions};
use crate::tally::Tally;

/// What a query reads, and how.
pub struct QueryInputs<'a> {
    /// The INPUT arguments: paths, `-`, `s3://` globs (the caller names the archive when the
    /// user named nothing).
    pub args: &'a [String],
    /// Reading threads; `None`: one per core, at least 8 when reading from S3.
    pub threads: Option<usize>,
    /// The parser of raw syslog inputs.
    pub parser: Parser,
    /// The year of year-less stamps; `None`: a file's modification time (stdin, streams: now).
    pub year: Option<i32>,
    /// How `s3://` arguments reach their bucket.
    pub connect: &'a Connect<'a>,
    /// What files and folders found may be skipped unread (their names say they hold no
    /// record in the range).
    pub selection: Selection,
    /// Where an archive's records are read: its bzip2 files, its Parquet mirror, or both.
    pub source: inputs::Source,
}

/// Hears what a running query has to tell: the binary prints it, a test may collect it.
pub trait Watch: Sync {
    /// An argument that names nothing, or a broken input, as it is found (from any thread).
    fn problem(&self, problem: Problem);

    /// Runs on a thread of its own while the inputs are read, and should return soon after
    /// [`Progress::wait`] says the scan is over. By default it returns at once.
    fn progress(&self, progress: &Progress<'_>) {
        let _ = progress;
    }
}

/// How far a scan is, for a [`Watch`] that shows it.
pub struct Progress<'a> {
    read: &'a AtomicU64,
    total: Option<u64>,
    over: &'a Over,
}

impl Progress<'_> {
    /// Input bytes read so far (compressed bytes for compressed inputs).
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// The inputs' total size, when every size is known before reading.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Waits up to `timeout`; whether the scan is over.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.over.wait(timeout)
    }
}

/// Set when the scan is over.
#[derive(Default)]
struct Over {
    over: Mutex<bool>,
    changed: Condvar,
}

impl Over {
    fn set(&self) {
        if let Ok(mut over) = self.over.lock() {
            *over = true;
        }
        self.changed.notify_all();
    }

    fn wait(&self, timeout: Duration) -> bool {
        let Ok(over) = self.over.lock() else {
            return true;
        };
        match self
            .changed
            .wait_timeout_while(over, timeout, |over| !*over)
        {
            Ok((over, _)) => *over,
            Err(_) => true,
        }
    }
}

/// Resolves the inputs and scans them into tallies made by `make`, telling `watch` every
/// problem as it comes; the outcome's `problems` counts the arguments that named nothing too.
pub fn run<T: Tally>(
    query: QueryInputs<'_>,
    make: impl Fn() -> T + Sync,
    watch: &dyn Watch,
) -> Outcome<T> {
    let needs = make().needs();
    let selection = Selection {
        joins_sizes: needs.sizes,
        kinds: Selection::kinds_read(needs.reads(Kind::From), needs.reads(Kind::To)),
        ..query.selection
    };
    let resolved = inputs::resolve(query.args, query.connect, &selection, query.source);
    let unresolved = resolved.problems.len();
    for problem in resolved.problems {
        watch.problem(problem);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match query.threads {
        Some(n) => n,
        None if resolved.remote => cores.max(8),
        None => cores,
    };
    let options = ScanOptions {
        threads,
        parser: query.parser,
        year: query.year,
        range_bytes: ScanOptions::RANGE_BYTES,
    };
    let inputs = resolved.inputs;
    let read = AtomicU64::new(0);
    let over = Over::default();
    let progress = Progress {
        read: &read,
        total: inputs.iter().map(|i| i.len).sum(),
        over: &over,
    };
    let say = |problem: Problem| watch.problem(problem);
    let mut outcome = std::thread::scope(|threads| {
        threads.spawn(|| watch.progress(&progress));
        let outcome = scan::scan(&inputs, &options, make, &read, &say);
        over.set();
        outcome
    });
    outcome.problems += unresolved;
    outcome
}
