//! Claude Code transcript lines -> Durable Sessions events.
//!
//! The format facts relied on are in `crates/claude-read/FORMAT.md` (the § numbers below name the
//! sections of the format research it condenses):
//! Part 1 describes the lines, §3.2 the mapping table this module implements. Where it departs
//! from §3.2 the README says why ("Claude Code mapping").
//!
//! The mapping is streaming: one line in, its events out. The little state it keeps is per
//! session (the reader emits a session's files one after another) and bounded by that session:
//! the line uuids seen (dedupe across rewritten and replayed lines, §1.8), the open API response
//! (spans, §1.5), the names of tool uses (MCP results), and the subagent threads created (§1.9).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::SourceRecord;

use tonbo_core::mapping::{Counts, EventSink, MapError};
use tonbo_core::event::{fnv64, is_blank_json_str, text_content, EventBuf};

mod user;

use user::{Author, Injected, Origin, UserClass, UserFacts};

use crate::record::{agent_id_of, At, RecordKind};
use crate::SOURCE;

/// The line envelope (§1.2). Only what the mapping reads; large values stay raw.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ClaudeLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subtype: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uuid: Option<Cow<'a, str>>,
    #[serde(rename = "parentUuid", borrow)]
    parent_uuid: Option<Cow<'a, str>>,
    #[serde(rename = "logicalParentUuid", borrow)]
    logical_parent_uuid: Option<Cow<'a, str>>,
    #[serde(rename = "sessionId", borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cwd: Option<Cow<'a, str>>,
    #[serde(rename = "gitBranch", borrow)]
    git_branch: Option<Cow<'a, str>>,
    #[serde(borrow)]
    version: Option<Cow<'a, str>>,
    #[serde(rename = "isSidechain")]
    is_sidechain: Option<bool>,
    #[serde(rename = "agentId", borrow)]
    agent_id: Option<Cow<'a, str>>,
    #[serde(rename = "isMeta")]
    is_meta: Option<bool>,
    #[serde(rename = "isCompactSummary")]
    is_compact_summary: Option<bool>,
    #[serde(rename = "requestId", borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(rename = "isApiErrorMessage")]
    is_api_error_message: Option<bool>,
    #[serde(rename = "toolUseResult", borrow)]
    tool_use_result: Option<&'a RawValue>,
    #[serde(rename = "sourceToolAssistantUUID", borrow)]
    source_tool_assistant_uuid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Message<'a>>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(rename = "durationMs", borrow)]
    duration_ms: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(rename = "retryAttempt")]
    retry_attempt: Option<u64>,
    #[serde(rename = "maxRetries")]
    max_retries: Option<u64>,
    #[serde(rename = "compactMetadata", borrow)]
    compact_metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    summary: Option<Cow<'a, str>>,
    #[serde(rename = "leafUuid", borrow)]
    leaf_uuid: Option<Cow<'a, str>>,
    #[serde(rename = "aiTitle", borrow)]
    ai_title: Option<Cow<'a, str>>,
    #[serde(rename = "customTitle", borrow)]
    custom_title: Option<Cow<'a, str>>,
    #[serde(rename = "agentName", borrow)]
    agent_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    attachment: Option<Attachment<'a>>,
    /// Who or what a newer `user` line came from (`origin.kind`: `human`, `peer`, ...).
    #[serde(borrow)]
    origin: Option<Origin<'a>>,
    #[serde(rename = "promptSource", borrow)]
    prompt_source: Option<Cow<'a, str>>,
    #[serde(rename = "scheduledTaskId", borrow)]
    scheduled_task_id: Option<&'a RawValue>,
}

/// The Messages API object in `message` (§1.4).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Message<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
}

/// One content block (§1.4); values that are copied through stay raw.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    is_error: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Attachment<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    prompt: Option<&'a RawValue>,
    /// `queued_command`: `prompt`, or `task-notification`.
    #[serde(rename = "commandMode", borrow)]
    command_mode: Option<Cow<'a, str>>,
    #[serde(borrow)]
    origin: Option<Origin<'a>>,
    #[serde(rename = "isMeta")]
    is_meta: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Usage {
    output_tokens: Option<u64>,
}

/// The API response whose lines are being read (§1.5).
struct OpenRequest {
    message_id: String,
    start_key: String,
    /// `usage` of the line with the largest `output_tokens`: early lines carry placeholders.
    usage: Option<(u64, String)>,
    timestamp: Option<String>,
    thread: Option<String>,
}

/// Per-session state; kept aside (`SessionStates`) while another session is mapped.
#[derive(Default)]
struct SessionState {
    session_id: String,
    seen_uuids: HashSet<String>,
    closed_requests: HashSet<String>,
    open: Option<OpenRequest>,
    /// Tool-use id -> MCP server name (None for built-in tools).
    tools: HashMap<String, Option<String>>,
    /// Threads created, with the parent's tool use that started each (when known).
    threads: HashMap<String, Option<String>>,
    /// Task/Agent calls by the hash of their `prompt`: a subagent whose file names no parent
    /// call is matched by its first prompt (tool-use id, subagent type).
    task_prompts: HashMap<u64, (String, Option<String>)>,
    /// Inline sidechain lines (no agent id) by uuid: the thread each belongs to.
    sidechain_threads: HashMap<String, String>,
    /// The time of the last line that had one (empty before the first).
    last_timestamp: String,
    /// Subagent metadata read from `agent-<id>.meta.json`, by agent id: (agent type, the
    /// parent's tool-use id that started it).
    agents: HashMap<String, (Option<String>, Option<String>)>,
}

#[derive(Default)]
pub struct ClaudeMapper {
    state: SessionState,
    others: tonbo_core::mapping::SessionStates<SessionState>,
    pub counts: Counts,
}

