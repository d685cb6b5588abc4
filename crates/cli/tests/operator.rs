//! What operators change between runs (issue 19), each as a new user would do it: inputs
//! given as relative paths, then the log rotated while maillog is down. Every record is
//! archived once, and maillog does not call a rotated file lost.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

/// `lines(first, count)`: ISO-stamped `from` lines of 2025-11-20, ten seconds apart.
use maillog_testkit::lines::from_lines as lines;

/// `maillog run ARGS` in `dir`, which must succeed; its stderr.
fn run_in(dir: &Path, args: &[&str]) -> String {
    let (code, stderr) = common::run_in(dir, args);
    assert_eq!(code, Some(0), "{stderr}");
    stderr
}

/// `maillog run --once=all` in `dir` with relative paths on the command line; its stderr.
fn run_relative(dir: &Path, input: &str) -> String {
    let spool = ["--spool", "spool", "--archive", "file://archive"];
    run_in(
        dir,
        &[&["--once=all", "--input", input][..], &spool[..]].concat(),
    )
}

#[test]
fn relative_inputs_rotated_while_down_are_archived_once() {
    for input in ["mail.log", "./mail.log"] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        fs::write(&log, lines(0, 10)).unwrap();
        run_relative(dir.path(), input);
        // More lines, then logrotate (rename + create) while maillog is down.
        let mut text = fs::read_to_string(&log).unwrap();
        text += &lines(10, 5);
        fs::write(&log, &text).unwrap();
        fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
        fs::write(&log, lines(15, 5)).unwrap();
        let stderr = run_relative(dir.path(), input);
        assert!(!stderr.contains("vanished"), "{input}: {stderr}");
        let all = dir.path().join("all.log");
        fs::write(&all, text + &lines(15, 5)).unwrap();
        assert_eq!(
            common::archived_records(&dir.path().join("archive")),
            common::parsed_records(&all),
            "{input}"
        );
    }
}

/// A `to` line of exactly `len` bytes (without its newline): a long `stat=`.
fn long_line(i: usize, len: usize) -> String {
    let head = format!(
        "2025-11-20T10:00:{i:02}+00:00 mail1 sendmail[{i}]: q{i:08}: to=<a{i}@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.example.org. [10.1.0.1], dsn=2.0.0, stat=Sent ("
    );
    let fill = len - head.len() - 1;
    format!("{head}{})\n", "x".repeat(fill))
}

#[test]
fn a_long_line_gives_the_same_record_whatever_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let limit = maillog_parse::DEFAULT_MAX_LINE_BYTES;
    let mut text = lines(0, 3);
    for (i, len) in [65_535, 65_536, 65_537, limit, limit + 1, 2 * limit]
        .into_iter()
        .enumerate()
    {
        text += &long_line(10 + i, len);
    }
    text += &lines(3, 3);
    fs::write(&log, &text).unwrap();
    let stderr = run_relative(dir.path(), "mail.log");
    assert!(
        stderr.contains("max_line_bytes"),
        "the cut is said: {stderr}"
    );
    let archived = common::archived_records(&dir.path().join("archive"));
    assert_eq!(archived, common::parsed_records(&log));
    // Lines up to the limit are whole; the two beyond it keep their first `limit` bytes.
    let longest = archived.keys().map(String::len).max().unwrap();
    assert!(longest < limit + 1000, "{longest}");
    assert_eq!(archived.values().sum::<usize>(), 12);
    let parse = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .arg("parse")
        .arg(&log)
        .env_remove("MAILLOG_CONFIG") // `parse` reads its zone and programs from it
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&parse.stderr);
    assert!(
        summary.contains("lines cut at the length limit: 2"),
        "{summary}"
    );
}

/// `count` ISO-stamped `to` lines one second apart from the start of the current window:
/// one window, not due yet (a few seconds ahead of the clock at most, well within the skew).
fn lines_now(first: usize, count: usize) -> String {
    let now = chrono::Utc::now().timestamp();
    let window = now - now.rem_euclid(300);
    (first..first + count)
        .map(|i| {
            let at = chrono::DateTime::from_timestamp(window + (i - first) as i64, 0)
                .unwrap()
                .to_rfc3339();
            format!(
                "{at} mail2 sendmail[{i}]: q{i:08}: to=<d{i}@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.example.org. [10.1.0.1], dsn=2.0.0, stat=Sent (ok)\n"
            )
        })
        .collect()
}

fn run_config(dir: &Path, once: &str) -> String {
    run_in(dir, &[once, "--config", "pipeline.toml"])
}

