//! Cursor records -> Durable Sessions events ([`CursorMapper`]).
//!
//! One chat (composer) is one session, `cursor-<composerId>`. Its workspace record gives the
//! folder (`cwd`), its head the title, model and branch carried by every event after it, and its
//! `createdAt` the time of messages that have none of their own. A message's events are keyed by
//! its bubble id and the part they stand for (`<bubbleId>/prompt`, `/thinking`, `/tool`,
//! `/result`, `/text`, `/usage`), never by a row; a message met again (a follower writes one again
//! when its bytes changed) emits only the keys not emitted before in this run, so a tool result
//! that arrived later goes out and the call does not go out twice. Across runs tonbo-post's
//! checkpoint drops keys the server holds. The table of what maps to what is in the README.

use std::collections::HashSet;

use serde_json::value::RawValue;
use serde_json::Value;
use tonbo_core::event::{
    is_blank_json_str, json_str, model_request_end, text_content, thinking_event,
    tool_result_event, tool_use_event, EventBuf,
};
use tonbo_core::mapping::{
    session_stream, Counts, EventSink, EventWriter, MapError, SessionStates, SourceMapping, Stamp,
};
use tonbo_core::record_line::RecordLine;
use tonbo_core::time::rfc3339_millis;
use tonbo_core::SourceRecord;

use crate::raw::{has_surrogate_escape, json_text, value, Obj};
use crate::store::folder_path;
use crate::SOURCE;

/// What the mapping keeps of one chat while its records come.
#[derive(Default)]
struct ChatState {
    native: String,
    cwd: Option<String>,
    title: Option<String>,
    model: Option<String>,
    branch: Option<String>,
    /// Keys emitted in this run.
    emitted: HashSet<String>,
    /// The last time seen (the chat's `createdAt` first), for messages without their own.
    last_ts: Option<String>,
}

/// The mapping of `"source":"cursor"` records, with the state of each chat met recently.
#[derive(Default)]
pub struct CursorMapper {
    state: ChatState,
    others: SessionStates<ChatState>,
    pub counts: Counts,
}

fn s<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn nonblank(t: Option<&str>) -> Option<&str> {
    t.filter(|t| !t.trim().is_empty())
}

/// A time Cursor wrote as milliseconds since the epoch (a number) or as RFC 3339 text.
fn time_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(t) if !t.is_empty() => Some(t.clone()),
        Value::Number(n) => n
            .as_f64()
            .filter(|ms| (EPOCH_2000_MS..=crate::read::MAX_MS).contains(ms))
            .map(|ms| rfc3339_millis(ms as i64)),
        _ => None,
    }
}

/// Below this a `timingInfo.clientStartTime` is relative to the window's start, not a time.
const EPOCH_2000_MS: f64 = 946_684_800_000.0;

/// The tool statuses after which a tool call has its result, and whether it is an error.
const DONE: &[(&str, bool)] = &[
    ("completed", false),
    ("success", false),
    ("error", true),
    ("cancelled", true),
];

/// The events of one message, keyed by its bubble id and part; a key emitted before in this run
/// is passed over.
struct Out<'a, 's> {
    writer: EventWriter<'s>,
    state: &'a mut ChatState,
    ts: Option<String>,
    model: Option<String>,
}

impl Out<'_, '_> {
    fn emit(&mut self, key: String, mut ev: EventBuf, kind: &str) -> Result<(), MapError> {
        if !self.state.emitted.insert(key.clone()) {
            return Ok(());
        }
        let inherited = self.ts.is_none();
        let ts = self.ts.clone().or_else(|| self.state.last_ts.clone());
        let stamp = Stamp {
            timestamp: ts.as_deref(),
            inherited: inherited && ts.is_some(),
            thread: None,
        };
        let session = self.writer.session_id();
        let s = &*self.state;
        let model = self.model.as_deref().or(s.model.as_deref());
        self.writer
            .emit_to(session, &mut ev, &key, &stamp, Some(kind), |ev| {
                ev.meta_opt("cwd", s.cwd.as_deref())
                    .meta_opt("git_branch", s.branch.as_deref())
                    .meta_opt("title", s.title.as_deref())
                    .meta_opt("model", model);
            })
    }
}

impl CursorMapper {
    fn switch(&mut self, native: &str) {
        if self.state.native != native {
            let key = self.state.native.clone();
            self.others
                .switch(&mut self.state, key, native, || ChatState {
                    native: native.to_string(),
                    ..ChatState::default()
                });
        }
    }

    /// `workspace.json`: `folder` (one folder) or `workspace` (a `.code-workspace` file).
    fn map_workspace(&mut self, v: &Value) {
        let uri = s(v, "folder").or_else(|| s(v, "workspace"));
        match uri {
            Some(uri) => self.state.cwd = Some(folder_path(uri).unwrap_or_else(|| uri.into())),
            None => self.counts.skip("workspace without a folder"),
        }
    }

