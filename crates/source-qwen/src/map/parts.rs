//! The parts of a record's `message` (`@google/genai` `Content.parts`) as events: who wrote a
//! user record's text, the model's text, thoughts and calls, and the tools' results.

use tonbo_core::event::{
    as_str, blocks, is_blank_json_str, is_str, json_str, text_block, thinking_event,
    tool_result_event, tool_use_event, EventBuf,
};
use tonbo_core::mapping::{Counts, MapError};

use super::record::{is_null, ChatRecord, InlineData, Part, Payload};
use super::Out;

/// The marker Qwen Code (as Gemini CLI) puts before the files an `@path` in a prompt read: it
/// and everything after it in the message are the files' content, not typed.
const REFERENCED_FILES: &str = "--- Content from referenced files ---";
/// Text that starts a reminder the agent adds to a user message.
const SYSTEM_REMINDER: &str = "<system-reminder>";

/// The whole text Qwen Code sends (and records as a user message) when its next-speaker check
/// says the model should go on.
const PLEASE_CONTINUE: &str = "\"Please continue.\"";

/// What a user record's text part is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Said {
    Typed,
    ReferencedFiles,
    SystemReminder,
}

fn starts_with(raw: &str, prefix: &str) -> bool {
    as_str_raw(raw).is_some_and(|t| t.trim_start().starts_with(prefix))
}

fn as_str_raw(raw: &str) -> Option<String> {
    serde_json::from_str::<String>(raw).ok()
}

/// An image part as a content block.
fn image_block(data: &InlineData) -> Option<String> {
    let raw = data.data?;
    as_str(raw)?;
    let mime = data
        .mime_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    Some(format!(
        "{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":{},\"data\":{}}}}}",
        json_str(mime),
        raw.get()
    ))
}

/// A `user` record: the person's prompt (`user.message`, `human`) unless its `provenance`
/// says the agent wrote it; the files an `@path` read and reminders split off after it as
/// `system.message`s.
pub fn user(r: &ChatRecord, out: &mut Out, counts: &mut Counts) -> Result<(), MapError> {
    match r.subtype.as_deref() {
        None => prompt(r, out, counts),
        // Written by Qwen Code as user-role input to the model, not typed.
        Some(kind @ ("notification" | "cron")) => injected(r, &Payload::of(r), kind, out, counts),
        Some("goal_runtime") => injected(r, &Payload::default(), "goal_runtime", out, counts),
        Some("mid_turn_user_message") => mid_turn(r, &Payload::of(r), out, counts),
        Some("realtime_message") => spoken(r, out, counts),
        Some(other) => {
            counts.unknown(&format!("user:{other}"));
            Ok(())
        }
    }
}

/// A person's turn in a realtime (voice) conversation, as Qwen Code transcribed it.
fn spoken(r: &ChatRecord, out: &mut Out, counts: &mut Counts) -> Result<(), MapError> {
    let texts = text_of(r, &Payload::default());
    if texts.is_empty() {
        counts.skip("realtime_message without text");
        return Ok(());
    }
    let mut ev = EventBuf::new("user.message");
    ev.raw("content", &blocks(&texts))
        .meta_str("author", "human");
    out.emit(ev, "realtime")
}

/// A user record's parts, by who wrote them: typed (text and images), the files an `@path`
/// read, reminders; content blocks each.
struct Split {
    typed: Vec<String>,
    files: Vec<String>,
    reminders: Vec<String>,
}

fn split(parts: &[Part], counts: &mut Counts) -> Split {
    let mut out = Split {
        typed: Vec::new(),
        files: Vec::new(),
        reminders: Vec::new(),
    };
    let mut said = Said::Typed;
    for part in parts {
        if part.function_response.is_some() {
            // Tool results sent as a user message: as a tool_result record's.
            continue;
        }
        let Some(text) = part.text else {
            match part.inline_data.as_ref().and_then(image_block) {
                Some(block) => out.typed.push(block),
                None => counts.unknown("user part"),
            }
            continue;
        };
        if part.thought == Some(true) {
            counts.skip("user thought part");
            continue;
        }
        if starts_with(text.get(), REFERENCED_FILES) {
            said = Said::ReferencedFiles;
        }
        let this = match said {
            Said::Typed if starts_with(text.get(), SYSTEM_REMINDER) => Said::SystemReminder,
            s => s,
        };
        let group = match this {
            Said::Typed => &mut out.typed,
            Said::ReferencedFiles => &mut out.files,
            Said::SystemReminder => &mut out.reminders,
        };
        group.push(text_block(text.get()));
    }
    out
}

