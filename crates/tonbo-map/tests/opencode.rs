//! OpenCode fixtures (`testdata/opencode/<case>`): SQL text and JSON trees, built into real
//! SQLite files in a temporary copy, read by the real `opencode-read` (over the paths listed in
//! the case's `paths` file), mapped by the real `tonbo-map`, and compared with the checked-in
//! `expected.ndjson`; plus the fidelity rules: every message and part maps once across merged
//! layouts, and every tool result pairs with its call; and no event depends on a record's
//! provenance (`jq 'del(.provenance)'` between the stages changes nothing).
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test opencode` rewrites the expected
//! files; review the diff before committing it.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};

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

/// The events of `opencode-read PATH... | tonbo-map`, or with `strip_provenance` of
/// `opencode-read PATH... | jq -c 'del(.provenance)' | tonbo-map`: real processes, real pipes.
fn pipeline(paths: &[PathBuf], strip_provenance: bool) -> String {
    let mut read = Command::new(bin("opencode-read"))
        .args(paths)
        .arg("-q")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut records = Stdio::from(read.stdout.take().unwrap());
    let mut jq = None;
    if strip_provenance {
        let mut child = Command::new("jq")
            .args(["-c", "del(.provenance)"])
            .stdin(records)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("jq (on PATH): {e}"));
        records = Stdio::from(child.stdout.take().unwrap());
        jq = Some(child);
    }
    let map = Command::new(bin("tonbo-map"))
        .stdin(records)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    read.wait().unwrap();
    if let Some(mut jq) = jq {
        assert!(jq.wait().unwrap().success(), "jq failed");
    }
    String::from_utf8(map.stdout).unwrap()
}

/// Keys, and every other byte of an event, never depend on a record's provenance: every fixture
/// maps to the same events when `jq` strips it between the stages (saved record files, and
/// records of an older reader, map to the keys already on servers).
#[test]
fn provenance_changes_no_event() {
    let tmp = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for case in cases() {
        let into = tmp.path().join(case.file_name().unwrap());
        build(&case, &into);
        let listed = std::fs::read_to_string(case.join("paths")).unwrap();
        paths.extend(
            listed
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| into.join(l.trim())),
        );
    }
    let records = Command::new(bin("opencode-read"))
        .args(&paths)
        .arg("-q")
        .output()
        .unwrap()
        .stdout;
    let records = String::from_utf8(records).unwrap();
    assert_eq!(
        records
            .lines()
            .filter(|l| l.contains("\"provenance\":"))
            .count(),
        records.lines().count(),
        "every record names its provenance"
    );
    let events = pipeline(&paths, false);
    let stripped = pipeline(&paths, true);
    assert!(events.lines().count() > 100, "{events}");
    assert!(events == stripped, "events differ without provenance");
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

#[test]
fn who_wrote_it_and_sub_sessions_in_every_lineage() {
    let run = run("08-who-wrote-it");
    assert_eq!(run.map_code, Some(0), "{}", run.map_stderr);
    let human = prompts_by(&run, "human");
    // Typed: the first prompt (not its editor context, the agent hint or the copy after the
    // compaction), OpenCode 2's prompt, Crush's prompt and its `!` command.
    assert_eq!(
        human,
        [
            "ask @explore who calls cartTotal",
            "audit the tax code",
            "find why go vet fails",
            "go vet ./..."
        ]
    );
    let agent = agent_prompt_sessions(&run);
    let agent: Vec<(&str, &str)> = agent
        .iter()
        .map(|(s, p)| (s.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        agent,
        [
            (
                "opencode-ses_7e0000000011AbCdEfGhIjKlMn",
                "opencode-ses_7e0000000010AbCdEfGhIjKlMn"
            ),
            (
                "opencode-ses_7e0000000021AbCdEfGhIjKlMn",
                "opencode-ses_7e0000000020AbCdEfGhIjKlMn"
            ),
            (
                "opencode-9a8b7c6d-0008-4a1b-8c2d-0000000000a1$$call_agent1",
                "opencode-3c1d2e4f-0008-4a1b-8c2d-000000000001"
            ),
        ]
    );
    // Each parent announces its sub-session, with the agent and the call that made it.
    let threads: Vec<(&str, &str, &str, &str)> = run
        .events
        .iter()
        .filter(|e| e["event"]["type"] == "session.thread_created")
        .map(|e| {
            let ev = &e["event"];
            (
                e["session_id"].as_str().unwrap(),
                ev["session_thread_id"].as_str().unwrap(),
                ev["agent_name"].as_str().unwrap(),
                ev["metadata"]["parent_tool_use_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        threads,
        [
            (
                "opencode-ses_7e0000000010AbCdEfGhIjKlMn",
                "opencode-ses_7e0000000011AbCdEfGhIjKlMn",
                "explore",
                ""
            ),
            (
                "opencode-ses_7e0000000020AbCdEfGhIjKlMn",
                "opencode-ses_7e0000000021AbCdEfGhIjKlMn",
                "general",
                ""
            ),
            (
                "opencode-3c1d2e4f-0008-4a1b-8c2d-000000000001",
                "opencode-9a8b7c6d-0008-4a1b-8c2d-0000000000a1$$call_agent1",
                "subagent",
                "call_agent1"
            ),
        ]
    );
    // The parent's task and subagent calls name the session they ran.
    let linked: Vec<&str> = run
        .events
        .iter()
        .filter(|e| e["event"]["type"] == "agent.tool_use")
        .filter_map(|e| e["event"]["metadata"]["child_session_id"].as_str())
        .collect();
    assert_eq!(
        linked,
        [
            "opencode-ses_7e0000000011AbCdEfGhIjKlMn",
            "opencode-ses_7e0000000021AbCdEfGhIjKlMn"
        ]
    );
    for (kind, want) in [
        ("subtask", 1),
        ("replayed_prompt", 1),
        ("continuation", 1),
        ("ide_context", 1),
    ] {
        let n = run
            .events
            .iter()
            .filter(|e| e["event"]["metadata"]["kind"] == kind)
            .count();
        assert_eq!(n, want, "{kind}");
    }
    assert!(
        run.map_stderr.contains("agent mention 1"),
        "{}",
        run.map_stderr
    );
}
