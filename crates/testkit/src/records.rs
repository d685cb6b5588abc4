//! The archive's records as multisets: what end-to-end tests compare.
#![allow(clippy::unwrap_used)] // test support: a failure is the test's failure

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Every file under `dir`, in path order.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path)
            } else {
                out.push(path)
            }
        }
    }
    out.sort();
    out
}

/// How often each item occurs.
pub fn multiset(items: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut set = HashMap::new();
    for item in items {
        *set.entry(item).or_default() += 1;
    }
    set
}

/// The records of every window file under `dir` as `"{kind} {json}"`; anything else left
/// there (a partial copy, say) is an error.
pub fn archived_records(dir: &Path) -> HashMap<String, usize> {
    let mut lines = Vec::new();
    for path in files(dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with(".json.bz2"), "left in the archive: {name}");
        let kind = name.split('-').next().unwrap().to_owned();
        let mut text = String::new();
        bzip2::read::MultiBzDecoder::new(File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        lines.extend(text.lines().map(|l| format!("{kind} {l}")));
    }
    multiset(lines)
}
