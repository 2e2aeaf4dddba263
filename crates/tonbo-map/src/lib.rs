//! tonbo-map: turns source records into Durable Sessions events.
//!
//! Dispatches on the record's `source`. Each source's mapping lives in a module of its own;
//! `events` records are already events and pass through byte for byte after a contract check.
//! Sources whose mapping has not landed yet are rejected by name, never silently dropped.

pub mod claude;
pub mod codex;
pub mod event;
pub mod opencode;

use std::collections::{BTreeMap, HashMap};

use serde_json::value::RawValue;
use tonbo_core::contract::{check_session_id, session_id_for};
use tonbo_core::{EventHead, SourceRecord};

/// The states of the sessions a mapper met recently, other than the one at hand. A backfill
/// brings each session's records together, but a `--follow` reader interleaves the sessions
/// being written; a session that comes back finds its state (its project, parent, tool calls,
/// lines seen) as it left it, so it maps as a backfill of the same records would. At most
/// `SESSIONS_KEPT` are kept, the least recently met dropped first, so memory stays bounded in a
/// backfill of many sessions.
pub(crate) struct SessionStates<T> {
    states: HashMap<String, (u64, T)>,
    tick: u64,
}

/// Enough for the sessions written at the same time on one machine.
pub(crate) const SESSIONS_KEPT: usize = 64;

impl<T> Default for SessionStates<T> {
    fn default() -> Self {
        SessionStates {
            states: HashMap::new(),
            tick: 0,
        }
    }
}

impl<T> SessionStates<T> {
    /// Makes `key`'s state the current one: the current state is kept aside under `current_key`
    /// and `key`'s is taken back, or made by `new` for a session not met recently.
    pub(crate) fn switch(
        &mut self,
        current: &mut T,
        current_key: String,
        key: &str,
        new: impl FnOnce() -> T,
    ) {
        let next = self.take(key).unwrap_or_else(new);
        let old = std::mem::replace(current, next);
        self.keep(current_key, old);
    }

    /// Takes the state kept under `key`, if any.
    pub(crate) fn take(&mut self, key: &str) -> Option<T> {
        self.states.remove(key).map(|(_, t)| t)
    }

    /// Keeps `state` under `key`, dropping the least recently kept one when full.
    pub(crate) fn keep(&mut self, key: String, state: T) {
        if key.is_empty() {
            return;
        }
        if self.states.len() >= SESSIONS_KEPT && !self.states.contains_key(&key) {
            if let Some(oldest) = self
                .states
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone())
            {
                self.states.remove(&oldest);
            }
        }
        self.tick += 1;
        self.states.insert(key, (self.tick, state));
    }
}

/// What a source's mapping did not turn into events, by name. Every source counts the same
/// way, and the summary line names them, so that format drift shows the day it happens.
#[derive(Debug, Default)]
pub struct Counts {
    /// Records, or parts of them, passed over by a rule of the mapping, by what they are.
    pub skipped: BTreeMap<String, u64>,
    /// Record, item, part or block types the mapping does not know, by name.
    pub unknown: BTreeMap<String, u64>,
    /// The sum of `unknown`: whether a record met something unknown.
    pub unknown_total: u64,
}

impl Counts {
    pub fn skip(&mut self, what: &str) {
        *self.skipped.entry(what.to_string()).or_insert(0) += 1;
    }

    pub fn unknown(&mut self, what: &str) {
        *self.unknown.entry(what.to_string()).or_insert(0) += 1;
        self.unknown_total += 1;
    }

    /// `SOURCE: skipped by rule: A 1, B 2; unknown: C 3`, or `None` when nothing was passed
    /// over.
    pub fn summary(&self, source: &str) -> Option<String> {
        if self.skipped.is_empty() && self.unknown.is_empty() {
            return None;
        }
        Some(format!(
            "{source}: skipped by rule: {}; unknown: {}",
            listed(&self.skipped),
            listed(&self.unknown)
        ))
    }
}

