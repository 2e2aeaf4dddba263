//! source-copilot: everything tonbo-ingest knows about GitHub Copilot CLI sessions, in one
//! place: where they are ([`files`]), reading them as source records ([`read`], [`record`]),
//! following them as they are written ([`follow`]), listing them ([`scan`]), and mapping the records to Durable Sessions
//! events ([`map`]). `copilot-read` is a thin binary over the first three; `tonbo-map` dispatches
//! `copilot-cli` records to [`CopilotMapper`].
//!
//! The format facts the code relies on, and where each was confirmed, are in this crate's
//! FORMAT.md.
//!
//! ```text
//! $COPILOT_HOME/                      default ~/.copilot ($XDG_CONFIG_HOME/.copilot before 0.0.422)
//!   session-state/<session-id>/events.jsonl   one typed event per line, appended (0.0.342+)
//!   session-state/<session-id>.jsonl          the same events, flat (early 0.0.34x builds)
//!   history-session-state/<name>.json         one JSON document per session (before 0.0.342)
//! ```
//!
//! Output of the reader, one source record per line:
//!
//! ```text
//! events  {"v":1,"source":"copilot-cli","session":ID,"record":LINE,"at":"ID/events.jsonl:N",
//!          "provenance":{"file":F,"line":N}}     flat files: "at":"ID.jsonl:N"
//! legacy  "kind":"legacy-session" (record: the document without chatMessages and timeline,
//!         at "NAME.json:session"), then "kind":"legacy-message" per chatMessages element
//!         (at "NAME.json:<index>"), provenance {"file":F,"row":...}
//! ```

pub mod files;
pub mod follow;
pub mod map;
pub mod read;
pub mod record;
pub mod scan;

pub use files::{default_roots, Found, Layout};
pub use map::CopilotMapper;
pub use read::{Reader, Stats};

/// The reader's name, which its messages start with.
pub const STAGE: &str = "copilot-read";
/// The `source` of Copilot CLI records.
pub const SOURCE: &str = "copilot-cli";
