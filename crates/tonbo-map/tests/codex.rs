//! Codex CLI fixtures (`testdata/codex/<case>/sessions`), read by the real `codex-read` and
//! mapped by the real `tonbo-map`, compared with the checked-in `expected.ndjson`, and checked
//! for Codex CLI's fidelity rules (those of every source, such as every tool result paired with a
//! call of its session, are in `fidelity.rs`): no message, reasoning or tool call twice (neither
//! from the `event_msg` duplicates nor from a fork's copy of its parent), usage counted once,
//! injected context never a `user.message`.
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test codex` rewrites the expected files;
//! review the diff before committing it.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;

use common::*;
use tonbo_core::SourceRecord;

fn run(case: &str) -> Run {
    CODEX.run_named(case)
}

#[test]
fn fixtures_map_to_the_expected_events() {
    CODEX.check_every_expected();
}

/// Codex CLI's own rules (the rules of every source are in `fidelity.rs`): no message,
/// reasoning or tool call twice in a session, and injected context never a `user.message`.
#[test]
fn fidelity_rules_hold_for_every_fixture() {
    for case in CODEX.cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let run = CODEX.run(&case);
        for (session, events) in run.by_session() {
            let mut contents = HashSet::new();
            for ev in events {
                let key = &ev["metadata"]["source_key"];
                let ty = ev["type"].as_str().unwrap();
                if [
                    "user.message",
                    "agent.message",
                    "agent.thinking",
                    "agent.tool_use",
                    "agent.mcp_tool_use",
                ]
                .contains(&ty)
                {
                    let body = format!("{ty} {} {}", ev["content"], ev["input"]);
                    assert!(
                        contents.insert(body.clone()),
                        "{name}: {session}: emitted twice: {body}"
                    );
                }
                if ty == "user.message" {
                    let text = ev["content"].to_string().to_ascii_lowercase();
                    for marker in [
                        "<environment_context>",
                        "agents.md instructions",
                        "<turn_aborted>",
                        "<user_shell_command>",
                        "<permissions instructions>",
                    ] {
                        assert!(
                            !text.contains(marker),
                            "{name}: {key}: injected context as a user.message"
                        );
                    }
                }
            }
        }
    }
}

fn output_tokens(run: &Run, session: &str) -> u64 {
    run.events
        .iter()
        .filter(|e| e["session_id"] == session && e["event"]["type"] == "span.model_request_end")
        .map(|e| e["event"]["model_usage"]["output_tokens"].as_u64().unwrap())
        .sum()
}

#[test]
fn usage_is_per_request_and_counted_once() {
    // Two requests (180 and 90 output tokens); one token_count line is repeated verbatim.
    let run = run("01-v2-turn");
    assert_eq!(
        output_tokens(&run, "codex-019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a81"),
        270
    );
}

#[test]
fn a_fork_does_not_repeat_its_parents_history_or_usage() {
    let run = run("04-fork");
    let texts = run.texts();
    assert_eq!(
        texts
            .iter()
            .filter(|t| **t == "write the release notes")
            .count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| **t == "Draft written to NOTES.md.")
            .count(),
        1
    );
    assert!(texts.contains(&"now make it shorter"));
    assert_eq!(
        output_tokens(&run, "codex-019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a84"),
        120
    );
    assert_eq!(
        output_tokens(&run, "codex-019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a85"),
        60
    );
    let child = run
        .events
        .iter()
        .find(|e| e["session_id"] == "codex-019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a85")
        .unwrap();
    assert_eq!(
        child["event"]["metadata"]["forked_from_id"],
        "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a84"
    );
}

#[test]
fn every_generation_maps_the_same_conversation_shape() {
    for (case, first_prompt) in [
        ("05-v1", "add a README"),
        ("06-v0", "list files"),
        ("09-seed", "what's in src?"),
        ("01-v2-turn", "fix the failing cart test"),
    ] {
        let run = run(case);
        let types: Vec<&str> = run
            .events
            .iter()
            .map(|e| e["event"]["type"].as_str().unwrap())
            .collect();
        let prompt = run.find(|ev| ev["type"] == "user.message");
        assert_eq!(
            prompt["event"]["content"][0]["text"], first_prompt,
            "{case}"
        );
        for t in ["agent.tool_use", "agent.tool_result", "agent.message"] {
            assert!(types.contains(&t), "{case}: no {t} in {types:?}");
        }
    }
}

#[test]
fn bad_input_is_reported_and_the_rest_is_mapped() {
    let run = run("10-bad-input");
    for said in [
        ":3: rejected",
        "incomplete last line",
        "not a complete zstd stream",
    ] {
        assert_said(&run.read_stderr, said);
    }
    assert_eq!(run.read_code, Some(1));
    assert_said(
        &run.map_stderr,
        ".jsonl:5: Codex line has no `type` and `payload`",
    );
    let texts = run.texts();
    assert!(
        texts.contains(&"first") && texts.contains(&"still read"),
        "{texts:?}"
    );
}

#[test]
fn items_without_a_time_inherit_the_header_time() {
    // V1 lines and V0 items have no time of their own (only the header has one).
    for (case, header) in [
        ("05-v1", "2025-08-02T14:03:22.911Z"),
        ("06-v0", "2025-04-20T10:02:11.512Z"),
    ] {
        let run = run(case);
        assert!(!run.events.is_empty(), "{case}");
        for e in &run.events {
            let ev = &e["event"];
            assert_eq!(ev["metadata"]["original_timestamp"], header, "{case}: {ev}");
            assert_eq!(ev["processed_at"], header, "{case}: {ev}");
            assert_eq!(ev["metadata"]["timestamp_inherited"], true, "{case}: {ev}");
        }
    }
    // V2 lines carry their own time: never said to be inherited.
    let run = run("01-v2-turn");
    assert!(run
        .events
        .iter()
        .all(|e| e["event"]["metadata"].get("timestamp_inherited").is_none()));
}

#[test]
fn who_wrote_it_ide_context_and_sub_agents() {
    let run = run("11-who-wrote-it");
    assert_eq!(run.map_code, Some(0), "{}", run.map_stderr);
    // The IDE's context is not part of what the person typed.
    assert_eq!(run.prompts_by("human"), ["have a critic review cartTotal"]);
    let ide = run.find(|ev| ev["metadata"]["kind"] == "ide_context");
    assert_eq!(
        ide["event"]["metadata"]["ide"],
        serde_json::json!({"active_file": "src/cart.ts", "open_tabs": ["src/cart.ts", "PLAN.md"]})
    );
    let parent = "codex-019d1a2b-3c4d-7e5f-8a9b-000000000011";
    let child = "codex-019d1a2b-3c4d-7e5f-8a9b-000000000012";
    // The sub-agent's prompts (its task, and the parent's later message) are the parent's.
    assert_eq!(
        run.agent_prompt_sessions(),
        [
            (child, parent),
            (child, parent),
            // A review sub-agent names no parent thread: agent-written, unlinked.
            ("codex-019d1a2b-3c4d-7e5f-8a9b-000000000013", ""),
            // Multi-agent v2: the task (encrypted but for its header) and a later message.
            ("codex-019d1a2b-3c4d-7e5f-8a9b-000000000014", parent),
            ("codex-019d1a2b-3c4d-7e5f-8a9b-000000000014", parent),
        ]
    );
    let task = run.find(|ev| ev["metadata"]["kind"] == "agent_message");
    assert_eq!(
        task["event"]["content"][1],
        serde_json::json!({"type": "redacted"})
    );
    assert_eq!(task["event"]["metadata"]["from"], "/root");
    let created = run.of_type("session.thread_created");
    assert_eq!(created.len(), 2);
    assert_eq!(created[0]["session_id"], parent);
    assert_eq!(created[0]["event"]["session_thread_id"], child);
    assert_eq!(created[0]["event"]["agent_name"], "feedback_quality_critic");
    // The spawn call's result names the session it started.
    let spawned = run.find(|ev| {
        ev["metadata"]["tool_use_id"] == "call_spawn1" && ev["type"] == "agent.tool_result"
    });
    assert_eq!(spawned["event"]["metadata"]["child_session_id"], child);
    assert_said(&run.map_stderr, "blank text 1");
}

#[test]
fn keys_come_from_at_and_records_without_it_keep_them() {
    let dirs: Vec<PathBuf> = CODEX.cases().iter().map(|c| c.join("sessions")).collect();
    let read_edit_map =
        |edit: fn(&mut SourceRecord)| read_between_map("codex-read", &dirs, Between::Edit(edit));
    let plain = read_edit_map(|_| {});
    assert!(plain.lines().count() > 80, "{plain}");
    // Nothing downstream depends on provenance: without it, not a byte changes.
    let without_provenance = read_edit_map(|rec| {
        assert!(rec.at.is_some(), "no `at`: {rec:?}");
        rec.provenance = None;
    });
    assert!(
        plain == without_provenance,
        "records without provenance map to other events"
    );
    // Records an older reader wrote have no `at`: their provenance gives the same keys.
    let without_at = read_edit_map(|rec| rec.at = None);
    assert!(
        plain == without_at,
        "records without `at` map to other events"
    );
}
