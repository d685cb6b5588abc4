//! What maillog's tests and benchmarks share: the real servers they run against — an
//! S3-compatible store ([`s3`]) and a syslog-ng with logrotate ([`syslog`]) — a small disk to
//! fill ([`tmpfs`]), the archive's records as multisets ([`records`]), log lines ([`lines`]),
//! and whether the real programs a test runs are installed ([`tools`]).
//!
//! Test support only: it panics on any failure (that is the test's failure), and nothing in
//! the product depends on it.

pub mod lines;
pub mod records;
pub mod s3;
pub mod syslog;
pub mod tmpfs;
pub mod tools;
