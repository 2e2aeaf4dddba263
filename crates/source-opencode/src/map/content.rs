//! The pieces every layout's mapping builds events from: times, content blocks, tool calls and
//! results, and [`Msg`], the events of one record with the envelope every event carries.

use serde_json::Value;
use tonbo_core::event::EventBuf;
use tonbo_core::mapping::{EventSink, EventWriter, MapError, Stamp};

use crate::SOURCE;

/// One record's events, numbered for their keys (`<key base>#<n>`), each stamped with the
/// record's time unless it has its own, its session's thread, and the session's metadata.
pub(crate) struct Msg<'a> {
    writer: EventWriter<'a>,
    /// The record's time: an event without a time of its own takes it.
    pub timestamp: Option<String>,
    /// A sub-agent's session: every event names its thread (the session itself).
    thread: Option<String>,
    /// Metadata every event of the record carries after the envelope's (raw JSON values).
    meta: Vec<(&'static str, String)>,
}

impl<'a> Msg<'a> {
    pub fn new(
        sink: &'a mut dyn EventSink,
        session_id: &'a str,
        key_base: String,
        timestamp: Option<String>,
        thread: Option<String>,
        meta: Vec<(&'static str, String)>,
    ) -> Msg<'a> {
        Msg {
            writer: EventWriter::new(sink, SOURCE, session_id, key_base),
            timestamp,
            thread,
            meta,
        }
    }

    /// Passes over the record's next event (blank text) but keeps its number, so that the
    /// keys of the events after it are what they always were.
    pub fn pass_over(&mut self) {
        self.writer.pass_over();
    }

    /// How many events were written.
    pub fn emitted(&self) -> usize {
        self.writer.emitted()
    }

    /// Writes `ev` as the record's next event; `at` is its own time, if it has one.
    pub fn emit(
        &mut self,
        mut ev: EventBuf,
        kind: &str,
        at: Option<String>,
    ) -> Result<(), MapError> {
        let timestamp = at.or_else(|| self.timestamp.clone());
        let stamp = Stamp {
            timestamp: timestamp.as_deref(),
            inherited: false,
            thread: self.thread.as_deref(),
        };
        let meta = &self.meta;
        self.writer.emit(&mut ev, &stamp, Some(kind), |ev| {
            for (k, v) in meta {
                ev.meta_raw(k, v);
            }
        })
    }
}

/// RFC 3339 UTC from unix milliseconds.
pub fn rfc3339_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A timestamp field in seconds (Go lineage) or milliseconds (TypeScript), told apart by
/// magnitude (FORMAT.md, "Stores"): anything below 10^11 is seconds (before the year 5138).
pub fn timestamp(v: &Value) -> Option<String> {
    let n = v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))?;
    if n <= 0 {
        return None;
    }
    Some(rfc3339_millis(if n < 100_000_000_000 {
        n * 1000
    } else {
        n
    }))
}

/// The string `k` of an object.
pub fn s<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}

/// The time `k` of the `time` object of `v`.
pub fn time_of(v: &Value, k: &str) -> Option<String> {
    v.get("time").and_then(|t| t.get(k)).and_then(timestamp)
}

