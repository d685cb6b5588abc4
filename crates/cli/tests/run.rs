//! `maillog run --once` end to end on generated logs: the archive holds exactly the records the
//! parser makes of the input (as multisets), every record in the file of its window, and every
//! file reads whole with `MultiBzDecoder`, `bzip2 -dc` and Python's `bz2`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::files;
use maillog_loggen::{Config, HeaderStyle, write_log};

fn maillog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maillog"))
}

fn decompress(path: &Path) -> String {
    let mut text = String::new();
    bzip2::read::MultiBzDecoder::new(fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The archive's records per kind, as a multiset; checks each record's window on the way.
fn archive_records(archive: &Path) -> HashMap<(String, String), usize> {
    let mut records = HashMap::new();
    for file in files(archive) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with(".json.bz2"), "unexpected file {name}");
        let (kind, stamp) = name.split_once('-').unwrap();
        let stamp = &stamp[..16]; // YYYY-MM-DD-HH-MM
        for line in decompress(&file).lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let ts = record["ts"].as_str().unwrap();
            let at = chrono::DateTime::parse_from_rfc3339(ts)
                .unwrap()
                .with_timezone(&chrono::Utc);
            let start = maillog_batch::window_start(at.timestamp(), &maillog_parse::Zone::Utc);
            let window = chrono::DateTime::from_timestamp(start, 0)
                .unwrap()
                .format("%Y-%m-%d-%H-%M");
            assert_eq!(window.to_string(), stamp, "{line} is in {name}");
            *records
                .entry((kind.to_owned(), line.to_owned()))
                .or_default() += 1;
        }
    }
    records
}

/// What `maillog parse` makes of the log, per kind.
fn parsed_records(log: &Path) -> HashMap<(String, String), usize> {
    let mut records = HashMap::new();
    for kind in ["from", "to"] {
        let out = maillog()
            .args(["parse", "--kind", kind])
            .arg(log)
            .env_remove("MAILLOG_CONFIG") // `parse` reads its zone and programs from it
            .output()
            .unwrap();
        assert!(out.status.success());
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            *records
                .entry((kind.to_owned(), line.to_owned()))
                .or_default() += 1;
        }
    }
    records
}

fn run_once(dir: &Path, inputs: &[&Path]) -> String {
    let config = dir.join("pipeline.toml");
    fs::write(
        &config,
        "spool = \"spool\"\narchive = \"file://archive\"\n[bzip2]\nlevel = 1\n",
    )
    .unwrap();
    let mut cmd = maillog();
    cmd.arg("run").arg("--once").arg("--config").arg(&config);
    for input in inputs {
        cmd.arg("--input").arg(input);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn the_archive_holds_exactly_the_parsed_records_each_in_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let config = Config {
        lines: 30_000,
        rate: 50.0,
        ..Config::default()
    };
    write_log(&config, &mut fs::File::create(&log).unwrap()).unwrap();
    let summary = run_once(dir.path(), &[&log]);
    assert!(summary.contains("30000 lines"), "{summary}");
    let archived = archive_records(&dir.path().join("archive"));
    assert_eq!(archived, parsed_records(&log));
    let names: Vec<_> = files(&dir.path().join("archive"));
    assert!(
        names[0].to_string_lossy().contains("mail_logs/2025-12-31/"),
        "{names:?}"
    );
    // No window is left in the spool (only the ledger of archived names), and a second run
    // adds nothing.
    let spool = dir.path().join("spool/windows");
    for dir in ["open", "sealed"] {
        assert!(files(&spool.join(dir)).is_empty(), "{dir}");
    }
    run_once(dir.path(), &[&log]);
    assert_eq!(files(&dir.path().join("archive")), names);
}

#[test]
fn multistream_files_read_whole_with_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    // ~60,000 lines in one 5-minute window: several 900 kB blocks, so several streams.
    let config = Config {
        lines: 60_000,
        rate: 150.0,
        style: HeaderStyle::Iso,
        ..Config::default()
    };
    write_log(&config, &mut fs::File::create(&log).unwrap()).unwrap();
    run_once(dir.path(), &[&log]);
    let biggest = files(&dir.path().join("archive"))
        .into_iter()
        .max_by_key(|f| fs::metadata(f).unwrap().len())
        .unwrap();
    let bytes = fs::read(&biggest).unwrap();
    let streams = bytes
        .windows(10)
        .filter(|w| w.starts_with(b"BZh") && w[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59])
        .count();
    assert!(streams >= 2, "{} has {streams} streams", biggest.display());
    let ours = decompress(&biggest);
    let cli = Command::new("bzip2")
        .arg("-dc")
        .arg(&biggest)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(cli.stdout).unwrap(), ours, "bzip2 -dc");
    let py = Command::new("python3")
        .args([
            "-c",
            "import bz2,sys; sys.stdout.write(bz2.open(sys.argv[1],'rt').read())",
        ])
        .arg(&biggest)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(String::from_utf8(py.stdout).unwrap(), ours, "python bz2");
}

/// An archive folder that cannot be written (here: its path is a file; as root, permissions
/// do not stop a write) is an operator's mistake: `--once` says so and ends with everything
/// waiting in the spool, and the run after the fix archives it all, once.
#[test]
fn a_local_archive_that_cannot_be_written_ends_the_run_and_a_fix_archives_everything() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    common::generated_log(&log, 300);
    let config = "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n";
    fs::write(dir.path().join("pipeline.toml"), config).unwrap();
    fs::write(dir.path().join("archive"), "not a folder\n").unwrap();
    // Before the fix, the run retried for ever: bounded here.
    let mut run = maillog()
        .args(["run", "--once"])
        .current_dir(dir.path())
        .env_remove("MAILLOG_CONFIG")
        .stderr(fs::File::create(dir.path().join("run.err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while run.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            run.kill().unwrap();
            panic!("run --once still retrying after 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = run.wait().unwrap();
    let stderr = fs::read_to_string(dir.path().join("run.err")).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot put mail_logs/") && stderr.contains("Not a directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sealed files could not be archived and wait in the spool"),
        "{stderr}"
    );
    fs::remove_file(dir.path().join("archive")).unwrap();
    common::maillog_ok(dir.path(), &["run", "--once"]);
    let archived = common::archived_records(&dir.path().join("archive"));
    assert_eq!(archived, common::parsed_records(&log));
}
