//! The source records of OpenCode and Crush, one per line: their vocabulary ([`Layout`],
//! [`Kind`]), shared by the reader that writes them and the mapping that reads them back
//! ([`SessionRecord`], [`MessageRecord`]).
//!
//! ```text
//! {"v":1,"source":"opencode","kind":"session","session":ID,
//!  "record":{"layout":L,"session":{..}},"provenance":{..}}
//! {"v":1,"source":"opencode","kind":"message","session":ID,
//!  "record":{"layout":L,"message":{..},"parts":[..]},"provenance":{..}}
//! ```
//!
//! A record is assembled whole in memory and then written with its newline, so that an error
//! half-way through reading a message never leaves half a line on stdout. The mapping keys its
//! events by ids inside the record, never by its provenance.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use tonbo_core::WIRE_VERSION;

use crate::json;
use crate::map::raw::Part;

/// The `source` of every record.
pub const SOURCE: &str = "opencode";

/// The storage layout a record was read from (FORMAT.md, "Stores"). Written in each record as
/// its wire name, `g1` .. `t3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Go `opencode-ai/opencode`: `sessions`, `messages`.
    G1,
    /// Crush: the same tables, `messages.provider` or `is_summary_message`.
    G2,
    /// The TypeScript JSON store `storage/`, and the older per-project store (T0) whose objects
    /// have the same shapes.
    T1,
    /// TypeScript 1.2+: `session`, `message`, `part`.
    T2,
    /// OpenCode 2: `session_v2`, `session_message`.
    T3,
}

/// The codebase a layout belongs to: what shapes its messages have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lineage {
    /// G1, G2: `parts` of `{type, data}` envelopes, times in seconds.
    Go,
    /// T1, T2: message and part objects, times in milliseconds.
    TypeScript,
    /// T3: one row per message, its content in `data`.
    OpenCode2,
}

impl Layout {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Layout::G1 => "g1",
            Layout::G2 => "g2",
            Layout::T1 => "t1",
            Layout::T2 => "t2",
            Layout::T3 => "t3",
        }
    }

    /// The layout of a wire name.
    pub fn from_name(name: &str) -> Option<Layout> {
        [Layout::G1, Layout::G2, Layout::T1, Layout::T2, Layout::T3]
            .into_iter()
            .find(|l| l.name() == name)
    }

    pub fn lineage(self) -> Lineage {
        match self {
            Layout::G1 | Layout::G2 => Lineage::Go,
            Layout::T1 | Layout::T2 => Lineage::TypeScript,
            Layout::T3 => Lineage::OpenCode2,
        }
    }
}

/// What a record is: its `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A session's own row or file, before its messages.
    Session,
    /// One message with its parts.
    Message,
}

impl Kind {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Message => "message",
        }
    }

    /// The kind of a wire name.
    pub fn from_name(name: &str) -> Option<Kind> {
        [Kind::Session, Kind::Message]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// A `"kind":"session"` record's `record`, as the mapping reads it.
#[derive(Deserialize)]
pub struct SessionRecord {
    /// The wire name of its layout (read with [`Layout::from_name`]; a session maps without).
    #[serde(default)]
    pub layout: String,
    pub session: Value,
}

/// A `"kind":"message"` record's `record`, as the mapping reads it.
#[derive(Deserialize)]
pub struct MessageRecord<'a> {
    /// The wire name of its layout (read with [`Layout::from_name`]).
    #[serde(borrow)]
    pub layout: Cow<'a, str>,
    pub message: Value,
    /// Each an object's fields as raw values: the TypeScript layouts read a part's fields
    /// without a `Value`.
    #[serde(default, borrow)]
    pub parts: Vec<Part<'a>>,
}

/// Where a record comes from.
#[derive(Debug, Clone, Copy)]
pub enum Prov<'a> {
    /// A row of a database table.
    Row {
        file: &'a str,
        table: &'a str,
        row: &'a str,
    },
    /// A JSON file.
    File(&'a str),
}

