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
use tonbo_core::event::as_str;
use tonbo_core::raw::Name;
pub use tonbo_core::raw::{has_surrogate_escape, json_text, value};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(t: &str) -> Box<RawValue> {
        RawValue::from_string(t.to_string()).unwrap()
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
