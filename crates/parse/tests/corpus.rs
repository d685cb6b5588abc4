//! The real sendmail logs of `../shared/corpus/sendmail/` (public projects' test data, provenance
//! in its SOURCES.md), read in place: no panic on any line, every `from=`/`to=` line of a sendmail
//! program yields its records, and the records agree with the expectation files the source
//! projects ship. Skipped, with a message, where `../shared` is absent.
//!
//! The per-file counts below were written from the contract and checked against an independent
//! count (a line is a record line when it has a contract header, a sendmail program tag, and
//! `QID: from=`/`QID: to=` right after the tag; a `to=` line makes one record per recipient of
//! its comma-separated list, `[more]` excluded). The classes of the other lines follow from the
//! contract: the Thunderbird lines carry loghub's foreign prefix, the Wazuh/OSSEC alert lines
//! have no header at all, `QID[2]:` is a continuation, gomaillex interleaves Postfix.

// A test that cannot read its fixture should fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use maillog_parse::{
    FieldsMode, ParseStats, Parsed, Parser, TimeContext, YearPolicy, Zone, decode,
};
use serde_json::{Map, Value};

fn corpus_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("MAILLOG_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = shared.join("corpus/sendmail");
    if dir.is_dir() {
        return Some(dir);
    }
    let message = format!(
        "no corpus at {} (set MAILLOG_SHARED to the shared folder)",
        dir.display()
    );
    // A test that cannot run is a failure in CI, never a pass.
    assert!(
        std::env::var_os("CI").is_none_or(|v| v != "true"),
        "{message} under CI=true"
    );
    eprintln!("SKIPPED: {message}");
    None
}

fn parser() -> Parser {
    Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2005)), &[])
}

/// Every line of a file (without its line end), its stats, and its records as JSON objects.
fn parse_file(path: &Path) -> (ParseStats, Vec<Map<String, Value>>) {
    let bytes = std::fs::read(path).unwrap();
    let parser = parser();
    let mut stats = ParseStats::default();
    let mut records = Vec::new();
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let decoded = decode(line);
        let parsed = parser.parse(&decoded.text);
        stats.count(&parsed, decoded.lossy);
        if let Parsed::Event(event) = parsed {
            for record in event.records() {
                let json = record.to_json(FieldsMode::All);
                let value: Value = serde_json::from_str(&json).unwrap();
                let object = value.as_object().unwrap().clone();
                assert!(object.values().all(Value::is_string), "{json}");
                if let Some(stat) = object.get("stat") {
                    assert!(
                        decoded.text.ends_with(stat.as_str().unwrap()),
                        "stat is not the line's end: {json}"
                    );
                }
                records.push(object);
            }
        }
    }
    (stats, records)
}

