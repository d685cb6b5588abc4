//! The ledger: which names the archive already holds, remembered in the spool, so that a window
//! opened again — a record arriving after its window was archived, a second `--once` run —
//! starts at the next free part without asking the archive from the reading thread.
//!
//! One file, `archived.log`, one line per archived name: `{kind} {start} {part}`. A line is
//! appended when the archive confirmed a put (or refused one because the name was taken by
//! other bytes). It is advice, not the guard — the archive's conditional write is — so it is
//! not fsynced line by line (an fsync per archived file cost the backfill seconds): a line a
//! crash loses means one more conditional write that finds the name taken. Windows more than the horizon older than the newest window it knows are
//! dropped when the ledger is opened (relative to its own content, not the wall clock, so that
//! a backfill of old logs keeps what it archived); for those, and after a lost spool, the
//! archive itself decides: its conditional write refuses a
//! taken name and the file goes to a further part (`crate::batcher::Batcher::retarget`).
//!
//! It never deletes or renames anything but its own file, and a torn last line (a crash in the
//! middle of an append) is ignored: the name it held is found taken again at the archive.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use maillog_parse::Kind;

use crate::spool::{SpoolError, create_dir, disk_full};
use crate::window::WindowId;

/// The ledger's file in the spool.
const FILE_NAME: &str = "archived.log";

