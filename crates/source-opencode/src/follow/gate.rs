//! What `--follow` lets out: each message once, only once it is final, in its session's order.
//!
//! The readers in [`crate::db`] and [`crate::store`] build every record exactly as a plain run
//! does and ask the gate before writing it, so a record that goes out is byte for byte the one a
//! plain run over the same rows writes. The gate remembers, per session, the ids of the messages
//! written (with the row's update stamp), and during one read of a session whether a message was
//! held:
//!
//! * a message written before is not built again; if its row's update stamp moved on, that is
//!   counted as a rewrite and nothing more is written (a final row is final);
//! * a message that is not final is held, and so is every message after it in the session, so a
//!   session's messages go out in the order a plain run writes them;
//! * the session record waits for the session's first message that goes out, and is built from
//!   the same snapshot; a session that has none by the exit gets its record then.
//!
//! When a message is final (FORMAT.md tells how each lineage writes a message as it streams):
//!
//! ```text
//! G1/G2 assistant   its `parts` hold a `finish` envelope (`finished_at` is set from it); G1
//!                   rewrites `parts` on every delta and Crush flushes late, so until then it
//!                   is in progress
//! G1/G2 other roles at once: user and tool rows are written whole, with their `finish`
//! T1/T2 assistant   `time.completed` is set and every `tool` part is `completed` or `error`;
//!                   OpenCode marks unfinished tools `error` and then sets `time.completed`
//!                   last, after the message's final part writes
//! T1/T2 user        once a later message exists: OpenCode writes a user message and its parts
//!                   before it starts the answer (the parts are separate rows)
//! T3 assistant      `data.time.completed` is set and every `tool` item is `completed` or
//! and shell         `error`
//! T3 other types    at once (one row, written whole)
//! ```
//!
//! A message that is not final is final anyway once a later assistant message exists in its
//! session: the app answers one step at a time, so an earlier step that never finished was
//! interrupted (a crash, a kill) and will not change again; a plain run writes it as it is too
//! (`pending`/`running` in an ended session means interrupted).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::Result;
use serde::Deserialize;

use crate::Reader;

/// What a message waits for before it goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// It is final.
    Nothing,
    /// A later message in its session (a T1/T2 user message: its parts are all written).
    LaterMessage,
    /// A later assistant message in its session (it is in progress, or was interrupted).
    LaterAssistant,
}

/// A session `--follow` reads from one source.
#[derive(Debug)]
pub(crate) struct Tracked {
    /// The database file or JSON store it is read from (a session is read from one source).
    pub source: String,
    /// Whether its session record went out.
    pub written: bool,
    /// Messages written (or rejected), by id, with their row's update stamp then.
    pub emitted: HashMap<String, Option<i64>>,
    /// Messages held at its last read (not final, or after one that is not).
    pub held: u64,
    /// Left out by `--modified-after` and not read yet: read from its start once it changes.
    pub old: bool,
}

impl Tracked {
    fn new(source: &str, old: bool) -> Tracked {
        Tracked {
            source: source.to_string(),
            written: false,
            emitted: HashMap::new(),
            held: 0,
            old,
        }
    }
}

/// The follow-mode state of a [`Reader`].
#[derive(Debug, Default)]
pub struct Gate {
    pub(crate) sessions: HashMap<String, Tracked>,
    /// `source\0session`: sessions passed over (another source holds them, a title session, an
    /// unusable id), counted and reported when first seen only.
    pub(crate) passed: HashSet<String>,
    /// Rejected rows and files, by input, line and reason: rejected once, not at every read.
    pub(crate) rejected: HashSet<String>,
    /// Folders and files that could not be read, reported once.
    pub(crate) reported: HashSet<PathBuf>,
    /// Written messages found changed later (not written again).
    pub(crate) rewrites: u64,
    /// The sweep at exit: a session whose record has not gone out gets it now.
    pub(crate) last_sweep: bool,
    /// The record of the session being read, until its first message goes out.
    pending: Option<String>,
    /// The session being read has a held message: the ones after it are held too.
    blocked: bool,
}

impl Gate {
    /// Messages held, over every session, as at their last read.
    pub(crate) fn held(&self) -> u64 {
        self.sessions.values().map(|t| t.held).sum()
    }

    /// The source that holds `session`, if one does.
    pub(crate) fn owner(&self, session: &str) -> Option<&str> {
        self.sessions.get(session).map(|t| t.source.as_str())
    }