/// file, lines, from records, to records, other-program, sendmail-other, continuation, unparseable
type Counts = (&'static str, u64, u64, u64, u64, u64, u64, u64);

const EXPECTED: &[Counts] = &[
    (
        "1Basile__sendmail_log_reader__test.log.log",
        2722,
        961,
        795,
        0,
        1099,
        0,
        0,
    ),
    (
        "MensEtManus__gomaillex__maillog.log",
        1000,
        68,
        68,
        864,
        0,
        0,
        0,
    ),
    (
        "Prelude-SIEM__prelude-lml-rules__ruleset_sendmail.rules.log",
        12,
        1,
        0,
        0,
        11,
        0,
        0,
    ),
    (
        "SEKOIA-IO__intake-formats__ProofPoint_proofpoint-pod_tests_test_maillog.json.log",
        1,
        0,
        1,
        0,
        0,
        0,
        0,
    ),
    (
        "augieschwer__grok-patterns__test-sendmail.rb.log",
        21,
        2,
        7,
        0,
        14,
        0,
        0,
    ),
    (
        "duskopijetlovic__duskopijetlovic.github.io___posts_2022-10-22-sendmail-notes.md.log",
        18,
        1,
        1,
        0,
        16,
        0,
        0,
    ),
    (
        "duskopijetlovic__duskopijetlovic.github.io___posts_2022-11-12-sendmail-auth-client.md.log",
        6,
        0,
        0,
        0,
        6,
        0,
        0,
    ),
    (
        "fail2ban__fail2ban__fail2ban_tests_files_logs_sendmail-auth.log",
        13,
        0,
        0,
        0,
        13,
        0,
        0,
    ),
    (
        "fail2ban__fail2ban__fail2ban_tests_files_logs_sendmail-reject.log",
        45,
        3,
        0,
        0,
        42,
        0,
        0,
    ),
    (
        "gitpan__Parse-Syslog-Mail__t_logs_sendmail-custom-dsn.log.log",
        37,
        0,
        4,
        0,
        32,
        1,
        0,
    ),
    (
        "gitpan__Parse-Syslog-Mail__t_logs_sendmail-done.log.log",
        3,
        1,
        1,
        0,
        1,
        0,
        0,
    ),
    (
        "gitpan__Parse-Syslog-Mail__t_logs_sendmail-plain.log.log",
        270,
        116,
        116,
        0,
        38,
        0,
        0,
    ),
    (
        "gitpan__Parse-Syslog-Mail__t_logs_sendmail-ruleset.log.log",
        3,
        0,
        0,
        0,
        3,
        0,
        0,
    ),
    (
        "gitpan__Parse-Syslog-Mail__t_logs_technoids.log.log",
        1,
        0,
        0,
        0,
        1,
        0,
        0,
    ),
    (
        "logpai__loghub__Thunderbird_Thunderbird_2k.log.log",
        35,
        0,
        0,
        0,
        0,
        0,
        35,
    ),
    (
        "ossec__ossec-docs__docs_log_samples_email_sendmail.rst.log",
        8,
        0,
        0,
        0,
        6,
        0,
        2,
    ),
    (
        "ossec__ossec-docs__docs_log_samples_misc_solaris.rst.log",
        2,
        1,
        1,
        0,
        0,
        0,
        0,
    ),
    (
        "wazuh__wazuh-ruleset__decoders_0275-sendmail_decoders.xml.log",
        9,
        4,
        0,
        0,
        0,
        0,
        5,
    ),
    (
        "wazuh__wazuh-ruleset__rules_log-entries_mail-alerts.log",
        14,
        0,
        0,
        0,
        0,
        0,
        14,
    ),
    (
        "wazuh__wazuh-ruleset__rules_log-entries_unkown.log",
        1,
        0,
        0,
        0,
        1,
        0,
        0,
    ),
    (
        "wazuh__wazuh-ruleset__tools_rules-testing_tests_0025-sendmail.ini.log",
        3,
        2,
        0,
        0,
        1,
        0,
        0,
    ),
    (
        "yudai09__fluent-plugin-sendmail__test_data_data.log",
        10,
        1,
        8,
        0,
        3,
        0,
        0,
    ),
];

#[test]
fn every_corpus_file_parses_to_its_expected_counts() {
    let Some(dir) = corpus_dir() else { return };
    let mut seen = BTreeSet::new();
    let mut lines = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".log") {
            continue;
        }
        // Every file parses without panicking, listed below or not (the corpus may grow).
        let (stats, _) = parse_file(&path);
        lines += stats.lines;
        let Some(expected) = EXPECTED.iter().find(|e| e.0 == name) else {
            eprintln!("note: {name} is not in the expectations table: {stats}");
            continue;
        };
        let got = (
            name.as_str(),
            stats.lines,
            stats.from_records,
            stats.to_records,
            stats.other_program,
            stats.sendmail_other,
            stats.continuation,
            stats.unparseable,
        );
        assert_eq!(got, *expected, "{name}");
        assert_eq!(stats.invalid_utf8, 0, "{name}");
        seen.insert(name);
    }
    let missing: Vec<_> = EXPECTED
        .iter()
        .filter(|e| !seen.contains(e.0))
        .map(|e| e.0)
        .collect();
    assert!(missing.is_empty(), "corpus files missing: {missing:?}");
    eprintln!("checked {lines} lines of {} corpus files", seen.len());
    assert!(lines > 0, "no corpus line checked");
}

