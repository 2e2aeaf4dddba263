//! Writes one Durable Sessions event as JSON text, splicing raw source values in unchanged.
//!
//! Mappings copy large values (tool output, base64 images, thinking text) from the source line
//! as raw JSON instead of decoding and re-encoding them. [`EventBuf`] builds one event;
//! [`crate::mapping::EventWriter`] stamps the envelope every source's events share. The events
//! and content blocks more than one source writes are built here, once, so that every source
//! writes them alike: text, thinking, tool calls and results, errors, turn ends, usage.

use std::borrow::Cow;

use serde_json::value::RawValue;

/// An event under construction: `{"type":..., fields..., "metadata":{...}}`.
pub struct EventBuf {
    buf: String,
    meta: String,
}

fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&json_str(s));
}

/// `s` as a JSON string literal.
pub fn json_str(s: &str) -> String {
    // serde_json escapes exactly as JSON requires; a str always serialises.
    serde_json::to_string(s).unwrap_or_default()
}

/// A raw JSON value's text, when it is a string.
pub fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<str>>(raw.get()).ok()
}

impl EventBuf {
    pub fn new(kind: &str) -> EventBuf {
        let mut buf = String::with_capacity(256);
        buf.push_str("{\"type\":");
        push_json_str(&mut buf, kind);
        EventBuf {
            buf,
            meta: String::with_capacity(256),
        }
    }

    fn key(out: &mut String, first: bool, k: &str) {
        if !first {
            out.push(',');
        }
        push_json_str(out, k);
        out.push(':');
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        Self::key(&mut self.buf, false, k);
        push_json_str(&mut self.buf, v);
        self
    }

    /// A field whose value is already JSON text (a raw source value, or built JSON).
    pub fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        Self::key(&mut self.buf, false, k);
        self.buf.push_str(json);
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.raw(k, if v { "true" } else { "false" })
    }

    pub fn meta_str(&mut self, k: &str, v: &str) -> &mut Self {
        let first = self.meta.is_empty();
        Self::key(&mut self.meta, first, k);
        push_json_str(&mut self.meta, v);
        self
    }

    pub fn meta_raw(&mut self, k: &str, json: &str) -> &mut Self {
        let first = self.meta.is_empty();
        Self::key(&mut self.meta, first, k);
        self.meta.push_str(json);
        self
    }

    pub fn meta_opt(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v {
            self.meta_str(k, v);
        }
        self
    }

    /// Closes the event and returns it as a raw JSON value.
    pub fn finish(&mut self) -> Box<RawValue> {
        let mut out = std::mem::take(&mut self.buf);
        out.push_str(",\"metadata\":{");
        out.push_str(&self.meta);
        out.push_str("}}");
        RawValue::from_string(out).expect("EventBuf writes valid JSON")
    }
}

/// `{"type":"text","text":<raw JSON string>}` from a raw JSON string value.
pub fn text_block(raw_string: &str) -> String {
    let mut s = String::with_capacity(raw_string.len() + 32);
    s.push_str("{\"type\":\"text\",\"text\":");
    s.push_str(raw_string);
    s.push('}');
    s
}

/// `[{"type":"text","text":<raw JSON string>}]` from a raw JSON string value.
pub fn text_content(raw_string: &str) -> String {
    format!("[{}]", text_block(raw_string))
}

/// Content blocks (raw JSON objects) as a JSON array.
pub fn blocks<S: std::borrow::Borrow<str>>(items: &[S]) -> String {
    format!("[{}]", items.join(","))
}

/// An `agent.thinking` of the thinking text `thinking` (a raw JSON string); `None` for thinking
/// that happened but whose text was not kept (withheld, encrypted): a `redacted` block.
pub fn thinking_event(thinking: Option<&str>) -> EventBuf {
    let mut ev = EventBuf::new("agent.thinking");
    match thinking {
        Some(t) => ev.raw(
            "content",
            &format!("[{{\"type\":\"thinking\",\"thinking\":{t}}}]"),
        ),
        None => ev.raw("content", "[{\"type\":\"redacted\"}]"),
    };
    ev
}

