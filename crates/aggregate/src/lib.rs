//! Aggregation over records: the live top-N of the service, and the archive queries of
//! `maillog top` and `maillog report`.
//!
//! Both answer "who sent, received, relayed the most" with the same keys ([`query::Key`],
//! [`Dimension`]). The live top ([`LiveTop`]) counts every record the service parses, in
//! sliding windows of event time, with bounded memory. The archive queries are a parallel
//! map-reduce ([`scan::scan`]): every core reads inputs (archive files, raw syslog, stdin, S3
//! streams) into its own [`tally::Tally`], and the tallies are merged at the end. What they
//! count is defined once, in `QUERIES.md` beside this crate's `Cargo.toml`, which the Spark job
//! of `contrib/spark` implements too.
//!
//! # The parts
//! - [`key`]: the live dimensions and which key a parsed record counts under in each.
//! - [`live`]: the sliding windows, the bounded per-bucket counters and the answers.
//! - [`decompress`]: bzip2, gzip or plain, told from an input's first bytes, read whole.
//! - [`fields`]: a record by field name, parsed or read from JSON; [`json`]: reading JSON lines;
//!   [`mirror`]: reading the Parquet mirror's files, in the columns a query needs.
//! - [`names`]: the known keys and the kind that carries each; [`query`]: keys, status,
//!   filters; [`tally`]: top-N counts and the size join;
//!   [`report`]: the pflogsumm-style summary.
//! - [`range`]: `--since`/`--until`/`--day` as typed, and which files and date folders a
//!   range lets a query skip;
//! - [`inputs`]: the INPUT arguments of a query as inputs (directories walked, `s3://` globs
//!   listed, what the range excludes skipped); [`scan`]: reading inputs on every core; [`runner`]: the two in a row, with
//!   problems and progress told to the caller.
//!
//! Only [`inputs`], [`scan`] and [`runner`] do I/O; nothing here reads the clock except for the
//! year of year-less stamps of raw syslog, and nothing panics on any input.

pub mod decompress;
pub mod fields;
pub mod inputs;
pub mod json;
pub mod key;
pub mod live;
pub mod mirror;
pub mod names;
pub mod query;
pub mod range;
pub mod report;
pub mod runner;
pub mod scan;
pub mod tally;

pub use key::Dimension;
pub use live::{LiveTop, LiveWindow, PendingRecord, TopAnswer, TopEntry};
