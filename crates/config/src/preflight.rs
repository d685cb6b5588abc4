//! What `maillog check` looks at on this machine, as the user running it, before the service
//! ever starts: can it read every input (or a glob's directory), can it write the spool and
//! the state directory and how much room is there, can it write a local archive.
//!
//! The most common install mistake is a service user outside the group that may read
//! `/var/log/mail.log` (`adm` on Debian): a finding names the fix (`usermod -aG adm maillog`).
//! Every look is a real attempt as this process's user — a file opened, a directory listed, a
//! file created and removed — so root, ACLs and mount options answer as they will for the
//! service. It never changes anything it finds; the probe of the archive is the archive
//! crate's ([`maillog_archive::Uploader::probe`]).

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use maillog_archive::ArchiveUrl;
use nix::unistd::{Gid, Group, Uid, User};
use serde::Serialize;

/// How a look went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As it should be.
    Ok,
    /// Works, but worth a look (a file that does not exist yet, little room).
    Warning,
    /// `maillog run` would fail or lose lines: `check` exits 1.
    Problem,
}

/// One thing looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What kind of thing: `input`, `spool`, `state`, `archive`.
    pub check: &'static str,
    /// The path (or URL) looked at.
    pub subject: String,
    /// How it went.
    pub status: Status,
    /// What was found, in words.
    pub message: String,
    /// What to do about it, when something is to be done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Below this much free space the spool cannot even seal a window: a problem.
const TOO_LITTLE_ROOM: u64 = 64 << 20;

/// Whether a path names a glob (as the tailer reads it).
fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

/// The user this process runs as, by name where it has one.
fn user_name() -> String {
    let uid = Uid::effective();
    match User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}

/// Every input: a file opened for reading, a glob's directory listed and its matches opened.
pub fn inputs(inputs: &[PathBuf]) -> Vec<Finding> {
    if inputs.is_empty() {
        return vec![Finding {
            check: "input",
            subject: String::new(),
            status: Status::Warning,
            message: "no inputs: `maillog run` needs --input or `inputs = [...]`".into(),
            fix: Some("inputs = [\"/var/log/mail.log\"] in the config".into()),
        }];
    }
    let mut found = Vec::new();
    for input in inputs {
        if is_glob(input) {
            found.extend(glob_input(input));
        } else {
            found.push(file_input(input));
        }
    }
    found
}

fn file_input(path: &Path) -> Finding {
    let subject = path.display().to_string();
    match File::open(path) {
        Ok(_) => finding("input", subject, Status::Ok, readable_by_me(), None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            match fs::read_dir(dir) {
                Ok(_) => finding(
                    "input",
                    subject,
                    Status::Warning,
                    "does not exist yet: followed once it appears".into(),
                    None,
                ),
                Err(e) => denied("input", &subject, dir, &e),
            }
        }
        Err(e) => denied("input", &subject, path, &e),
    }
}

fn glob_input(pattern: &Path) -> Vec<Finding> {
    let subject = pattern.display().to_string();
    // The directory part: the tailer lists it to find the matches.
    let dir = pattern
        .ancestors()
        .skip(1)
        .find(|a| !is_glob(a))
        .unwrap_or(Path::new("/"));
    if let Err(e) = fs::read_dir(dir) {
        return vec![denied("input", &subject, dir, &e)];
    }
    let Ok(matches) = glob::glob(&pattern.to_string_lossy()) else {
        return vec![finding(
            "input",
            subject,
            Status::Problem,
            "not a valid glob".into(),
            None,
        )];
    };
    let mut found = Vec::new();
    for path in matches.flatten() {
        if let Err(e) = File::open(&path) {
            found.push(denied("input", &path.display().to_string(), &path, &e));
        }
    }
    if found.is_empty() {
        found.push(finding(
            "input",
            subject,
            Status::Ok,
            format!("{} and every file it matches now", readable_by_me()),
            None,
        ));
    }
    found
}

fn readable_by_me() -> String {
    format!("readable by {}", user_name())
}

/// A look that failed at `at`: a permission problem gets the fix its owner and mode call for.
fn denied(check: &'static str, subject: &str, at: &Path, error: &io::Error) -> Finding {
    let me = user_name();
    let message = format!("{me} cannot read {}: {error}", at.display());
    let fix = (error.kind() == io::ErrorKind::PermissionDenied)
        .then(|| fix_for(at, &me))
        .flatten();
    finding(check, subject.to_owned(), Status::Problem, message, fix)
}