/// What every event of one line shares in `metadata`.
struct LineMeta<'l> {
    uuid: Option<&'l str>,
    parent_uuid: Option<&'l str>,
    timestamp: Option<&'l str>,
    /// The line has no time; `timestamp` is the session's last one.
    timestamp_inherited: bool,
    cwd: Option<&'l str>,
    git_branch: Option<&'l str>,
    version: Option<&'l str>,
    model: Option<&'l str>,
    message_id: Option<&'l str>,
    request_id: Option<&'l str>,
    is_sidechain: bool,
    agent_id: Option<&'l str>,
    thread: Option<String>,
    /// For the events of a subagent's thread: the session it belongs to (`metadata.parent_session_id`).
    parent_session_id: Option<&'l str>,
    /// For a subagent's thread: the parent's tool use that started it, if known.
    parent_tool_use_id: Option<String>,
    /// Base of the line's source keys: its uuid, or a hash of the line.
    key_base: String,
}

/// Emits the events of one line, numbering their keys.
struct Out<'s, 'm> {
    sink: &'s mut dyn EventSink,
    session_id: &'s str,
    meta: &'m LineMeta<'m>,
    n: usize,
    emitted: usize,
}

impl Out<'_, '_> {
    /// Passes over the line's next event (a blank text block) but keeps its number, so that
    /// the keys of the events after it are what they always were.
    fn pass_over(&mut self) {
        self.n += 1;
    }

    fn emit(&mut self, mut ev: EventBuf, kind: Option<&str>) -> Result<(), MapError> {
        let key = format!("{}#{}", self.meta.key_base, self.n);
        self.n += 1;
        self.emit_keyed(&mut ev, &key, kind)
    }

    fn emit_keyed(
        &mut self,
        ev: &mut EventBuf,
        key: &str,
        kind: Option<&str>,
    ) -> Result<(), MapError> {
        let m = self.meta;
        if let Some(ts) = m.timestamp {
            ev.str("processed_at", ts);
        }
        if let Some(t) = &m.thread {
            ev.str("session_thread_id", t);
        }
        ev.meta_str("source", SOURCE).meta_str("source_key", key);
        match m.timestamp {
            Some(ts) => ev.meta_str("original_timestamp", ts),
            None => ev.meta_raw("original_timestamp", "null"),
        };
        if m.timestamp_inherited {
            ev.meta_raw("timestamp_inherited", "true");
        }
        ev.meta_opt("kind", kind)
            .meta_opt("uuid", m.uuid)
            .meta_opt("parent_uuid", m.parent_uuid)
            .meta_opt("cwd", m.cwd)
            .meta_opt("git_branch", m.git_branch)
            .meta_opt("version", m.version)
            .meta_opt("model", m.model)
            .meta_opt("message_id", m.message_id)
            .meta_opt("request_id", m.request_id);
        if m.is_sidechain {
            ev.meta_raw("is_sidechain", "true");
        }
        ev.meta_opt("agent_id", m.agent_id);
        // The thread's own events point at their parent; its announcement is the parent's.
        if kind.is_some() {
            ev.meta_opt("parent_session_id", m.parent_session_id);
        }
        self.sink.event(self.session_id, &ev.finish())?;
        self.emitted += 1;
        Ok(())
    }
}

fn reject(msg: impl Into<String>) -> MapError {
    MapError::Reject(msg.into())
}

/// Decodes a raw JSON string value; `None` for any other JSON type.
fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<str>>(raw.get()).ok()
}

/// The agent of a subagent's file (`agent-<id>.jsonl`, or its `.meta.json`), by the record's
/// file name; an empty id names none.
fn agent_of_file<'a>(rec: &'a SourceRecord) -> Option<&'a str> {
    At::file_of(rec)
        .and_then(agent_id_of)
        .filter(|id| !id.is_empty())
}

/// `mcp__<server>__<tool>` -> (server, tool) (§3.2).
fn split_mcp(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("mcp__")?;
    let (server, tool) = rest.split_once("__")?;
    (!server.is_empty() && !tool.is_empty()).then_some((server, tool))
}

/// Line types that carry no conversation content; skipped by rule (§3.2, last rows).
const SKIPPED_TYPES: &[&str] = &[
    "progress",
    "queue-operation",
    "file-history-snapshot",
    "permission-mode",
    "mode",
    "last-prompt",
    "pr-link",
    "worktree-state",
    "agent-setting",
    "bridge-session",
    "relocated",
    "atis-latch",
    "frame-link",
    "agent-color",
    "tag",
    "cost-state",
    "file-history-delta",
    "content-replacement",
    "fork-context-ref",
    "artifact-autoreact-ledger",
    "artifact-comment-monitor",
];

/// Text by which Claude Code marks a tool use the user rejected (§1.6).
const REJECTION_TEXT: &str = "doesn't want to proceed with this tool use";

impl ClaudeMapper {
    /// Maps one source record of `claude-code`. Returns the number of events produced.
    pub fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let session_id = format!("{SOURCE}-{}", rec.session);
        tonbo_core::contract::check_session_id(&session_id).map_err(MapError::Reject)?;
        if self.state.session_id != session_id {
            // The open API response ends with its session's run of records (what keeps a
            // backfill's batches whole); the rest of the state waits for the session's return.
            self.finish(sink)?;
            let current_key = self.state.session_id.clone();
            self.others
                .switch(&mut self.state, current_key, &session_id, || SessionState {
                    session_id: session_id.clone(),
                    ..SessionState::default()
                });
        }
        let record_kind = RecordKind::of(rec);
        if record_kind == Some(RecordKind::SubagentMeta) {
            self.read_meta(rec);
            return Ok(0);
        }
        let line: ClaudeLine = serde_json::from_str(rec.record.get())
            .map_err(|e| reject(format!("not a Claude Code line: {e}")))?;
        let Some(kind) = line.kind.as_deref() else {
            return Err(reject("Claude Code line has no `type`"));
        };
        // §1.8: a line of another session (a resume bridge, or replayed history) belongs to
        // that session's own file.
        if let Some(sid) = line.session_id.as_deref() {
            if sid != rec.session && !sid.is_empty() {
                self.counts.skip("line of another session");
                return Ok(0);
            }
        }
        if let Some(uuid) = line.uuid.as_deref().filter(|u| !u.is_empty()) {
            if !self.state.seen_uuids.insert(uuid.to_string()) {
                self.counts.skip("line repeated (same uuid)");
                return Ok(0);
            }
        }
        // Any line that is not part of the open API response ends it (§1.5).
        let continues_request = kind == "assistant"
            && line.message.as_ref().and_then(|m| m.id.as_deref())
                == self.state.open.as_ref().map(|o| o.message_id.as_str());
        if !continues_request {
            self.close_request(sink)?;
        }

