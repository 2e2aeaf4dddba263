//! Gemini CLI records -> Durable Sessions events ([`GeminiMapper`]).
//!
//! `gemini-read` writes each message once, settled, and again only when it changed
//! ([`crate::chat`]); a message's events are keyed by its id and the part they stand for
//! (`<id>/prompt`, `<id>/text`, `<id>/thought/<n>`, `<id>/tool/<call id>`,
//! `<id>/result/<call id>`, `<id>/usage`), never by a line. A message met again maps again, and
//! only the keys not emitted before in this run go out: a tool result that arrived after a
//! follower wrote its call is new, the text already sent is not. Across runs tonbo-post's
//! checkpoint drops keys the server holds. The table of what maps to what is in the README.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;
use tonbo_core::contract::session_id_for;
use tonbo_core::event::{
    error_event, fnv64, json_str, model_request_end, thinking_event, tool_use_event, EventBuf,
};
use tonbo_core::mapping::{
    session_stream, Counts, EventSink, EventWriter, MapError, SessionStates, SourceMapping, Stamp,
    Thread,
};
use tonbo_core::record_line::RecordLine;
use tonbo_core::SourceRecord;

use crate::SOURCE;

mod message;

use message::Message;

/// What the mapping keeps of one session while its records come.
#[derive(Default)]
struct SessionState {
    /// Gemini CLI's session id.
    native: String,
    project_hash: Option<String>,
    /// The project's root folder (a `project` record).
    project_path: Option<String>,
    /// A subagent's chat: its parent's stream, and its own as the thread the parent announced.
    parent: Option<String>,
    thread: Option<String>,
    /// Keys emitted in this run: a message met again emits only its new parts.
    emitted: HashSet<String, foldhash::fast::RandomState>,
    /// The last time seen, for records without their own.
    last_ts: Option<String>,
    /// The metadata every event of the session carries (project, parent) as JSON, kept from
    /// record to record; `None` when it must be made again (a field of it changed).
    meta_json: Option<Vec<(&'static str, String)>>,
}

/// The mapping of `"source":"gemini-cli"` records, with the state of each session met recently.
#[derive(Default)]
pub struct GeminiMapper {
    state: SessionState,
    /// The last session's stream, and its native id: most records follow one of their session.
    stream: (String, String),
    others: SessionStates<SessionState>,
    pub counts: Counts,
}

fn s<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// Text of a user message Gemini CLI itself does not take as a prompt (`isIgnoredUserContent`
/// in `sessionUtils.ts`), by its start, and the `system.message` kind it becomes.
/// Commands are typed by a person (`author: human`) but are no prompt; contexts are injected.
const NOT_PROMPTS: &[(&str, &str, Option<&str>)] = &[
    ("/", "slash_command", Some("human")),
    ("?", "help_command", Some("human")),
    ("<session_context>", "session_context", None),
    ("<hook_context>", "hook_context", None),
];

/// The events of one record, keyed by the message's id and part; a key emitted before in this
/// run is passed over.
struct Out<'a, 's> {
    writer: EventWriter<'s>,
    state: &'a mut SessionState,
    ts: Option<&'a str>,
    /// The session's metadata ([`SessionState::meta_json`]), and the record's model after it.
    meta: Vec<(&'static str, String)>,
    with_model: bool,
}

impl Out<'_, '_> {
    /// How many events were written; the session's metadata is kept for its next record.
    fn done(mut self) -> usize {
        if self.with_model {
            self.meta.pop();
        }
        self.state.meta_json = Some(self.meta);
        self.writer.emitted()
    }

