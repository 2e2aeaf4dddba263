//! What the tests of the event stages (tonbo-map, tonbo-batch, the front door) share: reading
//! event lines back by session, an OpenCode database's tables, running a stage and reading the
//! lines it rejected, and planted secrets with the checks that none of them got through.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::value::RawValue;
use serde_json::Value;

use crate::{bin, first_line_then_close, Lines, Run};

/// The tables of an OpenCode database (the T2 layout, `opencode.db`), for a test that writes
/// its own rows into them.
pub const OPENCODE_T2_TABLES: &str = "
CREATE TABLE project (id text PRIMARY KEY, worktree text NOT NULL, vcs text, name text,
  time_created integer NOT NULL, time_updated integer NOT NULL, time_initialized integer, sandboxes text NOT NULL);
CREATE TABLE session (id text PRIMARY KEY, project_id text NOT NULL, parent_id text, slug text NOT NULL,
  directory text NOT NULL, title text NOT NULL, version text NOT NULL, share_url text,
  summary_additions integer, summary_deletions integer, summary_files integer, summary_diffs text,
  revert text, permission text, time_created integer NOT NULL, time_updated integer NOT NULL,
  time_compacting integer, time_archived integer);
CREATE TABLE message (id text PRIMARY KEY, session_id text NOT NULL, time_created integer NOT NULL,
  time_updated integer NOT NULL, data text NOT NULL);
CREATE TABLE part (id text PRIMARY KEY, message_id text NOT NULL, session_id text NOT NULL,
  time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL);
";

/// tonbo-map's event lines for what `READER -q PATH` reads: two real processes and a real pipe,
/// both of which must succeed.
pub fn mapped_events(reader: &str, path: &Path) -> String {
    let mut read = Command::new(bin(reader))
        .arg("-q")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {reader}: {e}"));
    let map = Command::new(bin("tonbo-map"))
        .arg("-q")
        .stdin(read.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(
        read.wait().unwrap().success(),
        "{reader} {}",
        path.display()
    );
    assert!(
        map.status.success(),
        "tonbo-map after {reader} {}",
        path.display()
    );
    String::from_utf8(map.stdout).unwrap()
}

/// The events of event lines (`{"v":1,"session_id":..,"event":{..}}`, as tonbo-map writes
/// them), by session, each session's in order.
pub fn events_by_session(lines: &str) -> BTreeMap<String, Vec<Value>> {
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in lines.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not an event line ({e}): {line}"));
        let session = v["session_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no session_id: {line}"));
        by.entry(session.to_string())
            .or_default()
            .push(v["event"].clone());
    }
    by
}

/// The source keys (`metadata.source_key`) of `events`, in their order.
pub fn source_keys(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["metadata"]["source_key"].as_str().unwrap().to_string())
        .collect()
}

/// The source keys of the events `READER -q PATH | tonbo-map` gives ([`mapped_events`]), by
/// session, each session's in the mapping's order.
pub fn mapped_keys(reader: &str, path: &Path) -> BTreeMap<String, Vec<String>> {
    events_by_session(&mapped_events(reader, path))
        .into_iter()
        .map(|(session, events)| (session, source_keys(&events)))
        .collect()
}

/// [`mapped_keys`], each session's keys sorted.
pub fn mapped_keys_sorted(reader: &str, path: &Path) -> BTreeMap<String, Vec<String>> {
    let mut keys = mapped_keys(reader, path);
    keys.values_mut().for_each(|k| k.sort());
    keys
}

/// Runs the stage `bin` with `args` to its end, feeding it `stdin` ([`crate::run`]).
pub fn run_stage(bin: impl AsRef<OsStr>, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    crate::run(cmd, Some(stdin))
}

/// Runs the stage `bin` with `args` as `... | head -1` would, feeding it `stdin`
/// ([`first_line_then_close`]); it must end quietly. Its first line.
pub fn first_line_of(bin: &str, args: &[&str], stdin: Lines) -> String {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let closed = first_line_then_close(cmd, Some(stdin));
    closed.assert_quiet();
    closed.first
}

/// A line a stage wrote on stdout: `{"v":..,"session_id":..,FIELD:..}`.
#[derive(Debug, PartialEq, Eq)]
pub struct StageLine {
    pub v: u64,
    pub session_id: String,
    /// The value of its `FIELD` (`event` of an event line, `events` of a batch line), as the
    /// exact text the stage wrote.
    pub body: String,
}

impl StageLine {
    /// Parses `line`, whose `field` is its body; fails the test if it is not such a line.
    #[track_caller]
    pub fn parse(line: &str, field: &str) -> StageLine {
        let fields: BTreeMap<String, &RawValue> = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not a JSON object ({e}): {line}"));
        let get = |name: &str| {
            fields
                .get(name)
                .unwrap_or_else(|| panic!("stdout line without `{name}`: {line}"))
                .get()
        };
        StageLine {
            v: serde_json::from_str(get("v")).unwrap_or_else(|e| panic!("`v` ({e}): {line}")),
            session_id: serde_json::from_str(get("session_id"))
                .unwrap_or_else(|e| panic!("`session_id` ({e}): {line}")),
            body: get(field).to_string(),
        }
    }
}

