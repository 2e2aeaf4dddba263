//! tonbo-map: turns source records into Durable Sessions events.
//!
//! Dispatches on the record's `source` to that source's mapping, which lives in its source
//! crate (`source-claude`, `source-codex`, `source-opencode`) behind
//! [`tonbo_core::mapping::SourceMapping`]: adding a source is one line in [`mappings`].
//! `events` records are already events and pass through byte for byte after a contract check.
//! Records of a source no mapping claims are rejected by name, never silently dropped.

use tonbo_core::mapping::session_stream;
pub use tonbo_core::mapping::{Counts, EventSink, MapError, SourceMapping};
use tonbo_core::record_line::RecordLine;
use tonbo_core::{EventHead, SourceRecord};

/// Every source's mapping, one line each: the record's `source` picks one.
fn mappings() -> Vec<Box<dyn SourceMapping>> {
    vec![
        Box::new(source_claude::map::ClaudeMapper::default()),
        Box::new(source_codex::CodexMapper::default()),
        Box::new(source_opencode::OpenCodeMapper::default()),
        Box::new(source_gemini::GeminiMapper::default()),
        Box::new(source_cline::ClineMapper::default()),
        Box::new(source_copilot::CopilotMapper::default()),
        Box::new(source_goose::GooseMapper::default()),
        Box::new(source_qwen::QwenMapper::default()),
        Box::new(source_cursor::CursorMapper::default()),
    ]
}

/// The "anything else" source: its `record` is already a Durable Sessions event.
const EVENTS: &str = "events";

/// Maps source records of every source, keeping each source's streaming state.
pub struct Mapper {
    sources: Vec<Box<dyn SourceMapping>>,
}

impl Default for Mapper {
    fn default() -> Self {
        Mapper {
            sources: mappings(),
        }
    }
}

impl Mapper {
    /// Maps one source record, sending its events to `sink`. Returns how many it produced.
    pub fn map(&mut self, rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
        let source = rec.source.as_ref();
        if source == EVENTS {
            return map_event_record(rec, sink);
        }
        match self.sources.iter_mut().find(|m| m.source() == source) {
            Some(m) => m.map(rec, sink),
            None => Err(MapError::Reject(format!(
                "unknown source `{source}` (expected one of {})",
                self.source_names().join(", ")
            ))),
        }
    }

    /// Maps a record in one pass where its source's mapping can (see
    /// [`SourceMapping::map_line`]); `None`, with nothing done, where it cannot.
    pub fn map_line(
        &mut self,
        line: &RecordLine,
        sink: &mut dyn EventSink,
    ) -> Option<Result<usize, MapError>> {
        let m = self
            .sources
            .iter_mut()
            .find(|m| m.source() == line.source)?;
        m.map_line(line, sink)
    }

    /// The `source` values records may carry.
    pub fn source_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.sources.iter().map(|m| m.source()).collect();
        names.push(EVENTS);
        names
    }

    /// Emits what the end of input completes (an open Claude Code API response's span).
    pub fn finish(&mut self, sink: &mut dyn EventSink) -> Result<(), MapError> {
        self.sources.iter_mut().try_for_each(|m| m.finish(sink))
    }

    /// How many unknown things every source has met so far.
    pub fn unknown_total(&self) -> u64 {
        self.sources.iter().map(|m| m.counts().unknown_total).sum()
    }

    /// One summary line per source that passed something over.
    pub fn summaries(&self) -> Vec<String> {
        self.sources
            .iter()
            .filter_map(|m| m.counts().summary(m.source()))
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

/// The "anything else" source: `record` is a complete event whose session id is `session`.
fn map_event_record(rec: &SourceRecord, sink: &mut dyn EventSink) -> Result<usize, MapError> {
    let session_id = session_stream(EVENTS, &rec.session)?;
    let head = EventHead::parse(rec.record).map_err(MapError::Reject)?;
    head.check_full().map_err(MapError::Reject)?;
    sink.event(&session_id, rec.record.get())?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonbo_core::mapping::Collect;

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
