//! The world a case runs in: a directory with the log and its rotations, the spool (on a small
//! tmpfs where the test may mount one), the archive (a directory or a real s3s-fs), the
//! service when it runs — and the truth: every complete line written, kept by the test.
//!
//! [`World::apply`] performs one [`Op`] and checks what can be checked at once (no archived
//! object changed; no process panicked, exited by itself or failed a run that must succeed);
//! [`World::finish`] stops everything, drains with `run --once=all` and compares the archive
//! with `maillog parse` of the truth.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use maillog_testkit::s3::S3Server;
use maillog_testkit::tmpfs::Tmpfs;

use super::check::{self, Snapshots};
use super::config::{Config, Inputs, LATENESS};
use super::lines::Zone;
use super::logs::{Logs, Written};
use super::mirror;
use super::ops::Op;
use super::proc::{Ended, Proc};

#[path = "edit.rs"]
mod edit;

/// The fixed year of year-less stamps when a case fixes it.
pub const YEAR: i32 = 2025;

/// After the first run there is a checkpoint: where the model looks for its slots.
const NO_SLOTS: &str = "no checkpoint slot (checkpoint*.json) anywhere under the spool or state/";

/// How long a due window may take to reach the archive while the service runs.
const PROMPT: Duration = Duration::from_secs(3);

/// What a case is, besides its operations.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub seed: u64,
    pub s3: bool,
    pub zone: Zone,
    /// `year = 2025` in the config and `--year 2025` for the truth; else both infer it.
    pub fixed_year: bool,
    /// The config names the log, the spool and a local archive relative to its directory.
    pub relative: bool,
    /// How the log is named: a path or a glob in the config, or `--input` on the command line.
    pub inputs: Inputs,
    /// The checkpoint in `state/` beside the spool (`state = …`), not in it: a wiped spool
    /// leaves it (`spool-wipe`).
    pub state_apart: bool,
}

/// The running case.
pub struct World {
    pub spec: Spec,
    service: Option<Proc>,
    s3: Option<S3Server>,
    tmpfs: Option<Tmpfs>,
    dir: tempfile::TempDir,
    config: Config,
    spool: PathBuf,
    logs: Logs,
    snapshots: Snapshots,
    /// False once the checkpoint was removed by hand: from then on only "nothing lost".
    exactly_once: bool,
    /// Every process's stderr, in order.
    stderr: String,
    /// Where `stderr` stood when lines were lost by a deletion maillog must report.
    loss_reported_after: Option<usize>,
    /// What happened, for a failure report.
    pub notes: Vec<String>,
    /// Since when the service runs undisturbed (no disk full, no S3 outage since).
    calm_since: Option<Instant>,
    /// Spools wiped with the checkpoint kept.
    wipes: usize,
    /// The checkpoint was removed by hand, and no slot has been seen since (a run may not
    /// have written one yet).
    checkpoint_removed: bool,
}

type Step = Result<(), String>;

