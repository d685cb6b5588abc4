//! Counting a mirror file ([`crate::mirror`]): its batches, in the columns the query needs,
//! each row counted as a record. It never decides which files are read.

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::Ordering;

use super::{Input, Origin, Shared, UnitCounts, count, open};
use crate::mirror::{self, BatchView};
use crate::tally::Tally;

/// Counts the records of a mirror file, reading only the columns the query needs. A local
/// file is read in place; a stream is read whole first (Parquet's footer is at its end).
pub(super) fn mirror_file<T: Tally>(
    shared: &Shared<'_>,
    input: &Input,
    tally: &mut T,
    counts: &mut UnitCounts,
) -> io::Result<()> {
    let batches = match &input.origin {
        Origin::Path(path) => {
            let file = File::open(path)?;
            shared
                .read
                .fetch_add(file.metadata().map_or(0, |m| m.len()), Ordering::Relaxed);
            mirror::batches(file, &shared.columns)?
        }
        Origin::Stdin | Origin::Stream(_) => {
            let mut bytes = Vec::new();
            open(input, None)?.reader.read_to_end(&mut bytes)?;
            shared.read.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            mirror::batches(bytes::Bytes::from(bytes), &shared.columns)?
        }
    };
    for batch in batches {
        let batch = batch.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let view = BatchView::new(&batch)?;
        for row in 0..view.rows() {
            counts.lines += 1;
            count(shared, &view.row(row), tally, counts);
        }
    }
    Ok(())
}
