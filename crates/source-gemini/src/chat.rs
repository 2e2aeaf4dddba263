//! One chat file replayed into the records the reader writes: each message once, in its
//! settled version, named by its id, never by a line number (FORMAT.md, "What gemini-read
//! writes"). The same [`Chat`] serves a plain run and `--follow`: it remembers what it wrote
//! (key and a hash of the version), so reading a file again writes only what changed.
//!
//! The rules, from how Gemini CLI writes (`chatRecordingService.ts`: only the LAST message is
//! ever written again as it grows: tool calls, results, tokens):
//! - the newest message is held back ([`Chat::pending`]) until it is settled: a message with a
//!   new id follows it, a `$rewindTo` follows it, or [`Chat::settle`] is called (the end of a
//!   file in a backfill; a quiet file or the last look in `--follow`);
//! - a message written before and written again (a `$set.messages` checkpoint masking a tool
//!   output, a re-read of a rewritten file, a last message that grew after a follower wrote it)
//!   is written again only if its bytes changed (a version met before is never written), with
//!   the same `at`; the mapping keys its
//!   events by message id and part, so only new parts make new events;
//! - a `$rewindTo` unsends nothing: it is written once (`rewind:<id>`) for the mapping's notice;
//! - the metadata line is the `session` record; a `$set` carrying more than `lastUpdated` (a
//!   summary, directories) is a `set` record keyed by a hash of its bytes; a JSON object of a
//!   kind Gemini CLI does not know goes out as `other`, keyed the same way.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tonbo_core::event::fnv64;
use tonbo_core::jsonline::compact_json;

use crate::record::{classify_value, Line};

/// What a written record is; its wire `kind` (none for a message, the ordinary record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Written by the reader, not the chat: the project's root (`.project_root`).
    Project,
    Session,
    Set,
    Message,
    Rewind,
    Other,
}

impl Kind {
    pub fn wire(self) -> Option<&'static str> {
        match self {
            Kind::Project => Some("project"),
            Kind::Session => Some("session"),
            Kind::Set => Some("set"),
            Kind::Message => None,
            Kind::Rewind => Some("rewind"),
            Kind::Other => Some("other"),
        }
    }
}

/// A record to write: its kind, its key within the file (the `at` after `<file>:`), its JSON
/// text, and the line it was read from (for provenance; `None` for a document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub kind: Kind,
    pub key: String,
    pub text: String,
    pub line: Option<u64>,
}

/// The newest message, held back until settled.
#[derive(Debug, Clone)]
struct Pending {
    id: String,
    text: String,
    line: Option<u64>,
}

/// A chat file's replay state: what was written, and the message held back.
#[derive(Debug, Default)]
pub struct Chat {
    /// Key -> hashes of every version met under it (written, or superseded while held back):
    /// a version met before is never written, so a file read again from its start (a rewrite)
    /// writes nothing old.
    written: HashMap<String, Vec<u64>>,
    /// The id of the newest message (the one Gemini CLI may still write again).
    newest: Option<String>,
    pending: Option<Pending>,
    /// The session id, once the metadata line (or document) named it.
    pub session: Option<String>,
}

/// Only what a `$set` checkpoint or a document holds as messages, each as its raw text.
#[derive(Deserialize)]
struct Messages<'a> {
    #[serde(borrow, default)]
    messages: Vec<&'a RawValue>,
}

/// `$set` keys that say nothing worth a record: bumped on every write, or the checkpoint.
const QUIET_SET_KEYS: [&str; 2] = ["lastUpdated", "messages"];

impl Chat {
    /// Whether a message is held back (for a follower's quiet-file flush).
    pub fn pending(&self) -> bool {
        self.pending.is_some()
    }

    fn put(
        &mut self,
        kind: Kind,
        key: String,
        hash: u64,
        text: &str,
        line: Option<u64>,
    ) -> Option<Written> {
        let versions = self.written.entry(key.clone()).or_default();
        if versions.contains(&hash) {
            return None;
        }
        versions.push(hash);
        Some(Written {
            kind,
            key,
            text: text.to_string(),
            line,
        })
    }

    fn put_text(
        &mut self,
        kind: Kind,
        key: String,
        text: &str,
        line: Option<u64>,
        out: &mut Vec<Written>,
    ) {
        let hash = fnv64(text.as_bytes());
        out.extend(self.put(kind, key, hash, text, line));
    }

