//! Finding files: what the input paths and globs name now, where a known file went after a
//! rename, and which sibling holds the content of a file that was truncated or compressed.
//!
//! Only looks; never opens a file for following and never touches the registry.

use std::fs::{self, File, Metadata};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

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

/// Regular files beside `input` whose names start with its name (its rotations), written to
/// at or after `since` (unix seconds).
pub(crate) fn unknown_siblings(input: &Path, since: u64) -> Vec<(PathBuf, Metadata)> {
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
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let sibling = e.file_name().to_string_lossy().into_owned();
            sibling != name && sibling.starts_with(&name)
        })
        .filter_map(|e| Some((e.path(), e.metadata().ok()?)))
        .filter(|(_, meta)| {
            let written = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
            meta.is_file() && written.is_some_and(|w| w.as_secs() >= since)
        })
        .collect()
}

/// A sibling of `original` (same directory, name starting with its name: `mail.log.1`,
/// `mail.log-20261125.gz`) that is a different file holding the same content as far as
/// `fingerprint` covers: the copy copytruncate made, or a rotated file compressed since.
/// Plain copies are preferred, then the newest.
pub(crate) fn content_copy(
    original: &Path,
    fingerprint: Fingerprint,
    not: FileKey,
) -> Option<(PathBuf, Metadata, File, Compression)> {
    if fingerprint.len == 0 {
        return None; // nothing was seen of the file: no content to recognise
    }
    let dir = original.parent()?;
    let name = original.file_name()?.to_string_lossy().into_owned();
    let mut best: Option<(PathBuf, Metadata, File, Compression)> = None;
    for entry in fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let sibling = entry.file_name().to_string_lossy().into_owned();
        if sibling == name || !sibling.starts_with(&name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || FileKey::of(&meta) == not {
            continue;
        }
        let Ok((file, kind, head)) = content_head(&entry.path()) else {
            continue;
        };
        if !fingerprint.matches(&head) {
            continue;
        }
        let better = best.as_ref().is_none_or(|(_, b, _, bkind)| {
            let rank = |k: Compression, m: &Metadata| (k == Compression::None, m.modified().ok());
            rank(kind, &meta) > rank(*bkind, b)
        });
        if better {
            best = Some((entry.path(), meta, file, kind));
        }
    }
    best
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
}
