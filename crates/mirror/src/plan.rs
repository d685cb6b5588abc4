//! Which mirror files the archive's files make, and their names.
//!
//! The rule, the same for the service and `maillog compact`:
//! - An **hour file** `{kind}-YYYY-MM-DD-HH[_±hhmm].parquet` holds every archive file of that
//!   kind and local hour (parts included) that no mirror file holds yet, written once the hour
//!   has *settled*: its end is `settle` in the past (windows sealed, late parts mostly in).
//! - An archive file that appears after its hour file was written (a late part, a window sealed
//!   late) gets a **file of its own**, named after it and tagged with the CRC-32 of its key
//!   (another host's file of the same name is another key): `to-2025-12-31-23-15.part-001.1a2b3c4d.parquet`.
//! - Under `mirror/{kind}/dt=YYYY-MM-DD/` (the local date of the windows, as in their names).
//!
//! So every archived record is in exactly one mirror file, a mirror file is never written twice
//! with other content, and which archive files a mirror file holds is decided by names alone
//! (deterministic). Names are read in the configured zone, and those another `time_zone` gave
//! (the config changed; a repeated hour's `_+0100` where the zone repeats none) are windows
//! too: every window file of the archive is mirrored, whichever zone named it. Files that are
//! not a window's (by name) are never mirrored.
//!
//! It never reads or writes a file: it takes names and returns names.

use std::collections::{BTreeMap, BTreeSet};

use maillog_batch::window::WindowId;
use maillog_parse::{Kind, Zone};

pub use crate::schema::PREFIX;

/// One mirror file to write: its key (under the archive's root) and the archive files (keys)
/// it holds, in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// `mirror/to/dt=2025-12-31/to-2025-12-31-23.parquet`.
    pub key: String,
    /// `from` or `to`.
    pub kind: Kind,
    /// The archive files it holds.
    pub covers: Vec<String>,
}

/// When a pass runs, and what must wait.
#[derive(Clone, Debug)]
pub struct Clock {
    /// Unix seconds: an hour settles once `now` is `settle` past its end.
    pub now: i64,
    /// Seconds after an hour's end before it is mirrored.
    pub settle: i64,
    /// Hours (`to-2025-12-31-23`) that must not be mirrored yet whatever the time (windows of
    /// theirs wait in the spool for the archive).
    pub busy: BTreeSet<String>,
}

/// What to write now, and what waits for its hour to settle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Mirror files to write.
    pub groups: Vec<Group>,
    /// Archive files not mirrored yet whose hour has not settled.
    pub waiting: usize,
}

/// The plan for the archive files `archive` (keys relative to the archive's root), of which
/// `covered` are held by the mirror files `mirrored` (keys) already; names read in `zone`;
/// what has settled by `clock`.
pub fn plan(
    archive: &[String],
    covered: &BTreeSet<String>,
    mirrored: &BTreeSet<String>,
    zone: &Zone,
    clock: &Clock,
) -> Plan {
    let mut hours: BTreeMap<String, (Kind, i64, Vec<String>)> = BTreeMap::new();
    for key in archive.iter().filter(|k| !covered.contains(*k)) {
        let name = key.rsplit('/').next().unwrap_or(key);
        let Some(id) = WindowId::from_any_file_name(name, zone) else {
            continue;
        };
        let Some((hour, minutes)) = hour_of(name) else {
            continue;
        };
        // The hour's start: the window's start less its minutes past the hour.
        let hour_start = id.start - minutes * 60;
        let entry = hours
            .entry(hour)
            .or_insert_with(|| (id.kind, hour_start, Vec::new()));
        entry.2.push(key.clone());
    }
    let mut plan = Plan::default();
    for (hour, (kind, start, mut covers)) in hours {
        covers.sort();
        let hour_file = mirror_key(kind, &hour);
        if mirrored.contains(&hour_file) {
            // Came after the hour was mirrored: a file each, named after its key (hosts that
            // share a bucket have files of the same name under other keys).
            for key in covers {
                let name = key.rsplit('/').next().unwrap_or(&key);
                let stem = name.strip_suffix(".json.bz2").unwrap_or(name);
                let tag = crc32fast::hash(key.as_bytes());
                plan.groups.push(Group {
                    key: mirror_key(kind, &format!("{stem}.{tag:08x}")),
                    kind,
                    covers: vec![key],
                });
            }
        } else if start + 3600 + clock.settle <= clock.now && !clock.busy.contains(&hour) {
            plan.groups.push(Group {
                key: hour_file,
                kind,
                covers,
            });
        } else {
            plan.waiting += covers.len();
        }
    }
    plan
}

