//! Reading: each session file once, as source records on stdout. Event files are read line by
//! line ([`tonbo_core::LineReader`]) and each line goes out as the `record` byte for byte, so
//! memory stays flat in the size of a session. A legacy document (one JSON object per session,
//! written before 0.0.342 and no more) is parsed whole, then written message by message. A
//! SIGINT/SIGTERM (the run's stop flag) ends the read at a record boundary.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Result;
use serde_json::value::RawValue;
use tonbo_core::reader::{left_out_by_modified_after, ReaderIo};
use tonbo_core::Input;

use crate::files::{Found, Layout};
use crate::record::{emit, one_line, At, RecordKind};
use crate::STAGE;

/// What a run read, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Session files by layout.
    pub event_files: u64,
    pub flat_files: u64,
    pub legacy_files: u64,
    /// Non-blank lines of event files, and messages of legacy documents.
    pub lines: u64,
    pub messages: u64,
    /// Source records written.
    pub records: u64,
    /// Torn last lines and truncated documents left for a later run.
    pub incomplete: u64,
    /// Files and folders that could not be read (each reported on stderr).
    pub failed: u64,
    /// Files not modified after `--modified-after`.
    pub skipped_old: u64,
}

impl Stats {
    pub fn files(&self) -> u64 {
        self.event_files + self.flat_files + self.legacy_files
    }

    /// The summary line (without the newline).
    pub fn summary(&self, rejected: u64, modified_after: bool) -> String {
        let mut s = format!(
            "{STAGE}: {} files ({} events.jsonl, {} flat .jsonl, {} legacy .json), {} lines, {} messages, {} records, {} incomplete, {} rejected, {} failed",
            self.files(),
            self.event_files,
            self.flat_files,
            self.legacy_files,
            self.lines,
            self.messages,
            self.records,
            self.incomplete,
            rejected,
            self.failed,
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

/// Reads session files into source records.
pub struct Reader<'a> {
    pub(crate) io: ReaderIo<'a>,
    pub(crate) modified_after: Option<SystemTime>,
    /// A stop left input unread.
    pub(crate) stopped: bool,
    pub stats: Stats,
}

impl<'a> Reader<'a> {
    pub fn new(io: ReaderIo<'a>, modified_after: Option<SystemTime>) -> Self {
        Reader {
            io,
            modified_after,
            stopped: false,
            stats: Stats::default(),
        }
    }

    /// True when a stop left some input unread.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Reads the session files under `path`; returns why it gave nothing, if it did not
    /// (`None` when it gave a record, or every file found was left out by `--modified-after`).
    pub fn read_path(&mut self, path: &Path) -> Result<Option<String>> {
        if let Err(e) = std::fs::metadata(path) {
            self.failed(path, &e.to_string());
            return Ok(None);
        }
        let (found, errors) = crate::files::find(path);
        for e in errors {
            tonbo_core::note!("{STAGE}: {e}");
            self.stats.failed += 1;
        }
        let (records, lines) = (self.stats.records, self.stats.lines + self.stats.messages);
        let mut read = 0;
        for f in &found {
            if self.io.stop_set() {
                self.stopped = true;
                return Ok(None);
            }
            if self.is_old(&f.path) {
                self.stats.skipped_old += 1;
                continue;
            }
            read += 1;
            self.read_file(f)?;
        }
        let lines = self.stats.lines + self.stats.messages - lines;
        Ok(
            if self.stats.records > records || (read == 0 && !found.is_empty()) {
                None
            } else if found.is_empty() {
                Some("no Copilot CLI session file (session-state/<id>/events.jsonl, session-state/<id>.jsonl, history-session-state/*.json) in it".into())
            } else if lines == 0 {
                Some(format!("its {read} session files hold no event or message"))
            } else {
                Some(format!("none of the {lines} lines of its {read} session files could be read (see above)"))
            },
        )
    }

    pub(crate) fn is_old(&self, path: &Path) -> bool {
        let Some(after) = self.modified_after else {
            return false;
        };
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m <= after)
    }

    pub(crate) fn count_file(&mut self, f: &Found) {
        match f.layout {
            Layout::Events => self.stats.event_files += 1,
            Layout::Flat => self.stats.flat_files += 1,
            Layout::Legacy => self.stats.legacy_files += 1,
        }
    }

    fn read_file(&mut self, f: &Found) -> Result<()> {
        self.count_file(f);
        match f.layout {
            Layout::Legacy => match std::fs::read_to_string(&f.path) {
                Ok(text) => {
                    if self.legacy(f, &text, 0, true)?.is_none() {
                        self.stats.incomplete += 1;
                    }
                }
                Err(e) => self.failed(&f.path, &e.to_string()),
            },
            Layout::Events | Layout::Flat => self.read_lines(f)?,
        }
        if let Some(p) = &self.io.progress {
            use tonbo_core::progress::{R_BYTES, R_RECORDS, R_SCANNED};
            p.set(R_SCANNED, self.stats.files());
            p.set(R_RECORDS, self.stats.records);
            p.add(R_BYTES, std::fs::metadata(&f.path).map_or(0, |m| m.len()));
        }
        Ok(())
    }

    pub(crate) fn failed(&mut self, path: &Path, why: &str) {
        tonbo_core::note!("{STAGE}: cannot read {}: {why}", path.display());
        self.stats.failed += 1;
    }

    fn read_lines(&mut self, f: &Found) -> Result<()> {
        let mut lines = match Input::open(&f.path) {
            Ok(input) => input.lines(),
            Err(e) => {
                self.failed(&f.path, &format!("{e:#}"));
                return Ok(());
            }
        };
        loop {
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(()),
                Err(e) => {
                    tonbo_core::note!("{STAGE}: {e}");
                    self.stats.failed += 1;
                    return Ok(());
                }
            };
            if line.number % 256 == 0 && self.io.stop_set() {
                self.stopped = true;
                return Ok(());
            }
            let (number, terminated) = (line.number, line.terminated);
            let bytes = line.bytes.to_vec();
            self.line(f, number, &bytes, terminated)?;
        }
    }

