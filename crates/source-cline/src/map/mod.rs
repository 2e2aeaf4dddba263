//! Cline-family records -> Durable Sessions events.
//!
//! The transcript is `api_conversation_history.json` (`api` records; the SDK's messages file's
//! `messages` alike): what the model was sent and answered, Anthropic-style messages. A `user`
//! message is taken apart block by block (`user.rs`): the tags the extensions put around what a
//! person typed (`<task>`, `<user_message>`, `<feedback>`, `<answer>`, the SDK's
//! `<user_input>`) become `user.message`s holding only that text; `<environment_details>` and
//! the other text the extension writes become `system.message`s; `tool_result` blocks (and the
//! `[tool] Result:` text of XML tool calling, `xml.rs`) become tool results. An `assistant`
//! message gives its text, thinking, `tool_use` blocks (or XML calls) and usage (`usage.rs`).
//! The task's history item (`task` record) gives the title, working folder, model and parent
//! task that every later event carries; `ui` records give the errors the panel showed and,
//! where the API history has none, each request's usage; everything else in them repeats the
//! API history. FORMAT.md says why.

mod usage;
mod user;
mod xml;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::event::as_str;
use tonbo_core::event::{
    error_event, is_blank_json_str, json_str, text_block, text_content, thinking_event,
    tool_result_event, tool_use_event, EventBuf,
};
use tonbo_core::mapping::{
    session_stream, Counts, EventSink, EventWriter, MapError, SessionStates, SourceMapping, Stamp,
    Thread,
};
use tonbo_core::record_line::RecordLine;
use tonbo_core::SourceRecord;

use crate::record::Part;
use crate::SOURCE;

use usage::{request_usage, usage_of};
use user::{split_user_text, tool_result_header, Piece};
use xml::find_call;

/// What the mapping keeps of one task while its records come.
#[derive(Default)]
struct TaskState {
    session_id: String,
    variant: String,
    /// The title and working folder as JSON strings: every event carries them, escaped once.
    title_json: Option<String>,
    cwd_json: Option<String>,
    model: Option<String>,
    mode: Option<String>,
    /// The parent task's stream (a Roo Code subtask).
    parent: Option<String>,
    /// The task's start time, then the time of the last record that had one: what a message
    /// without its own `ts` (older Cline) inherits.
    last_timestamp: Option<String>,
    /// The task's own stream when it is a subtask: the thread its parent announced.
    thread: Option<String>,
    /// Tool call id -> tool name.
    calls: HashMap<String, String>,
    /// XML tool calls waiting for their result: (tool name, the id given to the call).
    xml_calls: Vec<(String, String)>,
    /// The API history carries usage (`metrics`): the UI's `api_req_started` would count it
    /// twice.
    api_metrics: bool,
}

/// A tool result written as text blocks (XML tool calling): its tool and its texts.
struct XmlResult {
    tool: String,
    texts: Vec<String>,
}

/// The mapping of `cline` records, for `tonbo-map`.
#[derive(Default)]
pub struct ClineMapper {
    state: TaskState,
    others: SessionStates<TaskState>,
    pub counts: Counts,
}

/// The record being mapped.
struct Rec<'w> {
    out: EventWriter<'w>,
    key_base: &'w str,
    timestamp: Option<String>,
}

/// One element of the API history; its `content` raw (`&RawValue`), or typed in the same
/// parse ([`TypedBlocks`]).
#[derive(Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>"))]
struct ApiMessage<'a, C> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    role: Option<Cow<'a, str>>,
    #[serde(default = "Option::default")]
    content: Option<C>,
    #[serde(borrow, default)]
    ts: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metrics: Option<&'a RawValue>,
    #[serde(rename = "modelInfo", borrow, default)]
    model_info: Option<&'a RawValue>,
    /// Roo Code: a reasoning item of the OpenAI Responses API, kept in the history.
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    summary: Option<&'a RawValue>,
    #[serde(rename = "isSummary", default)]
    is_summary: bool,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    thinking: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    is_error: Option<bool>,
    /// The block's JSON, taken only for the kinds kept whole (`image`, `file`).
    #[serde(skip)]
    raw: Option<&'a RawValue>,
}