/// Names the archive holds, per window: the highest part known to be taken.
pub struct Ledger {
    path: PathBuf,
    file: File,
    taken: HashMap<(Kind, i64), u32>,
    /// The file may end inside a line (a torn write, or an append cut by a full disk): the
    /// next line starts on a line of its own.
    torn: bool,
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`, forgetting windows that started more than
    /// `horizon` seconds before the newest one it knows.
    pub fn open(dir: &Path, horizon: i64) -> Result<Ledger, SpoolError> {
        let at = |action, path: &Path, e| SpoolError::new(action, path, e);
        create_dir(dir).map_err(|e| at("create", dir, e))?;
        let path = dir.join(FILE_NAME);
        let text = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(at("read", &path, e)),
        };
        let mut taken: HashMap<(Kind, i64), u32> = HashMap::new();
        let mut lines = 0usize;
        // Only whole lines: a torn last one is dropped by the rewrite below.
        let whole = match text.iter().rposition(|b| *b == b'\n') {
            Some(end) => &text[..=end],
            None => &[][..],
        };
        for line in whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            lines += 1;
            if let Some(id) = parse_line(line) {
                let part = taken.entry((id.kind, id.start)).or_insert(id.part);
                *part = (*part).max(id.part);
            }
        }
        if let Some(newest) = taken.keys().map(|(_, start)| *start).max() {
            let forget_before = newest.saturating_sub(horizon);
            taken.retain(|(_, start), _| *start >= forget_before);
        }
        let mut torn = !text.is_empty() && !text.ends_with(b"\n");
        if lines != taken.len() || torn {
            match rewrite(&path, &taken) {
                Ok(()) => torn = false,
                // Only tidying: the names are known in memory and the file is read the same
                // way with its old lines; a start on a full disk must not fail for it.
                Err(e) if disk_full(&e) => {
                    tracing::warn!(path = %path.display(), "cannot rewrite the ledger now: {e}");
                }
                Err(e) => return Err(at("rewrite", &path, e)),
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&path)
            .map_err(|e| at("open", &path, e))?;
        Ok(Ledger {
            path,
            file,
            taken,
            torn,
        })
    }

    /// The first part of a window that the archive is not known to hold.
    pub fn next_part(&self, kind: Kind, start: i64) -> u32 {
        self.taken
            .get(&(kind, start))
            .map_or(0, |part| part.saturating_add(1))
    }

    /// The archive holds this name now: remembered (written, not fsynced: see the module docs).
    pub fn taken(&mut self, id: &WindowId) -> Result<(), SpoolError> {
        let known = self.taken.get(&(id.kind, id.start)).copied();
        if known.is_some_and(|part| part >= id.part) {
            return Ok(());
        }
        let line = format!("{} {} {}\n", id.kind.as_str(), id.start, id.part);
        let line = if self.torn { format!("\n{line}") } else { line };
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            self.torn = true; // part of the line may be written
            return Err(SpoolError::new("append", &self.path, e));
        }
        self.torn = false;
        self.taken.insert((id.kind, id.start), id.part);
        Ok(())
    }
}

fn parse_line(line: &[u8]) -> Option<WindowId> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.split(' ');
    let kind = match words.next()? {
        "from" => Kind::From,
        "to" => Kind::To,
        _ => return None,
    };
    let start = words.next()?.parse().ok()?;
    let part = words.next()?.parse().ok()?;
    words
        .next()
        .is_none()
        .then_some(WindowId { kind, start, part })
}

/// Writes the ledger anew (temp file, fsync, rename): one line per window. A temp file left
/// by a failure is removed.
fn rewrite(path: &Path, taken: &HashMap<(Kind, i64), u32>) -> io::Result<()> {
    let tmp = path.with_extension("log.tmp");
    let written = write_anew(path, &tmp, taken);
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn write_anew(path: &Path, tmp: &Path, taken: &HashMap<(Kind, i64), u32>) -> io::Result<()> {
    let mut entries: Vec<_> = taken.iter().collect();
    entries.sort();
    let mut text = String::new();
    for ((kind, start), part) in entries {
        text.push_str(&format!("{} {start} {part}\n", kind.as_str()));
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o640)
        .open(tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn id(kind: Kind, start: i64, part: u32) -> WindowId {
        WindowId { kind, start, part }
    }

    #[test]
    fn remembers_taken_names_across_opens_and_forgets_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path(), 1000).unwrap();
        assert_eq!(ledger.next_part(Kind::From, 600), 0);
        ledger.taken(&id(Kind::From, 600, 0)).unwrap();
        ledger.taken(&id(Kind::From, 600, 2)).unwrap();
        ledger.taken(&id(Kind::From, 600, 1)).unwrap(); // lower: nothing new
        ledger.taken(&id(Kind::To, 300, 0)).unwrap();
        assert_eq!(ledger.next_part(Kind::From, 600), 3);
        assert_eq!(ledger.next_part(Kind::To, 600), 0);
        drop(ledger);
        // A torn last line, as a crash in the middle of an append leaves it.
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        file.write_all(b"to 900 ").unwrap();
        let ledger = Ledger::open(dir.path(), 1000).unwrap();
        assert_eq!(ledger.next_part(Kind::From, 600), 3);
        assert_eq!(ledger.next_part(Kind::To, 300), 1);
        assert_eq!(ledger.next_part(Kind::To, 900), 0);
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(
            text, "from 600 2\nto 300 0\n",
            "rewritten: one line a window"
        );
        let ledger = Ledger::open(dir.path(), 200).unwrap();
        assert_eq!(ledger.next_part(Kind::To, 300), 0, "beyond the horizon");
        assert_eq!(ledger.next_part(Kind::From, 600), 3);
    }

    #[test]
    fn a_start_on_a_full_disk_keeps_the_names_and_tidies_later() {
        let dir = tempfile::tempdir().unwrap();
        // Root (CI) mounts a small tmpfs; elsewhere this says SKIPPED (never under CI=true).
        let Some(disk) = maillog_testkit::tmpfs::Tmpfs::mount(&dir.path().join("vol"), "1m") else {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return;
        };
        let ledger_dir = disk.path().join("windows");
        let mut ledger = Ledger::open(&ledger_dir, 1000).unwrap();
        // Two lines for one window: the next open rewrites the file, one line a window.
        ledger.taken(&id(Kind::From, 600, 0)).unwrap();
        ledger.taken(&id(Kind::From, 600, 1)).unwrap();
        drop(ledger);
        disk.fill();
        let mut ledger = Ledger::open(&ledger_dir, 1000).expect("a full disk is no reason to stop");
        assert_eq!(ledger.next_part(Kind::From, 600), 2);
        let text = fs::read_to_string(ledger_dir.join(FILE_NAME)).unwrap();
        assert_eq!(
            text, "from 600 0\nfrom 600 1\n",
            "no room to rewrite it: left as it was"
        );
        disk.free();
        ledger.taken(&id(Kind::To, 900, 0)).unwrap();
        drop(ledger);
        let ledger = Ledger::open(&ledger_dir, 1000).unwrap();
        assert_eq!(ledger.next_part(Kind::From, 600), 2);
        assert_eq!(ledger.next_part(Kind::To, 900), 1);
        let text = fs::read_to_string(ledger_dir.join(FILE_NAME)).unwrap();
        assert_eq!(text, "from 600 1\nto 900 0\n", "tidied once there was room");
    }
}
