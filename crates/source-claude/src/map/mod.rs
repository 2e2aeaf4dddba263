//! Claude Code transcript lines -> Durable Sessions events: the table in this crate's
//! README.md ("Claude Code mapping", with where it departs from the obvious and why), over the
//! format facts in FORMAT.md.
//!
//! The mapping is streaming: one line in, its events out. The little state it keeps is per
//! session (the reader emits a session's files one after another) and bounded by that session:
//! the line uuids seen (dedupe across rewritten and replayed lines), the open API response
//! (spans), the names of tool uses (MCP results), and the subagent threads created.

use std::collections::{HashMap, HashSet};

use tonbo_core::event::{fnv64, EventBuf};
use tonbo_core::mapping::{
    session_stream, session_stream_again, Counts, EventSink, EventWriter, MapError, SessionStates,
    SourceMapping, Stamp,
};
use tonbo_core::record_line::RecordLine;
use tonbo_core::SourceRecord;

mod assistant;
mod line;
mod system;
mod thread;
mod user;
mod user_line;

use assistant::OpenRequest;
use line::{reject, ClaudeLine};
use thread::{announce_thread, Subagent};

use crate::record::{agent_id_of, At, RecordKind};
use crate::SOURCE;

/// Per-session state; kept aside (`SessionStates`) while another session is mapped.
#[derive(Default)]
struct SessionState {
    session_id: String,
    seen_uuids: HashSet<String>,
    closed_requests: HashSet<String>,
    open: Option<OpenRequest>,
    /// Tool-use id -> MCP server name (None for built-in tools).
    tools: HashMap<String, Option<String>>,
    /// Threads created, with the parent's tool use that started each (when known).
    threads: HashMap<String, Option<String>>,
    /// Task/Agent calls by the hash of their `prompt`: a subagent whose file names no parent
    /// call is matched by its first prompt (tool-use id, subagent type).
    task_prompts: HashMap<u64, (String, Option<String>)>,
    /// Inline sidechain lines (no agent id) by uuid: the thread each belongs to.
    sidechain_threads: HashMap<String, String>,
    /// The time of the last line that had one (empty before the first).
    last_timestamp: String,
    /// Subagent metadata read from `agent-<id>.meta.json`, by agent id: (agent type, the
    /// parent's tool-use id that started it).
    agents: HashMap<String, (Option<String>, Option<String>)>,
}

/// The mapping of `claude-code` records, as `tonbo-map` holds it.
#[derive(Default)]
pub struct ClaudeMapper {
    state: SessionState,
    others: SessionStates<SessionState>,
    pub counts: Counts,
}

/// What every event of one line shares in `metadata`, after the envelope's.
struct LineMeta<'l> {
    uuid: Option<&'l str>,
    parent_uuid: Option<&'l str>,
    timestamp: Option<&'l str>,
    /// The line has no time; `timestamp` is the session's last one.
    timestamp_inherited: bool,
    cwd: Option<&'l str>,
    git_branch: Option<&'l str>,
    version: Option<&'l str>,
    model: Option<&'l str>,
    message_id: Option<&'l str>,
    request_id: Option<&'l str>,
    is_sidechain: bool,
    agent_id: Option<&'l str>,
    thread: Option<String>,
    /// For the events of a subagent's thread: the session it belongs to (`metadata.parent_session_id`).
    parent_session_id: Option<&'l str>,
    /// For a subagent's thread: the parent's tool use that started it, if known.
    parent_tool_use_id: Option<String>,
}

