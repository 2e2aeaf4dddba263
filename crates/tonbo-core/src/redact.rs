//! Redaction of high-confidence secrets in events, shared by tonbo-map (which redacts what it
//! writes) and tonbo-batch (which redacts event lines that did not come through tonbo-map's
//! redactor, so that no path into tonbo-post skips it).
//!
//! Transcripts hold whatever an agent read or ran: a `cat ~/.ssh/id_ed25519`, an `env`, a `curl`
//! with its `Authorization` header. Those strings would otherwise be posted to a server and kept
//! there. Every string of an event (texts, tool inputs and outputs, `events` records) is checked
//! against patterns precise enough to have next to no false positives (fixed vendor prefixes and
//! lengths, PEM armour), and each match becomes `[REDACTED:<kind>]`.
//!
//! The event is JSON text, often spliced from raw source values, so it is not decoded into a
//! `Value` and re-serialised (which would change number spellings, escapes and key order of
//! `events` records): the JSON text is walked, and only the strings that change are re-encoded;
//! every other byte stays as it was. A single regex over the whole event text (a superset of
//! the patterns, literal-prefixed, so it runs at memory speed) decides first whether an event
//! needs the walk at all; most events do not.

use regex::Regex;

/// The marker of a custom pattern's matches (`--redact-pattern`).
pub const CUSTOM: &str = "custom";

/// The version of the built-in rules. tonbo-map writes it as the `redacted` field of each event
/// line it redacted; tonbo-batch applies the built-in rules again only to lines without it (or
/// with an older version, from an older tonbo-map), so an event is scanned once on the usual
/// path and still scanned when it reaches tonbo-batch some other way. Raise it when a rule is
/// added or widened.
pub const RULES_VERSION: u64 = 1;

/// `--no-redact` and `--redact-pattern`, declared once for every stage that redacts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RedactArgs {
    /// Do not redact secrets (private keys, API keys and tokens) from the events.
    #[arg(long)]
    pub no_redact: bool,

    /// Also redact the matches of REGEX, as `[REDACTED:custom]` (repeatable).
    #[arg(long, value_name = "REGEX", value_parser = parse_pattern)]
    pub redact_pattern: Vec<Regex>,
}

impl RedactArgs {
    /// The redactor these flags ask for: on by default, so that a transcript's secrets do not
    /// reach the server unless asked for.
    pub fn redactor(&self) -> Option<Redactor> {
        (!self.no_redact).then(|| Redactor::new(self.redact_pattern.clone()))
    }
}

/// One kind of secret.
struct Rule {
    kind: &'static str,
    re: Regex,
    /// The capture group replaced: 0 for the whole match; a header or query parameter keeps its
    /// name (`Bearer `, `?access_token=`) and loses its value only.
    group: usize,
    /// A check on the replaced text the regex cannot express (no look-around in `regex`).
    valid: fn(&str) -> bool,
}

fn any(_: &str) -> bool {
    true
}

/// OpenAI keys are random base62: a digit, an upper-case and a lower-case letter all occur.
/// This keeps `sk-` followed by a long kebab-case word (`sk-learn-...`) from matching.
fn mixed(s: &str) -> bool {
    let body = s.strip_prefix("sk-").unwrap_or(s);
    body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase())
}

/// Bearer tokens and query tokens: not a placeholder in capitals (`YOUR_TOKEN_HERE`) or a
/// variable; a real token has a digit or mixes cases.
fn token_like(s: &str) -> bool {
    let digit = s.bytes().any(|b| b.is_ascii_digit());
    let upper = s.bytes().any(|b| b.is_ascii_uppercase());
    let lower = s.bytes().any(|b| b.is_ascii_lowercase());
    digit || (upper && lower)
}

