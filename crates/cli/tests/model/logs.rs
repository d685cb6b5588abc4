//! The log files the test writes — `mail.log` and its rotations — and the truth: every
//! complete line written, minus those a deletion took before maillog read them. Rotations are
//! done as logrotate does them (rename + create, copytruncate, `delaycompress` + `compress`,
//! `rotate N`), with the writer (the test) finishing a line before a rotation, as syslog-ng
//! does before it reopens.
//!
//! Year-less stamps are read in the `time_zone` of the config, which an edit may change between
//! runs: each line remembers every zone in force while a process may have read it, up to the
//! first finished run after it was written (a power loss may roll that back: then it may be
//! read once more).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::lines::{self, Zone};
use super::ops::Style;
use super::rng::Rng;

/// One content the test wrote: `mail.log` (index 0) or a rotation of it.
#[derive(Default, Clone)]
pub struct LogFile {
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
    /// Lines whose zones are known: a finished run read them, and no power loss came since.
    settled: usize,
    /// When gzip wrote it: a compressed file may still be being written for a while, and a
    /// reader may wait until it is quiet.
    compressed_at: Option<Instant>,
}

/// How long after gzip wrote it a compressed rotation is surely quiet (the tailer waits 5 s
/// before it trusts a compressed file nothing has read).
pub const QUIET: Duration = Duration::from_secs(6);

/// A record line written, for the check that live windows reach the archive in time.
pub struct Written {
    /// Its queue id.
    pub qid: String,
    /// Its event time (unix seconds; year-less New Year stamps: long past, 0).
    pub event: i64,
    /// When it was written.
    pub at: Instant,
    /// Its stamp has no year and no offset: `event` is right only in the writer's zone.
    pub local: bool,
}

/// The log directory and what the test knows about it.
pub struct Logs {
    dir: PathBuf,
    /// How far behind the wall clock "normal" lines are stamped in this case (so that the
    /// appends of a case share windows, and some of them are due and some not).
    lag: i64,
    zone: Zone,
    fixed_year: bool,
    /// `mail.log` (index 0), then `mail.log.1`, `mail.log.2(.gz)`, ….
    pub files: Vec<LogFile>,
    /// Every complete line written that maillog must archive.
    pub truth: Vec<String>,
    /// The `time_zone` of the config now.
    pub reading: Zone,
    /// For each line a process may have read, every zone it may have been read in.
    read_in: HashMap<String, Vec<Zone>>,
    /// The record lines written, in order.
    pub written: Vec<Written>,
    next_line: u64,
}

impl Logs {
    /// An empty `mail.log` in `dir`.
    pub fn new(dir: &Path, zone: Zone, fixed_year: bool, lag: i64) -> Logs {
        fs::create_dir_all(dir).unwrap();
        File::create(dir.join("mail.log")).unwrap();
        Logs {
            dir: dir.to_owned(),
            lag,
            zone,
            fixed_year,
            files: vec![LogFile::default()],
            truth: Vec::new(),
            reading: zone,
            read_in: HashMap::new(),
            written: Vec::new(),
            next_line: 1,
        }
    }

    /// Every file's lines so far count as read (a `run --once` finished).
    /// (A compressed rotation written less than [`QUIET`] ago may be left for a later run.)
    pub fn all_read(&mut self) {
        for file in &mut self.files {
            if file.compressed_at.is_some_and(|at| at.elapsed() < QUIET) {
                continue;
            }
            file.read = file.lines.len();
            file.maybe_read = file.lines.len();
            for line in &file.lines[file.settled..] {
                note(&mut self.read_in, line, self.reading);
            }
            file.settled = file.lines.len();
            // A file maillog saw only empty is not remembered (nothing to resume, and its
            // inode may be another file's by the next look): it cannot tell its loss.
            file.seen |= !file.lines.is_empty();
        }
    }

    /// A process may have read every line so far.
    pub fn maybe_read(&mut self) {
        for file in &mut self.files {
            file.maybe_read = file.lines.len();
            for line in &file.lines[file.settled..] {
                note(&mut self.read_in, line, self.reading);
            }
        }
    }

