use super::*;

fn berlin() -> Zone {
    "Europe/Berlin".parse().expect("zone")
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("time").to_utc()
}

fn micros(text: &str) -> i64 {
    at(text).timestamp_micros()
}

#[test]
fn typed_times_mean_what_an_admin_means_in_the_configured_zone() {
    let zone = berlin();
    // 00:30 in Berlin on Nov 21 (CET, +01:00): still Nov 20 in UTC.
    let now = at("2026-11-20T23:30:00Z");
    let resolve = |text: &str| text.parse::<TimeSpec>().expect(text).resolve(&zone, now);
    assert_eq!(resolve("now"), micros("2026-11-20T23:30:00Z"));
    assert_eq!(resolve("today"), micros("2026-11-20T23:00:00Z"));
    assert_eq!(resolve("Yesterday"), micros("2026-11-19T23:00:00Z"));
    assert_eq!(resolve("2h"), micros("2026-11-20T21:30:00Z"));
    assert_eq!(resolve("7d"), micros("2026-11-13T23:30:00Z"));
    assert_eq!(resolve("1h30m"), micros("2026-11-20T22:00:00Z"));
    assert_eq!(resolve("2026-11-20"), micros("2026-11-19T23:00:00Z"));
    assert_eq!(resolve("2026-11-20 10:00"), micros("2026-11-20T09:00:00Z"));
    assert_eq!(
        resolve("2026-11-20T10:00:30"),
        micros("2026-11-20T09:00:30Z")
    );
    assert_eq!(resolve("08:15"), micros("2026-11-21T07:15:00Z"));
    assert_eq!(
        resolve("2026-11-20T10:00:00Z"),
        micros("2026-11-20T10:00:00Z")
    );
    assert_eq!(
        resolve("2026-11-20T10:00:00-05:00"),
        micros("2026-11-20T15:00:00Z")
    );
    // Summer time: +02:00.
    assert_eq!(resolve("2026-07-01 12:00"), micros("2026-07-01T10:00:00Z"));
}

#[test]
fn a_day_is_midnight_to_midnight_in_the_zone_daylight_saving_days_included() {
    let zone = berlin();
    let now = at("2026-11-20T23:30:00Z");
    let day = |text: &str| text.parse::<DaySpec>().expect(text).resolve(&zone, now);
    assert_eq!(
        day("today"),
        (
            micros("2026-11-20T23:00:00Z"),
            micros("2026-11-21T23:00:00Z")
        )
    );
    assert_eq!(
        day("yesterday"),
        (
            micros("2026-11-19T23:00:00Z"),
            micros("2026-11-20T23:00:00Z")
        )
    );
    // The fall-back day has 25 hours.
    assert_eq!(
        day("2025-10-26"),
        (
            micros("2025-10-25T22:00:00Z"),
            micros("2025-10-26T23:00:00Z")
        )
    );
}

#[test]
fn what_is_not_a_time_is_refused_with_the_forms() {
    for text in ["tomorow", "2h ago", "h2", "2026-13-01", "", "last week"] {
        let error = text.parse::<TimeSpec>().expect_err(text).to_string();
        assert!(error.contains("expected now, today"), "{text}: {error}");
    }
    let error = "monday".parse::<DaySpec>().expect_err("day").to_string();
    assert!(error.contains("YYYY-MM-DD"), "{error}");
}

#[test]
fn files_and_date_folders_outside_the_range_are_skipped_with_a_margin() {
    let zone = berlin();
    let day = DaySpec::Date(NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"));
    let range = day.range(&zone, Utc::now());
    // Windows named in Berlin time.
    for (name, held) in [
        ("to-2026-11-20-00-00.json.bz2", true),
        ("to-2026-11-20-23-55.part-002.json.bz2", true),
        ("from-2026-11-19-23-00.json.bz2", true), // within the margin
        ("from-2026-11-19-22-55.json.bz2", false),
        ("from-2026-11-21-01-00.json.bz2", false),
        ("from-2026-11-21-00-55.json", true),
        ("to-2026-11-18-10-00.json.gz", false),
        ("notes.json", true),
        ("from-2026-11-18.json.bz2", true), // not a window's name: read
    ] {
        assert_eq!(range.may_hold_file(name, &zone), held, "{name}");
    }
    for (segment, held) in [
        ("2026-11-20", true),
        ("dt=2026-11-21", true), // its first hour is within the margin
        ("dt=2026-11-22", false),
        ("2026-11-18", false),
        ("relay1", true),
        ("10", true),
    ] {
        assert_eq!(range.may_hold_dir(segment, &zone), held, "{segment}");
    }
    assert!(Range::default().may_hold_file("to-1999-01-01-00-00.json.bz2", &zone));
}