        let subagent_file = agent_of_file(rec);
        let agent_id = line.agent_id.as_deref().or(subagent_file);
        let is_sidechain = line.is_sidechain.unwrap_or(false) || subagent_file.is_some();
        let thread = match (is_sidechain, agent_id) {
            (false, _) => None,
            (true, Some(id)) => Some(format!("agent-{id}")),
            // Older files keep subagents inline with no agent id: each sidechain conversation
            // is the chain of lines from its root (a line whose parent is no sidechain line).
            (true, None) => Some(self.inline_sidechain_thread(&line)),
        };
        // A thread met for the first time: who started it (the meta file's tool use, or the
        // Task/Agent call whose prompt its first line is, for older layouts) and its agent type.
        let mut new_thread = None;
        if let Some(t) = thread
            .as_ref()
            .filter(|t| !self.state.threads.contains_key(*t))
        {
            let (mut agent_type, mut tool_use_id) = agent_id
                .and_then(|a| self.state.agents.get(a).cloned())
                .unwrap_or_default();
            if tool_use_id.is_none() {
                if let Some((id, ty)) = first_prompt_text(&line)
                    .and_then(|p| self.state.task_prompts.get(&fnv64(p.trim().as_bytes())))
                {
                    tool_use_id = Some(id.clone());
                    agent_type = agent_type.or_else(|| ty.clone());
                }
            }
            self.state.threads.insert(t.clone(), tool_use_id);
            new_thread = Some((t.clone(), agent_type));
        }
        let msg = line.message.as_ref();
        let key_base = match line.uuid.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => u.to_string(),
            None => format!("{kind}/{:016x}", fnv64(rec.record.get().as_bytes())),
        };
        // A line without a time (titles, some hand-made or old lines) takes the session's last
        // one, said to be inherited.
        let inherited = match line.timestamp.as_deref() {
            Some(ts) => {
                self.state.last_timestamp.clear();
                self.state.last_timestamp.push_str(ts);
                None
            }
            None if !self.state.last_timestamp.is_empty() => {
                Some(self.state.last_timestamp.clone())
            }
            None => None,
        };
        let meta = LineMeta {
            uuid: line.uuid.as_deref(),
            parent_uuid: line.parent_uuid.as_deref(),
            timestamp: line.timestamp.as_deref().or(inherited.as_deref()),
            timestamp_inherited: inherited.is_some(),
            cwd: line.cwd.as_deref(),
            git_branch: line.git_branch.as_deref().filter(|b| !b.is_empty()),
            version: line.version.as_deref(),
            model: msg.and_then(|m| m.model.as_deref()),
            message_id: msg.and_then(|m| m.id.as_deref()),
            request_id: line.request_id.as_deref(),
            is_sidechain,
            agent_id,
            parent_session_id: thread.as_ref().map(|_| session_id.as_str()),
            parent_tool_use_id: thread
                .as_ref()
                .and_then(|t| self.state.threads.get(t))
                .cloned()
                .flatten(),
            thread,
            key_base,
        };
        let mut out = Out {
            sink,
            session_id: &session_id,
            meta: &meta,
            n: 0,
            emitted: 0,
        };
        if let Some((thread, agent_type)) = new_thread {
            let mut ev = EventBuf::new("session.thread_created");
            // `session_thread_id` is added by `emit_keyed`, as on every event of the thread.
            ev.str("agent_name", agent_type.as_deref().unwrap_or("subagent"));
            ev.meta_opt("parent_tool_use_id", meta.parent_tool_use_id.as_deref());
            // A subagent's thread lives in its parent's stream (the link's other end is
            // `parent_session_id` on the thread's events).
            ev.meta_str("child_session_id", &session_id);
            out.emit_keyed(&mut ev, &format!("thread/{thread}"), None)?;
        }
        match kind {
            "user" => self.map_user(&line, &mut out)?,
            "assistant" => self.map_assistant(&line, &mut out)?,
            "system" => self.map_system(&line, line.subtype.as_deref(), &mut out)?,
            "compact_boundary" => self.map_system(&line, Some("compact_boundary"), &mut out)?,
            "summary" | "ai-title" | "custom-title" | "agent-name" => {
                let title = match kind {
                    "summary" => line.summary.as_deref(),
                    "ai-title" => line.ai_title.as_deref().or(line.title.as_deref()),
                    "custom-title" => line.custom_title.as_deref().or(line.title.as_deref()),
                    _ => line.agent_name.as_deref().or(line.title.as_deref()),
                };
                let Some(t) = title else {
                    self.skip(kind);
                    return Ok(out.emitted);
                };
                let hash = fnv64(t.as_bytes());
                // A `summary` titles the session that holds its leaf, which claude-read tells
                // (`summary-title`); otherwise it is kept as what it is, a summary of a
                // conversation somewhere else.
                let (ev_type, key) = match (kind, line.leaf_uuid.as_deref()) {
                    ("summary", leaf) if record_kind != Some(RecordKind::SummaryTitle) => (
                        "claude_code.summary",
                        format!("summary/{}/{hash:016x}", leaf.unwrap_or("")),
                    ),
                    ("summary", Some(leaf)) => (
                        "claude_code.title",
                        format!("title/summary/{leaf}/{hash:016x}"),
                    ),
                    _ => ("claude_code.title", format!("title/{kind}/{hash:016x}")),
                };
                // The same title or summary again (several files, a re-emitted line): once.
                if !self.state.seen_uuids.insert(key.clone()) {
                    self.skip(&format!("{kind} repeated"));
                    return Ok(out.emitted);
                }
                let mut ev = EventBuf::new(ev_type);
                if ev_type == "claude_code.summary" {
                    ev.str("summary", t);
                } else {
                    ev.str("title", t).str("title_kind", kind);
                }
                if let Some(leaf) = line.leaf_uuid.as_deref() {
                    ev.meta_str("leaf_uuid", leaf);
                }
                out.emit_keyed(
                    &mut ev,
                    &key,
                    Some(if ev_type == "claude_code.summary" {
                        "summary"
                    } else {
                        "title"
                    }),
                )?;
            }
            "attachment" => self.map_attachment(&line, &mut out)?,
            t if SKIPPED_TYPES.contains(&t) => self.skip(t),
            other => self.counts.unknown(other),
        }
        Ok(out.emitted)
    }

    fn skip(&mut self, what: &str) {
        self.counts.skip(what);
    }

    /// The thread of an inline sidechain line without an agent id: its root's
    /// (`agent-sidechain-<root uuid>`), the root being the first line whose parent is not a
    /// sidechain line of this session.
    fn inline_sidechain_thread(&mut self, line: &ClaudeLine) -> String {
        let parent = line
            .parent_uuid
            .as_deref()
            .and_then(|p| self.state.sidechain_threads.get(p))
            .cloned();
        let thread = parent.unwrap_or_else(|| {
            format!(
                "agent-sidechain-{}",
                line.uuid
                    .as_deref()
                    .filter(|u| !u.is_empty())
                    .unwrap_or("?")
            )
        });
        if let Some(uuid) = line.uuid.as_deref().filter(|u| !u.is_empty()) {
            self.state
                .sidechain_threads
                .insert(uuid.to_string(), thread.clone());
        }
        thread
    }

    /// Remembers a Task/Agent call's prompt, to find it again as a subagent's first line.
    fn note_task_prompt(&mut self, tool_use_id: &str, input: Option<&RawValue>) {
        #[derive(Deserialize)]
        struct TaskInput<'a> {
            #[serde(borrow)]
            prompt: Option<Cow<'a, str>>,
            #[serde(borrow)]
            subagent_type: Option<Cow<'a, str>>,
        }
        let Some(input) = input.and_then(|i| serde_json::from_str::<TaskInput>(i.get()).ok())
        else {
            return;
        };
        if let Some(prompt) = input.prompt {
            self.state.task_prompts.insert(
                fnv64(prompt.trim().as_bytes()),
                (
                    tool_use_id.to_string(),
                    input.subagent_type.map(Cow::into_owned),
                ),
            );
        }
    }

    fn read_meta(&mut self, rec: &SourceRecord) {
        #[derive(Deserialize)]
        struct Meta {
            #[serde(rename = "agentType", alias = "subagent_type", alias = "agent_type")]
            agent_type: Option<String>,
            #[serde(rename = "toolUseId", alias = "tool_use_id")]
            tool_use_id: Option<String>,
        }
        let agent = agent_of_file(rec);
        match (agent, serde_json::from_str::<Meta>(rec.record.get())) {
            (Some(agent), Ok(m)) => {
                self.state
                    .agents
                    .insert(agent.to_string(), (m.agent_type, m.tool_use_id));
            }
            _ => self.skip("subagent-meta"),
        }
    }

    /// Closes the open API response with its `span.model_request_end`. Called when a line of
    /// another kind arrives, when the session changes, and at the end of input.
    pub fn finish(&mut self, sink: &mut dyn EventSink) -> Result<(), MapError> {
        self.close_request(sink)
    }

    fn close_request(&mut self, sink: &mut dyn EventSink) -> Result<(), MapError> {
        let Some(open) = self.state.open.take() else {
            return Ok(());
        };
        let mut ev = EventBuf::new("span.model_request_end");
        ev.str("model_request_start_id", &open.start_key)
            .bool("is_error", false);
        let usage = open.usage.as_ref().map(|(_, u)| u.as_str());
        ev.raw("model_usage", usage.unwrap_or("{}"));
        if let Some(ts) = &open.timestamp {
            ev.str("processed_at", ts);
        }
        if let Some(t) = &open.thread {
            ev.str("session_thread_id", t);
        }
        ev.meta_str("source", SOURCE)
            .meta_str("source_key", &format!("{}/end", open.message_id));
        match &open.timestamp {
            Some(ts) => ev.meta_str("original_timestamp", ts),
            None => ev.meta_raw("original_timestamp", "null"),
        };
        ev.meta_str("kind", "model_request")
            .meta_str("message_id", &open.message_id);
        if open.thread.is_some() {
            ev.meta_str("parent_session_id", &self.state.session_id);
        }
        sink.event(&self.state.session_id, &ev.finish())?;
        self.state.closed_requests.insert(open.message_id);
        Ok(())
    }

    fn map_user(&mut self, line: &ClaudeLine, out: &mut Out) -> Result<(), MapError> {
        let Some(content) = line.message.as_ref().and_then(|m| m.content) else {
            return Err(reject("`user` line has no message.content"));
        };
        // A string prompt, or an array of blocks.
        if let Some(text) = as_str(content) {
            return self.map_prompt(line, Prompt::Text(&text, content.get()), out);
        }
        let blocks: Vec<&RawValue> = serde_json::from_str(content.get())
            .map_err(|_| reject("message.content is neither a string nor an array"))?;
        let parsed: Vec<Block> = blocks
            .iter()
            .map(|b| serde_json::from_str(b.get()).unwrap_or_default())
            .collect();
        let has_results = parsed
            .iter()
            .any(|b| b.kind.as_deref() == Some("tool_result"));
        if has_results
            || line.tool_use_result.is_some()
            || line.source_tool_assistant_uuid.is_some()
        {
            return self.map_tool_results(line, &blocks, &parsed, out);
        }
        self.map_prompt(line, Prompt::Blocks(&blocks, &parsed, content.get()), out)
    }

    /// A `user` line that is not a tool result: a person's input (its injected blocks split
    /// off into `system.message`s after it), another agent's message, or injected text.
    fn map_prompt(
        &mut self,
        line: &ClaudeLine,
        prompt: Prompt,
        out: &mut Out,
    ) -> Result<(), MapError> {
        let facts = UserFacts {
            is_compact_summary: line.is_compact_summary == Some(true),
            is_meta: line.is_meta == Some(true),
            origin_kind: line.origin.as_ref().and_then(|o| o.kind.as_deref()),
            prompt_source: line.prompt_source.as_deref(),
            scheduled: line.scheduled_task_id.is_some(),
            in_thread: out.meta.thread.is_some(),
        };
        let typed = prompt.typed();
        if typed.text.trim().is_empty() && !typed.injected.is_empty() && !typed.other_blocks {
            // Nothing but injected context (an IDE selection sent alone, say).
            return emit_injected(&typed.injected, out);
        }
        let class = user::classify(&facts, &typed.text);
        if class.author == Some(Author::Human) && !typed.injected.is_empty() {
            let content = typed.content.map_or_else(|| prompt.content(), Cow::Owned);
            let ev = user_event(class, line, &content);
            out.emit(ev, Some(class.kind))?;
            return emit_injected(&typed.injected, out);
        }
        // Injected or agent-written: the line stays whole. Classified by what it starts with.
        let class = if typed.injected.is_empty() {
            class
        } else {
            user::classify(&facts, &prompt.first_text())
        };
        let mut ev = if class.event == "user.interrupt" {
            let mut ev = EventBuf::new(class.event);
            ev.meta_str("text", &prompt.first_text());
            ev
        } else {
            user_event(class, line, &prompt.content())
        };
        if class.kind == "subagent_prompt" {
            ev.meta_opt("parent_tool_use_id", out.meta.parent_tool_use_id.as_deref());
        }
        out.emit(ev, Some(class.kind))
    }

    /// An `attachment` line: text typed while the agent worked (`queued_command`), or harness
    /// bookkeeping, skipped and counted by its type.
    fn map_attachment(&mut self, line: &ClaudeLine, out: &mut Out) -> Result<(), MapError> {
        let Some(att) = line.attachment.as_ref() else {
            self.skip("attachment");
            return Ok(());
        };
        let kind = att.kind.as_deref().unwrap_or("");
        if kind != "queued_command" {
            self.skip(&format!("attachment:{kind}"));
            return Ok(());
        }
        let text = att.prompt.and_then(as_str).unwrap_or_default();
        let Some(prompt) = att.prompt.filter(|_| !text.trim().is_empty()) else {
            // Most `queued_command` attachments carry nothing.
            self.skip("attachment:queued_command (empty)");
            return Ok(());
        };
        let origin_kind = att.origin.as_ref().and_then(|o| o.kind.as_deref());
        let class = if att.command_mode.as_deref() == Some("task-notification") {
            UserClass {
                event: "system.message",
                kind: "task_notification",
                author: None,
            }
        } else {
            let facts = UserFacts {
                is_meta: att.is_meta == Some(true),
                origin_kind,
                in_thread: out.meta.thread.is_some(),
                ..UserFacts::default()
            };
            match user::classify(&facts, &text) {
                c if c.author == Some(Author::Human) && c.kind == "prompt" => UserClass {
                    kind: "queued",
                    ..c
                },
                c => c,
            }
        };
        let content = match as_str(prompt) {
            Some(_) => text_content(prompt.get()),
            None => prompt.get().to_string(),
        };
        let mut ev = EventBuf::new(class.event);
        ev.raw("content", &content);
        if let Some(a) = class.author {
            ev.meta_str("author", a.as_str());
        }
        ev.meta_opt("origin_kind", origin_kind);
        out.emit(ev, Some(class.kind))
    }

    fn map_tool_results(
        &mut self,
        line: &ClaudeLine,
        blocks: &[&RawValue],
        parsed: &[Block],
        out: &mut Out,
    ) -> Result<(), MapError> {
        for (raw, b) in blocks.iter().zip(parsed) {
            if b.kind.as_deref() != Some("tool_result") {
                // A fork subagent's task sits beside a replayed result: the parent wrote it.
                let fork_task = out.meta.thread.is_some()
                    && b.text
                        .and_then(as_str)
                        .is_some_and(|t| t.trim_start().starts_with("<fork-boilerplate>"));
                let mut ev = EventBuf::new(if fork_task {
                    "user.message"
                } else {
                    "system.message"
                });
                ev.raw("content", &format!("[{}]", raw.get()));
                if fork_task {
                    ev.meta_str("author", Author::Agent.as_str());
                    ev.meta_opt("parent_tool_use_id", out.meta.parent_tool_use_id.as_deref());
                    out.emit(ev, Some("subagent_prompt"))?;
                } else {
                    // Text beside results (rare): kept, as context rather than a prompt.
                    out.emit(ev, Some("tool_result_text"))?;
                }
                continue;
            }
            let Some(tool_use_id) = b.tool_use_id.as_deref() else {
                return Err(reject("tool_result block has no tool_use_id"));
            };
            let content = match b.content {
                None => "[]".to_string(),
                Some(c) if as_str(c).is_some() => text_content(c.get()),
                Some(c) => normalize_result_blocks(c),
            };
            let is_error = b.is_error.unwrap_or(false);
            let result_text = b.content.and_then(as_str).unwrap_or_default();
            if is_error && result_text.contains(REJECTION_TEXT) {
                let mut ev = EventBuf::new("user.tool_confirmation");
                ev.str("result", "deny")
                    .str("tool_use_id", tool_use_id)
                    .str("deny_message", &result_text);
                out.emit(ev, Some("tool_rejected"))?;
            }
            let mcp = self.state.tools.get(tool_use_id).cloned().flatten();
            let mut ev = match &mcp {
                Some(server) => {
                    let mut ev = EventBuf::new("agent.mcp_tool_result");
                    ev.str("mcp_tool_use_id", tool_use_id);
                    ev.meta_str("mcp_server_name", server);
                    ev
                }
                None => {
                    let mut ev = EventBuf::new("agent.tool_result");
                    ev.str("tool_use_id", tool_use_id);
                    ev
                }
            };
            ev.raw("content", &content).bool("is_error", is_error);
            ev.meta_str("tool_use_id", tool_use_id);
            if let Some(r) = line
                .tool_use_result
                .filter(|r| r.get().len() <= MAX_TOOL_USE_RESULT)
            {
                ev.meta_raw("tool_use_result", r.get());
            }
            out.emit(ev, Some("tool_result"))?;
        }
        Ok(())
    }

    fn map_assistant(&mut self, line: &ClaudeLine, out: &mut Out) -> Result<(), MapError> {
        let Some(msg) = line.message.as_ref() else {
            return Err(reject("`assistant` line has no message"));
        };
        let Some(content) = msg.content else {
            return Err(reject("`assistant` line has no message.content"));
        };
        let blocks: Vec<&RawValue> = match as_str(content) {
            Some(_) => Vec::new(),
            None => serde_json::from_str(content.get())
                .map_err(|_| reject("message.content is neither a string nor an array"))?,
        };
        // A synthetic error notice (§1.2 isApiErrorMessage), not a model response.
        if line.is_api_error_message == Some(true) || msg.model.as_deref() == Some("<synthetic>") {
            let text = blocks
                .iter()
                .filter_map(|b| serde_json::from_str::<Block>(b.get()).ok())
                .filter_map(|b| b.text.and_then(as_str).map(Cow::into_owned))
                .collect::<Vec<_>>()
                .join("\n");
            let text = if text.is_empty() {
                as_str(content).map(Cow::into_owned).unwrap_or_default()
            } else {
                text
            };
            let mut ev = EventBuf::new("session.error");
            let error = serde_json::json!({
                "type": "unknown_error",
                "message": text,
                "retry_status": {"type": "terminal"}
            });
            ev.raw("error", &error.to_string());
            return out.emit(ev, Some("api_error_message"));
        }
        self.track_request(line, msg, out)?;
        if let Some(text) = as_str(content) {
            // Older or hand-made lines with string content.
            if text.trim().is_empty() {
                self.skip("blank text block");
                return Ok(());
            }
            let mut ev = EventBuf::new("agent.message");
            ev.raw(
                "content",
                &text_content(&serde_json::to_string(&text).unwrap_or_default()),
            );
            return out.emit(ev, Some("text"));
        }
        for raw in blocks {
            let b: Block = serde_json::from_str(raw.get()).unwrap_or_default();
            match b.kind.as_deref().unwrap_or("") {
                "text" => {
                    let text = b.text.map_or("\"\"", |t| t.get());
                    if is_blank_json_str(text) {
                        // Claude Code writes "\n\n" blocks between others: nothing was said.
                        out.pass_over();
                        self.skip("blank text block");
                        continue;
                    }
                    let mut ev = EventBuf::new("agent.message");
                    ev.raw("content", &text_content(text));
                    out.emit(ev, Some("text"))?;
                }
                "thinking" => {
                    // Managed Agents' agent.thinking carries no content (§2b); the text is kept
                    // in an extension block (§3.1), the signature is dropped.
                    let thinking = b.thinking.map_or("\"\"", |t| t.get());
                    let mut ev = EventBuf::new("agent.thinking");
                    if is_blank_json_str(thinking) {
                        // Thinking whose text was withheld (only its signature is kept).
                        ev.raw("content", "[{\"type\":\"redacted\"}]");
                        out.emit(ev, Some("redacted_thinking"))?;
                        continue;
                    }
                    ev.raw(
                        "content",
                        &format!("[{{\"type\":\"thinking\",\"thinking\":{thinking}}}]"),
                    );
                    out.emit(ev, Some("thinking"))?;
                }
                "redacted_thinking" => {
                    let mut ev = EventBuf::new("agent.thinking");
                    ev.raw("content", "[{\"type\":\"redacted\"}]");
                    out.emit(ev, Some("redacted_thinking"))?;
                }
                "tool_use" | "server_tool_use" => {
                    let id = b.id.as_deref().unwrap_or("");
                    let name = b.name.as_deref().unwrap_or("");
                    let input = b.input.map_or("{}", |i| i.get());
                    let mcp = split_mcp(name);
                    self.state
                        .tools
                        .insert(id.to_string(), mcp.map(|(s, _)| s.to_string()));
                    if matches!(name, "Task" | "Agent") {
                        self.note_task_prompt(id, b.input);
                    }
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
                    if b.kind.as_deref() == Some("server_tool_use") {
                        ev.meta_raw("server_tool", "true");
                    }
                    out.emit(ev, Some("tool_use"))?;
                }
                k @ ("web_search_tool_result" | "advisor_tool_result") => {
                    let id = b.tool_use_id.as_deref().unwrap_or("");
                    let content = match b.content {
                        Some(c) if as_str(c).is_some() => text_content(c.get()),
                        Some(c) if c.get().starts_with('[') => normalize_result_blocks(c),
                        Some(c) => {
                            text_content(&serde_json::to_string(c.get()).unwrap_or_default())
                        }
                        None => "[]".to_string(),
                    };
                    let mut ev = EventBuf::new("agent.tool_result");
                    ev.str("tool_use_id", id)
                        .raw("content", &content)
                        .bool("is_error", false);
                    ev.meta_str("tool_use_id", id).meta_str("block_type", k);
                    out.emit(ev, Some("tool_result"))?;
                }
                other => {
                    // An unknown block is kept whole under a custom type, and counted.
                    self.counts.unknown(&format!("block:{other}"));
                    let mut ev = EventBuf::new("claude_code.block");
                    ev.raw("block", raw.get());
                    out.emit(ev, Some("unknown_block"))?;
                }
            }
        }
        Ok(())
    }

    /// Opens a span for a new API response, or folds this line's usage into the open one.
    fn track_request(
        &mut self,
        line: &ClaudeLine,
        msg: &Message,
        out: &mut Out,
    ) -> Result<(), MapError> {
        let Some(message_id) = msg.id.as_deref() else {
            return Ok(());
        };
        let output_tokens = msg
            .usage
            .and_then(|u| serde_json::from_str::<Usage>(u.get()).ok())
            .and_then(|u| u.output_tokens)
            .unwrap_or(0);
        if let Some(open) = &mut self.state.open {
            if open.message_id == message_id {
                if let Some(u) = msg.usage {
                    if open.usage.as_ref().is_none_or(|(o, _)| output_tokens >= *o) {
                        open.usage = Some((output_tokens, u.get().to_string()));
                    }
                }
                open.timestamp = line
                    .timestamp
                    .as_deref()
                    .map(str::to_string)
                    .or(open.timestamp.take());
                return Ok(());
            }
        }
        // A response seen earlier and closed since (lines of one response split by others):
        // its span was written once; a second one would count its usage twice.
        if self.state.closed_requests.contains(message_id) {
            return Ok(());
        }
        let start_key = format!("{message_id}/start");
        let mut ev = EventBuf::new("span.model_request_start");
        out.emit_keyed(&mut ev, &start_key, Some("model_request"))?;
        self.state.open = Some(OpenRequest {
            message_id: message_id.to_string(),
            start_key,
            usage: msg.usage.map(|u| (output_tokens, u.get().to_string())),
            timestamp: line.timestamp.as_deref().map(str::to_string),
            thread: out.meta.thread.clone(),
        });
        Ok(())
    }

    fn map_system(
        &mut self,
        line: &ClaudeLine,
        subtype: Option<&str>,
        out: &mut Out,
    ) -> Result<(), MapError> {
        match subtype {
            Some("turn_duration") => {
                let mut ev = EventBuf::new("session.status_idle");
                ev.raw("stop_reason", "{\"type\":\"end_turn\"}");
                if let Some(d) = line.duration_ms {
                    ev.meta_raw("duration_ms", d.get());
                }
                out.emit(ev, Some("turn_duration"))
            }
            Some("api_error") => {
                #[derive(Deserialize, Default)]
                #[serde(default)]
                struct ApiError {
                    status: Option<u64>,
                    message: Option<String>,
                }
                let err: ApiError = line
                    .error
                    .and_then(|e| serde_json::from_str(e.get()).ok())
                    .unwrap_or_default();
                let kind = match err.status {
                    Some(429) => "model_rate_limited_error",
                    Some(529) => "model_overloaded_error",
                    _ => "model_request_failed_error",
                };
                let retrying = match (line.retry_attempt, line.max_retries) {
                    (Some(a), Some(m)) => a < m,
                    _ => false,
                };
                let message = err
                    .message
                    .or_else(|| line.content.and_then(as_str).map(Cow::into_owned))
                    .unwrap_or_else(|| {
                        format!(
                            "API error {}",
                            err.status.map_or("?".into(), |s| s.to_string())
                        )
                    });
                let error = serde_json::json!({
                    "type": kind,
                    "message": message,
                    "retry_status": {"type": if retrying { "retrying" } else { "exhausted" }}
                });
                let mut ev = EventBuf::new("session.error");
                ev.raw("error", &error.to_string());
                if let Some(e) = line.error {
                    ev.meta_raw("error", e.get());
                }
                out.emit(ev, Some("api_error"))
            }
            Some("compact_boundary") => {
                let mut ev = EventBuf::new("agent.thread_context_compacted");
                if let Some(m) = line.compact_metadata {
                    ev.meta_raw("compact_metadata", m.get());
                }
                ev.meta_opt("logical_parent_uuid", line.logical_parent_uuid.as_deref());
                out.emit(ev, Some("compact_boundary"))
            }
            other => {
                // stop_hook_summary, local_command, informational, ... (§3.2): a custom event.
                let mut ev = EventBuf::new("claude_code.system");
                ev.str("subtype", other.unwrap_or(""));
                if let Some(c) = line.content {
                    ev.raw("content", c.get());
                }
                if let Some(l) = line.level.as_deref() {
                    ev.str("level", l);
                }
                out.emit(ev, Some("system"))
            }
        }
    }
}

