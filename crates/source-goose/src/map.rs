//! Goose's records as Durable Sessions events (README.md has the table).
//!
//! Who wrote a user-role message's text (FORMAT.md, "Who wrote a user message"): a tool's
//! result is carried in a user-role message (`toolResponse`), and Goose writes user-role
//! messages of its own, always with `metadata.userVisible` false (the summary of a compaction,
//! nudges); after a compaction the person's last prompt is hidden from both (archived) and
//! copied again as a fresh visible message. Only a user text that is not for the agent only,
//! in a person's session, and not such a copy, is a person's prompt.

use std::collections::HashMap;

use serde_json::Value;
use tonbo_core::contract::stable_hash;
use tonbo_core::event::{
    blocks, json_str, thinking_event, tool_result_event, tool_use_event, EventBuf,
};
use tonbo_core::mapping::{
    session_stream, Counts, EventSink, EventWriter, MapError, SourceMapping, Stamp,
};
use tonbo_core::time::rfc3339_millis;
use tonbo_core::SourceRecord;

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
        let v: Value = serde_json::from_str(rec.record.get())
            .map_err(|e| MapError::Reject(format!("record is not JSON: {e}")))?;
        match rec.kind.as_deref() {
            Some("session" | "legacy-session") => self.map_session(rec, &v, &stream, sink),
            Some("message" | "legacy-message") => self.map_message(rec, &v, &stream, sink),
            other => Err(MapError::Reject(format!(
                "unknown Goose record kind {other:?}"
            ))),
        }
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

