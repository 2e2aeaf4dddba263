//! The wire formats between stages. Each is one JSON object per line, carrying `"v": 1`.
//!
//! ```text
//! reader    -> tonbo-map    source record {"v":1,"source":"claude-code","session":"<native id>",
//!                                          "record":{..unmodified source line..},
//!                                          "at":"<file name>:12",
//!                                          "provenance":{"file":"..","line":12}}
//! tonbo-map -> tonbo-batch  event         {"v":1,"session_id":"claude-code-<id>","redacted":1,
//!                                          "event":{"type":"user.message",..,"metadata":{
//!                                             "source":"claude-code","source_key":"..",
//!                                             "original_timestamp":".."}}}
//! tonbo-batch -> tonbo-post batch         {"v":1,"session_id":"..","keys":[..],"check":..,
//!                                          "events":[event,..]}
//! ```
//!
//! A batch's `keys` and `check` ([`BatchHead`]) spare tonbo-post reading the events it only
//! forwards; a batch line without them is read event by event.
//!
//! `v` may be omitted by hand-written input (it then means 1); a higher version is rejected so an
//! old stage never misreads a newer contract. Unknown top-level fields are ignored, so a later
//! version can add fields without breaking older stages.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The contract version this build writes and the highest it reads.
pub const WIRE_VERSION: u64 = 1;

/// Longest session id accepted. Session ids become one URL path segment; servers cap path length.
pub const MAX_SESSION_ID_BYTES: usize = 512;

fn default_version() -> u64 {
    WIRE_VERSION
}

/// Where a source record came from: a file and line, or a table and row (with the database file).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
}

/// Reader -> tonbo-map. `record` is the unmodified source record, never re-serialised.
#[derive(Debug, Serialize, Deserialize)]
pub struct SourceRecord<'a> {
    #[serde(default = "default_version")]
    pub v: u64,
    #[serde(borrow)]
    pub source: Cow<'a, str>,
    #[serde(borrow)]
    pub session: Cow<'a, str>,
    #[serde(borrow)]
    pub record: &'a RawValue,
    /// Where the record sits in its source, by the names the source gives it and nothing of
    /// this machine: a file's name (no folders) and line, say. Stable across runs, machines and
    /// archive moves, so a mapping whose records have no ids of their own builds its keys from
    /// it. Absent when the record's own ids are enough.
    #[serde(
        default,
        borrow,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::raw::opt_str"
    )]
    pub at: Option<Cow<'a, str>>,
    /// Where the record was read on this machine, for people: error messages and `--rejects`.
    /// Nothing downstream depends on it; `jq 'del(.provenance)'` between stages changes no
    /// event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// What the record is when it is not a plain line of the source, e.g. `subagent-meta` for a
    /// Claude Code `agent-<id>.meta.json`. Absent for ordinary records.
    #[serde(
        default,
        borrow,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::raw::opt_str"
    )]
    pub kind: Option<Cow<'a, str>>,
}

/// tonbo-map -> tonbo-batch. `event` is forwarded byte for byte by tonbo-batch, unless it
/// redacts it (see `redacted`).
#[derive(Debug, Serialize, Deserialize)]
pub struct EventLine<'a> {
    #[serde(default = "default_version")]
    pub v: u64,
    #[serde(borrow)]
    pub session_id: Cow<'a, str>,
    /// Set by tonbo-map when it redacted the event: the version of the built-in rules applied
    /// ([`crate::redact::RULES_VERSION`]). tonbo-batch redacts an event without it (written by
    /// something else, or by `tonbo-map --no-redact`), so no path into tonbo-post skips
    /// redaction, and does not scan twice what tonbo-map scanned. A field of the line, not of
    /// the event, so that nothing of it reaches the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<u64>,
    #[serde(borrow)]
    pub event: &'a RawValue,
}

