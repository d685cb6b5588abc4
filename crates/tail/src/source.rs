//! One followed file: its open handle, identity, read position and role.
//!
//! A [`Followed`] reads what its file gained since the last look, checks first that the file
//! is still the one it was (size not below the read position, first bytes unchanged), and cuts
//! what it read into [`Chunk`]s of complete lines. It owns no policy: when to let a file go and
//! what a truncation means are [`crate::tailer`]'s decisions.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::identity::{FileKey, Fingerprint, read_before, read_head};
use crate::lines::{ChunkKind, LineSplitter, Piece};
use crate::registry::Ack;

/// Whole lines of one file, in file order, with their position.
#[derive(Debug)]
pub struct Chunk {
    /// The file's path when the lines were read.
    pub path: Arc<Path>,
    /// Position of the first byte of `data` in the file (in the decompressed content for
    /// `.gz`/`.bz2`). For [`ChunkKind::Lines`], line `n` starts at `start` plus its index.
    pub start: u64,
    /// Complete lines, each ending in `\n`.
    pub data: Vec<u8>,
    /// What `data` holds.
    pub kind: ChunkKind,
    /// Hand this to [`crate::Checkpointer::commit`] once the lines are durable; its offset is
    /// the position just after the last line.
    pub ack: Ack,
}

impl Chunk {
    /// The lines, each without its `\n`.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let data = self.data.strip_suffix(b"\n").unwrap_or(&self.data);
        data.split(|&b| b == b'\n')
    }

    /// The number of lines.
    pub fn line_count(&self) -> usize {
        memchr::memchr_iter(b'\n', &self.data).count()
    }
}

/// What a file is to the tailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Named by an input path or glob now: followed for as long as it is.
    Live,
    /// Was live, is no longer named (renamed or deleted): read to its end and let go once
    /// it has been quiet for the rotate wait. Lines after it wait for it.
    Rotated {
        /// When the tailer noticed.
        since: Instant,
    },
    /// A copy holding the unread rest of a file that was truncated, or a rotated file found
    /// by identity after a restart: read to its end, then let go. Lines after it wait for it.
    Predecessor,
    /// A compressed archive given as input (backfill): read once, start to end.
    Archive,
}

impl Role {
    /// Whether the files after it must wait until it is read to its end.
    pub(crate) fn goes_first(self) -> bool {
        matches!(self, Role::Rotated { .. } | Role::Predecessor)
    }
}

/// Where a file's bytes come from.
pub(crate) enum Input {
    /// A regular file, read in place.
    Plain(File),
    /// The decompressed content of a `.gz` or `.bz2` file.
    Compressed(Box<dyn Read + Send>),
}

/// The result of looking at a file.
pub(crate) enum Look {
    /// Read what there was (possibly nothing).
    Read {
        /// Whether the end of the file was reached (as opposed to the pass budget).
        eof: bool,
    },
    /// The file is no longer what was read: shorter than the read position, or its first
    /// bytes changed. Carries its current first bytes.
    Truncated { head: Vec<u8> },
}

pub(crate) struct Followed {
    pub key: FileKey,
    pub path: PathBuf,
    /// The path an input last named it by (copies of it are named after that).
    pub named_as: PathBuf,
    /// Its first bytes as last read (up to a KiB; empty until the file is seen to change):
    /// a copy still being written is recognised by them before it is as long as the
    /// fingerprint.
    pub head: Vec<u8>,
    label: Arc<Path>,
    input: Input,
    pub fingerprint: Fingerprint,
    pub epoch: u32,
    pub role: Role,
    /// The file has no name left (nlink 0): nobody can find it after it is closed.
    pub deleted: bool,
    /// Named by an input at the last rescan.
    pub named: bool,
    pub last_growth: Instant,
    /// File size and modification time when its first bytes were last checked (plain files).
    last_size: u64,
    last_modified: Option<SystemTime>,
    splitter: LineSplitter,
}

impl Followed {
    #[allow(clippy::too_many_arguments)] // one constructor for every way a file is found
    pub(crate) fn new(
        path: PathBuf,
        key: FileKey,
        input: Input,
        fingerprint: Fingerprint,
        epoch: u32,
        position: u64,
        role: Role,
        max_line: usize,
        now: Instant,
    ) -> Self {
        Followed {
            key,
            label: Arc::from(path.as_path()),
            named_as: path.clone(),
            head: Vec::new(),
            path,
            input,
            fingerprint,
            epoch,
            role,
            deleted: false,
            named: role == Role::Live,
            last_growth: now,
            last_size: position,
            last_modified: None,
            splitter: LineSplitter::new(max_line, position),
        }
    }

    pub(crate) fn set_path(&mut self, path: PathBuf) {
        self.label = Arc::from(path.as_path());
        self.path = path;
    }

    /// How long the file was when last looked at (for a compressed one: how much of its
    /// content was read).
    pub(crate) fn seen_size(&self) -> u64 {
        match self.input {
            Input::Plain(_) => self.last_size,
            Input::Compressed(_) => self.splitter.consumed(),
        }
    }

    /// The file's first bytes now (as last read, for a compressed one).
    pub(crate) fn current_head(&self) -> Vec<u8> {
        match &self.input {
            Input::Plain(file) => read_head(file).unwrap_or_else(|_| self.head.clone()),
            Input::Compressed(_) => self.head.clone(),
        }
    }

