//! The Spark job `contrib/spark/maillog_top.py` answers exactly what `maillog top` and `maillog
//! report` answer (crates/aggregate/QUERIES.md is the definition both implement), on one archive
//! written by `maillog run --once` from a generated log: every key, both metrics, a filter, a
//! time range, the report, over two date folders and a multistream bzip2 file. It answers the
//! same from the archive's Parquet mirror (`--source parquet`, after `maillog compact`), with
//! the JSON files moved away.
//!
//! Spark runs once per test, in local mode, with every query in one `batch`. It comes from the venv that
//! `scripts/install-spark` makes (`${MAILLOG_TOOLS:-$HOME/.cache/maillog}/spark-venv`; the
//! environment variable `MAILLOG_SPARK_PYTHON` names another python). Without it (or without
//! `java`) the test says SKIPPED and passes, except under CI (`CI` set), where it fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::files;
use maillog_loggen::{Config, write_log};
use serde_json::Value;

/// The venv's python, as scripts/install-spark places it, if pyspark imports there and Java
/// runs.
fn spark_python() -> Result<PathBuf, String> {
    let python = maillog_testkit::tools::venv_python("pyspark")?;
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|out| out.status.success()) {
        return Err("no java".to_owned());
    }
    Ok(python)
}

/// `maillog run --once` of `log` into `dir/archive`.
fn run_once(dir: &Path, log: &Path) {
    let config = dir.join("pipeline.toml");
    fs::write(
        &config,
        "spool = \"spool\"\narchive = \"file://archive\"\n[bzip2]\nlevel = 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Rewrites `file` as two bzip2 streams (its first and second half of lines), same content;
/// gives its number of lines.
fn make_multistream(file: &Path) -> usize {
    let mut text = String::new();
    bzip2::read::MultiBzDecoder::new(fs::File::open(file).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert!(
        lines.len() >= 2,
        "{} has {} lines",
        file.display(),
        lines.len()
    );
    let (first, second) = lines.split_at(lines.len() / 2);
    let mut bytes = Vec::new();
    for half in [first, second] {
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        encoder.write_all(half.concat().as_bytes()).unwrap();
        bytes.extend(encoder.finish().unwrap());
    }
    fs::write(file, bytes).unwrap();
    lines.len()
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

/// The queries, as maillog's arguments (paths left out); `berlin`: a config file whose
/// `time_zone` is Europe/Berlin, which both read.
fn queries(dates: &[String], berlin: &str) -> Vec<Vec<String>> {
    let (first, second) = (&dates[0], &dates[1]);
    let mut queries: Vec<Vec<String>> = [
        "top --by src",
        "top --by src --metric bytes",
        "top --by src_domain",
        "top --by mailserver -n 20",
        "top --by relay",
        "top --by dest",
        "top --by dest --metric bytes -n 15",
        "top --by dest_domain",
        "top --by status",
        // Each field counts the kind that carries it by default: `to` for mailer, dsn, pri;
        // `from` for proto, nrcpts.
        "top --by mailer",
        "top --by mailer --kind to",
        "top --by dsn",
        "top --by pri -n 5",
        "top --by proto",
        "top --by nrcpts",
        "top --by mailer --where dsn=2.0.0",
        "top --by proto --where relay=localhost",
        "top --by relay --kind to --where mailer=esmtp",
        "top --by dest_domain --where status=Deferred",
        "top --by dest --where status=Bounced --metric bytes",
        // A field that is no column of the Parquet mirror: in its `other` map.
        "top --by bodytype",
        "top --by mailserver --where bodytype=8BITMIME",
        "report -n 10",
        "report -n 5 --where status=Deferred",
        "report -n 5 --where mailserver=mail03",
    ]
    .iter()
    .map(|query| args(&query.split(' ').collect::<Vec<_>>()))
    .collect();
    // A range across midnight, in both of maillog's forms, and an open-ended one.
    let since = format!("{first}T23:50:00Z");
    let until = format!("{second}T00:10");
    queries.push(args(&[
        "top",
        "--by",
        "mailserver",
        "--since",
        &since,
        "--until",
        &until,
    ]));
    queries.push(args(&["top", "--by", "dest_domain", "--since", second]));
    queries.push(args(&[
        "report", "-n", "5", "--since", &since, "--until", &until,
    ]));
    // Days and local times, in UTC and in the zone of a config.
    queries.push(args(&["top", "--by", "dest_domain", "--day", second]));
    queries.push(args(&[
        "top", "--by", "dest", "--day", second, "--config", berlin,
    ]));
    let local_since = format!("{second} 00:40");
    queries.push(args(&[
        "top",
        "--by",
        "mailserver",
        "--since",
        &local_since,
        "--until",
        "now",
        "--config",
        berlin,
    ]));
    queries.push(args(&["report", "-n", "5", "--day", first]));
    queries
}

/// Where `maillog` and Spark differ, as `path: maillog vs spark` lines (floats within 1e-9).
fn differences(path: &str, maillog: &Value, spark: &Value, out: &mut Vec<String>) {
    match (maillog, spark) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            if (a - b).abs() > 1e-9 * a.abs().max(1.0) {
                out.push(format!("{path}: {a} vs {b}"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), a, b, out);
            }
        }
        (Value::Object(a), Value::Object(b))
            if a.keys().collect::<Vec<_>>() == b.keys().collect::<Vec<_>>() =>
        {
            for (key, a) in a {
                differences(&format!("{path}.{key}"), a, &b[key], out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} vs {b}")),
    }
}

/// The venv's python; `None` (said) where there is none — a failure under CI.
fn python_or_skip(test: &str) -> Option<PathBuf> {
    match spark_python() {
        Ok(python) => Some(python),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{why}: scripts/install-spark installs pyspark (scripts/test runs it)")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: {why} (run scripts/install-spark)");
            None
        }
    }
}

/// Parses each statement of `contrib/athena/tables.sql` (argv[1]) with Spark SQL's parser,
/// which implements Hive's DDL grammar (Athena's DDL): prints each plan's kind, exits 1 on the
/// first syntax error. Nothing is executed.
const PARSE_ATHENA: &str = r#"
import re, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
parser = spark._jsparkSession.sessionState().sqlParser()
text = re.sub(r"--[^\n]*", "", open(sys.argv[1]).read())
for statement in [s.strip() for s in text.split(";") if s.strip()]:
    try:
        print(parser.parsePlan(statement).getClass().getSimpleName())
    except Exception as e:
        print("ERROR", str(e).strip().splitlines()[0], "in:", statement.splitlines()[0])
        sys.exit(1)
"#;

#[test]
fn the_athena_tables_parse_as_hive_ddl() {
    // Athena is not here; Spark's parser checks the syntax of the table (Hive DDL: SerDe,
    // partitions, partition projection's properties) and of the views. What it cannot check is
    // Trino's meaning of the views ("$path", double-quoted names): that is read, not run.
    let Some(python) = python_or_skip("the_athena_tables_parse_as_hive_ddl") else {
        return;
    };
    let tables = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/athena/tables.sql"
    );
    let out = Command::new(&python)
        .args(["-c", PARSE_ATHENA, tables])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kinds: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        kinds,
        [
            "CreateNamespace",
            "CreateTable",
            "CreateView",
            "CreateView",
            "CreateTable",
            "CreateTable",
        ],
        "{stdout}"
    );
}

