//! Turning the INPUT arguments of `maillog top`/`report` into inputs to scan.
//!
//! A directory is walked for archive files (`*.json`, `*.ndjson`, with `.bz2` or `.gz`), in
//! name order; a file is taken as it is, whatever it holds (raw syslog included); `-` is stdin;
//! `s3://bucket/prefix` lists every archive file under the prefix, and `*`/`?` in it glob within
//! one path segment (`s3://bucket/mail_logs/2011-07-13/to*`), like the original pipeline's Pig
//! paths. An argument that names nothing is a problem named by the argument; the others go on.
//!
//! It never reads an input's content (that is `maillog_aggregate::scan`).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use globset::GlobBuilder;
use maillog_aggregate::scan::{Input, Problem};
use maillog_upload::{S3Options, S3Reader};

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

/// Resolves every argument, connecting to each bucket named once.
pub fn resolve(args: &[String], s3: &S3Options) -> Resolved {
    let mut resolved = Resolved {
        inputs: Vec::new(),
        problems: Vec::new(),
        remote: false,
    };
    let mut buckets: HashMap<String, S3Reader> = HashMap::new();
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
            match s3_inputs(rest, s3, &mut buckets) {
                Ok(inputs) if inputs.is_empty() => resolved
                    .problems
                    .push(problem("no archive files match".to_owned())),
                Ok(inputs) => resolved.inputs.extend(inputs),
                Err(error) => resolved.problems.push(problem(format!("{error:#}"))),
            }
        } else {
            let path = Path::new(arg);
            match local_inputs(path) {
                Ok(inputs) if inputs.is_empty() => resolved.problems.push(problem(
                    "no archive files (*.json, *.json.bz2, *.json.gz) in this directory".to_owned(),
                )),
                Ok(inputs) => resolved.inputs.extend(inputs),
                Err(message) => resolved.problems.push(problem(message)),
            }
        }
    }
    resolved
}

fn local_inputs(path: &Path) -> Result<Vec<Input>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !metadata.is_dir() {
        return Ok(vec![Input::path(path.to_owned(), Some(metadata.len()))]);
    }
    let mut found: Vec<(PathBuf, u64)> = Vec::new();
    for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
        let entry = entry.map_err(|e| format!("cannot walk: {e}"))?;
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && is_archive_file(&name) {
            let len = entry.metadata().map_or(0, |m| m.len());
            found.push((entry.into_path(), len));
        }
    }
    Ok(found
        .into_iter()
        .map(|(path, len)| Input::path(path, Some(len)))
        .collect())
}

/// The objects of `bucket/pattern` (without `s3://`). The archive's errors keep their
/// sources: the problem's message is their whole chain.
fn s3_inputs(
    rest: &str,
    s3: &S3Options,
    buckets: &mut HashMap<String, S3Reader>,
) -> anyhow::Result<Vec<Input>> {
    let (bucket, pattern) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("no bucket after s3://");
    }
    let reader = match buckets.get(bucket) {
        Some(reader) => reader.clone(),
        None => {
            let reader = S3Reader::connect(&format!("s3://{bucket}"), s3)?;
            buckets.insert(bucket.to_owned(), reader.clone());
            reader
        }
    };
    let wild = pattern.find(['*', '?', '[']);
    let prefix = &pattern[..wild.unwrap_or(pattern.len())];
    let listed = reader.list(prefix)?;
    let keys: Vec<(String, u64)> = match wild {
        Some(_) => {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .context("bad pattern")?
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
    Ok(keys
        .into_iter()
        .map(|(key, len)| {
            let reader = reader.clone();
            let name = format!("s3://{bucket}/{key}");
            Input::stream(
                name,
                Some(len),
                Box::new(move || {
                    // The archive's error, kept whole inside the I/O error the scan takes.
                    let object = reader.open(&key).map_err(std::io::Error::other)?;
                    Ok(Box::new(object) as Box<dyn Read + Send>)
                }),
            )
        })
        .collect())
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
        let resolved = resolve(&[missing.clone(), empty.clone()], &S3Options::default());
        assert!(resolved.inputs.is_empty());
        let named: Vec<_> = resolved.problems.iter().map(|p| p.input.clone()).collect();
        assert_eq!(named, vec![missing, empty]);
    }
}
