//! The source records cline-read writes and the mapping reads: which part of a task folder a
//! record is ([`Part`]) and from which variant, both written as its `kind`
//! (`<variant>/<part>`), and its place ([`At`], written as its `at`, which the keys of its
//! events are built from).

use std::io;

use tonbo_core::contract::{write_source_record, Place};
use tonbo_core::Output;

use crate::SOURCE;

/// Which part of a task folder a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The task's history item (`history_item.json`, or its entry in `state/taskHistory.json`).
    Task,
    /// An element of `api_conversation_history.json` (of its `messages` in Roo's v2 envelope).
    Api,
    /// An element of `ui_messages.json`.
    Ui,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Task => "task",
            Part::Api => "api",
            Part::Ui => "ui",
        }
    }

    /// The part and variant name a record's `kind` (`<variant>/<part>`) names, or why not.
    pub fn from_kind(kind: Option<&str>) -> Result<(&str, Part), String> {
        let kind = kind.ok_or("a cline record without a kind")?;
        let (variant, part) = kind
            .split_once('/')
            .ok_or_else(|| format!("unknown cline record kind `{kind}`"))?;
        let part = match part {
            "task" => Part::Task,
            "api" => Part::Api,
            "ui" => Part::Ui,
            _ => return Err(format!("unknown cline record kind `{kind}`")),
        };
        Ok((variant, part))
    }
}

/// A record's place in its task folder: which file, which element, and what tells that element
/// from another written at the same position later (its `ts`, else a hash of its bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub part: Part,
    /// The element's 0-based index (none for the task record).
    pub index: Option<usize>,
    /// `ts` (milliseconds) of the element, else `h` and the FNV-1a hash of its bytes.
    pub stamp: String,
}

impl At {
    /// The record's `at`: `task`, `api:<index>:<stamp>` or `ui:<index>:<stamp>`.
    pub fn text(&self) -> String {
        match self.index {
            None => self.part.name().to_string(),
            Some(i) => format!("{}:{i}:{}", self.part.name(), self.stamp),
        }
    }
}

/// Writes one source record; `record` is written as it is, and must be valid JSON on one line.
pub(crate) fn emit(
    out: &mut Output,
    variant: &str,
    session: &str,
    record: &str,
    file: &str,
    at: &At,
) -> io::Result<()> {
    let kind = format!("{variant}/{}", at.part.name());
    let index = at.index.map(|i| i.to_string());
    let place = index.as_deref().map(Place::Row);
    let record = record.as_bytes();
    write_source_record(
        out,
        SOURCE,
        Some(&kind),
        session,
        record,
        &at.text(),
        file,
        place,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_contract() {
        let (mut out, written) = Output::in_memory();
        let at = At {
            part: Part::Api,
            index: Some(3),
            stamp: "1700000000000".into(),
        };
        emit(
            &mut out,
            "roo-code",
            "t\"1",
            "{\"a\": 1.50}",
            "/p/x.json",
            &at,
        )
        .unwrap();
        out.flush().unwrap();
        let line = String::from_utf8(written.bytes()).unwrap();
        let rec: tonbo_core::SourceRecord = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(rec.source, "cline");
        assert_eq!(rec.session, "t\"1");
        assert_eq!(rec.record.get(), "{\"a\": 1.50}");
        assert_eq!(rec.at.as_deref(), Some("api:3:1700000000000"));
        assert_eq!(rec.kind.as_deref(), Some("roo-code/api"));
        assert_eq!(rec.provenance.unwrap().row.as_deref(), Some("3"));
        assert_eq!(
            Part::from_kind(Some("roo-code/api")),
            Ok(("roo-code", Part::Api))
        );
        assert!(Part::from_kind(Some("cline/x")).is_err());
        assert!(Part::from_kind(None).is_err());
    }
}
