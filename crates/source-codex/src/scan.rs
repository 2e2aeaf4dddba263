//! `codex-read --scan`: the session files the roots hold, planned as a read plans them (one
//! per session: `sessions/` over `archived_sessions/`, a plain file over its `.zst`), without
//! reading them. No age-based deletion by Codex is known, so no line expires.

use anyhow::Result;
use tonbo_core::scan::{FoundSession, ScanWriter};

use crate::detect::session_from_file_name;
use crate::read::Reader;
use crate::roots::{plan, Plan, Role, Root};

impl Reader<'_> {
    /// Lists the session files of `roots`; a session's id is the one in its file name (the
    /// read takes it from the content, which names the same session).
    pub fn scan_roots(&mut self, roots: &[Root], scan: &mut ScanWriter) -> Result<()> {
        let listed: Vec<(Role, Vec<crate::roots::Found>)> = roots
            .iter()
            .map(|root| (root.role, self.list(root)))
            .collect();
        let location_of = |path: &std::path::Path| {
            roots
                .iter()
                .find(|r| path.starts_with(&r.path))
                .map_or_else(
                    || path.display().to_string(),
                    |r| r.path.display().to_string(),
                )
        };
        for planned in plan(&listed, None) {
            let Plan::Read(found) = planned else { continue };
            let name = found.path.file_name().unwrap_or_default().to_string_lossy();
            let bytes = std::fs::metadata(&found.path).map_or(0, |m| m.len());
            let session = FoundSession {
                session: session_from_file_name(&name).0,
                location: location_of(&found.path),
                bytes,
                updated: found.mtime,
            };
            scan.write(self.io.out, &session)?;
        }
        self.io.out.flush()?;
        Ok(())
    }
}