/// The text of a `user` line's prompt: its string content, or its first text block's.
fn first_prompt_text<'l>(line: &'l ClaudeLine) -> Option<Cow<'l, str>> {
    if line.kind.as_deref() != Some("user") {
        return None;
    }
    let content = line.message.as_ref()?.content?;
    if let Some(t) = as_str(content) {
        return Some(t);
    }
    let blocks: Vec<Block> = serde_json::from_str(content.get()).ok()?;
    blocks
        .into_iter()
        .filter(|b| b.kind.as_deref() == Some("text"))
        .find_map(|b| b.text.and_then(as_str).map(|t| Cow::Owned(t.into_owned())))
}

/// A `user.message` (with `metadata.author`) or `system.message` of a `user` line's content.
fn user_event(class: UserClass, line: &ClaudeLine, content: &str) -> EventBuf {
    let mut ev = EventBuf::new(class.event);
    ev.raw("content", content);
    if let Some(a) = class.author {
        ev.meta_str("author", a.as_str());
    }
    if let Some(o) = &line.origin {
        ev.meta_opt("origin_kind", o.kind.as_deref())
            .meta_opt("origin_subkind", o.subkind.as_deref())
            .meta_opt("from", o.name.as_deref().or(o.from.as_deref()));
    }
    ev
}

