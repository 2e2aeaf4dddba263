//! A JSON object read as its fields' raw texts ([`Obj`]), for messages and their content: a field is
//! looked at only when the mapping needs it, and a string it only copies (a tool's output, a
//! text) is written as the record holds it, not decoded and escaped again. Building a `Value`
//! tree of every part, every string decoded into its own allocation, was most of the mapping's
//! time.
//!
//! The containers a message nests a tool's result in ([`EXPANDED`]) are read in the same pass as
//! the fields around them, not parsed again from their raw text at each level: a tool's output,
//! nested five deep, is scanned once.
//!
//! What it reads is what a `Value` of the same text reads: the last of two fields of one name,
//! nothing of a value that is not an object; the text a string is written as is the one
//! `serde_json` would write for it ([`json_text`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use tonbo_core::event::as_str;
use tonbo_core::raw::Name;
pub use tonbo_core::raw::{has_surrogate_escape, json_text, value};

/// The fields that hold the containers a message nests its content and tool results in: read
/// in the record's one pass (an object or array as such, another value as a `Value`); every
/// other field is kept as its raw text.
const EXPANDED: &[&str] = &["content", "toolCall", "toolResult", "value"];

/// An object's fields, in their order; empty for what is not an object.
#[derive(Default, Clone)]
pub struct Obj<'a> {
    fields: Vec<(Cow<'a, str>, Val<'a>)>,
}

/// A field's value: its raw text, or (an [`EXPANDED`] field) what it holds, read in the same
/// pass.
#[derive(Clone)]
pub enum Val<'a> {
    Raw(&'a RawValue),
    Obj(Obj<'a>),
    Arr(Vec<Part<'a>>),
    Other(Value),
}

impl<'a> Val<'a> {
    /// The object it is (empty when it is none).
    pub fn as_obj(&self) -> Cow<'_, Obj<'a>> {
        match self {
            Val::Obj(o) => Cow::Borrowed(o),
            Val::Raw(r) => Cow::Owned(Obj::of(Some(r))),
            _ => Cow::Owned(Obj::default()),
        }
    }

    /// The items of the array it is (none when it is none).
    pub fn items(&self) -> Cow<'_, [Part<'a>]> {
        match self {
            Val::Arr(items) => Cow::Borrowed(items),
            Val::Raw(r) if r.get().starts_with('[') => {
                Cow::Owned(serde_json::from_str(r.get()).unwrap_or_default())
            }
            _ => Cow::Owned(Vec::new()),
        }
    }

    /// It as a `Value`, the one a parse of its text makes.
    pub fn to_value(&self) -> Value {
        match self {
            Val::Raw(r) => value(r),
            Val::Obj(o) => o.to_value(),
            Val::Arr(items) => Value::Array(items.iter().map(Part::to_value).collect()),
            Val::Other(v) => v.clone(),
        }
    }
}

impl<'a> Obj<'a> {
    /// The object `raw` holds; empty when it holds another value (or nothing).
    pub fn of(raw: Option<&'a RawValue>) -> Obj<'a> {
        raw.filter(|r| r.get().starts_with('{'))
            .and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or_default()
    }

    /// Field `k` (the last, when it is written twice, as in a `Value`).
    pub fn field(&self, k: &str) -> Option<&Val<'a>> {
        self.fields.iter().rev().find(|(n, _)| n == k).map(|f| &f.1)
    }

    /// The raw value of field `k`, one not [`EXPANDED`].
    pub fn get(&self, k: &str) -> Option<&'a RawValue> {
        match self.field(k)? {
            Val::Raw(r) => Some(r),
            _ => None,
        }
    }

    /// Field `k`, when it is a string.
    pub fn str(&self, k: &str) -> Option<Cow<'a, str>> {
        self.get(k).and_then(as_str)
    }

    /// Field `k` as an object (empty when it is none).
    pub fn obj(&self, k: &str) -> Cow<'_, Obj<'a>> {
        match self.field(k) {
            Some(v) => v.as_obj(),
            None => Cow::Owned(Obj::default()),
        }
    }

    /// The items of the array field `k` (none when it is no array).
    pub fn items(&self, k: &str) -> Cow<'_, [Part<'a>]> {
        match self.field(k) {
            Some(v) => v.items(),
            None => Cow::Owned(Vec::new()),
        }
    }

    /// Field `k`, when it is `true` or `false`.
    pub fn bool(&self, k: &str) -> Option<bool> {
        match self.field(k)? {
            Val::Raw(r) => match r.get() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            Val::Other(v) => v.as_bool(),
            _ => None,
        }
    }

    /// Field `k` as a `Value`, for what is written out as `serde_json` writes it (keys sorted,
    /// numbers respelled).
    pub fn value(&self, k: &str) -> Option<Value> {
        self.field(k).map(Val::to_value)
    }

    /// The object as a `Value`, the one a parse of its text makes (the last of two fields of
    /// one name).
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_value()))
                .collect(),
        )
    }
}

/// A content item as the content is parsed, in the same pass: an object's fields, or (never
/// written by Goose, but read alike) another value.
#[derive(Clone)]
pub enum Part<'a> {
    Obj(Obj<'a>),
    Other(Value),
}

