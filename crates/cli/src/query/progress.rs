//! The progress bar of a long query: input bytes read of the total, on a terminal only.
//!
//! It appears only after half a second, so quick answers print nothing extra, and it draws
//! from its own thread, reading the scan's byte counter; the scan never waits on it. It never
//! shows when stderr is not a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether a bar can be seen: stderr is a terminal.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// Set when the scan is over.
#[derive(Default)]
pub struct Done {
    over: Mutex<bool>,
    changed: Condvar,
}

impl Done {
    /// The scan is over.
    pub fn set(&self) {
        if let Ok(mut over) = self.over.lock() {
            *over = true;
        }
        self.changed.notify_all();
    }

    /// Waits up to `timeout`; whether the scan is over.
    fn wait(&self, timeout: Duration) -> bool {
        let Ok(over) = self.over.lock() else {
            return true;
        };
        match self
            .changed
            .wait_timeout_while(over, timeout, |over| !*over)
        {
            Ok((over, _)) => *over,
            Err(_) => true,
        }
    }
}

/// Draws the bar into `bar` until `done`.
pub fn run(bar: &OnceLock<ProgressBar>, read: &AtomicU64, total: Option<u64>, done: &Done) {
    if done.wait(Duration::from_millis(500)) {
        return;
    }
    let shown = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {binary_bytes} read, {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    let shown = bar.get_or_init(|| shown);
    loop {
        shown.set_position(read.load(Ordering::Relaxed));
        shown.tick();
        if done.wait(Duration::from_millis(100)) {
            return;
        }
    }
}
