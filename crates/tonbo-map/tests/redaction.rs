//! Drives the real `tonbo-map` binary over records with planted secrets of every kind (in a
//! prompt, a tool input, a tool output, an `events` record) and checks that none of them is in
//! what it writes, that `--no-redact` keeps them, and that `--redact-pattern` adds patterns.

use serde_json::{json, Value};
use tonbo_testkit::events::{
    assert_redacted, assert_rejects_redacted, forms, run_stage, secret, SECRETS,
};
use tonbo_testkit::{bin, Run};

const BIN: &str = env!("CARGO_BIN_EXE_tonbo-map");

fn run(args: &[&str], stdin: &str) -> Run {
    run_stage(BIN, args, stdin.as_bytes())
}

/// Where each planted secret ([`SECRETS`], in its order) goes: the text around it, `{}` for it.
const CONTEXTS: [&str; SECRETS.len()] = [
    "deploy with this key:\n{}\nthanks",
    "export AWS_ACCESS_KEY_ID={}",
    "git remote set-url origin https://{}@github.com/u/r",
    "GITLAB_TOKEN={} make release",
    "SLACK_BOT_TOKEN=\"{}\"",
    "OPENAI_API_KEY={}",
    "x-api-key: {}",
    "curl -H 'Authorization: Bearer {}' https://api",
    "GET https://api.example.com/me?access_token={}&x=1",
    "psql postgres://app:{}@db.internal:5432/shop -c 'select 1'",
    "git clone https://deploy:{}@git.example.com/r.git",
    "export PGPASSWORD={} && psql",
    "oauth:\n  client_secret: \"{}\"\n",
    "Authorization: {}",
    "GOOGLE_API_KEY={}",
    "{\"client_secret\": \"{}\"}",
    "AccountName=shop;AccountKey={};EndpointSuffix=x",
    "stripe.api_key = \"{}\"",
    "curl https://hooks.slack.com/services/{} -d @m.json",
    "//registry.npmjs.org/:_authToken={}",
    "TWINE_PASSWORD={} twine upload",
];

/// The text each planted secret stands in.
fn planted() -> Vec<String> {
    SECRETS
        .iter()
        .zip(CONTEXTS)
        .map(|((_, secret), around)| around.replace("{}", secret))
        .collect()
}

fn line(source: &str, session: &str, record: Value) -> String {
    json!({"v": 1, "source": source, "session": session, "record": record}).to_string() + "\n"
}

/// Claude Code lines putting every planted text in a prompt, a tool input and a tool output,
/// and an `events` record holding them all.
fn input() -> String {
    let sid = "c0ffee00-0000-4000-8000-000000000001";
    let mut s = String::new();
    for (i, text) in planted().into_iter().enumerate() {
        let ts = format!("2026-06-01T08:00:{i:02}.000Z");
        s += &line(
            "claude-code",
            sid,
            json!({"type": "user", "uuid": format!("p{i}"), "sessionId": sid, "timestamp": ts,
                   "message": {"role": "user", "content": text}}),
        );
        s += &line(
            "claude-code",
            sid,
            json!({"type": "assistant", "uuid": format!("a{i}"), "sessionId": sid, "timestamp": ts,
                   "message": {"id": format!("msg_{i}"), "role": "assistant", "model": "claude-x",
                               "content": [{"type": "tool_use", "id": format!("toolu_{i}"),
                                            "name": "Bash", "input": {"command": text}}],
                               "usage": {"input_tokens": 1, "output_tokens": 1}}}),
        );
        s += &line(
            "claude-code",
            sid,
            json!({"type": "user", "uuid": format!("r{i}"), "sessionId": sid, "timestamp": ts,
                   "message": {"role": "user", "content": [{"type": "tool_result",
                       "tool_use_id": format!("toolu_{i}"), "content": text}]},
                   "toolUseResult": {"stdout": text, "stderr": ""}}),
        );
    }
    let all = planted();
    s += &line(
        "events",
        "mine-1",
        json!({"type": "my.note", "texts": all,
               "metadata": {"source": "mine", "source_key": "k1", "original_timestamp": null}}),
    );
    s
}

