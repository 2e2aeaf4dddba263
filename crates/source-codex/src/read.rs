//! Reading: each session file once, in the plain run's order, as source records on stdout.
//! Each file's generation is told from its content ([`crate::detect`], [`crate::doc`]); JSONL
//! files are read line by line ([`tonbo_core::LineReader`]) and each line goes out as the `record`
//! of a source record byte for byte; V0 and seed documents are read item by item. Memory stays
//! flat in the size of files and the number of items. A SIGINT/SIGTERM (the run's stop flag)
//! ends the read at a record boundary.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use anyhow::Result;
use serde_json::value::RawValue;
use tonbo_core::reader::{left_out_by_modified_after, ReaderIo};
use tonbo_core::LineReader;

use crate::detect::{self, Detected, Detector, SCAN_LINES};
use crate::doc::{self, DocKind, Head};
use crate::lines::{check_line, compact_json, open_document, open_lines, LineError};
use crate::record::{emit, At, RecordKind};
use crate::roots::{list_root, plan, Format, Found, ListNote, Plan, Role, Root};
use crate::STAGE;

pub use tonbo_core::time::{parse_modified_after, parse_time};

/// What a run read, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Files by generation.
    pub v0_files: u64,
    pub seed_files: u64,
    pub v1_files: u64,
    pub v2_files: u64,
    /// Files whose generation could not be told (empty, torn, not a session file, unreadable).
    pub unknown_files: u64,
    /// Of all files, those read through zstd.
    pub zst_files: u64,
    /// Non-blank lines read from JSONL files.
    pub lines: u64,
    /// Elements of V0 `items` and seed `messages`.
    pub items: u64,
    /// Source records written.
    pub records: u64,
    /// Torn last lines and empty files left for a later run.
    pub incomplete: u64,
    /// Files and folders that could not be read, or not to their end (each reported on stderr).
    pub failed: u64,
    /// Files not read because another file holds the same session (a plain file beside its
    /// `.zst`, or the same name in `sessions/` and `archived_sessions/`).
    pub duplicates: u64,
    /// Files not modified after `--modified-after`.
    pub skipped_old: u64,
}

impl Stats {
    pub fn files(&self) -> u64 {
        self.v0_files + self.seed_files + self.v1_files + self.v2_files + self.unknown_files
    }

    /// The summary line (without the newline).
    pub fn summary(&self, rejected: u64, modified_after: bool) -> String {
        let mut s = format!(
            "{STAGE}: {} files ({} v0, {} seed, {} v1, {} v2+, {} unknown; {} zst), {} lines, {} items, {} records, {} incomplete, {} rejected, {} failed",
            self.files(),
            self.v0_files,
            self.seed_files,
            self.v1_files,
            self.v2_files,
            self.unknown_files,
            self.zst_files,
            self.lines,
            self.items,
            self.records,
            self.incomplete,
            rejected,
            self.failed,
        );
        if self.duplicates > 0 {
            s.push_str(&format!(", skipped {} duplicate files", self.duplicates));
        }
        if modified_after {
            s.push_str(&left_out_by_modified_after(
                self.skipped_old,
                "files not modified",
            ));
        }
        s
    }
}
/// Lines or items between two looks at the stop flag.
pub(crate) const CHECK_EVERY: u64 = 256;

/// Returned by a callback to stop reading at a record boundary on SIGINT/SIGTERM.
#[derive(Debug)]
pub(crate) struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped by a signal")
    }
}

impl std::error::Error for Stopped {}

/// What one root gave a plain read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Yield {
    /// Session files read.
    pub files: u64,
    pub lines: u64,
    pub records: u64,
    /// Files left out on purpose: not modified after `--modified-after`, or duplicates.
    pub passed_over: u64,
}

impl Yield {
    /// The sum of the yields of the roots of one PATH.
    pub fn sum(yields: &[Yield]) -> Yield {
        yields.iter().fold(Yield::default(), |a, y| Yield {
            files: a.files + y.files,
            lines: a.lines + y.lines,
            records: a.records + y.records,
            passed_over: a.passed_over + y.passed_over,
        })
    }

