//! source-cline: what tonbo-ingest knows about the Cline family of VS Code extensions (Cline,
//! Roo Code, Kilo Code), which keep one folder per task in the editor's globalStorage with whole-
//! file JSON arrays (`api_conversation_history.json`, `ui_messages.json`) rewritten on every turn.
//!
//! Work in progress: the format facts confirmed so far are in this crate's FORMAT.md, and what is
//! left in STATUS.md. The reader, mapping and follow are not written yet.

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
