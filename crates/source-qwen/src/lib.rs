//! source-qwen: everything tonbo-ingest knows about Qwen Code, in one place: where its session
//! files are and which files are its ([`files`]), reading them into source records ([`read`]),
//! following them while they are written ([`follow`]), listing them ([`scan`]), and mapping
//! their records to Durable Sessions events ([`map`]).
//!
//! The format facts all of it relies on are in this crate's FORMAT.md; the mapping table is in
//! its README.md. `qwen-read` is a thin binary over it, and `tonbo-map` maps `qwen-code`
//! records with its [`QwenMapper`].

pub mod files;
pub mod follow;
pub mod map;
pub mod read;
pub mod scan;

pub use files::{default_roots, env_default_roots, existing_default_roots};
pub use map::QwenMapper;
pub use read::{Reader, Stats};

/// The reader's name in its messages.
pub const STAGE: &str = "qwen-read";
/// The `source` of Qwen Code records and events.
pub const SOURCE: &str = "qwen-code";
