//! source-claude: everything tonbo-ingest knows about Claude Code, in one place: where its
//! transcripts are and what each file is ([`files`]), reading them into source records
//! ([`read`]) and following them while they are written ([`follow`]), and mapping their lines to
//! Durable Sessions events ([`map`]). What the reader writes beside a line and the mapping reads
//! back (a record's kind, its place, the agent a file names) is typed once, in [`record`].
//!
//! The format facts all of it relies on are in this crate's FORMAT.md; the mapping table is in
//! its README.md. `claude-read` is a thin binary over it, and `tonbo-map` maps `claude-code`
//! records with its [`ClaudeMapper`].

pub mod files;
pub mod follow;
pub mod map;
pub mod read;
pub mod record;
pub mod scan;
mod summaries;

pub use files::{default_roots, env_default_roots, existing_default_roots};
pub use map::ClaudeMapper;
pub use read::{Reader, Stats};

/// The reader's name in its messages.
pub const STAGE: &str = "claude-read";
/// The `source` of Claude Code records and events.
pub const SOURCE: &str = "claude-code";
