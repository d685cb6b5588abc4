//! Argument types more than one subcommand takes.
//!
//! It owns only how they are spelled on the command line and what they become; it never acts
//! on them.

use clap::ValueEnum;
use maillog_parse::Kind;

/// A record kind on the command line: `from` or `to`.
// The variants have no doc comments: clap would turn them into help text, and `--help` would
// change.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    From,
    To,
}

impl From<KindArg> for Kind {
    fn from(kind: KindArg) -> Kind {
        match kind {
            KindArg::From => Kind::From,
            KindArg::To => Kind::To,
        }
    }
}

/// How `check` and `run` write what they found: `text` for people, `json` (one object on
/// stdout) for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}
