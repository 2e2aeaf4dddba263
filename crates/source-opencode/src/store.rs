//! Reading the JSON store of OpenCode ≤ 1.1 (T1), and the per-project store before it (T0),
//! whose objects have the same shapes and are read the same way (FORMAT.md, "The TypeScript
//! lineage").
//!
//! ```text
//! T1 storage/session/<projectID>/<ses>.json   T0 storage/session/info/<ses>.json
//!    storage/message/<ses>/<msg>.json            storage/session/message/<ses>/<msg>.json
//!    storage/part/<msg>/<prt>.json               storage/session/part/<ses>/<msg>/<prt>.json
//! ```
//!
//! Ids come from the file names, as in OpenCode's own import, not from the JSON's content. Only
//! `.json` files are read (`*.tmp` files appear); a file that does not parse is read once more
//! (writes were not atomic) and then rejected with its name. Sessions are ordered by
//! (`time.created`, id), messages likewise, parts by id.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use tonbo_core::contract::check_session_id;

use crate::follow::gate::{self, Need, TsParts};
use crate::json::{self, BadJson};
use crate::record::{self, Kind, Layout, Prov};
use crate::sources::StoreKind;
use crate::{Reader, STAGE};

/// Added to the reason a session file is rejected for.
const SESSION_NOT_READ: &str = " (session not read)";

/// How long to wait before reading a file that did not parse a second time.
const REREAD_AFTER: Duration = Duration::from_millis(50);

/// A message file of the JSON store, listed before it is read.
#[derive(Debug, Clone)]
pub struct JsonMsg {
    /// `time.created` (ms).
    pub created: Option<i64>,
    /// Whether it is an assistant message (for the look-ahead of `--follow`).
    pub assistant: bool,
    /// The file stem.
    pub id: String,
    /// Which store (index into the run's stores).
    pub store: usize,
    pub path: PathBuf,
}

/// What reading one JSON file gave.
enum Loaded {
    /// The object, compacted to one line.
    Object(String),
    /// Gone since it was listed (renamed or deleted by a writer).
    Gone,
    /// Not a JSON object, also when read again; with the bytes read.
    Bad(BadJson, Vec<u8>),
    Failed(io::Error),
}

/// Reads a JSON object file, a second time if it does not parse the first (it may have been
/// caught half-written).
fn load(path: &Path) -> Loaded {
    let mut attempt = 0;
    loop {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Gone,
            Err(e) => return Loaded::Failed(e),
        };
        match json::utf8(&bytes).and_then(json::object) {
            Ok(obj) => return Loaded::Object(obj),
            Err(why) if attempt > 0 => return Loaded::Bad(why, bytes),
            Err(_) => {
                attempt += 1;
                thread::sleep(REREAD_AFTER);
            }
        }
    }
}

/// The entries of a folder; a missing folder has none.
fn entries(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries.collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The `.json` files of a folder as (stem, path), by stem; a missing folder has none.
fn list_json(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in entries(dir)? {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".json").filter(|s| !s.is_empty()) else {
            continue;
        };
        let path = entry.path();
        if path.is_file() {
            files.push((stem.to_string(), path));
        }
    }
    files.sort();
    Ok(files)
}