/// `A 1, B 2`, or `none`.
pub fn listed(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Receives the events a record maps to.
pub trait EventSink {
    fn event(&mut self, session_id: &str, event: &RawValue) -> std::io::Result<()>;
}

/// Maps source records of every source, keeping each source's streaming state.
#[derive(Default)]
pub struct Mapper {
    pub claude: claude::ClaudeMapper,
    pub codex: codex::CodexMapper,
    pub opencode: opencode::OpenCodeMapper,
}

impl Mapper {
    /// Maps one source record, sending its events to `sink`. Returns how many it produced.
    pub fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        match rec.source.as_ref() {
            "events" => map_event_record(rec, sink),
            "claude-code" => self.claude.map(rec, sink),
            "codex" => self.codex.map(rec, sink),
            "opencode" => self.opencode.map(rec, sink),
            other => Err(MapError::Reject(format!(
                "unknown source `{other}` (expected one of {})",
                tonbo_core::contract::SOURCES.join(", ")
            ))),
        }
    }

    /// Emits what the end of input completes (an open Claude Code API response's span).
    pub fn finish(&mut self, sink: &mut dyn EventSink) -> Result<(), MapError> {
        self.claude.finish(sink)
    }

    /// How many unknown things every source has met so far.
    pub fn unknown_total(&self) -> u64 {
        self.claude.counts.unknown_total
            + self.codex.counts.unknown_total
            + self.opencode.counts.unknown_total
    }

    /// One summary line per source that passed something over.
    pub fn summaries(&self) -> Vec<String> {
        [
            self.claude.counts.summary("claude-code"),
            self.codex.counts.summary("codex"),
            self.opencode.counts.summary("opencode"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Maps one record with a fresh [`Mapper`] (no state across records).
pub fn map_record(rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
    let mut m = Mapper::default();
    let n = m.map(rec, sink)?;
    m.finish(sink)?;
    Ok(n)
}

/// What stopped a record from mapping.
#[derive(Debug)]
pub enum MapError {
    /// Bad input: the record is reported and counted, the stage goes on.
    Reject(String),
    /// Output failed (for example a closed pipe): the stage stops.
    Io(std::io::Error),
}

impl From<std::io::Error> for MapError {
    fn from(e: std::io::Error) -> Self {
        MapError::Io(e)
    }
}

/// The "anything else" source: `record` is a complete event whose session id is `session`.
fn map_event_record(rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
    let session_id = session_id_for("events", &rec.session);
    check_session_id(&session_id).map_err(MapError::Reject)?;
    let head = EventHead::parse(rec.record).map_err(MapError::Reject)?;
    head.check_full().map_err(MapError::Reject)?;
    sink.event(&session_id, rec.record)?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<(String, String)>);
    impl EventSink for Collect {
        fn event(&mut self, s: &str, e: &RawValue) -> std::io::Result<()> {
            self.0.push((s.to_string(), e.get().to_string()));
            Ok(())
        }
    }

    fn map(line: &str) -> Result<Vec<(String, String)>, String> {
        let rec: SourceRecord = serde_json::from_str(line).unwrap();
        let mut c = Collect(vec![]);
        match map_record(&rec, &mut c) {
            Ok(_) => Ok(c.0),
            Err(MapError::Reject(r)) => Err(r),
            Err(MapError::Io(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn events_pass_through_byte_for_byte() {
        let ev = r#"{"type":"my.thing","n": 1.50,"metadata":{"source":"mine","source_key":"k1","original_timestamp":null}}"#;
        let got = map(&format!(
            r#"{{"source":"events","session":"s-1","record":{ev}}}"#
        ))
        .unwrap();
        assert_eq!(got, vec![("s-1".to_string(), ev.to_string())]);
    }

    #[test]
    fn incomplete_events_and_unknown_sources_are_rejected() {
        let r = map(
            r#"{"source":"events","session":"s","record":{"type":"x","metadata":{"source_key":"k"}}}"#,
        );
        assert!(r.unwrap_err().contains("metadata.source"));
        let r = map(r#"{"source":"gemini","session":"s","record":{}}"#);
        assert!(r.unwrap_err().contains("unknown source `gemini`"));
        let r = map(r#"{"source":"events","session":"","record":{}}"#);
        assert!(r.unwrap_err().contains("empty session id"));
    }
}
