//! Drives the real `tonbo-map` binary over records with planted secrets of every kind (in a
//! prompt, a tool input, a tool output, an `events` record) and checks that none of them is in
//! what it writes, that `--no-redact` keeps them, and that `--redact-pattern` adds patterns.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use tonbo_testkit::Run;

const BIN: &str = env!("CARGO_BIN_EXE_tonbo-map");

fn run(args: &[&str], stdin: &str) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    tonbo_testkit::run(cmd, Some(stdin.as_bytes()))
}

/// The planted secrets, each with its kind. Built from parts so that this file does not look
/// like it holds live credentials to secret scanners.
fn secrets() -> Vec<(&'static str, String)> {
    vec![
        (
            "private-key",
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n{}\n-----END OPENSSH PRIVATE KEY-----",
                "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtz",
                "c2gtZWQyNTUxOQAAACDqVx1qY2kO5m7w3QyJ0lW9S4lZ8nJmE2u1H8cKx9V0aQAA"
            ),
        ),
        ("aws-access-key-id", format!("AKIA{}", "Q3EXAMPLE7TESTK9")),
        (
            "github-token",
            format!("ghp_{}", "Zk8mP2qR4sT6uV8wX0yA1bC3dE5fG7hJ9kL1"),
        ),
        ("gitlab-token", format!("glpat-{}", "Hq7Wm2Xk9Lp4Rt6Yv1Zs")),
        (
            "slack-token",
            format!(
                "xoxb-{}-{}",
                "204851736492", "5093715284617-Tq8WkLp2Xm6Rv4Yz1Ns9"
            ),
        ),
        (
            "openai-api-key",
            format!("sk-proj-{}", "Qw3Er5Ty7Ui9Op1As2Df4Gh6Jk8Lz0Xc_Vb-Nm"),
        ),
        (
            "anthropic-api-key",
            format!(
                "sk-ant-api03-{}",
                "Lq2Wr4Te6Yu8Io0Pa1Sd3Fg5Hj7Kl9Zx-Cv_BnMqWe"
            ),
        ),
        (
            "bearer-token",
            format!("eyJhbGci{}", "OiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.Tk3n9Q"),
        ),
        (
            "bearer-token",
            format!("ya29{}", "a0AfB_byC7dK2mQ9xR4tL8wZ"),
        ),
        // The generic kinds: where a password or secret is assigned, only the value goes.
        ("database-password", format!("Sup3r-{}", "s3cret9")),
        ("url-password", format!("Zx81{}", "kLmQ0pW")),
        ("password", format!("Tr0ub4{}", "dor-33")),
        ("secret", format!("q8Lk2Wm4{}", "Pz7Rt1Yv")),
        (
            "jwt",
            format!(
                "eyJhbGciOiJIUzI1NiJ9.{}.{}",
                "eyJzdWIiOiIxMjM0In0", "3Fq9xLk2Pz8WmR4tYv7NcB1dHs6Ja0Ge5UoIy2Tr"
            ),
        ),
        (
            "google-api-key",
            format!("AIza{}", "SyD3f8Kq2LmN9pR7sT4vW1xY6zA0bC5dE8g"),
        ),
        (
            "google-oauth-client-secret",
            format!("GOCSPX-{}", "Kq2LmN9pR7sT4vW1xY6zA0bC5dE8"),
        ),
        (
            "azure-key",
            format!(
                "{}{}==",
                "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",
                "K1SZFPTOtrKBHBeksoGMGw"
            ),
        ),
        (
            "stripe-key",
            format!("{}_{}_{}", "sk", "live", "51Hq2LmN9pR7sT4vW1xY6zA0bC5dE8"),
        ),
        (
            "slack-webhook",
            format!("T024BE7LD/B01AB2CD3EF/{}", "Xq8Lk2Wm4Pz7Rt1Yv6Nb3Jc9"),
        ),
        (
            "npm-token",
            format!("npm_{}", "Kq2LmN9pR7sT4vW1xY6zA0bC5dE8gHj3Lk9Q"),
        ),
        (
            "pypi-token",
            format!(
                "pypi-AgEIcHlwaS5vcmc{}",
                "CJGE2YWQ4ZTk0LWI3ZDctNDM5NC05NmY4LWQzZDc3Y2Q3ZjQyZQACKlszLCJhYjQ"
            ),
        ),
    ]
}

/// Where each secret goes: `(text, the secret in it)`.
fn planted() -> Vec<(String, String)> {
    let s: Vec<String> = secrets().into_iter().map(|(_, s)| s).collect();
    vec![
        (
            format!("deploy with this key:\n{}\nthanks", s[0]),
            s[0].clone(),
        ),
        (format!("export AWS_ACCESS_KEY_ID={}", s[1]), s[1].clone()),
        (
            format!("git remote set-url origin https://{}@github.com/u/r", s[2]),
            s[2].clone(),
        ),
        (format!("GITLAB_TOKEN={} make release", s[3]), s[3].clone()),
        (format!("SLACK_BOT_TOKEN=\"{}\"", s[4]), s[4].clone()),
        (format!("OPENAI_API_KEY={}", s[5]), s[5].clone()),
        (format!("x-api-key: {}", s[6]), s[6].clone()),
        (
            format!("curl -H 'Authorization: Bearer {}' https://api", s[7]),
            s[7].clone(),
        ),
        (
            format!("GET https://api.example.com/me?access_token={}&x=1", s[8]),
            s[8].clone(),
        ),
        (
            format!(
                "psql postgres://app:{}@db.internal:5432/shop -c 'select 1'",
                s[9]
            ),
            s[9].clone(),
        ),
        (
            format!("git clone https://deploy:{}@git.example.com/r.git", s[10]),
            s[10].clone(),
        ),
        (
            format!("export PGPASSWORD={} && psql", s[11]),
            s[11].clone(),
        ),
        (
            format!("oauth:\n  client_secret: \"{}\"\n", s[12]),
            s[12].clone(),
        ),
        (format!("Authorization: {}", s[13]), s[13].clone()),
        (format!("GOOGLE_API_KEY={}", s[14]), s[14].clone()),
        (
            format!("{{\"client_secret\": \"{}\"}}", s[15]),
            s[15].clone(),
        ),
        (
            format!("AccountName=shop;AccountKey={};EndpointSuffix=x", s[16]),
            s[16].clone(),
        ),
        (format!("stripe.api_key = \"{}\"", s[17]), s[17].clone()),
        (
            format!("curl https://hooks.slack.com/services/{} -d @m.json", s[18]),
            s[18].clone(),
        ),
        (
            format!("//registry.npmjs.org/:_authToken={}", s[19]),
            s[19].clone(),
        ),
        (
            format!("TWINE_PASSWORD={} twine upload", s[20]),
            s[20].clone(),
        ),
    ]
}