/// tonbo-batch -> tonbo-post. `events` is exactly the JSON array tonbo-post sends as the body.
/// tonbo-batch also writes a head ahead of `events` ([`BatchHead`]); this struct reads any batch
/// line, with or without it.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchLine<'a> {
    #[serde(default = "default_version")]
    pub v: u64,
    #[serde(borrow)]
    pub session_id: Cow<'a, str>,
    #[serde(borrow)]
    pub events: Vec<&'a RawValue>,
}

/// What tonbo-batch writes ahead of a batch's `events` when every event has a key, so that
/// tonbo-post need not read the events it only forwards:
///
/// ```text
/// {"v":1,"session_id":"..","keys":["k1","k2"],"check":1234567890,"events":[e1,e2]}
/// ```
///
/// `keys` are the events' `metadata.source_key`s, in order; `check` is the CRC-32
/// ([`batch_check`]) of the `keys` array's text followed by the `events` array's text, byte for
/// byte as they stand in the line. A line edited after tonbo-batch (by jq, say) no longer matches
/// its check unless it is byte for byte what tonbo-batch wrote, and is then read event by event
/// like a line without a head; the check guards against edits, not against a line forged with a
/// recomputed check.
#[derive(Debug)]
pub struct BatchHead<'a> {
    pub session_id: Cow<'a, str>,
    pub keys: Vec<Cow<'a, str>>,
    /// Where the `events` array's text is in the line.
    pub events: std::ops::Range<usize>,
}

/// The `check` of a batch head: CRC-32 of the `keys` array's text, then the `events` array's.
pub fn batch_check(keys: &[u8], events: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(keys);
    crc.update(events);
    crc.finalize()
}

/// The prefix of every batch line tonbo-batch writes.
const BATCH_FRONT: &[u8] = br#"{"v":1,"session_id":"#;
const _: () = assert!(WIRE_VERSION == 1, "BATCH_FRONT names the wire version");