/// The context blocks split off a person's prompt, after it: IDE context (with what it says
/// as `metadata.ide`) and system reminders, each one `system.message`.
fn emit_injected(injected: &[Injected], out: &mut Out) -> Result<(), MapError> {
    let (ide, other): (Vec<&Injected>, Vec<&Injected>) = injected.iter().partition(|i| i.is_ide());
    for (group, kind) in [(ide, "ide_context"), (other, "system_reminder")] {
        if group.is_empty() {
            continue;
        }
        let blocks: Vec<String> = group
            .iter()
            .map(|i| format!("{{\"type\":\"text\",\"text\":{}}}", json_str(&i.text)))
            .collect();
        let mut ev = EventBuf::new("system.message");
        ev.raw("content", &format!("[{}]", blocks.join(",")));
        if kind == "ide_context" {
            let owned: Vec<Injected> = group.into_iter().cloned().collect();
            ev.meta_raw("ide", &user::ide_metadata(&owned).to_string());
        }
        out.emit(ev, Some(kind))?;
    }
    Ok(())
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a str serialises")
}

/// The content of a `user` line that is not a tool result.
enum Prompt<'c> {
    /// A string, decoded, and its raw JSON.
    Text(&'c str, &'c str),
    /// Blocks, raw and parsed, and the raw JSON array.
    Blocks(&'c [&'c RawValue], &'c [Block<'c>], &'c str),
}

