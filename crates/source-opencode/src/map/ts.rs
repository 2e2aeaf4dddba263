//! The TypeScript lineage (`t1` JSON store, `t2` SQLite): a message object and its part
//! objects; one `tool` part holds a call and its result in `state`.

use serde_json::Value;
use tonbo_core::contract::session_id_for;
use tonbo_core::event::{
    blocks, error_event, tool_result_event, tool_use_event, turn_end_event, EventBuf,
};
use tonbo_core::mapping::MapError;

use super::content::{
    error_text, s, text_block, text_event, thinking_event, time_of, timestamp, tool_input,
    unknown_event, url_block, usage_event, Msg,
};
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
        part: &Value,
        role: &str,
        summary: bool,
        prompt: &mut Prompt,
        m: &mut Msg,
    ) -> Result<(), MapError> {
        let kind = s(part, "type").unwrap_or("");
        let started = time_of(part, "start");
        match kind {
            "text" => self.ts_text(part, role, summary, started, prompt, m),
            "file" => {
                let b = url_block(
                    s(part, "url").unwrap_or(""),
                    s(part, "mime"),
                    s(part, "filename"),
                );
                file_part(role, b, prompt, m, started)
            }
            "reasoning" => {
                let ev = thinking_event(s(part, "text").unwrap_or(""));
                m.emit(ev, "reasoning", started)
            }
            "tool" => ts_tool(part, m),
            "step-finish" => ts_step_finish(part, m),
            "compaction" => {
                let mut ev = EventBuf::new("agent.thread_context_compacted");
                let auto = part.get("auto").cloned().unwrap_or(Value::Null);
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
                let mut ev = text_event("system.message", s(part, "prompt").unwrap_or(""));
                ev.meta_opt("agent", s(part, "agent"))
                    .meta_opt("description", s(part, "description"))
                    .meta_opt("command", s(part, "command"));
                m.emit(ev, "subtask", None)
            }
            other => {
                self.unknown(format!("part:{other}"));
                let ev = unknown_event("opencode.part", "part", part);
                m.emit(ev, "unknown_part", started)
            }
        }
    }

    /// A `text` part: a plugin's (`ignored`) is passed over; OpenCode's own (`synthetic`) is a
    /// system message; a user's is part of the prompt; an assistant's a message, or the
    /// summary of a compaction.
    fn ts_text(
        &mut self,
        part: &Value,
        role: &str,
        summary: bool,
        started: Option<String>,
        prompt: &mut Prompt,
        m: &mut Msg,
    ) -> Result<(), MapError> {
        let text = s(part, "text").unwrap_or("");
        let synthetic = part.get("synthetic").and_then(Value::as_bool) == Some(true);
        if part.get("ignored").and_then(Value::as_bool) == Some(true) {
            self.skip("text (ignored)");
        } else if synthetic {
            // Injected by OpenCode, not typed; the TUI's editor context says so in its
            // metadata.
            let editor =
                part.get("metadata").and_then(|md| s(md, "kind")) == Some("editor_context");
            let kind = if editor { "ide_context" } else { "synthetic" };
            m.emit(text_event("system.message", text), kind, started)?;
        } else if role == "user" {
            prompt.text(text);
        } else if text.trim().is_empty() {
            // OpenCode creates a text part before its first delta; some stay empty.
            m.pass_over();
            self.skip("blank text");
        } else {
            let (event, kind) = if summary {
                ("agent.thread_context_compacted", "compaction_summary")
            } else {
                ("agent.message", "text")
            };
            m.emit(text_event(event, text), kind, started)?;
        }
        Ok(())
    }
}

/// A `step-finish` part: the step's usage, cost and tokens.
fn ts_step_finish(part: &Value, m: &mut Msg) -> Result<(), MapError> {
    let tokens = part.get("tokens").cloned().unwrap_or(Value::Null);
    let mut ev = usage_event(&tokens, part.get("cost"));
    ev.meta_raw("tokens", &tokens.to_string());
    if let Some(r) = s(part, "reason") {
        ev.meta_str("finish_reason", r);
    }
    m.emit(ev, "step_finish", None)
}

/// A `retry` part: a model request that failed and is tried again.
fn ts_retry(part: &Value, m: &mut Msg) -> Result<(), MapError> {
    let message = part
        .get("error")
        .map(|e| {
            e.get("data")
                .and_then(|d| d.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
        })
        .unwrap_or_default();
    let ev = error_event("model_request_failed_error", &message, "retrying");
    m.emit(ev, "retry", time_of(part, "created"))
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
fn ts_tool(part: &Value, m: &mut Msg) -> Result<(), MapError> {
    let call = s(part, "callID").unwrap_or("");
    let state = part.get("state").cloned().unwrap_or(Value::Null);
    let status = s(&state, "status").unwrap_or("");
    // The task tool's sub-agent session (1.0 and later), as its stream.
    let child = state
        .get("metadata")
        .and_then(|md| s(md, "sessionId"))
        .map(|c| session_id_for(SOURCE, c));
    let mut ev = tool_use_event(
        s(part, "tool").unwrap_or(""),
        None,
        &tool_input(&state),
        call,
    );
    ev.meta_str("status", status);
    ev.meta_opt("child_session_id", child.as_deref());
    m.emit(ev, "tool_use", time_of(&state, "start"))?;
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
            let e = state.get("error").map(error_text).unwrap_or_default();
            (blocks(&[text_block(&e)]), true)
        }
        // Pending or running: the call only (an interrupted turn, or one still going).
        _ => return Ok(()),
    };
    let mut ev = tool_result_event(call, None, &content, is_error);
    ev.meta_opt("child_session_id", child.as_deref());
    if let Some(md) = state.get("metadata").filter(|x| !x.is_null()) {
        let text = md.to_string();
        if text.len() <= TOOL_METADATA_MAX {
            ev.meta_raw("tool_metadata", &text);
        }
    }
    if let Some(title) = s(&state, "title") {
        ev.meta_str("title", title);
    }
    m.emit(ev, "tool_result", time_of(&state, "end"))
}
