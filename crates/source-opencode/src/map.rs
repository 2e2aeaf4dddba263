//! OpenCode messages -> Durable Sessions events, for both lineages and every layout.
//!
//! The format facts relied on are in `crates/opencode-read/FORMAT.md` (the § numbers below name
//! the sections of the format research it condenses). `opencode-read` emits,
//! per session, a `kind: "session"` record (`{"layout", "session"}`) and then one
//! `kind: "message"` record per message (`{"layout", "message", "parts"}`):
//! * Go lineage (`g1` opencode-ai/opencode, `g2` crush): `parts` are `{type, data}` envelopes
//!   (§1.3); tool results sit in the following `tool`-role message (§1.4); times are seconds.
//! * TypeScript lineage (`t1` JSON store, `t2` SQLite): parts as in §2.4; one `tool` part holds
//!   the call and its result in `state` (§2.7); times are milliseconds.
//! * OpenCode 2 (`t3`): the message's `data` holds a `content[]` of text, reasoning and tool
//!   items (§2.8).
//!
//! Keys are the message id and the event's position in it: ids are the same in every layout, so a
//! message read from both the JSON store and the database would map to the same keys.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;
use tonbo_core::contract::{check_session_id, session_id_for};
use tonbo_core::SourceRecord;

use tonbo_core::mapping::{Counts, EventSink, MapError};
use tonbo_core::event::{fnv64, text_content, EventBuf};

use crate::SOURCE;

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
    /// Go lineage: the compaction summary's message id (§1.4).
    summary_message_id: Option<String>,
}

#[derive(Default)]
pub struct OpenCodeMapper {
    state: SessionState,
    others: tonbo_core::mapping::SessionStates<SessionState>,
    pub counts: Counts,
}

#[derive(Deserialize)]
struct MessageRecord<'a> {
    #[serde(borrow)]
    layout: Cow<'a, str>,
    message: Value,
    #[serde(default)]
    parts: Vec<Value>,
}

/// RFC 3339 UTC from unix milliseconds.
pub fn rfc3339_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A timestamp field in seconds (Go lineage) or milliseconds (TS), told apart by magnitude
/// (§4.7): anything below 10^11 is seconds (before the year 5138).
fn timestamp(v: &Value) -> Option<String> {
    let n = v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))?;
    if n <= 0 {
        return None;
    }
    Some(rfc3339_millis(if n < 100_000_000_000 {
        n * 1000
    } else {
        n
    }))
}

fn s<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}

fn text_block(text: &str) -> String {
    format!(
        "{{\"type\":\"text\",\"text\":{}}}",
        serde_json::to_string(text).unwrap_or_default()
    )
}

/// A `data:` URL or other URL as an image or document block.
fn url_block(url: &str, mime: Option<&str>, filename: Option<&str>) -> String {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((media, data)) = rest.split_once(";base64,") {
            let kind = if media.starts_with("image/") {
                "image"
            } else {
                "document"
            };
            let mut b = format!(
                "{{\"type\":\"{kind}\",\"source\":{{\"type\":\"base64\",\"media_type\":{},\"data\":{}}}",
                serde_json::to_string(media).unwrap_or_default(),
                serde_json::to_string(data).unwrap_or_default()
            );
            if let (Some(f), "document") = (filename, kind) {
                b.push_str(&format!(
                    ",\"title\":{}",
                    serde_json::to_string(f).unwrap_or_default()
                ));
            }
            b.push('}');
            return b;
        }
    }
    let kind = if mime.is_some_and(|m| m.starts_with("image/")) {
        "image"
    } else {
        "document"
    };
    format!(
        "{{\"type\":\"{kind}\",\"source\":{{\"type\":\"url\",\"url\":{}}}}}",
        serde_json::to_string(url).unwrap_or_default()
    )
}

fn blocks(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// An `agent.thinking` event of reasoning text; blank text (reasoning that happened but whose
/// text was not kept, e.g. encrypted) is a `redacted` block.
fn thinking_event(text: &str) -> EventBuf {
    let mut ev = EventBuf::new("agent.thinking");
    if text.trim().is_empty() {
        ev.raw("content", "[{\"type\":\"redacted\"}]");
    } else {
        ev.raw(
            "content",
            &format!(
                "[{{\"type\":\"thinking\",\"thinking\":{}}}]",
                serde_json::to_string(text).unwrap_or_default()
            ),
        );
    }
    ev
}

/// The session an OpenCode 2 `subagent` call ran: `metadata.sessionID`, else the
/// `<subagent sessionID="...">` its result text starts with.
fn subagent_session_of(state: &Value) -> Option<String> {
    if let Some(id) = state.get("metadata").and_then(|m| s(m, "sessionID")) {
        return Some(id.to_string());
    }
    state
        .get("content")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|c| s(c, "text"))
        .find_map(|t| {
            let rest = t.split_once("<subagent sessionID=\"")?.1;
            rest.split_once('"').map(|(id, _)| id.to_string())
        })
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
fn go_spawning_call<'a>(layout: &str, child: &'a str) -> Option<&'a str> {
    if !matches!(layout, "g1" | "g2") {
        return None;
    }
    if let Some((_, call)) = child.split_once("$$") {
        return Some(call);
    }
    let uuid = child.len() == 36 && child.chars().filter(|c| *c == '-').count() == 4;
    (!uuid).then_some(child)
}