impl<'l> LineMeta<'l> {
    /// `inherited`: the session's last time, for a line without one.
    fn new(
        line: &'l ClaudeLine,
        subagent: Subagent<'l>,
        inherited: Option<&'l str>,
        session_id: &'l str,
        parent_tool_use_id: Option<String>,
    ) -> LineMeta<'l> {
        let msg = line.message.as_ref();
        LineMeta {
            uuid: line.uuid.as_deref(),
            parent_uuid: line.parent_uuid.as_deref(),
            timestamp: line.timestamp.as_deref().or(inherited),
            timestamp_inherited: inherited.is_some(),
            cwd: line.cwd.as_deref(),
            git_branch: line.git_branch.as_deref().filter(|b| !b.is_empty()),
            version: line.version.as_deref(),
            model: msg.and_then(|m| m.model.as_deref()),
            message_id: msg.and_then(|m| m.id.as_deref()),
            request_id: line.request_id.as_deref(),
            is_sidechain: subagent.is_sidechain,
            agent_id: subagent.agent_id,
            parent_session_id: subagent.thread.as_ref().map(|_| session_id),
            parent_tool_use_id,
            thread: subagent.thread,
        }
    }

    fn stamp(&self) -> Stamp<'_> {
        Stamp {
            timestamp: self.timestamp,
            inherited: self.timestamp_inherited,
            thread: self.thread.as_deref(),
        }
    }

    /// The line's own metadata. `parent_session_id` goes on a thread's own events (those with a
    /// `kind`), not on its announcement, which is the parent's.
    fn write(&self, ev: &mut EventBuf, own_event: bool) {
        ev.meta_opt("uuid", self.uuid)
            .meta_opt("parent_uuid", self.parent_uuid)
            .meta_opt("cwd", self.cwd)
            .meta_opt("git_branch", self.git_branch)
            .meta_opt("version", self.version)
            .meta_opt("model", self.model)
            .meta_opt("message_id", self.message_id)
            .meta_opt("request_id", self.request_id);
        if self.is_sidechain {
            ev.meta_raw("is_sidechain", "true");
        }
        ev.meta_opt("agent_id", self.agent_id);
        if own_event {
            ev.meta_opt("parent_session_id", self.parent_session_id);
        }
    }
}

/// Writes the events of one line: the envelope and the line's metadata on each, keys numbered
/// from the line's key base.
struct Out<'s, 'm> {
    w: EventWriter<'s>,
    meta: &'m LineMeta<'m>,
}

impl Out<'_, '_> {
    /// Passes over the line's next event (a blank text block) but keeps its number, so that
    /// the keys of the events after it are what they always were.
    fn pass_over(&mut self) {
        self.w.pass_over();
    }

    fn emit(&mut self, mut ev: EventBuf, kind: Option<&str>) -> Result<(), MapError> {
        let meta = self.meta;
        self.w.emit(&mut ev, &meta.stamp(), kind, |ev| {
            meta.write(ev, kind.is_some())
        })
    }

    fn emit_keyed(
        &mut self,
        ev: &mut EventBuf,
        key: &str,
        kind: Option<&str>,
    ) -> Result<(), MapError> {
        let meta = self.meta;
        let session_id = self.w.session_id();
        self.w
            .emit_to(session_id, ev, key, &meta.stamp(), kind, |ev| {
                meta.write(ev, kind.is_some())
            })
    }
}

/// The agent of a subagent's file (`agent-<id>.jsonl`, or its `.meta.json`), by the record's
/// file name; an empty id names none.
fn agent_of_file<'a>(rec: &Rec<'a>) -> Option<&'a str> {
    rec.file.and_then(agent_id_of).filter(|id| !id.is_empty())
}

/// What the mapping reads of a record besides its line, from a [`SourceRecord`] or, read in
/// one pass, a [`RecordLine`].
pub(super) struct Rec<'a> {
    session: &'a str,
    kind: Option<RecordKind>,
    /// The name of the file the record was read from.
    file: Option<&'a str>,
    /// The record's JSON text.
    text: &'a str,
}

