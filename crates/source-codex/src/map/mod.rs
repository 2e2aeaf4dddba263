//! Codex CLI session lines -> Durable Sessions events.
//!
//! The format facts relied on are in `crates/codex-read/FORMAT.md` (the § numbers below name the
//! sections of the format research it condenses). `codex-read` tells the
//! generation in the record's `kind`: none for the wrapped JSONL of V2 and later
//! (`{timestamp,type,payload}`), `v1` for bare JSONL, `v0-session`/`v0-item` for the TypeScript
//! CLI's JSON document, `seed-session`/`seed-message` for the homegrown `{id, messages}` shape.
//! Items of every generation go through one mapping of `ResponseItem`s (§2.3).
//!
//! `response_item` is the source of truth; the `event_msg` duplicates of messages and reasoning
//! are not emitted (§2.4). State is kept for the current session only: its metadata (from
//! `session_meta` and `turn_context`), the tool calls seen (to pair outputs and tell MCP tools),
//! the last cumulative usage (duplicate `token_count` lines), and whether the lines at hand are a
//! fork's copy of its parent's history (§1, §5.5).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::SourceRecord;

use tonbo_core::mapping::{Counts, EventSink, MapError};

use crate::record::{at_file, at_of_provenance, RecordKind};
use tonbo_core::event::{text_content, EventBuf};

mod prompt;

const SOURCE: &str = "codex";

#[derive(Default)]
struct SessionState {
    session_id: String,
    /// Id of the first `session_meta` of the file being read (§2.2: the first is canonical).
    meta_id: Option<String>,
    /// While reading a fork's copied history: the copy's write timestamp (§2.1: copied lines
    /// all carry the fork's time).
    copy_ts: Option<String>,
    file: String,
    cwd: Option<String>,
    git_branch: Option<String>,
    git_commit: Option<String>,
    git_repository: Option<String>,
    cli_version: Option<String>,
    originator: Option<String>,
    model: Option<String>,
    turn_id: Option<String>,
    forked_from: Option<String>,
    /// call_id -> MCP server name (None for other tools).
    calls: HashMap<String, Option<String>>,
    /// Last cumulative `total_token_usage`, to drop repeated `token_count` lines (§2.4).
    last_total: Option<String>,
    /// The time of the session's header, then of the last line that had one: what items
    /// without a time of their own inherit.
    last_timestamp: String,
    /// A sub-agent's session: its prompts are its parent agent's.
    agent_written: bool,
    /// A sub-agent's session whose parent is known: the parent's stream, and this session's own
    /// stream as the thread the parent announced.
    parent: Option<String>,
    thread: Option<String>,
    /// `spawn_agent` calls waiting for their output, which names the thread they started.
    spawn_calls: std::collections::HashSet<String>,
    /// Seed variant: ids of tool uses still waiting for their result.
    seed_open_calls: Vec<String>,
}

#[derive(Default)]
pub struct CodexMapper {
    state: SessionState,
    /// Kept by session and file (`\0` between).
    others: tonbo_core::mapping::SessionStates<SessionState>,
    pub counts: Counts,
}

/// The V2+ envelope (§2.1).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Envelope<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

/// A `ResponseItem` (§2.3) or V0/V1 item: only what the mapping reads.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Item<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    summary: Option<&'a RawValue>,
    #[serde(borrow)]
    encrypted_content: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow)]
    call_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    output: Option<&'a RawValue>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    action: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    phase: Option<Cow<'a, str>>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    revised_prompt: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    execution: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Part<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    image_url: Option<Cow<'a, str>>,
}

/// Markers of user messages the user did not type (§4), compared case-insensitively.
const CONTEXT_MARKERS: &[(&str, &str)] = &[
    ("<user_instructions>", "user_instructions"),
    ("# agents.md instructions for", "agents_md"),
    ("<environment_context>", "environment_context"),
    ("<skill>", "skill"),
    ("<user_shell_command>", "user_shell_command"),
    ("<turn_aborted>", "turn_aborted"),
    ("<subagent_notification>", "subagent_notification"),
    ("<hook_prompt", "hook"),
    ("<user-prompt-submit-hook>", "hook"),
    ("<external_", "external_context"),
    ("<codex_internal_context", "internal_context"),
    ("<goal_context>", "internal_context"),
    ("<recommended_plugins>", "recommended_plugins"),
    ("<realtime_delegation>", "realtime_delegation"),
    ("<node_repl_review_evidence>", "review_evidence"),
    ("<heartbeat>", "heartbeat"),
    (
        "warning: the maximum number of unified exec processes",
        "warning",
    ),
    ("warning: apply_patch was requested via ", "warning"),
    (
        "warning: your account was flagged for potentially high-risk",
        "warning",
    ),
];

/// Outer types and `event_msg` types that carry nothing to emit, or only duplicates (§2.4, §2.1).
const SKIPPED: &[&str] = &[
    "user_message",
    "agent_message",
    "agent_reasoning",
    "agent_reasoning_raw_content",
    "agent_reasoning_section_break",
    "context_compacted",
    "exec_command_end",
    "exec_command_begin",
    "patch_apply_end",
    "patch_apply_begin",
    "mcp_tool_call_end",
    "mcp_tool_call_begin",
    "web_search_end",
    "web_search_begin",
    "item_started",
    "image_generation_end",
    "ghost_snapshot",
    "entered_review_mode",
    "exited_review_mode",
    "undo_completed",
    "thread_name_updated",
    "state",
    "inter_agent_communication_metadata",
    "thread_settings_applied",
    "thread_goal_updated",
    "sub_agent_activity",
    "token_usage_record",
    "world_state",
    "retained_context",
    "security_risk_score",
    "realtime_item",
];

fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<str>>(raw.get()).ok()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a str serialises")
}

/// `mcp__server__tool`, or the older `server__tool` (§2.3 tool names): built-in tool names never
/// hold a double underscore.
fn split_mcp(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("mcp__").unwrap_or(name);
    let (server, tool) = rest.split_once("__")?;
    (!server.is_empty() && !tool.is_empty()).then_some((server, tool))
}

/// Best effort (§2.3 "shell output text is opaque"): did a shell-like output report failure?
fn output_is_error(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Wrapped {
        metadata: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct Meta {
        exit_code: Option<i64>,
    }
    if let Ok(Wrapped {
        metadata: Some(Meta {
            exit_code: Some(code),
        }),
    }) = serde_json::from_str(text)
    {
        return code != 0;
    }
    if let Some(rest) = text.strip_prefix("Exit code: ") {
        let code: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        return code.parse::<i64>().is_ok_and(|c| c != 0);
    }
    false
}

/// The thread a `spawn_agent` output names (`{"agent_id": "<thread id>", "nickname": ...}`,
/// as a JSON string).
fn spawned_thread(output: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct Spawned {
        agent_id: Option<String>,
    }
    let text = as_str(output?)?;
    serde_json::from_str::<Spawned>(&text).ok()?.agent_id
}

/// An `input_image` URL as a Managed Agents image source.
fn image_block(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((media, data)) = rest.split_once(";base64,") {
            return format!(
                "{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":{},\"data\":{}}}}}",
                json_str(media),
                json_str(data)
            );
        }
    }
    format!(
        "{{\"type\":\"image\",\"source\":{{\"type\":\"url\",\"url\":{}}}}}",
        json_str(url)
    )
}

/// Content parts -> content blocks; image wrapper texts are dropped (§4 "Images").
fn content_blocks(parts: &[Part]) -> String {
    let mut out = String::from("[");
    for p in parts {
        let block = match (p.kind.as_deref(), &p.text, &p.image_url) {
            (Some("input_image"), _, Some(url)) => image_block(url),
            (_, Some(t), _) => {
                let trimmed = t.trim();
                if (trimmed.starts_with("<image") && trimmed.ends_with('>'))
                    || trimmed == "</image>"
                {
                    continue;
                }
                format!("{{\"type\":\"text\",\"text\":{}}}", json_str(t))
            }
            _ => continue,
        };
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&block);
    }
    out.push(']');
    out
}

/// Output of a tool: a string, or an array of `input_text`/`input_image` parts (§2.3).
fn output_content(output: Option<&RawValue>) -> (String, bool) {
    let Some(raw) = output else {
        return ("[]".into(), false);
    };
    if let Some(text) = as_str(raw) {
        return (text_content(raw.get()), output_is_error(&text));
    }
    match serde_json::from_str::<Vec<Part>>(raw.get()) {
        Ok(parts) => (content_blocks(&parts), false),
        Err(_) => (text_content(&json_str(raw.get())), false),
    }
}

struct Line {
    key_base: String,
    timestamp: Option<String>,
    n: usize,
    emitted: usize,
}

