//! Opening a spool that has files but no committed state: the checkpoint was removed by hand
//! or both of its slots are unreadable. Nothing says which lines these records came from, so
//! exactly once cannot be kept — but every record in the spool was read from a log, and some
//! of them may be in no file any more (a rotated log is not read again): they are offered to
//! the archive again rather than lost. At worst a record is archived twice (a window whose
//! bytes are the same is recognised by the archive; other bytes go to a further part).
//!
//! - `sealed/NAME`: a finished window file (fsynced before it got there): offered as it is.
//! - `open/NAME` and `open/NAME.block-K.ndjson`: the complete bzip2 streams of the file (a
//!   torn last one is dropped), then the complete lines of the raw blocks the streams do not
//!   hold yet (stream K is block K), are written into one sealed file of the same name.
//!
//! What cannot be read or named (a file that is not a window's, a sealed file that does not
//! decode) goes to `orphaned/` for a human, as before. Never touches a spool with a state.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, Cursor, Read, Write};
use std::path::Path;

use super::{Recovery, SealedFile, Spool, SpoolError, at, create_file, sync_dir};
use crate::window::WindowId;

impl Spool {
    /// Offers every record of a spool without a state to the archive again (see the module
    /// docs); what cannot be salvaged is moved to `orphaned/`.
    pub(super) fn salvage(
        &mut self,
        dir: &Path,
        recovery: &mut Recovery,
    ) -> Result<(), SpoolError> {
        let aside = dir.join("orphaned");
        for entry in at("list", &self.sealed_dir, fs::read_dir(&self.sealed_dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let salvaged = WindowId::from_file_name(&name, &self.zone)
                .and_then(|id| Some((id, count_lines(&fs::read(&path).ok()?)?)));
            match salvaged {
                Some((id, records)) => self.offer(id, name, records, &path, recovery)?,
                None => self.set_aside(&aside, &path, &name, recovery)?,
            }
        }
        let mut windows: BTreeMap<String, Vec<(u64, std::path::PathBuf)>> = BTreeMap::new();
        for entry in at("list", &self.open_dir, fs::read_dir(&self.open_dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.split_once(".block-") {
                Some((window, rest)) => {
                    let block = rest.strip_suffix(".ndjson").and_then(|b| b.parse().ok());
                    match block {
                        Some(block) => windows
                            .entry(window.to_owned())
                            .or_default()
                            .push((block, entry.path())),
                        None => self.set_aside(&aside, &entry.path(), &name, recovery)?,
                    }
                }
                None => {
                    windows.entry(name).or_default();
                }
            }
        }
        for (name, mut blocks) in windows {
            blocks.sort();
            let streams_path = self.open_dir.join(&name);
            let id = WindowId::from_file_name(&name, &self.zone);
            let sealed = self.sealed_dir.join(&name);
            let (Some(id), false) = (id, sealed.exists()) else {
                self.set_aside(&aside, &streams_path, &name, recovery)?;
                for (_, path) in &blocks {
                    let block = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    self.set_aside(&aside, path, &block.unwrap_or_default(), recovery)?;
                }
                continue;
            };
            let streams = fs::read(&streams_path).unwrap_or_default();
            let (mut records, in_streams) = complete_streams(&streams);
            for (block, path) in &blocks {
                if *block >= in_streams {
                    let raw = at("read", path, fs::read(path))?;
                    records.extend_from_slice(whole_lines(&raw));
                }
            }
            let count = records.iter().filter(|b| **b == b'\n').count() as u64;
            if count > 0 {
                let mut file = at("create", &sealed, create_file(&sealed))?;
                let mut encoder =
                    bzip2::write::BzEncoder::new(&mut file, bzip2::Compression::best());
                at("write", &sealed, encoder.write_all(&records))?;
                at("write", &sealed, encoder.finish().map(drop))?;
                at("fsync", &sealed, file.sync_all())?;
                sync_dir(&self.sealed_dir)?;
                self.offer(id, name.clone(), count, &sealed, recovery)?;
            }
            for path in std::iter::once(&streams_path).chain(blocks.iter().map(|(_, p)| p)) {
                match fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return at("remove", path, Err(e));
                    }
                    _ => {}
                }
            }
        }
        sync_dir(&self.open_dir)?;
        if recovery.salvaged_records > 0 {
            tracing::warn!(
                files = self.sealed.len(),
                records = recovery.salvaged_records,
                "the spool had files but no committed state (the checkpoint removed or unreadable): their records are offered to the archive again — none lost, some may be archived twice"
            );
        }
        Ok(())
    }

    /// A sealed file to archive.
    fn offer(
        &mut self,
        id: WindowId,
        name: String,
        records: u64,
        path: &Path,
        recovery: &mut Recovery,
    ) -> Result<(), SpoolError> {
        let bytes = at("stat", path, fs::metadata(path))?.len();
        recovery.salvaged_records += records;
        self.sealed.push(SealedFile {
            id,
            name,
            records,
            bytes,
            archive_part: None,
            zone: Some(self.zone.to_string()),
            key: None,
        });
        Ok(())
    }

    /// Moves a file that cannot be salvaged to `orphaned/`.
    fn set_aside(
        &self,
        aside: &Path,
        path: &Path,
        name: &str,
        recovery: &mut Recovery,
    ) -> Result<(), SpoolError> {
        if !path.exists() {
            return Ok(());
        }
        at("create", aside, super::create_dir(aside))?;
        at("move aside", path, fs::rename(path, aside.join(name)))?;
        tracing::error!(file = name, dir = %aside.display(),
            "a spool file without a committed state that cannot be read as a window: moved aside, not archived");
        recovery.discarded.push(name.to_owned());
        Ok(())
    }
}

/// The records of the complete bzip2 streams at the start of `bytes`, whole lines only, and
/// how many streams that was (a torn or damaged stream ends the reading).
fn complete_streams(bytes: &[u8]) -> (Vec<u8>, u64) {
    let mut cursor = Cursor::new(bytes);
    let (mut records, mut streams) = (Vec::new(), 0);
    while cursor.fill_buf().is_ok_and(|rest| !rest.is_empty()) {
        let mut decoded = Vec::new();
        let mut decoder = bzip2::bufread::BzDecoder::new(&mut cursor);
        if decoder.read_to_end(&mut decoded).is_err() || !decoded.ends_with(b"\n") {
            break;
        }
        records.extend_from_slice(&decoded);
        streams += 1;
    }
    (records, streams)
}

/// `raw` up to and with its last newline.
fn whole_lines(raw: &[u8]) -> &[u8] {
    match memchr::memrchr(b'\n', raw) {
        Some(end) => &raw[..=end],
        None => &[],
    }
}

/// The lines of a whole window file, `None` if it does not decode.
fn count_lines(bytes: &[u8]) -> Option<u64> {
    let mut decoded = Vec::new();
    bzip2::read::MultiBzDecoder::new(bytes)
        .read_to_end(&mut decoded)
        .ok()?;
    Some(decoded.iter().filter(|b| **b == b'\n').count() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stream(text: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn complete_streams_stop_at_a_torn_one() {
        let mut bytes = [stream(b"a\nb\n"), stream(b"c\n")].concat();
        let torn = stream(b"d\n");
        bytes.extend_from_slice(&torn[..torn.len() / 2]);
        assert_eq!(complete_streams(&bytes), (b"a\nb\nc\n".to_vec(), 2));
        assert_eq!(complete_streams(&[]), (Vec::new(), 0));
        assert_eq!(whole_lines(b"x\ny"), b"x\n");
    }
}
