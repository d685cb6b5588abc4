//! The columnar mirror: `maillog compact` writes the Parquet mirror of an archive's settled
//! hours, and only once; late archive files get files of their own; `maillog verify` finds it
//! equal to the archive (records as multisets); a compact or a service killed at any moment
//! leaves no partial or duplicate file; the service and `run --once` write it as hours settle
//! (`[mirror]`), on disk and on S3 (a real s3s-fs); pyarrow and DuckDB (from PyPI, in the venv
//! of scripts/install-spark) read it and find the archive's records and `maillog top`'s answer.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::maillog;

/// `maillog ARGS`, which must succeed: its stderr.
fn ok(dir: &Path, args: &[&str]) -> String {
    common::maillog_ok(dir, args).1
}

/// A generated log from 2025-12-31 23:15 across midnight, archived into `dir/archive`.
fn archived(dir: &Path, lines: u64) {
    common::generated_log_at(&dir.join("mail.log"), lines, 2.0);
    fs::write(
        dir.join("pipeline.toml"),
        "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n[bzip2]\nlevel = 1\n",
    )
    .unwrap();
    ok(dir, &["run", "--once=all"]);
}

/// Every file under the mirror, with its bytes.
fn mirror_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let root = dir.join("archive/mirror");
    if !root.exists() {
        return BTreeMap::new();
    }
    common::files(&root)
        .into_iter()
        .map(|f| {
            let bytes = fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect()
}

#[test]
fn compact_mirrors_each_record_once_and_verify_finds_it_equal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d, 6_000);
    let said = ok(d, &["compact"]);
    assert!(said.contains(" mirror files written"), "{said}");
    let first = mirror_files(d);
    let names: Vec<String> = first
        .keys()
        .map(|p| {
            p.strip_prefix(d.join("archive"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    // Two kinds, two hours (23h on the 31st, 00h on the 1st), Hive-style date folders.
    assert_eq!(
        names,
        [
            "mirror/from/dt=2025-12-31/from-2025-12-31-23.parquet",
            "mirror/from/dt=2026-01-01/from-2026-01-01-00.parquet",
            "mirror/to/dt=2025-12-31/to-2025-12-31-23.parquet",
            "mirror/to/dt=2026-01-01/to-2026-01-01-00.parquet",
        ]
    );
    let said = ok(d, &["verify"]);
    assert!(
        said.contains(" 0 differences; 0 archive files not mirrored yet"),
        "{said}"
    );
    // Idempotent: a second compact writes nothing and changes no byte.
    let said = ok(d, &["compact"]);
    assert!(said.contains("0 mirror files written"), "{said}");
    assert_eq!(mirror_files(d), first);

    // Late records for 23h (a late part): a mirror file of their own, the others untouched.
    let late = "2025-12-31T23:20:00+00:00 mail01 sm-mta[7]: zz000001: from=<late@example.org>, size=5, class=0, nrcpts=1, msgid=<l@x>, proto=ESMTP, daemon=MTA, relay=x [10.0.0.9]\n";
    let mut log = fs::read_to_string(d.join("mail.log")).unwrap();
    log.push_str(late);
    fs::write(d.join("mail.log"), log).unwrap();
    ok(d, &["run", "--once=all"]);
    ok(d, &["compact"]);
    let second = mirror_files(d);
    for (file, bytes) in &first {
        assert_eq!(&second[file], bytes, "{}", file.display());
    }
    let added: Vec<_> = second.keys().filter(|f| !first.contains_key(*f)).collect();
    assert_eq!(added.len(), 1, "{added:?}");
    // Named after it, tagged with its key's CRC-32 (hosts sharing a bucket).
    let name = added[0].file_name().unwrap().to_string_lossy();
    assert!(
        added[0].starts_with(d.join("archive/mirror/from/dt=2025-12-31"))
            && name.starts_with("from-2025-12-31-23-20.part-001.")
            && name.ends_with(".parquet"),
        "{name}"
    );
    let said = ok(d, &["verify"]);
    assert!(
        said.contains(" 0 differences; 0 archive files not mirrored yet"),
        "{said}"
    );

    // An archive file gone from under the mirror is named.
    let gone = d.join("archive/mail_logs/2025-12-31/from-2025-12-31-23-20.part-001.json.bz2");
    fs::remove_file(&gone).unwrap();
    let out = maillog(d, &["verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("from-2025-12-31-23-20.part-001.json.bz2, which the archive does not have"),
        "{stderr}"
    );
}

/// The config of a service that mirrors as it reads: every hour settles at once (the records
/// are a year old), a pass every 0.2 s.
const MIRRORING: &str = "[mirror]\nenabled = true\nsettle_minutes = 0\nevery_seconds = 0.2\n";

#[test]
fn the_service_writes_the_mirror_as_it_reads_and_a_kill_at_any_moment_leaves_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 20,000 lines at 2 a second from 23:15: 2.8 hours, so hours settle as it is read.
    common::generated_log_at(&d.join("mail.log"), 20_000, 2.0);
    fs::write(
        d.join("pipeline.toml"),
        format!("inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n[bzip2]\nlevel = 1\n[tail]\npoll_interval_ms = 50\n[window]\ncommit_seconds = 0.2\n{MIRRORING}"),
    )
    .unwrap();
    let service = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_maillog"));
        command
            .arg("run")
            .current_dir(d)
            .env_remove("MAILLOG_CONFIG")
            .stdout(std::process::Stdio::null());
        common::watched(command, "mirror: settled hours written")
    };
    // Killed (SIGKILL: no stop) early, while it reads, and then each time just after it
    // said it wrote mirror files — while its next pass may be writing.
    let mut wrote = 0;
    for after_ms in [300, 900, 0, 40, 120] {
        let (mut child, written, stderr) = service();
        // From the third start on: killed just after a write (if one comes: the hours left
        // may all have been written at once).
        if (after_ms == 0 || wrote > 0) && written.recv_timeout(Duration::from_secs(60)).is_ok() {
            wrote += 1;
        }
        std::thread::sleep(Duration::from_millis(after_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let said = stderr.join().unwrap();
        assert!(!said.contains("panicked"), "{said}");
        let verified = ok(d, &["verify"]);
        assert!(
            verified.contains(" 0 differences;"),
            "killed after {after_ms} ms: {verified}"
        );
    }
    assert!(wrote > 0, "the service wrote no mirror file");
    let before = mirror_files(d);
    assert!(!before.is_empty());
    // The rest: everything archived, every hour settled (by the wall clock at the end of
    // --once), each record once; the files written before are untouched.
    let last = ok(d, &["run", "--once"]);
    let verified = ok(d, &["verify"]);
    assert!(
        verified.contains(" 0 differences; 0 archive files not mirrored yet"),
        "{last}{verified}"
    );
    let after = mirror_files(d);
    for (file, bytes) in &before {
        assert_eq!(&after[file], bytes, "{}", file.display());
    }
    assert!(
        after
            .keys()
            .all(|f| !f.file_name().unwrap().to_string_lossy().starts_with('.')),
        "temporaries left: {:?}",
        after.keys()
    );
    let compacted = ok(d, &["compact", "--settle", "0s"]);
    assert!(compacted.contains("0 mirror files written"), "{compacted}");
}

#[test]
fn a_service_with_the_mirror_on_and_no_record_yet_runs_and_stops() {
    // No record read: the watermark is unset; a pass goes by the wall clock (it panicked on
    // an overflow, found by the model test after a checkpoint was removed).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("mail.log"), "").unwrap();
    fs::write(
        d.join("pipeline.toml"),
        format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n{MIRRORING}"
        ),
    )
    .unwrap();
    let mut service = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .arg("run")
        .current_dir(d)
        .env_remove("MAILLOG_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    common::stop(&mut service);
    let out = service.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("panicked"), "{said}");
    assert_eq!(out.status.code(), Some(0), "{said}");
    let once = maillog(d, &["run", "--once"]);
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
}

#[test]
fn run_once_writes_the_mirror_into_s3_and_compact_and_verify_read_it_there() {
    if !common::have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = common::S3Server::start(&d.join("s3"), "archive");
    common::generated_log(&d.join("mail.log"), 60_000);
    fs::write(
        d.join("pipeline.toml"),
        format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"s3://archive/maillog\"\n[bzip2]\nlevel = 1\n{MIRRORING}{}",
            server.config_section()
        ),
    )
    .unwrap();
    let s3 = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
            .args(args)
            .current_dir(d)
            .env_remove("MAILLOG_CONFIG")
            .env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", common::SECRET_KEY)
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        stderr
    };
    let ran = s3(&["run", "--once"]);
    assert!(ran.contains(" mirror files written"), "{ran}");
    let mirror = d.join("s3/archive/maillog/mirror");
    let objects: BTreeMap<PathBuf, Vec<u8>> = common::files(&mirror)
        .into_iter()
        .map(|f| {
            let bytes = fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect();
    // 60,000 lines at 20 a second from 23:15: 23h and 00h of both kinds.
    assert_eq!(objects.len(), 4, "{:?}", objects.keys());
    assert!(
        objects
            .keys()
            .any(|k| k.ends_with("to/dt=2026-01-01/to-2026-01-01-00.parquet"))
    );
    let verified = s3(&["verify"]);
    assert!(
        verified.contains("4 mirror files")
            && verified.contains(" 0 differences; 0 archive files not mirrored yet"),
        "{verified}"
    );
    // Nothing to do again: compact finds every hour mirrored, and no object changed.
    let compacted = s3(&["compact", "--settle", "0s"]);
    assert!(compacted.contains("0 mirror files written"), "{compacted}");
    for (file, bytes) in &objects {
        assert_eq!(&fs::read(file).unwrap(), bytes, "{}", file.display());
    }
}

#[test]
fn a_compact_killed_at_any_moment_leaves_no_partial_or_duplicate_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d, 40_000); // about 5.5 hours: 16 mirror files, about 0.2 s each (debug)
    for after_ms in [5, 30, 80, 150, 300, 700, 1500] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_maillog"))
            .arg("compact")
            .current_dir(d)
            .env_remove("MAILLOG_CONFIG")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever is there under a mirror name is a whole file of the right records.
        let said = ok(d, &["verify"]);
        assert!(
            said.contains(" 0 differences;"),
            "killed after {after_ms} ms: {said}"
        );
    }
    ok(d, &["compact"]);
    let said = ok(d, &["verify"]);
    assert!(
        said.contains(" 0 differences; 0 archive files not mirrored yet"),
        "{said}"
    );
    let names: Vec<String> = mirror_files(d)
        .keys()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "temporaries left: {names:?}"
    );
}

