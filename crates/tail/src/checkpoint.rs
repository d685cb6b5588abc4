//! The checkpoint file: where every followed file was, persisted so that a restart resumes there.
//!
//! Durability: a save writes a temporary file, fsyncs it, renames it over the *older* of two
//! slots (`checkpoint.a.json`, `checkpoint.b.json`) and fsyncs the directory. The newest slot is
//! never overwritten, so a crash at any instant leaves at least one complete generation, and the
//! previous generation stays on disk beside the newest. Each slot ends with a CRC-32 of its body:
//! a torn write, a file of NUL bytes after a power loss, or a hand edit is detected, reported
//! loudly, and the other slot is used.
//!
//! This module owns the format and the files only; what the positions mean is
//! the registry's business. It never deletes a slot it cannot read (the evidence stays).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::identity::{FileKey, Fingerprint};

/// The format tag at the top of every slot; a future format bumps the number.
const FORMAT: &str = "maillog-tail-checkpoint/1";
const SLOTS: [&str; 2] = ["checkpoint.a.json", "checkpoint.b.json"];
const CRC_TRAILER: &str = "\ncrc32 ";

/// What is known about one file: its identity and the position up to which its lines are safe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Device and inode.
    pub key: FileKey,
    /// The file's first bytes (decompressed for `.gz`/`.bz2`).
    pub fingerprint: Fingerprint,
    /// Which content of the file the position is in: a new number, unique in the checkpoint,
    /// for every file found and every truncation, so an old position never applies to new
    /// content (nor to a new file that got the inode).
    pub epoch: u32,
    /// Committed position: every line before it is durable downstream. For a compressed file,
    /// a position in its decompressed content.
    pub offset: u64,
    /// Where the file was last seen (a hint: after a rename it is searched for by identity).
    pub path: String,
    /// Whether the file is a `.gz`/`.bz2` archive read once.
    pub compressed: bool,
    /// Order of the content: a file found (or restarted by truncation) later has a higher
    /// number. Rotated files are finished oldest first after a restart. 0 = not yet assigned.
    #[serde(default)]
    pub seq: u64,
    /// Set when the file was read to its end and let go (rotated away, or an archive read
    /// once): the length of its content then. The file is complete once `offset` reaches it.
    pub eof: Option<u64>,
    /// The length of the file's content when last seen (decompressed bytes read so far for
    /// `.gz`/`.bz2`). Lines between `offset` and it were never committed: if the file
    /// vanishes before they are, at least this much is lost. 0 in checkpoints written before
    /// it was kept.
    #[serde(default)]
    pub size: u64,
    /// A fingerprint of the last bytes (up to [`crate::identity::FINGERPRINT_BYTES`]) before
    /// `size`, taken when the file was `size` bytes long (plain files). With `fingerprint`,
    /// it tells after a restart whether a file with another inode at the path holds this
    /// content up to `size` (the file was replaced by a copy). None in checkpoints written
    /// before it was kept, and until the file was first looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Fingerprint>,
    /// Where reading this content began: 0, or the position a file was found at (the end, at
    /// a first start with [`crate::StartAt::End`]; what was read already, for a copy holding
    /// the rest of a truncated file or a replacement). Lines before it were never handed out
    /// in this epoch, so [`crate::Checkpointer::rewind`] never goes back past it. 0 in
    /// checkpoints written before it was kept.
    #[serde(default)]
    pub first: u64,
    /// For a replacement by a copy (a file with another inode holding a followed file's
    /// content: `sed -i`, rsync): the content its first bytes are. None otherwise, and in
    /// checkpoints written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues: Option<Continues>,
}

/// The older content a replacement starts with, at the same positions. Once that content is
/// gone from the checkpoint (its file let go), positions kept by its epoch (a replay's
/// origins) apply to the replacement, and a rewind of the replacement may go back to where
/// that content's reading began: the lines there were read once, under the older epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continues {
    /// The older content's epoch.
    pub epoch: u32,
    /// Where the older content's reading began (its [`Entry::first`]).
    pub first: u64,
    /// The replacement's bytes before this position are the older content's.
    pub upto: u64,
}

