//! Drives the real `cline-read` over fake homes and storage folders: where it looks by default
//! (every editor and variant, remote servers, Cline's data folder), what a PATH may be, the
//! records it writes (elements byte for byte, their `at` and `kind`), torn files, and what every
//! reader does alike (nothing found, nothing read, bad arguments, `--modified-after`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tonbo_testkit::reader::{
    assert_has, assert_left_out_alone, assert_none_found, assert_refuses_bad_arguments,
    assert_warns_nothing_read, command, long_ago, put, rejects_file, set_mtime, TempHome,
};
use tonbo_testkit::Run;

const BIN: &str = env!("CARGO_BIN_EXE_cline-read");
/// What would point the reader at this machine's own tasks.
const UNSET: [&str; 4] = [
    "XDG_CONFIG_HOME",
    "CLINE_DATA_DIR",
    "CLINE_DIR",
    "VSCODE_PORTABLE",
];

fn read(home: &Path, args: &[&str]) -> Run {
    let mut cmd = command(BIN, home, &UNSET);
    cmd.args(args);
    tonbo_testkit::run(cmd, None)
}

fn records(r: &Run) -> Vec<Value> {
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A task folder under `storage` with one API message and one UI message.
fn task(storage: &Path, id: &str, text: &str) -> PathBuf {
    let dir = storage.join("tasks").join(id);
    put(
        &dir.join("api_conversation_history.json"),
        format!(
            r#"[{{"role":"user","content":[{{"type":"text","text":"<task>\n{text}\n</task>"}}],"ts":1762077600000}}]"#
        ),
    );
    put(
        &dir.join("ui_messages.json"),
        format!(r#"[{{"ts":1762077600000,"type":"say","say":"task","text":"{text}"}}]"#),
    );
    dir
}

#[test]
fn every_default_place_is_read_with_its_variant() {
    let home = &TempHome::new();
    let places = [
        (
            ".config/Code/User/globalStorage/saoudrizwan.claude-dev",
            "1762077600001",
            "cline",
        ),
        (
            "Library/Application Support/Cursor/User/globalStorage/rooveterinaryinc.roo-cline",
            "r1",
            "roo-code",
        ),
        (
            ".vscode-server/data/User/globalStorage/kilocode.kilo-code",
            "k1",
            "kilo-code",
        ),
        (
            ".config/Windsurf/User/globalStorage/kilocode.kilo-code",
            "k2",
            "kilo-code",
        ),
        (".cline/data", "1762077600002", "cline"),
    ];
    for (place, id, _) in places {
        task(&home.join(place), id, "hi");
    }
    let r = read(home, &[]);
    r.assert_code(0);
    let mut got: Vec<(String, String)> = records(&r)
        .iter()
        .filter(|rec| rec["kind"].as_str().unwrap().ends_with("/api"))
        .map(|rec| {
            let variant = rec["kind"].as_str().unwrap().split('/').next().unwrap();
            (rec["session"].as_str().unwrap().into(), variant.into())
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = places
        .iter()
        .map(|(_, id, v)| (id.to_string(), v.to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_has(
        &r.stderr,
        "cline-read: 5 tasks, 5 api messages, 5 ui messages, 10 records",
    );
}

#[test]
fn the_environment_moves_the_default_places() {
    let home = &TempHome::new();
    let elsewhere = home.join("elsewhere");
    task(
        &elsewhere.join("cfg/VSCodium/User/globalStorage/saoudrizwan.claude-dev"),
        "1",
        "a",
    );
    task(
        &elsewhere.join("portable/user-data/User/globalStorage/kilocode.kilo-code"),
        "2",
        "b",
    );
    task(&elsewhere.join("cline-data"), "3", "c");
    let mut cmd = command(BIN, home, &UNSET);
    cmd.env("XDG_CONFIG_HOME", elsewhere.join("cfg"))
        .env("VSCODE_PORTABLE", elsewhere.join("portable"))
        .env("CLINE_DATA_DIR", elsewhere.join("cline-data"));
    let r = tonbo_testkit::run(cmd, None);
    r.assert_code(0);
    let sessions: Vec<String> = records(&r)
        .iter()
        .filter(|rec| rec["kind"].as_str().unwrap().ends_with("/api"))
        .map(|rec| rec["session"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sessions.len(), 3, "{}", r.stdout);
    for id in ["1", "2", "3"] {
        assert!(sessions.contains(&id.to_string()), "{id}: {sessions:?}");
    }
}

/// `XDG_CONFIG_HOME` set to `~/.config` (as `tonbo-ingest --root` does) names the same place
/// twice: its tasks are read once.
#[test]
fn a_place_named_twice_is_read_once() {
    let home = &TempHome::new();
    task(
        &home.join(".config/Code/User/globalStorage/saoudrizwan.claude-dev"),
        "1",
        "a",
    );
    let mut cmd = command(BIN, home, &UNSET);
    cmd.env("XDG_CONFIG_HOME", home.join(".config"));
    let r = tonbo_testkit::run(cmd, None);
    r.assert_code(0);
    assert_eq!(records(&r).len(), 2, "{}", r.stdout);
}

#[test]
fn nothing_at_the_default_places_is_a_note() {
    let home = &TempHome::new();
    assert_none_found(
        &read(home, &[]),
        "Cline, Roo Code or Kilo Code storage folder",
    );
}

/// A folder above the stores (a copied home) finds every task in it; so do a `tasks` folder,
/// one task folder and one of its files.
#[test]
fn a_path_may_be_anything_above_or_in_a_task_folder() {
    let home = &TempHome::new();
    let backup = home.join("backup");
    let storage = backup.join("home/.config/Code/User/globalStorage/rooveterinaryinc.roo-cline");
    let dir = task(&storage, "t1", "one");
    task(&storage, "t2", "two");
    for (path, n) in [
        (backup.clone(), 4),
        (storage.join("tasks"), 4),
        (dir.clone(), 2),
        (dir.join("ui_messages.json"), 2),
    ] {
        let r = read(home, &[path.to_str().unwrap()]);
        r.assert_code(0);
        assert_eq!(records(&r).len(), n, "{}: {}", path.display(), r.stdout);
    }
}

/// Each element goes out byte for byte (compacted when the writer indented it), with its kind,
/// `at` (index and `ts`, or a hash when it has none) and provenance; the history item first.
#[test]
fn records_carry_elements_as_written() {
    let home = &TempHome::new();
    let storage = home.join("s/saoudrizwan.claude-dev");
    let dir = storage.join("tasks/1762077600000");
    let api = "[{\"role\":\"user\",\"content\":\"caf\\u00e9 1.50\",\"n\":1.50},\n  {\n    \"role\": \"assistant\",\n    \"content\": \"ok\"\n  }\n]";
    put(&dir.join("api_conversation_history.json"), api);
    put(
        &storage.join("state/taskHistory.json"),
        r#"[{"id":"1762077600000","ts":1762077600000,"task":"t","tokensIn":1,"tokensOut":2,"totalCost":0.5}]"#,
    );
    let r = read(home, &[storage.to_str().unwrap()]);
    r.assert_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[0].starts_with(
        r#"{"v":1,"source":"cline","kind":"cline/task","session":"1762077600000","record":{"id":"1762077600000","ts":1762077600000,"task":"t","tokensIn":1,"tokensOut":2,"totalCost":0.5},"at":"task","provenance":{"file":""#
    ));
    assert!(
        lines[1].contains(
            r#""record":{"role":"user","content":"caf\u00e9 1.50","n":1.50},"at":"api:0:h"#
        ),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains(r#""record":{"role":"assistant","content":"ok"},"at":"api:1:h"#));
    let rec: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(rec["provenance"]["row"], "1");
    assert!(rec["provenance"]["file"]
        .as_str()
        .unwrap()
        .ends_with("tasks/1762077600000/api_conversation_history.json"));
    // The same file read again gives the same records (the keys of their events).
    assert_eq!(read(home, &[storage.to_str().unwrap()]).stdout, r.stdout);
}

/// A file caught midway through Cline's in-place write is noted and left; the rest is read, and
/// the next run reads it whole.
#[test]
fn a_torn_file_is_left_for_its_next_write() {
    let home = &TempHome::new();
    let dir = task(&home.join("s/kilocode.kilo-code"), "k1", "hello");
    let whole = std::fs::read_to_string(dir.join("api_conversation_history.json")).unwrap();
    put(
        &dir.join("api_conversation_history.json"),
        &whole[..whole.len() / 2],
    );
    let r = read(home, &[home.join("s").to_str().unwrap()]);
    r.assert_code(0);
    assert_has(&r.stderr, "api_conversation_history.json is incomplete (");
    assert_has(&r.stderr, "1 incomplete");
    assert_eq!(records(&r).len(), 1);
    put(&dir.join("api_conversation_history.json"), "");
    assert_has(
        &read(home, &[home.join("s").to_str().unwrap()]).stderr,
        "is incomplete (empty",
    );
    put(&dir.join("api_conversation_history.json"), &whole);
    assert_eq!(
        records(&read(home, &[home.join("s").to_str().unwrap()])).len(),
        2
    );
}

#[test]
fn a_folder_with_files_but_no_task_warns() {
    let home = &TempHome::new();
    put(&home.join("notes/readme.txt"), "x");
    assert_warns_nothing_read(
        |args| Box::new(read(home, args)),
        "cline-read",
        &home.join("notes"),
        "no task folder",
    );
}

#[test]
fn modified_after_leaves_old_tasks_out() {
    let home = &TempHome::new();
    let storage = home.join("s/saoudrizwan.claude-dev");
    let old = task(&storage, "1700000000000", "old");
    task(&storage, "1762077600000", "new");
    for f in ["api_conversation_history.json", "ui_messages.json"] {
        set_mtime(&old.join(f), long_ago());
    }
    let r = read(home, &[storage.to_str().unwrap(), "--modified-after", "7d"]);
    r.assert_code(0);
    let sessions: Vec<Value> = records(&r).iter().map(|x| x["session"].clone()).collect();
    assert_eq!(sessions, ["1762077600000", "1762077600000"]);
    assert_has(
        &r.stderr,
        "skipped 1 tasks not modified after --modified-after",
    );
    assert_left_out_alone(|args| Box::new(read(home, args)), &old);
}

#[test]
fn bad_arguments_are_refused() {
    let home = &TempHome::new();
    let dir = task(&home.join("s"), "1", "x");
    assert_refuses_bad_arguments(|args| Box::new(read(home, args)), &dir);
}

/// A document that is whole JSON but no list of messages, and elements that are not objects,
/// are rejected (exit 1, `--rejects` records them); the objects beside them are read; a file that
/// is not JSON (bytes that are no UTF-8) is taken as mid-write. Nothing panics.
#[test]
fn bad_input_is_rejected_and_the_rest_read() {
    let home = &TempHome::new();
    let tasks = home.join("s/tasks");
    put(&tasks.join("a/api_conversation_history.json"), r#"{"x":1}"#);
    put(&tasks.join("b/ui_messages.json"), b"\xff\xfe[");
    put(
        &tasks.join("c/api_conversation_history.json"),
        r#"[1,{"role":"user","content":"hi"},null]"#,
    );
    let rejects = home.join("rejects.ndjson");
    let r = read(
        home,
        &[
            home.join("s").to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    r.assert_code(1);
    assert_eq!(records(&r).len(), 1, "{}", r.stdout);
    assert_has(
        &r.stdout,
        r#""record":{"role":"user","content":"hi"},"at":"api:1:h"#,
    );
    assert_has(
        &r.stderr,
        "a/api_conversation_history.json:1: rejected: not a JSON array of messages",
    );
    assert_has(&r.stderr, "b/ui_messages.json is incomplete (");
    assert_has(&r.stderr, "3 rejected");
    let recorded = rejects_file(&rejects);
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[1]["reason"], "element 0 is not a JSON object");
    assert_eq!(recorded[1]["raw"], "1");
    assert_eq!(recorded[2]["raw"], "null");
}

/// The newest Cline's SDK session folder under `~/.cline/data/db/` is found by default: its
/// manifest is the task record, its messages file's `messages` the API history.
#[test]
fn an_sdk_session_is_read_by_default() {
    let home = &TempHome::new();
    let id = "1790000000000_a1b2c";
    let dir = home.join(".cline/data/db").join(id);
    put(
        &dir.join(format!("{id}.messages.json")),
        "{\n  \"version\": 1,\n  \"agent\": \"lead\",\n  \"messages\": [\n    {\n      \"role\": \"user\",\n      \"content\": \"hi\",\n      \"ts\": 1790000000000\n    }\n  ]\n}\n",
    );
    put(
        &dir.join(format!("{id}.json")),
        "{\n  \"session_id\": \"x\",\n  \"cwd\": \"/w\"\n}\n",
    );
    put(&home.join(".cline/data/db/sessions.db"), "not read");
    let r = read(home, &[]);
    r.assert_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert_has(
        lines[0],
        r#""kind":"cline/task","session":"1790000000000_a1b2c","record":{"session_id":"x","cwd":"/w"},"at":"task""#,
    );
    assert_has(
        lines[1],
        r#""kind":"cline/api","session":"1790000000000_a1b2c","record":{"role":"user","content":"hi","ts":1790000000000},"at":"api:0:1790000000000""#,
    );
}

/// `--scan` lists every task folder (and SDK session) with its bytes and newest modification
/// time, reading none of it; no expiry (the extensions keep tasks until a person deletes them).
#[test]
fn scan_lists_tasks_with_size_and_last_update() {
    let home = &TempHome::new();
    let storage = home.join(".config/Code/User/globalStorage/saoudrizwan.claude-dev");
    let dir = task(&storage, "1762077600000", "hi");
    set_mtime(&dir.join("api_conversation_history.json"), long_ago());
    set_mtime(&dir.join("ui_messages.json"), long_ago());
    // A torn file is listed all the same: a scan does not read.
    put(
        &storage.join("tasks/2/api_conversation_history.json"),
        "[{\"ro",
    );
    let r = read(home, &["--scan"]);
    r.assert_code(0);
    let lines = records(&r);
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    let first = &lines[0];
    assert_eq!(first["source"], "cline");
    assert_eq!(first["session"], "1762077600000");
    assert_eq!(first["updated"], "2023-11-14T22:13:20Z");
    let size = |f: &str| std::fs::metadata(dir.join(f)).unwrap().len();
    let bytes = size("api_conversation_history.json") + size("ui_messages.json");
    assert_eq!(first["bytes"], bytes);
    assert!(first.get("expires").is_none());
    assert_eq!(lines[1]["session"], "2");
    assert_has(&r.stderr, "cline-read: scan: 2 sessions");
}
