//! Whether the real programs a test runs are installed. A missing one makes the test say
//! SKIPPED and pass — except under CI (`CI` set), where it fails: there every tool must be
//! there (`scripts/install-test-tools` installs them).
//!
//! It only looks programs up on `PATH`; it never installs anything.

use std::process::Command;

/// Whether every one of `programs` is on `PATH`; if not, prints which are missing (SKIPPED)
/// and returns false, or panics under CI.
pub fn have_all(programs: &[&str]) -> bool {
    let missing: Vec<_> = programs
        .iter()
        .filter(|p| {
            Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!("SKIPPED: {missing:?} not installed (run scripts/install-test-tools)");
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("{message}");
    false
}