/// A JSON string literal.
pub fn json_str(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

pub fn text_block(text: &str) -> String {
    format!("{{\"type\":\"text\",\"text\":{}}}", json_str(text))
}

/// A `data:` URL or other URL as an image or document block.
pub fn url_block(url: &str, mime: Option<&str>, filename: Option<&str>) -> String {
    if let Some((media, data)) = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"))
    {
        let kind = if media.starts_with("image/") {
            "image"
        } else {
            "document"
        };
        let mut b = format!(
            "{{\"type\":\"{kind}\",\"source\":{{\"type\":\"base64\",\"media_type\":{},\"data\":{}}}",
            json_str(media),
            json_str(data)
        );
        if let (Some(f), "document") = (filename, kind) {
            b.push_str(&format!(",\"title\":{}", json_str(f)));
        }
        b.push('}');
        return b;
    }
    let kind = if mime.is_some_and(|m| m.starts_with("image/")) {
        "image"
    } else {
        "document"
    };
    format!(
        "{{\"type\":\"{kind}\",\"source\":{{\"type\":\"url\",\"url\":{}}}}}",
        json_str(url)
    )
}

pub fn blocks(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// An event whose content is one text block.
pub fn text_event(kind: &str, text: &str) -> EventBuf {
    let mut ev = EventBuf::new(kind);
    ev.raw("content", &blocks(&[text_block(text)]));
    ev
}

/// An `agent.thinking` event of reasoning text; blank text (reasoning that happened but whose
/// text was not kept, e.g. encrypted) is a `redacted` block.
pub fn thinking_event(text: &str) -> EventBuf {
    let mut ev = EventBuf::new("agent.thinking");
    if text.trim().is_empty() {
        ev.raw("content", "[{\"type\":\"redacted\"}]");
    } else {
        ev.raw(
            "content",
            &format!(
                "[{{\"type\":\"thinking\",\"thinking\":{}}}]",
                json_str(text)
            ),
        );
    }
    ev
}

/// An `agent.tool_use` of `name` called as `call`, with its input object (raw JSON).
pub fn tool_use_event(name: &str, input: &str, call: &str) -> EventBuf {
    let mut ev = EventBuf::new("agent.tool_use");
    ev.str("name", name).raw("input", input);
    ev.meta_str("tool_use_id", call);
    ev
}

/// The `agent.tool_result` of the call `call`, with its content blocks (raw JSON).
pub fn tool_result_event(call: &str, content: &str, is_error: bool) -> EventBuf {
    let mut ev = EventBuf::new("agent.tool_result");
    ev.str("tool_use_id", call)
        .raw("content", content)
        .bool("is_error", is_error);
    ev.meta_str("tool_use_id", call);
    ev
}

/// A TypeScript or OpenCode 2 tool state's `input`, when it is an object; else `{}`.
pub fn tool_input(state: &Value) -> String {
    state
        .get("input")
        .filter(|i| i.is_object())
        .map_or("{}".to_string(), Value::to_string)
}

/// An error as text: a string as it is, anything else as JSON.
pub fn error_text(e: &Value) -> String {
    e.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string())
}

/// A `span.model_request_end` with the usage of `tokens` (`input`, `output`, `cache.read`,
/// `cache.write`) and the step's `cost`.
pub fn usage_event(tokens: &Value, cost: Option<&Value>) -> EventBuf {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let cache = tokens.get("cache");
    let usage = serde_json::json!({
        "input_tokens": n(tokens.get("input")),
        "output_tokens": n(tokens.get("output")),
        "cache_read_input_tokens": n(cache.and_then(|c| c.get("read"))),
        "cache_creation_input_tokens": n(cache.and_then(|c| c.get("write"))),
    });
    let mut ev = EventBuf::new("span.model_request_end");
    ev.raw("model_request_start_id", "null")
        .bool("is_error", false)
        .raw("model_usage", &usage.to_string());
    if let Some(c) = cost {
        ev.meta_raw("cost", &c.to_string());
    }
    ev
}

/// A `session.error` of the error type `kind` (`retry`: whether it is tried again).
pub fn error_event(kind: &str, message: &str, retry: bool) -> EventBuf {
    let error = serde_json::json!({
        "type": kind,
        "message": message,
        "retry_status": {"type": if retry { "retrying" } else { "terminal" }}
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

/// A part, content item or row the mapping does not know, kept whole as `field`.
pub fn unknown_event(kind: &str, field: &str, value: &Value) -> EventBuf {
    let mut ev = EventBuf::new(kind);
    ev.raw(field, &value.to_string());
    ev
}

/// A command a person ran (`!cmd`): the command as a `user.message`, its output as a
/// `system.message` after it.
pub fn emit_shell(m: &mut Msg, command: &str, output: &str) -> Result<(), MapError> {
    let mut ev = text_event("user.message", command);
    ev.meta_str("author", "human");
    m.emit(ev, "bash_input", None)?;
    m.emit(text_event("system.message", output), "bash_output", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_771_000_000_123),
            "2026-02-13T16:26:40.123Z"
        );
        assert_eq!(
            timestamp(&serde_json::json!(1751360000)).unwrap(),
            "2025-07-01T08:53:20.000Z"
        );
        assert_eq!(
            timestamp(&serde_json::json!(1751360000123i64)).unwrap(),
            "2025-07-01T08:53:20.123Z"
        );
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn urls_as_blocks() {
        assert_eq!(
            url_block("data:image/png;base64,AAA", None, Some("a.png")),
            r#"{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAA"}}"#
        );
        assert_eq!(
            url_block("data:application/pdf;base64,AAA", None, Some("a.pdf")),
            r#"{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"AAA"},"title":"a.pdf"}"#
        );
        assert_eq!(
            url_block("file:///a.txt", Some("text/plain"), None),
            r#"{"type":"document","source":{"type":"url","url":"file:///a.txt"}}"#
        );
    }
}
