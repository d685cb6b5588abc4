//! `maillog top`: the top keys of the archive, raw logs or S3.
//!
//! This module owns the arguments of a top (key, kind, metric, filters) and turns them into a
//! `maillog_aggregate::tally::TopQuery`; the scope, running and exit code are
//! [`super::query`]'s, the output [`crate::render`]'s. It never counts anything itself.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use maillog_aggregate::query::{Key, Where};
use maillog_aggregate::tally::{Metric, TopQuery, TopTally};

use super::query::{self, Scope, finish, write};
use crate::args::KindArg;
use crate::render;

/// Arguments of `maillog top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// What to count by: mailserver, src, dest, relay, src_domain, dest_domain, status, or a
    /// record field (mailer, dsn, size, proto, …); an unknown name is an error.
    #[arg(long, value_name = "KEY")]
    by: Key,

    /// The records counted (default: the kind that carries KEY: `to` for dest*, status and
    /// delivery fields, else `from`).
    #[arg(long, value_enum)]
    kind: Option<KindArg>,

    /// What ranks: records, or message bytes (`to` records get their `from`'s size).
    #[arg(long, value_enum, default_value = "count")]
    metric: MetricArg,

    /// Only records whose FIELD (any key above) is VALUE; repeatable, all must hold.
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    wheres: Vec<Where>,

    #[command(flatten)]
    scope: Scope,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MetricArg {
    Count,
    Bytes,
}

/// Runs `maillog top`.
pub fn run(args: TopArgs) -> Result<ExitCode> {
    let config = args.scope.config()?;
    let query = TopQuery {
        kind: args.kind.map_or_else(|| args.by.default_kind(), Into::into),
        key: args.by,
        metric: match args.metric {
            MetricArg::Count => Metric::Count,
            MetricArg::Bytes => Metric::Bytes,
        },
        filter: args.scope.filter(args.wheres, &config),
        n: args.scope.n,
    };
    // A key the counted kind never carries: a usage error (exit 2, `main`), before any reading.
    query.check()?;
    let scope = &args.scope;
    let outcome = query::run(scope, config, || TopTally::new(&query))?;
    let rows = outcome.tally.answer();
    write(|out| render::top(out, scope.format, &query.key.to_string(), &rows))?;
    for key in outcome.tally.absent() {
        eprintln!(
            "maillog: no record scanned has the field {:?} (it is on {})",
            key.name(),
            key.carrier()
        );
    }
    Ok(finish(scope, &outcome))
}
