//! source-gemini: what tonbo-ingest knows about Gemini CLI's chats. So far: telling a chat file's
//! lines apart and replaying them into the session Gemini CLI itself would load ([`record`]).
//! Discovery, the `gemini-read` binary, the mapping and follow are still to come (STATUS.md).
//!
//! The format facts are in this crate's FORMAT.md.

pub mod files;
pub mod record;

/// The reader's name in its messages.
pub const STAGE: &str = "gemini-read";
/// The `source` of Gemini CLI records and events.
pub const SOURCE: &str = "gemini-cli";