    /// Every zone `line` may have been read in (none: not read yet).
    pub fn zones_of(&self, line: &str) -> &[Zone] {
        self.read_in.get(line).map_or(&[], Vec::as_slice)
    }

    /// maillog may not know any file any more (its checkpoint is gone or damaged).
    pub fn forgotten(&mut self) {
        for file in &mut self.files {
            file.seen = false;
            file.settled = 0;
        }
    }

    /// Appends `count` whole lines stamped in `style`.
    pub fn append(&mut self, count: u8, style: Style, seed: u64) {
        self.finish_pending();
        let new = self.new_lines(count, style, seed);
        self.write(
            &new.iter()
                .map(|(l, _)| format!("{l}\n"))
                .collect::<String>(),
        );
        let at = Instant::now();
        for (line, event) in new {
            if line.contains(": from=") || line.contains(": to=") {
                let qid = line.split("]: ").nth(1).unwrap().split(':').next().unwrap();
                self.written.push(Written {
                    qid: qid.to_owned(),
                    event,
                    at,
                    local: style == Style::BsdRecent,
                });
            }
            self.files[0].lines.push(line.clone());
            self.truth.push(line);
        }
    }

    /// Writes the first piece of a line; the rest comes with the next write.
    pub fn half_line(&mut self, seed: u64) {
        self.finish_pending();
        let (line, _) = self.new_lines(1, Style::InOrder, seed).remove(0);
        let cut = 10 + Rng::new(seed).below(line.len() as u64 - 15) as usize;
        self.write(&line[..cut]);
        self.files[0].pending = Some((line[..cut].to_owned(), line[cut..].to_owned()));
    }

    /// A backfill takes an unterminated last line as a line; the rest, when it comes, is a
    /// line of its own.
    pub fn piece_taken_as_line(&mut self) {
        if let Some((written, _)) = self.files[0].pending.as_mut() {
            let piece = std::mem::take(written);
            self.files[0].lines.push(piece.clone());
            self.truth.push(piece);
        }
    }

    /// How long until every compressed rotation is [`QUIET`].
    pub fn until_quiet(&self) -> Duration {
        self.files
            .iter()
            .filter_map(|f| f.compressed_at)
            .map(|at| QUIET.saturating_sub(at.elapsed()))
            .max()
            .unwrap_or_default()
    }

    /// `mail.log` replaced by a copy of itself: same content, new inode.
    pub fn replace_by_copy(&mut self) {
        self.finish_pending();
        let copy = self.dir.join("mail.log.copy");
        fs::copy(self.path(0), &copy).unwrap();
        fs::rename(&copy, self.path(0)).unwrap();
    }

    /// The path of file `index`.
    pub fn path(&self, index: usize) -> PathBuf {
        let logs = &self.dir;
        match index {
            0 => logs.join("mail.log"),
            n if self.files[n].gz => logs.join(format!("mail.log.{n}.gz")),
            n => logs.join(format!("mail.log.{n}")),
        }
    }

