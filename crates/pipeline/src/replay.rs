//! Reading lines again for open windows the spool lost.
//!
//! The checkpoint commits the spool's state with the tailer's positions: the records of every
//! line before the positions are in the spool. When a start finds open windows the state names
//! but the spool no longer holds whole (a spool wiped — a tmpfs after a reboot — or edited,
//! while the state was kept elsewhere), their records are still in the log files, before the
//! positions. This module gets them back from there rather than losing them:
//!
//! - While running, it keeps each open window's *origin*: where every file's content stood,
//!   as handed out, when the line that opened the window came (a content not in it had
//!   nothing handed out yet). No record of the window is in a line before its origin. The
//!   origins of the open windows are committed with the state ([`Committed`]).
//! - At a start that lost windows, the tailer is moved back to their oldest origin
//!   ([`maillog_tail::Checkpointer::rewind`]) and a [`Replay`] is made: lines before the old
//!   positions (read once already) give only the records of a lost window, and only from its
//!   origin on; every other record of them is in the spool or the archive already. Lines
//!   after the old positions are new, and go on as ever. The plan is committed with the state
//!   until it is done, so a crash during it goes on with it.
//! - When every content is read past its old position (or is gone), the plan is done: each
//!   lost window's records found again are counted against what the state said it held, and
//!   a shortfall — lines no longer in the log files — is said precisely and counted.
//!
//! It never decides which window a record goes to (the batcher does) nor where lines are
//! (the tailer does); it only says which positions to go back to and which records to keep.
//! Limits: a window without an origin (a state written before origins were kept) cannot be
//! read again and is reported lost, as before; so are the lines of a content whose file is
//! gone (rotated away and deleted). A file replaced by a copy of itself (`sed -i`, rsync) is
//! not gone: its lines are read again from the copy (`carry_to_replacements`), unless it was
//! replaced twice between two commits.

use std::collections::{BTreeMap, BTreeSet};

use maillog_batch::{BatchState, LostWindow, WindowId};
use maillog_parse::Kind;
use maillog_tail::Checkpointer;
use maillog_tail::checkpoint::Entry;
use serde::{Deserialize, Serialize};

use crate::year::YearReference;

/// A position in every file's content: its epoch (see `maillog_tail::checkpoint::Entry`) and
/// the byte offset there.
pub type Positions = BTreeMap<u32, u64>;

/// What the pipeline commits with the tailer positions: the batcher's state, the open
/// windows' origins, and a replay under way. A state written before origins were kept reads
/// as one without them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Committed {
    #[serde(flatten)]
    pub batch: BatchState,
    /// Kept beside the batcher's state (where states written before 2026-12 have it).
    #[serde(default, skip_serializing_if = "YearReference::is_unset")]
    pub year_reference: YearReference,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<Origin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<Replay>,
}

/// Where an open window's lines begin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub window: WindowId,
    /// Contents not named had nothing handed out when the window opened.
    pub from: Positions,
}

/// The open windows' origins, and where every content is as handed out.
#[derive(Debug, Default)]
pub struct Origins {
    windows: BTreeMap<WindowId, Positions>,
    /// Where each content is: committed at the start, then the end of each chunk taken.
    read_to: Positions,
}

impl Origins {
    /// The origins a committed state kept; every content where the checkpoint has it.
    pub fn new(kept: &[Origin], checkpointer: &Checkpointer) -> Self {
        Origins {
            windows: kept.iter().map(|o| (o.window, o.from.clone())).collect(),
            read_to: committed_positions(checkpointer),
        }
    }

    /// Window `id` was opened by the line at `offset` in content `epoch`.
    pub fn opened(&mut self, id: WindowId, epoch: u32, offset: u64) {
        let mut from = self.read_to.clone();
        from.insert(epoch, offset);
        self.windows.insert(id, from);
    }

    /// A chunk of content `epoch` was taken, up to `offset`.
    pub fn read(&mut self, epoch: u32, offset: u64) {
        let at = self.read_to.entry(epoch).or_default();
        *at = (*at).max(offset);
    }

    /// Where content `epoch` is, as handed out.
    pub fn read_to(&self, epoch: u32) -> Option<u64> {
        self.read_to.get(&epoch).copied()
    }

    /// The origins to commit with `batch`: those of the windows it has open (the others are
    /// forgotten), of contents the checkpoint still knows.
    pub fn committed(&mut self, batch: &BatchState, checkpointer: &Checkpointer) -> Vec<Origin> {
        let open: BTreeSet<WindowId> = batch.spool.open.iter().map(|o| o.id).collect();
        self.windows.retain(|id, _| open.contains(id));
        let entries = checkpointer.entries();
        let known: BTreeSet<u32> = entries.iter().map(|e| e.epoch).collect();
        self.read_to.retain(|epoch, _| known.contains(epoch));
        self.windows
            .iter_mut()
            .map(|(id, from)| {
                carry_to_replacements(from, &entries);
                from.retain(|epoch, _| known.contains(epoch));
                Origin {
                    window: *id,
                    from: from.clone(),
                }
            })
            .collect()
    }
}

