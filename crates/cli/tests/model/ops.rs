//! The operator-level operations the model test strings together, how a sequence of them is
//! drawn, and how each reads in a failure report.
//!
//! Every operation is defined in every state (a `stop` with no service running does nothing,
//! a `run --once` while the service runs must be refused by the spool lock), so any
//! subsequence of a failing sequence is again a valid sequence: that is what shrinking needs.
//! The classes and their weights are in [`CLASSES`]; `MAILLOG_MODEL_SKIP=disk-full,kill,…`
//! leaves classes out.

use std::fmt;

use super::config::{HOSTS, TEMPLATES};
use super::lines::Zone;
use super::rng::Rng;

/// How the lines of an append are stamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// ISO stamps a few minutes before the wall clock, in order.
    InOrder,
    /// The same, each server's clock off by up to a minute: out of order across servers.
    Skewed,
    /// ISO stamps in 2099: a clock far ahead (or a forged datagram).
    FarFuture,
    /// ISO stamps in 2020: a server that was off the net for years.
    FarPast,
    /// BSD (year-less) stamps on both sides of New Year's midnight.
    NewYear,
    /// ISO stamps across the hour that repeats when the case's zone falls back (2025).
    FallBack,
    /// BSD stamps a few minutes before the wall clock.
    BsdRecent,
    /// ISO stamps as `InOrder`, one line in two of 64 KiB ± 1 or 1 MiB (a long `stat=`).
    Long,
}

/// A named crash point of the pipeline (`MAILLOG_CRASH_AT`): the process stops there and the
/// test kills it with SIGKILL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    AfterSeal,
    ArchiveCopy,
    AfterArchive,
    AfterRelease,
}

impl Point {
    pub fn name(self) -> &'static str {
        match self {
            Point::AfterSeal => "after-seal",
            Point::ArchiveCopy => "archive-copy",
            Point::AfterArchive => "after-archive",
            Point::AfterRelease => "after-release",
        }
    }
}

/// One setting of `pipeline.toml` an operator changes between runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// `time_zone`.
    TimeZone(Zone),
    /// `key_template`: one of [`TEMPLATES`].
    KeyTemplate(usize),
    /// `host`: one of [`HOSTS`], or unset.
    Host(Option<usize>),
}

