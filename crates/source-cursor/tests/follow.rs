//! Drives the real `cursor-read --follow` over a Cursor database while the test writes it as
//! Cursor does (WAL mode, rows replaced in place, the connection kept open), by filesystem
//! events and by polling, and checks the exact records: each new message written once, a
//! message still being generated held back until done, a message whose bytes changed (a tool
//! call that got its result) written again with the same `at`, and nothing held back lost at
//! SIGTERM.
//!
//! Nothing here measures time: output is waited for with a generous deadline, and the pauses
//! only give the reader a chance to see a half-written state.

mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tonbo_testkit::in_both_modes;
use tonbo_testkit::reader::{Following, Mode, TempHome};

const PAUSE: Duration = Duration::from_millis(300);

fn follow(home: &Path, user: &Path, mode: Mode) -> Following {
    let mut cmd = cursor_read(home);
    cmd.args(mode.args()).arg(user);
    Following::start(cmd)
}

fn record(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap();
    v["record"].clone()
}

fn new_messages_go_out_once_and_a_generating_one_when_done(mode: Mode) {
    let home = TempHome::new();
    let dir = home.join("User");
    let mut live = Live::new(&dir);
    live.bubble("u1", user("u1", "list the files"));
    let mut f = follow(&home, &dir, mode);
    assert_eq!(ats(&f.next(2)), ["composer", "u1"]);
    live.status = "generating";
    live.generating = vec!["a1".into()];
    live.bubble("a1", answer("a1", "src/ and"));
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    live.status = "completed";
    live.generating.clear();
    live.bubble("a1", answer("a1", "src/ and Cargo.toml."));
    let a1 = f.next(1);
    assert_eq!(ats(&a1), ["a1"]);
    assert_eq!(record(&a1[0])["text"], "src/ and Cargo.toml.");
    live.bubble("t1", tool("t1", "loading"));
    let t1 = f.next(1);
    assert_eq!(record(&t1[0])["toolFormerData"]["status"], "loading");
    live.bubble("t1", tool("t1", "completed"));
    let t1 = f.next(1);
    assert_eq!(ats(&t1), ["t1"]);
    assert_eq!(record(&t1[0])["toolFormerData"]["status"], "completed");
    live.bubble("u2", user("u2", "thanks"));
    assert_eq!(ats(&f.next(1)), ["u2"]);
    let end = f.terminate_ok();
    assert_eq!(ats(&end.lines), ["composer", "u1", "a1", "t1", "t1", "u2"]);
    drop(live);
}

fn what_is_held_back_goes_out_at_sigterm(mode: Mode) {
    let home = TempHome::new();
    let dir = home.join("User");
    let mut live = Live::new(&dir);
    live.bubble("u1", user("u1", "go"));
    let mut f = follow(&home, &dir, mode);
    assert_eq!(ats(&f.next(2)), ["composer", "u1"]);
    live.status = "generating";
    live.bubble("a1", answer("a1", "halfway"));
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    let end = f.terminate_ok();
    assert_eq!(ats(&end.lines), ["composer", "u1", "a1"]);
    drop(live);
}

fn a_new_chat_in_a_new_workspace_comes_with_its_folder(mode: Mode) {
    let home = TempHome::new();
    let dir = home.join("User");
    let mut live = Live::new(&dir);
    live.bubble("u1", user("u1", "go"));
    let mut f = follow(&home, &dir, mode);
    assert_eq!(ats(&f.next(2)), ["composer", "u1"]);
    // Cursor opens a folder (its workspace lists the new chat), then the chat is written.
    let other = "0c000000-0000-4000-8000-000000000002";
    let ws = dir.join("workspaceStorage/w1");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(
        ws.join("workspace.json"),
        r#"{"folder":"file:///home/dev/new"}"#,
    )
    .unwrap();
    let index = json!({"allComposers": [{"composerId": other}]}).to_string();
    let db = rusqlite::Connection::open(ws.join("state.vscdb")).unwrap();
    db.execute_batch("CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);")
        .unwrap();
    db.execute(
        "INSERT INTO ItemTable VALUES ('composer.composerData', ?1)",
        [&index],
    )
    .unwrap();
    drop(db);
    live.put(
        &format!("bubbleId:{other}:n1"),
        &user("n1", "hi").to_string(),
    );
    let chat = json!({"composerId": other, "createdAt": 1_767_225_700_000_i64,
        "lastUpdatedAt": 1_767_225_700_000_i64, "fullConversationHeadersOnly": [{"bubbleId": "n1", "type": 1}]});
    live.put(&format!("composerData:{other}"), &chat.to_string());
    let lines = f.next(3);
    assert_eq!(ats(&lines), ["workspace/w1", "composer", "n1"]);
    assert_eq!(record(&lines[0])["folder"], "file:///home/dev/new");
    f.terminate_ok();
    drop(live);
}

fn a_chat_left_out_by_modified_after_is_counted_once(mode: Mode) {
    let home = TempHome::new();
    let dir = home.join("User");
    let mut live = Live::new(&dir);
    live.bubble("u1", user("u1", "go"));
    let mut cmd = cursor_read(&home);
    cmd.args(mode.args())
        .args(["--modified-after", "1d"])
        .arg(&dir);
    let mut f = Following::start(cmd);
    for n in 2..5 {
        thread::sleep(PAUSE);
        let id = format!("u{n}");
        live.bubble(&id, user(&id, "still January"));
    }
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    let end = f.terminate_ok();
    assert!(end.lines.is_empty());
    assert!(
        end.summary()
            .ends_with("skipped 1 chats not updated after --modified-after"),
        "{}",
        end.summary()
    );
    drop(live);
}

in_both_modes!(
    a_chat_left_out_by_modified_after_is_counted_once,
    new_messages_go_out_once_and_a_generating_one_when_done,
    what_is_held_back_goes_out_at_sigterm,
    a_new_chat_in_a_new_workspace_comes_with_its_folder,
);
