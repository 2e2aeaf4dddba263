//! A chat file's lines, told apart in the order Gemini CLI's own loader tells them apart, and the
//! replay that turns them into the session's current messages (FORMAT.md, "JSONL, appended,
//! replayed by id").

use serde_json::{Map, Value};

/// What one JSONL line of a chat file is.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `{"$rewindTo": id}`: drop that message and all after it (all, when the id is unknown).
    RewindTo(String),
    /// A message (any object with a string `id`): replaces a message with the same id in place.
    Message { id: String, record: Value },
    /// `{"$set": {...}}`: metadata merged in; a `messages` array in it is a checkpoint.
    Set(Map<String, Value>),
    /// The metadata line (string `sessionId` and `projectHash`), or a whole legacy record on one line.
    Metadata(Map<String, Value>),
    /// JSON that is none of the above (a record kind this reader does not know).
    Unknown,
}

fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// Classifies one line. `Err` when it is not JSON at all (a torn or corrupt line).
pub fn classify(line: &str) -> Result<Line, serde_json::Error> {
    let value: Value = serde_json::from_str(line)?;
    Ok(classify_value(value))
}

/// Classifies an already parsed value, in the loader's order: rewind, message, `$set`, metadata.
pub fn classify_value(value: Value) -> Line {
    let Value::Object(object) = value else {
        return Line::Unknown;
    };
    if let Some(id) = str_field(&object, "$rewindTo") {
        return Line::RewindTo(id.to_owned());
    }
    if let Some(id) = str_field(&object, "id") {
        let id = id.to_owned();
        return Line::Message {
            id,
            record: Value::Object(object),
        };
    }
    if let Some(Value::Object(set)) = object.get("$set") {
        return Line::Set(set.clone());
    }
    if str_field(&object, "sessionId").is_some() && str_field(&object, "projectHash").is_some() {
        return Line::Metadata(object);
    }
    Line::Unknown
}

/// A session as replayed so far: its metadata and its messages in first-seen order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Session {
    pub metadata: Map<String, Value>,
    messages: Vec<(String, Value)>,
}

impl Session {
    /// The messages, in order, each as written last.
    pub fn messages(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.messages
            .iter()
            .map(|(id, record)| (id.as_str(), record))
    }

    /// The session id, once a metadata line or `$set` has named it.
    pub fn session_id(&self) -> Option<&str> {
        str_field(&self.metadata, "sessionId")
    }

    fn put_message(&mut self, id: String, record: Value) {
        match self.messages.iter_mut().find(|(seen, _)| *seen == id) {
            Some(slot) => slot.1 = record,
            None => self.messages.push((id, record)),
        }
    }

    fn put_messages(&mut self, messages: &[Value]) {
        for message in messages {
            if let Line::Message { id, record } = classify_value(message.clone()) {
                self.put_message(id, record);
            }
        }
    }

    /// Applies one line, as Gemini CLI's loader would. `Unknown` lines change nothing.
    pub fn apply(&mut self, line: Line) {
        match line {
            Line::RewindTo(id) => {
                let from = self.messages.iter().position(|(seen, _)| *seen == id);
                self.messages.truncate(from.unwrap_or(0));
            }
            Line::Message { id, record } => self.put_message(id, record),
            Line::Set(set) => {
                if let Some(Value::Array(messages)) = set.get("messages") {
                    self.messages.clear();
                    self.put_messages(messages);
                }
                self.metadata.extend(set);
            }
            Line::Metadata(mut metadata) => {
                if let Some(Value::Array(messages)) = metadata.remove("messages") {
                    self.put_messages(&messages);
                }
                self.metadata.extend(metadata);
            }
            Line::Unknown => {}
        }
    }

    /// A legacy (before v0.39.0) whole-document file: one JSON object with `messages`.
    pub fn from_document(text: &str) -> Result<Session, serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        let mut session = Session::default();
        if let Value::Object(document) = value {
            session.apply(Line::Metadata(document));
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(case: &str, file: &str) -> String {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gemini");
        std::fs::read_to_string(root.join(case).join(file)).unwrap_or_default()
    }

    /// Replays a JSONL text; returns the session and how many lines were not JSON.
    fn replay(text: &str) -> (Session, usize) {
        let mut session = Session::default();
        let mut torn = 0;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            match classify(line) {
                Ok(line) => session.apply(line),
                Err(_) => torn += 1,
            }
        }
        (session, torn)
    }

    fn ids(session: &Session) -> Vec<&str> {
        session.messages().map(|(id, _)| id).collect()
    }

    #[test]
    fn replay_replaces_in_place_rewinds_and_sets() {
        let text = fixture(
            "02-jsonl-replay",
            "tmp/myproj/chats/session-2026-05-02T14-00-b5e6f7a8.jsonl",
        );
        let (session, torn) = replay(&text);
        assert_eq!(torn, 0);
        assert_eq!(ids(&session), ["u1", "g1", "g2", "u3", "w1"]);
        let g1 = session.messages().nth(1).map(|(_, record)| record.clone());
        assert_eq!(
            g1.as_ref().and_then(|g1| g1.pointer("/toolCalls/0/status")),
            Some(&Value::from("success"))
        );
        assert_eq!(
            session.session_id(),
            Some("b5e6f7a8-0000-4000-8000-000000000002")
        );
        assert_eq!(
            session.metadata.get("summary"),
            Some(&Value::from("Fix the cargo build"))
        );
    }

    #[test]
    fn unknown_and_torn_lines_change_nothing() {
        let text = fixture(
            "03-bad-input",
            "tmp/myproj/chats/session-2026-05-03T08-30-c9d0e1f2.jsonl",
        );
        let (session, torn) = replay(&text);
        assert_eq!(torn, 1);
        assert_eq!(ids(&session), ["u1", "e1"]);
        assert_eq!(classify(r#"{"$future":{}}"#).ok(), Some(Line::Unknown));
        assert_eq!(classify(r#"["a"]"#).ok(), Some(Line::Unknown));
    }

    #[test]
    fn rewind_to_an_unknown_id_drops_every_message() {
        let (session, _) =
            replay("{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"$rewindTo\":\"zz\"}\n{\"id\":\"c\"}\n");
        assert_eq!(ids(&session), ["c"]);
    }

    #[test]
    fn a_set_with_messages_is_a_checkpoint() {
        let (session, _) =
            replay("{\"id\":\"a\"}\n{\"$set\":{\"messages\":[{\"id\":\"x\"},{\"id\":\"y\"}]}}\n");
        assert_eq!(ids(&session), ["x", "y"]);
    }

    #[test]
    fn legacy_document_reads_whole() -> Result<(), serde_json::Error> {
        let text = fixture(
            "01-json-legacy",
            "tmp/3f2a9c/chats/session-2026-03-10T09-15-a1b2c3d4.json",
        );
        let session = Session::from_document(&text)?;
        assert_eq!(ids(&session), ["m-user-1", "m-gemini-1", "m-info-1"]);
        assert_eq!(
            session.metadata.get("projectHash"),
            Some(&Value::from("3f2a9c"))
        );
        assert!(!session.metadata.contains_key("messages"));
        Ok(())
    }
}