    /// The chat's head: title (`name`), model (`modelConfig.modelName`), branch
    /// (`createdOnBranch`), and `createdAt` as the time of messages without one.
    fn map_head(&mut self, v: &Obj) {
        let st = &mut self.state;
        if let Some(name) = nonblank(v.str("name").as_deref()) {
            st.title = Some(name.to_string());
        }
        if let Some(model) = nonblank(v.obj("modelConfig").str("modelName").as_deref()) {
            st.model = Some(model.to_string());
        }
        if let Some(branch) = nonblank(v.str("createdOnBranch").as_deref()) {
            st.branch = Some(branch.to_string());
        }
        if st.last_ts.is_none() {
            st.last_ts = raw_time_of(v.get("createdAt"));
        }
    }

    fn map_bubble(
        &mut self,
        id: &str,
        b: &Obj,
        stream: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let ts = raw_time_of(b.get("createdAt"))
            .or_else(|| raw_time_of(Obj::of(b.get("timingInfo")).get("clientStartTime")));
        if ts.is_some() {
            self.state.last_ts = ts.clone();
        }
        let model = nonblank(b.obj("modelInfo").str("modelName").as_deref()).map(str::to_string);
        let ty = b.get("type").and_then(|t| value(t).as_i64());
        let mut out = Out {
            writer: EventWriter::new(sink, SOURCE, stream, String::new()),
            state: &mut self.state,
            ts,
            model,
        };
        match ty {
            Some(1) => {
                let Some(text) = nonblank_raw(str_field(b, "text")) else {
                    self.counts.skip("user message without text");
                    return Ok(0);
                };
                let mut ev = EventBuf::new("user.message");
                ev.text_content("content", &json_text(Some(text)));
                ev.meta_str("author", "human");
                out.emit(format!("{id}/prompt"), ev, "prompt")?;
            }
            Some(2) => {
                if !map_assistant(&mut out, id, b)? {
                    self.counts.skip("assistant message with nothing to map");
                }
            }
            other => {
                let what = other.map_or_else(|| "none".to_string(), |t| t.to_string());
                self.counts.unknown(&format!("bubble type:{what}"));
                return Ok(0);
            }
        }
        Ok(out.writer.emitted())
    }
}

/// [`time_of`] of a raw value.
fn raw_time_of(raw: Option<&RawValue>) -> Option<String> {
    time_of(raw.map(value).as_ref())
}

/// Field `k` when it is a string (its raw text).
fn str_field<'a>(o: &Obj<'a>, k: &str) -> Option<&'a RawValue> {
    o.get(k).filter(|r| r.get().starts_with('"'))
}

/// A raw string that is not blank.
fn nonblank_raw(t: Option<&RawValue>) -> Option<&RawValue> {
    t.filter(|t| !is_blank_json_str(t.get()))
}

/// `thinking`: `{text}` in the builds read here; a bare string is taken too.
fn thinking_text<'a>(b: &Obj<'a>) -> Option<&'a RawValue> {
    let t = b.get("thinking")?;
    if t.get().starts_with('"') {
        return nonblank_raw(Some(t));
    }
    nonblank_raw(str_field(&Obj::of(Some(t)), "text"))
}

/// An assistant message: its thinking, its tool call with its result once done, its text, its
/// token counts. False when it holds none of them (code blocks only, say).
fn map_assistant(out: &mut Out, id: &str, b: &Obj) -> Result<bool, MapError> {
    let mut any = false;
    if let Some(thinking) = thinking_text(b) {
        any = true;
        let ev = thinking_event(Some(&json_text(Some(thinking))));
        out.emit(format!("{id}/thinking"), ev, "thinking")?;
    }
    if let Some(tool) = b.get("toolFormerData").filter(|t| t.get().starts_with('{')) {
        any = true;
        map_tool(out, id, &Obj::of(Some(tool)))?;
    }
    if let Some(text) = nonblank_raw(str_field(b, "text")) {
        any = true;
        let mut ev = EventBuf::new("agent.message");
        ev.text_content("content", &json_text(Some(text)));
        out.emit(format!("{id}/text"), ev, "text")?;
    }
    if b.get("tokenCount")
        .is_some_and(|t| t.get().starts_with('{'))
    {
        let tokens = b.obj("tokenCount");
        let n = |k: &str| tokens.get(k).and_then(|v| value(v).as_u64()).unwrap_or(0);
        let (input, output) = (n("inputTokens"), n("outputTokens"));
        if input + output > 0 {
            any = true;
            let usage = format!(
                "{{\"input_tokens\":{input},\"output_tokens\":{output},\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0}}"
            );
            out.emit(
                format!("{id}/usage"),
                model_request_end(None, &usage),
                "usage",
            )?;
        }
    }
    Ok(any)
}

/// A JSON text Cursor keeps inside a string (`rawArgs`, `params`): the object it holds, else the
/// text itself under `input`.
fn input_of(text: Option<&str>) -> String {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return "{}".into();
    };
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v.to_string(),
        _ => format!("{{\"input\":{}}}", json_str(text)),
    }
}

