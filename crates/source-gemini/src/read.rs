//! Reading chat files into source records on stdout, through each file's [`Chat`] replay: a
//! JSONL chat line by line from where the last read stopped (flat memory in the file's size),
//! a legacy JSON document whole. The same [`ChatFile`] is read once by a plain run and again on
//! every change by `--follow` ([`crate::follow`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::Result;
use tonbo_core::contract::{write_source_record, Place};
use tonbo_core::jsonline::{check_line, LineError};
use tonbo_core::reader::{left_out_by_modified_after, ReaderIo};
use tonbo_core::Output;

use crate::chat::{Chat, Kind, Written};
use crate::files::{chat_format, ChatFormat};
use crate::{SOURCE, STAGE};

/// What a run read, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub jsonl_files: u64,
    pub json_files: u64,
    /// Non-blank JSONL lines read (a line read again after a rewrite counts again).
    pub lines: u64,
    /// Messages written (a version written again counts again).
    pub messages: u64,
    /// Source records written.
    pub records: u64,
    /// Torn last lines left for a later run.
    pub incomplete: u64,
    /// Files that could not be read, or not whole (each reported on stderr).
    pub failed: u64,
    /// Files not modified after `--modified-after`.
    pub skipped_old: u64,
}

impl Stats {
    /// The summary line (without the newline).
    pub fn summary(&self, rejected: u64, modified_after: bool) -> String {
        let mut s = format!(
            "{STAGE}: {} files ({} jsonl, {} json), {} lines, {} messages, {} records, {} incomplete, {} rejected, {} failed",
            self.jsonl_files + self.json_files,
            self.jsonl_files,
            self.json_files,
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

/// One chat file as read so far.
#[derive(Debug)]
pub struct ChatFile {
    pub path: PathBuf,
    format: ChatFormat,
    /// The file's name in `at`: `<file name>`, or `<parent session id>/<file name>` for a
    /// subagent's chat (the folder names its parent).
    file_key: String,
    chat: Chat,
    /// JSONL: bytes consumed (the end of the last complete line) and physical lines.
    offset: u64,
    line_no: u64,
    /// (device, inode) when last read: another one means the file was replaced.
    id: Option<(u64, u64)>,
    /// Document: (length, mtime) when last read whole.
    seen: Option<(u64, SystemTime)>,
    /// The session id taken from the file name, once noted.
    fallback: Option<String>,
    /// The project record was written (or there is none to write).
    project_done: bool,
    /// When the file last gave something new (for `--follow`'s quiet flush).
    pub changed_at: Instant,
}

/// The name a chat file goes by in `at`.
pub fn file_key(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    match path.parent().and_then(Path::file_name) {
        Some(dir) if dir != "chats" => format!("{}/{name}", dir.to_string_lossy()),
        _ => name.into_owned(),
    }
}

impl ChatFile {
    /// A chat file not read yet; `None` when its name says it is no chat.
    pub fn new(path: PathBuf) -> Option<ChatFile> {
        Some(ChatFile {
            format: chat_format(&path)?,
            file_key: file_key(&path),
            path,
            chat: Chat::default(),
            offset: 0,
            line_no: 0,
            id: None,
            seen: None,
            fallback: None,
            project_done: false,
            changed_at: Instant::now(),
        })
    }

    /// Whether a message is held back, waiting to be settled.
    pub fn pending(&self) -> bool {
        self.chat.pending()
    }
}

/// What reading one file gave.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileYield {
    pub lines: u64,
    pub records: u64,
}

/// Writes one source record.
fn emit(out: &mut Output, session: &str, file: &ChatFile, w: &Written) -> std::io::Result<()> {
    // A project record was read from the project's `.project_root`, not from the chat.
    let read_from = match w.kind {
        Kind::Project => project_root_file(&file.path).unwrap_or_else(|| file.path.clone()),
        _ => file.path.clone(),
    };
    let path = read_from.display().to_string();
    let at = format!("{}:{}", file.file_key, w.key);
    let place = match w.line {
        Some(n) => Place::Line(n),
        None => Place::Row(&w.key),
    };
    let record = w.text.as_bytes();
    write_source_record(
        out,
        SOURCE,
        w.kind.wire(),
        session,
        record,
        &at,
        &path,
        Some(place),
    )
}

/// Lines between two looks at the stop flag.
const CHECK_EVERY: u64 = 256;

/// Reads chat files into source records on `io.out`.
pub struct Reader<'a> {
    pub io: ReaderIo<'a>,
    pub modified_after: Option<SystemTime>,
    /// A stop left input unread.
    pub stopped: bool,
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

    /// Whether `path` is left out by `--modified-after` (counted).
    pub fn too_old(&mut self, path: &Path) -> bool {
        let Some(after) = self.modified_after else {
            return false;
        };
        let old = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t <= after);
        if old {
            self.stats.skipped_old += 1;
        }
        old
    }

