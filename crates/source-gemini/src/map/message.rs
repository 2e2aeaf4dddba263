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
use tonbo_core::event::{as_str, json_str};
use tonbo_core::raw::{has_surrogate_escape, json_text, value};

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

/// A message whose tool calls have the shape Gemini CLI writes (`result` an array of Parts, a
/// `functionResponse`'s `response` an object): typed in the same parse, the output raw (tool
/// output is most of the bytes). Any other shape fails the parse; [`RawMessage`] reads it.
#[derive(Deserialize)]
struct FastMessage<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    /// Raw: a string (a model turn's text) is written as it is.
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(rename = "displayContent", default)]
    display_content: Option<Value>,
    /// Raw: typed on their own ([`FastThought`]) where they type.
    #[serde(borrow, default)]
    thoughts: Option<&'a RawValue>,
    #[serde(rename = "toolCalls", borrow, default)]
    tool_calls: Option<Vec<FastCall<'a>>>,
    #[serde(borrow, default)]
    tokens: Option<&'a RawValue>,
}

/// A thought as its `Value` is read: a field that is no string is absent.
#[derive(Deserialize)]
struct FastThought<'a> {
    #[serde(borrow, default)]
    subject: Option<&'a RawValue>,
    #[serde(borrow, default)]
    description: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
}

impl<'a> FastThought<'a> {
    fn thought(self) -> Thought<'a> {
        Thought {
            subject: string_of(self.subject).unwrap_or_default(),
            description: string_of(self.description).unwrap_or_default(),
            timestamp: string_of(self.timestamp),
        }
    }
}

#[derive(Deserialize)]
struct FastCall<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    /// Present even when `null` (written `null`, where an absent one is `{}`).
    #[serde(borrow, default, deserialize_with = "present")]
    args: Option<&'a RawValue>,
    #[serde(rename = "agentId", borrow, default)]
    agent_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    status: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<Vec<FastPart<'a>>>,
}

#[derive(Deserialize)]
struct FastPart<'a> {
    #[serde(rename = "functionResponse", borrow, default)]
    function_response: Option<FastFunctionResponse<'a>>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    thought: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct FastFunctionResponse<'a> {
    /// An object when there (a `null` one fails the parse: it is written as `null`).
    #[serde(borrow, default, deserialize_with = "present")]
    response: Option<FastResponse<'a>>,
}

#[derive(Deserialize)]
struct FastResponse<'a> {
    #[serde(borrow, default)]
    output: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// A field that is there, `null` included (an `Option` alone reads `null` as absent).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl<'a> FastPart<'a> {
    /// The part's text as [`result_text`] reads it; `None` for a response it writes whole.
    fn result_text(&self) -> Option<Cow<'_, str>> {
        match &self.function_response {
            Some(FastFunctionResponse { response: Some(r) }) => {
                string_of(r.output).or_else(|| string_of(r.error))
            }
            _ if self.thought.map(RawValue::get) == Some("true") => Some(Cow::Borrowed("")),
            _ => Some(string_of(self.text).unwrap_or_default()),
        }
    }

    /// The part's text as a JSON string: a response's output (else error) copied as written
    /// when it holds no escape (`json_str` would write it so again).
    fn result_json(&self) -> Option<Cow<'a, str>> {
        if let Some(FastFunctionResponse { response: Some(r) }) = &self.function_response {
            for raw in [r.output, r.error].into_iter().flatten() {
                match as_str(raw) {
                    Some(Cow::Borrowed(_)) => return Some(Cow::Borrowed(raw.get())),
                    Some(Cow::Owned(t)) => return Some(Cow::Owned(json_str(&t))),
                    None => {}
                }
            }
            return None;
        }
        Some(Cow::Owned(json_str(&self.result_text()?)))
    }
}

/// A thought of a model turn.
pub(super) struct Thought<'a> {
    pub subject: Cow<'a, str>,
    pub description: Cow<'a, str>,
    pub timestamp: Option<Cow<'a, str>>,
}

