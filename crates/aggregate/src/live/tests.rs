//! Tests of the live top-N against a brute-force count over the same parsed records.
//!
//! This module owns building records from real-looking sendmail lines and the brute-force
//! reference; it never reaches into the counters' internals (only the public API).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use maillog_parse::{Parsed, Parser, TimeContext, YearPolicy, Zone};

use super::*;

/// 2025-07-12T00:00:00Z.
const JUL_12: i64 = 1_752_278_400;

fn parser() -> Parser {
    Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2025)), &[])
}

/// A BSD stamp for `at` (Unix seconds, UTC, in July 2025 from the 12th on).
fn stamp(at: i64) -> String {
    let since = at - JUL_12;
    let (day, second) = (12 + since.div_euclid(86_400), since.rem_euclid(86_400));
    format!(
        "Jul {day} {:02}:{:02}:{:02}",
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

fn from_line(at: i64, host: &str, qid: usize, src: &str, relay: Option<&str>) -> String {
    let relay = relay.map_or(String::new(), |r| format!(", relay={r} [10.0.0.1]"));
    format!(
        "{} {host} sendmail[123]: p6CK{qid:08}: from=<{src}>, size=1234, class=0, nrcpts=1, \
         msgid=<x@y>, proto=ESMTP, daemon=MTA{relay}",
        stamp(at)
    )
}

fn to_line(at: i64, host: &str, qid: usize, dests: &[String]) -> String {
    let list: Vec<String> = dests.iter().map(|d| format!("<{d}>")).collect();
    format!(
        "{} {host} sendmail[124]: p6CK{qid:08}: to={}, delay=00:00:01, xdelay=00:00:01, \
         mailer=esmtp, pri=120, relay=mx.d.org. [10.0.0.2], dsn=2.0.0, stat=Sent (ok)",
        stamp(at),
        list.join(",")
    )
}

/// What the live counters were fed, kept for the brute force: (time, dimension, key).
#[derive(Default)]
struct Reference {
    counted: Vec<(i64, Dimension, String)>,
    newest: Option<i64>,
}

/// Parses `lines` and adds every record to `top` and to `reference`.
fn feed(top: &mut LiveTop, reference: &mut Reference, lines: &[String]) {
    let parser = parser();
    for line in lines {
        let Parsed::Event(event) = parser.parse(line) else {
            panic!("no record: {line}")
        };
        for record in event.records() {
            top.add(&record);
            let at = record.event.at.unix_seconds();
            reference.newest = reference.newest.max(Some(at));
            for dimension in Dimension::ALL {
                if let Some(key) = dimension.key(&record) {
                    reference.counted.push((at, dimension, key.into_owned()));
                }
            }
        }
    }
}

impl Reference {
    /// The exact answer: the window's span computed from the newest time, every key counted.
    fn answer(&self, by: Dimension, n: usize, window: LiveWindow) -> TopAnswer {
        let (from, until) = self.newest.map_or((0, 0), |newest| {
            let width = window.bucket_seconds();
            let until = (newest.div_euclid(width) + 1) * width;
            (until - window.span_seconds(), until)
        });
        let mut counts: HashMap<&str, u64> = HashMap::new();
        let mut records = 0;
        for (at, dimension, key) in &self.counted {
            if *dimension == by && (from..until).contains(at) {
                *counts.entry(key).or_default() += 1;
                records += 1;
            }
        }
        let mut keys: Vec<TopEntry> = counts
            .into_iter()
            .map(|(key, count)| TopEntry {
                key: key.to_owned(),
                count,
                error: 0,
            })
            .collect();
        keys.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        keys.truncate(n);
        TopAnswer {
            by: by.as_str(),
            window: window.as_str(),
            from,
            until,
            records,
            approximate: false,
            keys,
        }
    }

    fn true_count(&self, by: Dimension, window: LiveWindow, key: &str) -> u64 {
        let answer = self.answer(by, usize::MAX, window);
        answer
            .keys
            .iter()
            .find(|entry| entry.key == key)
            .map_or(0, |entry| entry.count)
    }
}

/// A small deterministic generator (a 64-bit LCG; the high bits are good enough here).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn pick<'s>(&mut self, choices: &[&'s str]) -> &'s str {
        choices[self.below(choices.len() as u64) as usize]
    }
}