impl fmt::Display for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Edit::TimeZone(zone) => write!(f, "time_zone = {:?}", zone.name()),
            Edit::KeyTemplate(i) => write!(f, "key_template = {:?}", TEMPLATES[i]),
            Edit::Host(Some(i)) => write!(f, "host = {:?}", HOSTS[i]),
            Edit::Host(None) => write!(f, "host unset"),
        }
    }
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Append `lines` whole lines to `mail.log` (first finishing a line left in two pieces).
    Append { lines: u8, style: Style, seed: u64 },
    /// Write the first piece of a line, no newline: the rest comes with the next write.
    HalfLine { seed: u64 },
    /// logrotate: `mail.log.N` → `mail.log.N+1`, then `mail.log` → `mail.log.1` and a new
    /// empty `mail.log` (or, `copytruncate`, a copy in `mail.log.1` and `mail.log` cut to 0);
    /// with `compress` (and `delaycompress`), the rotation that becomes `.2` is gzipped.
    Rotate { copytruncate: bool, compress: bool },
    /// Delete the oldest rotation (logrotate's `rotate N`).
    DeleteOldest,
    /// `mail.log` replaced by a copy of itself (`sed -i`, an editor, rsync without
    /// `--inplace`): the same content under a new inode; the writer goes on in the copy.
    ReplaceByCopy,
    /// `maillog run --once` (`all`: `--once=all`); refused while the service runs.
    RunOnce { all: bool },
    /// Start the service (`maillog run`), unless it runs.
    Start,
    /// Let time pass.
    Wait { ms: u64 },
    /// SIGTERM to the service: a graceful stop.
    Stop,
    /// SIGKILL to the service after `after_ms`.
    Kill { after_ms: u64 },
    /// A SIGKILL at a named point: a running service is killed first, then the service
    /// (or `--once`) runs with `MAILLOG_CRASH_AT` until it stops there (or 3 s) and is killed.
    CrashAt { point: Point, once: bool },
    /// A power loss: SIGKILL to the service, and the newest checkpoint slot full of NULs.
    DamageCheckpoint,
    /// The checkpoint removed by hand (both slots) after a SIGTERM and a `run --once` that read
    /// everything: from here on at-least-once is promised.
    RemoveCheckpoint,
    /// A reboot with the spool on tmpfs and the checkpoint kept elsewhere (`state`): SIGTERM
    /// to the service, a `run --once` (the archive has every sealed file), then the spool
    /// directory removed. Its open windows are read again from the log files; what is no
    /// longer there must be said (`RECORDS LOST … missing=N`). A no-op where the case keeps
    /// the state in the spool.
    WipeSpool,
    /// The spool's disk fills up (the service runs on, or a `run --once` starts) and is freed
    /// 1.5 s later.
    DiskFull,
    /// The S3 server goes down (the service runs on, or a `run --once` starts) and comes back
    /// 2 s later.
    S3Outage,
    /// One setting of `pipeline.toml` changed, as an operator does it: a running service is
    /// stopped (SIGTERM) first and started again after. An edit that leaves `{host}` empty in
    /// the key template must make `run --once` exit 2 having written nothing; the previous
    /// config is then put back.
    EditConfig(Edit),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Append { lines, style, seed } => {
                write!(f, "append {lines} lines {style:?} (seed {seed})")
            }
            Op::HalfLine { seed } => write!(f, "write half a line (seed {seed})"),
            Op::Rotate {
                copytruncate,
                compress,
            } => write!(
                f,
                "rotate ({}{})",
                if *copytruncate {
                    "copytruncate"
                } else {
                    "rename + create"
                },
                if *compress {
                    ", delaycompress + gzip"
                } else {
                    ""
                }
            ),
            Op::DeleteOldest => write!(f, "delete the oldest rotation"),
            Op::ReplaceByCopy => write!(f, "replace mail.log by a copy of itself"),
            Op::RunOnce { all: false } => write!(f, "maillog run --once"),
            Op::RunOnce { all: true } => write!(f, "maillog run --once=all"),
            Op::Start => write!(f, "start the service"),
            Op::Wait { ms } => write!(f, "wait {ms} ms"),
            Op::Stop => write!(f, "SIGTERM the service"),
            Op::Kill { after_ms } => write!(f, "SIGKILL the service after {after_ms} ms"),
            Op::CrashAt { point, once } => write!(
                f,
                "crash {} at {}",
                if *once { "run --once" } else { "the service" },
                point.name()
            ),
            Op::DamageCheckpoint => write!(f, "power loss: newest checkpoint slot all NULs"),
            Op::RemoveCheckpoint => write!(f, "stop, run --once, remove the checkpoint"),
            Op::WipeSpool => write!(f, "stop, run --once, wipe the spool (state kept)"),
            Op::DiskFull => write!(f, "fill the spool's disk, free it 1.5 s later"),
            Op::S3Outage => write!(f, "S3 down for 2 s"),
            Op::EditConfig(edit) => write!(f, "edit the config: {edit}"),
        }
    }
}

/// The classes of operations and how often each is drawn.
pub const CLASSES: &[(&str, u64)] = &[
    ("append", 30),
    ("skew", 8),
    ("outliers", 6),
    ("new-year", 3),
    ("fall-back", 4),
    ("bsd", 3),
    ("half-line", 5),
    ("rotate", 7),
    ("copytruncate", 3),
    ("delete-rotation", 3),
    ("long-lines", 2),
    ("replace-copy", 2),
    ("once", 10),
    ("once-all", 5),
    ("service", 20),
    ("kill", 4),
    ("crash-points", 4),
    ("checkpoint-damage", 2),
    ("checkpoint-remove", 1),
    ("spool-wipe", 4),
    ("disk-full", 3),
    ("s3-outage", 3),
    ("config-zone", 3),
    ("config-key", 3),
];

