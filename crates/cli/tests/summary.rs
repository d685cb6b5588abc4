//! `maillog run --once --format json`: the end-of-run summary as one JSON object on stdout, for
//! a cron job or a script that wants the numbers (what was read, sealed, archived, lost)
//! without scraping text; the text summary stays on stderr otherwise.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use maillog_testkit::tools::{as_nobody, root_or_skip};

/// `command` (maillog, run as whoever) given `run --once --format json` on `dir/mail.log`,
/// with a spool and a `file://` archive in `dir`.
fn once_in_json(mut command: Command, dir: &Path) -> Output {
    command
        .args(["run", "--once", "--format", "json", "--input"])
        .arg(dir.join("mail.log"))
        .arg("--spool")
        .arg(dir.join("spool"))
        .arg("--archive")
        .arg(format!("file://{}", dir.join("archive").display()))
        .env_remove("MAILLOG_CONFIG")
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn a_once_run_summarises_in_json_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two messages of a long-past window: one `from` and two `to` records, sealed at once.
    let lines = "\
2025-11-20T10:00:00+00:00 mx1 sendmail[1]: p6D0r0u1006229: from=<a@example.org>, size=100, class=0, nrcpts=2, msgid=<1@example.org>, proto=ESMTP, daemon=MTA, relay=host.example.org [192.0.2.1]
2025-11-20T10:00:01+00:00 mx1 sendmail[1]: p6D0r0u1006229: to=<b@example.net>,<c@example.net>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.example.net. [192.0.2.9], dsn=2.0.0, stat=Sent (ok)
not a sendmail line
";
    std::fs::write(d.join("mail.log"), lines).unwrap();
    let out = once_in_json(Command::new(env!("CARGO_BIN_EXE_maillog")), d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("maillog run: "),
        "the text summary too: {stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["parse"]["lines"], 3, "{summary}");
    assert_eq!(summary["parse"]["from_records"], 1, "{summary}");
    assert_eq!(summary["parse"]["to_records"], 2, "{summary}");
    assert_eq!(summary["batch"]["windows_sealed"], 2, "{summary}");
    let files = maillog_testkit::records::files(&d.join("archive"));
    assert_eq!(summary["archived"], files.len(), "{summary}");
    assert_eq!(files.len(), 2);
    assert_eq!(summary["tail"]["files_lost"], 0, "{summary}");
    assert_eq!(summary["tail"]["bytes_lost"], 0, "{summary}");
}

#[test]
fn a_once_run_that_cannot_read_an_input_exits_1() {
    // As `nobody`, a log only root may read (root reads everything: root only, like CI).
    if !root_or_skip("a_once_run_that_cannot_read_an_input_exits_1") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(d.join("mail.log"), "x\n").unwrap();
    std::fs::set_permissions(d.join("mail.log"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = once_in_json(as_nobody(env!("CARGO_BIN_EXE_maillog")), d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("an input could not be read"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["tail"]["read_errors"], 1, "{summary}");
}
