//! The source records copilot-read writes and the mapping reads: what a record is
//! ([`RecordKind`], written as its `kind`) and where it is ([`At`], written as its `at`, which
//! the keys of its events are built from).

use std::io;

use tonbo_core::contract::{write_source_record, Place};
use tonbo_core::Output;

use crate::SOURCE;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A line of `events.jsonl` (or a flat `.jsonl`), `{type, data, id, timestamp, parentId}`:
    /// no `kind`.
    Event,
    /// A legacy document's top level without `chatMessages` and `timeline`: `legacy-session`.
    LegacySession,
    /// An element of a legacy document's `chatMessages`: `legacy-message`.
    LegacyMessage,
}

impl RecordKind {
    /// The record's `kind`: none for an event line.
    pub fn wire(self) -> Option<&'static str> {
        match self {
            RecordKind::Event => None,
            RecordKind::LegacySession => Some("legacy-session"),
            RecordKind::LegacyMessage => Some("legacy-message"),
        }
    }

    /// The kind a record's `kind` names, or the rejection of one no reader writes.
    pub fn from_wire(kind: Option<&str>) -> Result<RecordKind, String> {
        match kind {
            None => Ok(RecordKind::Event),
            Some("legacy-session") => Ok(RecordKind::LegacySession),
            Some("legacy-message") => Ok(RecordKind::LegacyMessage),
            Some(other) => Err(format!("unknown copilot-cli record kind `{other}`")),
        }
    }
}

/// Where a record is in its file.
#[derive(Debug, Clone, Copy)]
pub enum At<'a> {
    /// A line of a JSONL file (physical, from 1).
    Line(u64),
    /// Of a legacy document: `session` for its top level, else the message's 0-based index.
    Row(&'a str),
}

impl At<'_> {
    /// The record's `at`: `<name>:<line or row>`, `name` from [`crate::Found::at_name`].
    pub fn text(&self, name: &str) -> String {
        match self {
            At::Line(n) => format!("{name}:{n}"),
            At::Row(row) => format!("{name}:{row}"),
        }
    }
}

/// The file part of an `at` (before its last `:`).
pub fn at_file(at: &str) -> &str {
    at.rsplit_once(':').map_or(at, |(file, _)| file)
}

/// Writes one source record; `record` is written as it is, and must be one line of valid JSON.
pub(crate) fn emit(
    out: &mut Output,
    kind: RecordKind,
    session: &str,
    record: &[u8],
    (file, name): (&str, &str),
    at: At,
) -> io::Result<()> {
    let place = match at {
        At::Line(n) => Place::Line(n),
        At::Row(row) => Place::Row(row),
    };
    let at = at.text(name);
    write_source_record(
        out,
        SOURCE,
        kind.wire(),
        session,
        record,
        &at,
        file,
        Some(place),
    )
}

/// `json` (valid JSON) on one line: whitespace outside strings dropped, every other byte kept
/// (legacy documents are pretty-printed; a record is one line).
pub fn one_line(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in json.as_bytes() {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !b.is_ascii_whitespace() {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_contract() {
        let (mut out, written) = Output::in_memory();
        let at = At::Line(3);
        emit(
            &mut out,
            RecordKind::Event,
            "s1",
            b"{\"a\": 1.50}",
            ("/p/s1/events.jsonl", "s1/events.jsonl"),
            at,
        )
        .unwrap();
        out.flush().unwrap();
        let line = String::from_utf8(written.bytes()).unwrap();
        let rec: tonbo_core::SourceRecord = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(rec.source, "copilot-cli");
        assert_eq!(rec.record.get(), "{\"a\": 1.50}");
        assert_eq!(rec.kind, None);
        assert_eq!(rec.at.as_deref(), Some("s1/events.jsonl:3"));
        assert_eq!(at_file("s1/events.jsonl:3"), "s1/events.jsonl");
    }

    #[test]
    fn documents_go_on_one_line_byte_for_byte() {
        let doc = "{\n  \"a\": \"x  \\\" y\",\n  \"b\": [1.50, true]\n}";
        assert_eq!(one_line(doc), b"{\"a\":\"x  \\\" y\",\"b\":[1.50,true]}");
        for k in [
            RecordKind::Event,
            RecordKind::LegacySession,
            RecordKind::LegacyMessage,
        ] {
            assert_eq!(RecordKind::from_wire(k.wire()), Ok(k));
        }
        assert!(RecordKind::from_wire(Some("v9")).is_err());
    }
}
