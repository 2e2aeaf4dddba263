//! Redaction of high-confidence secrets in events, shared by tonbo-map (which redacts what it
//! writes) and tonbo-batch (which redacts event lines that did not come through tonbo-map's
//! redactor, so that no path into tonbo-post skips it).
//!
//! Transcripts hold whatever an agent read or ran: a `cat ~/.ssh/id_ed25519`, an `env`, a `curl`
//! with its `Authorization` header, a `psql postgres://app:pw@db`. Those strings would otherwise
//! be posted to a server and kept there. Every string of an event (texts, tool inputs and
//! outputs, `events` records) is checked against patterns precise enough to have next to no
//! false positives (fixed vendor prefixes and lengths, PEM armour, a password only where a
//! password is assigned and the value is not a placeholder), and each match becomes
//! `[REDACTED:<kind>]`.
//!
//! The event is JSON text, often spliced from raw source values, so it is not decoded into a
//! `Value` and re-serialised (which would change number spellings, escapes and key order of
//! `events` records): the JSON text is walked, and only the strings that change are re-encoded;
//! every other byte stays as it was. A single regex over the whole event text (a superset of
//! the patterns, literal-prefixed, so it runs at memory speed) decides first whether an event
//! needs the walk at all; most events do not.

use std::borrow::Cow;
use std::cell::OnceCell;

use regex::{Captures, Regex};

/// The marker of a custom pattern's matches (`--redact-pattern`).
pub const CUSTOM: &str = "custom";

/// The version of the built-in rules. tonbo-map writes it as the `redacted` field of each event
/// line it redacted; tonbo-batch applies the built-in rules again only to lines without it (or
/// with an older version, from an older tonbo-map), so an event is scanned once on the usual
/// path and still scanned when it reaches tonbo-batch some other way. Raise it when a rule is
/// added or widened.
pub const RULES_VERSION: u64 = 1;

/// `--no-redact` and `--redact-pattern`, declared once for every stage that redacts; the long
/// help of `--no-redact` is where its `--help` and man page say what is redacted, and how
/// tonbo-map and tonbo-batch share the work.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RedactArgs {
    /// Do not redact secrets (private keys, API keys, tokens, passwords) from the events.
    ///
    /// Secrets are redacted by default, in every text, tool input and tool output: private key
    /// blocks, AWS access key ids, GitHub, GitLab, Slack, npm and PyPI tokens, OpenAI,
    /// Anthropic, Google and Stripe API keys, Google OAuth client secrets, Azure account keys,
    /// Slack webhooks, JWTs, bearer tokens in URLs and headers, the passwords of URLs and
    /// database connection strings, and values assigned to password and secret keys
    /// (`PGPASSWORD=..`, `--password=..`, `password: ..`, `"password": ".."`) become
    /// `[REDACTED:<kind>]`; placeholders (`$VAR`, `${VAR}`, `<password>`, `****`, `changeme`)
    /// are left alone, and an event without a secret keeps its bytes. The summary counts them
    /// per kind. tonbo-map marks each event line it redacted (`"redacted":1`, the version of
    /// the rules), and tonbo-batch redacts only the lines without the mark: written by another
    /// program, or by `tonbo-map --no-redact` (each stage turns redaction off for itself).
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
    /// The capture group replaced: 0 for the whole match; else the first group from this one on
    /// that took part in the match (a value may be quoted one way or another, or not at all),
    /// so a header, key or URL keeps its name (`Bearer `, `password=`, `postgres://app:`) and
    /// loses its value only.
    group: usize,
    /// A check the regex cannot express (no look-around in `regex`), given the match and the
    /// text to be replaced.
    valid: fn(&Captures, &str) -> bool,
}

fn any(_: &Captures, _: &str) -> bool {
    true
}

/// OpenAI keys are random base62: a digit, an upper-case and a lower-case letter all occur.
/// This keeps `sk-` followed by a long kebab-case word (`sk-learn-...`) from matching.
fn mixed(_: &Captures, s: &str) -> bool {
    let body = s.strip_prefix("sk-").unwrap_or(s);
    body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase())
}

/// Bearer tokens and query tokens: not a placeholder in capitals (`YOUR_TOKEN_HERE`) or a
/// variable; a real token has a digit or mixes cases.
fn token_like(_: &Captures, s: &str) -> bool {
    let digit = s.bytes().any(|b| b.is_ascii_digit());
    let upper = s.bytes().any(|b| b.is_ascii_uppercase());
    let lower = s.bytes().any(|b| b.is_ascii_lowercase());
    digit || (upper && lower)
}

/// Slack's documentation writes its webhook as `T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX`.
fn not_all_x(_: &Captures, s: &str) -> bool {
    let last = s.rsplit('/').find(|p| !p.is_empty()).unwrap_or(s);
    !last.bytes().all(|b| b == b'X' || b == b'x')
}

/// A URL's password (group 2, group 1 is the user): not a placeholder, and not the user again
/// (`postgres:postgres@`, `guest:guest@`: well-known defaults, not secrets).
fn url_password(c: &Captures, s: &str) -> bool {
    !placeholder(s) && c.get(1).is_none_or(|u| u.as_str() != s)
}

