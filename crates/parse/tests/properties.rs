//! Property tests: the parser is total on any bytes, and every generated line round-trips the
//! fields the generator put in it.

// A test that cannot read its fixture should fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use maillog_loggen::{Config, ExpectedRecord, Generator, HeaderStyle};
use maillog_parse::{FieldsMode, Parsed, Parser, TimeContext, YearPolicy, Zone, decode};
use proptest::prelude::*;
use serde_json::Value;

fn parser(year: YearPolicy) -> Parser {
    Parser::new(TimeContext::new(Zone::Utc, year), &[])
}

/// Parses `bytes` and checks what must hold of any record: valid JSON objects of strings,
/// `stat` the end of the line, as many records as the event says.
fn check_any(parser: &Parser, bytes: &[u8]) {
    let decoded = decode(bytes);
    if let Parsed::Event(event) = parser.parse(&decoded.text) {
        let mut count = 0;
        for record in event.records() {
            count += 1;
            for mode in [FieldsMode::All, FieldsMode::Original] {
                let json = record.to_json(mode);
                let value: Value = serde_json::from_str(&json).expect("valid JSON");
                let object = value.as_object().expect("an object");
                assert!(object.values().all(Value::is_string), "{json}");
                if let Some(stat) = object.get("stat") {
                    assert!(decoded.text.ends_with(stat.as_str().unwrap()));
                }
            }
        }
        assert!(count > 0);
        assert_eq!(count, event.record_count());
    }
}

/// Lines that look almost like sendmail lines: a real header and a message of random pieces,
/// which reaches far deeper into the parser than uniform bytes do.
fn near_miss_line() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just("Jul 12 20:53:00 mail5 sendmail[6229]: "),
        Just("2024-06-19T05:25:41.855197-07:00 h sm-mta[1]: "),
        Just("<22>1 2024-03-01T10:00:00Z mx1 sm-mta 4711 - - "),
        Just("Feb 29 00:00:00 h sendmail: "),
    ];
    let piece = prop_oneof![
        Just("p6D0r0u1006229: "),
        Just("from="),
        Just("to="),
        Just("stat="),
        Just("relay="),
        Just(", "),
        Just(","),
        Just("<"),
        Just(">"),
        Just("("),
        Just(")"),
        Just("\""),
        Just("\\"),
        Just("["),
        Just("]"),
        Just(" "),
        Just("="),
        Just("[more]"),
        Just("a@b"),
        Just("\t"),
        Just("size=1"),
        Just("dsn=2.0.0"),
        Just("é"),
        Just("\u{0}"),
    ];
    (header, prop::collection::vec(piece, 0..40))
        .prop_map(|(h, pieces)| format!("{h}{}", pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_any(&parser(YearPolicy::Fixed(2024)), &bytes);
    }

    #[test]
    fn near_miss_lines_never_panic(line in near_miss_line()) {
        check_any(&parser(YearPolicy::Fixed(2024)), line.as_bytes());
        let reference = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        check_any(&parser(YearPolicy::Reference(reference)), line.as_bytes());
    }
}

fn ordered_fields(record: &str) -> Vec<(String, String)> {
    let value: Value = serde_json::from_str(record).unwrap();
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn expected_fields(record: &ExpectedRecord) -> Vec<(String, String)> {
    record
        .fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn generated_lines_round_trip_their_fields(
        seed in any::<u64>(),
        style in prop_oneof![Just(HeaderStyle::Bsd), Just(HeaderStyle::Iso), Just(HeaderStyle::Rfc5424)],
    ) {
        let config = Config { seed, lines: 400, style, ..Config::default() };
        // The generated log runs from 2025-12-31 23:15 for a few minutes: a reference just
        // after it gives every year-less stamp its true year, across the year end.
        let reference = chrono::DateTime::parse_from_rfc3339("2026-01-01T06:00:00Z").unwrap().to_utc();
        let parser = parser(YearPolicy::Reference(reference));
        let mut records = 0;
        for line in Generator::new(config) {
            let text = line.render(style);
            let expected = line.expected_records();
            let ours: Vec<String> = match parser.parse(&text) {
                Parsed::Event(event) => event.records().map(|r| r.to_json(FieldsMode::All)).collect(),
                Parsed::NonRecord(_) => Vec::new(),
            };
            prop_assert_eq!(ours.len(), expected.len(), "{}", text);
            for (ours, expected) in ours.iter().zip(&expected) {
                prop_assert_eq!(ordered_fields(ours), expected_fields(expected), "{}", text);
                records += 1;
            }
        }
        prop_assert!(records > 100);
    }
}
