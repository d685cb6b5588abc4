//! Batches: records cut into 5-minute windows per kind, compressed with bzip2 as they arrive,
//! kept in a spool on disk until the archive has them.
//!
//! # The parts
//! - [`window`]: which window a record belongs to and what its file is called.
//! - [`compress`]: the pool of bzip2 workers; each 900 kB block of a window becomes an
//!   independent bzip2 stream (a multistream file), compressed on whichever core is free.
//! - [`spool`]: the window files on disk and what of them is durable.
//! - [`batcher`]: routing records to windows, the watermark, sealing on time.
//!
//! # Durability: why a crash at any instant loses and repeats nothing
//! The spool and the tailer's positions are committed together, in one atomic write of the
//! tailer's checkpoint (`maillog_tail::Checkpointer::commit_with`): the spool's state says how
//! long each open window's files are and which sealed files wait for the archive; the
//! positions say which lines those records came from. The cycle, every second or so:
//!
//! 1. Records are appended to their window's current block in memory; a full block goes to the
//!    compressors. Nothing is durable yet; a crash here loses only lines the tailer has not
//!    committed, and it reads them again.
//! 2. [`Batcher::seal_due`]: windows whose time has come get their last block compressed,
//!    their file fsynced and renamed into `sealed/`. Still not committed: after a crash here the
//!    restart finds the file sealed but the state saying "open, this long", moves it back and
//!    cuts it to that length.
//! 3. [`Batcher::sync`]: compressed blocks are appended to their streams file, the current
//!    block's records written to its raw file, everything fsynced. A crash here leaves bytes
//!    beyond the committed lengths; the restart cuts them off.
//! 4. The caller commits the returned state with the positions of every line added (temp file,
//!    fsync, rename, fsync of the directory). This is the instant the records become durable
//!    and the lines done: before it, the old state and old positions hold; after it, the new.
//! 5. [`Batcher::committed`]: raw files of blocks now compressed and committed are deleted.
//! 6. Sealed files go to the archive, which copies them atomically and verifies them; then
//!    [`Batcher::release`] deletes them from the spool, and the next commit forgets them. A
//!    crash between archive and release archives the same file again: same name, same bytes.
//!
//! Block boundaries depend only on the records (a block is cut when the next record would not
//! fit), so a window's file is the same bytes however often the process was restarted while
//! it was open.

pub mod batcher;
pub mod compress;
pub mod ledger;
pub mod spool;
pub mod window;

pub use batcher::{BatchConfig, BatchState, BatchStats, Batcher};
pub use spool::{KeyPin, LostWindow, Recovery, SealedFile, SpoolError, SpoolState};
pub use window::{
    KeyTemplate, KeyTemplateError, WINDOW_SECONDS, WindowId, render_key, window_start,
};
