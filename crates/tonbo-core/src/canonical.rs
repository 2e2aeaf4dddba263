//! What `serde_json::Value`'s text of a raw JSON object is (its keys sorted, no spaces), written
//! from the raw text without building the `Value`, for the plain objects tool arguments and
//! token counts are: strings whose escapes are serde_json's own, integers, `true`, `false`,
//! `null`, and arrays and objects of them. Anything else (a float, a key written twice or with
//! an escape, a string escaped otherwise) is left to the `Value` (`None`).

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::raw::Name;

/// `raw`'s text as `serde_json::Value` writes it, when `raw` is a plain object (module doc);
/// `None` otherwise.
pub fn object_text(raw: &RawValue) -> Option<String> {
    if !raw.get().starts_with('{') {
        return None;
    }
    let mut out = String::with_capacity(raw.get().len());
    write_value(&mut out, raw)?;
    Some(out)
}

/// Appends the text of the JSON value `value`, as `Value` writes it.
fn write_value(out: &mut String, value: &RawValue) -> Option<()> {
    let raw = value.get();
    match raw.as_bytes().first()? {
        b'"' => {
            if !matches!(crate::raw::json_text(Some(value)), Cow::Borrowed(_)) {
                return None;
            }
            out.push_str(raw);
        }
        b't' | b'f' | b'n' => out.push_str(raw),
        b'{' => {
            let mut fields: Vec<(Cow<str>, &RawValue)> = serde_json::Deserializer::from_str(raw)
                .deserialize_map(Fields)
                .ok()?;
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            if fields.windows(2).any(|w| w[0].0 == w[1].0) {
                return None;
            }
            out.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let Cow::Borrowed(key) = key else {
                    return None;
                };
                out.push('"');
                out.push_str(key);
                out.push_str("\":");
                write_value(out, value)?;
            }
            out.push('}');
        }
        b'[' => {
            let items: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        _ => {
            if !plain_integer(raw) {
                return None;
            }
            out.push_str(raw);
        }
    }
    Some(())
}

/// An integer a `Value` holds as `u64` or `i64` and writes back alike.
fn plain_integer(t: &str) -> bool {
    let digits = t.strip_prefix('-').unwrap_or(t);
    let max = if digits.len() < t.len() { 18 } else { 19 };
    !digits.is_empty()
        && digits.len() <= max
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && digits.len() == t.len() || !digits.starts_with('0'))
}

/// An object's fields in their order, values raw; a key with an escape is owned.
struct Fields;

impl<'de> Visitor<'de> for Fields {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(Name(key)) = map.next_key::<Name>()? {
            fields.push((key, map.next_value::<&RawValue>()?));
        }
        Ok(fields)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(serde::de::Error::custom("not an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_text(raw: &str) -> String {
        serde_json::from_str::<serde_json::Value>(raw)
            .unwrap()
            .to_string()
    }

    fn object_text(raw: &str) -> Option<String> {
        let raw: &RawValue = serde_json::from_str(raw).unwrap();
        super::object_text(raw)
    }

    #[test]
    fn plain_objects_are_written_as_a_value_writes_them() {
        for raw in [
            r#"{}"#,
            r#"{"command":"ls -la"}"#,
            r#"{ "b" : 1, "a" : [ true, null, -5, 0, "x\"\n" ], "c": {"z":{}, "y":[]} }"#,
            r#"{"é":"日本","e":"\u001b","E":1844674407370955161}"#,
            r#"{"n":-922337203685477580}"#,
        ] {
            let want = value_text(raw);
            match object_text(raw) {
                Some(got) => assert_eq!(got, want, "{raw}"),
                None => panic!("{raw} left to the Value"),
            }
        }
    }

    #[test]
    fn anything_else_is_left_to_the_value() {
        for raw in [
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"\u0061":1}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":123456789012345678901}"#,
            r#"[1]"#,
            r#""s""#,
        ] {
            assert_eq!(object_text(raw), None, "{raw}");
        }
    }
}