impl<'a> Rec<'a> {
    fn of(rec: &'a SourceRecord) -> Rec<'a> {
        Rec {
            session: &rec.session,
            kind: RecordKind::of(rec),
            file: At::file_of(rec),
            text: rec.record.get(),
        }
    }

    fn of_line(line: &'a RecordLine) -> Rec<'a> {
        Rec {
            session: line.session,
            kind: RecordKind::named(line.kind),
            file: At::file_of_parts(line.at.as_deref(), line.provenance.as_ref()),
            text: line.record,
        }
    }
}

/// The base of a line's keys: its uuid, or for a line without one its type and a hash of it.
fn key_base(kind: &str, line: &ClaudeLine, rec: &Rec) -> String {
    match line.uuid.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => u.to_string(),
        None => format!("{kind}/{:016x}", fnv64(rec.text.as_bytes())),
    }
}

/// Line types that carry no conversation content; skipped by rule.
const SKIPPED_TYPES: &[&str] = &[
    "progress",
    "queue-operation",
    "file-history-snapshot",
    "permission-mode",
    "mode",
    "last-prompt",
    "pr-link",
    "worktree-state",
    "agent-setting",
    "bridge-session",
    "relocated",
    "atis-latch",
    "frame-link",
    "agent-color",
    "tag",
    "cost-state",
    "file-history-delta",
    "content-replacement",
    "fork-context-ref",
    "artifact-autoreact-ledger",
    "artifact-comment-monitor",
];

impl ClaudeMapper {
    /// Makes `session_id`'s state the current one. The open API response ends with its
    /// session's run of records (what keeps a backfill's batches whole); the rest of the state
    /// waits for the session's return.
    fn enter_session(
        &mut self,
        session_id: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        if self.state.session_id == session_id {
            return Ok(());
        }
        self.close_request(sink)?;
        let current_key = self.state.session_id.clone();
        self.others
            .switch(&mut self.state, current_key, session_id, || SessionState {
                session_id: session_id.to_string(),
                ..SessionState::default()
            });
        Ok(())
    }

    /// Whether a line is the session's to map: a line of another session (a resume bridge, or
    /// replayed history) belongs to that session's own file, and a line seen before (same
    /// uuid: a rewrite or replay) is mapped once.
    fn admit(&mut self, rec: &Rec, line: &ClaudeLine) -> bool {
        if let Some(sid) = line.session_id.as_deref() {
            if sid != rec.session && !sid.is_empty() {
                self.counts.skip("line of another session");
                return false;
            }
        }
        if let Some(uuid) = line.uuid.as_deref().filter(|u| !u.is_empty()) {
            if !self.state.seen_uuids.insert(uuid.to_string()) {
                self.counts.skip("line repeated (same uuid)");
                return false;
            }
        }
        true
    }

    /// A line without a time (titles, some hand-made or old lines) takes the session's last
    /// one, said to be inherited: that time, or `None` when the line has its own (then kept as
    /// the session's last) or the session has none yet.
    fn inherited_time(&mut self, line: &ClaudeLine) -> Option<String> {
        match line.timestamp.as_deref() {
            Some(ts) => {
                self.state.last_timestamp.clear();
                self.state.last_timestamp.push_str(ts);
                None
            }
            None if !self.state.last_timestamp.is_empty() => {
                Some(self.state.last_timestamp.clone())
            }
            None => None,
        }
    }

    /// Maps a line by its `type`.
    fn map_by_type(
        &mut self,
        kind: &str,
        line: &ClaudeLine,
        record_kind: Option<RecordKind>,
        out: &mut Out,
    ) -> Result<(), MapError> {
        match kind {
            "user" => self.map_user(line, out),
            "assistant" => self.map_assistant(line, out),
            "system" => system::map_system(line, line.subtype.as_deref(), out),
            "compact_boundary" => system::map_system(line, Some("compact_boundary"), out),
            "summary" | "ai-title" | "custom-title" | "agent-name" => {
                let holds_leaf = record_kind == Some(RecordKind::SummaryTitle);
                self.map_title(kind, line, holds_leaf, out)
            }
            "attachment" => self.map_attachment(line, out),
            t if SKIPPED_TYPES.contains(&t) => {
                self.skip(t);
                Ok(())
            }
            other => {
                self.counts.unknown(other);
                Ok(())
            }
        }
    }

