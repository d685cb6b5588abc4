//! Charts as inline SVG, written by the program: stacked vertical bars (traffic over hours or
//! days) and horizontal bars (top-N lists). No script, no font or library fetched: the page
//! they are in opens anywhere, a mail attachment included.
//!
//! Every bar is a `<rect>` carrying what it shows — `data-chart`, `data-series`, `data-label`,
//! `data-value` — and a `<title>` tooltip, so that a reader (and the browser test) can check
//! each number against the JSON report. It never computes a number of the report.

use std::fmt::Write as _;

use html_escape::encode_safe as escape;

/// Width of every chart, in SVG units (the page scales it down on narrow screens).
const WIDTH: f64 = 760.0;

/// One series of a stacked chart: its name (CSS class and legend) and colour.
pub struct Series {
    /// `received`, `delivered`, …
    pub name: &'static str,
    /// A CSS colour.
    pub colour: &'static str,
}

/// Stacked vertical bars: one column per `(label, values)`, one value per series, bottom up.
pub fn columns(chart: &str, title: &str, series: &[Series], data: &[(String, Vec<u64>)]) -> String {
    let (height, left, bottom, top) = (220.0, 56.0, 34.0, 24.0);
    let plot = height - bottom - top;
    let max = data
        .iter()
        .map(|(_, v)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let band = (WIDTH - left - 8.0) / data.len().max(1) as f64;
    let mut svg = open(chart, title, WIDTH, height);
    legend(&mut svg, series);
    for tick in [0, max / 2, max] {
        let y = top + plot - plot * tick as f64 / max as f64;
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{left}" x2="{WIDTH}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{tick}</text>"#,
            left - 6.0,
            y + 4.0
        );
    }
    // At most about 31 labels under the axis.
    let every = data.len().div_ceil(31).max(1);
    for (i, (label, values)) in data.iter().enumerate() {
        let x = left + band * i as f64 + band * 0.1;
        let mut base = top + plot;
        for (value, s) in values.iter().zip(series) {
            let h = plot * *value as f64 / max as f64;
            base -= h;
            let _ = write!(
                svg,
                r#"<rect class="{}" fill="{}" x="{x:.1}" y="{base:.1}" width="{:.1}" height="{h:.1}" data-chart="{chart}" data-series="{}" data-label="{}" data-value="{value}"><title>{} {}: {value}</title></rect>"#,
                s.name,
                s.colour,
                band * 0.8,
                s.name,
                escape(label),
                escape(label),
                s.name
            );
        }
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + band * 0.4,
                height - bottom + 14.0,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, one row per `(label, value)`, longest first as given.
pub fn rows(
    chart: &str,
    title: &str,
    colour: &str,
    data: &[(String, u64)],
    human: fn(u64) -> String,
) -> String {
    let (row, label_width, top) = (20.0, 300.0, 24.0);
    let height = top + row * data.len().max(1) as f64 + 8.0;
    let max = data.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let room = WIDTH - label_width - 90.0;
    let mut svg = open(chart, title, WIDTH, height);
    if data.is_empty() {
        let _ = write!(
            svg,
            r#"<text class="empty" x="{label_width}" y="{:.1}">none</text>"#,
            top + 14.0
        );
    }
    for (i, (label, value)) in data.iter().enumerate() {
        let y = top + row * i as f64;
        let w = (room * *value as f64 / max as f64).max(1.0);
        let shown: String = if label.chars().count() > 44 {
            label.chars().take(43).chain(['…']).collect()
        } else {
            label.clone()
        };
        let _ = write!(
            svg,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect fill="{colour}" x="{label_width}" y="{:.1}" width="{w:.1}" height="{:.1}" data-chart="{chart}" data-series="{chart}" data-label="{}" data-value="{value}"><title>{}: {value}</title></rect><text class="value" x="{:.1}" y="{:.1}">{}</text>"#,
            label_width - 6.0,
            y + 14.0,
            escape(&shown),
            y + 3.0,
            row - 6.0,
            escape(label),
            escape(label),
            label_width + w + 6.0,
            y + 14.0,
            human(*value)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn open(chart: &str, title: &str, width: f64, height: f64) -> String {
    format!(
        r#"<svg class="chart" id="chart-{chart}" viewBox="0 0 {width} {height:.0}" role="img" aria-label="{}"><text class="title" x="0" y="14">{}</text>"#,
        escape(title),
        escape(title)
    )
}

fn legend(svg: &mut String, series: &[Series]) {
    let mut x = WIDTH - 110.0 * series.len() as f64;
    for s in series {
        let _ = write!(
            svg,
            r#"<rect class="key" fill="{}" x="{x:.1}" y="4" width="10" height="10"/><text class="tick" x="{:.1}" y="13">{}</text>"#,
            s.colour,
            x + 14.0,
            s.name
        );
        x += 110.0;
    }
}