/// A tool call's `agent.tool_use`, or `agent.mcp_tool_use` when `mcp` names the MCP server and
/// tool `name` stands for; `input` is its input object (raw JSON), `metadata.tool_use_id` the
/// call's id.
pub fn tool_use_event(name: &str, mcp: Option<(&str, &str)>, input: &str, id: &str) -> EventBuf {
    let mut ev = match mcp {
        Some((server, tool)) => {
            let mut ev = EventBuf::new("agent.mcp_tool_use");
            ev.str("name", tool).str("mcp_server_name", server);
            ev
        }
        None => {
            let mut ev = EventBuf::new("agent.tool_use");
            ev.str("name", name);
            ev
        }
    };
    ev.raw("input", input);
    ev.meta_str("tool_use_id", id);
    ev
}

/// The result of the call `id`: `agent.tool_result`, or `agent.mcp_tool_result` for a tool of
/// the MCP server `mcp_server`; `content` is its content blocks (raw JSON).
pub fn tool_result_event(
    id: &str,
    mcp_server: Option<&str>,
    content: &str,
    is_error: bool,
) -> EventBuf {
    let mut ev = match mcp_server {
        Some(server) => {
            let mut ev = EventBuf::new("agent.mcp_tool_result");
            ev.str("mcp_tool_use_id", id);
            ev.meta_str("mcp_server_name", server);
            ev
        }
        None => {
            let mut ev = EventBuf::new("agent.tool_result");
            ev.str("tool_use_id", id);
            ev
        }
    };
    ev.raw("content", content).bool("is_error", is_error);
    ev.meta_str("tool_use_id", id);
    ev
}

/// A `session.error` of the error type `kind` whose `retry_status` is `retry` (`retrying`,
/// `exhausted`, `terminal`).
pub fn error_event(kind: &str, message: &str, retry: &str) -> EventBuf {
    let error = serde_json::json!({
        "type": kind,
        "message": message,
        "retry_status": {"type": retry}
    });
    let mut ev = EventBuf::new("session.error");
    ev.raw("error", &error.to_string());
    ev
}

/// A `session.status_idle` ending the turn.
pub fn turn_end_event() -> EventBuf {
    let mut ev = EventBuf::new("session.status_idle");
    ev.raw("stop_reason", "{\"type\":\"end_turn\"}");
    ev
}

/// A `span.model_request_end` with its usage (a raw JSON object) and the key of its
/// `span.model_request_start`, when there is one (else null).
pub fn model_request_end(start_id: Option<&str>, usage: &str) -> EventBuf {
    let mut ev = EventBuf::new("span.model_request_end");
    match start_id {
        Some(id) => ev.str("model_request_start_id", id),
        None => ev.raw("model_request_start_id", "null"),
    };
    ev.bool("is_error", false).raw("model_usage", usage);
    ev
}

/// Whether a raw JSON string value holds only whitespace (or nothing). Stops at the first
/// character that is not whitespace, so text costs a byte or two; escapes other than `\n`,
/// `\t`, `\r` and non-ASCII text are decoded to be sure.
pub fn is_blank_json_str(raw: &str) -> bool {
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return false;
    };
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'\\' if matches!(bytes.get(i + 1), Some(b'n' | b't' | b'r')) => i += 2,
            b'\\' | 0x80.. => {
                return serde_json::from_str::<std::borrow::Cow<str>>(raw)
                    .is_ok_and(|s| s.trim().is_empty())
            }
            _ => return false,
        }
    }
    true
}

