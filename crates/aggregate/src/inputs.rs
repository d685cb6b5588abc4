//! Turning the INPUT arguments of `maillog top`/`report` into inputs to scan.
//!
//! This module owns the expansion of arguments into [`Input`]s: a directory is walked for
//! archive files (`*.json`, `*.ndjson`, with `.bz2` or `.gz`; symbolic links not followed), in
//! name order; a file is taken as it is, whatever it holds (raw syslog included); `-` is stdin;
//! `s3://bucket/prefix` lists every archive file under the prefix, and `*`/`?` in it glob within
//! one path segment (`s3://bucket/mail_logs/2011-07-13/to*`), like the original pipeline's Pig
//! paths. An argument that names nothing is a problem named by the argument; the others go on.
//! With a time range, files whose name is a window outside it are skipped, and so are folders
//! named after a date outside it: not walked on disk, not listed in S3, where a prefix is
//! listed one level at a time ([`Bucket::list_level`]) so that only the date prefixes in range
//! are. A file named on the command line is always read; an argument whose archive files are
//! all out of range gives nothing to read, and is no problem. An archive's root (local or S3)
//! with a Parquet mirror under it has the archive files the mirror holds read from the mirror
//! instead (`mirrored`, [`Source`]).
//!
//! It never reads an input's content (that is [`crate::scan`]) and never talks to S3 itself:
//! the caller's [`Connect`] gives a [`Bucket`] that lists and opens objects (S3 in `maillog`,
//! anything in a test), so that this crate needs no network client.

use std::collections::HashMap;
use std::error::Error;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::GlobBuilder;

use crate::range::Selection;
use crate::scan::{Input, Problem};

mod mirrored;

pub use mirrored::Source;

/// An error of a bucket, as its client gives it.
pub type BucketError = Box<dyn Error + Send + Sync>;

/// The objects of one bucket: what a query needs of an object store.
pub trait Bucket: Send + Sync {
    /// Every object whose key starts with `prefix`: its key and size.
    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, BucketError>;
    /// Opens the object `key` for reading, as a stream.
    fn open(&self, key: &str) -> io::Result<Box<dyn Read + Send>>;

    /// The last `bytes` bytes of the object `key` (all of it if it is shorter). By default,
    /// the whole object read and its end kept; a store that reads ranges reads just those.
    fn tail(&self, key: &str, bytes: u64) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        self.open(key)?.read_to_end(&mut all)?;
        let start = all
            .len()
            .saturating_sub(usize::try_from(bytes).unwrap_or(usize::MAX));
        Ok(all.split_off(start))
    }

    /// The folders and objects right under `prefix` (empty or ending in `/`), as a listing
    /// with the delimiter `/` gives them. By default, from [`Bucket::list`].
    fn list_level(&self, prefix: &str) -> Result<Listing, BucketError> {
        let mut listing = Listing::default();
        for (key, len) in self.list(prefix)? {
            let rest = &key[prefix.len().min(key.len())..];
            match rest.split_once('/') {
                Some((folder, _)) => {
                    let folder = format!("{prefix}{folder}/");
                    if listing.folders.last() != Some(&folder) {
                        listing.folders.push(folder);
                    }
                }
                None => listing.objects.push((key, len)),
            }
        }
        listing.folders.dedup();
        Ok(listing)
    }
}

/// One level of a bucket under a prefix.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The folders' keys, each ending in `/`.
    pub folders: Vec<String>,
    /// The objects' keys and sizes.
    pub objects: Vec<(String, u64)>,
}

/// Connects to the bucket of that name (called once per bucket the arguments name).
pub type Connect<'a> = dyn Fn(&str) -> Result<Arc<dyn Bucket>, BucketError> + Sync + 'a;

/// An error and every source under it, as `anyhow` prints `{:#}`: the problem a query
/// reports keeps the store's own words.
fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let words = cause.to_string();
        if !text.contains(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = cause.source();
    }
    text
}

