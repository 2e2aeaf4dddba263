//! Which Codex generation a file is, and its session id: from its content, never from a
//! version number or the file name (V1 and V2 files sit side by side in the same folders).
//!
//! ```text
//! .jsonl / .jsonl.zst, first line that parses (leading {"record_type":"state"} lines skipped):
//!   {"type":..,"payload":..}            V2+ (V2, V3, V4 with `ordinal`)
//!   {"id":..,"timestamp":..}, no type   V1
//! .json, the top-level object:
//!   {"session":{..},"items":[..]}       V0
//!   {"id":..,"messages":[..]}           seed (homegrown exporters)
//! ```

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tonbo_core::contract::check_session_id;

/// How many lines of a JSONL file are searched for its format and first `session_meta`.
pub const SCAN_LINES: u64 = 1000;

/// What the first lines of a JSONL file say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// V1: the `id` of its meta line, or why there is none.
    V1 { id: Result<String, &'static str> },
    /// V2+: `payload.id` of the first `session_meta`, or why there is none.
    V2 { id: Result<String, &'static str> },
    /// No non-blank line at all.
    Empty,
    /// Its only line is unterminated and not JSON: being written right now.
    Torn { line: u64, len: usize },
    /// Cannot tell: no line of a known shape.
    Unknown {
        line: u64,
        reason: String,
        raw: Vec<u8>,
    },
}

/// The fields of a line that tell its shape. Each is `Some` when present, also when `null`.
#[derive(Deserialize)]
struct LineHead<'a> {
    #[serde(rename = "type", default, borrow, deserialize_with = "present")]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    timestamp: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    record_type: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Decides the format of a JSONL file from its lines, fed in order until it answers.
#[derive(Default)]
pub struct Detector {
    /// The first non-blank line, to name in a report.
    first: Option<(u64, Vec<u8>)>,
    nonblank: u64,
    /// An unterminated line that is not JSON (only ever the last line).
    torn: Option<(u64, usize)>,
    /// Decided V2+, still looking for the first `session_meta`.
    v2: bool,
}

impl Detector {
    /// Feeds the next non-blank line; returns the answer once there is one.
    pub fn feed(&mut self, number: u64, bytes: &[u8], terminated: bool) -> Option<Detected> {
        self.nonblank += 1;
        if self.first.is_none() {
            self.first = Some((number, bytes.to_vec()));
        }
        // A line that does not parse tells nothing; the full read rejects it (or leaves it as a
        // torn last line) with its line number, and the rest of the file still counts.
        let Ok(head) = serde_json::from_slice::<LineHead>(bytes) else {
            if !terminated {
                self.torn = Some((number, bytes.len()));
            }
            return None;
        };
        if !self.v2 {
            if head.kind.is_none() && head.record_type.is_some() {
                // `{"record_type":"state"}` markers of V1 (0.8+) say nothing.
                return None;
            }
            if head.kind.is_some() && head.payload.is_some() {
                self.v2 = true;
            } else if head.kind.is_none() && head.id.is_some() && head.timestamp.is_some() {
                // Line 1 of V1 is the bare SessionMeta {id, timestamp, ..}.
                return Some(Detected::V1 {
                    id: head
                        .id
                        .and_then(id_text)
                        .ok_or("its session meta line has no usable `id`"),
                });
            } else {
                return Some(Detected::Unknown {
                    line: number,
                    reason: format!(
                        "not a Codex session file: line {number} is neither a V2+ record \
                         (`type` and `payload`) nor a V1 session meta (`id` and `timestamp`, \
                         no `type`)"
                    ),
                    raw: bytes.to_vec(),
                });
            }
        }
        // The first `session_meta` is the session's own; later ones are a fork's copy of its
        // parent's history.
        if head.kind.map(RawValue::get) == Some("\"session_meta\"") {
            return Some(Detected::V2 {
                id: head
                    .payload
                    .and_then(id_field)
                    .ok_or("its first session_meta has no usable payload.id"),
            });
        }
        None
    }

    /// The answer after the last line fed (end of file, or [`SCAN_LINES`] lines).
    pub fn finish(self) -> Detected {
        if self.v2 {
            return Detected::V2 {
                id: Err("no session_meta line in its first 1000 lines"),
            };
        }
        match (self.first, self.torn) {
            (None, _) => Detected::Empty,
            (Some(_), Some((line, len))) if self.nonblank == 1 => Detected::Torn { line, len },
            (Some((line, raw)), _) => Detected::Unknown {
                line,
                reason: format!(
                    "not a Codex session file: none of its first {SCAN_LINES} lines is a V2+ \
                     record (`type` and `payload`) or a V1 session meta (`id` and `timestamp`)"
                ),
                raw,
            },
        }
    }
}

/// The `id` of a JSON object (a `session_meta` payload, a V0 `session`), if it is a usable
/// session id.
pub fn id_field(object: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Object<'a> {
        #[serde(default, borrow)]
        id: Option<&'a RawValue>,
    }
    serde_json::from_str::<Object>(object.get())
        .ok()?
        .id
        .and_then(id_text)
}