/// The built-in rules, in the order they apply: the specific prefixes before the generic `sk-`,
/// and vendor tokens before `Bearer`, so a `Bearer sk-ant-...` is named by its vendor.
/// `(?-u:\b)` is an ASCII word boundary: Unicode ones make the regex engine slower on
/// non-ASCII text, and the secrets are ASCII.
/// `(kind, pattern, group replaced, check)`, compiled into [`Rule`]s.
type RuleSpec = (&'static str, &'static str, usize, fn(&str) -> bool);

const RULES: &[RuleSpec] = &[
    (
        "private-key",
        // The whole armoured block; or, when the END line is missing (output cut short), the
        // BEGIN line with the base64 lines that follow it.
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:,.\-]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|(?:[ \t]*\r?\n[A-Za-z\-]+:[^\n]*)*(?:\s*[A-Za-z0-9+/=]{16,})+)",
        0,
        any,
    ),
    (
        "anthropic-api-key",
        r"(?-u:\b)sk-ant-[A-Za-z0-9_\-]{32,}",
        0,
        any,
    ),
    (
        "openai-api-key",
        r"(?-u:\b)sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
        0,
        mixed,
    ),
    (
        "github-token",
        r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?-u:\b)",
        0,
        any,
    ),
    (
        "gitlab-token",
        r"(?-u:\b)glpat-[A-Za-z0-9_\-]{20,}(?:\.[A-Za-z0-9_\-]{2,})*",
        0,
        any,
    ),
    (
        "slack-token",
        r"(?-u:\b)xox[bpars]-[0-9]+-[A-Za-z0-9\-]{8,}",
        0,
        any,
    ),
    (
        "aws-access-key-id",
        r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)",
        0,
        any,
    ),
    (
        "bearer-token",
        r"(?-u:\b)[Bb]earer[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)",
        1,
        token_like,
    ),
    (
        "bearer-token",
        // A query value is URL-safe text: the class stops at the `&`, quote or space after it.
        r"[?&](?:access_|refresh_|id_|auth_)?token=([A-Za-z0-9\-._~+/%=]{12,})",
        1,
        token_like,
    ),
];

/// A superset of the rules, matched against the raw event text: literal prefixes only, so the
/// engine's prefilter scans for them at memory speed. JSON escapes cannot hide these prefixes
/// (they are plain ASCII letters, digits, `-` and `_`, which encoders do not escape); the query
/// rule checks `token=` alone because Go's encoder writes `&` as `\u0026`.
const PRECHECK: &str = r"-----BEGIN |sk-[A-Za-z0-9_\-]{20}|gh[pousr]_[A-Za-z0-9]{36}|github_pat_|glpat-|xox[bpars]-[0-9]|AKIA[A-Z0-9]{16}|ASIA[A-Z0-9]{16}|[Bb]earer|token=";

/// Keys whose string values are identities, not content: never rewritten, so an event keeps
/// its key and type (these are checked only at the event's top level and in its `metadata`).
const KEEP_TOP: &[&str] = &[
    "type",
    "id",
    "processed_at",
    "session_thread_id",
    "tool_use_id",
    "mcp_tool_use_id",
    "model_request_start_id",
];
const KEEP_META: &[&str] = &[
    "source",
    "source_key",
    "original_timestamp",
    "uuid",
    "parent_uuid",
    "logical_parent_uuid",
    "message_id",
    "request_id",
    "tool_use_id",
    "parent_tool_use_id",
    "agent_id",
    "turn_id",
];

/// How many matches of each kind were replaced, in the order first met.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts(pub Vec<(&'static str, u64)>);

