//! Finding files: what the input paths and globs name now, where a known file went after a
//! rename, and which sibling holds the content of a file that was truncated or compressed.
//!
//! Only looks; never opens a file for following and never touches the registry.

use std::cmp::Reverse;
use std::fs::{self, File, Metadata};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::identity::{FileKey, Fingerprint, read_head, read_stream_head};

/// The regular files an input names now, in name order. A path without glob characters names
/// itself (if it exists).
pub(crate) fn expand(input: &Path) -> Vec<(PathBuf, Metadata)> {
    let text = input.to_string_lossy();
    let candidates: Vec<PathBuf> = if text.contains(['*', '?', '[']) {
        match glob::glob(&text) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(e) => {
                tracing::warn!(input = %text, "not a valid glob: {e}");
                Vec::new()
            }
        }
    } else {
        vec![input.to_owned()]
    };
    let mut found: Vec<_> = candidates
        .into_iter()
        .filter_map(|p| {
            fs::metadata(&p)
                .ok()
                .filter(Metadata::is_file)
                .map(|m| (p, m))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The directory a glob or path lives in: the part before the first glob character.
pub(crate) fn watch_dir(input: &Path) -> PathBuf {
    let mut dir = PathBuf::new();
    for part in input.parent().unwrap_or(Path::new("/")).components() {
        if part.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        dir.push(part);
    }
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

/// Compression, from a file's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Bzip2,
}

pub(crate) fn compression_of(file: &File) -> io::Result<Compression> {
    let mut magic = [0u8; 3];
    let n = file.read_at(&mut magic, 0)?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, _] => Compression::Gzip,
        b"BZh" => Compression::Bzip2,
        _ => Compression::None,
    })
}

/// A compression maillog does not read (xz, zstd, lz4, compress), from a file's first bytes:
/// its name, to say so.
pub(crate) fn unreadable_compression(file: &File) -> io::Result<Option<&'static str>> {
    let mut magic = [0u8; 6];
    let n = file.read_at(&mut magic, 0)?;
    Ok(match &magic[..n] {
        [0xfd, b'7', b'z', b'X', b'Z', 0x00] => Some("xz"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
        [0x04, 0x22, 0x4d, 0x18, ..] => Some("lz4"),
        [0x1f, 0x9d, ..] => Some("compress (.Z)"),
        _ => None,
    })
}

/// A reader of the whole decompressed content (every member/stream, not just the first).
pub(crate) fn decompressor(file: File, kind: Compression) -> Box<dyn Read + Send> {
    let file = BufReader::with_capacity(256 * 1024, file);
    match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(file)),
        Compression::None => Box::new(file),
    }
}

/// The first bytes of a file's content, decompressed if it is compressed.
pub(crate) fn content_head(path: &Path) -> io::Result<(File, Compression, Vec<u8>)> {
    let file = File::open(path)?;
    let kind = compression_of(&file)?;
    let head = match kind {
        Compression::None => read_head(&file)?,
        _ => read_stream_head(&mut *decompressor(File::open(path)?, kind))?,
    };
    Ok((file, kind, head))
}

/// Searches `dir` for the file with identity `key` (a file renamed by rotation).
pub(crate) fn by_key(dir: &Path, key: FileKey) -> Option<(PathBuf, Metadata)> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find_map(|entry| {
            let meta = entry.metadata().ok()?;
            (meta.is_file() && FileKey::of(&meta) == key).then(|| (entry.path(), meta))
        })
}

/// Regular files beside `input` whose names start with its name (its rotations: `mail.log.1`,
/// `mail.log.2.gz`, `mail.log-20261125`), in the order they were written, oldest first (see
/// [`sort_in_write_order`]).
pub(crate) fn siblings(input: &Path) -> Vec<(PathBuf, Metadata)> {
    let (Some(dir), Some(name)) = (input.parent(), input.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = name.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let sibling = e.file_name().to_string_lossy().into_owned();
            sibling != name && sibling.starts_with(&name)
        })
        .filter_map(|e| Some((e.path(), e.metadata().ok()?)))
        .filter(|(_, meta)| meta.is_file())
        .collect();
    sort_in_write_order(&name, &mut found);
    found
}

