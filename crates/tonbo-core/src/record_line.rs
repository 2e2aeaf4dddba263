//! A source record line read in one pass over its `record`: the envelope a reader writes
//! ([`crate::contract::write_source_record`]) is taken apart by hand, and the `record`'s end is
//! found from the short tail after it, so that the mapping's own typed parse of the record is
//! the only parse of it. Parsing the line as a [`crate::SourceRecord`] scans the record
//! once more, only to check it is JSON: a fifth of tonbo-map's time on ~1 KB records.
//!
//! The record's text is NOT checked as JSON here, nor even known to be one value. [`RecordLine`]
//! is for a mapping whose typed parse of the whole text (`serde_json::from_str`) checks it before
//! anything else happens: serde_json reads every byte of a value it ignores, and `from_str`
//! refuses trailing bytes; on any doubt (a line not in
//! the writer's exact shape, an escape in a name, a record that does not parse) the caller
//! falls back to [`crate::SourceRecord`], which gives the same result, or the precise error.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::contract::Provenance;

/// A source record line in the writer's field order, its record's text unchecked.
#[derive(Debug)]
pub struct RecordLine<'a> {
    pub source: &'a str,
    pub kind: Option<&'a str>,
    pub session: &'a str,
    /// The record's JSON text as the line holds it: not checked (see the module doc).
    pub record: &'a str,
    pub at: Option<Cow<'a, str>>,
    pub provenance: Option<Provenance>,
}

/// What follows `record` in a line: `at` and `provenance`; any other field is ignored, as by
/// [`crate::SourceRecord`], save one of the fields before it written again (then the full parse
/// decides).
#[derive(Deserialize)]
struct Tail<'a> {
    #[serde(default, borrow, deserialize_with = "crate::raw::opt_str")]
    at: Option<Cow<'a, str>>,
    #[serde(default)]
    provenance: Option<Provenance>,
    #[serde(default)]
    v: Option<IgnoredAny>,
    #[serde(default)]
    source: Option<IgnoredAny>,
    #[serde(default)]
    kind: Option<IgnoredAny>,
    #[serde(default)]
    session: Option<IgnoredAny>,
    #[serde(default)]
    record: Option<IgnoredAny>,
}

