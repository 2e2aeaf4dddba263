//! Raw JSON text read and copied without building a `Value`: what the mappings that keep a
//! record's parts as raw field texts share, with their object reader ([`Obj`], told by each
//! mapping which fields it reads in the same pass). A string the mapping only copies is
//! written as the record holds it when that is what serde_json would write for it
//! ([`json_text`]), so output stays what decoding and escaping it again gave.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::event::{as_str, json_str};

mod obj;
pub use obj::{Expand, NoneExpanded, Obj, Part, Val};

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
/// [`crate::event::push_json_str`]) writes: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, and
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

/// For an `Option<Cow<str>>` field of a typed record, as
/// `#[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]`: the string is
/// borrowed from the text unless it holds an escape. serde borrows a `Cow<str>` field marked
/// `borrow`, but decodes one inside an `Option` into a new `String` every time, which was an
/// allocation per field of every record.
pub fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    struct S;
    impl<'de> Visitor<'de> for S {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
            Ok(Cow::Owned(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
            Ok(Cow::Owned(v))
        }
    }
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(S).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// An object's field name, borrowed from the text unless it holds an escape.
pub struct Name<'a>(pub Cow<'a, str>);

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
    fn optional_strings_are_borrowed_unless_escaped() {
        #[derive(serde::Deserialize)]
        struct R<'a> {
            #[serde(borrow, default, deserialize_with = "opt_str")]
            a: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "opt_str")]
            b: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "opt_str")]
            c: Option<Cow<'a, str>>,
            #[serde(borrow, default, deserialize_with = "opt_str")]
            d: Option<Cow<'a, str>>,
        }
        let r: R = serde_json::from_str(r#"{"a":"plain","b":"t\u00e9","c":null}"#).unwrap();
        assert!(matches!(r.a, Some(Cow::Borrowed("plain"))));
        assert!(matches!(r.b, Some(Cow::Owned(ref b)) if b == "té"));
        assert!(r.c.is_none() && r.d.is_none());
        let e = serde_json::from_str::<R>(r#"{"a":5}"#).err().unwrap();
        assert!(
            e.to_string()
                .starts_with("invalid type: integer `5`, expected a string"),
            "{e}"
        );
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
    fn strings_read_as_event_as_str_reads_them() {
        for t in [
            r#""plain é""#,
            r#""a\nb\"""#,
            r#""\u0041""#,
            "1",
            "{}",
            r#""""#,
        ] {
            let r = raw(t);
            assert_eq!(as_str(&r), as_str(&r), "{t}");
        }
        assert!(matches!(as_str(&raw(r#""x""#)), Some(Cow::Borrowed("x"))));
    }

    #[test]
    fn surrogate_escapes_are_found() {
        assert!(has_surrogate_escape(r#""\ud83d\ude00""#));
        assert!(has_surrogate_escape(r#""\uDC00""#));
        assert!(!has_surrogate_escape(r#""\u00e9 \u0041 d800""#));
        assert!(!has_surrogate_escape(r#""\u0041""#));
    }
}
