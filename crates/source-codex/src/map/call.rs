//! Tool calls (`function_call`, `custom_tool_call`, `local_shell_call`, `web_search_call`,
//! `tool_search_call`, `image_generation_call`) and the results paired with them.

use serde_json::value::RawValue;
use tonbo_core::event::{tool_result_event, tool_use_event, EventBuf};
use tonbo_core::mapping::MapError;

use super::content::{as_str, json_str, split_mcp};
use super::item::Item;
use super::{CodexMapper, Line};

/// A call's tool name, its `input`, and its arguments as written when they are not JSON.
struct Call {
    name: String,
    input: String,
    raw_arguments: Option<String>,
}

impl Call {
    fn of(kind: &str, item: &Item) -> Call {
        let raw = |v: Option<&RawValue>, none: &str| v.map_or(none.to_string(), |v| v.get().into());
        let (name, input) = match kind {
            "function_call" => return Call::function(item),
            "custom_tool_call" => (
                item.name.as_deref().unwrap_or("").to_string(),
                format!("{{\"input\":{}}}", raw(item.input, "null")),
            ),
            "local_shell_call" => ("local_shell".into(), raw(item.action, "{}")),
            "web_search_call" => ("web_search".into(), raw(item.action, "{}")),
            "tool_search_call" => (
                "tool_search".into(),
                format!(
                    "{{\"arguments\":{},\"execution\":{}}}",
                    raw(item.arguments, "null"),
                    raw(item.execution, "null")
                ),
            ),
            _ => (
                "image_generation".into(),
                format!(
                    "{{\"revised_prompt\":{}}}",
                    raw(item.revised_prompt, "null")
                ),
            ),
        };
        Call {
            name,
            input,
            raw_arguments: None,
        }
    }

    /// A `function_call`: `arguments` is a JSON string, parsed into `input` (an object; any
    /// other JSON as `{"arguments": ...}`; not JSON: `{}`, and the string kept as it was).
    fn function(item: &Item) -> Call {
        let name = item.name.as_deref().unwrap_or("").to_string();
        let args = item.arguments.and_then(as_str);
        let (input, raw_arguments) = match args.as_deref() {
            Some(a) => match serde_json::from_str::<&RawValue>(a) {
                Ok(v) if v.get().starts_with('{') => (v.get().to_string(), None),
                Ok(v) => (format!("{{\"arguments\":{}}}", v.get()), None),
                Err(_) => ("{}".into(), Some(a.to_string())),
            },
            None => (
                item.arguments.map_or("{}".into(), |a| a.get().to_string()),
                None,
            ),
        };
        Call {
            name,
            input,
            raw_arguments,
        }
    }
}

impl CodexMapper {
    pub(super) fn map_call(
        &mut self,
        kind: &str,
        item: &Item,
        line: &mut Line,
    ) -> Result<(), MapError> {
        let call_id = item
            .call_id
            .as_deref()
            .or(item.id.as_deref())
            .unwrap_or(line.key_base)
            .to_string();
        let call = Call::of(kind, item);
        let mcp = split_mcp(&call.name);
        self.state
            .calls
            .insert(call_id.clone(), mcp.map(|(s, _)| s.to_string()));
        if call.name == "spawn_agent" {
            self.state.spawn_calls.insert(call_id.clone());
        }
        let mut ev = tool_use_event(&call.name, mcp, &call.input, &call_id);
        ev.meta_str("call_type", kind);
        ev.meta_opt("namespace", item.namespace.as_deref())
            .meta_opt("status", item.status.as_deref())
            // Not JSON: kept as it was written.
            .meta_opt("raw_arguments", call.raw_arguments.as_deref());
        self.emit(ev, Some("tool_use"), line)?;
        // An image generation carries its result in the same item.
        if kind == "image_generation_call" {
            if let Some(r) = item.result.and_then(as_str) {
                let content = format!(
                    "[{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":{}}}}}]",
                    json_str(&r)
                );
                self.result_event(&call_id, &content, false, line)?;
            }
        }
        Ok(())
    }

    pub(super) fn result_event(
        &mut self,
        call_id: &str,
        content: &str,
        is_error: bool,
        line: &mut Line,
    ) -> Result<(), MapError> {
        let ev = self.result_buf(call_id, content, is_error);
        self.emit(ev, Some("tool_result"), line)
    }

    /// A tool's result event, paired with its call by `call_id`.
    pub(super) fn result_buf(&self, call_id: &str, content: &str, is_error: bool) -> EventBuf {
        let mcp = self.state.calls.get(call_id).and_then(Option::as_deref);
        tool_result_event(call_id, mcp, content, is_error)
    }
}