    /// Whether `session` of `source` is to be read again although nothing says it changed: it
    /// has held messages, or (`force`, the sweep at the exit) its record has not gone out.
    pub(crate) fn read_again(&self, session: &str, source: &str, force: bool) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|t| t.source == source && (t.held > 0 || (force && !t.written && !t.old)))
    }
}

fn pass_key(source: &str, session: &str) -> String {
    format!("{source}\0{session}")
}

impl Reader<'_> {
    /// Whether `session` of `source` was passed over before (follow mode): not counted again.
    pub(crate) fn passed_before(&self, source: &str, session: &str) -> bool {
        self.gate
            .as_ref()
            .is_some_and(|g| g.passed.contains(&pass_key(source, session)))
    }

    /// Remembers that `session` of `source` is passed over (follow mode).
    pub(crate) fn pass(&mut self, source: &str, session: &str) {
        if let Some(g) = &mut self.gate {
            g.passed.insert(pass_key(source, session));
        }
    }

    /// Whether `session` was read from `source` before (follow mode): it is read again.
    pub(crate) fn is_followed(&self, source: &str, session: &str) -> bool {
        self.gate
            .as_ref()
            .is_some_and(|g| g.owner(session) == Some(source))
    }

    /// Follow mode: `session` is left out by `--modified-after`, to be read once it changes.
    pub(crate) fn track_old(&mut self, source: &str, session: &str) {
        if let Some(g) = &mut self.gate {
            g.sessions
                .entry(session.to_string())
                .or_insert_with(|| Tracked::new(source, true));
        }
    }

    /// Starts reading `session` of `source` (follow mode: tracked from now on).
    pub(crate) fn begin_session(&mut self, source: &str, session: &str) {
        if let Some(g) = &mut self.gate {
            let t = g
                .sessions
                .entry(session.to_string())
                .or_insert_with(|| Tracked::new(source, false));
            t.old = false;
            t.held = 0;
            g.pending = None;
            g.blocked = false;
        }
    }

    /// Ends the read of `session`: at the exit, its record goes out if it has not yet.
    pub(crate) fn end_session(&mut self, session: &str) -> Result<()> {
        let Some(g) = &mut self.gate else {
            return Ok(());
        };
        let pending = g.pending.take();
        if g.last_sweep {
            if let Some(buf) = pending {
                self.write_session_now(session, &buf)?;
            }
        }
        Ok(())
    }

    /// A session record, built: written now in a plain run; in follow mode kept until the
    /// session's first message goes out (and dropped if the record went out before).
    pub(crate) fn emit_session(&mut self, session: &str, buf: String) -> Result<()> {
        if let Some(g) = &mut self.gate {
            if !g.sessions.get(session).is_some_and(|t| t.written) {
                g.pending = Some(buf);
            } else {
                self.buf = buf;
            }
            return Ok(());
        }
        self.write_record(&buf)?;
        self.buf = buf;
        self.stats.sessions += 1;
        Ok(())
    }

    fn write_session_now(&mut self, session: &str, buf: &str) -> Result<()> {
        self.write_record(buf)?;
        self.stats.sessions += 1;
        if let Some(t) = self.gate.as_mut().and_then(|g| g.sessions.get_mut(session)) {
            t.written = true;
        }
        Ok(())
    }

    /// Follow mode, before a message is built: true if it is not to be built now, because it
    /// went out before (a changed `stamp` counts as a rewrite) or an earlier message is held.
    pub(crate) fn follow_skip(&mut self, session: &str, id: &str, stamp: Option<i64>) -> bool {
        let Some(g) = &mut self.gate else {
            return false;
        };
        let Some(t) = g.sessions.get_mut(session) else {
            return false;
        };
        if let Some(was) = t.emitted.get_mut(id) {
            if stamp.is_some() && stamp != *was {
                // Written when final; changed since (OpenCode prunes old tool output,
                // `time.compacted`, and fills in a user message's `summary` later). A final
                // record is not written twice.
                if was.is_some() {
                    g.rewrites += 1;
                }
                *was = stamp;
            }
            return true;
        }
        if g.blocked {
            t.held += 1;
            return true;
        }
        false
    }

    /// Follow mode, a message built: whether it goes out now. `later` answers whether a later
    /// message (or a later assistant message) exists in the session; it is asked only when the
    /// message is not final by itself. A message held holds the rest of its session.
    pub(crate) fn follow_admit(
        &mut self,
        session: &str,
        need: Need,
        later: impl FnOnce(Need) -> Result<bool>,
    ) -> Result<bool> {
        match &self.gate {
            None => return Ok(true),
            Some(g) if g.blocked => return Ok(false),
            Some(_) => {}
        }
        if need == Need::Nothing || later(need)? {
            return Ok(true);
        }
        if let Some(g) = self.gate.as_mut() {
            g.blocked = true;
            if let Some(t) = g.sessions.get_mut(session) {
                t.held += 1;
            }
        }
        Ok(false)
    }

    /// Writes a message record (after its session's record, if that has not gone out yet).
    pub(crate) fn write_message(
        &mut self,
        session: &str,
        id: &str,
        stamp: Option<i64>,
        buf: &str,
    ) -> Result<()> {
        if let Some(pending) = self.gate.as_mut().and_then(|g| g.pending.take()) {
            self.write_session_now(session, &pending)?;
        }
        self.write_record(buf)?;
        self.follow_done(session, id, stamp);
        Ok(())
    }

    /// Follow mode: the message `id` is done with (written, or rejected): never built again.
    pub(crate) fn follow_done(&mut self, session: &str, id: &str, stamp: Option<i64>) {
        if let Some(t) = self.gate.as_mut().and_then(|g| g.sessions.get_mut(session)) {
            t.emitted.insert(id.to_string(), stamp);
        }
    }

    /// Rejects an input row or file; in follow mode only the first time it is read.
    pub(crate) fn reject(
        &mut self,
        input: &str,
        line: u64,
        reason: &str,
        raw: &[u8],
    ) -> Result<()> {
        if let Some(g) = &mut self.gate {
            if !g.rejected.insert(format!("{input}\0{line}\0{reason}")) {
                return Ok(());
            }
        }
        self.io.rejects.reject(input, line, reason, raw)
    }
}

