//! The whole-pipeline model test: the real `maillog` binary driven through random sequences of
//! what an operator and the world do to it — lines appended (in order, out of order across
//! servers, stamped 2099 and 2020, year-less around New Year, across a fall-back hour, 64 KiB
//! ± 1 and 1 MiB long), a line written in two pieces, rotations (rename + create,
//! copytruncate, delayed gzip, deletion of the oldest), the log replaced by a copy of itself,
//! `run --once` and `--once=all`, the service started, stopped with SIGTERM, killed with
//! SIGKILL at a random moment or at a named crash point, a power loss that leaves the newest
//! checkpoint slot full of NULs, the checkpoint removed, the spool wiped with the checkpoint
//! kept apart (`state`: a spool on tmpfs after a reboot), the spool's disk full, the S3 server
//! down, the config edited between runs (`time_zone`, `key_template`, `host`: a running service
//! is stopped first and started again after; an edit that leaves `{host}` empty must make
//! `run --once` exit 2 having written nothing, and is undone) — on a local archive and on a
//! real S3-compatible server (s3s-fs), with the paths of the config absolute or relative to
//! it, the log named by a path or a glob (`logs/*.log`) in the config or by a relative
//! `--input` run from the config's directory. The operations and their classes:
//! `model/ops.rs`; the config and its edits: `model/config.rs`.
//!
//! What it promises, checked on every case:
//! - **No archived object ever changes.** After every step the bytes of every object are
//!   hashed; a key once seen keeps its hash (and stays).
//! - **Exactly once.** Each case starts with a first `run --once` on the empty log (lines of
//!   files rotated away before maillog ever ran are not expected). After the sequence the
//!   service is stopped, a line left in two pieces is finished, the last gzip of a rotation is
//!   6 s old (a reader may wait until a compressed file is quiet) and `run --once=all` drains
//!   everything; the archive's records must then equal, as a multiset of `"{kind} {json}"`,
//!   `maillog parse` of every complete line the test wrote (its own copy: the truth), and
//!   every object must hold one window (its records' `ts` in one 5-minute interval) and be
//!   named by that window's start in a zone that was in force; its key must have no empty
//!   segment and be one of the key templates in force (with the host then) rendered for it.
//! - **Zone edits.** `maillog parse` of a year-less stamp depends on the zone, so each line is
//!   parsed in the zone maillog read it in: every zone in force while a process may have read
//!   it, up to the first finished run after it was written (a power loss in the checkpoint
//!   reopens that). A line with several such zones (read by a killed service, the zone changed
//!   before the next run) is expected in whichever its records are archived in, matched by
//!   queue id. ISO stamps carry their offset: their records do not depend on the zone.
//! - Where the promise is weaker, so is the check: once the checkpoint was removed by hand,
//!   records may repeat, none may be lost; a rotation deleted with lines maillog never read
//!   takes exactly those lines out of the truth, and maillog must say that lines were lost (a
//!   log line that says "lost", other than the summary's counters; it cannot always count the
//!   bytes: those written after it last looked). `--once=all` takes a line still in two
//!   pieces as a line, and its rest as a line of its own, as it promises. After a wiped
//!   spool, maillog reads its open windows again from the log files; records whose lines
//!   were rotated away and deleted since may be missing, exactly as many as it said
//!   (`RECORDS LOST … missing=N`), never more.
//! - **A one-shot run finishes what is due.** After `run --once`, every record written before
//!   it whose window was due (end + lateness) when it started is archived; after
//!   `--once=all`, every record written before it.
//! - **Sealing goes on.** While the service runs undisturbed, a record is archived within 3 s
//!   after its window is due and after it was written plus the lateness — whatever else came
//!   in (a line stamped 2099). Once an edit set a zone other than the one the test stamps
//!   year-less lines in, their event times are the config's reading, not the test's: those
//!   records are left out of this check and the next.
//! - Every `run --once` succeeds (or, beside the service, is refused by the spool lock); the
//!   service never exits by itself; SIGTERM stops it with exit 0; nothing panics.
//!
//! Time is the real clock: "normal" lines are stamped a lag of the case's own (20 s to 6 min)
//! behind now, so appends share windows, and some windows are due (lateness is 5 s in the
//! config) and some are not when `--once` runs. Year-less stamps: each case either fixes
//! `year = 2025` in the config (and `--year 2025` for `maillog parse`) or lets both infer it;
//! then the New Year lines (Dec 31 23:50 to Jan 1 00:10) and the recent ones are more than a
//! day from any reference either may use (the read time, a file's modification time), so both
//! infer the same year — except within a day of New Year, when those lines are stamped in ISO
//! instead. Zones: UTC, Europe/Berlin, America/New_York (the one the test stamps in, and the
//! config's at first; an edit may set any of them or `+01:00`); the fall-back lines carry the
//! zone's offset of the 2025 fall-back hour.
//!
//! A failing case is shrunk (halves, then single operations dropped while it still fails the
//! same way), and the panic prints the seed, the case and the smallest failing sequence.
//!
//! - `MAILLOG_MODEL_CASES` (default 40: about 3 minutes on 2 cores), `MAILLOG_MODEL_OPS` (most
//!   operations a case, default 16), `MAILLOG_MODEL_SEED` (replay that one case),
//!   `MAILLOG_MODEL_SKIP` (classes left out, comma-separated, as named in `model/ops.rs`;
//!   `relative-paths` keeps every path absolute, `input-forms` names the log by a path in the
//!   config), `MAILLOG_MODEL_SHRINK_SECONDS` (default 240), `MAILLOG_MODEL_VERBOSE=1` (print
//!   every step as it happens).
//! - s3s-fs missing: the S3 cases are skipped with a message — a failure under `CI`. The disk
//!   full operation needs a tmpfs (root); without it the operation does nothing — a failure
//!   under `CI`.
#![allow(clippy::unwrap_used)]