/// An assigned value where only literals are written (an upper-case environment variable, a
/// `--flag=`, a quoted string): anything but a placeholder. Groups 1 and 2 are the quoted
/// forms, 3 the bare one.
fn literal(c: &Captures, s: &str) -> bool {
    if c.get(3).is_some() {
        bare_value(s)
    } else {
        quoted_value(s)
    }
}

/// An assigned value where code is written too (`password = pw`, `password: string`, YAML,
/// INI): a quoted string as [`literal`]; a bare value only if it looks like a secret, not like
/// a name, a type or a word.
fn code(c: &Captures, s: &str) -> bool {
    if c.get(3).is_some() {
        bare_value(s) && secret_like(s)
    } else {
        quoted_value(s)
    }
}

/// `--password VALUE` (a space, not `=`): prose names flags this way too ("pass --password
/// to set it"), so the value must look like a secret.
fn flag_value(c: &Captures, s: &str) -> bool {
    code(c, s) && !s.starts_with('-')
}

/// A quoted value that is not a placeholder and not the gap between two string literals
/// (`"Password: " + pw + "!"` quotes ` + pw + `).
fn quoted_value(s: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_whitespace() || "+,;).|".contains(c));
    !placeholder(s) && !edge(s.chars().next()) && !s.ends_with(char::is_whitespace)
}

/// A bare value that is not a placeholder, a reference (`self.password`, `os.environ`) or a
/// nested setting (`--secret id=npmrc,src=...`: an `=` inside, not only base64 padding).
fn bare_value(s: &str) -> bool {
    !placeholder(s) && !reference(s) && !s.trim_end_matches('=').contains('=')
}

/// Whether a bare value looks like a secret rather than a name: four characters or more, with a
/// digit or a character outside names (`hunter2`, `p@ss!`, but not `pw`, `String`, `hashed`),
/// and not what code writes there (see [`code_token`]).
fn secret_like(s: &str) -> bool {
    s.len() >= 4
        && s.bytes().any(|b| {
            b.is_ascii_digit() || !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        })
        && !code_token(s)
}

/// A dotted name, as code writes it (`self.password`, `settings.DB_PASSWORD`, `user.pw!`).
fn reference(s: &str) -> bool {
    let s = s.trim_end_matches(['!', '?']);
    let ident = |p: &str| {
        p.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'$')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    };
    s.contains('.') && s.split('.').all(ident)
}

/// Values with digits that code writes after `password:` or `PASS =` (a field's type, a flag's
/// value in an enum): a name starting with `_` (`_bindgen_ty_3`, `__u32`), a number type
/// (`u32`, `int64`, `uint8_t`, `__le32`), a hex number (`0x04`) or a short decimal one.
fn code_token(s: &str) -> bool {
    if s.starts_with('_') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return true;
    }
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"));
    if hex.is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())) {
        return true;
    }
    if s.len() < 6 && s.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let t = s.trim_start_matches('_');
    let t = t.strip_suffix("_t").unwrap_or(t).to_ascii_lowercase();
    let name = t.trim_end_matches(|c: char| c.is_ascii_digit());
    name.len() < t.len()
        && matches!(
            name,
            "u" | "i" | "s" | "f" | "int" | "uint" | "float" | "bytes" | "le" | "be" | "bits"
        )
}

/// Values that stand for a secret without being one: empty; a variable, template or command
/// (`$PW`, `${DB_PASS}`, `%(pw)s`, `{{ secrets.X }}`, `<your password>`, `` `cat f` ``); a YAML
/// tag, anchor or alias (`!vault`, `*pw`); a path (`/run/secrets/db`, `~/.pgpass`); a mask
/// (`****`, `xxx`, `...`, nothing alphanumeric); a name in capitals (`YOUR_PASSWORD`); a value naming what it stands
/// for (`password`, `my-secret`, `changeme`, `your_password_here`); a word that is no password
/// (`none`, `true`, `string`); and what a redaction already wrote (`[REDACTED:...]`).
fn placeholder(v: &str) -> bool {
    let v = v.trim();
    let Some(first) = v.chars().next() else {
        return true;
    };
    if "$%{<[!*&#@`(/~".contains(first) {
        return true;
    }
    // Masks and elisions: `****`, `xxx`, `...`, `:****`, `•••`; no password is all symbols.
    if !v.bytes().any(|b| b.is_ascii_alphanumeric())
        || v.bytes().all(|b| matches!(b, b'x' | b'X'))
        || v.contains("...")
        || v.contains('…')
    {
        return true;
    }
    // A name in capitals: `YOUR_PASSWORD`, `CHANGEME`, `CLIENT_TRAFFIC_SECRET_0`.
    let caps = v
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit());
    if caps && (v.contains('_') || !v.bytes().any(|b| b.is_ascii_digit())) {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    let names = [
        "password",
        "passwd",
        "secret",
        "changeme",
        "change_me",
        "change-me",
        "changeit",
        "placeholder",
        "example",
        "redacted",
    ];
    if !v.bytes().any(|b| b.is_ascii_digit()) && names.iter().any(|n| lower.contains(n)) {
        return true;
    }
    matches!(
        lower.as_str(),
        "pass"
            | "pwd"
            | "none"
            | "null"
            | "nil"
            | "undefined"
            | "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "empty"
            | "required"
            | "optional"
            | "string"
            | "str"
            | "text"
            | "hidden"
            | "masked"
            | "sensitive"
            | "dummy"
            | "fake"
            | "sample"
            | "test"
            | "foo"
            | "bar"
            | "baz"
    )
}

