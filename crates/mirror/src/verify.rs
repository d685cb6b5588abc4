//! The mirror against the archive: for every mirror file, its records and the records of the
//! archive files it holds, as multisets; archive files held twice; archive files not held
//! (not mirrored yet: said, not an error, since an hour settles before it is mirrored).
//!
//! It never writes.

use std::collections::BTreeMap;

use crate::store::{MirrorError, MirrorStore, covered};

/// What a verification found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Mirror files compared.
    pub files: usize,
    /// Records compared.
    pub records: u64,
    /// Differences, one line each, naming the mirror file.
    pub differences: Vec<String>,
    /// Archive files no mirror file holds yet.
    pub not_mirrored: Vec<String>,
}

/// Compares the mirror with its archive.
pub fn verify(mirror: &MirrorStore) -> Result<Verified, MirrorError> {
    let files = mirror.mirror_files()?;
    let archive = mirror.archive_files("")?;
    let (held, twice) = covered(&files);
    let mut found = Verified {
        files: files.len(),
        ..Verified::default()
    };
    for key in twice {
        found
            .differences
            .push(format!("{key}: held by two mirror files"));
    }
    for file in &files {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for (kind, record) in mirror.mirror_records(&file.key)? {
            let text = serde_json::to_string(&record).unwrap_or_default();
            *counts.entry(format!("{kind} {text}")).or_default() += 1;
            found.records += 1;
        }
        for key in &file.covers {
            if !archive.contains(key) {
                found.differences.push(format!(
                    "{}: holds {key}, which the archive does not have",
                    file.key
                ));
                continue;
            }
            let name = key.rsplit('/').next().unwrap_or(key);
            let kind = name.split('-').next().unwrap_or("");
            for record in mirror.archive_records(key)? {
                let text = serde_json::to_string(&record).unwrap_or_default();
                *counts.entry(format!("{kind} {text}")).or_default() -= 1;
            }
        }
        let extra: i64 = counts.values().filter(|n| **n > 0).sum();
        let missing: i64 = -counts.values().filter(|n| **n < 0).sum::<i64>();
        if extra > 0 || missing > 0 {
            let example = counts
                .iter()
                .find(|(_, n)| **n != 0)
                .map(|(r, _)| r.clone());
            found.differences.push(format!(
                "{}: {missing} records of its archive files missing, {extra} not in them (e.g. {})",
                file.key,
                example.unwrap_or_default()
            ));
        }
    }
    found.not_mirrored = archive.into_iter().filter(|k| !held.contains(k)).collect();
    Ok(found)
}
