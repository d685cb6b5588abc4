//! `maillog parse` on what it is given besides plain files: gzip and bzip2 files (every member,
//! every stream), told from their bytes, compressed stdin, and the settings of `pipeline.toml`
//! (`time_zone`, `year`, `sendmail_programs`) with the flags over them. The binary as a user
//! runs it: real files, stdout, stderr and exit codes.

// A test that cannot write its fixture should fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use maillog_loggen::{Config, Generator, HeaderStyle};

const FROM: &str = "Jul 12 20:53:00 mail5 sendmail[6229]: p6D0r0u1006229: from=<info@example.com>, size=57395, class=0, nrcpts=1, msgid=<x@example.com>, proto=ESMTP, daemon=MTA, relay=app03.example.com [10.1.2.3]";
const CUSTOM_TO: &str = "Jul 12 20:53:02 mail5 sm-mta-custom[6230]: p6D0r0u1006229: to=<a@gmail.com>, delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=120395, relay=gmail-smtp-in.l.google.com. [74.125.1.2], dsn=2.0.0, stat=Sent (OK)";

/// `maillog ARGS` in `dir`, with `stdin`, and no `MAILLOG_CONFIG` but the one given.
fn maillog_in(dir: &Path, args: &[&str], env_config: Option<&Path>, stdin: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_maillog"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("MAILLOG_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(config) = env_config {
        command.env("MAILLOG_CONFIG", config);
    }
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs in `dir`; asserts success and returns stdout.
fn ok(dir: &Path, args: &[&str], env_config: Option<&Path>, stdin: &[u8]) -> String {
    let out = maillog_in(dir, args, env_config, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn bzip2(text: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(text).unwrap();
    e.finish().unwrap()
}

fn gzip(text: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text).unwrap();
    e.finish().unwrap()
}

/// A generated BSD log (year-less stamps, from 2025-12-31 23:15 into 2026).
fn generated_log() -> String {
    let style = HeaderStyle::Bsd;
    let config = Config {
        lines: 6_000,
        seed: 11,
        style,
        ..Config::default()
    };
    let mut text = String::new();
    for line in Generator::new(config) {
        line.render_into(style, &mut text);
        text.push('\n');
    }
    text
}

/// The same log as plain, gzip and bzip2 (two members/streams each, cut in the middle of a
/// line), under names that say so and under a name that does not, and compressed on stdin:
/// byte-identical NDJSON. Without `--year` each file's year comes from its own modification
/// time, the compressed file's for a compressed one.
#[test]
fn gzip_and_multistream_bzip2_files_and_stdin_give_the_same_records_as_plain() {
    let dir = tempfile::tempdir().unwrap();
    let text = generated_log();
    let cut = text.len() / 2 + 7;
    let (first, second) = text.as_bytes().split_at(cut);
    let gz = [gzip(first), gzip(second)].concat();
    let bz = [bzip2(first), bzip2(second)].concat();
    // Both really are two: the first member/stream alone holds only the first half.
    assert!(bz.len() > bzip2(first).len() && gz.len() > gzip(first).len());

    // Far from now, so that a year taken from the clock instead of the file would show.
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_585_600); // 2030-01-02 12:00Z
    let files: [(&str, &[u8]); 5] = [
        ("mail.log", text.as_bytes()),
        ("mail.log.1.gz", &gz),
        ("mail.log.2.bz2", &bz),
        ("mail.log.3", &bz),
        ("mail.log.4", &gz),
    ];
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    let plain = ok(dir.path(), &["parse", "mail.log"], None, b"");
    assert!(plain.lines().count() > 1000, "{plain}");
    // The file's mtime (2030-01-02) puts 31 December in 2029.
    assert!(
        plain.starts_with(r#"{"kind":"#)
            && plain
                .lines()
                .next()
                .unwrap()
                .contains("\"ts\":\"2029-12-31T"),
        "{}",
        plain.lines().next().unwrap()
    );
    for (name, _) in &files[1..] {
        let ours = ok(dir.path(), &["parse", name], None, b"");
        assert!(ours == plain, "{name} differs from the plain file");
    }

    // stdin: no mtime, so the year is given.
    let plain = ok(
        dir.path(),
        &["parse", "--year", "2025", "mail.log"],
        None,
        b"",
    );
    for (what, stdin) in [("gzip", &gz), ("bzip2", &bz)] {
        let ours = ok(dir.path(), &["parse", "--year", "2025"], None, stdin);
        assert!(ours == plain, "{what} on stdin differs from the plain file");
        let ours = ok(dir.path(), &["parse", "--year", "2025", "-"], None, stdin);
        assert!(
            ours == plain,
            "{what} on stdin (`-`) differs from the plain file"
        );
    }
}

/// A compressed file cut short is named, its records before the cut still come out, and the
/// exit code says it (1).
#[test]
fn a_truncated_compressed_file_is_named_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let text = generated_log();
    let bz = bzip2(text.as_bytes());
    std::fs::write(dir.path().join("cut.bz2"), &bz[..bz.len() / 2]).unwrap();
    let out = maillog_in(
        dir.path(),
        &["parse", "--year", "2025", "cut.bz2"],
        None,
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cut.bz2"), "{stderr}");
}

/// `pipeline.toml`'s `time_zone`, `year` and `sendmail_programs` change the records exactly as
/// `--tz`, `--year` and `--sendmail-program` would, found as `./pipeline.toml`,
/// `$MAILLOG_CONFIG` or `--config`; a flag wins over the config.
#[test]
fn the_configs_zone_year_and_sendmail_programs_are_used_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    std::fs::write(&log, format!("{FROM}\n{CUSTOM_TO}\n")).unwrap();
    let log = log.to_str().unwrap();
    let config =
        "time_zone = \"Europe/Berlin\"\nyear = 2011\nsendmail_programs = [\"sm-mta-custom\"]\n";
    std::fs::write(dir.path().join("pipeline.toml"), config).unwrap();
    let elsewhere = empty.path().join("other.toml");
    std::fs::write(&elsewhere, config).unwrap();

    let flags = [
        "parse",
        "--tz",
        "Europe/Berlin",
        "--year",
        "2011",
        "--sendmail-program",
        "sm-mta-custom",
        log,
    ];
    let by_flags = ok(empty.path(), &flags, None, b"");
    let lines: Vec<&str> = by_flags.lines().collect();
    assert_eq!(lines.len(), 2, "{by_flags}");
    assert!(
        lines[0].contains(r#""ts":"2011-07-12T20:53:00+02:00""#),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with(r#"{"kind":"to""#), "{}", lines[1]);

    let found = ok(dir.path(), &["parse", log], None, b"");
    assert_eq!(found, by_flags, "./pipeline.toml");
    let from_env = ok(empty.path(), &["parse", log], Some(&elsewhere), b"");
    assert_eq!(from_env, by_flags, "MAILLOG_CONFIG");
    let elsewhere = elsewhere.to_str().unwrap();
    let from_flag = ok(
        empty.path(),
        &["parse", "--config", elsewhere, log],
        None,
        b"",
    );
    assert_eq!(from_flag, by_flags, "--config");

    // Without a config: UTC, the file's year, sm-mta-custom is another program.
    let bare = ok(empty.path(), &["parse", "--year", "2011", log], None, b"");
    assert_eq!(bare.lines().count(), 1, "{bare}");
    assert!(
        bare.contains(r#""ts":"2011-07-12T20:53:00+00:00""#),
        "{bare}"
    );

    // The flags win over the config.
    let over = [
        "parse",
        "--tz",
        "+05:00",
        "--year",
        "2012",
        "--sendmail-program",
        "other",
        log,
    ];
    let overridden = ok(dir.path(), &over, None, b"");
    assert_eq!(overridden, ok(empty.path(), &over, None, b""));
    assert_eq!(overridden.lines().count(), 1, "{overridden}");
    assert!(
        overridden.contains(r#""ts":"2012-07-12T20:53:00+05:00""#),
        "{overridden}"
    );
}

/// A config that cannot be used — a bad value, a syntax error, a file that is not there —
/// exits 2, names the problem and writes no record.
#[test]
fn a_broken_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail.log"), format!("{FROM}\n")).unwrap();
    std::fs::write(
        dir.path().join("zone.toml"),
        "time_zone = \"Mars/Olympus\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("syntax.toml"), "sendmail_programs = [\n").unwrap();
    for (config, says) in [
        ("zone.toml", "time_zone"),
        ("syntax.toml", "syntax.toml"),
        ("missing.toml", "missing.toml"),
    ] {
        for args in [
            &["parse", "--config", config, "mail.log"][..],
            // --tz given: the config's time_zone is still checked.
            &["parse", "--config", config, "--tz", "UTC", "mail.log"][..],
        ] {
            let out = maillog_in(dir.path(), args, None, b"");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(says), "{args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
    // As ./pipeline.toml too.
    std::fs::copy(
        dir.path().join("zone.toml"),
        dir.path().join("pipeline.toml"),
    )
    .unwrap();
    let out = maillog_in(dir.path(), &["parse", "mail.log"], None, b"");
    assert_eq!(out.status.code(), Some(2));
}
