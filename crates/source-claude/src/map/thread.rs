//! Subagents (FORMAT.md, "Subagents and their parents"): each one's lines are a thread of its
//! parent's session, announced once by `session.thread_created` with the parent's call that
//! started it and the agent's type.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::event::{fnv64, EventBuf};
use tonbo_core::mapping::MapError;

use super::line::ClaudeLine;
use super::user_line::first_prompt_text;
use super::{agent_of_file, ClaudeMapper, Out, Rec};

/// Which subagent a line is of, if any.
pub(super) struct Subagent<'l> {
    /// `agent-<id>`, or `agent-sidechain-<root uuid>` for an inline sidechain without an id.
    pub(super) thread: Option<String>,
    pub(super) agent_id: Option<&'l str>,
    pub(super) is_sidechain: bool,
}

impl ClaudeMapper {
    /// The subagent of a line: its `agentId`, or the agent its file names (a subagent's file
    /// says so even where its lines do not).
    pub(super) fn subagent_of<'l>(&mut self, rec: &Rec<'l>, line: &'l ClaudeLine) -> Subagent<'l> {
        let subagent_file = agent_of_file(rec);
        let agent_id = line.agent_id.as_deref().or(subagent_file);
        let is_sidechain = line.is_sidechain.unwrap_or(false) || subagent_file.is_some();
        let thread = match (is_sidechain, agent_id) {
            (false, _) => None,
            (true, Some(id)) => Some(format!("agent-{id}")),
            // Older files keep subagents inline with no agent id: each sidechain conversation
            // is the chain of lines from its root (a line whose parent is no sidechain line).
            (true, None) => Some(self.inline_sidechain_thread(line)),
        };
        Subagent {
            thread,
            agent_id,
            is_sidechain,
        }
    }

    /// For a thread met for the first time: who started it (the meta file's tool use, or the
    /// Task/Agent call whose prompt its first line is, for older layouts), kept for its events,
    /// and its agent type, returned (`Some`) to announce it. `None` for a thread met before.
    pub(super) fn start_thread(
        &mut self,
        thread: &str,
        agent_id: Option<&str>,
        line: &ClaudeLine,
    ) -> Option<Option<String>> {
        if self.state.threads.contains_key(thread) {
            return None;
        }
        let (mut agent_type, mut tool_use_id) = agent_id
            .and_then(|a| self.state.agents.get(a).cloned())
            .unwrap_or_default();
        if tool_use_id.is_none() {
            if let Some((id, ty)) = first_prompt_text(line)
                .and_then(|p| self.state.task_prompts.get(&fnv64(p.trim().as_bytes())))
            {
                tool_use_id = Some(id.clone());
                agent_type = agent_type.or_else(|| ty.clone());
            }
        }
        self.state.threads.insert(thread.to_string(), tool_use_id);
        Some(agent_type)
    }

    /// The parent's tool use that started `thread`, if known.
    pub(super) fn thread_parent(&self, thread: Option<&str>) -> Option<String> {
        thread
            .and_then(|t| self.state.threads.get(t))
            .cloned()
            .flatten()
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
    pub(super) fn note_task_prompt(&mut self, tool_use_id: &str, input: Option<&RawValue>) {
        #[derive(Deserialize)]
        struct TaskInput<'a> {
            #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
            prompt: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
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

    /// Keeps what a subagent's meta record says (its type, the parent's call that started it)
    /// for its thread's announcement.
    pub(super) fn read_meta(&mut self, rec: &Rec) {
        #[derive(Deserialize)]
        struct Meta {
            #[serde(rename = "agentType", alias = "subagent_type", alias = "agent_type")]
            agent_type: Option<String>,
            #[serde(rename = "toolUseId", alias = "tool_use_id")]
            tool_use_id: Option<String>,
        }
        let agent = agent_of_file(rec);
        match (agent, serde_json::from_str::<Meta>(rec.text)) {
            (Some(agent), Ok(m)) => {
                self.state
                    .agents
                    .insert(agent.to_string(), (m.agent_type, m.tool_use_id));
            }
            _ => self.skip("subagent-meta"),
        }
    }
}

/// Announces a new thread in its parent's stream (keyed `thread/<thread>`), before its first
/// line's events.
pub(super) fn announce_thread(
    out: &mut Out,
    thread: &str,
    agent_type: Option<&str>,
    session_id: &str,
) -> Result<(), MapError> {
    let mut ev = EventBuf::new("session.thread_created");
    // `session_thread_id` is added by the envelope, as on every event of the thread.
    ev.str("agent_name", agent_type.unwrap_or("subagent"));
    ev.meta_opt("parent_tool_use_id", out.meta.parent_tool_use_id.as_deref());
    // A subagent's thread lives in its parent's stream (the link's other end is
    // `parent_session_id` on the thread's events).
    ev.meta_str("child_session_id", session_id);
    out.emit_keyed(&mut ev, &format!("thread/{thread}"), None)
}
