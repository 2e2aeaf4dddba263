//! Event lines: `{type, data, id, timestamp, parentId, agentId?}` (FORMAT.md, "Event lines").

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::event::as_str;
use tonbo_core::event::{
    error_event, json_str, model_request_end, thinking_event, tool_use_event, turn_end_event,
    EventBuf,
};
use tonbo_core::mapping::{session_stream, MapError};
use tonbo_core::raw::Name;

use super::{text_hash, CopilotMapper, Line};
use crate::SOURCE;

#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(
        rename = "agentId",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    agent_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// The envelope read with the line's `id` in the same parse (tonbo-map's one pass): it types
/// only where both [`Envelope`] and the key's own read of `id` do, and reads them alike.
#[derive(Deserialize)]
pub(super) struct IdEnvelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(
        rename = "agentId",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    agent_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

impl<'a> IdEnvelope<'a> {
    /// The line's `id`, when it is a string.
    pub(super) fn id(&self) -> Option<Cow<'a, str>> {
        self.id.and_then(as_str)
    }

    pub(super) fn envelope(self) -> Envelope<'a> {
        Envelope {
            kind: self.kind,
            timestamp: self.timestamp,
            agent_id: self.agent_id,
            data: self.data,
        }
    }
}

/// An event line's data, typed as [`FastEvent`] reads it for the types most lines are.
pub(super) enum Typed<'a> {
    User(UserData<'a>),
    Assistant(AssistantData<'a>),
    Reasoning(ReasoningData<'a>),
    /// A tool start's `toolCallId`, for the caller to check it is a request's (else the line
    /// is left to the full parse).
    ToolStart(Option<&'a RawValue>),
    ToolComplete(ToolCompleteData<'a>),
}

pub(super) enum FastData<'a> {
    Typed(Typed<'a>),
    /// The data of any other type, as [`Envelope`] holds it.
    Raw(Option<&'a RawValue>),
}

/// An event line read in one parse, its data typed by the line's `type` as it is met (the CLI
/// writes `type` before `data`). It types only where [`IdEnvelope`] and the data's own typed
/// read both do, and reads alike; a line it refuses (`data` first, a key written twice, data
/// that does not type) is left to them.
pub(super) struct FastEvent<'a> {
    pub(super) id: Option<&'a RawValue>,
    kind: Cow<'a, str>,
    timestamp: Option<Cow<'a, str>>,
    agent_id: Option<Cow<'a, str>>,
    pub(super) data: FastData<'a>,
}

impl<'a> FastEvent<'a> {
    /// The line's `id`, when it is a string.
    pub(super) fn id(&self) -> Option<Cow<'a, str>> {
        self.id.and_then(as_str)
    }
}

impl<'de> Deserialize<'de> for FastEvent<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FastEvent<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Copilot CLI event")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FastEvent<'de>, A::Error> {
                use serde::de::Error;
                let mut id = None;
                let mut kind: Option<Cow<'de, str>> = None;
                let mut timestamp = None;
                let mut agent_id = None;
                let mut data = None;
                while let Some(Name(key)) = map.next_key::<Name>()? {
                    match key.as_ref() {
                        "id" if id.is_none() => id = Some(map.next_value::<Option<&RawValue>>()?),
                        "type" if kind.is_none() => kind = Some(map.next_value::<Name>()?.0),
                        "timestamp" if timestamp.is_none() => {
                            timestamp = Some(map.next_value::<Option<Name>>()?.map(|n| n.0))
                        }
                        "agentId" if agent_id.is_none() => {
                            agent_id = Some(map.next_value::<Option<Name>>()?.map(|n| n.0))
                        }
                        "data" if data.is_none() => {
                            let Some(kind) = kind.as_deref() else {
                                return Err(A::Error::custom("data before type"));
                            };
                            data = Some(match kind {
                                "user.message" => FastData::Typed(Typed::User(map.next_value()?)),
                                "assistant.message" => {
                                    FastData::Typed(Typed::Assistant(map.next_value()?))
                                }
                                "assistant.reasoning" => {
                                    FastData::Typed(Typed::Reasoning(map.next_value()?))
                                }
                                "tool.execution_start" | "tool.user_requested" => {
                                    let d: ToolStartData = map.next_value()?;
                                    FastData::Typed(Typed::ToolStart(d.tool_call_id))
                                }
                                "tool.execution_complete" => {
                                    FastData::Typed(Typed::ToolComplete(map.next_value()?))
                                }
                                _ => FastData::Raw(map.next_value()?),
                            });
                        }
                        "id" | "type" | "timestamp" | "agentId" | "data" => {
                            return Err(A::Error::custom("a key written twice"));
                        }
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(FastEvent {
                    id: id.flatten(),
                    kind: kind.ok_or_else(|| A::Error::missing_field("type"))?,
                    timestamp: timestamp.flatten(),
                    agent_id: agent_id.flatten(),
                    data: data.unwrap_or(FastData::Raw(None)),
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// `user.message` data.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct UserData<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    source: Option<String>,
    is_autopilot_continuation: Option<bool>,
    agent_mode: Option<String>,
    #[serde(borrow)]
    attachments: Option<&'a RawValue>,
}

/// `assistant.message` data.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct AssistantData<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    message_id: Option<Cow<'a, str>>,
    model: Option<String>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    reasoning_text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_requests: Vec<&'a RawValue>,
    output_tokens: Option<u64>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    phase: Option<Cow<'a, str>>,
}

/// `assistant.reasoning` data.
#[derive(Deserialize)]
pub(super) struct ReasoningData<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(rename = "reasoningId", borrow, default)]
    reasoning_id: Option<&'a RawValue>,
}

/// A tool start's id: most starts are of a request already written.
#[derive(Deserialize)]
struct ToolStartData<'a> {
    #[serde(rename = "toolCallId", borrow, default)]
    tool_call_id: Option<&'a RawValue>,
}

/// A tool result's or error's text: it can be large, so it stays raw JSON, never decoded and
/// encoded again.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ResultText<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    code: Option<String>,
}

/// `tool.execution_complete` data.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ToolCompleteData<'a> {
    tool_call_id: Option<String>,
    success: Option<bool>,
    #[serde(borrow)]
    result: Option<ResultText<'a>>,
    #[serde(borrow)]
    error: Option<ResultText<'a>>,
    is_user_requested: Option<bool>,
}