/// A `user` record without subtype: the person's prompt (what `recordUserMessage` wrote).
fn prompt(r: &ChatRecord, out: &mut Out, counts: &mut Counts) -> Result<(), MapError> {
    let typed_by_person = matches!(r.provenance.as_deref(), None | Some("real_user"));
    let parts = r
        .message
        .as_ref()
        .map(|m| m.parts.as_slice())
        .unwrap_or(&[]);
    let payload = Payload::of(r);
    if let (true, false, Some(display)) = (
        typed_by_person,
        out.common.in_thread(),
        payload.display_text,
    ) {
        if as_str(display).is_some_and(|d| !d.trim().is_empty()) {
            return typed_and_expanded(r, display.get(), out, counts);
        }
    }
    let Split {
        typed,
        files,
        reminders,
    } = split(parts, counts);
    let blank = typed.iter().all(|b| is_blank_block(b));
    if typed.is_empty() || blank {
        out.w.pass_over();
    } else if typed.len() == 1 && typed[0] == text_block(PLEASE_CONTINUE) {
        let mut ev = EventBuf::new("system.message");
        ev.raw("content", &blocks(&typed));
        out.emit(ev, "auto_continuation")?;
    } else if out.common.in_thread() {
        // A sub-agent's or sub-session's prompt: written by the agent that started it.
        let mut ev = EventBuf::new("user.message");
        ev.raw("content", &blocks(&typed))
            .meta_str("author", "agent");
        out.emit(ev, "subagent_prompt")?;
    } else if typed_by_person {
        let mut ev = EventBuf::new("user.message");
        ev.raw("content", &blocks(&typed))
            .meta_str("author", "human");
        out.emit(ev, "prompt")?;
    } else {
        let mut ev = EventBuf::new("system.message");
        ev.raw("content", &blocks(&typed));
        out.emit(ev, r.provenance.as_deref().unwrap_or("injected"))?;
    }
    for (group, kind) in [(files, "referenced_files"), (reminders, "system_reminder")] {
        if !group.is_empty() {
            let mut ev = EventBuf::new("system.message");
            ev.raw("content", &blocks(&group));
            out.emit(ev, kind)?;
        }
    }
    tool_results(r, out, counts)
}

/// A user record whose payload keeps what the person typed before Qwen Code expanded it
/// (`displayText`, newer versions): that is the prompt; the model-bound parts that differ from
/// it (expanded `@path`s, hook context, reminders) are one `system.message` after it.
fn typed_and_expanded(
    r: &ChatRecord,
    display: &str,
    out: &mut Out,
    counts: &mut Counts,
) -> Result<(), MapError> {
    let mut ev = EventBuf::new("user.message");
    ev.text_content("content", display)
        .meta_str("author", "human");
    out.emit(ev, "prompt")?;
    let typed = as_str_raw(display).unwrap_or_default();
    let parts = r
        .message
        .as_ref()
        .map(|m| m.parts.as_slice())
        .unwrap_or(&[]);
    let expanded: Vec<String> = parts
        .iter()
        .filter(|p| p.thought != Some(true) && p.function_response.is_none())
        .filter_map(|p| match p.text {
            Some(t) if as_str_raw(t.get()).is_some_and(|t| t.trim() == typed.trim()) => None,
            Some(t) => Some(text_block(t.get())),
            None => p.inline_data.as_ref().and_then(image_block),
        })
        .collect();
    if !expanded.is_empty() {
        let mut ev = EventBuf::new("system.message");
        ev.raw("content", &blocks(&expanded));
        out.emit(ev, "expanded_prompt")?;
    }
    tool_results(r, out, counts)
}

