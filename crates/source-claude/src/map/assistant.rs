//! `assistant` lines: one event per content block, and the span of the API response the lines
//! of one `message.id` make (FORMAT.md, "Assistant lines").

use std::borrow::Cow;

use serde_json::value::RawValue;
use tonbo_core::event::{
    error_event, is_blank_json_str, json_str, model_request_end, text_content, thinking_event,
    tool_result_event, tool_use_event, EventBuf,
};
use tonbo_core::mapping::{envelope, EventSink, MapError, Stamp};

use super::line::{
    as_str, is_str, raw_and_typed_blocks, reject, Block, ClaudeLine, Content, Message, Usage,
};
use super::user_line::normalize_result_blocks;
use super::{ClaudeMapper, Out};
use crate::SOURCE;

/// The API response whose lines are being read.
pub(super) struct OpenRequest {
    pub(super) message_id: String,
    start_key: String,
    /// `usage` of the line with the largest `output_tokens`: early lines carry placeholders.
    usage: Option<(u64, String)>,
    timestamp: Option<String>,
    thread: Option<String>,
}

/// `mcp__<server>__<tool>` -> (server, tool).
fn split_mcp(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("mcp__")?;
    let (server, tool) = rest.split_once("__")?;
    (!server.is_empty() && !tool.is_empty()).then_some((server, tool))
}

impl ClaudeMapper {
    pub(super) fn map_assistant(
        &mut self,
        line: &ClaudeLine,
        out: &mut Out,
    ) -> Result<(), MapError> {
        let Some(msg) = line.message.as_ref() else {
            return Err(reject("`assistant` line has no message"));
        };
        let Some(content) = msg.content.as_ref() else {
            return Err(reject("`assistant` line has no message.content"));
        };
        // Blocks typed in the line's pass (all of known types); else from the raw content: a
        // string, or blocks each kept raw beside its typed read (an unknown one is kept whole).
        let raw = content.raw();
        let (blocks, owned): (Vec<&RawValue>, Vec<Block>) = match raw {
            Some(c) if !is_str(c) => raw_and_typed_blocks(c)?,
            _ => (Vec::new(), Vec::new()),
        };
        let parsed: &[Block] = match content {
            Content::Typed(typed) => typed,
            Content::Raw(_) => &owned,
            // `ClaudeLine::parse` reads such a line again, raw.
            Content::Other => return Err(reject("message.content was not read")),
        };
        // A synthetic error notice (`isApiErrorMessage`), not a model response.
        if line.is_api_error_message == Some(true) || msg.model.as_deref() == Some("<synthetic>") {
            return synthetic_error(raw, parsed, out);
        }
        self.track_request(line, msg, out)?;
        if let Some(text) = raw.and_then(as_str) {
            return self.map_string_reply(&text, out);
        }
        for (i, b) in parsed.iter().enumerate() {
            self.map_block(b, blocks.get(i).copied(), out)?;
        }
        Ok(())
    }

    /// Older or hand-made lines with string content.
    fn map_string_reply(&mut self, text: &str, out: &mut Out) -> Result<(), MapError> {
        if text.trim().is_empty() {
            self.skip("blank text block");
            return Ok(());
        }
        let mut ev = EventBuf::new("agent.message");
        ev.text_content("content", &json_str(text));
        out.emit(ev, Some("text"))
    }

    /// One content block of a reply.
    /// `raw` is the block's text, there whenever the block is not of a [`KNOWN_BLOCKS`] type.
    fn map_block(
        &mut self,
        b: &Block,
        raw: Option<&RawValue>,
        out: &mut Out,
    ) -> Result<(), MapError> {
        match b.kind() {
            "text" => self.map_text(b, out),
            "thinking" => map_thinking(b, out),
            "redacted_thinking" => out.emit(thinking_event(None), Some("redacted_thinking")),
            "tool_use" | "server_tool_use" => self.map_tool_use(b, out),
            k @ ("web_search_tool_result" | "advisor_tool_result") => {
                map_server_tool_result(k, b, out)
            }
            other => {
                let Some(raw) = raw else {
                    return Err(reject(format!("block `{other}` could not be kept whole")));
                };
                // An unknown block is kept whole under a custom type, and counted.
                self.counts.unknown(&format!("block:{other}"));
                let mut ev = EventBuf::new("claude_code.block");
                ev.raw("block", raw.get());
                out.emit(ev, Some("unknown_block"))
            }
        }
    }

    fn map_text(&mut self, b: &Block, out: &mut Out) -> Result<(), MapError> {
        let text = b.text.map_or("\"\"", |t| t.get());
        if is_blank_json_str(text) {
            // Claude Code writes "\n\n" blocks between others: nothing was said.
            out.pass_over();
            self.skip("blank text block");
            return Ok(());
        }
        let mut ev = EventBuf::new("agent.message");
        ev.text_content("content", text);
        out.emit(ev, Some("text"))
    }

    fn map_tool_use(&mut self, b: &Block, out: &mut Out) -> Result<(), MapError> {
        let id = b.id.as_deref().unwrap_or("");
        let name = b.name.as_deref().unwrap_or("");
        let input = b.input.map_or("{}", |i| i.get());
        let mcp = split_mcp(name);
        self.state
            .tools
            .insert(id.to_string(), mcp.map(|(s, _)| s.to_string()));
        if matches!(name, "Task" | "Agent") {
            self.note_task_prompt(id, b.input);
        }
        let mut ev = tool_use_event(name, mcp, input, id);
        if b.kind.as_deref() == Some("server_tool_use") {
            ev.meta_raw("server_tool", "true");
        }
        out.emit(ev, Some("tool_use"))
    }

