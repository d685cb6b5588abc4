//! Aggregation over records.
//!
//! Today this crate is the live top-N of the service (`maillog run` answering
//! `/top?by=…&n=…&window=…`): [`LiveTop`] counts every record the service parses, by each
//! [`Dimension`], in sliding windows of event time, and answers the N largest keys from memory
//! without touching the archive. Later it will also hold the archive map-reduce of
//! `maillog top`, which must count under the same keys: both use [`Dimension::key`].
//!
//! # The parts
//! - [`key`]: the dimensions and which key a record counts under in each.
//! - [`live`]: the sliding windows, the bounded per-bucket counters and the answers.
//!
//! The crate does no I/O, never reads the clock (time is the records' event time) and never
//! panics on any record.

pub mod key;
pub mod live;

pub use key::Dimension;
pub use live::{LiveTop, LiveWindow, TopAnswer, TopEntry};
