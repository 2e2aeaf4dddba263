//! A JSON object read as its fields' raw texts ([`Obj`]): a field is looked at only when the
//! mapping needs it, and a string it only copies (a tool's output, a text) is written as the
//! record holds it, not decoded and escaped again. Building a `Value` tree of every part, every
//! string decoded into its own allocation, was most of a mapping's time.
//!
//! The containers a mapping nests content in (its [`Expand::FIELDS`]) are read in the same pass
//! as the fields around them, not parsed again from their raw text at each level: a tool's
//! output, nested deep, is scanned once.
//!
//! What it reads is what a `Value` of the same text reads: the last of two fields of one name,
//! nothing of a value that is not an object; the text a string is written as is the one
//! `serde_json` would write for it ([`super::json_text`]).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{value, Name};
use crate::event::as_str;

/// The fields a mapping reads in the record's one pass, wherever they are: an object or array
/// as such, another value as a `Value`; every other field is kept as its raw text.
pub trait Expand: Clone + Default {
    const FIELDS: &'static [&'static str];
}

/// No field read in the same pass: every one kept as its raw text.
#[derive(Clone, Default)]
pub struct NoneExpanded;

impl Expand for NoneExpanded {
    const FIELDS: &'static [&'static str] = &[];
}

/// An object's fields, in their order; empty for what is not an object.
#[derive(Default, Clone)]
pub struct Obj<'a, E: Expand> {
    fields: Vec<(Cow<'a, str>, Val<'a, E>)>,
    expand: PhantomData<E>,
}

/// A field's value: its raw text, or (one of [`Expand::FIELDS`]) what it holds, read in the
/// same pass.
#[derive(Clone)]
pub enum Val<'a, E: Expand> {
    Raw(&'a RawValue),
    Obj(Obj<'a, E>),
    Arr(Vec<Part<'a, E>>),
    /// Boxed: rare, and a field's value stays the size of a `Vec`.
    Other(Box<Value>),
}

impl<'a, E: Expand> Val<'a, E> {
    /// The object it is (empty when it is none).
    pub fn as_obj(&self) -> Cow<'_, Obj<'a, E>> {
        match self {
            Val::Obj(o) => Cow::Borrowed(o),
            Val::Raw(r) => Cow::Owned(Obj::of(Some(r))),
            _ => Cow::Owned(Obj::default()),
        }
    }

    /// The items of the array it is (none when it is none).
    pub fn items(&self) -> Cow<'_, [Part<'a, E>]> {
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
            Val::Other(v) => (**v).clone(),
        }
    }
}

impl<'a, E: Expand> Obj<'a, E> {
    /// The object `raw` holds; empty when it holds another value (or nothing).
    pub fn of(raw: Option<&'a RawValue>) -> Obj<'a, E> {
        raw.filter(|r| r.get().starts_with('{'))
            .and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or_default()
    }

    /// Field `k` (the last, when it is written twice, as in a `Value`).
    pub fn field(&self, k: &str) -> Option<&Val<'a, E>> {
        self.fields.iter().rev().find(|(n, _)| n == k).map(|f| &f.1)
    }

    /// The raw value of field `k`, one not of [`Expand::FIELDS`].
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
    pub fn obj(&self, k: &str) -> Cow<'_, Obj<'a, E>> {
        match self.field(k) {
            Some(v) => v.as_obj(),
            None => Cow::Owned(Obj::default()),
        }
    }

    /// The items of the array field `k` (none when it is no array).
    pub fn items(&self, k: &str) -> Cow<'_, [Part<'a, E>]> {
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

    /// The fields, in their order (a name written twice is there twice).
    pub fn into_fields(self) -> Vec<(Cow<'a, str>, Val<'a, E>)> {
        self.fields
    }
}

/// An item of an array of [`Expand::FIELDS`] as the array is parsed, in the same pass: an
/// object's fields, or another value.
#[derive(Clone)]
pub struct Part<'a, E: Expand> {
    /// The fields (none for an item that is no object).
    fields: Obj<'a, E>,
    /// The item, when it is no object.
    other: Option<Box<Value>>,
}

impl<'a, E: Expand> Part<'a, E> {
    /// The item's fields (none for an item that is no object).
    pub fn obj(&self) -> &Obj<'a, E> {
        &self.fields
    }

    /// The item as a `Value`, the one a parse of its text makes.
    pub fn to_value(&self) -> Value {
        match &self.other {
            Some(v) => (**v).clone(),
            None => self.fields.to_value(),
        }
    }

    fn other(v: Value) -> Part<'a, E> {
        Part {
            fields: Obj::default(),
            other: Some(Box::new(v)),
        }
    }
}

/// A value of one of [`Expand::FIELDS`], read in the same pass.
struct Expanded<'a, E: Expand>(Val<'a, E>);