impl World {
    /// A fresh world; `disk`: mount a tmpfs for the spool (`DiskFull` needs it).
    pub fn new(spec: Spec, disk: bool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let tmpfs = if disk {
            Tmpfs::mount(&d.join("vol"), "16m")
        } else {
            None
        };
        let spool = d.join("vol/spool");
        let s3 = spec.s3.then(|| S3Server::start(&d.join("s3"), "archive"));
        let (archive, s3_section) = match &s3 {
            Some(server) => ("s3://archive/logs".to_owned(), server.config_section()),
            None if spec.relative => ("file://archive".to_owned(), String::new()),
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
        // The checkpoint beside the spool, so that a wiped spool leaves it (the `year` line
        // carries it into the config's head).
        let year = if spec.state_apart {
            format!("{year}state = \"{}\"\n", d.join("state").display())
        } else {
            year
        };
        let lag = 20 + (spec.seed % 7) as i64 * 60;
        let logs = Logs::new(&d.join("logs"), spec.zone, spec.fixed_year, lag);
        let (input, spool_path) = if spec.relative {
            ("logs/mail.log".into(), "vol/spool".into())
        } else {
            (
                d.join("logs/mail.log").display().to_string(),
                spool.display().to_string(),
            )
        };
        let settings = [spool_path.as_str(), &archive, &year, &s3_section];
        let config = Config::new(d, &input, spec.inputs, spec.zone, settings);
        World {
            spec,
            service: None,
            s3,
            tmpfs,
            dir,
            config,
            spool,
            logs,
            snapshots: Snapshots::default(),
            exactly_once: true,
            stderr: String::new(),
            loss_reported_after: None,
            notes: Vec::new(),
            calm_since: None,
            wipes: 0,
            checkpoint_removed: false,
        }
    }

    /// maillog's first run, on the empty log: from here on every line written is expected in
    /// the archive (lines of files rotated away before maillog ever ran are not its business).
    pub fn install(&mut self) -> Step {
        self.notes
            .push("install: maillog run --once on the empty log".into());
        let proc = self.maillog(&["--once"], None);
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

    /// Performs `op`, then checks the archive.
    pub fn apply(&mut self, op: &Op) -> Step {
        let note = self.perform(op)?;
        self.notes.push(format!("{op}{note}"));
        match (op, self.service.is_some()) {
            (_, false) => self.calm_since = None,
            (Op::Start, true) if self.calm_since.is_none() => {
                self.calm_since = Some(Instant::now())
            }
            (Op::DiskFull | Op::S3Outage | Op::EditConfig(_), true) => {
                self.calm_since = Some(Instant::now())
            }
            _ => self.live_windows_archived()?,
        }
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
            self.logs.maybe_read();
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
                self.logs.append(lines, style, seed);
            }
            Op::HalfLine { seed } => {
                self.logs.half_line(seed);
            }
            Op::Rotate {
                copytruncate,
                compress,
            } => self.logs.rotate(copytruncate, compress),
            Op::ReplaceByCopy => self.logs.replace_by_copy(),
            Op::DeleteOldest => {
                return Ok(match self.logs.delete_oldest(self.service.is_some()) {
                    Err(why) => format!(" ({why})"),
                    Ok(0) => String::new(),
                    Ok(lost) => {
                        self.loss_reported_after.get_or_insert(self.stderr.len());
                        format!(" ({lost} unread lines lost: maillog must say so)")
                    }
                });
            }
            Op::RunOnce { all } => return self.run_once(all, None),
            Op::Start => {
                if self.service.is_none() {
                    let service = self.maillog(&[], None);
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
                let mut service = self.maillog(&[], Some(point.name()));
                let stopped = service.stopped_at_point(Duration::from_secs(3));
                if !stopped && service.exited() {
                    let ended = service.wait(Duration::from_secs(1)).unwrap_or_else(|e| e);
                    return Err(format!("the service exited by itself:\n{}", ended.tail(15)));
                }
                self.logs.maybe_read();
                let ended = service.kill();
                self.took(&ended)?;
                if !stopped {
                    return Ok(" (not reached in 3 s: killed anyway)".into());
                }
            }
            Op::DamageCheckpoint => return self.damage_checkpoint(),
            Op::RemoveCheckpoint => {
                self.stop()?;
                // Everything read first: lines of rotations never read are beyond what a
                // start without a checkpoint can find.
                let proc = self.maillog(&["--once"], None);
                self.finished_run(proc, "--once (before removing the checkpoint)")?;
                let slots = self.checkpoint_slots();
                if slots.is_empty() {
                    return Err(NO_SLOTS.into());
                }
                for slot in slots {
                    fs::remove_file(slot).unwrap();
                }
                self.checkpoint_removed = true;
                self.at_least_once();
            }
            Op::WipeSpool => return self.wipe_spool(),
            Op::DiskFull => return self.disk_full(),
            Op::S3Outage => return self.s3_outage(),
            Op::EditConfig(edit) => return self.edit_config(edit),
        }
        Ok(String::new())
    }

    /// While the service runs undisturbed, a record is in the archive [`PROMPT`] after its
    /// window is due and after it was written plus the lateness (a late part waits that long
    /// for more late records): whatever else came in (a line stamped 2099), sealing goes on.
    fn live_windows_archived(&self) -> Step {
        let Some(calm) = self.calm_since else {
            return Ok(());
        };
        let now = super::lines::now();
        let due: Vec<_> = self
            .logs
            .written
            .iter()
            .filter(|w| {
                w.at > calm && w.at.elapsed() > PROMPT + Duration::from_secs(LATENESS as u64)
            })
            .filter(|w| self.event_known(w))
            .filter(|w| {
                let end = w.event - w.event.rem_euclid(300) + 300;
                end + LATENESS + PROMPT.as_secs() as i64 <= now
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let mut archived = check::archived_qids(&self.archive_root());
        if due.iter().any(|w| !archived.contains(&w.qid)) {
            // An object being uploaded may not read whole yet: look once more.
            std::thread::sleep(Duration::from_secs(1));
            archived = check::archived_qids(&self.archive_root());
        }
        let missing: Vec<_> = due.iter().filter(|w| !archived.contains(&w.qid)).collect();
        match missing.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "the service runs, yet {} of {} records whose windows are due (end + lateness + \
                 {} s, and as long after they were written) are not archived, e.g. {} stamped {}",
                missing.len(),
                due.len(),
                PROMPT.as_secs(),
                first.qid,
                chrono::DateTime::from_timestamp(first.event, 0).unwrap()
            )),
        }
    }

