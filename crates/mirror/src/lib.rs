//! The columnar mirror of the archive: the records of archived windows, again, as Parquet.
//!
//! The bzip2 JSON archive is the contract (`CONTRACT.md`); the mirror is a second, derived form
//! of the same records for the readers bzip2 JSON is slow or closed to (DuckDB, Polars, Athena
//! by the byte, `maillog top` over a day). What it owns:
//!
//! - [`schema`]: the columns — every field as the string the archive has, a map for the keys
//!   that are not columns, and typed columns derived from them (`ts_utc`, `size_bytes`, the
//!   delays in seconds). `SCHEMA.md` beside this crate's `Cargo.toml` writes it down.
//! - [`records`]: archive records (JSON lines) to Arrow columns and back.
//! - [`plan`]: which mirror files the archive's files make, and their names: one file per kind
//!   per hour once the hour is settled, and one file per archive file that came later (a late
//!   part, a window sealed after its hour was mirrored), so that the mirror holds exactly the
//!   archive's records, each once.
//! - [`store`]: the mirror's files beside the archive's, on disk or in S3: a file is put
//!   whole under a key that is never replaced; every file says in its footer which archive
//!   files it holds.
//! - [`cache`]: the records of the streams the service compressed, kept until mirrored so that
//!   a pass need not decode them again.
//! - [`pass`]: one pass of planning and writing, for `maillog compact` and the service alike.
//! - [`verify`]: the mirror against the archive, records as multisets, per mirror file.
//!
//! Without the default feature `store` (the archive's client, S3 included) it is the schema,
//! the records' columns and the plan alone: what the queries of `maillog-aggregate` need to
//! read mirror files.
//!
//! It never writes to the archive, and never decides when a window is sealed (the batcher
//! does): it mirrors what is archived.

#[cfg(feature = "store")]
pub mod cache;
#[cfg(feature = "store")]
pub mod pass;
pub mod plan;
pub mod records;
pub mod schema;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "store")]
pub mod verify;

#[cfg(feature = "store")]
pub use cache::StreamCache;
#[cfg(feature = "store")]
pub use pass::{Known, Passed, Scope};
pub use plan::{Clock, Group, Plan};
#[cfg(feature = "store")]
pub use store::{MirrorError, MirrorStore};