    fn emit(
        &mut self,
        key: String,
        mut ev: EventBuf,
        kind: &str,
        at: Option<&str>,
    ) -> Result<(), MapError> {
        if self.state.emitted.contains(&key) {
            return Ok(());
        }
        let own = at.or(self.ts);
        let inherited = own.is_none();
        let ts = own.or(self.state.last_ts.as_deref());
        let stamp = Stamp {
            timestamp: ts,
            inherited: inherited && ts.is_some(),
            thread: self.state.thread.as_deref(),
        };
        let session = self.writer.session_id();
        let meta = &self.meta;
        let sent = self
            .writer
            .emit_to(session, &mut ev, &key, &stamp, Some(kind), |ev| {
                for (k, v) in meta {
                    ev.meta_raw(k, v);
                }
            });
        // Kept after the event is written: the key moves in, no copy of it.
        self.state.emitted.insert(key);
        sent
    }
}

impl GeminiMapper {
    /// The stream of the session `native` ([`session_stream`]), checked once per run of its
    /// records.
    fn stream_of(&mut self, native: &str) -> Result<String, MapError> {
        if self.stream.0 != native || self.stream.1.is_empty() {
            self.stream = (native.to_string(), session_stream(SOURCE, native)?);
        }
        Ok(self.stream.1.clone())
    }

    fn switch(&mut self, native: &str) {
        if self.state.native != native {
            let key = self.state.native.clone();
            self.others
                .switch(&mut self.state, key, native, || SessionState {
                    native: native.to_string(),
                    ..SessionState::default()
                });
        }
    }

    /// The session's metadata, as JSON: kept from its last record unless it changed since.
    fn meta(&mut self) -> Vec<(&'static str, String)> {
        match self.state.meta_json.take() {
            Some(meta) => meta,
            None => self.meta_of_state(),
        }
    }

