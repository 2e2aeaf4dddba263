//! `codex-read --scan`: the session files the roots hold, planned as a read plans them (one
//! per session: `sessions/` over `archived_sessions/`, a plain file over its `.zst`), each with
//! the session id a read gives it, from its head (the first lines, or a document's head), not
//! from the rest of it. No age-based deletion by Codex is known, so no line expires.

use std::path::Path;

use anyhow::Result;
use tonbo_core::scan::{FoundSession, ScanWriter};

use crate::doc;
use crate::lines::{open_document, open_lines};
use crate::read::{prescan, Reader};
use crate::roots::{plan, Format, Found, Plan, Role, Root};

impl Reader<'_> {
    /// Lists the session files of `roots`; a file whose head tells no session (a read would
    /// report it) is not listed.
    pub fn scan_roots(&mut self, roots: &[Root], scan: &mut ScanWriter) -> Result<()> {
        let listed: Vec<(Role, Vec<Found>)> = roots
            .iter()
            .map(|root| (root.role, self.list(root)))
            .collect();
        for planned in plan(&listed, None) {
            let Plan::Read(found) = planned else { continue };
            let Some(session) = self.session_of(&found)? else {
                continue;
            };
            let location = roots
                .iter()
                .find(|r| found.path.starts_with(&r.path))
                .unwrap_or(&roots[0]);
            let session = FoundSession {
                session,
                location: location.path.display().to_string(),
                bytes: std::fs::metadata(&found.path).map_or(0, |m| m.len()),
                updated: found.mtime,
            };
            scan.write(self.io.out, &session)?;
        }
        self.io.out.flush()?;
        Ok(())
    }

    /// The session id a read gives `found`, from its head.
    fn session_of(&mut self, found: &Found) -> Result<Option<String>> {
        let path: &Path = &found.path;
        match found.format {
            Format::Document => {
                let Ok(reader) = open_document(path) else {
                    return Ok(None);
                };
                let (head, _) = doc::read_head(reader);
                Ok(head
                    .kind()
                    .map(|kind| self.doc_session(path, &head, kind).0))
            }
            Format::Lines | Format::Zst => {
                let zst = found.format == Format::Zst;
                match open_lines(path, zst).map(prescan) {
                    Ok(Ok(detected)) => Ok(self.jsonl_session(path, detected)?.map(|(s, _)| s)),
                    _ => Ok(None),
                }
            }
        }
    }
}