/// Starts a record in `buf` (cleared first), up to and including `"record":{"layout":L,`.
pub fn begin(buf: &mut String, kind: Kind, session: &str, layout: Layout) {
    buf.clear();
    buf.push_str(&format!(
        "{{\"v\":{WIRE_VERSION},\"source\":\"{SOURCE}\",\"kind\":\"{}\",\"session\":",
        kind.name()
    ));
    buf.push_str(&json::string(session));
    buf.push_str(",\"record\":{\"layout\":\"");
    buf.push_str(layout.name());
    buf.push_str("\",");
}

/// Closes the record object and adds the provenance; the line is then complete (no newline).
pub fn finish(buf: &mut String, prov: Prov) {
    buf.push_str("},\"provenance\":{\"file\":");
    match prov {
        Prov::Row { file, table, row } => {
            buf.push_str(&json::string(file));
            buf.push_str(",\"table\":");
            buf.push_str(&json::string(table));
            buf.push_str(",\"row\":");
            buf.push_str(&json::string(row));
        }
        Prov::File(file) => buf.push_str(&json::string(file)),
    }
    buf.push_str("}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_name_one_layout_and_kind_each() {
        let layouts = [Layout::G1, Layout::G2, Layout::T1, Layout::T2, Layout::T3];
        let names: Vec<&str> = layouts.iter().map(|l| l.name()).collect();
        assert_eq!(names, ["g1", "g2", "t1", "t2", "t3"]);
        for l in layouts {
            assert_eq!(Layout::from_name(l.name()), Some(l));
        }
        assert_eq!(Layout::from_name("t0"), None);
        assert_eq!(Layout::G2.lineage(), Lineage::Go);
        assert_eq!(Layout::T1.lineage(), Lineage::TypeScript);
        assert_eq!(Layout::T3.lineage(), Lineage::OpenCode2);
        for k in [Kind::Session, Kind::Message] {
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        assert_eq!(Kind::from_name("part"), None);
    }

    #[test]
    fn the_mapping_reads_what_the_reader_writes() {
        let mut buf = String::new();
        begin(&mut buf, Kind::Message, "s", Layout::G2);
        buf.push_str(r#""message":{"id":"m","role":"user"},"parts":[{"type":"text"}]"#);
        finish(&mut buf, Prov::File("f"));
        let rec: tonbo_core::SourceRecord = serde_json::from_str(&buf).unwrap();
        assert_eq!(
            rec.kind.as_deref().and_then(Kind::from_name),
            Some(Kind::Message)
        );
        let m: MessageRecord = serde_json::from_str(rec.record.get()).unwrap();
        assert_eq!(Layout::from_name(&m.layout), Some(Layout::G2));
        assert_eq!(m.message["id"], "m");
        assert_eq!(m.parts.len(), 1);
    }

    #[test]
    fn records_follow_the_contract() {
        let mut buf = String::from("left over");
        begin(&mut buf, Kind::Message, "ses_\"1", Layout::T2);
        buf.push_str("\"message\":{\"id\":\"msg_1\"},\"parts\":[]");
        finish(
            &mut buf,
            Prov::Row {
                file: "/d/opencode.db",
                table: "message",
                row: "msg_1",
            },
        );
        assert_eq!(
            buf,
            r#"{"v":1,"source":"opencode","kind":"message","session":"ses_\"1","record":{"layout":"t2","message":{"id":"msg_1"},"parts":[]},"provenance":{"file":"/d/opencode.db","table":"message","row":"msg_1"}}"#
        );
        let rec: tonbo_core::SourceRecord = serde_json::from_str(&buf).unwrap();
        assert_eq!(rec.source, "opencode");
        assert_eq!(rec.kind.as_deref(), Some("message"));
        assert_eq!(rec.session, "ses_\"1");
        let prov = rec.provenance.unwrap();
        assert_eq!(prov.table.as_deref(), Some("message"));
        assert_eq!(prov.row.as_deref(), Some("msg_1"));

        begin(&mut buf, Kind::Session, "s", Layout::T1);
        buf.push_str("\"session\":{}");
        finish(&mut buf, Prov::File("/s/x.json"));
        let rec: tonbo_core::SourceRecord = serde_json::from_str(&buf).unwrap();
        assert_eq!(rec.record.get(), r#"{"layout":"t1","session":{}}"#);
        assert_eq!(
            rec.provenance.unwrap(),
            tonbo_core::Provenance {
                file: Some("/s/x.json".into()),
                ..Default::default()
            }
        );
    }
}