#[derive(Deserialize)]
/// A task's history item (`task` record).
struct Item<'a> {
    #[serde(borrow, default)]
    ts: Option<&'a RawValue>,
    /// Cline and Roo: the first prompt; the SDK's manifest: `prompt`.
    #[serde(alias = "prompt")]
    task: Option<String>,
    #[serde(rename = "cwdOnTaskInitialization", alias = "cwd")]
    cwd: Option<String>,
    workspace: Option<String>,
    #[serde(rename = "modelId", alias = "model")]
    model: Option<String>,
    mode: Option<String>,
    #[serde(rename = "parentTaskId")]
    parent: Option<String>,
}

#[derive(Deserialize)]
/// One element of `ui_messages.json` (`ui` record).
struct Ui<'a> {
    #[serde(borrow, default)]
    ts: Option<&'a RawValue>,
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    say: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    ask: Option<Cow<'a, str>>,
    /// Decoded only for the messages mapped: most are skipped.
    #[serde(borrow)]
    text: Option<&'a RawValue>,
}

/// A record typed by the part of the task it comes from.
enum Parsed<'a> {
    Task(Item<'a>),
    Api(ApiMessage<'a, &'a RawValue>),
    ApiTyped(ApiMessage<'a, TypedBlocks<'a>>),
    Ui(Ui<'a>),
}

impl<'a> Parsed<'a> {
    /// The record's text typed as its part's record: the one parse of it.
    fn of(part: Part, text: &'a str) -> Result<Parsed<'a>, MapError> {
        let reject = |what: &str, e: serde_json::Error| MapError::Reject(format!("{what}: {e}"));
        Ok(match part {
            Part::Task => Parsed::Task(
                serde_json::from_str(text).map_err(|e| reject("not a history item", e))?,
            ),
            Part::Api => Parsed::Api(
                serde_json::from_str(text).map_err(|e| reject("not an API history message", e))?,
            ),
            Part::Ui => {
                Parsed::Ui(serde_json::from_str(text).map_err(|e| reject("not a UI message", e))?)
            }
        })
    }
}

/// A message's `content` that is an array of blocks each typed as it is read (the record's one
/// parse); any other content, or a block kept whole (its JSON is wanted), fails the parse, and
/// the record is read again with its content raw.
struct TypedBlocks<'a>(Vec<Block<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for TypedBlocks<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Blocks<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Blocks<'a> {
            type Value = TypedBlocks<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of content blocks")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::new();
                while let Some(b) = seq.next_element::<Block<'a>>()? {
                    if kept_whole(&b) {
                        return Err(serde::de::Error::custom("a block kept whole"));
                    }
                    blocks.push(b);
                }
                Ok(TypedBlocks(blocks))
            }
        }
        d.deserialize_seq(Blocks(std::marker::PhantomData))
    }
}

/// Blocks mapped from their whole JSON: their raw text is wanted.
fn kept_whole(b: &Block) -> bool {
    matches!(b.kind.as_ref(), "image" | "file")
}

/// A `ts` (milliseconds) as RFC 3339; one that is not a number in range is no time.
fn ts_text(ts: Option<&RawValue>) -> Option<String> {
    let n: serde_json::Number = serde_json::from_str(ts?.get()).ok()?;
    let ms = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?;
    // Past year 9999 no RFC 3339 time can say it.
    (0..253_402_300_800_000)
        .contains(&ms)
        .then(|| tonbo_core::time::rfc3339_millis(ms))
}

impl ClineMapper {
    /// Makes `session_id`'s state the one at hand (kept aside while others were mapped); true
    /// when the session is met for the first time.
    fn enter(&mut self, session_id: &str, variant: &str) -> bool {
        let mut first = false;
        if self.state.session_id != session_id {
            let old = std::mem::take(&mut self.state);
            self.state = self.others.take(session_id).unwrap_or_else(|| {
                first = true;
                TaskState::default()
            });
            self.state.session_id = session_id.to_string();
            if !old.session_id.is_empty() {
                self.others.keep(old.session_id.clone(), old);
            }
        }
        self.state.variant = variant.to_string();
        first
    }

