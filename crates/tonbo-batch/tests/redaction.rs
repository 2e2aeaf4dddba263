//! Drives the real `tonbo-batch` binary over event lines that did not come from tonbo-map (the
//! "any other harness" path) with planted secrets, and checks that none of them is in the
//! batches it writes, that `--no-redact` keeps them, that lines tonbo-map marked as redacted
//! pass unchanged, and that the rejects file is redacted too.

use serde_json::{json, value::RawValue, Value};
use tonbo_testkit::events::{assert_redacted, assert_rejects_redacted, run_stage, secret};

tonbo_testkit::local_run!();

const BIN: &str = env!("CARGO_BIN_EXE_tonbo-batch");

impl Run {
    /// The raw text of every event of every batch, in order.
    fn events(&self) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Batch<'a> {
            #[serde(borrow)]
            events: Vec<&'a RawValue>,
        }
        let mut out = Vec::new();
        for l in self.stdout.lines() {
            let b: Batch = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            out.extend(b.events.iter().map(|e| e.get().to_string()));
        }
        out
    }
}

fn run(args: &[&str], stdin: &str) -> Run {
    Run(run_stage(BIN, args, stdin.as_bytes()))
}

/// The kinds of the planted secrets used here (of `tonbo_testkit::events::SECRETS`), and the
/// text each stands in (`{}`).
const PLANTED: [(&str, &str); 7] = [
    ("github-token", "GH_TOKEN={} gh pr list"),
    ("aws-access-key-id", "aws_access_key_id = {}"),
    ("anthropic-api-key", "x-api-key: {}"),
    ("private-key", "the key:\n{}\n"),
    (
        "database-password",
        "DATABASE_URL=postgres://app:{}@db.internal/shop",
    ),
    ("password", "mysql -u root --password={} shop"),
    ("jwt", "{\"id_token\": \"{}\"}"),
];

/// `(kind, secret, the text holding it)` of each planted secret.
fn planted() -> Vec<(&'static str, &'static str, String)> {
    PLANTED
        .iter()
        .map(|(kind, around)| (*kind, secret(kind), around.replace("{}", secret(kind))))
        .collect()
}

/// An event line as a harness of its own would write it: no `redacted` marker.
fn line(session: &str, event: &Value) -> String {
    format!(
        "{}\n",
        json!({"v": 1, "session_id": session, "event": event})
    )
}

fn event(key: &str, text: &str) -> Value {
    json!({"type": "user.message", "content": [{"type": "text", "text": text}],
           "metadata": {"source": "my-harness", "source_key": key, "original_timestamp": null}})
}

/// One event per planted text, one tool use holding them all in its input, and one plain event.
fn input() -> (String, String) {
    let mut s = String::new();
    for (i, (_, _, text)) in planted().iter().enumerate() {
        s += &line("h-1", &event(&format!("t{i}"), text));
    }
    let texts: Vec<String> = planted().into_iter().map(|(_, _, t)| t).collect();
    s += &line(
        "h-1",
        &json!({"type": "agent.tool_use", "name": "Bash", "input": {"commands": texts},
                "metadata": {"source": "my-harness", "source_key": "tool", "original_timestamp": null}}),
    );
    // Spacing and number spellings a re-serialisation would change.
    let plain = r#"{"type":"x", "n": 1.50, "s":"\u00e9\/", "metadata":{"source":"m","source_key":"k","original_timestamp":null}}"#;
    s += &format!("{{\"v\":1,\"session_id\":\"h-1\",\"event\":{plain}}}\n");
    (s, plain.to_string())
}

