//! `goose-read --scan`: every session the reader would read, with its size and last update,
//! without reading its messages. Goose deletes no session by age (FORMAT.md, "Where"), so no
//! line says when it expires.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use tonbo_core::scan::{size_and_mtime, FoundSession, ScanWriter};
use tonbo_core::Output;

use crate::roots::stores_under;
use crate::STAGE;

/// A stored SQL time (`YYYY-MM-DD HH:MM:SS`, or RFC 3339 from an import) as a time.
fn stored_time(t: &str) -> Option<SystemTime> {
    let t = t.get(..19)?.replace(' ', "T") + "Z";
    tonbo_core::time::parse_time(&t, SystemTime::now()).ok()
}

/// Lists the sessions under `inputs`; returns how many stores could not be read.
pub fn scan(out: &mut Output, inputs: &[PathBuf], writer: &mut ScanWriter) -> Result<u64> {
    let mut failed = 0;
    writer.at_location(None);
    for input in inputs {
        for store in stores_under(input) {
            let mut in_db = HashSet::new();
            if let Some(db) = &store.db {
                if let Err(e) = scan_db(out, db, writer, &mut in_db) {
                    if e.downcast_ref::<std::io::Error>().is_some() {
                        return Err(e);
                    }
                    tonbo_core::note!("{STAGE}: error: {}: {e:#}", db.display());
                    failed += 1;
                }
            }
            for file in &store.legacy {
                let session = file
                    .file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                if in_db.contains(&session) {
                    continue;
                }
                let (bytes, updated) = size_and_mtime(file);
                let location = store.dir.display().to_string();
                let found = FoundSession {
                    session,
                    location,
                    bytes,
                    updated,
                };
                writer.write(out, &found)?;
            }
        }
    }
    out.flush()?;
    Ok(failed)
}

/// A database's sessions, each with the bytes of its messages' stored JSON.
fn scan_db(
    out: &mut Output,
    db: &Path,
    writer: &mut ScanWriter,
    in_db: &mut HashSet<String>,
) -> Result<()> {
    let conn = crate::read::open_read_only(db).context("cannot open it read-only")?;
    let mut st = conn.prepare(
        "SELECT s.id, s.updated_at, COALESCE(SUM(LENGTH(m.content_json)), 0)
         FROM sessions s LEFT JOIN messages m ON m.session_id = s.id
         GROUP BY s.id ORDER BY s.created_at, s.id",
    )?;
    let mut rows = st.query([])?;
    while let Some(row) = rows.next()? {
        let session: String = row.get(0)?;
        let updated: Option<String> = row.get(1)?;
        let bytes: i64 = row.get(2)?;
        in_db.insert(session.clone());
        let found = FoundSession {
            session,
            location: db.display().to_string(),
            bytes: bytes.max(0) as u64,
            updated: updated.as_deref().and_then(stored_time),
        };
        writer.write(out, &found)?;
    }
    Ok(())
}
