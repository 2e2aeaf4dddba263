//! Shared by this crate's tests: the real `cursor-read`, Cursor databases written as Cursor
//! writes them (SQLite, WAL mode, rows replaced in place), and the fixtures built from SQL.
#![allow(dead_code)] // each test file uses some of it

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;
use serde_json::{json, Value};
use tonbo_testkit::reader::command;
use tonbo_testkit::{workspace_root, Run};

pub const BIN: &str = env!("CARGO_BIN_EXE_cursor-read");
pub const CHAT: &str = "0c000000-0000-4000-8000-000000000001";

/// `cursor-read` with HOME at `home` and none of this machine's Cursor or XDG settings.
pub fn cursor_read(home: &Path) -> Command {
    command(BIN, home, &["CURSOR_USER_DIR", "XDG_CONFIG_HOME"])
}

pub fn read(home: &Path, args: &[&str]) -> Run {
    let mut cmd = cursor_read(home);
    cmd.args(args);
    tonbo_testkit::run(cmd, None)
}

/// Builds the fixture `testdata/cursor/<case>` under `into` (SQL text into databases) and
/// returns the folder its `paths` file names.
pub fn fixture(case: &str, into: &Path) -> PathBuf {
    let dir = workspace_root().join("testdata/cursor").join(case);
    copy(&dir, into);
    let rel = std::fs::read_to_string(dir.join("paths")).unwrap();
    into.join(rel.trim())
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy(&p, &dest);
        } else if p.extension().is_some_and(|x| x == "sql") {
            let db = source_cursor::fixture::db_of(&dest);
            source_cursor::fixture::sqlite_from_sql(&p, &db).unwrap();
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A Cursor global database being written: `User/globalStorage/state.vscdb` under a folder,
/// WAL mode, the connection kept open (as Cursor keeps it) so rows may sit in the `-wal`.
pub struct Live {
    pub conn: Connection,
    pub path: PathBuf,
    headers: Vec<Value>,
    pub status: &'static str,
    pub generating: Vec<String>,
    pub updated: i64,
}

impl Live {
    pub fn new(user: &Path) -> Live {
        let path = user.join("globalStorage/state.vscdb");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        // Cursor's own checkpoints are not what is tested: rows stay in the -wal.
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch(
            "CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);
             CREATE TABLE cursorDiskKV (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);",
        )
        .unwrap();
        let mut live = Live {
            conn,
            path,
            headers: Vec::new(),
            status: "none",
            generating: Vec::new(),
            updated: 1_767_225_600_000,
        };
        live.save_chat();
        live
    }

    pub fn put(&self, key: &str, value: &str) {
        self.conn
            .execute("INSERT INTO cursorDiskKV VALUES (?1, ?2)", [key, value])
            .unwrap();
    }

    /// Writes the chat's `composerData`, its stamp moved on.
    pub fn save_chat(&mut self) {
        self.updated += 1000;
        let chat = json!({"_v": 10, "composerId": CHAT, "name": "Live chat",
            "createdAt": 1_767_225_600_000_i64, "lastUpdatedAt": self.updated,
            "status": self.status, "generatingBubbleIds": self.generating,
            "fullConversationHeadersOnly": self.headers});
        self.put(&format!("composerData:{CHAT}"), &chat.to_string());
    }

    /// Writes the message `id` and, when new, names it in the chat.
    pub fn bubble(&mut self, id: &str, bubble: Value) {
        self.put(&format!("bubbleId:{CHAT}:{id}"), &bubble.to_string());
        if !self.headers.iter().any(|h| h["bubbleId"] == id) {
            self.headers
                .push(json!({"bubbleId": id, "type": bubble["type"]}));
        }
        self.save_chat();
    }
}

pub fn user(id: &str, text: &str) -> Value {
    json!({"_v": 3, "type": 1, "bubbleId": id, "text": text, "createdAt": "2026-01-01T00:00:01.000Z"})
}

pub fn answer(id: &str, text: &str) -> Value {
    json!({"_v": 3, "type": 2, "bubbleId": id, "text": text, "createdAt": "2026-01-01T00:00:02.000Z"})
}

pub fn tool(id: &str, status: &str) -> Value {
    json!({"_v": 3, "type": 2, "bubbleId": id, "text": "", "capabilityType": 15,
        "toolFormerData": {"name": "run_terminal_cmd", "toolCallId": "call-1", "status": status,
            "rawArgs": "{\"command\":\"ls\"}", "result": if status == "completed" { "{\"output\":\"a\"}" } else { "" }}})
}

/// The `at` of each record line.
pub fn ats(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["at"].as_str().unwrap().to_string()
        })
        .collect()
}
