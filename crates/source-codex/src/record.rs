//! The source records codex-read writes and the mapping reads: what a record is
//! ([`RecordKind`], written as its `kind`) and where it is in its file ([`At`], written as its
//! `at`, which the keys of its events are built from).

use std::io;

use tonbo_core::contract::{write_source_record, Place};
use tonbo_core::{Output, Provenance};

use crate::SOURCE;

/// What a record is: a line of which generation, or which part of a JSON document. The reader
/// writes it as the record's `kind` ([`RecordKind::wire`]); the mapping reads it back
/// ([`RecordKind::from_wire`]) and maps each kind its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A line of a V2+ file, `{timestamp, type, payload}`: no `kind`.
    V2,
    /// A line of a V1 file (its header, a bare item, or a state marker): `v1`.
    V1,
    /// A V0 document's `session` object: `v0-session`.
    V0Session,
    /// An element of a V0 document's `items`: `v0-item`.
    V0Item,
    /// A seed document's top level without its `messages`: `seed-session`.
    SeedSession,
    /// An element of a seed document's `messages`: `seed-message`.
    SeedMessage,
}

impl RecordKind {
    const WIRE: [(RecordKind, &'static str); 5] = [
        (RecordKind::V1, "v1"),
        (RecordKind::V0Session, "v0-session"),
        (RecordKind::V0Item, "v0-item"),
        (RecordKind::SeedSession, "seed-session"),
        (RecordKind::SeedMessage, "seed-message"),
    ];

    /// The record's `kind`: none for a V2+ line.
    pub fn wire(self) -> Option<&'static str> {
        Self::WIRE.iter().find(|(k, _)| *k == self).map(|(_, w)| *w)
    }

    /// The kind a record's `kind` names, or the rejection of one no reader writes.
    pub fn from_wire(kind: Option<&str>) -> Result<RecordKind, String> {
        let Some(kind) = kind else {
            return Ok(RecordKind::V2);
        };
        Self::WIRE
            .iter()
            .find(|(_, w)| *w == kind)
            .map(|(k, _)| *k)
            .ok_or_else(|| format!("unknown codex record kind `{kind}`"))
    }
}

/// Where a record is in its file.
#[derive(Debug, Clone, Copy)]
pub enum At<'a> {
    /// A line of a JSONL file (physical, from 1).
    Line(u64),
    /// Of a JSON document: `session` for its top level, else the item's 0-based index.
    Row(&'a str),
}

impl At<'_> {
    /// The record's `at`: `<file name>:<line or row>`, the file named by [`file_key`].
    pub fn text(&self, path: &str) -> String {
        match self {
            At::Line(n) => format!("{}:{n}", file_key(path)),
            At::Row(row) => format!("{}:{row}", file_key(path)),
        }
    }
}

/// The name `at` gives a file: without its folders (an archived file keeps its keys) and
/// without `.zst` (so does a compressed one). Both `/` and `\` end a folder, as they always did
/// for keys (a path written on Windows).
pub fn file_key(path: &str) -> &str {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    name.strip_suffix(".zst").unwrap_or(name)
}

/// The `at` of a record written without one (by a reader before `at`), from its provenance as
/// that reader wrote it: the same text, so its events keep their keys. `?` stands for a line
/// or row the provenance does not name.
pub fn at_of_provenance(provenance: Option<&Provenance>) -> String {
    let p = provenance.cloned().unwrap_or_default();
    let file = p.file.as_deref().unwrap_or_default();
    match (p.line, &p.row) {
        (Some(line), _) => At::Line(line).text(file),
        (None, Some(row)) => At::Row(row).text(file),
        (None, None) => format!("{}:?", file_key(file)),
    }
}

/// The file part of an `at` (what comes before its last `:`), which names the file the
/// mapping keeps a session's state by.
pub fn at_file(at: &str) -> &str {
    at.rsplit_once(':').map_or(at, |(file, _)| file)
}

