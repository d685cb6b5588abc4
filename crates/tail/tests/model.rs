//! Model-based test of the tailer: random sequences of appends (with lines left unterminated
//! and finished later), logrotate-style rotation (numbered files moving up, with delayed
//! compression in half the cases), copytruncate, the log replaced by a same-content copy with
//! another inode (`sed -i`, rsync, a move to another disk) and the writer told to reopen, delete, the oldest rotation deleted, passes,
//! commits, clean stops and crashes with any of these while the tailer is stopped, and the end
//! of a run that does not follow — run against real files and checked against a model of what
//! was written: every line delivered, whole, in write order, exactly once.
//!
//! The writer behaves like syslog-ng: it appends through an open descriptor (`O_APPEND`) until
//! told to reopen the path, and finishes a line before the file is rotated. What the model
//! allows to be missing is exactly what the tailer documents: lines only in a deleted file that
//! were not committed when the tailer (re)started (the file is unreachable then), and the
//! tailer must not report more bytes lost than that. Copytruncate stays within its documented
//! limit: the tailer sees some of a file's content between its creation or truncation and the
//! next truncation (the copy is recognised by that content). A file deleted while the tailer
//! runs is read only by a process that had it open, so the tailer looks at a file before it is
//! deleted. Files created and rotated away between two looks, or while the tailer is stopped,
//! are found (they are siblings nothing has read), compressed or not, and read in the order
//! the rotation numbers give. A replacement by a same-content copy is read on, not again; as
//! for copytruncate, the tailer looks between a replacement and the next operation while it
//! runs, and a run does not mix replacements with copytruncate (known gaps, not yet covered).
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use maillog_tail::{Ack, Chunk, TailConfig, TailCore};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append {
        lines: usize,
        pad: usize,
        partial: bool,
    },
    /// The writer finishes a line it left unterminated.
    FinishLine,
    RenameRotate,
    Reopen,
    CopyTruncate,
    /// The log replaced by a copy of itself (a new inode renamed over it), and the writer
    /// told to reopen: it writes to the copy from then on.
    Replace,
    Delete,
    /// `rotate N` ran out: the oldest rotation is deleted.
    Expire,
    Pass {
        rescan: bool,
    },
    Commit,
    Wait,
    /// The tailer stops (cleanly or not); what follows happens while it is stopped.
    Stop {
        crash: bool,
    },
    Start,
    Restart {
        crash: bool,
    },
    /// The end of a run that does not follow, and the next run.
    Finish,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1..6usize, 0..400usize, any::<bool>())
            .prop_map(|(lines, pad, partial)| Op::Append { lines, pad, partial }),
        1 => Just(Op::FinishLine),
        2 => Just(Op::RenameRotate),
        2 => Just(Op::Reopen),
        1 => Just(Op::CopyTruncate),
        2 => Just(Op::Replace),
        1 => Just(Op::Delete),
        1 => Just(Op::Expire),
        4 => any::<bool>().prop_map(|rescan| Op::Pass { rescan }),
        2 => Just(Op::Commit),
        1 => Just(Op::Wait),
        1 => any::<bool>().prop_map(|crash| Op::Stop { crash }),
        1 => Just(Op::Start),
        1 => any::<bool>().prop_map(|crash| Op::Restart { crash }),
        1 => Just(Op::Finish),
    ]
}

/// A rotated file, `mail.log.N` (`.gz`): a file the writer wrote to, or a copytruncate copy.
#[derive(Clone, Copy)]
struct Slot {
    file: Option<usize>,
    compressed: bool,
}

/// One file the writer wrote to.
struct Written {
    /// Truncations so far.
    epoch: usize,
    deleted: bool,
    /// Deleted, and the tailer crashed since: nobody can read it any more.
    unreachable: bool,
}