    /// The open file, for a plain one.
    pub(crate) fn plain_file(&self) -> Option<&File> {
        match &self.input {
            Input::Plain(file) => Some(file),
            Input::Compressed(_) => None,
        }
    }

    /// A fingerprint of the bytes just before [`Self::seen_size`], for a plain file (None if
    /// they cannot be read now: the next look tries again).
    pub(crate) fn tail_print(&self) -> Option<Fingerprint> {
        let file = self.plain_file()?;
        read_before(file, self.last_size)
            .ok()
            .map(|b| Fingerprint::of(&b))
    }

    pub(crate) fn is_compressed(&self) -> bool {
        matches!(self.input, Input::Compressed(_))
    }

    /// Position just after the last line handed out.
    pub(crate) fn delivered(&self) -> u64 {
        self.splitter.delivered()
    }

    /// Reads up to `budget` bytes of what the file gained, handing out whole lines. A file
    /// seen to change (size, fingerprint) goes to `grew` before any line it gained is handed
    /// out (a compressed one after, with how much of its content was read).
    pub(crate) fn look(
        &mut self,
        budget: u64,
        read_size: usize,
        now: Instant,
        grew: &mut dyn FnMut(&Followed),
        emit: &mut dyn FnMut(Chunk),
    ) -> io::Result<Look> {
        // What a plain file holds beyond the read position now: read that much, in buffers no
        // bigger than it (a live file grows by a few lines at a time).
        let mut left = None;
        if let Input::Plain(file) = &self.input {
            let meta = file.metadata()?;
            self.deleted = meta.nlink() == 0;
            let size = meta.len();
            if size < self.splitter.consumed() {
                return Ok(Look::Truncated {
                    head: read_head(file)?,
                });
            }
            let modified = meta.modified().ok();
            if size == self.splitter.consumed() && modified == self.last_modified {
                return Ok(Look::Read { eof: true });
            }
            if size != self.last_size || modified != self.last_modified {
                // The file changed: make sure it is still the same content before reading on
                // (a copytruncate and a rewrite can even leave the size where it was).
                let head = read_head(file)?;
                if !self.fingerprint.matches(&head) {
                    return Ok(Look::Truncated { head });
                }
                if !self.fingerprint.is_complete() && head.len() > self.fingerprint.len as usize {
                    self.fingerprint = Fingerprint::of(&head);
                }
                self.head = head;
                self.last_size = size;
                self.last_modified = modified;
                grew(self);
            }
            left = Some(size - self.splitter.consumed());
        }
        let mut bytes = 0;
        let eof = loop {
            if left == Some(0) {
                break true; // all there was at the look; more wakes the tailer again
            }
            if bytes >= budget {
                break false;
            }
            let want = left.map_or(read_size as u64, |left| left.min(read_size as u64));
            let mut buf = self.splitter.buffer(want as usize);
            let before = buf.len();
            let n = match &mut self.input {
                Input::Plain(file) => file.take(want).read_to_end(&mut buf),
                Input::Compressed(reader) => reader.take(want).read_to_end(&mut buf),
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.splitter.consume(buf, &mut |_| {}); // keep the bytes read so far
                    return Err(e);
                }
            };
            debug_assert_eq!(buf.len(), before + n);
            let label = &self.label;
            let (key, epoch) = (self.key, self.epoch);
            self.splitter
                .consume(buf, &mut |piece| emit(chunk(label, key, epoch, piece)));
            if n == 0 {
                break true;
            }
            bytes += n as u64;
            if let Some(left) = left.as_mut() {
                *left = left.saturating_sub(n as u64);
            }
            self.last_growth = now;
        };
        if bytes > 0 && matches!(self.input, Input::Compressed(_)) {
            grew(self); // how much of the content has been seen
        }
        Ok(Look::Read { eof })
    }

    /// Hands out an unfinished last line. Returns whether there was one.
    pub(crate) fn flush_partial(&mut self, emit: &mut dyn FnMut(Chunk)) -> bool {
        let label = &self.label;
        let (key, epoch) = (self.key, self.epoch);
        self.splitter
            .flush_partial(&mut |piece| emit(chunk(label, key, epoch, piece)))
    }

    pub(crate) fn has_partial(&self) -> bool {
        self.splitter.has_partial()
    }

    /// Whether the file has not been written to for `wait` (by its modification time). False
    /// when that cannot be told (a compressed stream, a time ahead of the clock).
    pub(crate) fn quiet_on_disk(&self, wait: Duration) -> bool {
        let Input::Plain(file) = &self.input else {
            return false;
        };
        let modified = file.metadata().and_then(|m| m.modified());
        modified
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|ago| ago >= wait)
    }

    /// The file starts over (copytruncate): a new epoch, read from 0.
    pub(crate) fn restart(&mut self, head: &[u8], epoch: u32) -> io::Result<()> {
        if let Input::Plain(file) = &mut self.input {
            file.seek(SeekFrom::Start(0))?;
        }
        self.epoch = epoch;
        self.fingerprint = Fingerprint::of(head);
        self.splitter.reset(0);
        self.last_size = 0;
        self.last_modified = None;
        Ok(())
    }
}

fn chunk(label: &Arc<Path>, key: FileKey, epoch: u32, piece: Piece) -> Chunk {
    Chunk {
        path: Arc::clone(label),
        start: piece.start,
        ack: Ack {
            key,
            epoch,
            offset: piece.end,
        },
        data: piece.data,
        kind: piece.kind,
    }
}
