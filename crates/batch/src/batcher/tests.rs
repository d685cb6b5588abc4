//! The batcher against the situations where time or state cannot be trusted: a record stamped
//! far ahead, a watermark persisted ahead of the clock, too many windows open, a window opened
//! again after it was archived, a name the archive holds with other bytes, and a resume from
//! the checkpoint's previous generation.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use chrono::DateTime;
use maillog_parse::{Kind, Parsed, Parser, TimeContext, YearPolicy, Zone};

use super::*;

fn unix(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp()
}

fn config() -> BatchConfig {
    let mut config = BatchConfig::new(Zone::Utc);
    config.threads = 1;
    config.level = 1;
    config
}

/// Adds a `from` record stamped `at` (RFC 3339).
fn add(batcher: &mut Batcher, at: &str, n: u32) {
    let parser = Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2026)), &[]);
    let line = format!(
        "{at} mail1 sendmail[1]: q{n:07}x: from=<a{n}@example.com>, size=1, class=0, nrcpts=1, relay=x"
    );
    match parser.parse(&line) {
        Parsed::Event(event) => {
            batcher.add(&event).unwrap();
        }
        Parsed::NonRecord(class) => panic!("not a record: {class:?}: {line}"),
    }
}

fn open(dir: &Path, state: Option<BatchState>, now: i64) -> Batcher {
    Batcher::open(dir, config(), state, now).unwrap().0
}

/// Seals what is due and returns the names sealed now.
fn seal(batcher: &mut Batcher) -> Vec<String> {
    batcher.seal_due(false);
    let (_, sealed) = batcher.sync(true).unwrap();
    batcher.committed();
    sealed.into_iter().map(|s| s.name).collect()
}

#[test]
fn a_record_stamped_far_ahead_does_not_stall_sealing() {
    let dir = tempfile::tempdir().unwrap();
    let now = unix("2026-12-03T10:00:30Z");
    let mut batcher = open(dir.path(), None, now);
    add(&mut batcher, "2026-12-03T10:00:10+00:00", 1);
    add(&mut batcher, "2099-01-01T00:00:00+00:00", 2);
    assert!(
        batcher.watermark() < unix("2026-12-03T10:10:00Z"),
        "the 2099 record did not move it"
    );
    assert_eq!(batcher.stats().ahead_of_clock, 1);
    // The live window is sealed on time: by the wall clock, 2 minutes after its end.
    batcher.idle(unix("2026-12-03T10:07:01Z"));
    assert_eq!(seal(&mut batcher), ["from-2026-12-03-10-00.json.bz2"]);
    // Later live records go to their own windows, not to a late part "opened in 2099".
    add(&mut batcher, "2026-12-03T10:07:30+00:00", 3);
    batcher.idle(unix("2026-12-03T10:12:01Z"));
    assert_eq!(seal(&mut batcher), ["from-2026-12-03-10-05.json.bz2"]);
    // The 2099 window is sealed by its open age, once.
    batcher.idle(unix("2026-12-03T10:15:31Z"));
    assert_eq!(seal(&mut batcher), ["from-2099-01-01-00-00.json.bz2"]);
    assert_eq!(batcher.stats().sealed_by_bound, 1);
}

#[test]
fn a_persisted_watermark_ahead_of_the_clock_is_pulled_back() {
    let dir = tempfile::tempdir().unwrap();
    let now = unix("2026-12-03T10:00:30Z");
    let state = BatchState {
        watermark: unix("2099-01-01T00:00:00Z"),
        ..BatchState::default()
    };
    let mut batcher = open(dir.path(), Some(state), now);
    assert_eq!(batcher.watermark(), now + 300);
    add(&mut batcher, "2026-12-03T10:00:40+00:00", 1);
    assert!(
        seal(&mut batcher).is_empty(),
        "the live window is not due yet"
    );
}

