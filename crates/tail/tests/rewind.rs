//! A rewind ([`maillog_tail::Checkpointer::rewind`]) finds a content wherever it lives now.
//!
//! The pipeline keeps the positions its open windows began at by content epoch, and goes back
//! to them when the spool lost those windows. A content that moved to another file since —
//! the copy copytruncate made, compressed or not, live or while maillog was stopped — is the
//! same content under the same epoch, so the lines are read again from the copy. (Found by
//! the model test: a copytruncate while stopped, then a wiped spool, lost every record of the
//! open window although `mail.log.1` held them.)
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use maillog_tail::{TailCore, start};

/// When copytruncate moves the content to `mail.log.1` (or `mail.log.1.gz`).
#[derive(Clone, Copy, Debug)]
enum CopyTruncate {
    /// While maillog is stopped.
    Stopped,
    /// While stopped, then the copy compressed (a later rotation's `compress`).
    StoppedThenGzip,
    /// While maillog follows the file.
    Live,
}

fn copytruncate(dir: &Path) {
    let log = dir.join("mail.log");
    fs::copy(&log, dir.join("mail.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn a_rewind_reads_lines_again_from_the_copy_their_content_moved_to() {
    for how in [
        CopyTruncate::Stopped,
        CopyTruncate::StoppedThenGzip,
        CopyTruncate::Live,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        write_numbered(&log, 0, 10);
        let mut tail = spawn_default(dir.path());
        let (lines, acks) = receive(&mut tail, 10);
        assert_eq!(lines, numbered(0, 10), "{how:?}");
        let epoch = acks[0].epoch;
        tail.checkpointer.commit(&acks).unwrap();
        if let CopyTruncate::Live = how {
            copytruncate(dir.path());
            write_numbered(&log, 10, 12);
            let (lines, acks) = receive(&mut tail, 2);
            assert_eq!(lines, numbered(10, 12), "{how:?}");
            tail.checkpointer.commit(&acks).unwrap();
            stop(tail);
        } else {
            stop(tail);
            copytruncate(dir.path());
            if let CopyTruncate::StoppedThenGzip = how {
                gzip_file(
                    &dir.path().join("mail.log.1"),
                    &dir.path().join("mail.log.1.gz"),
                );
            }
            // A run that finds the content moved, and nothing new to read.
            let mut tail = spawn_default(dir.path());
            let (lines, acks) = anything_more(&mut tail);
            assert!(lines.is_empty(), "{how:?}: read again {lines:?}");
            tail.checkpointer.commit(&acks).unwrap();
            stop(tail);
        }

        // The consumer lost what it made of lines 5 to 9: back to line 5 of that content.
        let core = TailCore::open(config(dir.path(), &["mail.log"])).unwrap();
        let line_5 = numbered(0, 5).iter().map(|l| l.len() as u64 + 1).sum();
        let moved = core
            .checkpointer()
            .rewind(&BTreeMap::from([(epoch, line_5)]));
        assert_eq!(moved.keys().collect::<Vec<_>>(), [&epoch], "{how:?}");
        let mut tail = start(core).unwrap();
        let (lines, _) = receive_within(&mut tail, 5, Duration::from_secs(10));
        assert_eq!(lines, numbered(5, 10), "{how:?}: lines read again");
        let (lines, _) = anything_more(&mut tail);
        assert!(lines.is_empty(), "{how:?}: read more than asked {lines:?}");
        stop(tail);
    }
}

fn spawn_default(dir: &Path) -> maillog_tail::Tail {
    maillog_tail::spawn(config(dir, &["mail.log"])).unwrap()
}