/// A tool request's fields, raw, read as its `Value` reads them (a field of another type is
/// absent for it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    #[serde(borrow, default)]
    tool_call_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mcp_server_name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mcp_tool_name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_title: Option<&'a RawValue>,
    #[serde(borrow, default)]
    intention_summary: Option<&'a RawValue>,
}

impl<'a> Request<'a> {
    /// The request typed where that reads it as its `Value` does: an object without a key
    /// written twice, nor a `\u` escape (a lone surrogate fails the `Value`, not a raw value).
    fn typed(req: &'a str) -> Option<Request<'a>> {
        if !req.starts_with('{') || super::may_hold_u_escape(req.as_bytes()) {
            return None;
        }
        serde_json::from_str(req).ok()
    }
}

/// Types known and passed over on purpose (counted by name): UI, permissions, hooks, mode
/// and plan bookkeeping, and the ephemeral types the CLI does not persist.
const SKIPPED: &[&str] = &[
    "session.info",
    "session.warning",
    "session.mode_changed",
    "session.plan_changed",
    "session.workspace_file_changed",
    "session.truncation",
    "session.compaction_start",
    "session.task_complete",
    "session.handoff",
    "session.remote_steerable_changed",
    "session.schedule_created",
    "session.schedule_cancelled",
    "session.idle",
    "session.title_changed",
    "session.usage_info",
    "session.snapshot_rewind",
    "assistant.intent",
    "assistant.usage",
    "assistant.message_delta",
    "assistant.reasoning_delta",
    "assistant.streaming_delta",
    "assistant.message_start",
    "tool.execution_partial_result",
    "tool.execution_progress",
    "skill.invoked",
    "subagent.started",
    "subagent.completed",
    "subagent.failed",
    "subagent.selected",
    "subagent.deselected",
    "custom_agent.started",
    "custom_agent.completed",
    "custom_agent.failed",
    "custom_agent.selected",
    "hook.start",
    "hook.end",
    "permission.requested",
    "permission.completed",
    "external_tool.requested",
    "pending_messages.modified",
    // Newer than 1.0.48 (github/copilot-sdk's generated types): bookkeeping, not conversation.
    "session.usage_checkpoint",
    "session.binary_asset",
    "session.todos_changed",
    "session.context_cleared",
    "session.permissions_changed",
    "session.autopilot_objective_changed",
    "session.auto_mode_resolved",
    "session.session_limits_changed",
    "session.managed_settings_resolved",
    "session.managed_settings_enforced",
    "session.schedule_rearmed",
];

/// A sub-agent event's `parentToolCallId`. Data without the name, written plain or with a
/// `\u` escape (the only escape that writes a letter), has none: it is not parsed for it.
fn parent_tool_call_id(data: &str) -> Option<String> {
    const NAME: &str = "parentToolCallId";
    if !data.contains(NAME) && !data.contains("\\u") {
        return None;
    }
    #[derive(Deserialize, Default)]
    struct Probe {
        #[serde(rename = "parentToolCallId", default)]
        parent_tool_call_id: Option<String>,
    }
    serde_json::from_str::<Probe>(data)
        .unwrap_or_default()
        .parent_tool_call_id
}

impl CopilotMapper {
    pub(super) fn map_event(&mut self, raw: &str, line: &mut Line) -> Result<(), MapError> {
        let env: Envelope = serde_json::from_str(raw)
            .map_err(|e| MapError::Reject(format!("not a Copilot CLI event: {e}")))?;
        self.map_envelope(env, line)
    }

