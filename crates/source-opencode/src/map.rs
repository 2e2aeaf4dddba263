//! OpenCode and Crush records -> Durable Sessions events, for both lineages and every layout
//! ([`OpenCodeMapper`]).
//!
//! The reader writes, per session, a `kind: "session"` record (`{"layout", "session"}`) and then
//! one `kind: "message"` record per message (`{"layout", "message", "parts"}`), [`crate::record`].
//! Each layout's messages map by its lineage's shapes (FORMAT.md):
//! * Go lineage (`g1` opencode-ai/opencode, `g2` crush, `map/go.rs`): `parts` are `{type,
//!   data}` envelopes; tool results sit in the following `tool`-role message; times are seconds.
//! * TypeScript lineage (`t1` JSON store, `t2` SQLite, `map/ts.rs`): one `tool` part holds the
//!   call and its result in `state`; times are milliseconds.
//! * OpenCode 2 (`t3`, `map/v2.rs`): the message's `data` holds a `content[]` of text, reasoning
//!   and tool items.
//!
//! Keys are the message id and the event's position in it: ids are the same in every layout, so
//! a message read from both the JSON store and the database would map to the same keys. Nothing
//! of a record's provenance is read.

mod content;
mod go;
pub(crate) mod raw;
mod ts;
mod v2;

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::value::RawValue;
use serde_json::Value;
use tonbo_core::contract::session_id_for;
use tonbo_core::event::{as_str, blocks, fnv64, json_str, text_block, EventBuf};
use tonbo_core::mapping::{
    session_stream, Counts, EventSink, EventWriter, MapError, SessionStates, SourceMapping, Thread,
};
use tonbo_core::record_line::RecordLine;
use tonbo_core::SourceRecord;

use crate::record::{Kind, Layout, Lineage, MessageRecord, SessionRecord};
use crate::SOURCE;
use content::{s, timestamp, Msg};

#[derive(Default)]
struct SessionState {
    session_id: String,
    directory: Option<String>,
    /// The parent's stream (`opencode-<parent id>`), for a sub-agent's session.
    parent: Option<String>,
    /// A sub-agent's session: its own stream, as the thread its parent announced.
    thread: Option<String>,
    /// Hashes of the prompts a person wrote, to tell a prompt OpenCode copies after a
    /// compaction (an overflow replay) from a new one.
    human_prompts: HashSet<u64>,
    /// The message before was a compaction summary.
    after_summary: bool,
    /// Go lineage: the compaction summary's message id (`sessions.summary_message_id`).
    summary_message_id: Option<String>,
}

/// The mapping of `"source":"opencode"` records: streaming, with the state of each session met
/// recently (its directory, parent, prompts) kept across interleaved sessions.
#[derive(Default)]
pub struct OpenCodeMapper {
    state: SessionState,
    others: SessionStates<SessionState>,
    pub counts: Counts,
}

/// How a sub-agent's session begins in OpenCode 2 (the parent's prompt follows).
const SUBAGENT_PROMPTS: &[&str] = &[
    "You are a subagent spawned by another session.",
    "You are a forked subagent.",
];

/// Crush's own prompt after a session grew too long (in the user's name).
const CRUSH_CONTINUATION: &str = "The previous session was interrupted because it got too long";

/// The agent of a TypeScript sub-agent's session, from its title `<description> (@<agent>
/// subagent)`.
fn subagent_of_title(title: &str) -> Option<String> {
    let rest = title.strip_suffix(" subagent)")?;
    let at = rest.rfind("(@")?;
    let name = &rest[at + 2..];
    (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| name.to_string())
}

