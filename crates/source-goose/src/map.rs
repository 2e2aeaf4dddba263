//! Goose's records as Durable Sessions events (README.md has the table).
//!
//! Who wrote a user-role message's text (FORMAT.md, "Who wrote a user message"): a tool's
//! result is carried in a user-role message (`toolResponse`), and Goose writes user-role
//! messages of its own, always with `metadata.userVisible` false (the summary of a compaction,
//! nudges); after a compaction the person's last prompt is hidden from both (archived) and
//! copied again as a fresh visible message. Only a user text that is not for the agent only,
//! in a person's session, and not such a copy, is a person's prompt.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::Value;
use tonbo_core::contract::stable_hash;
use tonbo_core::event::{
    blocks, is_blank_json_str, json_str, thinking_event, tool_result_event, tool_use_event,
    EventBuf,
};
use tonbo_core::mapping::{
    session_stream, Counts, EventSink, EventWriter, MapError, SourceMapping, Stamp,
};
use tonbo_core::record_line::RecordLine;
use tonbo_core::time::rfc3339_millis;
use tonbo_core::{Provenance, SourceRecord};

use crate::raw::{has_surrogate_escape, json_text, value, Obj, Part, Val};
use crate::SOURCE;

/// The first words of the assistant text Goose adds after a compaction's summary
/// (`context_mgmt`'s continuation texts).
const COMPACTED: &str = "Your context was compacted";

/// What the mapping keeps of a session between its records.
#[derive(Debug, Default)]
struct Session {
    cwd: Option<String>,
    model: Option<String>,
    provider: Option<String>,
    session_type: String,
    /// The prompt of the recipe the session was started from: sent in the person's name.
    recipe_prompt: Option<String>,
    /// A compaction's continuation was seen that keeps the person's last prompt: the next
    /// visible user text equal to it is its copy.
    after_compaction: bool,
    /// The first text of the person's last prompt.
    last_prompt: Option<String>,
    /// The MCP server (Goose extension) of each open tool call, by call id.
    servers: HashMap<String, String>,
}

/// Maps Goose's source records (see [`crate::read`]).
#[derive(Debug, Default)]
pub struct GooseMapper {
    sessions: HashMap<String, Session>,
    counts: Counts,
}

fn s<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}

/// A stored SQL time (`2025-01-01 12:00:00`, or RFC 3339 from an import) as RFC 3339 UTC.
fn sql_time(t: &str) -> Option<String> {
    let t = t.trim();
    if t.len() < 19 {
        return None;
    }
    let base = t.get(..19)?.replace(' ', "T");
    Some(format!("{base}.000Z"))
}

/// A text block of `text`.
fn text_block(text: &str) -> String {
    tonbo_core::event::text_block(&json_str(text))
}

fn text_event(kind: &str, text: &str) -> EventBuf {
    let mut ev = EventBuf::new(kind);
    ev.raw("content", &blocks(&[text_block(text)]));
    ev
}

/// One record's events with their shared stamp and metadata.
struct Msg<'a> {
    writer: EventWriter<'a>,
    timestamp: Option<String>,
    meta: Vec<(&'static str, String)>,
}

impl Msg<'_> {
    fn emit(&mut self, mut ev: EventBuf, kind: &str) -> Result<(), MapError> {
        let stamp = Stamp {
            timestamp: self.timestamp.as_deref(),
            ..Stamp::default()
        };
        let meta = &self.meta;
        self.writer.emit(&mut ev, &stamp, Some(kind), |ev| {
            for (k, v) in meta {
                ev.meta_raw(k, v);
            }
        })
    }
}