/// A position in a content whose first bytes a replacement holds (`Entry::continues`: a
/// followed file replaced by a copy) applies to the replacement too, at the same offset — up
/// to where the replacement's own content starts, which no line of the older content
/// reaches — unless the replacement is named already (it keeps its own position). Once the
/// older content is gone from the checkpoint (its file let go, or handed over to the
/// replacement at a start), only the replacement's is kept. (A content named nowhere had
/// nothing handed out: it is read from where its reading began, which for a replacement whose
/// older content is gone is where that one's began.)
fn carry_to_replacements(from: &mut Positions, entries: &[Entry]) {
    let known: BTreeSet<u32> = entries.iter().map(|e| e.epoch).collect();
    for entry in entries {
        let Some(older) = entry.continues else {
            continue;
        };
        let at = if known.contains(&older.epoch) {
            from.get(&older.epoch).copied()
        } else {
            from.remove(&older.epoch)
        };
        if let Some(at) = at {
            from.entry(entry.epoch).or_insert(at.min(older.upto));
        }
    }
}

/// Every known content's committed position.
fn committed_positions(checkpointer: &Checkpointer) -> Positions {
    let entries = checkpointer.entries();
    entries.iter().map(|e| (e.epoch, e.offset)).collect()
}

/// Lines read again for lost windows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    /// The windows read again.
    pub lost: Vec<Lost>,
    /// Each content's committed position when the windows were lost: lines before it were
    /// read once already.
    pub until: Positions,
}

/// A lost window being read again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    pub window: WindowId,
    /// Its file name when it was lost.
    pub name: String,
    pub from: Positions,
    /// Records the state said it held.
    pub expected: u64,
    /// Records read again so far.
    pub found: u64,
}

/// What [`Replay::start`] found.
pub struct Started {
    /// The replay, if anything is read again.
    pub replay: Option<Replay>,
    /// Windows that cannot be read again (no origin kept): lost, with their records.
    pub unrecoverable: Vec<(String, u64, String)>,
}

impl Replay {
    /// At a start: the windows the spool lost are read again from their origins (the tailer
    /// moved back there), adding to a replay the last run left unfinished. Call before the
    /// tailer starts.
    pub fn start(
        lost: &[LostWindow],
        committed: &Committed,
        checkpointer: &Checkpointer,
    ) -> Started {
        let mut replay = committed.replay.clone().unwrap_or_default();
        let mut unrecoverable = Vec::new();
        for window in lost {
            let earlier = replay.lost.iter_mut().find(|l| l.window == window.id);
            let origin = committed.origins.iter().find(|o| o.window == window.id);
            match (earlier, origin) {
                // Lost again while being read again: what was found is gone again.
                (Some(earlier), _) => earlier.found = 0,
                (None, Some(origin)) => replay.lost.push(Lost {
                    window: window.id,
                    name: window.name.clone(),
                    from: origin.from.clone(),
                    expected: window.records,
                    found: 0,
                }),
                (None, None) => {
                    unrecoverable.push((window.name.clone(), window.records, window.why.clone()))
                }
            }
        }
        let entries = checkpointer.entries();
        for lost in &mut replay.lost {
            carry_to_replacements(&mut lost.from, &entries);
        }
        if replay.lost.is_empty() {
            return Started {
                replay: None,
                unrecoverable,
            };
        }
        // Back to the oldest origin of every content; one a window's origin does not name had
        // nothing handed out when it opened: from where its reading began (0 asks for that).
        let mut to = Positions::new();
        for entry in &entries {
            let oldest = replay
                .lost
                .iter()
                .map(|l| l.from.get(&entry.epoch).copied());
            to.insert(
                entry.epoch,
                oldest.map(|at| at.unwrap_or(0)).min().unwrap_or(0),
            );
        }
        for (epoch, before) in checkpointer.rewind(&to) {
            let until = replay.until.entry(epoch).or_default();
            *until = (*until).max(before);
        }
        // What was read of an older content was read before in the replacement holding it
        // too (the older file, if gone, is handed over to it when the tailer starts).
        for entry in &entries {
            let Some(older) = entry.continues else {
                continue;
            };
            if let Some(&read) = replay.until.get(&older.epoch) {
                let until = replay.until.entry(entry.epoch).or_default();
                *until = (*until).max(read.min(older.upto));
            }
        }
        Started {
            replay: Some(replay),
            unrecoverable,
        }
    }

    /// Whether the line ending at `end` in content `epoch` was read once already.
    pub fn read_before(&self, epoch: u32, end: u64) -> bool {
        self.until.get(&epoch).is_some_and(|&until| end <= until)
    }

