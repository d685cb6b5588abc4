//! What operators change between runs (issue 19), each as a new user would do it: inputs
//! given as relative paths, then the log rotated while maillog is down. Every record is
//! archived once, and maillog does not call a rotated file lost.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

/// `count` ISO-stamped `from` lines of 2025-11-20, from `first` on (ten seconds apart).
fn lines(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| {
            format!(
                "2025-11-20T10:{:02}:{:02}+00:00 mail1 sendmail[{i}]: q{i:08}: from=<u{i}@example.com>, size={i}, class=0, nrcpts=1, relay=client.example.net [10.0.0.1]\n",
                i * 10 / 60,
                i * 10 % 60
            )
        })
        .collect()
}

/// `maillog run --once=all` in `dir` with relative paths on the command line; its stderr.
fn run_relative(dir: &Path, input: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .current_dir(dir)
        .args(["run", "--once=all", "--input", input, "--spool", "spool"])
        .args(["--archive", "file://archive"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
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
