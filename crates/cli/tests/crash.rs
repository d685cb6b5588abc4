//! The crash test: `maillog run` follows a log that a generator keeps appending to and rotating,
//! and is killed again and again — with SIGKILL at random moments, and by aborting right after
//! a seal, right after an archive copy and right after a release (before the commit that
//! records each) — and restarted with the same spool each time. A final `--once` drains what is
//! left. The archive must then hold exactly the records of every line written: none lost, none
//! twice. And a first start killed before its first commit, drained: the same.
//!
//! `MAILLOG_CRASH_KILLS`, `MAILLOG_CRASH_LINES` and `MAILLOG_CRASH_SECONDS` (how long the
//! generator writes) make it longer: the benchmark machine's version is `benches/crash-long.sh`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use maillog_loggen::{Config, Generator, HeaderStyle};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic random source (the test must not need a crate for it).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Writes `lines` generated lines to `dir/mail.log` over about `seconds`, rotating it by rename
/// every 4,000 lines (`mail.log.1`, `mail.log.2`, …; the writer reopens right after, as
/// syslog-ng does on `reopen`); every line also goes to `all.log`, the truth.
fn generate(dir: PathBuf, lines: u64, seconds: u64) -> std::thread::JoinHandle<()> {
    let pause = Duration::from_micros(seconds * 1_000_000 * 50 / lines.max(1));
    std::thread::spawn(move || {
        let start = (chrono::Utc::now() - chrono::Duration::hours(3)).naive_utc();
        let config = Config {
            lines,
            rate: 5.0,
            start,
            ..Config::default()
        };
        let log = dir.join("mail.log");
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap()
        };
        let mut out = open();
        let mut all = File::create(dir.join("all.log")).unwrap();
        let mut batch = String::new();
        for (i, line) in Generator::new(config).enumerate() {
            line.render_into(HeaderStyle::Bsd, &mut batch);
            batch.push('\n');
            if i % 50 == 49 {
                out.write_all(batch.as_bytes()).unwrap();
                all.write_all(batch.as_bytes()).unwrap();
                batch.clear();
                std::thread::sleep(pause);
            }
            if i % 4000 == 3999 {
                out.write_all(batch.as_bytes()).unwrap();
                all.write_all(batch.as_bytes()).unwrap();
                batch.clear();
                fs::rename(&log, dir.join(format!("mail.log.{}", i / 4000 + 1))).unwrap();
                out = open();
            }
        }
        out.write_all(batch.as_bytes()).unwrap();
        all.write_all(batch.as_bytes()).unwrap();
    })
}

fn maillog(config: &Path, once: bool, crash_at: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maillog"));
    cmd.arg("run").arg("--config").arg(config);
    if once {
        cmd.arg("--once=all"); // the drain: every window, whatever the clock says
    }
    if let Some(point) = crash_at {
        cmd.env("MAILLOG_CRASH_AT", point);
    }
    cmd.env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY);
    cmd.env("AWS_SECRET_ACCESS_KEY", common::SECRET_KEY);
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stderr_of(mut child: Child) -> String {
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child.wait().unwrap();
    text
}