    /// The SDK names a sub-agent's session `<root id>__<agent id>` (`makeSubSessionId`; task
    /// ids of the extensions never hold `__`): it is a thread of its root session, announced
    /// there once.
    fn sdk_subagent(&mut self, native: &str, rec: &mut Rec) -> Result<(), MapError> {
        let Some((root, agent)) = native.split_once("__") else {
            return Ok(());
        };
        let parent_stream = session_stream(SOURCE, root)?;
        let child = rec.out.session_id().to_string();
        self.state.parent = Some(parent_stream.clone());
        self.state.thread = Some(child.clone());
        let ts = self.state.last_timestamp.clone();
        rec.out.announce_thread(&Thread {
            parent_stream: &parent_stream,
            child: native,
            child_stream: &child,
            agent: Some(agent),
            parent_tool_use_id: None,
            timestamp: ts.as_deref(),
        })
    }

    /// Writes `ev` as the record's next event, with what the task adds to its metadata.
    fn emit(&self, mut ev: EventBuf, kind: &str, rec: &mut Rec) -> Result<(), MapError> {
        let s = &self.state;
        let (timestamp, inherited) = match &rec.timestamp {
            Some(ts) => (Some(ts.as_str()), false),
            None => (s.last_timestamp.as_deref(), s.last_timestamp.is_some()),
        };
        let stamp = Stamp {
            timestamp,
            inherited,
            thread: s.thread.as_deref(),
        };
        rec.out.emit(&mut ev, &stamp, Some(kind), |ev| {
            ev.meta_str("variant", &s.variant)
                .meta_opt("parent_session_id", s.parent.as_deref());
            if let Some(title) = &s.title_json {
                ev.meta_raw("title", title);
            }
            if let Some(cwd) = &s.cwd_json {
                ev.meta_raw("cwd", cwd);
            }
            ev.meta_opt("mode", s.mode.as_deref())
                .meta_opt("model", s.model.as_deref());
        })
    }

    /// The task's history item: its title, folder, model, start time and parent.
    fn map_task(&mut self, item: Item, rec: &mut Rec) -> Result<(), MapError> {
        let s = &mut self.state;
        s.title_json = item
            .task
            .filter(|t| !t.trim().is_empty())
            .map(|t| json_str(&t));
        s.cwd_json = item
            .cwd
            .or(item.workspace)
            .filter(|c| !c.is_empty())
            .map(|c| json_str(&c));
        s.model = item.model.or(s.model.take());
        s.mode = item.mode;
        if s.last_timestamp.is_none() {
            s.last_timestamp = ts_text(item.ts);
        }
        let Some(parent) = item.parent.filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        let parent_stream = session_stream(SOURCE, &parent)?;
        s.parent = Some(parent_stream.clone());
        let child = rec.out.session_id().to_string();
        s.thread = Some(child.clone());
        let native = child.strip_prefix("cline-").unwrap_or(&child).to_string();
        let ts = s.last_timestamp.clone();
        rec.out.announce_thread(&Thread {
            parent_stream: &parent_stream,
            child: &native,
            child_stream: &child,
            agent: s.mode.as_deref(),
            parent_tool_use_id: None,
            timestamp: ts.as_deref(),
        })
    }

    /// One element of the API history.
    fn map_api<C>(
        &mut self,
        m: ApiMessage<C>,
        blocks: Vec<Block>,
        rec: &mut Rec,
    ) -> Result<(), MapError> {
        rec.timestamp = ts_text(m.ts);
        if let Some(ts) = &rec.timestamp {
            self.state.last_timestamp = Some(ts.clone());
        }
        if m.kind.as_deref() == Some("reasoning") {
            return self.map_reasoning_item(m.summary, rec);
        }
        if let Some(model) = m.model_info.and_then(model_of) {
            self.state.model = Some(model);
        }
        match m.role.as_deref().unwrap_or("none") {
            "assistant" => self.map_assistant(&blocks, m.metrics, rec),
            "user" if m.is_summary => self.map_summary(&blocks, rec),
            "user" => self.map_user(&blocks, rec),
            other => {
                self.counts.unknown(&format!("role:{other}"));
                Ok(())
            }
        }
    }