impl Counts {
    fn add(&mut self, kind: &'static str) {
        match self.0.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.0.push((kind, 1)),
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    /// `, redacted 3 (aws-access-key-id 1, github-token 2)`, or nothing when none was.
    pub fn summary(&self) -> String {
        if self.total() == 0 {
            return String::new();
        }
        let mut v = self.0.clone();
        v.sort();
        let kinds: Vec<String> = v.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(", redacted {} ({})", self.total(), kinds.join(", "))
    }
}

/// The compiled rules, plus any custom patterns.
pub struct Redactor {
    rules: Vec<Rule>,
    precheck: Regex,
    custom: Vec<Regex>,
    /// Whether the built-in rules apply to the event at hand (not when an earlier stage applied
    /// them already); custom patterns always do.
    builtin: bool,
    pub counts: Counts,
}

impl Redactor {
    /// The built-in rules and `custom` patterns (matches become `[REDACTED:custom]`).
    pub fn new(custom: Vec<Regex>) -> Redactor {
        let rules = RULES
            .iter()
            .map(|&(kind, re, group, valid)| Rule {
                kind,
                re: Regex::new(re).expect("built-in patterns compile"),
                group,
                valid,
            })
            .collect();
        Redactor {
            rules,
            precheck: Regex::new(PRECHECK).expect("the pre-check compiles"),
            custom,
            builtin: true,
            counts: Counts::default(),
        }
    }

    /// Redacts one string; `None` when nothing in it matched.
    pub fn redact_str(&mut self, s: &str) -> Option<String> {
        let mut cur: Option<String> = None;
        if self.builtin && self.precheck.is_match(s) {
            for rule in &self.rules {
                let text = cur.as_deref().unwrap_or(s);
                if let Some(t) = apply(rule, text, &mut self.counts) {
                    cur = Some(t);
                }
            }
        }
        for re in &self.custom {
            let text = cur.as_deref().unwrap_or(s);
            let mut n = 0;
            let t = re.replace_all(text, |_: &regex::Captures| {
                n += 1;
                "[REDACTED:custom]"
            });
            if n > 0 {
                let t = t.into_owned();
                for _ in 0..n {
                    self.counts.add(CUSTOM);
                }
                cur = Some(t);
            }
        }
        cur
    }

    /// Redacts every string of the event `json` (object keys too, save the identity fields
    /// listed above); `None` when nothing matched, so the caller writes the original bytes.
    pub fn redact_event(&mut self, json: &str) -> Option<String> {
        self.redact_event_marked(json, None)
    }

    /// Redacts the event of an event line whose `redacted` field is `marked`: the built-in
    /// rules apply unless that names [`RULES_VERSION`] or a later one (tonbo-map applied them);
    /// custom patterns apply in any case.
    pub fn redact_event_marked(&mut self, json: &str, marked: Option<u64>) -> Option<String> {
        self.builtin = marked.is_none_or(|v| v < RULES_VERSION);
        let out = if self.builtin {
            if self.custom.is_empty() && !self.precheck.is_match(json) {
                None
            } else {
                walk(json, self)
            }
        } else if self.custom.is_empty() {
            None
        } else {
            walk(json, self)
        };
        self.builtin = true;
        out
    }
}

impl Redactor {
    /// Redacts an input line kept in the rejects file: as JSON when it is JSON, else as text.
    pub fn redact_line(&mut self, line: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(line);
        if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
            self.redact_event(&text)
        } else {
            self.redact_str(&text)
        }
    }
}

