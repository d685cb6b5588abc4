//! Exactly once in ordinary operations, one situation per test, each done as an operator
//! would with the real `maillog` binary, ISO-stamped lines and a local archive (and once with
//! a real S3-compatible server): the five ways issue 13 found to lose or corrupt records while
//! every crash test passed.
//!
//! - a job that runs `maillog run --once` every few minutes keeps what it archived and puts
//!   a record for an archived window into a further part;
//! - maillog down across three daily rotations with `delaycompress` + `compress`: every
//!   rotated file is read;
//! - a line cut by the writer's buffer is read whole when its newline comes, and a backfill
//!   (`--once=all`) of a finished file without a final newline takes its last line;
//! - one line stamped 2099 does not stop live windows from reaching the archive;
//! - the hour that repeats when clocks fall back gets window names of its own (Berlin, New
//!   York).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{ACCESS_KEY, S3Server, SECRET_KEY};

/// A case's directory: `mail.log`, `pipeline.toml` (absolute paths), `spool/`, `archive/`.
struct Case {
    dir: tempfile::TempDir,
    server: Option<S3Server>,
}

impl Case {
    /// A config with `extra` appended (keys of the top level first, then sections).
    fn new(top: &str, sections: &str) -> Case {
        Case::with_archive(top, sections, false)
    }

    fn with_archive(top: &str, sections: &str, s3: bool) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        File::create(d.join("mail.log")).unwrap();
        let server = s3.then(|| S3Server::start(&d.join("s3"), "archive"));
        let (archive, s3_section) = match &server {
            Some(server) => ("s3://archive/logs".to_owned(), server.config_section()),
            None => (
                format!("file://{}", d.join("archive").display()),
                String::new(),
            ),
        };
        fs::write(
            d.join("pipeline.toml"),
            format!(
                "inputs = [\"{}\"]\nspool = \"{}\"\narchive = \"{archive}\"\n{top}\n{sections}\n{s3_section}",
                d.join("mail.log").display(),
                d.join("spool").display(),
            ),
        )
        .unwrap();
        Case { dir, server }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn archive(&self) -> PathBuf {
        match &self.server {
            Some(server) => server.data.join("archive/logs"),
            None => self.path("archive"),
        }
    }

    /// Appends `text` to `name` (and, when it is a log line, to `all.log`: the truth).
    fn append(&self, name: &str, text: &str) {
        let mut file = File::options()
            .create(true)
            .append(true)
            .open(self.path(name))
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let mut all = File::options()
            .create(true)
            .append(true)
            .open(self.path("all.log"))
            .unwrap();
        all.write_all(text.as_bytes()).unwrap();
    }

    fn command(&self, flags: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_maillog"));
        cmd.arg("run")
            .arg("--config")
            .arg(self.path("pipeline.toml"))
            .args(flags)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("AWS_PROFILE");
        cmd
    }

    /// `maillog run FLAG`, which must succeed; its stderr.
    fn run(&self, flag: &str) -> String {
        let out: Output = self.command(&[flag]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "maillog run {flag} failed:\n{stderr}");
        stderr
    }

    /// Every archived object by key, with its bytes.
    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        let root = self.archive();
        if !root.exists() {
            return BTreeMap::new();
        }
        common::files(&root)
            .into_iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .map(|p| {
                let key = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (key, fs::read(&p).unwrap())
            })
            .collect()
    }

    fn archived(&self) -> HashMap<String, usize> {
        common::archived_records(&self.archive())
    }

    /// `maillog parse` of every line written (`all.log`).
    fn expected(&self, zone: &str) -> HashMap<String, usize> {
        parsed(&self.path("all.log"), zone)
    }
}

/// `maillog parse --tz ZONE` of `log`, as `"{kind} {json}"`.
fn parsed(log: &Path, zone: &str) -> HashMap<String, usize> {
    common::parsed_records_with(log, &["--tz", zone])
}