/// Whether a file name is one of the archive's (or NDJSON records of other tools).
fn is_archive_file(name: &str) -> bool {
    let name = name
        .strip_suffix(".bz2")
        .or_else(|| name.strip_suffix(".gz"))
        .unwrap_or(name);
    !name.starts_with('.') && (name.ends_with(".json") || name.ends_with(".ndjson"))
}

/// The resolved inputs, and the arguments that named nothing.
pub struct Resolved {
    /// What to scan.
    pub inputs: Vec<Input>,
    /// Arguments that could not be resolved.
    pub problems: Vec<Problem>,
    /// Whether an input comes from S3 (reading waits on the network).
    pub remote: bool,
}

/// Resolves every argument, connecting to each bucket named once; what `selection` excludes
/// by name is skipped; an archive's mirror is read where `source` says (see [`Source`]).
pub fn resolve(
    args: &[String],
    connect: &Connect<'_>,
    selection: &Selection,
    source: Source,
) -> Resolved {
    let mut resolved = Resolved {
        inputs: Vec::new(),
        problems: Vec::new(),
        remote: false,
    };
    let mut buckets: HashMap<String, Arc<dyn Bucket>> = HashMap::new();
    let mut stdin_taken = false;
    for arg in args {
        let problem = |message: String| Problem {
            input: arg.clone(),
            message,
        };
        if arg == "-" {
            if !stdin_taken {
                resolved.inputs.push(Input::stdin());
                stdin_taken = true;
            }
        } else if let Some(rest) = arg.strip_prefix("s3://") {
            resolved.remote = true;
            let found = s3_inputs(rest, connect, &mut buckets, selection).and_then(|found| {
                mirrored::s3(
                    rest,
                    &buckets,
                    selection,
                    source,
                    found,
                    &mut resolved.problems,
                )
            });
            match found {
                Ok((inputs, 0)) if inputs.is_empty() => resolved
                    .problems
                    .push(problem("no archive files match".to_owned())),
                // Nothing in the range there: an empty answer, not a problem.
                Ok((inputs, _)) => resolved.inputs.extend(inputs),
                Err(message) => resolved.problems.push(problem(message)),
            }
        } else {
            let path = Path::new(arg);
            let found = local_inputs(path, selection).and_then(|found| {
                mirrored::local(path, selection, source, found, &mut resolved.problems)
            });
            match found {
                Ok((inputs, 0)) if inputs.is_empty() => resolved.problems.push(problem(
                    "no archive files (*.json, *.json.bz2, *.json.gz) in this directory".to_owned(),
                )),
                // Nothing in the range here: an empty answer, not a problem.
                Ok((inputs, _)) => resolved.inputs.extend(inputs),
                Err(message) => resolved.problems.push(problem(message)),
            }
        }
    }
    resolved
}

/// The archive files of `path` (itself, if a file): a directory is walked in name order, the
/// folders and files `selection` excludes left out — a folder is not even opened. With the
/// number of archive files left out.
fn local_inputs(path: &Path, selection: &Selection) -> Result<(Vec<Input>, usize), String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !metadata.is_dir() {
        return Ok((vec![Input::path(path.to_owned(), Some(metadata.len()))], 0));
    }
    let mut found: Vec<(PathBuf, u64)> = Vec::new();
    let mut skipped = 0;
    let mut folders = vec![path.to_owned()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| format!("cannot walk {}: {e}", folder.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot walk {}: {e}", folder.display()))?;
            // Symbolic links are not followed (nor walked), as find(1) does by default.
            let kind = entry
                .file_type()
                .map_err(|e| format!("cannot walk {}: {e}", entry.path().display()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                if folder == path && name == maillog_mirror::schema::PREFIX {
                    continue; // the mirror's files are not the archive's (see `mirrored`)
                }
                if selection.may_hold_dir(&name) {
                    folders.push(entry.path());
                } else {
                    skipped += 1;
                }
            } else if kind.is_file() && is_archive_file(&name) {
                if selection.may_hold_file(&name) {
                    let len = entry.metadata().map_or(0, |m| m.len());
                    found.push((entry.path(), len));
                } else {
                    skipped += 1;
                }
            }
        }
    }
    // Path order compares component by component: a folder's files before its next sibling's.
    found.sort();
    let inputs = found
        .into_iter()
        .map(|(path, len)| Input::path(path, Some(len)));
    Ok((inputs.collect(), skipped))
}

