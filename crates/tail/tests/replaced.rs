//! The live log replaced by a file with the same content (`sed -i`, an editor saving, rsync
//! without `--inplace`, `cp mail.log x && mv x mail.log`, /var/log moved to another disk): a
//! new inode, the same content. It is read on from where the old one was, while following and
//! across a restart; content edited before the read position is read again from the first
//! line that differs.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use maillog_tail::spawn;

use common::*;

/// Lines long enough that 40 of them are well over the 1 KiB head fingerprint.
fn long(from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|i| {
            format!(
                "Nov 25 11:44:{:02} mx1 sendmail[4242]: AB{i:05}: to=<u{i}@example.org>",
                i % 60
            )
        })
        .collect()
}

fn write_long(path: &Path, from: usize, to: usize) {
    let text: String = long(from, to).iter().map(|l| format!("{l}\n")).collect();
    append(path, &text);
}

/// `cp mail.log x && mv x mail.log` (or rsync, or an editor): a new inode, renamed over.
fn replace_with(log: &Path, content: &[u8]) {
    let tmp = log.with_file_name(".replacement.tmp");
    fs::write(&tmp, content).unwrap();
    fs::rename(&tmp, log).unwrap();
}

#[test]
fn a_log_replaced_by_a_copy_while_followed_is_read_on_not_again() {
    for lines in [40, 3] {
        // 40 lines: over the head fingerprint; 3: a young file shorter than it.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        write_long(&log, 0, lines);
        let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
        let (got, acks) = receive(&mut tail, lines);
        assert_eq!(got, long(0, lines));
        tail.checkpointer.commit(&acks).unwrap();

        replace_with(&log, &fs::read(&log).unwrap());
        write_long(&log, lines, lines + 5);
        let (got, acks) = receive(&mut tail, 5);
        assert_eq!(
            got,
            long(lines, lines + 5),
            "only the lines after the replacement"
        );
        tail.checkpointer.commit(&acks).unwrap();
        let (more, _) = anything_more(&mut tail);
        assert!(more.is_empty(), "delivered again: {more:?}");
        write_long(&log, lines + 5, lines + 6);
        assert_eq!(receive(&mut tail, 1).0, long(lines + 5, lines + 6));
        assert_eq!(tail.stats.replaced_files.load(Relaxed), 1);
        assert_eq!(tail.stats.diverged_files.load(Relaxed), 0);
        assert_eq!(tail.stats.files_lost.load(Relaxed), 0);
        stop(tail);
    }
}

#[test]
fn a_log_replaced_by_a_copy_while_stopped_is_read_on_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_long(&log, 0, 40);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (got, acks) = receive(&mut tail, 40);
    assert_eq!(got, long(0, 40));
    tail.checkpointer.commit(&acks).unwrap();
    write_long(&log, 40, 42);
    assert_eq!(receive(&mut tail, 2).0, long(40, 42)); // read, never committed
    stop(tail);

    // Moved to another disk while maillog was stopped: a new inode (and device).
    replace_with(&log, &fs::read(&log).unwrap());
    write_long(&log, 42, 45);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (got, _) = receive(&mut tail, 5);
    assert_eq!(
        got,
        long(40, 45),
        "from the committed position, nothing twice"
    );
    let (more, _) = anything_more(&mut tail);
    assert!(more.is_empty(), "delivered again: {more:?}");
    assert_eq!(tail.stats.replaced_files.load(Relaxed), 1);
    assert_eq!(
        tail.stats.files_lost.load(Relaxed),
        0,
        "the old inode is no loss"
    );
    stop(tail);
}

#[test]
fn a_replaced_log_whose_writer_has_not_reopened_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_long(&log, 0, 40);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 40).0, long(0, 40));
    // The writer (syslog-ng, not told to reopen) still has the old file open.
    let mut writer = fs::OpenOptions::new().append(true).open(&log).unwrap();
    replace_with(&log, &fs::read(&log).unwrap());
    use std::io::Write;
    writer
        .write_all(format!("{}\n", long(40, 41)[0]).as_bytes())
        .unwrap();
    drop(writer);
    std::thread::sleep(std::time::Duration::from_millis(200));
    write_long(&log, 41, 43); // after it reopened: the new file
    let (mut got, _) = receive(&mut tail, 3);
    got.sort();
    assert_eq!(got, long(40, 43));
    let (more, _) = anything_more(&mut tail);
    assert!(more.is_empty(), "delivered again: {more:?}");
    stop(tail);
}

