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

/// A source record line in a reader's field order, its record's text unchecked.
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
        // `kind` before `session` (the contract's order), or after it (older readers).
        let (kind_before, rest) = kind_field(rest)?;
        let rest = rest.strip_prefix("\"session\":\"")?;
        let (session, rest) = plain_string(rest)?;
        let rest = rest.strip_prefix(',')?;
        let (kind_after, rest) = match kind_before {
            Some(_) => (None, rest),
            None => kind_field(rest)?,
        };
        let rest = rest.strip_prefix("\"record\":")?;
        let (record, tail) = rest.split_at(record_end(rest)?);
        let tail = tail.trim_end();
        let mut kind = kind_before.or(kind_after);
        let (at, provenance) = if tail == "}" {
            (None, None)
        } else if let Some(t) = writers_tail(tail) {
            if let Some(k) = t.kind {
                // Written twice: the full parse refuses the line.
                if kind.is_some() {
                    return None;
                }
                kind = Some(k);
            }
            (t.at.map(Cow::Borrowed), Some(t.provenance))
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

/// What a reader writes after a record: `at` (not always), `provenance` and (some older
/// readers) `kind`.
struct WritersTail<'a> {
    at: Option<&'a str>,
    provenance: Provenance,
    kind: Option<&'a str>,
}

/// The tail a reader writes after a record, `(,"at":"..")?,"provenance":{..}(,"kind":"..")?}`,
/// read by hand: the provenance's `file`, `table` and `row` plain strings and `line` number, in
/// any order, each once; `None` for anything else (no escapes, no other field), which serde
/// reads.
fn writers_tail(t: &str) -> Option<WritersTail<'_>> {
    let (at, rest) = match t.strip_prefix(",\"at\":\"") {
        Some(r) => {
            let (at, r) = plain_string(r)?;
            (Some(at), r)
        }
        None => (None, t),
    };
    let mut rest = rest.strip_prefix(",\"provenance\":{")?;
    let mut provenance = Provenance::default();
    if let Some(r) = rest.strip_prefix('}') {
        rest = r;
    } else {
        loop {
            let (name, r) = plain_string(rest.strip_prefix('"')?)?;
            let r = r.strip_prefix(':')?;
            rest = match name {
                "line" => {
                    let digits = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                    let (digits, r) = r.split_at(digits);
                    let json_number = !digits.is_empty()
                        && digits.len() <= 19
                        && (digits == "0" || !digits.starts_with('0'));
                    if !json_number || provenance.line.is_some() {
                        return None;
                    }
                    provenance.line = Some(digits.parse().ok()?);
                    r
                }
                _ => {
                    let slot = match name {
                        "file" => &mut provenance.file,
                        "table" => &mut provenance.table,
                        "row" => &mut provenance.row,
                        _ => return None,
                    };
                    let (value, r) = plain_string(r.strip_prefix('"')?)?;
                    if slot.is_some() {
                        return None;
                    }
                    *slot = Some(value.to_string());
                    r
                }
            };
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else {
                rest = rest.strip_prefix('}')?;
                break;
            }
        }
    }
    let (kind, rest) = match rest.strip_prefix(",\"kind\":\"") {
        Some(r) => {
            let (kind, r) = plain_string(r)?;
            (Some(kind), r)
        }
        None => (None, rest),
    };
    (rest == "}").then_some(WritersTail {
        at,
        provenance,
        kind,
    })
}