#[path = "model/check.rs"]
mod check;
mod common;
#[path = "model/config.rs"]
mod config;
#[path = "model/lines.rs"]
mod lines;
#[path = "model/logs.rs"]
mod logs;
#[path = "model/mirror.rs"]
mod mirror;
#[path = "model/ops.rs"]
mod ops;
#[path = "model/proc.rs"]
mod proc;
#[path = "model/rng.rs"]
mod rng;
#[path = "model/world.rs"]
mod world;

use std::time::{Duration, Instant};

use config::Inputs;
use lines::Zone;
use ops::{Allowed, Op};
use rng::Rng;
use world::{Spec, World};

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Where a case failed and what had happened by then.
struct Failure {
    step: usize,
    message: String,
    notes: Vec<String>,
}

impl Failure {
    /// What kind of failure it is: shrinking keeps a smaller sequence only when it fails the
    /// same way (not, say, a run refused on a full disk in place of a replaced object).
    fn kind(&self) -> &'static str {
        let first = self.message.lines().next().unwrap_or("");
        const KINDS: [(&str, &str); 11] = [
            ("panicked", "a panic"),
            ("changed its bytes", "an object changed"),
            ("disappeared", "an object disappeared"),
            ("lines were lost", "a loss not reported"),
            ("exited by itself", "the service exited"),
            ("not refused", "the lock"),
            ("SIGTERM", "a graceful stop"),
            ("records written before it", "a run left due records"),
            ("not a window file", "a stray file in the archive"),
            ("expected, 0 lost, ", "records repeated"),
            ("expected, ", "records lost"),
        ];
        KINDS
            .iter()
            .find(|(pattern, _)| first.contains(pattern))
            .map_or("a run failed", |(_, kind)| kind)
    }
}

/// Runs one case from scratch: `Ok` with a summary, or where and why it failed. With
/// `MAILLOG_MODEL_VERBOSE` set, every step is printed as it happens.
fn run_case(spec: Spec, ops: &[Op], disk: bool) -> Result<String, Failure> {
    let verbose = std::env::var_os("MAILLOG_MODEL_VERBOSE").is_some();
    let mut world = World::new(spec, disk);
    if disk && !world.has_disk() {
        let message = "cannot mount a tmpfs for the spool (needs root): disk-full skipped";
        assert!(std::env::var_os("CI").is_none(), "{message}");
    }
    if let Err(message) = world.install() {
        let notes = std::mem::take(&mut world.notes);
        return Err(Failure {
            step: 0,
            message,
            notes,
        });
    }
    for (step, op) in ops.iter().enumerate() {
        let result = world.apply(op);
        if verbose {
            eprintln!("    {}", world.notes.last().map_or("", |n| n.as_str()));
        }
        if let Err(message) = result {
            let notes = std::mem::take(&mut world.notes);
            return Err(Failure {
                step: step + 1,
                message,
                notes,
            });
        }
    }
    world.finish().map_err(|message| Failure {
        step: ops.len() + 1,
        message,
        notes: std::mem::take(&mut world.notes),
    })
}

/// The case of a seed: archive, zone, year policy, paths (`relative-paths` in
/// `MAILLOG_MODEL_SKIP`: always absolute), how the log is named (`input-forms`: always a path
/// in the config).
fn spec_of(seed: u64, s3: bool, skip: &[String]) -> Spec {
    let skipped = |class: &str| skip.iter().any(|s| s == class);
    let mut rng = Rng::new(seed);
    Spec {
        seed,
        s3: s3 && rng.chance(50),
        zone: [Zone::Utc, Zone::Berlin, Zone::NewYork][rng.below(3) as usize],
        fixed_year: rng.chance(50),
        relative: !skipped("relative-paths") && rng.chance(50),
        inputs: match rng.below(4) {
            _ if skipped("input-forms") => Inputs::Path,
            0 => Inputs::Glob,
            1 => Inputs::Flag,
            _ => Inputs::Path,
        },
        state_apart: rng.chance(50),
    }
}

