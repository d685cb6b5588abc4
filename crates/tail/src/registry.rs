//! The registry: every known file's identity and committed position, shared between the tailer
//! (which learns of files, rotations and truncations) and the consumer (which commits positions
//! once the lines before them are durable downstream).
//!
//! A position becomes part of the checkpoint only through [`Checkpointer::commit`]: reading a
//! line never advances it (lesson 7: committing on read loses what was buffered). Acks carry the
//! file's epoch, so an ack of lines read before a truncation cannot move the position of the
//! file's new content.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::checkpoint::{CheckpointStore, Entry, SaveError};
use crate::identity::{FileKey, Fingerprint};

/// A commit token: the lines of file `key` (in `epoch`) before `offset` have been handed out.
/// Handing it back to [`Checkpointer::commit`] says they are durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The file.
    pub key: FileKey,
    /// The file's epoch when the lines were read.
    pub epoch: u32,
    /// The position just after the last line covered.
    pub offset: u64,
}

/// Files found one after another get order numbers this far apart; the content a file gets
/// after a truncation takes the number after its old content's.
const SEQ_STEP: u64 = 1 << 20;

#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) entries: BTreeMap<FileKey, Entry>,
    store: CheckpointStore,
    /// The set of files or their identities changed since the last save.
    pub(crate) dirty: bool,
    /// Content of a truncated file's earlier epoch that lives on in a copy: acks of that epoch
    /// move the copy's position (the copy is that content, read on from where it stopped).
    moved: HashMap<(FileKey, u32), FileKey>,
    /// Content of a file's epoch that another content (its replacement, a copy with another
    /// inode) holds too, up to a position: acks of that epoch move the other's position too,
    /// up to there (both start with the same bytes).
    shared: HashMap<(FileKey, u32), (FileKey, u32, u64)>,
    next_seq: u64,
    /// The highest epoch handed out.
    next_epoch: u32,
    /// The consumer's state of the last commit, saved with every generation.
    state: Option<serde_json::Value>,
    /// When the first checkpoint was written (unix seconds).
    pub(crate) created: u64,
}

