//! Fuzzes the line parser with arbitrary bytes: it must never panic, and every record it makes
//! must be one JSON object of string values, with `stat` a suffix of the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maillog_parse::{FieldsMode, Parsed, Parser, TimeContext, YearPolicy, Zone, decode};

fuzz_target!(|data: &[u8]| {
    let decoded = decode(data);
    for zone in [Zone::Utc, "Europe/Berlin".parse().expect("a zone")] {
        let parser = Parser::new(TimeContext::new(zone, YearPolicy::Fixed(2024)), &[]);
        let Parsed::Event(event) = parser.parse(&decoded.text) else {
            continue;
        };
        let mut count = 0;
        for record in event.records() {
            count += 1;
            for mode in [FieldsMode::All, FieldsMode::Original] {
                let json = record.to_json(mode);
                let value: serde_json::Value =
                    serde_json::from_str(&json).expect("records are valid JSON");
                let object = value.as_object().expect("records are objects");
                assert!(object.values().all(|v| v.is_string()), "{json}");
                if let Some(stat) = object.get("stat").and_then(|v| v.as_str()) {
                    assert!(decoded.text.ends_with(stat), "{json}");
                }
            }
        }
        assert_eq!(count, event.record_count());
        assert!(count > 0);
    }
});
