//! `READER --scan`: the sessions a reader would read, listed without reading them, one JSON
//! object per line ([`ScanLine`]), for `tonbo-ingest scan`'s table and its retention warnings.
//!
//! What a session is, where it lies and when its agent deletes it are the source's knowledge
//! (its crate finds them, [`Retention`] says the rule it read); the line and its summary are
//! shared here, so the front door reads every source's lines alike.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::time::rfc3339_of;
use crate::Output;

/// The rule by which an agent deletes its old sessions, as this machine's settings give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// A session not updated for this many days is deleted.
    pub days: u64,
    /// The rule in the agent's words, and where it comes from: `cleanupPeriodDays 30 (the
    /// default: ~/.claude/settings.json does not set it)`.
    pub rule: String,
}

impl Retention {
    /// When a session last updated at `updated` is deleted (at the agent's first start after).
    pub fn expires(&self, updated: SystemTime) -> Option<SystemTime> {
        updated.checked_add(Duration::from_secs(self.days.checked_mul(86_400)?))
    }
}

/// One session a reader found.
#[derive(Debug, Clone)]
pub struct FoundSession {
    pub session: String,
    /// The root, store or database it was found in (a row of the table per location).
    pub location: String,
    /// Its bytes on disk (for a database: its rows' text, or the database's size split).
    pub bytes: u64,
    /// Its last update, the time its agent's retention counts from; `None` when unknown.
    pub updated: Option<SystemTime>,
}

/// A line of `READER --scan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanLine {
    pub source: String,
    pub session: String,
    pub location: String,
    pub bytes: u64,
    /// RFC 3339 UTC, to the second.
    pub updated: Option<String>,
    /// When its agent will delete it (RFC 3339 UTC); absent when it never does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The rule `expires` follows ([`Retention::rule`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
}

/// Writes a reader's scan lines (to the output it is given, which the reader holds) and counts
/// them for its summary.
pub struct ScanWriter {
    source: &'static str,
    /// The rule of the location being listed ([`ScanWriter::at_location`]).
    retention: Option<Retention>,
    /// Every rule met, for the summary.
    rules: Vec<String>,
    pub sessions: u64,
    pub bytes: u64,
}

impl ScanWriter {
    /// A writer of `source`'s sessions.
    pub fn new(source: &'static str) -> Self {
        ScanWriter {
            source,
            retention: None,
            rules: Vec::new(),
            sessions: 0,
            bytes: 0,
        }
    }

    /// The sessions written next are deleted by their agent by `retention`, if it does.
    pub fn at_location(&mut self, retention: Option<Retention>) {
        if let Some(r) = &retention {
            if !self.rules.contains(&r.rule) {
                self.rules.push(r.rule.clone());
            }
        }
        self.retention = retention;
    }

    /// Writes one session's line to `out`.
    pub fn write(&mut self, out: &mut Output, found: &FoundSession) -> io::Result<()> {
        let expires = self
            .retention
            .as_ref()
            .zip(found.updated)
            .and_then(|(r, t)| r.expires(t));
        let line = ScanLine {
            source: self.source.to_string(),
            session: found.session.clone(),
            location: found.location.clone(),
            bytes: found.bytes,
            updated: found.updated.map(rfc3339_of),
            expires: expires.map(rfc3339_of),
            retention: expires.and(self.retention.as_ref().map(|r| r.rule.clone())),
        };
        out.json(&line)?;
        self.sessions += 1;
        self.bytes += found.bytes;
        Ok(())
    }

    /// `claude-read: scan: 12 sessions, 3400000 bytes (cleanupPeriodDays 30 ...)`.
    pub fn summary(&self, stage: &str) -> String {
        let rule = match self.rules.is_empty() {
            false => format!(
                "; the agent deletes old sessions: {}",
                self.rules.join("; ")
            ),
            true => String::new(),
        };
        format!(
            "{stage}: scan: {} sessions, {} bytes{rule}",
            self.sessions, self.bytes
        )
    }
}

/// A file's size and modification time, for a [`FoundSession`]; `(0, None)` when it cannot be
/// read (the scan lists what it can; reading reports the rest).
pub fn size_and_mtime(path: &Path) -> (u64, Option<SystemTime>) {
    match std::fs::metadata(path) {
        Ok(m) => (m.len(), m.modified().ok()),
        Err(_) => (0, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    #[test]
    fn a_line_carries_expiry_only_where_the_agent_deletes() {
        let (mut out, written) = Output::in_memory();
        let updated = parse_time("2026-11-01T00:00:00Z", SystemTime::now()).unwrap();
        let found = FoundSession {
            session: "s1".into(),
            location: "/h/.claude/projects".into(),
            bytes: 10,
            updated: Some(updated),
        };
        let rule = Retention {
            days: 30,
            rule: "cleanupPeriodDays 30".into(),
        };
        let mut w = ScanWriter::new("claude-code");
        w.at_location(Some(rule));
        w.write(&mut out, &found).unwrap();
        assert!(w.summary("claude-read").ends_with("cleanupPeriodDays 30"));
        let mut w = ScanWriter::new("codex-cli");
        w.write(&mut out, &found).unwrap();
        assert_eq!(
            w.summary("codex-read"),
            "codex-read: scan: 1 sessions, 10 bytes"
        );
        out.flush().unwrap();
        let text = String::from_utf8(written.bytes()).unwrap();
        let lines: Vec<ScanLine> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0].expires.as_deref(), Some("2026-12-01T00:00:00Z"));
        assert_eq!(lines[0].retention.as_deref(), Some("cleanupPeriodDays 30"));
        assert_eq!(lines[1].expires, None);
        assert!(!text.lines().nth(1).unwrap().contains("expires"));
    }
}
