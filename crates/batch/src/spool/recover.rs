//! Opening the spool after a stop: every file is cut back to the last committed state, and
//! what the state does not know is removed (its lines come again from the tailer).

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use maillog_parse::Zone;

use super::{InFlight, OpenState, OpenWindow, Recovery, Spool, SpoolError, SpoolState, at};
use crate::compress::Compressor;

impl Spool {
    /// Opens the spool in `dir`, cutting every file back to `state` (the last committed one;
    /// `None` on a first start — files found then are salvaged: `salvage`).
    pub fn open(
        dir: &Path,
        zone: Zone,
        state: Option<SpoolState>,
        compressor: Compressor,
    ) -> Result<(Spool, Recovery), SpoolError> {
        let open_dir = dir.join("open");
        let sealed_dir = dir.join("sealed");
        for d in [&open_dir, &sealed_dir] {
            at("create", d, super::create_dir(d))?;
        }
        let mut spool = Spool {
            open_dir,
            sealed_dir,
            zone,
            windows: BTreeMap::new(),
            sealed: Vec::new(),
            compressor,
            obsolete: Vec::new(),
            obsolete_committed: Vec::new(),
            keep_uploaded: None,
        };
        let mut recovery = Recovery::default();
        let state = match state {
            Some(state) => state,
            None => {
                spool.salvage(dir, &mut recovery)?;
                SpoolState::default()
            }
        };
        let mut resumed = Vec::new();
        for open in &state.open {
            match spool.resume(open) {
                Ok(()) => {
                    recovery.resumed += 1;
                    resumed.push(open.clone());
                }
                // Gone, or cut short: the records are not in the spool any more. The service
                // goes on (a restart loop would not bring them back); the caller says which.
                Err(e) if e.is_lost() => {
                    let name = open.id.file_name(&open.zone_or(spool.zone));
                    spool.orphan_window(dir, &name, open);
                    recovery.lost_windows.push(super::LostWindow {
                        id: open.id,
                        name,
                        records: open.records,
                        why: e.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        for sealed in state.sealed {
            if spool.sealed_dir.join(&sealed.name).exists() {
                spool.sealed.push(sealed);
            } else {
                recovery.missing_sealed.push(sealed);
            }
        }
        spool.discard_uncommitted(&resumed, &mut recovery)?;
        Ok((spool, recovery))
    }

    /// Moves what is left of a window that cannot be resumed to `orphaned/` (best effort).
    fn orphan_window(&self, dir: &Path, name: &str, state: &OpenState) {
        let aside = dir.join("orphaned");
        if super::create_dir(&aside).is_err() {
            return;
        }
        let mut names = vec![name.to_owned()];
        names.extend((state.first_block..=state.block).map(|b| self.raw_name(name, b)));
        for name in names {
            let _ = fs::rename(self.open_dir.join(&name), aside.join(&name));
        }
    }

    fn resume(&mut self, state: &OpenState) -> Result<(), SpoolError> {
        let zone = state.zone_or(self.zone);
        let name = state.id.file_name(&zone);
        let path = self.open_dir.join(&name);
        let sealed = self.sealed_dir.join(&name);
        if !path.exists() && sealed.exists() {
            // Sealed after the last commit: it is open again, and its lines come again.
            at("reopen", &sealed, fs::rename(&sealed, &path))?;
        }
        let bz2 = at(
            "open",
            &path,
            OpenOptions::new().read(true).write(true).open(&path),
        )?;
        let len = at("stat", &path, bz2.metadata())?.len();
        if len < state.bz2_len {
            let e = io::Error::other(format!("{len} bytes, {} committed", state.bz2_len));
            return Err(SpoolError::new(super::SHORTER_THAN_COMMITTED, &path, e));
        }
        at("truncate", &path, bz2.set_len(state.bz2_len))?;
        let mut in_flight = VecDeque::new();
        for block in state.first_block..state.block {
            // Complete, committed, not yet compressed: compressed again.
            let raw_path = self.raw_path(&name, block);
            let raw = Arc::new(at("read", &raw_path, fs::read(&raw_path))?);
            let pending = self.compressor.submit(Arc::clone(&raw));
            let raw_written = raw.len();
            let (stream, raw_file) = (None, None);
            in_flight.push_back(InFlight {
                block,
                raw,
                pending,
                stream,
                raw_file,
                raw_written,
            });
        }
        let raw_path = self.raw_path(&name, state.block);
        let mut raw = Vec::new();
        let mut raw_file = None;
        if state.raw_len > 0 {
            let mut file = at(
                "open",
                &raw_path,
                OpenOptions::new().read(true).write(true).open(&raw_path),
            )?;
            at("truncate", &raw_path, file.set_len(state.raw_len))?;
            at("read", &raw_path, file.read_to_end(&mut raw))?;
            raw_file = Some(file);
        }
        let window = OpenWindow {
            name,
            zone,
            bz2,
            bz2_len: state.bz2_len,
            block: state.block,
            raw_written: raw.len(),
            raw,
            raw_file,
            in_flight,
            records: state.records,
            opened_at: state.opened_at,
            sealing: state.sealing,
            dirty: true,
            unsynced: false,
        };
        self.windows.insert(state.id, window);
        Ok(())
    }

    /// Removes files the committed state does not know.
    fn discard_uncommitted(
        &mut self,
        open: &[OpenState],
        recovery: &mut Recovery,
    ) -> Result<(), SpoolError> {
        let mut keep: Vec<String> = Vec::new();
        for o in open {
            let name = o.id.file_name(&o.zone_or(self.zone));
            for block in o.first_block..=o.block {
                keep.push(self.raw_name(&name, block));
            }
            keep.push(name);
        }
        for entry in at("list", &self.open_dir, fs::read_dir(&self.open_dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                at("remove", &entry.path(), fs::remove_file(entry.path()))?;
                recovery.discarded.push(name);
            }
        }
        let sealed: Vec<&str> = self.sealed.iter().map(|s| s.name.as_str()).collect();
        for entry in at("list", &self.sealed_dir, fs::read_dir(&self.sealed_dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !sealed.contains(&name.as_str()) {
                at("remove", &entry.path(), fs::remove_file(entry.path()))?;
                recovery.discarded.push(name);
            }
        }
        Ok(())
    }
}