/// Replaces the valid matches of `rule` in `text`; `None` when there were none.
fn apply(rule: &Rule, text: &str, counts: &mut Counts) -> Option<String> {
    let mut out = String::new();
    let mut last = 0;
    for caps in rule.re.captures_iter(text) {
        let Some(m) = caps.get(rule.group) else {
            continue;
        };
        if !(rule.valid)(m.as_str()) {
            continue;
        }
        out.push_str(&text[last..m.start()]);
        out.push_str("[REDACTED:");
        out.push_str(rule.kind);
        out.push(']');
        last = m.end();
        counts.add(rule.kind);
    }
    if last == 0 {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// Walks JSON text, rewriting the strings the redactor changes and copying everything else.
/// Invalid JSON (which the mappers never write) is returned unchanged rather than guessed at.
fn walk(json: &str, r: &mut Redactor) -> Option<String> {
    let b = json.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    // The keys of the open containers (`None` for arrays and the root), for the identity fields.
    let mut path: Vec<Option<&str>> = Vec::new();
    let mut key: Option<&str> = None;
    // The last significant byte outside strings: a string after `:` is a value, else a key (in
    // an object) or an element (in an array); which one is known by the byte after it.
    let mut prev = b' ';
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => {
                path.push(if prev == b':' { key } else { None });
                key = None;
                prev = b[i];
                i += 1;
            }
            b'}' | b']' => {
                path.pop();
                prev = b[i];
                i += 1;
            }
            b'"' => {
                let start = i;
                let mut j = i + 1;
                let mut escaped = false;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' {
                        escaped = true;
                        j += 1;
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return None;
                }
                let end = j + 1;
                let token = &json[start..end];
                let inner = &json[start + 1..j];
                let is_key = b[end..]
                    .iter()
                    .find(|c| !c.is_ascii_whitespace())
                    .is_some_and(|&c| c == b':');
                let keep = !is_key && prev == b':' && is_identity(&path, key);
                if !keep {
                    let decoded: std::borrow::Cow<str> = if escaped {
                        match serde_json::from_str::<String>(token) {
                            Ok(s) => s.into(),
                            // A lone surrogate (`\ud800`) is valid JSON text but not a Rust
                            // string. Skipping the string would let its secrets through; with
                            // surrogates made U+FFFD it decodes, and is re-encoded only if a
                            // secret was in it.
                            Err(_) => match serde_json::from_str::<String>(&no_surrogates(token)) {
                                Ok(s) => s.into(),
                                Err(_) => return None,
                            },
                        }
                    } else {
                        inner.into()
                    };
                    if let Some(red) = r.redact_str(&decoded) {
                        let o = out.get_or_insert_with(|| String::with_capacity(json.len()));
                        o.push_str(&json[copied..start]);
                        o.push_str(&serde_json::to_string(&red).expect("a str serialises"));
                        copied = end;
                    }
                }
                if is_key {
                    key = Some(inner);
                }
                prev = b'"';
                i = end;
            }
            c => {
                if !c.is_ascii_whitespace() {
                    prev = c;
                }
                i += 1;
            }
        }
    }
    let mut o = out?;
    o.push_str(&json[copied..]);
    Some(o)
}