/// Reads the mirror with pyarrow (every record, as the archive has it) and DuckDB (counts and
/// the top 10 recipients); prints one JSON document.
const READERS: &str = r#"
import bz2, collections, glob, json, os, sys
import pyarrow.dataset as ds, duckdb
root = sys.argv[1]
def canonical(kind, record):
    return kind + " " + json.dumps(record, sort_keys=True, ensure_ascii=False)
archive = collections.Counter()
for path in glob.glob(os.path.join(root, "mail_logs", "*", "*.json.bz2")):
    kind = os.path.basename(path).split("-")[0]
    with bz2.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                archive[canonical(kind, json.loads(line))] += 1
mirror = collections.Counter()
columns = None
for kind in ("from", "to"):
    table = ds.dataset(os.path.join(root, "mirror", kind), format="parquet", partitioning="hive").to_table()
    columns = table.column_names
    for row in table.to_pylist():
        record = {k: v for k, v in row.items() if isinstance(v, str) and k not in ("kind", "dt")}
        for key, value in row["other"] or []:
            record[key] = value
        mirror[canonical(row["kind"], record)] += 1
to = os.path.join(root, "mirror", "to", "*", "*.parquet")
con = duckdb.connect()
count = con.execute(f"select count(*) from read_parquet('{to}', hive_partitioning = true)").fetchone()[0]
top = con.execute(f"select dest, count(*) c from read_parquet('{to}') where dest is not null group by dest order by c desc, dest limit 10").fetchall()
print(json.dumps({"equal": archive == mirror, "records": sum(mirror.values()),
                  "archive": sum(archive.values()), "columns": columns, "duckdb_to": count,
                  "top": [{"key": k, "count": c} for k, c in top]}))
