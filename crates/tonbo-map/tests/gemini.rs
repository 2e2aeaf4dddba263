//! Gemini CLI fixtures (`testdata/gemini/<case>`, each a fake `.gemini` home), read by the real
//! `gemini-read` and mapped by the real `tonbo-map`, compared with the checked-in
//! `expected.ndjson`, and checked for Gemini CLI's own rules (those of every source are in
//! `fidelity.rs`): a message rewritten as it grew maps once with its final parts, a rewind
//! unsends nothing, commands and injected context are never a human prompt, keys are named by
//! message id and part, never by line.
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test gemini` rewrites the expected files;
//! review the diff before committing it.

mod common;

use common::*;

#[test]
fn fixtures_map_to_the_expected_events() {
    GEMINI.check_every_expected();
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
fn a_message_written_twice_maps_once_with_its_result_and_usage() {
    let run = GEMINI.run_named("02-jsonl-replay");
    let keys = keys_and_types(&run);
    let g1: Vec<&str> = keys
        .iter()
        .filter(|(k, _)| k.starts_with("g1/"))
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(
        g1,
        [
            "agent.tool_use",
            "agent.tool_result",
            "span.model_request_end"
        ]
    );
    let result = run
        .events
        .iter()
        .find(|e| e["event"]["type"] == "agent.tool_result")
        .unwrap();
    assert_eq!(result["event"]["content"][0]["text"], "error[E0425]");
    assert_eq!(result["event"]["is_error"], false);
}

#[test]
fn a_rewind_unsends_nothing_and_says_so() {
    let run = GEMINI.run_named("02-jsonl-replay");
    let keys = keys_and_types(&run);
    let prompts: Vec<&str> = keys
        .iter()
        .filter(|(_, t)| t == "user.message")
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(prompts, ["u1/prompt", "u2/prompt", "u3/prompt"]);
    assert!(keys.contains(&("rewind/u2".into(), "gemini_cli.rewind".into())));
    assert!(keys.contains(&(
        "title/".to_string()
            + &format!("{:016x}", tonbo_core::event::fnv64(b"Fix the cargo build")),
        "gemini_cli.title".into()
    )));
}

#[test]
fn keys_name_messages_not_lines_and_every_event_has_its_time() {
    for case in GEMINI.cases() {
        let run = GEMINI.run(&case);
        assert!(!run.events.is_empty(), "{case:?}");
        for e in &run.events {
            let meta = &e["event"]["metadata"];
            let key = meta["source_key"].as_str().unwrap();
            assert!(
                !key.chars().next().unwrap().is_ascii_digit(),
                "{case:?}: a key by line number: {key}"
            );
            assert!(meta["original_timestamp"].is_string(), "{case:?}: {key}");
            assert!(e["session_id"].as_str().unwrap().starts_with("gemini-cli-"));
        }
    }
}

#[test]
fn unknown_records_are_counted_not_dropped_silently() {
    let run = GEMINI.run_named("03-bad-input");
    assert!(
        run.map_stderr.contains("$future"),
        "tonbo-map stderr: {}",
        run.map_stderr
    );
}

#[test]
fn commands_and_injected_context_are_no_human_prompt_and_a_subagent_is_a_thread() {
    let run = GEMINI.run_named("04-subagent-commands");
    let by_key = |key: &str| {
        run.events
            .iter()
            .find(|e| e["event"]["metadata"]["source_key"] == key)
            .unwrap_or_else(|| panic!("no event {key}"))
    };
    assert_eq!(by_key("u0/prompt")["event"]["type"], "system.message");
    assert_eq!(
        by_key("u1/prompt")["event"]["metadata"]["kind"],
        "slash_command"
    );
    let typed = &by_key("u2/prompt")["event"];
    assert_eq!(typed["type"], "user.message");
    assert_eq!(typed["content"][0]["text"], "explain @src/main.rs");
    // The checkpoint's masked output is not sent again: one result per call.
    let results: Vec<_> = run
        .events
        .iter()
        .filter(|e| e["event"]["type"] == "agent.tool_result")
        .map(|e| e["event"]["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["main calls run().", "File not found: /home/u/x/src/lib.rs"]
    );
    assert_eq!(by_key("g1/result/c2")["event"]["is_error"], true);
    let child = "gemini-cli-5ub4gent-0000-4000-8000-000000000005";
    let parent = "gemini-cli-a7c3e9d1-0000-4000-8000-000000000004";
    let thread = by_key(&format!("thread/{}", &child["gemini-cli-".len()..]));
    assert_eq!(thread["session_id"], parent);
    assert_eq!(
        by_key("g1/tool/c1")["event"]["metadata"]["child_session_id"],
        child
    );
    let prompt = by_key("s1/prompt");
    assert_eq!(prompt["session_id"], child);
    assert_eq!(prompt["event"]["metadata"]["author"], "agent");
    assert_eq!(prompt["event"]["metadata"]["parent_session_id"], parent);
    // The project's root, from `.project_root`, on every event of the chat.
    assert_eq!(typed["metadata"]["project_path"], "/home/u/x");
}

/// Resuming a legacy chat, Gemini CLI (v0.39.0+) writes it again as `<name>.jsonl`, metadata
/// line then one line per message (`rewriteConversationFile`): keys come from message ids, not
/// from files, so it maps to the keys the `.json` mapped to, and nothing is sent twice.
#[test]
fn a_legacy_chat_migrated_to_jsonl_maps_to_the_same_keys() {
    let case = common::root().join("testdata/gemini/01-json-legacy");
    let chats = case.join("tmp/3f2a9c/chats");
    let name = "session-2026-03-10T09-15-a1b2c3d4";
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(chats.join(format!("{name}.json"))).unwrap())
            .unwrap();
    let mut metadata = doc.clone();
    let messages = metadata
        .as_object_mut()
        .unwrap()
        .remove("messages")
        .unwrap();
    let mut lines = vec![metadata.to_string()];
    lines.extend(messages.as_array().unwrap().iter().map(|m| m.to_string()));
    let tmp = tempfile::tempdir().unwrap();
    let migrated = tmp.path().join(format!("tmp/3f2a9c/chats/{name}.jsonl"));
    std::fs::create_dir_all(migrated.parent().unwrap()).unwrap();
    std::fs::write(&migrated, lines.join("\n") + "\n").unwrap();
    let keys = |run: &Run| -> Vec<(String, String)> {
        run.events
            .iter()
            .map(|e| {
                let session = e["session_id"].as_str().unwrap().to_string();
                (
                    session,
                    e["event"]["metadata"]["source_key"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    };
    let legacy = GEMINI.run_named("01-json-legacy");
    let jsonl = read_and_map("gemini-read", &[migrated]);
    assert!(!keys(&legacy).is_empty());
    assert_eq!(keys(&jsonl), keys(&legacy));
}
