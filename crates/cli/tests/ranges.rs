//! Time ranges as admins type them (issue 16): `--day`, `today`, `yesterday`, durations, local
//! times in the configured zone, RFC 3339 with an offset — each answer equal to a brute-force
//! count of the records whose event time is in that range; and the files and date folders a
//! range excludes skipped unread, on disk and in S3 (a broken file out of range is never
//! opened, so the query succeeds; the whole archive's query names it).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use common::{ACCESS_KEY, S3Server, SECRET_KEY, have_s3s_fs};
use serde_json::Value;

/// A bzip2 header and then no bzip2: reading it is an error.
const BROKEN: &[u8] = b"BZh91AY&SYnot bzip2 after all";

/// Europe/Berlin in November: CET all month.
fn cet() -> FixedOffset {
    FixedOffset::east_opt(3600).unwrap()
}

fn maillog(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(args)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_PROFILE")
        .env_remove("MAILLOG_CONFIG")
        .output()
        .unwrap()
}

/// `maillog top --by dest -n 1000 --format json ARGS` in `dir`, which must succeed: dest →
/// count.
fn top(dir: &Path, args: &[&str]) -> BTreeMap<String, u64> {
    let base = ["top", "--by", "dest", "-n", "1000", "--format", "json"];
    let out = maillog(dir, &[&base[..], args].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = answer.as_array().unwrap_or_else(|| panic!("{answer}"));
    rows.iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A `to` line stamped `at`, to `d{i % 7}@example.org`.
fn to_line(i: usize, at: DateTime<FixedOffset>) -> String {
    format!(
        "{} mail1 sendmail[{i}]: q{i:08}: to=<d{}@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.example.org. [10.1.0.1], dsn=2.0.0, stat=Sent (ok)\n",
        at.to_rfc3339(),
        i % 7
    )
}

/// The test's log: every 20 minutes from 2025-11-17 to 2025-11-22 (Berlin time), and every 7
/// minutes over the last 50 hours; the times of its `to` records, with their dest.
fn write_log(dir: &Path) -> Vec<(i64, String)> {
    let mut times = Vec::new();
    let first = cet().with_ymd_and_hms(2025, 11, 17, 0, 10, 0).unwrap();
    times.extend((0..5 * 72).map(|k| first + Duration::minutes(20 * k)));
    let now = Utc::now().with_timezone(&cet());
    times.extend((1..=50 * 60 / 7).map(|k| now - Duration::minutes(7 * k) + Duration::seconds(3)));
    let mut text = String::new();
    let mut records = Vec::new();
    for (i, at) in times.into_iter().enumerate() {
        text.push_str(&to_line(i, at));
        records.push((at.timestamp(), format!("d{}@example.org", i % 7)));
    }
    fs::write(dir.join("mail.log"), text).unwrap();
    records
}

/// A brute-force count by dest of the records in `[since, until)` (unix seconds).
fn count(records: &[(i64, String)], since: i64, until: i64) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (at, dest) in records {
        if (since..until).contains(at) {
            *counts.entry(dest.clone()).or_default() += 1;
        }
    }
    counts
}

/// Midnight of `date` in Berlin (November: CET), unix seconds.
fn midnight(date: NaiveDate) -> i64 {
    cet()
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp()
}

/// The log archived under Europe/Berlin into `archive/`, with a broken file in a date folder
/// far out of every range asked here.
fn archived(dir: &Path) -> Vec<(i64, String)> {
    let records = write_log(dir);
    fs::write(
        dir.join("pipeline.toml"),
        "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n\
         time_zone = \"Europe/Berlin\"\n[bzip2]\nlevel = 1\n",
    )
    .unwrap();
    let out = maillog(dir, &["run", "--once=all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let old = dir.join("archive/mail_logs/2025-10-01");
    fs::create_dir_all(&old).unwrap();
    fs::write(old.join("to-2025-10-01-10-00.json.bz2"), BROKEN).unwrap();
    records
}

#[test]
fn typed_ranges_count_the_records_in_them_in_the_configured_zone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let records = archived(d);
    let day = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
    // A day, midnight to midnight in Berlin.
    let nov20 = count(
        &records,
        midnight(day(2025, 11, 20)),
        midnight(day(2025, 11, 21)),
    );
    assert!(nov20.values().sum::<u64>() == 72, "{nov20:?}");
    assert_eq!(top(d, &["--day", "2025-11-20"]), nov20);
    assert_eq!(
        top(d, &["--since", "2025-11-20", "--until", "2025-11-21"]),
        nov20
    );
    // Local times, and RFC 3339 with its own offset.
    let (from, to) = (
        cet().with_ymd_and_hms(2025, 11, 18, 10, 30, 0).unwrap(),
        cet().with_ymd_and_hms(2025, 11, 19, 2, 0, 0).unwrap(),
    );
    let expected = count(&records, from.timestamp(), to.timestamp());
    assert_eq!(
        top(
            d,
            &["--since", "2025-11-18 10:30", "--until", "2025-11-19T02:00"]
        ),
        expected
    );
    assert_eq!(
        top(
            d,
            &[
                "--since",
                "2025-11-18T09:30:00Z",
                "--until",
                "2025-11-18T20:00:00-05:00"
            ]
        ),
        expected
    );
    // Relative to now (read twice around the query: a record on the edge retries).
    let today = Utc::now().with_timezone(&cet()).date_naive();
    let yesterday = today.pred_opt().unwrap();
    assert_eq!(
        top(d, &["--day", "yesterday"]),
        count(&records, midnight(yesterday), midnight(today))
    );
    assert_eq!(
        top(d, &["--since", "yesterday", "--until", "today"]),
        count(&records, midnight(yesterday), midnight(today))
    );
    for (typed, seconds) in [("2h", 7200), ("1h30m", 5400), ("1d", 86_400)] {
        let settled = (0..5).find_map(|_| {
            let before = count(&records, Utc::now().timestamp() - seconds, i64::MAX);
            let answer = top(d, &["--since", typed]);
            let after = count(&records, Utc::now().timestamp() - seconds, i64::MAX);
            (before == after).then_some((answer, before))
        });
        let (answer, expected) = settled.expect("a quiet moment");
        assert!(!expected.is_empty());
        assert_eq!(answer, expected, "--since {typed}");
    }
}

#[test]
fn files_and_date_folders_out_of_range_are_not_read_on_disk_or_in_s3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d);
    // The whole archive reads the broken file, and says so.
    let out = maillog(d, &["top", "--by", "dest"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("to-2025-10-01-10-00.json.bz2"));
    // A day never opens it.
    let local = top(d, &["--day", "2025-11-20"]);
    assert!(!local.is_empty());
    // A day the archive has nothing of: an empty answer, exit 0 (not "no archive files").
    assert!(top(d, &["--day", "2024-02-29"]).is_empty());
    if !have_s3s_fs() {
        return;
    }
    let server = S3Server::start(&d.join("s3"), "bucket");
    fs::write(
        d.join("s3.toml"),
        format!(
            "inputs = [\"mail.log\"]\nspool = \"spool-s3\"\narchive = \"s3://bucket/maillog\"\n\
             time_zone = \"Europe/Berlin\"\n[bzip2]\nlevel = 1\n{}",
            server.config_section()
        ),
    )
    .unwrap();
    let out = maillog(d, &["run", "--once=all", "--config", "s3.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same broken object, straight into the server's files.
    let old = d.join("s3/bucket/maillog/mail_logs/2025-10-01");
    fs::create_dir_all(&old).unwrap();
    fs::write(old.join("to-2025-10-01-10-00.json.bz2"), BROKEN).unwrap();
    for input in ["s3://bucket/maillog", "s3://bucket/maillog/mail_logs/"] {
        let remote = top(d, &["--day", "2025-11-20", "--config", "s3.toml", input]);
        assert_eq!(remote, local, "{input}");
        let nothing = top(d, &["--day", "2024-02-29", "--config", "s3.toml", input]);
        assert!(nothing.is_empty(), "{input}");
    }
    let out = maillog(
        d,
        &[
            "top",
            "--by",
            "dest",
            "--config",
            "s3.toml",
            "s3://bucket/maillog",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "the whole bucket reads it");
}

#[test]
fn ranges_that_are_not_times_or_empty_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, says) in [
        (
            &["--since", "tomorow"][..],
            "expected now, today, yesterday",
        ),
        (&["--day", "monday"][..], "today, yesterday or YYYY-MM-DD"),
        (
            &["--since", "2025-11-20", "--until", "2025-11-19"][..],
            "is empty",
        ),
        (
            &["--day", "today", "--since", "2h"][..],
            "cannot be used with",
        ),
    ] {
        let out = maillog(d, &[&["top", "--by", "dest"][..], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn a_day_s_bytes_count_the_messages_received_days_before() {
    // A `to` record's bytes are its message's size, from its `from` record, which may be in a
    // file of a day before (a message deferred for 38 hours). Skipping files by name must not
    // lose it; `from` files after the range are still skipped.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = [
        "2025-12-31T20:00:00+00:00 mail01 sm-mta[7]: qq000001: from=<a@x.org>, size=12345, class=0, nrcpts=1, msgid=<m1@x>, proto=ESMTP, daemon=MTA, relay=x [10.0.0.9]",
        "2026-01-02T10:00:00+00:00 mail01 sm-mta[8]: qq000001: to=<b@y.org>, delay=1+14:00:00, xdelay=00:00:01, mailer=esmtp, pri=1, relay=y [10.0.0.8], dsn=2.0.0, stat=Sent (ok)",
        "2026-01-03T10:00:00+00:00 mail01 sm-mta[9]: qq000002: from=<c@x.org>, size=7, class=0, nrcpts=1, msgid=<m2@x>, proto=ESMTP, daemon=MTA, relay=x [10.0.0.9]",
    ];
    fs::write(d.join("mail.log"), log.join("\n") + "\n").unwrap();
    fs::write(
        d.join("pipeline.toml"),
        "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n",
    )
    .unwrap();
    assert!(maillog(d, &["run", "--once=all"]).status.success());
    let out = maillog(
        d,
        &[
            "top",
            "--by",
            "dest",
            "--metric",
            "bytes",
            "--day",
            "2026-01-02",
            "--format",
            "json",
            "archive",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer[0]["key"], "b@y.org", "{answer}");
    assert_eq!(answer[0]["bytes"], 12345, "{answer}");
}
