//! A chat file cut into the pieces the reader will write as source records, before any I/O
//! contract (flags, rejects file, summary) is wired: what each piece is, where it is (`at`), and
//! which session it belongs to. The `gemini-read` binary is still to come (STATUS.md).

use serde_json::Value;

use crate::files::ChatFormat;

/// One piece of a chat file.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// A JSON object, with its place: `<line>` (JSONL) or `session` / `<index>` (document).
    Record { at: String, text: String },
    /// A complete line that is not a JSON object: rejected.
    Rejected { line: u64, text: String },
    /// A last line without its newline that is not JSON yet: left for the next run.
    Incomplete { line: u64 },
}

/// The pieces of a JSONL chat, numbered from 1. Blank lines are skipped, as Gemini CLI does.
pub fn jsonl_pieces(text: &str) -> Vec<Piece> {
    let ends_whole = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.len();
    let mut pieces = Vec::new();
    for (index, line) in lines.into_iter().enumerate() {
        let number = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(_)) => pieces.push(Piece::Record {
                at: number.to_string(),
                text: line.to_owned(),
            }),
            Err(_) if index + 1 == last && !ends_whole => {
                pieces.push(Piece::Incomplete { line: number })
            }
            _ => pieces.push(Piece::Rejected {
                line: number,
                text: line.to_owned(),
            }),
        }
    }
    pieces
}

/// The pieces of a legacy JSON document: the session without its messages (`session`), then each
/// message compact (`0`, `1`, ...). `Err` when the document is not whole JSON (a reader caught
/// Gemini CLI mid-write: try again on the next change).
pub fn document_pieces(text: &str) -> Result<Vec<Piece>, serde_json::Error> {
    let mut document: Value = serde_json::from_str(text)?;
    let messages = match document.as_object_mut().and_then(|d| d.remove("messages")) {
        Some(Value::Array(messages)) => messages,
        _ => Vec::new(),
    };
    let mut pieces = vec![Piece::Record {
        at: "session".into(),
        text: document.to_string(),
    }];
    for (index, message) in messages.iter().enumerate() {
        pieces.push(Piece::Record {
            at: index.to_string(),
            text: message.to_string(),
        });
    }
    Ok(pieces)
}

/// The session id a file's pieces name: the first `sessionId` of a metadata line or document.
pub fn session_id(pieces: &[Piece]) -> Option<String> {
    pieces.iter().find_map(|piece| match piece {
        Piece::Record { text, .. } => serde_json::from_str::<Value>(text)
            .ok()?
            .get("sessionId")?
            .as_str()
            .map(str::to_owned),
        _ => None,
    })
}

/// The pieces of a chat file's text in either format.
pub fn pieces(format: ChatFormat, text: &str) -> Result<Vec<Piece>, serde_json::Error> {
    match format {
        ChatFormat::Lines => Ok(jsonl_pieces(text)),
        ChatFormat::Document => document_pieces(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{chat_format, discover};
    use std::path::PathBuf;

    fn case(name: &str) -> (ChatFormat, String) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gemini");
        let found = discover(&root.join(name));
        let path = found.first().cloned().unwrap_or_default();
        let format = chat_format(&path).unwrap_or(ChatFormat::Lines);
        (format, std::fs::read_to_string(&path).unwrap_or_default())
    }

    fn places(pieces: &[Piece]) -> Vec<String> {
        pieces
            .iter()
            .map(|piece| match piece {
                Piece::Record { at, .. } => at.clone(),
                Piece::Rejected { line, .. } => format!("rejected {line}"),
                Piece::Incomplete { line } => format!("incomplete {line}"),
            })
            .collect()
    }

    #[test]
    fn every_line_of_a_jsonl_chat_is_a_record_unmodified() -> Result<(), serde_json::Error> {
        let (format, text) = case("02-jsonl-replay");
        let pieces = pieces(format, &text)?;
        assert_eq!(
            places(&pieces),
            ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            pieces[3],
            Piece::Record {
                at: "4".into(),
                text: lines[3].into()
            }
        );
        assert_eq!(
            session_id(&pieces).as_deref(),
            Some("b5e6f7a8-0000-4000-8000-000000000002")
        );
        Ok(())
    }

    #[test]
    fn non_objects_are_rejected_and_a_torn_last_line_waits() -> Result<(), serde_json::Error> {
        let (format, text) = case("03-bad-input");
        let pieces = pieces(format, &text)?;
        assert_eq!(
            places(&pieces),
            ["1", "2", "3", "rejected 4", "5", "incomplete 6"]
        );
        Ok(())
    }

    #[test]
    fn a_document_is_its_session_then_its_messages() -> Result<(), serde_json::Error> {
        let (format, text) = case("01-json-legacy");
        assert_eq!(format, ChatFormat::Document);
        let pieces = pieces(format, &text)?;
        assert_eq!(places(&pieces), ["session", "0", "1", "2"]);
        assert_eq!(
            session_id(&pieces).as_deref(),
            Some("a1b2c3d4-0000-4000-8000-000000000001")
        );
        let cut = &text[..text.len() / 2];
        assert!(document_pieces(cut).is_err());
        Ok(())
    }
}