impl<'de: 'a, 'a, E: Expand> Deserialize<'de> for Expanded<'a, E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AnyVal<E>(PhantomData<E>);
        impl<'de, E: Expand> Visitor<'de> for AnyVal<E> {
            type Value = Val<'de, E>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Val<'de, E>, A::Error> {
                Fields(PhantomData).visit_map(map).map(Val::Obj)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de, E>, A::Error> {
                let mut items = Vec::new();
                while let Some(p) = seq.next_element::<Part<'de, E>>()? {
                    items.push(p);
                }
                Ok(Val::Arr(items))
            }
            fn visit_str<Er>(self, v: &str) -> Result<Val<'de, E>, Er> {
                Ok(Val::Other(Box::new(Value::String(v.to_string()))))
            }
            fn visit_bool<Er>(self, v: bool) -> Result<Val<'de, E>, Er> {
                Ok(Val::Other(Box::new(Value::Bool(v))))
            }
            fn visit_i64<Er>(self, v: i64) -> Result<Val<'de, E>, Er> {
                Ok(Val::Other(Box::new(Value::from(v))))
            }
            fn visit_u64<Er>(self, v: u64) -> Result<Val<'de, E>, Er> {
                Ok(Val::Other(Box::new(Value::from(v))))
            }
            fn visit_f64<Er>(self, v: f64) -> Result<Val<'de, E>, Er> {
                Ok(Val::Other(Box::new(Value::from(v))))
            }
            fn visit_unit<Er>(self) -> Result<Val<'de, E>, Er> {
                Ok(Val::Other(Box::new(Value::Null)))
            }
        }
        d.deserialize_any(AnyVal(PhantomData)).map(Expanded)
    }
}

impl<'de: 'a, 'a, E: Expand> Deserialize<'de> for Part<'a, E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AnyPart<E>(PhantomData<E>);
        impl<'de, E: Expand> Visitor<'de> for AnyPart<E> {
            type Value = Part<'de, E>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Part<'de, E>, A::Error> {
                let fields = Fields(PhantomData).visit_map(map)?;
                Ok(Part {
                    fields,
                    other: None,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Part<'de, E>, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    items.push(v);
                }
                Ok(Part::other(Value::Array(items)))
            }
            fn visit_str<Er>(self, v: &str) -> Result<Part<'de, E>, Er> {
                Ok(Part::other(Value::String(v.to_string())))
            }
            fn visit_bool<Er>(self, v: bool) -> Result<Part<'de, E>, Er> {
                Ok(Part::other(Value::Bool(v)))
            }
            fn visit_i64<Er>(self, v: i64) -> Result<Part<'de, E>, Er> {
                Ok(Part::other(Value::from(v)))
            }
            fn visit_u64<Er>(self, v: u64) -> Result<Part<'de, E>, Er> {
                Ok(Part::other(Value::from(v)))
            }
            fn visit_f64<Er>(self, v: f64) -> Result<Part<'de, E>, Er> {
                Ok(Part::other(Value::from(v)))
            }
            fn visit_unit<Er>(self) -> Result<Part<'de, E>, Er> {
                Ok(Part::other(Value::Null))
            }
        }
        d.deserialize_any(AnyPart(PhantomData))
    }
}

/// Reads an object's fields.
struct Fields<E>(PhantomData<E>);

impl<'de, E: Expand> Visitor<'de> for Fields<E> {
    type Value = Obj<'de, E>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Obj<'de, E>, A::Error> {
        let mut fields = Vec::new();
        while let Some(name) = map.next_key::<Name<'de>>()? {
            let v = if E::FIELDS.contains(&name.0.as_ref()) {
                map.next_value::<Expanded<'de, E>>()?.0
            } else {
                Val::Raw(map.next_value::<&'de RawValue>()?)
            };
            fields.push((name.0, v));
        }
        Ok(Obj {
            fields,
            expand: PhantomData,
        })
    }
}

impl<'de: 'a, 'a, E: Expand> Deserialize<'de> for Obj<'a, E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(Fields(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(t: &str) -> Box<RawValue> {
        RawValue::from_string(t.to_string()).unwrap()
    }

    /// Containers nested as Goose nests a tool's result.
    #[derive(Clone, Default)]
    struct Nested;

    impl Expand for Nested {
        const FIELDS: &'static [&'static str] = &["content", "toolCall", "toolResult", "value"];
    }

    #[test]
    fn fields_read_as_a_value_reads_them() {
        let r = raw(r#"{"a":"x","b":{"c":true},"a":"y","d":1,"e\"":"q"}"#);
        let o: Obj<NoneExpanded> = Obj::of(Some(&r));
        assert_eq!(o.str("a").as_deref(), Some("y"));
        assert_eq!(o.obj("b").bool("c"), Some(true));
        assert_eq!(o.obj("b").get("c").map(RawValue::get), Some("true"));
        assert_eq!(o.str("d"), None);
        assert_eq!(o.str("e\"").as_deref(), Some("q"));
        assert_eq!(o.value("d"), Some(serde_json::json!(1)));
        assert!(Obj::<NoneExpanded>::of(Some(&raw("[1]")))
            .get("a")
            .is_none());
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
            let p: Part<Nested> = serde_json::from_str(t).unwrap();
            let v: Value = serde_json::from_str(t).unwrap();
            assert_eq!(p.to_value(), v, "{t}");
            assert_eq!(p.to_value().to_string(), v.to_string(), "{t}");
        }
    }

    #[test]
    fn expanded_fields_read_as_a_value_reads_them() {
        let t = r#"{"content":[{"type":"text","text":"a\nb","value":[1,{"c":2}]},3],"toolCall":5,"toolResult":{"value":{"content":"x","isError":true}},"value":null,"content2":{"z":1}}"#;
        let p: Part<Nested> = serde_json::from_str(t).unwrap();
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
}