#[test]
fn a_first_start_killed_before_its_first_commit_repeats_nothing() {
    // The tailer writes its first checkpoint (positions, no spool state) at once; the window
    // files written before the first commit are not committed: a restart reads their lines
    // again and must not offer those files to the archive too (it did: every record twice).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    common::generated_log(&log, 20_000);
    let config = dir.path().join("pipeline.toml");
    let toml = |commit: u32| {
        format!(
            "inputs = [\"{}\"]\nspool = \"{}/spool\"\narchive = \"file://{}/archive\"\n[bzip2]\nlevel = 1\n[window]\ncommit_seconds = {commit}\n",
            log.display(),
            dir.path().display(),
            dir.path().display()
        )
    };
    fs::write(&config, toml(600)).unwrap(); // no commit before the kill
    let mut first = maillog(&config, false, None);
    std::thread::sleep(Duration::from_millis(1500));
    first.kill().unwrap();
    let said = stderr_of(first);
    assert!(said.contains("maillog run started"), "{said}");
    assert!(
        dir.path()
            .join("spool/windows/open")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
    fs::write(&config, toml(1)).unwrap();
    let drained = stderr_of(maillog(&config, true, None));
    assert!(
        !drained.contains("offered to the archive again"),
        "{drained}"
    );
    let archived = common::archived_records(&dir.path().join("archive"));
    let expected = common::parsed_records(&log);
    let twice: usize = archived
        .iter()
        .map(|(r, n)| n.saturating_sub(expected.get(r).copied().unwrap_or(0)))
        .sum();
    assert_eq!(twice, 0, "records archived more often than written");
    assert_eq!(archived, expected);
}

#[test]
fn killed_at_random_moments_it_loses_and_repeats_nothing() {
    crash_test(false);
}

#[test]
fn killed_at_random_moments_with_the_s3_archive_it_loses_and_repeats_nothing() {
    if common::have_s3s_fs() {
        crash_test(true);
    }
}

fn crash_test(s3: bool) {
    let kills = env_number("MAILLOG_CRASH_KILLS", 24);
    let total = env_number("MAILLOG_CRASH_LINES", 40_000);
    let dir = tempfile::tempdir().unwrap();
    let server = s3.then(|| common::S3Server::start(&dir.path().join("s3"), "archive"));
    let (archive, s3_section) = match &server {
        Some(server) => (
            "archive = \"s3://archive/logs\"\n".to_owned(),
            server.config_section(),
        ),
        None => ("archive = \"file://archive\"\n".to_owned(), String::new()),
    };
    let config = dir.path().join("pipeline.toml");
    fs::write(
        &config,
        format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\n{archive}[window]\nlateness_seconds = 30\n\
             commit_seconds = 0.05\n[bzip2]\nlevel = 1\n{s3_section}"
        ),
    )
    .unwrap();
    let generator = generate(
        dir.path().to_owned(),
        total,
        env_number("MAILLOG_CRASH_SECONDS", 15),
    );
    std::thread::sleep(Duration::from_millis(100));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut killed_at = HashMap::<&str, u32>::new();
    for round in 0..kills {
        let point = match round % 8 {
            1 => Some("after-seal"),
            3 => Some("archive-copy"),
            5 => Some("after-archive"),
            7 => Some("after-release"),
            _ => None,
        };
        let mut child = maillog(&config, false, point);
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let line = line.unwrap();
                if line.contains("stopped here for a SIGKILL") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let stopped_at_point = match point {
            Some(_) => rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            None => {
                std::thread::sleep(Duration::from_millis(30 + rng.below(400)));
                false
            }
        };
        let _ = child.kill(); // SIGKILL, wherever it is
        child.wait().unwrap();
        let stderr = reader.join().unwrap();
        if let Some(point) = point.filter(|_| stopped_at_point) {
            *killed_at.entry(point).or_default() += 1;
        }
        assert!(!stderr.contains("panicked"), "round {round}: {stderr}");
    }
    generator.join().unwrap();

    let drain = maillog(&config, true, None);
    let out = stderr_of(drain);
    assert!(
        out.contains("maillog run:"),
        "the final --once run failed: {out}"
    );
    eprintln!("final --once run:\n{out}");
    // The middle of a copy is a point of the local archive; an S3 put is one request.
    let points: &[&str] = match s3 {
        false => &[
            "after-seal",
            "archive-copy",
            "after-archive",
            "after-release",
        ],
        true => &["after-seal", "after-archive", "after-release"],
    };
    for point in points {
        assert!(
            killed_at.get(*point).copied().unwrap_or(0) > 0,
            "never killed at {point}: {killed_at:?}"
        );
    }

    let archive_dir = match &server {
        Some(_) => dir.path().join("s3/archive/logs"),
        None => dir.path().join("archive"),
    };
    let archived = common::archived_records(&archive_dir);
    let expected = common::parsed_records(&dir.path().join("all.log"));
    let lost: usize = expected
        .iter()
        .map(|(l, n)| n.saturating_sub(*archived.get(l).unwrap_or(&0)))
        .sum();
    let extra: usize = archived
        .iter()
        .map(|(l, n)| n.saturating_sub(*expected.get(l).unwrap_or(&0)))
        .sum();
    let records: usize = expected.values().sum();
    eprintln!(
        "{kills} SIGKILLs ({killed_at:?} at the named points); {records} records expected, {lost} lost, {extra} extra"
    );
    assert_eq!((lost, extra), (0, 0), "records lost and duplicated");
}
