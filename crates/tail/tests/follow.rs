//! The tailer as a service: a thread woken by inotify (or polling), a bounded channel out, and
//! the checkpoint behaviour users rely on across restarts.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use maillog_tail::{CheckpointOrigin, ChunkKind, StartAt, TailCore, WatchMode, spawn};

use common::*;

#[test]
fn follows_appends_and_a_rename_rotation_with_inotify_and_with_polling() {
    for watch in [WatchMode::Auto, WatchMode::Poll] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        write_numbered(&log, 0, 10);
        let mut config = config(dir.path(), &["mail.log"]);
        config.watch = watch;
        let mut tail = spawn(config).unwrap();
        assert_eq!(receive(&mut tail, 10).0, numbered(0, 10));

        write_numbered(&log, 10, 20);
        assert_eq!(receive(&mut tail, 10).0, numbered(10, 20), "{watch:?}");

        // logrotate `create`: rename, the writer still writes a little to the old file, then
        // reopens a new one.
        let mut old = OpenOptions::new().append(true).open(&log).unwrap();
        fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
        old.write_all(b"line 20\n").unwrap();
        write_numbered(&log, 21, 30);
        assert_eq!(receive(&mut tail, 10).0, numbered(20, 30), "{watch:?}");
        assert_eq!(
            tail.stats
                .rotations
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        stop(tail);
    }
}

#[test]
fn picks_up_date_named_files_that_appear_later() {
    let dir = tempfile::tempdir().unwrap();
    write_numbered(&dir.path().join("mail-20261124.log"), 0, 5);
    let mut tail = spawn(config(dir.path(), &["mail-*.log"])).unwrap();
    assert_eq!(receive(&mut tail, 5).0, numbered(0, 5));
    write_numbered(&dir.path().join("mail-20261125.log"), 5, 10);
    assert_eq!(receive(&mut tail, 5).0, numbered(5, 10));
    stop(tail);
}

#[test]
fn a_restart_resumes_at_the_committed_position_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 10);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (lines, acks) = receive(&mut tail, 10);
    assert_eq!(lines, numbered(0, 10));
    tail.checkpointer.commit(&acks).unwrap();
    write_numbered(&log, 10, 15);
    assert_eq!(receive(&mut tail, 5).0, numbered(10, 15)); // received, never committed
    stop(tail);

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(
        receive(&mut tail, 5).0,
        numbered(10, 15),
        "uncommitted lines come again"
    );
    stop(tail);
}

#[test]
fn start_at_end_skips_what_is_there_at_the_first_start_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, "old 1\nold 2\npartial old");
    let mut config = config(dir.path(), &["mail.log"]);
    config.start_at = StartAt::End;
    let mut tail = spawn(config.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    append(&log, " line\n");
    write_numbered(&log, 0, 3);
    assert_eq!(
        receive(&mut tail, 4).0,
        ["partial old line", "line 0", "line 1", "line 2"]
    );
    stop(tail);
    // Nothing committed, but the start position was saved: the lines come again, the old
    // ones do not.
    let mut tail = spawn(config).unwrap();
    assert_eq!(receive(&mut tail, 4).0.len(), 4);
    stop(tail);
}

#[test]
fn a_damaged_checkpoint_falls_back_loudly_and_never_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 3);
    let config = config(dir.path(), &["mail.log"]);
    let mut tail = spawn(config.clone()).unwrap();
    let (_, acks) = receive(&mut tail, 3);
    tail.checkpointer.commit(&acks).unwrap(); // generation 2 (the start saved generation 1)
    stop(tail);

    // Power loss: the newest slot is NUL bytes. The previous generation is used.
    let state = dir.path().join("state");
    let newest = ["checkpoint.a.json", "checkpoint.b.json"]
        .map(|s| state.join(s))
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    fs::write(&newest, [0u8; 64]).unwrap();
    let core = TailCore::open(config.clone()).unwrap();
    assert!(matches!(core.origin(), CheckpointOrigin::PreviousGeneration(d) if d.len() == 1));

    // Both slots damaged: the configured start, and a clear account of why.
    for slot in ["checkpoint.a.json", "checkpoint.b.json"] {
        fs::write(state.join(slot), "{\"garbage\"").unwrap();
    }
    let core = TailCore::open(config.clone()).unwrap();
    assert!(matches!(core.origin(), CheckpointOrigin::Unreadable(d) if d.len() == 2));
    let mut tail = spawn(config).unwrap();
    assert_eq!(receive(&mut tail, 3).0, numbered(0, 3));
    stop(tail);
}