/// `count` events over about `seconds`, mostly in order, some late by up to 20 minutes.
fn generated_lines(count: usize, start: i64, seconds: i64) -> Vec<String> {
    let mut rng = Lcg(42);
    let hosts = ["mx1", "mx2", "mx3", "mail5"];
    let users = ["info", "bob", "alice", "root", "noreply"];
    let domains = [
        "example.com",
        "Example.COM",
        "b.com",
        "gmail.com",
        "d.org",
        "D.Org",
    ];
    let relays = [
        "app03.example.com",
        "mail.b.com",
        "[127.0.0.1]",
        "localhost",
    ];
    (0..count)
        .map(|i| {
            let mut at = start + seconds * i as i64 / count as i64;
            if rng.below(10) == 0 {
                at -= rng.below(1200) as i64;
            }
            let host = rng.pick(&hosts);
            if rng.below(2) == 0 {
                let src = match rng.below(8) {
                    0 => String::new(),
                    1 => rng.pick(&users).to_owned(),
                    _ => format!("{}@{}", rng.pick(&users), rng.pick(&domains)),
                };
                let relay = (rng.below(6) != 0).then(|| rng.pick(&relays));
                from_line(at, host, i, &src, relay)
            } else {
                let dests: Vec<String> = (0..=rng.below(3))
                    .map(|_| format!("{}@{}", rng.pick(&users), rng.pick(&domains)))
                    .collect();
                to_line(at, host, i, &dests)
            }
        })
        .collect()
}

fn assert_exact(top: &LiveTop, reference: &Reference) {
    for by in Dimension::ALL {
        for window in LiveWindow::ALL {
            for n in [usize::MAX, 3, 1, 0] {
                assert_eq!(
                    top.top(by, n, window),
                    reference.answer(by, n, window),
                    "by={by} window={window} n={n}"
                );
            }
        }
    }
}

#[test]
fn exact_counts_match_a_brute_force_count_as_time_slides() {
    // About 700 records over 3 hours, checked after every chunk: the windows slide and late
    // records fall in or out of them.
    let lines = generated_lines(400, JUL_12 + 10 * 3600, 3 * 3600);
    let mut top = LiveTop::new(1000);
    let mut reference = Reference::default();
    for chunk in lines.chunks(37) {
        feed(&mut top, &mut reference, chunk);
        assert_exact(&top, &reference);
    }
    assert!(reference.counted.len() > 600);
    // The 5-minute window really excludes most of them, the day includes them all.
    let five = top.top(Dimension::Dest, usize::MAX, LiveWindow::FiveMinutes);
    let day = top.top(Dimension::Dest, usize::MAX, LiveWindow::Day);
    assert!(five.records > 0 && five.records * 10 < day.records);
    assert_eq!(
        day.records,
        reference
            .counted
            .iter()
            .filter(|(_, d, _)| *d == Dimension::Dest)
            .count() as u64
    );
    assert!(!day.approximate);
}

#[test]
fn an_empty_top_answers_nothing() {
    let top = LiveTop::new(10);
    let answer = top.top(Dimension::Src, 10, LiveWindow::Hour);
    assert_eq!(
        answer,
        Reference::default().answer(Dimension::Src, 10, LiveWindow::Hour)
    );
    assert_eq!((answer.from, answer.until, answer.records), (0, 0, 0));
    assert_eq!(top.approx_memory_keys(), 0);
    assert_eq!(top.newest(), None);
}

