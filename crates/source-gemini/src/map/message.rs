//! A message record read into what its events need in one parse of its text, with the
//! mapping's reading of each field as a `serde_json::Value` (a field of the wrong type reads as
//! absent): the fields that are only looked at stay raw, the content, thoughts and tool calls
//! become `Value`s, taken apart by value so that their text is not copied again.
//!
//! A `Value` keeps the last of an object's duplicate keys, where the typed parse refuses the
//! record: [`Message::read`] then reads it from its `Value`'s text.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tonbo_core::event::as_str;

/// A message record's fields: raw where they are only looked at.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMessage<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    content: Option<Value>,
    #[serde(rename = "displayContent")]
    display_content: Option<Value>,
    thoughts: Option<Value>,
    #[serde(rename = "toolCalls")]
    tool_calls: Option<Value>,
    #[serde(borrow)]
    tokens: Option<&'a RawValue>,
}

/// A thought of a model turn.
pub(super) struct Thought {
    pub subject: String,
    pub description: String,
    pub timestamp: Option<String>,
}

/// A tool call of a model turn.
pub(super) struct Call {
    pub id: Option<String>,
    pub name: Option<String>,
    /// `args` as JSON text; `{}` when there are none.
    pub args: String,
    pub agent_id: Option<String>,
    pub timestamp: Option<String>,
    pub status: String,
    /// What the tool returned as text, for a call that is done.
    pub result: Option<String>,
}

/// What a message record's events need.
pub(super) struct Message<'a> {
    pub id: Option<Cow<'a, str>>,
    pub timestamp: Option<Cow<'a, str>>,
    pub kind: Cow<'a, str>,
    pub model: Option<Cow<'a, str>>,
    /// The text of `content`.
    pub text: String,
    /// The text of `displayContent`, when there is one.
    pub shown: Option<String>,
    pub thoughts: Vec<Thought>,
    pub calls: Vec<Call>,
    /// `tokens`, when it is an object.
    pub tokens: Option<Value>,
}

/// The statuses after which a tool call has its result.
const DONE: &[&str] = &["success", "error", "cancelled"];

/// A raw value's string; `None` for any other value.
fn string_of(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    raw.and_then(as_str)
}

