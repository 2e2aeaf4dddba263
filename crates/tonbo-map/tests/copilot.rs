//! GitHub Copilot CLI fixtures (`testdata/copilot-cli/<case>/copilot`), read by the real
//! `copilot-read` and mapped by the real `tonbo-map`, compared with the checked-in
//! `expected.ndjson`, and checked for Copilot CLI's own fidelity rules (those of every source
//! are in `fidelity.rs`): what the CLI wrote itself never a person's prompt, thinking written
//! once though the CLI writes it twice, tool calls announced once though the CLI writes a
//! request and an execution start, usage from the shutdown's model metrics.
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test copilot` rewrites the expected files;
//! review the diff before committing it.

mod common;

use std::collections::HashSet;

use common::*;

fn run(case: &str) -> Run {
    COPILOT.run_named(case)
}

#[test]
fn fixtures_map_to_the_expected_events() {
    COPILOT.check_every_expected();
}

#[test]
fn nothing_is_emitted_twice_in_a_session() {
    for case in COPILOT.cases() {
        let run = COPILOT.run(&case);
        for (session, events) in run.by_session() {
            let mut seen = HashSet::new();
            for ev in events {
                let ty = ev["type"].as_str().unwrap();
                if ["agent.thinking", "agent.tool_use", "agent.mcp_tool_use"].contains(&ty) {
                    let body = format!("{ty} {} {}", ev["content"], ev["metadata"]["tool_use_id"]);
                    assert!(seen.insert(body.clone()), "{session}: twice: {body}");
                }
            }
        }
    }
}

#[test]
fn what_the_cli_wrote_is_not_a_persons_prompt() {
    let run = run("02-flat-early");
    let human: Vec<&str> = run
        .events
        .iter()
        .filter(|e| e["event"]["metadata"]["author"] == "human")
        .filter_map(|e| e["event"]["content"][0]["text"].as_str())
        .collect();
    assert_eq!(human, ["Summarise docs/spec.pdf and fix the failing lint"]);
    let skill = run.find(|ev| ev["metadata"]["kind"] == "injected");
    assert_eq!(skill["event"]["type"], "system.message");
    assert_eq!(skill["event"]["metadata"]["message_source"], "skill-pdf");
    let autopilot = run.find(|ev| ev["metadata"]["kind"] == "autopilot_continuation");
    assert_eq!(autopilot["event"]["type"], "user.message");
    assert_eq!(autopilot["event"]["metadata"]["author"], "agent");
}

#[test]
fn a_sub_agents_events_name_the_call_that_started_it() {
    let run = run("02-flat-early");
    let sub = run.find(|ev| {
        ev["type"] == "agent.message"
            && ev["content"][0]["text"] == "The spec defines the /v2/orders endpoint."
    });
    assert_eq!(sub["event"]["metadata"]["parent_tool_use_id"], "call_task");
    let top = run.find(|ev| ev["type"] == "user.message");
    assert!(top["event"]["metadata"]["parent_tool_use_id"].is_null());
}

#[test]
fn context_model_and_usage_come_through() {
    let run = run("01-events-turn");
    let prompt = run.find(|ev| ev["type"] == "user.message");
    let m = &prompt["event"]["metadata"];
    assert_eq!(m["cwd"], "/home/dev/shop");
    assert_eq!(m["git_branch"], "feat/cart-total");
    assert_eq!(m["git_repository"], "acme/shop");
    assert_eq!(m["model"], "claude-sonnet-4.5");
    assert_eq!(m["cli_version"], "1.0.48");
    assert_eq!(m["attachments"][0]["displayName"], "cart.ts");
    assert_eq!(m["original_timestamp"], "2026-11-20T09:14:04.102Z");
    let usage = run.of_type("span.model_request_end");
    assert_eq!(usage.len(), 1);
    let u = &usage[0]["event"]["model_usage"];
    // inputTokens counts the cached tokens; they are taken out of input_tokens.
    assert_eq!(u["input_tokens"], 4100);
    assert_eq!(u["cache_read_input_tokens"], 30000);
    assert_eq!(u["output_tokens"], 112);
    let failed = run.find(|ev| ev["type"] == "agent.mcp_tool_result");
    assert_eq!(failed["event"]["is_error"], true);
    assert_eq!(run.of_type("agent.thinking").len(), 1);
}

#[test]
fn every_layout_maps_the_same_conversation_shape() {
    for (case, first_prompt) in [
        ("01-events-turn", "Add a test for the cart total"),
        (
            "02-flat-early",
            "Summarise docs/spec.pdf and fix the failing lint",
        ),
        ("03-legacy", "please add the github mcp server"),
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
fn legacy_messages_inherit_the_sessions_start_time() {
    let run = run("03-legacy");
    for e in &run.events {
        let m = &e["event"]["metadata"];
        assert_eq!(m["original_timestamp"], "2025-10-08T21:10:16.398Z");
        assert_eq!(m["timestamp_inherited"], true);
    }
}

#[test]
fn a_torn_line_and_an_unknown_type_are_counted_not_mapped() {
    let run = run("02-flat-early");
    assert!(
        run.read_stderr.contains("1 incomplete"),
        "{}",
        run.read_stderr
    );
    assert!(
        run.map_stderr.contains("unknown: session.future_feature 1"),
        "{}",
        run.map_stderr
    );
}

#[test]
fn a_resumed_sessions_usage_is_counted_once() {
    // Its second shutdown holds the session's totals, both runs: 2500/180/1500/200.
    let run = run("04-resumed");
    let usage = run.of_type("span.model_request_end");
    assert_eq!(usage.len(), 2);
    let sum = |k: &str| -> u64 {
        usage
            .iter()
            .map(|e| e["event"]["model_usage"][k].as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum("output_tokens"), 180);
    assert_eq!(sum("cache_read_input_tokens"), 1500);
    assert_eq!(sum("cache_creation_input_tokens"), 200);
    assert_eq!(sum("input_tokens"), 2500 - 1500 - 200);
    // After the resume, the context it carries holds.
    let fix = run.find(|ev| ev["content"][0]["text"] == "fix the first one");
    assert_eq!(fix["event"]["metadata"]["git_branch"], "fix/todos");
    assert_eq!(fix["event"]["metadata"]["author"], "human");
}

#[test]
fn another_agents_prompt_is_the_agents() {
    let run = run("04-resumed");
    let ev = run.find(|ev| ev["content"][0]["text"] == "Review the diff in src/todo.rs");
    assert_eq!(ev["event"]["type"], "user.message");
    assert_eq!(ev["event"]["metadata"]["author"], "agent");
    assert_eq!(
        ev["event"]["metadata"]["message_source"],
        "agent-rubber-duck"
    );
}
