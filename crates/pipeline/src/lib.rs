//! The running pipeline of `maillog run`: tailer → parser → windows → spool → archive, as a
//! one-shot job or as the service on the central syslog host.
//!
//! ```text
//!  mail.log, rotations ──▶ maillog_tail ──chunks──▶ pipeline ──records──▶ maillog_batch
//!   (syslog-ng writes)     (thread; positions)     (parse, route,        (windows, spool,
//!                                ▲                  commit, replay)       bzip2 workers)
//!                                └──── checkpoint: positions + spool state ◀──┘  │ sealed
//!                                                                                ▼ files
//!                          /metrics /health /top ◀── observe, http    archiving ──▶ maillog_archive
//!                                                                      (release)     (local, S3)
//! ```
//!
//! What each module owns:
//! - [`run`] (`pipeline`): the loop — take chunks, commit about once a second, archive — and,
//!   as children, taking a chunk (`take`), a full disk (`disk_full`) and the service's stop and
//!   reload (`service`);
//! - `replay`: reading lines again for open windows the spool lost;
//! - `archiving`: sealed files to the archive and out of the spool, in order;
//! - `mirroring`: the Parquet mirror of settled hours, written beside the archive from what
//!   it holds (`[mirror]`), on a thread of its own;
//! - `observe` and `http`: metrics, health and the live top-N, and where they are served;
//!   `live_feed`: the pipeline's side of the live top-N, which never blocks reading;
//! - `lifecycle`: signals and the spool's lock; `logging`: the service's own logs;
//!   `notify`: what systemd is told (ready, watchdog, status, stopping);
//! - [`Settings`]: what the binary resolved from the config and the flags; `fault`: the
//!   named points where a crash test stops the process.
//!
//! The binary (`crates/cli`) reads the config and the flags into [`Settings`] and drives
//! [`run`]; a test can drive it the same way, with [`Settings::new`] (`tests/drive.rs`).

mod archiving;
mod fault;
mod http;
mod lifecycle;
mod live_feed;
pub mod logging;
mod mirroring;
mod notify;
mod observe;
mod pipeline;
mod replay;
mod settings;
mod year;

pub use lifecycle::Signals;
pub use observe::HealthLimits;
pub use pipeline::{Summary, run};
pub use settings::{LogSettings, MirrorSettings, Service, ServiceSettings, Settings};
