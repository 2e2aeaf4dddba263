//! Writes one Durable Sessions event as JSON text, splicing raw source values in unchanged.
//!
//! Mappings copy large values (tool output, base64 images, thinking text) from the source line
//! as raw JSON instead of decoding and re-encoding them. [`EventBuf`] builds one event;
//! [`crate::mapping::EventWriter`] stamps the envelope every source's events share. The events
//! and content blocks more than one source writes are built here, once, so that every source
//! writes them alike: text, thinking, tool calls and results, errors, turn ends, usage.

use std::borrow::Cow;
use std::cell::RefCell;

use serde_json::value::RawValue;

/// An event under construction: `{"type":..., fields..., "metadata":{...}}`.
pub struct EventBuf {
    buf: String,
    meta: String,
}

/// Bytes a JSON string literal escapes: `"`, `\\` and the control characters.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Appends `s` as a JSON string literal, escaped as serde_json escapes it (`"`, `\\`, control
/// characters; the rest as UTF-8). Written in place, runs without escapes copied whole: keys,
/// ids and paths are most of an event's strings, and a `String` per string was a tenth of
/// tonbo-map's time.
pub fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(at) = first_escape(&bytes[start..]) {
        let i = start + at;
        out.push_str(&s[start..i]);
        match bytes[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The index of the first byte of `b` that a JSON string escapes. Eight bytes at a time: ids,
/// paths and text rarely hold one.
fn first_escape(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut skipped = 0;
    for chunk in b.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte below 0x20, or equal to `"` or `\`, in the word (bytes of 0x80 and up never
        // count: their high bit is set in x).
        let hit = (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')));
        if hit != 0 {
            break;
        }
        skipped += 8;
    }
    b[skipped..]
        .iter()
        .position(|&c| NEEDS_ESCAPE[usize::from(c)])
        .map(|at| skipped + at)
}

/// `s` as a JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::new();
    push_json_str(&mut out, s);
    out
}

/// A raw JSON value's text, when it is a string. Borrowed from the raw text when it holds no
/// escape (most text does), so a look at a prompt or a block's type costs no decode. The
/// backslash is looked for with `memchr` (SIMD; `str::contains` reads a word at a time, a
/// twentieth of tonbo-map's time on long tool output).
pub fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        // A raw value is valid JSON: without a backslash, a string's text is its value.
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<Cow<str>>(text).ok()
}

/// Whether a raw JSON value is a string (its text is not looked at).
pub fn is_str(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}

thread_local! {
    /// Buffers of events already written, for the next ones: once a few events are in flight,
    /// building one allocates nothing (allocation was a tenth of tonbo-map's time).
    static SPARE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Spare buffers kept, and the largest kept (a buffer grown by a huge event is let go).
const SPARE_KEPT: usize = 8;
const SPARE_MAX_BYTES: usize = 1 << 20;

fn spare_buffer() -> String {
    SPARE
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| String::with_capacity(256))
}

/// Gives an event's text back once it is written, for [`EventBuf::new`] to reuse.
pub fn recycle(mut text: String) {
    if text.capacity() > SPARE_MAX_BYTES {
        return;
    }
    text.clear();
    SPARE.with(|s| {
        let mut spare = s.borrow_mut();
        if spare.len() < SPARE_KEPT {
            spare.push(text);
        }
    });
}

impl EventBuf {
    pub fn new(kind: &str) -> EventBuf {
        let mut buf = spare_buffer();
        buf.push_str("{\"type\":");
        push_json_str(&mut buf, kind);
        EventBuf {
            buf,
            meta: spare_buffer(),
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

    /// A field whose value is the JSON text `parts` make together, written in place (no
    /// `String` made of them first: a thinking text was copied twice).
    pub fn raw_parts(&mut self, k: &str, parts: &[&str]) -> &mut Self {
        Self::key(&mut self.buf, false, k);
        for part in parts {
            self.buf.push_str(part);
        }
        self
    }

    /// A field holding one text block of the raw JSON string `raw_string`
    /// (`[{"type":"text","text":..}]`), written in place.
    pub fn text_content(&mut self, k: &str, raw_string: &str) -> &mut Self {
        Self::key(&mut self.buf, false, k);
        self.buf.push('[');
        push_text_block(&mut self.buf, raw_string);
        self.buf.push(']');
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

    /// Closes the event and returns its JSON text. Not parsed again to check it: every part is
    /// either escaped here or a raw value that was parsed from valid JSON (the tests below and
    /// every mapping's tests parse what it writes).
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.buf);
        out.reserve(self.meta.len() + 16);
        out.push_str(",\"metadata\":{");
        out.push_str(&self.meta);
        out.push_str("}}");
        recycle(std::mem::take(&mut self.meta));
        out
    }
}

/// `{"type":"text","text":<raw JSON string>}` from a raw JSON string value.
pub fn text_block(raw_string: &str) -> String {
    let mut s = String::with_capacity(raw_string.len() + 24);
    push_text_block(&mut s, raw_string);
    s
}

fn push_text_block(out: &mut String, raw_string: &str) {
    out.push_str("{\"type\":\"text\",\"text\":");
    out.push_str(raw_string);
    out.push('}');
}

/// `[{"type":"text","text":<raw JSON string>}]` from a raw JSON string value.
pub fn text_content(raw_string: &str) -> String {
    let mut s = String::with_capacity(raw_string.len() + 26);
    s.push('[');
    push_text_block(&mut s, raw_string);
    s.push(']');
    s
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
        Some(t) => ev.raw_parts(
            "content",
            &["[{\"type\":\"thinking\",\"thinking\":", t, "}]"],
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
    let mut ev = tool_result_head(id, mcp_server);
    ev.raw("content", content).bool("is_error", is_error);
    ev.meta_str("tool_use_id", id);
    ev
}

/// What `tool_result_event(id, mcp_server, &text_content(raw_string), is_error)` writes, the
/// one text block (the raw JSON string `raw_string`) written in place.
pub fn tool_result_text_event(
    id: &str,
    mcp_server: Option<&str>,
    raw_string: &str,
    is_error: bool,
) -> EventBuf {
    let mut ev = tool_result_head(id, mcp_server);
    ev.text_content("content", raw_string)
        .bool("is_error", is_error);
    ev.meta_str("tool_use_id", id);
    ev
}

/// A tool result's type and the call it answers, before its content.
fn tool_result_head(id: &str, mcp_server: Option<&str>) -> EventBuf {
    match mcp_server {
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
    }
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
        e.text_content("content", r#""a \"quoted\" é""#)
            .bool("is_error", false);
        e.meta_str("source", "claude-code")
            .meta_opt("model", None)
            .meta_raw("n", "1.50");
        let raw = e.finish();
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v["content"][0]["text"], "a \"quoted\" é");
        assert_eq!(v["metadata"]["source"], "claude-code");
        assert!(raw.ends_with(r#""n":1.50}}"#));
        assert_eq!(fnv64(b"a"), 0xaf63dc4c8601ec8c);
    }

    fn text(mut ev: EventBuf) -> String {
        ev.finish()
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
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all: String = (0u8..0x80).map(char::from).collect();
        let mut cases = vec![
            String::new(),
            "plain".into(),
            "a\"b\\c".into(),
            "é — 日本 😀".into(),
            "\u{7f}\u{2028}".into(),
            all.clone(),
        ];
        // Every escaped byte at every place of a word, after long runs without one.
        for c in (0u8..0x20).chain([b'"', b'\\']) {
            for at in 0..20 {
                let mut s = "é0123456789abcdefghij".to_string();
                s.insert(at + 2, char::from(c));
                cases.push(s);
            }
        }
        for s in &cases {
            assert_eq!(json_str(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn a_string_is_read_borrowed_unless_escaped() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        let plain = raw(r#""no escapes, é""#);
        assert!(matches!(
            as_str(&plain),
            Some(Cow::Borrowed("no escapes, é"))
        ));
        assert_eq!(as_str(&raw(r#""a\nb\"""#)).as_deref(), Some("a\nb\""));
        assert_eq!(as_str(&raw(r#"{"a":"b"}"#)), None);
        assert!(is_str(&plain) && !is_str(&raw("[]")));
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
