//! Stream URLs from `--url-template`: `{base}` and `{session_id}` substituted.

use anyhow::{bail, Result};
use tonbo_core::url::without_credentials;

/// Builds stream URLs from `--url-template`, with `{base}` and `{session_id}` (percent-encoded).
#[derive(Debug, Clone)]
pub struct UrlTemplate {
    template: String,
    base: String,
}

impl UrlTemplate {
    pub fn new(template: &str, base: &str) -> Result<UrlTemplate> {
        if !template.contains("{session_id}") {
            bail!(
                "--url-template `{}` has no {{session_id}}",
                without_credentials(template)
            );
        }
        Ok(UrlTemplate {
            template: template.to_string(),
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn url(&self, session_id: &str) -> String {
        self.template
            .replace("{base}", &self.base)
            .replace("{session_id}", &encode_segment(session_id))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a session id is exactly one
/// path segment whatever it holds.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_template_encodes_the_session_id() {
        let t = UrlTemplate::new("{base}/v1/sessions/{session_id}/events", "http://h:1/").unwrap();
        assert_eq!(
            t.url("codex-ab_c.1~"),
            "http://h:1/v1/sessions/codex-ab_c.1~/events"
        );
        assert_eq!(
            t.url("a/b c?é"),
            "http://h:1/v1/sessions/a%2Fb%20c%3F%C3%A9/events"
        );
        assert!(UrlTemplate::new("{base}/x", "b").is_err());
    }
}
