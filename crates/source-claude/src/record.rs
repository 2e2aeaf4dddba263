//! What the reader writes and the mapping reads besides the line itself: the record's kind, its
//! place (`at`), and the agent a file's name names. Each is written in one place and read back
//! through the same type, so the two sides cannot drift apart.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use tonbo_core::SourceRecord;

/// What a record is when it is not a plain transcript line (its `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A subagent's `agent-<id>.meta.json`, whole, just before the agent's lines.
    SubagentMeta,
    /// A `summary` line moved to the session that holds its leaf: it titles that session.
    SummaryTitle,
}

impl RecordKind {
    const ALL: [RecordKind; 2] = [RecordKind::SubagentMeta, RecordKind::SummaryTitle];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::SubagentMeta => "subagent-meta",
            RecordKind::SummaryTitle => "summary-title",
        }
    }

    /// The kind of `rec`; `None` for a plain line, and for a kind this build does not know
    /// (mapped as a plain line).
    pub fn of(rec: &SourceRecord) -> Option<RecordKind> {
        Self::named(rec.kind.as_deref())
    }

    /// The kind a record's `kind` names.
    pub fn named(kind: Option<&str>) -> Option<RecordKind> {
        let kind = kind?;
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl Serialize for RecordKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a record sits, by Claude Code's own names: the file's name (no folders) and, for a
/// transcript line, its line number: `agent-a1.jsonl:12`, `agent-a1.meta.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At<'a> {
    pub file: &'a str,
    pub line: Option<u64>,
}

impl<'a> At<'a> {
    /// The place of line `line` (or of the whole file) of the file at `path`.
    pub fn new(path: &'a str, line: Option<u64>) -> At<'a> {
        At {
            file: file_name(path),
            line,
        }
    }

    /// Reads an `at` back; text without a `:<number>` end is a file's name alone.
    pub fn parse(at: &'a str) -> At<'a> {
        match at.rsplit_once(':') {
            Some((file, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => At {
                file,
                line: n.parse().ok(),
            },
            _ => At {
                file: at,
                line: None,
            },
        }
    }

    /// The name of the file `rec` was read from: its `at`, or for a record written before
    /// readers wrote `at`, the last part of its provenance's file.
    pub fn file_of(rec: &'a SourceRecord) -> Option<&'a str> {
        At::file_of_parts(rec.at.as_deref(), rec.provenance.as_ref())
    }

    /// [`At::file_of`] from a record's `at` and `provenance`.
    pub fn file_of_parts(
        at: Option<&'a str>,
        provenance: Option<&'a tonbo_core::Provenance>,
    ) -> Option<&'a str> {
        match at {
            Some(at) => Some(At::parse(at).file),
            None => provenance.and_then(|p| p.file.as_deref()).map(file_name),
        }
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "{}:{n}", self.file),
            None => f.write_str(self.file),
        }
    }
}

impl Serialize for At<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The last part of a path, whichever separator it was written with: as the mapping has always
/// taken a file's name from provenance, so that the agent ids in keys stay what they were.
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The agent id a file's name gives: `agent-<id>.jsonl` (a subagent's transcript) or
/// `agent-<id>.meta.json` (its meta file) -> `<id>` (empty for `agent-.jsonl`).
pub fn agent_id_of(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(".jsonl")
        .or_else(|| file_name.strip_suffix(".meta.json"))?
        .strip_prefix("agent-")
}

/// A source record as claude-read writes it: the contract's fields, and on a meta record the
/// agent's id beside its `kind` (for people and tools; the mapping takes it from `at`).
#[derive(Serialize)]
pub(crate) struct Record<'a> {
    pub v: u64,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<RecordKind>,
    pub session: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<&'a str>,
    pub record: &'a RawValue,
    pub at: At<'a>,
    pub provenance: Provenance<'a>,
}

