//! `--format html`: one self-contained page — the report's (or a top's) charts and tables, its
//! style inline, nothing fetched — that opens offline and from a mail attachment.
//!
//! Charts are inline SVG written here ([`super::svg`]): no charting library to ship or trust,
//! no script needed to draw, and every bar carries its number for checking. The one script
//! is a self-check for browsers that run it (it notes on the page how many bars have a size,
//! which `crates/cli/tests/html.rs` reads from a headless Chromium); the page needs it for
//! nothing. Tables give sizes as people read them, with the bytes in `data-value`.
//!
//! It never computes a number: everything shown is the JSON report's.

use std::fmt::Write as _;

use html_escape::encode_safe as escape;
use maillog_aggregate::report::{ReasonRow, Report};
use maillog_aggregate::tally::Ranked;

use super::human;
use super::svg::{self, Series};

const RECEIVED: Series = Series {
    name: "received",
    colour: "#4e79a7",
};
const DELIVERED: Series = Series {
    name: "delivered",
    colour: "#59a14f",
};
const DEFERRED: Series = Series {
    name: "deferred",
    colour: "#f28e2b",
};
const BOUNCED: Series = Series {
    name: "bounced",
    colour: "#e15759",
};

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:820px;color:#222}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
svg.chart{width:100%;height:auto;margin:.5em 0}svg text{font-size:11px;fill:#333}\
svg .title{font-size:13px;font-weight:600}svg .grid{stroke:#e4e4e4}\
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 10px;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even){background:#f6f6f6}";

/// A self-check, for browsers that run scripts: how many bars of each chart have a size.
const CHECK: &str = "addEventListener('load',()=>{for(const s of document.querySelectorAll('svg.chart')){\
let n=0,z=0;for(const r of s.querySelectorAll('rect[data-value]')){const b=r.getBBox();\
if(b.width>0&&(b.height>0||r.dataset.value==='0'))n++;else z++;}\
const b=s.getBoundingClientRect();s.dataset.drawn=n;s.dataset.undrawn=z;\
s.dataset.size=Math.round(b.width)+'x'+Math.round(b.height);}document.body.dataset.checked='yes';});";

/// The report as a page.
pub fn report(r: &Report) -> String {
    let mut page = head("maillog report");
    section(&mut page, "totals", "Grand totals");
    let t = &r.totals;
    let mut rows = vec![
        ("received", t.received.to_string(), Some(t.received)),
        ("delivered", t.delivered.to_string(), Some(t.delivered)),
        ("deferred", t.deferred.to_string(), Some(t.deferred)),
        ("bounced", t.bounced.to_string(), Some(t.bounced)),
    ];
    rows.push(match t.rejected {
        Some(n) => ("rejected", n.to_string(), Some(n)),
        None => ("rejected", "n/a (raw syslog only)".to_owned(), None),
    });
    rows.extend([
        (
            "bytes_received",
            human(t.bytes_received),
            Some(t.bytes_received),
        ),
        (
            "bytes_delivered",
            human(t.bytes_delivered),
            Some(t.bytes_delivered),
        ),
        ("senders", t.senders.to_string(), Some(t.senders)),
        ("recipients", t.recipients.to_string(), Some(t.recipients)),
    ]);
    page.push_str("<table id=\"totals-table\">");
    for (key, shown, value) in rows {
        let data = value.map_or_else(String::new, |v| format!(" data-value=\"{v}\""));
        let _ = write!(
            page,
            "<tr data-key=\"{key}\"><th>{}</th><td class=\"n\"{data}>{}</td></tr>",
            key.replace('_', " "),
            escape(&shown)
        );
    }
    page.push_str("</table>");

    let days: Vec<_> = r
        .per_day
        .iter()
        .map(|d| {
            (
                d.day.clone(),
                [d.received, d.delivered, d.deferred, d.bounced],
            )
        })
        .collect();
    let hours: Vec<_> = r
        .per_hour
        .iter()
        .map(|h| {
            (
                format!("{}h", h.hour),
                [h.received, h.delivered, h.deferred, h.bounced],
            )
        })
        .collect();
    for (id, title, data) in [
        ("per-day", "Traffic per day", &days),
        ("per-hour", "Traffic per hour of the day", &hours),
    ] {
        section(&mut page, id, title);
        let received: Vec<_> = data.iter().map(|(l, v)| (l.clone(), vec![v[0]])).collect();
        page.push_str(&svg::columns(
            &format!("received-{id}"),
            "Messages received",
            &[RECEIVED],
            &received,
        ));
        let status: Vec<_> = data
            .iter()
            .map(|(l, v)| (l.clone(), v[1..].to_vec()))
            .collect();
        page.push_str(&svg::columns(
            &format!("status-{id}"),
            "Delivery status",
            &[DELIVERED, DEFERRED, BOUNCED],
            &status,
        ));
        table(
            &mut page,
            &["", "received", "delivered", "deferred", "bounced"],
            data.iter()
                .map(|(l, v)| (l.clone(), v.iter().map(|n| (n.to_string(), *n)).collect())),
        );
    }

    section(&mut page, "domains", "Delivery per recipient domain");
    let mut deferring: Vec<(String, u64)> = r
        .domains
        .iter()
        .filter(|d| d.deferred > 0)
        .map(|d| (d.domain.clone(), d.deferred))
        .collect();
    deferring.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    page.push_str(&svg::rows(
        "deferrals-per-domain",
        "Deferrals per domain",
        DEFERRED.colour,
        &deferring,
        |n| n.to_string(),
    ));
    table(
        &mut page,
        &[
            "domain",
            "sent",
            "bytes",
            "deferred",
            "bounced",
            "avg delay (s)",
            "max delay (s)",
        ],
        r.domains.iter().map(|d| {
            let avg = d
                .avg_delay
                .map_or_else(|| "-".to_owned(), |a| format!("{a:.1}"));
            let max = d
                .max_delay
                .map_or_else(|| "-".to_owned(), |m| m.to_string());
            (
                d.domain.clone(),
                vec![
                    (d.delivered.to_string(), d.delivered),
                    (human(d.bytes), d.bytes),
                    (d.deferred.to_string(), d.deferred),
                    (d.bounced.to_string(), d.bounced),
                    (avg, 0),
                    (max, d.max_delay.unwrap_or(0)),
                ],
            )
        }),
    );

    for (id, title, list, bytes) in [
        (
            "top-senders",
            "Senders by messages",
            &r.top_senders_by_count,
            false,
        ),
        (
            "top-recipients",
            "Recipients by deliveries",
            &r.top_recipients_by_count,
            false,
        ),
        (
            "top-senders-bytes",
            "Senders by bytes",
            &r.top_senders_by_bytes,
            true,
        ),
        (
            "top-recipients-bytes",
            "Recipients by bytes",
            &r.top_recipients_by_bytes,
            true,
        ),
        (
            "received-domains",
            "Domains mail came from",
            &r.received_domains,
            false,
        ),
        (
            "top-relays",
            "Relays that handed mail in",
            &r.top_relays,
            false,
        ),
    ] {
        section(&mut page, id, title);
        ranked(&mut page, id, title, list, bytes);
    }

    for (id, title, reasons) in [
        (
            "deferral-reasons",
            "Deferral reasons",
            Some(&r.deferral_reasons),
        ),
        ("bounce-reasons", "Bounce reasons", Some(&r.bounce_reasons)),
        (
            "reject-reasons",
            "Reject reasons",
            r.reject_reasons.as_ref(),
        ),
    ] {
        section(&mut page, id, title);
        match reasons {
            Some(reasons) => reason_table(&mut page, reasons),
            None => {
                page.push_str("<p>Known from raw syslog only: reject= lines make no record.</p>")
            }
        }
    }

    section(&mut page, "sizes", "Message sizes");
    let s = &r.message_sizes;
    let mut below = "0 B".to_owned();
    let buckets: Vec<(String, u64)> = s
        .buckets
        .iter()
        .map(|b| {
            let label = match b.up_to {
                Some(up_to) => format!("{below} – {}", human(up_to)),
                None => format!("{below} and more"),
            };
            below = b.up_to.map_or_else(|| below.clone(), human);
            (label, b.count)
        })
        .collect();
    page.push_str(&svg::rows(
        "message-sizes",
        "Messages by size",
        RECEIVED.colour,
        &buckets,
        |n| n.to_string(),
    ));
    let size = |n: Option<u64>| (n.map_or_else(|| "-".to_owned(), human), n.unwrap_or(0));
    table(
        &mut page,
        &["", "bytes"],
        [
            (
                "messages".to_owned(),
                vec![(s.messages.to_string(), s.messages)],
            ),
            ("smallest".to_owned(), vec![size(s.min)]),
            (
                "mean".to_owned(),
                vec![size(s.mean.map(|m| m.round() as u64))],
            ),
            ("largest".to_owned(), vec![size(s.max)]),
        ]
        .into_iter(),
    );
    foot(page)
}

/// A top-N answer as a page.
pub fn top(key: &str, rows: &[Ranked]) -> String {
    let mut page = head(&format!("maillog top --by {key}"));
    section(&mut page, "top", &format!("Top by {key}"));
    ranked(
        &mut page,
        "top",
        &format!("Records by {key}"),
        rows,
        rows.iter().any(|r| r.bytes.is_some()),
    );
    foot(page)
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{0}</title><style>{STYLE}</style></head><body><h1>{0}</h1>",
        escape(title)
    )
}

fn foot(mut page: String) -> String {
    let _ = writeln!(page, "<script>{CHECK}</script></body></html>");
    page
}

fn section(page: &mut String, id: &str, title: &str) {
    let _ = write!(page, "<h2 id=\"{id}\">{}</h2>", escape(title));
}

/// A ranked list: bars by count, then the table (bytes shown when known).
fn ranked(page: &mut String, id: &str, title: &str, list: &[Ranked], bytes: bool) {
    let bars: Vec<(String, u64)> = list
        .iter()
        .map(|r| {
            (
                r.key.clone(),
                if bytes { r.bytes.unwrap_or(0) } else { r.count },
            )
        })
        .collect();
    let shown: fn(u64) -> String = if bytes { human } else { |n| n.to_string() };
    page.push_str(&svg::rows(id, title, RECEIVED.colour, &bars, shown));
    let with_bytes = list.iter().any(|r| r.bytes.is_some());
    let header: &[&str] = if with_bytes {
        &["key", "count", "bytes"]
    } else {
        &["key", "count"]
    };
    table(
        page,
        header,
        list.iter().map(|r| {
            let mut cells = vec![(r.count.to_string(), r.count)];
            if with_bytes {
                cells.push(
                    r.bytes
                        .map_or_else(|| (String::new(), 0), |b| (human(b), b)),
                );
            }
            (r.key.clone(), cells)
        }),
    );
}

fn reason_table(page: &mut String, reasons: &[ReasonRow]) {
    page.push_str("<table><tr><th>count</th><th>DSN</th><th>reason</th></tr>");
    for row in reasons {
        let _ = write!(
            page,
            "<tr><td class=\"n\" data-value=\"{0}\">{0}</td><td>{1}</td><td>{2}</td></tr>",
            row.count,
            escape(row.dsn.as_deref().unwrap_or("-")),
            escape(&row.reason)
        );
    }
    page.push_str("</table>");
}

/// A table: a header, then per row a label and numeric cells (shown, value).
fn table(
    page: &mut String,
    header: &[&str],
    rows: impl Iterator<Item = (String, Vec<(String, u64)>)>,
) {
    page.push_str("<table><tr>");
    for h in header {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr>");
    for (label, cells) in rows {
        let _ = write!(page, "<tr><td>{}</td>", escape(&label));
        for (shown, value) in cells {
            let _ = write!(
                page,
                "<td class=\"n\" data-value=\"{value}\">{}</td>",
                escape(&shown)
            );
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
}