    fn meta_of_state(&self) -> Vec<(&'static str, String)> {
        let mut meta = Vec::new();
        if let Some(p) = &self.state.project_path {
            meta.push(("project_path", json_str(p)));
        }
        if let Some(p) = &self.state.project_hash {
            meta.push(("project_hash", json_str(p)));
        }
        if let Some(p) = &self.state.parent {
            meta.push(("parent_session_id", json_str(p)));
        }
        meta
    }
}

/// The events of one record of the session `state`, on `stream`, at `ts`.
fn out<'a, 's>(
    state: &'a mut SessionState,
    meta: Vec<(&'static str, String)>,
    sink: &'s mut dyn EventSink,
    stream: &'s str,
    ts: Option<&'a str>,
) -> Out<'a, 's> {
    if let Some(ts) = ts {
        match &mut state.last_ts {
            Some(last) => {
                last.clear();
                last.push_str(ts);
            }
            None => state.last_ts = Some(ts.to_string()),
        }
    }
    Out {
        writer: EventWriter::new(sink, SOURCE, stream, String::new()),
        state,
        ts,
        meta,
        with_model: false,
    }
}

impl GeminiMapper {
    /// The metadata line (or a legacy document's head): project, and for a subagent's chat its
    /// parent (the folder in `at`, `<parent id>/<file>:session`) announced as a thread; its
    /// summary, when it has one.
    fn map_session(
        &mut self,
        rec: &SourceRecord,
        v: &Value,
        stream: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        self.state.project_hash = s(v, "projectHash").map(str::to_string);
        self.state.meta_json = None;
        let start = s(v, "startTime").map(str::to_string);
        let parent = rec
            .at
            .as_deref()
            .and_then(|at| at.split_once('/'))
            .map(|(parent, _)| parent.to_string());
        let mut emitted = 0;
        if let Some(parent) = parent {
            let parent_stream = session_stream(SOURCE, &parent)?;
            self.state.parent = Some(session_id_for(SOURCE, &parent));
            self.state.meta_json = None;
            self.state.thread = Some(stream.to_string());
            let key = format!("thread/{}", rec.session);
            if self.state.emitted.insert(key) {
                let mut w = EventWriter::new(sink, SOURCE, stream, String::new());
                w.announce_thread(&Thread {
                    parent_stream: &parent_stream,
                    child: &rec.session,
                    child_stream: stream,
                    agent: None,
                    parent_tool_use_id: None,
                    timestamp: start.as_deref(),
                })?;
                emitted += 1;
            }
        }
        Ok(emitted + self.map_summary(v, start, stream, sink)?)
    }

    /// A summary (the session's title in Gemini CLI's session list) as `gemini_cli.title`.
    fn map_summary(
        &mut self,
        v: &Value,
        ts: Option<String>,
        stream: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let Some(summary) = s(v, "summary").filter(|t| !t.trim().is_empty()) else {
            return Ok(0);
        };
        let mut ev = EventBuf::new("gemini_cli.title");
        ev.str("title", summary);
        let key = format!("title/{:016x}", fnv64(summary.as_bytes()));
        let meta = self.meta();
        let mut out = out(&mut self.state, meta, sink, stream, ts.as_deref());
        out.emit(key, ev, "title", None)?;
        Ok(out.done())
    }

    fn map_message(
        &mut self,
        m: &Message,
        stream: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let Some(id) = m.id.as_deref() else {
            return Err(MapError::Reject("Gemini CLI message without an id".into()));
        };
        let ty = m.kind.as_ref();
        let subagent = self.state.thread.is_some();
        let mut meta = self.meta();
        if let Some(model) = &m.model {
            meta.push(("model", json_str(model)));
        }
        let with_model = m.model.is_some();
        let mut out = out(&mut self.state, meta, sink, stream, m.timestamp.as_deref());
        out.with_model = with_model;
        match ty {
            "user" => {
                let shown = m.shown.as_deref().filter(|t| !t.trim().is_empty());
                let text = shown.unwrap_or(&m.text);
                let literal = match shown {
                    Some(t) => Cow::Owned(json_str(t)),
                    None => m.text_json(),
                };
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    self.counts.skip("user message without text");
                    return Ok(0);
                }
                let (event, kind, author) =
                    match NOT_PROMPTS.iter().find(|(p, _, _)| trimmed.starts_with(p)) {
                        Some((_, kind, author)) => ("system.message", *kind, *author),
                        None if subagent => ("user.message", "subagent_prompt", Some("agent")),
                        None => ("user.message", "prompt", Some("human")),
                    };
                let mut ev = EventBuf::new(event);
                ev.text_content("content", &literal);
                ev.meta_opt("author", author);
                out.emit(key(&[id, "/prompt"]), ev, kind, None)?;
            }
            "gemini" => map_gemini(&mut out, id, m)?,
            "info" | "warning" => {
                let mut ev = EventBuf::new("system.message");
                ev.text_content("content", &m.text_json());
                out.emit(key(&[id, "/notice"]), ev, ty, None)?;
            }
            "error" => {
                let ev = error_event("unknown_error", &m.text, "terminal");
                out.emit(key(&[id, "/error"]), ev, "error", None)?;
            }
            other => {
                self.counts.unknown(&format!("message type:{other}"));
                return Ok(0);
            }
        }
        Ok(out.done())
    }
}

/// An event's key of its parts, without formatting machinery (a few per record).
fn key(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        key.push_str(p);
    }
    key
}

/// A model turn: its thoughts, its text, its tool calls each with its result once done, its
/// token counts.
fn map_gemini(out: &mut Out, id: &str, m: &Message) -> Result<(), MapError> {
    for (n, t) in m.thoughts.iter().enumerate() {
        let (subject, description) = (t.subject.as_ref(), t.description.as_ref());
        let text = match (subject.is_empty(), description.is_empty()) {
            (false, false) => ["**", subject, "** ", description].concat(),
            (false, true) => subject.to_string(),
            _ => description.to_string(),
        };
        let ev = thinking_event(Some(&json_str(&text)));
        out.emit(
            key(&[id, "/thought/", &n.to_string()]),
            ev,
            "thinking",
            t.timestamp.as_deref(),
        )?;
    }
    if !m.text.trim().is_empty() {
        let mut ev = EventBuf::new("agent.message");
        ev.text_content("content", &m.text_json());
        out.emit(key(&[id, "/text"]), ev, "text", None)?;
    }
    for call in &m.calls {
        let Some(call_id) = call.id.as_deref() else {
            continue;
        };
        let name = call.name.as_deref().unwrap_or("unknown");
        let mut ev = tool_use_event(name, None, &call.args, call_id);
        // A subagent's run: its chat's session id is the call's agentId.
        if let Some(agent) = &call.agent_id {
            ev.meta_str("child_session_id", &session_id_for(SOURCE, agent));
        }
        out.emit(
            key(&[id, "/tool/", call_id]),
            ev,
            "tool_use",
            call.timestamp.as_deref(),
        )?;
        if let Some(result) = &call.result {
            let ev = tonbo_core::event::tool_result_text_event(
                call_id,
                None,
                result,
                call.status != "success",
            );
            out.emit(
                key(&[id, "/result/", call_id]),
                ev,
                "tool_result",
                call.timestamp.as_deref(),
            )?;
        }
    }
    if let Some(t) = &m.tokens {
        let usage = format!(
            "{{\"input_tokens\":{},\"output_tokens\":{},\"cache_read_input_tokens\":{},\"cache_creation_input_tokens\":0}}",
            t.input.saturating_sub(t.cached),
            t.output + t.thoughts,
            t.cached,
        );
        let mut ev = model_request_end(None, &usage);
        ev.raw("gemini_tokens", &t.text);
        out.emit(key(&[id, "/usage"]), ev, "usage", None)?;
    }
    Ok(())
}

impl SourceMapping for GeminiMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let stream = self.stream_of(&rec.session)?;
        self.switch(&rec.session);
        let not_a_record = |e| MapError::Reject(format!("not a Gemini CLI record: {e}"));
        if rec.kind.is_none() {
            let m = Message::read(rec.record.get()).map_err(not_a_record)?;
            return self.map_message(&m, &stream, sink);
        }
        let v: Value = serde_json::from_str(rec.record.get()).map_err(not_a_record)?;
        match rec.kind.as_deref() {
            None => Ok(0),
            Some("project") => {
                self.state.project_path = s(&v, "projectRoot").map(str::to_string);
                self.state.meta_json = None;
                Ok(0)
            }
            Some("session") => self.map_session(rec, &v, &stream, sink),
            Some("set") => {
                let set = v.get("$set").unwrap_or(&Value::Null);
                let ts = s(set, "lastUpdated").map(str::to_string);
                let n = self.map_summary(set, ts, &stream, sink)?;
                if n == 0 {
                    self.counts.skip("$set without a summary");
                }
                Ok(n)
            }
            Some("rewind") => {
                let to = s(&v, "$rewindTo").unwrap_or_default();
                let mut ev = EventBuf::new("gemini_cli.rewind");
                ev.str("rewind_to", to);
                let meta = self.meta();
                let mut out = out(&mut self.state, meta, sink, &stream, None);
                out.emit(format!("rewind/{to}"), ev, "rewind", None)?;
                Ok(out.done())
            }
            Some("other") => {
                let what = v
                    .as_object()
                    .and_then(|o| o.keys().next())
                    .cloned()
                    .unwrap_or_default();
                self.counts.unknown(&format!("record {what}"));
                Ok(0)
            }
            Some(kind) => Err(MapError::Reject(format!(
                "unknown gemini-cli record kind `{kind}`"
            ))),
        }
    }

    /// A message typed in the line's one pass; other records, and a message with a key written
    /// twice, are left to [`Self::map`].
    fn map_line(
        &mut self,
        line: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        if line.kind.is_some() {
            return None;
        }
        let m = Message::read_typed(line.record)?;
        let mut map = || {
            let stream = self.stream_of(line.session)?;
            self.switch(line.session);
            self.map_message(&m, &stream, sink)
        };
        Some(map())
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::message::{parts_text, result_text};
    use serde_json::{json, Value};

    #[test]
    fn text_of_a_part_list_union_leaves_thoughts_and_other_parts_out() {
        assert_eq!(parts_text(json!("plain")), "plain");
        assert_eq!(parts_text(json!({"text": "one part"})), "one part");
        let parts = json!(["a", {"text": "b"}, {"text": "hidden", "thought": true},
                           {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]);
        assert_eq!(parts_text(parts), "ab");
        assert_eq!(parts_text(json!(null)), "");
    }

    #[test]
    fn a_tool_result_is_its_output_else_its_error_else_its_response() {
        let out =
            |response: Value| json!([{"functionResponse": {"id": "c", "response": response}}]);
        assert_eq!(result_text(out(json!({"output": "ok"}))), "ok");
        assert_eq!(
            result_text(out(json!({"error": "no such file"}))),
            "no such file"
        );
        assert_eq!(result_text(out(json!({"files": 2}))), r#"{"files":2}"#);
        assert_eq!(result_text(json!([{"text": "x"}, {"text": "y"}])), "x\ny");
    }
}