#[derive(Serialize)]
pub(crate) struct Provenance<'a> {
    pub file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl<'a> Record<'a> {
    /// The record of line `line` of the file `file` (as walked), or of the whole file.
    pub fn new(
        session: &'a str,
        record: &'a RawValue,
        file: &'a str,
        line: Option<u64>,
    ) -> Record<'a> {
        Record {
            v: tonbo_core::WIRE_VERSION,
            source: crate::SOURCE,
            kind: None,
            session,
            agent_id: None,
            record,
            at: At::new(file, line),
            provenance: Provenance { file, line },
        }
    }
}

/// The fields of a transcript line the reader looks at (to find a session id, a summary's leaf,
/// a line's uuid). A field of another JSON type reads as absent, as a line the reader cannot
/// use is passed over, not rejected, here.
#[derive(Deserialize, Default)]
pub(crate) struct LineHead<'a> {
    #[serde(rename = "type", default, borrow, deserialize_with = "string")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "string")]
    pub uuid: Option<Cow<'a, str>>,
    #[serde(rename = "sessionId", default, borrow, deserialize_with = "string")]
    pub session_id: Option<Cow<'a, str>>,
    #[serde(rename = "leafUuid", default, borrow, deserialize_with = "string")]
    pub leaf_uuid: Option<Cow<'a, str>>,
}

impl<'a> LineHead<'a> {
    /// The head of a line; `None` when it is not a JSON object (serde would read an array as
    /// the fields in order).
    pub fn of(line: &'a [u8]) -> Option<LineHead<'a>> {
        if line.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        serde_json::from_slice(line).ok()
    }
}

/// A JSON string, borrowed where it has no escapes; any other value is `None`.
fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    let raw = <&'de RawValue>::deserialize(d)?;
    Ok(match serde_json::from_str::<&'de str>(raw.get()) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Cow::Owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_is_written_and_read_back() {
        let at = At::new("/p/S/subagents/agent-a1.jsonl", Some(12));
        assert_eq!(at.to_string(), "agent-a1.jsonl:12");
        assert_eq!(At::parse("agent-a1.jsonl:12"), at);
        let meta = At::new("/p/S/subagents/agent-a1.meta.json", None);
        assert_eq!(meta.to_string(), "agent-a1.meta.json");
        assert_eq!(At::parse("agent-a1.meta.json"), meta);
        assert_eq!(At::parse("odd:name.jsonl").file, "odd:name.jsonl");
        assert_eq!(At::parse("odd:.jsonl:3").file, "odd:.jsonl");
    }

    #[test]
    fn agent_ids_from_file_names() {
        assert_eq!(agent_id_of("agent-a1b2.jsonl"), Some("a1b2"));
        assert_eq!(agent_id_of("agent-a1b2.meta.json"), Some("a1b2"));
        assert_eq!(agent_id_of("agent-.jsonl"), Some(""));
        assert_eq!(agent_id_of("1f0e.jsonl"), None);
        assert_eq!(agent_id_of("agent-a1.json"), None);
    }

    #[test]
    fn record_kinds_keep_their_wire_strings() {
        for (kind, wire) in [
            (RecordKind::SubagentMeta, "\"subagent-meta\""),
            (RecordKind::SummaryTitle, "\"summary-title\""),
        ] {
            assert_eq!(serde_json::to_string(&kind).unwrap(), wire);
            let line =
                format!(r#"{{"source":"claude-code","session":"s","record":{{}},"kind":{wire}}}"#);
            let rec: SourceRecord = serde_json::from_str(&line).unwrap();
            assert_eq!(RecordKind::of(&rec), Some(kind));
        }
    }

    #[test]
    fn a_line_head_passes_over_values_of_another_type() {
        let h =
            LineHead::of(br#"{"type":"summary","uuid":5,"leafUuid":"l\u0031","x":{}}"#).unwrap();
        assert_eq!(h.kind.as_deref(), Some("summary"));
        assert_eq!(h.uuid, None);
        assert_eq!(h.leaf_uuid.as_deref(), Some("l1"));
        assert!(LineHead::of(br#"["summary","u"]"#).is_none());
    }
}