#[test]
fn event_lines_written_elsewhere_are_redacted() {
    let (input, plain) = input();
    let r = run(&[], &input);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // The text around a secret, and the identity fields, are kept; an event without a secret
    // keeps its bytes.
    let kept = [
        "GH_TOKEN=[REDACTED:github-token] gh pr list",
        "postgres://app:[REDACTED:database-password]@db.internal/shop",
    ];
    let planted = planted();
    let secrets = planted.iter().map(|(kind, secret, _)| (*kind, *secret));
    assert_redacted(&r.stdout, secrets, &kept);
    let events = r.events();
    assert_eq!(events.len(), 9);
    assert_eq!(events[8], plain);
    for (i, e) in events[..7].iter().enumerate() {
        let v: Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["metadata"]["source_key"], format!("t{i}"));
    }
    // Each text once in its event and once in the tool use.
    assert!(
        r.stderr.ends_with(
            "tonbo-batch: 9 events in 1 batches, 0 oversized, 0 rejected, redacted 14 \
             (anthropic-api-key 2, aws-access-key-id 2, database-password 2, github-token 2, \
             jwt 2, password 2, private-key 2)\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn no_redact_keeps_the_events_as_they_were() {
    let (input, _) = input();
    let r = run(&["--no-redact"], &input);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let want: Vec<String> = input
        .lines()
        .map(|l| {
            let ev: tonbo_core::EventLine = serde_json::from_str(l).unwrap();
            ev.event.get().to_string()
        })
        .collect();
    assert_eq!(r.events(), want);
    assert!(!r.stdout.contains("[REDACTED"));
    assert!(!r.stderr.contains("redacted"), "{}", r.stderr);
}

#[test]
fn lines_marked_by_tonbo_map_are_not_scanned_again() {
    // A secret in a line that says the built-in rules were applied passes as it is: the marker
    // is tonbo-map's word, and scanning every event twice is what it saves.
    let (_, secret, text) = planted().remove(0);
    let ev = event("k", &format!("{text} corp_{}", "Ab12Cd34"));
    let marked = format!(
        "{}\n",
        json!({"v": 1, "session_id": "s", "redacted": 1, "event": ev})
    );
    let r = run(&[], &marked);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.events(), vec![ev.to_string()]);
    assert!(!r.stderr.contains("redacted"), "{}", r.stderr);

    // Its own --redact-pattern still applies to such a line (tonbo-map did not know it).
    let r = run(&["--redact-pattern", "corp_[A-Za-z0-9]{8}"], &marked);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains(secret));
    assert!(r.stdout.contains("[REDACTED:custom]"), "{}", r.stdout);
    assert!(r.stderr.contains(", redacted 1 (custom 1)"), "{}", r.stderr);

    // A marker of no version (0) or an unknown field does not count as redacted.
    let unmarked = marked.replace("\"redacted\":1", "\"redacted\":0");
    let r = run(&[], &unmarked);
    assert!(!r.stdout.contains(secret), "{}", r.stdout);
    assert!(
        r.stderr.contains("redacted 1 (github-token 1)"),
        "{}",
        r.stderr
    );
}

#[test]
fn rejected_lines_are_kept_redacted() {
    let gh = secret("github-token");
    let input = format!(
        "{}\nnot an event line {gh}\n",
        json!({"v": 1, "session_id": "", "event": {"text": format!("token {gh}")}})
    );
    assert_rejects_redacted(BIN, &input, 2, "github-token");
}

#[test]
fn a_bad_redact_pattern_is_a_usage_error() {
    let r = run(&["--redact-pattern", "a(b"], "");
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("`a(b`"), "{}", r.stderr);
}

#[test]
fn a_batch_redacted_here_names_its_events_by_the_keys_they_are_sent_with() {
    let text = format!("GH_TOKEN={} gh pr list", secret("github-token"));
    let r = run(&[], &line("h-1", &event("k-1", &text)));
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let head = tonbo_core::contract::BatchHead::read(r.stdout.trim_end().as_bytes())
        .expect("a head that matches its line");
    let sent: Value = serde_json::from_str(&r.events()[0]).unwrap();
    assert!(!sent.to_string().contains(secret("github-token")), "{sent}");
    assert_eq!(
        head.keys,
        [sent["metadata"]["source_key"].as_str().unwrap()]
    );
}