/// The objects of `bucket/pattern` (without `s3://`), with the number of archive files (or
/// date folders) `selection` left out.
fn s3_inputs(
    rest: &str,
    connect: &Connect<'_>,
    buckets: &mut HashMap<String, Arc<dyn Bucket>>,
    selection: &Selection,
) -> Result<(Vec<Input>, usize), String> {
    let (bucket, pattern) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("no bucket after s3://".to_owned());
    }
    let reader = match buckets.get(bucket) {
        Some(reader) => Arc::clone(reader),
        None => {
            let reader = connect(bucket).map_err(|e| chain(&*e))?;
            buckets.insert(bucket.to_owned(), Arc::clone(&reader));
            reader
        }
    };
    let wild = pattern.find(['*', '?', '[']);
    let prefix = &pattern[..wild.unwrap_or(pattern.len())];
    if wild.is_none() && !selection.range.is_all() {
        // A folder: listed level by level, the date folders out of range left out. (An object
        // named exactly is read, whatever its name.)
        let folder = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_owned()
        } else {
            let level = reader.list_level(prefix).map_err(|e| chain(&*e))?;
            if let Some(object) = level.objects.into_iter().find(|(key, _)| key == prefix) {
                return Ok((streams(bucket, &reader, vec![object]), 0));
            }
            format!("{prefix}/")
        };
        let (keys, skipped) =
            walk_levels(&*reader, &folder, selection, is_archive_file).map_err(|e| chain(&*e))?;
        return Ok((streams(bucket, &reader, keys), skipped));
    }
    let listed = reader.list(prefix).map_err(|e| chain(&*e))?;
    let keys: Vec<(String, u64)> = match wild {
        Some(_) => {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("bad pattern: {e}"))?
                .compile_matcher();
            listed
                .into_iter()
                .filter(|(key, _)| glob.is_match(key) && is_archive_file(base(key)))
                .collect()
        }
        None => {
            let exact = listed.iter().find(|(key, _)| key == pattern).cloned();
            match exact {
                Some(object) if !pattern.is_empty() => vec![object],
                _ => {
                    let dir = if pattern.is_empty() || pattern.ends_with('/') {
                        pattern.to_owned()
                    } else {
                        format!("{pattern}/")
                    };
                    listed
                        .into_iter()
                        .filter(|(key, _)| key.starts_with(&dir) && is_archive_file(base(key)))
                        .collect()
                }
            }
        }
    };
    let all = keys.len();
    let keys: Vec<_> = keys
        .into_iter()
        .filter(|(key, _)| selection.may_hold_file(base(key)))
        .collect();
    let skipped = all - keys.len();
    Ok((streams(bucket, &reader, keys), skipped))
}

/// The files under the folder `prefix` of `bucket` whose names are `wanted` and that
/// `selection` may need, in key order: one listing per folder, folders named after a date out
/// of range not listed. With the number of files and folders left out.
fn walk_levels(
    bucket: &dyn Bucket,
    prefix: &str,
    selection: &Selection,
    wanted: fn(&str) -> bool,
) -> Result<(Vec<(String, u64)>, usize), BucketError> {
    let mut found = Vec::new();
    let mut skipped = 0;
    let mut folders = vec![prefix.to_owned()];
    while let Some(folder) = folders.pop() {
        let listing = bucket.list_level(&folder)?;
        for folder in listing.folders {
            if selection.may_hold_dir(base(folder.trim_end_matches('/'))) {
                folders.push(folder);
            } else {
                skipped += 1;
            }
        }
        for (key, len) in listing.objects {
            let name = base(&key);
            if !wanted(name) {
                continue;
            }
            if selection.may_hold_file(name) {
                found.push((key, len));
            } else {
                skipped += 1;
            }
        }
    }
    found.sort();
    Ok((found, skipped))
}