"#;

#[test]
fn pyarrow_and_duckdb_read_the_archive_s_records_in_the_mirror() {
    let test = "pyarrow_and_duckdb_read_the_archive_s_records_in_the_mirror";
    let Some(python) = maillog_testkit::tools::venv_python_or_skip(test, "pyarrow, duckdb") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    archived(d, 6_000);
    ok(d, &["compact"]);
    let out = Command::new(&python)
        .args(["-c", READERS])
        .arg(d.join("archive"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["equal"], true, "{read}");
    assert!(read["records"].as_u64().unwrap() > 3_000, "{read}");
    for column in [
        "ts_utc",
        "size_bytes",
        "delay_seconds",
        "other",
        "dest",
        "src",
    ] {
        assert!(
            read["columns"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == column),
            "{column}"
        );
    }
    let out = maillog(d, &["top", "--by", "dest", "--format", "json"]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<(String, u64)> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let duck: Vec<(String, u64)> = read["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(duck, keys);
}

#[test]
fn run_once_mirrors_the_streams_it_compressed_from_its_cache_into_the_bytes_decoding_gives() {
    // The same log twice: with the stream cache (the default) and without it.
    let with = tempfile::tempdir().unwrap();
    let without = tempfile::tempdir().unwrap();
    let mut said = Vec::new();
    for (d, cache) in [
        (with.path(), ""),
        (without.path(), "stream_cache_mib = 0\n"),
    ] {
        // 40,000 lines at 20 a second from 23:15: the hour 23h.
        common::generated_log(&d.join("mail.log"), 40_000);
        fs::write(
            d.join("pipeline.toml"),
            format!("inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n[bzip2]\nlevel = 1\n{MIRRORING}{cache}"),
        )
        .unwrap();
        let ran = ok(d, &["run", "--once"]);
        let passes: Vec<String> = ran
            .lines()
            .filter(|l| l.contains("settled hours written as Parquet"))
            .map(str::to_owned)
            .collect();
        assert!(!passes.is_empty(), "{ran}");
        said.push(passes);
        let verified = ok(d, &["verify"]);
        assert!(
            verified.contains(" 0 differences; 0 archive files not mirrored yet"),
            "{verified}"
        );
    }
    // Every archive file's records came from the cache, which is empty once they are mirrored;
    // without it, each was decoded.
    assert!(said[0].iter().all(|l| l.contains(" decoded=0")), "{said:?}");
    assert!(
        said[1].iter().all(|l| !l.contains(" decoded=0")),
        "{said:?}"
    );
    let kept = common::files(&with.path().join("spool/mirror-streams"));
    assert!(kept.is_empty(), "{kept:?}");
    // The same mirror, byte for byte.
    let relative = |d: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        mirror_files(d)
            .into_iter()
            .map(|(f, bytes)| (f.strip_prefix(d).unwrap().to_owned(), bytes))
            .collect()
    };
    let mirror = relative(with.path());
    assert_eq!(mirror.len(), 2, "{:?}", mirror.keys());
    assert!(mirror == relative(without.path()));
}

#[test]
fn an_archive_named_under_another_time_zone_is_mirrored_whole() {
    // Two windows of 02:30 on the night Berlin's clocks go back (the second named with its
    // offset, `_+0100`), archived under Europe/Berlin; then the config says +01:00, where no
    // hour repeats. Every archive file is still a window, and mirrored.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = |stamp: &str, id: &str| {
        format!(
            "{stamp} mail01 sm-mta[7]: {id}: to=<{id}@example.org>, delay=00:00:01, \
             xdelay=00:00:01, mailer=esmtp, pri=1, relay=x [10.0.0.9], dsn=2.0.0, stat=Sent (ok)\n"
        )
    };
    let log = [
        line("2025-10-26T02:31:00+02:00", "aa000001"),
        line("2025-10-26T02:31:00+01:00", "aa000002"),
        line("2025-10-26T05:00:00+01:00", "aa000003"),
    ]
    .concat();
    fs::write(d.join("mail.log"), log).unwrap();
    let config = |zone: &str| {
        let text = format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n\
             time_zone = \"{zone}\"\n"
        );
        fs::write(d.join("pipeline.toml"), text).unwrap();
    };
    config("Europe/Berlin");
    ok(d, &["run", "--once=all"]);
    let names: Vec<String> = common::files(&d.join("archive/mail_logs"))
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"to-2025-10-26-02-30_+0100.json.bz2".to_owned()),
        "{names:?}"
    );
    config("+01:00");
    let said = ok(d, &["compact", "--settle", "0s"]);
    assert!(said.contains("(3 records of 3 archive files)"), "{said}");
    let said = ok(d, &["verify"]);
    assert!(
        said.contains(" 0 differences; 0 archive files not mirrored yet"),
        "{said}"
    );
}
