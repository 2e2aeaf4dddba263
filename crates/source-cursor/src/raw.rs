//! A JSON object read as its fields' raw texts ([`Obj`]), for a message (bubble): a field is
//! looked at only when the mapping needs it, and a string it only copies (a tool's output, a
//! text) is written as the record holds it, not decoded and escaped again. Building a `Value`
//! tree of every part, every string decoded into its own allocation, was most of the mapping's
//! time.
//!
//! What it reads is what a `Value` of the same text reads: the last of two fields of one name,
//! nothing of a value that is not an object; the text a string is written as is the one
//! `serde_json` would write for it ([`json_text`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use tonbo_core::event::{as_str, json_str};

/// An object's fields as raw values, in their order; empty for what is not an object.
#[derive(Default)]
pub struct Obj<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Obj<'a> {
    /// The object `raw` holds; empty when it holds another value (or nothing).
    pub fn of(raw: Option<&'a RawValue>) -> Obj<'a> {
        raw.filter(|r| r.get().starts_with('{'))
            .and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or_default()
    }

    /// The raw value of field `k` (the last, when it is written twice, as in a `Value`).
    pub fn get(&self, k: &str) -> Option<&'a RawValue> {
        self.fields.iter().rev().find(|(n, _)| n == k).map(|f| f.1)
    }

    /// Field `k`, when it is a string.
    pub fn str(&self, k: &str) -> Option<Cow<'a, str>> {
        self.get(k).and_then(as_str)
    }

    /// Field `k` as an object (empty when it is none).
    pub fn obj(&self, k: &str) -> Obj<'a> {
        Obj::of(self.get(k))
    }

    /// Field `k` as a `Value`, for what is written out as `serde_json` writes it (keys sorted,
    /// numbers respelled).
    pub fn value(&self, k: &str) -> Option<Value> {
        self.get(k).map(value)
    }
}

/// A raw value as a `Value` (it is valid JSON: it was read as one).
pub fn value(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// The JSON string literal `serde_json` writes for the string `raw` holds: `raw` itself when
/// its escapes are the ones `serde_json` writes (nearly always), else the string decoded and
/// escaped again; `""` when `raw` holds no string.
pub fn json_text(raw: Option<&RawValue>) -> Cow<'_, str> {
    let Some(raw) = raw.filter(|r| r.get().starts_with('"')) else {
        return Cow::Borrowed("\"\"");
    };
    if escapes_are_canonical(raw.get()) {
        return Cow::Borrowed(raw.get());
    }
    match as_str(raw) {
        Some(s) => Cow::Owned(json_str(&s)),
        None => Cow::Borrowed("\"\""),
    }
}

/// Whether every escape of a JSON string literal is the one `serde_json` (and
/// [`tonbo_core::event::push_json_str`]) writes: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, and
/// `\u00xx` (lowercase) for the other control characters. Nothing else needs escaping, so such
/// a literal is what escaping its decoded text writes.
fn escapes_are_canonical(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(at) = memchr::memchr(b'\\', &b[from..]) {
        let i = from + at;
        match b.get(i + 1) {
            Some(b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f') => from = i + 2,
            Some(b'u') => {
                let Some(hex) = b.get(i + 2..i + 6) else {
                    return false;
                };
                let lower_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
                if hex[0] != b'0' || hex[1] != b'0' || !matches!(hex[2], b'0' | b'1') {
                    return false;
                }
                if !lower_hex(hex[3]) {
                    return false;
                }
                let code = (hex[2] - b'0') * 16
                    + if hex[3].is_ascii_digit() {
                        hex[3] - b'0'
                    } else {
                        hex[3] - b'a' + 10
                    };
                // These have short escapes.
                if matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                    return false;
                }
                from = i + 6;
            }
            _ => return false,
        }
    }
    true
}

/// Whether a record's text holds an escaped surrogate (`\ud800`..`\udfff`): a `Value` of it
/// refuses a lone one, which raw values let through, so such a record is checked whole.
pub fn has_surrogate_escape(text: &str) -> bool {
    memchr::memmem::find_iter(text.as_bytes(), b"\\u").any(|i| {
        matches!(text.as_bytes().get(i + 2), Some(b'd' | b'D'))
            && matches!(
                text.as_bytes().get(i + 3),
                Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
            )
    })
}

/// Reads an object's fields.
struct Fields;

impl<'de> Visitor<'de> for Fields {
    type Value = Obj<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Obj<'de>, A::Error> {
        let mut fields = Vec::new();
        while let Some(name) = map.next_key::<Name<'de>>()? {
            fields.push((name.0, map.next_value::<&'de RawValue>()?));
        }
        Ok(Obj { fields })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Obj<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(Fields)
    }
}

/// A field's name, borrowed from the text unless it holds an escape.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct N;
        impl<'de> Visitor<'de> for N {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(N)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(t: &str) -> Box<RawValue> {
        RawValue::from_string(t.to_string()).unwrap()
    }

    #[test]
    fn string_texts_are_what_serde_json_writes() {
        for t in [
            r#""plain""#,
            r#""a\"b\\c\n\r\t\b\f""#,
            r#""\u001b\u0000\u001f""#,
            r#""\u001B""#,
            r#""\/""#,
            r#""\u00e9 \u003c""#,
            r#""\u000a""#,
            r#""\ud83d\ude00""#,
            r#""é😀""#,
        ] {
            let r = raw(t);
            let decoded: String = serde_json::from_str(t).unwrap();
            assert_eq!(json_text(Some(&r)), json_str(&decoded), "{t}");
        }
        assert_eq!(json_text(Some(&raw("5"))), "\"\"");
        assert_eq!(json_text(None), "\"\"");
    }

    #[test]
    fn fields_read_as_a_value_reads_them() {
        let r = raw(r#"{"a":"x","b":{"c":true},"a":"y","d":1,"e\"":"q"}"#);
        let o = Obj::of(Some(&r));
        assert_eq!(o.str("a").as_deref(), Some("y"));
        assert_eq!(o.obj("b").get("c").map(RawValue::get), Some("true"));
        assert_eq!(o.str("d"), None);
        assert_eq!(o.str("e\"").as_deref(), Some("q"));
        assert_eq!(o.value("d"), Some(serde_json::json!(1)));
        assert!(Obj::of(Some(&raw("[1]"))).get("a").is_none());
    }

    #[test]
    fn surrogate_escapes_are_found() {
        assert!(has_surrogate_escape(r#"{"a":"\ud800"}"#));
        assert!(has_surrogate_escape(r#"{"a":"\uDFFF"}"#));
        assert!(!has_surrogate_escape(r#"{"a":"\u00e9"}"#));
    }
}
