//! Writing answers: aligned tables for people, JSON and CSV for programs.
//!
//! The JSON forms are the ones `QUERIES.md` fixes (and the Spark job prints): `maillog top`
//! prints one array of `{"key","count","bytes"}`, `maillog report` one object of sections. CSV
//! is `key,count,bytes` for a top, and one long table `section,key,column,value` for a report,
//! so that every number of it is a row. Tables right-align numbers, give sizes as people read
//! them (`1.5 MiB`; JSON and CSV keep the numbers) and keep keys whole.
//!
//! It never computes anything.

use std::io::{self, Write};

use maillog_aggregate::report::Report;
use maillog_aggregate::tally::Ranked;

mod html;
mod svg;

/// How an answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table for people.
    Table,
    /// JSON (the shapes of QUERIES.md).
    Json,
    /// CSV with a header line.
    Csv,
    /// One self-contained HTML page: charts (inline SVG) and tables.
    Html,
}

/// Writes a top-N answer counted by `key`.
pub fn top(out: &mut impl Write, format: Format, key: &str, rows: &[Ranked]) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)
        }
        Format::Csv => {
            writeln!(out, "key,count,bytes")?;
            for row in rows {
                let bytes = row.bytes.map(|b| b.to_string()).unwrap_or_default();
                writeln!(out, "{},{},{bytes}", csv(&row.key), row.count)?;
            }
            Ok(())
        }
        Format::Table => table(out, key, rows),
        Format::Html => out.write_all(html::top(key, rows).as_bytes()),
    }
}

fn table(out: &mut impl Write, key: &str, rows: &[Ranked]) -> io::Result<()> {
    let with_bytes = rows.iter().any(|r| r.bytes.is_some());
    let count_width = width(rows.iter().map(|r| r.count), "count");
    let sizes: Vec<String> = rows
        .iter()
        .map(|r| r.bytes.map(human).unwrap_or_default())
        .collect();
    let bytes_width = sizes.iter().map(String::len).max().unwrap_or(0).max(5);
    if with_bytes {
        writeln!(
            out,
            "{:>count_width$}  {:>bytes_width$}  {key}",
            "count", "bytes"
        )?;
    } else {
        writeln!(out, "{:>count_width$}  {key}", "count")?;
    }
    for (row, size) in rows.iter().zip(&sizes) {
        if with_bytes {
            writeln!(
                out,
                "{:>count_width$}  {size:>bytes_width$}  {}",
                row.count, row.key
            )?;
        } else {
            writeln!(out, "{:>count_width$}  {}", row.count, row.key)?;
        }
    }
    Ok(())
}

fn width(numbers: impl Iterator<Item = u64>, header: &str) -> usize {
    numbers
        .map(|n| n.to_string().len())
        .max()
        .unwrap_or(0)
        .max(header.len())
}

/// A CSV field, quoted when it must be.
fn csv(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Writes a report.
pub fn report(out: &mut impl Write, format: Format, report: &Report) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)
        }
        Format::Csv => report_csv(out, report),
        Format::Table => report_table(out, report),
        Format::Html => out.write_all(html::report(report).as_bytes()),
    }
}

fn heading(out: &mut impl Write, title: &str) -> io::Result<()> {
    writeln!(out, "\n{title}\n{}", "-".repeat(title.len()))
}