/// A stable key for lines that carry no id of their own (FNV-1a, shared with the other stages).
pub use crate::contract::stable_hash as fnv64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_valid_json_with_raw_parts() {
        let mut e = EventBuf::new("agent.message");
        e.raw("content", &text_content(r#""a \"quoted\" é""#))
            .bool("is_error", false);
        e.meta_str("source", "claude-code")
            .meta_opt("model", None)
            .meta_raw("n", "1.50");
        let raw = e.finish();
        let v: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(v["content"][0]["text"], "a \"quoted\" é");
        assert_eq!(v["metadata"]["source"], "claude-code");
        assert!(raw.get().ends_with(r#""n":1.50}}"#));
        assert_eq!(fnv64(b"a"), 0xaf63dc4c8601ec8c);
    }

    fn text(mut ev: EventBuf) -> String {
        ev.finish().get().to_string()
    }

    #[test]
    fn the_events_every_source_writes_alike() {
        assert_eq!(
            text(tool_use_event("Bash", None, "{}", "t1")),
            r#"{"type":"agent.tool_use","name":"Bash","input":{},"metadata":{"tool_use_id":"t1"}}"#
        );
        assert_eq!(
            text(tool_use_event(
                "mcp__gh__search",
                Some(("gh", "search")),
                "{}",
                "t1"
            )),
            r#"{"type":"agent.mcp_tool_use","name":"search","mcp_server_name":"gh","input":{},"metadata":{"tool_use_id":"t1"}}"#
        );
        assert_eq!(
            text(tool_result_event("t1", None, "[]", true)),
            r#"{"type":"agent.tool_result","tool_use_id":"t1","content":[],"is_error":true,"metadata":{"tool_use_id":"t1"}}"#
        );
        assert_eq!(
            text(tool_result_event("t1", Some("gh"), "[]", false)),
            r#"{"type":"agent.mcp_tool_result","mcp_tool_use_id":"t1","content":[],"is_error":false,"metadata":{"mcp_server_name":"gh","tool_use_id":"t1"}}"#
        );
        assert_eq!(
            text(thinking_event(Some(r#""hm""#))),
            r#"{"type":"agent.thinking","content":[{"type":"thinking","thinking":"hm"}],"metadata":{}}"#
        );
        assert_eq!(
            text(thinking_event(None)),
            r#"{"type":"agent.thinking","content":[{"type":"redacted"}],"metadata":{}}"#
        );
        assert_eq!(
            text(error_event("unknown_error", "boom", "terminal")),
            r#"{"type":"session.error","error":{"message":"boom","retry_status":{"type":"terminal"},"type":"unknown_error"},"metadata":{}}"#
        );
        assert_eq!(
            text(turn_end_event()),
            r#"{"type":"session.status_idle","stop_reason":{"type":"end_turn"},"metadata":{}}"#
        );
        assert_eq!(
            text(model_request_end(Some("m/start"), "{}")),
            r#"{"type":"span.model_request_end","model_request_start_id":"m/start","is_error":false,"model_usage":{},"metadata":{}}"#
        );
        assert_eq!(
            text(model_request_end(None, "{}")),
            r#"{"type":"span.model_request_end","model_request_start_id":null,"is_error":false,"model_usage":{},"metadata":{}}"#
        );
        assert_eq!(
            blocks(&[text_block(&json_str("a\"b")), "{}".to_string()]),
            r#"[{"type":"text","text":"a\"b"},{}]"#
        );
        assert_eq!(
            as_str(&RawValue::from_string(r#""\u0041""#.into()).unwrap()).as_deref(),
            Some("A")
        );
        assert_eq!(as_str(&RawValue::from_string("1".into()).unwrap()), None);
    }

    #[test]
    fn blank_strings() {
        for blank in [
            r#""""#,
            r#"" ""#,
            r#""\n\n""#,
            r#"" \t\r\n ""#,
            r#""\u0020\u3000""#,
            "\"\u{3000}\"",
        ] {
            assert!(is_blank_json_str(blank), "{blank}");
        }
        for text in [r#""a""#, r#""\n\nx""#, r#""\u0041""#, r#""é""#, "null", "1"] {
            assert!(!is_blank_json_str(text), "{text}");
        }
    }
}
