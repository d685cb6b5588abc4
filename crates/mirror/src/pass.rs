//! One mirror pass: what the archive holds and the mirror does not, planned ([`crate::plan`])
//! and written, file by file. The same for `maillog compact` (the whole archive, once) and
//! the service (the last days' folders, every minute and at a stop).
//!
//! The files of a pass are written by as many threads as its caller gives it, each file by one
//! thread ([`cores`] for a pass that runs alone; the service's passes share the machine with
//! its compressors and take one). A pass can be killed at
//! any moment: each mirror file is one put that never replaces a key,
//! so a file is whole or absent, and the next pass plans again from what is there. A file
//! whose key holds other bytes (another writer's plan, made from other archive files) is left
//! as it is and said; its archive files are planned again by the next pass — now after their
//! hour was mirrored, each gets a file of its own — so nothing is held twice or lost.
//!
//! It never decides what is sealed or archived: it mirrors what the archive lists.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use maillog_parse::Zone;

use crate::plan::{self, Clock, Group, PREFIX};
use crate::store::{Made, MirrorError, MirrorStore};

/// Where a pass looks.
#[derive(Clone, Debug)]
pub enum Scope {
    /// The whole archive and the whole mirror (`maillog compact`).
    Everything,
    /// The archive keys under these prefixes, and the mirror's folders of these dates (the
    /// service: the last days).
    Recent {
        /// Archive key prefixes.
        archive: Vec<String>,
        /// Local dates, `YYYY-MM-DD`.
        dates: Vec<String>,
    },
}

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Passed {
    /// Mirror files written.
    pub written: usize,
    /// Their records.
    pub records: usize,
    /// The archive files they hold.
    pub archive_files: usize,
    /// Of those, the ones decoded from bzip2 (the others' records were in the stream cache).
    pub decoded: usize,
    /// Archive files not mirrored because their hour has not settled.
    pub waiting: usize,
    /// Mirror files whose key held other bytes (left as they were; planned again next pass).
    pub conflicts: Vec<String>,
}

/// What the mirror holds, as far as a pass has read it: mirror key → the archive files it
/// holds. A long-running writer keeps it between passes, so that each footer is read once.
#[derive(Clone, Debug, Default)]
pub struct Known {
    files: BTreeMap<String, Vec<String>>,
}

/// The machine's cores: the threads for a pass that has the machine to itself.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Writes `groups` on `threads` threads (each a file of its own), the results in their order.
fn write_all(
    store: &MirrorStore,
    groups: &[Group],
    threads: usize,
) -> Vec<Result<Option<Made>, MirrorError>> {
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(groups.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(groups.len()) {
            scope.spawn(|| {
                while let Some(group) = groups.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let written = store.write(group);
                    // A poisoned lock is another writer's panic: passed on by the scope.
                    if let Ok(mut done) = done.lock() {
                        done.push((group.key.clone(), written));
                    }
                }
            });
        }
    });
    // Back in the plan's order (keys are unique in a plan).
    let mut by_key: BTreeMap<String, _> =
        done.into_inner().unwrap_or_default().into_iter().collect();
    groups
        .iter()
        .map(|g| {
            by_key.remove(&g.key).unwrap_or_else(|| {
                Err(MirrorError::NotMirror {
                    key: g.key.clone(),
                    why: "not written: its writer thread failed".to_owned(),
                })
            })
        })
        .collect()
}

/// One pass over `scope` (see the module), in `zone`, writing on `threads` threads.
pub fn run(
    store: &MirrorStore,
    scope: &Scope,
    zone: &Zone,
    clock: &Clock,
    known: &mut Known,
    threads: usize,
) -> Result<Passed, MirrorError> {
    let (archive, mirror_keys) = match scope {
        Scope::Everything => (
            store.archive_files("")?,
            store.mirror_keys(&format!("{PREFIX}/"))?,
        ),
        Scope::Recent { archive, dates } => {
            let mut files = Vec::new();
            for prefix in archive {
                files.extend(store.archive_files(prefix)?);
            }
            let mut keys = Vec::new();
            for kind in ["from", "to"] {
                for date in dates {
                    keys.extend(store.mirror_keys(&format!("{PREFIX}/{kind}/dt={date}/"))?);
                }
            }
            (files, keys)
        }
    };
    for key in mirror_keys {
        if let std::collections::btree_map::Entry::Vacant(entry) = known.files.entry(key) {
            let covers = store.covers(entry.key())?;
            entry.insert(covers);
        }
    }
    let covered: BTreeSet<String> = known.files.values().flatten().cloned().collect();
    let mirrored: BTreeSet<String> = known.files.keys().cloned().collect();
    let plan = plan::plan(&archive, &covered, &mirrored, zone, clock);
    let mut passed = Passed {
        waiting: plan.waiting,
        ..Passed::default()
    };
    for (group, written) in plan
        .groups
        .iter()
        .zip(write_all(store, &plan.groups, threads))
    {
        match written {
            Ok(written) => {
                if let Some(made) = written {
                    passed.written += 1;
                    passed.records += made.records;
                    passed.decoded += made.decoded;
                    passed.archive_files += group.covers.len();
                }
                known.files.insert(group.key.clone(), group.covers.clone());
            }
            Err(e) if e.is_conflict() => {
                // Another writer's file: what it holds is read at the next pass.
                passed.conflicts.push(group.key.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(passed)
}