/// Drops halves, then quarters, … then single operations while the case still fails, within
/// `budget`; returns the smallest failing sequence, its failure and the runs it took.
fn shrink(spec: Spec, ops: Vec<Op>, first: Failure, disk: bool, budget: Duration) -> Shrunk {
    let started = Instant::now();
    let mut best = Shrunk {
        ops,
        failure: first,
        runs: 0,
    };
    let mut chunk = best.ops.len().div_ceil(2);
    while chunk >= 1 && started.elapsed() < budget {
        let mut i = 0;
        let mut dropped = false;
        while i < best.ops.len() && started.elapsed() < budget {
            let mut candidate = best.ops.clone();
            candidate.drain(i..(i + chunk).min(candidate.len()));
            best.runs += 1;
            match run_case(spec, &candidate, disk) {
                Err(failure) if failure.kind() == best.failure.kind() => {
                    eprintln!("  shrink: {} operations still fail", candidate.len());
                    best.ops = candidate;
                    best.failure = failure;
                    dropped = true;
                }
                _ => i += chunk,
            }
        }
        if !dropped {
            chunk /= 2;
        }
    }
    best
}

struct Shrunk {
    ops: Vec<Op>,
    failure: Failure,
    runs: usize,
}

fn report(spec: Spec, original: usize, shrunk: &Shrunk) -> String {
    let mut text = format!(
        "model case failed — seed {} (replay: MAILLOG_MODEL_SEED={} cargo test -p maillog-cli \
         --test model); archive {}, time_zone {}, year {}, paths {}, input {}, state {}\n\
         smallest failing sequence ({} of {original} operations, {} shrinking runs):\n",
        spec.seed,
        spec.seed,
        if spec.s3 { "s3s-fs" } else { "local" },
        spec.zone.name(),
        if spec.fixed_year {
            "fixed 2025"
        } else {
            "inferred"
        },
        if spec.relative {
            "relative to the config"
        } else {
            "absolute"
        },
        match spec.inputs {
            Inputs::Path => "a path in the config",
            Inputs::Glob => "a glob in the config (logs/*.log)",
            Inputs::Flag => "--input logs/mail.log from the config's directory",
        },
        if spec.state_apart {
            "apart (state/)"
        } else {
            "in the spool"
        },
        shrunk.ops.len(),
        shrunk.runs,
    );
    for (i, op) in shrunk.ops.iter().enumerate() {
        text.push_str(&format!("  {:2}. {op}\n", i + 1));
    }
    text.push_str(&format!(
        "  {:2}. final: stop, finish pieces, run --once=all, compare with maillog parse\n",
        shrunk.ops.len() + 1
    ));
    text.push_str(&format!(
        "failed at step {} ({}): {}\nwhat happened:\n",
        shrunk.failure.step,
        shrunk.failure.kind(),
        shrunk.failure.message
    ));
    for note in &shrunk.failure.notes {
        text.push_str(&format!("  - {note}\n"));
    }
    text
}

#[test]
fn the_archive_holds_every_line_written_once_through_any_sequence_of_operations() {
    let s3 = maillog_testkit::s3::have_s3s_fs();
    let skip: Vec<String> = std::env::var("MAILLOG_MODEL_SKIP")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let max_ops: usize = env("MAILLOG_MODEL_OPS").unwrap_or(16);
    let disk = !skip.iter().any(|s| s == "disk-full");
    let (first_seed, cases) = match env::<u64>("MAILLOG_MODEL_SEED") {
        Some(seed) => (seed, 1),
        None => {
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            (
                Rng::new(clock.as_nanos() as u64).next() >> 20,
                env("MAILLOG_MODEL_CASES").unwrap_or(40),
            )
        }
    };
    let budget = Duration::from_secs(env("MAILLOG_MODEL_SHRINK_SECONDS").unwrap_or(240));
    let started = Instant::now();
    let mut passed = 0;
    for case in 0..cases {
        let seed = first_seed + case;
        let spec = spec_of(seed, s3, &skip);
        let allowed = Allowed::new(&skip, spec.s3, disk);
        let ops = ops::generate(&mut Rng::new(seed ^ 0x5EED), max_ops, &allowed);
        let case_started = Instant::now();
        match run_case(spec, &ops, disk) {
            Ok(summary) => {
                passed += 1;
                eprintln!(
                    "model case {} seed {seed} ({} ops, {}, {}): passed in {:.1} s — {summary}",
                    case + 1,
                    ops.len(),
                    if spec.s3 { "s3s-fs" } else { "local" },
                    spec.zone.name(),
                    case_started.elapsed().as_secs_f64()
                );
            }
            Err(failure) => {
                eprintln!(
                    "model case {} seed {seed}: failed at step {} of {} ({}); shrinking…",
                    case + 1,
                    failure.step,
                    ops.len(),
                    failure.message.lines().next().unwrap_or("")
                );
                let original = ops.len();
                let shrunk = shrink(spec, ops, failure, disk, budget);
                panic!(
                    "{passed} cases passed before this one\n{}",
                    report(spec, original, &shrunk)
                );
            }
        }
    }
    eprintln!(
        "model: {passed} of {cases} cases passed in {:.0} s (first seed {first_seed})",
        started.elapsed().as_secs_f64()
    );
}
