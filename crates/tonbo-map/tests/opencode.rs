//! OpenCode fixtures (`testdata/opencode/<case>`): SQL text and JSON trees, built into real
//! SQLite files in a temporary copy, read by the real `opencode-read` (over the paths listed in
//! the case's `paths` file), mapped by the real `tonbo-map`, and compared with the checked-in
//! `expected.ndjson`; plus the fidelity rules: every message and part maps once across merged
//! layouts, and every tool result pairs with its call.
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test opencode` rewrites the expected
//! files; review the diff before committing it.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use common::*;
use serde_json::Value;

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("testdata/opencode"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("paths").is_file())
        .collect();
    v.sort();
    assert!(v.len() >= 7, "fixtures missing");
    v
}

fn run(name: &str) -> Run {
    run_opencode_case(&root().join("testdata/opencode").join(name))
}

#[test]
fn fixtures_map_to_the_expected_events() {
    let mut failures = Vec::new();
    for case in cases() {
        let run = run_opencode_case(&case);
        failures.extend(check_expected(&case, &run));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fidelity_rules_hold_for_every_fixture() {
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let run = run_opencode_case(&case);
        let mut by_session: HashMap<String, Vec<&Value>> = HashMap::new();
        for e in &run.events {
            by_session
                .entry(e["session_id"].as_str().unwrap().to_string())
                .or_default()
                .push(&e["event"]);
        }
        for (session, events) in &by_session {
            let mut keys = HashSet::new();
            let mut calls = HashSet::new();
            for ev in events {
                let m = &ev["metadata"];
                let key = m["source_key"].as_str().unwrap();
                assert!(keys.insert(key), "{name}: {session}: key {key} twice");
                match ev["type"].as_str().unwrap() {
                    "agent.tool_use" => {
                        calls.insert(m["tool_use_id"].as_str().unwrap().to_string());
                    }
                    "agent.tool_result" => {
                        let id = ev["tool_use_id"].as_str().unwrap();
                        assert!(
                            calls.contains(id),
                            "{name}: {key}: result without its call {id}"
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}

fn keys(run: &Run, session: &str) -> Vec<String> {
    run.events
        .iter()
        .filter(|e| e["session_id"] == session)
        .map(|e| {
            e["event"]["metadata"]["source_key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn json_store_and_database_merge_without_duplicates() {
    let run = run("05-t1-t2-merge");
    // The shared session: turns 3 and 4 from the database (turn 3 also in the JSON store), plus
    // the prompt only the JSON store has (turn 5), each message once, in time order.
    let ms: u64 = 1_771_000_000_000;
    let id = |offset: u64, tag: &str| format!("msg_{:012x}{tag}", ms + offset);
    let want = vec![
        id(200_000, "U3"),
        id(200_010, "A3"),
        id(205_000, "U5"),
        id(210_000, "U4"),
        id(210_010, "A4"),
    ];
    let merged = keys(&run, "opencode-ses_7f3a00000004AbCdEfGhIjKlMn");
    let mut messages: Vec<String> = merged
        .iter()
        .filter(|k| k.starts_with("msg_"))
        .map(|k| k.split('#').next().unwrap().to_string())
        .collect();
    messages.dedup();
    assert_eq!(messages, want, "{merged:?}");
    assert!(
        !keys(&run, "opencode-ses_7f3a00000005AbCdEfGhIjKlMn").is_empty(),
        "the JSON-only session is read"
    );
}

#[test]
fn sessions_in_session_v2_win_over_their_legacy_copy() {
    let run = run("06-t3");
    let v2 = keys(&run, "opencode-ses_7f3a00000006AbCdEfGhIjKlMn");
    assert!(
        v2.iter()
            .all(|k| k.starts_with("smg_") || k.starts_with("title/")),
        "{v2:?}"
    );
    assert!(
        !keys(&run, "opencode-ses_7f3a00000007AbCdEfGhIjKlMn").is_empty(),
        "legacy-only session read"
    );
}

#[test]
fn bad_input_is_named_and_the_rest_is_mapped() {
    let run = run("07-bad-input");
    assert!(
        run.read_stderr.contains("opencode-broken.db"),
        "{}",
        run.read_stderr
    );
    assert!(
        run.read_stderr.contains("b-2"),
        "row id named: {}",
        run.read_stderr
    );
    assert_eq!(run.read_code, Some(1));
    let texts: Vec<&str> = run
        .events
        .iter()
        .filter_map(|e| e["event"]["content"][0]["text"].as_str())
        .collect();
    assert_eq!(texts, ["good before", "good after"]);
}
