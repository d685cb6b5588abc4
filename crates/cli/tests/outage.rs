//! The archive away, as an operator meets it: reading never waits for it, and a spool that
//! filled while it was away frees itself once it is back.
//!
//! - A record for a window the archive already has arrives while the S3 server is down: the
//!   service goes on reading every later line at once (no archive lookup on the reading
//!   thread), and once the server is back every record is archived once, no object replaced.
//! - The spool's disk fills with sealed files while the S3 server is down: reading stops with
//!   a clear message; when the server is back the archived files leave the spool, the disk
//!   frees itself and the run finishes, nothing lost. (The spool is a tmpfs the test mounts:
//!   root only, as CI has; elsewhere it says SKIPPED, and under CI=true it fails.)
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ACCESS_KEY, S3Server, SECRET_KEY, free_port, get, have_s3s_fs, metric, watched};
use maillog_testkit::tmpfs::Tmpfs;

fn maillog(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maillog"));
    cmd.arg("run")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_PROFILE");
    cmd
}

/// Every object's bytes, by path.
fn objects(server: &S3Server) -> HashMap<PathBuf, Vec<u8>> {
    server
        .objects("archive", "mail")
        .into_iter()
        .map(|path| (path.clone(), fs::read(&path).unwrap()))
        .collect()
}

fn wait_for(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn reading_goes_on_while_the_archive_is_down() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = S3Server::start(&dir.path().join("s3"), "archive");
    let log = dir.path().join("mail.log");
    common::generated_log(&log, 2_000);
    let port = free_port();
    let config = dir.path().join("pipeline.toml");
    fs::write(
        &config,
        format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"s3://archive/mail\"\n\
             [window]\nlateness_seconds = 0\ncommit_seconds = 0.2\n\
             [upload]\nretry_max_seconds = 1\n[bzip2]\nlevel = 1\n\
             [metrics]\naddress = \"127.0.0.1:{port}\"\n{}",
            server.config_section()
        ),
    )
    .unwrap();
    let mut service: Child = maillog(&config, &[]).stderr(Stdio::null()).spawn().unwrap();
    wait_for("the metrics endpoint", 30, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // The log is of 2025: every window is due at once, and archived.
    wait_for("the first windows archived", 60, || {
        let (_, metrics) = get(port, "/metrics");
        metric(&metrics, "maillog_windows_open") == 0
            && metric(&metrics, "maillog_uploads_total") > 0
            && metric(&metrics, "maillog_spool_files") == 0
    });
    let before = objects(&server);
    server.stop();

    // More lines, the first of them late for a window the archive has (the log's first lines
    // again: records for archived windows), and a lookup of the archive would never answer.
    let text = fs::read_to_string(&log).unwrap();
    let again: String = text.lines().take(500).map(|l| format!("{l}\n")).collect();
    OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(again.as_bytes())
        .unwrap();
    let lines = text.lines().count() as u64 + 500;
    wait_for("every line read while the archive is down", 15, || {
        let (_, metrics) = get(port, "/metrics");
        metric(&metrics, "maillog_lines_read_total") == lines
    });

    server.resume();
    Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .unwrap();
    assert!(service.wait().unwrap().success());
    let drain = maillog(&config, &["--once=all"]).output().unwrap();
    assert!(
        drain.status.success(),
        "{}",
        String::from_utf8_lossy(&drain.stderr)
    );
    let after = objects(&server);
    for (path, bytes) in &before {
        assert!(after.get(path) == Some(bytes), "{} changed", path.display());
    }
    assert_eq!(
        common::archived_records(&dir.path().join("s3/archive/mail")),
        common::parsed_records(&log)
    );
}

#[test]
fn a_spool_filled_while_the_archive_is_down_frees_itself_when_it_is_back() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Room for the windows being filled and sealed (a few hundred kB, committed often), not
    // for the sealed files of the whole log (~8 MB in 600 files).
    let Some(_spool) = Tmpfs::mount(&dir.path().join("spool"), "3m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let mut server = S3Server::start(&dir.path().join("s3"), "archive");
    server.stop();
    let log = dir.path().join("mail.log");
    // 2 lines a second: small windows, many of them.
    let generator = maillog_loggen::Config {
        lines: 200_000,
        rate: 2.0,
        ..maillog_loggen::Config::default()
    };
    maillog_loggen::write_log(&generator, &mut fs::File::create(&log).unwrap()).unwrap();
    let config = dir.path().join("pipeline.toml");
    fs::write(
        &config,
        format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"s3://archive/mail\"\n\
             [window]\nlateness_seconds = 0\ncommit_seconds = 0.05\n\
             [upload]\nretry_max_seconds = 1\n[bzip2]\nlevel = 1\n{}",
            server.config_section()
        ),
    )
    .unwrap();
    let (mut child, said, reader) = watched(maillog(&config, &["--once"]), "disk is full");
    said.recv_timeout(Duration::from_secs(90))
        .expect("the spool never filled up");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it must wait, not exit"
    );

    // The archive is back: archived files leave the spool, and that is the room it needs.
    server.resume();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the spool never freed itself: {}", reader.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = reader.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        common::archived_records(&dir.path().join("s3/archive/mail")),
        common::parsed_records(&log)
    );
}

/// `--once` with the archive away retries its puts without end, but a SIGTERM is honoured at
/// once: the files wait in the spool, and the next run archives them.
#[test]
fn a_one_shot_run_waiting_for_the_archive_stops_on_sigterm() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = S3Server::start(&dir.path().join("s3"), "archive");
    server.stop();
    let log = dir.path().join("mail.log");
    common::generated_log(&log, 2_000);
    let config = dir.path().join("pipeline.toml");
    fs::write(
        &config,
        format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"s3://archive/mail\"\n\
             [upload]\nretry_max_seconds = 30\n[bzip2]\nlevel = 1\n{}",
            server.config_section()
        ),
    )
    .unwrap();
    let (child, said, reader) = watched(maillog(&config, &["--once"]), "cannot put");
    let mut child = child;
    said.recv_timeout(Duration::from_secs(60))
        .expect("no put was tried");
    std::thread::sleep(Duration::from_secs(1));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "SIGTERM not honoured within 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("wait in the spool"), "{stderr}");
    server.resume();
    let drain = maillog(&config, &["--once=all"]).output().unwrap();
    assert!(
        drain.status.success(),
        "{}",
        String::from_utf8_lossy(&drain.stderr)
    );
    assert_eq!(
        common::archived_records(&dir.path().join("s3/archive/mail")),
        common::parsed_records(&log)
    );
}
