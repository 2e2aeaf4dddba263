//! Drives the real `gemini-read` over the fixtures and over fake homes: where it looks, what it
//! writes (each message once, settled, named by its id), and its exit codes and warnings.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tonbo_testkit::reader::{
    assert_has, assert_left_out_alone, assert_none_found, assert_refuses_bad_arguments,
    assert_warns_nothing_read, command, long_ago, put, rejects_file, run_with, set_mtime, TempHome,
};
use tonbo_testkit::Run;

const BIN: &str = env!("CARGO_BIN_EXE_gemini-read");

fn testdata(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/gemini")
        .join(case)
}

fn read(home: &Path, args: &[&str]) -> Run {
    run_with(command(BIN, home, &["GEMINI_CLI_HOME"]), args, &[])
}

/// Each stdout line as JSON, checked against the contract's own type.
fn records(r: &Run) -> Vec<Value> {
    r.lines()
        .iter()
        .map(|line| {
            let rec: tonbo_core::SourceRecord = serde_json::from_str(line).unwrap();
            assert_eq!(rec.source, "gemini-cli");
            serde_json::from_str(line).unwrap()
        })
        .collect()
}

fn ats(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .map(|r| r["at"].as_str().unwrap().to_string())
        .collect()
}

const CHAT2: &str = "session-2026-05-02T14-00-b5e6f7a8.jsonl";

#[test]
fn each_message_once_settled_named_by_its_id_and_byte_for_byte() {
    let home = TempHome::new();
    let case = testdata("02-jsonl-replay");
    let r = read(&home, &[case.to_str().unwrap()]);
    r.assert_code(0);
    let mut recs = records(&r);
    // First the project's root, from the `.project_root` Gemini CLI keeps beside `chats/`.
    let project = recs.remove(0);
    assert_eq!(project["kind"], "project");
    assert_eq!(
        project["record"],
        serde_json::json!({"projectRoot": "/home/u/myproj"})
    );
    assert!(project["provenance"]["file"]
        .as_str()
        .unwrap()
        .ends_with("tmp/myproj/.project_root"));
    let at = |k: &str| format!("{CHAT2}:{k}");
    let set = ats(&recs)[6].clone();
    assert!(set.starts_with(&at("set:")), "{set}");
    assert_eq!(
        ats(&recs),
        [
            at("session"),
            at("u1"),
            at("g1"),
            at("g2"),
            at("u2"),
            at("rewind:u2"),
            set,
            at("u3"),
            at("w1")
        ]
    );
    let file = case.join("tmp/myproj/chats").join(CHAT2);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (rec, line) in r.lines()[1..].iter().zip([1, 2, 4, 5, 6, 7, 9, 8, 10]) {
        // The record is the line as written, never re-serialised.
        assert!(
            rec.contains(&format!("\"record\":{},\"at\"", lines[line - 1])),
            "{rec}"
        );
        let v: Value = serde_json::from_str(rec).unwrap();
        assert_eq!(v["provenance"]["line"], line as u64);
        assert_eq!(v["session"], "b5e6f7a8-0000-4000-8000-000000000002");
    }
    assert_eq!(recs[2]["record"]["toolCalls"][0]["status"], "success");
    assert_has(
        r.summary(),
        "10 lines, 6 messages, 10 records, 0 incomplete, 0 rejected, 0 failed",
    );
}

#[test]
fn a_legacy_document_is_its_session_then_its_messages() {
    let home = TempHome::new();
    let r = read(&home, &[testdata("01-json-legacy").to_str().unwrap()]);
    r.assert_code(0);
    let recs = records(&r);
    let name = "session-2026-03-10T09-15-a1b2c3d4.json";
    assert_eq!(
        ats(&recs),
        ["session", "m-user-1", "m-gemini-1", "m-info-1"].map(|k| format!("{name}:{k}"))
    );
    assert_eq!(recs[0]["kind"], "session");
    assert!(recs[0]["record"].get("messages").is_none());
    assert_eq!(recs[1]["provenance"]["row"], "m-user-1");
}

