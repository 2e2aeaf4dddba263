//! `claude-read --scan`: the sessions under a PATH, found by the same walk as a read, without
//! reading their lines; and Claude Code's retention rule (FORMAT.md, "Retention"): at start-up
//! it deletes transcripts not modified for `cleanupPeriodDays` days (30 unless its
//! `settings.json` says otherwise).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use tonbo_core::scan::{size_and_mtime, FoundSession, Retention, ScanWriter};

use crate::files::{resolve_root, FoundKind, WalkErrors};
use crate::read::{flat_agent_scan, flat_fallback, FlatSession, Reader};

/// Claude Code's default `cleanupPeriodDays`.
pub const DEFAULT_CLEANUP_DAYS: u64 = 30;

impl Reader<'_> {
    /// Lists the sessions under one PATH: a main transcript with its subagents' files is one
    /// session; its size is theirs together, its last update the latest of theirs.
    pub fn scan_path(&mut self, given: &Path, scan: &mut ScanWriter) -> Result<()> {
        let walk = self.walk(given, WalkErrors::All, &mut |_, _| true);
        let location = resolve_root(given).display().to_string();
        let mut sessions: BTreeMap<String, FoundSession> = BTreeMap::new();
        for found in &walk.files {
            let session = match &found.kind {
                FoundKind::Main { session } | FoundKind::Subagent { session, .. } => {
                    session.clone()
                }
                FoundKind::Flat => match flat_agent_scan(&found.path) {
                    FlatSession::Found(id) => id,
                    FlatSession::NotYet | FlatSession::None => flat_fallback(&found.path),
                },
            };
            let (bytes, mtime) = size_and_mtime(&found.path);
            let entry = sessions
                .entry(session.clone())
                .or_insert_with(|| FoundSession {
                    session,
                    location: location.clone(),
                    bytes: 0,
                    updated: None,
                });
            entry.bytes += bytes;
            entry.updated = entry.updated.max(mtime);
        }
        scan.at_location(retention_of(&resolve_root(given)));
        for found in sessions.values() {
            scan.write(self.io.out, found)?;
        }
        self.io.out.flush()?;
        Ok(())
    }
}

/// The retention rule for the transcripts under `root`: that of the Claude config dir holding
/// the `projects` folder at or above `root` (its `settings.json`'s `cleanupPeriodDays`, else
/// 30 days); `None` for a folder in no config dir, and for `cleanupPeriodDays` 0 or less, which
/// Claude Code does not take as a number of days to keep.
pub fn retention_of(root: &Path) -> Option<Retention> {
    let abs = crate::files::absolute(root);
    let config = abs
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "projects"))?
        .parent()?;
    let settings = config.join("settings.json");
    let days = std::fs::read(&settings)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|v| v.get("cleanupPeriodDays").and_then(|d| d.as_f64()));
    match days {
        Some(d) if d < 1.0 => None,
        Some(d) => Some(Retention {
            days: d as u64,
            rule: format!("cleanupPeriodDays {} in {}", d as u64, settings.display()),
        }),
        None => Some(Retention {
            days: DEFAULT_CLEANUP_DAYS,
            rule: format!(
                "cleanupPeriodDays {DEFAULT_CLEANUP_DAYS} (the default: {} does not set it)",
                settings.display()
            ),
        }),
    }
}