impl GooseMapper {
    /// A session row (or an older file's metadata line): what its messages' events carry, and
    /// its name as a title event.
    fn map_session(
        &mut self,
        rec: &SourceRecord,
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
        self.sessions.insert(rec.session.to_string(), state);
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
        rec: &SourceRecord,
        v: &Value,
        stream: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let key = message_key(rec, v)?;
        let state = self.sessions.entry(rec.session.to_string()).or_default();
        let created = v
            .get("created")
            .or_else(|| v.get("created_timestamp"))
            .and_then(Value::as_i64)
            .filter(|c| *c > 0)
            .map(|c| rfc3339_millis(c * 1000));
        let mut m = Msg {
            writer: EventWriter::new(sink, SOURCE, stream, key),
            timestamp: created,
            meta: session_meta(state),
        };
        let role = s(v, "role").unwrap_or("");
        let md = v.get("metadata").filter(|m| m.is_object());
        let visible = |k: &str| md.and_then(|m| m.get(k)).and_then(Value::as_bool) != Some(false);
        let seen = Seen {
            user_visible: visible("userVisible"),
            agent_visible: visible("agentVisible"),
        };
        let mut prompt = Vec::new();
        let empty = Vec::new();
        let content = v.get("content").and_then(Value::as_array).unwrap_or(&empty);
        for item in content {
            let kind = s(item, "type").unwrap_or("");
            if role == "user" && seen.persons() && matches!(kind, "text" | "image") {
                prompt.push(item);
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
fn message_key(rec: &SourceRecord, v: &Value) -> Result<String, MapError> {
    if let Some(id) = s(v, "message_id").or_else(|| s(v, "id")) {
        return Ok(id.to_string());
    }
    if let Some(row) = v.get("id").and_then(Value::as_i64) {
        return Ok(format!("msg_{}_{row}", rec.session));
    }
    let at = rec.at.as_deref().map(str::to_string).or_else(|| {
        let p = rec.provenance.as_ref()?;
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
fn emit_prompt(state: &mut Session, items: &[&Value], m: &mut Msg) -> Result<(), MapError> {
    if items.is_empty() {
        return Ok(());
    }
    let block_of = |item: &&Value| {
        match s(item, "type") {
        Some("image") => format!(
            "{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":{},\"data\":{}}}}}",
            json_str(s(item, "mimeType").unwrap_or("image/png")),
            json_str(s(item, "data").unwrap_or(""))
        ),
        _ => text_block(s(item, "text").unwrap_or("")),
    }
    };
    let content = blocks(&items.iter().map(block_of).collect::<Vec<_>>());
    let first_text = items.iter().find_map(|i| s(i, "text")).unwrap_or("").trim();
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
    item: &Value,
    m: &mut Msg,
) -> Result<(), MapError> {
    let kind = s(item, "type").unwrap_or("");
    match kind {
        "text" => {
            let text = s(item, "text").unwrap_or("");
            if text.trim().is_empty() {
                m.writer.pass_over();
                return Ok(());
            }
            if seen.user_visible && role == "assistant" {
                return m.emit(text_event("agent.message", text), "text");
            }
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
            m.emit(text_event("system.message", text), label)
        }
        "toolRequest" | "frontendToolRequest" => tool_request(state, item, m),
        "toolResponse" => tool_response(state, item, m),
        "thinking" => {
            let t = s(item, "thinking").unwrap_or("");
            let raw = (!t.trim().is_empty()).then(|| json_str(t));
            m.emit(thinking_event(raw.as_deref()), "thinking")
        }
        "redactedThinking" => m.emit(thinking_event(None), "redacted_thinking"),
        "image" => {
            let mut ev = EventBuf::new("goose.image");
            ev.raw("image", &item.to_string());
            m.emit(ev, "image")
        }
        "systemNotification"
        | "contextLengthExceeded"
        | "summarizationRequested"
        | "conversationCompacted" => {
            let text = s(item, "msg").unwrap_or(kind);
            let mut ev = text_event("system.message", text);
            ev.meta_opt("notification_type", s(item, "notificationType"));
            m.emit(ev, kind)
        }
        "toolConfirmationRequest" | "actionRequired" => {
            let mut ev = EventBuf::new("goose.action_required");
            ev.raw("request", &item.to_string());
            m.emit(ev, kind)
        }
        other => {
            counts.unknown(&format!("content:{other}"));
            let mut ev = EventBuf::new("goose.content");
            ev.raw("content", &item.to_string());
            m.emit(ev, "unknown_content")
        }
    }
}

/// A tool call: `<extension>__<tool>` is the tool of the MCP server (Goose extension)
/// `<extension>`; a call the model got wrong (`status: error`) keeps its error.
fn tool_request(state: &mut Session, item: &Value, m: &mut Msg) -> Result<(), MapError> {
    let id = s(item, "id").unwrap_or("");
    let call = item.get("toolCall").unwrap_or(&Value::Null);
    if s(call, "status") == Some("error") {
        let mut ev = tool_use_event("invalid_tool_call", None, "{}", id);
        ev.meta_str("error", s(call, "error").unwrap_or(""));
        return m.emit(ev, "tool_request");
    }
    let value = call.get("value").unwrap_or(&Value::Null);
    let name = s(value, "name").unwrap_or("");
    let input = match value.get("arguments") {
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
fn tool_response(state: &mut Session, item: &Value, m: &mut Msg) -> Result<(), MapError> {
    let id = s(item, "id").unwrap_or("");
    let result = item.get("toolResult").unwrap_or(&Value::Null);
    let server = state.servers.remove(id);
    let (content, is_error) = if s(result, "status") == Some("error") {
        let text = s(result, "error").unwrap_or("");
        (blocks(&[text_block(text)]), true)
    } else {
        let value = result.get("value").unwrap_or(&Value::Null);
        // Current: a CallToolResult `{content, isError}`; older: the content list itself.
        let items = value
            .get("content")
            .or(Some(value))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_error = value.get("isError").and_then(Value::as_bool) == Some(true);
        (
            blocks(&items.iter().map(mcp_block).collect::<Vec<_>>()),
            is_error,
        )
    };
    let ev = tool_result_event(id, server.as_deref(), &content, is_error);
    m.emit(ev, "tool_response")
}

/// An MCP content item as a content block: text, image, a resource's text; else its JSON as
/// text.
fn mcp_block(item: &Value) -> String {
    match s(item, "type") {
        Some("text") => text_block(s(item, "text").unwrap_or("")),
        Some("image") => format!(
            "{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":{},\"data\":{}}}}}",
            json_str(s(item, "mimeType").unwrap_or("image/png")),
            json_str(s(item, "data").unwrap_or(""))
        ),
        Some("resource") => {
            let r = item.get("resource").unwrap_or(&Value::Null);
            text_block(s(r, "text").or_else(|| s(r, "uri")).unwrap_or(""))
        }
        _ => text_block(&item.to_string()),
    }
}