    /// What every event of the line shares: its time, its sub-agent.
    fn begin(&mut self, timestamp: Option<&str>, agent_id: Option<Cow<str>>, line: &mut Line) {
        if let Some(ts) = timestamp {
            line.timestamp = Some(ts.to_string());
            self.state.last_timestamp.clear();
            self.state.last_timestamp.push_str(ts);
        }
        line.agent_id = agent_id.map(Cow::into_owned);
    }

    /// An event line typed in its one parse ([`FastEvent`]); its data holds no parent call
    /// (the caller checked the line's text).
    pub(super) fn map_fast(&mut self, ev: FastEvent, line: &mut Line) -> Result<(), MapError> {
        let data = match ev.data {
            FastData::Typed(d) => d,
            FastData::Raw(raw) => {
                let env = Envelope {
                    kind: ev.kind,
                    timestamp: ev.timestamp,
                    agent_id: ev.agent_id,
                    data: raw,
                };
                return self.map_envelope(env, line);
            }
        };
        self.begin(ev.timestamp.as_deref(), ev.agent_id, line);
        match data {
            Typed::User(d) => self.user_message_of(d, line),
            Typed::Assistant(d) => self.assistant_message_of(d, line),
            Typed::Reasoning(d) => self.reasoning_of(d, line),
            Typed::ToolStart(_) => {
                self.counts.skip("tool.execution_start of a request");
                Ok(())
            }
            Typed::ToolComplete(d) => self.tool_complete_of(d, line),
        }
    }

    pub(super) fn map_envelope(&mut self, env: Envelope, line: &mut Line) -> Result<(), MapError> {
        self.begin(env.timestamp.as_deref(), env.agent_id, line);
        let data = env.data.map_or("{}", RawValue::get);
        // A sub-agent's events name the call that started it (every version); newer ones also
        // carry the envelope's `agentId`.
        line.parent_tool = parent_tool_call_id(data);
        match env.kind.as_ref() {
            "session.start" | "session.resume" => self.session_start(data),
            "session.context_changed" => self.context(data),
            "session.model_change" => {
                #[derive(Deserialize, Default)]
                #[serde(rename_all = "camelCase", default)]
                struct D {
                    new_model: Option<String>,
                }
                let d: D = serde_json::from_str(data).unwrap_or_default();
                if d.new_model.is_some() {
                    self.state.model = d.new_model;
                }
                self.counts.skip("session.model_change");
            }
            "user.message" => self.user_message(data, line)?,
            "assistant.message" => self.assistant_message(data, line)?,
            "assistant.reasoning" => self.reasoning(data, line)?,
            "assistant.turn_start" => {
                self.emit(EventBuf::new("session.status_running"), "turn_start", line)?
            }
            "assistant.turn_end" => self.emit(turn_end_event(), "turn_end", line)?,
            "tool.execution_start" | "tool.user_requested" => {
                self.tool_start(&env.kind, data, line)?
            }
            "tool.execution_complete" => self.tool_complete(data, line)?,
            "system.message" | "system.notification" => self.system(&env.kind, data, line)?,
            "session.error" => self.error(data, line)?,
            "abort" => {
                let mut ev = EventBuf::new("user.interrupt");
                let reason = serde_json::from_str::<serde_json::Value>(data).ok();
                ev.meta_opt("reason", reason.as_ref().and_then(|d| d["reason"].as_str()));
                self.emit(ev, "abort", line)?;
            }
            "session.compaction_complete" => self.compaction(data, line)?,
            "session.shutdown" => self.shutdown(data, line)?,
            other if SKIPPED.contains(&other) => self.counts.skip(other),
            other => self.counts.unknown(other),
        }
        Ok(())
    }