fn report_table(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let t = &r.totals;
    writeln!(out, "Grand Totals\n------------")?;
    let rejected = t
        .rejected
        .map_or_else(|| "n/a".to_owned(), |n| n.to_string());
    for (value, what) in [
        (t.received.to_string(), "received"),
        (t.delivered.to_string(), "delivered"),
        (t.deferred.to_string(), "deferred"),
        (t.bounced.to_string(), "bounced"),
        (rejected, "rejected"),
        (human(t.bytes_received), "received"),
        (human(t.bytes_delivered), "delivered"),
        (t.senders.to_string(), "senders"),
        (t.recipients.to_string(), "recipients"),
    ] {
        writeln!(out, "{value:>12}  {what}")?;
    }
    if t.rejected.is_none() {
        writeln!(
            out,
            "(rejects are known from raw syslog only: reject= lines make no record)"
        )?;
    }
    heading(out, "Per-Day Traffic Summary")?;
    writeln!(
        out,
        "{:<11} {:>10} {:>10} {:>10} {:>10}",
        "date", "received", "delivered", "deferred", "bounced"
    )?;
    for d in &r.per_day {
        writeln!(
            out,
            "{:<11} {:>10} {:>10} {:>10} {:>10}",
            d.day, d.received, d.delivered, d.deferred, d.bounced
        )?;
    }
    heading(out, "Per-Hour Traffic Summary")?;
    writeln!(
        out,
        "{:<11} {:>10} {:>10} {:>10} {:>10}",
        "time", "received", "delivered", "deferred", "bounced"
    )?;
    for h in &r.per_hour {
        let next = h.hour.parse::<u32>().map_or(0, |n| n + 1);
        writeln!(
            out,
            "{}00-{next:02}00   {:>10} {:>10} {:>10} {:>10}",
            h.hour, h.received, h.delivered, h.deferred, h.bounced
        )?;
    }
    heading(out, "Host/Domain Summary: Message Delivery")?;
    writeln!(
        out,
        "{:>8} {:>12} {:>8} {:>8} {:>10} {:>10}  domain",
        "sent", "bytes", "defers", "bounced", "avg delay", "max delay"
    )?;
    for d in &r.domains {
        let avg = d.avg_delay.map_or_else(|| "-".to_owned(), duration);
        let max = d
            .max_delay
            .map_or_else(|| "-".to_owned(), |m| duration(m as f64));
        writeln!(
            out,
            "{:>8} {:>12} {:>8} {:>8} {avg:>10} {max:>10}  {}",
            d.delivered,
            human(d.bytes),
            d.deferred,
            d.bounced,
            d.domain
        )?;
    }
    for (title, key, rows) in [
        (
            "Host/Domain Summary: Messages Received",
            "domain",
            &r.received_domains,
        ),
        (
            "Senders by message count",
            "sender",
            &r.top_senders_by_count,
        ),
        (
            "Recipients by message count",
            "recipient",
            &r.top_recipients_by_count,
        ),
        ("Senders by message size", "sender", &r.top_senders_by_bytes),
        (
            "Recipients by message size",
            "recipient",
            &r.top_recipients_by_bytes,
        ),
        ("Relays that handed mail in", "relay", &r.top_relays),
    ] {
        heading(out, title)?;
        table(out, key, rows)?;
    }
    for (title, rows) in [
        ("Deferral reasons", Some(&r.deferral_reasons)),
        ("Bounce reasons", Some(&r.bounce_reasons)),
        ("Reject reasons", r.reject_reasons.as_ref()),
    ] {
        heading(out, title)?;
        let Some(rows) = rows else {
            writeln!(out, "(known from raw syslog only)")?;
            continue;
        };
        for row in rows {
            let dsn = row.dsn.as_deref().unwrap_or("-");
            writeln!(out, "{:>8}  {dsn:<7}  {}", row.count, row.reason)?;
        }
    }
    let sizes = &r.message_sizes;
    heading(out, "Message Sizes")?;
    let size = |n: Option<u64>| n.map_or_else(|| "-".to_owned(), human);
    writeln!(out, "{:>12}  messages", sizes.messages)?;
    writeln!(out, "{:>12}  smallest", size(sizes.min))?;
    writeln!(
        out,
        "{:>12}  mean",
        size(sizes.mean.map(|m| m.round() as u64))
    )?;
    writeln!(out, "{:>12}  largest", size(sizes.max))?;
    let mut below = "0 B".to_owned();
    for bucket in &sizes.buckets {
        let range = match bucket.up_to {
            Some(up_to) => format!("{below} to {}", human(up_to)),
            None => format!("{below} and more"),
        };
        writeln!(out, "{:>12}  {range}", bucket.count)?;
        below = bucket.up_to.map_or(below, human);
    }
    Ok(())
}

/// Bytes as people read them: `512 B`, `1.5 KiB`, `11.8 MiB` (tables only; JSON and CSV keep
/// the numbers).
fn human(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

/// Seconds as pflogsumm shows delays: `12.0 s`, `3.5 m`, `2.1 h`, `1.3 d`.
fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 60.0 => format!("{s:.1} s"),
        s if s < 3_600.0 => format!("{:.1} m", s / 60.0),
        s if s < 86_400.0 => format!("{:.1} h", s / 3_600.0),
        s => format!("{:.1} d", s / 86_400.0),
    }
}

