//! A `ResponseItem`, from any generation (a V2+ `response_item`'s payload, a V1 line, a V0
//! item), by its `type`: messages (and who wrote them), reasoning, tool results, messages
//! between agents. Tool calls are [`super::call`]'s.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::contract::session_id_for;
use tonbo_core::event::{blocks, text_block, text_content, thinking_event, EventBuf};
use tonbo_core::mapping::MapError;

use super::content::{
    as_str, content_blocks, is_str, json_str, output_content, spawned_thread, Part,
};
use super::{prompt, CodexMapper, Line};
use crate::SOURCE;

/// A `ResponseItem` or V0/V1 item: only what the mapping reads.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Item<'a> {
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub content: Option<&'a RawValue>,
    #[serde(borrow)]
    pub summary: Option<&'a RawValue>,
    #[serde(borrow)]
    pub encrypted_content: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub arguments: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub call_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub output: Option<&'a RawValue>,
    #[serde(borrow)]
    pub input: Option<&'a RawValue>,
    #[serde(borrow)]
    pub action: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub status: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub phase: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub result: Option<&'a RawValue>,
    #[serde(borrow)]
    pub revised_prompt: Option<&'a RawValue>,
    #[serde(borrow)]
    pub tools: Option<&'a RawValue>,
    #[serde(borrow)]
    pub execution: Option<&'a RawValue>,
}

/// Markers of user messages the user did not type, compared case-insensitively, and the
/// `metadata.kind` of the `system.message` each becomes.
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

/// Who wrote a user-role message.
enum UserText<'p> {
    /// Injected context, by its marker's kind.
    Context(&'static str),
    /// A sub-agent's prompt: its parent agent's.
    Agent,
    /// An IDE's prompt: the part holding it, its context and what the person typed.
    Ide(usize, (&'p str, &'p str)),
    /// What a person typed.
    Human,
}