    /// Writes the held-back message, if any (it is final as far as this reader can tell).
    pub fn settle(&mut self, out: &mut Vec<Written>) {
        if let Some(p) = self.pending.take() {
            self.put_text(Kind::Message, p.id, &p.text, p.line, out);
        }
    }

    /// A message `id` written as `text`.
    fn message(&mut self, id: &str, text: &str, line: Option<u64>, out: &mut Vec<Written>) {
        let newest = self.newest.as_deref() == Some(id);
        if !newest && !self.written.contains_key(id) {
            // A new message: the one before it is settled.
            self.settle(out);
            self.newest = Some(id.to_string());
        } else if !newest {
            // An older message written again (a checkpoint): settled already.
            self.put_text(Kind::Message, id.to_string(), text, line, out);
            return;
        }
        if let Some(old) = self.pending.take().filter(|old| old.text != text) {
            // Superseded before it was written: met, so a re-read will not write it.
            let hash = fnv64(old.text.as_bytes());
            self.written.entry(old.id).or_default().push(hash);
        }
        self.pending = Some(Pending {
            id: id.to_string(),
            text: text.to_string(),
            line,
        });
    }

    /// Each message of an array (a checkpoint or a document), compacted.
    fn messages(&mut self, messages: &[&RawValue], line: Option<u64>, out: &mut Vec<Written>) {
        for raw in messages {
            let text = compact_json(raw.get());
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&text) {
                if let Some(id) = m.get("id").and_then(Value::as_str) {
                    self.message(id, &text, line, out);
                }
            }
        }
    }

    /// One complete JSONL line that is a JSON object (`text`, read at `line`).
    pub fn line(&mut self, text: &str, line: u64, out: &mut Vec<Written>) {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let at = Some(line);
        match classify_value(value) {
            Line::RewindTo(id) => {
                self.settle(out);
                self.put_text(Kind::Rewind, format!("rewind:{id}"), text, at, out);
            }
            Line::Message { id, .. } => self.message(&id, text, at, out),
            Line::Set(set) => {
                if let Ok(Some(checkpoint)) = set_messages(text) {
                    self.messages(&checkpoint.messages, at, out);
                }
                if set.keys().any(|k| !QUIET_SET_KEYS.contains(&k.as_str()))
                    && !set.contains_key("messages")
                {
                    let key = format!("set:{:016x}", fnv64(text.as_bytes()));
                    self.put_text(Kind::Set, key, text, at, out);
                }
            }
            Line::Metadata(metadata) if metadata.contains_key("messages") => {
                // A whole legacy record on one line.
                let _ = self.document(text, out);
            }
            Line::Metadata(metadata) => {
                self.name_session(&metadata);
                self.put_text(Kind::Session, "session".into(), text, at, out);
            }
            Line::Unknown => {
                let key = format!("other:{:016x}", fnv64(text.as_bytes()));
                self.put_text(Kind::Other, key, text, at, out);
            }
        }
    }

    fn name_session(&mut self, metadata: &Map<String, Value>) {
        if self.session.is_none() {
            self.session = metadata
                .get("sessionId")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
    }

    /// A whole legacy document (or a legacy record on one line): its session record (without
    /// `messages`; written again only when it changed other than in `lastUpdated`), then its
    /// messages, the last held back. `Err` when it is not whole JSON (caught mid-write).
    pub fn document(
        &mut self,
        text: &str,
        out: &mut Vec<Written>,
    ) -> Result<(), serde_json::Error> {
        let Value::Object(mut head) = serde_json::from_str::<Value>(text)? else {
            return Ok(());
        };
        let listed: Messages = serde_json::from_str(text)?;
        head.remove("messages");
        self.name_session(&head);
        let session = Value::Object(head.clone()).to_string();
        head.remove("lastUpdated");
        let hash = fnv64(Value::Object(head).to_string().as_bytes());
        out.extend(self.put(Kind::Session, "session".into(), hash, &session, None));
        self.messages(&listed.messages, None, out);
        Ok(())
    }
}

