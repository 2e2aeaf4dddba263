//! Cursor fixtures (`testdata/cursor/<case>`, each a fake Cursor `User` folder or a folder
//! above one, its databases kept as SQL text and built at test time), read by the real
//! `cursor-read` and mapped by the real `tonbo-map`, compared with the checked-in
//! `expected.ndjson`, and checked for Cursor's own rules (those of every source are in
//! `fidelity.rs`): both layouts (bubble rows, inline conversation) map alike, a tool call and
//! its result come from one message, the workspace folder and the chat's title ride on every
//! event, keys are named by bubble id and part, and bad rows are rejected by key while the rest
//! flows.
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test cursor` rewrites the expected files;
//! review the diff before committing it.

mod common;

use common::*;

#[test]
fn fixtures_map_to_the_expected_events() {
    CURSOR.check_every_expected();
}

fn keys_and_types(run: &Run) -> Vec<(String, String)> {
    run.events
        .iter()
        .map(|e| {
            let ev = &e["event"];
            let key = ev["metadata"]["source_key"].as_str().unwrap().to_string();
            (key, ev["type"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn bubble_rows_map_in_the_chats_order_with_tool_calls_paired() {
    let run = CURSOR.run_named("01-bubble-rows");
    assert_eq!(run.read_code, Some(0), "{}", run.read_stderr);
    let keys: Vec<(String, String)> = keys_and_types(&run);
    let want = [
        ("b-u1/prompt", "user.message"),
        ("b-a1/thinking", "agent.thinking"),
        ("b-t1/tool", "agent.tool_use"),
        ("b-t1/result", "agent.tool_result"),
        ("b-t2/tool", "agent.tool_use"),
        ("b-t2/result", "agent.tool_result"),
        ("b-a2/text", "agent.message"),
        ("b-a2/usage", "span.model_request_end"),
        ("b-u2/prompt", "user.message"),
        ("b-a3/text", "agent.message"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, t)| (k.to_string(), t.to_string()))
        .collect();
    assert_eq!(keys, want);
    let ev = |k: &str| {
        &run.events
            .iter()
            .find(|e| e["event"]["metadata"]["source_key"] == k)
            .unwrap()["event"]
    };
    assert_eq!(ev("b-t1/tool")["input"]["target_file"], "src/parse.rs");
    assert_eq!(ev("b-t1/tool")["metadata"]["tool_use_id"], "toolu_01");
    assert_eq!(ev("b-t1/result")["tool_use_id"], "toolu_01");
    assert_eq!(ev("b-t1/result")["is_error"], false);
    assert_eq!(ev("b-t2/result")["is_error"], true);
    let prompt = ev("b-u1/prompt");
    assert_eq!(prompt["metadata"]["author"], "human");
    assert_eq!(prompt["metadata"]["cwd"], "/home/dev/parser kit");
    assert_eq!(prompt["metadata"]["title"], "Fix the parser");
    assert_eq!(prompt["metadata"]["git_branch"], "main");
    assert_eq!(prompt["metadata"]["model"], "claude-4.5-sonnet");
    // A message without its own time takes the last one of its chat, and says so.
    assert_eq!(ev("b-a3/text")["metadata"]["timestamp_inherited"], true);
    assert_eq!(ev("b-a3/text")["processed_at"], "2025-12-25T19:40:00.000Z");
    // An edited-away message (a row no header names) is not a message of the chat.
    assert!(!run.stdout.contains("edited-away"));
}

#[test]
fn an_inline_conversation_maps_like_bubble_rows_and_takes_the_chats_time() {
    let run = CURSOR.run_named("02-inline-conversation");
    assert_eq!(run.read_code, Some(0), "{}", run.read_stderr);
    let keys: Vec<String> = keys_and_types(&run).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["i-u1/prompt", "i-a1/text", "i-a2/text"]);
    let first = &run.events[0]["event"];
    assert_eq!(first["processed_at"], "2024-12-12T08:00:00.000Z");
    assert_eq!(first["metadata"]["timestamp_inherited"], true);
    assert_eq!(
        run.events[1]["event"]["processed_at"],
        "2024-12-12T08:00:01.000Z"
    );
    assert_said(&run.map_stderr, "user message without text 1");
    assert_said(&run.map_stderr, "assistant message with nothing to map 1");
}

#[test]
fn bad_rows_are_rejected_by_key_and_the_rest_flows() {
    let run = CURSOR.run_named("03-bad-input");
    assert_eq!(run.read_code, Some(1));
    assert_said(
        &run.read_stderr,
        "rejected: `bubbleId:0b1c0000-0000-4000-8000-000000000003:x-bad`",
    );
    assert_said(
        &run.read_stderr,
        "rejected: `composerData:0b1c0000-0000-4000-8000-000000000004`",
    );
    assert_said(&run.read_stderr, "2 missing, 2 rejected");
    let keys: Vec<String> = keys_and_types(&run).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["x-u1/prompt", "x-a1/text"]);
    assert_said(&run.map_stderr, "bubble type:3 1");
}