impl<'a> RecordLine<'a> {
    /// Takes a line apart; `None` when it is not in the writer's exact shape (the caller then
    /// parses it as a [`crate::SourceRecord`]).
    pub fn parse(line: &'a str) -> Option<RecordLine<'a>> {
        let rest = line.strip_prefix("{\"v\":1,\"source\":\"")?;
        let (source, rest) = plain_string(rest)?;
        let rest = rest.strip_prefix(',')?;
        let (kind, rest) = match rest.strip_prefix("\"kind\":\"") {
            Some(r) => {
                let (kind, r) = plain_string(r)?;
                (Some(kind), r.strip_prefix(',')?)
            }
            None => (None, rest),
        };
        let rest = rest.strip_prefix("\"session\":\"")?;
        let (session, rest) = plain_string(rest)?;
        let rest = rest.strip_prefix(",\"record\":")?;
        let (record, tail) = rest.split_at(record_end(rest)?);
        let tail = tail.trim_end();
        let (at, provenance) = if tail == "}" {
            (None, None)
        } else if let Some((at, file, place)) = writers_tail(tail) {
            let (line, row) = match place {
                Place::File => (None, None),
                Place::Line(n) => (Some(n), None),
                Place::Row(r) => (None, Some(r.to_string())),
            };
            let provenance = Provenance {
                file: Some(file.to_string()),
                line,
                row,
                ..Provenance::default()
            };
            (Some(Cow::Borrowed(at)), Some(provenance))
        } else {
            let fields = tail.strip_prefix(',')?;
            let mut object = String::with_capacity(fields.len() + 1);
            object.push('{');
            object.push_str(fields);
            let t: Tail = serde_json::from_str(&object).ok()?;
            if t.v.is_some()
                || t.source.is_some()
                || t.kind.is_some()
                || t.session.is_some()
                || t.record.is_some()
            {
                return None;
            }
            // `at` borrowed from `object` must own its text.
            (t.at.map(|a| Cow::Owned(a.into_owned())), t.provenance)
        };
        Some(RecordLine {
            source,
            kind,
            session,
            record,
            at,
            provenance,
        })
    }
}

/// Where in its file a record is, as a reader's tail says it.
enum Place<'a> {
    File,
    Line(u64),
    /// A row of a document (an index, or a name such as `session`).
    Row(&'a str),
}

/// `at`, provenance's file and place from the tail a reader writes after a record of a file:
/// `,"at":"..","provenance":{"file":".."(,"line":N|,"row":"..")}}`, no escapes; `None` for any
/// other.
fn writers_tail(t: &str) -> Option<(&str, &str, Place<'_>)> {
    let (at, rest) = plain_string(t.strip_prefix(",\"at\":\"")?)?;
    let (file, rest) = plain_string(rest.strip_prefix(",\"provenance\":{\"file\":\"")?)?;
    let place = match rest {
        "}}" => Place::File,
        _ => {
            if let Some(row) = rest.strip_prefix(",\"row\":\"") {
                let (row, rest) = plain_string(row)?;
                if rest != "}}" {
                    return None;
                }
                return Some((at, file, Place::Row(row)));
            }
            let digits = rest.strip_prefix(",\"line\":")?.strip_suffix("}}")?;
            let json_number = !digits.is_empty()
                && digits.len() <= 19
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            if !json_number {
                return None;
            }
            Place::Line(digits.parse().ok()?)
        }
    };
    Some((at, file, place))
}

/// The text of a JSON string whose opening quote is consumed, up to its closing quote, and what
/// follows; `None` when it holds an escape or a control character (left to the full parse).
fn plain_string(s: &str) -> Option<(&str, &str)> {
    let end = special_byte(s.as_bytes())?;
    if s.as_bytes()[end] != b'"' {
        return None;
    }
    Some((&s[..end], &s[end + 1..]))
}

/// The first `"`, `\\` or control character of `b`, eight bytes at a time (names and paths
/// are short: no SIMD set-up to pay for).
fn special_byte(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut at = 0;
    while let Some(word) = b.get(at..at + 8) {
        let x = u64::from_le_bytes(word.try_into().ok()?);
        let hit = (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')));
        if hit != 0 {
            break;
        }
        at += 8;
    }
    b[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| at + i)
}

/// Where the record that starts `rest` ends: before the line's last `,"at":"`, found from the
/// end (a reader writes `at` right after the record, and the tail is short); else by the
/// record's brackets and strings. The first is a guess when the line is not the writer's: it
/// is right whenever the record's typed parse, which must take all of the text, succeeds. No
/// JSON string holds the bytes `,"at":"` (its quotes would be escaped), so the last ones are
/// either the writer's `at` or a field of an object after the record, which a typed parse of
/// the text up to them refuses (trailing characters).
fn record_end(rest: &str) -> Option<usize> {
    // From comma to comma back from the end: the tail holds two or three.
    let b = rest.as_bytes();
    let mut end = b.len();
    while let Some(comma) = memchr::memrchr(b',', &b[..end]) {
        if b[comma..].starts_with(b",\"at\":\"") {
            return Some(comma);
        }
        end = comma;
    }
    object_end(b)
}

/// The length of the JSON object at the start of `b`, found by its brackets and strings; `None`
/// when `b` does not start with `{` or the object does not close.
fn object_end(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i + 1)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index just past the closing quote of a string whose text starts at `i`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let at = i + memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[at] == b'"' {
            return Some(at + 1);
        }
        // An escape: the next byte is part of it (`\"` does not close the string).
        i = at + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceRecord;

    /// Every line the fast path takes gives what the full parse gives.
    fn agrees(line: &str) -> Option<RecordLine<'_>> {
        let fast = RecordLine::parse(line)?;
        let full: SourceRecord = serde_json::from_str(line).expect("a line the fast path takes");
        assert_eq!(fast.source, full.source);
        assert_eq!(fast.session, full.session);
        assert_eq!(fast.kind, full.kind.as_deref());
        assert_eq!(fast.record, full.record.get());
        assert_eq!(fast.at.as_deref(), full.at.as_deref());
        assert_eq!(fast.provenance, full.provenance);
        Some(fast)
    }