/// The messages of a `$set` line, when it holds a checkpoint.
fn set_messages(text: &str) -> serde_json::Result<Option<Messages<'_>>> {
    #[derive(Deserialize)]
    struct SetLine<'a> {
        #[serde(borrow, rename = "$set")]
        set: Option<Messages<'a>>,
    }
    let line: SetLine = serde_json::from_str(text)?;
    Ok(line.set.filter(|s| !s.messages.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(case: &str, file: &str) -> String {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gemini");
        std::fs::read_to_string(root.join(case).join(file)).unwrap_or_default()
    }

    fn replay(chat: &mut Chat, text: &str) -> Vec<Written> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with('{') {
                chat.line(line, n as u64 + 1, &mut out);
            }
        }
        out
    }

    fn keys(out: &[Written]) -> Vec<&str> {
        out.iter().map(|w| w.key.as_str()).collect()
    }

    const TWO: &str = "02-jsonl-replay";
    const TWO_FILE: &str = "tmp/myproj/chats/session-2026-05-02T14-00-b5e6f7a8.jsonl";

    #[test]
    fn each_message_once_in_its_last_version_and_the_rewind_once() {
        let text = fixture(TWO, TWO_FILE);
        let mut chat = Chat::default();
        let mut out = replay(&mut chat, &text);
        assert_eq!(out[6].kind, Kind::Set);
        out.remove(6);
        assert_eq!(
            keys(&out),
            ["session", "u1", "g1", "g2", "u2", "rewind:u2", "u3"]
        );
        assert!(
            out[2].text.contains("\"success\""),
            "g1 final: {}",
            out[2].text
        );
        assert_eq!(out[2].line, Some(4));
        chat.settle(&mut out);
        assert_eq!(out.len(), 8);
        assert_eq!(out[7].key, "w1");
        assert_eq!(
            chat.session.as_deref(),
            Some("b5e6f7a8-0000-4000-8000-000000000002")
        );
        // Reading the same file again (a rewrite seen by a follower) writes nothing.
        let mut again = replay(&mut chat, &text);
        chat.settle(&mut again);
        assert_eq!(again, []);
    }

    #[test]
    fn a_follower_flush_then_a_grown_message_writes_it_again_only_if_changed() {
        let text = fixture(TWO, TWO_FILE);
        let lines: Vec<&str> = text.lines().collect();
        let mut chat = Chat::default();
        let mut out = replay(&mut chat, &lines[..3].join("\n"));
        chat.settle(&mut out);
        assert_eq!(keys(&out), ["session", "u1", "g1"]);
        assert!(out[2].text.contains("executing"));
        let mut more = Vec::new();
        chat.line(lines[3], 4, &mut more);
        chat.line(lines[3], 4, &mut more);
        chat.line(lines[4], 5, &mut more);
        assert_eq!(keys(&more), ["g1"]);
        assert!(more[0].text.contains("success"));
    }

    #[test]
    fn a_checkpoint_writes_only_changed_and_new_messages() {
        let mut chat = Chat::default();
        let mut out = Vec::new();
        chat.line(r#"{"id":"a","content":"x"}"#, 1, &mut out);
        chat.line(r#"{"id":"b","content":"y"}"#, 2, &mut out);
        chat.line(
            r#"{"$set":{"messages":[{"id":"a","content":"masked"},{"id":"b","content":"y"},{"id":"s","content":"summary"}],"lastUpdated":"t"}}"#,
            3,
            &mut out,
        );
        chat.settle(&mut out);
        let texts: Vec<&str> = out.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(keys(&out), ["a", "a", "b", "s"]);
        assert!(texts[1].contains("masked"));
    }

    #[test]
    fn a_document_read_again_writes_what_changed() -> Result<(), serde_json::Error> {
        let text = fixture(
            "01-json-legacy",
            "tmp/3f2a9c/chats/session-2026-03-10T09-15-a1b2c3d4.json",
        );
        let mut chat = Chat::default();
        let mut out = Vec::new();
        chat.document(&text, &mut out)?;
        assert_eq!(keys(&out), ["session", "m-user-1", "m-gemini-1"]);
        assert!(!out[0].text.contains("messages"));
        chat.settle(&mut out);
        let bumped = text.replace("09:15:40.900Z", "09:16:00.000Z");
        let mut again = Vec::new();
        chat.document(&bumped, &mut again)?;
        chat.settle(&mut again);
        assert_eq!(again, []);
        assert!(chat.document(&text[..text.len() / 2], &mut again).is_err());
        Ok(())
    }
}