/// Whether the file was written to at or after `since` (unix seconds).
pub(crate) fn written_since(meta: &Metadata, since: u64) -> bool {
    let written = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    written.is_some_and(|w| w.as_secs() >= since)
}

/// Whether the file has not been written to for `wait`. A modification time ahead of the
/// clock counts as quiet (a clock that was wrong must not hold a file back for good).
pub(crate) fn quiet_for(meta: &Metadata, wait: Duration) -> bool {
    meta.modified().ok().is_none_or(|t| {
        SystemTime::now()
            .duration_since(t)
            .ok()
            .is_none_or(|ago| ago >= wait)
    })
}

/// What a rotated file's name says of its place among the rotations of `name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    /// `mail.log.3.gz`: logrotate's numbers grow with age, so a higher number is older.
    Numbered(Reverse<u64>),
    /// `mail.log-20261125`: a date (or another suffix with digits), older when it sorts first.
    Named(String),
    /// No number and no date (`mail.log.old`): only its modification time tells.
    Unnamed,
}

fn place(name: &str, sibling: &str) -> Place {
    let suffix = sibling.strip_prefix(name).unwrap_or(sibling);
    let suffix = [".gz", ".bz2", ".xz", ".zst", ".Z"]
        .iter()
        .find_map(|ext| suffix.strip_suffix(ext))
        .unwrap_or(suffix);
    match suffix.strip_prefix('.').map(str::parse::<u64>) {
        Some(Ok(n)) => Place::Numbered(Reverse(n)),
        _ if suffix.bytes().any(|b| b.is_ascii_digit()) => Place::Named(suffix.to_owned()),
        _ => Place::Unnamed,
    }
}

/// Sorts rotations of `name` oldest content first. The name decides where it can: the
/// modification time cannot, since gzip (through logrotate) stamps a compressed file with the
/// time it was compressed, after the newer `mail.log.1` was last written. Numbered files go
/// by number (`.3.gz` before `.2.gz` before `.1`), date-named ones by name; the modification
/// time breaks ties and orders what the name does not tell, and the three kinds of names
/// (found together only after the rotation scheme changed) by their oldest file.
pub(crate) fn sort_in_write_order(name: &str, files: &mut [(PathBuf, Metadata)]) {
    let key = |(path, meta): &(PathBuf, Metadata)| {
        let sibling = path.file_name().unwrap_or_default().to_string_lossy();
        (place(name, &sibling), meta.modified().ok(), path.clone())
    };
    files.sort_by_cached_key(key);
    // The oldest modification time of each kind of name, and the kinds in that order.
    let kind = |f: &(PathBuf, Metadata)| std::mem::discriminant(&key(f).0);
    let mut oldest: Vec<(std::mem::Discriminant<Place>, Option<SystemTime>)> = Vec::new();
    for f in files.iter() {
        let (k, t) = (kind(f), f.1.modified().ok());
        match oldest.iter_mut().find(|(o, _)| *o == k) {
            Some((_, first)) => *first = (*first).min(t),
            None => oldest.push((k, t)),
        }
    }
    let rank = |f: &(PathBuf, Metadata)| {
        let k = kind(f);
        let t = oldest.iter().find(|(o, _)| *o == k).and_then(|(_, t)| *t);
        let i = oldest.iter().position(|(o, _)| *o == k);
        (t, i)
    };
    files.sort_by_cached_key(rank); // stable: each kind keeps its order
}

/// A file holding the content of another (see [`content_copy`]).
pub(crate) struct ContentCopy {
    pub path: PathBuf,
    pub meta: Metadata,
    pub file: File,
    pub kind: Compression,
    /// Its first bytes (decompressed).
    pub head: Vec<u8>,
}