fn line(source: &str, session: &str, record: Value) -> String {
    json!({"v": 1, "source": source, "session": session, "record": record}).to_string() + "\n"
}

/// Claude Code lines putting every planted text in a prompt, a tool input and a tool output,
/// and an `events` record holding them all.
fn input() -> String {
    let sid = "c0ffee00-0000-4000-8000-000000000001";
    let mut s = String::new();
    for (i, (text, _)) in planted().into_iter().enumerate() {
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
    let all: Vec<String> = planted().into_iter().map(|(t, _)| t).collect();
    s += &line(
        "events",
        "mine-1",
        json!({"type": "my.note", "texts": all,
               "metadata": {"source": "mine", "source_key": "k1", "original_timestamp": null}}),
    );
    s
}

/// Every way a secret could show in JSON text: as it is, and JSON-escaped (the key's newlines).
fn forms(secret: &str) -> Vec<String> {
    let escaped = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_string(),
        escaped[1..escaped.len() - 1].to_string(),
    ]
}

#[test]
fn planted_secrets_never_reach_the_output() {
    let r = run(&[], &input());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for l in r.stdout.lines() {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    for (kind, secret) in secrets() {
        for f in forms(&secret) {
            assert!(!r.stdout.contains(&f), "{kind} leaked: {f}");
        }
        assert!(r.stdout.contains(&format!("[REDACTED:{kind}]")), "{kind}");
    }
    // No line of the key's body survives either.
    assert!(!r.stdout.contains("b3BlbnNzaC1rZXktdjEAAAAA"));
    // The text around a secret is kept.
    assert!(r
        .stdout
        .contains("export AWS_ACCESS_KEY_ID=[REDACTED:aws-access-key-id]"));
    assert!(r
        .stdout
        .contains("curl -H 'Authorization: Bearer [REDACTED:bearer-token]' https://api"));
    assert!(r
        .stdout
        .contains("psql postgres://app:[REDACTED:database-password]@db.internal:5432/shop"));
    // Each planted text is written 4 times by the Claude Code lines (prompt, tool input, tool
    // result content, metadata.tool_use_result) and once in the `events` record.
    let mut kinds: Vec<&str> = secrets().into_iter().map(|(k, _)| k).collect();
    kinds.sort();
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for k in kinds {
        match counts.last_mut() {
            Some((last, n)) if *last == k => *n += 5,
            _ => counts.push((k, 5)),
        }
    }
    let listed: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let want = format!(", redacted {} ({})", secrets().len() * 5, listed.join(", "));
    let summary = r.stderr.lines().next().unwrap();
    assert!(summary.ends_with(&want), "{summary}\nwant {want}");
}

#[test]
fn no_redact_keeps_the_secrets() {
    let r = run(&["--no-redact"], &input());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for (kind, secret) in secrets() {
        assert!(r.stdout.contains(&forms(&secret)[1]), "{kind} missing");
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
    let gh = &secrets()[2].1;
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
            secret.replace(gh.as_str(), "[REDACTED:github-token]")
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
    let gh = &secrets()[2].1;
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let input = format!(
        "{}not a record {gh}\n",
        line("gemini", "s", json!({"text": format!("token {gh}")}))
    );
    let r = run(&["--rejects", rejects.to_str().unwrap()], &input);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let kept = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(kept.lines().count(), 2, "{kept}");
    assert!(!kept.contains(gh.as_str()), "{kept}");
    assert_eq!(kept.matches("[REDACTED:github-token]").count(), 2, "{kept}");
    assert!(!r.stderr.contains(gh.as_str()), "{}", r.stderr);
}

#[test]
fn tonbo_batch_does_not_redact_again() {
    // What tonbo-map wrote goes through the real tonbo-batch byte for byte: it is marked as
    // redacted, so tonbo-batch neither scans it again nor finds anything to count.
    let batch = std::path::Path::new(BIN).with_file_name("tonbo-batch");
    assert!(
        batch.exists(),
        "{} missing: run `cargo build --workspace --bins`",
        batch.display()
    );
    let mapped = run(&[], &input());
    assert_eq!(mapped.code, Some(0), "{}", mapped.stderr);
    let mut child = Command::new(&batch)
        .args(["--max-events", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tonbo-batch");
    let mut stdin = child.stdin.take().unwrap();
    let data = mapped.stdout.clone().into_bytes();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("redacted"), "{stderr}");
    // One event per batch: each batch's events array is `[` + the event as tonbo-map wrote it + `]`.
    let batches = String::from_utf8(out.stdout).unwrap();
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
