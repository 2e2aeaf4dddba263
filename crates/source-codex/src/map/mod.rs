//! Codex records -> Durable Sessions events.
//!
//! The reader tells each record's generation in its `kind` ([`RecordKind`]): a V2+ line
//! `{timestamp, type, payload}` ([`envelope`], [`event_msg`]), a V1 line, a V0 document's
//! session or item, a seed document's session or message ([`seed`]). Items of every generation
//! go through one mapping of `ResponseItem`s ([`item`], [`call`]).
//!
//! `response_item` is the source of truth; the `event_msg` duplicates of messages and reasoning
//! are not emitted. State is kept per session and file: its metadata (from `session_meta` and
//! `turn_context`), the tool calls seen (to pair outputs and tell MCP tools), the last
//! cumulative usage (duplicate `token_count` lines), and whether the lines at hand are a fork's
//! copy of its parent's history. The format facts relied on are in this crate's FORMAT.md.

mod call;
mod content;
mod envelope;
use envelope::Envelope;
mod event_msg;
mod item;
mod prompt;
mod seed;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::event::EventBuf;
use tonbo_core::mapping::{
    session_stream_again, Counts, EventSink, EventWriter, MapError, SessionStates, SourceMapping,
    Stamp,
};
use tonbo_core::record_line::RecordLine;
use tonbo_core::{Provenance, SourceRecord};

use crate::record::{at_file, at_of_provenance, RecordKind};
use crate::SOURCE;

/// What the mapping keeps of one session file while its records come.
#[derive(Default)]
struct SessionState {
    session_id: String,
    /// Id of the first `session_meta` of the file being read (the first is the session's own).
    meta_id: Option<String>,
    /// While reading a fork's copied history: the copy's write timestamp (copied lines all
    /// carry the fork's time).
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
    /// Last cumulative `total_token_usage`, to drop repeated `token_count` lines.
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
    spawn_calls: HashSet<String>,
    /// Seed variant: ids of tool uses still waiting for their result.
    seed_open_calls: Vec<String>,
}

/// The mapping of `codex` records, for `tonbo-map`.
#[derive(Default)]
pub struct CodexMapper {
    state: SessionState,
    /// Kept by session and file (`\0` between).
    others: SessionStates<SessionState>,
    pub counts: Counts,
}

/// The record being mapped: where its events go, and what they share.
struct Line<'w> {
    out: EventWriter<'w>,
    /// The session's stream.
    session_id: &'w str,
    /// The record's `at`: the base of its events' keys, and the id of a call that has none.
    key_base: &'w str,
    /// The record's own time, when it has one.
    timestamp: Option<String>,
}

impl CodexMapper {
    /// Makes the state of `session_id`'s file `file` the one at hand: kept aside from earlier
    /// (records of files interleaved, `--follow`), or new.
    fn enter(&mut self, session_id: &str, file: &str) {
        if self.state.session_id == session_id && self.state.file == file {
            return;
        }
        let same_session = self.state.session_id == session_id;
        let old = std::mem::take(&mut self.state);
        match self.others.take(&format!("{session_id}\0{file}")) {
            // A file met before and interleaved with others since (`--follow`).
            Some(state) => self.state = state,
            None => {
                self.state.session_id = session_id.to_string();
                self.state.file = file.to_string();
                if same_session {
                    // Another file of the same session (a reverted thread): metadata carries
                    // over.
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

    /// A V1 line: a `{"record_type": "state"}` marker, the header (no `type`), or an item.
    fn map_v1(&mut self, raw: &RawValue, line: &mut Line) -> Result<(), MapError> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Probe<'a> {
            #[serde(
                rename = "type",
                borrow,
                default,
                deserialize_with = "tonbo_core::raw::opt_str"
            )]
            kind: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
            record_type: Option<Cow<'a, str>>,
        }
        let p: Probe = serde_json::from_str(raw.get()).unwrap_or_default();
        if p.record_type.is_some() {
            self.skip("state");
        } else if p.kind.is_none() {
            self.session_meta(raw);
        } else {
            self.map_item(raw, line)?;
        }
        Ok(())
    }