impl CodexMapper {
    /// One `ResponseItem`, from any generation.
    pub(super) fn map_item(&mut self, raw: &RawValue, line: &mut Line) -> Result<(), MapError> {
        let item: Item = serde_json::from_str(raw.get())
            .map_err(|e| MapError::Reject(format!("not a Codex item: {e}")))?;
        let kind = item
            .kind
            .as_deref()
            .unwrap_or(if item.role.is_some() { "message" } else { "" });
        match kind {
            "message" => self.map_message(&item, line),
            "reasoning" => self.reasoning(&item, line),
            "function_call"
            | "custom_tool_call"
            | "local_shell_call"
            | "web_search_call"
            | "tool_search_call"
            | "image_generation_call" => self.map_call(kind, &item, line),
            "function_call_output"
            | "custom_tool_call_output"
            | "local_shell_call_output"
            | "tool_search_output" => self.tool_output(kind, &item, line),
            // Multi-agent v2's messages between agents, as items (from late June 2026).
            "agent_message" => self.agent_message(raw, line),
            "compaction" | "compaction_summary" | "context_compaction" => {
                let ev = EventBuf::new("agent.thread_context_compacted");
                self.emit(ev, Some("compaction"), line)
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

    /// `reasoning`: its summary and content texts, joined; `redacted` when there are none.
    fn reasoning(&mut self, item: &Item, line: &mut Line) -> Result<(), MapError> {
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
        let thinking = (!texts.is_empty()).then(|| json_str(&texts.join("\n\n")));
        let mut ev = thinking_event(thinking.as_deref());
        if encrypted {
            ev.meta_raw("encrypted", "true");
        }
        self.emit(ev, Some("reasoning"), line)
    }

    /// A tool's output, paired with its call by `call_id`.
    fn tool_output(&mut self, kind: &str, item: &Item, line: &mut Line) -> Result<(), MapError> {
        let call_id = item.call_id.as_deref().unwrap_or("");
        let (content, is_error) = match (kind, item.tools) {
            ("tool_search_output", Some(tools)) => (text_content(&json_str(tools.get())), false),
            _ => output_content(item.output),
        };
        // `spawn_agent` answers with the thread it started: `{"agent_id": ...}`.
        let child = self
            .state
            .spawn_calls
            .contains(call_id)
            .then(|| spawned_thread(item.output))
            .flatten();
        let child = child.map(|c| session_id_for(SOURCE, &c));
        let mut ev = self.result_buf(call_id, &content, is_error);
        ev.meta_opt("child_session_id", child.as_deref());
        self.emit(ev, Some("tool_result"), line)
    }

    /// A message one agent sent another (multi-agent v2): `{author, recipient, content}` with
    /// content a string or parts (`input_text`; `encrypted_content`, kept as `redacted`).
    pub(super) fn agent_message(
        &mut self,
        raw: &RawValue,
        line: &mut Line,
    ) -> Result<(), MapError> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Communication<'a> {
            #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
            author: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
            recipient: Option<Cow<'a, str>>,
            #[serde(borrow)]
            content: Option<&'a RawValue>,
        }
        let c: Communication = serde_json::from_str(raw.get())
            .map_err(|e| MapError::Reject(format!("not an agent message: {e}")))?;
        let mut ev = EventBuf::new("user.message");
        ev.raw("content", &agent_message_content(c.content));
        ev.meta_str("author", "agent")
            .meta_opt("from", c.author.as_deref())
            .meta_opt("to", c.recipient.as_deref());
        self.emit(ev, Some("agent_message"), line)
    }

    fn map_message(&mut self, item: &Item, line: &mut Line) -> Result<(), MapError> {
        let parts = message_parts(item.content);
        let role = item.role.as_deref().unwrap_or("");
        if role == "assistant"
            && parts.iter().all(|p| {
                p.image_url.is_none() && p.text.as_deref().is_none_or(|t| t.trim().is_empty())
            })
        {
            // Nothing was said: no event, but its key number stays taken.
            line.out.pass_over();
            self.skip("blank text");
            return Ok(());
        }
        let (event, kind, author) = match role {
            "user" => match self.user_text(&parts) {
                UserText::Context(k) => ("system.message", k, None),
                UserText::Agent => ("user.message", "subagent_prompt", Some("agent")),
                UserText::Ide(at, split) => return self.ide_prompt(item, &parts, at, split, line),
                UserText::Human => ("user.message", "prompt", Some("human")),
            },
            "assistant" => ("agent.message", "text", None),
            "developer" => ("system.message", "developer", None),
            "system" => ("system.message", "system", None),
            other => {
                self.unknown(&format!("role:{other}"));
                return Ok(());
            }
        };
        if kind == "environment_context" {
            self.environment_cwd(&parts);
        }
        let mut ev = EventBuf::new(event);
        ev.raw("content", &content_blocks(&parts));
        ev.meta_opt("author", author);
        ev.meta_opt("phase", item.phase.as_deref());
        ev.meta_opt("item_id", item.id.as_deref());
        self.emit(ev, Some(kind), line)
    }

    /// Who wrote a user-role message, from its parts.
    fn user_text<'p>(&self, parts: &'p [Part]) -> UserText<'p> {
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
        if let Some(k) = context {
            return UserText::Context(k);
        }
        // A sub-agent's session: its parent agent wrote the prompts.
        if self.state.agent_written {
            return UserText::Agent;
        }
        let ide = parts.iter().enumerate().find_map(|(i, p)| {
            p.text
                .as_deref()
                .and_then(prompt::split_ide)
                .map(|s| (i, s))
        });
        match ide {
            Some((at, split)) => UserText::Ide(at, split),
            None => UserText::Human,
        }
    }

    /// Environment context is the V1 generation's only source of the working directory.
    fn environment_cwd(&mut self, parts: &[Part]) {
        if self.state.cwd.is_some() {
            return;
        }
        if let Some(t) = parts.iter().filter_map(|p| p.text.as_deref()).next() {
            if let (Some(a), Some(b)) = (t.find("<cwd>"), t.find("</cwd>")) {
                if a + 5 <= b {
                    self.state.cwd = Some(t[a + 5..b].trim().to_string());
                }
            }
        }
    }

    /// A prompt an IDE extension sent: what the person typed as the `user.message`, then the
    /// IDE context as a `system.message` (`ide_context`, its sections in `metadata.ide`).
    fn ide_prompt(
        &mut self,
        item: &Item,
        parts: &[Part],
        at: usize,
        (context, request): (&str, &str),
        line: &mut Line,
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
            self.emit(ev, Some("prompt"), line)?;
        }
        let mut ev = EventBuf::new("system.message");
        ev.text_content("content", &json_str(context));
        ev.meta_raw("ide", &prompt::ide_metadata(context).to_string());
        self.emit(ev, Some("ide_context"), line)
    }
}

/// A message's content: a string (one `input_text` part) or parts.
fn message_parts(content: Option<&RawValue>) -> Vec<Part<'_>> {
    match content {
        Some(c) => match as_str(c) {
            Some(text) => vec![Part {
                kind: Some(Cow::Borrowed("input_text")),
                text: Some(Cow::Owned(text.into_owned())),
                image_url: None,
            }],
            None => serde_json::from_str(c.get()).unwrap_or_default(),
        },
        None => Vec::new(),
    }
}

/// The content blocks of a message between agents: a string, or `input_text` parts and
/// `encrypted_content` ones (as `redacted`).
fn agent_message_content(content: Option<&RawValue>) -> String {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct P<'a> {
        #[serde(
            rename = "type",
            borrow,
            default,
            deserialize_with = "tonbo_core::raw::opt_str"
        )]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow)]
        text: Option<&'a RawValue>,
    }
    let items: Vec<String> = match content {
        Some(text) if is_str(text) => vec![text_block(text.get())],
        Some(parts) => serde_json::from_str::<Vec<P>>(parts.get())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| match (p.kind.as_deref(), p.text) {
                (Some("encrypted_content"), _) => Some("{\"type\":\"redacted\"}".to_string()),
                (_, Some(t)) => Some(text_block(t.get())),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    blocks(&items)
}
