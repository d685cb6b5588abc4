//! A file an input names replaced by a file with another inode that holds the same content:
//! `sed -i`, an editor saving, rsync without `--inplace`, `cp mail.log x && mv x mail.log`,
//! /var/log moved to another disk (another device too). A file is who its content says it is.
//!
//! Owns one decision: whether a new file at a path is the content known there — the file
//! followed under that name, or, after a restart, the checkpoint's entry for it — and where
//! reading it starts. The rule, the same for every way a file can be replaced:
//! - **The same content**: the new file starts with all the bytes known of the old one (its
//!   first KiB at least, so that files that merely start alike — the same first line — are
//!   never taken for each other). It is read on from where the old content ends, never again.
//!   While following, the two files are compared byte for byte (paid once per replacement);
//!   after a restart, by the first KiB and the KiB before the length last seen
//!   ([`crate::checkpoint::Entry::tail`]), since the old file is gone.
//! - **Edited content** (the same first KiB, then bytes that differ before the read
//!   position: an edit of lines read already): while following, the new file is read from
//!   the start of the first line that differs — what is before it was read and is unchanged;
//!   what follows is delivered again (edited lines, and the lines after them). After a
//!   restart the point of difference cannot be found (the old file is gone): the new file is
//!   read from its start. Either way nothing is lost and lines may repeat: logged as a
//!   warning, counted in [`crate::TailStats::diverged_files`].
//! - Anything else (a different first KiB, or a new file shorter than what its first KiB
//!   must cover: it cannot be told yet) is a new file, read from its start, as before.
//!
//! While following, the replaced file itself is left to the rotation logic: it is no longer
//! named, so it is read on from its read position to its end (lines a writer that has not
//! reopened yet still appends to it are not lost) and let go once quiet. The new file's own
//! content starts where the two part; what is before is the replaced file's. Should the
//! replaced file be gone with lines not committed — deleted and let go
//! ([`Registry::hand_over`]), or found gone after a restart (`TailCore::hand_over`) — the new
//! file takes them: its position moves back to the replaced file's, and that file's acks move
//! it. Found anywhere it went: at the path, rotated (`mail.log.1`, compressed or not, even
//! before it was seen at the path), or truncated since with its content in a copy.
//!
//! **Limits** (documented in the README): a replacement and a rotation (or a second
//! replacement) of it between two looks of the tailer (the recheck runs every second) is
//! handled but not covered by the model test; nor is a log both replaced and copytruncated.
//! After a restart a replacement is recognised only if the checkpoint has a `tail`
//! fingerprint (written by this version) or the file was shorter than a KiB.
//!
//! It never reads a line, and never decides about rotation or truncation (a copytruncate keeps
//! the inode: it is never seen here).
//!
//! [`Registry::hand_over`]: crate::registry::Registry::hand_over

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use super::TailCore;
use crate::checkpoint::{Continues, Entry};
use crate::find::{self, Compression};
use crate::identity::{
    FINGERPRINT_BYTES, FileKey, Fingerprint, common_prefix, read_head, read_stream_head, tail_of,
};
use crate::source::{Followed, Input, Role};
use crate::stats::TailStats;

impl TailCore {
    /// A plain file with inode `key` that `path` names now, not followed yet: if a file
    /// followed under that name holds content it starts with, opens it where that content
    /// parts from it (see the module). None: another file.
    pub(super) fn open_replacement(
        &mut self,
        path: &Path,
        file: &File,
        size: u64,
        key: FileKey,
        now: Instant,
    ) -> io::Result<Option<Followed>> {
        self.continued(path, path, file, size, key, Role::Live, now)
    }