    /// `session.start` / `session.resume`: no event; the context every later event carries.
    fn session_start(&mut self, data: &str) {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct D<'a> {
            copilot_version: Option<String>,
            selected_model: Option<String>,
            #[serde(borrow)]
            context: Option<&'a RawValue>,
            detached_from_spawning_parent_session_id: Option<String>,
        }
        let d: D = serde_json::from_str(data).unwrap_or_default();
        if d.copilot_version.is_some() {
            self.state.cli_version = d.copilot_version;
        }
        if d.selected_model.is_some() {
            self.state.model = d.selected_model;
        }
        if let Some(parent) = d.detached_from_spawning_parent_session_id {
            self.state.parent = session_stream(SOURCE, &parent).ok();
        }
        if let Some(c) = d.context {
            self.context(c.get());
        }
        self.counts.skip("session.start/resume");
    }

    /// A `WorkingDirectoryContext`: cwd, branch, head commit, repository.
    fn context(&mut self, data: &str) {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct C {
            cwd: Option<String>,
            branch: Option<String>,
            head_commit: Option<String>,
            repository: Option<String>,
        }
        let c: C = serde_json::from_str(data).unwrap_or_default();
        let s = &mut self.state;
        s.cwd = c.cwd.or(s.cwd.take());
        s.git_branch = c.branch.or(s.git_branch.take());
        s.git_commit = c.head_commit.or(s.git_commit.take());
        s.git_repository = c.repository.or(s.git_repository.take());
    }

    /// A person's prompt, unless the CLI says it wrote it: `source` set (a skill's injected
    /// message) is a `system.message`; an autopilot continuation or a sub-agent's prompt is a
    /// `user.message` written by the agent.
    fn user_message(&mut self, data: &str, line: &mut Line) -> Result<(), MapError> {
        let d: UserData = serde_json::from_str(data).unwrap_or_default();
        self.user_message_of(d, line)
    }

