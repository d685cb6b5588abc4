//! Counts of what the parser saw: lines, records per kind, non-record lines per class, and
//! lines repaired from invalid UTF-8.
//!
//! This module owns only the arithmetic; where the counts are shown (a summary on stderr,
//! metrics) is the caller's business.

use std::fmt;

use crate::{Kind, NonRecord, Parsed};

/// What a run of the parser saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ParseStats {
    /// Lines read.
    pub lines: u64,
    /// `from` records made.
    pub from_records: u64,
    /// `to` records made (one per recipient).
    pub to_records: u64,
    /// Lines of another program.
    pub other_program: u64,
    /// Sendmail lines that are not records.
    pub sendmail_other: u64,
    /// Continuation pieces.
    pub continuation: u64,
    /// Lines without a header the contract knows.
    pub unparseable: u64,
    /// Lines whose bytes were not all UTF-8 (decoded with U+FFFD, still parsed).
    pub invalid_utf8: u64,
    /// Lines longer than the limit, cut to it (and still parsed).
    pub cut_lines: u64,
}

impl ParseStats {
    /// Counts one parsed line; `lossy` says whether it was repaired from invalid UTF-8.
    pub fn count(&mut self, parsed: &Parsed<'_>, lossy: bool) {
        self.lines += 1;
        self.invalid_utf8 += u64::from(lossy);
        match parsed {
            Parsed::Event(event) => {
                let records = event.record_count() as u64;
                match event.kind {
                    Kind::From => self.from_records += records,
                    Kind::To => self.to_records += records,
                }
            }
            Parsed::NonRecord(class) => *self.class_mut(*class) += 1,
        }
    }

    /// Lines of a non-record class.
    pub fn non_records(&self, class: NonRecord) -> u64 {
        match class {
            NonRecord::OtherProgram => self.other_program,
            NonRecord::SendmailOther => self.sendmail_other,
            NonRecord::Continuation => self.continuation,
            NonRecord::Unparseable => self.unparseable,
        }
    }

    fn class_mut(&mut self, class: NonRecord) -> &mut u64 {
        match class {
            NonRecord::OtherProgram => &mut self.other_program,
            NonRecord::SendmailOther => &mut self.sendmail_other,
            NonRecord::Continuation => &mut self.continuation,
            NonRecord::Unparseable => &mut self.unparseable,
        }
    }

    /// Adds another run's counts to these.
    pub fn merge(&mut self, other: &ParseStats) {
        self.lines += other.lines;
        self.from_records += other.from_records;
        self.to_records += other.to_records;
        self.invalid_utf8 += other.invalid_utf8;
        self.cut_lines += other.cut_lines;
        for class in NonRecord::ALL {
            *self.class_mut(class) += other.non_records(class);
        }
    }
}

impl fmt::Display for ParseStats {
    /// `12 lines: 3 from, 4 to records; non-records: other-program 1, …; invalid UTF-8 lines 0`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines: {} from records, {} to records; non-records:",
            self.lines, self.from_records, self.to_records
        )?;
        for (i, class) in NonRecord::ALL.into_iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{} {}", class.as_str(), self.non_records(class))?;
        }
        write!(f, "; lines with invalid UTF-8: {}", self.invalid_utf8)?;
        if self.cut_lines > 0 {
            write!(f, "; lines cut at the length limit: {}", self.cut_lines)?;
        }
        Ok(())
    }
}
