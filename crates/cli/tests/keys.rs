//! The keys of `maillog top` end to end, on `sample-logs/mail.log` read as raw syslog: a typo in
//! `--by` or `--where` is a usage error (exit 2) with the closest key and the list of keys; a
//! field counts the kind of record that carries it by default (`--by mailer` counts `to`
//! records); a key the counted kind never carries is a usage error naming both kinds; a known
//! field no record scanned has is said on stderr after the (empty) answer, exit 0.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn sample_log() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-logs/mail.log")
}

/// `maillog ARGS… sample-logs/mail.log`, in an empty directory (no config found there).
fn maillog(args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out: Output = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(args)
        .args(["--year", "2025", "--quiet"])
        .arg(sample_log())
        .current_dir(dir.path())
        .env_remove("MAILLOG_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The keys listed by an unknown-key error, as the user sees them.
const KEY_LIST: &str = "the keys are src, src_domain, mailserver, relay, dest, dest_domain, \
                        status, sendmailid, pid,";

#[test]
fn a_typo_in_by_or_where_is_a_usage_error_with_the_closest_key() {
    let (code, stdout, stderr) = maillog(&["top", "--by", "dset"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("did you mean `dest`?"), "{stderr}");
    assert!(stderr.contains(KEY_LIST), "{stderr}");
    assert!(stderr.contains("mailer, pri, dsn"), "{stderr}");

    let (code, stdout, stderr) = maillog(&["top", "--by", "dest", "--where", "stauts=Sent"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("'--where <FIELD=VALUE>'"), "{stderr}");
    assert!(stderr.contains("did you mean `status`?"), "{stderr}");
    assert!(stderr.contains(KEY_LIST), "{stderr}");

    // Nothing close: the list only.
    let (code, _, stderr) = maillog(&["top", "--by", "zzz"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("did you mean"), "{stderr}");
    assert!(stderr.contains(KEY_LIST), "{stderr}");
}

/// The `to` records of the sample by their `mailer`, as `maillog parse` writes them.
fn mailers_of_to_records() -> BTreeMap<String, u64> {
    let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(["parse", "--year", "2025"])
        .arg(sample_log())
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut counts = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let record: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        assert_eq!(record.contains_key("mailer"), record.contains_key("dest"));
        if let Some(mailer) = record.get("mailer").and_then(Value::as_str) {
            *counts.entry(mailer.to_owned()).or_default() += 1;
        }
    }
    counts
}

#[test]
fn a_field_counts_the_kind_that_carries_it() {
    let (code, stdout, stderr) = maillog(&["top", "--by", "mailer", "--format", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let answer: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let got: BTreeMap<String, u64> = answer
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = mailers_of_to_records();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    // `to` records: no bytes unless asked for (a `from` count always has them).
    assert!(answer.iter().all(|e| e.get("bytes").is_none()), "{stdout}");

    // The same for the other delivery fields, and `from` fields count `from` records.
    for (key, kind_has_bytes) in [
        ("dsn", false),
        ("pri", false),
        ("proto", true),
        ("size", true),
    ] {
        let (code, stdout, stderr) = maillog(&["top", "--by", key, "--format", "json"]);
        assert_eq!(code, Some(0), "{key}: {stderr}");
        let answer: Vec<Value> = serde_json::from_str(&stdout).unwrap();
        assert!(!answer.is_empty(), "--by {key} is empty");
        assert_eq!(answer[0].get("bytes").is_some(), kind_has_bytes, "{key}");
    }
}

#[test]
fn a_key_the_counted_kind_never_carries_is_a_usage_error_naming_the_kinds() {
    let (code, stdout, stderr) = maillog(&["top", "--by", "src", "--where", "dsn=5.1.1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("--where dsn: `dsn` is on to records, and this query counts from records"),
        "{stderr}"
    );
    let (code, _, stderr) = maillog(&["top", "--by", "mailer", "--kind", "from"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--by mailer: `mailer` is on to records, and this query counts from"),
        "{stderr}"
    );
    // Fields both kinds carry go with either.
    let (code, _, stderr) = maillog(&[
        "top",
        "--by",
        "mailserver",
        "--kind",
        "to",
        "--where",
        "mailer=esmtp",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_known_field_no_record_has_is_said_after_the_answer() {
    // The sample's `to` lines have no `ntries=`; its `from` lines no `auth=`.
    let (code, stdout, stderr) = maillog(&["top", "--by", "ntries"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "count  ntries\n");
    assert_eq!(
        stderr,
        "maillog: no record scanned has the field \"ntries\" (it is on to records)\n"
    );
    let (code, stdout, stderr) = maillog(&["top", "--by", "src", "--where", "auth=PLAIN"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "count  src\n");
    assert_eq!(
        stderr,
        "maillog: no record scanned has the field \"auth\" (it is on from records)\n"
    );
    // A filter that matches nothing on a field the data has: no note.
    let (code, stdout, stderr) = maillog(&["top", "--by", "src", "--where", "proto=nosuch"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "count  src\n");
    assert!(stderr.is_empty(), "{stderr}");
}
