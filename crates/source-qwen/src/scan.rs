//! `qwen-read --scan`: the sessions under a PATH, found by the same walk as a read, without
//! reading their lines. Qwen Code deletes no session by age (FORMAT.md, "Retention"), so no
//! session has an expiry.

use std::path::Path;

use anyhow::Result;
use tonbo_core::scan::{size_and_mtime, FoundSession, ScanWriter};

use crate::files::{session_of, walk};
use crate::read::Reader;

impl Reader<'_> {
    /// Lists the sessions under one PATH, one per session file.
    pub fn scan_path(&mut self, given: &Path, scan: &mut ScanWriter) -> Result<()> {
        let found = walk(given);
        for (path, message) in &found.errors {
            self.unreadable(path, message);
        }
        let location = given.display().to_string();
        scan.at_location(None);
        for path in &found.files {
            let (bytes, updated) = size_and_mtime(path);
            let session = FoundSession {
                session: session_of(path),
                location: location.clone(),
                bytes,
                updated,
            };
            scan.write(self.io.out, &session)?;
        }
        self.io.out.flush()?;
        Ok(())
    }
}
