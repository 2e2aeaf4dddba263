//! Reading a task folder as source records: its history item, then every element of
//! `api_conversation_history.json` and of `ui_messages.json` not written before. The files are
//! JSON documents rewritten whole (FORMAT.md, "How the files are written"), so each is read
//! from its start, element by element in flat memory ([`crate::doc`]); an element goes out
//! byte for byte (compacted when the
//! writer indented it). The same code serves a plain run (every element is new) and `--follow`
//! (a task's [`TaskState`] remembers the `at` of every element sent, so a re-read after a
//! rewrite, a torn write or a checkpoint restore sends only elements never sent).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;
use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::event::fnv64;
use tonbo_core::jsonline::compact_json;
use tonbo_core::progress::{R_BYTES, R_RECORDS, R_SCANNED};
use tonbo_core::reader::{left_out_by_modified_after, ReaderIo};

use crate::doc::{self, End};
use crate::record::{emit, At, Part};
use crate::roots::{
    sdk_child_session, sdk_children, sdk_files, storage_of, variant_of_path, API_FILE,
    HISTORY_ITEM, TASK_HISTORY, UI_FILE,
};
use crate::{Variant, STAGE};

/// What a run read, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Task folders read (at least one of their files).
    pub tasks: u64,
    /// Elements of the API histories and UI message lists read (sent or sent before).
    pub api_messages: u64,
    pub ui_messages: u64,
    /// Source records written.
    pub records: u64,
    /// Files found torn or empty (being written): left for the next change or run.
    pub incomplete: u64,
    /// Files and folders that could not be read (each reported on stderr).
    pub failed: u64,
    /// Following: files found shorter than when last read (a checkpoint restore or an edited
    /// message truncated them); what was sent stays, what follows is new.
    pub rewinds: u64,
    /// Task folders none of whose files was modified after `--modified-after`.
    pub skipped_old: u64,
}

impl Stats {
    /// The summary line (without the newline).
    pub fn summary(&self, rejected: u64, modified_after: bool) -> String {
        let mut s = format!(
            "{STAGE}: {} tasks, {} api messages, {} ui messages, {} records, {} incomplete, {} rejected, {} failed",
            self.tasks,
            self.api_messages,
            self.ui_messages,
            self.records,
            self.incomplete,
            rejected,
            self.failed,
        );
        if modified_after {
            s.push_str(&left_out_by_modified_after(
                self.skipped_old,
                "tasks not modified",
            ));
        }
        s
    }
}

/// A file's size and modification time: what tells whether it changed.
type FileStamp = (u64, SystemTime);

/// What following keeps of a task folder between looks.
#[derive(Debug, Default)]
pub struct TaskState {
    /// The `at` of every element sent (`api:<i>:<stamp>`, `ui:<i>:<stamp>`).
    sent: HashSet<String>,
    /// Whether the task's history item went out (it goes once; later versions only update
    /// its counters).
    task_sent: bool,
    /// Size and modification time of each file when last read whole, to skip an unchanged
    /// folder on a rescan; `None` after a torn read, so the next look reads again.
    seen: Option<Vec<Option<FileStamp>>>,
    /// Whether the folder was counted in the summary's tasks.
    counted: bool,
    /// Whether `--modified-after` left it out (counted once in the summary).
    left_out: bool,
    /// How many elements the API history and the UI messages had when last read whole: fewer
    /// now means the agent truncated them (a checkpoint restore, an edited message).
    lens: [usize; 2],
}

/// What one task folder gave.
#[derive(Debug, Default, Clone, Copy)]
pub struct TaskYield {
    pub records: u64,
    /// Elements read (sent now or before).
    pub elements: u64,
    /// Left out by `--modified-after`.
    pub old: bool,
}

/// Reads task folders, writing their records.
pub struct Reader<'a> {
    pub io: ReaderIo<'a>,
    pub modified_after: Option<SystemTime>,
    pub stats: Stats,
    /// Following: the state of every task folder met.
    pub tasks: HashMap<PathBuf, TaskState>,
    /// Cline's `state/taskHistory.json` of each storage folder: when read, and its entries by
    /// task id (compacted).
    indexes: HashMap<PathBuf, (Option<FileStamp>, HashMap<String, String>)>,
}

/// What the reader looks at in an element: each field on its own, so one of an odd type does
/// not hide the others.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Probe<'a> {
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    partial: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    say: Option<&'a RawValue>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
}

