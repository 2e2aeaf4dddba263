//! Everything tonbo-ingest knows about Goose (block/goose): where its sessions are
//! ([`roots`]), reading them as source records ([`read`]: the SQLite `sessions.db` of current
//! versions and the per-session `.jsonl` files of older ones) and mapping those records to
//! Durable Sessions events ([`map::GooseMapper`]). The format facts it relies on, and where in
//! Goose's own code they were confirmed, are in FORMAT.md.

pub mod follow;
pub mod map;
mod raw;
pub mod read;
pub mod roots;
pub mod scan;

pub use map::GooseMapper;

/// The `source` of every record and event.
pub const SOURCE: &str = "goose";

/// The reader's name, in its messages.
pub const STAGE: &str = "goose-read";
