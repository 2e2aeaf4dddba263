//! `copilot-read --scan`: the sessions a read would map, listed without reading them: each
//! session once, with its bytes on disk and its last update (the file's modification time).
//! Copilot CLI deletes no session by itself (only when asked: `/session delete`), so no line
//! carries an expiry (FORMAT.md, "Where sessions are").

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Result;
use tonbo_core::scan::{size_and_mtime, FoundSession, ScanWriter};

use crate::files::{find, Found, Layout};
use crate::read::Reader;
use crate::STAGE;

impl Reader<'_> {
    /// Lists the sessions under each of `paths`, each once (the first place it is found names
    /// its location; a session in two files sums their bytes and takes the later update).
    pub fn scan_paths(&mut self, paths: &[impl AsRef<Path>], scan: &mut ScanWriter) -> Result<()> {
        let mut sessions: BTreeMap<String, FoundSession> = BTreeMap::new();
        let mut order = Vec::new();
        for path in paths {
            let path = path.as_ref();
            if let Err(e) = std::fs::metadata(path) {
                self.failed(path, &e.to_string());
                continue;
            }
            let (found, errors) = find(path);
            for e in errors {
                tonbo_core::note!("{STAGE}: {e}");
                self.stats.failed += 1;
            }
            for f in found {
                let (bytes, updated) = size_and_mtime(&f.path);
                let Some(session) = session_of(&f) else {
                    continue;
                };
                match sessions.get_mut(&session) {
                    Some(s) => {
                        s.bytes += bytes;
                        s.updated = later(s.updated, updated);
                    }
                    None => {
                        order.push(session.clone());
                        let location = path.display().to_string();
                        let s = FoundSession {
                            session: session.clone(),
                            location,
                            bytes,
                            updated,
                        };
                        sessions.insert(session, s);
                    }
                }
            }
        }
        for session in order {
            if let Some(s) = sessions.get(&session).filter(|s| s.bytes > 0) {
                scan.write(self.io.out, s)?;
            }
        }
        self.io.out.flush()?;
        Ok(())
    }
}

fn later(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The session a read gives the file: its name's, or a legacy document's own `sessionId`.
fn session_of(f: &Found) -> Option<String> {
    if f.layout != Layout::Legacy {
        return Some(f.session.clone());
    }
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "sessionId")]
        session_id: Option<String>,
    }
    // A document that is not whole JSON gives no record, so no session.
    let text = std::fs::read_to_string(&f.path).ok()?;
    let head: Head = serde_json::from_str(&text).ok()?;
    Some(
        head.session_id
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| f.session.clone()),
    )
}
