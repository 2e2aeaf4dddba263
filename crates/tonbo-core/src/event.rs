//! Writes one Durable Sessions event as JSON text, splicing raw source values in unchanged.
//!
//! Mappings copy large values (tool output, base64 images, thinking text) from the source line
//! as raw JSON instead of decoding and re-encoding them. [`EventBuf`] builds one event;
//! [`crate::mapping::EventWriter`] stamps the envelope every source's events share.

use serde_json::value::RawValue;

/// An event under construction: `{"type":..., fields..., "metadata":{...}}`.
pub struct EventBuf {
    buf: String,
    meta: String,
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly as JSON requires; writing to a String cannot fail.
    out.push_str(&serde_json::to_string(s).expect("a str serialises"));
}

impl EventBuf {
    pub fn new(kind: &str) -> EventBuf {
        let mut buf = String::with_capacity(256);
        buf.push_str("{\"type\":");
        push_json_str(&mut buf, kind);
        EventBuf {
            buf,
            meta: String::with_capacity(256),
        }
    }

    fn key(out: &mut String, first: bool, k: &str) {
        if !first {
            out.push(',');
        }
        push_json_str(out, k);
        out.push(':');
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        Self::key(&mut self.buf, false, k);
        push_json_str(&mut self.buf, v);
        self
    }

    /// A field whose value is already JSON text (a raw source value, or built JSON).
    pub fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        Self::key(&mut self.buf, false, k);
        self.buf.push_str(json);
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.raw(k, if v { "true" } else { "false" })
    }

    pub fn meta_str(&mut self, k: &str, v: &str) -> &mut Self {
        let first = self.meta.is_empty();
        Self::key(&mut self.meta, first, k);
        push_json_str(&mut self.meta, v);
        self
    }

    pub fn meta_raw(&mut self, k: &str, json: &str) -> &mut Self {
        let first = self.meta.is_empty();
        Self::key(&mut self.meta, first, k);
        self.meta.push_str(json);
        self
    }

    pub fn meta_opt(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v {
            self.meta_str(k, v);
        }
        self
    }

    /// Closes the event and returns it as a raw JSON value.
    pub fn finish(&mut self) -> Box<RawValue> {
        let mut out = std::mem::take(&mut self.buf);
        out.push_str(",\"metadata\":{");
        out.push_str(&self.meta);
        out.push_str("}}");
        RawValue::from_string(out).expect("EventBuf writes valid JSON")
    }
}

/// `[{"type":"text","text":<raw JSON string>}]` from a raw JSON string value.
pub fn text_content(raw_string: &str) -> String {
    let mut s = String::with_capacity(raw_string.len() + 32);
    s.push_str("[{\"type\":\"text\",\"text\":");
    s.push_str(raw_string);
    s.push_str("}]");
    s
}

/// Whether a raw JSON string value holds only whitespace (or nothing). Stops at the first
/// character that is not whitespace, so text costs a byte or two; escapes other than `\n`,
/// `\t`, `\r` and non-ASCII text are decoded to be sure.
pub fn is_blank_json_str(raw: &str) -> bool {
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return false;
    };
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'\\' if matches!(bytes.get(i + 1), Some(b'n' | b't' | b'r')) => i += 2,
            b'\\' | 0x80.. => {
                return serde_json::from_str::<std::borrow::Cow<str>>(raw)
                    .is_ok_and(|s| s.trim().is_empty())
            }
            _ => return false,
        }
    }
    true
}

/// A stable key for lines that carry no id of their own (FNV-1a, shared with the other stages).
pub use crate::contract::stable_hash as fnv64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_valid_json_with_raw_parts() {
        let mut e = EventBuf::new("agent.message");
        e.raw("content", &text_content(r#""a \"quoted\" é""#))
            .bool("is_error", false);
        e.meta_str("source", "claude-code")
            .meta_opt("model", None)
            .meta_raw("n", "1.50");
        let raw = e.finish();
        let v: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(v["content"][0]["text"], "a \"quoted\" é");
        assert_eq!(v["metadata"]["source"], "claude-code");
        assert!(raw.get().ends_with(r#""n":1.50}}"#));
        assert_eq!(fnv64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn blank_strings() {
        for blank in [
            r#""""#,
            r#"" ""#,
            r#""\n\n""#,
            r#"" \t\r\n ""#,
            r#""\u0020\u3000""#,
            "\"\u{3000}\"",
        ] {
            assert!(is_blank_json_str(blank), "{blank}");
        }
        for text in [r#""a""#, r#""\n\nx""#, r#""\u0041""#, r#""é""#, "null", "1"] {
            assert!(!is_blank_json_str(text), "{text}");
        }
    }
}