    /// Why nothing was read, or `None` if a record was written or every session file found was
    /// left out on purpose (which the summary counts).
    pub fn nothing_read(&self) -> Option<String> {
        if self.records > 0 || (self.files == 0 && self.passed_over > 0) {
            return None;
        }
        Some(if self.files == 0 {
            "no Codex session file (rollout-*.json, *.jsonl, *.jsonl.zst) in it".into()
        } else if self.lines == 0 {
            format!("its {} session files hold no line or item", self.files)
        } else {
            format!(
                "none of the {} lines of its {} session files could be read (incomplete, rejected or unreadable: see above)",
                self.lines, self.files
            )
        })
    }
}

/// Reads session files into source records on `out`.
pub struct Reader<'a> {
    /// Its run's stdout and rejects file, the stop flag it heeds (at a record boundary: between
    /// files, and every [`CHECK_EVERY`] lines or items, so that what is written ends with a whole
    /// line), and the progress counters it updates after each file.
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

    fn stopping(&self) -> bool {
        self.io.stop_set()
    }

    /// Reads the roots in order, each sorted by path. All roots are listed first, so that a file
    /// in an `archived_sessions` root whose name is also in a `sessions` root is passed over
    /// (with a note) wherever the two come in the list.
    ///
    /// Errors are fatal (writing stdout or the rejects file); unreadable input is reported,
    /// counted in [`Stats::failed`], and passed over.
    ///
    /// Returns what each root gave, in the order of `roots`.
    pub fn read_roots(&mut self, roots: &[Root]) -> Result<Vec<Yield>> {
        let listed: Vec<(Role, Vec<Found>)> = roots
            .iter()
            .map(|root| (root.role, self.list(root)))
            .collect();
        let mut root_of: HashMap<&Path, usize> = HashMap::new();
        for (i, (_, files)) in listed.iter().enumerate() {
            for f in files {
                root_of.entry(f.path.as_path()).or_insert(i);
            }
        }
        let mut yields = vec![Yield::default(); roots.len()];
        for planned in plan(&listed, self.modified_after) {
            match planned {
                Plan::Duplicate { found, kept } => {
                    self.note_duplicate(&found.path, &kept);
                    yields[root_of[found.path.as_path()]].passed_over += 1;
                }
                Plan::Old(found) => {
                    self.stats.skipped_old += 1;
                    yields[root_of[found.path.as_path()]].passed_over += 1;
                }
                Plan::Read(found) => {
                    if self.stopping() {
                        self.stopped = true;
                        return Ok(yields);
                    }
                    let (lines, records) = (self.stats.lines, self.stats.records);
                    self.read_file(&found)?;
                    let y = &mut yields[root_of[found.path.as_path()]];
                    y.files += 1;
                    y.lines += self.stats.lines - lines;
                    y.records += self.stats.records - records;
                }
            }
        }
        Ok(yields)
    }

    pub(crate) fn note_duplicate(&mut self, path: &Path, kept: &Path) {
        tonbo_core::note!(
            "{STAGE}: note: {} not read: {} has the same name (sessions/ wins over archived_sessions/)",
            path.display(),
            kept.display()
        );
        self.stats.duplicates += 1;
    }

    /// The session files of one root, sorted by path; walk errors are reported and counted.
    pub(crate) fn list(&mut self, root: &Root) -> Vec<Found> {
        let (files, notes) = list_root(root);
        for note in &notes {
            self.report_list_note(note);
        }
        files
    }

    pub(crate) fn report_list_note(&mut self, note: &ListNote) {
        match note {
            ListNote::WalkError { message, .. } => {
                tonbo_core::note!("{STAGE}: {message}");
                self.stats.failed += 1;
            }
            ListNote::NotSession(path) => tonbo_core::note!(
                "{STAGE}: note: {} is not a Codex session file (.json, .jsonl, .jsonl.zst); skipped",
                path.display()
            ),
            ListNote::ZstBeside { zst, plain } => {
                tonbo_core::note!(
                    "{STAGE}: note: {} not read: {} beside it wins (the plain file wins)",
                    zst.display(),
                    plain.display()
                );
                self.stats.duplicates += 1;
            }
        }
    }

    fn read_file(&mut self, found: &Found) -> Result<()> {
        let read = match found.format {
            Format::Document => self.read_document(&found.path),
            Format::Lines => self.read_jsonl(&found.path, false),
            Format::Zst => self.read_jsonl(&found.path, true),
        };
        // Once per file, from what the stats count: session files are small enough for the line
        // to move; bytes read are the file's size on disk (compressed for a .zst).
        if self.io.progress.is_some() {
            self.show_progress(std::fs::metadata(&found.path).map_or(0, |m| m.len()));
        }
        read
    }

    /// `--progress`: files and records as counted so far, and `bytes` more read.
    pub(crate) fn show_progress(&self, bytes: u64) {
        if let Some(p) = &self.io.progress {
            use tonbo_core::progress::{R_BYTES, R_RECORDS, R_SCANNED};
            p.set(R_SCANNED, self.stats.files());
            p.set(R_RECORDS, self.stats.records);
            p.add(R_BYTES, bytes);
        }
    }

    /// The session id when the content gives none: from the file name, with a note.
    pub(crate) fn fallback_session(&self, path: &Path, why: &str) -> String {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let (id, uuid) = detect::session_from_file_name(&name);
        let from = if uuid {
            "the UUID in its file name"
        } else {
            "its file name"
        };
        tonbo_core::note!(
            "{STAGE}: note: {}: {why}; session id taken from {from}: {id}",
            path.display()
        );
        id
    }

    /// Reports a read error: of a `.zst`, as a zstd stream that is not whole.
    fn read_failed(&mut self, name: &str, zst: bool, e: &io::Error) {
        let msg = e.to_string();
        if zst {
            let inner = msg
                .strip_prefix(&format!("cannot read {name}: "))
                .unwrap_or(&msg);
            tonbo_core::note!("{STAGE}: {name}: not a complete zstd stream ({inner})");
        } else if msg.starts_with("cannot read ") {
            tonbo_core::note!("{STAGE}: {msg}");
        } else {
            tonbo_core::note!("{STAGE}: cannot read {name}: {msg}");
        }
        self.stats.failed += 1;
    }

    /// The session and record kind of a JSONL file its first lines told, counted in the stats;
    /// `None` (reported and counted) when they told none.
    pub(crate) fn jsonl_session(
        &mut self,
        path: &Path,
        detected: Detected,
    ) -> Result<Option<(String, RecordKind)>> {
        let name = path.display().to_string();
        Ok(Some(match detected {
            Detected::V1 { id } => {
                self.stats.v1_files += 1;
                let id = id.unwrap_or_else(|why| self.fallback_session(path, why));
                (id, RecordKind::V1)
            }
            Detected::V2 { id } => {
                self.stats.v2_files += 1;
                let id = id.unwrap_or_else(|why| self.fallback_session(path, why));
                (id, RecordKind::V2)
            }
            Detected::Empty => {
                // Codex creates a file on its first write: it may be on its way.
                self.stats.unknown_files += 1;
                self.stats.incomplete += 1;
                tonbo_core::note!(
                    "{STAGE}: {name}: empty, not read; a writer may still be creating it"
                );
                return Ok(None);
            }
            Detected::Torn { line, len } => {
                self.stats.unknown_files += 1;
                self.stats.lines += 1;
                self.incomplete(&name, line, len);
                return Ok(None);
            }
            Detected::Unknown { line, reason, raw } => {
                self.stats.unknown_files += 1;
                self.io.rejects.reject(&name, line, &reason, &raw)?;
                return Ok(None);
            }
        }))
    }

    /// A JSONL file (V1 or V2+, plain or zstd): the format and session id from its first lines,
    /// then every line.
    pub(crate) fn read_jsonl(&mut self, path: &Path, zst: bool) -> Result<()> {
        let name = path.display().to_string();
        if zst {
            self.stats.zst_files += 1;
        }
        let detected = match open_lines(path, zst).map(prescan) {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                self.stats.unknown_files += 1;
                self.read_failed(&name, zst, &e);
                return Ok(());
            }
            Err(e) => {
                self.stats.unknown_files += 1;
                tonbo_core::note!("{STAGE}: cannot open {name}: {e}");
                self.stats.failed += 1;
                return Ok(());
            }
        };
        let Some((session, kind)) = self.jsonl_session(path, detected)? else {
            return Ok(());
        };
        self.stream_lines(path, zst, &session, kind, 0)
    }

    fn incomplete(&mut self, name: &str, line: u64, len: usize) {
        tonbo_core::note!(
            "{STAGE}: {name}:{line}: incomplete last line ({len} bytes), not read; a writer may still be appending"
        );
        self.stats.incomplete += 1;
    }

    /// Streams the lines of a JSONL file after line `after` (0: every line) as records, byte
    /// for byte.
    pub(crate) fn stream_lines(
        &mut self,
        path: &Path,
        zst: bool,
        session: &str,
        kind: RecordKind,
        after: u64,
    ) -> Result<()> {
        let name = path.display().to_string();
        let mut lines = match open_lines(path, zst) {
            Ok(lines) => lines,
            Err(e) => {
                tonbo_core::note!("{STAGE}: cannot open {name}: {e}");
                self.stats.failed += 1;
                return Ok(());
            }
        };
        let mut read = 0u64;
        loop {
            if read > 0 && read.is_multiple_of(CHECK_EVERY) && self.stopping() {
                self.stopped = true;
                break;
            }
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    // The rest of this file is lost (for a `.zst`, after whatever decoded before
                    // the damage); the other files are still read.
                    self.read_failed(&name, zst, &e);
                    break;
                }
            };
            if line.number <= after {
                continue;
            }
            read += 1;
            self.stats.lines += 1;
            match check_line(line.bytes) {
                Ok(record) => {
                    emit(
                        self.io.out,
                        kind,
                        session,
                        record.get(),
                        &name,
                        At::Line(line.number),
                    )?;
                    self.stats.records += 1;
                }
                // A last line without its newline that does not parse is most likely being
                // written right now; the next run reads it whole.
                Err(LineError::NotJson(_)) if !line.terminated => {
                    let (number, len) = (line.number, line.bytes.len());
                    self.incomplete(&name, number, len);
                }
                Err(why) => {
                    self.io
                        .rejects
                        .reject(&name, line.number, &why.to_string(), line.bytes)?
                }
            }
        }
        self.io.out.flush()?;
        Ok(())
    }

    /// The session id and session record of a document whose head told its kind, counted in the
    /// stats.
    pub(crate) fn doc_session(
        &mut self,
        path: &Path,
        head: &Head,
        kind: DocKind,
    ) -> (String, String) {
        match kind {
            DocKind::V0 => {
                self.stats.v0_files += 1;
                let s = head.field("session").expect("V0 has a session");
                let id = detect::id_field(s)
                    .unwrap_or_else(|| self.fallback_session(path, "no usable session.id"));
                (id, compact_json(s.get()))
            }
            DocKind::Seed => {
                self.stats.seed_files += 1;
                let id = head
                    .field("id")
                    .and_then(detect::id_text)
                    .unwrap_or_else(|| self.fallback_session(path, "no usable top-level id"));
                (id, head.seed_session())
            }
        }
    }

    /// Reports a document whose head told no kind (`res`: how reading the head ended).
    pub(crate) fn doc_not_told(
        &mut self,
        name: &str,
        head: &Head,
        res: serde_json::Result<()>,
    ) -> Result<()> {
        self.stats.unknown_files += 1;
        match res {
            Err(e) if e.is_eof() && !head.object => {
                tonbo_core::note!(
                    "{STAGE}: {name}: empty, not read; a writer may still be creating it"
                );
                self.stats.incomplete += 1;
            }
            // V0 rewrites the whole file and its writes are not atomic.
            Err(e) if e.is_eof() => {
                tonbo_core::note!("{STAGE}: {name}: truncated JSON document after 0 items");
                self.stats.failed += 1;
            }
            Err(e) => {
                let why = format!("not a Codex session document: {e}");
                self.io.rejects.reject(name, e.line() as u64, &why, &[])?;
            }
            Ok(()) => {
                let why = "not a Codex session document: a top-level object with `session` \
                           and `items` (V0) or `id` and `messages` (seed) expected";
                self.io.rejects.reject(name, 1, why, &[])?;
            }
        }
        Ok(())
    }

    /// Reports how streaming a document's items ended, after `items` of them.
    pub(crate) fn doc_ended(&mut self, name: &str, items: u64, error: Option<serde_json::Error>) {
        match error {
            None => {}
            Some(e) if e.is_eof() => {
                tonbo_core::note!("{STAGE}: {name}: truncated JSON document after {items} items");
                self.stats.failed += 1;
            }
            Some(e) => {
                tonbo_core::note!(
                    "{STAGE}: {name}: invalid JSON document after {items} items ({e})"
                );
                self.stats.failed += 1;
            }
        }
    }

    /// A V0 or seed document: its top level first, then its items one at a time.
    fn read_document(&mut self, path: &Path) -> Result<()> {
        let name = path.display().to_string();
        let reader = match open_document(path) {
            Ok(r) => r,
            Err(e) => {
                self.stats.unknown_files += 1;
                tonbo_core::note!("{STAGE}: cannot open {name}: {e}");
                self.stats.failed += 1;
                return Ok(());
            }
        };
        let (head, res) = doc::read_head(reader);
        let Some(kind) = head.kind() else {
            return self.doc_not_told(&name, &head, res);
        };
        let (session, session_record) = self.doc_session(path, &head, kind);
        let (session_kind, item_kind) = kind.records();
        drop(head);
        emit(
            self.io.out,
            session_kind,
            &session,
            &session_record,
            &name,
            At::Row("session"),
        )?;
        self.stats.records += 1;

        let reader = match open_document(path) {
            Ok(r) => r,
            Err(e) => {
                tonbo_core::note!("{STAGE}: cannot open {name}: {e}");
                self.stats.failed += 1;
                return Ok(());
            }
        };
        let out = &mut *self.io.out;
        let stop = self.io.stop.clone();
        let mut row = String::new();
        let mut emitted = 0u64;
        let streamed = doc::stream_items(reader, kind.array(), &mut |index, item: &RawValue| {
            row.clear();
            row.push_str(&index.to_string());
            emit(
                out,
                item_kind,
                &session,
                &compact_json(item.get()),
                &name,
                At::Row(&row),
            )?;
            emitted += 1;
            if emitted.is_multiple_of(CHECK_EVERY)
                && stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
            {
                return Err(Stopped.into());
            }
            Ok(())
        });
        let streamed = match streamed {
            Ok(s) => s,
            Err(e) if e.is::<Stopped>() => {
                self.stopped = true;
                self.stats.items += emitted;
                self.stats.records += emitted;
                self.io.out.flush()?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.stats.items += streamed.items;
        self.stats.records += streamed.items;
        self.doc_ended(&name, streamed.items, streamed.error);
        self.io.out.flush()?;
        Ok(())
    }
}

/// Reads the first lines of a JSONL file (at most [`SCAN_LINES`]) to tell its format and
/// session id. A read error once the format is known is left for the full read to report.
pub(crate) fn prescan(mut lines: LineReader) -> io::Result<Detected> {
    let mut detector = Detector::default();
    loop {
        match lines.next_line() {
            Ok(Some(line)) => {
                if line.number > SCAN_LINES {
                    break;
                }
                if let Some(answer) = detector.feed(line.number, line.bytes, line.terminated) {
                    return Ok(answer);
                }
            }
            Ok(None) => break,
            Err(e) => {
                let answer = detector.finish();
                return match answer {
                    Detected::V2 { .. } => Ok(answer),
                    _ => Err(e),
                };
            }
        }
    }
    Ok(detector.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_every_count() {
        let s = Stats {
            v0_files: 1,
            seed_files: 1,
            v1_files: 2,
            v2_files: 3,
            unknown_files: 1,
            zst_files: 2,
            lines: 40,
            items: 5,
            records: 47,
            incomplete: 1,
            failed: 1,
            duplicates: 2,
            skipped_old: 3,
        };
        assert_eq!(
            s.summary(2, true),
            "codex-read: 8 files (1 v0, 1 seed, 2 v1, 3 v2+, 1 unknown; 2 zst), 40 lines, 5 items, 47 records, 1 incomplete, 2 rejected, 1 failed, skipped 2 duplicate files, skipped 3 files not modified after --modified-after"
        );
        let s = Stats { duplicates: 0, ..s };
        assert!(s.summary(0, false).ends_with("0 rejected, 1 failed"));
    }
}
