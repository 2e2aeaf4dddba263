//! Qwen Code records -> Durable Sessions events (the table in this crate's README). Each record
//! maps on its own: its events are keyed `<uuid>#<n>` (its model request `<uuid>/start` and
//! `<uuid>/end`), so re-reading a file gives the same keys. Per session the mapping keeps only
//! what later records need (its `State`): its last time, the threads and titles it gave, the
//! session that spawned or forked it, the calls that may start a sub-agent.

mod parts;
mod record;

use std::collections::{HashMap, HashSet};

use tonbo_core::contract::stable_hash;
use tonbo_core::event::{error_event, model_request_end, EventBuf};
use tonbo_core::mapping::{
    session_stream, session_stream_again, Counts, EventSink, EventWriter, MapError, SessionStates,
    SourceMapping, Stamp, Thread,
};
use tonbo_core::record_line::RecordLine;
use tonbo_core::SourceRecord;

use crate::SOURCE;
use record::{ChatRecord, Payload};

/// What is kept of one session between its records.
#[derive(Default)]
struct State {
    /// The last record time met, for records without one.
    last_ts: Option<String>,
    /// The sub-agents (`agentId`) announced as threads.
    threads: HashSet<String>,
    /// The titles given so far: Qwen Code appends its `custom_title` again as the file grows.
    titles: HashSet<String>,
    /// The stream of the session that spawned this one (its `parent_session` record).
    parent: Option<String>,
    /// The calls that started a sub-agent, by the prompt they gave it (their `args.prompt`):
    /// a thread whose first prompt is one of them was started by that call.
    task_calls: HashMap<String, String>,
    /// The session this one was forked from by `/branch` (its copied records' `forkedFrom`).
    forked_from: Option<String>,
}

/// How many calls with a prompt a session keeps, waiting for their sub-agent's thread.
const TASK_CALLS_KEPT: usize = 64;

/// Maps `qwen-code` source records.
#[derive(Default)]
pub struct QwenMapper {
    current: State,
    current_key: String,
    others: SessionStates<State>,
    counts: Counts,
}

/// System subtypes that hold no conversation (UI, resume and bookkeeping state).
const SKIPPED_SUBTYPES: &[&str] = &[
    "at_command",
    "attribution_snapshot",
    "file_history_snapshot",
    "session_notes",
    "session_source",
    "session_execution_engine",
    "session_model",
    "session_approval_mode",
    "session_artifact_event",
    "session_artifact_snapshot",
    "session_sources_snapshot",
    "branch_checkpoint",
    "goal_state",
    "goal_runtime",
    "goal_turn_end",
    "turn_result",
    "rewind",
    "parent_session",
    "agent_bootstrap",
    "agent_launch_prompt",
    "agent_retry",
    "agent_session_ready",
    "user_text_elements",
    "omni_recall",
    "realtime_message",
    "managed_session_header_v1",
    "managed_session_event_v1",
    "managed_session_commit_v1",
];

/// What every event of one record writes into its metadata.
pub(crate) struct Common<'r> {
    rec: &'r ChatRecord<'r>,
    /// The session `/branch` forked this one from.
    forked_from: Option<&'r str>,
    /// The session's stream, for a sub-agent's events (`parent_session_id`).
    parent: Option<&'r str>,
}

impl Common<'_> {
    /// Whether the record is a sub-agent's or a sub-session's: its prompts are an agent's.
    pub fn in_thread(&self) -> bool {
        self.parent.is_some()
    }

    fn write(&self, ev: &mut EventBuf) {
        self.write_without_parent(ev);
        ev.meta_opt("parent_session_id", self.parent);
    }

    fn write_without_parent(&self, ev: &mut EventBuf) {
        let r = self.rec;
        ev.meta_opt("uuid", r.uuid.as_deref())
            .meta_opt("parent_uuid", r.parent_uuid.as_deref())
            .meta_opt("cwd", r.cwd.as_deref())
            .meta_opt("git_branch", r.git_branch.as_deref())
            .meta_opt("version", r.version.as_deref())
            .meta_opt("model", r.model.as_deref())
            .meta_opt("provenance", r.provenance.as_deref())
            .meta_opt("agent_id", r.agent_id.as_deref())
            .meta_opt("forked_from_id", self.forked_from);
        if r.is_sidechain == Some(true) {
            ev.meta_raw("is_sidechain", "true");
        }
    }
}

