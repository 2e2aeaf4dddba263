//! `cursor-read --scan`: one line per chat of each global database, without reading its
//! messages: its composerId, the database, the bytes of its rows (the chat's `composerData`
//! and its `bubbleId:<composerId>:*` rows), and its `lastUpdatedAt` (else `createdAt`). Cursor
//! deletes no chat by age, so no line has `expires`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use serde::Deserialize;
use tonbo_core::scan::{FoundSession, ScanWriter};

use crate::read::{ms_of, time_of_ms, Reader};
use crate::store::{self, value_text};
use crate::STAGE;

#[derive(Deserialize)]
struct Stamps {
    #[serde(rename = "lastUpdatedAt", default)]
    last_updated: Option<serde_json::Value>,
    #[serde(rename = "createdAt", default)]
    created: Option<serde_json::Value>,
}

impl Stamps {
    /// As the reader takes them ([`ms_of`]), `lastUpdatedAt` first.
    fn ms(&self) -> Option<f64> {
        ms_of(self.last_updated.as_ref()).or_else(|| ms_of(self.created.as_ref()))
    }
}

impl Reader<'_> {
    /// Lists the chats of every global database under `input`.
    pub fn scan_path(&mut self, input: &Path, scan: &mut ScanWriter) -> Result<()> {
        if !input.exists() {
            tonbo_core::reader::note_no_such_input(STAGE, input);
            self.stats.failed += 1;
            return Ok(());
        }
        for db in store::discover(input) {
            scan.at_location(None);
            if let Err(e) = self.scan_db(&db, scan) {
                if !e.is::<rusqlite::Error>() {
                    return Err(e);
                }
                tonbo_core::note!("{STAGE}: {}: cannot read: {e:#}", db.display());
                self.stats.failed += 1;
            }
        }
        Ok(())
    }

    fn scan_db(&mut self, db: &Path, scan: &mut ScanWriter) -> Result<()> {
        let conn = store::open(db)?;
        let tx = conn.unchecked_transaction()?;
        let mut bubble_bytes: HashMap<String, u64> = HashMap::new();
        let mut stmt = tx.prepare(
            "SELECT key, length(value) FROM cursorDiskKV \
             WHERE key >= 'bubbleId:' AND key < 'bubbleId;'",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let len: Option<i64> = row.get(1)?;
            if let Some((chat, _)) = key["bubbleId:".len()..].split_once(':') {
                *bubble_bytes.entry(chat.to_string()).or_default() += len.unwrap_or(0) as u64;
            }
        }
        let mut stmt = tx.prepare(
            "SELECT key, value FROM cursorDiskKV \
             WHERE key >= 'composerData:' AND key < 'composerData;' ORDER BY key",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let text = value_text(row.get_ref(1)?).unwrap_or_default();
            let id = &key["composerData:".len()..];
            let updated = serde_json::from_str::<Stamps>(text)
                .ok()
                .and_then(|s| s.ms())
                .map(time_of_ms);
            let found = FoundSession {
                session: id.to_string(),
                location: db.display().to_string(),
                bytes: text.len() as u64 + bubble_bytes.get(id).copied().unwrap_or(0),
                updated,
            };
            scan.write(self.io.out, &found)?;
        }
        Ok(())
    }
}
