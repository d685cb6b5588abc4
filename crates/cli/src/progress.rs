//! What a running query shows on the terminal: its problems on stderr, and a progress bar of
//! the input bytes read of the total.
//!
//! This module owns the [`Watch`] `maillog top`/`report` give the query runner. The bar appears
//! only after half a second, so quick answers print nothing extra, and only when stderr is a
//! terminal and `--quiet` is not given; it draws from the thread the runner gives it, reading the
//! scan's byte counter, and a problem printed while it shows is printed above it. It never
//! counts or reads anything itself.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use maillog_aggregate::runner::{Progress, Watch};
use maillog_aggregate::scan::Problem;

/// The terminal's watch over a query.
pub struct Terminal {
    /// Whether a bar may be drawn at all.
    show: bool,
    /// The bar, once drawn.
    bar: OnceLock<ProgressBar>,
}

impl Terminal {
    /// A watch that draws a bar unless `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Terminal {
        Terminal {
            show: !quiet && std::io::stderr().is_terminal(),
            bar: OnceLock::new(),
        }
    }

    /// Clears the bar, if one was drawn.
    pub fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

impl Watch for Terminal {
    fn problem(&self, problem: Problem) {
        let line = format!("maillog: {}: {}", problem.input, problem.message);
        match self.bar.get() {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn progress(&self, progress: &Progress<'_>) {
        if !self.show || progress.wait(Duration::from_millis(500)) {
            return;
        }
        let shown = match progress.total() {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template(
                    "{spinner} {binary_bytes} read, {binary_bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        let shown = self.bar.get_or_init(|| shown);
        loop {
            shown.set_position(progress.read());
            shown.tick();
            if progress.wait(Duration::from_millis(100)) {
                return;
            }
        }
    }
}
