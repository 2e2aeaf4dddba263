//! Drives the real `copilot-read` over fake Copilot CLI homes: default location and discovery,
//! the records and their `at`, torn lines, rejects, `--modified-after`, the warnings of an input
//! that gives nothing, a large session; and `--follow` (both by filesystem events and by
//! polling) while the test appends to a session, adds one, and rewrites a legacy document.

use std::path::Path;
use std::thread;
use std::time::Duration;

use serde_json::Value;
use tonbo_testkit::in_both_modes;
use tonbo_testkit::reader::{
    append, assert_has, assert_none_found, assert_refuses_bad_arguments, assert_warns_nothing_read,
    command, long_ago, put, run_with, set_mtime, Following, Mode, TempHome, Unreadable,
};
use tonbo_testkit::Run;

const BIN: &str = env!("CARGO_BIN_EXE_copilot-read");
const S1: &str = "3f6c2a1e-8b4d-4c7a-9e21-5d0f1b2c3a4e";
const S2: &str = "5b2d3c4e-0000-4000-8000-00000000000b";

fn read(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let cmd = command(BIN, home, &["COPILOT_HOME", "XDG_CONFIG_HOME"]);
    run_with(cmd, args, env)
}

/// An event line of the current shape.
fn event(n: usize, kind: &str, data: &str) -> String {
    format!(
        r#"{{"type":"{kind}","data":{data},"id":"e{n}","timestamp":"2026-11-20T09:14:{:02}.000Z","parentId":null}}"#,
        n % 60
    )
}

fn prompt(n: usize, text: &str) -> String {
    event(n, "user.message", &format!(r#"{{"content":"{text}"}}"#)) + "\n"
}

fn events_file(copilot: &Path, session: &str) -> std::path::PathBuf {
    copilot
        .join("session-state")
        .join(session)
        .join("events.jsonl")
}

fn records(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn without_path_the_copilot_home_is_read() {
    let home = &TempHome::new();
    put(&events_file(&home.join(".copilot"), S1), prompt(1, "hi"));
    let r = read(home, &[], &[]);
    r.assert_code(0);
    let recs = records(&r);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["source"], "copilot-cli");
    assert_eq!(recs[0]["session"], S1);
    assert_eq!(recs[0]["at"], format!("{S1}/events.jsonl:1"));
    assert_eq!(recs[0]["record"]["data"]["content"], "hi");
    // COPILOT_HOME moves it.
    let moved = home.join("elsewhere");
    put(&events_file(&moved, S2), prompt(1, "moved"));
    let r = read(home, &[], &[("COPILOT_HOME", moved.to_str().unwrap())]);
    assert_eq!(records(&r)[0]["session"], S2);
    // XDG_CONFIG_HOME, when its .copilot exists (versions up to 0.0.421).
    let xdg = home.join("xdg");
    put(&events_file(&xdg.join(".copilot"), S2), prompt(1, "xdg"));
    let r = read(home, &[], &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())]);
    assert_eq!(records(&r)[0]["record"]["data"]["content"], "xdg");
}

#[test]
fn nothing_at_the_default_place_is_a_note_not_an_error() {
    let home = &TempHome::new();
    assert_none_found(&read(home, &[], &[]), "Copilot CLI session folder");
}

