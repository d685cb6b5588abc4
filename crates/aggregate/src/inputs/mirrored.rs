//! An archive's Parquet mirror in a query: where an INPUT is an archive's root (a folder or
//! an `s3://bucket/prefix` with `mirror/` under it), the mirror files in the range are read,
//! and the archive files they hold (their footers say which) are not — so each record is
//! counted once, from whichever holds it. Archive files no mirror file holds yet (the last
//! hour, late parts not compacted) are read from the bzip2 files.
//!
//! A mirror file that cannot be read as one is said, and the archive files it may hold are
//! read instead. It never reads a record (that is [`crate::scan`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use maillog_mirror::schema::PREFIX;
use maillog_parse::Kind;

use super::{Bucket, chain, walk_levels};
use crate::mirror::{self, FileEnd};
use crate::range::Selection;
use crate::scan::{Input, Origin, Problem};

/// Where a query reads an archive's records (`--source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    /// The bzip2 archive files only.
    Bzip2,
    /// The mirror only: archive files it does not hold yet are left out, and said.
    Parquet,
    /// The mirror where it holds the archive files, the bzip2 files elsewhere.
    #[default]
    Auto,
}

impl FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "bzip2" => Ok(Source::Bzip2),
            "parquet" => Ok(Source::Parquet),
            "auto" => Ok(Source::Auto),
            _ => Err(format!("{text:?} is not a source: bzip2, parquet or auto")),
        }
    }
}

/// Found inputs, and how many were skipped by the range.
type Found = (Vec<Input>, usize);

/// The local folder `path`'s mirror files in the range take the place of the archive files
/// they hold among `found` (see the module).
pub(super) fn local(
    path: &Path,
    selection: &Selection,
    source: Source,
    found: Found,
    problems: &mut Vec<Problem>,
) -> Result<Found, String> {
    let dir = path.join(PREFIX);
    if source == Source::Bzip2 || (!dir.is_dir() && source == Source::Auto) {
        return Ok(found);
    }
    if !dir.is_dir() {
        return Err(format!(
            "no mirror here ({} is not a folder; `maillog compact` writes it)",
            dir.display()
        ));
    }
    let mut covered: HashSet<PathBuf> = HashSet::new();
    let mut inputs = Vec::new();
    for (file, len) in local_files(&dir, selection)? {
        let read = std::fs::File::open(&file).and_then(mirror::covers);
        match read {
            Ok(keys) => {
                covered.extend(keys.iter().map(|key| path.join(key)));
                inputs.push(Input::path(file, Some(len)).as_mirror());
            }
            Err(e) => problems.push(unreadable(file.display().to_string(), &e)),
        }
    }
    let held = |input: &Input| matches!(&input.origin, Origin::Path(p) if covered.contains(p));
    let at = path.display().to_string();
    Ok(replace(
        found,
        held,
        inputs,
        source,
        selection.kinds,
        &at,
        problems,
    ))
}

