//! goose-read, the real binary, over real SQLite files and session files: where it looks,
//! what it finds under a folder above a store, torn and bad lines, a large session, and
//! `--follow` while rows are written (WAL), a compaction's rewrite not sent again.

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;
use serde_json::Value;
use tonbo_testkit::reader::{
    append, assert_none_found, assert_warns_nothing_read, command, put, run_with, Following,
    TempHome,
};
use tonbo_testkit::Run;

const BIN: &str = env!("CARGO_BIN_EXE_goose-read");

/// Goose's schema at version 9 (session_manager.rs, `create_schema`), the parts read here.
const SCHEMA: &str = "
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
INSERT INTO schema_version (version) VALUES (9);
CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
  user_set_name BOOLEAN DEFAULT FALSE, session_type TEXT NOT NULL DEFAULT 'user', working_dir TEXT NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  extension_data TEXT DEFAULT '{}', total_tokens INTEGER, input_tokens INTEGER, output_tokens INTEGER,
  accumulated_total_tokens INTEGER, accumulated_input_tokens INTEGER, accumulated_output_tokens INTEGER,
  schedule_id TEXT, recipe_json TEXT, user_recipe_values_json TEXT, provider_name TEXT, model_config_json TEXT,
  tenant_id TEXT, user_id TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT, session_id TEXT NOT NULL REFERENCES sessions(id),
  role TEXT NOT NULL, content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, tokens INTEGER, metadata_json TEXT);
";

fn goose(home: &Path) -> Command {
    command(BIN, home, &["GOOSE_PATH_ROOT", "XDG_DATA_HOME"])
}

fn read(home: &Path, args: &[&str]) -> Run {
    run_with(goose(home), args, &[])
}

