//! Reading session files into source records: each line goes out byte for byte as the `record`
//! of one, files in name order. Every file is read line by line, so memory stays flat whatever
//! its size.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;
use serde_json::value::RawValue;
use tonbo_core::jsonline::{check_line, LineError};
use tonbo_core::ndjson::Line;
use tonbo_core::reader::{left_out_by_modified_after, ReaderIo};
use tonbo_core::Input;

use crate::files::{session_of, walk};
use crate::STAGE;

/// A file's lines between two looks at the stop flag.
const STOP_CHECK_LINES: u64 = 256;

/// What a run read, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    /// Non-blank lines read.
    pub lines: u64,
    pub records: u64,
    /// Torn last lines left unread.
    pub incomplete: u64,
    /// Files and folders that could not be read (each reported on stderr).
    pub unreadable: u64,
    /// Files not modified after `--modified-after`.
    pub skipped_old: u64,
}

impl Stats {
    /// Why nothing was read since `before`, or `None` if a record was written or every file
    /// found was left out by `--modified-after` (which the summary counts).
    pub fn nothing_read(&self, before: &Stats) -> Option<String> {
        if self.records > before.records {
            return None;
        }
        let files = self.files - before.files;
        if files == 0 && self.skipped_old > before.skipped_old {
            return None;
        }
        let lines = self.lines - before.lines;
        Some(if files == 0 {
            "no Qwen Code session file (chats/<session id>.jsonl) in it".into()
        } else if lines == 0 {
            format!("its {files} session files hold no line")
        } else {
            format!("none of the {lines} lines of its {files} session files could be read (incomplete, rejected or unreadable: see above)")
        })
    }

    /// The summary line (without the newline).
    pub fn summary(&self, rejected: u64, modified_after: bool) -> String {
        let mut s = format!(
            "{STAGE}: {} files, {} lines, {} records, {} incomplete, {} rejected, {} unreadable",
            self.files, self.lines, self.records, self.incomplete, rejected, self.unreadable,
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

/// One source record: the line as it is, its session, and where it sits.
#[derive(Serialize)]
struct Record<'a> {
    v: u64,
    source: &'static str,
    session: &'a str,
    record: &'a RawValue,
    /// `<file name>:<line>`: Qwen Code's own names, what the mapping may key on.
    at: String,
    provenance: Provenance<'a>,
}

#[derive(Serialize)]
struct Provenance<'a> {
    file: &'a str,
    line: u64,
}

/// The last part of a path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Reads session files into source records on its run's stdout. A set stop flag ends the read
/// at the next record boundary: between files, and every `STOP_CHECK_LINES` lines of a file.
pub struct Reader<'a> {
    pub(crate) io: ReaderIo<'a>,
    pub(crate) modified_after: Option<SystemTime>,
    /// When following, the paths already reported unreadable: each is reported once.
    pub(crate) reported: Option<HashSet<PathBuf>>,
    pub stats: Stats,
}

impl<'a> Reader<'a> {
    pub fn new(io: ReaderIo<'a>, modified_after: Option<SystemTime>) -> Self {
        Reader {
            io,
            modified_after,
            reported: None,
            stats: Stats::default(),
        }
    }

    /// True once the stop flag is set.
    pub fn stopped(&self) -> bool {
        self.io.stop_set()
    }

    /// Reports an unreadable file or folder and counts it (once per path when following).
    pub(crate) fn unreadable(&mut self, path: &Path, message: impl std::fmt::Display) {
        if let Some(reported) = &mut self.reported {
            if !reported.insert(path.to_path_buf()) {
                return;
            }
        }
        tonbo_core::note!("{STAGE}: {message}");
        self.stats.unreadable += 1;
    }

    /// Whether `--modified-after` leaves `path` out.
    pub(crate) fn too_old(&self, path: &Path) -> bool {
        let Some(after) = self.modified_after else {
            return false;
        };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        mtime.is_some_and(|t| t <= after)
    }

    /// Reads one PATH: a folder at any depth above the session files, or one file. Errors
    /// are fatal (writing stdout or the rejects file); unreadable input is reported, counted
    /// and passed over.
    pub fn read_path(&mut self, given: &Path) -> Result<()> {
        let found = walk(given);
        for (path, message) in &found.errors {
            self.unreadable(path, message);
        }
        for path in &found.files {
            if self.stopped() {
                break;
            }
            if self.too_old(path) {
                self.stats.skipped_old += 1;
                continue;
            }
            self.read_file(path)?;
        }
        self.io.out.flush()?;
        Ok(())
    }

    /// Streams one session file, line by line.
    pub(crate) fn read_file(&mut self, path: &Path) -> Result<()> {
        self.stats.files += 1;
        let name = path.display().to_string();
        let session = session_of(path);
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
                    self.unreadable(path, e);
                    break;
                }
            };
            self.emit_line(&name, &session, &line)?;
            if self.stats.lines.is_multiple_of(STOP_CHECK_LINES) && self.stopped() {
                break;
            }
        }
        self.io.out.flush()?;
        Ok(())
    }

    /// Writes one line as a source record, or rejects it (file `name`, line number, why).
    pub(crate) fn emit_line(&mut self, name: &str, session: &str, line: &Line) -> Result<()> {
        self.stats.lines += 1;
        if let Some(p) = &self.io.progress {
            use tonbo_core::progress::{R_BYTES, R_RECORDS, R_SCANNED};
            p.set(R_SCANNED, self.stats.files);
            p.set(R_RECORDS, self.stats.records);
            p.add(R_BYTES, line.bytes.len() as u64 + 1);
        }
        match check_line(line.bytes) {
            Ok(record) => {
                self.io.out.json(&Record {
                    v: tonbo_core::WIRE_VERSION,
                    source: crate::SOURCE,
                    session,
                    record,
                    at: format!("{}:{}", file_name(name), line.number),
                    provenance: Provenance {
                        file: name,
                        line: line.number,
                    },
                })?;
                self.stats.records += 1;
            }
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
}