/// The tool call that made a Go-lineage sub-agent's session, which its id names: Crush's
/// `<message id>$$<call id>`, or (opencode-ai, early Crush) the call id itself, which is no UUID.
fn go_spawning_call(layout: Option<Layout>, child: &str) -> Option<&str> {
    if layout.map(Layout::lineage) != Some(Lineage::Go) {
        return None;
    }
    if let Some((_, call)) = child.split_once("$$") {
        return Some(call);
    }
    let uuid = child.len() == 36 && child.chars().filter(|c| *c == '-').count() == 4;
    (!uuid).then_some(child)
}

/// The prompt a user message's text and file parts make: its blocks, and its first text
/// (which tells who wrote it).
#[derive(Default)]
struct Prompt {
    blocks: Vec<String>,
    first_text: String,
}

impl Prompt {
    fn text(&mut self, text: &str) {
        if self.first_text.is_empty() {
            self.first_text = text.to_string();
        }
        self.blocks.push(content::text_block(text));
    }

    /// A text the record holds as `raw` (a JSON string), copied as it is written.
    fn text_raw(&mut self, raw: Option<&RawValue>) {
        if self.first_text.is_empty() {
            self.first_text = raw
                .and_then(as_str)
                .map(Cow::into_owned)
                .unwrap_or_default();
        }
        self.blocks.push(text_block(&raw::json_text(raw)));
    }

    fn block(&mut self, block: String) {
        self.blocks.push(block);
    }
}

/// A file a message carries (its block): part of the prompt of a user's message, else a
/// message of its own, at `at` when it has its own time.
fn file_part(
    role: &str,
    block: String,
    prompt: &mut Prompt,
    m: &mut Msg,
    at: Option<String>,
) -> Result<(), MapError> {
    if role == "user" {
        prompt.block(block);
        return Ok(());
    }
    let mut ev = EventBuf::new("agent.message");
    ev.raw("content", &blocks(&[block]));
    m.emit(ev, "file", at)
}

impl OpenCodeMapper {
    fn skip(&mut self, what: &str) {
        self.counts.skip(what);
    }

    fn unknown(&mut self, what: String) {
        self.counts.unknown(&what);
    }

    /// A session record: its directory and parent, kept for its messages; a sub-agent's session
    /// announced on its parent's stream; its title.
    fn map_session(
        &mut self,
        native_session: &str,
        r: &SessionRecord,
        session_id: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let ses = &r.session;
        self.state.directory = s(ses, "directory")
            .or_else(|| s(ses, "path"))
            .map(str::to_string);
        let parent = s(ses, "parent_session_id")
            .or_else(|| s(ses, "parentID"))
            .or_else(|| s(ses, "parent_id"))
            .filter(|p| !p.is_empty());
        self.state.parent = parent.map(|p| session_id_for(SOURCE, p));
        self.state.thread = parent.map(|_| session_id.to_string());
        self.state.summary_message_id = s(ses, "summary_message_id").map(str::to_string);
        let created = ses
            .get("time_created")
            .or_else(|| ses.get("created_at"))
            .or_else(|| ses.get("time").and_then(|t| t.get("created")))
            .and_then(timestamp);
        let title = s(ses, "title").filter(|t| !t.is_empty());
        let mut emitted = 0;
        if let Some(parent) = parent {
            let layout = Layout::from_name(&r.layout);
            emitted += announce_thread(
                native_session,
                ses,
                layout,
                session_id,
                parent,
                &created,
                sink,
            )?;
        }
        // The title is the session's one piece of content; sub-agent title sessions are Go's
        // `title-<parent>` and carry none.
        let Some(title) = title else {
            self.skip("session without title");
            return Ok(emitted);
        };
        let mut ev = EventBuf::new("opencode.title");
        ev.str("title", title);
        let mut m = Msg::new(
            sink,
            session_id,
            format!("title/{:016x}", fnv64(title.as_bytes())),
            created,
            self.state.thread.clone(),
            self.session_meta(),
        );
        m.emit(ev, "title", None)?;
        Ok(emitted + m.emitted())
    }

