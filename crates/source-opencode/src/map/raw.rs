//! A part read as its fields' raw texts ([`Obj`], tonbo_core's one-pass object reader): a
//! field is looked at only when the mapping needs it, and a string it only copies (a tool's
//! output, a text) is written as the record holds it. The object a tool part keeps its call and
//! result in ([`State`]) is read in the same pass as the fields around it: a tool's output is
//! scanned once.

use serde_json::value::RawValue;
pub use tonbo_core::raw::{has_surrogate_escape, json_text, value};
use tonbo_core::raw::{Expand, NoneExpanded, Val};

/// The field that holds the object a tool part nests its call and result in.
#[derive(Clone, Default)]
pub struct State;

impl Expand for State {
    const FIELDS: &'static [&'static str] = &["state"];
}

/// An object's fields, [`State`] read in the same pass.
pub type Obj<'a> = tonbo_core::raw::Obj<'a, State>;
/// A message's part.
pub type Part<'a> = tonbo_core::raw::Part<'a, State>;

/// The text `serde_json` writes for a `Value` of `raw` (keys sorted, the last of two of one
/// name; numbers respelled), written without building the `Value`: strings are copied as
/// [`json_text`] copies them, and only a number that may be respelled goes through one.
pub fn value_text(raw: &RawValue) -> String {
    let mut out = String::with_capacity(raw.get().len());
    push_value_text(&mut out, raw);
    out
}

fn push_value_text(out: &mut String, raw: &RawValue) {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            let Ok(o) = serde_json::from_str::<tonbo_core::raw::Obj<NoneExpanded>>(text) else {
                out.push_str(&value(raw).to_string());
                return;
            };
            let mut fields = o.into_fields();
            // Stable: of two fields of one name the later stays later, and is the one kept.
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            let mut first = true;
            for (i, (k, v)) in fields.iter().enumerate() {
                if fields.get(i + 1).is_some_and(|next| next.0 == *k) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                tonbo_core::event::push_json_str(out, k);
                out.push(':');
                match v {
                    Val::Raw(r) => push_value_text(out, r),
                    read => out.push_str(&read.to_value().to_string()),
                }
            }
            out.push('}');
        }
        Some(b'[') => {
            let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) else {
                out.push_str(&value(raw).to_string());
                return;
            };
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value_text(out, item);
            }
            out.push(']');
        }
        Some(b'"') => out.push_str(&json_text(Some(raw))),
        _ if matches!(text, "true" | "false" | "null") || plain_integer(text) => out.push_str(text),
        _ => out.push_str(&value(raw).to_string()),
    }
}

/// An integer `serde_json` writes back as it is: no sign but `-`, no fraction or exponent, no
/// leading zero, no `-0`, and short enough to be an `i64` or `u64`.
fn plain_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn expanded_fields_read_as_a_value_reads_them() {
        let t = r#"{"type":"tool","state":{"status":"completed","output":"a\nb","time":{"start":1},"input":{"b":1,"a":2}},"x":[1,{"state":"s"}]}"#;
        let p: Part = serde_json::from_str(t).unwrap();
        let v: Value = serde_json::from_str(t).unwrap();
        assert_eq!(p.to_value(), v);
        assert_eq!(p.to_value().to_string(), v.to_string());
        let state = p.obj().obj("state");
        assert_eq!(state.str("output").as_deref(), Some("a\nb"));
        assert_eq!(state.obj("time").value("start"), Some(serde_json::json!(1)));
        assert_eq!(value_text(state.get("input").unwrap()), r#"{"a":2,"b":1}"#);
        assert!(p.obj().get("state").is_none());
    }

    #[test]
    fn value_texts_are_what_serde_json_writes() {
        for t in [
            r#"{"b":1,"a":{"y":[1,2.5,"s\/",{"q":-0}],"x":null},"b":2,"\u0061":true}"#,
            r#"{"filePath":"C:\\a\nb","offset":10,"limit":1e3,"big":123456789012345678901}"#,
            r#"[-7,0,12,1.50,-1.0e-5,"\u00e9\u001f",[],{}]"#,
            r#""x""#,
            "false",
            "-0",
            "9223372036854775807",
            "18446744073709551615",
        ] {
            let raw: &RawValue = serde_json::from_str(t).unwrap();
            let v: Value = serde_json::from_str(t).unwrap();
            assert_eq!(value_text(raw), v.to_string(), "{t}");
        }
    }
}