/// Whether a built text block holds only whitespace (an image block never does).
fn is_blank_block(block: &str) -> bool {
    let Some(raw) = block
        .strip_prefix("{\"type\":\"text\",\"text\":")
        .and_then(|b| b.strip_suffix('}'))
    else {
        return false;
    };
    is_blank_json_str(raw)
}

/// An `assistant` record's parts: text, thoughts (`thought: true`), calls (`functionCall`).
pub fn assistant(r: &ChatRecord, out: &mut Out, counts: &mut Counts) -> Result<(), MapError> {
    let parts = r
        .message
        .as_ref()
        .map(|m| m.parts.as_slice())
        .unwrap_or(&[]);
    for part in parts {
        assistant_part(part, out, counts)?;
    }
    Ok(())
}

fn assistant_part(part: &Part, out: &mut Out, counts: &mut Counts) -> Result<(), MapError> {
    if let Some(call) = &part.function_call {
        let fallback = out.w.next_key();
        let id = call.id.as_deref().unwrap_or(&fallback);
        let name = call.name.as_deref().unwrap_or("(unnamed)");
        let args = call.args.map(|a| a.get()).unwrap_or("{}");
        return out.emit(tool_use_event(name, None, args, id), "tool_use");
    }
    let Some(text) = part.text else {
        counts.unknown("assistant part");
        out.w.pass_over();
        return Ok(());
    };
    if is_blank_json_str(text.get()) {
        counts.skip(if part.thought == Some(true) {
            "blank thought"
        } else {
            "blank text part"
        });
        out.w.pass_over();
        return Ok(());
    }
    if part.thought == Some(true) {
        return out.emit(thinking_event(Some(text.get())), "thinking");
    }
    let mut ev = EventBuf::new("agent.message");
    ev.text_content("content", text.get());
    out.emit(ev, "text")
}

/// The `functionResponse` parts of a record, each an `agent.tool_result` for its call's id;
/// other parts after one (an image a tool returned) join its content.
pub fn tool_results(r: &ChatRecord, out: &mut Out, counts: &mut Counts) -> Result<(), MapError> {
    let parts = r
        .message
        .as_ref()
        .map(|m| m.parts.as_slice())
        .unwrap_or(&[]);
    let result = r.tool_call_result.as_ref();
    let failed = result.is_some_and(|t| !is_null(t.error) || t.status.as_deref() == Some("error"));
    // The result being read: its call id, its content array as written so far (tool output
    // is large: written once, not joined and copied again), whether it failed.
    let mut pending: Option<(String, String, bool)> = None;
    for part in parts {
        if let Some(fr) = &part.function_response {
            flush(&mut pending, out)?;
            let id = fr
                .id
                .as_deref()
                .or(result.and_then(|t| t.call_id.as_deref()));
            let Some(id) = id else {
                counts.skip("tool result without call id");
                continue;
            };
            let response = fr.response.as_ref();
            let error = response.and_then(|r| r.error).filter(|e| e.get() != "null");
            let shown = response
                .and_then(|r| r.output)
                .filter(|o| o.get() != "null")
                .or(error);
            let mut content = String::from("[");
            match shown {
                Some(raw) if is_str(raw) => push_text_block(&mut content, raw.get()),
                Some(raw) => push_text_block(&mut content, &json_str(raw.get())),
                None => push_text_block(&mut content, "\"\""),
            };
            pending = Some((id.to_string(), content, failed || error.is_some()));
        } else if r.kind.as_deref() == Some("tool_result") {
            match (&mut pending, extra_block(part)) {
                (Some((_, content, _)), Some(block)) => {
                    content.push(',');
                    content.push_str(&block);
                }
                _ => counts.skip("tool result part without a response"),
            }
        }
    }
    flush(&mut pending, out)
}

fn extra_block(part: &Part) -> Option<String> {
    if let Some(text) = part.text {
        return Some(text_block(text.get()));
    }
    part.inline_data.as_ref().and_then(image_block)
}