impl<'a> BatchHead<'a> {
    /// The head of a batch line laid out exactly as [`write_batch_line`] writes it, when its
    /// check matches and every key is non-empty; `None` for any other line (no head, another
    /// layout, an edit), which the reader then reads event by event. The events themselves are
    /// not read.
    pub fn read(line: &'a [u8]) -> Option<BatchHead<'a>> {
        let mut at = BATCH_FRONT.len();
        if !line.starts_with(BATCH_FRONT) {
            return None;
        }
        let (session_id, len) = json_value_at::<Cow<str>>(line, at)?;
        at += len;
        at = after(line, at, br#","keys":"#)?;
        // Each key borrowed (`raw::Name`): a `Vec<Cow<str>>` would decode every key into a new
        // `String`.
        let (keys, len) = json_value_at::<Vec<crate::raw::Name>>(line, at)?;
        let keys: Vec<Cow<str>> = keys.into_iter().map(|k| k.0).collect();
        let keys_text = &line[at..at + len];
        at = after(line, at + len, br#","check":"#)?;
        let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        let check: u32 = std::str::from_utf8(&line[at..at + digits])
            .ok()?
            .parse()
            .ok()?;
        at = after(line, at + digits, br#","events":"#)?;
        let end = line.len().checked_sub(1)?;
        let events = at..end;
        let text = line.get(events.clone())?;
        let shaped = line[end] == b'}' && text.starts_with(b"[") && text.ends_with(b"]");
        if !shaped || keys.is_empty() || keys.iter().any(|k| k.is_empty()) {
            return None;
        }
        if batch_check(keys_text, text) != check {
            return None;
        }
        Some(BatchHead {
            session_id,
            keys,
            events,
        })
    }
}

/// The JSON value of type `T` that starts at `line[at]`, and its length in bytes.
fn json_value_at<'a, T: Deserialize<'a>>(line: &'a [u8], at: usize) -> Option<(T, usize)> {
    let mut values = serde_json::Deserializer::from_slice(line.get(at..)?).into_iter::<T>();
    let value = values.next()?.ok()?;
    Some((value, values.byte_offset()))
}

/// The position after `literal`, which must stand at `line[at]`.
fn after(line: &[u8], at: usize, literal: &[u8]) -> Option<usize> {
    line.get(at..)?
        .starts_with(literal)
        .then(|| at + literal.len())
}

/// Writes a batch line with its head ([`BatchHead`]): `keys` is the text of the JSON array of
/// the events' keys, `events` that of the array of the events, each as it goes in the line.
pub fn write_batch_line(
    w: &mut impl std::io::Write,
    session_id: &str,
    keys: &[u8],
    events: &[u8],
) -> std::io::Result<()> {
    w.write_all(BATCH_FRONT)?;
    serde_json::to_writer(&mut *w, session_id)?;
    w.write_all(br#","keys":"#)?;
    w.write_all(keys)?;
    write!(w, ",\"check\":{},\"events\":", batch_check(keys, events))?;
    w.write_all(events)?;
    w.write_all(b"}")
}

/// The fields of an event that the pipeline itself relies on; everything else is opaque payload.
/// Deserialising into this skips the rest of the event without building it.
#[derive(Debug, Deserialize)]
pub struct EventHead<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub metadata: MetadataHead<'a>,
}

#[derive(Debug, Deserialize)]
pub struct MetadataHead<'a> {
    #[serde(default, borrow, deserialize_with = "crate::raw::opt_str")]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub source_key: Cow<'a, str>,
    /// Present-and-null is allowed (a source without clocks); absent is a contract violation.
    #[serde(default, deserialize_with = "present")]
    pub original_timestamp: Option<Option<Cow<'a, str>>>,
}

fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl<'a> EventHead<'a> {
    /// Parses the pipeline-relevant head of an event, checking only what tonbo-post needs:
    /// an object with a string `type` and a non-empty `metadata.source_key`.
    pub fn parse(event: &'a RawValue) -> Result<Self, String> {
        let head: EventHead<'a> = serde_json::from_str(event.get()).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("missing field `metadata`")
                || msg.contains("missing field `source_key`")
            {
                "event has no metadata.source_key".to_string()
            } else {
                format!("event is not a valid event object: {msg}")
            }
        })?;
        if head.metadata.source_key.is_empty() {
            return Err("event has an empty metadata.source_key".into());
        }
        if head.kind.is_empty() {
            return Err("event has an empty type".into());
        }
        Ok(head)
    }

    /// The full event contract that tonbo-map guarantees on its output: `type`, and `metadata`
    /// with `source`, `source_key` and `original_timestamp` (which may be null).
    pub fn check_full(&self) -> Result<(), String> {
        if self.metadata.source.as_deref().is_none_or(str::is_empty) {
            return Err("event has no metadata.source".into());
        }
        if self.metadata.original_timestamp.is_none() {
            return Err("event has no metadata.original_timestamp (use null if unknown)".into());
        }
        Ok(())
    }
}

/// Checks the contract version of a line.
pub fn check_version(v: u64) -> Result<(), String> {
    if v > WIRE_VERSION || v == 0 {
        Err(format!(
            "unsupported wire version {v} (this build reads 1..={WIRE_VERSION})"
        ))
    } else {
        Ok(())
    }
}

/// Checks a Durable Sessions session id: non-empty, bounded, no control characters.
pub fn check_session_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty session id".into());
    }
    if id.len() > MAX_SESSION_ID_BYTES {
        return Err(format!(
            "session id longer than {MAX_SESSION_ID_BYTES} bytes"
        ));
    }
    // A control character (`char::is_control`: U+0000-U+001F, U+007F-U+009F) by its UTF-8
    // bytes: C0 and DEL are single bytes; C1 is 0xC2 then 0x80-0x9F. Once per record.
    let b = id.as_bytes();
    let control = |i: usize| match b[i] {
        c if c < 0x20 || c == 0x7f => true,
        0xc2 => b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)),
        _ => false,
    };
    if (0..b.len()).any(control) {
        return Err("session id contains a control character".into());
    }
    Ok(())
}