/// Whether a JSON value is there and not null.
fn present(v: &Option<serde_json::Value>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_null())
}

#[derive(Deserialize)]
struct Times {
    #[serde(default)]
    completed: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ToolState {
    #[serde(default)]
    status: Option<String>,
}

/// A `tool` part or content item: `{type, state:{status}}`.
#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type", default)]
    ty: Option<String>,
    #[serde(default)]
    state: Option<ToolState>,
}

impl Item {
    /// A tool whose state is not `completed` or `error` yet (`pending`, `running`).
    fn open_tool(&self) -> bool {
        self.ty.as_deref() == Some("tool")
            && !matches!(
                self.state.as_ref().and_then(|s| s.status.as_deref()),
                Some("completed" | "error")
            )
    }
}

/// T1/T2: whether a part (its `data`, or the part file's object) is a tool still running.
pub(crate) fn ts_part_open(part: &str) -> bool {
    serde_json::from_str::<Item>(part).is_ok_and(|i| i.open_tool())
}

/// The parts of a T1/T2 message, appended to its record's `parts` one by one: how many, and
/// (when following) whether one is a tool still running.
pub(crate) struct TsParts {
    following: bool,
    pub n: u64,
    pub open_tool: bool,
}

impl TsParts {
    pub fn new(following: bool) -> TsParts {
        TsParts {
            following,
            n: 0,
            open_tool: false,
        }
    }

    /// Appends a part object to the array being written in `buf`.
    pub fn push(&mut self, buf: &mut String, part: &str) {
        if self.following && !self.open_tool {
            self.open_tool = ts_part_open(part);
        }
        if self.n > 0 {
            buf.push(',');
        }
        buf.push_str(part);
        self.n += 1;
    }
}

/// T1/T2: what a message (its object or row `data`) waits for; `open_tool` if one of its parts
/// is a tool still running.
pub(crate) fn ts_need(message: &str, open_tool: bool) -> Need {
    #[derive(Deserialize)]
    struct Msg {
        #[serde(default)]
        role: Option<String>,
        #[serde(default)]
        time: Option<Times>,
    }
    let Ok(m) = serde_json::from_str::<Msg>(message) else {
        return Need::LaterAssistant;
    };
    match m.role.as_deref() {
        Some("assistant") => {
            let completed = m.time.as_ref().is_some_and(|t| present(&t.completed));
            if completed && !open_tool {
                Need::Nothing
            } else {
                Need::LaterAssistant
            }
        }
        _ => Need::LaterMessage,
    }
}