struct World {
    _dir: tempfile::TempDir,
    log: PathBuf,
    config: TailConfig,
    core: TailCore,
    /// The tailer is stopped (between `Stop` and `Start`).
    stopped: bool,
    now: Instant,
    writer: Option<(File, usize)>,
    /// The writer's descriptor no longer names `log` (rotated or deleted, no reopen yet).
    stale_writer: bool,
    files: Vec<Written>,
    /// `mail.log.1`, `mail.log.2`, …: what each holds now (`None`: deleted).
    slots: Vec<Option<Slot>>,
    /// logrotate's `compress` with `delaycompress`: `mail.log.2` is compressed.
    compress: bool,
    /// The time of the last write (set as the file's modification time): ahead of the clock,
    /// so that every file counts as written after the first checkpoint.
    clock: SystemTime,
    /// Every line written: text and the file (and its epoch) it went to.
    lines: Vec<(String, usize, usize)>,
    /// Lines that copytruncate copied into a file of their own.
    copied: HashSet<String>,
    partial: Option<String>,
    lost_ok: Vec<String>,
    /// Bytes the tailers (one per start) reported lost.
    reported_lost: u64,
    /// Lines received, and the acks of their chunks.
    received: Vec<String>,
    acks: Vec<Ack>,
    committed: usize,
    /// The tailer has looked (rescan pass) at the current file since its creation or truncation.
    seen_since_change: bool,
    /// ... and seen some of its content then (copytruncate's copy is recognised by content).
    seen_content: bool,
    /// A copytruncate, or a replacement, happened in this run: the two are not mixed (a
    /// known gap: copytruncate's copies and a replacement's copies with crashes between
    /// them are not covered yet).
    truncated: bool,
    replaced: bool,
}

impl World {
    fn new(compress: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        let mut config = TailConfig::new(vec![log.clone()], dir.path().join("state"));
        config.read_bytes = 97; // reads end mid-line all the time
        config.rotate_wait = Duration::from_secs(5);
        let core = TailCore::open(config.clone()).unwrap();
        let mut world = World {
            _dir: dir,
            log,
            config,
            core,
            stopped: false,
            now: Instant::now(),
            writer: None,
            stale_writer: false,
            files: Vec::new(),
            slots: Vec::new(),
            compress,
            clock: SystemTime::now() + Duration::from_secs(3600),
            lines: Vec::new(),
            copied: Default::default(),
            partial: None,
            lost_ok: Vec::new(),
            reported_lost: 0,
            received: Vec::new(),
            acks: Vec::new(),
            committed: 0,
            seen_since_change: false,
            seen_content: false,
            truncated: false,
            replaced: false,
        };
        world.reopen();
        world
    }

    fn tick(&mut self, path: &Path) {
        // Every write at its own time, as on a real host where rotations are hours apart (the
        // file system's clock is too coarse for writes microseconds apart).
        self.clock += Duration::from_millis(1);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(self.clock)
            .unwrap();
    }

    fn write(&mut self, text: &str) {
        let (file, _) = self.writer.as_mut().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        self.clock += Duration::from_millis(1);
        file.set_modified(self.clock).unwrap();
    }

    fn finish_partial(&mut self) {
        if let Some(line) = self.partial.take() {
            let rest = &line[line.len() / 2..];
            self.write(&format!("{rest}\n"));
        }
    }

    fn record(&mut self, line: String) {
        let target = self.writer.as_ref().unwrap().1;
        if self.files[target].unreachable {
            self.lost_ok.push(line.clone());
        }
        self.lines.push((line, target, self.files[target].epoch));
    }

    fn append(&mut self, lines: usize, pad: usize, partial: bool) {
        self.finish_partial();
        for i in 0..lines {
            let n = self.lines.len();
            let line = format!("line {n:06} {}", "x".repeat((pad * (i + 1)) % 400));
            self.write(&format!("{line}\n"));
            self.record(line);
        }
        if partial {
            let n = self.lines.len();
            let line = format!("line {n:06} partial {}", "y".repeat(pad));
            self.write(&line[..line.len() / 2]);
            self.record(line.clone());
            self.partial = Some(line);
        }
    }