/// What a command prints on stderr after its program's prefix (`error: invalid value … for
/// '--by <KEY>': `, `maillog_top.py top: argument --by: `, `maillog: `), and its exit code.
fn refusal(command: &mut Command, after: &str) -> (Option<i32>, String) {
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|line| line.contains(after))
        .unwrap_or("");
    let at = line.find(after).map_or(line.len(), |at| at + after.len());
    (out.status.code(), line[at..].to_owned())
}

#[test]
fn spark_refuses_the_keys_maillog_refuses() {
    let Some(python) = python_or_skip("spark_refuses_the_keys_maillog_refuses") else {
        return;
    };
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/spark/maillog_top.py");
    let dir = tempfile::tempdir().unwrap();
    for (query, after_maillog, after_spark) in [
        ("--by dset", "'--by <KEY>': ", "argument --by: "),
        (
            "--by dest --where stauts=Sent",
            "'--where <FIELD=VALUE>': ",
            "argument --where: ",
        ),
        ("--by zzz", "'--by <KEY>': ", "argument --by: "),
        ("--by src --where dsn=5.1.1", "maillog: ", "maillog_top: "),
        ("--by mailer --kind from", "maillog: ", "maillog_top: "),
    ] {
        let words: Vec<&str> = query.split(' ').collect();
        let maillog = refusal(
            Command::new(env!("CARGO_BIN_EXE_maillog"))
                .arg("top")
                .args(&words)
                .arg(dir.path())
                .current_dir(dir.path()),
            after_maillog,
        );
        let spark = refusal(
            Command::new(&python)
                .arg(&job)
                .arg("top")
                .args(&words)
                .arg(dir.path()),
            after_spark,
        );
        assert_eq!(maillog.0, Some(2), "maillog {query}: {}", maillog.1);
        assert!(
            maillog.1.contains(" is not a key") || maillog.1.contains(" is on "),
            "{query}: {}",
            maillog.1
        );
        assert_eq!(maillog, spark, "{query}");
    }
    // Ranges that are not times, or empty: exit 2 from both, before any reading.
    for range in [
        &["--since", "tomorow"][..],
        &["--since", "2025-11-20", "--until", "2025-11-19"],
        &["--day", "monday"],
        &["--day", "today", "--since", "2h"],
    ] {
        let spark = Command::new(&python)
            .arg(&job)
            .args(["top", "--by", "dest"])
            .args(range)
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(spark.status.code(), Some(2), "{range:?}");
    }
}

