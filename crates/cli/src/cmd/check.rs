//! `maillog check`: the settings `maillog run` would take, read and checked without running
//! anything, and printed; with `--probe-archive`, a real round trip through the archive.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use maillog_config::settings::{self, Flags};

/// Arguments of `maillog check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The config file [default: pipeline.toml in the current directory, if there is one].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The archive to check instead of the config's: file://DIR or s3://bucket/prefix.
    #[arg(long, value_name = "URL")]
    archive: Option<String>,
    /// Also try the archive for real: put a small object, find it, read it back, delete it.
    #[arg(long)]
    probe_archive: bool,
}

/// `maillog check`: the settings are read and checked without running anything; with
/// `--probe-archive`, a real round trip through the archive.
pub fn check(args: CheckArgs) -> Result<ExitCode> {
    let flags = Flags {
        config: args.config,
        archive: args.archive,
        once: true,
        ..Flags::default()
    };
    let settings = settings::resolve(flags, false)?;
    println!("inputs: {:?}", settings.inputs);
    println!("spool: {}", settings.spool.display());
    println!(
        "archive: {} (keys: {})",
        settings.archive_url, settings.key_template
    );
    println!(
        "zone: {}; lateness: {} s; bzip2 level {}",
        settings.batch.zone, settings.batch.lateness, settings.batch.level
    );
    let service = &settings.service;
    match service.metrics {
        Some(address) => println!("metrics: http://{address}/metrics, /health, /top"),
        None => println!("metrics: off ([metrics] address)"),
    }
    println!(
        "health: unhealthy after {} s of failing uploads or above {} MiB of spool",
        service.health.upload_failing.as_secs(),
        service.health.max_spool_bytes >> 20
    );
    println!(
        "stop: within {:?}; logs: {} at {:?}",
        service.shutdown,
        if service.log.json { "json" } else { "text" },
        service.log.level
    );
    if args.probe_archive {
        let uploader = maillog_archive::Uploader::start(
            &settings.archive_url,
            &settings.s3,
            1,
            maillog_archive::Backoff::default(),
        )?;
        let dir = std::env::temp_dir();
        for step in uploader.probe(&dir)? {
            println!("archive probe: {step}");
        }
        println!("archive probe: OK");
    }
    println!("config OK");
    Ok(ExitCode::SUCCESS)
}