/// Fails the test unless a stage said `text` on its stderr.
#[track_caller]
pub fn assert_said(stderr: &str, text: &str) {
    assert!(stderr.contains(text), "no {text:?} in:\n{stderr}");
}

/// The lines of a stage's stderr that report a rejected input line.
pub fn rejected_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("rejected:")).collect()
}

/// The stage `stage` reported each of `bad` (`(line, raw text, part of the reason)`, rejected
/// from its stdin) on its stderr, once, in order, with its own line number and a reason, and
/// no other line: the lines that say so.
#[track_caller]
pub fn assert_rejected<'a>(
    stderr: &'a str,
    stage: &str,
    bad: &[(usize, &str, &str)],
) -> Vec<&'a str> {
    let reported = rejected_lines(stderr);
    assert_eq!(reported.len(), bad.len(), "{stderr}");
    for ((line, _, why), msg) in bad.iter().zip(&reported) {
        let prefix = format!("{stage}: -:{line}: rejected: ");
        assert!(
            msg.starts_with(&prefix),
            "expected `{prefix}...`, got `{msg}`"
        );
        assert!(msg.len() > prefix.len(), "empty reason: {msg}");
        assert!(
            msg.contains(why),
            "line {line}: expected `{why}` in `{msg}`"
        );
    }
    reported
}

/// The file `rejects` (a stage's `--rejects FILE`) holds exactly the `(line, raw text, part of
/// the reason)` of `bad`, in order, each rejected by the stage `stage` from its stdin.
#[track_caller]
pub fn assert_rejects_file(rejects: &Path, stage: &str, bad: &[(usize, &str, &str)]) {
    let text = std::fs::read_to_string(rejects).unwrap();
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("rejects line is JSON"))
        .collect();
    assert_eq!(recs.len(), bad.len(), "{text}");
    for ((line, raw, why), rec) in bad.iter().zip(&recs) {
        assert_eq!(rec["stage"], stage, "{rec}");
        assert_eq!(rec["input"], "-", "{rec}");
        assert_eq!(rec["line"], *line, "{rec}");
        assert_eq!(rec["raw"], *raw, "{rec}");
        assert!(
            rec["reason"]
                .as_str()
                .is_some_and(|s| !s.is_empty() && s.contains(why)),
            "{rec}"
        );
    }
}

impl Run {
    /// Exactly one input line was reported rejected, in a line that begins with `prefix`.
    #[track_caller]
    pub fn assert_one_rejected(&self, prefix: &str) {
        let reported = rejected_lines(&self.stderr);
        assert_eq!(reported.len(), 1, "{}", self.stderr);
        assert!(reported[0].starts_with(prefix), "{}", self.stderr);
    }

    /// The stage `stage` could not run (exit 2), and its error names `what`.
    #[track_caller]
    pub fn assert_fatal(&self, stage: &str, what: &str) {
        assert_eq!(self.code, Some(2), "stderr: {}", self.stderr);
        assert!(
            self.stderr.contains(&format!("{stage}: error:")),
            "{}",
            self.stderr
        );
        assert!(self.stderr.contains(what), "{}", self.stderr);
    }
}