#[test]
fn long_lines_are_cut_and_a_partial_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut config = config(dir.path(), &["mail.log"]);
    config.max_line_bytes = 100;
    append(
        &log,
        &format!("short\n{}\nafter\nno newline yet", "L".repeat(1000)),
    );
    let mut tail = spawn(config).unwrap();
    let mut kinds = Vec::new();
    let mut lines = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        if let Ok(chunk) = tail.chunks.try_recv() {
            kinds.push(chunk.kind);
            lines.extend(
                chunk
                    .lines()
                    .map(|l| String::from_utf8_lossy(l).into_owned()),
            );
        }
    }
    assert_eq!(lines, ["short", &"L".repeat(100), "after"]);
    assert!(kinds.contains(&ChunkKind::CutLine));
    append(&log, ", now it has\n");
    assert_eq!(receive(&mut tail, 1).0, ["no newline yet, now it has"]);
    stop(tail);
}

/// Two independent bzip2 streams back to back: a multistream file.
fn bzip2_multistream(lines: &[String], path: &Path) {
    let mut out = Vec::new();
    for half in lines.chunks(lines.len().div_ceil(2)) {
        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        for l in half {
            writeln!(enc, "{l}").unwrap();
        }
        out.extend(enc.finish().unwrap());
    }
    fs::write(path, out).unwrap();
}

#[test]
fn compressed_archives_are_read_once_start_to_end() {
    let dir = tempfile::tempdir().unwrap();
    gzip(&numbered(0, 1000), &dir.path().join("mail.log.2.gz"));
    bzip2_multistream(&numbered(1000, 2000), &dir.path().join("mail.log.1.bz2"));
    let mut config = config(dir.path(), &["mail.log.2.gz", "mail.log.1.bz2"]);
    config.follow = false;
    let mut tail = spawn(config.clone()).unwrap();
    let (lines, acks) = receive(&mut tail, 2000);
    assert_eq!(lines, numbered(0, 2000));
    tail.checkpointer.commit(&acks).unwrap();
    tail.handle.join().unwrap();

    let mut tail = spawn(config).unwrap();
    let (again, _) = receive(&mut tail, 1);
    assert!(
        again.is_empty(),
        "archives read once: {} lines again",
        again.len()
    );
}

#[test]
fn a_copytruncate_while_stopped_is_finished_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 10);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, acks) = receive(&mut tail, 10);
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    // While stopped: more lines, logrotate copytruncate with compress, new lines.
    write_numbered(&log, 10, 20);
    let all: Vec<String> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    gzip(&all, &dir.path().join("mail.log.1.gz"));
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    write_numbered(&log, 20, 25);

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 15).0, numbered(10, 25));
    stop(tail);
}

#[test]
fn a_rotated_and_compressed_file_is_finished_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 10);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, acks) = receive(&mut tail, 10);
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    write_numbered(&log, 10, 20);
    let rotated: Vec<String> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    gzip(&rotated, &dir.path().join("mail.log.1.gz"));
    fs::remove_file(&log).unwrap();
    write_numbered(&log, 20, 25);

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(receive(&mut tail, 15).0, numbered(10, 25));
    stop(tail);
}

#[test]
fn a_slow_consumer_makes_the_tailer_wait() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 200_000);
    let mut config = config(dir.path(), &["mail.log"]);
    config.channel_capacity = 2;
    config.read_bytes = 4096;
    let mut tail = spawn(config).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The thread filled the channel and waits: it has read a few chunks, not the file.
    let read = tail.stats.bytes.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        read <= 4 * 4096,
        "read {read} bytes ahead of a consumer that took nothing"
    );
    assert_eq!(receive(&mut tail, 200_000).0.len(), 200_000);
    stop(tail);
}