fn records_of(name: &str) -> Option<Vec<Map<String, Value>>> {
    let path = corpus_dir()?.join(name);
    // A corpus without the file is a corpus that changed: say so rather than check nothing.
    assert!(path.is_file(), "{} is not in the corpus", path.display());
    let records = parse_file(&path).1;
    eprintln!("{name}: checking {} records", records.len());
    Some(records)
}

fn expectations(name: &str) -> Vec<Value> {
    let path = corpus_dir().unwrap().join(name);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn unbracket(v: &Value) -> String {
    let s = v.as_str().unwrap();
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
        .to_owned()
}

#[test]
fn fluent_plugin_sendmail_expectations() {
    let Some(records) = records_of("yudai09__fluent-plugin-sendmail__test_data_data.log") else {
        return;
    };
    let from = records.iter().find(|r| r.contains_key("src")).unwrap();
    for expected in expectations("yudai09__fluent-plugin-sendmail__test_data_result.expected.jsonl")
    {
        assert_eq!(
            from["src"].as_str(),
            Some(unbracket(&expected["from"]).as_str())
        );
        for (ours, theirs) in [
            ("size", "size"),
            ("classnumber", "class"),
            ("nrcpts", "nrcpts"),
            ("proto", "proto"),
            ("daemon", "daemon"),
        ] {
            assert_eq!(from[ours], expected[theirs], "{ours}");
        }
        assert_eq!(
            from["msgid"].as_str(),
            Some(unbracket(&expected["msgid"]).as_str())
        );
        assert_eq!(from["relay_ip"], expected["relay_from"]["ip"]);
        // One of our to records per address of the merged record, with its delivery's fields.
        for to in expected["to"].as_array().unwrap() {
            let dest = unbracket(to);
            let ours = records
                .iter()
                .find(|r| {
                    r.get("dest").and_then(Value::as_str) == Some(&dest)
                        && r["stat"] == expected["stat"]
                })
                .unwrap_or_else(|| panic!("no to record for {dest} with {}", expected["stat"]));
            for key in ["delay", "xdelay", "mailer", "pri", "dsn"] {
                assert_eq!(ours[key], expected[key], "{dest} {key}");
            }
            assert_eq!(ours["sendmailid"], expected["qid"]);
            match expected["relay_to"].get("ip") {
                Some(ip) => assert_eq!(&ours["relay_ip"], ip),
                None => assert!(!ours.contains_key("relay")),
            }
            if let Some(ctladdr) = expected.get("ctladdr").filter(|c| !c.is_null()) {
                assert_eq!(&ours["ctladdr"], ctladdr);
            }
        }
    }
}

#[test]
fn proofpoint_expectations() {
    let Some(records) = records_of(
        "SEKOIA-IO__intake-formats__ProofPoint_proofpoint-pod_tests_test_maillog.json.log",
    ) else {
        return;
    };
    let expected = &expectations(
        "SEKOIA-IO__intake-formats__ProofPoint_proofpoint-pod_tests_test_maillog.json.expected.jsonl",
    )[0];
    let sm = &expected["proofpoint_sm_object"];
    let dests: Vec<&Value> = records.iter().map(|r| &r["dest"]).collect();
    assert_eq!(
        dests,
        sm["to"].as_array().unwrap().iter().collect::<Vec<_>>()
    );
    for key in ["delay", "xdelay", "mailer", "pri", "dsn", "stat", "ctladdr"] {
        assert_eq!(records[0][key], sm[key], "{key}");
    }
    assert_eq!(records[0]["sendmailid"], sm["qid"]);
    assert_eq!(
        records[0]["tls_verify"],
        expected["proofpoint_tls_object"]["verify"]
    );
    // Logged offset and fraction kept; the instant is the one SEKOIA expects in UTC.
    let ts = chrono::DateTime::parse_from_rfc3339(records[0]["ts"].as_str().unwrap()).unwrap();
    let theirs = chrono::DateTime::parse_from_rfc3339(
        expected["sekoia_expected"]["@timestamp"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(ts, theirs);
}

#[test]
fn parse_syslog_mail_expectations() {
    let Some(dir) = corpus_dir() else { return };
    for expected in expectations("gitpan__Parse-Syslog-Mail__t_11values.t.expected.jsonl") {
        let file = expected["file"].as_str().unwrap();
        let records = parse_file(&dir.join(file)).1;
        let id = expected["id"].as_str().unwrap();
        let ours: Vec<_> = records.iter().filter(|r| r["sendmailid"] == id).collect();
        let want = &expected["expect"];
        if want.get("ruleset").is_some() {
            // A rejected recipient: Parse::Syslog::Mail derives a `to`, the contract no record.
            assert!(ours.is_empty(), "{id}");
            continue;
        }
        if let Some(from) = want.get("from") {
            let record = ours.iter().find(|r| r.contains_key("src")).unwrap();
            assert_eq!(
                record["src"].as_str(),
                Some(unbracket(from).as_str()),
                "{id}"
            );
            assert_eq!(
                record["msgid"].as_str(),
                Some(unbracket(&want["msgid"]).as_str()),
                "{id}"
            );
            assert_eq!(
                record["size"].as_str(),
                Some(want["size"].to_string().as_str()),
                "{id}"
            );
        }
        if let Some(to) = want.get("to") {
            let record = ours.iter().find(|r| r.contains_key("dest")).unwrap();
            assert_eq!(
                record["dest"].as_str(),
                Some(unbracket(to).as_str()),
                "{id}"
            );
            assert_eq!(record["mailer"], want["mailer"], "{id}");
        }
        if want.get("status") == Some(&Value::from("done")) {
            // `done;` closes a queue entry: its from and to lines are records, it is not one.
            assert_eq!(ours.len(), 2, "{id}");
        }
    }
}

#[test]
fn spot_checks_of_real_lines() {
    let Some(kibr) = records_of("1Basile__sendmail_log_reader__test.log.log") else {
        return;
    };
    let null_sender: Vec<_> = kibr
        .iter()
        .filter(|r| r.get("src") == Some(&Value::from("")))
        .collect();
    assert_eq!(null_sender.len(), 1, "KIBR has one from=<> bounce");
    let truncated = kibr
        .iter()
        .find(|r| {
            r.get("stat")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("Deferred: 451-4.3.0"))
        })
        .unwrap();
    assert_eq!(
        truncated["stat"],
        "Deferred: 451-4.3.0 Multiple destination domains per transaction is unsupported.  Please"
    );
    let forged = kibr
        .iter()
        .filter(|r| r.get("relay_ip").is_some() && r["relay"].as_str().unwrap().contains(' '))
        .count();
    assert_eq!(forged, 0, "no relay keeps its address or (may be forged)");

    let Some(sol) = records_of("ossec__ossec-docs__docs_log_samples_misc_solaris.rst.log") else {
        return;
    };
    assert_eq!(sol[0]["sendmailid"], "kBC502520512");
    assert_eq!(sol[1]["relay"], "local");

    let Some(f2b) = records_of("fail2ban__fail2ban__fail2ban_tests_files_logs_sendmail-reject.log")
    else {
        return;
    };
    // nrcpts=0: every recipient was rejected, so there is no msgid to carry.
    assert!(
        f2b.iter()
            .all(|r| r["nrcpts"] == "0" && !r.contains_key("msgid"))
    );
    // The FreeBSD `<mail.info>` token is skipped; the host is the next word.
    let robin = f2b
        .iter()
        .find(|r| r["sendmailid"] == "55HIbcGI002794")
        .unwrap();
    assert_eq!(
        (robin["mailserver"].as_str(), robin["relay"].as_str()),
        (Some("robin"), Some("192.168.1.45"))
    );
}
