//! The spool's disk fills up: `maillog run` stops reading with a clear error, waits, and once
//! there is room again goes on and finishes, losing and repeating nothing. The spool is a small
//! tmpfs the test mounts (so it needs root, as CI has; elsewhere it says SKIPPED).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use maillog_testkit::tmpfs::Tmpfs;

#[test]
fn a_full_spool_stops_reading_and_resumes_when_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let Some(spool) = Tmpfs::mount(&dir.path().join("spool"), "300k") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let log = dir.path().join("mail.log");
    common::generated_log(&log, 20_000);
    let config = dir.path().join("pipeline.toml");
    fs::write(&config, "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n[bzip2]\nlevel = 1\n")
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_maillog"));
    command.args(["run", "--once", "--config"]).arg(&config);
    let (mut child, rx, reader) = common::watched(command, "disk is full");
    let full = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the spool never filled up");
    assert!(
        full.contains("spool") && full.contains("No space left"),
        "{full}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it must wait, not exit"
    );
    spool.resize("64m");
    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("room again"), "{stderr}");

    assert_eq!(
        common::archived_records(&dir.path().join("archive")),
        common::parsed_records(&log)
    );
}

/// The mirror's stream cache on a spool too small for the run's records: it keeps streams only
/// while the spool keeps at least its limit free, so the windows never wait for room, and the
/// streams it did not keep are decoded: everything is archived and mirrored once.
#[test]
fn the_mirror_s_stream_cache_leaves_the_windows_their_room_on_a_small_spool() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(_spool) = Tmpfs::mount(&d.join("spool"), "16m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    // 100,000 lines at 20 a second from 23:15: two hours, about 30 MB of records, nearly
    // twice the spool. A cache of 12 MiB that took what it may would leave the windows 4.
    let log = d.join("mail.log");
    common::generated_log(&log, 100_000);
    let config = d.join("pipeline.toml");
    fs::write(
        &config,
        "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n\
         [bzip2]\nlevel = 1\n[mirror]\nenabled = true\nsettle_minutes = 0\n\
         every_seconds = 0.2\nstream_cache_mib = 12\n",
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_maillog"));
    command
        .current_dir(d)
        .args(["run", "--once=all", "--config"])
        .arg(&config);
    let (mut child, full, reader) = common::watched(command, "disk is full");
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Ok(line) = full.try_recv() {
            let _ = child.kill();
            panic!("the windows waited for room: {line}");
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("no end in 240 s: {}", reader.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = reader.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("disk is full"), "{stderr}");

    // The cache was used, and bounded: some archive files came from it, some were decoded.
    let (mut files, mut decoded) = (0, 0);
    for pass in stderr
        .lines()
        .filter(|l| l.contains("settled hours written"))
    {
        let number = |key: &str| -> u64 {
            let at = pass.find(key).unwrap_or_else(|| panic!("{key} in {pass}")) + key.len();
            let digits: String = pass[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().unwrap()
        };
        files += number(" archive_files=");
        decoded += number(" decoded=");
    }
    assert!(
        0 < decoded && decoded < files,
        "{decoded} of {files}: {stderr}"
    );
    assert_eq!(
        common::archived_records(&d.join("archive/mail_logs")),
        common::parsed_records(&log)
    );
    let (_, verified) = common::maillog_ok(d, &["verify"]);
    assert!(
        verified.contains(" 0 differences; 0 archive files not mirrored yet"),
        "{verified}"
    );
}