#[test]
fn old_records_leave_the_short_windows_first() {
    let mut top = LiveTop::new(100);
    let mut reference = Reference::default();
    let t0 = JUL_12 + 20 * 3600 + 30 * 60; // 20:30:00
    let src = |top: &LiveTop, window| top.top(Dimension::Src, 10, window);
    feed(
        &mut top,
        &mut reference,
        &[from_line(t0, "mx1", 1, "old@a.com", None)],
    );
    // 50 minutes later.
    feed(
        &mut top,
        &mut reference,
        &[from_line(t0 + 3000, "mx1", 2, "new@a.com", None)],
    );
    let five = src(&top, LiveWindow::FiveMinutes);
    assert_eq!((five.from, five.until), (t0 + 46 * 60, t0 + 51 * 60));
    assert_eq!(five.keys.len(), 1);
    assert_eq!(five.keys[0].key, "new@a.com");
    let hour = src(&top, LiveWindow::Hour);
    assert_eq!((hour.from, hour.until), (t0 - 5 * 60, t0 + 55 * 60));
    assert_eq!(hour.records, 2);
    // A late record 10 minutes old: too old for 5m, counted in 1h and 24h.
    feed(
        &mut top,
        &mut reference,
        &[from_line(t0 + 2400, "mx1", 3, "late@a.com", None)],
    );
    assert_eq!(src(&top, LiveWindow::FiveMinutes).records, 1);
    assert_eq!(src(&top, LiveWindow::Hour).records, 3);
    assert_eq!(src(&top, LiveWindow::Day).records, 3);
    // 90 minutes after the first: it left the hour, stays in the day.
    feed(
        &mut top,
        &mut reference,
        &[from_line(t0 + 5400, "mx1", 4, "newer@a.com", None)],
    );
    let hour = src(&top, LiveWindow::Hour);
    assert!(!hour.keys.iter().any(|e| e.key == "old@a.com"));
    assert_eq!(hour.records, 3);
    let day = src(&top, LiveWindow::Day);
    assert_eq!(day.records, 4);
    assert_exact(&top, &reference);
    // Two days on: everything before is forgotten, memory included.
    let keys_before = top.approx_memory_keys();
    feed(
        &mut top,
        &mut reference,
        &[from_line(t0 + 2 * 86_400, "mx2", 5, "x@b.com", None)],
    );
    assert!(top.approx_memory_keys() < keys_before);
    // 3 rings × src, src_domain, mailserver (no relay on these lines).
    assert_eq!(top.approx_memory_keys(), 9);
    assert_eq!(src(&top, LiveWindow::Day).records, 1);
    assert_eq!(top.newest(), Some(t0 + 2 * 86_400));
    assert_exact(&top, &reference);
}

#[test]
fn ties_are_broken_by_key_and_n_cuts() {
    let mut top = LiveTop::new(100);
    let mut reference = Reference::default();
    let at = JUL_12 + 3600;
    let dests = |list: &[&str]| -> Vec<String> { list.iter().map(|d| d.to_string()).collect() };
    feed(
        &mut top,
        &mut reference,
        &[
            to_line(at, "mx1", 1, &dests(&["c@x.org", "b@x.org", "d@y.org"])),
            to_line(at + 1, "mx1", 2, &dests(&["b@x.org", "a@z.org", "c@x.org"])),
            to_line(at + 2, "mx1", 3, &dests(&["e@z.org", "a@z.org"])),
        ],
    );
    let keys = |n| -> Vec<(String, u64)> {
        top.top(Dimension::Dest, n, LiveWindow::FiveMinutes)
            .keys
            .into_iter()
            .map(|e| (e.key, e.count))
            .collect()
    };
    let expected: Vec<(String, u64)> = [
        ("a@z.org", 2),
        ("b@x.org", 2),
        ("c@x.org", 2),
        ("d@y.org", 1),
        ("e@z.org", 1),
    ]
    .map(|(k, c)| (k.to_owned(), c))
    .into();
    assert_eq!(keys(10), expected);
    assert_eq!(keys(2), expected[..2]);
    assert_eq!(keys(4), expected[..4]);
    assert!(keys(0).is_empty());
    let none = top.top(Dimension::Dest, 0, LiveWindow::FiveMinutes);
    assert_eq!(none.records, 8);
    let domains = top.top(Dimension::DestDomain, 10, LiveWindow::Hour);
    let domains: Vec<_> = domains
        .keys
        .iter()
        .map(|e| (e.key.as_str(), e.count))
        .collect();
    assert_eq!(domains, [("x.org", 4), ("z.org", 3), ("y.org", 1)]);
    assert_exact(&top, &reference);
}