/// What a case can do: the classes left after `MAILLOG_MODEL_SKIP` and what this machine and
/// this case's archive allow.
pub struct Allowed(Vec<(&'static str, u64)>);

impl Allowed {
    pub fn new(skip: &[String], s3: bool, disk: bool) -> Allowed {
        Allowed(
            CLASSES
                .iter()
                .copied()
                .filter(|(c, _)| !skip.iter().any(|s| s == c))
                .filter(|(c, _)| s3 || *c != "s3-outage")
                .filter(|(c, _)| disk || *c != "disk-full")
                .collect(),
        )
    }

    fn draw(&self, rng: &mut Rng) -> &'static str {
        let total: u64 = self.0.iter().map(|(_, w)| w).sum();
        let mut pick = rng.below(total.max(1));
        for (class, weight) in &self.0 {
            if pick < *weight {
                return class;
            }
            pick -= weight;
        }
        "append"
    }
}

/// A sequence of up to `max` operations (at least 3).
pub fn generate(rng: &mut Rng, max: usize, allowed: &Allowed) -> Vec<Op> {
    let count = 3 + rng.below(max.saturating_sub(2).max(1) as u64) as usize;
    let mut running = false;
    let mut ops = vec![Op::Append {
        lines: 3 + rng.below(8) as u8,
        style: Style::InOrder,
        seed: rng.next() >> 16,
    }];
    while ops.len() < count {
        let seed = rng.next() >> 16;
        let lines = 1 + rng.below(8) as u8;
        let append = |style| Op::Append { lines, style, seed };
        // A running service gets time: sealing, uploads and late parts happen while it waits.
        let class = match allowed.draw(rng) {
            c if running && c != "service" && rng.chance(30) => "service",
            c => c,
        };
        let op = match class {
            "append" => append(Style::InOrder),
            "skew" => append(Style::Skewed),
            "outliers" if rng.chance(50) => append(Style::FarFuture),
            "outliers" => append(Style::FarPast),
            "new-year" => append(Style::NewYear),
            "fall-back" => append(Style::FallBack),
            "bsd" => append(Style::BsdRecent),
            "half-line" => Op::HalfLine { seed },
            "rotate" => Op::Rotate {
                copytruncate: false,
                compress: rng.chance(50),
            },
            "copytruncate" => Op::Rotate {
                copytruncate: true,
                compress: rng.chance(50),
            },
            "delete-rotation" => Op::DeleteOldest,
            "long-lines" => Op::Append {
                lines: 1 + rng.below(3) as u8,
                style: Style::Long,
                seed,
            },
            "replace-copy" => Op::ReplaceByCopy,
            "once" => Op::RunOnce { all: false },
            "once-all" => Op::RunOnce { all: true },
            "service" if !running => Op::Start,
            "service" if rng.chance(70) => Op::Wait {
                ms: 300 + rng.below(4000),
            },
            "service" => Op::Stop,
            "kill" if running => Op::Kill {
                after_ms: rng.below(1500),
            },
            "kill" => Op::Start,
            "crash-points" => Op::CrashAt {
                point: [
                    Point::AfterSeal,
                    Point::ArchiveCopy,
                    Point::AfterArchive,
                    Point::AfterRelease,
                ][rng.below(4) as usize],
                once: rng.chance(40),
            },
            "checkpoint-damage" => Op::DamageCheckpoint,
            "checkpoint-remove" => Op::RemoveCheckpoint,
            "spool-wipe" => Op::WipeSpool,
            "disk-full" => Op::DiskFull,
            "s3-outage" => Op::S3Outage,
            "config-zone" => Op::EditConfig(Edit::TimeZone(
                [Zone::Utc, Zone::PlusOne, Zone::Berlin, Zone::NewYork][rng.below(4) as usize],
            )),
            "config-key" if rng.chance(50) => {
                Op::EditConfig(Edit::KeyTemplate(rng.below(TEMPLATES.len() as u64) as usize))
            }
            "config-key" => Op::EditConfig(Edit::Host(
                rng.chance(70)
                    .then(|| rng.below(HOSTS.len() as u64) as usize),
            )),
            _ => append(Style::InOrder),
        };
        match op {
            Op::Start => running = true,
            Op::Stop
            | Op::Kill { .. }
            | Op::CrashAt { .. }
            | Op::DamageCheckpoint
            | Op::RemoveCheckpoint
            | Op::WipeSpool => running = false,
            _ => {}
        }
        ops.push(op);
    }
    ops
}
