//! Checks on one line of a transcript file, shared by the readers: it must be one JSON object,
//! passed on byte for byte; and compacting pretty-printed JSON documents into one line.

use serde_json::value::RawValue;

/// Why a line cannot be passed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Not UTF-8 or not JSON: a torn last line if the line has no newline.
    NotJson(String),
    /// Valid JSON, but not an object: every transcript line is one.
    NotObject,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::NotJson(why) => f.write_str(why),
            LineError::NotObject => f.write_str("not a JSON object (every transcript line is one)"),
        }
    }
}

/// Checks that a line is one JSON object and returns it as raw JSON, byte for byte. The `type`
/// is not looked at: unknown types pass on unchanged.
pub fn check_line(bytes: &[u8]) -> Result<&RawValue, LineError> {
    // simdutf8 checks at memory speed; std's error, only on failure, says where.
    let text = match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            let at = std::str::from_utf8(bytes)
                .err()
                .map_or(0, |e| e.valid_up_to());
            return Err(LineError::NotJson(format!("invalid UTF-8 at byte {at}")));
        }
    };
    let raw: &RawValue =
        serde_json::from_str(text).map_err(|e| LineError::NotJson(format!("not JSON: {e}")))?;
    if raw.get().starts_with('{') {
        Ok(raw)
    } else {
        Err(LineError::NotObject)
    }
}

/// Removes the whitespace between tokens of valid JSON text, keeping everything else (key
/// order, number spelling, string escapes) as written.
pub fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    push_compact(&mut out, json);
    out
}

/// [`compact_json`], appending to `out`.
pub fn push_compact(out: &mut String, json: &str) {
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_and_kept_byte_for_byte() {
        let line = br#"{"type": "user" , "n":1.50, "x":"\u00e9"}"#;
        assert_eq!(check_line(line).unwrap().get().as_bytes(), line);
        assert_eq!(
            check_line(br#"{"type":"some-new-type"}"#).unwrap().get(),
            r#"{"type":"some-new-type"}"#
        );
        assert_eq!(check_line(b"[1,2]").unwrap_err(), LineError::NotObject);
        assert_eq!(check_line(b"\"s\"").unwrap_err(), LineError::NotObject);
        assert!(matches!(
            check_line(b"{\"a\":\"\xff\"}").unwrap_err(),
            LineError::NotJson(m) if m.contains("UTF-8")
        ));
        assert!(matches!(
            check_line(br#"{"a":1"#).unwrap_err(),
            LineError::NotJson(m) if m.starts_with("not JSON")
        ));
        assert!(matches!(
            check_line(br#"{"a":1} {"b":2}"#),
            Err(LineError::NotJson(_))
        ));
    }

    #[test]
    fn compacting_keeps_strings_and_order() {
        let pretty = "{\n  \"b\" : 1.50,\n  \"a\": [ 1, \"x y \\\" z\\\\\" ],\t\"c\": {}\r\n}";
        let c = compact_json(pretty);
        assert_eq!(c, r#"{"b":1.50,"a":[1,"x y \" z\\"],"c":{}}"#);
        let v1: serde_json::Value = serde_json::from_str(pretty).unwrap();
        let v2: serde_json::Value = serde_json::from_str(&c).unwrap();
        assert_eq!(v1, v2);
    }
}