/// What a person typed, once injected blocks are taken off.
struct Typed<'c> {
    /// The first typed text (what classifies the line).
    text: Cow<'c, str>,
    /// The content without the injected blocks, when there were any.
    content: Option<String>,
    injected: Vec<Injected>,
    /// Blocks other than text (images, documents) were kept.
    other_blocks: bool,
}

impl<'c> Prompt<'c> {
    /// The content as event content: blocks as they are, a string as one text block.
    fn content(&self) -> Cow<'c, str> {
        match self {
            Prompt::Text(_, raw) => Cow::Owned(text_content(raw)),
            Prompt::Blocks(_, _, raw) => Cow::Borrowed(raw),
        }
    }

    /// The text of the string, or of the first text block.
    fn first_text(&self) -> Cow<'c, str> {
        match self {
            Prompt::Text(t, _) => Cow::Borrowed(t),
            Prompt::Blocks(_, parsed, _) => parsed
                .iter()
                .filter(|b| b.kind.as_deref() == Some("text"))
                .find_map(|b| b.text.and_then(as_str))
                .unwrap_or_default(),
        }
    }

    /// Splits injected elements off the text (each text block's leading ones).
    fn typed(&self) -> Typed<'c> {
        match self {
            Prompt::Text(t, _) => {
                let (injected, rest) = user::split_injected(t);
                let content = (!injected.is_empty()).then(|| text_content(&json_str(rest)));
                Typed {
                    text: Cow::Borrowed(rest),
                    content,
                    injected,
                    other_blocks: false,
                }
            }
            Prompt::Blocks(raw, parsed, _) => {
                let mut injected = Vec::new();
                let mut kept: Vec<Cow<str>> = Vec::new();
                let mut first: Option<Cow<str>> = None;
                let mut other_blocks = false;
                for (r, b) in raw.iter().zip(parsed.iter()) {
                    let text = (b.kind.as_deref() == Some("text"))
                        .then(|| b.text.and_then(as_str))
                        .flatten();
                    let Some(text) = text else {
                        other_blocks = true;
                        kept.push(Cow::Borrowed(r.get()));
                        continue;
                    };
                    let (inj, rest) = user::split_injected(&text);
                    if inj.is_empty() {
                        if first.is_none() {
                            first = Some(text.clone());
                        }
                        kept.push(Cow::Borrowed(r.get()));
                        continue;
                    }
                    injected.extend(inj);
                    if !rest.trim().is_empty() {
                        if first.is_none() {
                            first = Some(Cow::Owned(rest.to_string()));
                        }
                        kept.push(Cow::Owned(format!(
                            "{{\"type\":\"text\",\"text\":{}}}",
                            json_str(rest)
                        )));
                    }
                }
                let content = (!injected.is_empty()).then(|| format!("[{}]", kept.join(",")));
                Typed {
                    text: first.unwrap_or(Cow::Borrowed("")),
                    content,
                    injected,
                    other_blocks,
                }
            }
        }
    }
}