/// A session id written as a JSON string or number, if it is a usable session id.
pub fn id_text(raw: &RawValue) -> Option<String> {
    let id = match serde_json::from_str::<serde_json::Value>(raw.get()).ok()? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    check_session_id(&id).ok()?;
    Some(id)
}

/// The session id a file name gives when its content gives none: the UUID at the end of
/// `rollout-<timestamp>-<uuid>.jsonl[.zst]`, found by scanning from the right for the `-` after
/// which a UUID parses; for a reverted thread,
/// `rollout-<ts>-<thread-id>_<rollout-id>.jsonl`, the thread id. Otherwise the name without its
/// extensions. The second value says which.
pub fn session_from_file_name(name: &str) -> (String, bool) {
    let stem = ["jsonl.zst", "jsonl", "json"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext)?.strip_suffix('.'))
        .filter(|s| !s.is_empty())
        .unwrap_or(name);
    let bare = stem.strip_prefix("rollout-").unwrap_or(stem);
    let mut candidates = vec![bare];
    if let Some((thread, _rollout)) = bare.rsplit_once('_') {
        candidates.push(thread);
    }
    for c in candidates {
        if is_uuid(c) {
            return (c.to_string(), true);
        }
        for (i, _) in c.rmatch_indices('-') {
            if is_uuid(&c[i + 1..]) {
                return (c[i + 1..].to_string(), true);
            }
        }
    }
    (stem.to_string(), false)
}