#[test]
fn planted_secrets_never_reach_the_output() {
    let r = run(&[], &input());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for l in r.stdout.lines() {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    // The text around a secret is kept.
    let kept = [
        "export AWS_ACCESS_KEY_ID=[REDACTED:aws-access-key-id]",
        "curl -H 'Authorization: Bearer [REDACTED:bearer-token]' https://api",
        "psql postgres://app:[REDACTED:database-password]@db.internal:5432/shop",
    ];
    assert_redacted(&r.stdout, SECRETS, &kept);
    // No line of the key's body survives either.
    assert!(!r.stdout.contains("b3BlbnNzaC1rZXktdjEAAAAA"));
    // Each planted text is written 4 times by the Claude Code lines (prompt, tool input, tool
    // result content, metadata.tool_use_result) and once in the `events` record.
    let mut kinds: Vec<&str> = SECRETS.iter().map(|(k, _)| *k).collect();
    kinds.sort();
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for k in kinds {
        match counts.last_mut() {
            Some((last, n)) if *last == k => *n += 5,
            _ => counts.push((k, 5)),
        }
    }
    let listed: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let want = format!(", redacted {} ({})", SECRETS.len() * 5, listed.join(", "));
    let summary = r.stderr.lines().next().unwrap();
    assert!(summary.ends_with(&want), "{summary}\nwant {want}");
}

#[test]
fn no_redact_keeps_the_secrets() {
    let r = run(&["--no-redact"], &input());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for (kind, secret) in SECRETS {
        assert!(r.stdout.contains(&forms(secret)[1]), "{kind} missing");
    }
    assert!(!r.stdout.contains("[REDACTED"));
    assert!(!r.stderr.contains("redacted"), "{}", r.stderr);
}

#[test]
fn redact_pattern_adds_patterns() {
    let rec = line(
        "events",
        "s",
        json!({"type": "x", "text": "password hunter2, pin 4711; not hunter",
               "metadata": {"source": "m", "source_key": "k", "original_timestamp": null}}),
    );
    let r = run(
        &[
            "--redact-pattern",
            "hunter[0-9]+",
            "--redact-pattern",
            r"pin \d+",
        ],
        &rec,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let ev: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        ev["event"]["text"],
        "password [REDACTED:custom], [REDACTED:custom]; not hunter"
    );
    assert!(r.stderr.contains(", redacted 2 (custom 2)"), "{}", r.stderr);

    let bad = run(&["--redact-pattern", "a(b"], "");
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("`a(b`"), "{}", bad.stderr);
}

#[test]
fn events_records_keep_their_bytes_unless_they_hold_a_secret() {
    // Spacing, number spellings and escapes that a re-serialisation would change.
    let plain = r#"{"type":"x", "n": 1.50, "s":"\u00e9\/", "metadata":{"source":"m","source_key":"k","original_timestamp":null}}"#;
    let gh = secret("github-token");
    let secret = format!(
        r#"{{"type":"x", "n": 1.50, "s":"\u00e9\/", "t":"tok {gh}", "metadata":{{"source":"m","source_key":"k2","original_timestamp":null}}}}"#
    );
    let input = format!(
        "{{\"source\":\"events\",\"session\":\"s\",\"record\":{plain}}}\n{{\"source\":\"events\",\"session\":\"s\",\"record\":{secret}}}\n"
    );
    let r = run(&[], &input);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // `"redacted":1` tells tonbo-batch that the built-in rules were applied.
    assert_eq!(
        lines[0],
        format!(r#"{{"v":1,"session_id":"s","redacted":1,"event":{plain}}}"#)
    );
    assert_eq!(
        lines[1],
        format!(
            r#"{{"v":1,"session_id":"s","redacted":1,"event":{}}}"#,
            secret.replace(gh, "[REDACTED:github-token]")
        )
    );
    // Without redaction there is no marker, so tonbo-batch redacts unless told not to either.
    let r = run(&["--no-redact"], &input);
    assert_eq!(
        r.stdout.lines().next().unwrap(),
        format!(r#"{{"v":1,"session_id":"s","event":{plain}}}"#)
    );
}

#[test]
fn rejected_lines_are_kept_redacted() {
    let gh = secret("github-token");
    let input = format!(
        "{}not a record {gh}\n",
        line("gemini", "s", json!({"text": format!("token {gh}")}))
    );
    assert_rejects_redacted(BIN, &input, 2, "github-token");
}

#[test]
fn tonbo_batch_does_not_redact_again() {
    // What tonbo-map wrote goes through the real tonbo-batch byte for byte: it is marked as
    // redacted, so tonbo-batch neither scans it again nor finds anything to count.
    let mapped = run(&[], &input());
    assert_eq!(mapped.code, Some(0), "{}", mapped.stderr);
    let batched = run_stage(
        bin("tonbo-batch"),
        &["--max-events", "1"],
        mapped.stdout.as_bytes(),
    );
    assert_eq!(batched.code, Some(0));
    assert!(!batched.stderr.contains("redacted"), "{}", batched.stderr);
    // One event per batch: each batch's events array is `[` + the event as tonbo-map wrote it + `]`.
    let batches = &batched.stdout;
    let events: Vec<&str> = mapped
        .stdout
        .lines()
        .map(|l| &l[l.find(",\"event\":").unwrap() + 9..l.len() - 1])
        .collect();
    let bodies: Vec<&str> = batches
        .lines()
        .map(|l| &l[l.find(",\"events\":[").unwrap() + 11..l.len() - 2])
        .collect();
    assert_eq!(bodies, events);
}
