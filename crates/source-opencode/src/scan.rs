//! `opencode-read --scan`: the sessions of every database and JSON store found, listed from
//! their session rows and files without reading their messages. A database's size is split
//! evenly over its sessions (its pages are not per session); a JSON session's size is its
//! session file and its message files. No age-based deletion by OpenCode or Crush is known, so
//! no line expires.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;
use tonbo_core::scan::{size_and_mtime, FoundSession, ScanWriter};
use walkdir::WalkDir;

use crate::db::{list_sessions, Db};
use crate::reader::{stored_time, Reader, SourceFailure};
use crate::schema;
use crate::sources::Sources;
use crate::STAGE;

impl Reader<'_> {
    /// Lists the sessions of `sources`: databases first, then JSON stores, each session once
    /// where the first that holds it lies, as a read does.
    pub fn scan(&mut self, sources: &Sources, scan: &mut ScanWriter) -> Result<()> {
        self.stats.failed += sources.failed;
        let mut listed = HashSet::new();
        for path in &sources.dbs {
            if let Err(e) = self.scan_db(path, scan, &mut listed) {
                match e.downcast::<SourceFailure>() {
                    Ok(f) => {
                        tonbo_core::note!("{STAGE}: {}: {f}", path.display());
                        self.stats.failed += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.stores = sources.stores.clone();
        for i in 0..self.stores.len() {
            let location = self.stores[i].root.display().to_string();
            let files = self.list_store_sessions(i);
            for s in self.load_store_sessions(files)? {
                if !listed.insert(s.id.clone()) {
                    continue;
                }
                let (mut bytes, mtime) = size_and_mtime(&s.path);
                bytes += dir_bytes(&self.stores[i].message_dir(&s.id));
                let found = FoundSession {
                    session: s.id,
                    location: location.clone(),
                    bytes,
                    updated: s.updated.map(stored_time).or(mtime),
                };
                scan.write(self.io.out, &found)?;
            }
        }
        self.io.out.flush()?;
        Ok(())
    }

    fn scan_db(
        &mut self,
        path: &Path,
        scan: &mut ScanWriter,
        listed: &mut HashSet<String>,
    ) -> Result<()> {
        let ms = self.busy.as_millis();
        let conn = schema::open(path, self.busy).db("cannot open", ms)?;
        let schema = schema::detect(&conn).db("cannot read", ms)?;
        let sessions = list_sessions(&conn, &schema).db("cannot list its sessions", ms)?;
        let (size, _) = size_and_mtime(path);
        let share = size / (sessions.len().max(1) as u64);
        for s in sessions {
            if !listed.insert(s.id.clone()) {
                continue;
            }
            let found = FoundSession {
                session: s.id,
                location: path.display().to_string(),
                bytes: share,
                updated: s.updated.map(stored_time),
            };
            scan.write(self.io.out, &found)?;
        }
        Ok(())
    }
}

/// The bytes of the files under `dir` (0 when it does not exist).
fn dir_bytes(dir: &Path) -> u64 {
    WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