#[test]
fn a_time_zone_changed_with_windows_open_finishes_them_under_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    fs::write(&log, lines(0, 5) + &lines_now(100, 5)).unwrap();
    let config = |zone: &str| {
        let text = format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\ntime_zone = \"{zone}\"\n"
        );
        fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    };
    config("UTC");
    run_config(dir.path(), "--once"); // the window of now stays open in the spool
    let open: Vec<_> = fs::read_dir(dir.path().join("spool/windows/open"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json.bz2"))
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
    config("+00:30");
    fs::write(&log, fs::read_to_string(&log).unwrap() + &lines_now(200, 3)).unwrap();
    run_config(dir.path(), "--once=all");
    let names: Vec<String> = common::files(&dir.path().join("archive"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&open[0]),
        "{open:?} finished under its name: {names:?}"
    );
    assert_eq!(
        common::archived_records(&dir.path().join("archive")),
        common::parsed_records(&log)
    );
}

/// A log with a due window and an open one, a config keeping the state outside the spool, a
/// `run --once` (the open window stays in the spool); then the log rotated and written on,
/// and the spool wiped (a tmpfs after a reboot) with the checkpoint kept.
fn wiped_after_a_rotation(dir: &Path) {
    let log = dir.join("mail.log");
    fs::write(&log, lines(0, 5) + &lines_now(100, 4)).unwrap();
    fs::write(
        dir.join("pipeline.toml"),
        "inputs = [\"mail.log\"]\nspool = \"spool\"\nstate = \"state\"\narchive = \"file://archive\"\n",
    )
    .unwrap();
    run_config(dir, "--once");
    fs::rename(&log, dir.join("mail.log.1")).unwrap();
    fs::write(&log, lines_now(200, 3)).unwrap();
    fs::remove_dir_all(dir.join("spool")).unwrap();
}

/// The records of `mail.log.1` and `mail.log` in `dir`.
fn parsed_both(dir: &Path) -> HashMap<String, usize> {
    let mut expected = common::parsed_records(&dir.join("mail.log.1"));
    for (record, n) in common::parsed_records(&dir.join("mail.log")) {
        *expected.entry(record).or_default() += n;
    }
    expected
}

#[test]
fn a_spool_wiped_with_the_checkpoint_kept_is_read_again_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    wiped_after_a_rotation(dir.path());
    let stderr = run_config(dir.path(), "--once=all");
    assert!(
        stderr.contains("read again from the log files") && stderr.contains("records=4"),
        "said: {stderr}"
    );
    assert!(!stderr.contains("RECORDS LOST"), "{stderr}");
    let archive = dir.path().join("archive");
    assert_eq!(common::archived_records(&archive), parsed_both(dir.path()));
    // Done with: a further run reads nothing again.
    let before = common::files(&archive);
    let stderr = run_config(dir.path(), "--once=all");
    assert!(!stderr.contains("read again"), "{stderr}");
    assert_eq!(common::files(&archive), before);
}

#[test]
fn a_crash_while_reading_a_lost_window_again_goes_on_with_it() {
    let dir = tempfile::tempdir().unwrap();
    wiped_after_a_rotation(dir.path());
    // Killed once the window read again is sealed, before that is committed: the plan was
    // committed before the tailer moved back, and the next run goes on with it.
    let mut run = Command::new(env!("CARGO_BIN_EXE_maillog"));
    run.current_dir(dir.path())
        .args(["run", "--once=all", "--config", "pipeline.toml"])
        .env("MAILLOG_CRASH_AT", "after-seal");
    let (mut child, stopped, stderr) = common::watched(run, "stopped here");
    stopped
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the run reaches the crash point");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        stderr
            .join()
            .unwrap()
            .contains("read again from the log files")
    );
    let stderr = run_config(dir.path(), "--once=all");
    assert!(!stderr.contains("RECORDS LOST"), "{stderr}");
    let archive = dir.path().join("archive");
    assert_eq!(common::archived_records(&archive), parsed_both(dir.path()));
}

#[test]
fn a_spool_wiped_with_the_lines_gone_too_says_precisely_what_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    wiped_after_a_rotation(dir.path());
    fs::remove_file(dir.path().join("mail.log.1")).unwrap(); // logrotate's `rotate N` ran out
    let stderr = run_config(dir.path(), "--once=all");
    assert!(
        stderr.contains("RECORDS LOST") && stderr.contains("missing=4"),
        "said precisely: {stderr}"
    );
    // Everything else is archived once: the first run's due window and the new lines.
    let mut expected = common::parsed_records(&dir.path().join("mail.log"));
    fs::write(dir.path().join("due.log"), lines(0, 5)).unwrap();
    for (record, n) in common::parsed_records(&dir.path().join("due.log")) {
        *expected.entry(record).or_default() += n;
    }
    assert_eq!(
        common::archived_records(&dir.path().join("archive")),
        expected
    );
}