#[test]
fn a_folder_above_the_store_finds_every_layout_and_nothing_else() {
    let home = &TempHome::new();
    let c = home.join("backup/home/.copilot");
    put(&events_file(&c, S1), prompt(1, "current"));
    put(
        &c.join("session-state").join(S1).join("workspace.yaml"),
        "id: x\n",
    );
    put(
        &c.join("session-state").join(S1).join("files/notes.jsonl"),
        prompt(1, "not a session"),
    );
    put(
        &c.join(format!("session-state/{S2}.jsonl")),
        prompt(1, "flat"),
    );
    put(
        &c.join("history-session-state/session_a.json"),
        "{\n  \"sessionId\": \"legacy-1\",\n  \"startTime\": \"2025-10-08T21:10:16.398Z\",\n  \"chatMessages\": [\n    {\"role\": \"user\", \"content\": \"old\"}\n  ],\n  \"timeline\": []\n}\n",
    );
    put(&c.join("config.json"), "{}");
    let r = read(home, &[home.join("backup").to_str().unwrap()], &[]);
    r.assert_code(0);
    let recs = records(&r);
    let ats: Vec<&str> = recs.iter().map(|r| r["at"].as_str().unwrap()).collect();
    assert_eq!(
        ats,
        [
            "session_a.json:session",
            "session_a.json:0",
            &format!("{S1}/events.jsonl:1"),
            &format!("{S2}.jsonl:1"),
        ]
    );
    assert_eq!(recs[0]["kind"], "legacy-session");
    assert_eq!(recs[0]["session"], "legacy-1");
    // The document's top level, on one line, without its messages and timeline.
    assert_eq!(
        recs[0]["record"],
        serde_json::json!({"sessionId": "legacy-1", "startTime": "2025-10-08T21:10:16.398Z"})
    );
    assert_eq!(recs[1]["kind"], "legacy-message");
    assert_eq!(recs[1]["provenance"]["row"], "0");
    assert_has(
        r.summary(),
        "3 files (1 events.jsonl, 1 flat .jsonl, 1 legacy .json)",
    );
}

#[test]
fn lines_go_out_byte_for_byte_a_torn_last_line_waits_and_bad_lines_are_rejected() {
    let home = &TempHome::new();
    let file = events_file(&home.join(".copilot"), S1);
    let odd = r#"{"type":"user.message", "data":{"content":"caf\u00e9", "n": 1.50},"id":"x","timestamp":"2026-11-20T09:14:00Z","parentId":null}"#;
    put(
        &file,
        format!("{odd}\nnot json\n[1]\n{{\"type\":\"assistant.mess"),
    );
    let rejects = home.join("rejects.ndjson");
    let r = read(
        home,
        &[
            file.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
        &[],
    );
    r.assert_code(1);
    let line: Value = serde_json::from_str(r.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["at"], format!("{S1}/events.jsonl:1"));
    assert!(r.stdout.contains(odd), "the line is written as it is");
    assert_eq!(r.rejected_lines().len(), 2, "{}", r.stderr);
    assert_has(r.summary(), "1 records, 1 incomplete, 2 rejected, 0 failed");
}

#[test]
fn a_truncated_legacy_document_is_incomplete_and_the_rest_is_read() {
    let home = &TempHome::new();
    let legacy = home.join(".copilot/history-session-state");
    put(
        &legacy.join("session_a.json"),
        "{\n  \"sessionId\": \"a\",\n  \"chatMessages\": [\n    {\"role\": \"user\", \"con",
    );
    put(
        &legacy.join("session_b.json"),
        r#"{"sessionId": "b", "chatMessages": [{"role": "user", "content": "whole"}]}"#,
    );
    let r = read(home, &[], &[]);
    r.assert_code(0);
    let recs = records(&r);
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| r["session"] == "b"));
    assert_has(r.summary(), "2 records, 1 incomplete, 0 rejected, 0 failed");
}

#[test]
fn modified_after_leaves_old_files_out() {
    let home = &TempHome::new();
    let c = home.join(".copilot");
    put(&events_file(&c, S1), prompt(1, "old"));
    set_mtime(&events_file(&c, S1), long_ago());
    put(&events_file(&c, S2), prompt(1, "new"));
    let r = read(home, &["--modified-after", "2024-01-01"], &[]);
    r.assert_code(0);
    let recs = records(&r);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["session"], S2);
    assert_has(
        r.summary(),
        "skipped 1 files not modified after --modified-after",
    );
}

#[test]
fn an_input_that_gives_nothing_is_warned_about() {
    let home = &TempHome::new();
    let c = home.join("c");
    put(&c.join("session-state/x/workspace.yaml"), "id: x\n");
    assert_warns_nothing_read(
        |args| Box::new(read(home, args, &[])),
        "copilot-read",
        &c,
        "no Copilot CLI session file",
    );
    let empty = home.join("e");
    put(&events_file(&empty, S1), "\n\n");
    assert_warns_nothing_read(
        |args| Box::new(read(home, args, &[])),
        "copilot-read",
        &empty,
        "its 1 session files hold no event or message",
    );
}

