//! `maillog compact` and `maillog verify`: the columnar mirror of an archive that exists
//! already (see `maillog_mirror`).
//!
//! This module owns the arguments and the summary lines; what is written and how is
//! `maillog_mirror`'s: the mirror lives beside the archive (`mirror/` under its root or
//! prefix), a local directory or an S3 bucket alike.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use maillog_archive::{ArchiveUrl, BlockingArchive};
use maillog_mirror::{Clock, Known, MirrorStore, Scope, pass, plan};

/// Arguments of `maillog compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The archive: its root directory or s3://bucket/prefix [default: the configured
    /// archive].
    #[arg(value_name = "ARCHIVE")]
    archive: Option<ArchiveUrl>,

    /// How long after its end an hour is mirrored (its windows sealed, late parts mostly in);
    /// what comes later gets a file of its own.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    settle: Duration,

    /// The config whose archive, time zone and [s3] are used [default: as for `run`].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Arguments of `maillog verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The archive: its root directory or s3://bucket/prefix [default: the configured
    /// archive].
    #[arg(value_name = "ARCHIVE")]
    archive: Option<ArchiveUrl>,

    /// The config whose archive and [s3] are used [default: as for `run`].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The mirror of the archive named (or configured), and the zone its names are in. Files are
/// made in a temporary folder that goes when the store does.
fn store_of(
    archive: Option<ArchiveUrl>,
    config: Option<&std::path::Path>,
) -> Result<(MirrorStore, maillog_parse::Zone, tempfile::TempDir)> {
    let loaded = maillog_config::load_or_default(config)?;
    let zone = loaded.zone()?;
    // A directory named on the command line must be one (a typo is not an empty archive);
    // the configured one may not exist yet (nothing archived).
    let url = match archive {
        Some(url) => {
            let cwd = std::env::current_dir().context("cannot tell the working directory")?;
            let url = url.under(&cwd);
            if let Some(dir) = url.local_dir()
                && !dir.is_dir()
            {
                bail!("{}: not an archive directory", dir.display());
            }
            url
        }
        None => match loaded.archive()? {
            Some(url) => url,
            None => ArchiveUrl::Local(loaded.base.join("archive")),
        },
    };
    let archive = BlockingArchive::connect(&url, &loaded.file.s3.options())?;
    let scratch = tempfile::Builder::new()
        .prefix("maillog-compact-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    Ok((MirrorStore::new(archive, scratch.path()), zone, scratch))
}

/// Runs `maillog compact`.
pub fn compact(args: CompactArgs) -> Result<ExitCode> {
    let (store, zone, _scratch) = store_of(args.archive, args.config.as_deref())?;
    let clock = Clock {
        now: chrono::Utc::now().timestamp(),
        settle: i64::try_from(args.settle.as_secs()).unwrap_or(i64::MAX),
        busy: Default::default(),
    };
    let passed = pass::run(
        &store,
        &Scope::Everything,
        &zone,
        &clock,
        &mut Known::default(),
        pass::cores(),
    )?;
    for key in &passed.conflicts {
        eprintln!(
            "maillog compact: {key} is in the mirror already with other content (another writer's, made from other archive files): left as it is; run compact again to mirror the rest"
        );
    }
    eprintln!(
        "maillog compact: {} mirror files written ({} records of {} archive files) under {}/{}/; {} archive files wait for their hour to settle",
        passed.written,
        passed.records,
        passed.archive_files,
        store.archive(),
        plan::PREFIX,
        passed.waiting
    );
    Ok(if passed.conflicts.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `maillog verify`: exit 0 when the mirror holds exactly the archive's records.
pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let (store, _, _scratch) = store_of(args.archive, args.config.as_deref())?;
    let found = maillog_mirror::verify::verify(&store)?;
    for difference in &found.differences {
        eprintln!("maillog verify: {difference}");
    }
    eprintln!(
        "maillog verify: {} mirror files, {} records compared; {} differences; {} archive files not mirrored yet",
        found.files,
        found.records,
        found.differences.len(),
        found.not_mirrored.len()
    );
    Ok(if found.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
