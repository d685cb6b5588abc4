//! How much a spool holds, read from the file system: for another thread (`/health`,
//! `/metrics`) that has no hold on the spool. It only looks; it never opens a window file.

use std::fs;
use std::path::Path;

/// What a spool holds on disk: its files (open windows with their raw blocks, sealed files,
/// archived files kept, orphans) and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
}

/// The usage of the spool in `dir` (the directory given to [`crate::Batcher::open`]), read
/// from the file system, so that another thread (`/health`, `/metrics`) can ask without the
/// spool. What cannot be read counts as empty.
pub fn usage(dir: &Path) -> Usage {
    let mut usage = Usage::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return usage;
    };
    for sub in entries.filter_map(Result::ok) {
        let Ok(inner) = fs::read_dir(sub.path()) else {
            continue;
        };
        for entry in inner.filter_map(Result::ok) {
            if let Ok(meta) = entry.metadata()
                && meta.is_file()
            {
                usage.files += 1;
                usage.bytes += meta.len();
            }
        }
    }
    usage
}
