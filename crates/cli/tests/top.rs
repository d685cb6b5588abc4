//! `maillog top` and `maillog report` end to end: every input kind gives the same answer as the
//! archive the pipeline wrote (directories, bzip2/gzip/plain files, raw syslog, stdin, S3 with
//! globs on a real S3-compatible server); the options against a brute-force count of
//! `maillog parse`'s records; broken inputs named, the rest counted, the exit code.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{ACCESS_KEY, S3Server, SECRET_KEY, have_s3s_fs};
use serde_json::Value;

fn maillog(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(args)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// The JSON answer of a command that must succeed.
fn answer(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Value {
    let out = maillog(dir, args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stderr}"))
}

/// A generated log and the local archive `maillog run --once` made of it.
fn archive(dir: &Path) -> PathBuf {
    let log = dir.join("mail.log");
    common::generated_log(&log, 8_000);
    let config = "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n\
                  [bzip2]\nlevel = 1\n";
    fs::write(dir.join("pipeline.toml"), config).unwrap();
    let out = maillog(dir, &["run", "--once"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("archive")
}

/// The archive's files decompressed (`.json`) and recompressed with gzip (`.json.gz`).
fn recompressed(archive: &Path, to: &Path) {
    for (i, file) in common::files(archive).iter().enumerate() {
        let mut text = Vec::new();
        std::io::copy(
            &mut bzip2::read::MultiBzDecoder::new(fs::File::open(file).unwrap()),
            &mut text,
        )
        .unwrap();
        let name = file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".json.bz2", "");
        fs::create_dir_all(to).unwrap();
        if i % 2 == 0 {
            fs::write(to.join(format!("{name}.json")), &text).unwrap();
        } else {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&text).unwrap();
            fs::write(to.join(format!("{name}.json.gz")), gz.finish().unwrap()).unwrap();
        }
    }
}

const TOPS: [&[&str]; 6] = [
    &["--by", "dest"],
    &["--by", "src", "--metric", "bytes"],
    &["--by", "dest_domain", "--metric", "bytes"],
    &["--by", "mailserver"],
    &["--by", "status"],
    &["--by", "mailer", "--kind", "to"],
];

#[test]
fn every_input_kind_gives_the_archive_s_answer() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let log = fs::read(dir.path().join("mail.log")).unwrap();
    recompressed(&archive, &dir.path().join("other"));
    let parsed = maillog(dir.path(), &["parse", "mail.log"], None);
    assert!(parsed.status.success());
    for top in TOPS {
        let args = |inputs: &[&'static str]| -> Vec<&'static str> {
            let mut all = vec!["top", "-n", "100000", "--format", "json"];
            all.extend_from_slice(top);
            all.extend_from_slice(inputs);
            all
        };
        let expected = answer(dir.path(), &args(&["archive"]), None);
        assert!(
            !expected.as_array().unwrap().is_empty(),
            "{top:?}: {expected}"
        );
        for (inputs, stdin) in [
            (&["mail.log"][..], None),
            (&[][..], None), // the configured archive
            (&["-"][..], Some(&log[..])),
            (&["-"][..], Some(&parsed.stdout[..])), // maillog parse's JSON, with "kind"
            (&["other"][..], None),
        ] {
            let got = answer(dir.path(), &args(inputs), stdin);
            assert_eq!(got, expected, "{top:?} over {inputs:?}");
        }
    }
    let report = answer(dir.path(), &["report", "--format", "json", "archive"], None);
    let mut raw = answer(
        dir.path(),
        &["report", "--format", "json", "mail.log"],
        None,
    );
    assert!(raw["totals"]["rejected"].as_u64().unwrap() > 0);
    assert_eq!(report["totals"]["rejected"], Value::Null);
    assert_eq!(report["reject_reasons"], Value::Null);
    // Rejects: a count, grouped by DSN and masked reason (`<>... Relaying denied`).
    let rejects = raw["reject_reasons"].as_array().unwrap();
    let grouped: u64 = rejects.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert!(rejects.len() < 10 && grouped > 0, "{rejects:?}");
    raw["totals"]["rejected"] = Value::Null;
    raw["reject_reasons"] = Value::Null;
    assert_eq!(raw, report);
    assert!(report["totals"]["deferred"].as_u64().unwrap() > 0);
    assert_eq!(report["per_hour"].as_array().unwrap().len(), 24);
    // `report --where`: the report of the lines of one server alone.
    let server: String = String::from_utf8_lossy(&log)
        .lines()
        .find_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .unwrap();
    let of_server: String = String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some(server.as_str()))
        .map(|l| format!("{l}\n"))
        .collect();
    let filter = format!("mailserver={server}");
    let mut alone = answer(
        dir.path(),
        &["report", "--format", "json", "-"],
        Some(of_server.as_bytes()),
    );
    alone["totals"]["rejected"] = Value::Null;
    alone["reject_reasons"] = Value::Null;
    let filtered = answer(
        dir.path(),
        &["report", "--format", "json", "--where", &filter, "archive"],
        None,
    );
    assert!(filtered["totals"]["received"].as_u64().unwrap() > 0);
    assert_ne!(filtered, report);
    assert_eq!(filtered, alone, "{filter}");
    // Every format prints.
    for format in ["table", "csv"] {
        for command in ["top --by dest", "report"] {
            let mut args: Vec<&str> = command.split(' ').collect();
            args.extend(["--format", format, "archive"]);
            let out = maillog(dir.path(), &args, None);
            assert!(out.status.success() && out.stdout.len() > 50, "{args:?}");
        }
    }
}

/// Counts by key of `maillog parse`'s records, the slow, obvious way.
fn brute_force(
    records: &[serde_json::Map<String, Value>],
    kind: &str,
    key: impl Fn(&serde_json::Map<String, Value>) -> Option<String>,
    keep: impl Fn(&serde_json::Map<String, Value>) -> bool,
) -> BTreeMap<String, (u64, u64)> {
    let id = |r: &serde_json::Map<String, Value>| {
        format!("{:?} {:?}", r.get("mailserver"), r["sendmailid"])
    };
    let sizes: BTreeMap<String, u64> = records
        .iter()
        .filter(|r| r["kind"] == "from")
        .map(|r| {
            (
                id(r),
                r.get("size")
                    .and_then(|s| s.as_str()?.parse().ok())
                    .unwrap_or(0),
            )
        })
        .collect();
    let mut counts = BTreeMap::new();
    for r in records.iter().filter(|r| r["kind"] == kind && keep(r)) {
        if let Some(k) = key(r) {
            let entry = counts.entry(k).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += sizes.get(&id(r)).copied().unwrap_or(0);
        }
    }
    counts
}

fn as_counts(answer: &Value) -> BTreeMap<String, (u64, u64)> {
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let bytes = row.get("bytes").and_then(Value::as_u64).unwrap_or(0);
            (
                row["key"].as_str().unwrap().to_owned(),
                (row["count"].as_u64().unwrap(), bytes),
            )
        })
        .collect()
}