impl Entry {
    /// Whether every line of the file is committed and it will not grow again.
    pub fn is_complete(&self) -> bool {
        self.eof == Some(self.offset)
    }

    /// How far back a rewind may move this content: where its reading began, or, for a
    /// replacement whose older content is no longer `known`, where that one's began.
    pub fn rewind_floor(&self, known: impl Fn(u32) -> bool) -> u64 {
        match self.continues {
            Some(older) if !known(older.epoch) => older.first.min(self.first),
            _ => self.first,
        }
    }
}

/// One generation of the checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The format tag.
    pub format: String,
    /// Increases by one with every save; the newest readable slot wins.
    pub generation: u64,
    /// When the first checkpoint was written (unix seconds): files written to after it that
    /// the checkpoint does not know were never read.
    #[serde(default)]
    pub created: u64,
    /// One entry per known file.
    pub entries: Vec<Entry>,
    /// The consumer's own state, saved in the same atomic write as the positions it goes with
    /// (the spool's: which window files hold the lines before those positions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<serde_json::Value>,
}

/// Why a checkpoint could not be saved (loading never fails: see [`Loaded`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot save the checkpoint in {dir}: {source}")]
pub struct SaveError {
    dir: PathBuf,
    #[source]
    source: io::Error,
}

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    /// No slot exists: a first start.
    Missing,
    /// The newest readable generation, with a description of every slot that was unreadable
    /// (non-empty means the previous generation was used, or a slot is damaged).
    Found {
        /// The generation loaded.
        checkpoint: Checkpoint,
        /// Unreadable slots: `path: reason`.
        damaged: Vec<String>,
    },
    /// Slots exist but none is readable.
    Unreadable {
        /// `path: reason` for each slot.
        damaged: Vec<String>,
    },
}

/// The two slot files in a directory.
#[derive(Debug)]
pub struct CheckpointStore {
    dir: PathBuf,
    generation: u64,
}

impl CheckpointStore {
    /// Opens (creating the directory if needed) and loads the newest readable generation.
    pub fn open(dir: &Path) -> Result<(Self, Loaded), SaveError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(|source| SaveError {
                dir: dir.to_owned(),
                source,
            })?;
        let mut newest: Option<Checkpoint> = None;
        let mut damaged = Vec::new();
        let mut any = false;
        for slot in SLOTS {
            let path = dir.join(slot);
            match fs::read(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => damaged.push(format!("{}: {e}", path.display())),
                Ok(bytes) => match decode(&bytes) {
                    Ok(cp) => {
                        if newest.as_ref().is_none_or(|n| cp.generation > n.generation) {
                            newest = Some(cp);
                        }
                    }
                    Err(reason) => damaged.push(format!("{}: {reason}", path.display())),
                },
            }
            any = true;
        }
        let generation = newest.as_ref().map_or(0, |c| c.generation);
        let store = CheckpointStore {
            dir: dir.to_owned(),
            generation,
        };
        let loaded = match newest {
            Some(checkpoint) => Loaded::Found {
                checkpoint,
                damaged,
            },
            None if any => Loaded::Unreadable { damaged },
            None => Loaded::Missing,
        };
        Ok((store, loaded))
    }

    /// Saves `entries` and `state` as the next generation, durably (see the module docs).
    pub fn save(
        &mut self,
        created: u64,
        entries: Vec<Entry>,
        state: Option<serde_json::Value>,
    ) -> Result<(), SaveError> {
        let generation = self.generation + 1;
        let checkpoint = Checkpoint {
            format: FORMAT.to_owned(),
            generation,
            created,
            entries,
            state,
        };
        self.write_slot(&checkpoint).map_err(|source| SaveError {
            dir: self.dir.clone(),
            source,
        })?;
        self.generation = generation;
        Ok(())
    }

    fn write_slot(&self, checkpoint: &Checkpoint) -> io::Result<()> {
        let body = serde_json::to_vec(checkpoint).map_err(io::Error::other)?;
        // Generations alternate between the slots: this one overwrites the older.
        let slot = SLOTS[(checkpoint.generation % 2) as usize];
        let tmp = self.dir.join(format!("{slot}.tmp"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640) // like the spool's files: the service's group may read it
            .open(&tmp)?;
        file.write_all(&body)?;
        writeln!(file, "{CRC_TRAILER}{:08x}", crc32fast::hash(&body))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, self.dir.join(slot))?;
        File::open(&self.dir)?.sync_all()
    }
}

