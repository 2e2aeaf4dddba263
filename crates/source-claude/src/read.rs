//! Reading transcripts into source records: each line goes out byte for byte as the `record` of
//! one, in the walk's order ([`crate::files`]). Every file is read line by line
//! ([`tonbo_core::LineReader`]), so memory stays flat whatever the file size.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;
use serde_json::value::RawValue;
use tonbo_core::contract::check_session_id;
use tonbo_core::jsonline::{check_line, compact_json, LineError};
use tonbo_core::ndjson::Line;
use tonbo_core::reader::{left_out_by_modified_after, ReaderIo};
use tonbo_core::Input;

use crate::files::{meta_path, FoundKind, WalkErrors};
use crate::record::{LineHead, Record, RecordKind};
use crate::summaries::{HeldSummary, Summaries};
use crate::STAGE;

/// How many lines of a flat `agent-*.jsonl` are searched for its `sessionId`.
const FLAT_AGENT_SCAN_LINES: u64 = 1000;
/// A `.meta.json` is read whole (it is a small object); anything larger is rejected, not read.
const MAX_META_BYTES: u64 = 16 << 20;
/// A file's lines between two looks at the stop flag.
pub(crate) const STOP_CHECK_LINES: u64 = 256;

/// What a run read, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub main_files: u64,
    pub subagent_files: u64,
    pub flat_agent_files: u64,
    pub meta_files: u64,
    /// Non-blank lines read from transcripts.
    pub lines: u64,
    /// Source records written (lines and meta records).
    pub records: u64,
    /// Torn last lines left unread.
    pub incomplete: u64,
    /// Files and folders that could not be read (each reported on stderr).
    pub unreadable: u64,
    /// Transcripts not modified after `--modified-after`.
    pub skipped_old: u64,
}

impl Stats {
    pub fn files(&self) -> u64 {
        self.main_files + self.subagent_files + self.flat_agent_files
    }

    /// Why nothing was read since `before` (the stats before one PATH was read), or `None` if
    /// a record was written, or if every transcript found was left out by `--modified-after`
    /// (which the summary counts).
    pub fn nothing_read(&self, before: &Stats) -> Option<String> {
        if self.records > before.records {
            return None;
        }
        let files = self.files() - before.files();
        let lines = self.lines - before.lines;
        if files == 0 && self.skipped_old > before.skipped_old {
            return None;
        }
        Some(if files == 0 {
            "no Claude Code transcript (<session>.jsonl, subagents/agent-<id>.jsonl) in it".into()
        } else if lines == 0 {
            format!("its {files} transcripts hold no line")
        } else {
            format!("none of the {lines} lines of its {files} transcripts could be read (incomplete, rejected or unreadable: see above)")
        })
    }

    /// The summary line (without the newline).
    pub fn summary(&self, rejected: u64, modified_after: bool) -> String {
        let mut s = format!(
            "{STAGE}: {} files ({} main, {} subagent, {} legacy agent; {} agent meta), {} lines, {} records, {} incomplete, {} rejected, {} unreadable",
            self.files(),
            self.main_files,
            self.subagent_files,
            self.flat_agent_files,
            self.meta_files,
            self.lines,
            self.records,
            self.incomplete,
            rejected,
            self.unreadable,
        );
        if modified_after {
            s.push_str(&left_out_by_modified_after(
                self.skipped_old,
                "files not modified",
            ));
        }
        s
    }
}

/// The session id of a legacy flat `agent-*.jsonl`, as far as its lines tell yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FlatSession {
    /// The `sessionId` of the first line (of the first [`FLAT_AGENT_SCAN_LINES`]) that has a
    /// usable one.
    Found(String),
    /// None in the first [`FLAT_AGENT_SCAN_LINES`] lines and the file is longer: the fallback
    /// ([`flat_fallback`]) is final.
    None,
    /// None so far, in a file still shorter than that: a line appended later may have one.
    NotYet,
}

/// Looks for the session id of a legacy flat `agent-*.jsonl` in its lines. Lines that are not
/// JSON are passed over here; the main read reports them. An unreadable file gives `NotYet`;
/// its read reports it.
pub(crate) fn flat_agent_scan(path: &Path) -> FlatSession {
    let Ok(input) = Input::open(path) else {
        return FlatSession::NotYet;
    };
    let mut lines = input.lines();
    while let Ok(Some(line)) = lines.next_line() {
        if line.number > FLAT_AGENT_SCAN_LINES {
            return FlatSession::None;
        }
        let id = LineHead::of(line.bytes).and_then(|h| h.session_id);
        if let Some(id) = id.filter(|id| check_session_id(id).is_ok()) {
            return FlatSession::Found(id.into_owned());
        }
    }
    FlatSession::NotYet
}