    fn map_reasoning_item(
        &mut self,
        summary: Option<&RawValue>,
        rec: &mut Rec,
    ) -> Result<(), MapError> {
        #[derive(Deserialize)]
        struct Part<'a> {
            #[serde(borrow)]
            text: Option<&'a RawValue>,
        }
        let parts: Vec<Part> = summary
            .and_then(|s| serde_json::from_str(s.get()).ok())
            .unwrap_or_default();
        let texts: Vec<&RawValue> = parts.into_iter().filter_map(|p| p.text).collect();
        if texts.is_empty() {
            return self.emit(thinking_event(None), "thinking", rec);
        }
        for t in texts {
            self.emit(thinking_event(Some(t.get())), "thinking", rec)?;
        }
        Ok(())
    }

    fn map_assistant(
        &mut self,
        blocks: &[Block],
        metrics: Option<&RawValue>,
        rec: &mut Rec,
    ) -> Result<(), MapError> {
        for b in blocks {
            match b.kind.as_ref() {
                "text" => match b.text {
                    Some(t) if !is_blank_json_str(t.get()) => self.assistant_text(t, rec)?,
                    _ => rec.out.pass_over(),
                },
                "thinking" => {
                    self.emit(thinking_event(b.thinking.map(|t| t.get())), "thinking", rec)?
                }
                "redacted_thinking" => self.emit(thinking_event(None), "thinking", rec)?,
                "tool_use" => {
                    let id = b.id.as_deref().unwrap_or_default();
                    let name = b.name.as_deref().unwrap_or("unknown");
                    self.state.calls.insert(id.to_string(), name.to_string());
                    let input = b.input.map_or("{}", |i| i.get());
                    self.emit(tool_use_event(name, None, input, id), "tool_use", rec)?;
                }
                other => {
                    self.counts.unknown(&format!("assistant block:{other}"));
                    rec.out.pass_over();
                }
            }
        }
        if let Some(usage) = metrics.and_then(usage_of) {
            self.state.api_metrics = true;
            let mut ev = tonbo_core::event::model_request_end(None, &usage.0);
            if let Some(cost) = &usage.1 {
                ev.meta_raw("cost_usd", cost);
            }
            self.emit(ev, "usage", rec)?;
        }
        Ok(())
    }

    /// An assistant text block: as it is, or, when it holds XML tool calls, the text around
    /// them and each call.
    fn assistant_text(&mut self, raw: &RawValue, rec: &mut Rec) -> Result<(), MapError> {
        let text = as_str(raw).unwrap_or_default();
        // Cline asks the model to think in `<thinking>` tags before it calls a tool.
        let (thinking, text) = split_thinking(&text);
        if let Some(t) = thinking {
            self.emit(thinking_event(Some(&json_str(t))), "thinking", rec)?;
        }
        if text.trim().is_empty() {
            return Ok(());
        }
        if thinking.is_some() && find_call(text).is_none() {
            let mut ev = EventBuf::new("agent.message");
            ev.text_content("content", &json_str(text.trim()));
            return self.emit(ev, "text", rec);
        }
        if find_call(text).is_none() {
            let mut ev = EventBuf::new("agent.message");
            ev.text_content("content", raw.get());
            return self.emit(ev, "text", rec);
        }
        let mut rest: &str = text;
        while !rest.is_empty() {
            let call = find_call(rest);
            let before = call.as_ref().map_or(rest, |c| &rest[..c.start]);
            if !before.trim().is_empty() {
                let mut ev = EventBuf::new("agent.message");
                ev.text_content("content", &json_str(before.trim()));
                self.emit(ev, "text", rec)?;
            }
            let Some(call) = call else { break };
            let id = rec.out.next_key();
            self.state.xml_calls.push((call.name.clone(), id.clone()));
            let mut ev = tool_use_event(&call.name, None, &call.input, &id);
            ev.meta_str("tool_call_format", "xml");
            self.emit(ev, "tool_use", rec)?;
            rest = &rest[call.end..];
        }
        Ok(())
    }

    /// Roo Code's condensed summary of the conversation so far (`isSummary`).
    fn map_summary(&mut self, blocks: &[Block], rec: &mut Rec) -> Result<(), MapError> {
        let texts: Vec<String> = blocks
            .iter()
            .filter_map(|b| b.text)
            .map(|t| text_block(t.get()))
            .collect();
        let mut ev = EventBuf::new("agent.thread_context_compacted");
        ev.raw("content", &tonbo_core::event::blocks(&texts));
        self.emit(ev, "condense_summary", rec)
    }

    fn map_user(&mut self, blocks: &[Block], rec: &mut Rec) -> Result<(), MapError> {
        // XML tool calling: a `[tool] Result:` block and the text blocks after it, up to the
        // environment details or the next result, are one result.
        let mut open: Option<XmlResult> = None;
        for b in blocks {
            if b.kind == "text" {
                let text = b.text.and_then(as_str).unwrap_or_default();
                if let Some(tool) = tool_result_header(&text) {
                    self.close_result(open.take(), rec)?;
                    open = Some(XmlResult {
                        tool,
                        texts: vec![text.into_owned()],
                    });
                    continue;
                }
                if let Some(r) = open.as_mut() {
                    if !text.trim_start().starts_with("<environment_details>") {
                        r.texts.push(text.into_owned());
                        continue;
                    }
                }
                self.close_result(open.take(), rec)?;
                self.map_user_text(&text, rec)?;
                continue;
            }
            self.close_result(open.take(), rec)?;
            self.user_block(b, rec)?;
        }
        self.close_result(open.take(), rec)
    }

    /// One block of a `user` message that is not text and not part of an XML tool result.
    fn user_block(&mut self, b: &Block, rec: &mut Rec) -> Result<(), MapError> {
        let raw_text = || b.raw.map_or("null", |r| r.get());
        match b.kind.as_ref() {
            "tool_result" => {
                let id = b.tool_use_id.as_deref().unwrap_or_default();
                let content = result_content(b.content);
                let ev = tool_result_event(id, None, &content, b.is_error.unwrap_or(false));
                self.emit(ev, "tool_result", rec)?;
                // What the person answered (a follow-up question, feedback on a denied
                // tool) is inside the result: it is their message too.
                let content = b.content.filter(|c| may_hold_person_words(c.get()));
                for text in result_texts(content) {
                    for piece in split_user_text(&text) {
                        if let Piece::Human { tag, text } = piece {
                            self.human(&text, tag, rec)?;
                        }
                    }
                }
            }
            "file" => {
                // The SDK: a file's content the extension attached, `{path, content}`.
                #[derive(Deserialize)]
                struct File {
                    path: Option<String>,
                }
                let path = serde_json::from_str::<File>(raw_text())
                    .ok()
                    .and_then(|f| f.path);
                let mut ev = EventBuf::new("system.message");
                let content = b.content.filter(|c| c.get().starts_with('"'));
                ev.raw(
                    "content",
                    &text_content(content.map_or("\"\"", |c| c.get())),
                );
                ev.meta_opt("path", path.as_deref());
                self.emit(ev, "attached_file", rec)?;
            }
            "image" => {
                let mut ev = EventBuf::new("user.message");
                ev.raw("content", &format!("[{}]", raw_text()));
                ev.meta_str("author", "human");
                self.emit(ev, "image", rec)?;
            }
            other => {
                self.counts.unknown(&format!("user block:{other}"));
                rec.out.pass_over();
            }
        }
        Ok(())
    }

    /// A tool result written as text: paired with the XML call of its tool waiting for it,
    /// then the person's words it carries (an answer, feedback).
    fn close_result(&mut self, r: Option<XmlResult>, rec: &mut Rec) -> Result<(), MapError> {
        let Some(r) = r else { return Ok(()) };
        let blocks: Vec<String> = r.texts.iter().map(|t| text_block(&json_str(t))).collect();
        let content = tonbo_core::event::blocks(&blocks);
        let waiting = self.state.xml_calls.iter().position(|(n, _)| *n == r.tool);
        match waiting.map(|i| self.state.xml_calls.remove(i)) {
            Some((_, id)) => {
                let failed = r
                    .texts
                    .iter()
                    .any(|t| t.contains("The tool execution failed"));
                let mut ev = tool_result_event(&id, None, &content, failed);
                ev.meta_str("tool_name", &r.tool);
                self.emit(ev, "tool_result", rec)?;
            }
            None => {
                // No call to pair it with (its call is in a message not read): the text stays.
                let mut ev = EventBuf::new("system.message");
                ev.raw("content", &content);
                ev.meta_str("tool_name", &r.tool);
                self.emit(ev, "tool_result_unpaired", rec)?;
            }
        }
        for t in &r.texts {
            for piece in split_user_text(t) {
                if let Piece::Human { tag, text } = piece {
                    self.human(&text, tag, rec)?;
                }
            }
        }
        Ok(())
    }

    /// A text block of a `user` message: the person's words (inside their tags), the
    /// extension's text, or a tool's result written as text (XML tool calling).
    fn map_user_text(&mut self, text: &str, rec: &mut Rec) -> Result<(), MapError> {
        for piece in split_user_text(text) {
            match piece {
                Piece::Human { tag, text } => self.human(&text, tag, rec)?,
                Piece::ToolResult { tool, text } => self.close_result(
                    Some(XmlResult {
                        tool,
                        texts: vec![text.to_string()],
                    }),
                    rec,
                )?,
                // A sub-agent's first message is its parent agent's task for it.
                Piece::Injected {
                    kind: "injected",
                    text,
                } if self.state.parent.is_some() && rec.key_base.starts_with("api:0:") => {
                    let mut ev = EventBuf::new("user.message");
                    ev.text_content("content", &json_str(text));
                    ev.meta_str("author", "agent");
                    self.emit(ev, "subagent_prompt", rec)?;
                }
                Piece::Injected { kind, text } => {
                    let mut ev = EventBuf::new("system.message");
                    ev.text_content("content", &json_str(text));
                    self.emit(ev, kind, rec)?;
                }
            }
        }
        Ok(())
    }

    /// What a person typed; in a subtask, its first prompt is the parent agent's (the
    /// `new_task` message), and what a person typed into the subtask later says so.
    fn human(&mut self, text: &str, tag: &'static str, rec: &mut Rec) -> Result<(), MapError> {
        let mut ev = EventBuf::new("user.message");
        ev.text_content("content", &json_str(text));
        let subtask = self.state.parent.is_some();
        let first_prompt =
            rec.key_base.starts_with("api:0:") && matches!(tag, "task" | "user_message");
        let first_prompt =
            first_prompt || (rec.key_base.starts_with("api:0:") && tag == "user_input");
        let kind = if subtask && first_prompt {
            ev.meta_str("author", "agent");
            "subagent_prompt"
        } else {
            ev.meta_str("author", "human");
            if subtask {
                ev.meta_str("origin_kind", "human");
            }
            match tag {
                "feedback" => "feedback",
                "answer" => "answer",
                "user_command" => "slash_command",
                _ => "prompt",
            }
        };
        ev.meta_str("tag", tag);
        self.emit(ev, kind, rec)
    }

    /// The usage of one API request, from its `api_req_started` UI message: only for tasks
    /// whose API history carries none (Roo Code, Kilo Code, Cline before 2025-12).
    fn map_request_usage(&mut self, text: Option<&str>, rec: &mut Rec) -> Result<(), MapError> {
        let usage = text.and_then(request_usage);
        let Some((usage, cost)) = usage.filter(|_| !self.state.api_metrics) else {
            self.counts.skip("ui:api_req_started");
            return Ok(());
        };
        let mut ev = tonbo_core::event::model_request_end(None, &usage);
        if let Some(cost) = &cost {
            ev.meta_raw("cost_usd", cost);
        }
        self.emit(ev, "usage", rec)
    }

    /// One element of `ui_messages.json`: errors and, where the API history has none, usage
    /// (FORMAT.md).
    fn map_ui(&mut self, ui: Ui, raw: &str, rec: &mut Rec) -> Result<(), MapError> {
        let text = match ui.text.map(|t| (t, as_str(t))) {
            None => None,
            Some((_, Some(t))) => Some(t),
            // A `text` that is no string rejects the message, with serde's words for it.
            Some((_, None)) => {
                #[derive(Deserialize)]
                struct UiText {
                    #[allow(dead_code)]
                    text: Option<String>,
                }
                let e = serde_json::from_str::<UiText>(raw).err();
                let e = e.map_or_else(String::new, |e| e.to_string());
                return Err(MapError::Reject(format!("not a UI message: {e}")));
            }
        };
        let what = match (ui.kind.as_deref(), ui.say.as_deref(), ui.ask.as_deref()) {
            (Some("say"), Some(s), _) => s,
            (Some("ask"), _, Some(a)) => a,
            _ => "unknown",
        };
        if what == "api_req_started" {
            rec.timestamp = ts_text(ui.ts);
            return self.map_request_usage(text.as_deref(), rec);
        }
        let (error_kind, retry) = match what {
            "error" => ("error", "terminal"),
            "error_retry" => ("api_error", "retrying"),
            "api_req_failed" => ("api_error", "exhausted"),
            "api_req_retried" => ("api_error", "retrying"),
            "diff_error" => ("diff_error", "terminal"),
            "clineignore_error" | "rooignore_error" => ("ignore_error", "terminal"),
            "mistake_limit_reached" => ("mistake_limit_reached", "terminal"),
            _ => {
                self.counts.skip(&format!("ui:{what}"));
                return Ok(());
            }
        };
        rec.timestamp = ts_text(ui.ts);
        let message = text.unwrap_or_default();
        self.emit(error_event(error_kind, &message, retry), "error", rec)
    }
}