fn probe(raw: &RawValue) -> Probe<'_> {
    serde_json::from_str(raw.get()).unwrap_or_default()
}

impl Probe<'_> {
    /// The element's `ts` as written, when it is a number.
    fn ts(&self) -> Option<String> {
        let n: serde_json::Number = serde_json::from_str(self.ts?.get()).ok()?;
        Some(n.to_string())
    }

    fn id(&self) -> Option<String> {
        serde_json::from_str(self.id?.get()).ok()
    }

    /// A UI message the extension will rewrite in place: one being streamed (`partial:
    /// true`), or an `api_req_started` whose request has not ended (no tokens, cost or cancel
    /// reason in its text yet: FORMAT.md, "ui_messages.json").
    fn unsettled(&self) -> bool {
        if self.partial.is_some_and(|p| p.get() == "true") {
            return true;
        }
        if self.say.map(RawValue::get) != Some("\"api_req_started\"") {
            return false;
        }
        #[derive(Deserialize)]
        struct ReqInfo<'a> {
            #[serde(rename = "tokensIn", borrow)]
            tokens_in: Option<&'a RawValue>,
            #[serde(rename = "tokensOut", borrow)]
            tokens_out: Option<&'a RawValue>,
            #[serde(borrow)]
            cost: Option<&'a RawValue>,
            #[serde(rename = "cancelReason", borrow)]
            cancel: Option<&'a RawValue>,
            #[serde(rename = "streamingFailedMessage", borrow)]
            failed: Option<&'a RawValue>,
        }
        let text: Option<String> = self.text.and_then(|t| serde_json::from_str(t.get()).ok());
        match text.and_then(|t| {
            serde_json::from_str::<ReqInfo>(&t).ok().map(|r| {
                [r.tokens_in, r.tokens_out, r.cost, r.cancel, r.failed]
                    .iter()
                    .any(Option::is_some)
            })
        }) {
            Some(ended) => !ended,
            // Not the JSON the extensions write: nothing to wait for.
            None => false,
        }
    }
}

