//! What every source's mapping shares: the trait `tonbo-map` dispatches through
//! ([`SourceMapping`]), the envelope every event carries ([`EventWriter`]), the counts of what
//! was passed over ([`Counts`]), the per-session state kept across interleaved sessions
//! ([`SessionStates`]), and a sink that keeps what it receives ([`Collect`]).
//!
//! A source crate implements [`SourceMapping`] for its records; `tonbo-map` holds one of each
//! and hands every record to the one whose [`SourceMapping::source`] matches the record's
//! `source`.

use std::collections::{BTreeMap, HashMap};

use crate::contract::{check_session_id, session_id_for, SourceRecord};
use crate::event::EventBuf;
use crate::record_line::RecordLine;

/// One source's mapping from its source records to Durable Sessions events. It is streaming:
/// records come one at a time, in the order a reader wrote them, and the mapping keeps what it
/// needs of earlier records (tool calls awaiting results, a session's project) itself.
pub trait SourceMapping {
    /// The `source` value of the records it maps (`claude-code`, `codex`, ...).
    fn source(&self) -> &'static str;

    /// Maps one record, sending its events to `sink`. Returns how many it sent.
    fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError>;

    /// Maps a record read by [`RecordLine`] (its text unchecked) in one pass, for a mapping
    /// whose typed parse of the whole record comes before anything else it does: `None`, with
    /// nothing done, when the record does not parse that way (or the mapping has no such path);
    /// tonbo-map then parses the line as a [`SourceRecord`] and calls [`SourceMapping::map`].
    fn map_line(
        &mut self,
        _line: &RecordLine,
        _sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        None
    }

    /// Sends what the end of input completes (an event waiting for a record that will not
    /// come). Most sources have nothing to send.
    fn finish(&mut self, _sink: &mut dyn EventSink) -> Result<(), MapError> {
        Ok(())
    }

    /// What the mapping passed over so far, by name.
    fn counts(&self) -> &Counts;
}

/// Receives the events a record maps to.
pub trait EventSink {
    /// One event of the stream `session_id`: a JSON object, as [`EventBuf`] writes it or as a
    /// validated input value holds it (it is not parsed again).
    fn event(&mut self, session_id: &str, event: &str) -> std::io::Result<()>;
}

/// An [`EventSink`] that keeps the events it receives, as `(session id, event JSON)`: a
/// mapping's events in hand, for a test to look at.
#[derive(Debug, Default)]
pub struct Collect(pub Vec<(String, String)>);

impl EventSink for Collect {
    fn event(&mut self, session_id: &str, event: &str) -> std::io::Result<()> {
        self.0.push((session_id.to_string(), event.to_string()));
        Ok(())
    }
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

/// The stream of a session of `source` whose native id is `native`, or a rejection when the id
/// cannot be one (empty, too long, a character a URL path segment cannot carry).
pub fn session_stream(source: &str, native: &str) -> Result<String, MapError> {
    let id = session_id_for(source, native);
    check_session_id(&id).map_err(MapError::Reject)?;
    Ok(id)
}

/// [`session_stream`], taken from `current` without checking it again when `current` is that
/// stream already (the session at hand, checked when it was entered): a record of the same
/// session as the last costs no check.
pub fn session_stream_again(current: &str, source: &str, native: &str) -> Result<String, MapError> {
    match current.strip_prefix(source) {
        Some(rest) if rest.strip_prefix('-') == Some(native) => Ok(current.to_string()),
        _ => session_stream(source, native),
    }
}

/// What every event of one record shares besides its key: the time it happened, its thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stamp<'a> {
    /// The record's own time, or the best there is (see `inherited`); `None` for a source
    /// without clocks (then `original_timestamp` is null).
    pub timestamp: Option<&'a str>,
    /// The record has no time of its own; `timestamp` is the session's last one.
    pub inherited: bool,
    /// The thread of the session the event belongs to (`session_thread_id`), for a
    /// sub-agent's events.
    pub thread: Option<&'a str>,
}

/// Writes the events of one record with the envelope they all share, and numbers their keys:
/// the `n`th event of a record keyed `base` is `base#n`, so that re-mapping the same record
/// gives the same keys, and an event passed over keeps its number (the keys after it do not
/// move).
///
/// The envelope: `processed_at` and `session_thread_id` in the event; `source`, `source_key`,
/// `original_timestamp`, `timestamp_inherited` and `kind` first in its `metadata`, then what
/// the source adds.
pub struct EventWriter<'s> {
    sink: &'s mut dyn EventSink,
    source: &'static str,
    session_id: &'s str,
    key_base: String,
    n: usize,
    emitted: usize,
}