#[test]
fn bad_lines_are_rejected_a_torn_one_waits_and_a_truncated_document_fails() {
    let home = TempHome::new();
    let rejects = home.join("rejects.ndjson");
    let case = testdata("03-bad-input");
    let r = read(
        &home,
        &[
            case.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    r.assert_code(1);
    assert_eq!(r.rejected_lines().len(), 1);
    assert_has(&r.stderr, "c9d0e1f2.jsonl:6: incomplete last line");
    assert_has(&r.stderr, "d3e4f5a6.json: truncated JSON document");
    assert_has(r.summary(), "2 files (1 jsonl, 1 json), 5 lines, 2 messages, 4 records, 1 incomplete, 1 rejected, 1 failed");
    let rejected = rejects_file(&rejects);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 4);
    let kinds: Vec<Value> = records(&r).iter().map(|r| r["kind"].clone()).collect();
    assert_eq!(
        kinds,
        [
            Value::from("session"),
            Value::from("other"),
            Value::Null,
            Value::Null
        ]
    );
}

fn meta_line(id: &str) -> String {
    format!(
        r#"{{"sessionId":"{id}","projectHash":"p","startTime":"2026-06-01T10:00:00.000Z","lastUpdated":"2026-06-01T10:00:00.000Z"}}"#
    )
}

fn chat(home: &Path, project: &str, id: &str) -> PathBuf {
    let path = home.join(format!(
        ".gemini/tmp/{project}/chats/session-2026-06-01T10-00-{}.jsonl",
        &id[..8]
    ));
    let user = r#"{"id":"u1","timestamp":"2026-06-01T10:00:01.000Z","type":"user","content":"hi"}"#;
    put(&path, format!("{}\n{user}\n", meta_line(id)));
    path
}

#[test]
fn without_path_the_home_is_read_and_gemini_cli_home_wins() {
    let home = TempHome::new();
    chat(&home, "a", "11111111-aaaa");
    let other = TempHome::new();
    chat(&other, "b", "22222222-bbbb");
    let r = read(&home, &[]);
    r.assert_code(0);
    assert_eq!(records(&r)[0]["session"], "11111111-aaaa");
    let mut cmd = command(BIN, &home, &[]);
    cmd.env("GEMINI_CLI_HOME", other.as_os_str());
    let r = run_with(cmd, &[], &[]);
    r.assert_code(0);
    assert_eq!(records(&r)[0]["session"], "22222222-bbbb");
    let empty = TempHome::new();
    assert_none_found(&read(&empty, &[]), "Gemini CLI home");
}

#[test]
fn a_folder_above_the_store_finds_it() {
    let base = TempHome::new();
    chat(&base.join("alice"), "a", "11111111-aaaa");
    chat(&base.join("bob"), "b", "22222222-bbbb");
    let r = read(&base, &[base.to_str().unwrap()]);
    r.assert_code(0);
    let sessions: Vec<Value> = records(&r).iter().map(|r| r["session"].clone()).collect();
    assert_eq!(
        sessions,
        [
            "11111111-aaaa",
            "11111111-aaaa",
            "22222222-bbbb",
            "22222222-bbbb"
        ]
    );
}

#[test]
fn modified_after_leaves_old_chats_out() {
    let home = TempHome::new();
    let old = chat(&home, "a", "11111111-aaaa");
    set_mtime(&old, long_ago());
    chat(&home, "b", "22222222-bbbb");
    let r = read(&home, &["--modified-after", "7d"]);
    r.assert_code(0);
    assert!(records(&r).iter().all(|r| r["session"] == "22222222-bbbb"));
    assert_has(
        r.summary(),
        "skipped 1 files not modified after --modified-after",
    );
    assert_left_out_alone(|args| Box::new(read(&home, args)), &old);
}

#[test]
fn a_folder_giving_nothing_warns_and_exits_3() {
    let home = TempHome::new();
    let chats = home.join("p/chats");
    put(
        &chats.join("session-2026-06-01T10-00-12345678.jsonl"),
        "{\"sessionId\":\"12345",
    );
    assert_warns_nothing_read(
        |args| Box::new(read(&home, args)),
        "gemini-read",
        &chats,
        "its 1 chat files hold no complete line",
    );
}

#[test]
fn bad_arguments_are_refused() {
    let home = TempHome::new();
    assert_refuses_bad_arguments(
        |args| Box::new(read(&home, args)),
        &testdata("02-jsonl-replay"),
    );
}

#[test]
fn scan_lists_each_chat_with_gemini_cli_own_last_update_and_retention() {
    let home = TempHome::new();
    let file = chat(&home, "a", "11111111-aaaa");
    tonbo_testkit::reader::append(
        &file,
        "{\"$set\":{\"lastUpdated\":\"2026-06-02T08:00:00.000Z\"}}\n",
    );
    let r = read(&home, &["--scan"]);
    r.assert_code(0);
    let lines: Vec<Value> = r
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    assert_eq!(lines[0]["session"], "11111111-aaaa");
    assert_eq!(lines[0]["updated"], "2026-06-02T08:00:00Z");
    assert_eq!(lines[0]["expires"], "2026-07-02T08:00:00Z");
    assert_has(
        lines[0]["retention"].as_str().unwrap(),
        "maxAge 30d (the default",
    );
    assert_has(&r.stderr, "gemini-read: scan: 1 sessions");
    // The user's settings.json moves it; disabled, nothing expires.
    let settings = home.join(".gemini/settings.json");
    put(
        &settings,
        r#"{"general":{"sessionRetention":{"maxAge":"2w"}}}"#,
    );
    let r = read(&home, &["--scan"]);
    let line: Value = serde_json::from_str(&r.lines()[0]).unwrap();
    assert_eq!(line["expires"], "2026-06-16T08:00:00Z");
    put(
        &settings,
        r#"{"general":{"sessionRetention":{"enabled":false}}}"#,
    );
    let r = read(&home, &["--scan"]);
    let line: Value = serde_json::from_str(&r.lines()[0]).unwrap();
    assert!(line.get("expires").is_none(), "{line}");
}

#[test]
fn a_large_session_with_a_10_mb_tool_output_rewritten_by_id_is_read_whole_once() {
    let home = TempHome::new();
    let file = home.join(".gemini/tmp/big/chats/session-2026-06-01T10-00-bbbbbbbb.jsonl");
    let output = "x".repeat(10 * 1024 * 1024);
    let mut text = meta_line("bbbbbbbb-big") + "\n";
    for n in 0..2000 {
        text += &format!(
            r#"{{"id":"u{n}","timestamp":"2026-06-01T10:00:01.000Z","type":"user","content":"turn {n}"}}"#
        );
        text.push('\n');
    }
    let call = |status: &str, result: &str| {
        format!(
            r#"{{"id":"g","timestamp":"2026-06-01T10:00:02.000Z","type":"gemini","content":"","toolCalls":[{{"id":"c","name":"run_shell_command","args":{{}},"status":"{status}","timestamp":"2026-06-01T10:00:02.000Z"{result}}}]}}"#
        )
    };
    text += &(call("executing", "") + "\n");
    let big = call(
        "success",
        &format!(
            r#","result":[{{"functionResponse":{{"id":"c","name":"run_shell_command","response":{{"output":"{output}"}}}}}}]"#
        ),
    );
    text += &(big.clone() + "\n");
    put(&file, text);
    let r = read(&home, &[]);
    r.assert_code(0);
    let lines = r.lines();
    assert_eq!(lines.len(), 1 + 2000 + 1, "session, the prompts, g once");
    let last = lines.last().unwrap();
    assert!(
        last.contains(&format!("\"record\":{big},\"at\"")),
        "g's last version, byte for byte"
    );
    assert_has(r.summary(), "2003 lines, 2001 messages, 2002 records");
}