#[test]
fn what_cannot_be_read_is_reported_and_the_rest_is_read() {
    let home = &TempHome::new();
    let c = home.join("c");
    put(&events_file(&c, S1), prompt(1, "kept"));
    let bad = Unreadable::make(
        home,
        c.join("session-state").join(S1).join("events.jsonl.bak"),
        &c.join("session-state/loop/up"),
    );
    // A dangling link named like a session file.
    let dangling = c.join(format!("session-state/{S2}.jsonl"));
    std::fs::rename(&bad.dangling, &dangling).unwrap();
    let bad = Unreadable {
        missing: bad.missing,
        dangling,
    };
    let r = read(
        home,
        &[bad.missing.to_str().unwrap(), c.to_str().unwrap()],
        &[],
    );
    bad.assert_reported(&r, "failed");
    assert_eq!(records(&r).len(), 1);
}

#[test]
fn scan_lists_each_session_once_without_reading_it() {
    let home = &TempHome::new();
    let c = home.join(".copilot");
    put(&events_file(&c, S1), prompt(1, "one") + &prompt(2, "two"));
    set_mtime(&events_file(&c, S1), long_ago());
    put(
        &c.join(format!("session-state/{S2}.jsonl")),
        prompt(1, "flat"),
    );
    put(
        &c.join("history-session-state/session_a.json"),
        r#"{"sessionId": "legacy-1", "chatMessages": []}"#,
    );
    put(
        &c.join("history-session-state/torn.json"),
        r#"{"sessionId": "x", "chatMe"#,
    );
    let r = read(home, &["--scan"], &[]);
    r.assert_code(0);
    let lines = records(&r);
    let sessions: Vec<&str> = lines
        .iter()
        .map(|l| l["session"].as_str().unwrap())
        .collect();
    assert_eq!(sessions, [S1, S2, "legacy-1"], "{}", r.stdout);
    let first = &lines[0];
    assert_eq!(first["source"], "copilot-cli");
    assert_eq!(first["location"], c.join("session-state").to_str().unwrap());
    assert_eq!(
        first["bytes"],
        std::fs::metadata(events_file(&c, S1)).unwrap().len()
    );
    assert_eq!(first["updated"], "2023-11-14T22:13:20Z");
    assert!(
        first.get("expires").is_none(),
        "Copilot CLI deletes no session"
    );
    assert_has(&r.stderr, "copilot-read: scan: 3 sessions");
}

#[test]
fn bad_arguments_are_refused() {
    let home = &TempHome::new();
    let file = events_file(&home.join(".copilot"), S1);
    put(&file, prompt(1, "x"));
    assert_refuses_bad_arguments(|args| Box::new(read(home, args, &[])), &file);
}

#[test]
fn a_large_session_is_read_whole_in_order() {
    let home = &TempHome::new();
    let file = events_file(&home.join(".copilot"), S1);
    let text = "x".repeat(2000);
    let mut body = String::new();
    for n in 1..=20_000 {
        body.push_str(&prompt(n, &text));
    }
    put(&file, body);
    let r = read(home, &[], &[]);
    r.assert_code(0);
    assert_eq!(r.stdout.lines().count(), 20_000);
    let last: Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["at"], format!("{S1}/events.jsonl:20000"));
}

// ---------------------------------------------------------------------------------------------
// --follow

fn following(home: &Path, mode: Mode) -> Following {
    let mut cmd = command(BIN, home, &["COPILOT_HOME", "XDG_CONFIG_HOME"]);
    cmd.args(mode.args());
    Following::start(cmd)
}

fn at(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    v["at"].as_str().unwrap().to_string()
}

fn follows_appends_and_new_sessions(mode: Mode) {
    let home = &TempHome::new();
    let c = home.join(".copilot");
    let file = events_file(&c, S1);
    put(&file, prompt(1, "one"));
    let mut f = following(home, mode);
    let first = f.next(1);
    assert_eq!(at(&first[0]), format!("{S1}/events.jsonl:1"));
    // A line written in two parts goes out once, whole, when its newline comes.
    let second = prompt(2, "two");
    let (a, b) = second.split_at(20);
    append(&file, a);
    thread::sleep(Duration::from_millis(300));
    f.assert_no_line_yet();
    append(&file, b);
    let got = f.next(1);
    assert_eq!(at(&got[0]), format!("{S1}/events.jsonl:2"));
    // A new session appears.
    put(&events_file(&c, S2), prompt(1, "other"));
    let got = f.next(1);
    assert_eq!(at(&got[0]), format!("{S2}/events.jsonl:1"));
    let ended = f.terminate_ok();
    assert_eq!(ended.lines.len(), 3);
}