/// What a record line says of its record.
struct Place<'a> {
    session: &'a str,
    kind: Option<&'a str>,
    at: Option<&'a str>,
    /// The record's JSON text.
    text: &'a str,
}

impl ClineMapper {
    /// Maps one record; `parsed` is its text already typed, else it is typed here, where the
    /// session's state is entered.
    fn map_record(
        &mut self,
        place: &Place,
        parsed: Option<Parsed>,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let session_id = tonbo_core::mapping::session_stream_again(
            &self.state.session_id,
            SOURCE,
            place.session,
        )?;
        let (variant, part) = Part::from_kind(place.kind).map_err(MapError::Reject)?;
        let at = place
            .at
            .ok_or_else(|| MapError::Reject("a cline record without `at`".into()))?;
        let first = self.enter(&session_id, variant);
        if self.state.last_timestamp.is_none() {
            self.state.last_timestamp = start_of_id(place.session);
        }
        let mut r = Rec {
            out: EventWriter::new(sink, SOURCE, &session_id, at.to_string()),
            key_base: at,
            timestamp: None,
        };
        if first && at.starts_with("api:0:") {
            self.sdk_subagent(place.session, &mut r)?;
        }
        let parsed = match parsed {
            Some(p) => p,
            None => Parsed::of(part, place.text)?,
        };
        match parsed {
            Parsed::Task(item) => self.map_task(item, &mut r)?,
            Parsed::Api(m) => {
                let blocks = content_blocks(m.content);
                self.map_api(m, blocks, &mut r)?
            }
            Parsed::ApiTyped(mut m) => {
                let blocks = m.content.take().map_or_else(Vec::new, |c| c.0);
                self.map_api(m, blocks, &mut r)?
            }
            Parsed::Ui(ui) => self.map_ui(ui, place.text, &mut r)?,
        }
        Ok(r.out.emitted())
    }
}