    fn user_message_of(&mut self, d: UserData, line: &mut Line) -> Result<(), MapError> {
        let content = d.content.map_or("\"\"", RawValue::get);
        let source = d
            .source
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "user");
        // `agent-<id>`: another agent's prompt; any other source is the CLI's own injection.
        let from_agent = source.is_some_and(|s| s.starts_with("agent-"));
        let subagent = line.agent_id.is_some() || line.parent_tool.is_some();
        let by_agent = d.is_autopilot_continuation == Some(true) || subagent;
        let (event, kind, author) = if from_agent {
            ("user.message", "agent_message", Some("agent"))
        } else if source.is_some() {
            ("system.message", "injected", None)
        } else if by_agent {
            let kind = if subagent {
                "subagent_prompt"
            } else {
                "autopilot_continuation"
            };
            ("user.message", kind, Some("agent"))
        } else {
            ("user.message", "prompt", Some("human"))
        };
        let mut ev = EventBuf::new(event);
        ev.text_content("content", content);
        ev.meta_opt("author", author)
            .meta_opt("message_source", d.source.as_deref())
            .meta_opt("agent_mode", d.agent_mode.as_deref());
        if let Some(a) = d.attachments.filter(|a| a.get() != "[]") {
            ev.meta_raw("attachments", a.get());
        }
        self.emit(ev, kind, line)
    }

    /// The thinking in `reasoningText`, unless an `assistant.reasoning` wrote the same, then the
    /// text (when not blank), then one tool use per tool request.
    fn assistant_message(&mut self, data: &str, line: &mut Line) -> Result<(), MapError> {
        let d: AssistantData = serde_json::from_str(data).unwrap_or_default();
        self.assistant_message_of(d, line)
    }

    fn assistant_message_of(&mut self, d: AssistantData, line: &mut Line) -> Result<(), MapError> {
        if d.model.is_some() {
            self.state.model = d.model;
        }
        if let Some(t) = d.reasoning_text.filter(|t| !t.trim().is_empty()) {
            if self.state.thoughts.insert(text_hash(&t)) {
                self.emit(thinking_event(Some(&json_str(&t))), "reasoning", line)?;
            }
        }
        match d
            .content
            .filter(|c| !tonbo_core::event::is_blank_json_str(c.get()))
        {
            Some(c) => {
                let mut ev = EventBuf::new("agent.message");
                ev.text_content("content", c.get());
                ev.meta_opt("message_id", d.message_id.as_deref())
                    .meta_opt("phase", d.phase.as_deref());
                if let Some(n) = d.output_tokens {
                    ev.meta_raw("output_tokens", &n.to_string());
                }
                self.emit(ev, "assistant_message", line)?;
            }
            None => self.counts.skip("blank text"),
        }
        for req in d.tool_requests {
            self.tool_request(req.get(), line)?;
        }
        Ok(())
    }

    fn reasoning(&mut self, data: &str, line: &mut Line) -> Result<(), MapError> {
        // Typed where it types (an object without those keys twice): as the `Value` reads it.
        if let Ok(d) = serde_json::from_str::<ReasoningData>(data) {
            return self.reasoning_of(d, line);
        }
        let d: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        let Some(t) = d["content"].as_str().filter(|t| !t.trim().is_empty()) else {
            self.counts.skip("blank reasoning");
            return Ok(());
        };
        if !self.state.thoughts.insert(text_hash(t)) {
            self.counts.skip("reasoning repeated");
            return Ok(());
        }
        let mut ev = thinking_event(Some(&json_str(t)));
        ev.meta_opt("reasoning_id", d["reasoningId"].as_str());
        self.emit(ev, "reasoning", line)
    }

    fn reasoning_of(&mut self, d: ReasoningData, line: &mut Line) -> Result<(), MapError> {
        let text = d.content.and_then(|r| Some((r, as_str(r)?)));
        let Some((raw, t)) = text.filter(|(_, t)| !t.trim().is_empty()) else {
            self.counts.skip("blank reasoning");
            return Ok(());
        };
        if !self.state.thoughts.insert(text_hash(&t)) {
            self.counts.skip("reasoning repeated");
            return Ok(());
        }
        // A string without an escape is written as it is (as it would be escaped again).
        let mut ev = match t {
            Cow::Borrowed(_) => thinking_event(Some(raw.get())),
            Cow::Owned(t) => thinking_event(Some(&json_str(&t))),
        };
        ev.meta_opt("reasoning_id", d.reasoning_id.and_then(as_str).as_deref());
        self.emit(ev, "reasoning", line)
    }

    fn error(&mut self, data: &str, line: &mut Line) -> Result<(), MapError> {
        let d: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        let kind = d["errorType"].as_str().unwrap_or("error");
        let mut ev = error_event(kind, d["message"].as_str().unwrap_or(""), "terminal");
        ev.meta_opt("error_code", d["errorCode"].as_str());
        if let Some(code) = d["statusCode"].as_i64() {
            ev.meta_raw("status_code", &code.to_string());
        }
        self.emit(ev, "error", line)
    }

    fn system(&mut self, kind: &str, data: &str, line: &mut Line) -> Result<(), MapError> {
        let d: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        let content = d["content"].as_str().unwrap_or("");
        let role = d["role"].as_str();
        let mut ev = EventBuf::new("system.message");
        ev.text_content("content", &json_str(content));
        ev.meta_opt("role", role)
            .meta_opt("name", d["name"].as_str());
        let kind = if kind == "system.notification" {
            "notification"
        } else {
            role.unwrap_or("system")
        };
        self.emit(ev, kind, line)
    }

    fn compaction(&mut self, data: &str, line: &mut Line) -> Result<(), MapError> {
        let d: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        if d["success"] == serde_json::Value::Bool(false) {
            let msg = d["error"].as_str().unwrap_or("compaction failed");
            return self.emit(
                error_event("compaction", msg, "terminal"),
                "compaction_failed",
                line,
            );
        }
        let mut ev = EventBuf::new("agent.thread_context_compacted");
        if let Some(s) = d["summaryContent"].as_str() {
            ev.text_content("content", &json_str(s));
        }
        for k in [
            "preCompactionTokens",
            "postCompactionTokens",
            "checkpointNumber",
        ] {
            if let Some(n) = d[k].as_u64() {
                ev.meta_raw(k, &n.to_string());
            }
        }
        self.emit(ev, "compaction", line)
    }
}