/// Writes one source record; `record` is written as it is, and must be one line of valid JSON.
pub(crate) fn emit(
    out: &mut Output,
    kind: RecordKind,
    session: &str,
    record: &str,
    file: &str,
    at: At,
) -> io::Result<()> {
    let place = match at {
        At::Line(n) => Place::Line(n),
        At::Row(row) => Place::Row(row),
    };
    let (record, at) = (record.as_bytes(), at.text(file));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn emitted(kind: RecordKind, at: At) -> String {
        let (mut out, written) = Output::in_memory();
        emit(&mut out, kind, "s\"1", "{\"a\": 1.50}", "/p/f\\.jsonl", at).unwrap();
        out.flush().unwrap();
        String::from_utf8(written.bytes()).unwrap()
    }

    #[test]
    fn records_follow_the_contract() {
        let line = emitted(RecordKind::V2, At::Line(12));
        assert_eq!(
            line,
            "{\"v\":1,\"source\":\"codex\",\"session\":\"s\\\"1\",\"record\":{\"a\": 1.50},\"at\":\".jsonl:12\",\"provenance\":{\"file\":\"/p/f\\\\.jsonl\",\"line\":12}}\n"
        );
        let rec: tonbo_core::SourceRecord = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(rec.source, "codex");
        assert_eq!(rec.session, "s\"1");
        assert_eq!(rec.record.get(), "{\"a\": 1.50}");
        assert_eq!(rec.kind, None);
        assert_eq!(rec.at.as_deref(), Some(".jsonl:12"));
        assert_eq!(rec.provenance.unwrap().line, Some(12));
        let line = emitted(RecordKind::V0Item, At::Row("3"));
        let rec: tonbo_core::SourceRecord = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(rec.kind.as_deref(), Some("v0-item"));
        assert_eq!(rec.at.as_deref(), Some(".jsonl:3"));
        let prov = rec.provenance.unwrap();
        assert_eq!(prov.row.as_deref(), Some("3"));
        assert_eq!(prov.line, None);
        assert_eq!(prov.file.as_deref(), Some("/p/f\\.jsonl"));
    }

    #[test]
    fn at_is_what_keys_were_built_from() {
        let prov = |file: Option<&str>, line: Option<u64>, row: Option<&str>| Provenance {
            file: file.map(String::from),
            line,
            row: row.map(String::from),
            ..Provenance::default()
        };
        let x = "/h/.codex/sessions/2025/11/02/rollout-x.jsonl.zst";
        assert_eq!(At::Line(7).text(x), "rollout-x.jsonl:7");
        assert_eq!(At::Row("session").text("C:\\c\\x.json"), "x.json:session");
        for (p, at) in [
            (prov(Some(x), Some(7), None), "rollout-x.jsonl:7"),
            (prov(Some("x.json"), None, Some("4")), "x.json:4"),
            (prov(Some(x), None, None), "rollout-x.jsonl:?"),
            (prov(None, None, None), ":?"),
        ] {
            assert_eq!(at_of_provenance(Some(&p)), at);
        }
        assert_eq!(at_of_provenance(None), ":?");
        assert_eq!(at_file("rollout-x.jsonl:7"), "rollout-x.jsonl");
        assert_eq!(at_file("a:b.jsonl:session"), "a:b.jsonl");
        assert_eq!(at_file(":?"), "");
    }

    #[test]
    fn kinds_keep_their_wire_names() {
        for (kind, wire) in RecordKind::WIRE {
            assert_eq!(kind.wire(), Some(wire));
            assert_eq!(RecordKind::from_wire(Some(wire)), Ok(kind));
        }
        assert_eq!(RecordKind::V2.wire(), None);
        assert_eq!(RecordKind::from_wire(None), Ok(RecordKind::V2));
        assert_eq!(
            RecordKind::from_wire(Some("v9")),
            Err("unknown codex record kind `v9`".to_string())
        );
    }
}