/// Cline names a task by the time it began (`Date.now()`, milliseconds): what its messages
/// without a `ts` of their own (older Cline) inherit.
/// So does the SDK (`${Date.now()}_${nanoid(5)}`, a sub-agent's `<root id>__<agent id>`).
fn start_of_id(id: &str) -> Option<String> {
    let ms = id.split('_').next().unwrap_or(id);
    let digits = ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| ms.parse().ok().map(tonbo_core::time::rfc3339_millis))
        .flatten()
}

/// `<thinking>...</thinking>` opening an assistant text, and the rest of the text.
fn split_thinking(text: &str) -> (Option<&str>, &str) {
    let t = text.trim_start();
    if let Some(body) = t.strip_prefix("<thinking>") {
        if let Some(end) = body.find("</thinking>") {
            let inner = body[..end].trim_matches('\n');
            return (Some(inner), &body[end + "</thinking>".len()..]);
        }
    }
    (None, text)
}

/// The model a `modelInfo` names (`{providerId, modelId, mode}`).
fn model_of(raw: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Info {
        /// Cline's `modelId`; the SDK's `id`.
        #[serde(rename = "modelId", alias = "id")]
        model: Option<String>,
    }
    serde_json::from_str::<Info>(raw.get()).ok()?.model
}

/// A message's content as blocks: a string is one text block. Typed in one pass; a block's
/// JSON is taken (a second pass) only for the kinds kept whole. An element that is no block is
/// left out.
fn content_blocks(content: Option<&RawValue>) -> Vec<Block<'_>> {
    let Some(c) = content else {
        return Vec::new();
    };
    if c.get().starts_with('"') {
        return vec![Block {
            kind: Cow::Borrowed("text"),
            text: Some(c),
            thinking: None,
            id: None,
            name: None,
            input: None,
            tool_use_id: None,
            content: None,
            is_error: None,
            raw: Some(c),
        }];
    }
    if let Ok(mut blocks) = serde_json::from_str::<Vec<Block>>(c.get()) {
        if blocks.iter().any(kept_whole) {
            let raws: Vec<&RawValue> = serde_json::from_str(c.get()).unwrap_or_default();
            for (b, raw) in blocks.iter_mut().zip(raws) {
                b.raw = Some(raw);
            }
        }
        return blocks;
    }
    // Some element is no block: each on its own.
    let raws: Vec<&RawValue> = serde_json::from_str(c.get()).unwrap_or_default();
    raws.into_iter()
        .filter_map(|r| {
            let mut b: Block = serde_json::from_str(r.get()).ok()?;
            b.raw = Some(r);
            Some(b)
        })
        .collect()
}