/// A command a person ran (`!cmd`): the command as a `user.message`, its output as a
/// `system.message` after it.
fn emit_shell(
    m: &mut Msg,
    command: &str,
    output: &str,
    at: Option<String>,
) -> Result<(), MapError> {
    let mut ev = EventBuf::new("user.message");
    ev.raw("content", &blocks(&[text_block(command)]));
    ev.meta_str("author", "human");
    m.emit(ev, "bash_input", at.clone())?;
    let mut ev = EventBuf::new("system.message");
    ev.raw("content", &blocks(&[text_block(output)]));
    m.emit(ev, "bash_output", at)
}

/// Go tool inputs and metadata are JSON encoded a second time (§1.3, §4.4).
fn decode_twice(v: Option<&Value>) -> (String, Option<String>) {
    match v {
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(o @ Value::Object(_)) => (o.to_string(), None),
            Ok(other) => (serde_json::json!({ "input": other }).to_string(), None),
            Err(_) => ("{}".into(), Some(s.clone())),
        },
        Some(o @ Value::Object(_)) => (o.to_string(), None),
        Some(other) => (serde_json::json!({ "input": other }).to_string(), None),
        None => ("{}".into(), None),
    }
}

/// One message's events, numbered for their keys.
struct Msg<'a> {
    sink: &'a mut dyn EventSink,
    session_id: &'a str,
    key_base: String,
    n: usize,
    emitted: usize,
    timestamp: Option<String>,
    meta: Vec<(&'static str, String)>,
    /// A sub-agent's session: every event names its thread (the session itself).
    thread: Option<String>,
}

impl Msg<'_> {
    /// Passes over the message's next event (blank text) but keeps its number, so that the
    /// keys of the events after it are what they always were.
    fn pass_over(&mut self) {
        self.n += 1;
    }

    fn emit(&mut self, mut ev: EventBuf, kind: &str, at: Option<String>) -> Result<(), MapError> {
        let key = format!("{}#{}", self.key_base, self.n);
        self.n += 1;
        let ts = at.or_else(|| self.timestamp.clone());
        if let Some(ts) = &ts {
            ev.str("processed_at", ts);
        }
        if let Some(t) = &self.thread {
            ev.str("session_thread_id", t);
        }
        ev.meta_str("source", SOURCE).meta_str("source_key", &key);
        match &ts {
            Some(t) => ev.meta_str("original_timestamp", t),
            None => ev.meta_raw("original_timestamp", "null"),
        };
        ev.meta_str("kind", kind);
        for (k, v) in &self.meta {
            ev.meta_raw(k, v);
        }
        self.sink.event(self.session_id, &ev.finish())?;
        self.emitted += 1;
        Ok(())
    }
}