/// A sessions.db at `dir/sessions.db` in WAL mode, as Goose opens it, with one session.
fn new_db(dir: &Path) -> Connection {
    std::fs::create_dir_all(dir).unwrap();
    let conn = Connection::open(dir.join("sessions.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute(
        "INSERT INTO sessions (id, name, working_dir) VALUES ('20251201_1', 'Demo', '/w')",
        [],
    )
    .unwrap();
    conn
}

fn add_message(conn: &Connection, message_id: &str, role: &str, text: &str) {
    let content = serde_json::json!([{"type": "text", "text": text}]).to_string();
    conn.execute(
        "INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json)
         VALUES (?1, '20251201_1', ?2, ?3, 1764590000, '{\"userVisible\":true,\"agentVisible\":true}')",
        rusqlite::params![message_id, role, content],
    )
    .unwrap();
}

fn records(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sessions_dir(home: &Path) -> PathBuf {
    home.join(".local/share/goose/sessions")
}

#[test]
fn reads_goose_s_own_folder_moved_by_goose_path_root_or_xdg_data_home() {
    let home = &TempHome::new();
    assert_none_found(&read(home, &[]), "Goose sessions folder");
    let conn = new_db(&sessions_dir(home));
    add_message(&conn, "m1", "user", "hello");
    let r = read(home, &[]);
    r.assert_code(0);
    assert_eq!(r.lines().len(), 2);
    let root = home.join("root");
    let conn = new_db(&root.join("data/sessions"));
    add_message(&conn, "m1", "user", "one");
    add_message(&conn, "m2", "assistant", "two");
    let r = run_with(
        goose(home),
        &[],
        &[("GOOSE_PATH_ROOT", root.to_str().unwrap())],
    );
    assert_eq!(r.assert_code(0).lines().len(), 3);
    let xdg = home.join("xdg");
    new_db(&xdg.join("goose/sessions"));
    let r = run_with(
        goose(home),
        &[],
        &[("XDG_DATA_HOME", xdg.to_str().unwrap())],
    );
    assert_eq!(r.assert_code(0).lines().len(), 1);
}

#[test]
fn a_folder_above_the_store_finds_it_and_one_without_warns() {
    let home = &TempHome::new();
    let conn = new_db(&sessions_dir(home));
    add_message(&conn, "m1", "user", "hello");
    let r = read(home, &[home.to_str().unwrap()]);
    r.assert_code(0);
    let recs = records(&r.lines());
    assert_eq!(recs[0]["kind"], "session");
    assert_eq!(recs[1]["record"]["content"][0]["text"], "hello");
    assert_eq!(recs[1]["at"], "sessions.db:messages/m1");
    let other = home.join("other");
    put(&other.join("notes.txt"), "not goose");
    assert_warns_nothing_read(
        |a| Box::new(read(home, a)),
        "goose-read",
        &other,
        "no Goose sessions.db or sessions/*.jsonl in it",
    );
}

#[test]
fn a_torn_last_line_waits_and_a_bad_line_is_rejected() {
    let home = &TempHome::new();
    let file = sessions_dir(home).join("20250101_120000.jsonl");
    put(
        &file,
        "{\"working_dir\":\"/w\",\"description\":\"d\",\"message_count\":1}\n{\"role\":\"user\",\"created\":1,\"content\":[]}\n{\"role\":\"assis",
    );
    let r = read(home, &[]);
    r.assert_code(0);
    assert_eq!(r.lines().len(), 2);
    assert!(r.summary().contains("1 incomplete"), "{}", r.stderr);
    append(&file, "tant\",\"created\":2,\"content\":[]}\nnot json\n");
    let r = read(home, &[]);
    r.assert_code(1);
    assert_eq!(r.lines().len(), 3);
    assert!(r.summary().contains("1 rejected"), "{}", r.stderr);
}

#[test]
fn a_large_session_is_read_whole() {
    let home = &TempHome::new();
    let mut conn = new_db(&sessions_dir(home));
    let tx = conn.transaction().unwrap();
    for i in 0..20_000 {
        add_message(
            &tx,
            &format!("m{i}"),
            if i % 2 == 0 { "user" } else { "assistant" },
            &"x".repeat(200),
        );
    }
    tx.commit().unwrap();
    let r = read(home, &[]);
    r.assert_code(0);
    let lines = r.lines();
    assert_eq!(lines.len(), 20_001);
    assert!(lines[20_000].contains("\"at\":\"sessions.db:messages/m19999\""));
}

#[test]
fn follow_writes_new_rows_once_and_not_a_compaction_s_rewrite() {
    let home = &TempHome::new();
    let conn = new_db(&sessions_dir(home));
    add_message(&conn, "m1", "user", "first");
    let mut f = Following::start({
        let mut c = goose(home);
        c.args(["--follow", "--poll", "--poll-interval", "100"]);
        c
    });
    f.next(2);
    add_message(&conn, "m2", "assistant", "second");
    let got = f.next(1);
    assert!(got[0].contains("\"second\""), "{got:?}");
    // Goose's replace_conversation: every row deleted and inserted again, same message ids.
    conn.execute_batch(
        "BEGIN; CREATE TEMP TABLE keep AS SELECT * FROM messages;
         DELETE FROM messages;
         INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json)
           SELECT message_id, session_id, role, content_json, created_timestamp, metadata_json FROM keep ORDER BY id;
         COMMIT;",
    )
    .unwrap();
    add_message(&conn, "m3", "user", "third");
    let got = f.next(1);
    assert!(got[0].contains("\"third\""), "{got:?}");
    std::thread::sleep(std::time::Duration::from_millis(400));
    f.assert_no_line_yet();
    let ended = f.terminate_ok();
    assert_eq!(ended.lines.len(), 4);
}

#[test]
fn scan_lists_each_session_once_without_reading_it() {
    let home = &TempHome::new();
    let dir = sessions_dir(home);
    let conn = new_db(&dir);
    add_message(&conn, "m1", "user", "hello");
    conn.execute(
        "UPDATE sessions SET updated_at = '2025-12-01 10:00:00' WHERE id = '20251201_1'",
        [],
    )
    .unwrap();
    // One file imported (its session is in the database), one not.
    put(&dir.join("20251201_1.jsonl"), "{\"description\":\"d\"}\n");
    put(
        &dir.join("20250101_090000.jsonl"),
        "{\"description\":\"e\"}\n",
    );
    let r = read(home, &["--scan"]);
    r.assert_code(0);
    let lines = records(&r.lines());
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["session"], "20251201_1");
    assert_eq!(lines[0]["source"], "goose");
    assert_eq!(lines[0]["updated"], "2025-12-01T10:00:00Z");
    assert!(lines[0]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(lines[1]["session"], "20250101_090000");
    assert!(lines.iter().all(|l| l.get("expires").is_none()));
    assert!(
        r.stderr.contains("goose-read: scan: 2 sessions"),
        "{}",
        r.stderr
    );
}

/// Older Goose rewrote a session's whole file every turn (its metadata line updated, the
/// messages again): only the lines after those written are new.
#[test]
fn follow_writes_only_the_new_lines_of_a_rewritten_session_file() {
    let home = &TempHome::new();
    let file = sessions_dir(home).join("20250101_120000.jsonl");
    let meta = |n: u32| {
        format!("{{\"working_dir\":\"/w\",\"description\":\"d\",\"message_count\":{n}}}\n")
    };
    let m1 =
        "{\"role\":\"user\",\"created\":1,\"content\":[{\"type\":\"text\",\"text\":\"one\"}]}\n";
    let m2 = "{\"role\":\"assistant\",\"created\":2,\"content\":[{\"type\":\"text\",\"text\":\"two\"}]}\n";
    put(&file, format!("{}{m1}", meta(1)));
    let mut f = Following::start({
        let mut c = goose(home);
        c.args(["--follow", "--poll", "--poll-interval", "100"]);
        c
    });
    f.next(2);
    put(&file, format!("{}{m1}{m2}", meta(2)));
    let got = f.next(1);
    assert!(got[0].contains("\"two\""), "{got:?}");
    std::thread::sleep(std::time::Duration::from_millis(400));
    f.assert_no_line_yet();
    assert_eq!(f.terminate_ok().lines.len(), 3);
}

#[test]
fn modified_after_leaves_out_sessions_not_updated_since() {
    let home = &TempHome::new();
    let conn = new_db(&sessions_dir(home));
    add_message(&conn, "m1", "user", "old");
    conn.execute(
        "UPDATE sessions SET updated_at = '2020-01-01 00:00:00' WHERE id = '20251201_1'",
        [],
    )
    .unwrap();
    let r = read(home, &["--modified-after", "7d"]);
    r.assert_code(0);
    assert_eq!(r.stdout, "");
    assert!(
        r.summary().contains("1 left out by --modified-after"),
        "{}",
        r.stderr
    );
    let r = read(home, &["--modified-after", "2019-12-31"]);
    assert_eq!(r.assert_code(0).lines().len(), 2);
}