/// G1/G2: what a `messages` row waits for, from its role and `parts` text.
pub(crate) fn go_need(role: Option<&str>, parts: &str) -> Need {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "type", default)]
        ty: Option<String>,
    }
    if role != Some("assistant") {
        return Need::Nothing;
    }
    let finished = serde_json::from_str::<Vec<Envelope>>(parts)
        .is_ok_and(|p| p.iter().any(|e| e.ty.as_deref() == Some("finish")));
    if finished {
        Need::Nothing
    } else {
        Need::LaterAssistant
    }
}

/// T3: what a `session_message` row waits for, from its `type` and `data`.
pub(crate) fn t3_need(ty: Option<&str>, data: &str) -> Need {
    #[derive(Deserialize)]
    struct Data {
        #[serde(default)]
        time: Option<Times>,
        #[serde(default)]
        content: Option<Vec<Item>>,
    }
    if !matches!(ty, Some("assistant" | "shell")) {
        return Need::Nothing;
    }
    let Ok(d) = serde_json::from_str::<Data>(data) else {
        return Need::LaterAssistant;
    };
    let completed = d.time.as_ref().is_some_and(|t| present(&t.completed));
    let open = d
        .content
        .as_ref()
        .is_some_and(|c| c.iter().any(Item::open_tool));
    if completed && !open {
        Need::Nothing
    } else {
        Need::LaterAssistant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typescript_messages() {
        let done = r#"{"role":"assistant","time":{"created":1,"completed":2}}"#;
        assert_eq!(ts_need(done, false), Need::Nothing);
        assert_eq!(ts_need(done, true), Need::LaterAssistant);
        let streaming = r#"{"role":"assistant","time":{"created":1}}"#;
        assert_eq!(ts_need(streaming, false), Need::LaterAssistant);
        let null = r#"{"role":"assistant","time":{"created":1,"completed":null}}"#;
        assert_eq!(ts_need(null, false), Need::LaterAssistant);
        assert_eq!(
            ts_need(r#"{"role":"user","time":{"created":1}}"#, false),
            Need::LaterMessage
        );
        for (part, open) in [
            (r#"{"type":"tool","state":{"status":"pending"}}"#, true),
            (r#"{"type":"tool","state":{"status":"running"}}"#, true),
            (r#"{"type":"tool","state":{"status":"completed"}}"#, false),
            (r#"{"type":"tool","state":{"status":"error"}}"#, false),
            (r#"{"type":"tool"}"#, true),
            (r#"{"type":"text","text":"x"}"#, false),
            ("not json", false),
        ] {
            assert_eq!(ts_part_open(part), open, "{part}");
        }
    }

    #[test]
    fn go_messages() {
        let finish = r#"[{"type":"text","data":{"text":"a"}},{"type":"finish","data":{"reason":"end_turn","time":5}}]"#;
        assert_eq!(go_need(Some("assistant"), finish), Need::Nothing);
        assert_eq!(
            go_need(
                Some("assistant"),
                r#"[{"type":"text","data":{"text":"a"}}]"#
            ),
            Need::LaterAssistant
        );
        assert_eq!(go_need(Some("user"), "[]"), Need::Nothing);
        assert_eq!(go_need(Some("tool"), "[]"), Need::Nothing);
    }

    #[test]
    fn t3_messages() {
        assert_eq!(t3_need(Some("user"), "{}"), Need::Nothing);
        assert_eq!(
            t3_need(Some("assistant"), r#"{"time":{"created":1}}"#),
            Need::LaterAssistant
        );
        assert_eq!(
            t3_need(
                Some("assistant"),
                r#"{"time":{"created":1,"completed":2},"content":[{"type":"tool","state":{"status":"running"}}]}"#
            ),
            Need::LaterAssistant
        );
        assert_eq!(
            t3_need(
                Some("assistant"),
                r#"{"time":{"created":1,"completed":2},"content":[{"type":"text","id":"c","text":"x"},{"type":"tool","state":{"status":"completed"}}]}"#
            ),
            Need::Nothing
        );
        assert_eq!(
            t3_need(Some("shell"), r#"{"time":{"created":1,"completed":2}}"#),
            Need::Nothing
        );
    }
}