    /// Reads a file once, as a plain run does: everything, the last message settled.
    pub fn read_whole(&mut self, path: PathBuf) -> Result<FileYield> {
        let Some(mut file) = ChatFile::new(path) else {
            return Ok(FileYield::default());
        };
        let mut y = self.read(&mut file, false)?;
        y.records += self.settle(&mut file)?;
        Ok(y)
    }

    /// Writes a file's held-back message; returns how many records that wrote.
    pub fn settle(&mut self, file: &mut ChatFile) -> Result<u64> {
        let mut out = Vec::new();
        file.chat.settle(&mut out);
        self.write(file, &out)
    }

    fn write(&mut self, file: &mut ChatFile, written: &[Written]) -> Result<u64> {
        let mut project = 0;
        for w in written {
            let session = match &file.chat.session {
                Some(s) => s.clone(),
                None => self.fallback_session(file),
            };
            if !file.project_done {
                file.project_done = true;
                project += self.write_project(file, &session)?;
            }
            emit(self.io.out, &session, file, w)?;
            self.stats.records += 1;
            if w.kind == Kind::Message {
                self.stats.messages += 1;
            }
        }
        if !written.is_empty() {
            file.changed_at = Instant::now();
        }
        self.show_progress();
        Ok(written.len() as u64 + project)
    }

    /// The project's root, before a chat's first record: the `.project_root` file Gemini CLI
    /// keeps in the project's temp folder (since #17901, 2026-02; older, hash-named folders have
    /// none, and then nothing is written). A `kind: "project"` record `{"projectRoot": ...}`.
    fn write_project(&mut self, file: &ChatFile, session: &str) -> Result<u64> {
        let Some(marker) = project_root_file(&file.path) else {
            return Ok(0);
        };
        let Ok(root) = std::fs::read_to_string(&marker) else {
            return Ok(0);
        };
        let root = root.trim();
        if root.is_empty() {
            return Ok(0);
        }
        let record = Written {
            kind: Kind::Project,
            key: "project".into(),
            text: serde_json::json!({ "projectRoot": root }).to_string(),
            line: Some(1),
        };
        emit(self.io.out, session, file, &record)?;
        self.stats.records += 1;
        Ok(1)
    }

    /// A record before any metadata named the session: the id from the file name (a
    /// subagent's file is named by its whole id; a main chat's by its first 8 characters).
    fn fallback_session(&mut self, file: &mut ChatFile) -> String {
        if let Some(id) = &file.fallback {
            return id.clone();
        }
        let stem = file.path.file_stem().unwrap_or_default().to_string_lossy();
        let id = stem.rsplit('-').next().unwrap_or(&stem).to_string();
        let id = if file.file_key.contains('/') {
            stem.into_owned()
        } else {
            id
        };
        tonbo_core::note!(
            "{STAGE}: note: {}: no session metadata before its first record; session id taken from its file name: {id}",
            file.path.display()
        );
        file.fallback = Some(id.clone());
        id
    }

    fn show_progress(&self) {
        if let Some(p) = &self.io.progress {
            use tonbo_core::progress::{R_RECORDS, R_SCANNED};
            p.set(R_SCANNED, self.stats.jsonl_files + self.stats.json_files);
            p.set(R_RECORDS, self.stats.records);
        }
    }