/// The session id of a flat agent file whose lines name none: its stem (`agent-<id>`).
pub(crate) fn flat_fallback(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// What [`Reader::read_meta`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaRead {
    /// No meta file (yet).
    Absent,
    /// Written, rejected, or reported unreadable: nothing more to do.
    Done,
    /// There, but not JSON yet (only with `defer_torn`).
    Torn,
}

/// Reads transcripts into source records on its run's stdout. A set stop flag ends the read at
/// the next record boundary: between files, and every `STOP_CHECK_LINES` lines of a file. Its
/// progress counters are updated as each line is read.
pub struct Reader<'a> {
    pub(crate) io: ReaderIo<'a>,
    pub(crate) modified_after: Option<SystemTime>,
    /// When following, the paths already reported unreadable: each is reported and counted
    /// once, not on every re-walk or poll.
    pub(crate) reported: Option<HashSet<PathBuf>>,
    pub stats: Stats,
    /// The `summary` lines of the project being read, waiting for their leaf.
    summaries: Summaries,
}

impl<'a> Reader<'a> {
    pub fn new(io: ReaderIo<'a>, modified_after: Option<SystemTime>) -> Self {
        Reader {
            io,
            modified_after,
            reported: None,
            stats: Stats::default(),
            summaries: Summaries::default(),
        }
    }

    /// True once the stop flag is set.
    pub fn stopped(&self) -> bool {
        self.io.stop_set()
    }

    /// Reports an unreadable file or folder (`message` follows the stage name) and counts it;
    /// when following, a path already reported is not reported or counted again.
    pub(crate) fn unreadable(&mut self, path: &Path, message: impl std::fmt::Display) {
        if let Some(reported) = &mut self.reported {
            if !reported.insert(path.to_path_buf()) {
                return;
            }
        }
        tonbo_core::note!("{STAGE}: {message}");
        self.stats.unreadable += 1;
    }

    /// Reads one PATH: a root, a project folder, a session's companion folder, or one file.
    ///
    /// Errors are fatal (writing stdout or the rejects file); unreadable input is reported,
    /// counted in [`Stats::unreadable`], and passed over.
    pub fn read_path(&mut self, given: &Path) -> Result<()> {
        let modified_after = self.modified_after;
        let mut skipped_old = 0;
        let walk = self.walk(given, WalkErrors::All, &mut |_, entry| {
            let Some(after) = modified_after else {
                return true;
            };
            let mtime = entry.metadata().ok().and_then(|m| m.modified().ok());
            let old = mtime.is_some_and(|t| t <= after);
            skipped_old += u64::from(old);
            !old
        });
        self.stats.skipped_old += skipped_old;
        let mut start = 0;
        for end in walk.project_ends {
            let project = &walk.files[start..end];
            start = end;
            // Older Claude Code titles a session from another file's head (`summary` lines).
            self.summaries = Summaries::scan(project);
            for found in project {
                if self.stopped() {
                    return Ok(());
                }
                self.read_found(&found.path, &found.kind)?;
            }
            // Summaries whose leaf is in no file read: kept in their own file's session, as
            // summaries of something else, not as its title.
            for held in std::mem::take(&mut self.summaries).unresolved() {
                self.emit_summary(&held, &held.session, None)?;
            }
        }
        self.io.out.flush()?;
        Ok(())
    }

    /// Reads one transcript the walk found (a subagent's meta record first).
    fn read_found(&mut self, path: &Path, kind: &FoundKind) -> Result<()> {
        match kind {
            FoundKind::Main { session } => {
                self.stats.main_files += 1;
                self.read_transcript(path, session)
            }
            FoundKind::Subagent { session, agent_id } => {
                self.stats.subagent_files += 1;
                self.read_meta(path, session, agent_id, false)?;
                self.read_transcript(path, session)
            }
            FoundKind::Flat => {
                self.stats.flat_agent_files += 1;
                let session = match flat_agent_scan(path) {
                    FlatSession::Found(id) => id,
                    FlatSession::NotYet | FlatSession::None => flat_fallback(path),
                };
                self.read_transcript(path, &session)
            }
        }
    }

    /// Writes one source record.
    fn write(&mut self, record: &Record) -> Result<()> {
        self.io.out.json(record)?;
        self.stats.records += 1;
        Ok(())
    }

    /// Writes a held `summary` line as the record of `session`: `kind` `summary-title` when
    /// that session holds the summary's leaf.
    fn emit_summary(
        &mut self,
        held: &HeldSummary,
        session: &str,
        kind: Option<RecordKind>,
    ) -> Result<()> {
        let Ok(record) = check_line(&held.bytes) else {
            return Ok(());
        };
        self.write(&Record {
            kind,
            ..Record::new(session, record, &held.file, Some(held.line))
        })
    }

