//! What the pipeline's end-to-end tests share: [`maillog_testkit`] (a real S3-compatible
//! server, the archive's records as multisets) and the parser's records to compare with.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

pub use maillog_testkit::records::{archived_records, files, multiset};
pub use maillog_testkit::s3::{ACCESS_KEY, S3Server, SECRET_KEY, have_s3s_fs};

/// What `maillog parse` makes of `log`, as `"{kind} {json}"`.
pub fn parsed_records(log: &Path) -> HashMap<String, usize> {
    let mut lines = Vec::new();
    for kind in ["from", "to"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_maillog"))
            .args(["parse", "--kind", kind])
            .arg(log)
            .output()
            .unwrap();
        assert!(out.status.success());
        lines.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| format!("{kind} {l}")),
        );
    }
    multiset(lines)
}

/// A generated cluster log of `lines` lines (20 a second, `maillog-loggen`'s defaults otherwise).
pub fn generated_log(path: &Path, lines: u64) {
    let config = maillog_loggen::Config {
        lines,
        rate: 20.0,
        ..maillog_loggen::Config::default()
    };
    maillog_loggen::write_log(&config, &mut std::fs::File::create(path).unwrap()).unwrap();
}