    /// Reads what is new in a file (`follow`: a torn last line waits silently, a truncated
    /// document is retried on its next change). The last message stays held back.
    pub fn read(&mut self, file: &mut ChatFile, follow: bool) -> Result<FileYield> {
        let first = file.id.is_none() && file.seen.is_none();
        if first {
            match file.format {
                ChatFormat::Lines => self.stats.jsonl_files += 1,
                ChatFormat::Document => self.stats.json_files += 1,
            }
        }
        let meta = match std::fs::metadata(&file.path) {
            Ok(m) => m,
            Err(e) if follow && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileYield::default())
            }
            Err(e) => {
                tonbo_core::note!("{STAGE}: cannot read {}: {e}", file.path.display());
                self.stats.failed += 1;
                return Ok(FileYield::default());
            }
        };
        match file.format {
            ChatFormat::Lines => self.read_lines(file, &meta, follow),
            ChatFormat::Document => self.read_document(file, &meta, follow),
        }
    }

    fn read_lines(
        &mut self,
        file: &mut ChatFile,
        meta: &std::fs::Metadata,
        follow: bool,
    ) -> Result<FileYield> {
        let id = (meta.dev(), meta.ino());
        if file.id != Some(id) || meta.len() < file.offset {
            // Replaced (a whole-file rewrite is temp file + rename) or truncated: read again
            // from the start; the replay writes only what changed.
            file.offset = 0;
            file.line_no = 0;
        }
        file.id = Some(id);
        let mut y = FileYield::default();
        if meta.len() == file.offset {
            return Ok(y);
        }
        let name = file.path.display().to_string();
        let opened = File::open(&file.path).and_then(|mut f| {
            f.seek(SeekFrom::Start(file.offset))?;
            Ok(BufReader::new(f))
        });
        let mut input = match opened {
            Ok(r) => r,
            Err(e) => {
                tonbo_core::note!("{STAGE}: cannot open {name}: {e}");
                self.stats.failed += 1;
                return Ok(y);
            }
        };
        let mut buf = Vec::new();
        loop {
            if y.lines > 0 && y.lines.is_multiple_of(CHECK_EVERY) && self.io.stop_set() {
                self.stopped = true;
                break;
            }
            buf.clear();
            let n = match input.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(n) => n as u64,
                Err(e) => {
                    tonbo_core::note!("{STAGE}: cannot read {name}: {e}");
                    self.stats.failed += 1;
                    break;
                }
            };
            if !self.take_line(file, &buf, n, follow, &mut y)? {
                break;
            }
        }
        if y.lines > 0 {
            file.changed_at = Instant::now();
        }
        self.io.out.flush()?;
        Ok(y)
    }

    /// One line read (`n` bytes with its newline, if any): a record, a rejected line, or a
    /// torn last line left for the next read (then `false`: stop reading this file).
    fn take_line(
        &mut self,
        file: &mut ChatFile,
        buf: &[u8],
        n: u64,
        follow: bool,
        y: &mut FileYield,
    ) -> Result<bool> {
        let terminated = buf.last() == Some(&b'\n');
        let text = trim_line(buf);
        if text.iter().all(u8::is_ascii_whitespace) {
            if terminated {
                file.offset += n;
                file.line_no += 1;
            }
            return Ok(true);
        }
        let checked = check_line(text);
        // A last line without its newline that does not parse is most likely being appended
        // right now: left for the next read.
        if let (Err(LineError::NotJson(_)), false) = (&checked, terminated) {
            if !follow {
                tonbo_core::note!(
                    "{STAGE}: {}:{}: incomplete last line ({} bytes), not read; a writer may still be appending",
                    file.path.display(),
                    file.line_no + 1,
                    text.len()
                );
                self.stats.incomplete += 1;
            }
            return Ok(false);
        }
        file.offset += n;
        file.line_no += 1;
        y.lines += 1;
        self.stats.lines += 1;
        match checked {
            Ok(record) => {
                let mut out = Vec::new();
                file.chat.line(record.get(), file.line_no, &mut out);
                y.records += self.write(file, &out)?;
            }
            Err(why) => {
                let name = file.path.display().to_string();
                let reason = why.to_string();
                self.io.rejects.reject(&name, file.line_no, &reason, text)?;
            }
        }
        Ok(true)
    }

    fn read_document(
        &mut self,
        file: &mut ChatFile,
        meta: &std::fs::Metadata,
        follow: bool,
    ) -> Result<FileYield> {
        let stamp = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let mut y = FileYield::default();
        if file.seen == Some(stamp) {
            return Ok(y);
        }
        let name = file.path.display().to_string();
        let text = match std::fs::read_to_string(&file.path) {
            Ok(t) => t,
            Err(e) => {
                tonbo_core::note!("{STAGE}: cannot read {name}: {e}");
                self.stats.failed += 1;
                return Ok(y);
            }
        };
        let mut out = Vec::new();
        match file.chat.document(&text, &mut out) {
            Ok(()) => {
                file.seen = Some(stamp);
                file.changed_at = Instant::now();
                y.lines = 1;
            }
            // Written whole with writeFileSync, not atomically: a reader may see half of it.
            Err(e) if e.is_eof() && follow => {}
            Err(e) if e.is_eof() => {
                tonbo_core::note!("{STAGE}: {name}: truncated JSON document (caught mid-write?), not read; a later run reads it whole");
                self.stats.failed += 1;
            }
            Err(e) => {
                file.seen = Some(stamp);
                let why = format!("not a Gemini CLI chat document: {e}");
                self.io.rejects.reject(&name, e.line() as u64, &why, &[])?;
            }
        }
        y.records = self.write(file, &out)?;
        self.io.out.flush()?;
        Ok(y)
    }
}

/// `<project temp dir>/.project_root` for a chat under `<project temp dir>/chats/`.
fn project_root_file(chat: &Path) -> Option<PathBuf> {
    let chats = chat
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == "chats"))?;
    Some(chats.parent()?.join(".project_root"))
}

/// A line without its `\n` or `\r\n`.
fn trim_line(buf: &[u8]) -> &[u8] {
    let buf = buf.strip_suffix(b"\n").unwrap_or(buf);
    buf.strip_suffix(b"\r").unwrap_or(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subagent_chat_is_named_with_its_parent() {
        assert_eq!(
            file_key(Path::new("/h/.gemini/tmp/p/chats/session-x-1234abcd.jsonl")),
            "session-x-1234abcd.jsonl"
        );
        assert_eq!(
            file_key(Path::new("/h/.gemini/tmp/p/chats/parent-id/child-id.jsonl")),
            "parent-id/child-id.jsonl"
        );
    }
}
