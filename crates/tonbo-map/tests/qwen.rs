//! Qwen Code fixtures (`testdata/qwen/<case>/qwen`), read by the real `qwen-read` and mapped by
//! the real `tonbo-map`, compared with the checked-in `expected.ndjson`, and checked for Qwen
//! Code's own fidelity rules (those of every source are in `fidelity.rs`): text an `@path` read
//! or a reminder never a person's `user.message`, every call's result paired, usage once per
//! model request, Gemini CLI's files beside Qwen Code's never read.
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test qwen` rewrites the expected files;
//! review the diff before committing it.

mod common;

use common::*;

#[test]
fn fixtures_map_to_the_expected_events() {
    QWEN.check_every_expected();
}

#[test]
fn injected_text_is_never_a_persons_prompt() {
    for case in QWEN.cases() {
        let run = QWEN.run(&case);
        for e in run.of_type("user.message").into_iter() {
            let text = e["event"]["content"].to_string();
            for marker in [
                "Content from referenced files",
                "<system-reminder>",
                "Background shell",
            ] {
                assert!(!text.contains(marker), "{}: {text}", case.display());
            }
        }
    }
    let run = QWEN.run_named("01-first-jsonl");
    let kinds: Vec<_> = run
        .of_type("system.message")
        .into_iter()
        .map(|e| e["event"]["metadata"]["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["referenced_files"]);
    let prompt = run.of_type("user.message").into_iter().next().unwrap();
    assert_eq!(prompt["event"]["metadata"]["author"], "human");
}

#[test]
fn the_first_and_the_current_format_give_the_same_events() {
    for case in ["01-first-jsonl", "02-current"] {
        let run = QWEN.run_named(case);
        for ty in [
            "user.message",
            "agent.thinking",
            "agent.tool_use",
            "agent.tool_result",
        ] {
            assert!(
                run.of_type(ty).into_iter().next().is_some(),
                "{case}: no {ty}"
            );
        }
        let ends = run.of_type("span.model_request_end").len();
        let starts = run.of_type("span.model_request_start").len();
        assert_eq!(ends, starts, "{case}");
        assert!(ends >= 2, "{case}");
    }
}

#[test]
fn a_failed_tool_call_is_an_error_result_and_titles_and_compaction_map() {
    let run = QWEN.run_named("02-current");
    let failed: Vec<_> = run
        .of_type("agent.tool_result")
        .into_iter()
        .filter(|e| e["event"]["is_error"] == true)
        .map(|e| e["event"]["tool_use_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(failed, ["call_2a"]);
    let error = run.of_type("session.error").into_iter().next().unwrap();
    assert_eq!(error["event"]["error"]["type"], "model_rate_limited_error");
    let title = run.of_type("qwen_code.title").into_iter().next().unwrap();
    assert_eq!(title["event"]["title"], "Cart rounding fix");
    assert_eq!(run.of_type("agent.thread_context_compacted").len(), 1);
    let thread = run
        .of_type("session.thread_created")
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(thread["event"]["agent_name"], "Explore");
    assert_eq!(thread["event"]["session_thread_id"], "agent-explore-7f3c");
    // Started by the `task` call whose prompt the thread's first prompt is.
    assert_eq!(thread["event"]["metadata"]["parent_tool_use_id"], "call_2b");
}

#[test]
fn bad_input_is_reported_and_gemini_files_are_left_alone() {
    let run = QWEN.run_named("03-bad-input");
    assert!(
        run.read_stderr.contains("incomplete last line"),
        "{}",
        run.read_stderr
    );
    assert!(
        !run.stdout.contains("session-2026"),
        "a Gemini CLI file was read"
    );
    assert!(run.map_stderr.contains("checkpoint"), "{}", run.map_stderr);
    assert!(
        run.map_stderr.contains("system:holographic_summary"),
        "{}",
        run.map_stderr
    );
    let untimed = run
        .events
        .iter()
        .find(|e| e["event"]["metadata"]["uuid"] == "n0")
        .unwrap();
    assert_eq!(untimed["event"]["metadata"]["timestamp_inherited"], true);
}

/// Records of every odd shape (wrong types, missing fields, parts of no known kind) through the
/// real `qwen-read | tonbo-map`: never a panic; what cannot be a record is rejected and named,
/// the rest maps.
#[test]
fn odd_records_never_panic_and_are_rejected_or_mapped() {
    let tmp = tempfile::tempdir().unwrap();
    let chats = tmp.path().join("projects/-p/chats");
    std::fs::create_dir_all(&chats).unwrap();
    let odd = [
        r#"[]"#,
        r#"{"type":"user","message":"not content"}"#,
        r#"{"type":"user","uuid":7}"#,
        r#"{"type":"user","message":{"parts":[{"text":7}]}}"#,
        r#"{"type":"user","message":{"parts":[{}, {"inlineData":{"mimeType":"image/png"}}]}}"#,
        r#"{"type":"assistant","message":{"parts":[{"functionCall":{}}]},"usageMetadata":null}"#,
        r#"{"type":"assistant","message":{"parts":[{"text":"\u00e9\u2028\ud83d\ude00 ok"}]}}"#,
        r#"{"type":"tool_result","message":{"parts":[{"functionResponse":{"response":{"output":{"a":[1]}}}}]},"toolCallResult":{"callId":"c9"}}"#,
        r#"{"type":"tool_result","message":{"parts":[{"functionResponse":{}}]}}"#,
        r#"{"type":"system","subtype":"custom_title","systemPayload":"x"}"#,
        r#"{"type":"system","subtype":"parent_session","systemPayload":{"parentSessionId":""}}"#,
        r#"{"type":"system","subtype":"slash_command","systemPayload":{"phase":"invocation"}}"#,
        r#"{"type":"user","subtype":"notification","agentId":"","message":{"parts":[]}}"#,
    ];
    let file = chats.join("0a1b2c3d-0009-4e5f-8a9b-000000000009.jsonl");
    std::fs::write(&file, odd.join("\n") + "\n").unwrap();
    let run = read_and_map("qwen-read", &[tmp.path().to_path_buf()]);
    for stderr in [&run.read_stderr, &run.map_stderr] {
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_ne!(run.map_code, Some(101), "{}", run.map_stderr);
    assert!(
        run.map_stderr.contains("not a Qwen Code record"),
        "{}",
        run.map_stderr
    );
    let texts: Vec<String> = run
        .of_type("agent.message")
        .into_iter()
        .map(|e| e["event"]["content"][0]["text"].to_string())
        .collect();
    assert_eq!(texts, ["\"é\u{2028}😀 ok\""]);
    let result = run.of_type("agent.tool_result").into_iter().next().unwrap();
    assert_eq!(result["event"]["tool_use_id"], "c9");
    assert_eq!(result["event"]["content"][0]["text"], "{\"a\":[1]}");
}

/// `/branch` copies the forked session's records into the fork's file: they map once, in the
/// session they came from, and the fork's own events say where it was forked from.
#[test]
fn a_branch_maps_its_copied_records_once() {
    let run = QWEN.run_named("05-branch");
    let prompts: Vec<String> = run
        .of_type("user.message")
        .into_iter()
        .map(|e| {
            e["event"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        prompts,
        [
            "Pick a chart library.",
            "Go with Chart.js.",
            "Go with ECharts instead."
        ]
    );
    let parent = "0a1b2c3d-0005-4e5f-8a9b-00000000000a";
    let fork = run
        .events
        .iter()
        .filter(|e| e["session_id"] == "qwen-code-0a1b2c3d-0005-4e5f-8a9b-00000000000f")
        .collect::<Vec<_>>();
    assert_eq!(fork.len(), 4);
    for e in fork {
        assert_eq!(e["event"]["metadata"]["forked_from_id"], parent, "{e}");
    }
    assert!(
        run.map_stderr.contains("record copied by /branch 2"),
        "{}",
        run.map_stderr
    );
}