/// Tool calls and their results.
impl CopilotMapper {
    /// One of an assistant message's `toolRequests`: `{toolCallId, name, arguments,
    /// mcpServerName?, mcpToolName?}`.
    fn tool_request(&mut self, req: &str, line: &mut Line) -> Result<(), MapError> {
        if let Some(r) = Request::typed(req) {
            return self.typed_tool_use(r, line);
        }
        let r: serde_json::Value = serde_json::from_str(req).unwrap_or_default();
        let id = r["toolCallId"]
            .as_str()
            .map_or_else(|| line.out.next_key(), str::to_string);
        let name = r["name"].as_str().unwrap_or("unknown");
        self.tool_use(&id, name, &r, line, "tool_use")
    }

    fn tool_use(
        &mut self,
        id: &str,
        name: &str,
        r: &serde_json::Value,
        line: &mut Line,
        kind: &str,
    ) -> Result<(), MapError> {
        let server = r["mcpServerName"].as_str();
        let mcp = server.map(|s| (s, r["mcpToolName"].as_str().unwrap_or(name)));
        let input = match &r["arguments"] {
            v @ serde_json::Value::Object(_) => v.to_string(),
            serde_json::Value::Null => "{}".to_string(),
            other => serde_json::json!({ "input": other }).to_string(),
        };
        self.state
            .calls
            .insert(id.to_string(), server.map(str::to_string));
        let mut ev = tool_use_event(name, mcp, &input, id);
        ev.meta_opt("tool_title", r["toolTitle"].as_str())
            .meta_opt("intention", r["intentionSummary"].as_str());
        self.emit(ev, kind, line)
    }

    /// [`Self::tool_use`] of a request read without a `Value`.
    fn typed_tool_use(&mut self, r: Request, line: &mut Line) -> Result<(), MapError> {
        fn text(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
            raw.and_then(as_str)
        }
        let id = match text(r.tool_call_id) {
            Some(id) => id,
            None => Cow::Owned(line.out.next_key()),
        };
        let name = text(r.name);
        let name = name.as_deref().unwrap_or("unknown");
        let server = text(r.mcp_server_name);
        let tool = text(r.mcp_tool_name);
        let mcp = server
            .as_deref()
            .map(|s| (s, tool.as_deref().unwrap_or(name)));
        let input = match r.arguments {
            None => "{}".to_string(),
            Some(a) if a.get() == "null" => "{}".to_string(),
            Some(a) if a.get().starts_with('{') => tonbo_core::canonical::object_text(a)
                .unwrap_or_else(|| tonbo_core::raw::value(a).to_string()),
            Some(a) => serde_json::json!({ "input": tonbo_core::raw::value(a) }).to_string(),
        };
        self.state
            .calls
            .insert(id.to_string(), server.as_deref().map(str::to_string));
        let mut ev = tool_use_event(name, mcp, &input, &id);
        ev.meta_opt("tool_title", text(r.tool_title).as_deref())
            .meta_opt("intention", text(r.intention_summary).as_deref());
        self.emit(ev, "tool_use", line)
    }