/// The `s3://bucket/prefix` (`rest`, without `s3://`) archive's mirror files in the range take
/// the place of the archive files they hold among `found`. Only each file's footer is read
/// here (a ranged read of its end); the file itself is read when it is scanned.
pub(super) fn s3(
    rest: &str,
    buckets: &std::collections::HashMap<String, Arc<dyn Bucket>>,
    selection: &Selection,
    source: Source,
    found: Found,
    problems: &mut Vec<Problem>,
) -> Result<Found, String> {
    if source == Source::Bzip2 {
        return Ok(found);
    }
    let (bucket, pattern) = rest.split_once('/').unwrap_or((rest, ""));
    let root = pattern.trim_end_matches('/');
    if root.contains(['*', '?', '[']) {
        return match source {
            Source::Parquet => Err("--source parquet reads an archive's root \
                 (s3://bucket/prefix), not a pattern"
                .to_owned()),
            _ => Ok(found),
        };
    }
    let Some(reader) = buckets.get(bucket) else {
        return Ok(found);
    };
    let mut keys = Vec::new();
    for kind in selection.kinds {
        let under = match root {
            "" => format!("{PREFIX}/{}/", kind.as_str()),
            root => format!("{root}/{PREFIX}/{}/", kind.as_str()),
        };
        let (found, _) =
            walk_levels(&**reader, &under, selection, is_mirror_file).map_err(|e| chain(&*e))?;
        keys.extend(found);
    }
    if keys.is_empty() && source == Source::Auto {
        return Ok(found);
    }
    let mut covered: HashSet<String> = HashSet::new();
    let mut inputs = Vec::new();
    for (key, len) in keys {
        let name = format!("s3://{bucket}/{key}");
        let read = FileEnd::read(len, |bytes| reader.tail(&key, bytes)).and_then(mirror::covers);
        match read {
            Ok(held) => {
                let at = |k: &String| match root {
                    "" => format!("s3://{bucket}/{k}"),
                    root => format!("s3://{bucket}/{root}/{k}"),
                };
                covered.extend(held.iter().map(at));
                let reader = Arc::clone(reader);
                let open = move || reader.open(&key);
                inputs.push(Input::stream(name, Some(len), Box::new(open)).as_mirror());
            }
            Err(e) => problems.push(unreadable(name, &e)),
        }
    }
    let held = |input: &Input| covered.contains(&input.name);
    let at = format!("s3://{bucket}/{root}");
    Ok(replace(
        found,
        held,
        inputs,
        source,
        selection.kinds,
        &at,
        problems,
    ))
}

/// The `mirror` inputs in place of the archive inputs among `found` that a mirror file holds
/// (`held`); with `--source parquet`, the archive inputs no mirror file holds are left out,
/// and those of the kinds the query reads said (`at`: the archive).
fn replace(
    found: Found,
    held: impl Fn(&Input) -> bool,
    mut mirror: Vec<Input>,
    source: Source,
    kinds: &[Kind],
    at: &str,
    problems: &mut Vec<Problem>,
) -> Found {
    let (archive, skipped) = found;
    let rest: Vec<Input> = archive.into_iter().filter(|input| !held(input)).collect();
    if source == Source::Parquet {
        let read = |input: &&Input| (input.kind_by_name()).is_none_or(|kind| kinds.contains(&kind));
        let missing = rest.iter().filter(read).count();
        if missing > 0 {
            problems.push(Problem {
                input: at.to_owned(),
                message: format!(
                    "{missing} archive files in the range are not in the mirror yet: not \
                     counted (`maillog compact` mirrors settled hours; --source auto reads them)"
                ),
            });
        }
        return (mirror, skipped);
    }
    mirror.extend(rest);
    (mirror, skipped)
}

fn unreadable(name: String, e: &std::io::Error) -> Problem {
    Problem {
        input: name,
        message: format!(
            "not read as a mirror file ({e}); the archive files it holds are read instead"
        ),
    }
}

/// Whether a key or file name is a mirror file's (`….parquet`, not hidden).
fn is_mirror_file(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    !name.starts_with('.') && name.ends_with(".parquet")
}

/// The mirror files under `dir` (`{kind}/dt=…/…`) of the kinds the query reads, in the date
/// folders the range may need.
fn local_files(dir: &Path, selection: &Selection) -> Result<Vec<(PathBuf, u64)>, String> {
    let mut found = Vec::new();
    let mut folders: Vec<PathBuf> = (selection.kinds.iter())
        .map(|kind| dir.join(kind.as_str()))
        .filter(|folder| folder.is_dir())
        .collect();
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| format!("cannot walk {}: {e}", folder.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && selection.may_hold_dir(&name) {
                folders.push(entry.path());
            } else if kind.is_file() && is_mirror_file(&name) {
                let len = entry.metadata().map_or(0, |m| m.len());
                found.push((entry.path(), len));
            }
        }
    }
    found.sort();
    Ok(found)
}