#[test]
fn too_many_open_windows_seal_the_farthest_first() {
    let dir = tempfile::tempdir().unwrap();
    let now = unix("2026-12-03T10:00:30Z");
    let mut batcher = Batcher::open(
        dir.path(),
        BatchConfig {
            max_open_windows: 3,
            ..config()
        },
        None,
        now,
    )
    .unwrap()
    .0;
    add(&mut batcher, "2026-12-03T10:00:10+00:00", 1);
    add(&mut batcher, "2026-12-03T10:01:10+00:00", 2);
    for (i, day) in ["2027-03-01", "2028-03-01", "2029-03-01"]
        .iter()
        .enumerate()
    {
        add(
            &mut batcher,
            &format!("{day}T00:00:00+00:00"),
            10 + i as u32,
        );
    }
    // The 2029 record needed room: the farthest window open then went, never its own.
    assert_eq!(seal(&mut batcher), ["from-2028-03-01-00-00.json.bz2"]);
    assert_eq!(batcher.stats().sealed_by_bound, 1);
    batcher.seal_due(true);
    let (state, sealed) = batcher.sync(true).unwrap();
    assert!(state.spool.open.is_empty());
    let records: u64 = batcher.sealed().iter().map(|s| s.records).sum();
    assert_eq!(
        (sealed.len(), records),
        (3, 5),
        "every record in a sealed file"
    );
}

#[test]
fn a_window_opened_again_after_its_archive_starts_a_further_part() {
    let dir = tempfile::tempdir().unwrap();
    let now = unix("2026-12-03T11:00:00Z");
    let mut batcher = open(dir.path(), None, now);
    add(&mut batcher, "2026-12-03T10:00:10+00:00", 1);
    batcher.idle(now);
    assert_eq!(seal(&mut batcher), ["from-2026-12-03-10-00.json.bz2"]);
    batcher.release("from-2026-12-03-10-00.json.bz2").unwrap();
    let (state, _) = batcher.sync(true).unwrap();
    drop(batcher);
    // The next run (a lost spool state would do the same: the ledger is its own file).
    for state in [Some(state), None] {
        let mut batcher = open(dir.path(), state, now);
        add(&mut batcher, "2026-12-03T10:01:10+00:00", 2);
        batcher.idle(now + 120); // a late part waits the lateness for more late records
        assert_eq!(
            seal(&mut batcher),
            ["from-2026-12-03-10-00.part-001.json.bz2"]
        );
        // Not released: the next loop starts from a fresh spool again.
        drop(batcher);
        std::fs::remove_dir_all(dir.path().join("sealed")).unwrap();
    }
}

#[test]
fn a_name_the_archive_holds_with_other_bytes_goes_to_a_further_part() {
    let dir = tempfile::tempdir().unwrap();
    let now = unix("2026-12-03T11:00:00Z");
    let mut batcher = open(dir.path(), None, now);
    add(&mut batcher, "2026-12-03T10:00:10+00:00", 1);
    batcher.idle(now);
    let name = "from-2026-12-03-10-00.json.bz2";
    assert_eq!(seal(&mut batcher), [name]);
    let id = batcher.retarget(name).unwrap().unwrap();
    assert_eq!((id.kind, id.part), (Kind::From, 1));
    assert_eq!(batcher.sealed()[0].archive_id(), id);
    // Taken again (another host, a lost spool): the part after.
    assert_eq!(batcher.retarget(name).unwrap().unwrap().part, 2);
    batcher.release(name).unwrap();
    add(&mut batcher, "2026-12-03T10:02:10+00:00", 2);
    batcher.idle(now + 120);
    assert_eq!(
        seal(&mut batcher),
        ["from-2026-12-03-10-00.part-003.json.bz2"]
    );
}