    /// `maillog run FLAGS` on the config as it is now.
    fn maillog(&self, flags: &[&str], crash_at: Option<&str>) -> Proc {
        Proc::start(&self.config.invocation(), flags, crash_at)
    }

    /// Whether a record's event time is the one the test stamped: a year-less stamp is read in
    /// the config's zone, and an edit may have made it another than the writer's.
    fn event_known(&self, w: &Written) -> bool {
        !w.local || self.config.zones.iter().all(|z| *z == self.spec.zone)
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
        if self.service.is_none() {
            return Ok(());
        }
        self.live_windows_archived()?;
        let service = self.service.take().unwrap();
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
            let ended = self
                .maillog(&[flag], None)
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
        if all {
            self.logs.piece_taken_as_line();
        }
        let proc = self.maillog(&[flag], crash_at);
        if crash_at.is_some() && proc.stopped_at_point(Duration::from_secs(3)) {
            let ended = proc.kill();
            self.took(&ended)?;
            self.logs.maybe_read();
            return Ok(String::new());
        }
        self.finished_run(proc, flag)
    }

    /// Waits for a `run --once` that must succeed; then every line written is surely read.
    fn finished_run(&mut self, proc: Proc, flag: &str) -> Result<String, String> {
        let started = proc.started;
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
        self.logs.all_read();
        self.due_records_archived(started, flag.starts_with("--once=all"))?;
        Ok(String::new())
    }

