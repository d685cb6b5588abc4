//! The subcommands of `maillog`, a file each; each is a thin driver over a library crate.
//!
//! - [`run`]: `maillog run` over `maillog-pipeline`; [`check`]: `maillog check`, the same
//!   settings checked (and the archive probed) without running;
//! - [`parse`]: `maillog parse` over `maillog-parse`'s `stream`, its inputs decompressed by
//!   `maillog-aggregate`'s `decompress`;
//! - [`top`] and [`report`] over `maillog-aggregate`'s `runner`, with what they share in
//!   [`query`];
//! - [`mirror`]: `maillog compact` and `maillog verify` over `maillog-mirror`;
//! - [`docs`]: `maillog completions` and the hidden `maillog manpages`, generated from the
//!   clap definitions.
//!
//! A command module owns its arguments, the settings it takes from the config, and its exit
//! code; it never parses a log line, reads an input or counts a record itself.

pub mod check;
pub mod docs;
pub mod mirror;
pub mod parse;
mod query;
pub mod report;
pub mod run;
pub mod top;