    /// What a prompt of this session is: a person's, a parent agent's (a sub-agent's
    /// session), text OpenCode or Crush wrote in a user's name, or a person's prompt copied
    /// after a compaction.
    fn prompt_class(&mut self, text: &str) -> (&'static str, &'static str, Option<&'static str>) {
        let t = text.trim();
        if self.state.thread.is_some() || SUBAGENT_PROMPTS.iter().any(|p| t.starts_with(p)) {
            return ("user.message", "subagent_prompt", Some("agent"));
        }
        if t.starts_with(CRUSH_CONTINUATION) {
            return ("system.message", "continuation", None);
        }
        let h = fnv64(t.as_bytes());
        if self.state.after_summary && self.state.human_prompts.contains(&h) {
            return ("system.message", "replayed_prompt", None);
        }
        self.state.human_prompts.insert(h);
        ("user.message", "prompt", Some("human"))
    }

    /// The prompt a user message's text and file parts make, after its other events.
    fn emit_prompt(&mut self, prompt: &Prompt, m: &mut Msg) -> Result<(), MapError> {
        if prompt.blocks.is_empty() {
            return Ok(());
        }
        let (event, kind, author) = self.prompt_class(&prompt.first_text);
        let mut ev = EventBuf::new(event);
        ev.raw("content", &blocks(&prompt.blocks));
        ev.meta_opt("author", author);
        m.emit(ev, kind, None)
    }

    /// The metadata every event of the session carries: its directory and parent.
    fn session_meta(&self) -> Vec<(&'static str, String)> {
        let mut meta = Vec::new();
        if let Some(d) = &self.state.directory {
            meta.push(("project_path", json_str(d)));
        }
        if let Some(p) = &self.state.parent {
            meta.push(("parent_session_id", json_str(p)));
        }
        meta
    }

    /// The metadata of a message's events: the session's, then the message's model, provider
    /// and (when the session names none) project folder.
    fn message_meta(&self, msg: &Value) -> Vec<(&'static str, String)> {
        let mut meta = self.session_meta();
        let data_model = msg.get("data").and_then(|d| d.get("model"));
        let model = s(msg, "model")
            .or_else(|| s(msg, "modelID"))
            .or_else(|| {
                msg.get("model")
                    .and_then(|m| s(m, "modelID").or_else(|| s(m, "id")))
            })
            .or_else(|| data_model.and_then(|m| s(m, "id")));
        let provider = s(msg, "provider")
            .or_else(|| s(msg, "providerID"))
            .or_else(|| msg.get("model").and_then(|m| s(m, "providerID")))
            .or_else(|| data_model.and_then(|m| s(m, "providerID")));
        if let Some(m) = model {
            meta.push(("model", json_str(m)));
        }
        if let Some(p) = provider {
            meta.push(("provider", json_str(p)));
        }
        if let Some(root) = msg
            .get("path")
            .and_then(|p| s(p, "root").or_else(|| s(p, "cwd")))
        {
            if self.state.directory.is_none() {
                meta.push(("project_path", json_str(root)));
            }
        }
        meta
    }

    fn map_message(
        &mut self,
        r: &MessageRecord,
        session_id: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let msg = &r.message;
        let Some(id) = s(msg, "id") else {
            return Err(MapError::Reject("OpenCode message has no id".into()));
        };
        let Some(layout) = Layout::from_name(&r.layout) else {
            return Err(MapError::Reject(format!(
                "unknown OpenCode layout `{}`",
                r.layout
            )));
        };
        let created = msg
            .get("created_at")
            .or_else(|| msg.get("time_created"))
            .or_else(|| msg.get("time").and_then(|t| t.get("created")))
            .and_then(timestamp);
        let meta = self.message_meta(msg);
        let thread = self.state.thread.clone();
        let mut m = Msg::new(sink, session_id, id.to_string(), created, thread, meta);
        match layout.lineage() {
            Lineage::Go => self.map_go(r, &mut m)?,
            Lineage::TypeScript => self.map_ts(r, &mut m)?,
            Lineage::OpenCode2 => self.map_v2(r, &mut m)?,
        }
        // A compaction's summary: the prompt after it may be a copy of an earlier one.
        self.state.after_summary = msg.get("summary").and_then(Value::as_bool) == Some(true)
            || msg.get("is_summary_message").and_then(Value::as_i64) == Some(1)
            || self.state.summary_message_id.as_deref() == Some(id)
            || s(msg, "type") == Some("compaction");
        Ok(m.emitted())
    }
}

