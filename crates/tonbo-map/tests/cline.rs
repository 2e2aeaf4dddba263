//! Cline-family fixtures (`testdata/cline/<case>`: Cline, Roo Code and Kilo Code task folders),
//! read by the real `cline-read` and mapped by the real `tonbo-map`, compared with the
//! checked-in `expected.ndjson`, and checked for the family's own rules (those of every source
//! are in `fidelity.rs`): a person's message holds only what they typed, never the extension's
//! wrapping or environment details; nothing the extension wrote is a person's message; every
//! event says which extension wrote its task.
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test cline` rewrites the expected files;
//! review the diff before committing it.

mod common;

use common::*;

fn run(case: &str) -> Run {
    CLINE.run_named(case)
}

#[test]
fn fixtures_map_to_the_expected_events() {
    CLINE.check_every_expected();
}

/// A person's message holds only what they typed: no tag of the extension, no environment
/// details, no tool result header; and every text the extension wrote is not a person's.
#[test]
fn human_messages_hold_only_what_a_person_typed() {
    for case in CLINE.cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let run = CLINE.run(&case);
        for ev in run.of_type("user.message") {
            let ev = &ev["event"];
            let text = ev["content"].to_string();
            for marker in [
                "<task>",
                "</task>",
                "<user_message>",
                "<feedback>",
                "<answer>",
                "<environment_details>",
                "] Result:",
                "[TASK RESUMPTION]",
                "[ERROR]",
                "\\\"status\\\"",
                "<user_input",
                "<mode_notice>",
            ] {
                assert!(!text.contains(marker), "{name}: {marker} in {ev}");
            }
            let author = &ev["metadata"]["author"];
            let subtask_prompt = ev["metadata"]["kind"] == "subagent_prompt";
            assert_eq!(
                author,
                if subtask_prompt { "agent" } else { "human" },
                "{name}: {ev}"
            );
        }
        for ev in run.of_type("system.message") {
            let text = ev["event"]["content"].to_string();
            for typed in [
                "add a --verbose flag",
                "yes, in milliseconds",
                "now fix it properly",
            ] {
                assert!(
                    !text.contains(typed),
                    "{name}: a person's words injected: {ev}"
                );
            }
        }
    }
}

#[test]
fn every_prompt_answer_and_feedback_is_found() {
    let prompts = |case: &str| -> Vec<String> {
        run(case)
            .of_type("user.message")
            .iter()
            .map(|e| {
                let m = &e["event"]["metadata"];
                let text = e["event"]["content"][0]["text"].as_str().unwrap_or("image");
                format!("{}: {text}", m["kind"].as_str().unwrap())
            })
            .collect()
    };
    assert_eq!(
        prompts("01-cline-xml"),
        [
            "prompt: add a --verbose flag to the CLI",
            "answer: yes, in milliseconds",
            "feedback: also document it in the README",
        ]
    );
    assert_eq!(
        prompts("02-cline-native"),
        [
            "prompt: why does `cargo test` fail on CI?",
            "feedback: don't update, just explain",
            "prompt: now fix it properly",
        ]
    );
    assert_eq!(
        prompts("03-roo-subtask"),
        [
            "prompt: plan the release, then let a subtask write the changelog",
            "feedback: use the docs mode for that",
            "subagent_prompt: write CHANGELOG.md for v1.2",
        ]
    );
    assert_eq!(
        prompts("06-cline-sdk"),
        [
            "prompt: add a health endpoint",
            "feedback: use axum's Router",
            "prompt: first explain the plan",
            "subagent_prompt: Find where the HTTP router is built and report the file.",
        ]
    );
}

/// The newest Cline's SDK session: its manifest gives the folder and model, its messages' own
/// `metrics` the usage, attached files and mode notices are the extension's.
#[test]
fn an_sdk_session_maps_like_a_task() {
    let r = run("06-cline-sdk");
    let first = &r.events[0]["event"]["metadata"];
    assert_eq!(first["cwd"], "/home/ada/svc");
    assert_eq!(first["title"], "add a health endpoint");
    let usage: Vec<_> = r
        .of_type("span.model_request_end")
        .into_iter()
        .filter(|e| e["session_id"] == "cline-1790000000000_a1b2c")
        .collect();
    assert_eq!(usage.len(), 1);
    assert_eq!(
        usage[0]["event"]["model_usage"]["cache_read_input_tokens"],
        1500
    );
    let kinds: Vec<&str> = r
        .of_type("system.message")
        .iter()
        .map(|e| e["event"]["metadata"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["attached_file", "mode_notice"]);
}

#[test]
fn the_variant_comes_from_the_extension_folder_or_the_content() {
    for (case, variant) in [
        ("01-cline-xml", "cline"),
        ("02-cline-native", "cline"),
        ("03-roo-subtask", "roo-code"),
        ("04-kilo", "kilo-code"),
        ("05-torn", "unknown"),
        ("06-cline-sdk", "cline"),
    ] {
        let r = run(case);
        assert!(!r.events.is_empty(), "{case}");
        for e in &r.events {
            if e["event"]["type"] != "session.thread_created" {
                assert_eq!(e["event"]["metadata"]["variant"], variant, "{case}: {e}");
            }
        }
    }
}

/// XML tool calls (older Cline, Kilo Code) become tool uses their text results pair with;
/// `<thinking>` in the text is thinking.
#[test]
fn xml_tool_calls_pair_with_their_text_results() {
    let r = run("01-cline-xml");
    let uses: Vec<_> = r
        .of_type("agent.tool_use")
        .iter()
        .map(|e| e["event"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        uses,
        ["read_file", "ask_followup_question", "attempt_completion"]
    );
    assert_eq!(r.of_type("agent.tool_result").len(), 3);
    let read = r.find(|ev| ev["type"] == "agent.tool_result");
    assert!(read["event"]["content"].to_string().contains("println!"));
    assert_eq!(r.of_type("agent.thinking").len(), 1);
}

#[test]
fn a_subtask_is_a_thread_of_its_parent() {
    let r = run("03-roo-subtask");
    let t = r.of_type("session.thread_created")[0];
    assert_eq!(
        t["session_id"],
        "cline-0199a8f0-1111-7000-8000-000000000001"
    );
    assert_eq!(
        t["event"]["session_thread_id"],
        "cline-0199a8f0-2222-7000-8000-000000000002"
    );
    let child = *r
        .of_type("user.message")
        .iter()
        .find(|e| e["session_id"] == "cline-0199a8f0-2222-7000-8000-000000000002")
        .unwrap();
    assert_eq!(
        child["event"]["metadata"]["parent_session_id"],
        "cline-0199a8f0-1111-7000-8000-000000000001"
    );
    assert_eq!(child["event"]["metadata"]["mode"], "docs");
    assert_eq!(child["event"]["metadata"]["cwd"], "/home/ada/calc");
}

/// Newer Cline's history item and messages give the folder, model, usage and own times; the
/// UI messages give the errors; a UI message still streaming is not read.
#[test]
fn metadata_usage_and_errors() {
    let r = run("02-cline-native");
    let first = &r.events[0]["event"];
    assert_eq!(first["metadata"]["cwd"], "/home/ada/calc");
    assert_eq!(
        first["metadata"]["title"],
        "why does `cargo test` fail on CI?"
    );
    assert_eq!(
        first["metadata"]["original_timestamp"],
        "2025-11-02T10:00:00.000Z"
    );
    let usage = r.of_type("span.model_request_end");
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0]["event"]["metadata"]["model"], "claude-sonnet-4-5");
    let errors: Vec<_> = r
        .of_type("session.error")
        .iter()
        .map(|e| {
            e["event"]["error"]["retry_status"]["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(errors, ["exhausted", "retrying"]);
    assert!(!r.stdout.contains("I'll fix the lock fi"));
}

/// The SDK's sub-agent (`<root>/<agent id>.messages.json`, session `<root>__<agent id>`) is a
/// thread of its root session; its first message is the root agent's task for it.
#[test]
fn an_sdk_subagent_is_a_thread_of_its_root_session() {
    let r = run("06-cline-sdk");
    let t = r.of_type("session.thread_created")[0];
    assert_eq!(t["session_id"], "cline-1790000000000_a1b2c");
    assert_eq!(t["event"]["agent_name"], "agent_1");
    let child = "cline-1790000000000_a1b2c__agent_1";
    assert_eq!(t["event"]["session_thread_id"], child);
    assert_eq!(
        r.agent_prompt_sessions(),
        [(child, "cline-1790000000000_a1b2c")]
    );
}

/// Where the API history has no usage (Roo Code, Kilo Code, older Cline), each request's
/// usage comes from its `api_req_started` UI message, once it has ended; where it has (newer
/// Cline), the UI's copy is not counted again.
#[test]
fn usage_comes_once_from_where_it_is() {
    let usage = |case: &str| -> Vec<String> {
        run(case)
            .of_type("span.model_request_end")
            .iter()
            .map(|e| {
                let u = &e["event"]["model_usage"];
                format!("{} {}", u["input_tokens"], u["cache_read_input_tokens"])
            })
            .collect()
    };
    // Roo Code's OpenAI protocol counts cached tokens in tokensIn.
    assert_eq!(usage("03-roo-subtask"), ["1104 4096"]);
    // The second request of the Kilo Code task has not ended: no usage yet.
    assert_eq!(usage("04-kilo"), ["900 0"]);
    assert_eq!(usage("01-cline-xml"), ["1200 0"]);
    assert_eq!(usage("02-cline-native"), ["2100 0", "300 2000"]);
}

/// Older Cline's messages have no time of their own: they inherit the task's start (its id).
#[test]
fn messages_without_ts_inherit_the_task_start() {
    let r = run("01-cline-xml");
    let first = &r.events[0]["event"]["metadata"];
    assert_eq!(first["original_timestamp"], "2024-11-02T10:00:00.000Z");
    assert_eq!(first["timestamp_inherited"], true);
}

/// A torn API history gives the messages written whole before the cut (they are the whole
/// file's first ones) and says it is incomplete; the UI messages beside it are read.
#[test]
fn a_torn_history_gives_what_precedes_the_cut() {
    let r = run("05-torn");
    assert!(r.read_stderr.contains("is incomplete"), "{}", r.read_stderr);
    assert_eq!(r.read_code, Some(0));
    assert_eq!(r.of_type("session.error").len(), 1);
    assert_eq!(r.prompts_by("human"), ["hello"]);
    assert!(r.of_type("agent.message").is_empty());
}
