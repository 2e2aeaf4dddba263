//! Copilot CLI records -> Durable Sessions events.
//!
//! An event line is `{type, data, id, timestamp, parentId, agentId?}` ([`events`]); a legacy
//! document gives a session record and OpenAI-style chat messages ([`legacy`]). State is kept
//! per session: its context (cwd, git branch and repository, model, CLI version, the parent it
//! continues), the tool calls seen (to pair results and tell MCP tools), the reasoning texts
//! already written (the same thinking is in `assistant.reasoning` and in the message's
//! `reasoningText`), and the last timestamp (what legacy messages, which have none, inherit).
//! The format facts relied on are in this crate's FORMAT.md.

mod events;
mod legacy;

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use tonbo_core::event::EventBuf;
use tonbo_core::mapping::{
    Counts, EventSink, EventWriter, MapError, SessionStates, SourceMapping, Stamp,
};
use tonbo_core::record_line::RecordLine;
use tonbo_core::SourceRecord;

use crate::record::{at_file, RecordKind};
use crate::SOURCE;

/// What the mapping keeps of one session while its records come.
#[derive(Default)]
struct SessionState {
    session_id: String,
    cwd: Option<String>,
    git_branch: Option<String>,
    git_commit: Option<String>,
    git_repository: Option<String>,
    cli_version: Option<String>,
    model: Option<String>,
    /// `detachedFromSpawningParentSessionId`: the stream of the session this one continues.
    parent: Option<String>,
    /// toolCallId -> MCP server name (None for other tools).
    calls: HashMap<String, Option<String>, foldhash::fast::RandomState>,
    /// Legacy calls still waiting for their result, for a `tool` message without an id.
    open_calls: Vec<String>,
    /// The session-wide totals of the last `session.shutdown`, by model: input, output, cache
    /// read, cache write.
    usage: HashMap<String, [u64; 4]>,
    /// Hashes of reasoning texts written, so the same thinking goes out once.
    thoughts: HashSet<u64, foldhash::fast::RandomState>,
    last_timestamp: String,
}

/// The mapping of `copilot-cli` records, for `tonbo-map`.
#[derive(Default)]
pub struct CopilotMapper {
    state: SessionState,
    others: SessionStates<SessionState>,
    pub counts: Counts,
}

/// The record being mapped: where its events go, and what they share.
struct Line<'w> {
    out: EventWriter<'w>,
    timestamp: Option<String>,
    /// A sub-agent's event: its `agentId`, and the call that started the sub-agent.
    agent_id: Option<String>,
    parent_tool: Option<String>,
}

impl CopilotMapper {
    /// Makes `session_id`'s state the one at hand (records of sessions interleave when a
    /// follower writes several at once).
    fn enter(&mut self, session_id: &str) {
        if self.state.session_id == session_id {
            return;
        }
        let old = std::mem::take(&mut self.state);
        self.state = self
            .others
            .take(session_id)
            .unwrap_or_else(|| SessionState {
                session_id: session_id.to_string(),
                ..SessionState::default()
            });
        if !old.session_id.is_empty() {
            self.others.keep(old.session_id.clone(), old);
        }
    }

    /// Writes `ev` as the record's next event: the envelope, then the session's metadata.
    fn emit(&self, mut ev: EventBuf, kind: &str, line: &mut Line) -> Result<(), MapError> {
        let s = &self.state;
        let (timestamp, inherited) = match &line.timestamp {
            Some(ts) => (Some(ts.as_str()), false),
            None if !s.last_timestamp.is_empty() => (Some(s.last_timestamp.as_str()), true),
            None => (None, false),
        };
        let stamp = Stamp {
            timestamp,
            inherited,
            thread: None,
        };
        line.out.emit(&mut ev, &stamp, Some(kind), |ev| {
            ev.meta_opt("parent_session_id", s.parent.as_deref())
                .meta_opt("agent_id", line.agent_id.as_deref())
                .meta_opt("parent_tool_use_id", line.parent_tool.as_deref())
                .meta_opt("cwd", s.cwd.as_deref())
                .meta_opt("git_branch", s.git_branch.as_deref())
                .meta_opt("git_commit", s.git_commit.as_deref())
                .meta_opt("git_repository", s.git_repository.as_deref())
                .meta_opt("cli_version", s.cli_version.as_deref())
                .meta_opt("model", s.model.as_deref());
        })
    }
}

impl SourceMapping for CopilotMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let place = Place {
            session: &rec.session,
            kind: rec.kind.as_deref(),
            at: rec.at.as_deref(),
            text: rec.record.get(),
        };
        self.map_record(&place, None, sink)
    }

    /// An event line typed first, its id with it (the line's one parse); anything else, and an
    /// event that does not type so, is left to [`Self::map`].
    fn map_line(
        &mut self,
        line: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        if RecordKind::from_wire(line.kind).ok()? != RecordKind::Event {
            return None;
        }
        let place = Place {
            session: line.session,
            kind: line.kind,
            at: line.at.as_deref(),
            text: line.record,
        };
        if let Some(ev) = self.fast_event(line) {
            return Some(self.map_record(&place, Some(Typed::Fast(ev)), sink));
        }
        let env: events::IdEnvelope = serde_json::from_str(line.record).ok()?;
        Some(self.map_record(&place, Some(Typed::Id(env)), sink))
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}