/// What [`archived`] made: the archive's `mail_logs/`, its date folders, and its largest `to`
/// file, rewritten as two bzip2 streams, with its number of lines.
struct Archived {
    mail_logs: PathBuf,
    dates: Vec<String>,
    multistream: PathBuf,
    multistream_lines: usize,
}

/// The archive of the Spark tests in `dir/archive`: `maillog run --once` of 6,000 generated
/// lines at 2 a second from 23:15, so across midnight (two date folders), with deferrals,
/// bounces and the null sender (loggen's mix); its largest `to` file made multistream.
fn archived(dir: &Path) -> Archived {
    let log = dir.join("mail.log");
    let config = Config {
        lines: 6_000,
        ..Config::default()
    };
    write_log(&config, &mut fs::File::create(&log).unwrap()).unwrap();
    run_once(dir, &log);

    let mail_logs = dir.join("archive/mail_logs");
    let mut dates: Vec<String> = fs::read_dir(&mail_logs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dates.sort();
    assert_eq!(dates.len(), 2, "{dates:?}");
    let multistream = files(&mail_logs)
        .into_iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with("to-"))
        .max_by_key(|f| fs::metadata(f).unwrap().len())
        .unwrap();
    let multistream_lines = make_multistream(&multistream);
    Archived {
        mail_logs,
        dates,
        multistream,
        multistream_lines,
    }
}

/// `dir/berlin.toml`, a config whose `time_zone` is Europe/Berlin (both read it).
fn berlin(dir: &Path) -> String {
    let berlin = dir.join("berlin.toml");
    fs::write(&berlin, "time_zone = \"Europe/Berlin\"\n").unwrap();
    berlin.to_string_lossy().into_owned()
}

/// Each query with `after` (options and paths) appended.
fn with(queries: Vec<Vec<String>>, after: &[&str]) -> Vec<Vec<String>> {
    queries
        .into_iter()
        .map(|query| [query, args(after)].concat())
        .collect()
}

/// maillog's answer to each query (its arguments, `--format json` and paths included).
fn maillog_answers(queries: &[Vec<String>]) -> Vec<Value> {
    let mut answers = Vec::new();
    for query in queries {
        let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
            .args(query)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "maillog {}: {}",
            query.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        answers.push(serde_json::from_slice::<Value>(&out.stdout).unwrap());
    }
    answers
}

/// The Spark job's answers to `queries`, all in one `batch`: one Spark session, local[2].
fn spark_answers(python: &Path, dir: &Path, queries: &[Vec<String>]) -> Vec<Value> {
    let batch_file = dir.join("queries.json");
    fs::write(&batch_file, serde_json::to_vec(queries).unwrap()).unwrap();
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/spark/maillog_top.py");
    let out = Command::new(python)
        .arg(&job)
        .args(["batch", "--queries"])
        .arg(&batch_file)
        .env("PYSPARK_SUBMIT_ARGS", "--master local[2] pyspark-shell")
        .env_remove("SPARK_HOME") // the venv's Spark, not another one
        .env("PYSPARK_PYTHON", python)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", job.display());
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answers.len(), queries.len());
    answers
}