#[test]
fn options_count_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path());
    let parsed = maillog(dir.path(), &["parse", "mail.log"], None);
    let records: Vec<serde_json::Map<String, Value>> = String::from_utf8(parsed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let field = |name: &'static str| {
        move |r: &serde_json::Map<String, Value>| r.get(name)?.as_str().map(str::to_owned)
    };
    let top = |args: &[&str]| {
        let mut all = vec!["top", "-n", "100000", "--format", "json", "archive"];
        all.extend_from_slice(args);
        as_counts(&answer(dir.path(), &all, None))
    };
    // Bytes of recipients: their from's size, joined by queue id and server.
    assert_eq!(
        top(&["--by", "dest", "--metric", "bytes"]),
        brute_force(
            &records,
            "to",
            |r| field("dest")(r).map(|d| if d.is_empty() { "<>".into() } else { d }),
            |_| true
        )
    );
    // --where on a derived key and a plain field; --kind.
    let gmail_deferred = brute_force(&records, "to", field("dest"), |r| {
        r.get("dsn")
            .and_then(Value::as_str)
            .is_some_and(|d| d.starts_with('4'))
    });
    let got = top(&[
        "--by",
        "dest",
        "--where",
        "status=Deferred",
        "--metric",
        "bytes",
    ]);
    assert_eq!(got, gmail_deferred);
    assert!(!got.is_empty());
    let to_servers = brute_force(&records, "to", field("mailserver"), |r| {
        r.get("mailer").is_some_and(|m| m == "esmtp")
    });
    let got = top(&[
        "--by",
        "mailserver",
        "--kind",
        "to",
        "--where",
        "mailer=esmtp",
    ]);
    assert_eq!(
        got.iter()
            .map(|(k, c)| (k.clone(), c.0))
            .collect::<Vec<_>>(),
        to_servers
            .iter()
            .map(|(k, c)| (k.clone(), c.0))
            .collect::<Vec<_>>()
    );
    // --since/--until on ts: the first half hour of the log.
    let (since, until) = ("2025-12-31T23:20:00Z", "2025-12-31T23:50:00+00:00");
    let in_range = |r: &serde_json::Map<String, Value>| {
        let ts = chrono::DateTime::parse_from_rfc3339(r["ts"].as_str().unwrap()).unwrap();
        ts >= chrono::DateTime::parse_from_rfc3339(since).unwrap()
            && ts < chrono::DateTime::parse_from_rfc3339(until).unwrap()
    };
    let expected = brute_force(&records, "from", field("mailserver"), in_range);
    let got = top(&[
        "--by",
        "mailserver",
        "--since",
        "2025-12-31 23:20",
        "--until",
        until,
    ]);
    assert_eq!(got, expected);
    // Ties by key ascending, -n cuts.
    let out = answer(
        dir.path(),
        &[
            "top", "--by", "status", "-n", "2", "--format", "json", "archive",
        ],
        None,
    );
    assert_eq!(out.as_array().unwrap().len(), 2);
    // A bad key or time is a usage error naming it.
    let out = maillog(dir.path(), &["top", "--by", "no such", "archive"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"no such\" is not a key"));
    let out = maillog(
        dir.path(),
        &[
            "top",
            "--by",
            "dest",
            "--since",
            "the day before",
            "archive",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn broken_inputs_are_named_the_rest_counted_and_the_exit_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let whole = answer(
        dir.path(),
        &[
            "top", "--by", "dest", "-n", "100000", "--format", "json", "archive",
        ],
        None,
    );
    let whole: u64 = whole
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    // Truncate the largest `to` file, add a file with a broken line and a missing path.
    let to_files: Vec<PathBuf> = common::files(&archive)
        .into_iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with("to-"))
        .collect();
    let largest = to_files
        .iter()
        .max_by_key(|f| fs::metadata(f).unwrap().len())
        .unwrap();
    let bytes = fs::read(largest).unwrap();
    fs::write(largest, &bytes[..bytes.len() / 2]).unwrap();
    fs::write(
        archive.join("to-broken.json"),
        "{\"dest\":\"a@x\"}\n{\"dest\":\n{\"dest\":\"b@x\"}\n",
    )
    .unwrap();
    let args = [
        "top", "--by", "dest", "-n", "100000", "--format", "json", "archive", "nowhere",
    ];
    let out = maillog(dir.path(), &args, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:",
            largest.strip_prefix(dir.path()).unwrap().display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("archive/to-broken.json: line 2: not a JSON record"),
        "{stderr}"
    );
    assert!(stderr.contains("nowhere: cannot read"), "{stderr}");
    let counted: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let counted: u64 = counted.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert!(
        counted > whole / 2 && counted < whole + 2,
        "{counted} of {whole}"
    );
    let mut keep_going = args.to_vec();
    keep_going.push("--keep-going");
    assert_eq!(
        maillog(dir.path(), &keep_going, None).status.code(),
        Some(0)
    );
}

