//! source-cline: what tonbo-ingest knows about the Cline family of VS Code extensions (Cline,
//! Roo Code, Kilo Code), which keep one folder per task in the editor's globalStorage with
//! whole-file JSON arrays rewritten on every turn: where the folders are ([`roots`]), reading
//! them as source records ([`read`], [`record`]), following them as they are rewritten
//! ([`follow`]), and mapping the records to Durable Sessions events ([`map`]). `cline-read` is
//! a thin binary over the first four; `tonbo-map` dispatches `cline` records to
//! [`ClineMapper`].
//!
//! The format facts the code relies on are in this crate's FORMAT.md.
//!
//! ```text
//! <editor user dir>/globalStorage/<extension id>/    or ~/.cline/data, or Roo's custom path
//!   tasks/<task id>/
//!     api_conversation_history.json   the transcript: Anthropic messages (Roo v2: an envelope)
//!     ui_messages.json                what the panel showed: asks and says with `ts`
//!     history_item.json               Roo Code: the task's history item
//!   state/taskHistory.json            Cline: every task's history item
//! ~/.cline/data/db/<session id>/      the newest Cline (SDK), read as a task:
//!   <id>.messages.json                  {version, messages}: the `api` records
//!   <id>.json                           the manifest: the `task` record
//! ```
//!
//! Output of the reader, one source record per line, `kind` `<variant>/<part>`:
//!
//! ```text
//! {"v":1,"source":"cline","kind":"roo-code/api","session":TASK_ID,"record":ELEMENT,
//!  "at":"api:3:1733300000000","provenance":{"file":F,"row":"3"}}
//! parts: task (the history item, at "task"), api, ui (at "ui:<index>:<ts>")
//! ```

pub mod doc;
pub mod follow;
pub mod map;
pub mod read;
pub mod record;
pub mod roots;
pub mod scan;

pub use map::ClineMapper;
pub use read::{Reader, Stats};

/// The reader's name, which its messages start with.
pub const STAGE: &str = "cline-read";
/// The `source` of records and events from every variant of the family.
pub const SOURCE: &str = "cline";

/// Which extension of the family wrote a task folder; carried in records beside [`SOURCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Cline, extension id `saoudrizwan.claude-dev`.
    Cline,
    /// Roo Code, extension id `rooveterinaryinc.roo-cline`.
    RooCode,
    /// Kilo Code, extension id `kilocode.kilo-code`.
    KiloCode,
}

impl Variant {
    /// Every variant, in the order discovery looks for them.
    pub const ALL: [Variant; 3] = [Variant::Cline, Variant::RooCode, Variant::KiloCode];

    /// The name records carry (`cline`, `roo-code`, `kilo-code`).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Cline => "cline",
            Variant::RooCode => "roo-code",
            Variant::KiloCode => "kilo-code",
        }
    }

    /// The folder name of the extension under an editor's `User/globalStorage/`.
    pub fn extension_id(self) -> &'static str {
        match self {
            Variant::Cline => "saoudrizwan.claude-dev",
            Variant::RooCode => "rooveterinaryinc.roo-cline",
            Variant::KiloCode => "kilocode.kilo-code",
        }
    }

    /// The variant whose extension folder is named `id`, if any.
    pub fn from_extension_id(id: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.extension_id() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_ids_name_their_variant() {
        for v in Variant::ALL {
            assert_eq!(Variant::from_extension_id(v.extension_id()), Some(v));
        }
        assert_eq!(Variant::from_extension_id("saoudrizwan.claude-dev-x"), None);
    }
}
