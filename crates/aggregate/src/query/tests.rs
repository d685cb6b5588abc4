use super::*;
use crate::json::Scanner;
use crate::names::Carrier;
use crate::range::TimeSpec;
use maillog_parse::{Parsed, Parser, TimeContext, YearPolicy, Zone};

fn value(key: &str, line: &str) -> Option<String> {
    let mut scanner = Scanner::default();
    let record = scanner.scan(line.as_bytes(), None).expect("JSON");
    key.parse::<Key>()
        .expect("key")
        .value(&record)
        .map(Cow::into_owned)
}

#[test]
fn keys_are_normalized_as_queries_md_says() {
    let from = r#"{"src":"","mailserver":"mail5","relay":"app03.example.com.","size":"12"}"#;
    assert_eq!(value("src", from).as_deref(), Some("<>"));
    assert_eq!(value("src_domain", from), None);
    assert_eq!(value("mailserver", from).as_deref(), Some("mail5"));
    assert_eq!(value("relay", from).as_deref(), Some("app03.example.com."));
    assert_eq!(value("size", from).as_deref(), Some("12"));
    let to = r#"{"dest":"Bob@Example.COM","dsn":"2.0.0","stat":"Sent (ok)"}"#;
    assert_eq!(value("dest", to).as_deref(), Some("Bob@Example.COM"));
    assert_eq!(value("dest_domain", to).as_deref(), Some("example.com"));
    assert_eq!(value("dest_domain", r#"{"dest":"root"}"#), None);
    assert_eq!(value("dest_domain", r#"{"dest":"root@"}"#), None);
    assert_eq!(
        value("dest_domain", r#"{"dest":"a@b@C"}"#).as_deref(),
        Some("c")
    );
    assert_eq!(value("status", to).as_deref(), Some("Sent"));
}

#[test]
fn status_goes_by_dsn_then_stat() {
    for (fields, expected) in [
        (r#""dsn":"4.4.1","stat":"Sent""#, Some("Deferred")),
        (r#""dsn":"5.1.1","stat":"User unknown""#, Some("Bounced")),
        (r#""dsn":"2.0.0""#, Some("Sent")),
        (r#""stat":"Deferred: Connection refused""#, Some("Deferred")),
        (r#""stat":"Sent (ok)""#, Some("Sent")),
        (r#""stat":"QUEUED""#, Some("Queued")),
        (r#""stat":"User unknown""#, Some("Other")),
        (r#""dsn":"x","stat":"queued""#, Some("Queued")),
        (r#""dest":"a""#, None),
    ] {
        let line = format!("{{{fields}}}");
        assert_eq!(value("status", &line).as_deref(), expected, "{line}");
    }
}

#[test]
fn default_kinds_are_the_kind_that_carries_the_key() {
    let kind = |k: &str| k.parse::<Key>().expect("key").default_kind();
    for k in [
        "src",
        "src_domain",
        "mailserver",
        "relay",
        "size",
        "nrcpts",
        "proto",
        "daemon",
        "msgid",
        "sendmailid",
    ] {
        assert_eq!(kind(k), Kind::From, "{k}");
    }
    for k in [
        "dest",
        "dest_domain",
        "status",
        "mailer",
        "pri",
        "ntries",
        "delay",
        "xdelay",
        "stat",
        "dsn",
    ] {
        assert_eq!(kind(k), Kind::To, "{k}");
    }
}

#[test]
fn only_known_names_are_keys() {
    for name in crate::names::known() {
        let key = name.parse::<Key>().expect("a known name");
        assert_eq!(key.name(), name);
        assert_eq!(key.to_string(), name);
    }
    for name in ["a b", "", "dset", "DEST", "nosuch", "kind"] {
        assert!(name.parse::<Key>().is_err(), "{name}");
    }
    let error = "stauts".parse::<Key>().expect_err("a typo");
    assert_eq!(error.suggestion, Some("status"));
    let error = "stauts=Sent".parse::<Where>().expect_err("a typo");
    assert!(error.contains("did you mean `status`?"), "{error}");
}

#[test]
fn a_key_the_counted_kind_never_carries_is_an_error() {
    let key = |k: &str| k.parse::<Key>().expect("key");
    let wheres =
        |w: &[&str]| -> Vec<Where> { w.iter().map(|w| w.parse().expect("where")).collect() };
    assert_eq!(check_kinds(key("mailer"), Kind::To, &[]), Ok(()));
    assert_eq!(
        check_kinds(
            key("mailserver"),
            Kind::To,
            &wheres(&["mailer=esmtp", "pid=1"])
        ),
        Ok(())
    );
    let error = check_kinds(key("mailer"), Kind::From, &[]).expect_err("mailer of from");
    assert_eq!((error.option, error.carrier), ("--by", Carrier::To));
    let error = check_kinds(key("src"), Kind::From, &wheres(&["relay=x", "dsn=5.1.1"]))
        .expect_err("dsn of from");
    assert_eq!(error.option, "--where");
    assert_eq!(error.key, key("dsn"));
    assert!(
        error
            .to_string()
            .starts_with("--where dsn: `dsn` is on to records, and this query counts from records"),
        "{error}"
    );
}

/// A time as typed, read in UTC.
fn utc(text: &str) -> i64 {
    let spec: TimeSpec = text.parse().expect("time");
    spec.resolve(&Zone::Utc, chrono::Utc::now())
}

#[test]
fn filters_take_wheres_and_a_time_range() {
    let mut scanner = Scanner::default();
    let line = r#"{"dest":"a@gmail.com","dsn":"4.0.0","ts":"2011-07-13T00:30:00+02:00"}"#;
    let record = scanner.scan(line.as_bytes(), None).expect("JSON");
    let filter = |wheres: &[&str], since: Option<&str>, until: Option<&str>| Filter {
        wheres: wheres.iter().map(|w| w.parse().expect("where")).collect(),
        range: Range {
            since: since.map(utc),
            until: until.map(utc),
        },
    };
    assert!(filter(&["status=Deferred", "dest_domain=gmail.com"], None, None).accepts(&record));
    assert!(!filter(&["status=Sent"], None, None).accepts(&record));
    // A known field the record lacks: no match.
    assert!(!filter(&["mailer=esmtp"], None, None).accepts(&record));
    // 2011-07-12T22:30:00Z
    assert!(filter(&[], Some("2011-07-12 22:30"), Some("2011-07-12T22:30:01Z")).accepts(&record));
    assert!(!filter(&[], Some("2011-07-12T22:30:01"), None).accepts(&record));
    assert!(!filter(&[], None, Some("2011-07-12T22:30:00Z")).accepts(&record));
    let untimed = scanner.scan(br#"{"dest":"a"}"#, None).expect("JSON");
    assert!(!filter(&[], Some("2011-07-12"), None).accepts(&untimed));
    assert!("novalue".parse::<Where>().is_err());
}

#[test]
fn delays_are_seconds() {
    assert_eq!(delay_seconds("00:00:02"), Some(2));
    assert_eq!(delay_seconds("1+00:00:15"), Some(86_415));
    assert_eq!(delay_seconds("12:34:56"), Some(45_296));
    assert_eq!(delay_seconds("garbage"), None);
    assert_eq!(delay_seconds("1:2:3:4"), None);
}

/// The archive query and the live top count a parsed record under the same key.
#[test]
fn keys_agree_with_the_live_dimensions() {
    let parser = Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2011)), &[]);
    let lines = [
        "Jul 12 20:53:00 mail5 sendmail[1]: p6D0r0u1006229: from=<Info@Example.COM>, size=5, relay=app03 [10.1.2.3]",
        "Jul 12 20:53:00 mail5 sendmail[1]: p6D0r0u1006229: from=<>, size=5",
        "Jul 12 20:53:00 mail2 sendmail[2]: p6D0qwvm006395: to=<a@Gmail.com>,root, delay=00:00:02, dsn=2.0.0, stat=Sent",
    ];
    for line in lines {
        let Parsed::Event(event) = parser.parse(line) else {
            panic!("not a record: {line}");
        };
        for record in event.records() {
            for dimension in Dimension::ALL {
                if dimension.kind() != record.kind() {
                    continue;
                }
                assert_eq!(
                    Key::Dimension(dimension).value(&record),
                    dimension.key(&record),
                    "{dimension} of {line}"
                );
            }
        }
    }
}

#[test]
fn numbers_are_digits_only() {
    let size_of = |line: &str| {
        let mut scanner = Scanner::default();
        size(&scanner.scan(line.as_bytes(), None).expect("JSON"))
    };
    assert_eq!(size_of(r#"{"size":"57395"}"#), 57_395);
    for bad in [
        "+5",
        " 5",
        "-5",
        "5k",
        "",
        "9223372036854775808",
        "18446744073709551616",
    ] {
        assert_eq!(size_of(&format!(r#"{{"size":"{bad}"}}"#)), 0, "{bad:?}");
    }
    assert_eq!(
        size_of(r#"{"size":"9223372036854775807"}"#),
        i64::MAX as u64
    );
    assert_eq!(delay_seconds("00:00:+5"), None);
    assert_eq!(delay_seconds("+1+00:00:05"), None);
    assert_eq!(delay_seconds("99999999999999999+00:00:00"), None);
}

#[test]
fn time_ranges_compare_to_the_microsecond() {
    let mut scanner = Scanner::default();
    let record = scanner
        .scan(br#"{"ts":"2026-01-01T07:00:00.25Z"}"#, None)
        .expect("JSON");
    let within = |since: &str, until: &str| {
        Filter {
            wheres: Vec::new(),
            range: Range {
                since: Some(utc(since)),
                until: Some(utc(until)),
            },
        }
        .accepts(&record)
    };
    assert!(within(
        "2026-01-01T07:00:00.25Z",
        "2026-01-01T07:00:00.250001Z"
    ));
    assert!(!within("2026-01-01T07:00:00.5Z", "2026-01-02"));
    assert!(!within("2026-01-01", "2026-01-01 07:00:00.25"));
    assert!(within("2026-01-01", "2026-01-01 07:00:00.26"));
}

/// A parsed record's time keeps the logged fraction, as its `ts` does.
#[test]
fn parsed_records_keep_their_fraction() {
    let parser = Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2011)), &[]);
    let line =
        "2026-01-01T07:00:00.250000+00:00 mail5 sendmail[1]: p6D0r0u1006229: from=<a@b>, size=5";
    let Parsed::Event(event) = parser.parse(line) else {
        panic!("not a record");
    };
    let record = event.records().next().expect("a record");
    assert_eq!(record.unix_micros(), Some(utc("2026-01-01T07:00:00.25Z")));
}