/// The same on a full disk (a spool lost with its ledger, a replay sealing a window the
/// archive has): the name goes to the next part at once; the ledger's line waits for room.
#[test]
fn a_name_taken_on_a_full_disk_goes_to_a_further_part_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    // Root (CI) mounts a small tmpfs; elsewhere this says SKIPPED (never under CI=true).
    let Some(disk) = maillog_testkit::tmpfs::Tmpfs::mount(&dir.path().join("vol"), "2m") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "cannot mount a tmpfs under CI"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let now = unix("2026-12-03T11:00:00Z");
    let mut batcher = open(&disk.path().join("windows"), None, now);
    add(&mut batcher, "2026-12-03T10:00:10+00:00", 1);
    batcher.idle(now);
    let name = "from-2026-12-03-10-00.json.bz2";
    assert_eq!(seal(&mut batcher), [name]);
    disk.fill();
    let id = batcher
        .retarget(name)
        .expect("a full disk is no reason to fail");
    assert_eq!(id.unwrap().part, 1);
    assert_eq!(batcher.retarget(name).unwrap().unwrap().part, 2);
    disk.free();
    batcher.release(name).unwrap();
    add(&mut batcher, "2026-12-03T10:02:10+00:00", 2);
    batcher.idle(now + 120);
    assert_eq!(
        seal(&mut batcher),
        ["from-2026-12-03-10-00.part-003.json.bz2"],
        "the names taken meanwhile reached the ledger"
    );
}

#[test]
fn the_previous_generation_still_opens_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let now = unix("2026-12-03T10:00:30Z");
    let mut batcher = open(dir.path(), None, now);
    // Enough records for a full block, compressed between the two commits.
    for n in 0..12_000 {
        add(&mut batcher, "2026-12-03T10:00:10+00:00", n);
    }
    let (previous, _) = batcher.sync(false).unwrap();
    batcher.committed();
    for n in 12_000..12_010 {
        add(&mut batcher, "2026-12-03T10:00:20+00:00", n);
    }
    let (newest, _) = batcher.sync(true).unwrap();
    batcher.committed();
    assert_ne!(previous.spool, newest.spool);
    drop(batcher);
    // The newest slot is damaged: the checkpoint falls back to the previous generation.
    let (mut batcher, _) =
        Batcher::open(dir.path(), config(), Some(previous.clone()), now).unwrap();
    batcher.idle(unix("2026-12-03T10:08:00Z"));
    assert_eq!(seal(&mut batcher), ["from-2026-12-03-10-00.json.bz2"]);
    let sealed = &batcher.sealed()[0];
    assert_eq!(sealed.records, previous.spool.open[0].records);
    let bytes = std::fs::read(batcher.sealed_path(&sealed.name)).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut bzip2::read::MultiBzDecoder::new(&bytes[..]), &mut text)
        .unwrap();
    assert_eq!(text.lines().count() as u64, sealed.records);
}

#[test]
fn a_spool_without_its_state_offers_every_record_again() {
    let dir = tempfile::tempdir().unwrap();
    let now = unix("2026-12-03T10:20:00Z");
    let mut batcher = open(dir.path(), None, now);
    add(&mut batcher, "2026-12-03T10:00:10+00:00", 1);
    batcher.idle(now);
    assert_eq!(seal(&mut batcher), ["from-2026-12-03-10-00.json.bz2"]);
    // An open window with streams, a block being compressed and a current block.
    for n in 0..12_010 {
        add(&mut batcher, "2026-12-03T10:15:10+00:00", n);
    }
    batcher.sync(false).unwrap();
    drop(batcher);
    // The checkpoint is removed by hand: no state.
    let (batcher, recovery) = Batcher::open(dir.path(), config(), None, now).unwrap();
    let mut sealed: Vec<_> = batcher
        .sealed()
        .iter()
        .map(|s| (s.name.clone(), s.records))
        .collect();
    sealed.sort();
    assert_eq!(
        sealed,
        [
            ("from-2026-12-03-10-00.json.bz2".to_owned(), 1),
            ("from-2026-12-03-10-15.json.bz2".to_owned(), 12_010)
        ]
    );
    assert_eq!(recovery.salvaged_records, 12_011);
    let bytes = std::fs::read(batcher.sealed_path("from-2026-12-03-10-15.json.bz2")).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut bzip2::read::MultiBzDecoder::new(&bytes[..]), &mut text)
        .unwrap();
    let mut seen: Vec<&str> = text.lines().collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12_010, "every record once");
}
