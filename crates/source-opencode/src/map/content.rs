//! The pieces every layout's mapping builds events from: times, content blocks, tool calls and
//! results, and [`Msg`], the events of one record with the envelope every event carries.

use serde_json::Value;
use tonbo_core::event::{self, blocks, json_str, EventBuf};
use tonbo_core::mapping::{EventSink, EventWriter, MapError, Stamp};
use tonbo_core::time::rfc3339_millis;

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

/// A text block of `text`.
pub fn text_block(text: &str) -> String {
    event::text_block(&json_str(text))
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

/// An event whose content is one text block.
pub fn text_event(kind: &str, text: &str) -> EventBuf {
    let mut ev = EventBuf::new(kind);
    ev.raw("content", &blocks(&[text_block(text)]));
    ev
}

/// An `agent.thinking` event of reasoning text; blank text (reasoning that happened but whose
/// text was not kept, e.g. encrypted) is a `redacted` block.
pub fn thinking_event(text: &str) -> EventBuf {
    let thinking = (!text.trim().is_empty()).then(|| json_str(text));
    event::thinking_event(thinking.as_deref())
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
    let mut ev = event::model_request_end(None, &usage.to_string());
    if let Some(c) = cost {
        ev.meta_raw("cost", &c.to_string());
    }
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
        assert_eq!(
            timestamp(&serde_json::json!(1751360000)).unwrap(),
            "2025-07-01T08:53:20.000Z"
        );
        assert_eq!(
            timestamp(&serde_json::json!(1751360000123i64)).unwrap(),
            "2025-07-01T08:53:20.123Z"
        );
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
