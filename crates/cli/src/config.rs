//! `pipeline.toml`: what `maillog run` follows, where it keeps its state, where the archive is.
//!
//! Every key is optional; an unknown key is an error naming it (a typo must not silently fall
//! back to a default). Relative paths are relative to the config file's directory, so the
//! repository's `pipeline.toml` works from anywhere. Command-line flags override the file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Paths and globs to follow.
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
    /// The spool directory: checkpoint, open windows, sealed files.
    pub spool: Option<PathBuf>,
    /// `file://DIR` (or a path), or `s3://bucket/prefix`.
    pub archive: Option<String>,
    /// The archive key template (`{date}`, `{hour}`, `{kind}`, `{name}`, `{host}`).
    pub key_template: Option<String>,
    /// The `{host}` tag.
    pub host: Option<String>,
    /// Zone of the windows and of stamps without an offset: `UTC`, `+02:00`, `Europe/Berlin`.
    pub time_zone: Option<String>,
    /// A fixed year for year-less stamps (default: inferred).
    pub year: Option<i32>,
    /// More program names to treat as sendmail.
    #[serde(default)]
    pub sendmail_programs: Vec<String>,
    /// `all` (default) or `original`.
    pub fields: Option<String>,
    /// Where files start on the first run: `beginning` (default) or `end`.
    pub start_at: Option<String>,
    /// Windows.
    #[serde(default)]
    pub window: WindowSection,
    /// Compression.
    #[serde(default)]
    pub bzip2: Bzip2Section,
    /// How to reach an `s3://` archive (credentials come from the AWS chain, never from here).
    #[serde(default)]
    pub s3: S3Section,
    /// Uploads.
    #[serde(default)]
    pub upload: UploadSection,
}

/// `[s3]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    /// The region (default: the AWS chain's, else us-east-1).
    pub region: Option<String>,
    /// An S3-compatible store's URL.
    pub endpoint: Option<String>,
    /// Path-style addressing (most S3-compatible stores need it).
    pub path_style: Option<bool>,
    /// A profile of the shared AWS config files.
    pub profile: Option<String>,
    /// `when_supported` (default: the SDK adds CRC32 checksums) or `when_required` (for
    /// stores that reject them; Content-MD5 is sent either way).
    pub checksum: Option<String>,
}

/// `[upload]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSection {
    /// Uploads at once (default 4).
    pub concurrency: Option<usize>,
    /// S3: files bigger than this many MiB go up in parts (default 64).
    pub multipart_threshold_mib: Option<u64>,
    /// S3: the part size in MiB (default 16; at least 5).
    pub part_size_mib: Option<u64>,
    /// S3: the storage class (`STANDARD_IA`, `GLACIER_IR`, …).
    pub storage_class: Option<String>,
    /// S3: server-side encryption, `AES256` or `aws:kms`.
    pub sse: Option<String>,
    /// S3: the KMS key id for `aws:kms`.
    pub sse_kms_key_id: Option<String>,
    /// S3: object tags.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Keep archived files in the spool's `windows/uploaded/` this many hours (default 0:
    /// delete them once the archive has them).
    pub keep_uploaded_hours: Option<f64>,
    /// Stop reading while sealed files waiting for the archive pass this many MiB (default:
    /// no ceiling) — rather than fill the disk while the archive is unreachable.
    pub max_waiting_mib: Option<u64>,
}

/// `[window]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSection {
    /// Seconds a window stays open after its end (default 120).
    pub lateness_seconds: Option<u32>,
    /// Seconds between commits of the spool and the positions (default 1).
    pub commit_seconds: Option<f64>,
}

/// `[bzip2]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bzip2Section {
    /// 1–9 (default 9).
    pub level: Option<u32>,
    /// Compressing threads; 0 or absent: one per core.
    pub threads: Option<usize>,
}

/// Reads and checks a config file; relative paths become relative to its directory.
pub fn load(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let mut config: ConfigFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    for input in &mut config.inputs {
        *input = base.join(&*input);
    }
    if let Some(spool) = &mut config.spool {
        *spool = base.join(&*spool);
    }
    if let Some(archive) = &mut config.archive {
        if let Some(dir) = archive.strip_prefix("file://")
            && Path::new(dir).is_relative()
        {
            *archive = format!("file://{}", base.join(dir).display());
        } else if !archive.contains("://") && Path::new(archive.as_str()).is_relative() {
            *archive = base.join(archive.as_str()).display().to_string();
        }
    }
    if let Some(level) = config.bzip2.level
        && !(1..=9).contains(&level)
    {
        bail!(
            "{}: [bzip2] level = {level}: must be 1 to 9",
            path.display()
        );
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "inputs = [\"a.log\"]\nspoool = \"x\"\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("spoool") && e.contains("p.toml"), "{e}");
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "inputs = [\"logs/*.log\"]\nspool = \"s\"\narchive = \"file://a\"\n",
        )
        .unwrap();
        let c = load(&path).unwrap();
        assert_eq!(c.inputs[0], dir.path().join("logs/*.log"));
        assert_eq!(c.spool.unwrap(), dir.path().join("s"));
        assert_eq!(
            c.archive.unwrap(),
            format!("file://{}", dir.path().join("a").display())
        );
    }
}
