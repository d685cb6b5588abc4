//! `maillog compact` and `maillog verify`: the columnar mirror of an archive that exists
//! already (see `maillog_mirror`).
//!
//! This module owns the arguments and the summary lines; what is written and how is
//! `maillog_mirror`'s. For now the mirror lives beside a local archive (`mirror/` under its
//! root); an S3 archive is refused with a message.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use maillog_mirror::records::{Record, to_batch};
use maillog_mirror::store::covered;
use maillog_mirror::{LocalMirror, plan};

/// Arguments of `maillog compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The archive's root directory [default: the configured archive].
    #[arg(value_name = "ARCHIVE")]
    archive: Option<PathBuf>,

    /// How long after its end an hour is mirrored (its windows sealed, late parts mostly in);
    /// what comes later gets a file of its own.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    settle: Duration,

    /// The config whose archive and time zone are used [default: as for `run`].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Arguments of `maillog verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The archive's root directory [default: the configured archive].
    #[arg(value_name = "ARCHIVE")]
    archive: Option<PathBuf>,

    /// The config whose archive is used [default: as for `run`].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The archive's root and the zone its names are in.
fn archive_of(
    archive: Option<PathBuf>,
    config: Option<&std::path::Path>,
) -> Result<(PathBuf, maillog_parse::Zone)> {
    let loaded = maillog_config::load_or_default(config)?;
    let zone = loaded.zone()?;
    let root = match archive {
        Some(root) => root,
        None => match loaded.archive()? {
            Some(url) => match url.local_dir() {
                Some(dir) => dir.to_owned(),
                None => bail!(
                    "the mirror is written beside a local archive only for now: {url} is not one"
                ),
            },
            None => std::env::current_dir()
                .context("cannot tell the working directory")?
                .join("archive"),
        },
    };
    if !root.is_dir() {
        bail!("{}: not an archive directory", root.display());
    }
    Ok((root, zone))
}

/// Runs `maillog compact`.
pub fn compact(args: CompactArgs) -> Result<ExitCode> {
    let (root, zone) = archive_of(args.archive, args.config.as_deref())?;
    let mirror = LocalMirror::new(&root);
    let files = mirror.mirror_files()?;
    let (held, _) = covered(&files);
    let mirrored = files.iter().map(|f| f.key.clone()).collect();
    let settle = i64::try_from(args.settle.as_secs()).unwrap_or(i64::MAX);
    let now = chrono::Utc::now().timestamp();
    let plan = plan::plan(
        &mirror.archive_files()?,
        &held,
        &mirrored,
        &zone,
        settle,
        now,
    );
    let (mut written, mut records, mut archive_files) = (0, 0, 0);
    for group in &plan.groups {
        let mut all: Vec<Record> = Vec::new();
        for key in &group.covers {
            all.extend(mirror.archive_records(key)?);
        }
        let batch = to_batch(group.kind, &all)
            .with_context(|| format!("{}: cannot make its columns", group.key))?;
        if mirror.write(&group.key, &group.covers, &batch)? {
            written += 1;
            records += all.len();
            archive_files += group.covers.len();
        }
    }
    eprintln!(
        "maillog compact: {written} mirror files written ({records} records of {archive_files} archive files) under {}; {} archive files wait for their hour to settle",
        root.join(plan::PREFIX).display(),
        plan.waiting
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `maillog verify`: exit 0 when the mirror holds exactly the archive's records.
pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let (root, _) = archive_of(args.archive, args.config.as_deref())?;
    let found = maillog_mirror::verify::verify(&LocalMirror::new(&root))?;
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
