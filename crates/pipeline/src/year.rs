//! The instant year-less stamps (`Nov 25 10:00:00`) are resolved against, while following: the
//! newest wall clock seen, kept in the committed state so that lines read again after a crash
//! get the year they got the first time (a restart just after New Year must not move December
//! lines into the new year). It is never ahead of the wall clock by more than the skew: one
//! persisted by a clock that jumped back since is dropped. A one-shot run uses each file's
//! modification time instead (`take`); this module never parses.

use serde::{Deserialize, Serialize};

/// The year reference (unix seconds), `None` before the first line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct YearReference(Option<i64>);

impl YearReference {
    /// Before the first line.
    pub fn is_unset(&self) -> bool {
        self.0.is_none()
    }

    /// The reference for lines read at `now`: the later of `now` and the one kept, unless the
    /// one kept is more than `max_skew` seconds ahead of `now`. Kept for the next commit.
    pub fn advance(&mut self, now: i64, max_skew: i64) -> i64 {
        let limit = now.saturating_add(max_skew);
        let kept = self.0.filter(|&r| r <= limit);
        let reference = now.max(kept.unwrap_or(i64::MIN));
        self.0 = Some(reference);
        reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_only_moves_forward_and_never_far_ahead_of_the_clock() {
        let mut year = YearReference::default();
        assert_eq!(year.advance(1_000, 300), 1_000);
        // The clock jumped back a little: the reference stays.
        assert_eq!(year.advance(900, 300), 1_000);
        // Persisted by a clock far ahead (2099): dropped.
        let mut ahead = YearReference(Some(4_070_908_800));
        assert_eq!(ahead.advance(1_000, 300), 1_000);
    }

    #[test]
    fn it_reads_as_the_batch_state_wrote_it() {
        let kept: YearReference = serde_json::from_str("1764676800").unwrap();
        assert_eq!(kept, YearReference(Some(1_764_676_800)));
        let none: YearReference = serde_json::from_str("null").unwrap();
        assert_eq!(none, YearReference(None));
    }
}