    /// Appends `text` to `mail.log`.
    fn write(&self, text: &str) {
        let mut file = File::options().append(true).open(self.path(0)).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    /// Writes the rest of a line left in two pieces: it is a line from now on.
    pub fn finish_pending(&mut self) {
        if let Some((written, rest)) = self.files[0].pending.take() {
            self.write(&format!("{rest}\n"));
            let line = format!("{written}{rest}");
            self.files[0].lines.push(line.clone());
            self.truth.push(line);
        }
    }

    /// The stamp of line `i` of an append in `style`, and its event time.
    fn stamp(&self, style: Style, rng: &mut Rng, base: i64, i: i64) -> (String, i64) {
        let zone = self.zone;
        let now = lines::now();
        let iso = |at: i64| (lines::iso(zone, at), at);
        match style {
            Style::InOrder | Style::Long => iso((base + i * rng.between(0, 3)).min(now)),
            Style::Skewed => iso((base + i + rng.between(-60, 60)).min(now)),
            Style::FarFuture => iso(4_084_430_400 + rng.between(0, 86_400)),
            Style::FarPast => iso(1_582_977_600 + rng.between(0, 86_400)),
            Style::FallBack => iso(zone.fall_back_2025() - 3600 + rng.between(0, 7199)),
            Style::BsdRecent => {
                let at = (base + i).min(now);
                (lines::bsd(zone, at), if self.fixed_year { 0 } else { at })
            }
            Style::NewYear => {
                // Year-less stamps a few minutes either side of midnight on New Year's Eve.
                // With an inferred year this is well defined unless today is within a day of
                // New Year; then the stamps are ISO ones of 2020 instead.
                let day = chrono::Utc::now().format("%m-%d").to_string();
                let near = day.as_str() >= "12-30" || day.as_str() <= "01-02";
                if !self.fixed_year && near {
                    return iso(1_582_977_600 + rng.between(0, 600));
                }
                let seconds = rng.between(0, 1199);
                let stamp = if seconds < 600 {
                    format!("Dec 31 23:{:02}:{:02}", 50 + seconds / 60, seconds % 60)
                } else {
                    let s = seconds - 600;
                    format!("Jan  1 00:{:02}:{:02}", s / 60, s % 60)
                };
                (stamp, 0)
            }
        }
    }

    fn new_lines(&mut self, count: u8, style: Style, seed: u64) -> Vec<(String, i64)> {
        let mut rng = Rng::new(seed);
        let base = lines::now() - self.lag - rng.between(0, 30);
        (0..i64::from(count))
            .map(|i| {
                let (stamp, event) = self.stamp(style, &mut rng, base, i);
                self.next_line += 1;
                let n = self.next_line;
                if style == Style::Long && rng.chance(50) {
                    let len = [65_535, 65_536, 65_537, 1 << 20][rng.below(4) as usize];
                    return (lines::long_line(&stamp, n, len), event);
                }
                (lines::line(&mut rng, &stamp, n), event)
            })
            .collect()
    }

    pub fn rotate(&mut self, copytruncate: bool, compress: bool) {
        self.finish_pending();
        for i in (1..self.files.len()).rev() {
            let from = self.path(i);
            let to = from
                .to_string_lossy()
                .replace(&format!("mail.log.{i}"), &format!("mail.log.{}", i + 1));
            fs::rename(&from, &to).unwrap();
        }
        let logs = self.dir.clone();
        if copytruncate {
            fs::copy(self.path(0), logs.join("mail.log.1")).unwrap();
            File::options()
                .write(true)
                .open(self.path(0))
                .unwrap()
                .set_len(0)
                .unwrap();
            // The copy is a file maillog never saw: it finds the unread rest there by content,
            // but cannot know how much a deletion of it would take.
            let copy = LogFile {
                seen: false,
                ..self.files[0].clone()
            };
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
            self.files[2].compressed_at = Some(Instant::now());
        }
    }

    /// Deletes the oldest rotation; `Ok` with the number of lines lost. Lines of it that
    /// maillog never read are lost — allowed only where the model knows exactly which (no
    /// process ran since a finished run saw the file, and none runs now: `service_runs` false);
    /// `Err` says why the deletion was skipped.
    pub fn delete_oldest(&mut self, service_runs: bool) -> Result<usize, String> {
        if self.files.len() < 2 {
            return Err("no rotation".into());
        }
        let last = self.files.len() - 1;
        let file = &self.files[last];
        let unread = file.lines.len() - file.read;
        if unread > 0 && (service_runs || !file.seen || file.read != file.maybe_read) {
            return Err("skipped: what maillog read of it is not known".into());
        }
        fs::remove_file(self.path(last)).unwrap();
        let file = self.files.pop().unwrap();
        for line in &file.lines[file.read..] {
            let at = self.truth.iter().position(|l| l == line).unwrap();
            self.truth.swap_remove(at);
            self.written
                .retain(|w| !line.contains(&format!("]: {}: ", w.qid)));
        }
        Ok(unread)
    }
}

/// `line` may have been read in `zone`.
fn note(read_in: &mut HashMap<String, Vec<Zone>>, line: &str, zone: Zone) {
    let zones = read_in.entry(line.to_owned()).or_default();
    if !zones.contains(&zone) {
        zones.push(zone);
    }
}