/// Whether a tool result's raw content may hold a person's words ([`split_user_text`]'s human
/// pieces): a human tag opening (`<task`, `<user_..`, `<feedback`, `<answer`), or a JSON
/// `feedback`; a `\u` escape could write either, so it counts too. Most results hold none, and
/// are then not parsed again for them.
fn may_hold_person_words(raw: &str) -> bool {
    let b = raw.as_bytes();
    static FEEDBACK: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new("feedback"));
    let u_escape = memchr::memchr_iter(b'\\', b).any(|i| b.get(i + 1) == Some(&b'u'));
    if u_escape || FEEDBACK.find(b).is_some() {
        return true;
    }
    memchr::memchr_iter(b'<', b).any(|i| {
        let after = &b[i + 1..];
        after.starts_with(b"task") || after.starts_with(b"user_") || after.starts_with(b"answer")
    })
}

/// A tool result's content as content blocks: a string becomes one text block.
fn result_content(content: Option<&RawValue>) -> String {
    match content {
        None => "[]".to_string(),
        Some(c) if c.get().starts_with('"') => text_content(c.get()),
        Some(c) => c.get().to_string(),
    }
}

/// The texts of a tool result's content.
fn result_texts(content: Option<&RawValue>) -> Vec<Cow<'_, str>> {
    let Some(c) = content else {
        return Vec::new();
    };
    if let Some(s) = as_str(c) {
        return vec![s];
    }
    content_blocks(Some(c))
        .into_iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text.and_then(as_str))
        .collect()
}