impl SourceMapping for GooseMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let stream = session_stream(SOURCE, &rec.session)?;
        let text = rec.record.get();
        let not_json = |e: serde_json::Error| MapError::Reject(format!("record is not JSON: {e}"));
        let place = Place {
            session: &rec.session,
            at: rec.at.as_deref(),
            provenance: rec.provenance.as_ref(),
        };
        match rec.kind.as_deref() {
            Some("session" | "legacy-session") => {
                let v: Value = serde_json::from_str(text).map_err(not_json)?;
                self.map_session(&rec.session, &v, &stream, sink)
            }
            Some("message" | "legacy-message") => {
                let v = message_record(text).map_err(not_json)?;
                self.map_message(&place, &v, &stream, sink)
            }
            other => {
                // Checked as JSON first, as every record always was.
                serde_json::from_str::<Value>(text).map_err(not_json)?;
                Err(MapError::Reject(format!(
                    "unknown Goose record kind {other:?}"
                )))
            }
        }
    }

    /// The one-pass path for messages (nearly every record): the parse of the record is its
    /// only check as JSON, and comes first; anything else goes the full way.
    fn map_line(
        &mut self,
        rec: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        if !matches!(rec.kind, Some("message" | "legacy-message")) {
            return None;
        }
        let v = message_record(rec.record).ok()?;
        let place = Place {
            session: rec.session,
            at: rec.at.as_deref(),
            provenance: rec.provenance.as_ref(),
        };
        Some(
            session_stream(SOURCE, rec.session)
                .and_then(|stream| self.map_message(&place, &v, &stream, sink)),
        )
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// Where a record comes from: its session and place, for a message without an id.
struct Place<'a> {
    session: &'a str,
    at: Option<&'a str>,
    provenance: Option<&'a Provenance>,
}

/// A message record's fields. Raw values let a lone surrogate (`\ud800`) through, which a
/// `Value` of the record refuses: such a record is checked whole, as it always was.
/// A record that is no object maps as one without fields, as a `Value` of it did.
fn message_record(text: &str) -> Result<Obj<'_>, serde_json::Error> {
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(text)?;
        return Ok(Obj::default());
    }
    let v = serde_json::from_str(text)?;
    if has_surrogate_escape(text) {
        serde_json::from_str::<Value>(text)?;
    }
    Ok(v)
}

/// A text block of the string `raw` holds (empty when none), copied as it is written.
fn text_block_raw(raw: Option<&RawValue>) -> String {
    tonbo_core::event::text_block(&json_text(raw))
}

/// An event whose content is one text block of the string `raw` holds.
fn text_event_raw(kind: &str, raw: Option<&RawValue>) -> EventBuf {
    let mut ev = EventBuf::new(kind);
    ev.text_content("content", &json_text(raw));
    ev
}

/// Field `k` of an item when it is a string (its raw text).
fn str_field<'a>(o: &Obj<'a>, k: &str) -> Option<&'a RawValue> {
    o.get(k).filter(|r| r.get().starts_with('"'))
}

/// A base64 image block of an item's `mimeType` and `data`.
fn image_block(item: &Obj) -> String {
    format!(
        "{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":{},\"data\":{}}}}}",
        json_str(item.str("mimeType").as_deref().unwrap_or("image/png")),
        json_text(str_field(item, "data"))
    )
}

impl GooseMapper {
    /// A session row (or an older file's metadata line): what its messages' events carry, and
    /// its name as a title event.
    fn map_session(
        &mut self,
        session: &str,
        v: &Value,
        stream: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let model_config: Option<Value> =
            s(v, "model_config_json").and_then(|j| serde_json::from_str(j).ok());
        let state = Session {
            cwd: s(v, "working_dir").map(str::to_string),
            model: model_config
                .as_ref()
                .and_then(|m| s(m, "model_name"))
                .map(str::to_string),
            provider: s(v, "provider_name").map(str::to_string),
            session_type: s(v, "session_type").unwrap_or("user").to_string(),
            recipe_prompt: s(v, "recipe_json")
                .and_then(|j| serde_json::from_str::<Value>(j).ok())
                .and_then(|r| s(&r, "prompt").map(|p| p.trim().to_string())),
            ..Session::default()
        };
        let name = s(v, "name")
            .filter(|n| !n.is_empty())
            .or_else(|| s(v, "description"))
            .filter(|n| !n.trim().is_empty())
            .map(str::to_string);
        let meta = session_meta(&state);
        self.sessions.insert(session.to_string(), state);
        let Some(name) = name else {
            self.counts.skip("session without name");
            return Ok(0);
        };
        let key = format!("title/{:016x}", stable_hash(name.as_bytes()));
        let mut m = Msg {
            writer: EventWriter::new(sink, SOURCE, stream, key),
            timestamp: s(v, "created_at").and_then(sql_time),
            meta,
        };
        let mut ev = EventBuf::new("goose.title");
        ev.str("title", &name);
        for k in ["session_type", "schedule_id"] {
            ev.meta_opt(k, s(v, k));
        }
        for k in [
            "accumulated_input_tokens",
            "accumulated_output_tokens",
            "accumulated_total_tokens",
        ] {
            if let Some(n) = v.get(k).filter(|n| n.is_number()) {
                ev.meta_raw(k, &n.to_string());
            }
        }
        m.emit(ev, "title")?;
        Ok(m.writer.emitted())
    }