/// `token` (a JSON string literal) with every `\uD800`-`\uDFFF` escape written `\ufffd`.
fn no_surrogates(token: &str) -> String {
    let b = token.as_bytes();
    let mut out = String::with_capacity(token.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let surrogate = b.get(i + 1) == Some(&b'u')
            && b.get(i + 2).is_some_and(|c| c.eq_ignore_ascii_case(&b'd'))
            && b.get(i + 3)
                .is_some_and(|c| matches!(c, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'))
            && b.get(i + 5).is_some();
        if surrogate {
            out.push_str(&token[last..i]);
            out.push_str("\\ufffd");
            i += 6;
            last = i;
        } else {
            // Any other escape is two bytes long as far as finding the next one goes (the hex
            // digits of `\uXXXX` contain no backslash).
            i += 2;
        }
    }
    out.push_str(&token[last.min(token.len())..]);
    out
}

/// Whether the value under `key`, in the container at the end of `path`, is an identity field.
fn is_identity(path: &[Option<&str>], key: Option<&str>) -> bool {
    let Some(key) = key else { return false };
    match path {
        [_root] => KEEP_TOP.contains(&key),
        [_root, Some("metadata")] => KEEP_META.contains(&key),
        _ => false,
    }
}

/// Compiles a `--redact-pattern`, for clap: an invalid one is a usage error naming it. So is
/// one that matches the empty string, which would put a marker between every two characters.
pub fn parse_pattern(s: &str) -> Result<Regex, String> {
    let re = Regex::new(s).map_err(|e| format!("`{s}` is not a valid regex: {e}"))?;
    if re.is_match("") {
        return Err(format!("`{s}` matches the empty string"));
    }
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(s: &str) -> String {
        Redactor::new(vec![]).redact_str(s).unwrap_or(s.to_string())
    }

    // Planted test secrets are built from parts so that this file does not itself look like it
    // holds live credentials to scanners.
    fn gh() -> String {
        format!("ghp_{}", "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xY2zA4")
    }

    #[test]
    fn each_kind_is_replaced() {
        let pem = format!(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA{}\nabc+/=\n-----END RSA PRIVATE KEY-----",
            "x".repeat(40)
        );
        let cases: Vec<(String, &str)> = vec![
            (format!("key:\n{pem}\nafter"), "private-key"),
            (
                format!(
                    "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n",
                    "b3BlbnNzaC1rZXktdjEAAAAA"
                ),
                "private-key",
            ),
            (format!("AKIA{}", "IOSFODNN7EXAMPL2"), "aws-access-key-id"),
            (
                format!("id=ASIA{} x", "Y34EXAMPLE5XZ3QK"),
                "aws-access-key-id",
            ),
            (format!("token {}", gh()), "github-token"),
            (
                format!("github_pat_{}", "11ABCDEFG0123456789_abcdefghijKLMNOP"),
                "github-token",
            ),
            (format!("glpat-{}", "xY9zAb12Cd34Ef56Gh78"), "gitlab-token"),
            (
                format!(
                    "xoxb-{}-{}",
                    "123456789012", "1234567890123-AbCdEfGhIjKlMnOp"
                ),
                "slack-token",
            ),
            (
                format!("sk-{}", "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4Cd5Ef"),
                "openai-api-key",
            ),
            (
                format!("sk-proj-{}", "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv_x-Y"),
                "openai-api-key",
            ),
            (
                format!(
                    "sk-ant-api03-{}",
                    "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3-_AA"
                ),
                "anthropic-api-key",
            ),
            (
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-1".into(),
                "bearer-token",
            ),
            (
                "GET https://api.example.com/v1?x=1&access_token=a1B2c3D4e5F6g7H8 HTTP/1.1".into(),
                "bearer-token",
            ),
            ("https://h/p?token=Zx81kLmQ0pRtY6vW".into(), "bearer-token"),
        ];
        for (text, kind) in cases {
            let mut r = Redactor::new(vec![]);
            let got = r.redact_str(&text).unwrap_or_else(|| panic!("{text:?}"));
            assert!(
                got.contains(&format!("[REDACTED:{kind}]")),
                "{text:?} -> {got:?}"
            );
            assert_eq!(r.counts.0, vec![(kind, 1)], "{text:?} -> {got:?}");
        }
    }

    #[test]
    fn only_the_secret_goes() {
        assert_eq!(red(&format!("a {} b", gh())), "a [REDACTED:github-token] b");
        assert_eq!(
            red("curl -H 'Authorization: Bearer a1B2c3D4e5F6g7H8i9' x"),
            "curl -H 'Authorization: Bearer [REDACTED:bearer-token]' x"
        );
        assert_eq!(
            red("https://h/cb?state=s&access_token=a1B2c3D4e5F6g7H8&x=1"),
            "https://h/cb?state=s&access_token=[REDACTED:bearer-token]&x=1"
        );
        let ant = format!("Bearer sk-ant-api03-{}", "A".repeat(40));
        assert_eq!(red(&ant), "Bearer [REDACTED:anthropic-api-key]");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in [
            "sk-",
            "use sk- keys",
            "sk-learn is a package",
            "sk-this-is-a-long-kebab-case-identifier",
            "task-notification and disk-image-builder-something-long-enough",
            "550e8400-e29b-41d4-a716-446655440000",
            "AKIA",
            "AKIAshort",
            "XAKIAIOSFODNN7EXAMPLE0",
            "ghp_short",
            "the ghp_ prefix",
            "glpat-abc",
            "xoxb-your-token-here",
            "a bearer of bad news",
            "Authorization: Bearer $TOKEN",
            "Authorization: Bearer ${API_KEY}",
            "Authorization: Bearer YOUR_TOKEN_HERE",
            "https://h/p?page_token=abcdefghijklmnopqrstu",
            "https://h/p?token=short",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
            "if line.startswith(\"-----BEGIN RSA PRIVATE KEY-----\"): pass",
            "",
        ] {
            assert_eq!(red(s), s, "{s:?}");
        }
    }

    #[test]
    fn events_keep_their_bytes_and_identities() {
        let mut r = Redactor::new(vec![]);
        let plain =
            r#"{"type":"x","n": 1.50,"s":"é\u00e9","metadata":{"source":"m","source_key":"k"}}"#;
        assert_eq!(r.redact_event(plain), None);
        let g = gh();
        let ev = format!(
            r#"{{"type":"x","n": 1.50,"content":[{{"type":"text","text":"a\n{g}"}}],"input":{{"id":"{g}"}},"metadata":{{"source":"m","source_key":"{g}","k":"{g}"}}}}"#
        );
        let out = r.redact_event(&ev).unwrap();
        assert_eq!(
            out,
            format!(
                r#"{{"type":"x","n": 1.50,"content":[{{"type":"text","text":"a\n[REDACTED:github-token]"}}],"input":{{"id":"[REDACTED:github-token]"}},"metadata":{{"source":"m","source_key":"{g}","k":"[REDACTED:github-token]"}}}}"#
            )
        );
        assert_eq!(r.counts.summary(), ", redacted 3 (github-token 3)");
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }

    #[test]
    fn escaped_strings_and_custom_patterns() {
        let mut r = Redactor::new(vec![parse_pattern("hunter[0-9]+").unwrap()]);
        let ev = r#"{"type":"x","text":"pw \"hunter22\"\t\u00e9","metadata":{}}"#;
        let out = r.redact_event(ev).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["text"], "pw \"[REDACTED:custom]\"\té");
        assert_eq!(r.counts.summary(), ", redacted 1 (custom 1)");
        assert!(parse_pattern("(").unwrap_err().contains("`(`"));
    }

    #[test]
    fn lone_surrogates_do_not_hide_secrets() {
        let mut r = Redactor::new(vec![]);
        let ev = format!(
            r#"{{"type":"x","a":"\ud800 {g} \ud83d\ude00 \\ud800","metadata":{{}}}}"#,
            g = gh()
        );
        let out = r.redact_event(&ev).unwrap();
        assert_eq!(
            out,
            "{\"type\":\"x\",\"a\":\"\u{fffd} [REDACTED:github-token] \u{fffd}\u{fffd} \\\\ud800\",\"metadata\":{}}"
        );
        assert_eq!(no_surrogates(r#""\\ud800\u""#), r#""\\ud800\u""#);
    }

    #[test]
    fn query_tokens_stop_at_quotes() {
        assert_eq!(
            red(r#"fetch("https://h/p?token=Zx81kLmQ0pRtY6vW")"#),
            r#"fetch("https://h/p?token=[REDACTED:bearer-token]")"#
        );
        assert!(parse_pattern("a*").unwrap_err().contains("empty string"));
    }

    #[test]
    fn rejected_lines_are_redacted_as_json_or_text() {
        let mut r = Redactor::new(vec![]);
        let j = format!(r#"{{"source":"nope","record":"{}"}}"#, gh());
        assert_eq!(
            r.redact_line(j.as_bytes()).unwrap(),
            r#"{"source":"nope","record":"[REDACTED:github-token]"}"#
        );
        let t = format!("not json {}", gh());
        assert_eq!(
            r.redact_line(t.as_bytes()).unwrap(),
            "not json [REDACTED:github-token]"
        );
        assert_eq!(r.redact_line(b"{}"), None);
    }

    #[test]
    fn broken_json_is_not_touched() {
        let mut r = Redactor::new(vec![]);
        assert_eq!(r.redact_event(&format!("{{\"a\":\"{}", gh())), None);
        assert_eq!(r.redact_event("\"\\"), None);
    }
}