    fn reopen(&mut self) {
        self.finish_partial();
        let existed = self.log.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let target = if existed && !self.stale_writer {
            self.writer.as_ref().map_or(0, |w| w.1)
        } else if existed {
            // Reopening a path another writer created: find which file it is.
            self.files.len() - 1
        } else {
            self.files.push(Written {
                epoch: 0,
                deleted: false,
                unreachable: false,
            });
            self.seen_since_change = false;
            self.seen_content = false;
            self.files.len() - 1
        };
        if !existed {
            self.clock += Duration::from_millis(1);
            file.set_modified(self.clock).unwrap();
        }
        self.writer = Some((file, target));
        self.stale_writer = false;
    }

    fn slot_path(&self, n: usize, compressed: bool) -> PathBuf {
        let gz = if compressed { ".gz" } else { "" };
        self.log.with_file_name(format!("mail.log.{}{gz}", n + 1))
    }

    /// logrotate: every numbered file moves up one; `mail.log.1` is free.
    fn shift(&mut self) {
        for n in (0..self.slots.len()).rev() {
            if let Some(slot) = self.slots[n] {
                let (from, to) = (
                    self.slot_path(n, slot.compressed),
                    self.slot_path(n + 1, slot.compressed),
                );
                fs::rename(from, to).unwrap();
            }
        }
        self.slots.insert(0, None);
    }