    /// A message: each content item by its type, a person's text and images as one prompt
    /// after the rest.
    fn map_message(
        &mut self,
        rec: &Place,
        v: &Obj,
        stream: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let key = message_key(rec, v)?;
        let state = self.sessions.entry(rec.session.to_string()).or_default();
        let created = v
            .get("created")
            .or_else(|| v.get("created_timestamp"))
            .and_then(|c| value(c).as_i64())
            .filter(|c| *c > 0)
            .map(|c| rfc3339_millis(c * 1000));
        let mut m = Msg {
            writer: EventWriter::new(sink, SOURCE, stream, key),
            timestamp: created,
            meta: session_meta(state),
        };
        let role = v.str("role");
        let role = role.as_deref().unwrap_or("");
        let md = v.obj("metadata");
        let visible = |k: &str| md.bool(k) != Some(false);
        let seen = Seen {
            user_visible: visible("userVisible"),
            agent_visible: visible("agentVisible"),
        };
        let mut prompt = Vec::new();
        let content = v.items("content");
        for item in content.iter() {
            let kind = item.obj().str("type");
            let kind = kind.as_deref().unwrap_or("");
            if role == "user" && seen.persons() && matches!(kind, "text" | "image") {
                prompt.push(item.obj());
                continue;
            }
            map_item(state, &mut self.counts, role, seen, item, &mut m)?;
        }
        emit_prompt(state, &prompt, &mut m)?;
        Ok(m.writer.emitted())
    }
}

/// A message's visibility (`metadata`; both true when absent, as in older files).
#[derive(Debug, Clone, Copy)]
struct Seen {
    user_visible: bool,
    agent_visible: bool,
}

impl Seen {
    /// Whether a user-role message's text may be a person's: shown to the user, or hidden
    /// from both (a compaction archives the person's last prompt so, and copies it after the
    /// summary). Goose's own user-role text is for the agent only.
    fn persons(self) -> bool {
        self.user_visible || !self.agent_visible
    }
}

/// The key base of a message: its `message_id` (what Goose's migration 7 gives rows written
/// before it, `msg_<session>_<row>`, for a row without one), an older file's message `id`,
/// else the record's place (`<file>:<line>`).
fn message_key(rec: &Place, v: &Obj) -> Result<String, MapError> {
    if let Some(id) = v.str("message_id").or_else(|| v.str("id")) {
        return Ok(id.into_owned());
    }
    if let Some(row) = v.get("id").and_then(|id| value(id).as_i64()) {
        return Ok(format!("msg_{}_{row}", rec.session));
    }
    let at = rec.at.map(str::to_string).or_else(|| {
        let p = rec.provenance?;
        let file = std::path::Path::new(p.file.as_deref()?).file_name()?;
        Some(format!("{}:{}", file.to_string_lossy(), p.line?))
    });
    at.ok_or_else(|| MapError::Reject("Goose message without id or place".into()))
}

/// The metadata every event of a session carries.
fn session_meta(state: &Session) -> Vec<(&'static str, String)> {
    let mut meta = Vec::new();
    if let Some(c) = &state.cwd {
        meta.push(("project_path", json_str(c)));
    }
    if let Some(m) = &state.model {
        meta.push(("model", json_str(m)));
    }
    if let Some(p) = &state.provider {
        meta.push(("provider", json_str(p)));
    }
    meta
}