#[test]
fn s3_inputs_are_listed_globbed_and_streamed() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let server = S3Server::start(&dir.path().join("s3"), "bucket");
    let config = format!(
        "inputs = [\"mail.log\"]\nspool = \"spool-s3\"\narchive = \"s3://bucket/maillog\"\n\
         [bzip2]\nlevel = 1\n{}",
        server.config_section()
    );
    fs::write(dir.path().join("s3.toml"), config).unwrap();
    let out = maillog(dir.path(), &["run", "--once", "--config", "s3.toml"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let day = fs::read_dir(archive.join("mail_logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let day = day.to_string_lossy();
    for (local, remote) in [
        ("archive".to_owned(), "s3://bucket/maillog/".to_owned()),
        ("archive".to_owned(), "s3://bucket/maillog".to_owned()),
        (
            format!("archive/mail_logs/{day}"),
            format!("s3://bucket/maillog/mail_logs/{day}/to*"),
        ),
        (
            "archive".to_owned(),
            "s3://bucket/maillog/mail_logs/*/t?-*.json.bz2".to_owned(),
        ),
    ] {
        let query = |input: &str| {
            answer(
                dir.path(),
                &[
                    "top", "--by", "dest", "-n", "50", "--format", "json", "--config", "s3.toml",
                    input,
                ],
                None,
            )
        };
        assert_eq!(query(&remote), query(&local), "{remote}");
    }
    let report = |input: &str| {
        answer(
            dir.path(),
            &["report", "--format", "json", "--config", "s3.toml", input],
            None,
        )
    };
    assert_eq!(report("s3://bucket/maillog"), report("archive"));
    let out = maillog(
        dir.path(),
        &[
            "top",
            "--by",
            "dest",
            "--config",
            "s3.toml",
            "s3://bucket/maillog/mail_logs/1999-*/to*",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("s3://bucket/maillog/mail_logs/1999-*/to*: no archive files match")
    );
}