/// One record's events on their way out.
pub(crate) struct Out<'s, 'r> {
    pub w: EventWriter<'s>,
    pub stamp: Stamp<'r>,
    pub common: Common<'r>,
}

impl Out<'_, '_> {
    /// Writes `ev` as the record's next event, of `metadata.kind` `kind`.
    pub fn emit(&mut self, mut ev: EventBuf, kind: &str) -> Result<(), MapError> {
        let common = &self.common;
        self.w
            .emit(&mut ev, &self.stamp, Some(kind), |ev| common.write(ev))
    }

    /// Writes `ev` under a key of its own.
    pub fn emit_keyed(&mut self, mut ev: EventBuf, key: &str, kind: &str) -> Result<(), MapError> {
        let common = &self.common;
        let stream = self.w.session_id();
        self.w
            .emit_to(stream, &mut ev, key, &self.stamp, Some(kind), |ev| {
                common.write(ev)
            })
    }
}

impl SourceMapping for QwenMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let r: ChatRecord = serde_json::from_str(rec.record.get())
            .map_err(|e| MapError::Reject(format!("not a Qwen Code record: {e}")))?;
        self.map_chat_record(&r, &rec.session, rec.at.as_deref(), rec.record.get(), sink)
    }

    /// The record typed first, as [`Self::map`] types it: the line's one parse.
    fn map_line(
        &mut self,
        line: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        let r: ChatRecord = serde_json::from_str(line.record).ok()?;
        Some(self.map_chat_record(&r, line.session, line.at.as_deref(), line.record, sink))
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

impl QwenMapper {
    /// Maps a record typed from `text`, of the session `session`, read at `at`.
    fn map_chat_record(
        &mut self,
        r: &ChatRecord,
        session: &str,
        at: Option<&str>,
        text: &str,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let stream = session_stream_again(&self.current_key, SOURCE, session)?;
        if self.current_key != stream {
            let old = std::mem::take(&mut self.current_key);
            self.others
                .switch(&mut self.current, old, &stream, State::default);
            self.current_key = stream.clone();
        }
        let key_base = match (&r.uuid, at) {
            (Some(uuid), _) => uuid.to_string(),
            (None, Some(at)) => at.to_string(),
            (None, None) => format!("{:016x}", stable_hash(text.as_bytes())),
        };
        let (timestamp, inherited) = self.time_of(r);
        if let Some(copied) = &r.forked_from {
            // A copy of the parent's record, whose own file holds it: mapped there, once.
            if let Some(parent) = &copied.session_id {
                self.current.forked_from = Some(parent.to_string());
            }
            self.counts.skip("record copied by /branch");
            return Ok(0);
        }
        let forked_from = self.current.forked_from.clone();
        let spawned_by = self.spawned_by(r)?;
        let (thread, parent) = self.thread_of(r, &stream);
        let stamp = Stamp {
            timestamp: timestamp.as_deref(),
            inherited,
            thread: thread.as_deref(),
        };
        let mut out = Out {
            w: EventWriter::new(sink, SOURCE, &stream, key_base.clone()),
            stamp,
            common: Common {
                rec: r,
                forked_from: forked_from.as_deref(),
                parent: parent.as_deref(),
            },
        };
        if let Some(parent) = &spawned_by {
            out.w.announce_thread(&Thread {
                parent_stream: parent,
                child: session,
                child_stream: &stream,
                agent: None,
                parent_tool_use_id: None,
                timestamp: timestamp.as_deref(),
            })?;
        }
        if let (Some(thread), Some(_)) = (&thread, r.agent_id.as_deref()) {
            if self.current.threads.insert(thread.clone()) {
                let call = parts::first_text(r).and_then(|t| self.current.task_calls.remove(&t));
                let agent = r.agent_name.as_deref();
                announce(&mut out, thread, agent, call.as_deref(), &stream)?;
            }
        }
        self.map_record(r, &key_base, &mut out)?;
        Ok(out.w.emitted())
    }
}

/// Announces a sub-agent's thread on its session's stream, where its events are too (Qwen
/// Code writes a sub-agent's records into its parent's file): `session.thread_created` keyed
/// `thread/<thread>`, naming the thread and the stream that holds it.
fn announce(
    out: &mut Out,
    thread: &str,
    agent: Option<&str>,
    call: Option<&str>,
    stream: &str,
) -> Result<(), MapError> {
    let mut ev = EventBuf::new("session.thread_created");
    ev.str("agent_name", agent.unwrap_or("subagent"))
        .str("session_thread_id", thread);
    let stamp = Stamp {
        thread: None,
        ..out.stamp
    };
    let common = &out.common;
    let key = format!("thread/{thread}");
    out.w.emit_to(
        stream,
        &mut ev,
        &key,
        &stamp,
        Some("thread_created"),
        |ev| {
            ev.meta_str("child_session_id", stream)
                .meta_opt("parent_tool_use_id", call);
            common.write_without_parent(ev)
        },
    )
}

impl QwenMapper {
    /// The record's time, else the session's last (inherited); the session's last is kept.
    fn time_of(&mut self, r: &ChatRecord) -> (Option<String>, bool) {
        match &r.timestamp {
            Some(ts) => {
                self.current.last_ts = Some(ts.to_string());
                (Some(ts.to_string()), false)
            }
            None => (self.current.last_ts.clone(), self.current.last_ts.is_some()),
        }
    }

    /// The stream of the session that spawned this one, when `r` is its `parent_session`
    /// record (kept: the session's later events are a thread of that one).
    fn spawned_by(&mut self, r: &ChatRecord) -> Result<Option<String>, MapError> {
        let payload = Payload::of(r);
        let spawned_by = match (r.subtype.as_deref(), &payload.parent_session_id) {
            (Some("parent_session"), Some(parent)) => Some(session_stream(SOURCE, parent)?),
            _ => None,
        };
        if spawned_by.is_some() {
            self.current.parent.clone_from(&spawned_by);
        }
        Ok(spawned_by)
    }

    /// The thread `r` is in and the stream it is a thread of: a sub-agent's records are a
    /// thread of this stream; a sub-session's (a session another spawned) are this stream as a
    /// thread of its parent's.
    fn thread_of(&self, r: &ChatRecord, stream: &str) -> (Option<String>, Option<String>) {
        match r.agent_id.as_deref().filter(|a| !a.is_empty()) {
            Some(agent) => (Some(format!("agent-{agent}")), Some(stream.to_string())),
            None => match &self.current.parent {
                Some(p) => (Some(stream.to_string()), Some(p.clone())),
                None => (None, None),
            },
        }
    }

    fn map_record(&mut self, r: &ChatRecord, base: &str, out: &mut Out) -> Result<(), MapError> {
        match r.kind.as_deref() {
            Some("user") => parts::user(r, out, &mut self.counts),
            Some("assistant") => self.assistant(r, base, out),
            Some("tool_result") => parts::tool_results(r, out, &mut self.counts),
            Some("system") => self.system(r, out),
            Some(other) => {
                self.counts.unknown(other);
                Ok(())
            }
            None => {
                self.counts.unknown("(no type)");
                Ok(())
            }
        }
    }

    /// An assistant turn: one model request, its parts between its start and its end.
    fn assistant(&mut self, r: &ChatRecord, base: &str, out: &mut Out) -> Result<(), MapError> {
        let start = format!("{base}/start");
        let usage = r.usage_metadata.filter(|u| u.get() != "null");
        if usage.is_some() {
            out.emit_keyed(
                EventBuf::new("span.model_request_start"),
                &start,
                "model_request",
            )?;
        }
        parts::assistant(r, out, &mut self.counts)?;
        for (prompt, id) in parts::task_calls(r) {
            if self.current.task_calls.len() < TASK_CALLS_KEPT {
                self.current.task_calls.insert(prompt, id);
            }
        }
        if let Some(usage) = usage {
            let end = model_request_end(Some(&start), usage.get());
            out.emit_keyed(end, &format!("{base}/end"), "model_request")?;
        }
        Ok(())
    }

    /// A `ui_telemetry` record: an API error is the session's error; the rest (responses, tool
    /// calls, already in the transcript) is skipped, counted by event name.
    fn telemetry(&mut self, payload: &Payload, out: &mut Out) -> Result<(), MapError> {
        let ui = payload.ui_event.as_ref();
        let name = ui.and_then(|u| u.name.as_deref()).unwrap_or("(none)");
        let Some(ui) = ui.filter(|_| name.ends_with(".api_error")) else {
            self.counts.skip(&format!("system:ui_telemetry {name}"));
            return Ok(());
        };
        let status = ui
            .status_code
            .map(|s| s.get().trim_matches('"').to_string());
        let kind = match status.as_deref() {
            Some("429") => "model_rate_limited_error",
            Some("529" | "503") => "model_overloaded_error",
            _ => "model_request_failed_error",
        };
        let message = ui.error.as_deref().unwrap_or("API error");
        // Qwen Code retries a failed request itself and records each failure: whether this
        // one was retried is not recorded.
        let mut ev = error_event(kind, message, "terminal");
        ev.meta_opt("error_type", ui.error_type.as_deref())
            .meta_opt("status_code", status.as_deref());
        out.emit(ev, "api_error")
    }

    fn system(&mut self, r: &ChatRecord, out: &mut Out) -> Result<(), MapError> {
        let subtype = r.subtype.as_deref().unwrap_or("(none)");
        let payload = Payload::of(r);
        match subtype {
            "chat_compression" => {
                let mut ev = EventBuf::new("agent.thread_context_compacted");
                if let Some(info) = payload.info {
                    ev.meta_raw("compression_info", info.get());
                }
                out.emit(ev, "chat_compression")
            }
            "custom_title" => {
                let Some(title) = payload.custom_title.as_deref() else {
                    self.counts.skip("custom_title without title");
                    return Ok(());
                };
                // Re-appended to the end of the file every 32 KiB: one event per title.
                let key = format!("title/{:016x}", stable_hash(title.as_bytes()));
                if !self.current.titles.insert(key.clone()) {
                    self.counts.skip("custom_title repeated");
                    return Ok(());
                }
                let mut ev = EventBuf::new("qwen_code.title");
                let kind = payload.title_source.as_deref().unwrap_or("manual");
                ev.str("title", title).str("title_kind", kind);
                out.emit_keyed(ev, &key, "title")
            }
            "slash_command" => parts::slash_command(&payload, out, &mut self.counts),
            "ui_telemetry" => self.telemetry(&payload, out),
            "background_task_completed" | "notification" | "cron" => {
                parts::injected(r, &payload, subtype, out, &mut self.counts)
            }
            "mid_turn_user_message" => parts::mid_turn(r, &payload, out, &mut self.counts),
            s if SKIPPED_SUBTYPES.contains(&s) => {
                self.counts.skip(&format!("system:{s}"));
                Ok(())
            }
            s => {
                self.counts.unknown(&format!("system:{s}"));
                Ok(())
            }
        }
    }
}