#[test]
fn null_sender_and_domains_as_counted() {
    let mut top = LiveTop::new(100);
    let mut reference = Reference::default();
    let at = JUL_12;
    feed(
        &mut top,
        &mut reference,
        &[
            from_line(at, "mx1", 1, "", None),
            from_line(at, "mx1", 2, "", Some("mail.b.com")),
            from_line(at, "mx1", 3, "Bob@Example.COM", Some("mail.b.com")),
            from_line(at, "mx2", 4, "bob@example.com", None),
            to_line(at, "mx1", 5, &["Ann@D.ORG".to_owned(), "root".to_owned()]),
        ],
    );
    let keys = |by| -> Vec<(String, u64)> {
        top.top(by, 10, LiveWindow::Day)
            .keys
            .into_iter()
            .map(|e| (e.key, e.count))
            .collect()
    };
    let owned = |list: &[(&str, u64)]| -> Vec<(String, u64)> {
        list.iter().map(|(k, c)| (k.to_string(), *c)).collect()
    };
    assert_eq!(
        keys(Dimension::Src),
        owned(&[("<>", 2), ("Bob@Example.COM", 1), ("bob@example.com", 1)])
    );
    assert_eq!(keys(Dimension::SrcDomain), owned(&[("example.com", 2)]));
    assert_eq!(
        top.top(Dimension::SrcDomain, 10, LiveWindow::Day).records,
        2
    );
    assert_eq!(keys(Dimension::DestDomain), owned(&[("d.org", 1)]));
    assert_eq!(
        keys(Dimension::Dest),
        owned(&[("Ann@D.ORG", 1), ("root", 1)])
    );
    assert_eq!(keys(Dimension::Relay), owned(&[("mail.b.com", 2)]));
    assert_eq!(
        keys(Dimension::Mailserver),
        owned(&[("mx1", 3), ("mx2", 1)])
    );
    assert_exact(&top, &reference);
}

#[test]
fn beyond_the_cap_the_heavy_hitter_leads_within_its_error() {
    let max_keys = 20;
    let mut top = LiveTop::new(max_keys);
    let mut reference = Reference::default();
    let start = JUL_12 + 6 * 3600;
    // 10 × max_keys one-off senders and a heavy one every fourth record, over 4 minutes.
    let mut lines = Vec::new();
    let mut one_off = 0;
    for i in 0..10 * max_keys * 4 / 3 {
        let at = start + (i * 240 / (10 * max_keys * 4 / 3)) as i64;
        let src = if i % 4 == 3 {
            "heavy@big.com".to_owned()
        } else {
            one_off += 1;
            format!("user{one_off}@host{one_off}.net")
        };
        lines.push(from_line(
            at,
            ["mx1", "mx2"][i % 2],
            i,
            &src,
            Some("relay.big.com"),
        ));
    }
    assert_eq!(one_off, 10 * max_keys);
    feed(&mut top, &mut reference, &lines);
    let heavy = reference.true_count(Dimension::Src, LiveWindow::Hour, "heavy@big.com");
    assert_eq!(heavy, 66);
    for window in LiveWindow::ALL {
        for by in [Dimension::Src, Dimension::SrcDomain] {
            let answer = top.top(by, usize::MAX, window);
            let exact = reference.answer(by, usize::MAX, window);
            assert!(answer.approximate, "{by} {window}");
            assert_eq!(answer.records, exact.records, "{by} {window}");
            assert_eq!((answer.from, answer.until), (exact.from, exact.until));
            for entry in &answer.keys {
                let truth = reference.true_count(by, window, &entry.key);
                assert!(
                    entry.count - entry.error <= truth && truth <= entry.count,
                    "{by} {window} {entry:?}: true count {truth}"
                );
            }
            if by == Dimension::Src {
                let first = &answer.keys[0];
                assert_eq!(first.key, "heavy@big.com", "{window}: {answer:?}");
                // The heavy key was never pruned: exact, as is the count the window holds.
                assert_eq!(first.count, reference.true_count(by, window, &first.key));
                assert!(answer.keys[1..].iter().all(|e| e.error > 0));
            }
        }
        // Dimensions with few keys stay exact.
        for by in [Dimension::Mailserver, Dimension::Relay] {
            assert_eq!(top.top(by, 10, window), reference.answer(by, 10, window));
        }
    }
    let held = top.approx_memory_keys();
    assert!(held <= 492 * max_keys, "{held}");
    // Src and src_domain: fewer than 2 × max_keys per bucket, in the 4 + 1 + 1 buckets that
    // hold records; mailserver and relay: 2 + 1 keys in each.
    assert!(held < 6 * 2 * 2 * max_keys + 6 * 3, "{held}");
}

