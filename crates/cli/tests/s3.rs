//! `maillog run` with an `s3://` archive on a real S3-compatible server (s3s-fs on loopback,
//! which verifies signatures and checksums): the round trip, wrong credentials and a missing
//! bucket (the message expected, nothing lost, a later fix uploads everything waiting), and the
//! server stopped in the middle of a run and started again.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{ACCESS_KEY, S3Server, SECRET_KEY, have_s3s_fs};

fn run(dir: &Path, secret: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(["run", "--once", "--config"])
        .arg(dir.join("pipeline.toml"))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

fn setup(dir: &Path, server: &S3Server, bucket: &str) -> std::path::PathBuf {
    let log = dir.join("mail.log");
    common::generated_log(&log, 20_000);
    let config = format!(
        "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"s3://{bucket}/maillog\"\n[bzip2]\nlevel = 1\n{}",
        server.config_section()
    );
    fs::write(dir.join("pipeline.toml"), config).unwrap();
    log
}

fn archived(server: &S3Server, bucket: &str) -> HashMap<String, usize> {
    common::archived_records(&server.data.join(bucket).join("maillog"))
}

#[test]
fn records_round_trip_through_s3_with_their_keys() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"), "archive");
    let log = setup(dir.path(), &server, "archive");
    let out = run(dir.path(), SECRET_KEY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects = server.objects("archive", "maillog");
    let first = objects[0]
        .strip_prefix(dir.path().join("s3/archive"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        first.starts_with("maillog/mail_logs/2025-12-31/"),
        "{first}"
    );
    assert_eq!(archived(&server, "archive"), common::parsed_records(&log));
    // Nothing waits in the spool.
    assert_eq!(
        fs::read_dir(dir.path().join("spool/windows/sealed"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn wrong_credentials_are_reported_and_a_fix_uploads_everything_waiting() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"), "archive");
    let log = setup(dir.path(), &server, "archive");
    let out = run(dir.path(), "not-the-secret");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot put mail_logs/")
            && stderr.contains("(HTTP 403) in bucket archive")
            && stderr.contains("check the credentials"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sealed files could not be archived and wait in the spool"),
        "{stderr}"
    );
    assert!(server.objects("archive", "maillog").is_empty());
    // The credentials are fixed: everything that waited goes up, nothing twice.
    let out = run(dir.path(), SECRET_KEY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(archived(&server, "archive"), common::parsed_records(&log));
}

#[test]
fn a_missing_bucket_is_reported_not_created() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"), "archive");
    setup(dir.path(), &server, "no-such-bucket");
    let out = run(dir.path(), SECRET_KEY);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("in bucket no-such-bucket — no such bucket: check its name and region"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("s3/no-such-bucket").exists(),
        "the bucket must not be created"
    );
}

#[test]
fn the_server_down_in_the_middle_of_a_run_loses_nothing() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = S3Server::start(&dir.path().join("s3"), "archive");
    let log = setup(dir.path(), &server, "archive");
    // Reading must stop at once while the archive is away, and archived files stay an hour.
    let config = fs::read_to_string(dir.path().join("pipeline.toml")).unwrap();
    let config = format!(
        "{config}[upload]\nmax_waiting_mib = 0\nkeep_uploaded_hours = 1\n[window]\ncommit_seconds = 0.02\n"
    );
    fs::write(dir.path().join("pipeline.toml"), config).unwrap();
    server.stop();
    let child = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(["run", "--once", "--config"])
        .arg(dir.path().join("pipeline.toml"))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 4 s in CI; MAILLOG_S3_OUTAGE_SECONDS=150 for an outage of minutes (the back-off tops
    // out at 60 s ± 50%, so the uploads resume within 90 s of the server's return).
    let outage = std::env::var("MAILLOG_S3_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    std::thread::sleep(Duration::from_secs(outage));
    server.resume();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot reach the server"),
        "the outage was reported: {stderr}"
    );
    assert!(
        stderr.contains("passed the ceiling: reading stopped"),
        "{stderr}"
    );
    assert_eq!(archived(&server, "archive"), common::parsed_records(&log));
    let kept = fs::read_dir(dir.path().join("spool/windows/uploaded"))
        .unwrap()
        .count();
    assert_eq!(
        kept,
        server.objects("archive", "maillog").len(),
        "archived files are kept an hour"
    );
}

#[test]
fn check_probes_the_archive_for_real() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"), "archive");
    setup(dir.path(), &server, "archive");
    let check = |secret: &str| {
        Command::new(env!("CARGO_BIN_EXE_maillog"))
            .args(["check", "--probe-archive", "--config"])
            .arg(dir.path().join("pipeline.toml"))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .output()
            .unwrap()
    };
    let ok = check(SECRET_KEY);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("read it back: same bytes")
            && stdout.contains("conditional writes: honoured")
            && stdout.contains("ok      archive s3://archive/maillog: probe OK"),
        "{stdout}"
    );
    assert!(
        server.objects("archive", ".maillog-probe").is_empty(),
        "the probe cleans up"
    );
    // A problem found: exit 1, and the finding says what the store answered.
    let bad = check("wrong");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("PROBLEM archive s3://archive/maillog: probe failed")
            && stdout
                .contains("put: AccessDenied (HTTP 403) in bucket archive — check the credentials"),
        "{stdout}"
    );
}
