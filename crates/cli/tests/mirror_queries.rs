//! Queries on the Parquet mirror: `maillog top` and `maillog report` give the same answers
//! with `--source bzip2`, `parquet` and `auto`, over every key, kinds, metrics, filters and
//! ranges; where the mirror does not hold an archive file yet (a late part not compacted),
//! `auto` reads it from bzip2 and `parquet` says it left it out; on S3 (a real s3s-fs) too.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use common::maillog;

/// `maillog ARGS`, which must succeed: its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    common::maillog_ok(dir, args).0
}

/// 6,000 lines at 2 a second from 2025-12-31 23:15 (two dates, two hours), archived with
/// `archive` as the config's archive.
fn archived(dir: &Path, archive: &str, extra: &str) {
    common::generated_log_at(&dir.join("mail.log"), 6_000, 2.0);
    fs::write(
        dir.join("pipeline.toml"),
        format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"{archive}\"\n[bzip2]\nlevel = 1\n{extra}"
        ),
    )
    .unwrap();
    ok(dir, &["run", "--once=all"]);
}

/// The queries compared, each with `--format json`.
const QUERIES: &[&str] = &[
    "top --by dest",
    "top --by src -n 5",
    "top --by src_domain",
    "top --by dest_domain --metric bytes",
    "top --by mailserver --kind to",
    "top --by mailserver --kind from --metric bytes",
    "top --by relay",
    "top --by status",
    "top --by mailer",
    "top --by dest --where status=Deferred",
    "top --by dest --where mailserver=mail03",
    "top --by src --day 2025-12-31",
    "top --by dest --since 2025-12-31T23:40 --until 2026-01-01T00:10",
    "report",
    "report --day 2026-01-01",
];

/// Each query's answer from `source` over `input`.
fn answers(dir: &Path, input: &str, source: &str) -> Vec<String> {
    QUERIES
        .iter()
        .map(|query| {
            let mut args: Vec<&str> = query.split(' ').collect();
            args.extend(["--format", "json", "--quiet", "--source", source, input]);
            ok(dir, &args)
        })
        .collect()
}

fn assert_same(a: &[String], b: &[String], what: &str) {
    for ((query, a), b) in QUERIES.iter().zip(a).zip(b) {
        assert_eq!(a, b, "{query}: {what}");
    }
}

#[test]
fn top_and_report_answer_the_same_from_the_mirror_and_from_bzip2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d, "file://archive", "");
    ok(d, &["compact"]);
    let bzip2 = answers(d, "archive", "bzip2");
    // Not empty answers: the comparison compares something.
    assert!(bzip2[0].contains("\"count\""), "{}", bzip2[0]);
    assert_same(&bzip2, &answers(d, "archive", "parquet"), "parquet");
    assert_same(&bzip2, &answers(d, "archive", "auto"), "auto");

    // A late record after compact: in an archive file the mirror does not hold.
    let late = "2025-12-31T23:20:00+00:00 mail01 sm-mta[7]: zz000001: to=<late@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=x [10.0.0.9], dsn=2.0.0, stat=Sent (ok)\n";
    let mut log = fs::read_to_string(d.join("mail.log")).unwrap();
    log.push_str(late);
    fs::write(d.join("mail.log"), log).unwrap();
    ok(d, &["run", "--once=all"]);
    let bzip2 = answers(d, "archive", "bzip2");
    assert_same(
        &bzip2,
        &answers(d, "archive", "auto"),
        "auto, with a late part",
    );
    let every = [
        "top", "--by", "dest", "-n", "100000", "--format", "json", "--source",
    ];
    let auto = ok(d, &[&every[..], &["auto", "archive"]].concat());
    assert!(auto.contains("late@example.org"));
    let parquet = maillog(d, &[&every[..], &["parquet", "archive"]].concat());
    let said = String::from_utf8_lossy(&parquet.stderr);
    assert_eq!(parquet.status.code(), Some(1), "{said}");
    assert!(
        said.contains("1 archive files in the range are not in the mirror yet"),
        "{said}"
    );
    assert!(!String::from_utf8_lossy(&parquet.stdout).contains("late@example.org"));

    // No mirror at all: auto reads bzip2, parquet says so.
    let plain = tempfile::tempdir().unwrap();
    archived(plain.path(), "file://archive", "");
    let out = maillog(
        plain.path(),
        &["top", "--by", "dest", "--source", "parquet", "archive"],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no mirror here"), "{said}");
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn queries_read_the_mirror_from_s3() {
    if !common::have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = common::S3Server::start(&d.join("s3"), "archive");
    let mirror = "[mirror]\nenabled = true\nsettle_minutes = 0\n";
    archived(
        d,
        "s3://archive/logs",
        &format!("{mirror}{}", server.config_section()),
    );
    assert!(d.join("s3/archive/logs/mirror/to").is_dir());
    let input = "s3://archive/logs";
    let bzip2 = answers(d, input, "bzip2");
    assert!(bzip2[0].contains("\"count\""), "{}", bzip2[0]);
    assert_same(&bzip2, &answers(d, input, "parquet"), "parquet on S3");
    assert_same(&bzip2, &answers(d, input, "auto"), "auto on S3");
}

#[test]
fn a_query_reads_the_mirror_files_of_the_kinds_it_counts_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d, "file://archive", "");
    ok(d, &["compact"]);
    // A `from` mirror file that is not one: only a query that counts `from` records opens it.
    let broken = d.join("archive/mirror/from/dt=2025-12-31/from-broken.parquet");
    fs::write(&broken, "not parquet").unwrap();
    let query = |by: &str| {
        let args = ["top", "--by", by, "--format", "json", "--source", "parquet"];
        maillog(d, &[&args[..], &["archive"]].concat())
    };
    let dest = query("dest");
    let said = String::from_utf8_lossy(&dest.stderr);
    assert_eq!(dest.status.code(), Some(0), "{said}");
    assert!(!said.contains("from-broken"), "{said}");
    let src = query("src");
    let said = String::from_utf8_lossy(&src.stderr);
    assert!(
        said.contains("from-broken.parquet") && said.contains("not read as a mirror file"),
        "{said}"
    );
}
