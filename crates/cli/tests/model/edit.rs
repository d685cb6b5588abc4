//! A config edit between runs, as an operator makes it: the service stopped, one setting of
//! `pipeline.toml` changed, the service started again — or, for a config `maillog run` must
//! refuse, a `run --once` that exits 2 having written nothing, and the old config put back.

use std::time::Duration;

use super::super::check;
use super::super::ops::Edit;
use super::super::proc::Proc;
use super::World;

impl World {
    /// Stops a running service, changes one setting, starts the service again. A config
    /// `maillog run` must refuse (`{host}` left empty) is tried with `run --once`, which must
    /// exit 2 having written nothing, and the previous config is put back.
    pub(super) fn edit_config(&mut self, edit: Edit) -> Result<String, String> {
        let was_running = self.service.is_some();
        self.stop()?;
        let new = self.config.edited(edit);
        let note = if new.valid() {
            self.config = new;
            self.config.adopt();
            self.logs.reading = self.config.zone;
            String::new()
        } else {
            new.write();
            let before = (
                check::hashes(&self.spool),
                check::objects(&self.archive_root()),
            );
            let ended = Proc::start(&new.invocation(), &["--once"], None)
                .wait(Duration::from_secs(30))
                .map_err(|e| format!("run --once on a broken config hung:\n{}", e.tail(10)))?;
            self.took(&ended)?;
            self.config.write();
            let after = (
                check::hashes(&self.spool),
                check::objects(&self.archive_root()),
            );
            if ended.code != Some(2) || !ended.stderr.contains("key_template") {
                return Err(format!(
                    "run --once on a config whose key_template renders an empty {{host}} did \
                     not exit 2 naming key_template (code {:?}):\n{}",
                    ended.code,
                    ended.tail(10)
                ));
            }
            if before != after {
                return Err(
                    "run --once on a broken config changed the spool or the archive".into(),
                );
            }
            " (refused with exit 2; the previous config put back)".into()
        };
        if was_running {
            let service = self.maillog(&[], None);
            service.wait_started(Duration::from_secs(5));
            self.service = Some(service);
        }
        Ok(note)
    }
}