    /// Streams one transcript, line by line.
    fn read_transcript(&mut self, path: &Path, session: &str) -> Result<()> {
        let name = path.display().to_string();
        let mut lines = match Input::open(path) {
            Ok(input) => input.lines(),
            Err(e) => {
                self.unreadable(path, format_args!("{e:#}"));
                return Ok(());
            }
        };
        loop {
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    // The rest of this file is lost; the other files are still read.
                    self.unreadable(path, e);
                    break;
                }
            };
            if self.summaries.holds(path, line.number) {
                // Written where its leaf is (or at the end of the project).
                self.stats.lines += 1;
                continue;
            }
            self.emit_line(&name, session, &line)?;
            if let Some(found) = self.summaries.leaf(line.bytes) {
                for held in found {
                    self.emit_summary(&held, session, Some(RecordKind::SummaryTitle))?;
                }
            }
            if self.stats.lines.is_multiple_of(STOP_CHECK_LINES) && self.stopped() {
                break;
            }
        }
        self.io.out.flush()?;
        Ok(())
    }

    /// Writes one transcript line as a source record, or rejects it (file `name`, its line
    /// number and why).
    pub(crate) fn emit_line(&mut self, name: &str, session: &str, line: &Line) -> Result<()> {
        self.stats.lines += 1;
        if let Some(p) = &self.io.progress {
            use tonbo_core::progress::{R_BYTES, R_RECORDS, R_SCANNED};
            // Stores of what the stats already count, and an add: nothing to measure per line.
            p.set(R_SCANNED, self.stats.files());
            p.set(R_RECORDS, self.stats.records);
            p.add(R_BYTES, line.bytes.len() as u64 + 1);
        }
        match check_line(line.bytes) {
            Ok(record) => self.write(&Record::new(session, record, name, Some(line.number)))?,
            // A last line without its newline that does not parse is most likely being
            // written right now; the next run reads it whole.
            Err(LineError::NotJson(_)) if !line.terminated => {
                tonbo_core::note!(
                    "{STAGE}: {name}:{}: incomplete last line ({} bytes), not read; a writer may still be appending",
                    line.number,
                    line.bytes.len()
                );
                self.stats.incomplete += 1;
            }
            Err(why) => self
                .io
                .rejects
                .reject(name, line.number, &why.to_string(), line.bytes)?,
        }
        Ok(())
    }

    /// Writes the meta record of the subagent transcript `agent`, if its `agent-<id>.meta.json`
    /// exists. With `defer_torn`, a meta file that is not JSON (yet) is left for a later look
    /// instead of rejected: a follower may see it while it is being written.
    pub(crate) fn read_meta(
        &mut self,
        agent: &Path,
        session: &str,
        agent_id: &str,
        defer_torn: bool,
    ) -> Result<MetaRead> {
        let Some(path) = meta_path(agent) else {
            return Ok(MetaRead::Absent);
        };
        let name = path.display().to_string();
        let mut bytes = Vec::new();
        let read =
            File::open(&path).and_then(|f| f.take(MAX_META_BYTES + 1).read_to_end(&mut bytes));
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(MetaRead::Absent),
            Err(e) => {
                self.unreadable(&path, format_args!("cannot read {name}: {e}"));
                return Ok(MetaRead::Done);
            }
        }
        if bytes.len() as u64 > MAX_META_BYTES {
            self.stats.meta_files += 1;
            let why = format!("meta file larger than {} MiB", MAX_META_BYTES >> 20);
            self.io.rejects.reject(&name, 1, &why, &[])?;
            return Ok(MetaRead::Done);
        }
        let record = match check_line(&bytes) {
            Ok(raw) => compact_json(raw.get()),
            Err(LineError::NotJson(_)) if defer_torn => return Ok(MetaRead::Torn),
            Err(why) => {
                self.stats.meta_files += 1;
                self.io.rejects.reject(&name, 1, &why.to_string(), &bytes)?;
                return Ok(MetaRead::Done);
            }
        };
        self.stats.meta_files += 1;
        let record: Box<RawValue> = RawValue::from_string(record)
            .map_err(|e| anyhow::anyhow!("compacting {name} broke its JSON: {e}"))?;
        self.write(&Record {
            kind: Some(RecordKind::SubagentMeta),
            agent_id: Some(agent_id),
            ..Record::new(session, &record, &name, None)
        })?;
        Ok(MetaRead::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_every_count() {
        let s = Stats {
            main_files: 2,
            subagent_files: 1,
            flat_agent_files: 1,
            meta_files: 1,
            lines: 10,
            records: 9,
            incomplete: 1,
            unreadable: 0,
            skipped_old: 3,
        };
        assert_eq!(
            s.summary(1, true),
            "claude-read: 4 files (2 main, 1 subagent, 1 legacy agent; 1 agent meta), 10 lines, 9 records, 1 incomplete, 1 rejected, 0 unreadable, skipped 3 files not modified after --modified-after"
        );
        assert!(!s.summary(1, false).contains("modified"));
    }
}