#[test]
fn a_log_replaced_by_a_copy_of_itself_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    fs::write(&log, lines(0, 12)).unwrap();
    run_relative(dir.path(), "mail.log");
    // `sed -i`, an editor, rsync without --inplace: a new inode with the same content, and more.
    let copy = dir.path().join("mail.log.tmp");
    fs::write(&copy, fs::read_to_string(&log).unwrap() + &lines(12, 4)).unwrap();
    fs::rename(&copy, &log).unwrap();
    run_relative(dir.path(), "mail.log");
    assert_eq!(
        common::archived_records(&dir.path().join("archive")),
        common::parsed_records(&log)
    );
}

/// The log replaced by a copy of itself (`sed -i`, rsync: a new inode) while the service
/// follows it with a window open; the service stopped; the spool wiped with the checkpoint kept
/// — straight away, or after a `run --once` (which lets the replaced file go). The next run
/// reads the open window again from the copy, and nothing else: the due window whose lines the
/// copy holds too is archived once, and no record is said lost.
#[test]
fn a_spool_wiped_after_the_log_was_replaced_by_a_copy_is_read_again_from_the_copy() {
    for once_between in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        fs::write(&log, lines(0, 5) + &lines_now(100, 4)).unwrap();
        fs::write(
            dir.path().join("pipeline.toml"),
            "inputs = [\"mail.log\"]\nspool = \"spool\"\nstate = \"state\"\narchive = \"file://archive\"\n",
        )
        .unwrap();
        let mut service = Command::new(env!("CARGO_BIN_EXE_maillog"));
        service
            .current_dir(dir.path())
            .args(["run", "--config", "pipeline.toml"]);
        let (mut service, replaced, stderr) = common::watched(service, "replaced by a copy");
        // Read: the due window is archived (the window of now stays open).
        let archive = dir.path().join("archive");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !archive.exists() || common::files(&archive).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the due window is archived"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let copy = dir.path().join("mail.log.tmp");
        fs::copy(&log, &copy).unwrap();
        fs::rename(&copy, &log).unwrap();
        let seen = replaced.recv_timeout(std::time::Duration::from_secs(30));
        common::stop(&mut service);
        let stderr = stderr.join().unwrap();
        seen.unwrap_or_else(|_| panic!("the replacement is seen: {stderr}"));
        if once_between {
            run_config(dir.path(), "--once");
        }
        fs::remove_dir_all(dir.path().join("spool")).unwrap();
        let stderr = run_config(dir.path(), "--once=all");
        assert!(
            stderr.contains("read again from the log files") && stderr.contains("records=4"),
            "once between: {once_between}; said: {stderr}"
        );
        assert!(!stderr.contains("RECORDS LOST"), "{stderr}");
        assert_eq!(
            common::archived_records(&archive),
            common::parsed_records(&log),
            "once between: {once_between}"
        );
    }
}

#[test]
fn a_rotation_deleted_before_it_was_read_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    fs::write(&log, lines(0, 4)).unwrap();
    run_relative(dir.path(), "mail.log");
    // While maillog is down: more lines, a rotation, and `rotate N` running out before the
    // next run.
    let unread = lines(4, 3);
    fs::write(&log, lines(0, 4) + &unread).unwrap();
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    fs::write(&log, lines(7, 2)).unwrap();
    fs::remove_file(dir.path().join("mail.log.1")).unwrap();
    let stderr = run_relative(dir.path(), "mail.log");
    // What was written after maillog last saw the file cannot be measured (it is gone): the
    // warning names the file and where reading stopped, and says lines may be lost.
    let said = stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains("file vanished"))
        .unwrap_or_else(|| panic!("the loss is said: {stderr}"));
    let path = dir.path().join("mail.log").canonicalize().unwrap();
    assert!(
        said.contains("is lost") && said.contains(&format!("path={}", path.display())),
        "names the file: {said}"
    );
    assert!(
        said.contains(&format!("committed={}", lines(0, 4).len())),
        "{said}"
    );
    // What was not lost is archived once.
    let mut expected = common::parsed_records(&log);
    fs::write(dir.path().join("read.log"), lines(0, 4)).unwrap();
    for (record, n) in common::parsed_records(&dir.path().join("read.log")) {
        *expected.entry(record).or_default() += n;
    }
    assert_eq!(
        common::archived_records(&dir.path().join("archive")),
        expected
    );
}
