//! The scan against brute force: the same generated log as raw syslog, as archive files of
//! every compression, cut in ranges, broken in places.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use maillog_parse::{FieldsMode, Parsed, TimeContext, Zone};

use super::*;
use crate::query::{Filter, Key};
use crate::report::{ReportQuery, ReportTally};
use crate::tally::{Counts, Metric, TopQuery, TopTally};

fn parser() -> Parser {
    Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2025)), &[])
}

fn options(threads: usize, range_bytes: u64) -> ScanOptions {
    ScanOptions {
        threads,
        parser: parser(),
        year: Some(2025),
        range_bytes,
    }
}

/// A generated log: its text, and its records' JSON lines by kind.
fn generated(lines: u64) -> (String, Vec<String>, Vec<String>) {
    let config = maillog_loggen::Config {
        lines,
        rate: 20.0,
        ..maillog_loggen::Config::default()
    };
    let mut text = Vec::new();
    maillog_loggen::write_log(&config, &mut text).expect("in memory");
    let text = String::from_utf8(text).expect("generated logs are UTF-8");
    let (mut from, mut to) = (Vec::new(), Vec::new());
    let parser = parser();
    for line in text.lines() {
        if let Parsed::Event(event) = parser.parse(line) {
            for record in event.records() {
                let json = record.to_json(FieldsMode::All);
                match record.kind() {
                    Kind::From => from.push(json),
                    Kind::To => to.push(json),
                }
            }
        }
    }
    (text, from, to)
}

/// Bytes per dest, counted the slow, obvious way.
fn brute_force(from: &[String], to: &[String]) -> BTreeMap<String, Counts> {
    let value = |line: &str| -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(line).expect("JSON")
    };
    let mut sizes = BTreeMap::new();
    for line in from {
        let r = value(line);
        let id = (
            r.get("mailserver").map(|m| m.to_string()),
            r["sendmailid"].to_string(),
        );
        let size = r.get("size").and_then(|s| s.as_str()?.parse::<u64>().ok());
        sizes.insert(id, size.unwrap_or(0));
    }
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    for line in to {
        let r = value(line);
        let Some(dest) = r.get("dest").and_then(|d| d.as_str()) else {
            continue;
        };
        let dest = if dest.is_empty() { "<>" } else { dest };
        let id = (
            r.get("mailserver").map(|m| m.to_string()),
            r["sendmailid"].to_string(),
        );
        let entry = counts.entry(dest.to_owned()).or_default();
        entry.count += 1;
        entry.bytes += sizes.get(&id).copied().unwrap_or(0);
    }
    counts
}

fn write_bz2(path: &Path, streams: &[&[String]]) {
    let mut file = File::create(path).expect("create");
    for lines in streams {
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        for line in *lines {
            writeln!(encoder, "{line}").expect("in memory");
        }
        file.write_all(&encoder.finish().expect("in memory"))
            .expect("write");
    }
}

fn write_gz(path: &Path, lines: &[String]) {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for line in lines {
        writeln!(encoder, "{line}").expect("in memory");
    }
    std::fs::write(path, encoder.finish().expect("in memory")).expect("write");
}

fn write_plain(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

fn inputs_in(dir: &Path) -> Vec<Input> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).ok().map(|m| m.len());
            Input::path(p, len)
        })
        .collect()
}

fn dest_bytes() -> TopQuery {
    TopQuery {
        key: Key::Dimension(crate::Dimension::Dest),
        kind: Kind::To,
        metric: Metric::Bytes,
        filter: Filter::default(),
        n: usize::MAX,
    }
}

fn run_top(
    inputs: &[Input],
    options: &ScanOptions,
    query: &TopQuery,
) -> (BTreeMap<String, Counts>, Vec<Problem>) {
    let problems = Mutex::new(Vec::new());
    let read = AtomicU64::new(0);
    let outcome = scan(inputs, options, || TopTally::new(query), &read, &|p| {
        problems.lock().expect("lock").push(p);
    });
    let counts = outcome
        .tally
        .counts()
        .iter()
        .map(|(k, c)| (k.clone(), *c))
        .collect();
    (counts, problems.into_inner().expect("lock"))
}

