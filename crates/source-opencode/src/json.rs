//! JSON text handling: checking, compacting and splicing objects without re-serialising them, so
//! that key order, number spelling and string escapes stay as OpenCode wrote them.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

// The T1 JSON store is pretty-printed (`Storage.write` writes `JSON.stringify(.., null, 2)`,
// FORMAT.md); one record must be one line.
pub use tonbo_core::jsonline::{compact_json, push_compact};

/// Why a JSON text cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadJson {
    /// 1-based line of the problem inside the text (1 when it is not about one place).
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for BadJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

fn not_json(e: serde_json::Error) -> BadJson {
    BadJson {
        line: e.line().max(1) as u64,
        reason: format!("not JSON: {e}"),
    }
}

/// Text bytes from SQLite or a file as UTF-8.
pub fn utf8(bytes: &[u8]) -> Result<&str, BadJson> {
    std::str::from_utf8(bytes).map_err(|e| BadJson {
        line: 1,
        reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
    })
}

/// Any JSON value, compacted.
pub fn any_value(text: &str) -> Result<String, BadJson> {
    let raw: &RawValue = serde_json::from_str(text).map_err(not_json)?;
    Ok(compact_json(raw.get()))
}

/// A JSON object, compacted.
pub fn object(text: &str) -> Result<String, BadJson> {
    let raw: &RawValue = serde_json::from_str(text).map_err(not_json)?;
    if !raw.get().starts_with('{') {
        return Err(BadJson {
            line: 1,
            reason: "not a JSON object".into(),
        });
    }
    Ok(compact_json(raw.get()))
}

/// A JSON array, compacted, and how many elements it has.
pub fn array(text: &str) -> Result<(String, u64), BadJson> {
    let raw: &RawValue = serde_json::from_str(text).map_err(not_json)?;
    if !raw.get().starts_with('[') {
        return Err(BadJson {
            line: 1,
            reason: "not a JSON array".into(),
        });
    }
    let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(not_json)?;
    let mut out = String::with_capacity(raw.get().len());
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_compact(&mut out, item.get());
    }
    out.push(']');
    Ok((out, items.len() as u64))
}

/// `{...data, key1: value1, ...}` in JavaScript's terms: the members of the object `data` in
/// their order, without the keys given, then the keys given with their values (raw JSON). This is
/// how OpenCode rebuilds a message or part from its row (FORMAT.md, "The TypeScript lineage").
pub fn spread_object(data: &str, add: &[(&str, &str)]) -> Result<String, BadJson> {
    let entries: Entries = serde_json::from_str(data).map_err(|e| {
        if e.is_data() {
            BadJson {
                line: e.line().max(1) as u64,
                reason: "not a JSON object".into(),
            }
        } else {
            not_json(e)
        }
    })?;
    let mut out = String::with_capacity(data.len() + 64);
    out.push('{');
    let mut first = true;
    for (key, value) in &entries.0 {
        if add.iter().any(|(k, _)| k == key) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&string(key));
        out.push(':');
        push_compact(&mut out, value.get());
    }
    for (key, value) in add {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&string(key));
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    Ok(out)
}

/// The members of a JSON object in document order, each value as raw text.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
            entries.push((k, v));
        }
        Ok(Entries(entries))
    }
}

impl<'de> de::Deserialize<'de> for Entries<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntriesVisitor)
    }
}

/// A JSON string literal.
pub fn string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// `time.created` and `time.updated` of an OpenCode object (milliseconds), when
/// they are numbers.
pub fn times(text: &str) -> (Option<i64>, Option<i64>) {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        time: Option<serde_json::Value>,
    }
    let Ok(head) = serde_json::from_str::<Head>(text) else {
        return (None, None);
    };
    let field = |name: &str| {
        let v = head.time.as_ref()?.get(name)?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    };
    (field("created"), field("updated"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacting_keeps_strings_and_order() {
        let pretty = "{\n  \"b\" : 1.50,\n  \"a\": [ 1, \"x y \\\" z\\\\\" ],\t\"c\": {}\r\n}";
        assert_eq!(
            compact_json(pretty),
            r#"{"b":1.50,"a":[1,"x y \" z\\"],"c":{}}"#
        );
    }

    #[test]
    fn objects_and_arrays_are_checked() {
        assert_eq!(object(" {\"a\" : 1}\n").unwrap(), r#"{"a":1}"#);
        assert_eq!(object("[1]").unwrap_err().reason, "not a JSON object");
        assert!(object("{\"a\":")
            .unwrap_err()
            .reason
            .starts_with("not JSON"));
        assert_eq!(
            array(r#"[ {"type":"text","data":{"text":"a b"}} , {"type":"finish"} ]"#).unwrap(),
            (
                r#"[{"type":"text","data":{"text":"a b"}},{"type":"finish"}]"#.to_string(),
                2
            )
        );
        assert_eq!(array("[]").unwrap(), ("[]".to_string(), 0));
        assert_eq!(array("{}").unwrap_err().reason, "not a JSON array");
        assert!(array("[{]").is_err());
        let e = object("{\n\"a\": 1,\n oops}").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(any_value(" 3 ").unwrap(), "3");
    }

    #[test]
    fn spreading_replaces_keys_and_keeps_the_rest() {
        let got = spread_object(
            r#"{"role":"user", "id":"old","time":{"created":5},"n":1.50}"#,
            &[("id", "\"msg_1\""), ("sessionID", "\"ses_1\"")],
        )
        .unwrap();
        assert_eq!(
            got,
            r#"{"role":"user","time":{"created":5},"n":1.50,"id":"msg_1","sessionID":"ses_1"}"#
        );
        assert_eq!(
            spread_object("{}", &[("id", "\"x\"")]).unwrap(),
            r#"{"id":"x"}"#
        );
        assert_eq!(
            spread_object("[1]", &[]).unwrap_err().reason,
            "not a JSON object"
        );
        assert!(spread_object("{\"a\":1", &[])
            .unwrap_err()
            .reason
            .starts_with("not JSON"));
        assert!(spread_object("{\"a\":1} x", &[])
            .unwrap_err()
            .reason
            .starts_with("not JSON"));
    }

    #[test]
    fn times_are_read_leniently() {
        assert_eq!(
            times(r#"{"id":"a","time":{"created":1700000000000,"updated":1.7e12}}"#),
            (Some(1_700_000_000_000), Some(1_700_000_000_000))
        );
        assert_eq!(times(r#"{"time":"yesterday"}"#), (None, None));
        assert_eq!(times(r#"{"id":"a"}"#), (None, None));
    }
}