/// What lets `me` read `path`: the group that may (the usual `adm`), or a mode that lets a
/// group read.
fn fix_for(path: &Path, me: &str) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    let group = Group::from_gid(Gid::from_raw(meta.gid()))
        .ok()
        .flatten()
        .map_or_else(|| format!("gid {}", meta.gid()), |g| g.name);
    let group_may = if meta.is_dir() {
        mode & 0o050 == 0o050
    } else {
        mode & 0o040 != 0
    };
    Some(if group_may {
        format!(
            "{} is group {group}, mode {mode:04o}: add the user to that group \
             (usermod -aG {group} {me}), then restart the service \
             (the unit's SupplementaryGroups= does it too)",
            path.display()
        )
    } else if meta.is_dir() {
        format!(
            "{} is mode {mode:04o}: let its group in (chmod g+rx {0}) and add the user to \
             group {group} (usermod -aG {group} {me})",
            path.display()
        )
    } else {
        format!(
            "{} is mode {mode:04o}: its group cannot read it; have its writer create it \
             group-readable (syslog-ng: perm(0640) group(\"adm\"); logrotate: create 0640 \
             root adm) and add the user to that group",
            path.display()
        )
    })
}

/// A directory the service writes (`check`: `spool` or `state`): created and removed a file
/// in it (or, not there yet, in the closest directory that is, where it would be created);
/// the free space there.
pub fn writable_dir(check: &'static str, dir: &Path, want_free: u64) -> Finding {
    let subject = dir.display().to_string();
    let existing = dir
        .ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"));
    let me = user_name();
    if let Err(e) = tempfile::tempfile_in(existing) {
        let message = if existing == dir {
            format!("{me} cannot write in it: {e}")
        } else {
            format!(
                "does not exist, and {me} cannot create it in {}: {e}",
                existing.display()
            )
        };
        let fix = if existing == dir {
            format!("chown {me} {}", dir.display())
        } else {
            format!("install -d -o {me} {}", dir.display())
        };
        return finding(check, subject, Status::Problem, message, Some(fix));
    }
    let created = if existing == dir {
        String::new()
    } else {
        format!(" (created at the first run, in {})", existing.display())
    };
    let free = match nix::sys::statvfs::statvfs(existing) {
        Ok(s) => s.blocks_available().saturating_mul(s.fragment_size()),
        Err(e) => {
            let message = format!("writable by {me}{created}; free space unknown: {e}");
            return finding(check, subject, Status::Warning, message, None);
        }
    };
    let (status, fix) = if free < TOO_LITTLE_ROOM {
        (
            Status::Problem,
            Some("free some space on that file system".into()),
        )
    } else if free < want_free {
        let fix = format!(
            "the health limit allows {} in the spool: free space, or lower [health] \
             max_spool_mib",
            human(want_free)
        );
        (Status::Warning, Some(fix))
    } else {
        (Status::Ok, None)
    };
    let message = format!("writable by {me}{created}; {} free", human(free));
    finding(check, subject, status, message, fix)
}

/// A local archive's directory is written like the spool; an S3 archive is only reached by
/// the probe (`--probe-archive`).
pub fn archive(url: &ArchiveUrl, probed: bool) -> Option<Finding> {
    match url.local_dir() {
        Some(dir) => Some(writable_dir("archive", dir, 0)),
        None if probed => None,
        None => Some(finding(
            "archive",
            url.to_string(),
            Status::Warning,
            "not tried (S3): run `maillog check --probe-archive` to put, read and delete a \
             small object with these credentials"
                .into(),
            None,
        )),
    }
}

fn finding(
    check: &'static str,
    subject: String,
    status: Status,
    message: String,
    fix: Option<String>,
) -> Finding {
    Finding {
        check,
        subject,
        status,
        message,
        fix,
    }
}

/// Bytes for a person: `12.3 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_readable_file_a_missing_one_and_a_glob_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        fs::write(&log, "x\n").unwrap();
        let found = inputs(&[log, dir.path().join("later.log"), dir.path().join("*.log")]);
        let statuses: Vec<Status> = found.iter().map(|f| f.status).collect();
        assert_eq!(
            statuses,
            [Status::Ok, Status::Warning, Status::Ok],
            "{found:?}"
        );
        assert!(found[1].message.contains("does not exist yet"));
    }

    #[test]
    fn a_spool_not_there_yet_is_looked_at_where_it_would_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let f = writable_dir("spool", &dir.path().join("a/b/spool"), 0);
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(f.message.contains("created at the first run"), "{f:?}");
        assert!(f.message.contains("free"), "{f:?}");
    }

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(64 << 20), "64.0 MiB");
        assert_eq!(human(13_200_000_000), "12.3 GiB");
    }
}
