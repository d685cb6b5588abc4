//! `maillog check`: the settings `maillog run` would take, read and checked without running
//! anything, and printed; then what this machine says of them, as the user running it
//! (`maillog_config::preflight`): inputs readable, spool and state writable with room, a local
//! archive writable; with `--probe-archive`, a real round trip through the archive.
//!
//! Exit codes: 0 nothing wrong (warnings may be printed), 1 a problem found, 2 the config or
//! the command line cannot be used (from `main`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use maillog_config::preflight::{self, Finding, Status};
use maillog_config::settings::{self, Flags};
use maillog_pipeline::Settings;

use crate::args::Output;

/// Arguments of `maillog check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The config file [default: $MAILLOG_CONFIG, else ./pipeline.toml, else
    /// /etc/maillog/pipeline.toml, else the built-in defaults].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The archive to check instead of the config's: file://DIR or s3://bucket/prefix.
    #[arg(long, value_name = "URL")]
    archive: Option<String>,
    /// Also try the archive for real: put a small object, find it, read it back, delete it.
    #[arg(long)]
    probe_archive: bool,
    /// `text` for people, `json`: one object with the settings and every finding.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    format: Output,
}

/// `maillog check`: the settings, then every finding; exit 1 when one is a problem.
pub fn check(args: CheckArgs) -> Result<ExitCode> {
    let loaded = maillog_config::load_or_default(args.config.as_deref())?;
    let origin = loaded.origin.clone();
    let flags = Flags {
        config: args.config,
        archive: args.archive,
        once: true,
        ..Flags::default()
    };
    let settings = settings::resolve_from(loaded, flags, false)?;
    let mut findings = preflight::inputs(&settings.inputs);
    let room = settings.service.health.max_spool_bytes;
    findings.push(preflight::writable_dir("spool", &settings.spool, room));
    if !settings.state.starts_with(&settings.spool) {
        findings.push(preflight::writable_dir("state", &settings.state, 0));
    }
    findings.extend(preflight::archive(
        &settings.archive_url,
        args.probe_archive,
    ));
    let probe = args.probe_archive.then(|| probe(&settings));
    if let Some((finding, _)) = &probe {
        findings.push(finding.clone());
    }
    let problems = findings
        .iter()
        .filter(|f| f.status == Status::Problem)
        .count();
    match args.format {
        Output::Text => {
            println!("config: {origin}");
            print_settings(&settings);
            for step in probe.iter().flat_map(|(_, steps)| steps) {
                println!("archive probe: {step}");
            }
            for finding in &findings {
                print_finding(finding);
            }
            if problems == 0 {
                println!("config OK");
            } else {
                println!("{problems} problem(s) found");
            }
        }
        Output::Json => {
            let out = json!({
                "config": { "path": origin.path(), "origin": origin.kind() },
                "settings": {
                    "inputs": settings.inputs,
                    "spool": settings.spool,
                    "state": settings.state,
                    "archive": settings.archive_url.to_string(),
                    "key_template": settings.key_template.to_string(),
                    "time_zone": settings.batch.zone.to_string(),
                    "metrics": settings.service.metrics.map(|a| a.to_string()),
                },
                "probe": probe.as_ref().map(|(_, steps)| steps),
                "findings": findings,
                "problems": problems,
                "ok": problems == 0,
            });
            println!("{out}");
        }
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The round trip through the archive: a finding, and the steps that went well.
fn probe(settings: &Settings) -> (Finding, Vec<String>) {
    let subject = settings.archive_url.to_string();
    let tried = maillog_archive::Uploader::start(
        &settings.archive_url,
        &settings.s3,
        1,
        maillog_archive::Backoff::default(),
    )
    .map_err(anyhow::Error::from)
    .and_then(|uploader| Ok(uploader.probe(&std::env::temp_dir())?));
    match tried {
        Ok(steps) => {
            let finding = Finding {
                check: "archive",
                subject,
                status: Status::Ok,
                message: "probe OK: put, found, read back, refused a second put, deleted".into(),
                fix: None,
            };
            (finding, steps)
        }
        Err(e) => {
            let finding = Finding {
                check: "archive",
                subject,
                status: Status::Problem,
                message: format!("probe failed: {e:#}"),
                fix: None,
            };
            (finding, Vec::new())
        }
    }
}

fn print_settings(settings: &Settings) {
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
}

/// `ok      input /var/log/mail.log: readable by maillog`, and the fix on its own line.
fn print_finding(finding: &Finding) {
    let status = match finding.status {
        Status::Ok => "ok",
        Status::Warning => "WARNING",
        Status::Problem => "PROBLEM",
    };
    let subject = if finding.subject.is_empty() {
        String::new()
    } else {
        format!(" {}", finding.subject)
    };
    println!("{status:<8}{}{subject}: {}", finding.check, finding.message);
    if let Some(fix) = &finding.fix {
        println!("        fix: {fix}");
    }
}