    /// `delaycompress`: `mail.log.2` is compressed (stamped with the time it is done).
    fn delayed_compress(&mut self) {
        let Some(Some(slot)) = self.slots.get(1).copied() else {
            return;
        };
        if !self.compress || slot.compressed {
            return;
        }
        let (plain, gz) = (self.slot_path(1, false), self.slot_path(1, true));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&fs::read(&plain).unwrap()).unwrap();
        fs::write(&gz, enc.finish().unwrap()).unwrap();
        fs::remove_file(plain).unwrap();
        self.tick(&gz);
        self.slots[1] = Some(Slot {
            compressed: true,
            ..slot
        });
    }

    fn rename_rotate(&mut self) {
        self.finish_partial();
        if !self.log.exists() {
            return;
        }
        self.shift();
        fs::rename(&self.log, self.slot_path(0, false)).unwrap();
        let target = self.writer.as_ref().unwrap().1; // the log exists: the writer's
        self.slots[0] = Some(Slot {
            file: Some(target),
            compressed: false,
        });
        self.stale_writer = true;
        self.delayed_compress();
    }

    fn copy_truncate(&mut self) {
        self.finish_partial();
        if !self.log.exists() || self.stale_writer || self.replaced {
            return;
        }
        if !self.seen_content {
            if self.stopped {
                return; // the documented limit: the tailer looks between truncations
            }
            self.pass(true);
        }
        self.truncated = true;
        self.shift();
        let copy = self.slot_path(0, false);
        fs::copy(&self.log, &copy).unwrap();
        self.tick(&copy);
        self.slots[0] = Some(Slot {
            file: None,
            compressed: false,
        });
        let target = self.writer.as_ref().unwrap().1;
        let epoch = self.files[target].epoch;
        let copied = self
            .lines
            .iter()
            .filter(|(_, f, e)| (*f, *e) == (target, epoch));
        self.copied.extend(copied.map(|(l, _, _)| l.clone()));
        self.files[target].epoch += 1;
        OpenOptions::new()
            .write(true)
            .open(&self.log)
            .unwrap()
            .set_len(0)
            .unwrap();
        self.seen_since_change = false;
        self.seen_content = false;
        self.delayed_compress();
    }

    fn replace(&mut self) {
        self.finish_partial();
        if !self.log.exists() || self.stale_writer || self.truncated {
            return;
        }
        self.replaced = true;
        let tmp = self.log.with_file_name("replacement.tmp"); // no sibling of mail.log
        fs::copy(&self.log, &tmp).unwrap();
        self.tick(&tmp);
        fs::rename(&tmp, &self.log).unwrap();
        // The replaced inode has no name left: its lines are the copy's now. The writer
        // reopens and finds the copy.
        let target = self.writer.as_ref().unwrap().1;
        let epoch = self.files[target].epoch;
        self.files[target].deleted = true;
        let copy = self.files.len();
        self.files.push(Written {
            epoch: 0,
            deleted: false,
            unreachable: false,
        });
        for (_, f, e) in &mut self.lines {
            if (*f, *e) == (target, epoch) {
                (*f, *e) = (copy, 0);
            }
        }
        let file = OpenOptions::new().append(true).open(&self.log).unwrap();
        self.writer = Some((file, copy));
        self.seen_since_change = false;
        self.seen_content = false;
        // While running, the tailer looks before the next rotation (its timer recheck, every
        // second): the documented limit, as between two copytruncates.
        self.pass(true);
    }

    fn delete(&mut self) {
        self.finish_partial();
        if !self.log.exists() || self.stale_writer {
            return;
        }
        if !self.seen_since_change && !self.stopped {
            self.pass(true); // a file deleted before anyone looked was never there for us
        }
        fs::remove_file(&self.log).unwrap();
        let target = self.writer.as_ref().unwrap().1;
        self.files[target].deleted = true;
        self.stale_writer = true;
    }

    /// Deletes the oldest rotation of a file (not a copy, not one the writer still writes to).
    fn expire(&mut self) {
        let writing = self
            .writer
            .as_ref()
            .map(|w| w.1)
            .filter(|_| self.stale_writer);
        let oldest = (0..self.slots.len()).rev().find_map(|n| {
            let slot = self.slots[n]?;
            let file = slot.file.filter(|f| Some(*f) != writing)?;
            Some((n, slot, file))
        });
        let Some((n, slot, file)) = oldest else {
            return;
        };
        if !self.stopped {
            self.pass(true); // as for a delete: while running, the tailer has looked
        }
        fs::remove_file(self.slot_path(n, slot.compressed)).unwrap();
        self.slots[n] = None;
        self.files[file].deleted = true;
    }

    fn pass(&mut self, rescan: bool) {
        if self.stopped {
            return;
        }
        let (received, acks) = (&mut self.received, &mut self.acks);
        let mut send = |chunk: Chunk| {
            received.extend(
                chunk
                    .lines()
                    .map(|l| String::from_utf8(l.to_vec()).unwrap()),
            );
            acks.push(chunk.ack);
            true
        };
        loop {
            let report = self.core.pass(self.now, rescan, &mut send).unwrap();
            if !report.more {
                break;
            }
        }
        if rescan && let Ok(meta) = fs::metadata(&self.log) {
            self.seen_since_change = true;
            self.seen_content |= meta.len() > 0;
        }
    }

    fn commit(&mut self) {
        if self.stopped {
            return;
        }
        self.core.checkpointer().commit(&self.acks).unwrap();
        self.acks.clear();
        self.committed = self.received.len();
    }

    fn stop(&mut self, crash: bool) {
        if self.stopped {
            return;
        }
        if !crash {
            self.commit();
        }
        // What was handed out but not committed was never durable: it must come again,
        // except from a deleted file, which nobody can open any more.
        self.received.truncate(self.committed);
        self.acks.clear();
        self.stopped = true;
    }

    fn start(&mut self) {
        if !self.stopped {
            return;
        }
        let delivered: HashSet<&String> = self.received.iter().collect();
        for (i, file) in self.files.iter_mut().enumerate() {
            if file.deleted && !file.unreachable {
                file.unreachable = true;
                for (line, _, _) in self.lines.iter().filter(|(_, f, _)| *f == i) {
                    if !delivered.contains(line) && !self.copied.contains(line) {
                        self.lost_ok.push(line.clone());
                    }
                }
            }
        }
        self.reported_lost += self.core.stats().bytes_lost.load(Relaxed);
        self.core = TailCore::open(self.config.clone()).unwrap();
        self.stopped = false;
        // Only a process that has the file open can read it after it is deleted.
        self.seen_since_change = false;
    }

    /// A run that does not follow ends: everything read is committed; a last line without
    /// its newline is left to the next run.
    fn finish(&mut self) {
        if self.stopped {
            return;
        }
        self.pass(true);
        let (received, acks) = (&mut self.received, &mut self.acks);
        let mut send = |chunk: Chunk| {
            let lines = chunk
                .lines()
                .map(|l| String::from_utf8(l.to_vec()).unwrap());
            received.extend(lines);
            acks.push(chunk.ack);
            true
        };
        self.core.finish(&mut send).unwrap();
        self.stop(false);
        self.start();
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append {
                lines,
                pad,
                partial,
            } => self.append(lines, pad, partial),
            Op::FinishLine => self.finish_partial(),
            Op::RenameRotate => self.rename_rotate(),
            Op::Reopen => self.reopen(),
            Op::CopyTruncate => self.copy_truncate(),
            Op::Replace => self.replace(),
            Op::Delete => self.delete(),
            Op::Expire => self.expire(),
            Op::Pass { rescan } => self.pass(rescan),
            Op::Commit => self.commit(),
            Op::Wait if !self.stale_writer && !self.stopped => {
                // Time passes (rotated files are let go); only once the writer has reopened,
                // as a real writer does within the rotate wait.
                self.now += Duration::from_secs(10);
                self.pass(true);
            }
            Op::Wait => {}
            Op::Stop { crash } => self.stop(crash),
            Op::Start => self.start(),
            Op::Restart { crash } => {
                self.stop(crash);
                self.start();
            }
            Op::Finish => self.finish(),
        }
    }

    /// The writer finishes and reopens; the tailer catches up and lets every old file go.
    fn settle(&mut self) {
        self.start();
        self.reopen();
        for _ in 0..3 {
            self.pass(true);
            self.now += Duration::from_secs(10);
        }
        self.pass(true);
    }

    fn check(&self) {
        let expected: Vec<&String> = self
            .lines
            .iter()
            .map(|(l, _, _)| l)
            .filter(|l| !self.lost_ok.contains(l))
            .collect();
        let received: Vec<&String> = self.received.iter().collect();
        if received != expected {
            let first = received.iter().zip(&expected).position(|(a, b)| a != b);
            panic!(
                "received {} lines, expected {}; first difference at {first:?}\n\
                 received around it: {:?}\nexpected around it: {:?}",
                received.len(),
                expected.len(),
                first.map(|i| &received[i.saturating_sub(2)..(i + 3).min(received.len())]),
                first.map(|i| &expected[i.saturating_sub(2)..(i + 3).min(expected.len())]),
            );
        }
        // Never more reported lost than was lost (each line with its newline).
        let lost: u64 = self.lost_ok.iter().map(|l| l.len() as u64 + 1).sum();
        let reported = self.reported_lost + self.core.stats().bytes_lost.load(Relaxed);
        assert!(
            reported <= lost,
            "{reported} bytes reported lost, {lost} bytes were"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_line_once_in_order(
        compress in any::<bool>(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut world = World::new(compress);
        for op in &ops {
            world.apply(op);
        }
        world.settle();
        world.check();
        // A clean restart after everything is committed delivers nothing again.
        world.stop(false);
        world.start();
        let before = world.received.len();
        world.settle();
        let again = &world.received[before.min(world.received.len())..];
        prop_assert!(again.is_empty(), "a clean restart repeated {:?}; checkpoint {:#?}",
            again, world.core.checkpointer().entries());
        world.check();
    }
}
