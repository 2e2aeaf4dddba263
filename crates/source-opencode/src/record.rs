//! The source records opencode-read writes, one per line:
//!
//! ```text
//! {"v":1,"source":"opencode","kind":"session","session":ID,
//!  "record":{"layout":L,"session":{..}},"provenance":{..}}
//! {"v":1,"source":"opencode","kind":"message","session":ID,
//!  "record":{"layout":L,"message":{..},"parts":[..]},"provenance":{..}}
//! ```
//!
//! A record is assembled whole in memory and then written with its newline, so that an error
//! half-way through reading a message never leaves half a line on stdout.

use tonbo_core::WIRE_VERSION;

use crate::json;

pub const SOURCE: &str = "opencode";

/// The storage layout a record was read from (research §0, "Detection matrix").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Go `opencode-ai/opencode`: `sessions`, `messages` (§1).
    G1,
    /// Crush: the same tables, `messages.provider` or `is_summary_message` (§1.2).
    G2,
    /// The TypeScript JSON store `storage/` (§2.3), and the older per-project store (T0, §2.2)
    /// whose objects have the same shapes (§2.4).
    T1,
    /// TypeScript 1.2+: `session`, `message`, `part` (§2.5).
    T2,
    /// OpenCode 2: `session_v2`, `session_message` (§2.8).
    T3,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::G1 => "g1",
            Layout::G2 => "g2",
            Layout::T1 => "t1",
            Layout::T2 => "t2",
            Layout::T3 => "t3",
        }
    }
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
pub fn begin(buf: &mut String, kind: &str, session: &str, layout: Layout) {
    buf.clear();
    buf.push_str(&format!(
        "{{\"v\":{WIRE_VERSION},\"source\":\"{SOURCE}\",\"kind\":\"{kind}\",\"session\":"
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
    fn records_follow_the_contract() {
        let mut buf = String::from("left over");
        begin(&mut buf, "message", "ses_\"1", Layout::T2);
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

        begin(&mut buf, "session", "s", Layout::T1);
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