/// A sibling of `original` (same directory, name starting with its name without a rotation
/// number: `mail.log.1` and `mail.log.2.gz` for `mail.log` or `mail.log.1`;
/// `mail.log-20261125.gz`) that is a different file holding the same content as far as
/// `fingerprint` covers: the copy copytruncate made, or a rotated file compressed since.
/// Plain copies are preferred, then the newest.
pub(crate) fn content_copy(
    original: &Path,
    fingerprint: Fingerprint,
    not: FileKey,
) -> Option<ContentCopy> {
    if fingerprint.len == 0 {
        return None; // nothing was seen of the file: no content to recognise
    }
    let dir = original.parent()?;
    let name = base_name(&original.file_name()?.to_string_lossy());
    let mut best: Option<ContentCopy> = None;
    for entry in fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let sibling = entry.file_name().to_string_lossy().into_owned();
        if sibling == name || !sibling.starts_with(&name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let Ok((file, kind, head)) = content_head(&entry.path()) else {
            continue;
        };
        // The original itself is no copy; a compressed file with its inode is (the original
        // was deleted, and gzip's output got its inode).
        if !fingerprint.matches(&head) || (FileKey::of(&meta) == not && kind == Compression::None) {
            continue;
        }
        let rank = |k: Compression, m: &Metadata| (k == Compression::None, m.modified().ok());
        let better = best
            .as_ref()
            .is_none_or(|b| rank(kind, &meta) > rank(b.kind, &b.meta));
        if better {
            let path = entry.path();
            best = Some(ContentCopy {
                path,
                meta,
                file,
                kind,
                head,
            });
        }
    }
    best
}

/// A rotated file's name without its compression suffix and rotation number (`mail.log.2.gz`:
/// `mail.log`): what its copies' names start with.
fn base_name(name: &str) -> String {
    let name = [".gz", ".bz2"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name);
    match name.rsplit_once('.') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watched_directory_is_the_part_before_any_glob() {
        assert_eq!(
            watch_dir(Path::new("/var/log/mail/*.log")),
            Path::new("/var/log/mail")
        );
        assert_eq!(
            watch_dir(Path::new("/var/log/*/mail.log")),
            Path::new("/var/log")
        );
        assert_eq!(watch_dir(Path::new("mail.log")), Path::new("."));
    }

    #[test]
    fn rotations_sort_by_their_number_or_date_not_their_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str, secs: u64| {
            let path = dir.path().join(name);
            fs::write(&path, name).unwrap();
            let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        // Compressed after mail.log.1 was last written: newer by time, older by name.
        at("mail.log.1", 100);
        at("mail.log.2.gz", 200);
        at("mail.log.10.gz", 300);
        at("mail.log.3.bz2", 50);
        at("mail.log", 400);
        let names = |input: &str| -> Vec<String> {
            siblings(&dir.path().join(input))
                .iter()
                .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names("mail.log"),
            [
                "mail.log.10.gz",
                "mail.log.3.bz2",
                "mail.log.2.gz",
                "mail.log.1"
            ]
        );
        at("maillog-20261125.gz", 900);
        at("maillog-20261124", 950);
        at("maillog-20261126", 10);
        assert_eq!(
            names("maillog"),
            [
                "maillog-20261124",
                "maillog-20261125.gz",
                "maillog-20261126"
            ]
        );
    }

    #[test]
    fn copies_are_looked_for_beside_the_name_without_its_rotation_number() {
        assert_eq!(base_name("mail.log.2.gz"), "mail.log");
        assert_eq!(base_name("mail.log.1"), "mail.log");
        assert_eq!(base_name("mail.log"), "mail.log");
        assert_eq!(base_name("mail.log-20261125.gz"), "mail.log-20261125");
    }
}
