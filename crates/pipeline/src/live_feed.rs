//! Feeding the live top-N (`/top`) from the reading thread without ever waiting for the HTTP
//! thread.
//!
//! The HTTP thread locks the live top-N while it computes an answer; the reading thread only
//! tries the lock. When it is taken, the event's keys are kept (owned) in a bounded backlog
//! and counted at the next event that gets the lock. Past the bound the live top-N misses
//! records (counted, said once): it is a view, never the archive. Records stamped beyond the
//! wall clock plus the skew are not counted at all: one would move the live top-N's clock
//! ahead and every later record would fall out of its windows.

use std::sync::{Mutex, TryLockError};

use maillog_aggregate::{LiveTop, PendingRecord};
use maillog_parse::Event;

/// Records kept while the live top-N is busy, at most.
const BACKLOG: usize = 65_536;

#[derive(Default)]
pub(super) struct LiveFeed {
    backlog: Vec<PendingRecord>,
    /// Records the live top-N missed because the backlog was full.
    pub missed: u64,
}

impl LiveFeed {
    /// Counts `event`'s records in `live`, unless it is stamped past `latest` (unix seconds).
    pub(super) fn add(&mut self, live: &Mutex<LiveTop>, event: &Event<'_>, latest: i64) {
        if event.at.unix_seconds() > latest {
            return;
        }
        match live.try_lock() {
            Ok(mut live) => {
                for pending in self.backlog.drain(..) {
                    live.add_pending(&pending);
                }
                for record in event.records() {
                    live.add(&record);
                }
            }
            Err(TryLockError::WouldBlock) => {
                for record in event.records() {
                    if self.backlog.len() < BACKLOG {
                        self.backlog.push(LiveTop::pending(&record));
                    } else {
                        if self.missed == 0 {
                            tracing::warn!(
                                "the live top-N was busy for {BACKLOG} records: it misses some (the archive does not)"
                            );
                        }
                        self.missed += 1;
                    }
                }
            }
            // A panic while it was held: the live top-N is off from now on, the pipeline not.
            Err(TryLockError::Poisoned(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, mpsc};
    use std::time::{Duration, Instant};

    use maillog_aggregate::{Dimension, LiveWindow};
    use maillog_parse::{Parsed, Parser, TimeContext, YearPolicy, Zone};

    use super::*;

    fn with_event(line: &str, f: impl FnOnce(&Event<'_>)) {
        let parser = Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2026)), &[]);
        match parser.parse(line) {
            Parsed::Event(event) => f(&event),
            Parsed::NonRecord(class) => panic!("{class:?}"),
        }
    }

    const LINE: &str = "2026-12-03T10:00:10+00:00 mail1 sendmail[1]: q1234567x: from=<a@example.com>, size=1, class=0, nrcpts=1, relay=x";

    #[test]
    fn a_busy_live_top_never_holds_up_the_reader_and_loses_no_count() {
        let live = Arc::new(Mutex::new(LiveTop::new(16)));
        let mut feed = LiveFeed::default();
        let (held, release) = (mpsc::channel(), mpsc::channel::<()>());
        let holder = {
            let live = Arc::clone(&live);
            std::thread::spawn(move || {
                let _guard = live.lock().unwrap();
                held.0.send(()).unwrap();
                release.1.recv().unwrap(); // an HTTP answer that takes its time
            })
        };
        held.1.recv().unwrap();
        let started = Instant::now();
        for _ in 0..3 {
            with_event(LINE, |e| feed.add(&live, e, i64::MAX));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the reader did not wait"
        );
        release.0.send(()).unwrap();
        holder.join().unwrap();
        with_event(LINE, |e| feed.add(&live, e, i64::MAX));
        let top = live
            .lock()
            .unwrap()
            .top(Dimension::Mailserver, 1, LiveWindow::Day);
        assert_eq!(top.records, 4, "the backlog was counted");
    }

    #[test]
    fn a_record_stamped_far_ahead_is_not_counted() {
        let live = Mutex::new(LiveTop::new(16));
        let mut feed = LiveFeed::default();
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:01:00Z")
            .unwrap()
            .timestamp();
        with_event(&LINE.replace("2026-12-03", "2099-01-01"), |e| {
            feed.add(&live, e, now + 300)
        });
        with_event(LINE, |e| feed.add(&live, e, now + 300));
        let top = live
            .lock()
            .unwrap()
            .top(Dimension::Mailserver, 1, LiveWindow::FiveMinutes);
        assert_eq!(top.records, 1, "the live record still counts: {top:?}");
    }
}