/// The hour (`to-2025-12-31-23`, see [`hour_of`]) of an archive file's name.
pub fn hour_stem(name: &str) -> Option<String> {
    hour_of(name).map(|(hour, _)| hour)
}

/// `to-2025-12-31-23` (and the repeated hour's offset, `_+0100`) of an archive file's name,
/// and the minutes past the hour of its window.
fn hour_of(name: &str) -> Option<(String, i64)> {
    let stem = name.strip_suffix(".json.bz2")?;
    let stem = stem.split(".part-").next()?;
    let (kind, rest) = stem.split_once('-')?;
    let (stamp, repeat) = match rest.split_once('_') {
        Some((stamp, offset)) => (stamp, format!("_{offset}")),
        None => (rest, String::new()),
    };
    // YYYY-MM-DD-HH-MM
    let minutes = stamp.get(14..16)?.parse().ok()?;
    let hour = stamp.get(..13)?;
    (stamp.len() == 16).then(|| (format!("{kind}-{hour}{repeat}"), minutes))
}

/// `mirror/{kind}/dt={date}/{stem}.parquet`, the date from the stem's stamp.
fn mirror_key(kind: Kind, stem: &str) -> String {
    let date = stem
        .split_once('-')
        .and_then(|(_, rest)| rest.get(..10))
        .unwrap_or("unknown");
    format!("{PREFIX}/{}/dt={date}/{stem}.parquet", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_hours_make_one_file_and_late_comers_one_each() {
        let zone = Zone::Utc;
        let files: Vec<String> = [
            "mail_logs/2025-12-31/to-2025-12-31-22-00.json.bz2",
            "mail_logs/2025-12-31/to-2025-12-31-22-55.json.bz2",
            "mail_logs/2025-12-31/to-2025-12-31-22-55.part-001.json.bz2",
            "mail_logs/2025-12-31/from-2025-12-31-22-10.json.bz2",
            "mail_logs/2025-12-31/to-2025-12-31-23-05.json.bz2",
            "mail_logs/2025-12-31/notes.txt",
        ]
        .map(str::to_owned)
        .to_vec();
        // 2025-12-31T23:30Z: 22h settled with settle 1800 s, 23h not.
        let now = 1_767_223_800;
        let none = BTreeSet::new();
        let clock = Clock {
            now,
            settle: 1800,
            busy: BTreeSet::new(),
        };
        let first = plan(&files, &none, &none, &zone, &clock);
        let keys: Vec<&str> = first.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "mirror/from/dt=2025-12-31/from-2025-12-31-22.parquet",
                "mirror/to/dt=2025-12-31/to-2025-12-31-22.parquet"
            ]
        );
        assert_eq!(first.groups[1].covers.len(), 3);
        assert_eq!(first.waiting, 1);
        // Written; then a late part of 22h comes: a file of its own.
        let mut covered: BTreeSet<String> =
            first.groups.iter().flat_map(|g| g.covers.clone()).collect();
        let mirrored: BTreeSet<String> = first.groups.iter().map(|g| g.key.clone()).collect();
        let mut later = files.clone();
        later.push("mail_logs/2025-12-31/to-2025-12-31-22-20.part-001.json.bz2".to_owned());
        let second = plan(&later, &covered, &mirrored, &zone, &clock);
        let tag = crc32fast::hash(b"mail_logs/2025-12-31/to-2025-12-31-22-20.part-001.json.bz2");
        assert_eq!(
            second.groups[0].key,
            format!("mirror/to/dt=2025-12-31/to-2025-12-31-22-20.part-001.{tag:08x}.parquet")
        );
        // Busy hours wait whatever the clock.
        let busy = Clock {
            busy: ["to-2025-12-31-22".to_owned()].into(),
            ..clock.clone()
        };
        let held = plan(&files, &none, &none, &zone, &busy);
        assert_eq!(held.groups.len(), 1);
        assert_eq!(held.waiting, 4);
        // Nothing new: nothing to write.
        covered.extend(second.groups.iter().flat_map(|g| g.covers.clone()));
        let mut all = mirrored.clone();
        all.extend(second.groups.iter().map(|g| g.key.clone()));
        let third = plan(&later, &covered, &all, &zone, &clock);
        assert!(third.groups.is_empty());
    }
}
