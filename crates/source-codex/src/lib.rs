//! source-codex: everything tonbo-ingest knows about OpenAI Codex CLI sessions, in one place:
//! where they are ([`roots`]), what generation a file is ([`detect`], [`doc`]), reading them as
//! source records ([`read`], [`record`]), following them as they are written ([`follow`]), and
//! mapping the records to Durable Sessions events ([`map`]). `codex-read` is a thin binary over
//! the first four; `tonbo-map` dispatches `codex` records to [`CodexMapper`].
//!
//! The format facts the code relies on are in this crate's FORMAT.md.
//!
//! ```text
//! $CODEX_HOME/                  default ~/.codex
//!   sessions/
//!     rollout-YYYY-MM-DD-<uuid>.json                    V0, TS CLI, flat; always under
//!                                                       ~/.codex, whatever CODEX_HOME
//!     rollout-YYYY-MM-DD[Thh-mm-ss]-<uuid>.jsonl        V1 and early V2, flat
//!     YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl              V1..V4
//!     YYYY/MM/DD/rollout-<ts>-<uuid>.jsonl.zst          V4, zstd; the plain file wins
//!   archived_sessions/<same names>                      flat
//!   history.jsonl, session_index.jsonl, *.sqlite, log/  not transcripts, skipped
//! ```
//!
//! Output of the reader, one source record per line:
//!
//! ```text
//! V2+   {"v":1,"source":"codex","session":ID,"record":LINE,"at":"NAME:N",
//!        "provenance":{"file":F,"line":N}}   NAME: F's file name without `.zst`
//! V1    the same with "kind":"v1", for every line of the file
//! V0    "kind":"v0-session" (record: the `session` object, row "session", at "NAME:session"),
//!       then "kind":"v0-item" per element of `items` (row: its 0-based index, as a string)
//! seed  "kind":"seed-session" (record: the top-level object without `messages`), then
//!       "kind":"seed-message" per element of `messages`
//! ```

pub mod detect;
pub mod doc;
pub mod follow;
pub mod lines;
pub mod map;
pub mod read;
pub mod record;
pub mod roots;
pub mod scan;

pub use map::CodexMapper;
pub use read::{parse_modified_after, Reader, Stats, Yield};
pub use roots::{existing_default_roots, follow_roots, roots_of_path, Role, Root};

/// The reader's name, which its messages start with.
pub const STAGE: &str = "codex-read";
/// The `source` of Codex records.
pub const SOURCE: &str = "codex";