    /// After a `run --once` every record written before it whose window was due when it
    /// started (`--once=all`: every record) is in the archive — not waiting in the spool for
    /// another run. Skipped while a compressed rotation may not be quiet yet.
    fn due_records_archived(&self, (unix, at): (i64, Instant), all: bool) -> Step {
        if self.logs.until_quiet() > Duration::ZERO {
            return Ok(());
        }
        let due: Vec<_> = self
            .logs
            .written
            .iter()
            .filter(|w| w.at < at && self.event_known(w))
            .filter(|w| all || w.event - w.event.rem_euclid(300) + 300 + LATENESS < unix)
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let archived = check::archived_qids(&self.archive_root());
        let missing: Vec<_> = due.iter().filter(|w| !archived.contains(&w.qid)).collect();
        match missing.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "after run {}, {} of {} records written before it {} are not archived, e.g. {} \
                 stamped {}",
                if all { "--once=all" } else { "--once" },
                missing.len(),
                due.len(),
                if all { "" } else { "in windows due then" },
                first.qid,
                chrono::DateTime::from_timestamp(first.event, 0).unwrap()
            )),
        }
    }

    fn checkpoint_slots(&self) -> Vec<PathBuf> {
        let mut files = check::objects(&self.spool);
        files.extend(check::objects(&self.dir.path().join("state")));
        files
            .into_values()
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("checkpoint") && name.ends_with(".json")
            })
            .collect()
    }

    /// [`Op::WipeSpool`].
    fn wipe_spool(&mut self) -> Result<String, String> {
        if !self.spec.state_apart {
            return Ok(" (the state is in the spool: skipped)".into());
        }
        self.stop()?;
        let proc = Proc::start(&self.config.invocation(), &["--once"], None);
        self.finished_run(proc, "--once (before wiping the spool)")?;
        fs::remove_dir_all(&self.spool).map_err(|e| format!("cannot wipe the spool: {e}"))?;
        self.wipes += 1;
        Ok(String::new())
    }

    /// Records maillog said it could not read again for a wiped spool (`RECORDS LOST …
    /// missing=N`). Only those: a window it could not even try to read again (`records=N`)
    /// must not happen here, and is a loss like any other.
    fn reported_lost(&self) -> usize {
        let count = |line: &str, field: &str| {
            let at = line.find(field)? + field.len();
            let digits: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<usize>().ok()
        };
        self.stderr
            .lines()
            .filter(|l| l.contains("RECORDS LOST"))
            .filter_map(|l| count(l, "missing="))
            .sum()
    }

    fn at_least_once(&mut self) {
        self.exactly_once = false;
        self.logs.forgotten();
    }

    fn damage_checkpoint(&mut self) -> Result<String, String> {
        if let Some(service) = self.service.take() {
            let _ = self.took(&service.kill());
        }
        let mut slots = self.checkpoint_slots();
        slots.sort_by_key(|p| fs::metadata(p).unwrap().modified().unwrap());
        let Some(newest) = slots.last() else {
            if self.checkpoint_removed {
                return Ok(" (no checkpoint since it was removed by hand: skipped)".into());
            }
            return Err(NO_SLOTS.into());
        };
        self.checkpoint_removed = false;
        if slots.len() < 2 {
            return Ok(" (the only slot: no previous generation to fall back to, skipped)".into());
        }
        let len = fs::metadata(newest).unwrap().len();
        fs::write(newest, vec![0u8; len as usize]).unwrap();
        self.logs.forgotten();
        Ok(String::new())
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
        let proc = self.maillog(&["--once"], None);
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
        let proc = Proc::start(&self.config.invocation(), &["--once"], None);
        std::thread::sleep(Duration::from_secs(2));
        server.resume();
        self.finished_run(proc, "--once (S3 down, then back)")
    }

    /// Stops the service, finishes a line left in pieces, drains with `run --once=all`, and
    /// compares the archive with the truth.
    pub fn finish(&mut self) -> Result<String, String> {
        self.stop()?;
        self.logs.finish_pending();
        // Rotations happen while maillog is down, and days pass: the drain comes after a
        // compressed rotation is done (a reader may wait for that).
        std::thread::sleep(self.logs.until_quiet());
        self.notes.push("final: maillog run --once=all".into());
        let proc = self.maillog(&["--once=all"], None);
        self.finished_run(proc, "--once=all (the final drain)")?;
        self.snapshots.look(&self.archive_root())?;
        if let Some(at) = self.loss_reported_after {
            // A log line about lost lines: not the summary's counters ("0 files lost"), not
            // a lost checkpoint's positions.
            let said = self.stderr[at..].lines().any(|l| {
                let l = l.to_lowercase();
                l.contains("lost") && !l.starts_with("maillog run:") && !l.contains("checkpoint")
            });
            if !said {
                return Err(
                    "a rotation with unread lines was deleted and no maillog run said that \
                     lines were lost"
                        .into(),
                );
            }
        }
        let root = self.archive_root();
        let archived = check::archived(&root)?;
        let expected = check::expected(
            self.dir.path(),
            &self.logs.truth,
            |line| self.logs.zones_of(line),
            self.config.zone,
            self.spec.fixed_year.then_some(YEAR),
            &archived,
        );
        check::one_window_per_object(&root, &self.config.zones)?;
        self.config
            .check_keys(check::window_objects(&root).keys())?;
        let (lost, extra, examples) = check::compare(&expected, &archived);
        let records: usize = expected.values().sum();
        let summary = format!(
            "{records} records expected, {lost} lost, {extra} extra, {} objects",
            self.snapshots.len()
        );
        // Records maillog said it lost (a wiped spool whose lines were rotated away and
        // deleted) may be missing: said precisely, never more.
        let reported = self.reported_lost();
        let read_again = self
            .stderr
            .matches("were read again from the log files")
            .count();
        let summary = format!(
            "{summary}; {} spool wipes, {read_again} windows read again, {reported} records said lost",
            self.wipes
        );
        if lost > reported || (extra > 0 && self.exactly_once) {
            return Err(format!("{summary}{examples}"));
        }
        let mirror = mirror::holds_the_archive(&self.config.invocation(), &self.stderr)?;
        Ok(format!("{summary}; {mirror}"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Processes first, then the tmpfs, then the directory (field order does the rest).
        self.service.take();
        self.tmpfs.take();
    }
}