// Fragments of the assignment rules, as macros so that `concat!` can build the rules from them
// at compile time.

/// A key naming a password: a word ending in password, passwd or passphrase (`PGPASSWORD`,
/// `dbPassword`, `spring.datasource.password`), or `pass`/`pwd` as a whole segment (`DB_PASS`,
/// `MYSQL_PWD`; not `bypass`).
macro_rules! password_key {
    () => {
        r"(?:[A-Za-z0-9_.\-]*(?:[Pp]ass(?:word|wd|phrase)|PASS(?:WORD|WD|PHRASE))|(?:[A-Za-z0-9]+[_.\-])*(?:[Pp]ass|PASS|[Pp]wd|PWD))"
    };
}

/// A key naming a secret: a word ending in secret (`client_secret`, `clientSecret`), with an
/// optional key or access key after it (`SECRET_KEY`, `AWS_SECRET_ACCESS_KEY`).
macro_rules! secret_key {
    () => {
        r"(?:[A-Za-z0-9_.\-]*(?:[Ss]ecret|SECRET)(?:[_\-]?(?:[Kk]ey|KEY|[Aa]ccess[_\-]?[Kk]ey|ACCESS_KEY))?)"
    };
}

/// The same keys in capitals, as environment variables are spelled (`PGPASSWORD=`).
macro_rules! env_password_key {
    () => {
        r"(?:[A-Z0-9_]*(?:PASSWORD|PASSWD|PASSPHRASE)|(?:[A-Z0-9]+_)*(?:PASS|PWD))"
    };
}
macro_rules! env_secret_key {
    () => {
        r"(?:[A-Z0-9_]*SECRET(?:_KEY|_ACCESS_KEY)?)"
    };
}

/// A value of a shell word or a config line: double-quoted (group 1), single-quoted (2), or
/// bare up to a space, quote or shell operator (3). A bare value must end there, not at a `(`
/// (`getpass()` is a call, not a value). A bare value never starts with `[` or `{`, so a
/// `[REDACTED:...]` already written is not matched again.
macro_rules! shell_value {
    () => {
        r#"(?:"([^"\\\r\n]+)"|'([^'\r\n]+)'|([^\s"'\\`;&|<>(){}\[\]][^\s"'\\`;&|<>(){}]*)(?:(?m:$)|[\s"'\\`;&|<>)}]))"#
    };
}

/// A value in code, JSON, YAML or INI: quoted (group 1, also `\"...\"` in JSON inside a string;
/// group 2), or bare (3) up to a space, quote, `,`, `;`, `:` or bracket, and not ending at `(`
/// (a call), `:` (`String::new`) or `[` (an index).
macro_rules! code_value {
    () => {
        r#"(?:\\?"([^"\\\r\n]+)\\?"|'([^'\\\r\n]+)'|([^\s"'\\`,;&|<>(){}\[\]=:][^\s"'\\`,;&|<>(){}\[\]:]*)(?:(?m:$)|[\s"'\\`,;&|<>)}\]]))"#
    };
}

/// `KEY` (optionally quoted), then `=`, `:`, `:=` or `=>`, then the value.
macro_rules! code_assignment {
    ($key:expr) => {
        concat!(
            r"(?-u:\b)",
            $key,
            r#"\\?["']?[ \t]*(?:=>|:=|=|:)[ \t]*"#,
            code_value!()
        )
    };
}