#[test]
fn content_edited_before_the_read_position_is_read_again_from_the_first_line_that_differs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_long(&log, 0, 40);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 40).0, long(0, 40));

    // `sed -i` edits line 30, already read.
    let mut edited = long(0, 40);
    edited[30] = "Nov 25 11:44:30 mx1 sendmail[4242]: EDITED".to_owned();
    let text: String = edited.iter().map(|l| format!("{l}\n")).collect();
    replace_with(&log, text.as_bytes());
    write_long(&log, 40, 42);
    let (got, _) = receive(&mut tail, 12);
    let mut expected = edited[30..].to_vec();
    expected.extend(long(40, 42));
    assert_eq!(got, expected, "from the edited line on, nothing before it");
    let (more, _) = anything_more(&mut tail);
    assert!(more.is_empty(), "delivered again: {more:?}");
    assert_eq!(tail.stats.diverged_files.load(Relaxed), 1);
    stop(tail);
}

#[test]
fn content_edited_while_stopped_is_read_again_whole_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_long(&log, 0, 40);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, acks) = receive(&mut tail, 40);
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    let mut edited = long(0, 40);
    edited[30] = "Nov 25 11:44:30 mx1 sendmail[4242]: EDITED".to_owned();
    edited.extend(long(40, 42));
    let text: String = edited.iter().map(|l| format!("{l}\n")).collect();
    replace_with(&log, text.as_bytes());
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (got, _) = receive(&mut tail, 42);
    assert_eq!(
        got, edited,
        "what was read cannot be told apart: all of it again"
    );
    assert_eq!(tail.stats.files_lost.load(Relaxed), 0);
    assert_eq!(tail.stats.diverged_files.load(Relaxed), 1);
    stop(tail);
}

#[test]
fn a_file_that_merely_starts_alike_is_another_file() {
    // vector#17240: a new file whose first line is the old one's is not a copy of it.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, "# header\n");
    write_long(&log, 0, 40);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 41).0.len(), 41);
    // rename + create, the new file starting with the same header line
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    append(&log, "# header\n");
    write_long(&log, 40, 45);
    let (got, _) = receive(&mut tail, 6);
    let mut expected = vec!["# header".to_owned()];
    expected.extend(long(40, 45));
    assert_eq!(got, expected);
    assert_eq!(tail.stats.replaced_files.load(Relaxed), 0);
    stop(tail);
}

#[test]
fn a_replacement_then_a_copytruncate_then_a_rename_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_long(&log, 0, 40);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 40).0, long(0, 40));
    replace_with(&log, &fs::read(&log).unwrap());
    write_long(&log, 40, 42);
    assert_eq!(receive(&mut tail, 2).0, long(40, 42));
    // copytruncate: a copy of the replacement, then the replacement truncated.
    fs::copy(&log, dir.path().join("mail.log.1")).unwrap();
    let truncate = fs::OpenOptions::new().write(true).open(&log).unwrap();
    truncate.set_len(0).unwrap();
    write_long(&log, 42, 44);
    assert_eq!(receive(&mut tail, 2).0, long(42, 44));
    // rename + create
    fs::rename(&log, dir.path().join("mail.log.2")).unwrap();
    write_long(&log, 44, 46);
    assert_eq!(receive(&mut tail, 2).0, long(44, 46));
    let (more, _) = anything_more(&mut tail);
    assert!(more.is_empty(), "delivered again: {more:?}");
    assert_eq!(tail.stats.replaced_files.load(Relaxed), 1);
    stop(tail);
}

#[test]
fn a_crash_after_a_replacement_repeats_only_what_was_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_long(&log, 0, 40);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, acks) = receive(&mut tail, 40);
    tail.checkpointer.commit(&acks).unwrap();
    write_long(&log, 40, 42);
    assert_eq!(receive(&mut tail, 2).0, long(40, 42)); // from the old file, never committed
    replace_with(&log, &fs::read(&log).unwrap());
    write_long(&log, 42, 44);
    assert_eq!(receive(&mut tail, 2).0, long(42, 44)); // from the new one, never committed
    stop(tail); // as a crash: nothing more committed

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (got, acks) = receive(&mut tail, 4);
    assert_eq!(got, long(40, 44), "what was not committed, once");
    let (more, _) = anything_more(&mut tail);
    assert!(more.is_empty(), "delivered again: {more:?}");
    assert_eq!(tail.stats.files_lost.load(Relaxed), 0);
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (more, _) = anything_more(&mut tail);
    assert!(more.is_empty(), "delivered again: {more:?}");
    stop(tail);
}
