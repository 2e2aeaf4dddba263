//! `user` and `attachment` lines: a person's prompt (its injected blocks split off), another
//! agent's message, injected text (classified by [`super::user`]), text typed while the agent
//! worked, and tool results.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::event::{blocks, json_str, text_block, text_content, tool_result_event, EventBuf};
use tonbo_core::mapping::MapError;

use super::line::{as_str, is_str, raw_and_typed_blocks, reject, Block, ClaudeLine, Content};
use super::user::{self, Author, Injected, UserClass, UserFacts};
use super::{ClaudeMapper, Out};

/// Text by which Claude Code marks a tool use the user rejected .
const REJECTION_TEXT: &str = "doesn't want to proceed with this tool use";

impl ClaudeMapper {
    pub(super) fn map_user(&mut self, line: &ClaudeLine, out: &mut Out) -> Result<(), MapError> {
        let Some(content) = line.message.as_ref().and_then(|m| m.content.as_ref()) else {
            return Err(reject("`user` line has no message.content"));
        };
        // Tool results alone: blocks typed in the line's pass (`ClaudeLine::parse`).
        let content = match content {
            Content::Typed(parsed) => return self.map_tool_results(line, &[], parsed, out),
            Content::Raw(raw) => *raw,
            // `ClaudeLine::parse` reads such a line again, raw.
            Content::Other => return Err(reject("message.content was not read")),
        };
        // A string prompt, or an array of blocks.
        if let Some(text) = as_str(content) {
            return self.map_prompt(line, Prompt::Text(&text, content.get()), out);
        }
        // Blocks typed in one pass; their raw text is taken (a second pass) only where a
        // block is kept whole: a prompt's, or text beside results.
        let typed = serde_json::from_str::<Vec<Block>>(content.get());
        let (raw, parsed) = match typed {
            Ok(parsed) => (None, parsed),
            // An element that is no object: each block on its own, as far as it reads.
            Err(_) => {
                let (raw, parsed) = raw_and_typed_blocks(content)?;
                (Some(raw), parsed)
            }
        };
        let has_results = parsed
            .iter()
            .any(|b| b.kind.as_deref() == Some("tool_result"));
        let raw_blocks = || match &raw {
            Some(raw) => Ok(raw.clone()),
            None => raw_and_typed_blocks(content).map(|(raw, _)| raw),
        };
        if has_results
            || line.tool_use_result.is_some()
            || line.source_tool_assistant_uuid.is_some()
        {
            let text_beside = parsed
                .iter()
                .any(|b| b.kind.as_deref() != Some("tool_result"));
            let blocks = if text_beside {
                raw_blocks()?
            } else {
                Vec::new()
            };
            return self.map_tool_results(line, &blocks, &parsed, out);
        }
        let blocks = raw_blocks()?;
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
    pub(super) fn map_attachment(
        &mut self,
        line: &ClaudeLine,
        out: &mut Out,
    ) -> Result<(), MapError> {
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
        for (i, b) in parsed.iter().enumerate() {
            if b.kind.as_deref() != Some("tool_result") {
                // `blocks` holds every raw block when any is not a result.
                let Some(raw) = blocks.get(i) else {
                    return Err(reject("a block beside tool results could not be read"));
                };
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
                Some(c) if is_str(c) => text_content(c.get()),
                Some(c) => normalize_result_blocks(c),
            };
            let is_error = b.is_error.unwrap_or(false);
            // Only an error's text is looked at: decoding every result's would cost a pass.
            let result_text = match is_error {
                true => b.content.and_then(as_str).unwrap_or_default(),
                false => Cow::Borrowed(""),
            };
            if is_error && result_text.contains(REJECTION_TEXT) {
                let mut ev = EventBuf::new("user.tool_confirmation");
                ev.str("result", "deny")
                    .str("tool_use_id", tool_use_id)
                    .str("deny_message", &result_text);
                out.emit(ev, Some("tool_rejected"))?;
            }
            let mcp = self.state.tools.get(tool_use_id).and_then(Option::as_deref);
            let mut ev = tool_result_event(tool_use_id, mcp, &content, is_error);
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
}

/// The text of a `user` line's prompt: its string content, or its first text block's.
pub(super) fn first_prompt_text<'l>(line: &'l ClaudeLine) -> Option<Cow<'l, str>> {
    if line.kind.as_deref() != Some("user") {
        return None;
    }
    let first_text = |blocks: &[Block<'l>]| {
        blocks
            .iter()
            .filter(|b| b.kind.as_deref() == Some("text"))
            .find_map(|b| b.text.and_then(as_str).map(|t| Cow::Owned(t.into_owned())))
    };
    let content = match line.message.as_ref()?.content.as_ref()? {
        Content::Typed(blocks) => return first_text(blocks),
        Content::Raw(raw) => *raw,
        Content::Other => return None,
    };
    if let Some(t) = as_str(content) {
        return Some(t);
    }
    let blocks: Vec<Block> = serde_json::from_str(content.get()).ok()?;
    first_text(&blocks)
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
        let texts: Vec<String> = group
            .iter()
            .map(|i| text_block(&json_str(&i.text)))
            .collect();
        let mut ev = EventBuf::new("system.message");
        ev.raw("content", &blocks(&texts));
        if kind == "ide_context" {
            let owned: Vec<Injected> = group.into_iter().cloned().collect();
            ev.meta_raw("ide", &user::ide_metadata(&owned).to_string());
        }
        out.emit(ev, Some(kind))?;
    }
    Ok(())
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
                        kept.push(Cow::Owned(text_block(&json_str(rest))));
                    }
                }
                let content = (!injected.is_empty()).then(|| blocks(&kept));
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

/// Tool result blocks: text and image pass unchanged; `tool_reference` becomes text.
pub(super) fn normalize_result_blocks(raw: &RawValue) -> String {
    let blocks: Vec<&RawValue> = match serde_json::from_str(raw.get()) {
        Ok(b) => b,
        Err(_) => return text_content(&json_str(raw.get())),
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
            #[serde(
                rename = "type",
                borrow,
                default,
                deserialize_with = "tonbo_core::raw::opt_str"
            )]
            kind: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
            tool_name: Option<Cow<'a, str>>,
        }
        let r: Ref = serde_json::from_str(b.get()).unwrap_or_default();
        if r.kind.as_deref() == Some("tool_reference") {
            let text = format!("tool_reference: {}", r.tool_name.as_deref().unwrap_or(""));
            out.push_str(&text_block(&json_str(&text)));
        } else {
            out.push_str(b.get());
        }
    }
    out.push(']');
    out
}