/// `toolFormerData`: the call (`name`, `rawArgs` else `params`, `toolCallId`), and once its
/// `status` is final, its `result` (else `error`) in the same message.
fn map_tool(out: &mut Out, id: &str, t: &Obj) -> Result<(), MapError> {
    let name = nonblank(t.str("name").as_deref())
        .map(str::to_string)
        .unwrap_or_else(|| {
            t.value("tool")
                .map_or("unknown".into(), |n| format!("tool {n}"))
        });
    let call_id = t.str("toolCallId");
    let call_id = nonblank(call_id.as_deref()).unwrap_or(id).to_string();
    let input = input_of(t.str("rawArgs").or_else(|| t.str("params")).as_deref());
    let ev = tool_use_event(&name, None, &input, &call_id);
    out.emit(format!("{id}/tool"), ev, "tool_use")?;
    let status = t.str("status");
    let status = status.as_deref().unwrap_or_default();
    let Some((_, is_error)) = DONE.iter().find(|(st, _)| *st == status) else {
        return Ok(());
    };
    // Copied as written: an empty string's text is always `""`.
    let non_empty = |r: &&RawValue| r.get() != "\"\"";
    let (result, error) = (str_field(t, "result"), str_field(t, "error"));
    let result = match (result.filter(non_empty), error.filter(non_empty)) {
        (Some(r), _) => json_text(Some(r)),
        (None, Some(e)) => json_text(Some(e)),
        (None, None) if result.is_some() => json_text(result),
        (None, None) => json_str(status).into(),
    };
    let ev = tool_result_event(&call_id, None, &text_content(&result), *is_error);
    out.emit(format!("{id}/result"), ev, "tool_result")
}

/// A bubble's or chat head's fields (both large: a head lists every bubble). Raw values let a lone surrogate (`\ud800`) through, which a
/// `Value` of the record refuses: such a record is checked whole, as it always was; a record
/// that is no object maps as one without fields, as a `Value` of it did.
fn record_fields(text: &str) -> Result<Obj<'_>, MapError> {
    let reject = |e: serde_json::Error| MapError::Reject(format!("not a Cursor record: {e}"));
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(text).map_err(reject)?;
        return Ok(Obj::default());
    }
    let b = serde_json::from_str(text).map_err(reject)?;
    if has_surrogate_escape(text) {
        serde_json::from_str::<Value>(text).map_err(reject)?;
    }
    Ok(b)
}

impl SourceMapping for CursorMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let stream = session_stream(SOURCE, &rec.session)?;
        self.switch(&rec.session);
        let text = rec.record.get();
        let head = || {
            serde_json::from_str::<Value>(text)
                .map_err(|e| MapError::Reject(format!("not a Cursor record: {e}")))
        };
        match rec.kind.as_deref() {
            None => {
                let b = record_fields(text)?;
                let Some(id) = rec.at.as_deref() else {
                    return Err(MapError::Reject("Cursor message without `at`".into()));
                };
                self.map_bubble(id, &b, &stream, sink)
            }
            Some("workspace") => {
                self.map_workspace(&head()?);
                Ok(0)
            }
            Some("composer") => {
                self.map_head(&record_fields(text)?);
                Ok(0)
            }
            Some(kind) => {
                head()?;
                Err(MapError::Reject(format!(
                    "unknown cursor record kind `{kind}`"
                )))
            }
        }
    }

    /// The one-pass path for messages (nearly every record) and a chat's head and workspace:
    /// the parse of the record is its only check as JSON, and comes first; anything else goes
    /// the full way.
    fn map_line(
        &mut self,
        rec: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        match rec.kind {
            None => {
                let b = record_fields(rec.record).ok()?;
                let mapped = session_stream(SOURCE, rec.session).and_then(|stream| {
                    self.switch(rec.session);
                    let Some(id) = rec.at.as_deref() else {
                        return Err(MapError::Reject("Cursor message without `at`".into()));
                    };
                    self.map_bubble(id, &b, &stream, sink)
                });
                Some(mapped)
            }
            Some("composer") => {
                let head = record_fields(rec.record).ok()?;
                let mapped = session_stream(SOURCE, rec.session).map(|_| {
                    self.switch(rec.session);
                    self.map_head(&head);
                    0
                });
                Some(mapped)
            }
            Some("workspace") => {
                let v: Value = serde_json::from_str(rec.record).ok()?;
                let mapped = session_stream(SOURCE, rec.session).map(|_| {
                    self.switch(rec.session);
                    self.map_workspace(&v);
                    0
                });
                Some(mapped)
            }
            Some(_) => None,
        }
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_numbers_or_text_and_relative_clocks_are_not_times() {
        assert_eq!(
            time_of(Some(&json!(1_766_691_308_486_i64))).as_deref(),
            Some("2025-12-25T19:35:08.486Z")
        );
        assert_eq!(
            time_of(Some(&json!("2025-12-25T19:35:08Z"))).as_deref(),
            Some("2025-12-25T19:35:08Z")
        );
        assert_eq!(time_of(Some(&json!(4745281.3))), None);
    }

    #[test]
    fn tool_arguments_are_the_object_inside_the_string() {
        assert_eq!(input_of(Some(r#"{"path":"a"}"#)), r#"{"path":"a"}"#);
        assert_eq!(input_of(Some("ls")), r#"{"input":"ls"}"#);
        assert_eq!(input_of(None), "{}");
    }
}