fn a_rewritten_legacy_document_sends_only_its_new_messages(mode: Mode) {
    let home = &TempHome::new();
    let doc = home.join(".copilot/history-session-state/session_x.json");
    let write = |n: usize| {
        let msgs: Vec<String> = (0..n)
            .map(|i| format!("{{\"role\": \"user\", \"content\": \"m{i}\"}}"))
            .collect();
        let text = format!(
            "{{\n  \"sessionId\": \"legacy-x\",\n  \"chatMessages\": [\n    {}\n  ]\n}}\n",
            msgs.join(",\n    ")
        );
        // Written whole to a new file and renamed, as a rewrite lands.
        let tmp = doc.with_extension("tmp");
        put(&tmp, text);
        std::fs::rename(&tmp, &doc).unwrap();
    };
    write(1);
    let mut f = following(home, mode);
    let got = f.next(2);
    assert_eq!(at(&got[0]), "session_x.json:session");
    assert_eq!(at(&got[1]), "session_x.json:0");
    write(3);
    let got = f.next(2);
    assert_eq!(at(&got[0]), "session_x.json:1");
    assert_eq!(at(&got[1]), "session_x.json:2");
    let ended = f.terminate_ok();
    assert_eq!(ended.lines.len(), 4, "{:?}", ended.lines);
}

fn a_rewritten_log_gives_only_its_new_lines(mode: Mode) {
    let home = &TempHome::new();
    let file = events_file(&home.join(".copilot"), S1);
    put(
        &file,
        prompt(1, "one") + &prompt(2, "two") + &prompt(3, "three"),
    );
    let mut f = following(home, mode);
    f.next(3);
    // Cut back to its first line, then a new event: written whole to a new file, renamed.
    let tmp = file.with_extension("tmp");
    put(&tmp, prompt(1, "one") + &prompt(4, "four"));
    std::fs::rename(&tmp, &file).unwrap();
    let got = f.next(1);
    let v: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(v["record"]["data"]["content"], "four");
    assert_eq!(v["at"], format!("{S1}/events.jsonl:2"));
    let ended = f.terminate_ok();
    assert_eq!(ended.lines.len(), 4, "{:?}", ended.lines);
    assert_has(ended.summary(), "1 rewrites");
}

fn an_old_session_is_left_out_until_it_is_written_again(mode: Mode) {
    let home = &TempHome::new();
    let c = home.join(".copilot");
    let old = events_file(&c, S1);
    put(&old, prompt(1, "old"));
    set_mtime(&old, long_ago());
    put(&events_file(&c, S2), prompt(1, "new"));
    let mut cmd = command(BIN, home, &["COPILOT_HOME", "XDG_CONFIG_HOME"]);
    cmd.args(mode.args())
        .args(["--modified-after", "2024-01-01"]);
    let mut f = Following::start(cmd);
    assert_eq!(at(&f.next(1)[0]), format!("{S2}/events.jsonl:1"));
    f.assert_no_line_yet();
    // Resumed: the whole session goes out, its old lines first.
    append(&old, prompt(2, "resumed"));
    let got = f.next(2);
    assert_eq!(at(&got[0]), format!("{S1}/events.jsonl:1"));
    assert_eq!(at(&got[1]), format!("{S1}/events.jsonl:2"));
    let ended = f.terminate_ok();
    assert_has(
        ended.summary(),
        "skipped 1 files not modified after --modified-after",
    );
}

in_both_modes!(
    an_old_session_is_left_out_until_it_is_written_again,
    a_rewritten_log_gives_only_its_new_lines,
    follows_appends_and_new_sessions,
    a_rewritten_legacy_document_sends_only_its_new_messages
);