/// The built-in rules, in the order they apply: the specific prefixes before the generic `sk-`;
/// vendor tokens before `Bearer`, so a `Bearer sk-ant-...` is named by its vendor; and
/// everything with a fixed shape before the assignments, so `GH_TOKEN_PASSWORD=ghp_...` is
/// named `github-token` and the assignment then sees a `[REDACTED:...]`, a placeholder.
/// `(?-u:\b)` is an ASCII word boundary: Unicode ones make the regex engine slower on
/// non-ASCII text, and the secrets are ASCII.
/// `(kind, pattern, group replaced, check)`, compiled into [`Rule`]s.
type RuleSpec = (
    &'static str,
    &'static str,
    usize,
    fn(&Captures, &str) -> bool,
);

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
    ("google-api-key", r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}", 0, any),
    (
        "google-oauth-client-secret",
        r"(?-u:\b)GOCSPX-[0-9A-Za-z_\-]{28}",
        0,
        any,
    ),
    (
        "stripe-key",
        // Secret and restricted keys, live and test; not the publishable `pk_`.
        r"(?-u:\b)[rs]k_(?:live|test)_[0-9A-Za-z]{24,}",
        0,
        any,
    ),
    ("npm-token", r"(?-u:\b)npm_[A-Za-z0-9]{36}(?-u:\b)", 0, any),
    (
        "pypi-token",
        // A macaroon whose first bytes name pypi.org or test.pypi.org.
        r"(?-u:\b)pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50,}",
        0,
        any,
    ),
    (
        "slack-webhook",
        // The path is the secret; the host stays, to say what it was.
        r"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9_\-]+/[A-Za-z0-9_/\-]{8,})",
        1,
        not_all_x,
    ),
    (
        "azure-key",
        // Storage account keys (88 base64 characters) and Service Bus / Event Hubs keys, in
        // their connection strings.
        r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{40,}={0,2})",
        1,
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
    (
        "jwt",
        // Header and payload are base64url JSON objects (`{"` is `eyJ`); after `Bearer` and
        // `token=`, which name it by where it was.
        r"(?-u:\b)eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
        0,
        any,
    ),
    (
        "database-password",
        // The password of a connection string; the user, host and database stay. The password
        // runs to the last `@` before the host, as drivers read it (`p@ss@db`). Brackets are
        // not in a user or password (they are percent-encoded there), so a `[REDACTED:...]`
        // already written is not taken for one.
        r#"(?-u:\b)(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse)(?:\+[A-Za-z0-9]+)?://([^\s:/?#@"'<>\\\[\]]*):([^\s/?#"'<>\\\[\]]+)@[A-Za-z0-9\[]"#,
        2,
        url_password,
    ),
    (
        "url-password",
        r#"(?-u:\b)[A-Za-z][A-Za-z0-9+.\-]*://([^\s:/?#@"'<>\\\[\]]*):([^\s/?#"'<>\\\[\]]+)@[A-Za-z0-9\[]"#,
        2,
        url_password,
    ),
    (
        "password",
        concat!(r"(?-u:\b)", env_password_key!(), "=", shell_value!()),
        1,
        literal,
    ),
    (
        "secret",
        concat!(r"(?-u:\b)", env_secret_key!(), "=", shell_value!()),
        1,
        literal,
    ),
    (
        "password",
        concat!(
            r"--(?:[a-z0-9]+-)*(?:password|passwd|pass|pwd)=",
            shell_value!()
        ),
        1,
        literal,
    ),
    (
        "password",
        concat!(
            r"--(?:[a-z0-9]+-)*(?:password|passwd|pass|pwd) +",
            shell_value!()
        ),
        1,
        flag_value,
    ),
    (
        "secret",
        concat!(r"--(?:[a-z0-9]+-)*secret=", shell_value!()),
        1,
        literal,
    ),
    ("password", code_assignment!(password_key!()), 1, code),
    ("secret", code_assignment!(secret_key!()), 1, code),
];

/// A JSON object member whose key names a password or secret (`"password": "..."` in a tool's
/// input) has its whole string value replaced, unless it is a placeholder. Bare `pass`/`pwd`
/// are left out: as JSON keys they are as often a test's result or a working directory.
const KEYED: &[(&str, &str)] = &[
    (
        "password",
        r"^(?:[A-Za-z0-9_.\-]*(?:[Pp]ass(?:word|wd|phrase)|PASS(?:WORD|WD|PHRASE))|(?:[A-Za-z0-9]+[_.\-])+(?:[Pp]ass|PASS|[Pp]wd|PWD))$",
    ),
    ("secret", concat!("^", secret_key!(), "$")),
];

/// A superset of the rules, matched against the raw event text: literal prefixes only, so the
/// engine's prefilter scans for them at memory speed. JSON escapes cannot hide these prefixes
/// (they are plain ASCII letters, digits, `-` and `_`, which encoders do not escape); the query
/// rule checks `token=` alone because Go's encoder writes `&` as `\u0026`. Between an
/// assignment's key and its `=` or `:` may stand quotes and blanks, escaped in JSON (`\"`,
/// `\t`, and `\u0022`, `\u0027` from encoders that escape every quote). A URL's `//` may be
/// written `\/\/`, and its user and password hold no `/`, blank or `"`.
const PRECHECK: &str = concat!(
    r"-----BEGIN |sk-[A-Za-z0-9_\-]{20}|gh[pousr]_[A-Za-z0-9]{36}|github_pat_|glpat-|xox[bpars]-[0-9]",
    r"|AKIA[A-Z0-9]{16}|ASIA[A-Z0-9]{16}|AIza[0-9A-Za-z_\-]{35}|GOCSPX-|[rs]k_live_|[rs]k_test_",
    r"|npm_[A-Za-z0-9]{36}|pypi-AgE|hooks\.slack\.com|AccountKey=|SharedAccessKey=",
    r"|[Bb]earer|token=|eyJ[A-Za-z0-9_\-]+\.eyJ",
    r#"|:\\?/\\?/[^/\s"]*@"#,
    r"|(?:assword|ASSWORD|asswd|ASSWD|assphrase|ASSPHRASE|[Pp]ass|PASS|[Pp]wd|PWD|ecret|ECRET)",
    r"(?:[_\-]?(?:[Kk]ey|KEY|[Aa]ccess[_\-]?[Kk]ey|ACCESS_KEY))?",
    r#"(?:[\\"' \t]|\\t|\\u00(?:2[27]|09))*[=:]"#,
    r"|-(?:password|passwd|pass|pwd) ",
);

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