/// An object's field that is a string, taken out of it.
fn take_str(o: &mut Map<String, Value>, key: &str) -> Option<String> {
    match o.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// The text of a `PartListUnion`: a string, a Part, or an array of strings and Parts; the
/// `text` of each text Part that is not a thought, concatenated.
pub(super) fn parts_text(v: Value) -> String {
    match v {
        Value::String(t) => t,
        Value::Array(parts) => parts.into_iter().map(parts_text).collect(),
        Value::Object(mut p) if p.get("thought").and_then(Value::as_bool) != Some(true) => {
            take_str(&mut p, "text").unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// What a tool returned, as text: each Part's text, or a `functionResponse`'s `output` (else
/// `error`, else its whole `response` as JSON).
pub(super) fn result_text(v: Value) -> String {
    match v {
        Value::Array(parts) => parts
            .into_iter()
            .map(result_text)
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Object(mut p) => {
            let response = p
                .get_mut("functionResponse")
                .and_then(Value::as_object_mut)
                .and_then(|f| f.remove("response"));
            match response {
                Some(Value::Object(mut r)) => take_str(&mut r, "output")
                    .or_else(|| take_str(&mut r, "error"))
                    .unwrap_or_else(|| Value::Object(r).to_string()),
                Some(r) => r.to_string(),
                None => parts_text(Value::Object(p)),
            }
        }
        other => parts_text(other),
    }
}

/// An object's field that is a string.
fn str_of(o: &Map<String, Value>, key: &str) -> Option<String> {
    o.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The elements of an array; none for any other value.
fn elements(v: Option<Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

impl<'a> Message<'a> {
    /// The message record `text`, typed; a record that is no JSON is refused with serde's
    /// words for it.
    pub(super) fn read(text: &'a str) -> Result<Message<'a>, serde_json::Error> {
        if let Some(m) = Self::read_typed(text) {
            return Ok(m);
        }
        // A key written twice, or no object: read as a `Value` reads it.
        let value: Value = serde_json::from_str(text)?;
        let canonical = value.to_string();
        Ok(Message::read_typed(&canonical).map_or_else(Message::empty, Message::into_owned))
    }

    /// The record typed in one parse; `None` when it does not type (a key written twice, no
    /// object, no JSON).
    pub(super) fn read_typed(text: &'a str) -> Option<Message<'a>> {
        let m: RawMessage = serde_json::from_str(text).ok()?;
        let thoughts = elements(m.thoughts)
            .into_iter()
            .map(|t| {
                let t = match t {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                Thought {
                    subject: str_of(&t, "subject").unwrap_or_default(),
                    description: str_of(&t, "description").unwrap_or_default(),
                    timestamp: str_of(&t, "timestamp"),
                }
            })
            .collect();
        let calls = elements(m.tool_calls)
            .into_iter()
            .map(|c| {
                let mut c = match c {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                let status = str_of(&c, "status").unwrap_or_default();
                let result = DONE
                    .contains(&status.as_str())
                    .then(|| c.remove("result").map(result_text).unwrap_or_default());
                Call {
                    id: str_of(&c, "id"),
                    name: str_of(&c, "name"),
                    args: c
                        .get("args")
                        .map_or_else(|| "{}".to_string(), Value::to_string),
                    agent_id: str_of(&c, "agentId"),
                    timestamp: str_of(&c, "timestamp"),
                    status,
                    result,
                }
            })
            .collect();
        let tokens = m
            .tokens
            .filter(|t| t.get().starts_with('{'))
            .and_then(|t| serde_json::from_str::<Value>(t.get()).ok());
        Some(Message {
            id: string_of(m.id),
            timestamp: string_of(m.timestamp),
            kind: string_of(m.kind).unwrap_or_default(),
            model: string_of(m.model),
            text: m.content.map(parts_text).unwrap_or_default(),
            shown: m.display_content.map(parts_text),
            thoughts,
            calls,
            tokens,
        })
    }

    fn empty() -> Message<'static> {
        Message {
            id: None,
            timestamp: None,
            kind: Cow::Borrowed(""),
            model: None,
            text: String::new(),
            shown: None,
            thoughts: Vec::new(),
            calls: Vec::new(),
            tokens: None,
        }
    }

    fn into_owned(self) -> Message<'static> {
        let own = |c: Cow<str>| Cow::Owned(c.into_owned());
        Message {
            id: self.id.map(own),
            timestamp: self.timestamp.map(own),
            kind: own(self.kind),
            model: self.model.map(own),
            text: self.text,
            shown: self.shown,
            thoughts: self.thoughts,
            calls: self.calls,
            tokens: self.tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_written_twice_reads_as_a_value_reads_it_the_last_one() {
        let text = r#"{"id":"a","type":"gemini","id":"b","content":[{"text":"x","text":"y"}]}"#;
        assert!(Message::read_typed(text).is_none());
        let m = Message::read(text).unwrap();
        assert_eq!((m.id.as_deref(), m.text.as_str()), (Some("b"), "y"));
        assert!(Message::read("{").is_err());
        assert!(Message::read("[1]").unwrap().id.is_none());
    }

    #[test]
    fn null_args_are_written_null_and_absent_ones_empty() {
        let text = r#"{"id":"m","toolCalls":[{"id":"c","args":null},{"id":"d","args":{"b":1,"a":2}},{"id":"e"}]}"#;
        let m = Message::read(text).unwrap();
        let args: Vec<&str> = m.calls.iter().map(|c| c.args.as_str()).collect();
        assert_eq!(args, ["null", r#"{"a":2,"b":1}"#, "{}"]);
    }
}
