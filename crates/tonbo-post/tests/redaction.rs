//! Redaction end to end: secrets planted in a Claude Code session (prompt, tool input, tool
//! output), in an `events` record, and in event lines a harness writes straight into tonbo-batch
//! go through the real `claude-read | tonbo-map | tonbo-batch | tonbo-post` (or `tonbo-batch |
//! tonbo-post`) into the reference server, and none of them is on the server afterwards,
//! neither in what it serves nor in the files it keeps.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::json;
use support::*;

const SID: &str = "5ec7e700-0000-4000-8000-000000000001";

/// Built from parts so that this file does not look like it holds live credentials.
fn secrets() -> Vec<String> {
    vec![
        format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEAu3Qk1bV7x9Zt2Lm8Ws4Rk6Yp0Hc3Jd5Fg7Nq9Tb1Xv2Ce4A",
            "Kx8Lm3Np5Qr7St9Uv1Wx3Yz5Ab7Cd9Ef1Gh3Ij5Kl7Mn9Op1Qr3St5Uv7Wx9Yz1"
        ),
        format!("ASIA{}", "R7EXAMPLE2TESTQ4"),
        format!("gho_{}", "Rt5Yu7Io9Pa1Sd3Fg5Hj7Kl9Zx1Cv3Bn5Mq7We"),
        format!("glpat-{}", "Nb4Vc6Xz8Lk0Jh2Gf4Ds"),
        format!("xoxp-{}-{}", "319482756102", "7706418293551-Kp3Wq8Lm2Rv6"),
        format!("sk-{}", "Gh4Jk6Lz8Xc0Vb2Nm4Qw6Er8Ty0Ui2Op4As6Df8Gh0Jk2Lz"),
        format!(
            "sk-ant-api03-{}",
            "Po9Iu7Yt5Re3Wq1Az2Sx4Dc6Fv8Gb0Hn2Jm4Kl6ZxVb"
        ),
        format!("eyJhbGci{}", "OiJSUzI1NiJ9.eyJhdWQiOiJ4In0.Qm7Rk2Wp9L"),
        format!("Pg9x-{}", "Secret7q"),
        format!("Tr0ub4{}", "dor-33"),
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.{}",
            "eyJzdWIiOiIxMjM0In0", "3Fq9xLk2Pz8WmR4tYv7NcB1dHs6Ja0Ge5UoIy2Tr"
        ),
        format!("Zx81{}", "kLmQ0pW"),
    ]
}

/// Each secret of [`secrets`] in the text it is written in (`{}`).
const TEXTS: [&str; 12] = [
    "here is the deploy key:\n{}\n",
    "AWS_ACCESS_KEY_ID={} aws s3 ls",
    "GH_TOKEN={} gh pr list",
    "GITLAB_TOKEN={}",
    "slack: {}",
    "OPENAI_API_KEY={}",
    "ANTHROPIC_API_KEY={}",
    "curl -H \"Authorization: Bearer {}\" https://api",
    "DATABASE_URL=postgres://app:{}@db.internal/app",
    "PGPASSWORD={} psql -h db",
    "id_token: {}",
    "git clone https://deploy:{}@git.example.com/r.git",
];

fn texts() -> Vec<String> {
    TEXTS
        .iter()
        .zip(secrets())
        .map(|(text, secret)| text.replacen("{}", &secret, 1))
        .collect()
}

fn line(uuid: &str, ts: &str, kind: &str, extra: serde_json::Value) -> String {
    let mut v = json!({"type": kind, "uuid": uuid, "sessionId": SID, "timestamp": ts,
                       "cwd": "/w", "version": "2.1.30", "isSidechain": false});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v.to_string()
}

fn write_session(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    for (i, text) in texts().iter().enumerate() {
        let ts = format!("2026-05-01T10:00:{i:02}.000Z");
        let lines = [
            line(
                &format!("p{i}"),
                &ts,
                "user",
                json!({"message": {"role": "user", "content": text}}),
            ),
            line(
                &format!("a{i}"),
                &ts,
                "assistant",
                json!({"requestId": format!("req_{i}"), "message": {
                    "id": format!("msg_{i}"), "role": "assistant", "model": "claude-opus-4-6",
                    "content": [{"type": "tool_use", "id": format!("toolu_{i}"), "name": "Bash",
                                 "input": {"command": text}}],
                    "usage": {"input_tokens": 1, "output_tokens": 5}}}),
            ),
            line(
                &format!("r{i}"),
                &ts,
                "user",
                json!({"message": {"role": "user", "content": [{"type": "tool_result",
                          "tool_use_id": format!("toolu_{i}"), "content": text}]},
                       "toolUseResult": {"stdout": text, "stderr": "", "interrupted": false}}),
            ),
        ];
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }
}

