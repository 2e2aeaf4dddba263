//! Claude Code end to end: real `claude-read | tonbo-map | tonbo-batch | tonbo-post` into the
//! reference server. A session file rewritten in place by compaction (earlier lines gone, kept
//! lines re-emitted with the same uuids, new lines after) and read again must leave every event
//! on the server exactly once.

mod support;

use std::collections::HashSet;
use std::io::Write;

use serde_json::json;
use support::*;

const SID: &str = "7c0ffee0-0000-4000-8000-000000000001";

fn line(
    uuid: &str,
    parent: Option<&str>,
    ts: &str,
    kind: &str,
    extra: serde_json::Value,
) -> String {
    let mut v = json!({
        "type": kind, "uuid": uuid, "parentUuid": parent, "sessionId": SID,
        "timestamp": ts, "cwd": "/w", "version": "2.1.30", "isSidechain": false
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v.to_string()
}

fn prompt(uuid: &str, ts: &str, text: &str) -> String {
    line(
        uuid,
        None,
        ts,
        "user",
        json!({"message": {"role": "user", "content": text}}),
    )
}

fn answer(uuid: &str, ts: &str, msg: &str, text: &str) -> String {
    line(
        uuid,
        None,
        ts,
        "assistant",
        json!({"requestId": format!("req_{msg}"), "message": {
        "id": msg, "role": "assistant", "model": "claude-opus-4-6",
        "content": [{"type": "text", "text": text}],
        "usage": {"input_tokens": 1, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
    )
}

fn write(path: &std::path::Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[test]
fn a_session_rewritten_by_compaction_is_not_duplicated_on_the_server() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = claude_project(dir.path()).join(format!("{SID}.jsonl"));
    let projects = dir.path().join("projects");
    let state = dir.path().join("state.sqlite");

    let turn1 = vec![
        prompt("p1", "2026-05-01T10:00:00.000Z", "first question"),
        answer("a1", "2026-05-01T10:00:01.000Z", "msg_1", "first answer"),
        prompt("p2", "2026-05-01T10:01:00.000Z", "second question"),
        answer("a2", "2026-05-01T10:01:01.000Z", "msg_2", "second answer"),
    ];
    write(&file, &turn1);
    claude_pipeline(&server, &projects, &state).assert_ok();
    let session = format!("claude-code-{SID}");
    let after_first = server.keys(&session);
    assert_eq!(after_first.len(), 8, "{after_first:?}"); // 2 prompts, 2 answers, 2 spans x2

    // Compaction rewrites the file in place: the first turn is gone, the second is re-emitted
    // (same uuids), then the boundary, the summary and a new turn.
    let rewritten = vec![
        turn1[2].clone(),
        turn1[3].clone(),
        line(
            "c1",
            None,
            "2026-05-01T11:00:00.000Z",
            "system",
            json!({"subtype": "compact_boundary",
            "logicalParentUuid": "a2", "compactMetadata": {"trigger": "auto", "preTokens": 1000}}),
        ),
        line(
            "c2",
            Some("c1"),
            "2026-05-01T11:00:00.100Z",
            "user",
            json!({"isCompactSummary": true,
            "message": {"role": "user", "content": "Summary of the earlier conversation."}}),
        ),
        turn1[3].clone(),
        prompt("p3", "2026-05-01T11:01:00.000Z", "third question"),
        answer("a3", "2026-05-01T11:01:01.000Z", "msg_3", "third answer"),
    ];
    write(&file, &rewritten);
    claude_pipeline(&server, &projects, &state).assert_ok();

    let keys = server.keys(&session);
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "duplicates on the server: {keys:?}"
    );
    assert_eq!(
        &keys[..8],
        &after_first[..],
        "what was there stays, in order"
    );
    assert_eq!(
        &keys[8..],
        ["c1#0", "c2#0", "p3#0", "msg_3/start", "a3#0", "msg_3/end"],
        "exactly the new events were appended"
    );

    // And a third read of the same file changes nothing.
    claude_pipeline(&server, &projects, &state).assert_says(" 0 events sent");
    assert_eq!(server.keys(&session), keys);
}
