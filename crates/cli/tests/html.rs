//! `maillog report --format html` in a real browser (issue 16): Debian's Chromium, headless,
//! opens the page from a file with no network: no console message (no error, no warning),
//! every chart drawn (each bar has a size: the page's own check, read back from the DOM), and
//! every number shown — each bar, the totals — equal to `report --format json` on the same
//! input.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;

fn maillog(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(args)
        .current_dir(dir)
        .env_remove("MAILLOG_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The DOM Chromium holds after loading `page` (scripts run), and its stderr.
fn chromium(page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let (dom, log) = (profile.path().join("dom"), profile.path().join("log"));
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--window-size=1000,800",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(fs::File::create(&dom).unwrap())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (
        fs::read_to_string(&dom).unwrap(),
        fs::read_to_string(&log).unwrap(),
    )
}

/// An attribute value as written back by the browser.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

#[test]
fn the_html_report_draws_every_chart_with_the_json_numbers_in_a_real_browser() {
    if !maillog_testkit::tools::have_all(&["chromium"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = maillog_loggen::Config {
        lines: 12_000,
        ..maillog_loggen::Config::default()
    };
    let mut log = fs::File::create(d.join("mail.log")).unwrap();
    maillog_loggen::write_log(&config, &mut log).unwrap();
    let json: Value =
        serde_json::from_slice(&maillog(d, &["report", "--format", "json", "mail.log"])).unwrap();
    let page = d.join("report.html");
    fs::write(
        &page,
        maillog(d, &["report", "--format", "html", "mail.log"]),
    )
    .unwrap();
    let text = fs::read_to_string(&page).unwrap();
    // Nothing to fetch: no URL, no source, no link.
    for never in ["http:", "https:", " src=", " href=", "@import", "url("] {
        assert!(!text.contains(never), "{never}");
    }

    let (dom, stderr) = chromium(&page);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        dom.contains("data-checked=\"yes\""),
        "the page's check ran: {stderr}"
    );

    // Every chart drawn: each bar has a size, the chart has one.
    let chart = Regex::new(r#"<svg [^>]*id="chart-([a-z-]+)"[^>]*>"#).unwrap();
    let drawn =
        Regex::new(r#"data-drawn="(\d+)" data-undrawn="(\d+)" data-size="(\d+)x(\d+)""#).unwrap();
    let mut charts = Vec::new();
    for svg in chart.captures_iter(&dom) {
        let tag = svg.get(0).unwrap().as_str();
        let m = drawn
            .captures(tag)
            .unwrap_or_else(|| panic!("not checked: {tag}"));
        let n = |i: usize| m[i].parse::<u64>().unwrap();
        assert!(
            n(1) > 0 && n(2) == 0 && n(3) > 0 && n(4) > 0,
            "{}: {tag}",
            &svg[1]
        );
        charts.push(svg[1].to_owned());
    }
    for expected in [
        "received-per-day",
        "status-per-day",
        "received-per-hour",
        "status-per-hour",
        "deferrals-per-domain",
        "top-senders",
        "top-recipients",
        "top-senders-bytes",
        "top-recipients-bytes",
        "received-domains",
        "top-relays",
        "message-sizes",
    ] {
        assert!(
            charts.iter().any(|c| c == expected),
            "{expected}: {charts:?}"
        );
    }

    // Every bar's number is the JSON's.
    let bar = Regex::new(
        r#"data-chart="([a-z-]+)" data-series="([a-z-]+)" data-label="([^"]*)" data-value="(\d+)""#,
    )
    .unwrap();
    let mut bars: BTreeMap<(String, String), Vec<(String, u64)>> = BTreeMap::new();
    for b in bar.captures_iter(&dom) {
        let key = (b[1].to_owned(), b[2].to_owned());
        bars.entry(key)
            .or_default()
            .push((unescape(&b[3]), b[4].parse().unwrap()));
    }
    let series = |chart: &str, series: &str| bars[&(chart.to_owned(), series.to_owned())].clone();
    let rows =
        |section: &str, label: &dyn Fn(&Value) -> String, column: &str| -> Vec<(String, u64)> {
            json[section]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (label(r), r[column].as_u64().unwrap()))
                .collect()
        };
    let hour = |r: &Value| format!("{}h", r["hour"].as_str().unwrap());
    let day = |r: &Value| r["day"].as_str().unwrap().to_owned();
    let key = |r: &Value| r["key"].as_str().unwrap().to_owned();
    assert_eq!(
        series("received-per-hour", "received"),
        rows("per_hour", &hour, "received")
    );
    assert_eq!(
        series("received-per-day", "received"),
        rows("per_day", &day, "received")
    );
    for status in ["delivered", "deferred", "bounced"] {
        assert_eq!(
            series("status-per-hour", status),
            rows("per_hour", &hour, status)
        );
        assert_eq!(
            series("status-per-day", status),
            rows("per_day", &day, status)
        );
    }
    for (chart, section, column) in [
        ("top-senders", "top_senders_by_count", "count"),
        ("top-recipients", "top_recipients_by_count", "count"),
        ("top-senders-bytes", "top_senders_by_bytes", "bytes"),
        ("top-recipients-bytes", "top_recipients_by_bytes", "bytes"),
        ("received-domains", "received_domains", "count"),
        ("top-relays", "top_relays", "count"),
    ] {
        assert_eq!(series(chart, chart), rows(section, &key, column), "{chart}");
    }
    let mut deferring: Vec<(String, u64)> = rows(
        "domains",
        &|r| r["domain"].as_str().unwrap().to_owned(),
        "deferred",
    )
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect();
    deferring.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    assert!(!deferring.is_empty());
    assert_eq!(
        series("deferrals-per-domain", "deferrals-per-domain"),
        deferring
    );
    let sizes: Vec<u64> = series("message-sizes", "message-sizes")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    let buckets: Vec<u64> = json["message_sizes"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, buckets);

    // The totals table.
    let total = Regex::new(
        r#"<tr data-key="([a-z_]+)"><th>[^<]*</th><td class="n"(?: data-value="(\d+)")?>"#,
    )
    .unwrap();
    let shown: BTreeMap<String, Option<u64>> = total
        .captures_iter(&dom)
        .map(|t| {
            (
                t[1].to_owned(),
                t.get(2).map(|v| v.as_str().parse().unwrap()),
            )
        })
        .collect();
    let totals = json["totals"].as_object().unwrap();
    assert_eq!(shown.len(), totals.len());
    for (name, value) in totals {
        assert_eq!(shown[name], value.as_u64(), "{name}");
    }
}