impl OpenCodeMapper {
    pub fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let session_id = format!("{SOURCE}-{}", rec.session);
        tonbo_core::contract::check_session_id(&session_id).map_err(MapError::Reject)?;
        if self.state.session_id != session_id {
            let current_key = self.state.session_id.clone();
            self.others
                .switch(&mut self.state, current_key, &session_id, || SessionState {
                    session_id: session_id.clone(),
                    ..SessionState::default()
                });
        }
        match rec.kind.as_deref() {
            Some("session") => self.map_session(rec, &session_id, sink),
            Some("message") => self.map_message(rec, &session_id, sink),
            other => Err(MapError::Reject(format!(
                "OpenCode record of unknown kind {}",
                other.map_or("(none)".into(), |k| format!("`{k}`"))
            ))),
        }
    }

    fn skip(&mut self, what: &str) {
        self.counts.skip(what);
    }

    fn unknown(&mut self, what: String) {
        self.counts.unknown(&what);
    }

    fn map_session(
        &mut self,
        rec: &SourceRecord,
        session_id: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        #[derive(Deserialize)]
        struct SessionRecord {
            #[serde(default)]
            layout: String,
            session: Value,
        }
        let r: SessionRecord = serde_json::from_str(rec.record.get())
            .map_err(|e| MapError::Reject(format!("not an OpenCode session record: {e}")))?;
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
        if let Some(parent_stream) = self.state.parent.clone() {
            // A sub-agent's session: its parent's stream announces it as a thread.
            check_session_id(&parent_stream).map_err(MapError::Reject)?;
            let child = rec.session.as_ref();
            let agent = s(ses, "agent")
                .map(str::to_string)
                .or_else(|| title.and_then(subagent_of_title));
            let mut ev = EventBuf::new("session.thread_created");
            ev.str("agent_name", agent.as_deref().unwrap_or("subagent"))
                .str("session_thread_id", session_id);
            if let Some(ts) = &created {
                ev.str("processed_at", ts);
            }
            ev.meta_str("source", SOURCE)
                .meta_str("source_key", &format!("thread/{child}"));
            match &created {
                Some(t) => ev.meta_str("original_timestamp", t),
                None => ev.meta_raw("original_timestamp", "null"),
            };
            ev.meta_str("kind", "thread_created")
                .meta_str("child_session_id", session_id)
                .meta_opt("parent_tool_use_id", go_spawning_call(&r.layout, child));
            sink.event(&parent_stream, &ev.finish())?;
            emitted += 1;
        }
        // The title is the session's one piece of content; sub-agent title sessions are Go's
        // `title-<parent>` and carry none (§1.4).
        let Some(title) = title else {
            self.skip("session without title");
            return Ok(emitted);
        };
        let mut ev = EventBuf::new("opencode.title");
        ev.str("title", title);
        let mut m = Msg {
            sink,
            session_id,
            key_base: format!("title/{:016x}", fnv64(title.as_bytes())),
            n: 0,
            emitted: 0,
            timestamp: created,
            meta: self.session_meta(),
            thread: self.state.thread.clone(),
        };
        m.emit(ev, "title", None)?;
        Ok(emitted + m.emitted)
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
    fn emit_prompt(
        &mut self,
        prompt: &[String],
        first_text: &str,
        m: &mut Msg,
    ) -> Result<(), MapError> {
        if prompt.is_empty() {
            return Ok(());
        }
        let (event, kind, author) = self.prompt_class(first_text);
        let mut ev = EventBuf::new(event);
        ev.raw("content", &blocks(prompt));
        ev.meta_opt("author", author);
        m.emit(ev, kind, None)
    }

    fn session_meta(&self) -> Vec<(&'static str, String)> {
        let mut meta = Vec::new();
        if let Some(d) = &self.state.directory {
            meta.push(("project_path", serde_json::to_string(d).unwrap_or_default()));
        }
        if let Some(p) = &self.state.parent {
            meta.push((
                "parent_session_id",
                serde_json::to_string(p).unwrap_or_default(),
            ));
        }
        meta
    }

    fn map_message(
        &mut self,
        rec: &SourceRecord,
        session_id: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let r: MessageRecord = serde_json::from_str(rec.record.get())
            .map_err(|e| MapError::Reject(format!("not an OpenCode message record: {e}")))?;
        let msg = &r.message;
        let Some(id) = s(msg, "id") else {
            return Err(MapError::Reject("OpenCode message has no id".into()));
        };
        let mut meta = self.session_meta();
        let model = s(msg, "model")
            .map(str::to_string)
            .or_else(|| s(msg, "modelID").map(str::to_string))
            .or_else(|| {
                msg.get("model")
                    .and_then(|m| s(m, "modelID").or_else(|| s(m, "id")))
                    .map(str::to_string)
            })
            .or_else(|| {
                msg.get("data")
                    .and_then(|d| d.get("model"))
                    .and_then(|m| s(m, "id"))
                    .map(str::to_string)
            });
        let provider = s(msg, "provider")
            .or_else(|| s(msg, "providerID"))
            .or_else(|| msg.get("model").and_then(|m| s(m, "providerID")))
            .or_else(|| {
                msg.get("data")
                    .and_then(|d| d.get("model"))
                    .and_then(|m| s(m, "providerID"))
            })
            .map(str::to_string);
        if let Some(m) = &model {
            meta.push(("model", serde_json::to_string(m).unwrap_or_default()));
        }
        if let Some(p) = &provider {
            meta.push(("provider", serde_json::to_string(p).unwrap_or_default()));
        }
        if let Some(root) = msg
            .get("path")
            .and_then(|p| s(p, "root").or_else(|| s(p, "cwd")))
        {
            if self.state.directory.is_none() {
                meta.push((
                    "project_path",
                    serde_json::to_string(root).unwrap_or_default(),
                ));
            }
        }
        let created = msg
            .get("created_at")
            .or_else(|| msg.get("time_created"))
            .or_else(|| msg.get("time").and_then(|t| t.get("created")))
            .and_then(timestamp);
        let mut m = Msg {
            sink,
            session_id,
            key_base: id.to_string(),
            n: 0,
            emitted: 0,
            timestamp: created,
            meta,
            thread: self.state.thread.clone(),
        };
        match r.layout.as_ref() {
            "g1" | "g2" => self.map_go(msg, &r.parts, &mut m)?,
            "t1" | "t2" => self.map_ts(msg, &r.parts, &mut m)?,
            "t3" => self.map_v2(msg, &mut m)?,
            other => {
                return Err(MapError::Reject(format!(
                    "unknown OpenCode layout `{other}`"
                )))
            }
        }
        // A compaction's summary: the prompt after it may be a copy of an earlier one.
        self.state.after_summary = msg.get("summary").and_then(Value::as_bool) == Some(true)
            || msg.get("is_summary_message").and_then(Value::as_i64) == Some(1)
            || self.state.summary_message_id.as_deref() == Some(id)
            || s(msg, "type") == Some("compaction");
        Ok(m.emitted)
    }

    /// Go lineage (§1.3, §1.4).
    fn map_go(&mut self, msg: &Value, parts: &[Value], m: &mut Msg) -> Result<(), MapError> {
        let role = s(msg, "role").unwrap_or("");
        let id = s(msg, "id").unwrap_or("");
        let is_summary = msg.get("is_summary_message").and_then(Value::as_i64) == Some(1)
            || self.state.summary_message_id.as_deref() == Some(id);
        let mut prompt = Vec::new();
        let mut first_text = String::new();
        for part in parts {
            let kind = s(part, "type").unwrap_or("");
            let data = part.get("data").cloned().unwrap_or(Value::Null);
            match (role, kind) {
                ("user", "text") => {
                    let text = s(&data, "text").unwrap_or("");
                    if first_text.is_empty() {
                        first_text = text.to_string();
                    }
                    prompt.push(text_block(text));
                }
                ("user", "image_url") => prompt.push(url_block(
                    s(&data, "url").unwrap_or(""),
                    Some("image/"),
                    None,
                )),
                (_, "binary") => {
                    let mime = s(&data, "MIMEType").unwrap_or("application/octet-stream");
                    let url = format!("data:{mime};base64,{}", s(&data, "Data").unwrap_or(""));
                    let b = url_block(&url, Some(mime), s(&data, "Path"));
                    if role == "user" {
                        prompt.push(b);
                    } else {
                        let mut ev = EventBuf::new("agent.message");
                        ev.raw("content", &blocks(&[b]));
                        m.emit(ev, "file", None)?;
                    }
                }
                ("assistant", "text") => {
                    let text = s(&data, "text").unwrap_or("");
                    if text.trim().is_empty() {
                        m.pass_over();
                        self.skip("blank text");
                        continue;
                    }
                    let mut ev = EventBuf::new(if is_summary {
                        "agent.thread_context_compacted"
                    } else {
                        "agent.message"
                    });
                    ev.raw("content", &blocks(&[text_block(text)]));
                    m.emit(
                        ev,
                        if is_summary {
                            "compaction_summary"
                        } else {
                            "text"
                        },
                        None,
                    )?;
                }
                ("assistant", "reasoning") => {
                    let ev = thinking_event(s(&data, "thinking").unwrap_or(""));
                    m.emit(ev, "reasoning", None)?;
                }
                ("assistant", "tool_call") => {
                    let (input, raw) = decode_twice(data.get("input"));
                    let call = s(&data, "id").unwrap_or("");
                    let mut ev = EventBuf::new("agent.tool_use");
                    ev.str("name", s(&data, "name").unwrap_or(""))
                        .raw("input", &input);
                    ev.meta_str("tool_use_id", call);
                    if let Some(r) = raw {
                        ev.meta_str("raw_input", &r);
                    }
                    m.emit(ev, "tool_use", None)?;
                }
                ("tool", "tool_result") => {
                    let call = s(&data, "tool_call_id").unwrap_or("");
                    let mut content = vec![text_block(s(&data, "content").unwrap_or(""))];
                    if let (Some(d), Some(mime)) = (
                        s(&data, "data").filter(|d| !d.is_empty()),
                        s(&data, "mime_type"),
                    ) {
                        content.push(url_block(
                            &format!("data:{mime};base64,{d}"),
                            Some(mime),
                            None,
                        ));
                    }
                    let mut ev = EventBuf::new("agent.tool_result");
                    ev.str("tool_use_id", call)
                        .raw("content", &blocks(&content))
                        .bool(
                            "is_error",
                            data.get("is_error")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                        );
                    ev.meta_str("tool_use_id", call);
                    if let Some(md) = s(&data, "metadata").filter(|x| !x.is_empty()) {
                        ev.meta_str("tool_metadata", md);
                    }
                    m.emit(ev, "tool_result", None)?;
                }
                (_, "finish") => {
                    // Every non-assistant message gets a `finish{reason:"stop",time:0}` (§1.4).
                    let reason = s(&data, "reason").unwrap_or("");
                    if role != "assistant" || reason == "tool_use" {
                        self.skip("finish (not a turn end)");
                        continue;
                    }
                    let mut ev = EventBuf::new("session.status_idle");
                    ev.raw("stop_reason", "{\"type\":\"end_turn\"}");
                    ev.meta_str("finish_reason", reason);
                    m.emit(ev, "finish", data.get("time").and_then(timestamp))?;
                }
                (_, "shell_command") => {
                    // `!cmd` (Crush's bang mode): a person ran the command.
                    emit_shell(
                        m,
                        s(&data, "command").unwrap_or(""),
                        s(&data, "output").unwrap_or(""),
                        None,
                    )?;
                }
                (r, k) => {
                    // Unknown part types are kept whole and counted, never fatal (§1.3).
                    self.unknown(format!("{r}:{k}"));
                    let mut ev = EventBuf::new("opencode.part");
                    ev.raw("part", &part.to_string());
                    m.emit(ev, "unknown_part", None)?;
                }
            }
        }
        self.emit_prompt(&prompt, &first_text, m)?;
        Ok(())
    }

    /// TypeScript lineage, JSON store and SQLite (§2.4, §2.7).
    fn map_ts(&mut self, msg: &Value, parts: &[Value], m: &mut Msg) -> Result<(), MapError> {
        let role = s(msg, "role").unwrap_or("");
        let summary = msg.get("summary").and_then(Value::as_bool) == Some(true);
        let mut prompt = Vec::new();
        let mut first_text = String::new();
        for part in parts {
            let kind = s(part, "type").unwrap_or("");
            let started = part
                .get("time")
                .and_then(|t| t.get("start"))
                .and_then(timestamp);
            match kind {
                "text" => {
                    let text = s(part, "text").unwrap_or("");
                    let synthetic = part.get("synthetic").and_then(Value::as_bool) == Some(true);
                    if part.get("ignored").and_then(Value::as_bool) == Some(true) {
                        self.skip("text (ignored)");
                    } else if synthetic {
                        // Injected by OpenCode, not typed (§2.4); the TUI's editor context
                        // says so in its metadata.
                        let editor = part.get("metadata").and_then(|md| s(md, "kind"))
                            == Some("editor_context");
                        let mut ev = EventBuf::new("system.message");
                        ev.raw("content", &blocks(&[text_block(text)]));
                        m.emit(
                            ev,
                            if editor { "ide_context" } else { "synthetic" },
                            started,
                        )?;
                    } else if role == "user" {
                        if first_text.is_empty() {
                            first_text = text.to_string();
                        }
                        prompt.push(text_block(text));
                    } else if text.trim().is_empty() {
                        // OpenCode creates a text part before its first delta; some stay empty.
                        m.pass_over();
                        self.skip("blank text");
                    } else {
                        let ty = if summary {
                            "agent.thread_context_compacted"
                        } else {
                            "agent.message"
                        };
                        let mut ev = EventBuf::new(ty);
                        ev.raw("content", &blocks(&[text_block(text)]));
                        m.emit(
                            ev,
                            if summary {
                                "compaction_summary"
                            } else {
                                "text"
                            },
                            started,
                        )?;
                    }
                }
                "file" => {
                    let b = url_block(
                        s(part, "url").unwrap_or(""),
                        s(part, "mime"),
                        s(part, "filename"),
                    );
                    if role == "user" {
                        prompt.push(b);
                    } else {
                        let mut ev = EventBuf::new("agent.message");
                        ev.raw("content", &blocks(&[b]));
                        m.emit(ev, "file", started)?;
                    }
                }
                "reasoning" => {
                    let ev = thinking_event(s(part, "text").unwrap_or(""));
                    m.emit(ev, "reasoning", started)?;
                }
                "tool" => self.ts_tool(part, m)?,
                "step-finish" => {
                    let t = part.get("tokens").cloned().unwrap_or(Value::Null);
                    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
                    let cache = t.get("cache");
                    let usage = serde_json::json!({
                        "input_tokens": n(t.get("input")),
                        "output_tokens": n(t.get("output")),
                        "cache_read_input_tokens": n(cache.and_then(|c| c.get("read"))),
                        "cache_creation_input_tokens": n(cache.and_then(|c| c.get("write"))),
                    });
                    let mut ev = EventBuf::new("span.model_request_end");
                    ev.raw("model_request_start_id", "null")
                        .bool("is_error", false)
                        .raw("model_usage", &usage.to_string());
                    if let Some(c) = part.get("cost") {
                        ev.meta_raw("cost", &c.to_string());
                    }
                    ev.meta_raw("tokens", &t.to_string());
                    if let Some(r) = s(part, "reason") {
                        ev.meta_str("finish_reason", r);
                    }
                    m.emit(ev, "step_finish", None)?;
                }
                "compaction" => {
                    let mut ev = EventBuf::new("agent.thread_context_compacted");
                    ev.meta_raw(
                        "auto",
                        &part.get("auto").cloned().unwrap_or(Value::Null).to_string(),
                    );
                    m.emit(ev, "compaction_request", None)?;
                }
                "retry" => {
                    let error = serde_json::json!({
                        "type": "model_request_failed_error",
                        "message": part.get("error").map(|e| e.get("data").and_then(|d| d.get("message")).and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| e.to_string())).unwrap_or_default(),
                        "retry_status": {"type": "retrying"}
                    });
                    let mut ev = EventBuf::new("session.error");
                    ev.raw("error", &error.to_string());
                    m.emit(
                        ev,
                        "retry",
                        part.get("time")
                            .and_then(|t| t.get("created"))
                            .and_then(timestamp),
                    )?;
                }
                "step-start" | "snapshot" | "patch" => self.skip(kind),
                // `@name` of an agent: the typed text holds it already.
                "agent" => self.skip("agent mention"),
                "subtask" => {
                    // A slash command run by a sub-agent: its prompt is the command's template,
                    // not what the person typed.
                    let mut ev = EventBuf::new("system.message");
                    ev.raw(
                        "content",
                        &blocks(&[text_block(s(part, "prompt").unwrap_or(""))]),
                    );
                    ev.meta_opt("agent", s(part, "agent"))
                        .meta_opt("description", s(part, "description"))
                        .meta_opt("command", s(part, "command"));
                    m.emit(ev, "subtask", None)?;
                }
                other => {
                    self.unknown(format!("part:{other}"));
                    let mut ev = EventBuf::new("opencode.part");
                    ev.raw("part", &part.to_string());
                    m.emit(ev, "unknown_part", started)?;
                }
            }
        }
        self.emit_prompt(&prompt, &first_text, m)?;
        if role == "assistant" {
            if let Some(err) = msg.get("error").filter(|e| !e.is_null()) {
                let name = s(err, "name").unwrap_or("UnknownError");
                let message = err
                    .get("data")
                    .and_then(|d| s(d, "message"))
                    .unwrap_or(name);
                let kind = if name == "MessageAbortedError" {
                    "user.interrupt"
                } else {
                    "session.error"
                };
                let mut ev = EventBuf::new(kind);
                if kind == "session.error" {
                    let error = serde_json::json!({"type": "unknown_error", "message": message, "retry_status": {"type": "terminal"}});
                    ev.raw("error", &error.to_string());
                }
                ev.meta_str("error_name", name);
                m.emit(ev, "error", None)?;
            }
            let completed = msg
                .get("time")
                .and_then(|t| t.get("completed"))
                .and_then(timestamp);
            let finish = s(msg, "finish");
            if completed.is_some() && !matches!(finish, Some("tool-calls") | Some("tool_use")) {
                let mut ev = EventBuf::new("session.status_idle");
                ev.raw("stop_reason", "{\"type\":\"end_turn\"}");
                if let Some(f) = finish {
                    ev.meta_str("finish_reason", f);
                }
                if let Some(c) = msg.get("cost") {
                    ev.meta_raw("cost", &c.to_string());
                }
                m.emit(ev, "turn_end", completed)?;
            }
        }
        Ok(())
    }

    /// One `tool` part: the call, and its result once completed or failed (§2.4, §2.7).
    fn ts_tool(&mut self, part: &Value, m: &mut Msg) -> Result<(), MapError> {
        let call = s(part, "callID").unwrap_or("");
        let state = part.get("state").cloned().unwrap_or(Value::Null);
        let status = s(&state, "status").unwrap_or("");
        let input = state
            .get("input")
            .filter(|i| i.is_object())
            .map_or("{}".to_string(), Value::to_string);
        let t = state.get("time");
        // The task tool's sub-agent session (1.0 and later), as its stream.
        let child = state
            .get("metadata")
            .and_then(|md| s(md, "sessionId"))
            .map(|c| session_id_for(SOURCE, c));
        let mut ev = EventBuf::new("agent.tool_use");
        ev.str("name", s(part, "tool").unwrap_or(""))
            .raw("input", &input);
        ev.meta_str("tool_use_id", call).meta_str("status", status);
        ev.meta_opt("child_session_id", child.as_deref());
        m.emit(
            ev,
            "tool_use",
            t.and_then(|t| t.get("start")).and_then(timestamp),
        )?;
        let end = t.and_then(|t| t.get("end")).and_then(timestamp);
        let (content, is_error) = match status {
            "completed" => {
                let mut c = vec![text_block(s(&state, "output").unwrap_or(""))];
                for a in state
                    .get("attachments")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    c.push(url_block(
                        s(a, "url").unwrap_or(""),
                        s(a, "mime"),
                        s(a, "filename"),
                    ));
                }
                (blocks(&c), false)
            }
            "error" => {
                let e = state
                    .get("error")
                    .map(|e| {
                        e.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| e.to_string())
                    })
                    .unwrap_or_default();
                (blocks(&[text_block(&e)]), true)
            }
            // Pending or running: the call only (an interrupted turn, or one still going).
            _ => return Ok(()),
        };
        let mut ev = EventBuf::new("agent.tool_result");
        ev.str("tool_use_id", call)
            .raw("content", &content)
            .bool("is_error", is_error);
        ev.meta_str("tool_use_id", call);
        ev.meta_opt("child_session_id", child.as_deref());
        if let Some(md) = state.get("metadata").filter(|x| !x.is_null()) {
            let text = md.to_string();
            if text.len() <= 64 * 1024 {
                ev.meta_raw("tool_metadata", &text);
            }
        }
        if let Some(title) = s(&state, "title") {
            ev.meta_str("title", title);
        }
        m.emit(ev, "tool_result", end)
    }

    /// OpenCode 2 `session_message` rows (§2.8).
    fn map_v2(&mut self, msg: &Value, m: &mut Msg) -> Result<(), MapError> {
        let kind = s(msg, "type").unwrap_or("");
        let data = msg.get("data").cloned().unwrap_or(Value::Null);
        if let Some(ts) = data
            .get("time")
            .and_then(|t| t.get("created"))
            .and_then(timestamp)
        {
            m.timestamp = Some(ts);
        }
        match kind {
            "user" => {
                let text = s(&data, "text").unwrap_or("");
                let mut content = vec![text_block(text)];
                for f in data
                    .get("files")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    content.push(url_block(
                        s(f, "url").or_else(|| s(f, "uri")).unwrap_or(""),
                        s(f, "mime"),
                        s(f, "name").or_else(|| s(f, "filename")),
                    ));
                }
                self.emit_prompt(&content, text, m)
            }
            "synthetic" | "system" => {
                let mut ev = EventBuf::new("system.message");
                ev.raw(
                    "content",
                    &blocks(&[text_block(s(&data, "text").unwrap_or(""))]),
                );
                m.emit(ev, kind, None)
            }
            "shell" => emit_shell(
                m,
                s(&data, "command").unwrap_or(""),
                s(&data, "output").unwrap_or(""),
                None,
            ),
            "compaction" => {
                let mut ev = EventBuf::new("agent.thread_context_compacted");
                if let Some(sum) = s(&data, "summary") {
                    ev.raw(
                        "content",
                        &text_content(&serde_json::to_string(sum).unwrap_or_default()),
                    );
                }
                m.emit(ev, "compaction", None)
            }
            "assistant" => {
                for item in data
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match s(item, "type").unwrap_or("") {
                        "text" => {
                            let text = s(item, "text").unwrap_or("");
                            if text.trim().is_empty() {
                                m.pass_over();
                                self.skip("blank text");
                                continue;
                            }
                            let mut ev = EventBuf::new("agent.message");
                            ev.raw("content", &blocks(&[text_block(text)]));
                            m.emit(ev, "text", None)?;
                        }
                        "reasoning" => {
                            let ev = thinking_event(s(item, "text").unwrap_or(""));
                            m.emit(ev, "reasoning", None)?;
                        }
                        "tool" => {
                            let call = s(item, "id").unwrap_or("");
                            let state = item.get("state").cloned().unwrap_or(Value::Null);
                            let input = state
                                .get("input")
                                .filter(|i| i.is_object())
                                .map_or("{}".to_string(), Value::to_string);
                            // OpenCode 2's `subagent` tool names its session in its result.
                            let child = (s(item, "name") == Some("subagent"))
                                .then(|| subagent_session_of(&state))
                                .flatten()
                                .map(|c| session_id_for(SOURCE, &c));
                            let mut ev = EventBuf::new("agent.tool_use");
                            ev.str("name", s(item, "name").unwrap_or(""))
                                .raw("input", &input);
                            ev.meta_str("tool_use_id", call);
                            ev.meta_opt("child_session_id", child.as_deref());
                            m.emit(ev, "tool_use", None)?;
                            let status = s(&state, "status").unwrap_or("");
                            if status == "completed" || status == "error" {
                                let mut c = Vec::new();
                                for p in state
                                    .get("content")
                                    .and_then(Value::as_array)
                                    .into_iter()
                                    .flatten()
                                {
                                    match s(p, "type") {
                                        Some("text") => {
                                            c.push(text_block(s(p, "text").unwrap_or("")))
                                        }
                                        Some("file") => c.push(url_block(
                                            s(p, "url").or_else(|| s(p, "uri")).unwrap_or(""),
                                            s(p, "mime"),
                                            s(p, "name"),
                                        )),
                                        _ => {}
                                    }
                                }
                                if let Some(e) = state.get("error").filter(|e| !e.is_null()) {
                                    c.push(text_block(
                                        &e.as_str()
                                            .map(str::to_string)
                                            .unwrap_or_else(|| e.to_string()),
                                    ));
                                }
                                let mut ev = EventBuf::new("agent.tool_result");
                                ev.str("tool_use_id", call)
                                    .raw("content", &blocks(&c))
                                    .bool("is_error", status == "error");
                                ev.meta_str("tool_use_id", call);
                                ev.meta_opt("child_session_id", child.as_deref());
                                m.emit(ev, "tool_result", None)?;
                            }
                        }
                        other => {
                            self.unknown(format!("content:{other}"));
                            let mut ev = EventBuf::new("opencode.part");
                            ev.raw("part", &item.to_string());
                            m.emit(ev, "unknown_part", None)?;
                        }
                    }
                }
                if let Some(tokens) = data.get("tokens").filter(|t| !t.is_null()) {
                    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
                    let cache = tokens.get("cache");
                    let usage = serde_json::json!({
                        "input_tokens": n(tokens.get("input")),
                        "output_tokens": n(tokens.get("output")),
                        "cache_read_input_tokens": n(cache.and_then(|c| c.get("read"))),
                        "cache_creation_input_tokens": n(cache.and_then(|c| c.get("write"))),
                    });
                    let mut ev = EventBuf::new("span.model_request_end");
                    ev.raw("model_request_start_id", "null")
                        .bool("is_error", false)
                        .raw("model_usage", &usage.to_string());
                    if let Some(c) = data.get("cost") {
                        ev.meta_raw("cost", &c.to_string());
                    }
                    m.emit(ev, "usage", None)?;
                }
                let completed = data
                    .get("time")
                    .and_then(|t| t.get("completed"))
                    .and_then(timestamp);
                if let (Some(_), Some(finish)) =
                    (&completed, data.get("finish").filter(|f| !f.is_null()))
                {
                    let mut ev = EventBuf::new("session.status_idle");
                    ev.raw("stop_reason", "{\"type\":\"end_turn\"}");
                    ev.meta_raw("finish", &finish.to_string());
                    m.emit(ev, "turn_end", completed)?;
                }
                Ok(())
            }
            other => {
                // The agent or model changed (known bookkeeping, kept as it is); location-switched,
                // idle and what comes next: unknown, counted.
                if !matches!(other, "agent-switched" | "model-switched") {
                    self.unknown(format!("message:{other}"));
                }
                let mut ev = EventBuf::new(&format!(
                    "opencode.{}",
                    if other.is_empty() { "message" } else { other }
                ));
                ev.raw("data", &data.to_string());
                m.emit(ev, "other", None)
            }
        }
    }
}

impl tonbo_core::mapping::SourceMapping for OpenCodeMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        OpenCodeMapper::map(self, rec, sink)
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_771_000_000_123),
            "2026-02-13T16:26:40.123Z"
        );
        assert_eq!(
            timestamp(&serde_json::json!(1751360000)).unwrap(),
            "2025-07-01T08:53:20.000Z"
        );
        assert_eq!(
            timestamp(&serde_json::json!(1751360000123i64)).unwrap(),
            "2025-07-01T08:53:20.123Z"
        );
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