/// A tool call of a model turn.
pub(super) struct Call<'a> {
    pub id: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    /// `args` as JSON text; `{}` when there are none.
    pub args: String,
    pub agent_id: Option<Cow<'a, str>>,
    pub timestamp: Option<Cow<'a, str>>,
    pub status: Cow<'a, str>,
    /// What the tool returned as text (a JSON string), for a call that is done.
    pub result: Option<Cow<'a, str>>,
}

/// A model turn's token counts: those the usage is made of, and the whole object's text.
pub(super) struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub thoughts: u64,
    /// The object as a `Value` writes it.
    pub text: String,
}

impl Tokens {
    /// The counts of a `tokens` object, read as its `Value` reads them (a count that is no
    /// `u64` is 0).
    fn of_value(v: &Value) -> Tokens {
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        Tokens {
            input: n("input"),
            output: n("output"),
            cached: n("cached"),
            thoughts: n("thoughts"),
            text: v.to_string(),
        }
    }

    /// The counts of a raw `tokens` value, without a `Value` where its text is plain (see
    /// [`tonbo_core::canonical`]); `None` when it is no object.
    fn of_raw(raw: &RawValue) -> Option<Tokens> {
        if !raw.get().starts_with('{') {
            return None;
        }
        #[derive(Deserialize)]
        struct Counts<'a> {
            #[serde(borrow, default)]
            input: Option<&'a RawValue>,
            #[serde(borrow, default)]
            output: Option<&'a RawValue>,
            #[serde(borrow, default)]
            cached: Option<&'a RawValue>,
            #[serde(borrow, default)]
            thoughts: Option<&'a RawValue>,
        }
        let plain = tonbo_core::canonical::object_text(raw)
            .and_then(|text| Some((serde_json::from_str::<Counts>(raw.get()).ok()?, text)));
        let Some((c, text)) = plain else {
            let v: Value = serde_json::from_str(raw.get()).ok()?;
            return Some(Tokens::of_value(&v));
        };
        // What `as_u64` of the number gives: digits only, in range.
        let n = |r: Option<&RawValue>| r.and_then(|r| r.get().parse::<u64>().ok()).unwrap_or(0);
        Some(Tokens {
            input: n(c.input),
            output: n(c.output),
            cached: n(c.cached),
            thoughts: n(c.thoughts),
            text,
        })
    }
}

/// What a message record's events need.
pub(super) struct Message<'a> {
    pub id: Option<Cow<'a, str>>,
    pub timestamp: Option<Cow<'a, str>>,
    pub kind: Cow<'a, str>,
    pub model: Option<Cow<'a, str>>,
    /// The text of `content`.
    pub text: Cow<'a, str>,
    /// `content`'s own text when it is a string serde_json writes alike: the JSON string of
    /// `text`, written without escaping it again.
    pub text_literal: Option<&'a str>,
    /// The text of `displayContent`, when there is one.
    pub shown: Option<String>,
    pub thoughts: Vec<Thought<'a>>,
    pub calls: Vec<Call<'a>>,
    /// `tokens`, when it is an object.
    pub tokens: Option<Tokens>,
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

/// Arguments written as a `Value` writes them: without one where their text is plain.
fn args_text(raw: &RawValue) -> String {
    tonbo_core::canonical::object_text(raw).unwrap_or_else(|| value_text(raw))
}

