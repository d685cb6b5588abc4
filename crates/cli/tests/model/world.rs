//! The world a case runs in: a directory with the log and its rotations, the spool (on a small
//! tmpfs where the test may mount one), the archive (a directory or a real s3s-fs), the
//! service when it runs — and the truth: every complete line written, kept by the test.
//!
//! [`World::apply`] performs one [`Op`] and checks what can be checked at once (no archived
//! object changed; no process panicked, exited by itself or failed a run that must succeed);
//! [`World::finish`] stops everything, drains with `run --once=all` and compares the archive
//! with `maillog parse` of the truth.

use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use maillog_testkit::s3::S3Server;
use maillog_testkit::tmpfs::Tmpfs;

use super::check::{self, Snapshots};
use super::lines::{self, Zone};
use super::ops::{Op, Style};
use super::proc::{Ended, Proc};
use super::rng::Rng;

/// The fixed year of year-less stamps when a case fixes it.
pub const YEAR: i32 = 2025;

/// What a case is, besides its operations.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub seed: u64,
    pub s3: bool,
    pub zone: Zone,
    /// `year = 2025` in the config and `--year 2025` for the truth; else both infer it.
    pub fixed_year: bool,
}

/// One content the test wrote: `mail.log` (index 0) or a rotation of it.
#[derive(Default, Clone)]
struct LogFile {
    /// Its complete lines.
    lines: Vec<String>,
    /// A line written in two pieces: what is in the file, and the rest to come.
    pending: Option<(String, String)>,
    gz: bool,
    /// Lines surely read (a `run --once` finished after they were written) …
    read: usize,
    /// … and lines a process may have read.
    maybe_read: usize,
    /// Whether a finished run saw this content (so maillog can tell when it is gone).
    seen: bool,
}

/// The running case.
pub struct World {
    pub spec: Spec,
    service: Option<Proc>,
    s3: Option<S3Server>,
    tmpfs: Option<Tmpfs>,
    dir: tempfile::TempDir,
    config: PathBuf,
    spool: PathBuf,
    files: Vec<LogFile>,
    truth: Vec<String>,
    next_line: u64,
    snapshots: Snapshots,
    /// False once the checkpoint was removed by hand: from then on only "nothing lost".
    exactly_once: bool,
    /// Every process's stderr, in order.
    stderr: String,
    /// Where `stderr` stood when lines were lost by a deletion maillog must report.
    loss_reported_after: Option<usize>,
    /// What happened, for a failure report.
    pub notes: Vec<String>,
}

type Step = Result<(), String>;