/// Checks the trailer and parses a slot.
fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 (damaged)".to_owned())?;
    let (body, trailer) = text
        .rsplit_once(CRC_TRAILER)
        .ok_or_else(|| "no CRC trailer (torn or damaged write)".to_owned())?;
    let expected = u32::from_str_radix(trailer.trim_end(), 16)
        .map_err(|_| format!("bad CRC trailer {trailer:?}"))?;
    if crc32fast::hash(body.as_bytes()) != expected {
        return Err("CRC mismatch (damaged)".to_owned());
    }
    let checkpoint: Checkpoint =
        serde_json::from_str(body).map_err(|e| format!("not a checkpoint: {e}"))?;
    if checkpoint.format != FORMAT {
        return Err(format!(
            "unknown format {:?} (expected {FORMAT:?})",
            checkpoint.format
        ));
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> Entry {
        Entry {
            key: FileKey { dev: 1, ino: 2 },
            fingerprint: Fingerprint::of(b"head"),
            epoch: 0,
            offset,
            path: "/var/log/mail.log".into(),
            compressed: false,
            seq: 1,
            eof: None,
            size: offset,
            tail: None,
            first: 0,
            continues: None,
        }
    }

    fn newest(dir: &Path) -> Checkpoint {
        match CheckpointStore::open(dir).unwrap().1 {
            Loaded::Found { checkpoint, .. } => checkpoint,
            other => panic!("expected a checkpoint, got {other:?}"),
        }
    }

    #[test]
    fn the_newest_generation_wins_and_the_previous_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, loaded) = CheckpointStore::open(dir.path()).unwrap();
        assert!(matches!(loaded, Loaded::Missing));
        store.save(0, vec![entry(10)], None).unwrap();
        store.save(0, vec![entry(20)], None).unwrap();
        store.save(0, vec![entry(30)], None).unwrap();
        let cp = newest(dir.path());
        assert_eq!((cp.generation, cp.entries[0].offset), (3, 30));
        let (mut again, _) = CheckpointStore::open(dir.path()).unwrap();
        again.save(0, vec![entry(40)], None).unwrap();
        assert_eq!(newest(dir.path()).generation, 4);
    }

    #[test]
    fn a_damaged_newest_slot_falls_back_to_the_previous_generation() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = CheckpointStore::open(dir.path()).unwrap();
        store.save(0, vec![entry(10)], None).unwrap(); // generation 1: slot b
        store.save(0, vec![entry(20)], None).unwrap(); // generation 2: slot a
        fs::write(dir.path().join(SLOTS[0]), vec![0u8; 300]).unwrap(); // power loss: NULs
        match CheckpointStore::open(dir.path()).unwrap().1 {
            Loaded::Found {
                checkpoint,
                damaged,
            } => {
                assert_eq!(checkpoint.entries[0].offset, 10);
                assert_eq!(damaged.len(), 1);
                assert!(damaged[0].contains("checkpoint.a.json"), "{damaged:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_torn_or_edited_slot_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = CheckpointStore::open(dir.path()).unwrap();
        store.save(0, vec![entry(10)], None).unwrap();
        let path = dir.path().join(SLOTS[1]);
        let good = fs::read_to_string(&path).unwrap();
        fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(matches!(
            CheckpointStore::open(dir.path()).unwrap().1,
            Loaded::Unreadable { .. }
        ));
        fs::write(&path, good.replace("\"offset\":10", "\"offset\":99")).unwrap();
        match CheckpointStore::open(dir.path()).unwrap().1 {
            Loaded::Unreadable { damaged } => assert!(damaged[0].contains("CRC"), "{damaged:?}"),
            other => panic!("{other:?}"),
        }
    }
}
