//! Everything tonbo-ingest knows about Claude Code.

mod read;
pub use read::*;
pub mod map;
pub mod follow;