#[test]
fn a_rotated_file_read_and_committed_is_not_opened_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 10);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    let (_, mut acks) = receive(&mut tail, 10);
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    write_numbered(&log, 10, 20);
    acks.extend(receive(&mut tail, 10).1);
    std::thread::sleep(Duration::from_millis(1500)); // the rotate wait: mail.log.1 is let go
    assert_eq!(
        tail.stats
            .files_released
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    tail.checkpointer.commit(&acks).unwrap();
    stop(tail);

    let tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        tail.stats
            .files_opened
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    stop(tail);
}

#[test]
fn the_consumers_state_is_saved_with_the_positions() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_numbered(&log, 0, 3);
    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(tail.checkpointer.state(), None);
    let (_, acks) = receive(&mut tail, 3);
    let state = serde_json::json!({"spool": {"from-2026-11-25-10-05": 1234}});
    tail.checkpointer.commit_with(&acks, state.clone()).unwrap();
    write_numbered(&log, 3, 4);
    receive(&mut tail, 1); // the tailer saves too (a new fingerprint): the state stays
    stop(tail);

    let mut tail = spawn(config(dir.path(), &["mail.log"])).unwrap();
    assert_eq!(tail.checkpointer.state(), Some(state));
    assert_eq!(receive(&mut tail, 1).0, numbered(3, 4));
    stop(tail);
}

#[test]
fn an_unterminated_last_line_of_a_live_file_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, "line 0\nline 1\nhalf a li");
    let mut core = TailCore::open(config(dir.path(), &["mail.log"])).unwrap();
    let mut got = Collected::default();
    let t0 = Instant::now();
    got.pass(&mut core, t0);
    // The writer has not flushed the rest yet, for a minute: the line still waits.
    got.pass(&mut core, t0 + Duration::from_secs(60));
    assert_eq!(
        got.lines,
        ["line 0", "line 1"],
        "an unterminated line of a live file was handed out"
    );
    core.checkpointer().commit(&got.acks).unwrap();
    let entries = core.checkpointer().entries();
    assert_eq!(
        entries[0].offset, 14,
        "the position is at the end of a line"
    );

    append(&log, "ne\n");
    got.pass(&mut core, t0 + Duration::from_secs(61));
    assert_eq!(got.lines, ["line 0", "line 1", "half a line"]);
}

#[test]
fn a_once_run_leaves_an_unterminated_last_line_to_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, "line 0\nline 1\nhalf a li");
    let mut config = config(dir.path(), &["mail.log"]);
    config.follow = false;
    let mut tail = spawn(config.clone()).unwrap();
    let (lines, acks) = receive_all(&mut tail);
    assert_eq!(lines, ["line 0", "line 1"], "a run that does not follow");
    tail.checkpointer.commit(&acks).unwrap();
    tail.handle.join().unwrap();

    append(&log, "ne\nline 3\n");
    let mut tail = spawn(config).unwrap();
    assert_eq!(receive_all(&mut tail).0, ["half a line", "line 3"]);
    tail.handle.join().unwrap();
}

#[test]
fn a_backfill_once_run_takes_the_last_line_as_a_line() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("mail.log"), "line 0\nline 1\nthe last");
    let mut config = config(dir.path(), &["mail.log"]);
    config.follow = false;
    config.finish_partial_lines = true;
    let mut tail = spawn(config.clone()).unwrap();
    let (lines, acks) = receive_all(&mut tail);
    assert_eq!(lines, ["line 0", "line 1", "the last"]);
    tail.checkpointer.commit(&acks).unwrap();
    tail.handle.join().unwrap();
    let mut tail = spawn(config).unwrap();
    assert!(receive_all(&mut tail).0.is_empty());
    tail.handle.join().unwrap();
}

#[test]
fn start_at_end_never_starts_inside_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    append(&log, "a first line, not written to its end");
    let mut config = config(dir.path(), &["mail.log"]);
    config.start_at = StartAt::End;
    let mut core = TailCore::open(config).unwrap();
    let mut got = Collected::default();
    got.pass(&mut core, Instant::now());
    append(&log, " yet\n");
    got.pass(&mut core, Instant::now());
    assert_eq!(got.lines, ["a first line, not written to its end yet"]);
}