    fn skip(&mut self, what: &str) {
        self.counts.skip(what);
    }
}

impl ClaudeMapper {
    /// Maps a record whose line is parsed.
    fn map_parsed(
        &mut self,
        rec: &Rec,
        line: &ClaudeLine,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let session_id = session_stream_again(&self.state.session_id, SOURCE, rec.session)?;
        self.enter_session(&session_id, sink)?;
        let Some(kind) = line.kind.as_deref() else {
            return Err(reject("Claude Code line has no `type`"));
        };
        if !self.admit(rec, line) {
            return Ok(0);
        }
        // Any line that is not part of the open API response ends it.
        let continues_request = kind == "assistant"
            && line.message.as_ref().and_then(|m| m.id.as_deref())
                == self.state.open.as_ref().map(|o| o.message_id.as_str());
        if !continues_request {
            self.close_request(sink)?;
        }
        let subagent = self.subagent_of(rec, line);
        let thread = subagent.thread.clone();
        let new_thread = thread
            .as_deref()
            .and_then(|t| self.start_thread(t, subagent.agent_id, line));
        let inherited = self.inherited_time(line);
        let parent_tool_use_id = self.thread_parent(thread.as_deref());
        let meta = LineMeta::new(
            line,
            subagent,
            inherited.as_deref(),
            &session_id,
            parent_tool_use_id,
        );
        let mut out = Out {
            w: EventWriter::new(sink, SOURCE, &session_id, key_base(kind, line, rec)),
            meta: &meta,
        };
        if let (Some(thread), Some(agent_type)) = (&thread, new_thread) {
            announce_thread(&mut out, thread, agent_type.as_deref(), &session_id)?;
        }
        self.map_by_type(kind, line, rec.kind, &mut out)?;
        Ok(out.w.emitted())
    }
}

impl SourceMapping for ClaudeMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    /// Maps one source record of `claude-code`. Returns the number of events produced.
    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let r = Rec::of(rec);
        if r.kind == Some(RecordKind::SubagentMeta) {
            let session_id = session_stream(SOURCE, r.session)?;
            self.enter_session(&session_id, sink)?;
            self.read_meta(&r);
            return Ok(0);
        }
        let line = ClaudeLine::parse(r.text)
            .map_err(|e| reject(format!("not a Claude Code line: {e}")))?;
        self.map_parsed(&r, &line, sink)
    }

    /// The one-pass path: the typed parse of the line is its only check as JSON, and comes
    /// first; a line that does not parse (and a meta record, rare) goes the full way.
    fn map_line(
        &mut self,
        rec: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        let r = Rec::of_line(rec);
        if r.kind == Some(RecordKind::SubagentMeta) {
            return None;
        }
        let line = ClaudeLine::parse(r.text).ok()?;
        Some(self.map_parsed(&r, &line, sink))
    }

    /// Closes the open API response with its `span.model_request_end`, as a line of another
    /// kind and a change of session do.
    fn finish(&mut self, sink: &mut dyn EventSink) -> Result<(), MapError> {
        self.close_request(sink)
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_records_agent_comes_from_at_else_from_provenance() {
        for (fields, agent) in [
            (r#""at":"agent-a1.jsonl:3""#, Some("a1")),
            (r#""at":"agent-a1.meta.json""#, Some("a1")),
            // `at` wins; provenance is for people.
            (
                r#""at":"S.jsonl:3","provenance":{"file":"/p/S/subagents/agent-x.jsonl"}"#,
                None,
            ),
            // Written by an older reader.
            (
                r#""provenance":{"file":"/p/S/subagents/agent-a1.jsonl","line":3}"#,
                Some("a1"),
            ),
            (r#""at":"agent-.jsonl:1""#, None),
            (r#""at":"1f0e.jsonl:1""#, None),
        ] {
            let line =
                format!(r#"{{"source":"claude-code","session":"s","record":{{}},{fields}}}"#);
            let rec: SourceRecord = serde_json::from_str(&line).unwrap();
            assert_eq!(agent_of_file(&Rec::of(&rec)), agent, "{fields}");
        }
    }
}
