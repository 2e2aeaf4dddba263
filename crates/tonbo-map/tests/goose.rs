//! Goose fixtures (`testdata/goose/<case>/`, SQL text built into `sessions.db` files, and
//! older `.jsonl` session files), read by the real `goose-read` and mapped by the real
//! `tonbo-map`, compared with the checked-in `expected.ndjson`, and checked for Goose's own
//! rules: who wrote each user-role message (a person, a parent agent, a schedule, or Goose
//! itself), a `.jsonl` already imported into the database read once, keys stable.
//!
//! `TONBO_UPDATE_EXPECTED=1 cargo test -p tonbo-map --test goose` rewrites the expected files;
//! review the diff before committing it.

mod common;

use common::*;

fn run(case: &str) -> Run {
    GOOSE.run_named(case)
}

#[test]
fn fixtures_map_to_the_expected_events() {
    GOOSE.check_every_expected();
}

/// Only what a person typed is a person's prompt: not tool results (user-role messages), not
/// Goose's agent-only text (a compaction's summary, a nudge), not the copy of the last prompt
/// Goose adds after a compaction; the archived original stays the person's.
#[test]
fn a_person_s_prompts_are_told_from_goose_s_own_user_messages() {
    let run = run("01-sqlite-v9");
    assert_eq!(
        run.prompts_by("human"),
        [
            "Run the tests and fix what fails",
            "Now update the changelog",
            "Shorter, please.",
            "Explain the cache layer",
            "Explain the cache layer"
        ]
    );
    assert_eq!(
        run.prompts_by("agent"),
        ["List the test modules and how many tests each has."]
    );
    // A schedule's prompt, and a recipe's (the session was started from it).
    assert_eq!(
        run.prompts_by("external"),
        [
            "Check for outdated dependencies and open an issue if any are found.",
            "Draft release notes from the commits since the last tag."
        ]
    );
    let kind = |key: &str| run.keyed(key)["event"]["metadata"]["kind"].clone();
    assert_eq!(kind("msg_a8#0"), "injected_context");
    assert_eq!(kind("msg_a9#0"), "compaction");
    assert_eq!(kind("msg_a10#0"), "replayed_prompt");
    assert_eq!(kind("msg_a13#0"), "injected_context");
    assert_eq!(run.of_type("user.message").len(), 8);
    // After a manual compaction nothing is copied: the same words typed again are the person's.
    assert_eq!(kind("msg_e5#0"), "prompt");
}

#[test]
fn tool_calls_pair_with_their_results_by_extension() {
    let run = run("01-sqlite-v9");
    let call = &run.keyed("msg_a2#2")["event"];
    assert_eq!(call["type"], "agent.mcp_tool_use");
    assert_eq!(call["mcp_server_name"], "developer");
    assert_eq!(call["name"], "shell");
    let result = &run.keyed("msg_a3#0")["event"];
    assert_eq!(result["type"], "agent.mcp_tool_result");
    assert_eq!(result["mcp_tool_use_id"], "toolu_01");
    assert_eq!(result["is_error"], false);
    // A call the model got wrong, and a tool that failed.
    assert_eq!(run.keyed("msg_a4#0")["event"]["name"], "invalid_tool_call");
    assert_eq!(run.keyed("msg_a5#0")["event"]["is_error"], true);
    assert_eq!(run.keyed("msg_a5#1")["event"]["is_error"], true);
}

#[test]
fn the_older_jsonl_generation_maps_and_its_torn_line_waits() {
    let run = run("02-legacy-jsonl");
    assert_eq!(
        run.prompts_by("human"),
        [
            "Create an index.html with a hello page",
            "What is in this folder?"
        ]
    );
    assert!(
        !run.stdout.contains("and the hidd"),
        "a torn line was mapped"
    );
    assert_eq!(
        run.of_type("goose.content").len(),
        1,
        "the unknown content type is kept"
    );
    let title = &run.of_type("goose.title")[0]["event"];
    assert_eq!(title["title"], "Set up static site");
    assert_eq!(title["metadata"]["project_path"], "/home/ana/site");
    assert_eq!(
        run.keyed("20250301_101500.jsonl:4#0")["event"]["type"],
        "agent.mcp_tool_result"
    );
}

/// Goose imported the older file into the database and left it in place: read once, from the
/// database; rows written before `message_id` existed are keyed as Goose's migration 7 names
/// them (`msg_<session>_<row>`), so the keys do not move when Goose migrates.
#[test]
fn an_imported_session_file_is_read_once_and_old_rows_keep_their_keys() {
    let run = run("03-sqlite-v5-after-import");
    assert_eq!(
        run.prompts_by("human"),
        ["Resize every jpg here to 50%", "How does the build work?"]
    );
    run.keyed("msg_20250305_140000_1#0");
    run.keyed("msg_20251015_1_3#0");
    assert!(run
        .read_stderr
        .contains("1 legacy files already in the database"));
}

#[test]
fn keys_are_the_same_on_every_read() {
    for case in GOOSE.cases() {
        let a = GOOSE.run(&case);
        let b = GOOSE.run(&case);
        assert_eq!(a.keys(None), b.keys(None), "{}", case.display());
    }
}