impl<'s> EventWriter<'s> {
    pub fn new(
        sink: &'s mut dyn EventSink,
        source: &'static str,
        session_id: &'s str,
        key_base: String,
    ) -> EventWriter<'s> {
        EventWriter {
            sink,
            source,
            session_id,
            key_base,
            n: 0,
            emitted: 0,
        }
    }

    /// Passes over the record's next event (a blank text block, say) but keeps its number.
    pub fn pass_over(&mut self) {
        self.n += 1;
    }

    /// How many events were written.
    pub fn emitted(&self) -> usize {
        self.emitted
    }

    /// The key the next numbered event will get.
    pub fn next_key(&self) -> String {
        let mut key = String::with_capacity(self.key_base.len() + 4);
        key.push_str(&self.key_base);
        key.push('#');
        if self.n < 10 {
            // Nearly every record has fewer than ten events: no formatting machinery.
            key.push(char::from(b'0' + self.n as u8));
        } else {
            key.push_str(&self.n.to_string());
        }
        key
    }

    /// Writes `ev` as the record's next numbered event; `meta` adds the source's own metadata
    /// after the envelope's.
    pub fn emit(
        &mut self,
        ev: &mut EventBuf,
        stamp: &Stamp,
        kind: Option<&str>,
        meta: impl FnOnce(&mut EventBuf),
    ) -> Result<(), MapError> {
        let key = self.next_key();
        self.n += 1;
        self.emit_to(self.session_id, ev, &key, stamp, kind, meta)
    }

    /// The stream this writer writes the record's events to.
    pub fn session_id(&self) -> &'s str {
        self.session_id
    }

    /// Writes `ev` under a key of its own (an event that stands for something other than one
    /// record's part, e.g. `thread/<child>`) to the stream `session_id`: this writer's
    /// ([`EventWriter::session_id`]), or another's (a sub-agent announced on its parent's).
    pub fn emit_to(
        &mut self,
        session_id: &str,
        ev: &mut EventBuf,
        key: &str,
        stamp: &Stamp,
        kind: Option<&str>,
        meta: impl FnOnce(&mut EventBuf),
    ) -> Result<(), MapError> {
        envelope(ev, self.source, key, stamp, kind);
        meta(ev);
        let text = ev.finish();
        self.sink.event(session_id, &text)?;
        crate::event::recycle(text);
        self.emitted += 1;
        Ok(())
    }

    /// Announces a sub-agent's session as a thread of its parent's, on the parent's stream:
    /// `session.thread_created` keyed `thread/<child's native id>`, naming the child's stream
    /// both as the thread (`session_thread_id`) and as `metadata.child_session_id` (the link's
    /// other end is `parent_session_id` on the child's events).
    pub fn announce_thread(&mut self, thread: &Thread) -> Result<(), MapError> {
        let mut ev = EventBuf::new("session.thread_created");
        ev.str("agent_name", thread.agent.unwrap_or("subagent"))
            .str("session_thread_id", thread.child_stream);
        let stamp = Stamp {
            timestamp: thread.timestamp,
            ..Stamp::default()
        };
        let key = format!("thread/{}", thread.child);
        self.emit_to(
            thread.parent_stream,
            &mut ev,
            &key,
            &stamp,
            Some("thread_created"),
            |ev| {
                ev.meta_str("child_session_id", thread.child_stream)
                    .meta_opt("parent_tool_use_id", thread.parent_tool_use_id);
            },
        )
    }
}

/// A sub-agent's session that has a session (a stream) of its own, as its parent's stream
/// announces it ([`EventWriter::announce_thread`]).
#[derive(Debug, Clone, Copy)]
pub struct Thread<'a> {
    /// The parent's stream.
    pub parent_stream: &'a str,
    /// The sub-agent's session: its native id (which keys the announcement) and its stream.
    pub child: &'a str,
    pub child_stream: &'a str,
    /// The agent's name or type (`subagent` when unknown).
    pub agent: Option<&'a str>,
    /// The parent's tool call that started it, when known on the child's side.
    pub parent_tool_use_id: Option<&'a str>,
    /// When the sub-agent's session began.
    pub timestamp: Option<&'a str>,
}

/// Stamps `ev` with the envelope every event carries (see [`EventWriter`]).
pub fn envelope(ev: &mut EventBuf, source: &str, key: &str, stamp: &Stamp, kind: Option<&str>) {
    if let Some(ts) = stamp.timestamp {
        ev.str("processed_at", ts);
    }
    if let Some(t) = stamp.thread {
        ev.str("session_thread_id", t);
    }
    ev.meta_str("source", source).meta_str("source_key", key);
    match stamp.timestamp {
        Some(ts) => ev.meta_str("original_timestamp", ts),
        None => ev.meta_raw("original_timestamp", "null"),
    };
    if stamp.inherited {
        ev.meta_raw("timestamp_inherited", "true");
    }
    ev.meta_opt("kind", kind);
}

