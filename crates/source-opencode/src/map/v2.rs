//! OpenCode 2 (`t3`): one `session_message` row per message, told apart by its `type`; an
//! assistant row's `data.content[]` holds its text, reasoning and tool items.

use serde_json::Value;
use tonbo_core::contract::session_id_for;
use tonbo_core::event::{
    blocks, json_str, tool_result_event, tool_use_event, turn_end_event, EventBuf,
};
use tonbo_core::mapping::MapError;

use super::content::{
    emit_shell, error_text, s, text_block, text_event, thinking_event, time_of, tool_input,
    unknown_event, url_block, usage_event, Msg,
};
use super::{OpenCodeMapper, Prompt};
use crate::record::MessageRecord;
use crate::SOURCE;

/// The items of the array `k` of an object (none when it is not an array).
fn items<'v>(v: &'v Value, k: &str) -> impl Iterator<Item = &'v Value> {
    v.get(k).and_then(Value::as_array).into_iter().flatten()
}

/// A file of a row or a tool's result, as a block.
fn file_block(f: &Value, name: Option<&str>) -> String {
    url_block(
        s(f, "url").or_else(|| s(f, "uri")).unwrap_or(""),
        s(f, "mime"),
        name,
    )
}

/// The session an OpenCode 2 `subagent` call ran: `metadata.sessionID`, else the
/// `<subagent sessionID="...">` its result text starts with.
fn subagent_session_of(state: &Value) -> Option<String> {
    if let Some(id) = state.get("metadata").and_then(|m| s(m, "sessionID")) {
        return Some(id.to_string());
    }
    items(state, "content")
        .filter_map(|c| s(c, "text"))
        .find_map(|t| {
            let rest = t.split_once("<subagent sessionID=\"")?.1;
            rest.split_once('"').map(|(id, _)| id.to_string())
        })
}

impl OpenCodeMapper {
    /// One `session_message` row, by its `type`; its time is `data.time.created`.
    pub(super) fn map_v2(&mut self, r: &MessageRecord, m: &mut Msg) -> Result<(), MapError> {
        let msg = &r.message;
        let kind = s(msg, "type").unwrap_or("");
        let data = msg.get("data").cloned().unwrap_or(Value::Null);
        if let Some(ts) = time_of(&data, "created") {
            m.timestamp = Some(ts);
        }
        match kind {
            "user" => {
                let mut prompt = Prompt::default();
                prompt.text(s(&data, "text").unwrap_or(""));
                for f in items(&data, "files") {
                    prompt.block(file_block(f, s(f, "name").or_else(|| s(f, "filename"))));
                }
                self.emit_prompt(&prompt, m)
            }
            "synthetic" | "system" => {
                let ev = text_event("system.message", s(&data, "text").unwrap_or(""));
                m.emit(ev, kind, None)
            }
            "shell" => emit_shell(
                m,
                s(&data, "command").unwrap_or(""),
                s(&data, "output").unwrap_or(""),
            ),
            "compaction" => {
                let mut ev = EventBuf::new("agent.thread_context_compacted");
                if let Some(sum) = s(&data, "summary") {
                    ev.text_content("content", &json_str(sum));
                }
                m.emit(ev, "compaction", None)
            }
            "assistant" => self.v2_assistant(&data, m),
            other => {
                // The agent or model changed (known bookkeeping, kept as it is);
                // location-switched, idle and what comes next: unknown, counted.
                if !matches!(other, "agent-switched" | "model-switched") {
                    self.unknown(format!("message:{other}"));
                }
                let name = if other.is_empty() { "message" } else { other };
                let ev = unknown_event(&format!("opencode.{name}"), "data", &data);
                m.emit(ev, "other", None)
            }
        }
    }

    /// An assistant row: its content items, then its usage, then the end of its turn once it
    /// completed with a `finish`.
    fn v2_assistant(&mut self, data: &Value, m: &mut Msg) -> Result<(), MapError> {
        for item in items(data, "content") {
            match s(item, "type").unwrap_or("") {
                "text" => {
                    let text = s(item, "text").unwrap_or("");
                    if text.trim().is_empty() {
                        m.pass_over();
                        self.skip("blank text");
                        continue;
                    }
                    m.emit(text_event("agent.message", text), "text", None)?;
                }
                "reasoning" => {
                    let ev = thinking_event(s(item, "text").unwrap_or(""));
                    m.emit(ev, "reasoning", None)?;
                }
                "tool" => v2_tool(item, m)?,
                other => {
                    self.unknown(format!("content:{other}"));
                    let ev = unknown_event("opencode.part", "part", item);
                    m.emit(ev, "unknown_part", None)?;
                }
            }
        }
        if let Some(tokens) = data.get("tokens").filter(|t| !t.is_null()) {
            m.emit(usage_event(tokens, data.get("cost")), "usage", None)?;
        }
        let completed = time_of(data, "completed");
        if let (Some(_), Some(finish)) = (&completed, data.get("finish").filter(|f| !f.is_null())) {
            let mut ev = turn_end_event();
            ev.meta_raw("finish", &finish.to_string());
            m.emit(ev, "turn_end", completed)?;
        }
        Ok(())
    }
}

/// A `tool` content item: the call, and its result once completed or failed. OpenCode 2's
/// `subagent` tool names the session it ran in its result.
fn v2_tool(item: &Value, m: &mut Msg) -> Result<(), MapError> {
    let call = s(item, "id").unwrap_or("");
    let state = item.get("state").cloned().unwrap_or(Value::Null);
    let child = (s(item, "name") == Some("subagent"))
        .then(|| subagent_session_of(&state))
        .flatten()
        .map(|c| session_id_for(SOURCE, &c));
    let mut ev = tool_use_event(
        s(item, "name").unwrap_or(""),
        None,
        &tool_input(&state),
        call,
    );
    ev.meta_opt("child_session_id", child.as_deref());
    m.emit(ev, "tool_use", None)?;
    let status = s(&state, "status").unwrap_or("");
    if status != "completed" && status != "error" {
        return Ok(());
    }
    let mut content = Vec::new();
    for p in items(&state, "content") {
        match s(p, "type") {
            Some("text") => content.push(text_block(s(p, "text").unwrap_or(""))),
            Some("file") => content.push(file_block(p, s(p, "name"))),
            _ => {}
        }
    }
    if let Some(e) = state.get("error").filter(|e| !e.is_null()) {
        content.push(text_block(&error_text(e)));
    }
    let mut ev = tool_result_event(call, None, &blocks(&content), status == "error");
    ev.meta_opt("child_session_id", child.as_deref());
    m.emit(ev, "tool_result", None)
}
