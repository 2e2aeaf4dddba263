//! source-gemini: everything tonbo-ingest knows about Gemini CLI's chats: which files under a
//! path are chats ([`files`]), telling a line apart as Gemini CLI's own loader does
//! ([`record`]), replaying a chat into each message once, settled ([`chat`]), reading files into
//! source records ([`read`]), following them ([`follow`]), and mapping the records to Durable
//! Sessions events ([`map`]), and listing them with Gemini CLI's retention ([`scan`]). The
//! `gemini-read` binary is a thin layer over [`read`].
//!
//! The format facts are in this crate's FORMAT.md.

pub mod chat;
pub mod files;
pub mod follow;
pub mod map;
pub mod read;
pub mod record;
pub mod scan;

/// The reader's name in its messages.
pub const STAGE: &str = "gemini-read";
/// The `source` of Gemini CLI records and events.
pub const SOURCE: &str = "gemini-cli";

pub use map::GeminiMapper;
