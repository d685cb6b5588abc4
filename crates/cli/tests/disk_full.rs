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