/// Spark's answers are maillog's, and maillog's are no empty comparison: the top-N answers
/// have keys, the report counts mail.
fn assert_same_answers(queries: &[Vec<String>], maillog: &[Value], spark: &[Value]) {
    let mut differ = Vec::new();
    for ((query, maillog), spark) in queries.iter().zip(maillog).zip(spark) {
        let mut found = Vec::new();
        differences("", maillog, spark, &mut found);
        if !found.is_empty() {
            differ.push(format!("{}:\n  {}", query.join(" "), found.join("\n  ")));
        }
    }
    assert!(
        differ.is_empty(),
        "maillog vs spark:\n{}",
        differ.join("\n")
    );
    for (query, answer) in queries.iter().zip(maillog) {
        assert_ne!(answer, &Value::Array(Vec::new()), "{}", query.join(" "));
    }
    let report = &maillog[queries.iter().position(|q| q[0] == "report").unwrap()];
    for total in ["received", "delivered", "deferred", "bounced"] {
        assert!(report["totals"][total].as_u64().unwrap() > 0, "{report}");
    }
}

#[test]
fn spark_answers_what_maillog_answers() {
    let Some(python) = python_or_skip("spark_answers_what_maillog_answers") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = archived(dir.path());

    // Each query with `--format json` and its path: the archive, and the multistream file alone.
    let whole = archive.mail_logs.to_string_lossy().into_owned();
    let mut queries = with(
        queries(&archive.dates, &berlin(dir.path())),
        &["--format", "json", &whole],
    );
    queries.push(args(&[
        "top",
        "--by",
        "mailserver",
        "--kind",
        "to",
        "-n",
        "100",
        "--format",
        "json",
        &archive.multistream.to_string_lossy(),
    ]));
    let expected = maillog_answers(&queries);
    let answers = spark_answers(&python, dir.path(), &queries);
    assert_same_answers(&queries, &expected, &answers);

    // Both streams of the multistream file were read: every line is a `to` record of a server.
    let per_server = expected.last().unwrap().as_array().unwrap();
    let records: u64 = per_server
        .iter()
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        records,
        archive.multistream_lines as u64,
        "{}",
        archive.multistream.display()
    );
}

/// `maillog compact --settle 0s` of `dir/archive`: the Parquet mirror of every hour.
fn compact(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .current_dir(dir)
        .args([
            "compact",
            "--settle",
            "0s",
            "--config",
            "pipeline.toml",
            "archive",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "maillog compact: {stderr}");
    assert!(dir.join("archive/mirror/to").is_dir(), "{stderr}");
}

#[test]
fn spark_answers_the_same_from_the_parquet_mirror() {
    let Some(python) = python_or_skip("spark_answers_the_same_from_the_parquet_mirror") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = archived(dir.path());
    compact(dir.path());

    let asked = queries(&archive.dates, &berlin(dir.path()));
    let by_dest = asked
        .iter()
        .position(|q| q == &args(&["top", "--by", "dest"]))
        .unwrap();
    let whole = archive.mail_logs.to_string_lossy().into_owned();
    let mut expected = maillog_answers(&with(asked.clone(), &["--format", "json", &whole]));
    // Spark has the mirror only: the archive's JSON files are moved away.
    fs::rename(&archive.mail_logs, dir.path().join("mail_logs.away")).unwrap();
    let root = dir.path().join("archive").to_string_lossy().into_owned();
    let mut queries = with(asked, &["--format", "json", "--source", "parquet", &root]);
    // A PATH may be the mirror folder itself, too.
    let mirror = format!("{root}/mirror");
    queries.push(args(&[
        "top", "--by", "dest", "--format", "json", "--source", "parquet", &mirror,
    ]));
    expected.push(expected[by_dest].clone());

    let answers = spark_answers(&python, dir.path(), &queries);
    assert_same_answers(&queries, &expected, &answers);
}