/// Every file under `dir`, as bytes, concatenated: what the server keeps on disk.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_bytes(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend(b);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The ways a secret can be spelled in JSON: as it is, and escaped (the key's newlines).
fn forms(secret: &str) -> Vec<String> {
    let esc = serde_json::to_string(secret).unwrap();
    let mut v = vec![secret.to_string(), esc[1..esc.len() - 1].to_string()];
    // Each line of a multi-line secret on its own (the key's body).
    v.extend(secret.lines().filter(|l| l.len() > 30).map(String::from));
    v
}

#[test]
fn planted_secrets_never_reach_the_server() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    write_session(&claude_project(dir.path()).join(format!("{SID}.jsonl")));

    let projects = dir.path().join("projects");
    claude_pipeline(&server, &projects, &dir.path().join("state.sqlite")).assert_ok();

    // An `events` record holding every text, through `tonbo-map FILE | tonbo-batch | tonbo-post`.
    let input = dir.path().join("events.ndjson");
    let rec = json!({"v": 1, "source": "events", "session": "mine-1", "record": {
        "type": "user.message", "content": [{"type": "text", "text": texts().join("\n")}],
        "notes": texts(),
        "metadata": {"source": "test", "source_key": "k1", "original_timestamp": null}}});
    std::fs::write(&input, format!("{rec}\n")).unwrap();
    pipeline(&server, &input, &dir.path().join("state2.sqlite"), &[], &[]).assert_ok();

    // Event lines written by a harness of its own, straight into `tonbo-batch | tonbo-post`.
    let direct = dir.path().join("direct.ndjson");
    let mut lines = String::new();
    for (i, text) in texts().iter().enumerate() {
        let ev = json!({"v": 1, "session_id": "direct-1", "event": {
            "type": "agent.tool_use", "name": "Bash", "input": {"command": text},
            "metadata": {"source": "my-harness", "source_key": format!("d{i}"),
                         "original_timestamp": null}}});
        lines += &format!("{ev}\n");
    }
    std::fs::write(&direct, lines).unwrap();
    batch_and_post(&server, &direct, &dir.path().join("state3.sqlite")).assert_ok();

    let claude = server.read(&format!("claude-code-{SID}")).unwrap();
    let mine = server.read("mine-1").unwrap();
    let direct = server.read("direct-1").unwrap();
    // A prompt, tool use, tool result and span (start and end) per text.
    let n = texts().len();
    assert_eq!(claude.len(), n * 5, "{claude:?}");
    assert_eq!(mine.len(), 1);
    assert_eq!(direct.len(), n);
    // Each of them held one secret, and arrived without it.
    for e in &direct {
        assert!(e.to_string().contains("[REDACTED:"), "{e}");
    }
    let served = serde_json::to_string(&(claude, mine, direct)).unwrap();
    let stored = all_bytes(server.dir.path());
    assert!(!stored.is_empty(), "the server keeps its streams in files");
    for s in secrets() {
        for f in forms(&s) {
            assert!(!served.contains(&f), "served: {f}");
            assert!(!contains(&stored, &f), "stored: {f}");
        }
    }
    for kind in [
        "private-key",
        "aws-access-key-id",
        "github-token",
        "gitlab-token",
        "slack-token",
        "openai-api-key",
        "anthropic-api-key",
        "bearer-token",
        "database-password",
        "password",
        "jwt",
        "url-password",
    ] {
        assert!(
            served.contains(&format!("[REDACTED:{kind}]")),
            "{kind} marker missing"
        );
    }
    // The text around the secrets arrived.
    assert!(served.contains("aws s3 ls"), "{served}");
    // And the server's files do hold the events' text, so their scan above proves something.
    assert!(contains(&stored, "aws s3 ls"));
}

/// `tonbo-batch INPUT | tonbo-post`: event lines that never went through tonbo-map.
fn batch_and_post(server: &Server, input: &Path, state: &Path) -> Run {
    let mut batch = stage("tonbo-batch", [input], Stdio::inherit());
    let mut post = tonbo_post(&server.url, state, &[])
        .stdin(piped(&mut batch))
        .spawn()
        .unwrap();
    let run = finish(&mut post);
    assert!(batch.wait().unwrap().success());
    run
}
