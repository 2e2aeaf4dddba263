//! A V2+ line, `{timestamp, type, payload}`, by its `type`; and the session's header (a V2+
//! `session_meta`, V1's first line, a V0 or seed document's top level), which no event comes of
//! but what every later event carries.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::event::EventBuf;
use tonbo_core::mapping::{session_stream, MapError, Thread};

use super::content::is_str;
use super::{prompt, CodexMapper, Line};
use crate::SOURCE;

/// The V2+ envelope of every line.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    pub(super) fn parse(text: &'a str) -> Result<Envelope<'a>, MapError> {
        serde_json::from_str(text).map_err(|e| MapError::Reject(format!("not a Codex line: {e}")))
    }
}

/// Outer types and `event_msg` types that carry nothing to emit, or only duplicates of response
/// items.
pub(super) const SKIPPED: &[&str] = &[
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

const FORK_COPY: &str = "line of a fork's copy of its parent";

impl CodexMapper {
    pub(super) fn map_envelope(&mut self, raw: &RawValue, line: &mut Line) -> Result<(), MapError> {
        self.map_parsed_envelope(&Envelope::parse(raw.get())?, line)
    }

    pub(super) fn map_parsed_envelope(
        &mut self,
        env: &Envelope,
        line: &mut Line,
    ) -> Result<(), MapError> {
        let (Some(kind), Some(payload)) = (env.kind.as_deref(), env.payload) else {
            return Err(MapError::Reject(
                "Codex line has no `type` and `payload`".into(),
            ));
        };
        let ts = env.timestamp.as_deref();
        // A fork's copy of its parent: a later session_meta with another id starts it; it lasts
        // while lines keep the copy's write time.
        if let Some(copy_ts) = &self.state.copy_ts {
            if ts == Some(copy_ts.as_str()) {
                self.counts.skip(FORK_COPY);
                return Ok(());
            }
            self.state.copy_ts = None;
        }
        line.timestamp = ts.map(str::to_string);
        if let Some(ts) = ts {
            self.state.last_timestamp.clear();
            self.state.last_timestamp.push_str(ts);
        }
        match kind {
            "session_meta" => self.session_meta_line(payload, line),
            "turn_context" => {
                self.turn_context(payload);
                Ok(())
            }
            "response_item" => self.map_item(payload, line),
            "event_msg" => self.map_event_msg(payload, line),
            // Multi-agent v2's messages between agents (June 2026's own line type).
            "inter_agent_communication" => self.agent_message(payload, line),
            "compacted" => self.compacted(payload, line),
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

    /// A `session_meta` line: the first is the session's own; a later one with another id
    /// starts a fork's copy of its parent's history.
    fn session_meta_line(&mut self, payload: &RawValue, line: &mut Line) -> Result<(), MapError> {
        let first = self.state.meta_id.clone();
        let id = self.session_meta(payload);
        if first.is_some() && id != first {
            self.state.copy_ts = line.timestamp.clone();
            self.counts.skip(FORK_COPY);
            return Ok(());
        }
        self.skip("session_meta");
        if first.is_none() {
            self.sub_agent(payload, line)?;
        }
        Ok(())
    }

    /// Reads the session's metadata from its header (`session_meta`'s payload, V1's first line,
    /// a V0 or seed document's top level). Returns the header's id.
    pub(super) fn session_meta(&mut self, raw: &RawValue) -> Option<String> {
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
    fn sub_agent(&mut self, meta: &RawValue, line: &mut Line) -> Result<(), MapError> {
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
        let parent_stream = session_stream(SOURCE, &parent)?;
        let session_id = line.session_id;
        let child = session_id.strip_prefix("codex-").unwrap_or(session_id);
        // The call that spawned it is known only on the parent's side (its result names this
        // session, `child_session_id`): the child's file may be read first.
        line.out.announce_thread(&Thread {
            parent_stream: &parent_stream,
            child,
            child_stream: session_id,
            agent: spawn.agent.as_deref(),
            parent_tool_use_id: None,
            timestamp: line.timestamp.as_deref(),
        })?;
        self.state.parent = Some(parent_stream);
        self.state.thread = Some(session_id.to_string());
        Ok(())
    }

    /// `turn_context`: the model, working directory and turn of what follows.
    fn turn_context(&mut self, payload: &RawValue) {
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
    }

    /// `compacted`: its summary as the content; `replacement_history` repeats earlier items and
    /// is never emitted.
    fn compacted(&mut self, payload: &RawValue, line: &mut Line) -> Result<(), MapError> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Compacted<'a> {
            #[serde(borrow)]
            message: Option<&'a RawValue>,
        }
        let c: Compacted = serde_json::from_str(payload.get()).unwrap_or_default();
        let mut ev = EventBuf::new("agent.thread_context_compacted");
        if let Some(m) = c.message.filter(|m| is_str(m)) {
            ev.text_content("content", m.get());
        }
        self.emit(ev, Some("compacted"), line)
    }
}