/// The built-in rules, compiled.
struct Compiled {
    rules: Vec<Rule>,
    keyed: Vec<(&'static str, Regex)>,
    precheck: Regex,
}

impl Compiled {
    fn new() -> Compiled {
        let rules = RULES
            .iter()
            .map(|&(kind, re, group, valid)| Rule {
                kind,
                re: Regex::new(re).expect("built-in patterns compile"),
                group,
                valid,
            })
            .collect();
        let keyed = KEYED
            .iter()
            .map(|&(kind, re)| (kind, Regex::new(re).expect("built-in keys compile")))
            .collect();
        Compiled {
            rules,
            keyed,
            precheck: Regex::new(PRECHECK).expect("the pre-check compiles"),
        }
    }
}

/// The built-in rules, plus any custom patterns.
pub struct Redactor {
    /// Compiled when first needed: compiling them costs about as much as scanning a few MB,
    /// which tonbo-batch need not spend when tonbo-map redacted every line already.
    compiled: OnceCell<Compiled>,
    custom: Vec<Regex>,
    /// Whether the built-in rules apply to the event at hand (not when an earlier stage applied
    /// them already); custom patterns always do.
    builtin: bool,
    pub counts: Counts,
}

impl Redactor {
    /// The built-in rules and `custom` patterns (matches become `[REDACTED:custom]`).
    pub fn new(custom: Vec<Regex>) -> Redactor {
        Redactor {
            compiled: OnceCell::new(),
            custom,
            builtin: true,
            counts: Counts::default(),
        }
    }