impl World {
    /// A fresh world; `disk`: mount a tmpfs for the spool (`DiskFull` needs it).
    pub fn new(spec: Spec, disk: bool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("logs")).unwrap();
        File::create(d.join("logs/mail.log")).unwrap();
        let tmpfs = if disk {
            Tmpfs::mount(&d.join("vol"), "16m")
        } else {
            None
        };
        let spool = d.join("vol/spool");
        let s3 = spec.s3.then(|| S3Server::start(&d.join("s3"), "archive"));
        let (archive, s3_section) = match &s3 {
            Some(server) => ("s3://archive/logs".to_owned(), server.config_section()),
            None => (
                format!("file://{}", d.join("archive").display()),
                String::new(),
            ),
        };
        let year = if spec.fixed_year {
            format!("year = {YEAR}\n")
        } else {
            String::new()
        };
        let config = d.join("pipeline.toml");
        fs::write(
            &config,
            format!(
                "inputs = [\"{}\"]\nspool = \"{}\"\narchive = \"{archive}\"\n\
                 time_zone = \"{}\"\n{year}\
                 [tail]\npoll_interval_ms = 50\n\
                 [window]\nlateness_seconds = 10\ncommit_seconds = 0.1\n\
                 [bzip2]\nlevel = 1\n\
                 [upload]\nretry_first_seconds = 0.1\nretry_max_seconds = 1\n\
                 [service]\nshutdown_seconds = 3\n{s3_section}",
                d.join("logs/mail.log").display(),
                spool.display(),
                spec.zone.name(),
            ),
        )
        .unwrap();
        World {
            spec,
            service: None,
            s3,
            tmpfs,
            dir,
            config,
            spool,
            files: vec![LogFile::default()],
            truth: Vec::new(),
            next_line: 1,
            snapshots: Snapshots::default(),
            exactly_once: true,
            stderr: String::new(),
            loss_reported_after: None,
            notes: Vec::new(),
        }
    }

    /// maillog's first run, on the empty log: from here on every line written is expected in
    /// the archive (lines of files rotated away before maillog ever ran are not its business).
    pub fn install(&mut self) -> Step {
        self.notes
            .push("install: maillog run --once on the empty log".into());
        let proc = Proc::start(&self.config, &["--once"], None);
        self.finished_run(proc, "--once (the first run)").map(drop)
    }

    /// Whether the spool is on a tmpfs of the test's own.
    pub fn has_disk(&self) -> bool {
        self.tmpfs.is_some()
    }

    fn archive_root(&self) -> PathBuf {
        match &self.s3 {
            Some(server) => server.data.join("archive/logs"),
            None => self.dir.path().join("archive"),
        }
    }

    fn path(&self, index: usize) -> PathBuf {
        let logs = self.dir.path().join("logs");
        match index {
            0 => logs.join("mail.log"),
            n if self.files[n].gz => logs.join(format!("mail.log.{n}.gz")),
            n => logs.join(format!("mail.log.{n}")),
        }
    }

    fn write(&self, text: &str) {
        let mut file = File::options().append(true).open(self.path(0)).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// Writes the rest of a line left in two pieces: it is a line from now on.
    fn finish_pending(&mut self) {
        if let Some((written, rest)) = self.files[0].pending.take() {
            self.write(&format!("{rest}\n"));
            let line = format!("{written}{rest}");
            self.files[0].lines.push(line.clone());
            self.truth.push(line);
        }
    }

    fn stamp(&self, style: Style, rng: &mut Rng, base: i64, i: i64) -> String {
        let zone = self.spec.zone;
        let now = lines::now();
        match style {
            Style::InOrder => lines::iso(zone, (base + i * rng.between(0, 3)).min(now)),
            Style::Skewed => lines::iso(zone, (base + i + rng.between(-60, 60)).min(now)),
            Style::FarFuture => lines::iso(zone, 4_084_430_400 + rng.between(0, 86_400)),
            Style::FarPast => lines::iso(zone, 1_582_977_600 + rng.between(0, 86_400)),
            Style::FallBack => {
                let at = zone.fall_back_2025() - 3600 + rng.between(0, 7199);
                lines::iso(zone, at)
            }
            Style::BsdRecent => lines::bsd(zone, (base + i).min(now)),
            Style::NewYear => {
                // Year-less stamps a few minutes either side of midnight on New Year's Eve.
                // With an inferred year this is well defined unless today is within a day of
                // New Year; then the stamps are ISO ones of 2020 instead.
                let day = chrono::Utc::now().format("%m-%d").to_string();
                let near = day.as_str() >= "12-30" || day.as_str() <= "01-02";
                if !self.spec.fixed_year && near {
                    return lines::iso(zone, 1_582_977_600 + rng.between(0, 600));
                }
                let seconds = rng.between(0, 1199);
                if seconds < 600 {
                    format!("Dec 31 23:{:02}:{:02}", 50 + seconds / 60, seconds % 60)
                } else {
                    let s = seconds - 600;
                    format!("Jan  1 00:{:02}:{:02}", s / 60, s % 60)
                }
            }
        }
    }

    fn new_lines(&mut self, count: u8, style: Style, seed: u64) -> Vec<String> {
        let mut rng = Rng::new(seed);
        let base = lines::now() - rng.between(20, 420);
        (0..i64::from(count))
            .map(|i| {
                let stamp = self.stamp(style, &mut rng, base, i);
                self.next_line += 1;
                lines::line(&mut rng, &stamp, self.next_line)
            })
            .collect()
    }

    /// Performs `op`, then checks the archive.
    pub fn apply(&mut self, op: &Op) -> Step {
        let note = self.perform(op)?;
        self.notes.push(format!("{op}{note}"));
        if let Some(service) = &mut self.service {
            if service.exited() {
                let ended = self.service.take().unwrap().wait(Duration::from_secs(1));
                let ended = ended.unwrap_or_else(|e| e);
                return Err(format!(
                    "the service exited by itself (code {:?}):\n{}",
                    ended.code,
                    ended.tail(15)
                ));
            }
            for file in &mut self.files {
                file.maybe_read = file.lines.len();
            }
        }
        // An object the service is uploading to s3s-fs may be half written: look between runs.
        if self.service.is_none() || self.s3.is_none() {
            self.snapshots.look(&self.archive_root())?;
        }
        Ok(())
    }

    fn perform(&mut self, op: &Op) -> Result<String, String> {
        match *op {
            Op::Append { lines, style, seed } => {
                self.finish_pending();
                let new = self.new_lines(lines, style, seed);
                self.write(&new.iter().map(|l| format!("{l}\n")).collect::<String>());
                self.files[0].lines.extend(new.iter().cloned());
                self.truth.extend(new);
            }
            Op::HalfLine { seed } => {
                self.finish_pending();
                let line = self.new_lines(1, Style::InOrder, seed).remove(0);
                let cut = 10 + Rng::new(seed).below(line.len() as u64 - 15) as usize;
                self.write(&line[..cut]);
                self.files[0].pending = Some((line[..cut].to_owned(), line[cut..].to_owned()));
            }
            Op::Rotate {
                copytruncate,
                compress,
            } => self.rotate(copytruncate, compress),
            Op::DeleteOldest => return Ok(self.delete_oldest()),
            Op::RunOnce { all } => return self.run_once(all, None),
            Op::Start => {
                if self.service.is_none() {
                    let service = Proc::start(&self.config, &[], None);
                    service.wait_started(Duration::from_secs(5));
                    self.service = Some(service);
                }
            }
            Op::Wait { ms } => std::thread::sleep(Duration::from_millis(ms)),
            Op::Stop => self.stop()?,
            Op::Kill { after_ms } => {
                if let Some(service) = self.service.take() {
                    std::thread::sleep(Duration::from_millis(after_ms));
                    let ended = service.kill();
                    self.took(&ended)?;
                }
            }
            Op::CrashAt { point, once } => {
                if let Some(service) = self.service.take() {
                    let ended = service.kill();
                    self.took(&ended)?;
                }
                if once {
                    return self.run_once(false, Some(point.name()));
                }
                let mut service = Proc::start(&self.config, &[], Some(point.name()));
                let stopped = service.stopped_at_point(Duration::from_secs(3));
                if !stopped && service.exited() {
                    let ended = service.wait(Duration::from_secs(1)).unwrap_or_else(|e| e);
                    return Err(format!("the service exited by itself:\n{}", ended.tail(15)));
                }
                for file in &mut self.files {
                    file.maybe_read = file.lines.len();
                }
                let ended = service.kill();
                self.took(&ended)?;
                if !stopped {
                    return Ok(" (not reached in 3 s: killed anyway)".into());
                }
            }
            Op::DamageCheckpoint => return Ok(self.damage_checkpoint()),
            Op::RemoveCheckpoint => {
                self.stop()?;
                // Everything read first: lines of rotations never read are beyond what a
                // start without a checkpoint can find.
                let proc = Proc::start(&self.config, &["--once"], None);
                self.finished_run(proc, "--once (before removing the checkpoint)")?;
                for slot in self.checkpoint_slots() {
                    fs::remove_file(slot).unwrap();
                }
                self.at_least_once();
            }
            Op::DiskFull => return self.disk_full(),
            Op::S3Outage => return self.s3_outage(),
        }
        Ok(String::new())
    }

    /// Keeps a finished process's stderr; a panic is a failure wherever it happens.
    fn took(&mut self, ended: &Ended) -> Step {
        self.stderr.push_str(&ended.stderr);
        if ended.stderr.contains("panicked") {
            return Err(format!("maillog panicked:\n{}", ended.tail(20)));
        }
        Ok(())
    }

    fn stop(&mut self) -> Step {
        let Some(service) = self.service.take() else {
            return Ok(());
        };
        service.terminate();
        let ended = service.wait(Duration::from_secs(30));
        let hung = ended.is_err();
        let ended = ended.unwrap_or_else(|e| e);
        self.took(&ended)?;
        if hung || ended.code != Some(0) {
            return Err(format!(
                "SIGTERM: the service {} (code {:?}):\n{}",
                if hung {
                    "did not stop in 30 s"
                } else {
                    "failed"
                },
                ended.code,
                ended.tail(15)
            ));
        }
        Ok(())
    }

    /// A `run --once` that must succeed, or be refused while the service holds the spool.
    fn run_once(&mut self, all: bool, crash_at: Option<&str>) -> Result<String, String> {
        let flag = if all { "--once=all" } else { "--once" };
        if self.service.is_some() {
            let ended = Proc::start(&self.config, &[flag], None)
                .wait(Duration::from_secs(30))
                .map_err(|e| format!("{flag} beside the service hung:\n{}", e.tail(10)))?;
            self.took(&ended)?;
            if ended.code == Some(0) || !ended.stderr.contains("another maillog") {
                return Err(format!(
                    "{flag} beside the service was not refused by the lock:\n{}",
                    ended.tail(10)
                ));
            }
            return Ok(" (refused: the service holds the spool)".into());
        }
        if all && let Some((written, _)) = self.files[0].pending.as_mut() {
            // A backfill takes an unterminated last line as a line; the rest, when it comes,
            // is a line of its own.
            let piece = std::mem::take(written);
            self.files[0].lines.push(piece.clone());
            self.truth.push(piece);
        }
        let proc = Proc::start(&self.config, &[flag], crash_at);
        if crash_at.is_some() && proc.stopped_at_point(Duration::from_secs(3)) {
            let ended = proc.kill();
            self.took(&ended)?;
            for file in &mut self.files {
                file.maybe_read = file.lines.len();
            }
            return Ok(String::new());
        }
        self.finished_run(proc, flag)
    }

    /// Waits for a `run --once` that must succeed; then every line written is surely read.
    fn finished_run(&mut self, proc: Proc, flag: &str) -> Result<String, String> {
        let ended = proc.wait(Duration::from_secs(120));
        let hung = ended.is_err();
        let ended = ended.unwrap_or_else(|e| e);
        self.took(&ended)?;
        if hung || ended.code != Some(0) {
            return Err(format!(
                "run {flag} {} (code {:?}):\n{}",
                if hung {
                    "did not finish in 120 s"
                } else {
                    "failed"
                },
                ended.code,
                ended.tail(15)
            ));
        }
        for file in &mut self.files {
            file.read = file.lines.len();
            file.maybe_read = file.lines.len();
            file.seen = true;
        }
        Ok(String::new())
    }

    fn rotate(&mut self, copytruncate: bool, compress: bool) {
        self.finish_pending();
        for i in (1..self.files.len()).rev() {
            let from = self.path(i);
            let to = from
                .to_string_lossy()
                .replace(&format!("mail.log.{i}"), &format!("mail.log.{}", i + 1));
            fs::rename(&from, &to).unwrap();
        }
        let logs = self.dir.path().join("logs");
        if copytruncate {
            fs::copy(self.path(0), logs.join("mail.log.1")).unwrap();
            File::options()
                .write(true)
                .open(self.path(0))
                .unwrap()
                .set_len(0)
                .unwrap();
            let copy = self.files[0].clone();
            self.files[0] = LogFile::default();
            self.files.insert(1, copy);
        } else {
            fs::rename(self.path(0), logs.join("mail.log.1")).unwrap();
            File::create(self.path(0)).unwrap();
            self.files.insert(0, LogFile::default());
        }
        // delaycompress: the rotation that just became .2 is compressed now, as gzip does it.
        if compress && self.files.len() > 2 && !self.files[2].gz {
            let plain = logs.join("mail.log.2");
            let mut gz = flate2::write::GzEncoder::new(
                File::create(logs.join("mail.log.2.gz")).unwrap(),
                flate2::Compression::default(),
            );
            gz.write_all(&fs::read(&plain).unwrap()).unwrap();
            gz.finish().unwrap();
            fs::remove_file(plain).unwrap();
            self.files[2].gz = true;
        }
    }

    /// Deletes the oldest rotation. Lines of it that maillog never read are lost — allowed
    /// only where the model knows exactly which (no process ran since a finished run saw the
    /// file, and none runs now); maillog must then say so.
    fn delete_oldest(&mut self) -> String {
        if self.files.len() < 2 {
            return " (no rotation)".into();
        }
        let last = self.files.len() - 1;
        let file = &self.files[last];
        let unread = file.lines.len() - file.read;
        if unread > 0 && (self.service.is_some() || !file.seen || file.read != file.maybe_read) {
            return " (skipped: what maillog read of it is not known)".into();
        }
        fs::remove_file(self.path(last)).unwrap();
        let file = self.files.pop().unwrap();
        if unread == 0 {
            return String::new();
        }
        for line in &file.lines[file.read..] {
            let at = self.truth.iter().position(|l| l == line).unwrap();
            self.truth.swap_remove(at);
        }
        self.loss_reported_after.get_or_insert(self.stderr.len());
        format!(" ({unread} unread lines lost: maillog must say so)")
    }

    fn checkpoint_slots(&self) -> Vec<PathBuf> {
        check::objects(&self.spool)
            .into_values()
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("checkpoint") && name.ends_with(".json")
            })
            .collect()
    }

    fn at_least_once(&mut self) {
        self.exactly_once = false;
        for file in &mut self.files {
            file.seen = false;
        }
    }

    fn damage_checkpoint(&mut self) -> String {
        if let Some(service) = self.service.take() {
            let _ = self.took(&service.kill());
        }
        let mut slots = self.checkpoint_slots();
        slots.sort_by_key(|p| fs::metadata(p).unwrap().modified().unwrap());
        let Some(newest) = slots.last() else {
            return " (no checkpoint yet)".into();
        };
        if slots.len() < 2 {
            return " (the only slot: no previous generation to fall back to, skipped)".into();
        }
        let len = fs::metadata(newest).unwrap().len();
        fs::write(newest, vec![0u8; len as usize]).unwrap();
        for file in &mut self.files {
            file.seen = false;
        }
        String::new()
    }

    fn disk_full(&mut self) -> Result<String, String> {
        let Some(disk) = &self.tmpfs else {
            return Ok(" (no tmpfs: skipped)".into());
        };
        if self.service.is_some() {
            disk.fill();
            std::thread::sleep(Duration::from_millis(1500));
            disk.free();
            return Ok(String::new());
        }
        // Room for the lock file, not for the work.
        disk.fill_leaving(8192);
        let proc = Proc::start(&self.config, &["--once"], None);
        std::thread::sleep(Duration::from_millis(1500));
        disk.free();
        self.finished_run(proc, "--once (disk full, then freed)")
    }

    fn s3_outage(&mut self) -> Result<String, String> {
        let Some(server) = &mut self.s3 else {
            return Ok(" (local archive: skipped)".into());
        };
        server.stop();
        if self.service.is_some() {
            std::thread::sleep(Duration::from_secs(2));
            server.resume();
            return Ok(String::new());
        }
        let proc = Proc::start(&self.config, &["--once"], None);
        std::thread::sleep(Duration::from_secs(2));
        server.resume();
        self.finished_run(proc, "--once (S3 down, then back)")
    }

    /// Stops the service, finishes a line left in pieces, drains with `run --once=all`, and
    /// compares the archive with the truth.
    pub fn finish(&mut self) -> Result<String, String> {
        self.stop()?;
        self.finish_pending();
        self.notes.push("final: maillog run --once=all".into());
        let proc = Proc::start(&self.config, &["--once=all"], None);
        self.finished_run(proc, "--once=all (the final drain)")?;
        self.snapshots.look(&self.archive_root())?;
        if let Some(at) = self.loss_reported_after {
            let said = self.stderr[at..].lines().any(|l| {
                let l = l.to_lowercase();
                (l.contains("lost") || l.contains("gone")) && l.contains("bytes")
            });
            if !said {
                return Err(
                    "a rotation with unread lines was deleted and no maillog run said that \
                     bytes were lost"
                        .into(),
                );
            }
        }
        let truth = self.dir.path().join("truth.log");
        let text: String = self.truth.iter().map(|l| format!("{l}\n")).collect();
        fs::write(&truth, text).unwrap();
        let year = self.spec.fixed_year.then_some(YEAR);
        let expected = check::parsed(&truth, self.spec.zone.name(), year);
        let archived = check::archived(&self.archive_root())?;
        let (lost, extra, examples) = check::compare(&expected, &archived);
        let records: usize = expected.values().sum();
        let summary = format!(
            "{records} records expected, {lost} lost, {extra} extra, {} objects",
            self.snapshots.len()
        );
        if lost > 0 || (extra > 0 && self.exactly_once) {
            return Err(format!("{summary}{examples}"));
        }
        Ok(summary)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Processes first, then the tmpfs, then the directory (field order does the rest).
        self.service.take();
        self.tmpfs.take();
    }
}
