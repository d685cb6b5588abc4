//! Stopped across rotations: every line written after the checkpoint read once, in the order
//! it was written, whatever logrotate did meanwhile (numbered files moving up, delayed
//! compression, the oldest deleted) — and lines that are gone said to be gone.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::*;
use maillog_tail::{TailCore, spawn};

#[test]
fn three_rotations_while_stopped_are_read_in_write_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 10);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, acks) = receive(&mut tail, 10);
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    // Stopped: A gets ten more lines, then three rotations; B, C, D after it.
    write_numbered(&log, 10, 20); // A
    for (from, to) in [(20, 30), (30, 40), (40, 50)] {
        logrotate(dir.path(), 14);
        write_numbered(&log, from, to);
    }
    assert!(dir.path().join("mail.log.3.gz").exists()); // A
    assert!(dir.path().join("mail.log.2.gz").exists()); // B
    assert!(dir.path().join("mail.log.1").exists()); // C
    std::thread::sleep(Duration::from_millis(400)); // quiet for the rotate wait

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (lines, acks) = receive(&mut tail, 40);
    assert_eq!(
        lines,
        numbered(10, 50),
        "every line after the checkpoint, in order"
    );
    tail.checkpointer.commit(&acks).unwrap();
    std::thread::sleep(Duration::from_millis(1500)); // mail.log.1 is let go
    let (lines, acks) = anything_more(&mut tail);
    assert!(lines.is_empty(), "read twice: {lines:?}");
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (lines, _) = anything_more(&mut tail);
    assert!(lines.is_empty(), "read again after a restart: {lines:?}");
    stop(tail);
}

#[test]
fn two_rotations_while_stopped_without_compression_are_read_in_write_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 10);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, acks) = receive(&mut tail, 10);
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    write_numbered(&log, 10, 20);
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    write_numbered(&log, 20, 30);
    fs::rename(dir.path().join("mail.log.1"), dir.path().join("mail.log.2")).unwrap();
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    write_numbered(&log, 30, 40);

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 30).0, numbered(10, 40));
    stop(tail);
}

#[test]
fn the_rest_of_a_partly_read_file_is_read_once_from_its_compressed_copy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 10);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, acks) = receive(&mut tail, 10);
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    write_numbered(&log, 10, 20);
    logrotate(dir.path(), 14);
    write_numbered(&log, 20, 30);
    logrotate(dir.path(), 14); // A is in mail.log.2.gz now
    write_numbered(&log, 30, 40);
    assert!(dir.path().join("mail.log.2.gz").exists());
    std::thread::sleep(Duration::from_millis(400));

    // Read but not committed (a crash): all of it again.
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 30).0, numbered(10, 40));
    stop(tail);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (lines, acks) = receive(&mut tail, 30);
    assert_eq!(lines, numbered(10, 40), "after a crash");
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (lines, _) = anything_more(&mut tail);
    assert!(lines.is_empty(), "read again: {lines:?}");
    stop(tail);
}

#[test]
fn a_compressed_copy_of_a_file_read_already_is_not_read_again() {
    for delay in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        write_numbered(&log, 0, 10);
        let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
        let (_, mut acks) = receive(&mut tail, 10);
        if delay {
            logrotate(dir.path(), 14);
        } else {
            // `compress` without `delaycompress`: compressed at once, while it is followed.
            fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
            gzip_file(
                &dir.path().join("mail.log.1"),
                &dir.path().join("mail.log.1.gz"),
            );
        }
        write_numbered(&log, 10, 20);
        acks.extend(receive(&mut tail, 10).1);
        std::thread::sleep(Duration::from_millis(1000)); // the old file is let go
        if delay {
            logrotate(dir.path(), 14); // the first file is compressed now
            assert!(dir.path().join("mail.log.2.gz").exists());
            write_numbered(&log, 20, 30);
            acks.extend(receive(&mut tail, 10).1);
        }
        std::thread::sleep(Duration::from_millis(1500)); // the copy is quiet and looked at
        let (lines, more) = anything_more(&mut tail);
        assert!(lines.is_empty(), "delay {delay}: read again {lines:?}");
        acks.extend(more);
        tail.checkpointer.commit(&acks).unwrap();
        stop(tail);
        let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
        let (lines, _) = anything_more(&mut tail);
        assert!(
            lines.is_empty(),
            "delay {delay}: read again after a restart: {lines:?}"
        );
        stop(tail);
    }
}

#[test]
fn a_file_deleted_before_it_was_read_to_its_end_is_reported_lost() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 10);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, acks) = receive(&mut tail, 10);
    write_numbered(&log, 10, 20);
    assert_eq!(receive(&mut tail, 10).0, numbered(10, 20)); // read, never committed
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    // Stopped: rotated, and the rotation deleted (`rotate 0`, or by hand).
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    write_numbered(&log, 20, 25);
    fs::remove_file(dir.path().join("mail.log.1")).unwrap();

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 5).0, numbered(20, 25));
    let get = |c: &AtomicU64| c.load(Relaxed);
    assert_eq!(get(&tail.stats.files_lost), 1, "the loss is counted");
    assert_eq!(
        get(&tail.stats.bytes_lost),
        80,
        "lines 10 to 19, 8 bytes each"
    );
    stop(tail);
}

