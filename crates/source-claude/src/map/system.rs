//! `system` lines (turn ends, API errors, compaction, the rest as they are) and the lines that
//! title a session (FORMAT.md, "Titles and summaries").

use std::borrow::Cow;

use serde::Deserialize;
use tonbo_core::event::{error_event, fnv64, turn_end_event, EventBuf};
use tonbo_core::mapping::MapError;

use super::line::{as_str, ClaudeLine};
use super::{ClaudeMapper, Out};

/// A `system` line of `subtype` (or the older top-level `compact_boundary`).
pub(super) fn map_system(
    line: &ClaudeLine,
    subtype: Option<&str>,
    out: &mut Out,
) -> Result<(), MapError> {
    match subtype {
        Some("turn_duration") => {
            let mut ev = turn_end_event();
            if let Some(d) = line.duration_ms {
                ev.meta_raw("duration_ms", d.get());
            }
            out.emit(ev, Some("turn_duration"))
        }
        Some("api_error") => map_api_error(line, out),
        Some("compact_boundary") => {
            let mut ev = EventBuf::new("agent.thread_context_compacted");
            if let Some(m) = line.compact_metadata {
                ev.meta_raw("compact_metadata", m.get());
            }
            ev.meta_opt("logical_parent_uuid", line.logical_parent_uuid.as_deref());
            out.emit(ev, Some("compact_boundary"))
        }
        other => {
            // stop_hook_summary, local_command, informational, ...: a custom event.
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

/// An API error: its kind by HTTP status, retrying while attempts are left.
fn map_api_error(line: &ClaudeLine, out: &mut Out) -> Result<(), MapError> {
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
    let retry = if retrying { "retrying" } else { "exhausted" };
    let mut ev = error_event(kind, &message, retry);
    if let Some(e) = line.error {
        ev.meta_raw("error", e.get());
    }
    out.emit(ev, Some("api_error"))
}

impl ClaudeMapper {
    /// A `summary`, `ai-title`, `custom-title` or `agent-name` line (`kind`), once per text.
    /// `holds_leaf`: claude-read found the session holds a `summary`'s leaf (`summary-title`).
    pub(super) fn map_title(
        &mut self,
        kind: &str,
        line: &ClaudeLine,
        holds_leaf: bool,
        out: &mut Out,
    ) -> Result<(), MapError> {
        let title = match kind {
            "summary" => line.summary.as_deref(),
            "ai-title" => line.ai_title.as_deref().or(line.title.as_deref()),
            "custom-title" => line.custom_title.as_deref().or(line.title.as_deref()),
            _ => line.agent_name.as_deref().or(line.title.as_deref()),
        };
        let Some(t) = title else {
            self.skip(kind);
            return Ok(());
        };
        let hash = fnv64(t.as_bytes());
        // A `summary` titles the session that holds its leaf; otherwise it is kept as what it
        // is, a summary of a conversation somewhere else.
        let (ev_type, key) = match (kind, line.leaf_uuid.as_deref()) {
            ("summary", leaf) if !holds_leaf => (
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
            return Ok(());
        }
        let mut ev = EventBuf::new(ev_type);
        let summary = ev_type == "claude_code.summary";
        if summary {
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
            Some(if summary { "summary" } else { "title" }),
        )
    }
}
