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

/// The python of the venv scripts/install-spark makes (`MAILLOG_SPARK_PYTHON`, else
/// `${MAILLOG_TOOLS:-$HOME/.cache/maillog}/spark-venv/bin/python`), if `import MODULES` works
/// there; else why not.
pub fn venv_python(modules: &str) -> Result<std::path::PathBuf, String> {
    let python = match std::env::var_os("MAILLOG_SPARK_PYTHON") {
        Some(python) => std::path::PathBuf::from(python),
        None => {
            let tools = match std::env::var_os("MAILLOG_TOOLS") {
                Some(tools) => std::path::PathBuf::from(tools),
                None => {
                    std::path::PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set")?)
                        .join(".cache/maillog")
                }
            };
            tools.join("spark-venv/bin/python")
        }
    };
    let imports = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if !imports {
        return Err(format!("no {modules} at {}", python.display()));
    }
    Ok(python)
}

/// [`venv_python`], or `None` with SKIPPED said — a failure under CI.
pub fn venv_python_or_skip(test: &str, modules: &str) -> Option<std::path::PathBuf> {
    match venv_python(modules) {
        Ok(python) => Some(python),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{why}: scripts/install-spark installs it (scripts/test runs it)")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: {why} (run scripts/install-spark)");
            None
        }
    }
}