/// `"kind":"..",` at the start of `rest`: its text and what follows, or nothing and `rest`;
/// `None` when it is there but not plain.
fn kind_field(rest: &str) -> Option<(Option<&str>, &str)> {
    match rest.strip_prefix("\"kind\":\"") {
        Some(r) => {
            let (kind, r) = plain_string(r)?;
            Some((Some(kind), r.strip_prefix(',')?))
        }
        None => Some((None, rest)),
    }
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

/// Where the record that starts `rest` ends: before the writer's tail, found from the end (a
/// reader writes `at`, else `provenance`, right after the record, and the tail is short); else
/// by the record's brackets and strings. The first is a guess when the line is not the
/// writer's: it is right whenever the record's typed parse, which must take all of the text,
/// succeeds. No JSON string holds the bytes `,"at":"` or `,"provenance":{` (their quotes would
/// be escaped), so the last ones are either the writer's or a field of an object inside the
/// record or after it, which a typed parse of the text up to them refuses (an object left
/// open, or trailing characters).
fn record_end(rest: &str) -> Option<usize> {
    let b = rest.as_bytes();
    for i in memchr::memrchr_iter(b',', b) {
        let field = &b[i..];
        // A `provenance` after a string is after the writer's `at` (or another field).
        if field.starts_with(b",\"at\":\"")
            || (field.starts_with(b",\"provenance\":{") && !b[..i].ends_with(b"\""))
        {
            return Some(i);
        }
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
    fn other_field_orders_readers_write_are_taken_apart() {
        // `kind` after `session`, or last; provenance of a table's row, with or without `at`.
        let l = agrees(r#"{"v":1,"source":"goose","session":"s","kind":"message","record":{"a":[1]},"at":"db:m/1","provenance":{"file":"/p/db","row":"1","table":"m"}}"#).unwrap();
        assert_eq!((l.kind, l.record), (Some("message"), r#"{"a":[1]}"#));
        let l = agrees(r#"{"v":1,"source":"cursor","session":"s","record":{"folder":"f"},"at":"w","provenance":{"file":"w.json"},"kind":"workspace"}"#).unwrap();
        assert_eq!(l.kind, Some("workspace"));
        let l = agrees(r#"{"v":1,"source":"opencode","kind":"message","session":"s","record":{"p":{"provenance":{"x":1}}},"provenance":{"file":"/d/o.db","table":"message","row":"m1"}}"#).unwrap();
        assert_eq!((l.record, l.at), (r#"{"p":{"provenance":{"x":1}}}"#, None));
        for line in [
            r#"{"v":1,"source":"x","session":"s","record":{},"provenance":{}}"#,
            r#"{"v":1,"source":"x","session":"s","record":{},"provenance":{"line":12,"file":"f"}}"#,
            r#"{"v":1,"source":"x","session":"s","record":{},"provenance":{"file":"f","other":1}}"#,
        ] {
            assert!(agrees(line).is_some(), "{line}");
        }
        // Written twice, or not plain: left to the full parse, which refuses or reads it.
        for line in [
            r#"{"v":1,"source":"x","kind":"a","session":"s","kind":"b","record":{}}"#,
            r#"{"v":1,"source":"x","kind":"a","session":"s","record":{},"provenance":{},"kind":"b"}"#,
            r#"{"v":1,"source":"x","session":"s","kind":"a","record":{},"provenance":{},"kind":"b"}"#,
            r#"{"v":1,"source":"x","session":"s","record":{},"provenance":{"file":"f","file":"g"}}"#,
            r#"{"v":1,"source":"x","session":"s","record":{},"provenance":{"line":1,"line":2}}"#,
            r#"{"v":1,"source":"x","session":"s","record":{},"provenance":{"line":01}}"#,
            r#"{"v":1,"source":"x","session":"s","record":{},"provenance":{"file":"f"},"kind":"k","kind":"l"}"#,
            r#"{"v":1,"source":"x","session":"s","record":{},"provenance":{"file":"f\u0041"},"kind":"k"}"#,
        ] {
            let fast = RecordLine::parse(line);
            assert!(fast.is_none(), "{line}");
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
            // `at` after the provenance; a `provenance` inside the record, and none after it.
            r#"{"v":1,"source":"x","session":"s","record":{},"provenance":{"file":"f"},"at":"a"}"#,
            r#"{"v":1,"source":"x","session":"s","record":{"a":1,"provenance":{"b":2}}}"#,
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
