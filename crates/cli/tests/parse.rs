//! `maillog parse` as a user runs it: the binary, real files, stdout, stderr and exit codes.

// A test that cannot read its fixture should fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use maillog_loggen::{Config, Generator, HeaderStyle};
use serde_json::{Map, Value};

const FROM: &str = "Jul 12 20:53:00 mail5 sendmail[6229]: p6D0r0u1006229: from=<info@example.com>, size=57395, class=0, nrcpts=2, msgid=<x@example.com>, proto=ESMTP, daemon=MTA, relay=app03.example.com [10.1.2.3]";
const TO: &str = "Jul 12 20:53:02 mail5 sm-mta[6230]: p6D0r0u1006229: to=<a@gmail.com>,<b@gmail.com>, delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=120395, relay=gmail-smtp-in.l.google.com. [74.125.1.2], dsn=2.0.0, stat=Sent (OK 1310518380 pd12si6025606vcb.162)";

fn maillog(args: &[&str], stdin: Option<&[u8]>) -> Output {
    // No config from the environment: `parse` reads its time zone and programs from it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(args)
        .env_remove("MAILLOG_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn records(stdout: &[u8]) -> Vec<Map<String, Value>> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap()
                .as_object()
                .unwrap()
                .clone()
        })
        .collect()
}

#[test]
fn records_with_kind_first_and_a_summary_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_file(
        dir.path(),
        "mail.log",
        &format!("{FROM}\ngarbage\n{TO}\nJul 12 20:53:03 h CRON[1]: x\n"),
    );
    let out = maillog(&["parse", "--year", "2011", &log], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with(r#"{"kind":"from","sendmailid":"p6D0r0u1006229""#),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with(r#"{"kind":"to","#));
    let all = records(&out.stdout);
    assert_eq!(all[1]["dest"], "a@gmail.com");
    assert_eq!(all[2]["dest"], "b@gmail.com");
    assert_eq!(all[0]["ts"], "2011-07-12T20:53:00+00:00");
    let summary = String::from_utf8(out.stderr).unwrap();
    assert!(
        summary.contains("4 lines: 1 from records, 2 to records; non-records: other-program 1, sendmail-other 0, continuation 0, unparseable 1"),
        "{summary}"
    );
}

#[test]
fn kind_filter_and_original_fields() {
    let input = format!("{FROM}\n{TO}\n");
    let out = maillog(
        &[
            "parse",
            "--kind",
            "to",
            "--original-fields",
            "--year",
            "2011",
            "-",
        ],
        Some(input.as_bytes()),
    );
    assert!(out.status.success());
    let all = records(&out.stdout);
    assert_eq!(all.len(), 2);
    let keys: Vec<&str> = all[0].keys().map(String::as_str).collect();
    // The original pipeline's to record, exactly: no kind, no added fields.
    assert_eq!(
        keys,
        [
            "sendmailid",
            "pid",
            "month",
            "day",
            "time",
            "mailserver",
            "dest",
            "delay",
            "xdelay",
            "stat",
            "relay"
        ]
    );
}

#[test]
fn time_zone_and_year_options() {
    let out = maillog(
        &["parse", "--tz", "America/New_York", "--year", "2024", "-"],
        Some(FROM.as_bytes()),
    );
    assert_eq!(records(&out.stdout)[0]["ts"], "2024-07-12T20:53:00-04:00");
    let bad = maillog(&["parse", "--tz", "Mars/Olympus", "-"], Some(b""));
    assert!(!bad.status.success());
    assert!(
        String::from_utf8(bad.stderr)
            .unwrap()
            .contains("unknown time zone \"Mars/Olympus\"")
    );
}

#[test]
fn an_unreadable_file_is_named_and_the_others_still_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_file(dir.path(), "good.log", &format!("{FROM}\n"));
    let missing = dir.path().join("missing.log");
    let out = maillog(&["parse", missing.to_str().unwrap(), &good], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(records(&out.stdout).len(), 1);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot read {}", missing.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 2 inputs could not be read"),
        "{stderr}"
    );
    let directory = maillog(&["parse", dir.path().to_str().unwrap()], None);
    assert_eq!(directory.status.code(), Some(1));
}

#[test]
fn invalid_utf8_and_crlf_and_no_final_newline() {
    let input = [
        FROM.as_bytes(),
        b"\r\n",
        &TO.as_bytes()[..TO.len() - 5],
        b"\xff\xfe)",
    ]
    .concat();
    let out = maillog(&["parse", "--year", "2011", "-"], Some(&input));
    assert!(out.status.success());
    let all = records(&out.stdout);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["relay"], "app03.example.com");
    assert!(
        all[1]["stat"]
            .as_str()
            .unwrap()
            .ends_with("\u{fffd}\u{fffd})")
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("lines with invalid UTF-8: 1")
    );
}

#[test]
fn a_closed_stdout_stops_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    let mut file = std::fs::File::create(&log).unwrap();
    maillog_loggen::write_log(
        &Config {
            lines: 50_000,
            ..Config::default()
        },
        &mut file,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(["parse", log.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader of stdout goes away at once (`maillog parse … | head -0`).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Everything the generator meant, through the binary with several threads and chunks: the
/// records come out in input order, each exactly as expected.
#[test]
fn generated_logs_come_out_exactly_as_meant_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    for style in [HeaderStyle::Bsd, HeaderStyle::Iso, HeaderStyle::Rfc5424] {
        let config = Config {
            lines: 12_000,
            seed: 7,
            style,
            ..Config::default()
        };
        let mut text = String::new();
        let mut expected = Vec::new();
        for line in Generator::new(config) {
            line.render_into(style, &mut text);
            text.push('\n');
            for record in line.expected_records() {
                let mut object = Map::new();
                object.insert("kind".into(), record.kind.into());
                for (k, v) in record.fields {
                    object.insert(k.into(), v.into());
                }
                expected.push(object);
            }
        }
        let log = write_file(dir.path(), "gen.log", &text);
        // The generated log starts 2025-12-31 23:15 UTC and runs into 2026.
        let out = maillog(&["parse", "--threads", "3", "--year", "2025", &log], None);
        assert!(out.status.success());
        let ours = records(&out.stdout);
        assert_eq!(ours.len(), expected.len(), "{style:?}");
        for (i, (ours, expected)) in ours.iter().zip(&expected).enumerate() {
            let mut expected = expected.clone();
            if style == HeaderStyle::Bsd && expected["month"] == "Jan" {
                // With a fixed year, January lines are 2025 too: that is what --year means.
                let ts = expected["ts"].as_str().unwrap().replacen("2026", "2025", 1);
                expected.insert("ts".into(), ts.into());
            }
            // Keys in order, not only the same map.
            let ours: Vec<_> = ours.iter().collect();
            assert_eq!(
                ours,
                expected.iter().collect::<Vec<_>>(),
                "record {i} ({style:?})"
            );
        }
    }
}

#[test]
fn the_readme_command_runs_on_the_sample_log() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample-logs/mail.log");
    let out = maillog(&["parse", sample], None);
    assert!(out.status.success());
    assert!(records(&out.stdout).len() > 5000);
    let summary = String::from_utf8(out.stderr).unwrap();
    assert!(summary.contains("10000 lines:"), "{summary}");
    assert!(summary.contains("unparseable 0"), "{summary}");
}
