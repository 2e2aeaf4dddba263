//! Who wrote a Codex session's prompts, and the IDE context a prompt carries.
//!
//! A session spawned by another thread (`session_meta.source` `{"subagent": ...}`) has its
//! prompts written by that agent; `parent_thread_id` names it. An IDE extension sends a prompt
//! as `# Context from my IDE setup:` (active file, open tabs, ...) then `## My request for
//! Codex:` and what the person typed (this crate's FORMAT.md, "Who wrote a user message").

use serde_json::{Map, Value};

/// What a session's `session_meta` says about who started it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Spawn {
    /// The thread that spawned this one, when the session says.
    pub parent: Option<String>,
    /// The agent's role or nickname.
    pub agent: Option<String>,
}

/// A sub-agent's session, from `session_meta`: `source: {"subagent": {"thread_spawn":
/// {"parent_thread_id", "agent_role", "agent_nickname", ...}}}`, `{"subagent": "review"}` (or
/// another kind, or `{"other": ...}`), `{"internal": ...}`, or the later top-level
/// `thread_source` (`subagent`, `guardian_review`; `user` is a person's), `parent_thread_id`,
/// `agent_role` (`agent_type`), `agent_nickname`. `None` for a session a person started.
pub(crate) fn spawn_of(meta: &Value) -> Option<Spawn> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let source = meta.get("source");
    // `{"internal": "guardian"}` and `thread_source: "guardian_review"`: Codex's own reviewers.
    let sub = source.and_then(|src| src.get("subagent").or_else(|| src.get("internal")));
    let by_thread = sub.and_then(|sub| sub.get("thread_spawn"));
    let thread_source = s(meta, "thread_source");
    let is_sub = sub.is_some() || thread_source.as_deref().is_some_and(|t| t != "user");
    if !is_sub {
        return None;
    }
    let parent = by_thread
        .and_then(|t| s(t, "parent_thread_id"))
        .or_else(|| s(meta, "parent_thread_id"));
    let agent = by_thread
        .and_then(|t| s(t, "agent_role").or_else(|| s(t, "agent_nickname")))
        .or_else(|| s(meta, "agent_role"))
        .or_else(|| s(meta, "agent_type"))
        .or_else(|| s(meta, "agent_nickname"))
        .or_else(|| sub.and_then(Value::as_str).map(str::to_string))
        .or_else(|| {
            sub.and_then(|s| s.get("other"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or(thread_source);
    Some(Spawn { parent, agent })
}

/// Headings an IDE extension's (or the desktop app's) prompt starts with.
const IDE_HEADINGS: &[&str] = &[
    "# Context from my IDE setup:",
    "# Files mentioned by the user:",
    "# Files pasted by the user:",
    "# In app browser:",
    "# Browser comments:",
];

/// Splits an IDE extension's prompt into its context and what the person typed (after the
/// `## My request for Codex:` line; empty when there is none). `None` for any other text.
pub(crate) fn split_ide(text: &str) -> Option<(&str, &str)> {
    let t = text.trim_start();
    if !IDE_HEADINGS.iter().any(|h| t.starts_with(h)) {
        return None;
    }
    let mut at = 0;
    for line in t.split_inclusive('\n') {
        let l = line.trim_end();
        if l.starts_with("## My request") && l.ends_with(':') {
            return Some((t[..at].trim_end(), t[at + line.len()..].trim()));
        }
        at += line.len();
    }
    Some((t.trim_end(), ""))
}

/// What IDE context says, as structured metadata: `active_file`, `open_tabs` (paths),
/// `files_mentioned` (paths), `selection` (the selected text), and any other section by its
/// heading.
pub(crate) fn ide_metadata(context: &str) -> Value {
    let mut m = Map::new();
    let mut heading: Option<String> = None;
    let mut body: Vec<&str> = Vec::new();
    let flush = |heading: &Option<String>, body: &mut Vec<&str>, m: &mut Map<String, Value>| {
        let Some(h) = heading else {
            body.clear();
            return;
        };
        let text = body.join("\n").trim().to_string();
        body.clear();
        let list = || -> Vec<Value> {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix("- "))
                .map(|item| item.split_once(": ").map_or(item, |(_, path)| path).into())
                .collect()
        };
        match h.as_str() {
            "Open tabs:" => {
                m.insert("open_tabs".into(), Value::Array(list()));
            }
            h if h.starts_with("Active file: ") => {
                m.insert("active_file".into(), h["Active file: ".len()..].into());
            }
            h if h.starts_with("Active selection") => {
                m.insert("selection".into(), text.into());
            }
            h if h.contains(": ") => {
                // `# Files mentioned by the user:` lists `## <name>: <path>`.
                let (_, path) = h.split_once(": ").unwrap_or(("", h));
                let files = m
                    .entry("files_mentioned")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = files {
                    a.push(path.into());
                }
            }
            h => {
                m.insert(h.trim_end_matches(':').to_string(), text.into());
            }
        }
    };
    for line in context.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            flush(&heading, &mut body, &mut m);
            heading = Some(h.trim().to_string());
        } else if !line.starts_with("# ") {
            body.push(line);
        }
    }
    flush(&heading, &mut body, &mut m);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sub_agents_by_their_session_meta() {
        let meta = json!({"id": "c", "source": {"subagent": {"thread_spawn": {
            "parent_thread_id": "p", "depth": 1, "agent_nickname": "Ada", "agent_role": "critic"}}}});
        assert_eq!(
            spawn_of(&meta),
            Some(Spawn {
                parent: Some("p".into()),
                agent: Some("critic".into())
            })
        );
        let review = json!({"id": "c", "source": {"subagent": "review"}});
        assert_eq!(
            spawn_of(&review),
            Some(Spawn {
                parent: None,
                agent: Some("review".into())
            })
        );
        let v4 = json!({"id": "c", "source": "cli", "thread_source": "subagent",
            "parent_thread_id": "p", "agent_type": "explorer"});
        assert_eq!(
            spawn_of(&v4),
            Some(Spawn {
                parent: Some("p".into()),
                agent: Some("explorer".into())
            })
        );
        let guardian = json!({"id": "c", "thread_source": "guardian_review"});
        assert_eq!(
            spawn_of(&guardian),
            Some(Spawn {
                parent: None,
                agent: Some("guardian_review".into())
            })
        );
        let internal = json!({"id": "c", "source": {"internal": "memory_consolidation"}});
        assert_eq!(
            spawn_of(&internal).unwrap().agent.as_deref(),
            Some("memory_consolidation")
        );
        assert_eq!(
            spawn_of(&json!({"id": "c", "source": "vscode", "thread_source": "user"})),
            None
        );
        assert_eq!(spawn_of(&json!({"id": "c", "source": "vscode"})), None);
        assert_eq!(spawn_of(&json!({"id": "c"})), None);
    }

    #[test]
    fn an_ide_prompt_is_its_context_and_the_request() {
        let t = "# Context from my IDE setup:\n\n## Active file: backend/src/a.ts\n\n## Open tabs:\n- a.ts: backend/src/a.ts\n- PLAN.md: PLAN.md\n\n## My request for Codex:\nupdate the prompt log\n";
        let (context, request) = split_ide(t).unwrap();
        assert_eq!(request, "update the prompt log");
        assert!(context.ends_with("- PLAN.md: PLAN.md"));
        assert_eq!(
            ide_metadata(context),
            json!({"active_file": "backend/src/a.ts", "open_tabs": ["backend/src/a.ts", "PLAN.md"]})
        );
        let files = "# Files mentioned by the user:\n\n## clipboard-1.png: C:/tmp/clipboard-1.png\n\n## My request for Codex:\nwhat is this?";
        let (context, request) = split_ide(files).unwrap();
        assert_eq!(request, "what is this?");
        assert_eq!(
            ide_metadata(context),
            json!({"files_mentioned": ["C:/tmp/clipboard-1.png"]})
        );
        assert_eq!(split_ide("fix the context from my IDE setup"), None);
        assert_eq!(
            split_ide("# Context from my IDE setup:\n\n## Open tabs:\n- a: a")
                .unwrap()
                .1,
            ""
        );
    }
}