/// The `record` of a source record, as a record of `kind`.
fn record_of<'a, T: serde::Deserialize<'a>>(text: &'a str, kind: &str) -> Result<T, MapError> {
    let reject =
        |e: serde_json::Error| MapError::Reject(format!("not an OpenCode {kind} record: {e}"));
    let record = serde_json::from_str(text).map_err(reject)?;
    // Raw values let a lone surrogate through, which a `Value` of the record (what the
    // mapping reads it as) refuses.
    if raw::has_surrogate_escape(text) {
        serde_json::from_str::<Value>(text).map_err(reject)?;
    }
    Ok(record)
}

/// A sub-agent's session: its parent's stream announces it as a thread, with the agent and (Go
/// lineage) the call that made it.
fn announce_thread(
    child: &str,
    ses: &Value,
    layout: Option<Layout>,
    session_id: &str,
    parent: &str,
    created: &Option<String>,
    sink: &mut dyn EventSink,
) -> Result<usize, MapError> {
    let parent_stream = session_stream(SOURCE, parent)?;
    let title = s(ses, "title").filter(|t| !t.is_empty());
    let agent = s(ses, "agent")
        .map(str::to_string)
        .or_else(|| title.and_then(subagent_of_title));
    let mut writer = EventWriter::new(sink, SOURCE, &parent_stream, String::new());
    writer.announce_thread(&Thread {
        parent_stream: &parent_stream,
        child,
        child_stream: session_id,
        agent: agent.as_deref(),
        parent_tool_use_id: go_spawning_call(layout, child),
        timestamp: created.as_deref(),
    })?;
    Ok(writer.emitted())
}

impl OpenCodeMapper {
    /// The stream of the record's session, whose state becomes the one at hand.
    fn enter(&mut self, native_session: &str) -> Result<String, MapError> {
        let session_id = session_stream(SOURCE, native_session)?;
        if self.state.session_id != session_id {
            let current_key = self.state.session_id.clone();
            self.others
                .switch(&mut self.state, current_key, &session_id, || SessionState {
                    session_id: session_id.clone(),
                    ..SessionState::default()
                });
        }
        Ok(session_id)
    }
}

impl SourceMapping for OpenCodeMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let session_id = self.enter(&rec.session)?;
        let text = rec.record.get();
        match rec.kind.as_deref().and_then(Kind::from_name) {
            Some(Kind::Session) => {
                let r = record_of(text, "session")?;
                self.map_session(&rec.session, &r, &session_id, sink)
            }
            Some(Kind::Message) => {
                self.map_message(&record_of(text, "message")?, &session_id, sink)
            }
            None => Err(MapError::Reject(format!(
                "OpenCode record of unknown kind {}",
                rec.kind
                    .as_deref()
                    .map_or("(none)".into(), |k| format!("`{k}`"))
            ))),
        }
    }

    /// The one-pass path for messages (nearly every record): the typed parse of the record is
    /// its only check as JSON, and comes first; anything else goes the full way.
    fn map_line(
        &mut self,
        line: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        if line.kind.and_then(Kind::from_name) != Some(Kind::Message) {
            return None;
        }
        let r: MessageRecord = record_of(line.record, "message").ok()?;
        Some(
            self.enter(line.session)
                .and_then(|session_id| self.map_message(&r, &session_id, sink)),
        )
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}