    /// Redacts one string; `None` when nothing in it matched.
    pub fn redact_str(&mut self, s: &str) -> Option<String> {
        let mut cur: Option<String> = None;
        if self.builtin {
            let compiled = self.compiled.get_or_init(Compiled::new);
            if compiled.precheck.is_match(s) {
                for rule in &compiled.rules {
                    let text = cur.as_deref().unwrap_or(s);
                    if let Some(t) = apply(rule, text, &mut self.counts) {
                        cur = Some(t);
                    }
                }
            }
        }
        for re in &self.custom {
            let text = cur.as_deref().unwrap_or(s);
            let mut n = 0;
            let t = re.replace_all(text, |_: &Captures| {
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
            let compiled = self.compiled.get_or_init(Compiled::new);
            if self.custom.is_empty() && !compiled.precheck.is_match(json) {
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

    /// Redacts an input line kept in the rejects file: as JSON when it is JSON, else as text.
    pub fn redact_line(&mut self, line: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(line);
        if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
            self.redact_event(&text)
        } else {
            self.redact_str(&text)
        }
    }

    /// Redacts the string value of the object member `key`: the whole value when the key names
    /// a password or secret and the value is no placeholder, else as any other string.
    fn redact_member(&mut self, key: Option<&str>, value: &str) -> Option<String> {
        if self.builtin {
            if let Some(key) = key {
                let kind = self
                    .compiled
                    .get_or_init(Compiled::new)
                    .keyed
                    .iter()
                    .find(|(_, re)| re.is_match(key))
                    .map(|(k, _)| *k);
                if let Some(kind) = kind.filter(|_| quoted_value(value)) {
                    self.counts.add(kind);
                    return Some(format!("[REDACTED:{kind}]"));
                }
            }
        }
        self.redact_str(value)
    }
}

/// Replaces the valid matches of `rule` in `text`; `None` when there were none.
fn apply(rule: &Rule, text: &str, counts: &mut Counts) -> Option<String> {
    let mut out = String::new();
    let mut last = 0;
    for caps in rule.re.captures_iter(text) {
        let m = if rule.group == 0 {
            caps.get(0)
        } else {
            (rule.group..caps.len()).find_map(|i| caps.get(i))
        };
        let Some(m) = m else {
            continue;
        };
        if !(rule.valid)(&caps, m.as_str()) {
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
                let (end, escaped) = string_end(b, start)?;
                let token = &json[start..end];
                let inner = &json[start + 1..end - 1];
                let is_key = b[end..]
                    .iter()
                    .find(|c| !c.is_ascii_whitespace())
                    .is_some_and(|&c| c == b':');
                let is_value = !is_key && prev == b':';
                let keep = is_value && is_identity(&path, key);
                if !keep {
                    let decoded: Cow<str> = if escaped {
                        decode_escaped(token)?.into()
                    } else {
                        inner.into()
                    };
                    let red = if is_value {
                        r.redact_member(key, &decoded)
                    } else {
                        r.redact_str(&decoded)
                    };
                    if let Some(red) = red {
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

/// The end (one past the closing quote) of the JSON string literal opening at `start`, and
/// whether it holds an escape; `None` when it does not close.
fn string_end(b: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut j = start + 1;
    let mut escaped = false;
    while j < b.len() && b[j] != b'"' {
        if b[j] == b'\\' {
            escaped = true;
            j += 1;
        }
        j += 1;
    }
    (j < b.len()).then_some((j + 1, escaped))
}

/// Decodes a JSON string literal that holds escapes. A lone surrogate (`\ud800`) is valid
/// JSON text but not a Rust string. Skipping the string would let its secrets through; with
/// surrogates made U+FFFD it decodes, and is re-encoded only if a secret was in it.
fn decode_escaped(token: &str) -> Option<String> {
    serde_json::from_str::<String>(token)
        .or_else(|_| serde_json::from_str::<String>(&no_surrogates(token)))
        .ok()
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

    /// `(kind, text)` for each kind, in the forms each one takes: the text with each secret
    /// between `«` and `»`, where it becomes `[REDACTED:<kind>]` and all else stays. Secrets are
    /// built from parts, as above.
    const KINDS: &[(&str, &str)] = &[
        (
            "private-key",
            concat!(
                "key:\n«-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA",
                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "\nabc+/=\n-----END RSA PRIVATE KEY-----»\nafter"
            ),
        ),
        (
            "private-key",
            concat!(
                "«-----BEGIN OPENSSH PRIVATE KEY-----\n",
                "b3BlbnNzaC1rZXktdjEAAAAA»\n"
            ),
        ),
        ("aws-access-key-id", concat!("«AKIA", "IOSFODNN7EXAMPL2»")),
        (
            "aws-access-key-id",
            concat!("id=«ASIA", "Y34EXAMPLE5XZ3QK» x"),
        ),
        (
            "github-token",
            concat!("token «ghp_", "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xY2zA4»"),
        ),
        (
            "github-token",
            concat!("«github_pat_", "11ABCDEFG0123456789_abcdefghijKLMNOP»"),
        ),
        ("gitlab-token", concat!("«glpat-", "xY9zAb12Cd34Ef56Gh78»")),
        (
            "slack-token",
            concat!("«xoxb-", "123456789012-1234567890123-AbCdEfGhIjKlMnOp»"),
        ),
        (
            "openai-api-key",
            concat!("«sk-", "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4Cd5Ef»"),
        ),
        (
            "openai-api-key",
            concat!("«sk-proj-", "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv_x-Y»"),
        ),
        (
            "anthropic-api-key",
            concat!(
                "«sk-ant-api03-",
                "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3-_AA»"
            ),
        ),
        (
            "bearer-token",
            "Authorization: Bearer «eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-1»",
        ),
        (
            "bearer-token",
            "GET https://api.example.com/v1?x=1&access_token=«a1B2c3D4e5F6g7H8» HTTP/1.1",
        ),
        ("bearer-token", "https://h/p?token=«Zx81kLmQ0pRtY6vW»"),
        (
            "database-password",
            "psql postgres://app:«Sup3r-s3cret»@db.internal:5432/shop",
        ),
        (
            "database-password",
            "MONGO=mongodb+srv://admin:«p@ss@w0rd»@cluster0.mongodb.net/db",
        ),
        (
            "database-password",
            "redis://:«f00bar9x»@cache:6379/0 and mysql+pymysql://root:«r00tpw»@h/app",
        ),
        (
            "url-password",
            "git clone https://deploy:«Zx81kLmQ0p»@git.example.com/r.git",
        ),
        ("password", "export PGPASSWORD=«hunter2» && psql"),
        ("password", "MYSQL_PWD='«s3cr3t pass»' mysql -u root"),
        ("password", "mysqldump --password=«Tr0ub4dor»&3 db"),
        (
            "password",
            "docker login -u me --password «Zq7!wexa» registry.io",
        ),
        ("password", "db:\n  password: «hunter2!»\n  user: app\n"),
        (
            "password",
            r#"{"user": "app", "password": "«correct horse battery»"}"#,
        ),
        ("password", r#"{\"password\":\"«Xk29fa»\"}"#),
        ("password", "spring.datasource.password=«Pa55word»\n"),
        ("password", "Server=db;User Id=sa;Pwd=«Str0ng!Pwd»;"),
        ("password", "connect(host, password=\"«s3cret-value»\")"),
        (
            "secret",
            "AWS_SECRET_ACCESS_KEY=«wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzKEY»",
        ),
        ("secret", "client_secret = '«q8Lk2Wm4Pz7Rt1Yv»'"),
        (
            "jwt",
            concat!(
                "Authorization: «eyJhbGciOiJIUzI1NiJ9.",
                "eyJzdWIiOiIxMjM0In0.3Fq9xLk2Pz8WmR4tYv7NcB1dHs6Ja0Ge5UoIy2Tr»"
            ),
        ),
        (
            "google-api-key",
            concat!("maps?key=«AIza", "SyD3f8Kq2LmN9pR7sT4vW1xY6zA0bC5dE8g»&q=x"),
        ),
        (
            "google-oauth-client-secret",
            concat!("client secret «GOCSPX-", "Kq2LmN9pR7sT4vW1xY6zA0bC5dE8»."),
        ),
        (
            "azure-key",
            concat!(
                "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=",
                "«Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",
                "K1SZFPTOtrKBHBeksoGMGw==»;EndpointSuffix=core.windows.net"
            ),
        ),
        (
            "azure-key",
            concat!(
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;",
                "SharedAccessKey=«Kq2LmN9pR7sT4vW1xY6zA0bC5dE8gHj3Lk9Qw2Er4Ty=»"
            ),
        ),
        (
            "stripe-key",
            concat!(
                "STRIPE_KEY=«sk",
                "_live_",
                "51Hq2LmN9pR7sT4vW1xY6zA0bC5dE8»"
            ),
        ),
        (
            "stripe-key",
            concat!(
                "stripe.api_key = \"«rk",
                "_test_",
                "4eC39HqLyjWDarjtT1zdp7dc»\""
            ),
        ),
        (
            "slack-webhook",
            concat!(
                "curl -X POST https://hooks.slack.com/services/«T024BE7LD/B01AB2CD3EF/",
                "Xq8Lk2Wm4Pz7Rt1Yv6Nb3Jc9» -d @msg.json"
            ),
        ),
        (
            "npm-token",
            concat!(
                "//registry.npmjs.org/:_authToken=«npm_",
                "Kq2LmN9pR7sT4vW1xY6zA0bC5dE8gHj3Lk9Q»"
            ),
        ),
        (
            "pypi-token",
            concat!(
                "twine upload -u __token__ -p «pypi-AgEIcHlwaS5vcmc",
                "CJGE2YWQ4ZTk0LWI3ZDctNDM5NC05NmY4LWQzZDc3Y2Q3ZjQyZQACKlszLCJhYjQ» dist/*"
            ),
        ),
    ];

    /// An entry of [`KINDS`]: the text, and what it becomes.
    fn unmarked(kind: &str, marked: &str) -> (String, String) {
        let text = marked.replace(['«', '»'], "");
        let mut want = String::new();
        let mut rest = marked;
        while let Some((before, secret_on)) = rest.split_once('«') {
            let (_, after) = secret_on.split_once('»').expect("a « without its »");
            want += before;
            want += &format!("[REDACTED:{kind}]");
            rest = after;
        }
        (text, want + rest)
    }

    #[test]
    fn each_kind_takes_only_the_secret() {
        for (kind, marked) in KINDS {
            let (text, want) = unmarked(kind, marked);
            let mut r = Redactor::new(vec![]);
            let got = r.redact_str(&text).unwrap_or_else(|| panic!("{text:?}"));
            assert_eq!(got, want, "{text:?}");
            let n = want.matches("[REDACTED:").count() as u64;
            assert_eq!(r.counts.0, vec![(*kind, n)], "{text:?} -> {got:?}");
            // A second pass finds nothing: markers and what is around them are no secrets.
            let mut again = Redactor::new(vec![]);
            assert_eq!(again.redact_str(&got), None, "{got:?}");
        }
    }

    #[test]
    fn placeholders_and_code_are_left_alone() {
        for s in [
            "password=",
            "password=$PASSWORD",
            "PGPASSWORD=$PGPASSWORD psql",
            "password=${DB_PASS}",
            "DB_PASSWORD=${DB_PASSWORD:-}",
            "password=<your password>",
            "PASSWORD=<password>",
            "password=xxx",
            "PASSWORD=xxxxxxxx",
            "password: '****'",
            "password = \":****\"",
            "ADMIN_PASSWORD=changeme",
            "password: changeme",
            "\"password\": \"your_password_here\"",
            "PASSWORD=YOUR_PASSWORD",
            "SECRET_KEY=\"[REDACTED:secret]\"",
            "password: !vault |",
            "password: *db_password",
            "password: \"{{ .Values.db.password }}\"",
            "password: ${{ secrets.REGISTRY_PASSWORD }}",
            "password=%(db_pass)s",
            "PGPASSWORD=$(cat /run/secrets/db) psql",
            "password_file: /run/secrets/db",
            "PWD=/home/dev/shop",
            "OLDPWD=/home/dev",
            "secret: /run/secrets/signing",
            "password=password",
            "password=pw",
            "connect(user=user, password=password)",
            "password=self.password",
            "password=settings.DB_PASSWORD,",
            "password=getpass()",
            "password=os.environ[\"DB_PASSWORD\"]",
            "password: string;",
            "password: String,",
            "password: Option<String>,",
            "password: &'a str,",
            "password: z.string().min(8),",
            "password: req.body.password,",
            "password: user.password!,",
            "secret: process.env.JWT_SECRET!,",
            "password: String::new(),",
            "pub log_passwd: __u32,",
            "pub const STABLE_SECRET: _bindgen_ty_3 = _bindgen_ty_3::STABLE_SECRET;",
            "MATCH_PASS = 0x04,",
            "TrafficSecret => \"CLIENT_TRAFFIC_SECRET_0\",",
            "password: u32,",
            "password: str = None",
            "password_hash = generate_password_hash(pw)",
            "if password == other:",
            "print(\"Password: \" + pw + \" is wrong\")",
            "{\"label\": \"Password:\", \"value\": x}",
            "log.info(\"password reset for %s\", email)",
            "docker build --secret id=npmrc,src=$HOME/.npmrc .",
            "docker build --secret=id=npmrc,src=.npmrc .",
            "docker login --password-stdin",
            "use --password to set it, or --pass through",
            "pass show shop/db",
            "bypass=true",
            "compass: north",
            "secrets: inherit",
            "secretName: db-credentials",
            "kind: Secret",
            "The password is hashed; the secret is in Vault; tokens expire.",
            "Password: required",
            "https://user:password@example.com",
            "https://user:pass@example.com",
            "postgres://postgres:postgres@localhost:5432/postgres",
            "amqp://guest:guest@localhost:5672/",
            "postgres://{user}:{password}@{host}/db",
            "https://${USER}:${TOKEN}@github.com/o/r",
            "https://<user>:<token>@github.com/o/r",
            "ssh://git@github.com:22/o/r.git",
            "http://localhost:8080/path?next=/a@b",
            "http://[::1]:8080/",
            "eyJhbGciOiJIUzI1NiJ9 is a base64url header",
            "AIza",
            "GOCSPX-short",
            "sk_live_",
            "pk_live_51Hq2LmN9pR7sT4vW1xY6zA0bC5dE8",
            "npm_config_cache=/tmp/npm",
            "pypi-token",
            "AccountKey=",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        ] {
            assert_eq!(red(s), s, "{s:?}");
        }
    }

    /// Real-looking code and prose that name passwords, secrets and tokens without holding any.
    #[test]
    fn ordinary_code_and_prose_come_out_byte_identical() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/redaction");
        for name in ["ordinary.rs", "ordinary.py", "ordinary.ts", "ordinary.md"] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            let mut r = Redactor::new(vec![]);
            assert_eq!(r.redact_str(&text), None, "{name}: {:?}", r.counts);
            for line in text.lines() {
                assert_eq!(r.redact_str(line), None, "{name}: {line}");
            }
            // As an event's tool output, too.
            let ev = serde_json::json!({"type": "agent.tool_result", "content": [{"type": "text", "text": text}],
                                        "metadata": {"source": "m", "source_key": "k"}});
            assert_eq!(r.redact_event(&ev.to_string()), None, "{name}");
        }
    }

    #[test]
    fn json_members_naming_a_password_lose_their_value() {
        let mut r = Redactor::new(vec![]);
        let ev = r#"{"type":"agent.tool_use","input":{"user":"app","password":"Tr0ub4dor&3","db_pass":"x9","clientSecret":"q8Lk2Wm4","pass":"yes","pwd":"/home/u","password_hint":"pet"},"metadata":{"source":"m","source_key":"k"}}"#;
        assert_eq!(
            r.redact_event(ev).unwrap(),
            r#"{"type":"agent.tool_use","input":{"user":"app","password":"[REDACTED:password]","db_pass":"[REDACTED:password]","clientSecret":"[REDACTED:secret]","pass":"yes","pwd":"/home/u","password_hint":"pet"},"metadata":{"source":"m","source_key":"k"}}"#
        );
        assert_eq!(r.counts.summary(), ", redacted 3 (password 2, secret 1)");
        for plain in [
            r#"{"password":""}"#,
            r#"{"password":"${DB_PASSWORD}"}"#,
            r#"{"password":"changeme"}"#,
            r#"{"password":{"type":"string"}}"#,
            r#"{"password":["a1b2c3d4"]}"#,
        ] {
            assert_eq!(r.redact_event(plain), None, "{plain}");
        }
    }

    #[test]
    fn the_precheck_sees_escaped_forms() {
        // Encoders that escape every quote (\u0022), and slashes (\/), in a tool's JSON output.
        let mut r = Redactor::new(vec![]);
        let ev = r#"{"type":"x","text":"{\u0022password\u0022: \u0022Tr0ub4dor&3\u0022} https:\/\/deploy:Zx81kLmQ0p@git.example.com\/r"}"#;
        let out = r.redact_event(ev).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["text"],
            "{\"password\": \"[REDACTED:password]\"} https://deploy:[REDACTED:url-password]@git.example.com/r"
        );
        let ev = "{\"type\":\"x\",\"text\":\"password\\t= Tr0ub4dor&3\"}";
        assert!(r.redact_event(ev).is_some());
    }

    #[test]
    fn marked_events_get_custom_patterns_only() {
        let mut r = Redactor::new(vec![parse_pattern("corp_[0-9]+").unwrap()]);
        let ev = format!(r#"{{"type":"x","text":"{} corp_42"}}"#, gh());
        let out = r.redact_event_marked(&ev, Some(RULES_VERSION)).unwrap();
        assert_eq!(
            out,
            format!(r#"{{"type":"x","text":"{} [REDACTED:custom]"}}"#, gh())
        );
        let out = r.redact_event_marked(&ev, Some(0)).unwrap();
        assert!(!out.contains(&gh()), "{out}");
        let mut plain = Redactor::new(vec![]);
        assert_eq!(plain.redact_event_marked(&ev, Some(RULES_VERSION)), None);
        assert_eq!(plain.counts.total(), 0);
    }

    #[test]
    fn broken_json_is_not_touched() {
        let mut r = Redactor::new(vec![]);
        assert_eq!(r.redact_event(&format!("{{\"a\":\"{}", gh())), None);
        assert_eq!(r.redact_event("\"\\"), None);
    }
}