/// FNV-1a, 64 bit: a hash that is the same on every run and machine (for spreading sessions
/// over workers, and keys of lines that carry no id).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The stable Durable Sessions id of a native session: `claude-code-<id>`, `codex-<id>`,
/// `opencode-<id>`; an `events` record names its session id itself.
pub fn session_id_for(source: &str, native: &str) -> String {
    match source {
        "events" => native.to_string(),
        _ => {
            // Once per record in tonbo-map: no formatting machinery.
            let mut id = String::with_capacity(source.len() + 1 + native.len());
            id.push_str(source);
            id.push('-');
            id.push_str(native);
            id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_head_reads_only_what_it_needs() {
        let raw: Box<RawValue> = serde_json::from_str(
            r#"{"type":"user.message","content":[{"type":"text","text":"hi \" there"}],
                "metadata":{"source":"codex","source_key":"k\u0031","original_timestamp":null,"x":1}}"#,
        )
        .unwrap();
        let head = EventHead::parse(&raw).unwrap();
        assert_eq!(head.kind, "user.message");
        assert_eq!(head.metadata.source_key, "k1");
        assert_eq!(head.metadata.original_timestamp, Some(None));
        head.check_full().unwrap();
    }

    #[test]
    fn event_head_names_what_is_missing() {
        let raw: Box<RawValue> = serde_json::from_str(r#"{"type":"x","metadata":{}}"#).unwrap();
        assert_eq!(
            EventHead::parse(&raw).unwrap_err(),
            "event has no metadata.source_key"
        );
        let raw: Box<RawValue> =
            serde_json::from_str(r#"{"type":"x","metadata":{"source_key":"a"}}"#).unwrap();
        let head = EventHead::parse(&raw).unwrap();
        assert!(head.check_full().unwrap_err().contains("metadata.source"));
        let raw: Box<RawValue> = serde_json::from_str(r#"[1]"#).unwrap();
        assert!(EventHead::parse(&raw)
            .unwrap_err()
            .contains("not a valid event"));
    }

    /// A batch line as tonbo-batch writes it, with keys `k1`, `k2`.
    fn batch_line() -> Vec<u8> {
        let mut line = Vec::new();
        let events = br#"[{"type":"a","metadata":{"source_key":"k1"}},{"type":"b","metadata":{"source_key":"k2"}}]"#;
        write_batch_line(&mut line, "s\"1", br#"["k1","k2"]"#, events).unwrap();
        line
    }

    #[test]
    fn a_batch_head_is_read_without_reading_the_events() {
        let line = batch_line();
        let b: BatchLine = serde_json::from_slice(&line).unwrap();
        assert_eq!(b.events.len(), 2);
        let head = BatchHead::read(&line).unwrap();
        assert_eq!(head.session_id, "s\"1");
        assert_eq!(head.keys, ["k1", "k2"]);
        let events = &line[head.events.clone()];
        assert_eq!(serde_json::to_string(&b.events).unwrap().as_bytes(), events);
    }

    #[test]
    fn a_batch_head_that_does_not_match_its_line_is_not_read() {
        let line = String::from_utf8(batch_line()).unwrap();
        let edits = [
            // A key changed, events changed, an event dropped (jq would leave the head stale).
            line.replace(r#"["k1","k2"]"#, r#"["k1","k3"]"#),
            line.replace(r#""type":"b""#, r#""type":"c""#),
            line.replace(r#",{"type":"b","metadata":{"source_key":"k2"}}"#, ""),
            // Reformatted, reordered, cut, or an empty key.
            line.replace(r#","check":"#, r#", "check":"#),
            line.replace(r#"{"v":1,"#, r#"{"#),
            line[..line.len() - 1].to_string(),
            format!("{line} "),
            line.replace(r#""check":"#, r#""check":1"#),
        ];
        for edited in edits {
            assert!(
                BatchHead::read(edited.as_bytes()).is_none(),
                "read: {edited}"
            );
        }
        let mut empty_key = Vec::new();
        write_batch_line(&mut empty_key, "s", br#"[""]"#, b"[{}]").unwrap();
        assert!(BatchHead::read(&empty_key).is_none());
        let old = br#"{"v":1,"session_id":"s","events":[{}]}"#;
        assert!(BatchHead::read(old).is_none());
    }

    #[test]
    fn versions_and_session_ids() {
        assert!(check_version(1).is_ok());
        assert!(check_version(2).is_err());
        assert!(check_version(0).is_err());
        assert!(check_session_id("").is_err());
        assert!(check_session_id("a\nb").is_err());
        assert!(check_session_id(&"x".repeat(513)).is_err());
        assert!(check_session_id("claude-code-1f0e").is_ok());
        // Control characters by their bytes, as `char::is_control` says.
        for c in (0..0x3000).filter_map(char::from_u32) {
            let id = format!("a{c}b");
            assert_eq!(check_session_id(&id).is_err(), c.is_control(), "{c:?}");
        }
        assert_eq!(session_id_for("codex", "abc"), "codex-abc");
        assert_eq!(session_id_for("events", "mine"), "mine");
    }

    #[test]
    fn source_record_round_trips_record_bytes() {
        let line = r#"{"v":1,"source":"claude-code","session":"s1","record":{"b": 2.0,"a":[1, 2]},"provenance":{"file":"f.jsonl","line":3}}"#;
        let rec: SourceRecord = serde_json::from_str(line).unwrap();
        assert_eq!(rec.record.get(), r#"{"b": 2.0,"a":[1, 2]}"#);
        let out = serde_json::to_string(&rec).unwrap();
        assert!(out.contains(r#""record":{"b": 2.0,"a":[1, 2]}"#));
    }
}

/// Where a source record is in its file, for its `provenance`: a line (physical, from 1) or a
/// row (a place inside a document or a database).
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    Line(u64),
    Row(&'a str),
}

/// Writes one source record line on `out` in the contract's field order (`v`, `source`, `kind`
/// when there is one, `session`, `record`, `at`, `provenance`), without building it in memory:
/// `record` is written as it is and must be one line of valid JSON; `place` is left out of the
/// provenance when `None`.
#[allow(clippy::too_many_arguments)]
pub fn write_source_record(
    out: &mut crate::Output,
    source: &str,
    kind: Option<&str>,
    session: &str,
    record: &[u8],
    at: &str,
    file: &str,
    place: Option<Place>,
) -> std::io::Result<()> {
    use std::io::Write;
    let w = out.raw();
    write!(w, "{{\"v\":{WIRE_VERSION},\"source\":\"{source}\",")?;
    if let Some(kind) = kind {
        w.write_all(b"\"kind\":")?;
        serde_json::to_writer(&mut *w, kind)?;
        w.write_all(b",")?;
    }
    w.write_all(b"\"session\":")?;
    serde_json::to_writer(&mut *w, session)?;
    w.write_all(b",\"record\":")?;
    w.write_all(record)?;
    w.write_all(b",\"at\":")?;
    serde_json::to_writer(&mut *w, at)?;
    w.write_all(b",\"provenance\":{\"file\":")?;
    serde_json::to_writer(&mut *w, file)?;
    match place {
        Some(Place::Line(n)) => write!(w, ",\"line\":{n}")?,
        Some(Place::Row(row)) => {
            w.write_all(b",\"row\":")?;
            serde_json::to_writer(&mut *w, row)?;
        }
        None => {}
    }
    w.write_all(b"}}")?;
    out.end_line()
}
