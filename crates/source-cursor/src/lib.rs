//! source-cursor: everything tonbo-ingest knows about Cursor's chats (the IDE's Agent/Ask
//! chats, which Cursor calls composers): where Cursor keeps them and which databases under a
//! path hold them ([`store`]), reading a database into source records ([`read`]), following the
//! databases while Cursor writes them ([`follow`]), listing the chats ([`scan`]), and mapping the
//! records to Durable Sessions events ([`map`]). The `cursor-read` binary is a thin layer over
//! [`read`]; [`fixture`] builds the test databases from SQL text.
//!
//! Cursor is closed source: the format facts in this crate's FORMAT.md each name the public
//! programs that read Cursor's databases they rest on.

pub mod fixture;
pub mod follow;
pub mod map;
mod raw;
pub mod read;
pub mod scan;
pub mod store;

/// The reader's name in its messages.
pub const STAGE: &str = "cursor-read";
/// The `source` of Cursor records and events.
pub const SOURCE: &str = "cursor";

pub use map::CursorMapper;