    /// The lost window a record of `kind` in the window starting at `start`, from the line at
    /// `offset` of content `epoch` (read before), belongs to.
    pub fn keeps(
        &mut self,
        (kind, start): (Kind, i64),
        epoch: u32,
        offset: u64,
    ) -> Option<&mut Lost> {
        self.lost.iter_mut().find(|l| {
            l.window.kind == kind
                && l.window.start == start
                && l.from.get(&epoch).is_none_or(|&from| offset >= from)
        })
    }

    /// Whether every content was read past where it was (`read_to`), or is gone (`known`
    /// says which are not).
    pub fn is_done(&self, read_to: impl Fn(u32) -> Option<u64>, known: &BTreeSet<u32>) -> bool {
        self.until.iter().all(|(epoch, &until)| {
            !known.contains(epoch) || read_to(*epoch).is_some_and(|at| at >= until)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(kind: Kind, start: i64) -> WindowId {
        WindowId {
            kind,
            start,
            part: 0,
        }
    }

    #[test]
    fn a_window_keeps_only_records_from_its_origin_on() {
        let mut replay = Replay {
            lost: vec![Lost {
                window: window(Kind::From, 600),
                name: "from-x".into(),
                from: Positions::from([(1, 500)]),
                expected: 2,
                found: 0,
            }],
            until: Positions::from([(1, 900), (2, 300)]),
        };
        // Before its origin: a record of an earlier part of the window, archived already.
        assert!(replay.keeps((Kind::From, 600), 1, 400).is_none());
        assert!(replay.keeps((Kind::From, 600), 1, 500).is_some());
        // Another content, that had nothing handed out when the window opened.
        assert!(replay.keeps((Kind::From, 600), 2, 0).is_some());
        // Another kind, another window.
        assert!(replay.keeps((Kind::To, 600), 1, 600).is_none());
        assert!(replay.keeps((Kind::From, 900), 1, 600).is_none());
        assert!(replay.read_before(1, 900) && !replay.read_before(1, 901));
        assert!(replay.read_before(2, 10) && !replay.read_before(3, 10));
    }

    #[test]
    fn a_replay_is_done_when_every_content_is_past_where_it_was_or_gone() {
        let replay = Replay {
            lost: Vec::new(),
            until: Positions::from([(1, 900), (2, 300)]),
        };
        let known = BTreeSet::from([1, 2]);
        let at = |one: u64, two: u64| move |e: u32| Some(if e == 1 { one } else { two });
        assert!(!replay.is_done(at(900, 299), &known));
        assert!(replay.is_done(at(900, 300), &known));
        assert!(replay.is_done(at(900, 0), &BTreeSet::from([1])));
        assert!(!replay.is_done(|_| None, &known));
    }

    #[test]
    fn a_position_in_a_replaced_content_applies_to_its_replacement() {
        let entry = |ino, epoch, continues| Entry {
            key: maillog_tail::identity::FileKey { dev: 1, ino },
            fingerprint: maillog_tail::identity::Fingerprint::of(b"x\n"),
            epoch,
            offset: 0,
            path: String::new(),
            compressed: false,
            seq: 0,
            eof: None,
            size: 0,
            tail: None,
            first: 0,
            continues,
        };
        let continues = |epoch, upto| {
            Some(maillog_tail::checkpoint::Continues {
                epoch,
                first: 0,
                upto,
            })
        };
        // The older content 1 still known: named for both; past the copy's start, capped.
        let both = [entry(1, 1, None), entry(2, 2, continues(1, 60))];
        let mut from = Positions::from([(1, 20)]);
        carry_to_replacements(&mut from, &both);
        assert_eq!(from, Positions::from([(1, 20), (2, 20)]));
        let mut from = Positions::from([(1, 75)]);
        carry_to_replacements(&mut from, &both);
        assert_eq!(from, Positions::from([(1, 75), (2, 60)]));
        // Gone: only the copy's. A copy named already keeps its own.
        let gone = [entry(2, 2, continues(1, 60)), entry(3, 3, None)];
        let mut from = Positions::from([(1, 20), (3, 5)]);
        carry_to_replacements(&mut from, &gone);
        assert_eq!(from, Positions::from([(2, 20), (3, 5)]));
        let mut from = Positions::from([(1, 20), (2, 70)]);
        carry_to_replacements(&mut from, &gone);
        assert_eq!(from, Positions::from([(2, 70)]));
    }

    #[test]
    fn a_state_without_origins_reads_as_one() {
        let batch = serde_json::to_value(BatchState::default()).unwrap();
        let committed: Committed = serde_json::from_value(batch.clone()).unwrap();
        assert!(committed.origins.is_empty() && committed.replay.is_none());
        // And one without a replay is written as the batcher's state was.
        assert_eq!(serde_json::to_value(&committed).unwrap(), batch);
    }
}
