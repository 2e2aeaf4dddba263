//! The Go lineage (`g1` opencode-ai/opencode, `g2` Crush): a message's `parts` are `{type, data}`
//! envelopes, read by its role; a tool's result is a part of the next, `tool`-role, message.

use serde_json::Value;
use tonbo_core::event::{blocks, tool_result_event, tool_use_event, turn_end_event};
use tonbo_core::mapping::MapError;

use super::content::{
    emit_shell, s, text_block, text_event, thinking_event, timestamp, unknown_event, url_block, Msg,
};
use super::{file_part, OpenCodeMapper, Prompt};
use crate::record::MessageRecord;

/// Go tool inputs and metadata are JSON encoded a second time: decoded, the input is an object
/// (another value is wrapped as `{"input": ..}`), and text that does not decode is returned as
/// it is, beside `{}`.
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

impl OpenCodeMapper {
    /// A `messages` row: each part by the row's role and the part's type; a user's text and
    /// images make one prompt, after the row's other events.
    pub(super) fn map_go(&mut self, r: &MessageRecord, m: &mut Msg) -> Result<(), MapError> {
        let msg = &r.message;
        let role = s(msg, "role").unwrap_or("");
        let id = s(msg, "id").unwrap_or("");
        let is_summary = msg.get("is_summary_message").and_then(Value::as_i64) == Some(1)
            || self.state.summary_message_id.as_deref() == Some(id);
        let mut prompt = Prompt::default();
        for part in &r.parts {
            let part = &part.to_value();
            let kind = s(part, "type").unwrap_or("");
            let data = part.get("data").cloned().unwrap_or(Value::Null);
            match (role, kind) {
                ("user", "text") => prompt.text(s(&data, "text").unwrap_or("")),
                ("user", "image_url") => prompt.block(url_block(
                    s(&data, "url").unwrap_or(""),
                    Some("image/"),
                    None,
                )),
                (_, "binary") => go_binary(role, &data, &mut prompt, m)?,
                ("assistant", "text") => self.go_text(&data, is_summary, m)?,
                ("assistant", "reasoning") => {
                    let ev = thinking_event(s(&data, "thinking").unwrap_or(""));
                    m.emit(ev, "reasoning", None)?;
                }
                ("assistant", "tool_call") => go_tool_call(&data, m)?,
                ("tool", "tool_result") => go_tool_result(&data, m)?,
                (_, "finish") => self.go_finish(role, &data, m)?,
                // `!cmd` (Crush's bang mode): a person ran the command.
                (_, "shell_command") => emit_shell(
                    m,
                    s(&data, "command").unwrap_or(""),
                    s(&data, "output").unwrap_or(""),
                )?,
                (r, k) => {
                    // Unknown part types are kept whole and counted, never fatal.
                    self.unknown(format!("{r}:{k}"));
                    m.emit(
                        unknown_event("opencode.part", "part", part),
                        "unknown_part",
                        None,
                    )?;
                }
            }
        }
        self.emit_prompt(&prompt, m)
    }

    /// An assistant's text: a message, or the summary of a compaction; blank text is passed
    /// over.
    fn go_text(&mut self, data: &Value, is_summary: bool, m: &mut Msg) -> Result<(), MapError> {
        let text = s(data, "text").unwrap_or("");
        if text.trim().is_empty() {
            m.pass_over();
            self.skip("blank text");
            return Ok(());
        }
        let (event, kind) = if is_summary {
            ("agent.thread_context_compacted", "compaction_summary")
        } else {
            ("agent.message", "text")
        };
        m.emit(text_event(event, text), kind, None)
    }

    /// A `finish` part: the end of an assistant's turn, unless it stopped for tool calls.
    /// Every non-assistant message gets a `finish{reason:"stop",time:0}`: not a turn end.
    fn go_finish(&mut self, role: &str, data: &Value, m: &mut Msg) -> Result<(), MapError> {
        let reason = s(data, "reason").unwrap_or("");
        if role != "assistant" || reason == "tool_use" {
            self.skip("finish (not a turn end)");
            return Ok(());
        }
        let mut ev = turn_end_event();
        ev.meta_str("finish_reason", reason);
        m.emit(ev, "finish", data.get("time").and_then(timestamp))
    }
}

/// A `binary` part (an attached file, base64): in a user's prompt, else a message of its own.
fn go_binary(role: &str, data: &Value, prompt: &mut Prompt, m: &mut Msg) -> Result<(), MapError> {
    let mime = s(data, "MIMEType").unwrap_or("application/octet-stream");
    let url = format!("data:{mime};base64,{}", s(data, "Data").unwrap_or(""));
    let block = url_block(&url, Some(mime), s(data, "Path"));
    file_part(role, block, prompt, m, None)
}

fn go_tool_call(data: &Value, m: &mut Msg) -> Result<(), MapError> {
    let (input, raw) = decode_twice(data.get("input"));
    let call = s(data, "id").unwrap_or("");
    let mut ev = tool_use_event(s(data, "name").unwrap_or(""), None, &input, call);
    if let Some(r) = raw {
        ev.meta_str("raw_input", &r);
    }
    m.emit(ev, "tool_use", None)
}

fn go_tool_result(data: &Value, m: &mut Msg) -> Result<(), MapError> {
    let call = s(data, "tool_call_id").unwrap_or("");
    let mut content = vec![text_block(s(data, "content").unwrap_or(""))];
    if let (Some(d), Some(mime)) = (
        s(data, "data").filter(|d| !d.is_empty()),
        s(data, "mime_type"),
    ) {
        content.push(url_block(
            &format!("data:{mime};base64,{d}"),
            Some(mime),
            None,
        ));
    }
    let is_error = data
        .get("is_error")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut ev = tool_result_event(call, None, &blocks(&content), is_error);
    if let Some(md) = s(data, "metadata").filter(|x| !x.is_empty()) {
        ev.meta_str("tool_metadata", md);
    }
    m.emit(ev, "tool_result", None)
}