fn report_csv(out: &mut impl Write, r: &Report) -> io::Result<()> {
    writeln!(out, "section,key,column,value")?;
    let t = &r.totals;
    let rejected = t.rejected.map(|n| n.to_string()).unwrap_or_default();
    for (column, value) in [
        ("received", t.received.to_string()),
        ("delivered", t.delivered.to_string()),
        ("deferred", t.deferred.to_string()),
        ("bounced", t.bounced.to_string()),
        ("rejected", rejected),
        ("bytes_received", t.bytes_received.to_string()),
        ("bytes_delivered", t.bytes_delivered.to_string()),
        ("senders", t.senders.to_string()),
        ("recipients", t.recipients.to_string()),
    ] {
        writeln!(out, "totals,,{column},{value}")?;
    }
    for d in &r.per_day {
        let counts = [d.received, d.delivered, d.deferred, d.bounced];
        outcome_rows(out, "per_day", &d.day, counts)?;
    }
    for h in &r.per_hour {
        let counts = [h.received, h.delivered, h.deferred, h.bounced];
        outcome_rows(out, "per_hour", &h.hour, counts)?;
    }
    for d in &r.domains {
        let key = csv(&d.domain);
        for (column, value) in [
            ("count", d.count.to_string()),
            ("delivered", d.delivered.to_string()),
            ("deferred", d.deferred.to_string()),
            ("bounced", d.bounced.to_string()),
            ("bytes", d.bytes.to_string()),
            (
                "avg_delay",
                d.avg_delay.map(|a| a.to_string()).unwrap_or_default(),
            ),
            (
                "max_delay",
                d.max_delay.map(|m| m.to_string()).unwrap_or_default(),
            ),
        ] {
            writeln!(out, "domains,{key},{column},{value}")?;
        }
    }
    for (section, rows) in [
        ("top_senders_by_count", &r.top_senders_by_count),
        ("top_senders_by_bytes", &r.top_senders_by_bytes),
        ("top_recipients_by_count", &r.top_recipients_by_count),
        ("top_recipients_by_bytes", &r.top_recipients_by_bytes),
        ("received_domains", &r.received_domains),
        ("top_relays", &r.top_relays),
    ] {
        for row in rows {
            let key = csv(&row.key);
            writeln!(out, "{section},{key},count,{}", row.count)?;
            if let Some(bytes) = row.bytes {
                writeln!(out, "{section},{key},bytes,{bytes}")?;
            }
        }
    }
    let reasons = [
        ("deferral_reasons", Some(&r.deferral_reasons)),
        ("bounce_reasons", Some(&r.bounce_reasons)),
        ("reject_reasons", r.reject_reasons.as_ref()),
    ];
    for (section, rows) in reasons {
        for row in rows.into_iter().flatten() {
            let key = csv(&format!(
                "{} {}",
                row.dsn.as_deref().unwrap_or(""),
                row.reason
            ));
            writeln!(out, "{section},{key},count,{}", row.count)?;
        }
    }
    let sizes = &r.message_sizes;
    let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    for (column, value) in [
        ("messages", sizes.messages.to_string()),
        ("min", number(sizes.min)),
        ("max", number(sizes.max)),
        (
            "mean",
            sizes.mean.map(|m| m.to_string()).unwrap_or_default(),
        ),
    ] {
        writeln!(out, "message_sizes,,{column},{value}")?;
    }
    for bucket in &sizes.buckets {
        let key = bucket
            .up_to
            .map_or_else(|| "more".to_owned(), |b| b.to_string());
        writeln!(out, "message_sizes,{key},count,{}", bucket.count)?;
    }
    Ok(())
}

/// The CSV rows of one day or hour of a report: received, delivered, deferred, bounced.
fn outcome_rows(
    out: &mut impl Write,
    section: &str,
    key: &str,
    counts: [u64; 4],
) -> io::Result<()> {
    let columns = ["received", "delivered", "deferred", "bounced"];
    for (column, value) in columns.into_iter().zip(counts) {
        writeln!(out, "{section},{key},{column},{value}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Ranked> {
        vec![
            Ranked {
                key: "a@x".into(),
                count: 120,
                bytes: Some(5),
            },
            Ranked {
                key: "b,\"c\"".into(),
                count: 7,
                bytes: None,
            },
        ]
    }

    fn text(format: Format) -> String {
        let mut out = Vec::new();
        top(&mut out, format, "dest", &rows()).expect("in memory");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn tops_in_every_format() {
        assert_eq!(
            text(Format::Table),
            "count  bytes  dest\n  120    5 B  a@x\n    7         b,\"c\"\n"
        );
        assert_eq!(
            text(Format::Csv),
            "key,count,bytes\na@x,120,5\n\"b,\"\"c\"\"\",7,\n"
        );
        let json: serde_json::Value = serde_json::from_str(&text(Format::Json)).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!([{"key": "a@x", "count": 120, "bytes": 5}, {"key": "b,\"c\"", "count": 7}])
        );
    }
}