    /// Opens a span for a new API response, or folds this line's usage into the open one.
    fn track_request(
        &mut self,
        line: &ClaudeLine,
        msg: &Message,
        out: &mut Out,
    ) -> Result<(), MapError> {
        let Some(message_id) = msg.id.as_deref() else {
            return Ok(());
        };
        let output_tokens = msg
            .usage
            .and_then(|u| serde_json::from_str::<Usage>(u.get()).ok())
            .and_then(|u| u.output_tokens)
            .unwrap_or(0);
        if let Some(open) = &mut self.state.open {
            if open.message_id == message_id {
                if let Some(u) = msg.usage {
                    if open.usage.as_ref().is_none_or(|(o, _)| output_tokens >= *o) {
                        open.usage = Some((output_tokens, u.get().to_string()));
                    }
                }
                open.timestamp = line
                    .timestamp
                    .as_deref()
                    .map(str::to_string)
                    .or(open.timestamp.take());
                return Ok(());
            }
        }
        // A response seen earlier and closed since (lines of one response split by others):
        // its span was written once; a second one would count its usage twice.
        if self.state.closed_requests.contains(message_id) {
            return Ok(());
        }
        let start_key = format!("{message_id}/start");
        let mut ev = EventBuf::new("span.model_request_start");
        out.emit_keyed(&mut ev, &start_key, Some("model_request"))?;
        self.state.open = Some(OpenRequest {
            message_id: message_id.to_string(),
            start_key,
            usage: msg.usage.map(|u| (output_tokens, u.get().to_string())),
            timestamp: line.timestamp.as_deref().map(str::to_string),
            thread: out.meta.thread.clone(),
        });
        Ok(())
    }

    /// Closes the open API response with its `span.model_request_end`, stamped with the time
    /// and thread of its last line.
    pub(super) fn close_request(&mut self, sink: &mut dyn EventSink) -> Result<(), MapError> {
        let Some(open) = self.state.open.take() else {
            return Ok(());
        };
        let usage = open.usage.as_ref().map_or("{}", |(_, u)| u.as_str());
        let mut ev = model_request_end(Some(&open.start_key), usage);
        let stamp = Stamp {
            timestamp: open.timestamp.as_deref(),
            inherited: false,
            thread: open.thread.as_deref(),
        };
        let key = format!("{}/end", open.message_id);
        envelope(&mut ev, SOURCE, &key, &stamp, Some("model_request"));
        ev.meta_str("message_id", &open.message_id);
        if open.thread.is_some() {
            ev.meta_str("parent_session_id", &self.state.session_id);
        }
        let text = ev.finish();
        sink.event(&self.state.session_id, &text)?;
        tonbo_core::event::recycle(text);
        self.state.closed_requests.insert(open.message_id);
        Ok(())
    }
}

/// The block types [`ClaudeMapper::map_block`] maps by their fields (others are kept whole).
pub(super) const KNOWN_BLOCKS: &[&str] = &[
    "text",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "server_tool_use",
    "web_search_tool_result",
    "advisor_tool_result",
];

/// A synthetic error notice Claude Code wrote as an `assistant` line: its text as the error's
/// message.
fn synthetic_error(
    content: Option<&RawValue>,
    blocks: &[Block],
    out: &mut Out,
) -> Result<(), MapError> {
    let text = blocks
        .iter()
        .filter_map(|b| b.text.and_then(as_str).map(Cow::into_owned))
        .collect::<Vec<_>>()
        .join("\n");
    let text = if text.is_empty() {
        content
            .and_then(as_str)
            .map(Cow::into_owned)
            .unwrap_or_default()
    } else {
        text
    };
    let ev = error_event("unknown_error", &text, "terminal");
    out.emit(ev, Some("api_error_message"))
}

/// Managed Agents' `agent.thinking` carries no content: the text is kept in an extension block,
/// the signature is dropped.
fn map_thinking(b: &Block, out: &mut Out) -> Result<(), MapError> {
    let thinking = b.thinking.map_or("\"\"", |t| t.get());
    if is_blank_json_str(thinking) {
        // Thinking whose text was withheld (only its signature is kept).
        return out.emit(thinking_event(None), Some("redacted_thinking"));
    }
    out.emit(thinking_event(Some(thinking)), Some("thinking"))
}

/// A server tool's result inside the reply (`web_search_tool_result`, `advisor_tool_result`).
fn map_server_tool_result(kind: &str, b: &Block, out: &mut Out) -> Result<(), MapError> {
    let id = b.tool_use_id.as_deref().unwrap_or("");
    let content = match b.content {
        Some(c) if is_str(c) => text_content(c.get()),
        Some(c) if c.get().starts_with('[') => normalize_result_blocks(c),
        Some(c) => text_content(&json_str(c.get())),
        None => "[]".to_string(),
    };
    let mut ev = tool_result_event(id, None, &content, false);
    ev.meta_str("block_type", kind);
    out.emit(ev, Some("tool_result"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_tool_names() {
        assert_eq!(
            split_mcp("mcp__github__search_issues"),
            Some(("github", "search_issues"))
        );
        assert_eq!(split_mcp("mcp__a__b__c"), Some(("a", "b__c")));
        assert_eq!(split_mcp("Bash"), None);
    }
}