/// `8-4-4-4-12` hex digits.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text`'s non-blank lines as the reader does; the last one is unterminated unless
    /// `text` ends with a newline.
    fn detect(text: &str) -> Detected {
        let mut d = Detector::default();
        let parts: Vec<&str> = text.split('\n').collect();
        for (i, part) in parts.iter().enumerate() {
            let terminated = i + 1 < parts.len();
            if part.trim().is_empty() {
                continue;
            }
            if let Some(answer) = d.feed(i as u64 + 1, part.as_bytes(), terminated) {
                return answer;
            }
        }
        d.finish()
    }

    const U1: &str = "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a81";

    #[test]
    fn v2_and_v4_take_the_first_session_meta() {
        let meta = |id: &str| {
            format!(
                r#"{{"timestamp":"t","type":"session_meta","payload":{{"id":"{id}","cwd":"/p"}}}}"#
            )
        };
        let item = r#"{"timestamp":"t","type":"response_item","payload":{"type":"message"}}"#;
        let v2 = |id: &str| Detected::V2 { id: Ok(id.into()) };
        assert_eq!(detect(&format!("{}\n{item}\n", meta(U1))), v2(U1));
        // A fork: its own meta, then its parent's copied lines with the parent's meta.
        assert_eq!(
            detect(&format!("{}\n{}\n{item}\n", meta("child"), meta("parent"))),
            v2("child")
        );
        // The meta need not be the first line (buffered items share a write).
        assert_eq!(detect(&format!("{item}\n\n{}\n", meta(U1))), v2(U1));
        // V4: an outer `ordinal`, paginated history, a new record type first.
        let v4 = format!(
            "{}\n{}\n",
            r#"{"timestamp":"t","ordinal":0,"type":"world_state","payload":{}}"#,
            r#"{"timestamp":"t","ordinal":1,"type":"session_meta","payload":{"id":"v4id","session_id":"v4id","history_mode":"paginated"}}"#
        );
        assert_eq!(detect(&v4), v2("v4id"));
        // No meta, or one without a usable id: V2 all the same, the id comes from elsewhere.
        assert_eq!(
            detect(&format!("{item}\n")),
            Detected::V2 {
                id: Err("no session_meta line in its first 1000 lines")
            }
        );
        assert!(matches!(
            detect(r#"{"timestamp":"t","type":"session_meta","payload":{"id":""}}"#),
            Detected::V2 { id: Err(_) }
        ));
        assert!(matches!(
            detect(r#"{"timestamp":"t","type":"session_meta","payload":"x"}"#),
            Detected::V2 { id: Err(_) }
        ));
    }

    #[test]
    fn v1_is_the_bare_meta_line_after_state_markers() {
        let text = format!(
            "{}\n{}\n{}\n",
            r#"{"record_type":"state"}"#,
            format_args!(
                r#"{{"id":"{U1}","timestamp":"2025-08-02T14:03:22.911Z","instructions":null}}"#
            ),
            r#"{"type":"message","id":null,"role":"user","content":[]}"#
        );
        assert_eq!(detect(&text), Detected::V1 { id: Ok(U1.into()) });
        assert_eq!(
            detect(r#"{"id":42,"timestamp":"t"}"#),
            Detected::V1 {
                id: Ok("42".into())
            }
        );
        assert!(matches!(
            detect(r#"{"id":null,"timestamp":"t"}"#),
            Detected::V1 { id: Err(_) }
        ));
    }

    #[test]
    fn a_corrupt_first_line_is_passed_over() {
        assert_eq!(
            detect(&format!(
                "garbage\n{}\n",
                r#"{"type":"session_meta","payload":{"id":"s"}}"#
            )),
            Detected::V2 { id: Ok("s".into()) }
        );
    }

    #[test]
    fn what_cannot_be_told() {
        assert_eq!(detect(""), Detected::Empty);
        assert_eq!(detect("\n  \n"), Detected::Empty);
        assert_eq!(
            detect(r#"{"type":"session_me"#),
            Detected::Torn { line: 1, len: 19 }
        );
        let Detected::Unknown { line, reason, raw } =
            detect("\n{\"session_id\":\"s\",\"ts\":1,\"text\":\"hi\"}\n")
        else {
            panic!("history.jsonl is not a session file")
        };
        assert_eq!(line, 2);
        assert!(reason.contains("line 2 is neither"), "{reason}");
        assert_eq!(raw, b"{\"session_id\":\"s\",\"ts\":1,\"text\":\"hi\"}");
        // A bare response item without the meta line before it.
        assert!(matches!(
            detect(r#"{"type":"message","role":"user"}"#),
            Detected::Unknown { line: 1, .. }
        ));
        let Detected::Unknown { line, reason, .. } = detect("not json\nnor this\n") else {
            panic!()
        };
        assert_eq!(line, 1);
        assert!(reason.contains("none of its first 1000 lines"), "{reason}");
        // Only state markers.
        assert!(matches!(
            detect("{\"record_type\":\"state\"}\n"),
            Detected::Unknown { .. }
        ));
        // Torn only when it is the only line.
        assert!(matches!(
            detect("not json\n{\"ty"),
            Detected::Unknown { .. }
        ));
    }

    #[test]
    fn session_ids_from_file_names() {
        let f = |n: &str| session_from_file_name(n);
        assert_eq!(
            f(&format!("rollout-2025-10-01T09-12-03-{U1}.jsonl")),
            (U1.to_string(), true)
        );
        assert_eq!(
            f(&format!("rollout-2025-10-01T09-12-03-{U1}.jsonl.zst")),
            (U1.to_string(), true)
        );
        assert_eq!(
            f(&format!("rollout-2025-04-20-{U1}.json")),
            (U1.to_string(), true)
        );
        assert_eq!(
            f(&format!(
                "rollout-2026-05-01T10-00-00-{U1}_019b0000-0000-7000-8000-000000000001.jsonl"
            )),
            (U1.to_string(), true)
        );
        assert_eq!(f("my-export.json"), ("my-export".to_string(), false));
        assert_eq!(
            f("rollout-2025-10-01T09-12-03-nouuid.jsonl"),
            ("rollout-2025-10-01T09-12-03-nouuid".to_string(), false)
        );
        assert!(is_uuid(U1));
        assert!(!is_uuid(&U1.replace('-', "_")));
        assert!(!is_uuid(&U1[1..]));
    }

    #[test]
    fn ids_are_strings_or_numbers() {
        let raw = |s: &str| -> Box<RawValue> { serde_json::from_str(s).unwrap() };
        assert_eq!(id_text(&raw("\"abc\"")).as_deref(), Some("abc"));
        assert_eq!(id_text(&raw("17")).as_deref(), Some("17"));
        assert_eq!(id_text(&raw("null")), None);
        assert_eq!(id_text(&raw("{}")), None);
        assert_eq!(id_text(&raw("\"\"")), None);
        assert_eq!(id_text(&raw("\"a\\nb\"")), None);
    }
}
