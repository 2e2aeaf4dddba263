//! Content: the parts of a Codex message or tool output as content blocks, and the small facts
//! read from text (an MCP tool's name, a shell's exit code, the thread a spawn started).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
pub(super) use tonbo_core::event::{as_str, is_str, json_str};
use tonbo_core::event::{text_block, text_content};

/// A content part: `input_text`, `output_text`, `input_image`, ...
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Part<'a> {
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub image_url: Option<Cow<'a, str>>,
}

/// `mcp__server__tool`, or the older `server__tool`: built-in tool names never hold a double
/// underscore.
pub(super) fn split_mcp(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("mcp__").unwrap_or(name);
    let (server, tool) = rest.split_once("__")?;
    (!server.is_empty() && !tool.is_empty()).then_some((server, tool))
}

/// Best effort, since a shell's output text is opaque: did a shell-like output report failure?
fn output_is_error(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Wrapped {
        metadata: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct Meta {
        exit_code: Option<i64>,
    }
    if let Ok(Wrapped {
        metadata: Some(Meta {
            exit_code: Some(code),
        }),
    }) = serde_json::from_str(text)
    {
        return code != 0;
    }
    if let Some(rest) = text.strip_prefix("Exit code: ") {
        let code: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        return code.parse::<i64>().is_ok_and(|c| c != 0);
    }
    false
}

/// [`output_is_error`] of the string `raw` holds, decoded only when it must be: an output that
/// may be a JSON object (`{`, or whitespace first, which the raw text holds as ` ` or an escape)
/// is decoded; `Exit code: <n>` is read from the raw text, whose digits are never escaped but
/// by `\u00..` (then it is decoded too). Decoding every output was a tenth of the mapping's
/// time.
fn raw_output_is_error(raw: &RawValue) -> bool {
    let inner = raw.get().strip_prefix('"').unwrap_or("");
    if let Some(rest) = inner.strip_prefix("Exit code: ") {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        if !rest[end..].starts_with("\\u") {
            return rest[..end].parse::<i64>().is_ok_and(|c| c != 0);
        }
    } else if !inner.starts_with(['{', ' ', '\\']) {
        return false;
    }
    as_str(raw).is_some_and(|text| output_is_error(&text))
}

/// The thread a `spawn_agent` output names (`{"agent_id": "<thread id>", "nickname": ...}`,
/// as a JSON string).
pub(super) fn spawned_thread(output: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct Spawned {
        agent_id: Option<String>,
    }
    let text = as_str(output?)?;
    serde_json::from_str::<Spawned>(&text).ok()?.agent_id
}

/// An `input_image` URL as a Managed Agents image source.
fn image_block(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((media, data)) = rest.split_once(";base64,") {
            return format!(
                "{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":{},\"data\":{}}}}}",
                json_str(media),
                json_str(data)
            );
        }
    }
    format!(
        "{{\"type\":\"image\",\"source\":{{\"type\":\"url\",\"url\":{}}}}}",
        json_str(url)
    )
}

/// Content parts -> content blocks; the `<image ...>` wrapper texts around an image are dropped.
pub(super) fn content_blocks(parts: &[Part]) -> String {
    let mut out = String::from("[");
    for p in parts {
        let block = match (p.kind.as_deref(), &p.text, &p.image_url) {
            (Some("input_image"), _, Some(url)) => image_block(url),
            (_, Some(t), _) => {
                let trimmed = t.trim();
                if (trimmed.starts_with("<image") && trimmed.ends_with('>'))
                    || trimmed == "</image>"
                {
                    continue;
                }
                text_block(&json_str(t))
            }
            _ => continue,
        };
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&block);
    }
    out.push(']');
    out
}

/// Output of a tool: a string, or an array of `input_text`/`input_image` parts; and whether it
/// reports a failure.
pub(super) fn output_content(output: Option<&RawValue>) -> (String, bool) {
    let Some(raw) = output else {
        return ("[]".into(), false);
    };
    if is_str(raw) {
        return (text_content(raw.get()), raw_output_is_error(raw));
    }
    match serde_json::from_str::<Vec<Part>>(raw.get()) {
        Ok(parts) => (content_blocks(&parts), false),
        Err(_) => (text_content(&json_str(raw.get())), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(split_mcp("mcp__github__search"), Some(("github", "search")));
        assert_eq!(split_mcp("github__search"), Some(("github", "search")));
        assert_eq!(split_mcp("shell"), None);
        assert!(output_is_error(
            r#"{"output":"x","metadata":{"exit_code":2,"duration_seconds":0.1}}"#
        ));
        assert!(!output_is_error(
            r#"{"output":"x","metadata":{"exit_code":0}}"#
        ));
        assert!(output_is_error(
            "Exit code: 1\nWall time: 0.1 seconds\nOutput:\n"
        ));
        assert!(!output_is_error("Exit code: 0\nOutput:\n"));
        for raw in [
            r#""Exit code: 1\nOutput:\n""#,
            r#""Exit code: 0\nOutput:\n""#,
            r#""Exit code: 0""#,
            r#""Exit code: 1\u0032""#,
            r#""Exit code: -""#,
            r#""\u0045xit code: 3""#,
            r#""{\"metadata\":{\"exit_code\":2}}""#,
            r#""\n {\"metadata\":{\"exit_code\":2}}""#,
            r#"" {\"metadata\":{\"exit_code\":0}}""#,
            r#""plain""#,
        ] {
            let raw: &RawValue = serde_json::from_str(raw).unwrap();
            let text: String = serde_json::from_str(raw.get()).unwrap();
            assert_eq!(raw_output_is_error(raw), output_is_error(&text), "{raw}");
        }
        assert_eq!(
            image_block("data:image/png;base64,AAAA"),
            r#"{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}"#
        );
    }
}