/// Archive files in every compression, `to` files listed before the `from` files they need,
/// give the brute force's counts and joined bytes.
#[test]
fn archive_files_of_every_compression_give_the_brute_force_answer() {
    let (_, from, to) = generated(6_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let (from_a, from_b) = from.split_at(from.len() / 2);
    let (to_a, to_b) = to.split_at(to.len() / 3);
    write_bz2(&dir.path().join("from-1.json.bz2"), &[from_a, from_b]); // multistream
    write_gz(&dir.path().join("to-1.json.gz"), to_a);
    write_plain(&dir.path().join("to-2.json"), to_b);
    let expected = brute_force(&from, &to);
    for threads in [1, 3] {
        let (counts, problems) = run_top(
            &inputs_in(dir.path()),
            &options(threads, 1 << 20),
            &dest_bytes(),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(counts, expected, "{threads} threads");
    }
}

/// A bzip2 file whose streams cut lines anywhere (the archive's blocks are cut by size), its
/// last line without a line end, read in runs of streams on several threads, counts what the
/// brute force does.
#[test]
fn bzip2_streams_read_in_parallel_join_the_lines_they_cut() {
    let (_, from, to) = generated(6_000);
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, lines) in [("from-1.json.bz2", &from), ("to-1.json.bz2", &to)] {
        let text = lines.join("\n"); // no line end after the last line
        let mut file = File::create(dir.path().join(name)).expect("create");
        for piece in text.as_bytes().chunks(4_999) {
            let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            encoder.write_all(piece).expect("in memory");
            file.write_all(&encoder.finish().expect("in memory"))
                .expect("write");
        }
    }
    let expected = brute_force(&from, &to);
    // Ranges of 64 bytes: bzip2 files of 8 bytes or more are cut into runs of streams.
    for (threads, range) in [(1, 1 << 30), (2, 64), (3, 64)] {
        let (counts, problems) = run_top(
            &inputs_in(dir.path()),
            &options(threads, range),
            &dest_bytes(),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(counts, expected, "{threads} threads");
    }
    let (units, _) = plan(&inputs_in(dir.path()), dest_bytes_needs(), &options(2, 64));
    assert!(units.iter().filter(|u| u.streams).count() > 4, "{units:?}");
}

fn dest_bytes_needs() -> Needs {
    TopTally::new(&dest_bytes()).needs()
}

/// The raw log, whole or cut into tiny ranges on many threads, counts what the archive does.
#[test]
fn raw_syslog_in_ranges_counts_what_the_archive_counts() {
    let (text, from, to) = generated(6_000);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("mail.log"), &text).expect("write");
    let expected = brute_force(&from, &to);
    for (threads, range) in [(1, 1 << 30), (4, 1000), (3, 4097)] {
        let (counts, problems) = run_top(
            &inputs_in(dir.path()),
            &options(threads, range),
            &dest_bytes(),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(counts, expected, "{threads} threads, ranges of {range}");
    }
}

/// A truncated bzip2 file and a broken JSON line are named; everything else still counts.
#[test]
fn broken_inputs_are_named_and_the_rest_counts() {
    let (_, from, to) = generated(3_000);
    let dir = tempfile::tempdir().expect("tempdir");
    write_bz2(&dir.path().join("to-1.json.bz2"), &[&to]);
    let mut broken = to.clone();
    broken.insert(2, "{\"dest\":\"cut".to_owned());
    write_plain(&dir.path().join("to-2.json"), &broken);
    write_bz2(&dir.path().join("to-3.json.bz2"), &[&to]);
    let whole = std::fs::read(dir.path().join("to-3.json.bz2")).expect("read");
    std::fs::write(dir.path().join("to-3.json.bz2"), &whole[..whole.len() / 2]).expect("write");
    write_bz2(&dir.path().join("from-1.json.bz2"), &[&from]);
    let query = TopQuery {
        metric: Metric::Count,
        ..dest_bytes()
    };
    let (counts, problems) = run_top(&inputs_in(dir.path()), &options(2, 1 << 20), &query);
    assert_eq!(problems.len(), 2, "{problems:?}");
    let bad_line = problems
        .iter()
        .find(|p| p.input.ends_with("to-2.json"))
        .expect("to-2");
    assert_eq!(
        bad_line.message,
        "line 3: not a JSON record: expected a closing quote at byte 13"
    );
    let truncated = problems
        .iter()
        .find(|p| p.input.ends_with("to-3.json.bz2"))
        .expect("to-3");
    assert!(
        truncated.message.contains("records are counted"),
        "{}",
        truncated.message
    );
    let total: u64 = counts.values().map(|c| c.count).sum();
    let whole_files = 2 * to.len() as u64;
    assert!(
        total > whole_files && total < 3 * to.len() as u64,
        "{total}"
    );
}

/// A count of `to` records never opens a `from` file; a report reads both and joins.
#[test]
fn files_of_a_kind_the_query_does_not_need_are_not_opened() {
    let (_, from, to) = generated(2_000);
    let dir = tempfile::tempdir().expect("tempdir");
    write_plain(&dir.path().join("to-1.json"), &to);
    std::fs::write(dir.path().join("from-1.json"), "not even JSON").expect("write");
    let query = TopQuery {
        metric: Metric::Count,
        ..dest_bytes()
    };
    let inputs = inputs_in(dir.path());
    let read = AtomicU64::new(0);
    let outcome = scan(
        &inputs,
        &options(2, 1 << 20),
        || TopTally::new(&query),
        &read,
        &|p| panic!("{p:?}"),
    );
    assert_eq!((outcome.inputs_read, outcome.inputs_skipped), (1, 1));
    write_plain(&dir.path().join("from-1.json"), &from);
    let report = ReportQuery {
        filter: Filter::default(),
        n: 5,
    };
    let outcome = scan(
        &inputs_in(dir.path()),
        &options(2, 1 << 20),
        || ReportTally::new(&report),
        &read,
        &|p| panic!("{p:?}"),
    );
    let answer = outcome.tally.answer();
    assert_eq!(answer.totals.received, from.len() as u64);
    assert_eq!(answer.totals.rejected, None);
    let expected = brute_force(&from, &to);
    let top = expected.values().map(|c| c.count).max().unwrap_or(0);
    assert_eq!(
        answer.top_recipients_by_count.first().map(|r| r.count),
        Some(top)
    );
}