/// An event line read in tonbo-map's one pass.
enum Typed<'a> {
    /// Its data typed with it.
    Fast(events::FastEvent<'a>),
    /// Its data raw.
    Id(events::IdEnvelope<'a>),
}

impl CopilotMapper {
    /// The line read as a [`events::FastEvent`] where that maps as the full parse does: its
    /// data names no parent call (the text holds neither the name nor a `\u` escape that could
    /// write it), and a tool start is of a request already written.
    fn fast_event<'a>(&self, line: &RecordLine<'a>) -> Option<events::FastEvent<'a>> {
        let text = line.record.as_bytes();
        static PARENT_CALL: LazyLock<memchr::memmem::Finder<'static>> =
            LazyLock::new(|| memchr::memmem::Finder::new("parentToolCallId"));
        if PARENT_CALL.find(text).is_some() || may_hold_u_escape(text) {
            return None;
        }
        let ev: events::FastEvent = serde_json::from_str(line.record).ok()?;
        if let events::FastData::Typed(events::Typed::ToolStart(id)) = &ev.data {
            let id = id.and_then(tonbo_core::event::as_str)?;
            let current = self
                .state
                .session_id
                .strip_prefix(SOURCE)?
                .strip_prefix('-');
            if current != Some(line.session) || !self.state.calls.contains_key(id.as_ref()) {
                return None;
            }
        }
        Some(ev)
    }
}

/// What a record line says of its record.
struct Place<'a> {
    session: &'a str,
    kind: Option<&'a str>,
    at: Option<&'a str>,
    /// The record's JSON text.
    text: &'a str,
}

impl CopilotMapper {
    /// Maps one record; `typed` is an event line's envelope already read with its id.
    fn map_record(
        &mut self,
        place: &Place,
        typed: Option<Typed>,
        sink: &mut dyn EventSink,
    ) -> Result<usize, MapError> {
        let session_id = tonbo_core::mapping::session_stream_again(
            &self.state.session_id,
            SOURCE,
            place.session,
        )?;
        let at = place
            .at
            .ok_or_else(|| MapError::Reject("copilot-cli record without `at`".into()))?;
        let kind = RecordKind::from_wire(place.kind).map_err(MapError::Reject)?;
        self.enter(&session_id);
        let key_base = match &typed {
            Some(Typed::Fast(ev)) => key_of(at, ev.id().as_deref()),
            Some(Typed::Id(env)) => key_of(at, env.id().as_deref()),
            None => key_base(kind, at, place.text),
        };
        let mut line = Line {
            out: EventWriter::new(sink, SOURCE, &session_id, key_base),
            timestamp: None,
            agent_id: None,
            parent_tool: None,
        };
        match (kind, typed) {
            (_, Some(Typed::Fast(ev))) => self.map_fast(ev, &mut line)?,
            (_, Some(Typed::Id(env))) => self.map_envelope(env.envelope(), &mut line)?,
            (RecordKind::Event, None) => self.map_event(place.text, &mut line)?,
            (RecordKind::LegacySession, None) => self.legacy_session(place.text),
            (RecordKind::LegacyMessage, None) => self.legacy_message(place.text, &mut line)?,
        }
        Ok(line.out.emitted())
    }
}

/// The base of a record's keys. An event line's is its file and its own `id` (a UUID the CLI
/// gives every event): stable across re-reads, and across a rewrite of the file that moves
/// lines (a rewind, if it rewrites the log, cannot make a new event take an old one's key). A
/// line without an id, and a legacy message (index in `chatMessages`, only ever appended to),
/// keys by its place, `at`.
fn key_base(kind: RecordKind, at: &str, record: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    let id = match kind {
        RecordKind::Event => serde_json::from_str::<Id>(record).ok().and_then(|r| r.id),
        _ => None,
    };
    key_of(at, id.as_deref())
}

/// The base of a record's keys from its `id` (see [`key_base`]).
fn key_of(at: &str, id: Option<&str>) -> String {
    match id.filter(|id| !id.is_empty()) {
        Some(id) => {
            // Once per line: no formatting machinery.
            let file = at_file(at);
            let mut key = String::with_capacity(file.len() + 1 + id.len());
            key.push_str(file);
            key.push(':');
            key.push_str(id);
            key
        }
        None => at.to_string(),
    }
}

/// Whether `text` may hold a `\\u` escape: a backslash before a `u` (an escaped backslash
/// before one counts too).
pub(crate) fn may_hold_u_escape(text: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', text).any(|i| text.get(i + 1) == Some(&b'u'))
}

/// A hash of a text, to recognise it again.
fn text_hash(s: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0).hash_one(s)
}