fn stamp_of(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// An element's JSON on one line: as written, or compacted when the writer indented it.
fn one_line(raw: &str) -> String {
    if raw.contains(['\n', '\r']) {
        compact_json(raw)
    } else {
        raw.to_string()
    }
}

/// Whether a file's JSON starts with `{` (an envelope rather than an array).
fn starts_with_brace(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let text = head[..n]
        .strip_prefix(&[0xEF, 0xBB, 0xBF])
        .unwrap_or(&head[..n]);
    text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The variant a task folder's content shows when its path names none (FORMAT.md,
/// "Telling the variants apart").
fn variant_of_content(dir: &Path, envelope: bool) -> Option<Variant> {
    if sdk_files(dir).is_some() {
        return Some(Variant::Cline);
    }
    if envelope || dir.join(HISTORY_ITEM).is_file() {
        return Some(Variant::RooCode);
    }
    let storage = storage_of(dir);
    if storage.is_some_and(|s| s.join("tasks/_index.json").is_file()) {
        return Some(Variant::RooCode);
    }
    let digits = dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().bytes().all(|b| b.is_ascii_digit()));
    if digits || storage.is_some_and(|s| s.join(TASK_HISTORY).is_file()) {
        return Some(Variant::Cline);
    }
    None
}

impl<'a> Reader<'a> {
    pub fn new(io: ReaderIo<'a>, modified_after: Option<SystemTime>) -> Reader<'a> {
        Reader {
            io,
            modified_after,
            stats: Stats::default(),
            tasks: HashMap::new(),
            indexes: HashMap::new(),
        }
    }

    pub fn stopped(&self) -> bool {
        self.io.stop_set()
    }

    /// Reports a file or folder that could not be read, and counts it.
    pub fn failed(&mut self, what: &str) {
        tonbo_core::note!("{STAGE}: error: {what}");
        self.stats.failed += 1;
    }

    /// Reads one task folder, sending what was not sent before (`keep`: remember it for
    /// following; a plain run forgets each folder once read). Following, a folder whose files
    /// kept their sizes and times is not read again, unless `changed` (a filesystem event
    /// named it: a rewrite of the same size within the clock's resolution is still read).
    pub fn read_task(&mut self, dir: &Path, keep: bool, changed: bool) -> Result<TaskYield> {
        let mut state = self.tasks.remove(dir).unwrap_or_default();
        if changed {
            state.seen = None;
        }
        let y = self.read_task_with(dir, &mut state);
        if keep {
            self.tasks.insert(dir.to_path_buf(), state);
        }
        let mut y = y?;
        for child in sdk_children(dir) {
            let c = self.read_child(dir, &child, keep, changed)?;
            y.records += c.records;
            y.elements += c.elements;
        }
        Ok(y)
    }

    /// An SDK sub-agent's session: `file`, `<agent id>.messages.json` in its root session's
    /// folder `dir`, read as the API history of the session `<root id>__<agent id>`.
    fn read_child(
        &mut self,
        dir: &Path,
        file: &Path,
        keep: bool,
        changed: bool,
    ) -> Result<TaskYield> {
        let mut state = self.tasks.remove(file).unwrap_or_default();
        if changed {
            state.seen = None;
        }
        let mut y = TaskYield::default();
        let seen = vec![stamp_of(file)];
        let old = self
            .modified_after
            .is_some_and(|t| !state.counted && !seen.iter().flatten().any(|(_, m)| *m > t));
        if state.seen.as_ref() != Some(&seen) && !old {
            let session = sdk_child_session(dir, file);
            let task = Task {
                variant: Variant::Cline.name(),
                session: &session,
            };
            if !state.counted {
                state.counted = true;
                self.stats.tasks += 1;
            }
            let whole = self.stream_part(&task, &mut state, (Part::Api, file), &mut y)?;
            state.seen = whole.then_some(seen);
        }
        if keep {
            self.tasks.insert(file.to_path_buf(), state);
        }
        Ok(y)
    }

    fn read_task_with(&mut self, dir: &Path, state: &mut TaskState) -> Result<TaskYield> {
        let mut y = TaskYield::default();
        // An SDK session's messages and manifest stand where a task's API history and
        // history item do.
        let (api_file, item_file) =
            sdk_files(dir).unwrap_or_else(|| (dir.join(API_FILE), dir.join(HISTORY_ITEM)));
        let files = [api_file, dir.join(UI_FILE), item_file];
        let seen: Vec<_> = files.iter().map(|f| stamp_of(f)).collect();
        if state.task_sent && state.seen.as_ref() == Some(&seen) {
            return Ok(y);
        }
        if let Some(t) = self.modified_after {
            if !state.counted && !seen.iter().flatten().any(|(_, m)| *m > t) {
                if !state.left_out {
                    state.left_out = true;
                    self.stats.skipped_old += 1;
                }
                y.old = true;
                return Ok(y);
            }
        }
        let session = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let envelope = starts_with_brace(&files[0]);
        let variant = variant_of_path(dir)
            .or_else(|| variant_of_content(dir, envelope))
            .map_or("unknown", Variant::name);
        let task = Task {
            variant,
            session: &session,
        };
        if (files[0].is_file() || files[1].is_file()) && !state.counted {
            state.counted = true;
            self.stats.tasks += 1;
            if let Some(p) = &self.io.progress {
                p.add(R_SCANNED, 1);
            }
        }
        if !state.task_sent {
            if let Some((raw, file)) = self.history_item(dir, &files[2], &session) {
                let at = At {
                    part: Part::Task,
                    index: None,
                    stamp: String::new(),
                };
                self.send(&task, &raw, &file, &at, &mut y)?;
                state.task_sent = true;
            }
        }
        let mut whole = true;
        for (part, file) in [(Part::Api, &files[0]), (Part::Ui, &files[1])] {
            whole &= self.stream_part(&task, state, (part, file), &mut y)?;
        }
        state.seen = whole.then_some(seen);
        Ok(y)
    }

    /// Reads one file of the task, sending its elements not sent before, in order; false when
    /// it could not be read whole (torn, unreadable: to be read again).
    fn stream_part(
        &mut self,
        task: &Task,
        state: &mut TaskState,
        (part, path): (Part, &Path),
        y: &mut TaskYield,
    ) -> Result<bool> {
        let file = path.display().to_string();
        let streamed = doc::stream(path, &mut |index, raw| {
            self.element(task, state, (part, &file), (index, raw), y)
        });
        let streamed = match streamed {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(true),
            Err(e) if e.downcast_ref::<std::io::Error>().is_some() => {
                self.failed(&format!("cannot read {file}: {e}"));
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if let Some(p) = &self.io.progress {
            p.add(R_BYTES, stamp_of(path).map_or(0, |(len, _)| len));
        }
        match streamed.end {
            End::Whole => {
                let slot = usize::from(part == Part::Ui);
                if streamed.count < state.lens[slot] {
                    self.stats.rewinds += 1;
                }
                state.lens[slot] = streamed.count;
                Ok(true)
            }
            End::Torn(why) => {
                self.stats.incomplete += 1;
                tonbo_core::note!(
                    "{STAGE}: note: {file} is incomplete ({why}); left for its next write"
                );
                Ok(false)
            }
            End::NotAList => {
                let why = "not a JSON array of messages (nor a {\"messages\": [...]} object)";
                let start = std::fs::read(path).unwrap_or_default();
                let start = &start[..start.len().min(200)];
                self.io.rejects.reject(&file, 1, why, start)?;
                Ok(true)
            }
        }
    }

    /// One element of a file: sent unless its `at` was. A UI message the extension will still
    /// rewrite in place ([`Probe::unsettled`]) waits.
    fn element(
        &mut self,
        task: &Task,
        state: &mut TaskState,
        (part, file): (Part, &str),
        (index, raw): (usize, &RawValue),
        y: &mut TaskYield,
    ) -> Result<()> {
        y.elements += 1;
        match part {
            Part::Ui => self.stats.ui_messages += 1,
            _ => self.stats.api_messages += 1,
        }
        let p = probe(raw);
        if part == Part::Ui && p.unsettled() {
            return Ok(());
        }
        let stamp = match p.ts() {
            Some(ts) => ts,
            None => format!("h{:016x}", fnv64(raw.get().as_bytes())),
        };
        let at = At {
            part,
            index: Some(index),
            stamp,
        };
        let text = at.text();
        if state.sent.contains(&text) {
            return Ok(());
        }
        if raw.get().starts_with('{') {
            self.send(task, &one_line(raw.get()), file, &at, y)?;
        } else {
            // Not a message: rejected once (its `at` counts as done, so a re-read of the file
            // does not reject it again).
            let why = format!("element {index} is not a JSON object");
            self.io
                .rejects
                .reject(file, 1, &why, raw.get().as_bytes())?;
        }
        state.sent.insert(text);
        Ok(())
    }

    fn send(
        &mut self,
        task: &Task,
        raw: &str,
        file: &str,
        at: &At,
        y: &mut TaskYield,
    ) -> Result<()> {
        emit(self.io.out, task.variant, task.session, raw, file, at)?;
        self.stats.records += 1;
        y.records += 1;
        if let Some(p) = &self.io.progress {
            p.add(R_RECORDS, 1);
        }
        Ok(())
    }

    /// The task's history item: `own`, its `history_item.json` (Roo Code) or an SDK session's
    /// manifest, else its entry in the storage folder's `state/taskHistory.json` (Cline), with
    /// the file it came from.
    fn history_item(&mut self, dir: &Path, own: &Path, id: &str) -> Option<(String, String)> {
        if let Ok(text) = std::fs::read_to_string(own) {
            if serde_json::from_str::<&RawValue>(&text).is_ok() {
                return Some((compact_json(text.trim()), own.display().to_string()));
            }
        }
        let index = storage_of(dir)?.join(TASK_HISTORY);
        let stamp = stamp_of(&index)?;
        let key = index.clone();
        let fresh = self
            .indexes
            .get(&key)
            .is_some_and(|(s, _)| *s == Some(stamp));
        if !fresh {
            let entries = std::fs::read_to_string(&index).ok().and_then(|t| {
                serde_json::from_str::<Vec<&RawValue>>(&t).ok().map(|v| {
                    v.into_iter()
                        .filter_map(|raw| Some((probe(raw).id()?, one_line(raw.get()))))
                        .collect::<HashMap<_, _>>()
                })
            });
            // A torn index is read again on the next look.
            let s = entries.as_ref().map(|_| stamp);
            self.indexes
                .insert(key.clone(), (s, entries.unwrap_or_default()));
        }
        let raw = self.indexes.get(&key)?.1.get(id)?.clone();
        Some((raw, index.display().to_string()))
    }
}

/// The task folder being read: what its records share.
struct Task<'t> {
    variant: &'static str,
    session: &'t str,
}