#[test]
fn a_rotated_file_written_to_after_it_was_let_go_is_read_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 3);
    let mut core = TailCore::open(config(dir.path(), &["mail.log"])).unwrap();
    let mut got = Collected::default();
    let t0 = Instant::now();
    got.pass(&mut core, t0);
    // Rotated, and the writer does not reopen (its postrotate failed): after the rotate wait
    // the file is let go, and then the writer writes on.
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    got.pass(&mut core, t0);
    got.pass(&mut core, t0 + Duration::from_secs(10));
    assert_eq!(core.followed().len(), 0, "let go");
    write_numbered(&dir.path().join("mail.log.1"), 3, 5);
    got.pass(&mut core, t0 + Duration::from_secs(11));
    assert_eq!(got.lines, numbered(0, 5));
}

#[test]
fn a_rotation_compressed_in_a_format_not_read_is_not_taken_for_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 3);
    let mut core = TailCore::open(config(dir.path(), &["mail.log"])).unwrap();
    let mut got = Collected::default();
    got.pass(&mut core, Instant::now());
    // xz's magic, then bytes that would pass for lines.
    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0x00];
    xz.extend_from_slice(b"not\nlines\n");
    fs::write(dir.path().join("mail.log.2.xz"), xz).unwrap();
    got.pass(&mut core, Instant::now() + Duration::from_secs(1));
    assert_eq!(got.lines, numbered(0, 3));
}

#[test]
fn unread_rotations_compressed_with_bzip2_are_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 5);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, acks) = receive(&mut tail, 5);
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    // Stopped: A (read) moves to .3; B, written after the stop, ends in .2 compressed with
    // bzip2; C in .1; D is the live file.
    fs::rename(&log, dir.path().join("mail.log.3")).unwrap();
    write_numbered(&log, 5, 10);
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    std::io::Write::write_all(&mut enc, fs::read(&log).unwrap().as_slice()).unwrap();
    fs::write(dir.path().join("mail.log.2.bz2"), enc.finish().unwrap()).unwrap();
    fs::remove_file(&log).unwrap();
    write_numbered(&dir.path().join("mail.log.1"), 10, 15);
    write_numbered(&log, 15, 20);
    std::thread::sleep(Duration::from_millis(400));

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 15).0, numbered(5, 20));
    stop(tail);
}

#[test]
fn lines_read_from_a_deleted_rotation_and_not_committed_come_again_from_its_compressed_copy() {
    // The writer wrote to A after A was rotated (it had not reopened yet); a second rotation
    // moved A to mail.log.2, and logrotate compressed and deleted it. maillog read A's lines
    // through the descriptor it still had, found the compressed copy, let A go, and crashed
    // before those lines were committed: the restart reads them from the copy, once.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, "");
    let tail_config = config(dir.path(), &["mail.log"]);
    let mut core = TailCore::open(tail_config.clone()).unwrap();
    let mut got = Collected::default();
    let t0 = Instant::now();
    got.pass(&mut core, t0); // follows A, empty
    let mut writer = fs::OpenOptions::new().append(true).open(&log).unwrap();
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    std::io::Write::write_all(&mut writer, b"line 0\nline 1\nline 2\n").unwrap();
    append(&log, ""); // B: the writer reopens
    logrotate(dir.path(), 14); // A to mail.log.2.gz (A deleted), B to mail.log.1
    let mut send = |chunk: maillog_tail::Chunk| {
        let lines = chunk
            .lines()
            .map(|l| String::from_utf8_lossy(l).into_owned());
        got.lines.extend(lines);
        got.acks.push(chunk.ack);
        true
    };
    // A wakeup without a rescan: A read through its descriptor.
    while core.pass(t0, false, &mut send).unwrap().more {}
    assert_eq!(got.lines, numbered(0, 3));
    std::thread::sleep(Duration::from_millis(400)); // the copy is quiet
    got.pass(&mut core, t0 + Duration::from_secs(10)); // the copy found; A let go
    assert_eq!(got.lines, numbered(0, 3), "nothing twice");
    drop(core); // a crash: nothing was committed

    let mut core = TailCore::open(tail_config.clone()).unwrap();
    let mut again = Collected::default();
    again.pass(&mut core, Instant::now());
    assert_eq!(again.lines, numbered(0, 3), "from the compressed copy");
    core.checkpointer().commit(&again.acks).unwrap();
    drop(core);
    let mut core = TailCore::open(tail_config).unwrap();
    let mut more = Collected::default();
    more.pass(&mut core, Instant::now());
    assert!(more.lines.is_empty(), "delivered again: {:?}", more.lines);
    assert_eq!(core.stats().bytes_lost.load(Relaxed), 0);
}