    /// A sibling of `input` (`mail.log.1`) nothing has read, with inode `key`: if the file
    /// followed under the input's name is no longer there and this one starts with all of its
    /// content, this is its replacement, rotated away before it was seen under the input's
    /// name. Opened where that content ends, read to its end and let go. (A copytruncate's
    /// copy also starts with all of the followed file's content, but the followed file is
    /// still named by the input then: it is left to the truncation logic.)
    pub(super) fn rotated_replacement(
        &mut self,
        input: &Path,
        path: &Path,
        key: FileKey,
        now: Instant,
    ) -> io::Result<Option<Followed>> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let kind = find::compression_of(&file)?;
        let named = std::fs::metadata(input).ok().map(|m| FileKey::of(&m));
        let old = self.files.iter().rev().find(|f| f.named_as == input);
        if old.is_none_or(|f| named == Some(f.key)) {
            return Ok(None);
        }
        if kind == Compression::None {
            let role = Role::Rotated { since: now };
            return self.continued(input, path, &file, meta.len(), key, role, now);
        }
        // Compressed by the rotation already: compared with the decompressed content.
        if !find::quiet_for(&meta, self.config.rotate_wait) {
            return Ok(None); // perhaps still being compressed: looked at again later
        }
        let Some((read, old_file, old_key, old_epoch)) =
            old.and_then(|f| Some((f.delivered(), f.plain_file()?, f.key, f.epoch)))
        else {
            return Ok(None);
        };
        let old_len = old_file.metadata()?.len();
        if old_len == 0 || !stream_starts_with(find::decompressor(file, kind), old_file, old_len)? {
            return Ok(None);
        }
        let max_line = self.config.max_line_bytes as u64;
        let start = line_start(
            old_file,
            read.max(old_len.saturating_sub(max_line)),
            old_len,
            read,
        )?;
        let mut reader = find::decompressor(File::open(path)?, kind);
        let head = read_stream_head(&mut *reader)?;
        let mut reader: Box<dyn Read + Send> =
            Box::new(io::Cursor::new(head.clone()).chain(reader));
        if io::copy(&mut (&mut reader).take(start), &mut io::sink())? < start {
            return Ok(None);
        }
        self.vacate(key, &head, true);
        TailStats::add(&self.stats.replaced_files, 1);
        tracing::info!(path = %path.display(), from = start,
            "the replacement of a followed file, rotated and compressed before it was seen: \
             reading it on from where the content read ends");
        let at = super::At {
            read_from: start,
            committed: start,
            continues: Some(self.continuing(old_key, old_epoch, start)),
            ..super::At::default()
        };
        let fingerprint = Fingerprint::of(&head);
        let role = Role::Predecessor;
        let followed = self.registered(path.to_owned(), key, reader, fingerprint, at, role, now);
        // Should the followed file be deleted and let go with lines not committed (gzip
        // removes it once the copy is made), this copy takes them, as for a plain replacement.
        self.replaced.insert(old_key, (key, followed.epoch, start));
        Ok(Some(followed))
    }

    /// The file `file` (inode `key`, `size` bytes, at `path`) and the file followed under the
    /// name `named`: if the first holds the second's content, it is opened as `role` where
    /// that content parts from it (see the module). A rotated replacement must hold all of
    /// it.
    #[allow(clippy::too_many_arguments)]
    fn continued(
        &mut self,
        named: &Path,
        path: &Path,
        file: &File,
        size: u64,
        key: FileKey,
        role: Role,
        now: Instant,
    ) -> io::Result<Option<Followed>> {
        let old = self.files.iter().rev().find(|f| {
            f.named_as == named
                && f.key != key
                && matches!(f.role, Role::Live | Role::Rotated { .. })
        });
        let Some((old, old_file)) = old.and_then(|f| Some((f, f.plain_file()?))) else {
            return Ok(None);
        };
        let old_len = old_file.metadata()?.len();
        if old_len == 0 {
            return Ok(None); // nothing to recognise
        }
        let common = common_prefix(old_file, file, old_len.min(size))?;
        if common < old_len.min(FINGERPRINT_BYTES as u64) {
            return Ok(None); // another file, or too short to tell: new
        }
        if role != Role::Live && common < old_len {
            return Ok(None);
        }
        let read = old.delivered();
        let max_line = self.config.max_line_bytes as u64;
        // Where the new file's own content starts: the first line not wholly shared.
        let start = if common >= read {
            line_start(
                file,
                read.max(common.saturating_sub(max_line)),
                common,
                read,
            )?
        } else {
            let lo = common.saturating_sub(max_line);
            line_start(file, lo, common, lo)?
        };
        let (old_key, old_epoch, old_path) = (old.key, old.epoch, old.path.clone());
        TailStats::add(&self.stats.replaced_files, 1);
        if start < read {
            TailStats::add(&self.stats.diverged_files, 1);
            tracing::warn!(path = %path.display(), read_to = read, differs_at = common,
                from = start, "replaced by a copy whose content was edited before the read \
                position: reading it again from the first line that differs (lines may repeat)");
        } else {
            tracing::info!(path = %path.display(), read_to = read, from = start,
                "replaced by a copy of the same content (new inode): reading on, not again");
        }
        let older = self.continuing(old_key, old_epoch, start);
        let followed = self.follow_replacement(path, file, size, key, older, role, now)?;
        if start >= read {
            self.replaced.insert(old_key, (key, followed.epoch, start));
        }
        tracing::debug!(old = %old_path.display(), epoch = old_epoch,
            "the replaced file is read to its end");
        Ok(Some(followed))
    }

    /// Registers the replacement `file` (inode `key`, `size` bytes, at `path`) and opens it
    /// where its own content begins (`older.upto`): what is before is the replaced file's,
    /// committed there. (Should a restart find the replaced file gone with lines not
    /// committed, they are read from here.)
    #[allow(clippy::too_many_arguments)]
    fn follow_replacement(
        &mut self,
        path: &Path,
        file: &File,
        size: u64,
        key: FileKey,
        older: Continues,
        role: Role,
        now: Instant,
    ) -> io::Result<Followed> {
        let start = older.upto;
        let head = read_head(file)?;
        // An entry its inode has for other content is of a file gone before (inode reused).
        self.vacate(key, &head, false);
        let mut file = file.try_clone()?;
        file.seek(SeekFrom::Start(start))?;
        let fingerprint = Fingerprint::of(&head);
        let epoch = self.checkpointer.lock().register(Entry {
            key,
            fingerprint,
            epoch: 0,
            offset: start,
            path: path.to_string_lossy().into_owned(),
            compressed: false,
            seq: 0,
            eof: None,
            size,
            tail: tail_of(&file, size),
            first: 0,
            continues: Some(older),
        });
        Ok(Followed::new(
            path.to_owned(),
            key,
            Input::Plain(file),
            fingerprint,
            epoch,
            start,
            role,
            self.config.max_line_bytes,
            now,
        ))
    }

    /// What a replacement of the content `epoch` (followed in the file `key`) continues: its
    /// bytes before `upto` are that content's.
    fn continuing(&self, key: FileKey, epoch: u32, upto: u64) -> Continues {
        let registry = self.checkpointer.lock();
        let first = registry.entries.get(&key).filter(|e| e.epoch == epoch);
        Continues {
            epoch,
            first: first.map_or(0, |e| e.first),
            upto,
        }
    }

    /// After a restart: the known plain file `e` is nowhere to be found, and its path names a
    /// file with another inode. If that one starts with `e`'s content, `e`'s entry is taken
    /// care of (see the module); returns whether it was.
    pub(super) fn replaced_while_stopped(&mut self, e: &Entry) -> bool {
        if e.compressed || e.fingerprint.len == 0 || e.is_complete() {
            return false;
        }
        self.at_path(e) || self.covered(e)
    }

    /// Whether a newer known content holds all of `e` (seen of it): a replacement of it,
    /// followed before the stop, and rotated or truncated since. Then `e` is forgotten: that
    /// content is read from its own position (which moved with `e`'s), nothing twice.
    pub(super) fn covered(&mut self, e: &Entry) -> bool {
        if e.compressed || e.fingerprint.len == 0 {
            return false;
        }
        // Replaced while following, and the replacement rotated since: known as its own
        // content, which starts with all of this one's (its position moved with this one's).
        let others: Vec<Entry> = {
            let registry = self.checkpointer.lock();
            let others = registry.entries.values();
            others
                .filter(|o| o.key != e.key && o.seq > e.seq)
                .cloned()
                .collect()
        };
        // Its file, or the copy its content went to (truncated since: copytruncate).
        let holder = others.iter().find(|o| {
            let found = Self::find_known(o).map(|(path, meta)| (path, meta.len()));
            let copy = || {
                find::content_copy(Path::new(&o.path), o.fingerprint, o.key)
                    .map(|c| (c.path, c.meta.len()))
            };
            let mut files = found.into_iter().chain(std::iter::from_fn(copy).take(1));
            files.any(|(path, _)| holds_content(e, &path))
        });
        if let Some(o) = holder {
            tracing::info!(path = %e.path, copy = %o.path,
                "replaced by a copy of the same content, since rotated: read on from there");
            self.hand_over(e, o.key);
            return true;
        }
        false
    }

    /// `e` is gone, and the known content `to` holds all of it (seen of it): `e` is
    /// forgotten, and lines of it not committed are read from `to` (its first bytes are
    /// `e`'s, at the same positions).
    pub(super) fn hand_over(&mut self, e: &Entry, to: FileKey) {
        let mut registry = self.checkpointer.lock();
        registry.forget(e.key);
        // With lines of `e` not committed, no line after them is (commits come in order):
        // `to`'s position is where its own content starts, at most.
        if let Some(other) = registry.entries.get_mut(&to)
            && e.offset < other.offset
            && e.offset < e.size
        {
            other.offset = e.offset;
            registry.dirty = true;
        }
    }

    /// The newer known content with the same path as `e` that `file` holds besides `e`, if
    /// any.
    pub(super) fn superseded(&self, e: &Entry, file: &File, len: u64) -> Option<FileKey> {
        let registry = self.checkpointer.lock();
        let mut newer = registry
            .entries
            .values()
            .filter(|o| o.key != e.key && !o.compressed && o.seq > e.seq && o.path == e.path);
        newer.find(|o| holds(o, file, len)).map(|o| o.key)
    }

    /// [`Self::replaced_while_stopped`], where the path of `e` names the replacement.
    fn at_path(&mut self, e: &Entry) -> bool {
        let path = Path::new(&e.path);
        let Ok(file) = File::open(path) else {
            return false;
        };
        let Ok(meta) = file.metadata() else {
            return false;
        };
        let key = FileKey::of(&meta);
        let plain = find::compression_of(&file).is_ok_and(|k| k == Compression::None);
        if key == e.key || !meta.is_file() || !plain {
            return false;
        }
        let Ok(head) = read_head(&file) else {
            return false;
        };
        if !e.fingerprint.matches(&head) {
            return false; // another file
        }
        let whole = holds(e, &file, meta.len());
        self.vacate(key, &head, false);
        let known = self.checkpointer.lock().entries.contains_key(&key);
        let path_text = e.path.clone();
        if whole
            && !known
            && let Some(newer) = self.superseded(e, &file, meta.len())
        {
            // A newer content known under this path (a replacement of this one, replaced in
            // turn) is held here too: that one takes the file, from its own position.
            self.hand_over(e, newer);
            return true;
        }
        if whole && !known {
            tracing::info!(path = %path_text, committed = e.offset,
                "replaced by a copy of the same content (new inode) while maillog was \
                 stopped: reading on from the committed position, not again");
            TailStats::add(&self.stats.replaced_files, 1);
            self.checkpointer
                .lock()
                .transfer(e.key, key, &path_text, false);
            return true;
        }
        if known && whole {
            // Replaced while following, before the stop: the copy is known already.
            self.hand_over(e, key);
            return true;
        }
        self.checkpointer.lock().forget(e.key);
        if known {
            // Lines only the replaced file held, not committed, are gone with it.
            {
                let mut lost = e.clone();
                lost.offset = e.offset.max(e.size.min(meta.len()));
                self.lost(&lost, "replaced file vanished while maillog was stopped");
            }
            return true;
        }
        TailStats::add(&self.stats.replaced_files, 1);
        TailStats::add(&self.stats.diverged_files, 1);
        tracing::warn!(path = %path_text, committed = e.offset, seen = e.size,
            "replaced while maillog was stopped by a file that starts alike but differs \
             before the position read (edited?): reading it from the start; lines read before \
             may be delivered again");
        true
    }
}

