//! Claude Code fixtures (`testdata/claude/<case>/projects`), read by the real `claude-read` and
//! mapped by the real `tonbo-map`, compared with the events checked in beside them
//! (`expected.ndjson`), and checked for Claude Code's fidelity rules (those of every source, such
//! as keys unique and every tool result linked to a tool use of its session, are in
//! `fidelity.rs`): every prompt, text, thinking block, tool call and tool result exactly once; no
//! injected text as `user.message`.
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test claude` rewrites the expected files;
//! review the diff before committing it.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

#[test]
fn fixtures_map_to_the_expected_events() {
    CLAUDE.check_every_expected();
}

/// What the input holds, counted independently of the mapper: content blocks by type, over the
/// lines that belong to their file's session and are seen for the first time (by uuid).
fn input_counts(projects: &Path) -> HashMap<&'static str, usize> {
    let mut counts = HashMap::new();
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    let mut stack = vec![projects.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl")
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("agent-acompact-")
            {
                files.push(p);
            }
        }
    }
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        let is_main = !stem.starts_with("agent-");
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if is_main && v["sessionId"].as_str().is_some_and(|s| s != stem) {
                continue;
            }
            if let Some(u) = v["uuid"].as_str() {
                if !seen.insert(u.to_string()) {
                    continue;
                }
            }
            let t = v["type"].as_str().unwrap_or("");
            if v["isApiErrorMessage"] == true {
                continue;
            }
            let content = &v["message"]["content"];
            if let Some(blocks) = content.as_array() {
                for b in blocks {
                    let key = match (t, b["type"].as_str().unwrap_or("")) {
                        // A blank text block says nothing: no event.
                        ("assistant", "text")
                            if b["text"].as_str().is_some_and(|t| t.trim().is_empty()) =>
                        {
                            continue
                        }
                        ("assistant", "text") => "text",
                        ("assistant", "thinking" | "redacted_thinking") => "thinking",
                        ("assistant", "tool_use" | "server_tool_use") => "tool_use",
                        (_, "tool_result" | "web_search_tool_result") => "tool_result",
                        _ => continue,
                    };
                    *counts.entry(key).or_insert(0) += 1;
                }
            } else if t == "assistant" && content.is_string() {
                *counts.entry("text").or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Claude Code's own rules (the rules of every source are in `fidelity.rs`): who may write a
/// `user.message`, every event's original time, every content block of the input once, every
/// model request span closed.
#[test]
fn fidelity_rules_hold_for_every_fixture() {
    for case in CLAUDE.cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let run = CLAUDE.run(&case);
        let mut got = HashMap::new();
        for events in run.by_session().values() {
            let mut open_spans = HashSet::new();
            for ev in events {
                let m = &ev["metadata"];
                let key = m["source_key"].as_str().unwrap();
                assert!(
                    m.get("original_timestamp").is_some(),
                    "{name}: {key}: no original_timestamp"
                );
                let kind = m["kind"].as_str().unwrap_or("");
                match ev["type"].as_str().unwrap() {
                    "user.message" => {
                        let author = m["author"].as_str().unwrap_or("");
                        let human = [
                            "prompt",
                            "slash_command",
                            "queued",
                            "bash_input",
                            "memory_input",
                        ];
                        let agent = [
                            "subagent_prompt",
                            "teammate_message",
                            "peer_message",
                            "coordinator_message",
                        ];
                        assert!(
                            (author == "human" && human.contains(&kind))
                                || (author == "agent" && agent.contains(&kind))
                                || (author == "external" && kind == "channel_message"),
                            "{name}: {key}: {kind} by {author:?} became a user.message"
                        );
                    }
                    "agent.message" => *got.entry("text").or_insert(0) += 1,
                    "agent.thinking" => *got.entry("thinking").or_insert(0) += 1,
                    "agent.tool_use" | "agent.mcp_tool_use" => {
                        *got.entry("tool_use").or_insert(0) += 1
                    }
                    "agent.tool_result" | "agent.mcp_tool_result" => {
                        *got.entry("tool_result").or_insert(0) += 1
                    }
                    "span.model_request_start" => {
                        assert!(open_spans.insert(key.replace("/start", "")))
                    }
                    "span.model_request_end" => {
                        let start = ev["model_request_start_id"]
                            .as_str()
                            .unwrap()
                            .replace("/start", "");
                        assert!(
                            open_spans.remove(&start),
                            "{name}: {key}: end without start"
                        );
                        assert!(ev["model_usage"].is_object());
                    }
                    _ => {}
                }
            }
            assert!(
                open_spans.is_empty(),
                "{name}: unclosed spans {open_spans:?}"
            );
        }
        let want = input_counts(&case.join("projects"));
        for k in ["text", "thinking", "tool_use", "tool_result"] {
            assert_eq!(
                got.get(k).copied().unwrap_or(0),
                want.get(k).copied().unwrap_or(0),
                "{name}: {k} blocks in the input vs events out"
            );
        }
    }
}

#[test]
fn usage_comes_from_the_final_line_of_a_response_and_is_counted_once() {
    let run = CLAUDE.run_named("01-basic-turn");
    let ends = run.of_type("span.model_request_end");
    assert_eq!(
        ends.len(),
        2,
        "one span per API response (msg_01 spans three lines)"
    );
    assert_eq!(ends[0]["event"]["model_usage"]["output_tokens"], 57);
    assert_eq!(ends[1]["event"]["model_usage"]["output_tokens"], 31);
}

#[test]
fn bad_lines_are_reported_with_file_and_line_and_the_rest_is_mapped() {
    let run = CLAUDE.run_named("09-bad-input");
    let file = "0b5e1a52-0009-4c1a-9f00-000000000009.jsonl";
    for (line, what) in [(2, "rejected"), (4, "rejected")] {
        assert!(
            run.read_stderr
                .lines()
                .any(|l| l.contains(file) && l.contains(&format!(":{line}: {what}"))),
            "line {line} not reported:\n{}",
            run.read_stderr
        );
    }
    assert_said(&run.read_stderr, ":7: incomplete last line");
    assert_eq!(run.read_code, Some(1));
    // The line without `message` is rejected by the mapper, with its stage and reason.
    assert_said(
        &run.map_stderr,
        ".jsonl:5: `user` line has no message.content",
    );
    assert_eq!(run.map_code, Some(1));
    assert_eq!(
        run.keys(None),
        ["b1#0", "msg_91/start", "b2#0", "msg_91/end", "b4#0"]
    );
}

/// `(source_key, type, metadata.kind, metadata.author)` of a run's events of one session.
fn who(run: &Run) -> Vec<(String, String, String, String)> {
    run.events
        .iter()
        .map(|e| {
            let ev = &e["event"];
            let m = &ev["metadata"];
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                s(&m["source_key"]),
                s(&ev["type"]),
                s(&m["kind"]),
                s(&m["author"]),
            )
        })
        .collect()
}

#[test]
fn who_wrote_each_user_line() {
    let run = CLAUDE.run_named("10-who-wrote-it");
    let got = who(&run);
    let find = |key: &str| {
        got.iter()
            .find(|(k, ..)| k == key)
            .map(|(_, t, k, a)| (t.as_str(), k.as_str(), a.as_str()))
            .unwrap_or_else(|| panic!("no event {key}: {got:#?}"))
    };
    for (key, want) in [
        ("w01#0", ("user.message", "prompt", "human")),
        ("w01#1", ("system.message", "ide_context", "")),
        ("w08#0", ("user.message", "prompt", "human")),
        ("w08#1", ("system.message", "system_reminder", "")),
        ("w09#0", ("system.message", "task_notification", "")),
        ("w10#0", ("user.message", "teammate_message", "agent")),
        ("w11#0", ("user.message", "peer_message", "agent")),
        ("w12#0", ("user.message", "channel_message", "external")),
        ("w14#0", ("system.message", "scheduled_prompt", "")),
        ("w15#0", ("user.message", "slash_command", "human")),
        ("w16#0", ("system.message", "meta", "")),
        ("w17#0", ("user.message", "queued", "human")),
        ("w18#0", ("system.message", "task_notification", "")),
        ("w22#0", ("system.message", "auto_continuation", "")),
        ("w23#0", ("system.message", "ide_context", "")),
        ("s01#0", ("user.message", "subagent_prompt", "agent")),
        ("s03#0", ("user.message", "coordinator_message", "agent")),
        ("f01#1", ("user.message", "subagent_prompt", "agent")),
    ] {
        assert_eq!(find(key), want, "{key}");
    }
    // The human prompts, by the documented test, are exactly what a person typed.
    let human = run.prompts_by("human");
    assert_eq!(
        human,
        [
            "Why does this total ignore the quantity?",
            "Also check the tax rounding.",
            "<command-message>review</command-message>\n<command-name>/review</command-name>",
            "and the discount code path",
        ]
    );
    // The IDE context that came with the first prompt, as metadata.
    assert_eq!(
        run.keyed("w01#1")["event"]["metadata"]["ide"],
        serde_json::json!({"opened_file": "/home/dev/app/src/cart.ts",
            "selection": {"file": "/home/dev/app/src/cart.ts", "start_line": 12, "end_line": 14}})
    );
    // Nothing dropped silently: what was passed over is counted by name.
    for counted in [
        "attachment:queued_command (empty) 1",
        "attachment:opened_file_in_ide 1",
        "blank text block 1",
        "fork-context-ref 1",
        "unknown: none",
    ] {
        assert_said(&run.map_stderr, counted);
    }
}

#[test]
fn a_subagent_is_linked_both_ways() {
    let run = CLAUDE.run_named("10-who-wrote-it");
    let session = "claude-code-0b5e1a52-0010-4c1a-9f00-000000000010";
    let created = run.of_type("session.thread_created");
    assert_eq!(created.len(), 2);
    let explore = &run.find(|ev| ev["session_thread_id"] == "agent-a4ca7529859c158c2")["event"];
    assert_eq!(explore["agent_name"], "Explore");
    assert_eq!(explore["metadata"]["parent_tool_use_id"], "toolu_w1");
    assert_eq!(explore["metadata"]["child_session_id"], session);
    for e in &run.events {
        let ev = &e["event"];
        if ev["session_thread_id"].is_string() && ev["type"] != "session.thread_created" {
            assert_eq!(ev["metadata"]["parent_session_id"], session, "{ev}");
        } else {
            assert!(ev["metadata"].get("parent_session_id").is_none(), "{ev}");
        }
    }
    assert_eq!(
        run.keyed("s01#0")["event"]["metadata"]["parent_tool_use_id"],
        "toolu_w1"
    );
}

#[test]
fn summaries_title_the_session_that_holds_their_leaf() {
    let run = CLAUDE.run_named("11-old-summaries");
    let titles: Vec<(String, String, String)> = run
        .events
        .iter()
        .filter(|e| {
            e["event"]["type"]
                .as_str()
                .is_some_and(|t| t == "claude_code.title" || t == "claude_code.summary")
        })
        .map(|e| {
            let ev = &e["event"];
            (
                e["session_id"]
                    .as_str()
                    .unwrap()
                    .rsplit('-')
                    .next()
                    .unwrap()
                    .to_string(),
                ev["type"].as_str().unwrap().to_string(),
                ev["title"]
                    .as_str()
                    .or(ev["summary"].as_str())
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let t = |s: &str, ty: &str, x: &str| (s.to_string(), ty.to_string(), x.to_string());
    assert_eq!(
        titles,
        [
            // File B's head titles session A, which holds its leaf; file C's copy is one too many.
            t(
                "00000000000a",
                "claude_code.title",
                "Empty Repo Setup: CLAUDE.md Foundation Created"
            ),
            t(
                "00000000000b",
                "claude_code.title",
                "Tax rounding fixed (half up)"
            ),
            t("00000000000b", "claude_code.title", "Tax Rounding Fix"),
            // A leaf no file holds: kept, as a summary, not as a title.
            t("00000000000b", "claude_code.summary", "Abandoned branch"),
        ]
    );
    assert_said(&run.map_stderr, "summary repeated 1");
    // Each comes after its leaf, with the leaf's time.
    for e in &run.events {
        assert!(
            e["event"]["metadata"]["original_timestamp"].is_string(),
            "{e}"
        );
    }
}

#[test]
fn events_and_their_keys_do_not_depend_on_provenance() {
    let paths: Vec<PathBuf> = CLAUDE.cases().iter().map(|c| c.join("projects")).collect();
    let events_of = |between| read_between_map("claude-read", &paths, between);
    let direct = events_of(Between::Nothing);
    // The fixtures hold subagents, whose threads are told by their files' names.
    assert!(direct.contains(r#""session_thread_id":"agent-a6f1""#));
    assert_eq!(events_of(Between::Edit(|r| r.provenance = None)), direct);
    // Records an older claude-read wrote, without `at`: the file's name comes from provenance.
    assert_eq!(events_of(Between::Edit(|r| r.at = None)), direct);
    // Without either, subagent files are not told: the comparisons above could fail.
    assert_ne!(
        events_of(Between::Edit(|r| {
            r.at = None;
            r.provenance = None;
        })),
        direct
    );
    // The same through jq, as the contract promises; jq rewrites the records' spacing, so
    // the control goes through jq too.
    assert_eq!(
        events_of(Between::Jq("del(.provenance)")),
        events_of(Between::Jq("."))
    );
}
