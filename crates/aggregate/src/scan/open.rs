//! Opening a unit of work: a file (whole, or the lines that start in a byte range of it),
//! stdin, or a stream someone else opens; with the instant year-less stamps are read against.
//! It never reads a line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use super::{Input, Origin};

/// An opened unit of work.
pub(super) struct Opened {
    pub(super) reader: Box<dyn Read + Send>,
    /// The instant year-less stamps are read against.
    pub(super) reference: DateTime<Utc>,
    /// For a range: the number of bytes in which its lines start.
    pub(super) limit: Option<u64>,
}

/// Opens a unit.
pub(super) fn open(input: &Input, range: Option<(u64, u64)>) -> io::Result<Opened> {
    match &input.origin {
        Origin::Path(path) => {
            let mut file = File::open(path)?;
            let modified = file
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            let reference = DateTime::<Utc>::from(modified);
            let Some((start, end)) = range else {
                return Ok(Opened {
                    reader: Box::new(file),
                    reference,
                    limit: None,
                });
            };
            if start == 0 {
                return Ok(Opened {
                    reader: Box::new(file),
                    reference,
                    limit: Some(end),
                });
            }
            // A range owns the lines that start in it: skip the end of a line begun before.
            file.seek(SeekFrom::Start(start - 1))?;
            let mut reader = BufReader::new(file);
            let skipped = reader.read_until(b'\n', &mut Vec::new())? as u64;
            let begin = start - 1 + skipped;
            let mut file = reader.into_inner();
            file.seek(SeekFrom::Start(begin))?;
            Ok(Opened {
                reader: Box::new(file),
                reference,
                limit: Some(end.saturating_sub(begin)),
            })
        }
        Origin::Stdin => Ok(Opened {
            reader: Box::new(io::stdin()),
            reference: Utc::now(),
            limit: None,
        }),
        Origin::Stream(opener) => {
            let open = opener
                .lock()
                .map_err(|_| io::Error::other("a thread died opening it"))?
                .take()
                .ok_or_else(|| io::Error::other("opened twice"))?;
            Ok(Opened {
                reader: open()?,
                reference: Utc::now(),
                limit: None,
            })
        }
    }
}