/// Whether `file` (`len` bytes long) holds everything seen of `e` at the same place: its
/// first KiB, and the KiB before the length last seen (or the first KiB covers all of it).
fn holds(e: &Entry, file: &File, len: u64) -> bool {
    let head = read_head(file).is_ok_and(|head| e.fingerprint.matches(&head));
    head && len >= e.size
        && match e.tail {
            Some(tail) => tail.matches_before(file, e.size).unwrap_or(false),
            None => u64::from(e.fingerprint.len) >= e.size,
        }
}

/// [`holds`] for a file that may be compressed (its decompressed content): read through up
/// to the length seen of `e` (paid once, at a start, for a file that vanished).
fn holds_content(e: &Entry, path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(kind) = find::compression_of(&file) else {
        return false;
    };
    let mut reader = find::decompressor(file, kind);
    let mut head = Vec::new();
    let first = (&mut reader).take(u64::from(e.fingerprint.len));
    if first.take(u64::MAX).read_to_end(&mut head).is_err() || !e.fingerprint.matches(&head) {
        return false;
    }
    let Some(tail) = e.tail else {
        return u64::from(e.fingerprint.len) >= e.size;
    };
    let have = head.len() as u64;
    let Some(start) = e.size.checked_sub(u64::from(tail.len)) else {
        return false;
    };
    // The window [start, size), partly in the head perhaps.
    let mut window = head
        .get(usize::try_from(start).unwrap_or(usize::MAX)..)
        .map_or_else(Vec::new, <[u8]>::to_vec);
    let skip = start.saturating_sub(have);
    let skipped = io::copy(&mut (&mut reader).take(skip), &mut io::sink());
    if !skipped.is_ok_and(|n| n == skip) {
        return false;
    }
    let want = u64::from(tail.len) - window.len() as u64;
    if (&mut reader).take(want).read_to_end(&mut window).is_err() {
        return false;
    }
    window.len() == tail.len as usize && crc32fast::hash(&window) == tail.crc
}