/// Asserts that the archive holds exactly the expected records; the message counts what is
/// lost and what is extra, with an example of each.
fn assert_same(archived: &HashMap<String, usize>, expected: &HashMap<String, usize>, what: &str) {
    let diff = |a: &HashMap<String, usize>, b: &HashMap<String, usize>| -> (usize, String) {
        let mut example = String::new();
        let mut n = 0;
        for (record, count) in a {
            let missing = count.saturating_sub(*b.get(record).unwrap_or(&0));
            if missing > 0 && example.is_empty() {
                example = record.chars().take(220).collect();
            }
            n += missing;
        }
        (n, example)
    };
    let (lost, lost_example) = diff(expected, archived);
    let (extra, extra_example) = diff(archived, expected);
    let mut message = format!(
        "{what}: of {} records expected, {lost} lost, {extra} extra",
        expected.values().sum::<usize>()
    );
    if lost > 0 {
        message.push_str(&format!("\n  lost, e.g.: {lost_example}"));
    }
    if extra > 0 {
        message.push_str(&format!("\n  extra, e.g.: {extra_example}"));
    }
    assert!(lost == 0 && extra == 0, "{message}");
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The start of the 5-minute window `unix` is in.
fn window_of(unix: i64) -> i64 {
    unix - unix.rem_euclid(300)
}

/// An ISO stamp of `unix` at `offset_hours` from UTC.
fn iso(unix: i64, offset_hours: i32) -> String {
    let local = chrono::DateTime::from_timestamp(unix + i64::from(offset_hours) * 3600, 0).unwrap();
    let sign = if offset_hours < 0 { '-' } else { '+' };
    format!(
        "{}{sign}{:02}:00",
        local.format("%Y-%m-%dT%H:%M:%S"),
        offset_hours.abs()
    )
}

/// A `from=` line (`n` even) or a `to=` line (odd), unique by `n`.
fn line(stamp: &str, n: u32) -> String {
    let qid = format!("q{n:09}X");
    if n.is_multiple_of(2) {
        format!(
            "{stamp} mail1 sendmail[{n}]: {qid}: from=<user{n}@example.com>, size={}, class=0, \
             nrcpts=1, msgid=<{qid}@example.com>, proto=ESMTP, daemon=MTA, \
             relay=app01.example.com [10.1.2.1]\n",
            1000 + n
        )
    } else {
        format!(
            "{stamp} mail2 sm-mta[{n}]: {qid}: to=<rcpt{n}@example.net>, delay=00:00:01, \
             xdelay=00:00:01, mailer=esmtp, pri=120{n}, relay=mx.example.net. [192.0.2.1], \
             dsn=2.0.0, stat=Sent (OK, id {n})\n"
        )
    }
}

/// Situation 1 (and 6's S3 half): a record for a window archived by an earlier one-shot run
/// goes into a further part; the archived object keeps its bytes.
fn repeated_one_shot_runs(s3: bool) {
    let case = Case::with_archive("", "[bzip2]\nlevel = 1\n", s3);
    let t = window_of(now() - 3600) + 10;
    case.append("mail.log", &line(&iso(t, 0), 2));
    case.run("--once");
    let first = case.objects();
    assert_eq!(first.len(), 1, "one window archived: {:?}", first.keys());

    case.append("mail.log", &line(&iso(t + 60, 0), 4));
    case.run("--once");
    assert_same(
        &case.archived(),
        &case.expected("UTC"),
        "two one-shot runs, one window",
    );
    let after = case.objects();
    for (key, bytes) in &first {
        assert!(
            after.get(key) == Some(bytes),
            "the object {key} of the first run was replaced"
        );
    }
    assert!(
        after.keys().any(|k| k.ends_with(".part-001.json.bz2")),
        "the second record is in a further part: {:?}",
        after.keys()
    );
}

#[test]
fn a_second_one_shot_run_adds_a_part_and_keeps_the_archived_window() {
    repeated_one_shot_runs(false);
}

#[test]
fn a_second_one_shot_run_adds_a_part_and_keeps_the_archived_window_in_s3() {
    if common::have_s3s_fs() {
        repeated_one_shot_runs(true);
    }
}

/// gzip `path` into `path.gz`, as logrotate's `compress` does, and remove `path`.
fn gzip(path: &Path) {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let mut encoder =
        flate2::write::GzEncoder::new(File::create(gz).unwrap(), flate2::Compression::default());
    encoder.write_all(&fs::read(path).unwrap()).unwrap();
    encoder.finish().unwrap();
    fs::remove_file(path).unwrap();
}

#[test]
fn down_across_three_daily_rotations_every_rotated_file_is_read() {
    let case = Case::new("", "[bzip2]\nlevel = 1\n");
    let base = window_of(now() - 6 * 3600);
    // Each batch of lines in windows of its own, all long due.
    let batch = |k: i64, n: u32| -> String {
        (0..4)
            .map(|i| line(&iso(base + k * 900 + i64::from(i) * 20, 0), n + i))
            .collect()
    };
    case.append("mail.log", &batch(0, 0));
    case.run("--once");
    case.append("mail.log", &batch(1, 10)); // written after the run: unread
    let p = |name: &str| case.path(name);
    // logrotate, daily, rotate 7, compress + delaycompress, create — three days in a row.
    fs::rename(p("mail.log"), p("mail.log.1")).unwrap();
    case.append("mail.log", &batch(2, 20));
    fs::rename(p("mail.log.1"), p("mail.log.2")).unwrap();
    gzip(&p("mail.log.2"));
    fs::rename(p("mail.log"), p("mail.log.1")).unwrap();
    case.append("mail.log", &batch(3, 30));
    fs::rename(p("mail.log.2.gz"), p("mail.log.3.gz")).unwrap();
    fs::rename(p("mail.log.1"), p("mail.log.2")).unwrap();
    gzip(&p("mail.log.2"));
    fs::rename(p("mail.log"), p("mail.log.1")).unwrap();
    case.append("mail.log", &batch(4, 40));
    // maillog starts again some time after the last rotation (gzip is done: a reader may wait
    // until a compressed file is quiet for 5 s before it trusts it).
    std::thread::sleep(Duration::from_secs(6));
    case.run("--once");
    assert_same(
        &case.archived(),
        &case.expected("UTC"),
        "down across three rotations (delaycompress + compress)",
    );
}

#[test]
fn a_line_cut_by_the_writer_is_archived_whole_when_its_newline_comes() {
    let case = Case::new("", "[bzip2]\nlevel = 1\n");
    let t = window_of(now() - 3600) + 10;
    let second = line(&iso(t + 600, 0), 2);
    let cut = second.find("msgid=").unwrap() + 12;
    case.append("mail.log", &line(&iso(t, 0), 1));
    case.append("mail.log", &second[..cut]);
    let first_run = case.run("--once");
    case.append("mail.log", &second[cut..]);
    let second_run = case.run("--once");
    assert_same(
        &case.archived(),
        &case.expected("UTC"),
        "a line written in two pieces, a one-shot run between",
    );
    for (run, stderr) in [("first", &first_run), ("second", &second_run)] {
        assert!(
            stderr.contains("unparseable 0"),
            "the {run} run counted part of a line as unparseable:\n{stderr}"
        );
    }
}

#[test]
fn a_backfill_takes_the_last_line_of_a_finished_file_without_a_newline() {
    let case = Case::new("", "[bzip2]\nlevel = 1\n");
    let t = window_of(now() - 3600) + 10;
    let last = line(&iso(t + 30, 0), 2);
    case.append("mail.log", &line(&iso(t, 0), 1));
    case.append("mail.log", last.trim_end());
    case.run("--once=all");
    let expected = case.expected("UTC");
    assert_eq!(
        expected.values().sum::<usize>(),
        2,
        "maillog parse reads both"
    );
    assert_same(&case.archived(), &expected, "--once=all, no final newline");
}

#[test]
fn one_line_stamped_2099_does_not_hold_back_the_live_windows() {
    // The lines go into the window before the current one; the lateness makes it due about
    // 10 s from now, so the test waits seconds, not minutes.
    let now = now();
    let current = window_of(now);
    let window = current - 300;
    let lateness = now - current + 10;
    let case = Case::new(
        "",
        &format!(
            "[tail]\npoll_interval_ms = 50\n[window]\nlateness_seconds = {lateness}\n\
             commit_seconds = 0.2\n[bzip2]\nlevel = 1\n"
        ),
    );
    let log = File::create(case.path("service.log")).unwrap();
    let mut service = case.command(&[]).stderr(log).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    case.append("mail.log", &line(&iso(window + 100, 0), 2));
    std::thread::sleep(Duration::from_millis(600));
    case.append("mail.log", &line("2099-06-01T12:00:00+00:00", 4));
    std::thread::sleep(Duration::from_millis(600));
    case.append("mail.log", &line(&iso(window + 110, 0), 6));

    let live: Vec<String> = case
        .expected("UTC")
        .into_keys()
        .filter(|r| !r.contains("2099-"))
        .collect();
    let deadline =
        Instant::now() + Duration::from_secs((window + 300 + lateness - now) as u64 + 15);
    let mut archived = HashMap::new();
    while Instant::now() < deadline {
        archived = case.archived_if_any();
        if live.iter().all(|r| archived.contains_key(r)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let names: Vec<String> = case.objects().into_keys().collect();
    let arrived = live.iter().filter(|r| archived.contains_key(*r)).count();
    common::stop(&mut service);
    let log = fs::read_to_string(case.path("service.log")).unwrap();
    assert_eq!(
        arrived,
        live.len(),
        "after a line stamped 2099, the live window's records did not all reach the archive \
         within lateness + 15 s; archive: {names:?}; the service said:\n{log}"
    );
    assert!(
        !names.iter().any(|n| n.contains(".part-")),
        "the live records went into a late part: {names:?}"
    );
    case.run("--once=all");
    assert_same(
        &case.archived(),
        &case.expected("UTC"),
        "the service, a line stamped 2099, then --once=all",
    );
}

impl Case {
    /// The records archived so far, while the service may be writing: only whole window
    /// files (not a temporary file, not one that does not decompress yet).
    fn archived_if_any(&self) -> HashMap<String, usize> {
        let mut lines = Vec::new();
        for (key, bytes) in self.objects() {
            let name = key.rsplit('/').next().unwrap();
            let mut text = String::new();
            let whole = std::io::Read::read_to_string(
                &mut bzip2::read::MultiBzDecoder::new(&bytes[..]),
                &mut text,
            );
            if name.ends_with(".json.bz2") && whole.is_ok() {
                let kind = name.split('-').next().unwrap();
                lines.extend(text.lines().map(|l| format!("{kind} {l}")));
            }
        }
        common::multiset(lines)
    }
}

/// Lines in both passes of the repeated hour, archived by two one-shot runs (one pass each):
/// every record once, no object replaced, no window under another's name.
fn fall_back_hour(zone: &str, fall_back_utc: &str, summer: i32) {
    let case = Case::new(&format!("time_zone = \"{zone}\""), "[bzip2]\nlevel = 1\n");
    let at = chrono::DateTime::parse_from_rfc3339(fall_back_utc)
        .unwrap()
        .timestamp();
    // The repeated hour: [at - 1 h, at) in summer time, [at, at + 1 h) in winter time.
    let pass = |start: i64, offset: i32, n: u32| -> String {
        [30, 1230, 2430, 3570]
            .iter()
            .enumerate()
            .map(|(i, s)| line(&iso(start + s, offset), n + i as u32))
            .collect()
    };
    case.append("mail.log", &pass(at - 3600, summer, 0));
    case.run("--once");
    let first = case.objects();
    case.append("mail.log", &pass(at, summer - 1, 10));
    case.run("--once");
    let after = case.objects();
    assert_same(
        &case.archived(),
        &case.expected(zone),
        &format!(
            "{zone}, both passes of the repeated hour; archive: {:?}",
            after.keys()
        ),
    );
    for (key, bytes) in &first {
        assert!(
            after.get(key) == Some(bytes),
            "{zone}: {key} of the first pass was replaced by the second"
        );
    }
    assert!(
        !after.keys().any(|k| k.contains(".part-")),
        "{zone}: the second pass went into late parts of the first pass's windows: {:?}",
        after.keys()
    );
}

#[test]
fn the_repeated_hour_of_a_fall_back_gets_window_names_of_its_own_in_berlin() {
    fall_back_hour("Europe/Berlin", "2025-10-26T01:00:00Z", 2);
}

#[test]
fn the_repeated_hour_of_a_fall_back_gets_window_names_of_its_own_in_new_york() {
    fall_back_hour("America/New_York", "2025-11-02T06:00:00Z", -4);
}
