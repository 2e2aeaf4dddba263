//! OpenCode fixtures (`testdata/opencode/<case>`): SQL text and JSON trees, built into real
//! SQLite files in a temporary copy, read by the real `opencode-read` (over the paths listed in
//! the case's `paths` file), mapped by the real `tonbo-map`, and compared with the checked-in
//! `expected.ndjson` (the fidelity rules of every source, such as every message and part mapped
//! once across merged layouts and every tool result paired with its call, are in `fidelity.rs`);
//! and no event depends on a record's provenance (`jq 'del(.provenance)'` between the stages
//! changes nothing).
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test opencode` rewrites the expected
//! files; review the diff before committing it.

mod common;

use std::process::Command;

use common::*;

fn run(name: &str) -> Run {
    OPENCODE.run_named(name)
}

#[test]
fn fixtures_map_to_the_expected_events() {
    OPENCODE.check_every_expected();
}

/// Keys, and every other byte of an event, never depend on a record's provenance: every fixture
/// maps to the same events when `jq` strips it between the stages (saved record files, and
/// records of an older reader, map to the keys already on servers).
#[test]
fn provenance_changes_no_event() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = OPENCODE.every_path(tmp.path());
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
    let pipeline = |between| read_between_map("opencode-read", &paths, between);
    let events = pipeline(Between::Nothing);
    let stripped = pipeline(Between::Jq("del(.provenance)"));
    assert!(events.lines().count() > 100, "{events}");
    assert!(events == stripped, "events differ without provenance");
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
    let merged = run.keys(Some("opencode-ses_7f3a00000004AbCdEfGhIjKlMn"));
    let mut messages: Vec<String> = merged
        .iter()
        .filter(|k| k.starts_with("msg_"))
        .map(|k| k.split('#').next().unwrap().to_string())
        .collect();
    messages.dedup();
    assert_eq!(messages, want, "{merged:?}");
    // The JSON-only session is read.
    run.assert_has_session("opencode-ses_7f3a00000005AbCdEfGhIjKlMn");
}

#[test]
fn sessions_in_session_v2_win_over_their_legacy_copy() {
    let run = run("06-t3");
    let v2 = run.keys(Some("opencode-ses_7f3a00000006AbCdEfGhIjKlMn"));
    assert!(
        v2.iter()
            .all(|k| k.starts_with("smg_") || k.starts_with("title/")),
        "{v2:?}"
    );
    // The legacy-only session is read.
    run.assert_has_session("opencode-ses_7f3a00000007AbCdEfGhIjKlMn");
}

#[test]
fn bad_input_is_named_and_the_rest_is_mapped() {
    let run = run("07-bad-input");
    assert_said(&run.read_stderr, "opencode-broken.db");
    assert!(
        run.read_stderr.contains("b-2"),
        "row id named: {}",
        run.read_stderr
    );
    assert_eq!(run.read_code, Some(1));
    assert_eq!(run.texts(), ["good before", "good after"]);
}

#[test]
fn who_wrote_it_and_sub_sessions_in_every_lineage() {
    let run = run("08-who-wrote-it");
    assert_eq!(run.map_code, Some(0), "{}", run.map_stderr);
    let human = run.prompts_by("human");
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
    assert_eq!(
        run.agent_prompt_sessions(),
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
        .of_type("session.thread_created")
        .into_iter()
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
        .of_type("agent.tool_use")
        .into_iter()
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
    assert_said(&run.map_stderr, "agent mention 1");
}