impl Registry {
    pub(crate) fn new(
        store: CheckpointStore,
        entries: Vec<Entry>,
        state: Option<serde_json::Value>,
        created: Option<u64>,
    ) -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let created = created.unwrap_or_else(|| now.map_or(0, |d| d.as_secs()));
        let next_seq =
            entries.iter().map(|e| e.seq).max().unwrap_or(0) / SEQ_STEP * SEQ_STEP + SEQ_STEP;
        let next_epoch = entries.iter().map(|e| e.epoch).max().unwrap_or(0);
        // A file known only while it was empty carries nothing to resume, and its inode may
        // belong to another file by now: it is found again like a new file.
        // Paths are absolute since inputs are resolved once; a checkpoint written before
        // that may hold paths relative to the working directory it was written in, which is
        // the one of every run that worked with it.
        let entries = entries
            .into_iter()
            .filter(|e| e.fingerprint.len > 0 || e.offset > 0 || e.compressed)
            .map(|mut e| {
                if let Ok(path) = std::path::absolute(&e.path) {
                    e.path = path.to_string_lossy().into_owned();
                }
                (e.key, e)
            })
            .collect();
        Registry {
            entries,
            store,
            dirty: false,
            moved: HashMap::new(),
            shared: HashMap::new(),
            next_seq,
            next_epoch,
            state,
            created,
        }
    }

    pub(crate) fn save(&mut self) -> Result<(), SaveError> {
        let entries = self.entries.values().cloned().collect();
        self.store.save(self.created, entries, self.state.clone())?;
        self.dirty = false;
        Ok(())
    }

    /// Saves if files came or went: a file found after the last save must be known after a
    /// crash, or a restart would not look for it once it is rotated away.
    pub(crate) fn save_if_dirty(&mut self) -> Result<(), SaveError> {
        if self.dirty { self.save() } else { Ok(()) }
    }

    fn commit(&mut self, ack: &Ack) {
        if let Some(&(other, epoch, upto)) = self.shared.get(&(ack.key, ack.epoch)) {
            // That content, wherever it is now (truncated since, and moved to a copy).
            let target = match self.entries.get(&other) {
                Some(entry) if entry.epoch == epoch => Some(other),
                _ => self.moved.get(&(other, epoch)).copied(),
            };
            if let Some(entry) = target.and_then(|t| self.entries.get_mut(&t)) {
                let offset = ack.offset.min(upto);
                let offset = entry.eof.map_or(offset, |eof| offset.min(eof));
                entry.offset = entry.offset.max(offset);
            }
        }
        let key = match self.entries.get(&ack.key) {
            Some(entry) if entry.epoch == ack.epoch => ack.key,
            _ => match self.moved.get(&(ack.key, ack.epoch)) {
                Some(&copy) => copy,
                None => return, // content that is gone: nothing left to resume
            },
        };
        if let Some(entry) = self.entries.get_mut(&key) {
            // A copy shorter than what was read from the original holds only its length.
            let offset = entry.eof.map_or(ack.offset, |eof| ack.offset.min(eof));
            if offset > entry.offset {
                entry.offset = offset;
            }
        }
    }

    /// Epoch `epoch` of file `key` continues in file `copy`.
    pub(crate) fn moved(&mut self, key: FileKey, epoch: u32, copy: FileKey) {
        self.moved.insert((key, epoch), copy);
    }

    /// The file `key` (content `epoch`), replaced by `to` whose content up to `upto` is the
    /// same, is let go and deleted with lines not committed: `to` takes them (its position
    /// moves back to `key`'s, and acks of `key` move it, up to `upto`).
    pub(crate) fn hand_over(&mut self, key: FileKey, epoch: u32, to: (FileKey, u32), upto: u64) {
        let Some(from) = self.entries.get(&key).filter(|e| e.epoch == epoch) else {
            return;
        };
        let offset = from.offset;
        if let Some(entry) = self.entries.get_mut(&to.0)
            && entry.epoch == to.1
            && offset < entry.offset
            && entry.offset <= upto
        {
            entry.offset = offset;
            self.dirty = true;
        }
        for (other, other_epoch, other_upto) in self.shared.values_mut() {
            if (*other, *other_epoch) == (key, epoch) {
                // Content handed over to `key` before: `to` holds it too.
                (*other, *other_epoch, *other_upto) = (to.0, to.1, (*other_upto).min(upto));
            }
        }
        self.shared.insert((key, epoch), (to.0, to.1, upto));
    }

    /// Records a file now being followed, positioned at `offset` (committed: nothing before it
    /// will be handed out). An epoch or seq of 0 gets a new one. Returns the epoch.
    pub(crate) fn register(&mut self, mut entry: Entry) -> u32 {
        self.dirty = true;
        if entry.epoch == 0 {
            entry.epoch = self.new_epoch();
            entry.first = entry.offset;
        } else if let Some(known) = self.entries.get(&entry.key)
            && known.epoch == entry.epoch
        {
            entry.first = known.first;
        }
        if entry.seq == 0 {
            entry.seq = self.next_seq;
            self.next_seq += SEQ_STEP;
        }
        let epoch = entry.epoch;
        self.entries.insert(entry.key, entry);
        epoch
    }

    /// Epochs are unique in the registry, so an ack names one content of one file even after
    /// its inode went to another file.
    fn new_epoch(&mut self) -> u32 {
        self.next_epoch += 1;
        self.next_epoch
    }

    /// The positions of the content of `epoch`s go back to `to`'s (never before where its
    /// reading began — see [`Entry::rewind_floor`] — nor forward). Returns each moved epoch's position before.
    pub(crate) fn rewind(&mut self, to: &BTreeMap<u32, u64>) -> BTreeMap<u32, u64> {
        let mut moved = BTreeMap::new();
        let known: BTreeSet<u32> = self.entries.values().map(|e| e.epoch).collect();
        for entry in self.entries.values_mut() {
            let Some(&target) = to.get(&entry.epoch) else {
                continue;
            };
            let target = target.max(entry.rewind_floor(|epoch| known.contains(&epoch)));
            if target < entry.offset {
                moved.insert(entry.epoch, entry.offset);
                entry.offset = target;
                self.dirty = true;
            }
        }
        moved
    }

    /// The file's fingerprint grew with it, or its path changed.
    pub(crate) fn update(&mut self, key: FileKey, fingerprint: Fingerprint, path: &str) {
        if let Some(entry) = self.entries.get_mut(&key) {
            self.dirty |= entry.fingerprint != fingerprint;
            entry.fingerprint = fingerprint;
            if entry.path != path {
                entry.path = path.to_owned();
                self.dirty = true;
            }
        }
    }

    /// The file's content (in `epoch`) was seen to be `size` bytes long. Kept in memory and
    /// saved with the next save (not worth a save of its own). `tail`: a fingerprint of the
    /// bytes just before `size`, for a plain file.
    pub(crate) fn saw(&mut self, key: FileKey, epoch: u32, size: u64, tail: Option<Fingerprint>) {
        if let Some(entry) = self.entries.get_mut(&key)
            && entry.epoch == epoch
        {
            entry.size = size;
            entry.tail = tail;
        }
    }

    /// The file `from` is gone and `to` holds its content (logrotate compressed it): the
    /// entry moves to `to`, positions and all, and acks of `from` move `to`'s position.
    pub(crate) fn transfer(&mut self, from: FileKey, to: FileKey, path: &str, compressed: bool) {
        if let Some(mut entry) = self.entries.remove(&from) {
            for copy in self.moved.values_mut().filter(|copy| **copy == from) {
                *copy = to; // content that had moved to `from` before
            }
            self.moved.insert((from, entry.epoch), to);
            entry.key = to;
            entry.path = path.to_owned();
            entry.compressed = compressed;
            self.entries.insert(to, entry);
            self.dirty = true;
        }
    }

    /// The file was truncated: its content starts over in a new epoch, returned.
    pub(crate) fn truncated(&mut self, key: FileKey, fingerprint: Fingerprint) -> u32 {
        self.dirty = true;
        let epoch = self.new_epoch();
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.epoch = epoch;
            // Right after the old content (which a copy may hold, with the old number), before
            // any file found since.
            entry.seq += 1;
            entry.offset = 0;
            entry.fingerprint = fingerprint;
            entry.eof = None;
        }
        epoch
    }

    /// A file let go is followed again (it has lines after where it was let go): no end
    /// until it is let go again.
    pub(crate) fn followed_again(&mut self, key: FileKey) {
        if let Some(entry) = self.entries.get_mut(&key) {
            self.dirty |= entry.eof.take().is_some();
        }
    }

    /// The file is gone for good.
    pub(crate) fn forget(&mut self, key: FileKey) {
        self.dirty |= self.entries.remove(&key).is_some();
        self.moved
            .retain(|(from, _), to| *from != key && *to != key);
    }

    /// The file was read to `eof` and let go.
    pub(crate) fn released(&mut self, key: FileKey, eof: u64, deleted: bool) {
        self.dirty = true;
        if deleted {
            self.entries.remove(&key);
        } else if let Some(entry) = self.entries.get_mut(&key) {
            entry.eof = Some(eof);
        }
    }
}

