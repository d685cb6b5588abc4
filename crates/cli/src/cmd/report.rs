//! `maillog report`: a pflogsumm-style summary of the archive, raw logs or S3.
//!
//! This module owns only the arguments of a report; the scope, running and exit code are
//! [`super::query`]'s, the output [`crate::render`]'s. It never counts anything itself.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use maillog_aggregate::query::Where;
use maillog_aggregate::report::{ReportQuery, ReportTally};

use super::query::{self, Scope, finish, write};
use crate::render;

/// Arguments of `maillog report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only records whose FIELD (any key of `top`) is VALUE; repeatable, all must hold. A
    /// field one kind carries leaves the records of the other kind out (`dest_domain=…`: no
    /// `from` record, so nothing received).
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    wheres: Vec<Where>,

    #[command(flatten)]
    scope: Scope,
}

/// Runs `maillog report`.
pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let config = args.scope.config()?;
    let query = ReportQuery {
        filter: args.scope.filter(args.wheres, &config),
        n: args.scope.n,
    };
    let scope = &args.scope;
    let outcome = query::run(scope, config, || ReportTally::new(&query))?;
    let answer = outcome.tally.answer();
    write(|out| render::report(out, scope.format, &answer))?;
    Ok(finish(scope, &outcome))
}