    /// One line of an event file: written as a record, or rejected when it is not a JSON
    /// object; a last line without its newline that is not one is torn (the CLI is writing it),
    /// counted incomplete and left for a later run.
    pub(crate) fn line(&mut self, f: &Found, n: u64, bytes: &[u8], terminated: bool) -> Result<()> {
        self.stats.lines += 1;
        if let Err(why) = check_object(bytes) {
            if !terminated {
                self.stats.incomplete += 1;
                return Ok(());
            }
            let name = f.path.display().to_string();
            self.io.rejects.reject(&name, n, &why, bytes)?;
            return Ok(());
        }
        let file = f.path.display().to_string();
        let at_name = f.at_name();
        emit(
            self.io.out,
            RecordKind::Event,
            &f.session,
            bytes,
            (&file, &at_name),
            At::Line(n),
        )?;
        self.stats.records += 1;
        Ok(())
    }

    /// Writes a legacy document's records: its session record (when `with_session`) and its
    /// messages from index `from` on. Returns how many messages the document holds, or `None`
    /// when it is not whole JSON (being rewritten, or truncated).
    pub(crate) fn legacy(
        &mut self,
        f: &Found,
        text: &str,
        from: usize,
        with_session: bool,
    ) -> Result<Option<usize>> {
        let Ok(doc) = serde_json::from_str::<BTreeMap<String, &RawValue>>(text) else {
            return Ok(None);
        };
        let session = doc
            .get("sessionId")
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| f.session.clone());
        let messages: Vec<&RawValue> = doc
            .get("chatMessages")
            .and_then(|m| serde_json::from_str(m.get()).ok())
            .unwrap_or_default();
        let file = f.path.display().to_string();
        let at_name = f.at_name();
        if with_session {
            let mut top = String::from("{");
            for (k, v) in doc
                .iter()
                .filter(|(k, _)| *k != "chatMessages" && *k != "timeline")
            {
                if top.len() > 1 {
                    top.push(',');
                }
                top.push_str(&serde_json::to_string(k)?);
                top.push(':');
                top.push_str(v.get());
            }
            top.push('}');
            let rec = one_line(&top);
            emit(
                self.io.out,
                RecordKind::LegacySession,
                &session,
                &rec,
                (&file, &at_name),
                At::Row("session"),
            )?;
            self.stats.records += 1;
        }
        for (i, m) in messages.iter().enumerate().skip(from) {
            self.stats.messages += 1;
            let row = i.to_string();
            let rec = one_line(m.get());
            emit(
                self.io.out,
                RecordKind::LegacyMessage,
                &session,
                &rec,
                (&file, &at_name),
                At::Row(&row),
            )?;
            self.stats.records += 1;
        }
        Ok(Some(messages.len()))
    }
}

/// Whether a line is a JSON object; why not when it is not.
pub(crate) fn check_object(bytes: &[u8]) -> Result<(), String> {
    match serde_json::from_slice::<&RawValue>(bytes) {
        Ok(v) if v.get().starts_with('{') => Ok(()),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}
