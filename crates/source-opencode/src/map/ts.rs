//! The TypeScript lineage (`t1` JSON store, `t2` SQLite): a message object and its part
//! objects; one `tool` part holds a call and its result in `state`.

use serde_json::value::RawValue;
use serde_json::Value;
use tonbo_core::contract::session_id_for;
use tonbo_core::event::{
    self, blocks, error_event, is_blank_json_str, json_str, text_block, tool_result_event,
    tool_use_event, turn_end_event, EventBuf,
};
use tonbo_core::mapping::MapError;

use super::content::{error_text, s, timestamp, unknown_event, url_block, usage_event, Msg};
use super::raw::{json_text, value, value_text, Obj, Part};
use super::{file_part, OpenCodeMapper, Prompt};
use crate::record::MessageRecord;
use crate::SOURCE;

/// Tool metadata longer than this is not carried in the event.
const TOOL_METADATA_MAX: usize = 64 * 1024;

impl OpenCodeMapper {
    /// A message with its parts: each part by its type; a user's text and files make one
    /// prompt, after the message's other events; an assistant message's error and turn end
    /// last.
    pub(super) fn map_ts(&mut self, r: &MessageRecord, m: &mut Msg) -> Result<(), MapError> {
        let msg = &r.message;
        let role = s(msg, "role").unwrap_or("");
        let summary = msg.get("summary").and_then(Value::as_bool) == Some(true);
        let mut prompt = Prompt::default();
        for part in &r.parts {
            self.ts_part(part, role, summary, &mut prompt, m)?;
        }
        self.emit_prompt(&prompt, m)?;
        if role == "assistant" {
            ts_assistant_end(msg, m)?;
        }
        Ok(())
    }

    fn ts_part(
        &mut self,
        whole: &Part,
        role: &str,
        summary: bool,
        prompt: &mut Prompt,
        m: &mut Msg,
    ) -> Result<(), MapError> {
        let part = whole.obj();
        let kind = part.str("type");
        let kind = kind.as_deref().unwrap_or("");
        // Read only for the parts that carry it.
        let started = || time_of_obj(part, "start");
        match kind {
            "text" => self.ts_text(part, role, summary, started(), prompt, m),
            "file" => {
                let b = url_block(
                    part.str("url").as_deref().unwrap_or(""),
                    part.str("mime").as_deref(),
                    part.str("filename").as_deref(),
                );
                file_part(role, b, prompt, m, started())
            }
            "reasoning" => {
                let text = part.get("text").filter(|t| t.get().starts_with('"'));
                let ev = if text.is_none_or(|t| is_blank_json_str(t.get())) {
                    event::thinking_event(None)
                } else {
                    event::thinking_event(Some(&json_text(text)))
                };
                m.emit(ev, "reasoning", started())
            }
            "tool" => ts_tool(part, m),
            "step-finish" => ts_step_finish(part, m),
            "compaction" => {
                let mut ev = EventBuf::new("agent.thread_context_compacted");
                let auto = part.value("auto").unwrap_or(Value::Null);
                ev.meta_raw("auto", &auto.to_string());
                m.emit(ev, "compaction_request", None)
            }
            "retry" => ts_retry(part, m),
            "step-start" | "snapshot" | "patch" => {
                self.skip(kind);
                Ok(())
            }
            // `@name` of an agent: the typed text holds it already.
            "agent" => {
                self.skip("agent mention");
                Ok(())
            }
            "subtask" => {
                // A slash command run by a sub-agent: its prompt is the command's template,
                // not what the person typed.
                let mut ev = text_event_raw("system.message", part.get("prompt"));
                ev.meta_opt("agent", part.str("agent").as_deref())
                    .meta_opt("description", part.str("description").as_deref())
                    .meta_opt("command", part.str("command").as_deref());
                m.emit(ev, "subtask", None)
            }
            other => {
                self.unknown(format!("part:{other}"));
                let ev = unknown_event("opencode.part", "part", &whole.to_value());
                m.emit(ev, "unknown_part", started())
            }
        }
    }

    /// A `text` part: a plugin's (`ignored`) is passed over; OpenCode's own (`synthetic`) is a
    /// system message; a user's is part of the prompt; an assistant's a message, or the
    /// summary of a compaction.
    fn ts_text(
        &mut self,
        part: &Obj,
        role: &str,
        summary: bool,
        started: Option<String>,
        prompt: &mut Prompt,
        m: &mut Msg,
    ) -> Result<(), MapError> {
        // Copied as written, decoded only to look at (a prompt's first text, blankness).
        let text = part.get("text").filter(|t| t.get().starts_with('"'));
        let synthetic = part.bool("synthetic") == Some(true);
        if part.bool("ignored") == Some(true) {
            self.skip("text (ignored)");
        } else if synthetic {
            // Injected by OpenCode, not typed; the TUI's editor context says so in its
            // metadata.
            let editor = part.obj("metadata").str("kind").as_deref() == Some("editor_context");
            let kind = if editor { "ide_context" } else { "synthetic" };
            m.emit(text_event_raw("system.message", text), kind, started)?;
        } else if role == "user" {
            prompt.text_raw(text);
        } else if text.is_none_or(|t| is_blank_json_str(t.get())) {
            // OpenCode creates a text part before its first delta; some stay empty.
            m.pass_over();
            self.skip("blank text");
        } else {
            let (event, kind) = if summary {
                ("agent.thread_context_compacted", "compaction_summary")
            } else {
                ("agent.message", "text")
            };
            m.emit(text_event_raw(event, text), kind, started)?;
        }
        Ok(())
    }
}