#[test]
fn answers_serialize_as_the_service_serves_them() {
    let mut top = LiveTop::new(1);
    let mut reference = Reference::default();
    let at = JUL_12 + 60;
    feed(
        &mut top,
        &mut reference,
        &[
            from_line(at, "mx1", 1, "a@x.com", None),
            from_line(at, "mx1", 2, "a@x.com", None),
            from_line(at, "mx2", 3, "b@x.com", None),
        ],
    );
    let exact =
        serde_json::to_string(&top.top(Dimension::SrcDomain, 5, LiveWindow::FiveMinutes)).unwrap();
    assert_eq!(
        exact,
        format!(
            r#"{{"by":"src_domain","window":"5m","from":{},"until":{},"records":3,"approximate":false,"keys":[{{"key":"x.com","count":3}}]}}"#,
            JUL_12 - 180,
            JUL_12 + 120
        )
    );
    // max_keys = 1: the second distinct host prunes the bucket (mx1 stays, floor 1).
    let approximate = top.top(Dimension::Mailserver, 5, LiveWindow::Day);
    assert!(approximate.approximate);
    let json = serde_json::to_string(&approximate).unwrap();
    assert!(
        json.ends_with(r#""approximate":true,"keys":[{"key":"mx1","count":2}]}"#),
        "{json}"
    );
    // A key seen after the prune starts at the floor: mx3 comes in at 2 (error 1) and ties
    // with mx1, which stays (the smaller key); the floor becomes 2; mx3 again comes in at 3
    // (error 2) and mx1 is dropped. mx3's true count, 2, is within [3 - 2, 3].
    for qid in [4, 5] {
        feed(
            &mut top,
            &mut reference,
            &[from_line(at, "mx3", qid, "c@x.com", None)],
        );
    }
    let json = serde_json::to_string(&top.top(Dimension::Mailserver, 5, LiveWindow::Day)).unwrap();
    assert!(
        json.ends_with(r#"[{"key":"mx3","count":3,"error":2}]}"#),
        "{json}"
    );
}

#[test]
fn window_names_round_trip_and_errors_list_them() {
    for window in LiveWindow::ALL {
        assert_eq!(window.as_str().parse::<LiveWindow>(), Ok(window));
        assert_eq!(window.to_string(), window.as_str());
        assert_eq!(LiveWindow::ALL[window.index()], window);
    }
    assert_eq!(LiveWindow::Hour.span_seconds(), 3600);
    assert_eq!(LiveWindow::Day.span_seconds(), 86_400);
    assert_eq!(LiveWindow::FiveMinutes.span_seconds(), 300);
    let error = "1d".parse::<LiveWindow>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown window \"1d\": expected one of 5m, 1h, 24h"
    );
    assert_eq!(LiveTop::new(0).max_keys(), 1);
}
