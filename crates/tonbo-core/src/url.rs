//! URLs as they may be shown and stored: without the credentials a URL can carry.
//!
//! A server URL may hold a password (`https://alice:pw@host`) or a token in its query
//! (`?token=..`, `?api_key=..`, a signed URL's `sig=..`). Messages go to log files (cron sends
//! stderr to one) and the checkpoint is a file on disk, so neither may hold them: every URL a
//! stage prints or stores goes through [`without_credentials`] first.

/// `url` without its credentials: the userinfo (`user:password@`, or a lone user name, which is
/// often a token itself) is dropped whole, and the value of every parameter of the query or the
/// fragment whose name looks like a credential is replaced by `***`
/// (`https://alice:pw@h/s?token=abc&offset=5` is `https://h/s?token=***&offset=5`).
///
/// This is also a stream's identity in the checkpoint: the same stream reached with another
/// password or a renewed token is the same stream. Anything that is not a URL comes back as it
/// is, less what would be userinfo if it were one; nothing panics.
pub fn without_credentials(url: &str) -> String {
    // The result must be its own result (the checkpoint strips the URLs it stored already on
    // every open), and dropping a would-be userinfo from a string that is no URL can reveal a
    // `//` or `scheme://` in front of another one: go again until nothing is dropped. A pass
    // that drops nothing only rewrites query values, which a second pass leaves as they are; the
    // prefix can change at most twice, so the bound is never reached in practice.
    let (mut out, mut dropped) = strip_once(url);
    for _ in 0..8 {
        if !dropped {
            break;
        }
        (out, dropped) = strip_once(&out);
    }
    out
}

/// One pass of [`without_credentials`], and whether it dropped a userinfo.
fn strip_once(url: &str) -> (String, bool) {
    // The authority starts after `scheme://` (or `//`); with neither, at the start, so that
    // `alice:pw@host:80/x` (the scheme forgotten) loses its password too.
    let start = match url.find("://") {
        Some(i) if !url[..i].contains(['/', '?', '#']) => i + 3,
        _ if url.starts_with("//") => 2,
        _ => 0,
    };
    let mut rest = &url[start..];
    let mut dropped = false;
    // Until what is left starts with a host; each round drops at least one byte.
    loop {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let skip = match authority.rfind('@') {
            Some(at) => at + 1,
            // A password holding `/`, `?` or `#` unencoded ends the authority early, leaving
            // `alice:pa`, whose port is no number: then the userinfo runs to the next `@`.
            None if !port_is_valid(authority) => match rest[end..].find('@') {
                Some(at) => end + at + 1,
                None => break,
            },
            None => break,
        };
        rest = &rest[skip..];
        dropped = true;
    }
    let tail_from = rest.find(['?', '#']).unwrap_or(rest.len());
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..start]);
    out.push_str(&rest[..tail_from]);
    // Query and fragment alike: an OAuth fragment carries `#access_token=..`.
    let mut tail = &rest[tail_from..];
    while let Some(sep) = tail.chars().next() {
        out.push(sep);
        tail = &tail[1..];
        let len = tail.find(['&', ';', '#', '?']).unwrap_or(tail.len());
        let param = &tail[..len];
        match param.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_credential_name(name) => {
                out.push_str(name);
                out.push_str("=***");
            }
            _ => out.push_str(param),
        }
        tail = &tail[len..];
    }
    (out, dropped)
}

/// Whether an authority without userinfo ends in a valid port (or none): `host`, `host:80`,
/// `[::1]:80`, `{base}`; not `alice:pa` (the start of a password holding a `/`).
fn port_is_valid(authority: &str) -> bool {
    let after_host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(i) => &authority[i + 1..],
            None => return false,
        }
    } else {
        match authority.find(':') {
            Some(i) => &authority[i..],
            None => "",
        }
    };
    match after_host.strip_prefix(':') {
        Some(port) => port.bytes().all(|b| b.is_ascii_digit()),
        None => after_host.is_empty(),
    }
}

/// Whether a query parameter's name (percent-decoded, in any case, with `-`, `_` and `.`
/// ignored) names a credential: `token`, `access_token`, `X-Amz-Security-Token`, `api_key`,
/// `apiKey`, `key`, `sig`, `X-Amz-Signature`, `client_secret`, `password`, and the like.
fn is_credential_name(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "key",
        "sig",
        "auth",
        "authorization",
        "pass",
        "pwd",
        "jwt",
        "bearer",
    ];
    const ENDINGS: &[&str] = &[
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "signature",
        "credential",
        "credentials",
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "authkey",
    ];
    let name: String = percent_decode(name)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    EXACT.contains(&name.as_str()) || ENDINGS.iter().any(|e| name.ends_with(e))
}

