//! Whether the real programs a test runs are installed. A missing one makes the test say
//! SKIPPED and pass — except under CI (`CI` set), where it fails: there every tool must be
//! there (`scripts/install-test-tools` installs them).
//!
//! It only looks programs up on `PATH` and tells whether the test runs as root; it never
//! installs anything.

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

/// Whether this process is root, which a test that runs maillog as another user needs; if
/// not, prints SKIPPED and returns false — or panics under CI, where tests run as root.
pub fn root_or_skip(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: needs root under CI, to run maillog as another user"
        );
        eprintln!("SKIPPED {test}: needs root, to run maillog as another user");
    }
    root
}

/// `program` run by `setpriv` as the user `nobody` (group `nogroup`, no other group): what a
/// service user outside the log's group meets. Root only ([`root_or_skip`]).
pub fn as_nobody(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(program);
    command
}