impl CodexMapper {
    pub fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let session_id = format!("{SOURCE}-{}", rec.session);
        tonbo_core::contract::check_session_id(&session_id).map_err(MapError::Reject)?;
        // Keys are the record's place, `<file name>:<line or row>` (`at`): stable while Codex
        // appends, and when a file is archived or compressed. A record of an older reader has
        // no `at`; its provenance gives the same text.
        let at = match &rec.at {
            Some(at) => at.to_string(),
            None => at_of_provenance(rec.provenance.as_ref()),
        };
        let file = at_file(&at).to_string();
        if self.state.session_id != session_id || self.state.file != file {
            let same_session = self.state.session_id == session_id;
            let old = std::mem::take(&mut self.state);
            match self.others.take(&format!("{session_id}\0{file}")) {
                // A file met before and interleaved with others since (`--follow`).
                Some(state) => self.state = state,
                None => {
                    self.state.session_id = session_id.clone();
                    self.state.file = file.clone();
                    if same_session {
                        // Another file of the same session (a reverted thread): metadata
                        // carries over.
                        self.state.cwd = old.cwd.clone();
                        self.state.model = old.model.clone();
                        self.state.calls = old.calls.clone();
                        self.state.last_total = old.last_total.clone();
                    }
                }
            }
            let key = format!("{}\0{}", old.session_id, old.file);
            if !old.session_id.is_empty() {
                self.others.keep(key, old);
            }
        }
        let mut line = Line {
            key_base: at,
            timestamp: None,
            n: 0,
            emitted: 0,
        };
        let raw = rec.record;
        let kind = RecordKind::from_wire(rec.kind.as_deref()).map_err(MapError::Reject)?;
        match kind {
            RecordKind::V2 => self.map_envelope(raw, &session_id, &mut line, sink)?,
            RecordKind::V1 => {
                #[derive(Deserialize, Default)]
                #[serde(default)]
                struct Probe<'a> {
                    #[serde(rename = "type", borrow)]
                    kind: Option<Cow<'a, str>>,
                    #[serde(borrow)]
                    record_type: Option<Cow<'a, str>>,
                }
                let p: Probe = serde_json::from_str(raw.get()).unwrap_or_default();
                if p.record_type.is_some() {
                    self.skip("state");
                } else if p.kind.is_none() {
                    self.session_meta(raw, None);
                } else {
                    self.map_item(raw, &session_id, &mut line, sink)?;
                }
            }
            RecordKind::V0Session | RecordKind::SeedSession => {
                self.session_meta(raw, None);
            }
            RecordKind::V0Item => self.map_item(raw, &session_id, &mut line, sink)?,
            RecordKind::SeedMessage => self.map_seed(raw, &session_id, &mut line, sink)?,
        }
        Ok(line.emitted)
    }

    fn skip(&mut self, what: &str) {
        self.counts.skip(what);
    }

    fn unknown(&mut self, what: &str) {
        self.counts.unknown(what);
    }

    fn emit(
        &mut self,
        mut ev: EventBuf,
        kind: Option<&str>,
        line: &mut Line,
        session_id: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        let key = format!("{}#{}", line.key_base, line.n);
        line.n += 1;
        let s = &self.state;
        // V0 and V1 items have no time of their own (§3.1, §3.2): the best there is, the
        // session's header time, or that of the last line that had one, said to be inherited.
        let (ts, inherited) = match &line.timestamp {
            Some(ts) => (Some(ts.as_str()), false),
            None if !s.last_timestamp.is_empty() => (Some(s.last_timestamp.as_str()), true),
            None => (None, false),
        };
        if let Some(ts) = ts {
            ev.str("processed_at", ts);
        }
        ev.meta_str("source", SOURCE).meta_str("source_key", &key);
        match ts {
            Some(ts) => ev.meta_str("original_timestamp", ts),
            None => ev.meta_raw("original_timestamp", "null"),
        };
        if inherited {
            ev.meta_raw("timestamp_inherited", "true");
        }
        if let Some(t) = &s.thread {
            ev.str("session_thread_id", t);
        }
        ev.meta_opt("kind", kind)
            .meta_opt("parent_session_id", s.parent.as_deref())
            .meta_opt("cwd", s.cwd.as_deref())
            .meta_opt("git_branch", s.git_branch.as_deref())
            .meta_opt("git_commit", s.git_commit.as_deref())
            .meta_opt("git_repository", s.git_repository.as_deref())
            .meta_opt("cli_version", s.cli_version.as_deref())
            .meta_opt("originator", s.originator.as_deref())
            .meta_opt("model", s.model.as_deref())
            .meta_opt("turn_id", s.turn_id.as_deref())
            .meta_opt("forked_from_id", s.forked_from.as_deref());
        sink.event(session_id, &ev.finish())?;
        line.emitted += 1;
        Ok(())
    }

    /// Reads session metadata (§2.2; V1/V0 headers §3). Returns the meta's id.
    fn session_meta(&mut self, raw: &RawValue, _ts: Option<&str>) -> Option<String> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Meta {
            id: Option<serde_json::Value>,
            cwd: Option<String>,
            originator: Option<String>,
            cli_version: Option<String>,
            forked_from_id: Option<String>,
            git: Option<Git>,
            timestamp: Option<String>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Git {
            commit_hash: Option<String>,
            branch: Option<String>,
            repository_url: Option<String>,
        }
        let m: Meta = serde_json::from_str(raw.get()).unwrap_or_default();
        let id = m.id.map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        if self.state.meta_id.is_none() {
            self.state.meta_id = id.clone();
            let s = &mut self.state;
            s.cwd = m.cwd.or(s.cwd.take());
            s.originator = m.originator;
            s.cli_version = m.cli_version;
            s.forked_from = m.forked_from_id;
            if let (true, Some(ts)) = (s.last_timestamp.is_empty(), m.timestamp) {
                s.last_timestamp = ts;
            }
            if let Some(g) = m.git {
                s.git_branch = g.branch.filter(|b| !b.is_empty());
                s.git_commit = g.commit_hash;
                s.git_repository = g.repository_url;
            }
        }
        id
    }

    /// A sub-agent's session (its first `session_meta` says it was spawned): its prompts are
    /// the parent agent's, and when the parent is named, the parent's stream announces this one
    /// as a thread (`session.thread_created`, key `thread/<id>`).
    fn sub_agent(
        &mut self,
        meta: &RawValue,
        session_id: &str,
        line: &Line,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(meta.get()) else {
            return Ok(());
        };
        let Some(spawn) = prompt::spawn_of(&v) else {
            return Ok(());
        };
        self.state.agent_written = true;
        let Some(parent) = spawn.parent.filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        let parent_stream = tonbo_core::contract::session_id_for(SOURCE, &parent);
        tonbo_core::contract::check_session_id(&parent_stream).map_err(MapError::Reject)?;
        let child = session_id.strip_prefix("codex-").unwrap_or(session_id);
        let mut ev = EventBuf::new("session.thread_created");
        ev.str("agent_name", spawn.agent.as_deref().unwrap_or("subagent"))
            .str("session_thread_id", session_id);
        if let Some(ts) = &line.timestamp {
            ev.str("processed_at", ts);
        }
        ev.meta_str("source", SOURCE)
            .meta_str("source_key", &format!("thread/{child}"));
        match &line.timestamp {
            Some(ts) => ev.meta_str("original_timestamp", ts),
            None => ev.meta_raw("original_timestamp", "null"),
        };
        // The call that spawned it is known only on the parent's side (its result names this
        // session, `child_session_id`): the child's file may be read first.
        ev.meta_str("kind", "thread_created")
            .meta_str("child_session_id", session_id);
        sink.event(&parent_stream, &ev.finish())?;
        self.state.parent = Some(parent_stream);
        self.state.thread = Some(session_id.to_string());
        Ok(())
    }

    fn map_envelope(
        &mut self,
        raw: &RawValue,
        session_id: &str,
        line: &mut Line,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        let env: Envelope = serde_json::from_str(raw.get())
            .map_err(|e| MapError::Reject(format!("not a Codex line: {e}")))?;
        let (Some(kind), Some(payload)) = (env.kind.as_deref(), env.payload) else {
            return Err(MapError::Reject(
                "Codex line has no `type` and `payload`".into(),
            ));
        };
        let ts = env.timestamp.as_deref();
        // A fork's copy of its parent: a later session_meta with another id starts it; it lasts
        // while lines keep the copy's write time (§1, §2.1, §5.5).
        if let Some(copy_ts) = &self.state.copy_ts {
            if ts == Some(copy_ts.as_str()) {
                self.counts.skip("line of a fork's copy of its parent");
                return Ok(());
            }
            self.state.copy_ts = None;
        }
        let owned_ts = ts.map(str::to_string);
        line.timestamp = owned_ts.clone();
        if let Some(ts) = ts {
            self.state.last_timestamp.clear();
            self.state.last_timestamp.push_str(ts);
        }
        match kind {
            "session_meta" => {
                let first = self.state.meta_id.clone();
                let id = self.session_meta(payload, ts);
                if first.is_some() && id != first {
                    self.state.copy_ts = owned_ts.clone();
                    self.counts.skip("line of a fork's copy of its parent");
                    return Ok(());
                }
                self.skip("session_meta");
                if first.is_none() {
                    self.sub_agent(payload, session_id, line, sink)?;
                }
                Ok(())
            }
            "turn_context" => {
                #[derive(Deserialize, Default)]
                #[serde(default)]
                struct TurnContext {
                    model: Option<String>,
                    cwd: Option<String>,
                    turn_id: Option<String>,
                }
                let tc: TurnContext = serde_json::from_str(payload.get()).unwrap_or_default();
                let s = &mut self.state;
                s.model = tc.model.or(s.model.take());
                s.cwd = tc.cwd.or(s.cwd.take());
                s.turn_id = tc.turn_id.or(s.turn_id.take());
                self.skip("turn_context");
                Ok(())
            }
            "response_item" => self.map_item(payload, session_id, line, sink),
            "event_msg" => self.map_event_msg(payload, session_id, line, sink),
            // Multi-agent v2's messages between agents (June 2026's own line type).
            "inter_agent_communication" => self.agent_message(payload, session_id, line, sink),
            "compacted" => {
                #[derive(Deserialize, Default)]
                #[serde(default)]
                struct Compacted<'a> {
                    #[serde(borrow)]
                    message: Option<&'a RawValue>,
                }
                // `replacement_history` repeats earlier items and is never emitted (§2.5).
                let c: Compacted = serde_json::from_str(payload.get()).unwrap_or_default();
                let mut ev = EventBuf::new("agent.thread_context_compacted");
                if let Some(m) = c.message.filter(|m| as_str(m).is_some()) {
                    ev.raw("content", &text_content(m.get()));
                }
                self.emit(ev, Some("compacted"), line, session_id, sink)
            }
            other if SKIPPED.contains(&other) => {
                self.skip(other);
                Ok(())
            }
            other => {
                self.unknown(other);
                Ok(())
            }
        }
    }

    fn map_event_msg(
        &mut self,
        payload: &RawValue,
        session_id: &str,
        line: &mut Line,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Msg<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<Cow<'a, str>>,
            #[serde(borrow)]
            info: Option<&'a RawValue>,
            #[serde(borrow)]
            turn_id: Option<Cow<'a, str>>,
            #[serde(borrow)]
            reason: Option<Cow<'a, str>>,
            #[serde(borrow)]
            duration_ms: Option<&'a RawValue>,
            num_turns: Option<u64>,
            #[serde(borrow)]
            message: Option<Cow<'a, str>>,
        }
        let m: Msg = serde_json::from_str(payload.get()).unwrap_or_default();
        let kind = m.kind.as_deref().unwrap_or("");
        let turn = m.turn_id.as_deref().map(str::to_string);
        if turn.is_some() {
            self.state.turn_id = turn.clone();
        }
        match kind {
            "token_count" => {
                #[derive(Deserialize, Default)]
                #[serde(default)]
                struct Info<'a> {
                    #[serde(borrow)]
                    total_token_usage: Option<&'a RawValue>,
                    last_token_usage: Option<Usage>,
                }
                #[derive(Deserialize, Default)]
                #[serde(default)]
                struct Usage {
                    input_tokens: u64,
                    cached_input_tokens: u64,
                    output_tokens: u64,
                    reasoning_output_tokens: u64,
                    total_tokens: u64,
                }
                let Some(info) = m.info.filter(|i| i.get() != "null") else {
                    self.skip("token_count without info");
                    return Ok(());
                };
                let info: Info = serde_json::from_str(info.get()).unwrap_or_default();
                // The cumulative total repeats on duplicate lines: count each request once.
                let total = info.total_token_usage.map(|t| t.get().to_string());
                if total.is_some() && total == self.state.last_total {
                    self.skip("token_count repeated");
                    return Ok(());
                }
                self.state.last_total = total;
                let Some(u) = info.last_token_usage else {
                    self.skip("token_count without last_token_usage");
                    return Ok(());
                };
                // last_token_usage is one request's usage, not the cumulative total (§2.4).
                let mut ev = EventBuf::new("span.model_request_end");
                ev.raw("model_request_start_id", "null").bool("is_error", false).raw(
                    "model_usage",
                    &format!(
                        "{{\"input_tokens\":{},\"output_tokens\":{},\"cache_read_input_tokens\":{},\"cache_creation_input_tokens\":0}}",
                        u.input_tokens.saturating_sub(u.cached_input_tokens),
                        u.output_tokens,
                        u.cached_input_tokens
                    ),
                );
                ev.meta_raw(
                    "codex_usage",
                    &format!(
                        "{{\"input_tokens\":{},\"cached_input_tokens\":{},\"output_tokens\":{},\"reasoning_output_tokens\":{},\"total_tokens\":{}}}",
                        u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_output_tokens, u.total_tokens
                    ),
                );
                self.emit(ev, Some("token_count"), line, session_id, sink)
            }
            "task_started" | "turn_started" => {
                let ev = EventBuf::new("session.status_running");
                self.emit(ev, Some("turn_started"), line, session_id, sink)
            }
            "task_complete" | "turn_complete" => {
                // `last_agent_message` repeats the assistant message: not emitted (§5.4).
                let mut ev = EventBuf::new("session.status_idle");
                ev.raw("stop_reason", "{\"type\":\"end_turn\"}");
                if let Some(d) = m.duration_ms {
                    ev.meta_raw("duration_ms", d.get());
                }
                self.emit(ev, Some("turn_complete"), line, session_id, sink)
            }
            "turn_aborted" => {
                let mut ev = EventBuf::new("user.interrupt");
                ev.meta_opt("reason", m.reason.as_deref());
                self.emit(ev, Some("turn_aborted"), line, session_id, sink)
            }
            "thread_rolled_back" => {
                let mut ev = EventBuf::new("codex.thread_rolled_back");
                ev.raw("num_turns", &m.num_turns.unwrap_or(0).to_string());
                self.emit(ev, Some("rollback"), line, session_id, sink)
            }
            "error" => {
                let error = serde_json::json!({
                    "type": "unknown_error",
                    "message": m.message.as_deref().unwrap_or(""),
                    "retry_status": {"type": "terminal"}
                });
                let mut ev = EventBuf::new("session.error");
                ev.raw("error", &error.to_string());
                self.emit(ev, Some("error"), line, session_id, sink)
            }
            "item_completed" => {
                // Every turn item has its response item, but a plan and a sleep, whose text is
                // in the assistant's message or is no content: counted by the item's type.
                #[derive(Deserialize, Default)]
                #[serde(default)]
                struct Completed<'a> {
                    #[serde(borrow)]
                    item: Option<Tagged<'a>>,
                }
                #[derive(Deserialize, Default)]
                #[serde(default)]
                struct Tagged<'a> {
                    #[serde(rename = "type", borrow)]
                    kind: Option<Cow<'a, str>>,
                }
                let c: Completed = serde_json::from_str(payload.get()).unwrap_or_default();
                let tag = c.item.and_then(|i| i.kind).unwrap_or_default();
                self.skip(&format!("item_completed:{tag}"));
                Ok(())
            }
            other if SKIPPED.contains(&other) => {
                self.skip(other);
                Ok(())
            }
            other => {
                self.unknown(&format!("event_msg:{other}"));
                Ok(())
            }
        }
    }

    /// A message one agent sent another (multi-agent v2): `{author, recipient, content}` with
    /// content a string or parts (`input_text`; `encrypted_content`, kept as `redacted`).
    fn agent_message(
        &mut self,
        raw: &RawValue,
        session_id: &str,
        line: &mut Line,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Communication<'a> {
            #[serde(borrow)]
            author: Option<Cow<'a, str>>,
            #[serde(borrow)]
            recipient: Option<Cow<'a, str>>,
            #[serde(borrow)]
            content: Option<&'a RawValue>,
        }
        let c: Communication = serde_json::from_str(raw.get())
            .map_err(|e| MapError::Reject(format!("not an agent message: {e}")))?;
        let mut blocks = Vec::new();
        match c.content {
            Some(text) if as_str(text).is_some() => {
                blocks.push(format!("{{\"type\":\"text\",\"text\":{}}}", text.get()))
            }
            Some(parts) => {
                #[derive(Deserialize, Default)]
                #[serde(default)]
                struct P<'a> {
                    #[serde(rename = "type", borrow)]
                    kind: Option<Cow<'a, str>>,
                    #[serde(borrow)]
                    text: Option<&'a RawValue>,
                }
                let parts: Vec<P> = serde_json::from_str(parts.get()).unwrap_or_default();
                for p in parts {
                    match (p.kind.as_deref(), p.text) {
                        (Some("encrypted_content"), _) => {
                            blocks.push("{\"type\":\"redacted\"}".to_string())
                        }
                        (_, Some(t)) => {
                            blocks.push(format!("{{\"type\":\"text\",\"text\":{}}}", t.get()))
                        }
                        _ => {}
                    }
                }
            }
            None => {}
        }
        let mut ev = EventBuf::new("user.message");
        ev.raw("content", &format!("[{}]", blocks.join(",")));
        ev.meta_str("author", "agent")
            .meta_opt("from", c.author.as_deref())
            .meta_opt("to", c.recipient.as_deref());
        self.emit(ev, Some("agent_message"), line, session_id, sink)
    }

    /// One `ResponseItem` (§2.3), from any generation.
    fn map_item(
        &mut self,
        raw: &RawValue,
        session_id: &str,
        line: &mut Line,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        let item: Item = serde_json::from_str(raw.get())
            .map_err(|e| MapError::Reject(format!("not a Codex item: {e}")))?;
        let kind = item
            .kind
            .as_deref()
            .unwrap_or(if item.role.is_some() { "message" } else { "" });
        match kind {
            "message" => self.map_message(&item, session_id, line, sink),
            "reasoning" => {
                let mut texts = Vec::new();
                for field in [item.summary, item.content].into_iter().flatten() {
                    if let Ok(parts) = serde_json::from_str::<Vec<Part>>(field.get()) {
                        texts.extend(
                            parts
                                .into_iter()
                                .filter_map(|p| p.text.map(Cow::into_owned))
                                .filter(|t| !t.trim().is_empty()),
                        );
                    }
                }
                let encrypted = item.encrypted_content.is_some_and(|e| e.get() != "null");
                let mut ev = EventBuf::new("agent.thinking");
                let content = if texts.is_empty() {
                    "[{\"type\":\"redacted\"}]".to_string()
                } else {
                    format!(
                        "[{{\"type\":\"thinking\",\"thinking\":{}}}]",
                        json_str(&texts.join("\n\n"))
                    )
                };
                ev.raw("content", &content);
                if encrypted {
                    ev.meta_raw("encrypted", "true");
                }
                self.emit(ev, Some("reasoning"), line, session_id, sink)
            }
            "function_call"
            | "custom_tool_call"
            | "local_shell_call"
            | "web_search_call"
            | "tool_search_call"
            | "image_generation_call" => self.map_call(kind, &item, session_id, line, sink),
            "function_call_output"
            | "custom_tool_call_output"
            | "local_shell_call_output"
            | "tool_search_output" => {
                let call_id = item.call_id.as_deref().unwrap_or("");
                let (content, is_error) = match (kind, item.tools) {
                    ("tool_search_output", Some(tools)) => {
                        (text_content(&json_str(tools.get())), false)
                    }
                    _ => output_content(item.output),
                };
                // `spawn_agent` answers with the thread it started: `{"agent_id": ...}`.
                let child = self
                    .state
                    .spawn_calls
                    .contains(call_id)
                    .then(|| spawned_thread(item.output))
                    .flatten();
                let child = child.map(|c| tonbo_core::contract::session_id_for(SOURCE, &c));
                let mut ev = self.result_buf(call_id, &content, is_error);
                ev.meta_opt("child_session_id", child.as_deref());
                self.emit(ev, Some("tool_result"), line, session_id, sink)
            }
            // Multi-agent v2's messages between agents, as items (from late June 2026).
            "agent_message" => self.agent_message(raw, session_id, line, sink),
            "compaction" | "compaction_summary" | "context_compaction" => {
                let ev = EventBuf::new("agent.thread_context_compacted");
                self.emit(ev, Some("compaction"), line, session_id, sink)
            }
            "ghost_snapshot" => {
                self.skip("ghost_snapshot");
                Ok(())
            }
            other => {
                self.unknown(&format!("item:{other}"));
                Ok(())
            }
        }
    }

    fn map_message(
        &mut self,
        item: &Item,
        session_id: &str,
        line: &mut Line,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        let parts: Vec<Part> = match item.content {
            Some(c) => match as_str(c) {
                Some(text) => vec![Part {
                    kind: Some(Cow::Borrowed("input_text")),
                    text: Some(Cow::Owned(text.into_owned())),
                    image_url: None,
                }],
                None => serde_json::from_str(c.get()).unwrap_or_default(),
            },
            None => Vec::new(),
        };
        let role = item.role.as_deref().unwrap_or("");
        if role == "assistant"
            && parts.iter().all(|p| {
                p.image_url.is_none() && p.text.as_deref().is_none_or(|t| t.trim().is_empty())
            })
        {
            // Nothing was said: no event, but its key number stays taken.
            line.n += 1;
            self.skip("blank text");
            return Ok(());
        }
        let mut author = None;
        let (event, kind) = match role {
            "user" => {
                let context = parts
                    .iter()
                    .filter_map(|p| p.text.as_deref())
                    .find_map(|t| {
                        let t = t.trim_start().to_ascii_lowercase();
                        CONTEXT_MARKERS
                            .iter()
                            .find(|(m, _)| t.starts_with(m))
                            .map(|(_, k)| *k)
                    });
                match context {
                    Some(k) => ("system.message", k),
                    // A sub-agent's session: its parent agent wrote the prompts.
                    None if self.state.agent_written => {
                        author = Some("agent");
                        ("user.message", "subagent_prompt")
                    }
                    None => {
                        if let Some(ide) = parts.iter().enumerate().find_map(|(i, p)| {
                            p.text
                                .as_deref()
                                .and_then(prompt::split_ide)
                                .map(|s| (i, s))
                        }) {
                            return self.ide_prompt(item, &parts, ide, session_id, line, sink);
                        }
                        author = Some("human");
                        ("user.message", "prompt")
                    }
                }
            }
            "assistant" => ("agent.message", "text"),
            "developer" => ("system.message", "developer"),
            "system" => ("system.message", "system"),
            other => {
                self.unknown(&format!("role:{other}"));
                return Ok(());
            }
        };
        // Environment context is the V1 generation's only source of the working directory (§3.2).
        if kind == "environment_context" && self.state.cwd.is_none() {
            if let Some(t) = parts.iter().filter_map(|p| p.text.as_deref()).next() {
                if let (Some(a), Some(b)) = (t.find("<cwd>"), t.find("</cwd>")) {
                    if a + 5 <= b {
                        self.state.cwd = Some(t[a + 5..b].trim().to_string());
                    }
                }
            }
        }
        let mut ev = EventBuf::new(event);
        ev.raw("content", &content_blocks(&parts));
        ev.meta_opt("author", author);
        ev.meta_opt("phase", item.phase.as_deref());
        ev.meta_opt("item_id", item.id.as_deref());
        self.emit(ev, Some(kind), line, session_id, sink)
    }

    /// A prompt an IDE extension sent: what the person typed as the `user.message`, then the
    /// IDE context as a `system.message` (`ide_context`, its sections in `metadata.ide`).
    fn ide_prompt(
        &mut self,
        item: &Item,
        parts: &[Part],
        (at, (context, request)): (usize, (&str, &str)),
        session_id: &str,
        line: &mut Line,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        let typed: Vec<Part> = parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match (i == at, request.is_empty()) {
                (false, _) => Some(Part {
                    kind: p.kind.clone(),
                    text: p.text.clone(),
                    image_url: p.image_url.clone(),
                }),
                (true, true) => None,
                (true, false) => Some(Part {
                    kind: p.kind.clone(),
                    text: Some(Cow::Borrowed(request)),
                    image_url: None,
                }),
            })
            .collect();
        let typed_content = content_blocks(&typed);
        if typed_content != "[]" {
            let mut ev = EventBuf::new("user.message");
            ev.raw("content", &typed_content);
            ev.meta_str("author", "human");
            ev.meta_opt("item_id", item.id.as_deref());
            self.emit(ev, Some("prompt"), line, session_id, sink)?;
        }
        let mut ev = EventBuf::new("system.message");
        ev.raw("content", &text_content(&json_str(context)));
        ev.meta_raw("ide", &prompt::ide_metadata(context).to_string());
        self.emit(ev, Some("ide_context"), line, session_id, sink)
    }

    fn map_call(
        &mut self,
        kind: &str,
        item: &Item,
        session_id: &str,
        line: &mut Line,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        let call_id = item
            .call_id
            .as_deref()
            .or(item.id.as_deref())
            .map(str::to_string)
            .unwrap_or_else(|| line.key_base.clone());
        let (name, input, raw_args): (String, String, Option<String>) = match kind {
            "function_call" => {
                let args = item.arguments.and_then(as_str);
                let name = item.name.as_deref().unwrap_or("").to_string();
                match args.as_deref() {
                    // `arguments` is a JSON string (§2.3): parse it into `input`.
                    Some(a) => match serde_json::from_str::<&RawValue>(a) {
                        Ok(v) if v.get().starts_with('{') => (name, v.get().to_string(), None),
                        Ok(v) => (name, format!("{{\"arguments\":{}}}", v.get()), None),
                        Err(_) => (name, "{}".into(), Some(a.to_string())),
                    },
                    None => (
                        name,
                        item.arguments.map_or("{}".into(), |a| a.get().to_string()),
                        None,
                    ),
                }
            }
            "custom_tool_call" => (
                item.name.as_deref().unwrap_or("").to_string(),
                format!("{{\"input\":{}}}", item.input.map_or("null", |i| i.get())),
                None,
            ),
            "local_shell_call" => (
                "local_shell".into(),
                item.action.map_or("{}".into(), |a| a.get().to_string()),
                None,
            ),
            "web_search_call" => (
                "web_search".into(),
                item.action.map_or("{}".into(), |a| a.get().to_string()),
                None,
            ),
            "tool_search_call" => (
                "tool_search".into(),
                format!(
                    "{{\"arguments\":{},\"execution\":{}}}",
                    item.arguments.map_or("null", |a| a.get()),
                    item.execution.map_or("null", |e| e.get())
                ),
                None,
            ),
            _ => (
                "image_generation".into(),
                format!(
                    "{{\"revised_prompt\":{}}}",
                    item.revised_prompt.map_or("null", |p| p.get())
                ),
                None,
            ),
        };
        let mcp = split_mcp(&name).map(|(s, t)| (s.to_string(), t.to_string()));
        self.state
            .calls
            .insert(call_id.clone(), mcp.as_ref().map(|(s, _)| s.clone()));
        if name == "spawn_agent" {
            self.state.spawn_calls.insert(call_id.clone());
        }
        let mut ev = match &mcp {
            Some((server, tool)) => {
                let mut ev = EventBuf::new("agent.mcp_tool_use");
                ev.str("name", tool).str("mcp_server_name", server);
                ev
            }
            None => {
                let mut ev = EventBuf::new("agent.tool_use");
                ev.str("name", &name);
                ev
            }
        };
        ev.raw("input", &input);
        ev.meta_str("tool_use_id", &call_id)
            .meta_str("call_type", kind);
        ev.meta_opt("namespace", item.namespace.as_deref())
            .meta_opt("status", item.status.as_deref());
        if let Some(a) = &raw_args {
            // Not JSON: kept as it was written.
            ev.meta_str("raw_arguments", a);
        }
        self.emit(ev, Some("tool_use"), line, session_id, sink)?;
        // An image generation carries its result in the same item.
        if kind == "image_generation_call" {
            if let Some(r) = item.result.and_then(as_str) {
                let content = format!(
                    "[{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":{}}}}}]",
                    json_str(&r)
                );
                self.result_event(&call_id, &content, false, line, session_id, sink)?;
            }
        }
        Ok(())
    }

    fn result_event(
        &mut self,
        call_id: &str,
        content: &str,
        is_error: bool,
        line: &mut Line,
        session_id: &str,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        let ev = self.result_buf(call_id, content, is_error);
        self.emit(ev, Some("tool_result"), line, session_id, sink)
    }

    /// A tool's result event, paired with its call by `call_id`.
    fn result_buf(&self, call_id: &str, content: &str, is_error: bool) -> EventBuf {
        let mcp = self.state.calls.get(call_id).cloned().flatten();
        let mut ev = match &mcp {
            Some(server) => {
                let mut ev = EventBuf::new("agent.mcp_tool_result");
                ev.str("mcp_tool_use_id", call_id);
                ev.meta_str("mcp_server_name", server);
                ev
            }
            None => {
                let mut ev = EventBuf::new("agent.tool_result");
                ev.str("tool_use_id", call_id);
                ev
            }
        };
        ev.raw("content", content).bool("is_error", is_error);
        ev.meta_str("tool_use_id", call_id);
        ev
    }

    /// The homegrown `{id, messages:[{role, content | name, args}]}` shape.
    fn map_seed(
        &mut self,
        raw: &RawValue,
        session_id: &str,
        line: &mut Line,
        sink: &mut dyn EventSink,
    ) -> Result<(), MapError> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Seed<'a> {
            #[serde(borrow)]
            role: Option<Cow<'a, str>>,
            #[serde(borrow)]
            content: Option<&'a RawValue>,
            #[serde(borrow)]
            name: Option<Cow<'a, str>>,
            #[serde(borrow)]
            args: Option<&'a RawValue>,
            #[serde(borrow)]
            timestamp: Option<Cow<'a, str>>,
        }
        let m: Seed = serde_json::from_str(raw.get())
            .map_err(|e| MapError::Reject(format!("not a message: {e}")))?;
        line.timestamp = m.timestamp.as_deref().map(str::to_string);
        if line.timestamp.is_some() {
            self.state.last_timestamp.clear();
            self.state
                .last_timestamp
                .push_str(line.timestamp.as_deref().unwrap_or(""));
        }
        let content = m.content.map(|c| match as_str(c) {
            Some(_) => text_content(c.get()),
            None => c.get().to_string(),
        });
        match (m.role.as_deref().unwrap_or(""), &m.name, content) {
            (_, Some(name), _) => {
                let id = format!("{}#call", line.key_base);
                self.state.seed_open_calls.push(id.clone());
                self.state.calls.insert(id.clone(), None);
                let mut ev = EventBuf::new("agent.tool_use");
                let input = match m.args {
                    Some(a) if a.get().starts_with('{') => a.get().to_string(),
                    Some(a) => format!("{{\"args\":{}}}", a.get()),
                    None => "{}".into(),
                };
                ev.str("name", name).raw("input", &input);
                ev.meta_str("tool_use_id", &id);
                self.emit(ev, Some("tool_use"), line, session_id, sink)
            }
            ("tool", _, Some(content)) => {
                let id = self.state.seed_open_calls.pop().unwrap_or_default();
                self.result_event(&id, &content, false, line, session_id, sink)
            }
            ("user", _, Some(content)) => {
                let mut ev = EventBuf::new("user.message");
                ev.raw("content", &content);
                ev.meta_str("author", "human");
                self.emit(ev, Some("prompt"), line, session_id, sink)
            }
            ("assistant" | "agent", _, Some(content)) => {
                let mut ev = EventBuf::new("agent.message");
                ev.raw("content", &content);
                self.emit(ev, Some("text"), line, session_id, sink)
            }
            ("system" | "developer", _, Some(content)) => {
                let mut ev = EventBuf::new("system.message");
                ev.raw("content", &content);
                self.emit(ev, Some("system"), line, session_id, sink)
            }
            (role, _, _) => {
                self.unknown(&format!("seed:{role}"));
                Ok(())
            }
        }
    }
}

impl tonbo_core::mapping::SourceMapping for CodexMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        CodexMapper::map(self, rec, sink)
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
        assert_eq!(split_mcp("mcp__github__search"), Some(("github", "search")));
        assert_eq!(split_mcp("github__search"), Some(("github", "search")));
        assert_eq!(split_mcp("shell"), None);
        assert!(output_is_error(
            r#"{"output":"x","metadata":{"exit_code":2,"duration_seconds":0.1}}"#
        ));
        assert!(!output_is_error(
            r#"{"output":"x","metadata":{"exit_code":0}}"#
        ));
        assert!(output_is_error(
            "Exit code: 1\nWall time: 0.1 seconds\nOutput:\n"
        ));
        assert!(!output_is_error("Exit code: 0\nOutput:\n"));
        assert_eq!(
            image_block("data:image/png;base64,AAAA"),
            r#"{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}"#
        );
    }
}
