//! A sealed file waiting for the archive, as the committed state lists it: its window, name,
//! size, the part and zone it is archived under, and the key template it is archived with.
//! It only describes; the spool moves the files.

use maillog_parse::Zone;
use serde::{Deserialize, Serialize};

use super::parse_zone;
use crate::window::WindowId;

/// A sealed file waiting for the archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFile {
    /// Which window.
    pub id: WindowId,
    /// Its file name (and the last part of its archive key).
    pub name: String,
    /// Records in it.
    pub records: u64,
    /// Its size.
    pub bytes: u64,
    /// The part it is archived as, when the archive held its own part's name with other bytes
    /// (`None`: its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_part: Option<u32>,
    /// The zone its window was opened in (`None` in states written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The key template and host its key is rendered with, fixed when it is first committed
    /// ([`SealedFile::pin_key`]): a file archived and not yet released when `key_template` or
    /// `host` changed is offered again under the key it was archived under, not a second
    /// one. `None` in states written before they were kept (the configured ones apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyPin>,
}

/// What a sealed file's archive key is rendered with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPin {
    /// The key template.
    pub template: String,
    /// What `{host}` renders as.
    pub host: String,
}

impl SealedFile {
    /// Fixes the key template and host its key is rendered with, unless fixed already.
    pub fn pin_key(&mut self, template: &str, host: &str) {
        self.key.get_or_insert_with(|| KeyPin {
            template: template.to_owned(),
            host: host.to_owned(),
        });
    }

    /// The zone its name and key are in: its window's, else `configured`.
    pub fn zone_or(&self, configured: Zone) -> Zone {
        parse_zone(self.zone.as_deref(), configured)
    }

    /// The window file it is archived as: its own, or a further part.
    pub fn archive_id(&self) -> WindowId {
        WindowId {
            part: self.archive_part.unwrap_or(self.id.part),
            ..self.id
        }
    }
}