    /// `tool.execution_start`: a tool use only for a call no tool request announced (a call the
    /// user asked for, `tool.user_requested`, or a version without `toolRequests`).
    fn tool_start(&mut self, kind: &str, data: &str, line: &mut Line) -> Result<(), MapError> {
        // Most starts are of a request already written: its id alone is read for them.
        #[derive(Deserialize)]
        struct Id<'a> {
            #[serde(rename = "toolCallId", borrow, default)]
            tool_call_id: Option<&'a RawValue>,
        }
        if let Ok(Id {
            tool_call_id: Some(id),
        }) = serde_json::from_str(data)
        {
            if as_str(id).is_some_and(|id| self.state.calls.contains_key(id.as_ref())) {
                self.counts.skip("tool.execution_start of a request");
                return Ok(());
            }
        }
        let d: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        let Some(id) = d["toolCallId"].as_str() else {
            self.counts.skip("tool start without id");
            return Ok(());
        };
        if self.state.calls.contains_key(id) {
            self.counts.skip("tool.execution_start of a request");
            return Ok(());
        }
        let name = d["toolName"].as_str().unwrap_or("unknown").to_string();
        let kind = if kind == "tool.user_requested" {
            "user_requested_tool"
        } else {
            "tool_use"
        };
        self.tool_use(id, &name, &d, line, kind)
    }

    /// `tool.execution_complete`: the result the model was given (`result.content`), or the
    /// error; paired with its call by `toolCallId`.
    fn tool_complete(&mut self, data: &str, line: &mut Line) -> Result<(), MapError> {
        let d: ToolCompleteData = serde_json::from_str(data).unwrap_or_default();
        self.tool_complete_of(d, line)
    }

    fn tool_complete_of(&mut self, d: ToolCompleteData, line: &mut Line) -> Result<(), MapError> {
        let Some(id) = d.tool_call_id else {
            self.counts.skip("tool result without id");
            return Ok(());
        };
        let failed = d.success == Some(false);
        let result = d.result.and_then(|r| r.content);
        let error = d.error.as_ref().and_then(|e| e.message);
        let text = if failed { error.or(result) } else { result };
        let text = text.map(RawValue::get).filter(|t| t.starts_with('"'));
        let server = self.state.calls.get(&id).cloned().flatten();
        let mut ev = tonbo_core::event::tool_result_text_event(
            &id,
            server.as_deref(),
            text.unwrap_or("\"\""),
            failed,
        );
        ev.meta_opt(
            "error_code",
            d.error.as_ref().and_then(|e| e.code.as_deref()),
        );
        if d.is_user_requested == Some(true) {
            ev.meta_raw("user_requested", "true");
        }
        self.emit(ev, "tool_result", line)
    }

    /// `session.shutdown`: one `span.model_request_end` per model of `modelMetrics`, with the
    /// usage since the session's previous shutdown (the totals are session-wide and carried
    /// over a resume, FORMAT.md); `inputTokens` counts the cached tokens: they are taken out.
    fn shutdown(&mut self, data: &str, line: &mut Line) -> Result<(), MapError> {
        let d: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        let Some(metrics) = d["modelMetrics"].as_object().filter(|m| !m.is_empty()) else {
            self.counts.skip("session.shutdown without modelMetrics");
            return Ok(());
        };
        for (model, m) in metrics {
            let u = &m["usage"];
            let now = [
                "inputTokens",
                "outputTokens",
                "cacheReadTokens",
                "cacheWriteTokens",
            ]
            .map(|k| u[k].as_u64().unwrap_or(0));
            let before = self
                .state
                .usage
                .insert(model.clone(), now)
                .unwrap_or_default();
            let [input, output, read, write] =
                [0, 1, 2, 3].map(|i| now[i].saturating_sub(before[i]));
            if [input, output, read, write] == [0; 4] {
                self.counts.skip("session.shutdown with no new usage");
                continue;
            }
            let usage = serde_json::json!({
                "input_tokens": input.saturating_sub(read + write),
                "output_tokens": output,
                "cache_read_input_tokens": read,
                "cache_creation_input_tokens": write,
            });
            let mut ev = model_request_end(None, &usage.to_string());
            ev.meta_str("usage_model", model)
                .meta_str("usage_scope", "since_last_shutdown")
                .meta_raw("copilot_usage", &m.to_string());
            self.emit(ev, "shutdown_usage", line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parent_tool_call_id;

    #[test]
    fn a_parent_call_is_found_written_plain_or_escaped_and_only_then() {
        assert_eq!(
            parent_tool_call_id(r#"{"parentToolCallId":"c1"}"#).as_deref(),
            Some("c1")
        );
        assert_eq!(
            parent_tool_call_id(r#"{"parentToolCall\u0049d":"c2"}"#).as_deref(),
            Some("c2")
        );
        assert_eq!(
            parent_tool_call_id(r#"{"content":"parentToolCallId"}"#),
            None
        );
        assert_eq!(parent_tool_call_id(r#"{"content":"x"}"#), None);
    }
}
