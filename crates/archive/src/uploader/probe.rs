//! The archive probe of `maillog check --probe-archive`: one real round trip through the
//! archive with an object of its own, said step by step.
//!
//! It owns the probe's key (`.maillog-probe/…`) and its two local files, and deletes both and
//! the object whatever failed. It never touches any other key, and never retries: the first
//! failure is the answer, as an [`ArchiveError::Probe`] naming the step.

use std::path::Path;

use super::Uploader;
use crate::{Archive, ArchiveError, Cause, Outcome, ProbeFailure};

/// A failed step: its name and what went wrong.
type StepError = (&'static str, ProbeFailure);

impl Uploader {
    /// A real round trip through the archive: a small object is put, found, read back and
    /// compared; other bytes are put under its key, which the archive must refuse (for S3
    /// with conditional writes: the store itself, `If-None-Match: *`), the object unchanged;
    /// then it is deleted, whatever failed in between. Returns what was done, step by step;
    /// the first failure is the error (a delete failing after it is logged).
    pub fn probe(&self, dir: &Path) -> Result<Vec<String>, ArchiveError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let key = format!(".maillog-probe/probe-{}-{nanos}", std::process::id());
        let content = format!("maillog archive probe {nanos}\n").into_bytes();
        let other = format!("maillog archive probe {nanos}: other bytes\n").into_bytes();
        let file = dir.join(format!(".maillog-probe-{nanos}"));
        let other_file = dir.join(format!(".maillog-probe-{nanos}-other"));
        let fail = |(step, source): StepError| ArchiveError::Probe {
            archive: self.archive.to_string(),
            key: key.clone(),
            step,
            source,
        };
        let written =
            std::fs::write(&file, &content).and_then(|()| std::fs::write(&other_file, &other));
        let steps = match written {
            Err(e) => Err(fail(("write a local probe file", Cause::Local(e).into()))),
            Ok(()) => self.runtime.block_on(async {
                let mut steps = Vec::new();
                let probed = probe_steps(
                    &self.archive,
                    &key,
                    (&file, &content),
                    &other_file,
                    &mut steps,
                )
                .await
                .map_err(fail);
                if steps.is_empty() {
                    // The put failed, yet the object may have arrived (its answer lost).
                    let _ = self.archive.delete(&key).await;
                    return probed.map(|()| steps);
                }
                // The object was put: it goes, whatever failed since.
                match (probed, self.archive.delete(&key).await) {
                    (Ok(()), Ok(())) => {
                        steps.push("deleted it".to_owned());
                        Ok(steps)
                    }
                    (Ok(()), Err(cause)) => Err(fail(("delete", cause.into()))),
                    (Err(e), Ok(())) => Err(e),
                    (Err(e), Err(cause)) => {
                        tracing::warn!(
                            "archive {}: cannot delete the probe's object {key} either: {cause}",
                            self.archive
                        );
                        Err(e)
                    }
                }
            }),
        };
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(&other_file);
        steps
    }
}

/// The probe's steps before the delete; `steps` is empty as long as nothing was put.
async fn probe_steps(
    archive: &Archive,
    key: &str,
    (file, content): (&Path, &[u8]),
    other_file: &Path,
    steps: &mut Vec<String>,
) -> Result<(), StepError> {
    match archive.put(file, key).await {
        // Already there: this very put, its first answer lost.
        Ok(Outcome::Stored | Outcome::AlreadyThere) => {}
        Ok(Outcome::Conflict) => return Err(("put", ProbeFailure::Taken)),
        Err(e) => return Err(("put", e.into())),
    }
    steps.push(format!(
        "put {key} ({} bytes, checksum verified by the server)",
        content.len()
    ));
    if !archive.has(key).await.map_err(|e| ("look up", e.into()))? {
        return Err(("look up", ProbeFailure::Missing));
    }
    steps.push("found it".to_owned());
    let read_back = |step: &'static str| async move {
        let mut back = Vec::new();
        archive
            .get(key, &mut back)
            .await
            .map_err(|e| (step, ProbeFailure::from(e)))?;
        Ok::<_, StepError>(back)
    };
    if read_back("read back").await? != content {
        return Err(("read back", ProbeFailure::Differs));
    }
    steps.push("read it back: same bytes".to_owned());
    let second = archive.put(other_file, key).await;
    let unchanged = read_back("read back after a second put").await? == content;
    let conditional = match archive {
        Archive::S3(s3) => Some(s3.conditional_writes()),
        Archive::Local(_) => None,
    };
    const SECOND: &str = "put other bytes under the same key";
    match (second, unchanged) {
        (Ok(Outcome::Conflict), true) => steps.push(match conditional {
            Some(true) => "conditional writes: honoured (other bytes under the same key \
                           refused by the store, If-None-Match: *; the object unchanged)"
                .to_owned(),
            Some(false) => "conditional writes: off ([s3] conditional_writes = false); other \
                            bytes under the same key refused by looking the key up first (a \
                            second writer at the same instant could slip past); the object \
                            unchanged"
                .to_owned(),
            None => "append-only: other bytes under the same key refused (no-replace link); \
                     the file unchanged"
                .to_owned(),
        }),
        (Err(e), _) => return Err((SECOND, e.into())),
        (Ok(_), false) if conditional == Some(true) => {
            return Err(("conditional writes", ProbeFailure::ConditionsIgnored));
        }
        (Ok(outcome), unchanged) => {
            let outcome = match outcome {
                Outcome::Stored => "Stored",
                Outcome::AlreadyThere => "AlreadyThere",
                Outcome::Conflict => "Conflict",
            };
            return Err((
                SECOND,
                ProbeFailure::NotRefused {
                    outcome,
                    replaced: !unchanged,
                },
            ));
        }
    }
    Ok(())
}