    #[test]
    fn the_writers_lines_are_taken_apart() {
        let l = agrees(r#"{"v":1,"source":"claude-code","session":"s-1","record":{"a":"}{\"][","b":[{"c":"\\"}],"d":1},"at":"s-1.jsonl:3","provenance":{"file":"/p/s-1.jsonl","line":3}}"#).unwrap();
        assert_eq!(l.record, r#"{"a":"}{\"][","b":[{"c":"\\"}],"d":1}"#);
        let l = agrees(r#"{"v":1,"source":"claude-code","kind":"subagent-meta","session":"s","record":{},"at":"a\"b","provenance":{"file":"f","row":"r"}}"#).unwrap();
        assert_eq!(
            (l.kind, l.at.as_deref()),
            (Some("subagent-meta"), Some("a\"b"))
        );
        assert!(agrees(r#"{"v":1,"source":"x","session":"s","record":{}}"#).is_some());
        assert!(agrees(r#"{"v":1,"source":"x","session":"s","record":{},"extra":[1]}"#).is_some());
        // The writer's tail, read by hand, and near misses read by serde.
        for tail in [
            r#","at":"a.jsonl:7","provenance":{"file":"/p/a.jsonl","line":7}}"#,
            r#","at":"a.jsonl:0","provenance":{"file":"/p/a.jsonl","line":0}}"#,
            r#","at":"a.meta.json","provenance":{"file":"/p/a.meta.json"}}"#,
            r#","at":"db","provenance":{"file":"/p/db","row":"r1"}}"#,
            r#","at":"a\u0041","provenance":{"file":"/p/a","line":1}}"#,
            r#","at":"api:3:17","provenance":{"file":"/p/h.json","row":"3"}}"#,
            r#","at":"s.json:session","provenance":{"file":"/p/s.json","row":"session"}}"#,
            r#","at":"a","provenance":{"file":"/p/s.json","row":"r\"1"}}"#,
            r#","at":"a","provenance":{"file":"/p/s.json","row":"1","line":2}}"#,
            r#","at":"a","provenance":{"file":"/p/s.json","row":"1"},"x":1}"#,
        ] {
            let line = format!(r#"{{"v":1,"source":"x","session":"s","record":{{"k":1}}{tail}"#);
            assert!(agrees(&line).is_some(), "{line}");
        }
        for tail in [
            r#","at":"a","provenance":{"file":"f","line":07}}"#,
            r#","at":"a","provenance":{"file":"f","line":}}"#,
            r#","at":"a","provenance":{"file":"f","line":1}"#,
        ] {
            let line = format!(r#"{{"v":1,"source":"x","session":"s","record":{{}}{tail}"#);
            assert!(RecordLine::parse(&line).is_none(), "{line}");
        }
    }

    #[test]
    fn plain_strings_end_at_their_quote_before_any_escape_or_control_character() {
        for (s, want) in [
            ("abc\"x", Some(("abc", "x"))),
            ("\"", Some(("", ""))),
            ("0123456789abcdef0123\"", Some(("0123456789abcdef0123", ""))),
            ("0123456789\\\"", None),
            ("01234567890123\n\"", None),
            ("é日本\"", Some(("é日本", ""))),
            ("no quote", None),
        ] {
            assert_eq!(plain_string(s), want, "{s:?}");
        }
    }

    #[test]
    fn a_guessed_end_is_a_text_no_typed_parse_takes() {
        for line in [
            // An `at` inside the record, and none after it.
            r#"{"v":1,"source":"x","session":"s","record":{"a":1,"at":"z","b":2}}"#,
            // A field of an object after the record.
            r#"{"v":1,"source":"x","session":"s","record":{},"at":"f","provenance":{},"y":{"q":1,"at":"z"}}"#,
            // A field between the record and `at`.
            r#"{"v":1,"source":"x","session":"s","record":{},"y":1,"at":"f"}"#,
        ] {
            if let Some(l) = RecordLine::parse(line) {
                assert!(
                    serde_json::from_str::<serde::de::IgnoredAny>(l.record).is_err(),
                    "{line}: {}",
                    l.record
                );
            }
        }
    }

    #[test]
    fn anything_else_is_left_to_the_full_parse() {
        for line in [
            // Another field order, spacing, version, or an escape in a name.
            r#"{"source":"x","v":1,"session":"s","record":{}}"#,
            r#"{"v":1, "source":"x","session":"s","record":{}}"#,
            r#"{"v":2,"source":"x","session":"s","record":{}}"#,
            r#"{"v":1,"source":"x","session":"s\u0041","record":{}}"#,
            // A record that is no object, or does not close, or a field written twice.
            r#"{"v":1,"source":"x","session":"s","record":[1]}"#,
            r#"{"v":1,"source":"x","session":"s","record":{"a":"}"#,
            r#"{"v":1,"source":"x","session":"s","record":{"a":1}}}"#,
            r#"{"v":1,"source":"x","session":"s","record":{},"record":{}}"#,
            r#"{"v":1,"source":"x","session":"s","record":{},"at":1}"#,
            r#"{"v":1,"source":"x","session":"s","record":{}"#,
        ] {
            assert!(RecordLine::parse(line).is_none(), "{line}");
        }
    }
}