/// `%XX` escapes decoded (a malformed one is kept as it is), for matching names only.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::without_credentials as w;

    /// Each `(url, what it becomes)`.
    #[track_caller]
    fn check(cases: &[(&str, &str)]) {
        for (url, want) in cases {
            assert_eq!(w(url), *want, "{url}");
        }
    }

    #[test]
    fn userinfo_is_dropped_whole() {
        check(&[
            ("http://alice:s3cret@h:4437/v1/x", "http://h:4437/v1/x"),
            ("https://token123@h/x", "https://h/x"),
            ("http://:pw@h", "http://h"),
            ("http://@h/", "http://h/"),
            ("HTTPS://A:B@H/", "HTTPS://H/"),
            // A raw `@` in the password: the host is after the last one.
            ("http://alice:p@ss@h/x", "http://h/x"),
            // Percent-encoded userinfo goes the same way.
            ("http://al%40ice:pw%2F1@h/x", "http://h/x"),
            ("//alice:pw@h/x", "//h/x"),
        ]);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets_and_port() {
        check(&[
            ("http://alice:pw@[::1]:8080/x", "http://[::1]:8080/x"),
            ("http://[::1]:8080/x", "http://[::1]:8080/x"),
            (
                "http://[fe80::1%25eth0]/x?a=1",
                "http://[fe80::1%25eth0]/x?a=1",
            ),
            ("http://u:p@[2001:db8::7]", "http://[2001:db8::7]"),
        ]);
    }

    #[test]
    fn without_a_scheme_the_userinfo_still_goes() {
        check(&[
            ("alice:pw@127.0.0.1:4437/x", "127.0.0.1:4437/x"),
            ("127.0.0.1:4437/x", "127.0.0.1:4437/x"),
            (
                "{base}/v1/{session_id}?token=t",
                "{base}/v1/{session_id}?token=***",
            ),
            ("", ""),
            ("@", ""),
            ("not a url", "not a url"),
        ]);
    }

    #[test]
    fn an_at_sign_in_the_path_or_query_is_not_userinfo() {
        check(&[
            ("http://h/a@b/c", "http://h/a@b/c"),
            ("http://h:80/a@b", "http://h:80/a@b"),
            ("http://h?x=a@b", "http://h?x=a@b"),
            ("http://h#a@b", "http://h#a@b"),
            ("http://h/x%40y", "http://h/x%40y"),
            // A `://` past the path is not a scheme.
            ("h/r?u=http://x", "h/r?u=http://x"),
        ]);
    }

    #[test]
    fn a_password_holding_a_slash_or_hash_is_dropped_too() {
        check(&[
            ("http://alice:pa/ss@h/x", "http://h/x"),
            ("http://alice:pa#ss@h/x", "http://h/x"),
            ("http://alice:pa?ss@h/x", "http://h/x"),
        ]);
    }

    #[test]
    fn credential_parameters_lose_their_values() {
        check(&[
            (
                "http://h/s?token=abc&offset=-1",
                "http://h/s?token=***&offset=-1",
            ),
            (
                "http://h/s?offset=5&access_token=abc",
                "http://h/s?offset=5&access_token=***",
            ),
            // An empty value has nothing to hide; a name alone is no parameter.
            ("http://h/?token=&token", "http://h/?token=&token"),
            (
                "https://h/cb#access_token=abc&state=1",
                "https://h/cb#access_token=***&state=1",
            ),
            (
                "http://u:p@[::1]:9/s?x=1&sig=abc#frag",
                "http://[::1]:9/s?x=1&sig=***#frag",
            ),
        ]);
        for name in [
            "api_key",
            "apiKey",
            "API-KEY",
            "key",
            "sig",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "client_secret",
            "password",
            "refresh_token",
            "auth",
            "%74oken",
            "access%5Ftoken",
        ] {
            assert_eq!(
                w(&format!("https://h/x?a=1&{name}=v%26alue;b=2")),
                format!("https://h/x?a=1&{name}=***;b=2"),
                "{name}"
            );
        }
        for name in [
            "offset", "live", "cursor", "keys", "monkey", "signal", "session",
        ] {
            let url = format!("https://h/x?{name}=v");
            assert_eq!(w(&url), url, "{name}");
        }
    }

    #[test]
    fn the_result_is_stable_and_never_panics() {
        for url in [
            "http://alice:pw@h/s?token=abc",
            "%",
            "%%%",
            "?",
            "#",
            "?=",
            "://",
            "://@",
            "[",
            "http://[",
            "http://[::1",
            "é://ü:ö@ß/ä?ö=ü&token=é",
            "http://h?%E2%82=1&%zz=2",
            "http://a:b/c@d:e/f@g",
            "http://u@h:x/p@q?k=1#key=2",
            "http://h?token=***&sig=***",
        ] {
            let once = w(url);
            assert_eq!(w(&once), once, "{url}");
        }
        check(&[
            ("é://ü:ö@ß/ä?token=é", "é://ß/ä?token=***"),
            // Dropping a would-be userinfo that reveals a scheme or `//` goes on from there.
            ("a:b/c@d://u:p@e", "d://e"),
            ("@//a:b@c", "//c"),
        ]);
    }

    /// Strings made of the pieces URLs are made of, in any order (a fixed pseudo-random
    /// sequence): none panics, and every result is its own result.
    #[test]
    fn generated_strings_are_stable() {
        const PIECES: &[&str] = &[
            "a", "Z", "0", "9", ":", "/", "//", "://", "?", "#", "@", "[", "]", "%", "%4", "%41",
            "=", "&", ";", ".", "é", "token", "key", "sig", "http", "u:p@", "*",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..50_000 {
            let len = next(14);
            let s: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
            let once = w(&s);
            assert_eq!(w(&once), once, "{s:?}");
        }
    }
}