/// The consumer's handle on the checkpoint. Cheap to clone; usable from any thread.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    pub(crate) registry: Arc<Mutex<Registry>>,
}

impl Checkpointer {
    pub(crate) fn new(registry: Registry) -> Self {
        Checkpointer {
            registry: Arc::new(Mutex::new(registry)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain data behind (positions only move by
        // whole assignments), so the state is still consistent: keep using it.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Declares the lines covered by `acks` durable and saves the checkpoint (two fsyncs: call
    /// it once per durable batch, not per line). An ack says that every line of its file
    /// before its offset is durable, so commit a file's chunks in the order they came (a batch
    /// may hold acks in any order; the highest of each file wins, older ones are ignored).
    pub fn commit<'a>(&self, acks: impl IntoIterator<Item = &'a Ack>) -> Result<(), SaveError> {
        let mut registry = self.lock();
        for ack in acks {
            registry.commit(ack);
        }
        registry.save()
    }

    /// [`Self::commit`], saving `state` in the same atomic write: after a crash the positions
    /// and the state come back together (from the newest generation both were saved in), so
    /// what `state` says is durable matches exactly the lines before the positions.
    pub fn commit_with<'a>(
        &self,
        acks: impl IntoIterator<Item = &'a Ack>,
        state: serde_json::Value,
    ) -> Result<(), SaveError> {
        let mut registry = self.lock();
        for ack in acks {
            registry.commit(ack);
        }
        registry.state = Some(state);
        registry.save()
    }

    /// The state saved by the last [`Self::commit_with`] (at start: the loaded checkpoint's).
    pub fn state(&self) -> Option<serde_json::Value> {
        self.lock().state.clone()
    }

    /// Before the tailer starts ([`crate::start`]): the lines of each content `epoch` from
    /// position `to[epoch]` on are to be handed out again (the consumer lost what it made of
    /// them). A position never moves back past where the content's reading began
    /// ([`Entry::first`]), nor forward. Returns, for each epoch moved back, its committed
    /// position before: lines before it were committed once already. Saved with the next
    /// commit (a crash before it rewinds again from the same checkpoint).
    pub fn rewind(&self, to: &BTreeMap<u32, u64>) -> BTreeMap<u32, u64> {
        self.lock().rewind(to)
    }

    /// The committed position of every known file, for reports and tests.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Continues;

    fn entry(ino: u64, offset: u64) -> Entry {
        Entry {
            key: FileKey { dev: 1, ino },
            fingerprint: Fingerprint::of(b"Nov 25 mx1 sendmail: line\n"),
            epoch: 0,
            offset,
            path: format!("/var/log/mail.log.{ino}"),
            compressed: false,
            seq: 0,
            eof: None,
            size: offset,
            tail: None,
            first: 0,
            continues: None,
        }
    }

    #[test]
    fn an_entry_moved_to_a_compressed_copy_takes_the_acks_of_the_file_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = CheckpointStore::open(dir.path()).unwrap();
        let mut registry = Registry::new(store, Vec::new(), None, None);
        let (plain, gz, later) = (entry(1, 0).key, entry(2, 0).key, entry(3, 0).key);
        let epoch = registry.register(entry(1, 10));
        registry.released(plain, 50, false);
        // logrotate compressed it after it was read, before the lines were committed; a day
        // later the copy itself is found under another inode (two moves).
        registry.transfer(plain, gz, "/var/log/mail.log.2.gz", true);
        registry.transfer(gz, later, "/var/log/mail.log.3.gz", true);
        registry.commit(&Ack {
            key: plain,
            epoch,
            offset: 50,
        });
        let e = &registry.entries[&later];
        assert!(e.compressed && e.is_complete(), "{e:?}");
        assert!(!registry.entries.contains_key(&plain) && !registry.entries.contains_key(&gz));
    }

    #[test]
    fn a_rewind_goes_back_to_the_positions_asked_never_before_where_reading_began() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = CheckpointStore::open(dir.path()).unwrap();
        let mut registry = Registry::new(store, Vec::new(), None, None);
        let from_start = registry.register(entry(1, 0));
        // Found at its end (a first start at the end, a copy holding the rest of a file).
        let from_middle = registry.register(entry(2, 40));
        let untouched = registry.register(entry(3, 0));
        for (key, epoch, offset) in [
            (1, from_start, 90),
            (2, from_middle, 95),
            (3, untouched, 70),
        ] {
            let key = FileKey { dev: 1, ino: key };
            registry.commit(&Ack { key, epoch, offset });
        }
        // Known again after a restart: where its reading began is kept.
        let known = registry.entries[&FileKey { dev: 1, ino: 2 }].clone();
        registry.register(known);
        let to = BTreeMap::from([(from_start, 30), (from_middle, 10), (99, 0)]);
        let before = registry.rewind(&to);
        assert_eq!(
            before,
            BTreeMap::from([(from_start, 90), (from_middle, 95)])
        );
        let offset = |r: &Registry, ino| r.entries[&FileKey { dev: 1, ino }].offset;
        let offsets = (
            offset(&registry, 1),
            offset(&registry, 2),
            offset(&registry, 3),
        );
        assert_eq!(offsets, (30, 40, 70));
        // Never forward.
        assert!(
            registry
                .rewind(&BTreeMap::from([(untouched, 80)]))
                .is_empty()
        );
        assert_eq!(offset(&registry, 3), 70);
    }

    #[test]
    fn a_replacement_rewinds_into_the_content_it_continues_only_once_that_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = CheckpointStore::open(dir.path()).unwrap();
        let mut registry = Registry::new(store, Vec::new(), None, None);
        let older = registry.register(entry(1, 0));
        // A copy of the first 60 bytes (and more), read from there on.
        let mut copy = entry(2, 60);
        copy.continues = Some(Continues {
            epoch: older,
            first: 0,
            upto: 60,
        });
        let replacement = registry.register(copy);
        let key = FileKey { dev: 1, ino: 2 };
        registry.commit(&Ack {
            key,
            epoch: replacement,
            offset: 80,
        });
        // The older content known: it is read again itself; the copy only from its own start.
        let to = BTreeMap::from([(replacement, 10)]);
        assert_eq!(registry.rewind(&to), BTreeMap::from([(replacement, 80)]));
        assert_eq!(registry.entries[&key].offset, 60);
        // Gone: the copy holds its lines, back to where its reading began.
        registry.forget(FileKey { dev: 1, ino: 1 });
        registry.rewind(&to);
        assert_eq!(registry.entries[&key].offset, 10);
    }
}
