//! `maillog check` as an operator meets it on the central host: which config it read (the
//! lookup order), what the service's user may not do (read the log without the `adm` group,
//! write the spool), the exit codes (0 fine, 1 a problem found, 2 a config that cannot be
//! used), and the same in JSON for a program.
//!
//! The permission tests run `maillog check` as the user `nobody` (`setpriv`, root only): root
//! reads everything, so a problem only shows as another user. Not root: they skip with a
//! message — a failure under `CI=true`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use maillog_testkit::tools::{as_nobody, root_or_skip};

fn maillog() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_maillog"));
    command.env_remove("MAILLOG_CONFIG");
    command
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory `nobody` may enter, holding the log as syslog-ng writes it (root:adm 0640).
fn central_host(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.join("mail.log");
    fs::write(&log, "").unwrap();
    let chgrp = Command::new("chgrp").arg("adm").arg(&log).status().unwrap();
    assert!(chgrp.success());
    fs::set_permissions(&log, fs::Permissions::from_mode(0o640)).unwrap();
    fs::create_dir(dir.join("spool")).unwrap(); // root's, 0755: not nobody's to write
    let config = format!(
        "inputs = [\"{0}/mail.log\"]\nspool = \"{0}/spool\"\narchive = \"file://{0}/archive\"\n",
        dir.display()
    );
    fs::write(dir.join("pipeline.toml"), config).unwrap();
    fs::set_permissions(dir.join("pipeline.toml"), fs::Permissions::from_mode(0o644)).unwrap();
}

fn check_as_nobody(dir: &Path, format: &str) -> Output {
    as_nobody(env!("CARGO_BIN_EXE_maillog"))
        .args(["check", "--format", format])
        .current_dir(dir)
        .env_remove("MAILLOG_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn a_user_outside_the_logs_group_is_told_the_fix_and_check_exits_1() {
    if !root_or_skip("a_user_outside_the_logs_group_is_told_the_fix_and_check_exits_1") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    central_host(dir.path());
    let out = check_as_nobody(dir.path(), "text");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let log = dir.path().join("mail.log");
    let spool = dir.path().join("spool");
    let config = dir.path().join("pipeline.toml");
    for expected in [
        format!("config: {} (in the working directory)", config.display()),
        format!("PROBLEM input {}: nobody cannot read", log.display()),
        "fix: ".to_owned() + &log.display().to_string() + " is group adm, mode 0640",
        "usermod -aG adm nobody".to_owned(),
        format!(
            "PROBLEM spool {}: nobody cannot write in it",
            spool.display()
        ),
        format!("fix: chown nobody {}", spool.display()),
        // The archive's directory would be created in the test's, which is root's.
        format!("PROBLEM archive {}", dir.path().join("archive").display()),
        "3 problem(s) found".to_owned(),
    ] {
        assert!(stdout.contains(&expected), "{expected:?} not in:\n{stdout}");
    }
    // The same as root: nothing wrong, and the free space said.
    let out = maillog()
        .args(["check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(" free"), "{stdout}");
    assert!(stdout.ends_with("config OK\n"), "{stdout}");
}

#[test]
fn check_in_json_names_the_config_and_every_finding() {
    if !root_or_skip("check_in_json_names_the_config_and_every_finding") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    central_host(dir.path());
    let out = check_as_nobody(dir.path(), "json");
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["config"]["origin"], "working-directory");
    assert_eq!(value["problems"], 3);
    assert_eq!(value["ok"], false);
    let findings = value["findings"].as_array().unwrap();
    let input = findings.iter().find(|f| f["check"] == "input").unwrap();
    assert_eq!(input["status"], "problem");
    assert!(
        input["fix"]
            .as_str()
            .unwrap()
            .contains("usermod -aG adm nobody"),
        "{input}"
    );
}

#[test]
fn the_config_is_looked_up_in_order_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (here, elsewhere) = (dir.path().join("here"), dir.path().join("elsewhere"));
    for d in [&here, &elsewhere] {
        fs::create_dir(d).unwrap();
        fs::write(d.join("pipeline.toml"), "archive = \"file://archive\"\n").unwrap();
    }
    let origin = |env: Option<&Path>, flag: Option<&Path>| {
        let mut command = maillog();
        command
            .args(["check", "--format", "json"])
            .current_dir(&here);
        if let Some(path) = env {
            command.env("MAILLOG_CONFIG", path);
        }
        if let Some(path) = flag {
            command.arg("--config").arg(path);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{:?}", text(&out));
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let archive = value["settings"]["archive"].as_str().unwrap().to_owned();
        (
            value["config"]["origin"].as_str().unwrap().to_owned(),
            archive,
        )
    };
    let other = elsewhere.join("pipeline.toml");
    let file_url = |d: &Path| format!("file://{}", d.join("archive").display());
    assert_eq!(
        origin(None, None),
        ("working-directory".into(), file_url(&here))
    );
    assert_eq!(
        origin(Some(&other), None),
        ("environment".into(), file_url(&elsewhere))
    );
    assert_eq!(
        origin(Some(&other), Some(&here.join("pipeline.toml"))),
        ("flag".into(), file_url(&here))
    );
    // A file named but missing is an error (exit 2), never a silent fall-back.
    let out = maillog()
        .arg("check")
        .env("MAILLOG_CONFIG", dir.path().join("typo.toml"))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("typo.toml"), "{stderr}");
}

#[test]
fn top_finds_the_archive_of_the_config_it_looks_up() {
    // `maillog top` with no flag and no input: the archive of the config MAILLOG_CONFIG names
    // (as /etc/maillog/pipeline.toml on the central host), not ./archive.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("somewhere/archive/mail_logs/2025-11-20");
    fs::create_dir_all(&archive).unwrap();
    let record = r#"{"kind":"to","sendmailid":"p6D0r0u1006229","pid":"1","month":"Nov","day":"20","time":"10:00:00","mailserver":"mx1","dest":"a@example.net","stat":"Sent (ok)","ts":"2025-11-20T10:00:00+00:00"}"#;
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    std::io::Write::write_all(&mut bz, format!("{record}\n").as_bytes()).unwrap();
    fs::write(
        archive.join("to-2025-11-20-10-00.json.bz2"),
        bz.finish().unwrap(),
    )
    .unwrap();
    let config = dir.path().join("etc.toml");
    fs::write(
        &config,
        format!(
            "archive = \"file://{}/somewhere/archive\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let out = maillog()
        .args(["top", "--by", "dest", "--format", "json"])
        .env("MAILLOG_CONFIG", &config)
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows[0]["key"], "a@example.net", "{stdout}");
}
