//! source-gemini: what tonbo-ingest knows about Gemini CLI's chats. So far: which files under a
//! path are chats ([`files`]), a chat file cut into the pieces the reader will write ([`lines`]),
//! and telling a line apart and replaying lines into the session Gemini CLI itself would load
//! ([`record`]). The `gemini-read` binary, the mapping and follow are still to come (STATUS.md).
//!
//! The format facts are in this crate's FORMAT.md.

pub mod files;
pub mod lines;
pub mod record;

/// The reader's name in its messages.
pub const STAGE: &str = "gemini-read";
/// The `source` of Gemini CLI records and events.
pub const SOURCE: &str = "gemini-cli";
