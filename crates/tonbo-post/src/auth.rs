//! The API key: where it is read from, and where it may not be sent.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tonbo_core::url::without_credentials;

use crate::url_template::UrlTemplate;

/// The API key from `--api-key-file`, else `TONBO_API_KEY`. Never from argv, never printed.
pub fn api_key(file: Option<&Path>) -> Result<Option<String>> {
    let key = match file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read --api-key-file {}", p.display()))?;
            text.lines().next().unwrap_or("").trim().to_string()
        }
        None => std::env::var("TONBO_API_KEY")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    if key.chars().any(|c| c.is_control()) {
        bail!("the API key holds a control character");
    }
    Ok(Some(key).filter(|k| !k.is_empty()))
}

/// Refuses streams whose key would travel in clear text (plain http to another host), unless
/// `--allow-insecure-http` said the network is trusted.
pub fn refuse_clear_text(urls: &UrlTemplate) -> Result<()> {
    let sample = urls.url("x");
    if let Some(host) = insecure_host(&sample) {
        bail!(
            "refusing to send the API key in clear text over http:// to {host}; use https, or --allow-insecure-http if this network is trusted"
        );
    }
    Ok(())
}

/// The host of a plain-http URL that is not loopback (where a key would travel in clear text).
fn insecure_host(url: &str) -> Option<String> {
    // The host is what is left of the authority once the userinfo is gone.
    let url = without_credentials(url);
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("").to_string()
    } else {
        authority.split(':').next().unwrap_or("").to_string()
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::insecure_host;

    #[test]
    fn only_plain_http_to_other_hosts_is_insecure() {
        for (url, insecure) in [
            ("https://sessions.tonbo.dev/v1/x", None),
            ("http://127.0.0.1:4437/v1/x", None),
            ("http://127.9.9.9/v1/x", None),
            ("http://localhost:8080/x", None),
            ("http://[::1]:8080/x", None),
            ("http://10.0.0.5:4437/x", Some("10.0.0.5")),
            ("http://example.com/x", Some("example.com")),
            ("http://u:p@example.com:80/x", Some("example.com")),
            ("http://u:p/w@example.com/x", Some("example.com")),
        ] {
            assert_eq!(insecure_host(url).as_deref(), insecure, "{url}");
        }
    }
}