    fn skip(&mut self, what: &str) {
        self.counts.skip(what);
    }

    fn unknown(&mut self, what: &str) {
        self.counts.unknown(what);
    }

    /// Writes `ev` as the record's next event: the envelope, then what the session's metadata
    /// adds.
    fn emit(&self, mut ev: EventBuf, kind: Option<&str>, line: &mut Line) -> Result<(), MapError> {
        let s = &self.state;
        // V0 and V1 items have no time of their own: the best there is, the session's header
        // time, or that of the last line that had one, said to be inherited.
        let (timestamp, inherited) = match &line.timestamp {
            Some(ts) => (Some(ts.as_str()), false),
            None if !s.last_timestamp.is_empty() => (Some(s.last_timestamp.as_str()), true),
            None => (None, false),
        };
        let stamp = Stamp {
            timestamp,
            inherited,
            thread: s.thread.as_deref(),
        };
        line.out.emit(&mut ev, &stamp, kind, |ev| {
            ev.meta_opt("parent_session_id", s.parent.as_deref())
                .meta_opt("cwd", s.cwd.as_deref())
                .meta_opt("git_branch", s.git_branch.as_deref())
                .meta_opt("git_commit", s.git_commit.as_deref())
                .meta_opt("git_repository", s.git_repository.as_deref())
                .meta_opt("cli_version", s.cli_version.as_deref())
                .meta_opt("originator", s.originator.as_deref())
                .meta_opt("model", s.model.as_deref())
                .meta_opt("turn_id", s.turn_id.as_deref())
                .meta_opt("forked_from_id", s.forked_from.as_deref());
        })
    }
}

impl CodexMapper {
    /// Maps one record of the session `session` at `at` (else where its provenance says),
    /// `by` the mapping of its kind.
    fn map_record(
        &mut self,
        session: &str,
        at: Option<&str>,
        provenance: Option<&Provenance>,
        sink: &mut dyn EventSink,
        by: impl FnOnce(&mut Self, &mut Line) -> Result<(), MapError>,
    ) -> Result<usize, MapError> {
        let session_id = session_stream_again(&self.state.session_id, SOURCE, session)?;
        // Keys are the record's place, `<file name>:<line or row>` (`at`): stable while Codex
        // appends, and when a file is archived or compressed. A record of an older reader has
        // no `at`; its provenance gives the same text.
        let at = match at {
            Some(at) => Cow::Borrowed(at),
            None => Cow::Owned(at_of_provenance(provenance)),
        };
        self.enter(&session_id, at_file(&at));
        let mut line = Line {
            out: EventWriter::new(sink, SOURCE, &session_id, at.to_string()),
            session_id: &session_id,
            key_base: &at,
            timestamp: None,
        };
        by(self, &mut line)?;
        Ok(line.out.emitted())
    }
}

impl SourceMapping for CodexMapper {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let raw = rec.record;
        let at = rec.at.as_deref();
        self.map_record(
            &rec.session,
            at,
            rec.provenance.as_ref(),
            sink,
            |m, line| match RecordKind::from_wire(rec.kind.as_deref()).map_err(MapError::Reject)? {
                RecordKind::V2 => m.map_envelope(raw, line),
                RecordKind::V1 => m.map_v1(raw, line),
                RecordKind::V0Session | RecordKind::SeedSession => {
                    m.session_meta(raw);
                    Ok(())
                }
                RecordKind::V0Item => m.map_item(raw, line),
                RecordKind::SeedMessage => m.map_seed(raw, line),
            },
        )
    }

    /// The one-pass path for V2+ lines (nearly every record): the typed parse of the line's
    /// envelope is its only check as JSON, and comes first; anything else goes the full way.
    fn map_line(
        &mut self,
        rec: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        if rec.kind.is_some() {
            return None;
        }
        let env = Envelope::parse(rec.record).ok()?;
        let at = rec.at.as_deref();
        Some(
            self.map_record(rec.session, at, rec.provenance.as_ref(), sink, |m, line| {
                m.map_parsed_envelope(&env, line)
            }),
        )
    }

    fn counts(&self) -> &Counts {
        &self.counts
    }
}