/// A value written as a `Value` writes it.
fn value_text(raw: &RawValue) -> String {
    serde_json::from_str::<Value>(raw.get())
        .map_or_else(|_| raw.get().to_string(), |v| v.to_string())
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

impl Call<'_> {
    fn into_owned(self) -> Call<'static> {
        let own = |c: Cow<str>| Cow::Owned(c.into_owned());
        Call {
            id: self.id.map(own),
            name: self.name.map(own),
            args: self.args,
            agent_id: self.agent_id.map(own),
            timestamp: self.timestamp.map(own),
            status: own(self.status),
            result: self.result.map(own),
        }
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
        if let Some(m) = serde_json::from_str::<FastMessage>(text)
            .ok()
            .and_then(Message::of_fast)
        {
            return Some(m);
        }
        let m: RawMessage = serde_json::from_str(text).ok()?;
        Some(Message::of_raw(m))
    }

    /// A message typed by [`RawMessage`].
    fn of_raw(m: RawMessage<'a>) -> Message<'a> {
        let thoughts = elements(m.thoughts)
            .into_iter()
            .map(|t| {
                let t = match t {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                Thought {
                    subject: Cow::Owned(str_of(&t, "subject").unwrap_or_default()),
                    description: Cow::Owned(str_of(&t, "description").unwrap_or_default()),
                    timestamp: str_of(&t, "timestamp").map(Cow::Owned),
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
                    .then(|| json_str(&c.remove("result").map(result_text).unwrap_or_default()));
                let own = |k: &str| str_of(&c, k).map(Cow::Owned);
                Call {
                    id: own("id"),
                    name: own("name"),
                    args: c
                        .get("args")
                        .map_or_else(|| "{}".to_string(), Value::to_string),
                    agent_id: own("agentId"),
                    timestamp: own("timestamp"),
                    status: Cow::Owned(status),
                    result: result.map(Cow::Owned),
                }
            })
            .collect();
        let tokens = m.tokens.and_then(Tokens::of_raw);
        Message {
            id: string_of(m.id),
            timestamp: string_of(m.timestamp),
            kind: string_of(m.kind).unwrap_or_default(),
            model: string_of(m.model),
            text: Cow::Owned(m.content.map(parts_text).unwrap_or_default()),
            text_literal: None,
            shown: m.display_content.map(parts_text),
            thoughts,
            calls,
            tokens,
        }
    }

    /// A message typed by [`FastMessage`]; `None` for what it does not read as the `Value`
    /// did (a response written whole).
    fn of_fast(m: FastMessage<'a>) -> Option<Message<'a>> {
        let mut calls = Vec::new();
        for c in m.tool_calls.unwrap_or_default() {
            let status = string_of(c.status).unwrap_or_default();
            let result = if DONE.contains(&status.as_ref()) {
                Some(match c.result.as_deref().unwrap_or_default() {
                    [one] => one.result_json()?,
                    parts => {
                        let texts = parts
                            .iter()
                            .map(FastPart::result_text)
                            .collect::<Option<Vec<_>>>()?;
                        Cow::Owned(json_str(&texts.join("\n")))
                    }
                })
            } else {
                None
            };
            calls.push(Call {
                id: string_of(c.id),
                name: string_of(c.name),
                args: c.args.map_or_else(|| "{}".to_string(), args_text),
                agent_id: string_of(c.agent_id),
                timestamp: string_of(c.timestamp),
                status,
                result,
            });
        }
        // A lone surrogate fails a `Value`, not a raw value: such content is read as a `Value`
        // reads it (the record is refused).
        let content = m.content.filter(|c| !c.get().starts_with('"'));
        if content.is_some_and(|c| has_surrogate_escape(c.get())) {
            return None;
        }
        let text = match m.content.filter(|c| c.get().starts_with('"')) {
            Some(c) if !has_surrogate_escape(c.get()) => {
                let literal = match json_text(Some(c)) {
                    Cow::Borrowed(l) => Some(l),
                    Cow::Owned(_) => None,
                };
                Some((as_str(c)?, literal))
            }
            Some(_) => return None,
            None => None,
        };
        // Thoughts typed where they type and hold no surrogate escape (a `Value` of them
        // would fail); else read as their `Value`.
        if m.thoughts.is_some_and(|t| has_surrogate_escape(t.get())) {
            return None;
        }
        let typed_thoughts = m
            .thoughts
            .and_then(|t| serde_json::from_str::<Vec<FastThought>>(t.get()).ok());
        let thoughts = match typed_thoughts {
            Some(_) => None,
            None => m.thoughts.map(value),
        };
        let raw = RawMessage {
            id: m.id,
            timestamp: m.timestamp,
            kind: m.kind,
            model: m.model,
            content: content.map(value),
            display_content: m.display_content,
            thoughts,
            tool_calls: None,
            tokens: m.tokens,
        };
        let mut message = Message::of_raw(raw);
        message.calls = calls;
        if let Some(thoughts) = typed_thoughts {
            message.thoughts = thoughts.into_iter().map(FastThought::thought).collect();
        }
        if let Some((text, literal)) = text {
            message.text = text;
            message.text_literal = literal;
        }
        Some(message)
    }

    fn empty() -> Message<'static> {
        Message {
            id: None,
            timestamp: None,
            kind: Cow::Borrowed(""),
            model: None,
            text: Cow::Borrowed(""),
            text_literal: None,
            shown: None,
            thoughts: Vec::new(),
            calls: Vec::new(),
            tokens: None,
        }
    }

    /// The JSON string of `text`.
    pub(super) fn text_json(&self) -> Cow<'_, str> {
        match self.text_literal {
            Some(l) => Cow::Borrowed(l),
            None => Cow::Owned(json_str(&self.text)),
        }
    }

    fn into_owned(self) -> Message<'static> {
        let own = |c: Cow<str>| Cow::Owned(c.into_owned());
        Message {
            id: self.id.map(own),
            timestamp: self.timestamp.map(own),
            kind: own(self.kind),
            model: self.model.map(own),
            text: own(self.text),
            text_literal: None,
            shown: self.shown,
            thoughts: self
                .thoughts
                .into_iter()
                .map(|t| Thought {
                    subject: own(t.subject),
                    description: own(t.description),
                    timestamp: t.timestamp.map(own),
                })
                .collect(),
            calls: self.calls.into_iter().map(Call::into_owned).collect(),
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
        assert_eq!((m.id.as_deref(), m.text.as_ref()), (Some("b"), "y"));
        assert!(Message::read("{").is_err());
        assert!(Message::read("[1]").unwrap().id.is_none());
    }

    #[test]
    fn a_result_reads_alike_typed_in_one_pass_or_as_a_value() {
        let fr = |response: &str| {
            format!(r#"{{"functionResponse":{{"id":"c","response":{response}}}}}"#)
        };
        for result in [
            format!("[{}]", fr(r#"{"output":"plain"}"#)),
            format!("[{}]", fr(r#"{"output":"a\"q\u00e9\n"}"#)),
            format!("[{}]", fr(r#"{"output":5,"error":"no such file"}"#)),
            format!("[{}]", fr(r#"{"files":2,"a":[1]}"#)),
            format!("[{}]", fr("null")),
            format!("[{}]", fr(r#""text""#)),
            format!(
                r#"[{},{{"text":"x"}},{{"text":"t","thought":true}}]"#,
                fr(r#"{"output":"o"}"#)
            ),
            r#"[{"text":"x"},"y"]"#.to_string(),
            r#"{"text":"x"}"#.to_string(),
            "[]".to_string(),
            "null".to_string(),
        ] {
            let text = format!(
                r#"{{"id":"m","type":"gemini","toolCalls":[{{"id":"c","status":"success","result":{result}}}]}}"#
            );
            let value: Value = serde_json::from_str(&result).unwrap();
            let m = Message::read(&text).unwrap();
            assert_eq!(
                m.calls[0].result.as_deref(),
                Some(json_str(&result_text(value)).as_str()),
                "{result}"
            );
        }
    }

    #[test]
    fn null_args_are_written_null_and_absent_ones_empty() {
        let text = r#"{"id":"m","toolCalls":[{"id":"c","args":null},{"id":"d","args":{"b":1,"a":2}},{"id":"e"}]}"#;
        let m = Message::read(text).unwrap();
        let args: Vec<&str> = m.calls.iter().map(|c| c.args.as_str()).collect();
        assert_eq!(args, ["null", r#"{"a":2,"b":1}"#, "{}"]);
    }
}