impl<'a> Part<'a> {
    /// The part's fields (none for a part that is no object).
    pub fn obj(&self) -> &Obj<'a> {
        static NONE: Obj<'static> = Obj { fields: Vec::new() };
        match self {
            Part::Obj(o) => o,
            Part::Other(_) => &NONE,
        }
    }

    /// The part as a `Value`, the one a parse of its text makes.
    pub fn to_value(&self) -> Value {
        match self {
            Part::Obj(o) => o.to_value(),
            Part::Other(v) => v.clone(),
        }
    }
}

/// An [`EXPANDED`] field's value, read in the same pass.
struct Expanded<'a>(Val<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Expanded<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AnyVal;
        impl<'de> Visitor<'de> for AnyVal {
            type Value = Val<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Val<'de>, A::Error> {
                Fields.visit_map(map).map(Val::Obj)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(p) = seq.next_element::<Part<'de>>()? {
                    items.push(p);
                }
                Ok(Val::Arr(items))
            }
            fn visit_str<E>(self, v: &str) -> Result<Val<'de>, E> {
                Ok(Val::Other(Value::String(v.to_string())))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Val<'de>, E> {
                Ok(Val::Other(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Val<'de>, E> {
                Ok(Val::Other(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Val<'de>, E> {
                Ok(Val::Other(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Val<'de>, E> {
                Ok(Val::Other(Value::from(v)))
            }
            fn visit_unit<E>(self) -> Result<Val<'de>, E> {
                Ok(Val::Other(Value::Null))
            }
        }
        d.deserialize_any(AnyVal).map(Expanded)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Part<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AnyPart;
        impl<'de> Visitor<'de> for AnyPart {
            type Value = Part<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Part<'de>, A::Error> {
                Fields.visit_map(map).map(Part::Obj)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Part<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    items.push(v);
                }
                Ok(Part::Other(Value::Array(items)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Part<'de>, E> {
                Ok(Part::Other(Value::String(v.to_string())))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Part<'de>, E> {
                Ok(Part::Other(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Part<'de>, E> {
                Ok(Part::Other(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Part<'de>, E> {
                Ok(Part::Other(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Part<'de>, E> {
                Ok(Part::Other(Value::from(v)))
            }
            fn visit_unit<E>(self) -> Result<Part<'de>, E> {
                Ok(Part::Other(Value::Null))
            }
        }
        d.deserialize_any(AnyPart)
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
            let v = if EXPANDED.contains(&name.0.as_ref()) {
                map.next_value::<Expanded<'de>>()?.0
            } else {
                Val::Raw(map.next_value::<&'de RawValue>()?)
            };
            fields.push((name.0, v));
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
        assert_eq!(o.obj("b").bool("c"), Some(true));
        assert_eq!(o.str("d"), None);
        assert_eq!(o.str("e\"").as_deref(), Some("q"));
        assert_eq!(o.value("d"), Some(serde_json::json!(1)));
        assert!(Obj::of(Some(&raw("[1]"))).get("a").is_none());
    }

    #[test]
    fn parts_are_the_values_their_texts_are() {
        for t in [
            r#"{"b":1,"a":{"x":[1,2.5,"s"]},"b":2}"#,
            r#"[1,{"a":null}]"#,
            r#""s\n""#,
            "true",
            "null",
            "-3",
            "18446744073709551615",
            "1e3",
        ] {
            let p: Part = serde_json::from_str(t).unwrap();
            let v: Value = serde_json::from_str(t).unwrap();
            assert_eq!(p.to_value(), v, "{t}");
            assert_eq!(p.to_value().to_string(), v.to_string(), "{t}");
        }
    }

    #[test]
    fn expanded_fields_read_as_a_value_reads_them() {
        let t = r#"{"content":[{"type":"text","text":"a\nb","value":[1,{"c":2}]},3],"toolCall":5,"toolResult":{"value":{"content":"x","isError":true}},"value":null,"content2":{"z":1}}"#;
        let p: Part = serde_json::from_str(t).unwrap();
        let v: Value = serde_json::from_str(t).unwrap();
        assert_eq!(p.to_value(), v);
        assert_eq!(p.to_value().to_string(), v.to_string());
        let o = p.obj();
        assert_eq!(o.items("content").len(), 2);
        assert_eq!(
            o.items("content")[0].obj().str("text").as_deref(),
            Some("a\nb")
        );
        let result = o.obj("toolResult");
        assert_eq!(result.obj("value").bool("isError"), Some(true));
        assert!(result.obj("value").items("content").is_empty());
        assert!(o.obj("toolCall").field("x").is_none());
        assert!(o.get("content").is_none());
    }

    #[test]
    fn surrogate_escapes_are_found() {
        assert!(has_surrogate_escape(r#"{"a":"\ud800"}"#));
        assert!(has_surrogate_escape(r#"{"a":"\uDFFF"}"#));
        assert!(!has_surrogate_escape(r#"{"a":"\u00e9"}"#));
    }
}