/// The time `k` of the `time` object of a part or state.
fn time_of_obj(o: &Obj, k: &str) -> Option<String> {
    o.obj("time").value(k).as_ref().and_then(timestamp)
}

/// An event whose content is one text block of the string `raw` holds (empty when none).
fn text_event_raw(kind: &str, raw: Option<&RawValue>) -> EventBuf {
    let mut ev = EventBuf::new(kind);
    ev.text_content("content", &json_text(raw));
    ev
}

/// A `step-finish` part: the step's usage, cost and tokens.
fn ts_step_finish(part: &Obj, m: &mut Msg) -> Result<(), MapError> {
    let tokens = part.value("tokens").unwrap_or(Value::Null);
    let mut ev = usage_event(&tokens, part.value("cost").as_ref());
    ev.meta_raw("tokens", &tokens.to_string());
    if let Some(r) = part.str("reason") {
        ev.meta_str("finish_reason", &r);
    }
    m.emit(ev, "step_finish", None)
}

/// A `retry` part: a model request that failed and is tried again.
fn ts_retry(part: &Obj, m: &mut Msg) -> Result<(), MapError> {
    let message = part
        .value("error")
        .map(|e| {
            e.get("data")
                .and_then(|d| d.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
        })
        .unwrap_or_default();
    let ev = error_event("model_request_failed_error", &message, "retrying");
    m.emit(ev, "retry", time_of_obj(part, "created"))
}

/// The end of an assistant message: its error (an abort is the user's interrupt), then the
/// end of the turn once it completed, unless it stopped for tool calls.
fn ts_assistant_end(msg: &Value, m: &mut Msg) -> Result<(), MapError> {
    if let Some(err) = msg.get("error").filter(|e| !e.is_null()) {
        let name = s(err, "name").unwrap_or("UnknownError");
        let message = err
            .get("data")
            .and_then(|d| s(d, "message"))
            .unwrap_or(name);
        let mut ev = if name == "MessageAbortedError" {
            EventBuf::new("user.interrupt")
        } else {
            error_event("unknown_error", message, "terminal")
        };
        ev.meta_str("error_name", name);
        m.emit(ev, "error", None)?;
    }
    let completed = msg
        .get("time")
        .and_then(|t| t.get("completed"))
        .and_then(timestamp);
    let finish = s(msg, "finish");
    if completed.is_some() && !matches!(finish, Some("tool-calls") | Some("tool_use")) {
        let mut ev = turn_end_event();
        if let Some(f) = finish {
            ev.meta_str("finish_reason", f);
        }
        if let Some(c) = msg.get("cost") {
            ev.meta_raw("cost", &c.to_string());
        }
        m.emit(ev, "turn_end", completed)?;
    }
    Ok(())
}

/// One `tool` part: the call, and its result once completed or failed.
fn ts_tool(part: &Obj, m: &mut Msg) -> Result<(), MapError> {
    let call = part.str("callID");
    let call = call.as_deref().unwrap_or("");
    let state = part.obj("state");
    let status = state.str("status");
    let status = status.as_deref().unwrap_or("");
    let metadata = state.get("metadata");
    // The task tool's sub-agent session (1.0 and later), as its stream.
    let child = Obj::of(metadata)
        .str("sessionId")
        .map(|c| session_id_for(SOURCE, &c));
    // Written as serde_json writes an object (keys sorted), as it always was.
    let input = state
        .get("input")
        .filter(|i| i.get().starts_with('{'))
        .map_or("{}".to_string(), value_text);
    let mut ev = tool_use_event(
        part.str("tool").as_deref().unwrap_or(""),
        None,
        &input,
        call,
    );
    ev.meta_str("status", status);
    ev.meta_opt("child_session_id", child.as_deref());
    m.emit(ev, "tool_use", time_of_obj(&state, "start"))?;
    let (content, is_error) = match status {
        "completed" => {
            let output = json_text(state.get("output"));
            let attachments = state
                .get("attachments")
                .filter(|a| a.get().starts_with('['))
                .and_then(|a| serde_json::from_str::<Vec<&RawValue>>(a.get()).ok())
                .unwrap_or_default();
            if attachments.is_empty() {
                // The output, often long, copied once.
                (event::text_content(&output), false)
            } else {
                let mut c = vec![text_block(&output)];
                for a in attachments {
                    let a = Obj::of(Some(a));
                    c.push(url_block(
                        a.str("url").as_deref().unwrap_or(""),
                        a.str("mime").as_deref(),
                        a.str("filename").as_deref(),
                    ));
                }
                (blocks(&c), false)
            }
        }
        "error" => {
            let e = state.get("error");
            let text = match e.filter(|e| e.get().starts_with('"')) {
                Some(_) => json_text(e),
                None => json_str(&e.map(|e| error_text(&value(e))).unwrap_or_default()).into(),
            };
            (blocks(&[text_block(&text)]), true)
        }
        // Pending or running: the call only (an interrupted turn, or one still going).
        _ => return Ok(()),
    };
    let mut ev = tool_result_event(call, None, &content, is_error);
    ev.meta_opt("child_session_id", child.as_deref());
    if let Some(md) = metadata.filter(|x| x.get() != "null") {
        let text = value_text(md);
        if text.len() <= TOOL_METADATA_MAX {
            ev.meta_raw("tool_metadata", &text);
        }
    }
    if let Some(title) = state.str("title") {
        ev.meta_str("title", &title);
    }
    m.emit(ev, "tool_result", time_of_obj(&state, "end"))
}
