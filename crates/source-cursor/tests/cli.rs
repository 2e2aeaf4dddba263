//! Drives the real `cursor-read` over Cursor databases built from the fixtures' SQL and written
//! as Cursor writes them: where it looks, what it writes, what it rejects, its exit codes, and
//! `--scan`.

mod common;

use common::*;
use serde_json::Value;
use tonbo_testkit::reader::{
    assert_has, assert_none_found, assert_refuses_bad_arguments, assert_warns_nothing_read,
    TempHome,
};

fn records(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn without_path_it_reads_the_default_user_folder_or_cursor_user_dir() {
    let home = TempHome::new();
    let r = read(&home, &[]);
    assert_none_found(&r, "Cursor User folder");
    fixture("01-bubble-rows", &home.join(".config/Cursor"));
    let r = read(&home, &[]);
    r.assert_code(0);
    assert_eq!(records(&r.stdout).len(), 10, "{}", r.stderr);
    let moved = TempHome::new();
    let user = fixture("02-inline-conversation", &moved);
    let mut cmd = cursor_read(&home);
    cmd.env("CURSOR_USER_DIR", user.join("User"));
    let r = tonbo_testkit::run(cmd, None);
    r.assert_code(0);
    assert!(r.stdout.contains("i-u1"), "{}", r.stderr);
    assert!(!r.stdout.contains("b-u1"));
}

#[test]
fn a_folder_above_the_store_finds_it_and_records_name_chat_bubble_and_row() {
    let home = TempHome::new();
    fixture("01-bubble-rows", &home.join("backup/.config/Cursor"));
    let r = read(&home, &[home.to_str().unwrap()]);
    r.assert_code(0);
    let recs = records(&r.stdout);
    assert_eq!(recs.len(), 10);
    let kinds: Vec<&str> = recs
        .iter()
        .map(|v| v["kind"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(kinds[..3], ["composer", "workspace", "composer"]);
    let prompt = &recs[3];
    assert_eq!(prompt["v"], 1);
    assert_eq!(prompt["source"], "cursor");
    assert_eq!(prompt["session"], "0b1c0000-0000-4000-8000-000000000001");
    assert_eq!(prompt["at"], "b-u1");
    assert_eq!(
        prompt["record"]["text"],
        "Why does parse() panic on empty input?"
    );
    assert_eq!(prompt["provenance"]["table"], "cursorDiskKV");
    assert_eq!(
        prompt["provenance"]["row"],
        "bubbleId:0b1c0000-0000-4000-8000-000000000001:b-u1"
    );
    assert_has(&r.stderr, "cursor-read: 1 databases, 2 chats, 7 messages, 10 records, 0 missing, 0 rejected, 0 failed");
}

#[test]
fn an_inline_conversation_is_split_into_its_messages_and_the_head_keeps_the_rest() {
    let home = TempHome::new();
    let dir = fixture("02-inline-conversation", &home);
    let r = read(&home, &[dir.to_str().unwrap()]);
    r.assert_code(0);
    let recs = records(&r.stdout);
    assert_eq!(recs[0]["kind"], "composer");
    assert!(recs[0]["record"].get("conversation").is_none());
    assert_eq!(recs[0]["record"]["createdAt"], 1_733_990_400_000_i64);
    let ats: Vec<&str> = recs[1..]
        .iter()
        .map(|v| v["at"].as_str().unwrap())
        .collect();
    assert_eq!(ats, ["i-u1", "i-a1", "i-u2", "i-a2", "i-a3"]);
}

#[test]
fn bad_rows_are_rejected_with_their_key_and_the_rest_is_read() {
    let home = TempHome::new();
    let dir = fixture("03-bad-input", &home);
    let rejects = home.join("rejects.ndjson");
    let r = read(
        &home,
        &[
            dir.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    r.assert_code(1);
    assert_eq!(records(&r.stdout).len(), 4);
    let lines: Vec<Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["reason"].as_str().unwrap().starts_with(
        "`bubbleId:0b1c0000-0000-4000-8000-000000000003:x-bad`: message x-bad is not JSON"
    ));
    assert!(lines[0]["input"]
        .as_str()
        .unwrap()
        .ends_with("state.vscdb cursorDiskKV"));
    assert_eq!(
        lines[1]["raw"],
        r#"{"_v":10,"composerId":"0b1c0000-0000-4000-8000-000000000004","name":"cut sho"#
    );
    assert_has(&r.stderr, "2 missing, 2 rejected, 0 failed");
}

#[test]
fn nothing_to_read_warns_and_exits_3_and_a_database_not_cursors_fails() {
    let home = TempHome::new();
    let empty = home.join("empty/User");
    Live::new(&empty);
    let read_in = |args: &[&str]| Box::new(read(&home, args));
    // Live::new wrote a chat; one with no message still gives its head: remove it.
    let conn = rusqlite::Connection::open(empty.join("globalStorage/state.vscdb")).unwrap();
    conn.execute("DELETE FROM cursorDiskKV", []).unwrap();
    drop(conn);
    assert_warns_nothing_read(
        read_in,
        "cursor-read",
        &home.join("empty"),
        "its 1 Cursor databases hold no chat",
    );
    std::fs::create_dir_all(home.join("other")).unwrap();
    std::fs::write(home.join("other/notes.txt"), "x").unwrap();
    assert_warns_nothing_read(
        read_in,
        "cursor-read",
        &home.join("other"),
        "no Cursor database (globalStorage/state.vscdb) in it",
    );
    let not_cursor = home.join("x.db");
    rusqlite::Connection::open(&not_cursor)
        .unwrap()
        .execute_batch("CREATE TABLE t (a);")
        .unwrap();
    let r = read(&home, &[not_cursor.to_str().unwrap()]);
    r.assert_code(1);
    assert_has(&r.stderr, "no cursorDiskKV table");
    assert_refuses_bad_arguments(read_in, &home.join("empty"));
}

#[test]
fn rows_still_in_the_wal_are_read_and_the_database_is_left_as_it_was() {
    let home = TempHome::new();
    let dir = home.join("User");
    let mut live = Live::new(&dir);
    live.bubble("u1", user("u1", "hello"));
    live.bubble("a1", answer("a1", "hi"));
    let wal = dir.join("globalStorage/state.vscdb-wal");
    let wal_len = std::fs::metadata(&wal).unwrap().len();
    assert!(wal_len > 0);
    let r = read(&home, &[dir.to_str().unwrap()]);
    r.assert_code(0);
    assert_eq!(ats(&r.lines()), ["composer", "u1", "a1"]);
    // No checkpoint: the writer's -wal is as it left it.
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), wal_len);
    drop(live);
}

#[test]
fn modified_after_leaves_out_chats_not_updated_since() {
    let home = TempHome::new();
    let dir = fixture("01-bubble-rows", &home);
    let r = read(
        &home,
        &[
            dir.to_str().unwrap(),
            "--modified-after",
            "2025-12-25T00:00:00Z",
        ],
    );
    r.assert_code(0);
    let sessions: std::collections::BTreeSet<String> = records(&r.stdout)
        .iter()
        .map(|v| v["session"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sessions.len(), 1, "the chat of 2025-12-24 is left out");
    assert_has(
        &r.stderr,
        "skipped 1 chats not updated after --modified-after",
    );
    let r = read(
        &home,
        &[dir.to_str().unwrap(), "--modified-after", "2026-01-01"],
    );
    r.assert_code(0);
    assert_eq!(r.stdout, "");
}

#[test]
fn scan_lists_each_chat_with_its_bytes_and_last_update() {
    let home = TempHome::new();
    let dir = fixture("01-bubble-rows", &home);
    let r = read(&home, &[dir.to_str().unwrap(), "--scan"]);
    r.assert_code(0);
    let lines = records(&r.stdout);
    assert_eq!(lines.len(), 2);
    let chat = &lines[1];
    assert_eq!(chat["source"], "cursor");
    assert_eq!(chat["session"], "0b1c0000-0000-4000-8000-000000000001");
    assert_eq!(chat["updated"], "2025-12-25T19:48:45Z");
    assert!(chat.get("expires").is_none());
    assert!(chat["bytes"].as_u64().unwrap() > lines[0]["bytes"].as_u64().unwrap());
    assert_has(&r.stderr, "cursor-read: scan: 2 sessions");
}

#[test]
fn a_sigterm_stops_a_plain_run_at_a_record_boundary() {
    use tonbo_testkit::reader::{assert_stopped_at_a_record_boundary, terminated_after_first_line};
    let home = TempHome::new();
    let dir = home.join("User");
    let live = Live::new(&dir);
    // 40 chats of 50 messages, about 600 KB of records: more than a pipe holds.
    live.conn.execute_batch("BEGIN").unwrap();
    for c in 0..40 {
        let chat = format!("0c000000-0000-4000-8000-{c:012}");
        let mut headers = Vec::new();
        for b in 0..50 {
            let id = format!("m{b}");
            let text = format!("message {b} of chat {c}, {}", "words ".repeat(30));
            live.put(
                &format!("bubbleId:{chat}:{id}"),
                &answer(&id, &text).to_string(),
            );
            headers.push(serde_json::json!({"bubbleId": id, "type": 2}));
        }
        let value = serde_json::json!({"composerId": chat, "createdAt": 1_767_225_600_000_i64,
            "fullConversationHeadersOnly": headers});
        live.put(&format!("composerData:{chat}"), &value.to_string());
    }
    live.conn.execute_batch("COMMIT").unwrap();
    let path = dir.to_str().unwrap();
    let whole = read(&home, &[path]).lines();
    assert!(whole.len() > 2000);
    let mut cmd = cursor_read(&home);
    cmd.arg(path);
    let stopped = terminated_after_first_line(cmd);
    assert_stopped_at_a_record_boundary(&stopped, &whole);
    assert_has(&stopped.stderr, "stopped by a signal before the end");
}