impl SourceMapping for ClineMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let place = Place {
            session: &rec.session,
            kind: rec.kind.as_deref(),
            at: rec.at.as_deref(),
            text: rec.record.get(),
        };
        self.map_record(&place, None, sink)
    }

    /// The record typed first (its one parse); any doubt is left to [`Self::map`].
    fn map_line(
        &mut self,
        line: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        let (_, part) = Part::from_kind(line.kind).ok()?;
        let parsed = match part {
            Part::Api => Parsed::ApiTyped(serde_json::from_str(line.record).ok()?),
            _ => Parsed::of(part, line.record).ok()?,
        };
        let place = Place {
            session: line.session,
            kind: line.kind,
            at: line.at.as_deref(),
            text: line.record,
        };
        Some(self.map_record(&place, Some(parsed), sink))
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_without_tags_or_feedback_holds_no_person_s_words() {
        for (raw, may) in [
            (r#""plain output <b>x</b>""#, false),
            (r#"[{"type":"text","text":"a < b"}]"#, false),
            (r#""<answer>\nyes</answer>""#, true),
            (r#""<user_message>go</user_message>""#, true),
            (r#""{\"status\":\"denied\",\"feedback\":\"no\"}""#, true),
            (r#""\u003ctask>x""#, true),
        ] {
            assert_eq!(may_hold_person_words(raw), may, "{raw}");
        }
    }
}