/// `toolUseResult` is kept in metadata up to this size; larger ones repeat the content.
const MAX_TOOL_USE_RESULT: usize = 64 * 1024;

/// Tool result blocks: text and image pass unchanged; `tool_reference` becomes text (§3.2).
fn normalize_result_blocks(raw: &RawValue) -> String {
    let blocks: Vec<&RawValue> = match serde_json::from_str(raw.get()) {
        Ok(b) => b,
        Err(_) => return text_content(&serde_json::to_string(raw.get()).unwrap_or_default()),
    };
    let mut out = String::with_capacity(raw.get().len() + 16);
    out.push('[');
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Ref<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<Cow<'a, str>>,
            #[serde(borrow)]
            tool_name: Option<Cow<'a, str>>,
        }
        let r: Ref = serde_json::from_str(b.get()).unwrap_or_default();
        if r.kind.as_deref() == Some("tool_reference") {
            let text = format!("tool_reference: {}", r.tool_name.as_deref().unwrap_or(""));
            out.push_str("{\"type\":\"text\",\"text\":");
            out.push_str(&serde_json::to_string(&text).unwrap_or_default());
            out.push('}');
        } else {
            out.push_str(b.get());
        }
    }
    out.push(']');
    out
}

impl tonbo_core::mapping::SourceMapping for ClaudeMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        ClaudeMapper::map(self, rec, sink)
    }

    fn finish(&mut self, sink: &mut dyn EventSink) -> Result<(), MapError> {
        ClaudeMapper::finish(self, sink)
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            split_mcp("mcp__github__search_issues"),
            Some(("github", "search_issues"))
        );
        assert_eq!(split_mcp("mcp__a__b__c"), Some(("a", "b__c")));
        assert_eq!(split_mcp("Bash"), None);
    }

    #[test]
    fn a_records_agent_comes_from_at_else_from_provenance() {
        for (fields, agent) in [
            (r#""at":"agent-a1.jsonl:3""#, Some("a1")),
            (r#""at":"agent-a1.meta.json""#, Some("a1")),
            // `at` wins; provenance is for people.
            (
                r#""at":"S.jsonl:3","provenance":{"file":"/p/S/subagents/agent-x.jsonl"}"#,
                None,
            ),
            // Written by an older reader.
            (
                r#""provenance":{"file":"/p/S/subagents/agent-a1.jsonl","line":3}"#,
                Some("a1"),
            ),
            (r#""at":"agent-.jsonl:1""#, None),
            (r#""at":"1f0e.jsonl:1""#, None),
        ] {
            let line = format!(r#"{{"source":"claude-code","session":"s","record":{{}},{fields}}}"#);
            let rec: SourceRecord = serde_json::from_str(&line).unwrap();
            assert_eq!(agent_of_file(&rec), agent, "{fields}");
        }
    }
}
