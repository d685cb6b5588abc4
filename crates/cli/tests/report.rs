//! `maillog report`'s pflogsumm sections (issue 16): per day, the reasons of deferrals, bounces
//! and rejects grouped by DSN and masked text, message sizes, and sizes people read in the
//! table — each checked against what the records say, counted another way.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn maillog(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(args)
        .current_dir(dir)
        .env_remove("MAILLOG_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// `maillog parse --kind KIND`'s records of `mail.log` in `dir`, as JSON objects.
fn parsed(dir: &Path, kind: &str) -> Vec<Value> {
    let out = maillog(dir, &["parse", "--kind", kind, "mail.log"]);
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn number(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn the_sections_add_up_to_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two days (23:15 to about 00:55 at 2 lines a second), deferrals, bounces and rejects in loggen's mix.
    let config = maillog_loggen::Config {
        lines: 12_000,
        ..maillog_loggen::Config::default()
    };
    let mut log = fs::File::create(d.join("mail.log")).unwrap();
    maillog_loggen::write_log(&config, &mut log).unwrap();
    let report: Value = serde_json::from_str(&maillog(
        d,
        &["report", "-n", "1000", "--format", "json", "mail.log"],
    ))
    .unwrap();
    let totals = &report["totals"];
    let froms = parsed(d, "from");
    let tos = parsed(d, "to");

    // Per day: the dates of the records' `ts`, and the totals split among them.
    let mut days: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in &froms {
        days.entry(r["ts"].as_str().unwrap()[..10].to_owned())
            .or_default()
            .0 += 1;
    }
    for r in &tos {
        days.entry(r["ts"].as_str().unwrap()[..10].to_owned())
            .or_default()
            .1 += 1;
    }
    let per_day = report["per_day"].as_array().unwrap();
    assert_eq!(per_day.len(), 2, "{per_day:?}");
    for row in per_day {
        let (received, to) = days[row["day"].as_str().unwrap()];
        assert_eq!(number(&row["received"]), received);
        let statuses = ["delivered", "deferred", "bounced"].map(|k| number(&row[k]));
        assert!(statuses.iter().sum::<u64>() <= to);
    }
    for column in ["received", "delivered", "deferred", "bounced"] {
        let sum: u64 = per_day.iter().map(|r| number(&r[column])).sum();
        assert_eq!(sum, number(&totals[column]), "{column}");
    }

    // Reasons: every deferral, bounce and reject in one group; groups by DSN and masked text.
    for (section, total) in [
        ("deferral_reasons", "deferred"),
        ("bounce_reasons", "bounced"),
        ("reject_reasons", "rejected"),
    ] {
        let rows = report[section].as_array().unwrap();
        let sum: u64 = rows.iter().map(|r| number(&r["count"])).sum();
        assert_eq!(sum, number(&totals[total]), "{section}");
        assert!(sum > 0, "{section}");
        for row in rows {
            let reason = row["reason"].as_str().unwrap();
            assert!(
                !reason.contains('@') && !reason.contains(".org"),
                "{reason}"
            );
        }
    }
    // A bounce's reason is its stat; the groups count the records with that DSN.
    let mut bounces: BTreeMap<String, u64> = BTreeMap::new();
    for r in tos
        .iter()
        .filter(|r| r["dsn"].as_str().is_some_and(|d| d.starts_with('5')))
    {
        *bounces
            .entry(r["dsn"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let mut grouped: BTreeMap<String, u64> = BTreeMap::new();
    for row in report["bounce_reasons"].as_array().unwrap() {
        *grouped
            .entry(row["dsn"].as_str().unwrap().to_owned())
            .or_default() += number(&row["count"]);
    }
    assert_eq!(grouped, bounces);

    // Sizes: the messages' sizes, by the brute force.
    let sizes: Vec<u64> = froms
        .iter()
        .map(|r| r["size"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0))
        .collect();
    let s = &report["message_sizes"];
    assert_eq!(number(&s["messages"]), sizes.len() as u64);
    assert_eq!(number(&s["min"]), *sizes.iter().min().unwrap());
    assert_eq!(number(&s["max"]), *sizes.iter().max().unwrap());
    let mean = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
    assert!((s["mean"].as_f64().unwrap() - mean).abs() < 1e-6);
    let bounds = [1u64 << 10, 10 << 10, 100 << 10, 1 << 20, 10 << 20, u64::MAX];
    let mut low = 0;
    for (bucket, high) in s["buckets"].as_array().unwrap().iter().zip(bounds) {
        let n = sizes.iter().filter(|&&b| b >= low && b < high).count() as u64;
        assert_eq!(number(&bucket["count"]), n, "[{low}, {high})");
        low = high;
    }

    // The table: sizes as people read them; every section under its heading.
    let table = maillog(d, &["report", "mail.log"]);
    for heading in [
        "Per-Day Traffic Summary",
        "Deferral reasons",
        "Bounce reasons",
        "Reject reasons",
        "Message Sizes",
    ] {
        assert!(table.contains(heading), "{heading}: {table}");
    }
    assert!(
        table.contains(" MiB  received") || table.contains(" GiB  received"),
        "{table}"
    );
    let csv = maillog(d, &["report", "--format", "csv", "mail.log"]);
    assert!(csv.contains("\nmessage_sizes,,messages,") && csv.contains("\nper_day,"));
    fs::remove_file(d.join("mail.log")).unwrap();
}
