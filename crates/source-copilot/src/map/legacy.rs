//! Legacy documents (Copilot CLI before 0.0.342): the session record (`sessionId`,
//! `startTime`, ...) and OpenAI-style chat messages `{role, content, tool_calls,
//! tool_call_id, name}` (FORMAT.md, "Legacy documents"). Messages have no time of their own:
//! their events carry the session's `startTime`, said to be inherited.

use serde_json::Value;
use tonbo_core::event::{json_str, text_content, tool_result_event, tool_use_event, EventBuf};
use tonbo_core::mapping::MapError;

use super::{CopilotMapper, Line};

/// A message's text: a string, or the texts of its parts.
fn text_of(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

impl CopilotMapper {
    pub(super) fn legacy_session(&mut self, raw: &str) {
        let d: Value = serde_json::from_str(raw).unwrap_or_default();
        if let Some(t) = d["startTime"].as_str() {
            self.state.last_timestamp = t.to_string();
        }
        if let Some(m) = d["selectedModel"].as_str() {
            self.state.model = Some(m.to_string());
        }
        self.counts.skip("legacy session");
    }

    pub(super) fn legacy_message(&mut self, raw: &str, line: &mut Line) -> Result<(), MapError> {
        let m: Value = serde_json::from_str(raw)
            .map_err(|e| MapError::Reject(format!("not a chat message: {e}")))?;
        let text = text_of(&m["content"]).filter(|t| !t.trim().is_empty());
        match m["role"].as_str().unwrap_or("") {
            "user" => {
                let mut ev = EventBuf::new("user.message");
                ev.raw(
                    "content",
                    &text_content(&json_str(text.as_deref().unwrap_or(""))),
                );
                ev.meta_str("author", "human");
                self.emit(ev, "prompt", line)
            }
            "assistant" => self.legacy_assistant(&m, text, line),
            "tool" => self.legacy_tool(&m, text, line),
            "system" | "developer" => {
                let mut ev = EventBuf::new("system.message");
                ev.raw(
                    "content",
                    &text_content(&json_str(text.as_deref().unwrap_or(""))),
                );
                self.emit(ev, m["role"].as_str().unwrap_or("system"), line)
            }
            other => {
                self.counts.unknown(&format!("legacy role {other}"));
                Ok(())
            }
        }
    }

    fn legacy_assistant(
        &mut self,
        m: &Value,
        text: Option<String>,
        line: &mut Line,
    ) -> Result<(), MapError> {
        match text {
            Some(t) => {
                let mut ev = EventBuf::new("agent.message");
                ev.text_content("content", &json_str(&t));
                self.emit(ev, "assistant_message", line)?;
            }
            None => line.out.pass_over(),
        }
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            let id = call["id"]
                .as_str()
                .map_or_else(|| line.out.next_key(), str::to_string);
            let f = &call["function"];
            let name = f["name"].as_str().unwrap_or("unknown");
            // OpenAI's `arguments` is a JSON string; kept as it is when it is not JSON.
            let input = match f["arguments"].as_str().map(serde_json::from_str::<Value>) {
                Some(Ok(v @ Value::Object(_))) => v.to_string(),
                Some(_) => serde_json::json!({ "input": f["arguments"] }).to_string(),
                None => "{}".to_string(),
            };
            self.state.open_calls.push(id.clone());
            self.state.calls.insert(id.clone(), None);
            let ev = tool_use_event(name, None, &input, &id);
            self.emit(ev, "tool_use", line)?;
        }
        Ok(())
    }

    /// A tool's output: paired by `tool_call_id`, else with the oldest call still open.
    fn legacy_tool(
        &mut self,
        m: &Value,
        text: Option<String>,
        line: &mut Line,
    ) -> Result<(), MapError> {
        let open = &mut self.state.open_calls;
        let id = match m["tool_call_id"].as_str() {
            Some(id) => {
                open.retain(|c| c != id);
                id.to_string()
            }
            None if !open.is_empty() => open.remove(0),
            None => {
                self.counts.skip("legacy tool output without a call");
                return Ok(());
            }
        };
        let content = text_content(&json_str(text.as_deref().unwrap_or("")));
        let mut ev = tool_result_event(&id, None, &content, false);
        ev.meta_opt("tool_name", m["name"].as_str());
        self.emit(ev, "tool_result", line)
    }
}