/// Whether `stream` starts with the first `len` bytes of `file`.
fn stream_starts_with(mut stream: Box<dyn Read + Send>, file: &File, len: u64) -> io::Result<bool> {
    const BLOCK: usize = 64 * 1024;
    let (mut x, mut y) = (vec![0; BLOCK], Vec::with_capacity(BLOCK));
    let mut at = 0u64;
    while at < len {
        let want = (len - at).min(BLOCK as u64) as usize;
        y.clear();
        (&mut stream).take(want as u64).read_to_end(&mut y)?;
        file.read_exact_at(&mut x[..want], at)?;
        if y.len() < want || x[..want] != y[..] {
            return Ok(false);
        }
        at += want as u64;
    }
    Ok(true)
}

/// Where the last line that starts in `lo..=at` starts (just after the last newline in
/// `lo..at`); `none` if no newline is there.
fn line_start(file: &File, lo: u64, at: u64, none: u64) -> io::Result<u64> {
    if at <= lo {
        return Ok(at.min(none.max(lo)));
    }
    // At most max_line_bytes (a usize): fits.
    let mut buf = vec![0; usize::try_from(at - lo).unwrap_or(usize::MAX)];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], lo + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(match memchr::memrchr(b'\n', &buf[..filled]) {
        Some(i) => lo + i as u64 + 1,
        None => none,
    })
}