/// The objects `keys` of `bucket`, as inputs read through `reader`.
fn streams(bucket: &str, reader: &Arc<dyn Bucket>, keys: Vec<(String, u64)>) -> Vec<Input> {
    keys.into_iter()
        .map(|(key, len)| {
            let reader = Arc::clone(reader);
            let name = format!("s3://{bucket}/{key}");
            Input::stream(name, Some(len), Box::new(move || reader.open(&key)))
        })
        .collect()
}

fn base(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_files_are_told_by_name() {
        for name in [
            "to-2011-07-13-00-05.json.bz2",
            "from-x.json",
            "a.ndjson.gz",
            "b.json.gz",
        ] {
            assert!(is_archive_file(name), "{name}");
        }
        for name in [
            "mail.log",
            ".to-x.json.bz2",
            "lock",
            "checkpoint.json.tmp",
            "x.bz2",
        ] {
            assert!(!is_archive_file(name), "{name}");
        }
    }

    #[test]
    fn missing_paths_and_empty_directories_are_problems() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope").display().to_string();
        let empty = dir.path().display().to_string();
        let resolved = resolve(
            &[missing.clone(), empty.clone()],
            &|_: &str| Err("no buckets here".into()),
            &Selection::all(),
            Source::Auto,
        );
        assert!(resolved.inputs.is_empty());
        let named: Vec<_> = resolved.problems.iter().map(|p| p.input.clone()).collect();
        assert_eq!(named, vec![missing, empty]);
    }

    /// A bucket in memory.
    struct Memory(Vec<(String, u64)>);

    impl Bucket for Memory {
        fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, BucketError> {
            Ok(self
                .0
                .iter()
                .filter(|(key, _)| key.starts_with(prefix))
                .cloned()
                .collect())
        }

        fn open(&self, _: &str) -> io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(io::empty()))
        }
    }

    #[test]
    fn s3_globs_match_within_one_segment_and_prefixes_are_folders() {
        let keys = [
            "logs/d1/to-1.json.bz2",
            "logs/d1/from-1.json.bz2",
            "logs/d1/x/to-2.json.bz2",
            "logs/d10/to-3.json.bz2",
            "logs/d1/notes.txt",
        ];
        let connects = std::sync::atomic::AtomicUsize::new(0);
        let connect = |bucket: &str| -> Result<Arc<dyn Bucket>, BucketError> {
            connects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(bucket, "b");
            let objects = keys.iter().map(|k| ((*k).to_owned(), 1)).collect();
            Ok(Arc::new(Memory(objects)))
        };
        let names = |arg: &str| -> Vec<String> {
            let resolved = resolve(
                &[arg.to_owned()],
                &connect,
                &Selection::all(),
                Source::Bzip2,
            );
            assert!(resolved.remote);
            resolved.inputs.into_iter().map(|i| i.name).collect()
        };
        assert_eq!(
            names("s3://b/logs/d1/to*"),
            vec!["s3://b/logs/d1/to-1.json.bz2"]
        );
        assert_eq!(
            names("s3://b/logs/d1"),
            vec![
                "s3://b/logs/d1/to-1.json.bz2",
                "s3://b/logs/d1/from-1.json.bz2",
                "s3://b/logs/d1/x/to-2.json.bz2",
            ]
        );
        let twice = resolve(
            &["s3://b/logs/d1/*".to_owned(), "s3://b/nothing".to_owned()],
            &connect,
            &Selection::all(),
            Source::Auto,
        );
        assert_eq!(twice.inputs.len(), 2);
        assert_eq!(twice.problems[0].message, "no archive files match");
        assert_eq!(connects.load(std::sync::atomic::Ordering::Relaxed), 3);
    }

    /// A bucket in memory that notes every prefix listed.
    struct Noted(Vec<String>, std::sync::Mutex<Vec<String>>);

    impl Bucket for Noted {
        fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, BucketError> {
            self.1.lock().expect("lock").push(prefix.to_owned());
            let keys = self.0.iter().filter(|key| key.starts_with(prefix));
            Ok(keys.map(|key| (key.clone(), 1)).collect())
        }

        fn open(&self, _: &str) -> io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(io::empty()))
        }
    }

    #[test]
    fn a_range_lists_only_the_date_folders_in_it_and_reads_only_the_windows_in_it() {
        let zone: maillog_parse::Zone = "Europe/Berlin".parse().expect("zone");
        let day = crate::range::DaySpec::Date(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
        );
        let selection = Selection {
            range: day.range(&zone, chrono::Utc::now()),
            zone,
            joins_sizes: false,
            kinds: crate::range::BOTH_KINDS,
        };
        let keys = [
            "mail_logs/2026-11-18/to-2026-11-18-12-00.json.bz2",
            "mail_logs/2026-11-20/to-2026-11-20-12-00.json.bz2",
            "mail_logs/2026-11-20/from-2026-11-20-00-00.part-001.json.bz2",
            "mail_logs/2026-11-21/to-2026-11-21-00-30.json.bz2",
            "mail_logs/2026-11-21/to-2026-11-21-12-00.json.bz2",
            "mail_logs/dt=2026-11-22/to-2026-11-22-12-00.json.bz2",
            "logs/relay1/2026-11-20/10/to-2026-11-20-10-05.json.bz2",
            "logs/relay1/2026-11-23/10/to-2026-11-23-10-05.json.bz2",
        ];
        let bucket: Arc<Noted> = Arc::new(Noted(
            keys.iter().map(|k| (*k).to_owned()).collect(),
            Default::default(),
        ));
        let shared = Arc::clone(&bucket);
        let connect = move |_: &str| -> Result<Arc<dyn Bucket>, BucketError> {
            Ok(Arc::clone(&shared) as Arc<dyn Bucket>)
        };
        let names = |arg: &str| -> Vec<String> {
            let resolved = resolve(&[arg.to_owned()], &connect, &selection, Source::Bzip2);
            resolved.inputs.into_iter().map(|i| i.name).collect()
        };
        assert_eq!(
            names("s3://b/mail_logs"),
            vec![
                "s3://b/mail_logs/2026-11-20/from-2026-11-20-00-00.part-001.json.bz2",
                "s3://b/mail_logs/2026-11-20/to-2026-11-20-12-00.json.bz2",
                "s3://b/mail_logs/2026-11-21/to-2026-11-21-00-30.json.bz2",
            ]
        );
        assert_eq!(
            names("s3://b/"),
            vec![
                "s3://b/logs/relay1/2026-11-20/10/to-2026-11-20-10-05.json.bz2",
                "s3://b/mail_logs/2026-11-20/from-2026-11-20-00-00.part-001.json.bz2",
                "s3://b/mail_logs/2026-11-20/to-2026-11-20-12-00.json.bz2",
                "s3://b/mail_logs/2026-11-21/to-2026-11-21-00-30.json.bz2",
            ]
        );
        let listed = bucket.1.lock().expect("lock").clone();
        for out in ["2026-11-18", "2026-11-22", "2026-11-23"] {
            assert!(
                listed.iter().all(|prefix| !prefix.contains(out)),
                "{out} listed: {listed:?}"
            );
        }
        // An object named exactly is read whatever its name says.
        assert_eq!(
            names("s3://b/mail_logs/2026-11-18/to-2026-11-18-12-00.json.bz2").len(),
            1
        );
    }
}