/// A person's text and images of one message, as one `user.message` (or what it is instead:
/// the copy of a prompt after a compaction, a parent agent's prompt to a sub-agent, a
/// schedule's prompt).
fn emit_prompt(state: &mut Session, items: &[&Obj], m: &mut Msg) -> Result<(), MapError> {
    if items.is_empty() {
        return Ok(());
    }
    let block_of = |item: &&Obj| match item.str("type").as_deref() {
        Some("image") => image_block(item),
        _ => text_block_raw(str_field(item, "text")),
    };
    let content = blocks(&items.iter().map(block_of).collect::<Vec<_>>());
    let first_text = items.iter().find_map(|i| i.str("text"));
    let first_text = first_text.as_deref().unwrap_or("").trim();
    let copy = state.last_prompt.as_deref() == Some(first_text);
    if std::mem::take(&mut state.after_compaction) && copy {
        let mut ev = EventBuf::new("system.message");
        ev.raw("content", &content);
        return m.emit(ev, "replayed_prompt");
    }
    let (kind, author) = match state.session_type.as_str() {
        "sub_agent" | "subagent" | "specialist" => ("subagent_prompt", "agent"),
        // Goose's own sessions (naming, internal work), never typed into.
        "hidden" => ("internal_prompt", "agent"),
        "scheduled" => ("scheduled_prompt", "external"),
        _ if state.recipe_prompt.as_deref() == Some(first_text) => ("recipe_prompt", "external"),
        _ => ("prompt", "human"),
    };
    if author == "human" {
        state.last_prompt = Some(first_text.to_string());
    }
    let mut ev = EventBuf::new("user.message");
    ev.raw("content", &content);
    ev.meta_str("author", author);
    m.emit(ev, kind)
}

/// One content item that is not a person's prompt.
fn map_item(
    state: &mut Session,
    counts: &mut Counts,
    role: &str,
    seen: Seen,
    whole: &Part,
    m: &mut Msg,
) -> Result<(), MapError> {
    let item = whole.obj();
    let kind = item.str("type");
    let kind = kind.as_deref().unwrap_or("");
    match kind {
        "text" => {
            let raw = str_field(item, "text");
            if raw.is_none_or(|t| is_blank_json_str(t.get())) {
                m.writer.pass_over();
                return Ok(());
            }
            if seen.user_visible && role == "assistant" {
                return m.emit(text_event_raw("agent.message", raw), "text");
            }
            let text = item.str("text");
            let text = text.as_deref().unwrap_or("");
            // Written by Goose for the model only: a compaction's summary (user role), its
            // continuation (assistant role), nudges.
            if role == "assistant" && text.starts_with(COMPACTED) {
                // Only the continuation after a compaction that ended on the person's prompt
                // is followed by its copy; not a manual one ("at the user's request") nor one
                // in a tool loop ("Continue calling tools").
                state.after_compaction = !text.contains("at the user's request")
                    && !text.contains("Continue calling tools");
                let mut ev = EventBuf::new("agent.thread_context_compacted");
                ev.meta_str("continuation", text);
                return m.emit(ev, "compaction");
            }
            let label = if role == "user" {
                "injected_context"
            } else {
                "agent_only_text"
            };
            m.emit(text_event_raw("system.message", raw), label)
        }
        "toolRequest" | "frontendToolRequest" => tool_request(state, item, m),
        "toolResponse" => tool_response(state, item, m),
        "thinking" => {
            let t = str_field(item, "thinking");
            let ev = if t.is_none_or(|t| is_blank_json_str(t.get())) {
                thinking_event(None)
            } else {
                thinking_event(Some(&json_text(t)))
            };
            m.emit(ev, "thinking")
        }
        "redactedThinking" => m.emit(thinking_event(None), "redacted_thinking"),
        "image" => {
            let mut ev = EventBuf::new("goose.image");
            ev.raw("image", &whole.to_value().to_string());
            m.emit(ev, "image")
        }
        "systemNotification"
        | "contextLengthExceeded"
        | "summarizationRequested"
        | "conversationCompacted" => {
            let text = item.str("msg");
            let mut ev = text_event("system.message", text.as_deref().unwrap_or(kind));
            ev.meta_opt("notification_type", item.str("notificationType").as_deref());
            m.emit(ev, kind)
        }
        "toolConfirmationRequest" | "actionRequired" => {
            let mut ev = EventBuf::new("goose.action_required");
            ev.raw("request", &whole.to_value().to_string());
            m.emit(ev, kind)
        }
        other => {
            counts.unknown(&format!("content:{other}"));
            let mut ev = EventBuf::new("goose.content");
            ev.raw("content", &whole.to_value().to_string());
            m.emit(ev, "unknown_content")
        }
    }
}

