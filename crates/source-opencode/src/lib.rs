//! source-opencode: everything tonbo-ingest knows about OpenCode and Crush. It finds their
//! stores, reads every on-disk layout into source records (`opencode-read` is a thin binary over
//! [`Reader`] and [`follow`]), and maps those records to Durable Sessions events
//! ([`OpenCodeMapper`], the mapping `tonbo-map` dispatches `"source":"opencode"` records to).
//!
//! The format facts the code relies on are in this crate's FORMAT.md. Two unrelated codebases
//! are called OpenCode, and between them there are six layouts; this crate reads five of them
//! (T0 is read as T1, whose shapes it shares). The reader and the mapping name them with one
//! type, [`Layout`], written in every record as its wire name (`g1` .. `t3`):
//!
//! ```text
//! G1  Go opencode-ai/opencode   <project>/.opencode/opencode.db   sessions, messages
//! G2  charmbracelet/crush       <project>/.crush/crush.db         + messages.provider
//! T1  TypeScript ≤ 1.1          <data>/storage/ (JSON files)      (and T0 project/*/storage)
//! T2  TypeScript 1.2+           <data>/opencode*.db               session, message, part
//! T3  OpenCode 2                the same file as T2               session_v2, session_message
//! ```
//!
//! Where to look is in [`sources`]; what a database holds is told from its schema ([`schema`]),
//! never from its name. Databases are opened read-only and each session is read inside one read
//! transaction, so that a session is a consistent snapshot while OpenCode writes.
//!
//! Output, one source record per line ([`record`]): for each session a `"kind":"session"` record,
//! then one `"kind":"message"` record per message, in order:
//!
//! ```text
//! session  {"layout":L,"session":S}
//!          G: the `sessions` row, T2: the `session` row, T3: the `session_v2` row, each as an
//!          object of its columns (JSON text columns stay strings); T1: the session file's object
//! message  {"layout":L,"message":M,"parts":P}
//!          G1/G2: M = the `messages` row without `parts`; P = `parts` parsed (its envelopes
//!                 {"type","data"})
//!          T2:    M = {...data, "id", "sessionID"}; P = [{...part.data, "id", "sessionID",
//!                 "messageID"}] ordered by id (OpenCode's own row mapping)
//!          T1:    M = the message file's object; P = its part files' objects, ordered by id
//!          T3:    M = {"id","session_id","type","seq","time_created","time_updated","data"};
//!                 P = [] (a T3 message holds its content in `data`)
//! ```
//!
//! Order: sessions by (creation time, id); messages G `(created_at, rowid)` (seconds, random
//! UUIDs: never by id), T1/T2 `(time created, id)`, T3 `seq`.
//!
//! Merging: all databases are read before the JSON stores. T3 wins over T2 in the same file
//! (legacy T2 sessions not in `session_v2` are read through `message`/`part`); a database session
//! wins over the JSON store, whose messages that the database lacks (a partial import) are merged
//! into that session in order. Each session and message is emitted once; only ids are remembered
//! across sessions.
//!
//! `--follow` ([`follow`]) reads the same way first and then polls every database read-only (and
//! every JSON store) for what changed; the readers build each record exactly as in a plain run
//! and a gate ([`follow::Gate`]) lets a message out once, only once it is final, in its
//! session's order. A signal stops a plain run at a record boundary ([`Reader::stopped`]).
//!
//! The mapping ([`map`]) keys every event by the message id and the event's place in it, so a
//! message read from two layouts maps to the same keys; nothing of a record's provenance reaches
//! an event.

pub mod db;
pub mod fixture;
pub mod follow;
pub mod json;
pub mod map;
pub mod reader;
pub mod record;
pub mod scan;
pub mod schema;
pub mod sources;
pub mod store;

pub use map::OpenCodeMapper;
pub use reader::{
    busy_timeout_from_env, parse_modified_after, parse_time, stored_time, Reader, SourceFailure,
    Stats, BUSY_TIMEOUT_ENV, DEFAULT_BUSY_TIMEOUT, STAGE,
};
pub use record::{Layout, SOURCE};
