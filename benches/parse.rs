//! Parser benchmarks over a generated 1M-line aggregated log (seed 1, 20 lines/s, 10 servers):
//!
//! - `parse_only`: bytes → decode → header, message, fields → [`Event`] (zero-copy, no JSON);
//! - `parse_json`: the same plus every record written as the archive's JSON into a reused
//!   buffer, what `maillog parse` does per line.
//!
//! Both run on one thread. Run: `cargo bench --bench parse` (`MAILLOG_BENCH_LINES` changes the
//! size). The side-by-side run against the Python baseline is `benches/parse-vs-baseline.sh`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use maillog_loggen::{Config, write_log};
use maillog_parse::{FieldsMode, Parsed, Parser, TimeContext, YearPolicy, Zone, decode};

fn generated_log() -> (Vec<u8>, u64) {
    let lines = std::env::var("MAILLOG_BENCH_LINES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let config = Config {
        lines,
        rate: 20.0,
        ..Config::default()
    };
    let mut log = Vec::with_capacity(lines as usize * 230);
    write_log(&config, &mut log).expect("writing into memory");
    (log, lines)
}

/// The lines of `log`, each with its `\n` (split with memchr, as the pipeline's readers do).
fn lines(log: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', log).map(move |end| {
        let line = &log[start..=end];
        start = end + 1;
        line
    })
}

fn parser() -> Parser {
    let reference = chrono::DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z")
        .expect("a valid time")
        .to_utc();
    Parser::new(
        TimeContext::new(Zone::Utc, YearPolicy::Reference(reference)),
        &[],
    )
}

fn bench_parser(c: &mut Criterion) {
    let (log, line_count) = generated_log();
    let parser = parser();
    let mut group = c.benchmark_group("parser");
    group.sample_size(10);
    group.throughput(Throughput::Elements(line_count));

    group.bench_function("parse_only", |b| {
        b.iter(|| {
            let mut events = 0u64;
            for line in lines(&log) {
                let decoded = decode(line);
                if let Parsed::Event(event) = parser.parse(&decoded.text) {
                    events += black_box(&event).record_count() as u64;
                }
            }
            events
        })
    });

    let mut json = Vec::with_capacity(1 << 20);
    group.bench_function("parse_json", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for line in lines(&log) {
                let decoded = decode(line);
                if let Parsed::Event(event) = parser.parse(&decoded.text) {
                    for record in event.records() {
                        record.write_json_with_kind(FieldsMode::All, &mut json);
                        json.push(b'\n');
                    }
                }
                if json.len() > 1 << 20 {
                    bytes += black_box(&json).len();
                    json.clear();
                }
            }
            bytes
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parser);
criterion_main!(benches);
