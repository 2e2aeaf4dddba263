//! `cline-read --scan`: every task folder (and SDK session folder) under the inputs, listed
//! without reading it: its id, bytes and last update. Neither Cline nor Roo Code deletes old
//! tasks by itself (a person deletes them from the history), so no line has an expiry.

use std::path::Path;

use anyhow::Result;
use tonbo_core::scan::{size_and_mtime, FoundSession, ScanWriter};

use crate::read::Reader;
use crate::roots::{
    sdk_child_session, sdk_children, sdk_files, task_dirs, API_FILE, HISTORY_ITEM, UI_FILE,
};

impl Reader<'_> {
    /// Lists the task folders under `input` (a PATH, or a default place that exists).
    pub fn scan_input(&mut self, input: &Path, scan: &mut ScanWriter) -> Result<()> {
        let mut unreadable = Vec::new();
        let dirs = task_dirs(input, &mut |e| unreadable.push(e));
        for e in unreadable {
            self.failed(&e);
        }
        scan.at_location(None);
        for dir in dirs {
            let Some(session) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let files = match sdk_files(&dir) {
                Some((messages, manifest)) => vec![messages, manifest],
                None => vec![
                    dir.join(API_FILE),
                    dir.join(UI_FILE),
                    dir.join(HISTORY_ITEM),
                ],
            };
            let (mut bytes, mut updated) = (0, None);
            for f in files {
                let (b, m) = size_and_mtime(&f);
                bytes += b;
                updated = updated.max(m);
            }
            if bytes == 0 {
                continue;
            }
            let found = FoundSession {
                session,
                location: input.display().to_string(),
                bytes,
                updated,
            };
            scan.write(self.io.out, &found)?;
            for child in sdk_children(&dir) {
                let (bytes, updated) = size_and_mtime(&child);
                let found = FoundSession {
                    session: sdk_child_session(&dir, &child),
                    location: input.display().to_string(),
                    bytes,
                    updated,
                };
                scan.write(self.io.out, &found)?;
            }
        }
        self.io.out.flush()?;
        Ok(())
    }
}