/// Planted secrets, each with its kind: every kind of the built-in rules, bearer tokens twice
/// (in a header and in a URL). Built from parts so that no file looks like it holds live
/// credentials to secret scanners.
pub const SECRETS: [(&str, &str); 21] = [
    (
        "private-key",
        concat!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtz\n",
            "c2gtZWQyNTUxOQAAACDqVx1qY2kO5m7w3QyJ0lW9S4lZ8nJmE2u1H8cKx9V0aQAA\n",
            "-----END OPENSSH PRIVATE KEY-----"
        ),
    ),
    ("aws-access-key-id", concat!("AKIA", "Q3EXAMPLE7TESTK9")),
    (
        "github-token",
        concat!("ghp_", "Zk8mP2qR4sT6uV8wX0yA1bC3dE5fG7hJ9kL1"),
    ),
    ("gitlab-token", concat!("glpat-", "Hq7Wm2Xk9Lp4Rt6Yv1Zs")),
    (
        "slack-token",
        concat!("xoxb-", "204851736492-5093715284617-Tq8WkLp2Xm6Rv4Yz1Ns9"),
    ),
    (
        "openai-api-key",
        concat!("sk-proj-", "Qw3Er5Ty7Ui9Op1As2Df4Gh6Jk8Lz0Xc_Vb-Nm"),
    ),
    (
        "anthropic-api-key",
        concat!(
            "sk-ant-api03-",
            "Lq2Wr4Te6Yu8Io0Pa1Sd3Fg5Hj7Kl9Zx-Cv_BnMqWe"
        ),
    ),
    (
        "bearer-token",
        concat!("eyJhbGci", "OiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.Tk3n9Q"),
    ),
    ("bearer-token", concat!("ya29", "a0AfB_byC7dK2mQ9xR4tL8wZ")),
    // The generic kinds: where a password or secret is assigned, only the value goes.
    ("database-password", concat!("Sup3r-", "s3cret9")),
    ("url-password", concat!("Zx81", "kLmQ0pW")),
    ("password", concat!("Tr0ub4", "dor-33")),
    ("secret", concat!("q8Lk2Wm4", "Pz7Rt1Yv")),
    (
        "jwt",
        concat!(
            "eyJhbGciOiJIUzI1NiJ9.",
            "eyJzdWIiOiIxMjM0In0.",
            "3Fq9xLk2Pz8WmR4tYv7NcB1dHs6Ja0Ge5UoIy2Tr"
        ),
    ),
    (
        "google-api-key",
        concat!("AIza", "SyD3f8Kq2LmN9pR7sT4vW1xY6zA0bC5dE8g"),
    ),
    (
        "google-oauth-client-secret",
        concat!("GOCSPX-", "Kq2LmN9pR7sT4vW1xY6zA0bC5dE8"),
    ),
    (
        "azure-key",
        concat!(
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",
            "K1SZFPTOtrKBHBeksoGMGw=="
        ),
    ),
    (
        "stripe-key",
        concat!("sk", "_live_", "51Hq2LmN9pR7sT4vW1xY6zA0bC5dE8"),
    ),
    (
        "slack-webhook",
        concat!("T024BE7LD/B01AB2CD3EF/", "Xq8Lk2Wm4Pz7Rt1Yv6Nb3Jc9"),
    ),
    (
        "npm-token",
        concat!("npm_", "Kq2LmN9pR7sT4vW1xY6zA0bC5dE8gHj3Lk9Q"),
    ),
    (
        "pypi-token",
        concat!(
            "pypi-AgEIcHlwaS5vcmc",
            "CJGE2YWQ4ZTk0LWI3ZDctNDM5NC05NmY4LWQzZDc3Y2Q3ZjQyZQACKlszLCJhYjQ"
        ),
    ),
];

/// The first planted secret of `kind`.
pub fn secret(kind: &str) -> &'static str {
    SECRETS
        .iter()
        .find(|(k, _)| *k == kind)
        .unwrap_or_else(|| panic!("no planted secret of kind {kind}"))
        .1
}

/// Every way a secret could show in JSON text: as it is, and JSON-escaped (a key's newlines).
pub fn forms(secret: &str) -> [String; 2] {
    let escaped = serde_json::to_string(secret).unwrap();
    [
        secret.to_string(),
        escaped[1..escaped.len() - 1].to_string(),
    ]
}

/// `out` holds none of the `(kind, secret)` in any form, the marker of each kind, and each of
/// `kept` (text around a secret, with its marker).
#[track_caller]
pub fn assert_redacted<'a>(
    out: &str,
    secrets: impl IntoIterator<Item = (&'a str, &'a str)>,
    kept: &[&str],
) {
    for (kind, secret) in secrets {
        for f in forms(secret) {
            assert!(!out.contains(&f), "{kind} leaked: {f}");
        }
        assert!(out.contains(&format!("[REDACTED:{kind}]")), "{kind}");
    }
    for text in kept {
        assert!(out.contains(text), "{text:?} not kept");
    }
}

/// Runs the stage `bin` with `--rejects FILE` over `input`, whose `lines` lines are all rejected
/// and each holds the planted secret of `kind`: they are kept in FILE, and said on stderr,
/// redacted.
#[track_caller]
pub fn assert_rejects_redacted(bin: &str, input: &str, lines: usize, kind: &str) {
    let secret = secret(kind);
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let run = run_stage(
        bin,
        &["--rejects", rejects.to_str().unwrap()],
        input.as_bytes(),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let kept = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(kept.lines().count(), lines, "{kept}");
    assert!(!kept.contains(secret), "{kept}");
    let marker = format!("[REDACTED:{kind}]");
    assert_eq!(kept.matches(&marker).count(), lines, "{kept}");
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
}

/// The sessions `READER --scan PATHS` lists, each once, as the streams their events go to
/// (`<source>-<session>`, as tonbo-map names them), with their lines' fields checked.
pub fn scanned_sessions(reader: &str, paths: &[impl AsRef<OsStr>]) -> BTreeSet<String> {
    let out = Command::new(bin(reader))
        .args(["--scan", "-q"])
        .args(paths)
        .output()
        .unwrap();
    // A store that cannot be read fails the scan as it fails a read; the rest is listed.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{reader} --scan: {stderr}"
    );
    let mut sessions = BTreeSet::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let (source, native) = (
            v["source"].as_str().unwrap(),
            v["session"].as_str().unwrap(),
        );
        let session = tonbo_core::mapping::session_stream(source, native).unwrap();
        assert!(v["location"].is_string(), "{line}");
        assert!(v["bytes"].as_u64().is_some_and(|b| b > 0), "{line}");
        assert!(v["updated"].is_null() || v["updated"].is_string(), "{line}");
        assert!(sessions.insert(session), "{line}: listed twice");
    }
    sessions
}