fn flush(pending: &mut Option<(String, String, bool)>, out: &mut Out) -> Result<(), MapError> {
    match pending.take() {
        Some((id, mut content, is_error)) => {
            content.push(']');
            out.emit(
                tool_result_event(&id, None, &content, is_error),
                "tool_result",
            )
        }
        None => Ok(()),
    }
}

/// Appends `{"type":"text","text":<raw JSON string>}`, as [`text_block`] writes it.
fn push_text_block(out: &mut String, raw_string: &str) {
    out.reserve(raw_string.len() + 24);
    out.push_str("{\"type\":\"text\",\"text\":");
    out.push_str(raw_string);
    out.push('}');
}

/// A `slash_command` record: its invocation is what the person typed; its result is the UI's.
pub fn slash_command(p: &Payload, out: &mut Out, counts: &mut Counts) -> Result<(), MapError> {
    match (p.phase.as_deref(), p.raw_command.as_deref()) {
        (Some("invocation"), Some(command)) => {
            let mut ev = EventBuf::new("user.message");
            ev.text_content("content", &json_str(command))
                .meta_str("author", "human");
            out.emit(ev, "slash_command")
        }
        (phase, _) => {
            counts.skip(&format!("slash_command {}", phase.unwrap_or("(no phase)")));
            Ok(())
        }
    }
}

/// The text of a record: its message's text parts, else its payload's `displayText`.
fn text_of(r: &ChatRecord, p: &Payload) -> Vec<String> {
    let parts = r
        .message
        .as_ref()
        .map(|m| m.parts.as_slice())
        .unwrap_or(&[]);
    let texts: Vec<String> = parts
        .iter()
        .filter(|p| p.thought != Some(true))
        .filter_map(|p| p.text.map(|t| text_block(t.get())))
        .collect();
    match (texts.is_empty(), p.display_text) {
        (true, Some(d)) if is_str(d) => vec![text_block(d.get())],
        _ => texts,
    }
}

/// A notice the agent put in the conversation (a background task's, a scheduled prompt).
pub fn injected(
    r: &ChatRecord,
    p: &Payload,
    kind: &str,
    out: &mut Out,
    counts: &mut Counts,
) -> Result<(), MapError> {
    let texts = text_of(r, p);
    if texts.is_empty() {
        counts.skip(&format!("{kind} without text"));
        return Ok(());
    }
    let mut ev = EventBuf::new("system.message");
    ev.raw("content", &blocks(&texts));
    out.emit(ev, kind)
}

/// A message the person typed while the agent was working: its `displayText`, else its parts.
pub fn mid_turn(
    r: &ChatRecord,
    p: &Payload,
    out: &mut Out,
    counts: &mut Counts,
) -> Result<(), MapError> {
    // What was typed; the model-bound parts may carry more.
    let texts = match p.display_text {
        Some(d) if is_str(d) => vec![text_block(d.get())],
        _ => text_of(r, p),
    };
    if texts.is_empty() {
        counts.skip("mid_turn_user_message without text");
        return Ok(());
    }
    let mut ev = EventBuf::new("user.message");
    ev.raw("content", &blocks(&texts))
        .meta_str("author", "human");
    out.emit(ev, "queued")
}

/// The first text part of a record, decoded: a sub-agent's prompt, to find the call that gave it.
pub fn first_text(r: &ChatRecord) -> Option<String> {
    let parts = r.message.as_ref()?.parts.as_slice();
    let text = parts.iter().find_map(|p| p.text)?;
    as_str_raw(text.get())
}

/// `(prompt, call id)` of each call of the record whose arguments give a `prompt` (Qwen Code's
/// `task` tool starting a sub-agent, and any other that does).
pub fn task_calls(r: &ChatRecord) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Args {
        prompt: Option<String>,
    }
    let parts = r
        .message
        .as_ref()
        .map(|m| m.parts.as_slice())
        .unwrap_or(&[]);
    parts
        .iter()
        .filter_map(|p| p.function_call.as_ref())
        .filter_map(|call| {
            let args: Args = serde_json::from_str(call.args?.get()).ok()?;
            Some((args.prompt?, call.id.as_deref()?.to_string()))
        })
        .collect()
}