/// A tool call: `<extension>__<tool>` is the tool of the MCP server (Goose extension)
/// `<extension>`; a call the model got wrong (`status: error`) keeps its error.
fn tool_request(state: &mut Session, item: &Obj, m: &mut Msg) -> Result<(), MapError> {
    let id = item.str("id");
    let id = id.as_deref().unwrap_or("");
    let call = item.obj("toolCall");
    if call.str("status").as_deref() == Some("error") {
        let mut ev = tool_use_event("invalid_tool_call", None, "{}", id);
        ev.meta_str("error", call.str("error").as_deref().unwrap_or(""));
        return m.emit(ev, "tool_request");
    }
    let value = call.obj("value");
    let name = value.str("name");
    let name = name.as_deref().unwrap_or("");
    // Written as serde_json writes a value (keys sorted), as it always was.
    let input = match value.value("arguments") {
        Some(a @ Value::Object(_)) => a.to_string(),
        None | Some(Value::Null) => "{}".to_string(),
        Some(other) => serde_json::json!({ "value": other }).to_string(),
    };
    let mcp = name
        .split_once("__")
        .filter(|(srv, t)| !srv.is_empty() && !t.is_empty());
    if let Some((server, _)) = mcp {
        state.servers.insert(id.to_string(), server.to_string());
    }
    m.emit(tool_use_event(name, mcp, &input, id), "tool_request")
}

/// A tool's result, carried in a user-role message: MCP content items as blocks.
fn tool_response(state: &mut Session, item: &Obj, m: &mut Msg) -> Result<(), MapError> {
    let id = item.str("id");
    let id = id.as_deref().unwrap_or("");
    let result = item.obj("toolResult");
    let server = state.servers.remove(id);
    let (content, is_error) = if result.str("status").as_deref() == Some("error") {
        (blocks(&[text_block_raw(str_field(&result, "error"))]), true)
    } else {
        let value = result.field("value");
        let obj = value.map(Val::as_obj);
        // Current: a CallToolResult `{content, isError}`; older: the content list itself.
        let items = match (value, obj.as_deref().and_then(|o| o.field("content"))) {
            (_, Some(content)) => content.items(),
            (Some(list), None) => list.items(),
            (None, None) => Cow::Owned(Vec::new()),
        };
        let is_error = obj.as_deref().and_then(|o| o.bool("isError")) == Some(true);
        // The blocks written into one text, a tool's output (often long) copied once.
        let mut content = String::with_capacity(256);
        content.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                content.push(',');
            }
            push_mcp_block(&mut content, item);
        }
        content.push(']');
        (content, is_error)
    };
    let ev = tool_result_event(id, server.as_deref(), &content, is_error);
    m.emit(ev, "tool_response")
}

/// An MCP content item as a content block: text, image, a resource's text; else its JSON as
/// text.
fn push_mcp_block(out: &mut String, whole: &Part) {
    let item = whole.obj();
    let text = match item.str("type").as_deref() {
        Some("text") => str_field(item, "text"),
        Some("image") => return out.push_str(&image_block(item)),
        Some("resource") => {
            let r = item.obj("resource");
            str_field(&r, "text").or_else(|| str_field(&r, "uri"))
        }
        _ => return out.push_str(&text_block(&whole.to_value().to_string())),
    };
    // What `text_block_raw` writes, in place.
    out.push_str("{\"type\":\"text\",\"text\":");
    out.push_str(&json_text(text));
    out.push('}');
}