/// The sub-folders of a folder, by name.
fn list_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = entries(dir)?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// An id usable as one path component (ids from databases are looked up as folder names).
fn is_path_component(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\\', '\0'])
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether a message object is an assistant message.
fn is_assistant(obj: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Role {
        #[serde(default)]
        role: Option<String>,
    }
    serde_json::from_str::<Role>(obj).is_ok_and(|r| r.role.as_deref() == Some("assistant"))
}

/// A session file, listed.
pub(crate) struct JsonSession {
    created: Option<i64>,
    pub updated: Option<i64>,
    pub id: String,
    pub path: PathBuf,
}

impl Reader<'_> {
    /// Reports a folder or file that cannot be read (in follow mode once, not at every look).
    fn list_failed(&mut self, dir: &Path, e: &io::Error) {
        if let Some(g) = &mut self.gate {
            if !g.reported.insert(dir.to_path_buf()) {
                return;
            }
        }
        tonbo_core::note!("{STAGE}: cannot read {}: {e}", dir.display());
        self.stats.failed += 1;
    }

    /// The message files of a session in every JSON store, each id once (the first store that
    /// has it wins: `storage/` comes before the older `project/*/storage/`).
    pub(crate) fn json_message_files(&mut self, session: &str) -> Vec<(usize, String, PathBuf)> {
        let mut files: Vec<(usize, String, PathBuf)> = Vec::new();
        if !is_path_component(session) {
            return files;
        }
        for i in 0..self.stores.len() {
            let dir = self.stores[i].message_dir(session);
            match list_json(&dir) {
                Ok(list) => {
                    for (id, path) in list {
                        if !files.iter().any(|f| f.1 == id) {
                            files.push((i, id, path));
                        }
                    }
                }
                Err(e) => self.list_failed(&dir, &e),
            }
        }
        files
    }

    /// Reads the creation time of each message file and orders them by (`time.created`, id).
    /// Files that cannot be read are reported here and left out.
    pub(crate) fn order_json_messages(
        &mut self,
        files: Vec<(usize, String, PathBuf)>,
    ) -> Result<Vec<JsonMsg>> {
        let mut msgs = Vec::with_capacity(files.len());
        for (store, id, path) in files {
            if let Some(obj) = self.load_reported(&path, "")? {
                msgs.push(JsonMsg {
                    created: json::times(&obj).0,
                    assistant: is_assistant(&obj),
                    id,
                    store,
                    path,
                });
            }
        }
        msgs.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(msgs)
    }

    /// Loads a JSON object file. What cannot be used is reported and `None`: a file that does
    /// not parse is rejected (`suffix` added to the reason), one that cannot be read counted
    /// as failed, one gone since it was listed passed over.
    fn load_reported(&mut self, path: &Path, suffix: &str) -> Result<Option<String>> {
        match load(path) {
            Loaded::Object(obj) => return Ok(Some(obj)),
            Loaded::Gone => {}
            Loaded::Bad(why, raw) => {
                let reason = format!("{}{suffix}", why.reason);
                self.reject(&path.display().to_string(), why.line, &reason, &raw)?;
            }
            Loaded::Failed(e) => self.list_failed(path, &e),
        }
        Ok(None)
    }

    /// Writes one message of the JSON store with its parts, ordered by id. `later`: whether a
    /// later message, and a later assistant message, exist in the session (for `--follow`).
    pub(crate) fn emit_json_message(
        &mut self,
        session: &str,
        m: &JsonMsg,
        later: (bool, bool),
    ) -> Result<()> {
        if self.follow_skip(session, &m.id, None) {
            return Ok(());
        }
        let file = m.path.display().to_string();
        let message = match load(&m.path) {
            Loaded::Object(obj) => obj,
            Loaded::Gone => return Ok(()),
            Loaded::Bad(why, raw) => {
                self.reject(&file, why.line, &why.reason, &raw)?;
                self.follow_done(session, &m.id, None);
                return Ok(());
            }
            Loaded::Failed(e) => {
                self.list_failed(&m.path, &e);
                return Ok(());
            }
        };
        let mut buf = std::mem::take(&mut self.buf);
        record::begin(&mut buf, Kind::Message, session, Layout::T1);
        buf.push_str("\"message\":");
        buf.push_str(&message);
        buf.push_str(",\"parts\":[");
        let parts = self.push_json_parts(session, m, &mut buf)?;
        buf.push(']');
        record::finish(&mut buf, Prov::File(&file));
        // The same shapes as T2, so the same rule of finality.
        let need = gate::ts_need(&message, parts.open_tool);
        let ready = |need: Need| {
            Ok(match need {
                Need::LaterAssistant => later.1,
                _ => later.0,
            })
        };
        if self.follow_admit(session, need, ready)? {
            self.write_message(session, &m.id, None, &buf)?;
            self.stats.messages += 1;
            self.stats.parts += parts.n;
        }
        self.buf = buf;
        Ok(())
    }

    /// Appends the part files of a message, by id; a part file that does not parse is
    /// rejected and left out.
    fn push_json_parts(&mut self, session: &str, m: &JsonMsg, buf: &mut String) -> Result<TsParts> {
        let mut parts = TsParts::new(self.gate.is_some());
        if !is_path_component(&m.id) {
            return Ok(parts);
        }
        let part_dir = self.stores[m.store].part_dir(session, &m.id);
        let files = match list_json(&part_dir) {
            Ok(list) => list,
            Err(e) => {
                self.list_failed(&part_dir, &e);
                Vec::new()
            }
        };
        for (_, path) in files {
            if let Some(obj) = self.load_reported(&path, "")? {
                parts.push(buf, &obj);
            }
        }
        Ok(parts)
    }

    /// Reads one JSON store: its sessions that no database (and no earlier store) held.
    pub(crate) fn read_store(&mut self, index: usize) -> Result<()> {
        let store = self.stores[index].clone();
        self.stats.stores += 1;
        self.stats.t1 += 1;
        let files = self.list_store_sessions(index);
        let sessions = self.load_store_sessions(files)?;

        let before = self.stats.duplicates;
        for s in sessions {
            if self.stopped() {
                break;
            }
            self.read_json_session(index, s)?;
        }
        let dups = self.stats.duplicates - before;
        if dups > 0 {
            tonbo_core::note!(
                "{STAGE}: note: {}: {dups} sessions already read from a database or an earlier store; their messages missing there were merged into them",
                store.root.display()
            );
        }
        Ok(())
    }

    /// The session files of store `index`, as (id, path).
    pub(crate) fn list_store_sessions(&mut self, index: usize) -> Vec<(String, PathBuf)> {
        let store = self.stores[index].clone();
        let session_root = store.session_root();
        let dirs = match store.kind {
            StoreKind::T1 => match list_dirs(&session_root) {
                Ok(d) => d,
                Err(e) => {
                    self.list_failed(&session_root, &e);
                    return Vec::new();
                }
            },
            StoreKind::T0 => vec![session_root],
        };
        let mut all = Vec::new();
        for dir in dirs {
            match list_json(&dir) {
                Ok(f) => all.extend(f),
                Err(e) => self.list_failed(&dir, &e),
            }
        }
        all
    }

    /// Loads session files for their times, ordered by (`time.created`, id).
    pub(crate) fn load_store_sessions(
        &mut self,
        files: Vec<(String, PathBuf)>,
    ) -> Result<Vec<JsonSession>> {
        let mut sessions = Vec::new();
        for (id, path) in files {
            if let Some(obj) = self.load_reported(&path, SESSION_NOT_READ)? {
                let (created, updated) = json::times(&obj);
                sessions.push(JsonSession {
                    created,
                    updated,
                    id,
                    path,
                });
            }
        }
        sessions.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(sessions)
    }

    /// Reads one session of store `index`. In follow mode a session this store holds is read
    /// again (what went out before is passed over).
    pub(crate) fn read_json_session(&mut self, index: usize, s: JsonSession) -> Result<()> {
        let source = self.stores[index].root.display().to_string();
        let again = self.is_followed(&source, &s.id);
        let file = s.path.display().to_string();
        if !again {
            if self.passed_before(&source, &s.id) {
                return Ok(());
            }
            if self.claimed.contains(&s.id) {
                self.stats.duplicates += 1;
                self.pass(&source, &s.id);
                return Ok(());
            }
            if let Err(why) = check_session_id(&s.id) {
                let reason = format!("unusable session id (the file name): {why}");
                self.pass(&source, &s.id);
                self.reject(&file, 1, &reason, s.id.as_bytes())?;
                return Ok(());
            }
        }
        if let Some(after) = self.modified_after.filter(|_| !again) {
            // Its own time, its file, or a message added to it (a new message is a new
            // file in message/<ses>/).
            let message_dir = self.stores[index].message_dir(&s.id);
            let changed = s.updated.is_some_and(|t| self.is_after(t))
                || mtime(&s.path).is_some_and(|t| t > after)
                || mtime(&message_dir).is_some_and(|t| t > after);
            if !changed {
                self.stats.skipped_old += 1;
                self.track_old(&source, &s.id);
                self.claimed.insert(s.id);
                return Ok(());
            }
        }
        let Some(session) = self.load_reported(&s.path, SESSION_NOT_READ)? else {
            return Ok(());
        };
        self.claimed.insert(s.id.clone());
        self.begin_session(&source, &s.id);
        let mut buf = std::mem::take(&mut self.buf);
        record::begin(&mut buf, Kind::Session, &s.id, Layout::T1);
        buf.push_str("\"session\":");
        buf.push_str(&session);
        record::finish(&mut buf, Prov::File(&file));
        self.emit_session(&s.id, buf)?;

        let files = self.json_message_files(&s.id);
        let msgs = self.order_json_messages(files)?;
        // Whether a later message, and a later assistant message, follow each one.
        let mut later = vec![(false, false); msgs.len()];
        for i in (0..msgs.len().saturating_sub(1)).rev() {
            later[i] = (true, later[i + 1].1 || msgs[i + 1].assistant);
        }
        for (i, m) in msgs.iter().enumerate() {
            if self.stop_due(i as u64 + 1) {
                break;
            }
            self.emit_json_message(&s.id, m, later[i])?;
        }
        self.end_session(&s.id)?;
        self.io.out.flush()?;
        Ok(())
    }

    /// Follow mode: the modification times of a session's file and of its message folder (a
    /// new message is a new file there), to tell whether the session changed.
    pub(crate) fn session_stamp(
        &self,
        index: usize,
        id: &str,
        path: &Path,
    ) -> [Option<SystemTime>; 2] {
        let dir = if is_path_component(id) {
            mtime(&self.stores[index].message_dir(id))
        } else {
            None
        };
        [mtime(path), dir]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_files_are_listed_in_id_order() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "prt_b.json",
            "prt_a.json",
            "prt_c.json.tmp",
            ".json",
            "x.txt",
        ] {
            fs::write(t.path().join(f), "{}").unwrap();
        }
        fs::create_dir(t.path().join("dir.json")).unwrap();
        let names: Vec<String> = list_json(t.path())
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(names, vec!["prt_a", "prt_b"]);
        assert!(list_json(&t.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn a_file_is_read_again_before_it_is_rejected() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("m.json");
        fs::write(&p, "{\n  \"id\": \"msg_1\",\n  \"n\": 1\n}\n").unwrap();
        assert!(matches!(load(&p), Loaded::Object(o) if o == r#"{"id":"msg_1","n":1}"#));
        fs::write(&p, "{\"id\": ").unwrap();
        let writer = {
            let p = p.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(10));
                fs::write(&p, "{\"id\": 2}").unwrap();
            })
        };
        // Torn on the first read, whole on the second.
        assert!(matches!(load(&p), Loaded::Object(o) if o == r#"{"id":2}"#));
        writer.join().unwrap();
        fs::write(&p, "[1]").unwrap();
        assert!(matches!(load(&p), Loaded::Bad(why, _) if why.reason == "not a JSON object"));
        assert!(matches!(load(&t.path().join("gone.json")), Loaded::Gone));
    }

    #[test]
    fn ids_as_path_components() {
        assert!(is_path_component("ses_1"));
        for bad in ["", ".", "..", "a/b", "a\\b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }
}