/// The states of the sessions a mapper met recently, other than the one at hand. A backfill
/// brings each session's records together, but a `--follow` reader interleaves the sessions
/// being written; a session that comes back finds its state (its project, parent, tool calls,
/// lines seen) as it left it, so it maps as a backfill of the same records would. At most
/// `SESSIONS_KEPT` are kept, the least recently met dropped first, so memory stays bounded in a
/// backfill of many sessions.
pub struct SessionStates<T> {
    states: HashMap<String, (u64, T)>,
    tick: u64,
}

/// Enough for the sessions written at the same time on one machine.
pub const SESSIONS_KEPT: usize = 64;

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
    pub fn switch(
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
    pub fn take(&mut self, key: &str) -> Option<T> {
        self.states.remove(key).map(|(_, t)| t)
    }

    /// Keeps `state` under `key`, dropping the least recently kept one when full.
    pub fn keep(&mut self, key: String, state: T) {
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
        count(&mut self.skipped, what);
    }

    pub fn unknown(&mut self, what: &str) {
        count(&mut self.unknown, what);
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

/// Counts one more `what`, allocating its name only the first time: records passed over by rule
/// (a third of a typical Claude Code transcript) come by the hundred thousand.
fn count(counts: &mut BTreeMap<String, u64>, what: &str) {
    match counts.get_mut(what) {
        Some(n) => *n += 1,
        None => {
            counts.insert(what.to_string(), 1);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_and_numbered_keys() {
        let mut c = Collect(vec![]);
        let mut w = EventWriter::new(&mut c, "src", "src-1", "k".into());
        let stamp = Stamp {
            timestamp: Some("2026-01-01T00:00:00Z"),
            inherited: true,
            thread: Some("t"),
        };
        let mut ev = EventBuf::new("agent.message");
        w.emit(&mut ev, &stamp, Some("text"), |e| {
            e.meta_str("model", "m");
        })
        .unwrap();
        w.pass_over();
        let mut ev = EventBuf::new("agent.thinking");
        w.emit(&mut ev, &Stamp::default(), None, |_| {}).unwrap();
        let mut ev = EventBuf::new("session.thread_created");
        w.emit_to(
            "src-0",
            &mut ev,
            "thread/1",
            &Stamp::default(),
            None,
            |_| {},
        )
        .unwrap();
        assert_eq!(w.emitted(), 3);
        assert_eq!(
            c.0[0],
            (
                "src-1".into(),
                r#"{"type":"agent.message","processed_at":"2026-01-01T00:00:00Z","session_thread_id":"t","metadata":{"source":"src","source_key":"k#0","original_timestamp":"2026-01-01T00:00:00Z","timestamp_inherited":true,"kind":"text","model":"m"}}"#.into()
            )
        );
        assert_eq!(
            c.0[1].1,
            r#"{"type":"agent.thinking","metadata":{"source":"src","source_key":"k#2","original_timestamp":null}}"#
        );
        assert_eq!(c.0[2].0, "src-0");
        assert!(c.0[2].1.contains(r#""source_key":"thread/1""#));
    }

    #[test]
    fn a_thread_is_announced_on_its_parents_stream() {
        let mut c = Collect::default();
        let mut w = EventWriter::new(&mut c, "src", "src-child", "k".into());
        let thread = Thread {
            parent_stream: "src-parent",
            child: "child",
            child_stream: "src-child",
            agent: None,
            parent_tool_use_id: Some("call-1"),
            timestamp: Some("2026-01-01T00:00:00Z"),
        };
        w.announce_thread(&thread).unwrap();
        w.announce_thread(&Thread {
            agent: Some("explore"),
            parent_tool_use_id: None,
            timestamp: None,
            ..thread
        })
        .unwrap();
        assert_eq!(w.emitted(), 2);
        assert_eq!(
            c.0[0],
            (
                "src-parent".into(),
                r#"{"type":"session.thread_created","agent_name":"subagent","session_thread_id":"src-child","processed_at":"2026-01-01T00:00:00Z","metadata":{"source":"src","source_key":"thread/child","original_timestamp":"2026-01-01T00:00:00Z","kind":"thread_created","child_session_id":"src-child","parent_tool_use_id":"call-1"}}"#.into()
            )
        );
        assert_eq!(
            c.0[1].1,
            r#"{"type":"session.thread_created","agent_name":"explore","session_thread_id":"src-child","metadata":{"source":"src","source_key":"thread/child","original_timestamp":null,"kind":"thread_created","child_session_id":"src-child"}}"#
        );
    }

    #[test]
    fn session_streams_are_checked() {
        assert_eq!(session_stream("codex", "abc").unwrap(), "codex-abc");
        assert!(matches!(
            session_stream("codex", "a\nb"),
            Err(MapError::Reject(_))
        ));
    }
}
