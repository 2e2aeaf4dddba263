//! Drives the real `opencode-read` binary over OpenCode and Crush stores built in temporary
//! directories (SQLite files made with rusqlite from SQL text, JSON trees written as OpenCode
//! writes them), and checks what it writes on stdout and stderr and how it exits.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::{json, Value};
use tempfile::TempDir;
use tonbo_testkit::reader::{
    assert_ends, assert_has, assert_none_found, assert_refuses_bad_arguments,
    assert_warns_nothing_read, put, rejects_file, run_with,
};

mod common;
use common::*;

tonbo_testkit::local_run!();

// ---------------------------------------------------------------------------------------------
// Running the binary

impl Run {
    fn records(&self) -> Vec<Value> {
        self.stdout.lines().map(record).collect()
    }

    /// One short line per record: `S <session> <layout>` or `M <session> <layout> <message id>
    /// <parts>`, in output order.
    fn outline(&self) -> Vec<String> {
        self.records().iter().map(outline).collect()
    }
}

/// A fresh HOME and current directory, so that the machine's own sessions are never read.
struct Sandbox {
    tmp: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let s = Sandbox {
            tmp: TempDir::new().unwrap(),
        };
        fs::create_dir_all(s.home()).unwrap();
        fs::create_dir_all(s.cwd()).unwrap();
        s
    }

    /// A new sandbox with a database made from `sql` at `rel` in it; and the database's path.
    fn with_database(rel: &str, sql: &str) -> (Sandbox, PathBuf) {
        let sb = Sandbox::new();
        let db = sb.base().join(rel);
        sqlite(&db, sql);
        (sb, db)
    }

    fn base(&self) -> &Path {
        self.tmp.path()
    }

    fn home(&self) -> PathBuf {
        self.base().join("home")
    }

    fn cwd(&self) -> PathBuf {
        self.base().join("cwd")
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        common::command(&self.cwd(), &self.home(), args, env)
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run(run_with(self.command(&[], &[]), args, env))
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// [`Sandbox::run_env`] of a run that must succeed.
    fn read_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let r = self.run_env(args, env);
        r.assert_code(0);
        r
    }

    /// [`Sandbox::run`] of a run that must succeed.
    fn read(&self, args: &[&str]) -> Run {
        self.read_env(args, &[])
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Creates a database from SQL text.
fn sqlite(path: &Path, sql: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

/// Writes pretty-printed JSON, as OpenCode's JSON store does.
fn put_json(path: &Path, v: &Value) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// Creates a T2 database holding one session, `id`, and no message.
fn t2_db(path: &Path, id: &str, created: i64) {
    sqlite(path, &format!("{T2_SCHEMA}{}", t2_session(id, created)));
}

/// Inserts a T2 session row.
fn t2_session(id: &str, created: i64) -> String {
    format!(
        "INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated)
         VALUES ('{id}', 'global', 'slug-{id}', '/w', 'title {id}', '1.2.6', {created}, {created});"
    )
}

/// Inserts a T2 message row and its parts (`data` of each part: a text part).
fn t2_message(session: &str, id: &str, created: i64, role: &str, parts: &[&str]) -> String {
    let mut sql = format!(
        "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES
         ('{id}', '{session}', {created}, {created}, '{{\"role\":\"{role}\",\"time\":{{\"created\":{created}}}}}');"
    );
    for p in parts {
        sql.push_str(&format!(
            "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES
             ('{p}', '{id}', '{session}', {created}, {created}, '{{\"type\":\"text\",\"text\":\"{p}\"}}');"
        ));
    }
    sql
}

// ---------------------------------------------------------------------------------------------
// Layouts

#[test]
fn g1_rows_in_created_at_then_rowid_order() {
    // Three rows of one second: rowid order, although their UUIDs sort otherwise.
    let (sb, db) = Sandbox::with_database(
        "proj/.opencode/opencode.db",
        &format!(
            "{G1_SCHEMA}
            INSERT INTO sessions (id, title, message_count, updated_at, created_at)
              VALUES ('bbbb-sess', 'second', 3, 200, 150), ('aaaa-sess', 'first', 1, 120, 100);
            INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at, finished_at) VALUES
              ('f0000000-0000-4000-8000-000000000000', 'bbbb-sess', 'user',
               '[{{\"type\":\"text\",\"data\":{{\"text\":\"list files\"}}}},{{\"type\":\"finish\",\"data\":{{\"reason\":\"stop\",\"time\":0}}}}]',
               NULL, 160, 160, NULL),
              ('10000000-0000-4000-8000-000000000000', 'bbbb-sess', 'assistant',
               '[ {{\"type\":\"tool_call\",\"data\":{{\"id\":\"toolu_01\",\"name\":\"ls\",\"input\":\"{{\\\"path\\\":\\\".\\\"}}\",\"type\":\"\",\"finished\":true}}}} ]',
               'claude-4', 160, 161, 161),
              ('80000000-0000-4000-8000-000000000000', 'bbbb-sess', 'tool',
               '[{{\"type\":\"tool_result\",\"data\":{{\"tool_call_id\":\"toolu_01\",\"name\":\"ls\",\"content\":\"a.rs\",\"metadata\":\"\",\"is_error\":false}}}}]',
               NULL, 160, 161, NULL),
              ('00000000-0000-4000-8000-000000000000', 'bbbb-sess', 'assistant', '[]', 'claude-4', 170, 170, NULL),
              ('c0000000-0000-4000-8000-000000000000', 'aaaa-sess', 'user', '[]', NULL, 100, 100, NULL);"
        ),
    );
    let r = sb.read(&[s(&db)]);
    assert_eq!(
        r.outline(),
        vec![
            "S aaaa-sess g1",
            "M aaaa-sess g1 c0000000-0000-4000-8000-000000000000 0",
            "S bbbb-sess g1",
            "M bbbb-sess g1 f0000000-0000-4000-8000-000000000000 2",
            "M bbbb-sess g1 10000000-0000-4000-8000-000000000000 1",
            "M bbbb-sess g1 80000000-0000-4000-8000-000000000000 1",
            "M bbbb-sess g1 00000000-0000-4000-8000-000000000000 0",
        ]
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    // The session row, column by column in table order.
    assert_eq!(
        lines[2],
        format!(
            r#"{{"v":1,"source":"opencode","kind":"session","session":"bbbb-sess","record":{{"layout":"g1","session":{{"id":"bbbb-sess","parent_session_id":null,"title":"second","message_count":3,"prompt_tokens":0,"completion_tokens":0,"cost":0.0,"updated_at":200,"created_at":150,"summary_message_id":null}}}},"provenance":{{"file":"{}","table":"sessions","row":"bbbb-sess"}}}}"#,
            db.display()
        )
    );
    // A message: its columns but `parts`, and `parts` as JSON (the tool input stays a string).
    assert_eq!(
        lines[4],
        format!(
            r#"{{"v":1,"source":"opencode","kind":"message","session":"bbbb-sess","record":{{"layout":"g1","message":{{"id":"10000000-0000-4000-8000-000000000000","session_id":"bbbb-sess","role":"assistant","model":"claude-4","created_at":160,"updated_at":161,"finished_at":161}},"parts":[{{"type":"tool_call","data":{{"id":"toolu_01","name":"ls","input":"{{\"path\":\".\"}}","type":"","finished":true}}}}]}},"provenance":{{"file":"{}","table":"messages","row":"10000000-0000-4000-8000-000000000000"}}}}"#,
            db.display()
        )
    );
    assert_eq!(
        r.summary(),
        "opencode-read: 1 databases, 0 JSON stores (1 g1, 0 g2, 0 t1, 0 t2, 0 t3), 2 sessions, 5 messages, 4 parts, 0 rejected, 0 failed"
    );
}

#[test]
fn g2_from_its_columns_title_sessions_skipped_todos_a_string() {
    // Named like nothing in particular: the layout comes from the schema.
    let (sb, db) = Sandbox::with_database(
        "some.sqlite",
        &format!(
            "{}
            INSERT INTO sessions (id, title, updated_at, created_at, todos) VALUES
              ('s1', 'crush', 10, 10, '[{{\"content\":\"x\",\"status\":\"pending\",\"active_form\":\"X\"}}]'),
              ('title-s1', 'title', 11, 11, NULL);
            INSERT INTO messages (id, session_id, role, parts, model, provider, is_summary_message, created_at, updated_at) VALUES
              ('m1', 's1', 'assistant', '[{{\"type\":\"text\",\"data\":{{\"text\":\"hi\"}}}}]', 'gpt', 'openai', 1, 10, 10),
              ('m2', 'title-s1', 'assistant', '[]', 'gpt', 'openai', 0, 11, 11);",
            g2_schema()
        ),
    );
    let r = sb.read(&[s(&db)]);
    assert_eq!(r.outline(), vec!["S s1 g2", "M s1 g2 m1 1"]);
    let recs = r.records();
    assert_eq!(
        recs[0]["record"]["session"]["todos"],
        r#"[{"content":"x","status":"pending","active_form":"X"}]"#
    );
    assert_eq!(
        recs[1]["record"]["message"],
        json!({"id":"m1","session_id":"s1","role":"assistant","model":"gpt","created_at":10,
               "updated_at":10,"finished_at":null,"provider":"openai","is_summary_message":1})
    );
    assert_has(r.summary(), "(0 g1, 1 g2, 0 t1, 0 t2, 0 t3)");
    assert_ends(r.summary(), ", skipped 1 title sessions");
}

#[test]
fn t2_messages_by_time_then_id_parts_by_id() {
    let (sb, db) = Sandbox::with_database(
        "data/opencode.db",
        &format!(
            "{T2_SCHEMA}{}{}{}{}{}{}",
            t2_session("ses_b", 2000),
            t2_session("ses_a", 1000),
            // Equal times: id order. Parts inserted out of id order.
            t2_message("ses_b", "msg_2", 2100, "assistant", &["prt_9", "prt_3"]),
            t2_message("ses_b", "msg_1", 2100, "user", &["prt_1"]),
            t2_message("ses_b", "msg_0", 2200, "assistant", &[]),
            t2_message("ses_a", "msg_a", 1100, "user", &["prt_a"]),
        ),
    );
    let r = sb.read(&[s(&db)]);
    assert_eq!(
        r.outline(),
        vec![
            "S ses_a t2",
            "M ses_a t2 msg_a 1",
            "S ses_b t2",
            "M ses_b t2 msg_1 1",
            "M ses_b t2 msg_2 2",
            "M ses_b t2 msg_0 0",
        ]
    );
    let recs = r.records();
    let m = &recs[4]["record"];
    // OpenCode's row mapping: {...data, id, sessionID}; parts {...data, id, sessionID, messageID}.
    assert_eq!(
        m["message"],
        json!({"role":"assistant","time":{"created":2100},"id":"msg_2","sessionID":"ses_b"})
    );
    assert_eq!(
        m["parts"],
        json!([
            {"type":"text","text":"prt_3","id":"prt_3","sessionID":"ses_b","messageID":"msg_2"},
            {"type":"text","text":"prt_9","id":"prt_9","sessionID":"ses_b","messageID":"msg_2"}
        ])
    );
    assert_eq!(
        recs[4]["provenance"],
        json!({"file": s(&db), "table": "message", "row": "msg_2"})
    );
    assert_eq!(
        recs[2]["provenance"],
        json!({"file": s(&db), "table": "session", "row": "ses_b"})
    );
    assert_eq!(recs[2]["record"]["session"]["slug"], "slug-ses_b");
    assert_eq!(recs[2]["record"]["session"]["time_created"], 2000);
    assert_has(
        r.summary(),
        "(0 g1, 0 g2, 0 t1, 1 t2, 0 t3), 2 sessions, 4 messages, 4 parts",
    );
}

#[test]
fn t3_wins_over_t2_and_legacy_sessions_are_read_through_t2() {
    let (sb, db) = Sandbox::with_database(
        "data/opencode.db",
        &format!(
            "{T2_SCHEMA}{T3_SCHEMA}{}{}{}{}
            INSERT INTO session_v2 (id, project_id, slug, directory, title, version, metadata, model, time_created, time_updated)
              VALUES ('ses_both', 'global', 'both', '/w', 'migrated', '2.0.3', '{{\"k\":1}}',
                      '{{\"id\":\"claude\",\"providerID\":\"anthropic\"}}', 3000, 3500);
            INSERT INTO session_message (id, session_id, type, seq, time_created, time_updated, data) VALUES
              ('sm_z', 'ses_both', 'assistant', 2, 3200, 3300, '{{\"agent\":\"build\",\"content\":[{{\"type\":\"text\",\"id\":\"c1\",\"text\":\"done\"}}],\"time\":{{\"created\":3200}}}}'),
              ('sm_a', 'ses_both', 'user', 1, 3100, 3100, '{{\"text\":\"go\",\"files\":[],\"agents\":[],\"references\":[],\"time\":{{\"created\":3100}}}}'),
              ('sm_q', 'ses_both', 'system', 3, 3300, 3300, ' {{ \"text\" : \"x\" }} ');",
            t2_session("ses_both", 1000),
            t2_message("ses_both", "msg_old", 1100, "user", &["prt_old"]),
            t2_session("ses_legacy", 2000),
            t2_message("ses_legacy", "msg_l", 2100, "user", &["prt_l"]),
        ),
    );
    let r = sb.read(&[s(&db)]);
    assert_eq!(
        r.outline(),
        vec![
            "S ses_legacy t2",
            "M ses_legacy t2 msg_l 1",
            "S ses_both t3",
            "M ses_both t3 sm_a 0",
            "M ses_both t3 sm_z 0",
            "M ses_both t3 sm_q 0",
        ]
    );
    let recs = r.records();
    let session = &recs[2]["record"]["session"];
    assert_eq!(session["metadata"], r#"{"k":1}"#);
    assert_eq!(
        session["model"],
        r#"{"id":"claude","providerID":"anthropic"}"#
    );
    assert_eq!(
        recs[2]["provenance"],
        json!({"file": s(&db), "table": "session_v2", "row": "ses_both"})
    );
    assert_eq!(
        recs[4]["record"]["message"],
        json!({"id":"sm_z","session_id":"ses_both","type":"assistant","seq":2,"time_created":3200,
               "time_updated":3300,"data":{"agent":"build","content":[{"type":"text","id":"c1","text":"done"}],
               "time":{"created":3200}}})
    );
    assert!(r.stdout.contains(r#""data":{"text":"x"}"#));
    assert_eq!(
        recs[5]["provenance"],
        json!({"file": s(&db), "table": "session_message", "row": "sm_q"})
    );
    assert_has(
        r.summary(),
        "(0 g1, 0 g2, 0 t1, 1 t2, 1 t3), 2 sessions, 4 messages, 1 parts",
    );
}

/// A T1 store: `session/<projectID>/<ses>.json`, `message/<ses>/<msg>.json`,
/// `part/<msg>/<prt>.json`, pretty-printed.
fn t1_session(storage: &Path, project: &str, id: &str, created: i64) {
    put_json(
        &storage.join(format!("session/{project}/{id}.json")),
        &json!({"id": id, "slug": format!("slug-{id}"), "projectID": project, "directory": "/w",
                "title": format!("title {id}"), "version": "1.1.0",
                "time": {"created": created, "updated": created}}),
    );
}

fn t1_message(storage: &Path, session: &str, id: &str, created: i64, parts: &[&str]) {
    put_json(
        &storage.join(format!("message/{session}/{id}.json")),
        &json!({"id": id, "sessionID": session, "role": "user", "time": {"created": created}}),
    );
    for p in parts {
        put_json(
            &storage.join(format!("part/{id}/{p}.json")),
            &json!({"id": p, "sessionID": session, "messageID": id, "type": "text", "text": p}),
        );
    }
}

#[test]
fn t1_json_tree() {
    let sb = Sandbox::new();
    let storage = sb.base().join("data/storage");
    t1_session(&storage, "abc123", "ses_2", 2000);
    t1_session(&storage, "global", "ses_1", 1000);
    t1_message(&storage, "ses_2", "msg_b", 2100, &["prt_2", "prt_1"]);
    t1_message(&storage, "ses_2", "msg_a", 2100, &[]);
    t1_message(&storage, "ses_2", "msg_0", 2300, &["prt_x"]);
    t1_message(&storage, "ses_1", "msg_1", 1100, &["prt_9"]);
    // A half-written temporary file is no part, a broken part is rejected by name.
    put(&storage.join("part/msg_b/prt_3.json.tmp"), "{\"id\":");
    put(
        &storage.join("part/msg_0/prt_y.json"),
        "{\"id\": \"prt_y\", ",
    );
    let r = sb.run(&[s(&storage)]);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert_eq!(
        r.outline(),
        vec![
            "S ses_1 t1",
            "M ses_1 t1 msg_1 1",
            "S ses_2 t1",
            "M ses_2 t1 msg_a 0",
            "M ses_2 t1 msg_b 2",
            "M ses_2 t1 msg_0 1",
        ]
    );
    let recs = r.records();
    assert_eq!(
        recs[2]["record"]["session"],
        json!({"id":"ses_2","slug":"slug-ses_2","projectID":"abc123","directory":"/w",
               "title":"title ses_2","version":"1.1.0","time":{"created":2000,"updated":2000}})
    );
    assert_eq!(
        recs[2]["provenance"],
        json!({"file": s(&storage.join("session/abc123/ses_2.json"))})
    );
    assert_eq!(
        recs[4]["provenance"],
        json!({"file": s(&storage.join("message/ses_2/msg_b.json"))})
    );
    let ids: Vec<&str> = recs[4]["record"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["prt_1", "prt_2"]);
    assert_eq!(r.rejected_lines().len(), 1, "{}", r.stderr);
    assert!(r.rejected_lines()[0].starts_with(&format!(
        "opencode-read: {}:1: rejected: not JSON",
        storage.join("part/msg_0/prt_y.json").display()
    )));
    assert_has(r.summary(), "0 databases, 1 JSON stores (0 g1, 0 g2, 1 t1, 0 t2, 0 t3), 2 sessions, 4 messages, 4 parts, 1 rejected, 0 failed");
}

#[test]
fn t0_store_is_read_like_t1() {
    let sb = Sandbox::new();
    let data = sb.base().join("data");
    let st = data.join("project/home-me-proj/storage/session");
    put_json(
        &st.join("info/ses_0.json"),
        &json!({"id":"ses_0","title":"old","time":{"created":5,"updated":6}}),
    );
    put_json(
        &st.join("message/ses_0/msg_0.json"),
        &json!({"id":"msg_0","sessionID":"ses_0","role":"user","time":{"created":7}}),
    );
    put_json(
        &st.join("part/ses_0/msg_0/prt_0.json"),
        &json!({"id":"prt_0","messageID":"msg_0","sessionID":"ses_0","type":"text","text":"hi"}),
    );
    let r = sb.read(&[s(&data)]);
    assert_eq!(r.outline(), vec!["S ses_0 t1", "M ses_0 t1 msg_0 1"]);
}

#[test]
fn t2_wins_over_t1_and_t1_only_messages_are_merged_in_order() {
    let sb = Sandbox::new();
    let data = sb.base().join("data");
    let storage = data.join("storage");
    // The same session in both, imported partially (1.2's one-time import can miss messages).
    sqlite(
        &data.join("opencode.db"),
        &format!(
            "{T2_SCHEMA}{}{}{}",
            t2_session("ses_s", 1000),
            t2_message("ses_s", "msg_1", 1100, "user", &["prt_1db"]),
            t2_message("ses_s", "msg_3", 1300, "assistant", &["prt_3"]),
        ),
    );
    t1_session(&storage, "global", "ses_s", 1000);
    // msg_1 is in both (the database's wins), msg_2 and msg_4 only in JSON.
    t1_message(&storage, "ses_s", "msg_1", 1100, &["prt_1json", "prt_1b"]);
    t1_message(&storage, "ses_s", "msg_2", 1200, &["prt_2"]);
    t1_message(&storage, "ses_s", "msg_4", 1400, &[]);
    // A session only in JSON.
    t1_session(&storage, "global", "ses_j", 500);
    t1_message(&storage, "ses_j", "msg_j", 600, &[]);
    let r = sb.read(&[s(&data)]);
    assert_eq!(
        r.outline(),
        vec![
            "S ses_s t2",
            "M ses_s t2 msg_1 1",
            "M ses_s t1 msg_2 1",
            "M ses_s t2 msg_3 1",
            "M ses_s t1 msg_4 0",
            "S ses_j t1",
            "M ses_j t1 msg_j 0",
        ]
    );
    let recs = r.records();
    assert_eq!(recs[1]["record"]["parts"][0]["id"], "prt_1db");
    assert_eq!(
        recs[2]["provenance"],
        json!({"file": s(&storage.join("message/ses_s/msg_2.json"))})
    );
    assert_has(r.summary(), "1 databases, 1 JSON stores (0 g1, 0 g2, 1 t1, 1 t2, 0 t3), 2 sessions, 5 messages, 3 parts, 0 rejected, 0 failed, skipped 1 sessions already read from another source");
    // The same with the store named first: databases are still read first.
    let r2 = sb.run(&[s(&storage), s(&data.join("opencode.db"))]);
    assert_eq!(r2.outline(), r.outline());
    // And a database given twice is read once.
    let r3 = sb.run(&[s(&data), s(&data.join("opencode.db"))]);
    assert_eq!(r3.outline(), r.outline());
}

#[test]
fn t2_and_t3_across_files_never_repeat_a_session() {
    let sb = Sandbox::new();
    let data = sb.base().join("data");
    sqlite(
        &data.join("opencode.db"),
        &format!(
            "{T2_SCHEMA}{T3_SCHEMA}{}{}
            INSERT INTO session_v2 (id, project_id, slug, directory, version, time_created, time_updated)
              VALUES ('ses_x', 'global', 'x', '/w', '2.0.0', 10, 10);
            INSERT INTO session_message VALUES ('sm_1', 'ses_x', 'user', 1, 10, 10, '{{\"text\":\"a\"}}');",
            t2_session("ses_x", 10),
            t2_message("ses_x", "msg_x", 10, "user", &[]),
        ),
    );
    // A channel database holding a copy of the same session.
    sqlite(
        &data.join("opencode-beta.db"),
        &format!(
            "{T2_SCHEMA}{}{}",
            t2_session("ses_x", 10),
            t2_message("ses_x", "msg_x", 10, "user", &[])
        ),
    );
    let r = sb.read(&[s(&data)]);
    assert_eq!(r.outline(), vec!["S ses_x t3", "M ses_x t3 sm_1 0"]);
    assert_has(&r.stderr, "1 sessions already read from another source");
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn unusable_databases_are_named_and_the_rest_is_read() {
    let sb = Sandbox::new();
    let dir = sb.base().join("dbs");
    let not_sqlite = dir.join("opencode-junk.db");
    put(
        &not_sqlite,
        "this is not a database, just some text that goes on for a while....",
    );
    let no_part = dir.join("no-part.db");
    sqlite(
        &no_part,
        "CREATE TABLE session (id text); CREATE TABLE message (id text, session_id text, data text);",
    );
    let no_parts_col = dir.join("no-parts-col.db");
    sqlite(
        &no_parts_col,
        "CREATE TABLE sessions (id TEXT, created_at INTEGER); CREATE TABLE messages (id TEXT, session_id TEXT, role TEXT);",
    );
    let other = dir.join("other.db");
    sqlite(&other, "CREATE TABLE x (y);");
    let good = dir.join("good.db");
    sqlite(
        &good,
        &format!(
            "{T2_SCHEMA}{}{}",
            t2_session("ses_g", 1),
            t2_message("ses_g", "msg_g", 2, "user", &["prt_g"])
        ),
    );
    let missing = dir.join("missing.db");
    let r = sb.run(&[
        s(&not_sqlite),
        s(&no_part),
        s(&no_parts_col),
        s(&other),
        s(&missing),
        s(&good),
    ]);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert_eq!(r.outline(), vec!["S ses_g t2", "M ses_g t2 msg_g 1"]);
    let err = &r.stderr;
    for (db, what) in [
        (&not_sqlite, "cannot read: file is not a database"),
        (&no_part, "table `part` is missing"),
        (&other, "not an OpenCode or Crush database"),
    ] {
        assert_has(err, &format!("opencode-read: {}: {what}", db.display()));
    }
    // Whichever of its missing columns is looked at first.
    let no_column = |c: &str| {
        let col = format!("table `messages` has no column `{c}`");
        err.contains(&format!("opencode-read: {}: {col}", no_parts_col.display()))
    };
    assert!(no_column("role") || no_column("parts"), "{err}");
    assert!(
        err.contains(&format!("opencode-read: cannot read {}", missing.display())),
        "{err}"
    );
    assert_ends(r.summary(), "0 rejected, 5 failed");
}

#[test]
fn rows_whose_json_does_not_parse_are_rejected_by_file_table_and_row() {
    let (sb, g) = Sandbox::with_database(
        "g.db",
        &format!(
            "{G1_SCHEMA}
            INSERT INTO sessions (id, title, updated_at, created_at) VALUES ('gs', 't', 1, 1);
            INSERT INTO messages (id, session_id, role, parts, created_at, updated_at) VALUES
              ('gm1', 'gs', 'user', '[{{\"type\":\"text\"', 1, 1),
              ('gm2', 'gs', 'user', '{{\"type\":\"text\"}}', 2, 2),
              ('gm3', 'gs', 'user', '[]', 3, 3);"
        ),
    );
    let t2 = sb.base().join("t2.db");
    sqlite(
        &t2,
        &format!(
            "{T2_SCHEMA}{}{}{}
            INSERT INTO message VALUES ('msg_bad', 'ts', 1, 1, 'not json');
            INSERT INTO part VALUES ('prt_bad', 'msg_ok', 'ts', 3, 3, '{{\"type\":');",
            t2_session("ts", 1),
            t2_message("ts", "msg_ok", 2, "user", &["prt_ok"]),
            t2_message("ts", "msg_after", 3, "user", &[]),
        ),
    );
    let t3 = sb.base().join("t3.db");
    sqlite(
        &t3,
        &format!(
            "{T3_SCHEMA}
            INSERT INTO session_v2 (id, project_id, slug, directory, version, time_created, time_updated)
              VALUES ('s3', 'global', 's', '/w', '2', 1, 1);
            INSERT INTO session_message VALUES ('sm_bad', 's3', 'user', 1, 1, 1, '{{');
            INSERT INTO session_message VALUES ('sm_ok', 's3', 'user', 2, 1, 1, '{{}}');"
        ),
    );
    let rejects = sb.base().join("rejects.ndjson");
    let r = sb.run(&[s(&g), s(&t2), s(&t3), "--rejects", s(&rejects)]);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert_eq!(
        r.outline(),
        vec![
            "S gs g1",
            "M gs g1 gm3 0",
            "S ts t2",
            "M ts t2 msg_ok 1",
            "M ts t2 msg_after 0",
            "S s3 t3",
            "M s3 t3 sm_ok 0",
        ]
    );
    let rej = r.rejected_lines();
    assert_eq!(rej.len(), 5, "{}", r.stderr);
    let has = |file: &Path, rowid: u64, what: &str| {
        let prefix = format!(
            "opencode-read: {}:{rowid}: rejected: {what}",
            file.display()
        );
        assert!(
            rej.iter().any(|l| l.starts_with(&prefix)),
            "{prefix}\nin {rej:#?}"
        );
    };
    has(&g, 1, "table `messages`, row `gm1`: `parts` not JSON");
    has(
        &g,
        2,
        "table `messages`, row `gm2`: `parts` not a JSON array",
    );
    has(&t2, 3, "table `message`, row `msg_bad`: `data` not JSON");
    has(&t2, 2, "table `part`, row `prt_bad`: `data` not JSON");
    has(
        &t3,
        1,
        "table `session_message`, row `sm_bad`: `data` not JSON",
    );
    let lines = rejects_file(&rejects);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["input"], s(&g));
    assert_eq!(lines[0]["raw"], "[{\"type\":\"text\"");
    assert_ends(r.summary(), "5 rejected, 0 failed");
}

#[test]
fn a_locked_database_fails_after_the_busy_timeout_and_the_rest_goes_on() {
    let sb = Sandbox::new();
    let locked = sb.base().join("locked.db");
    t2_db(&locked, "ses_l", 1);
    let good = sb.base().join("good.db");
    t2_db(&good, "ses_g", 1);
    // A rollback-journal database held by a writer: readers cannot even read the schema.
    let holder = Connection::open(&locked).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let started = Instant::now();
    let r = sb.run_env(
        &[s(&locked), s(&good)],
        &[("OPENCODE_READ_BUSY_TIMEOUT_MS", "200")],
    );
    let took = started.elapsed();
    holder.execute_batch("ROLLBACK;").unwrap();
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert_has(
        &r.stderr,
        &format!(
            "opencode-read: {}: cannot read: database is locked (still locked after 200 ms)",
            locked.display()
        ),
    );
    assert_eq!(r.outline(), vec!["S ses_g t2"]);
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_ends(r.summary(), "0 rejected, 1 failed");
    // Released, it reads.
    let r = sb.run(&[s(&locked)]);
    assert_eq!(r.outline(), vec!["S ses_l t2"]);
}

#[test]
fn an_unparsable_session_file_is_rejected_with_its_name() {
    let sb = Sandbox::new();
    let storage = sb.base().join("storage");
    put(
        &storage.join("session/global/ses_bad.json"),
        "{\"id\": \"ses_bad\"",
    );
    t1_message(&storage, "ses_bad", "msg_1", 1, &[]);
    t1_session(&storage, "global", "ses_ok", 1);
    let r = sb.run(&[s(&storage)]);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.outline(), vec!["S ses_ok t1"]);
    assert!(r.rejected_lines()[0].contains(&format!(
        "{}:1: rejected: not JSON",
        storage.join("session/global/ses_bad.json").display()
    )));
}

// ---------------------------------------------------------------------------------------------
// A live database

#[test]
fn a_wal_database_written_while_read_gives_consistent_sessions() {
    let sb = Sandbox::new();
    let db = sb.base().join("data/opencode.db");
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    let sessions = ["ses_a", "ses_b", "ses_c"];
    {
        let conn = Connection::open(&db).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch(T2_SCHEMA).unwrap();
        for (i, id) in sessions.iter().enumerate() {
            conn.execute_batch(&t2_session(id, i as i64)).unwrap();
        }
        conn.execute_batch("UPDATE session SET summary_files = 0;")
            .unwrap();
    }
    /// Stops the writer also when an assertion fails.
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_panic = Stop(stop.clone());
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, written) = (db.clone(), stop.clone(), written.clone());
        thread::spawn(move || {
            let mut conn = Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::from_secs(10)).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let session = sessions[(i % 3) as usize];
                // One message and its three parts in one transaction, and the session's count.
                let tx = conn.transaction().unwrap();
                let parts: Vec<String> = (0..3).map(|p| format!("prt_{i:08}_{p}")).collect();
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                tx.execute_batch(&t2_message(
                    session,
                    &format!("msg_{i:08}"),
                    1000 + i as i64,
                    "user",
                    &parts,
                ))
                .unwrap();
                tx.execute(
                    "UPDATE session SET summary_files = summary_files + 1, time_updated = ?1 WHERE id = ?2",
                    rusqlite::params![1000 + i as i64, session],
                )
                .unwrap();
                tx.commit().unwrap();
                i += 1;
                written.store(i, Ordering::Relaxed);
                if i.is_multiple_of(50) {
                    thread::yield_now();
                }
            }
        })
    };
    while written.load(Ordering::Relaxed) < 300 {
        thread::sleep(Duration::from_millis(5));
    }
    let mut seen_growth = Vec::new();
    for _ in 0..6 {
        let before = written.load(Ordering::Relaxed);
        let r = sb.run(&[s(&db)]);
        let after = written.load(Ordering::Relaxed);
        assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
        let recs = r.records();
        // Per session: its `summary_files` (the writer's count) and the messages read.
        let mut per_session: Vec<(String, u64, u64)> = Vec::new();
        for rec in &recs {
            let session = rec["session"].as_str().unwrap();
            if rec["kind"] == "session" {
                let count = rec["record"]["session"]["summary_files"].as_u64().unwrap();
                per_session.push((session.to_string(), count, 0));
                continue;
            }
            let id = rec["record"]["message"]["id"].as_str().unwrap();
            let parts = rec["record"]["parts"].as_array().unwrap();
            assert_eq!(parts.len(), 3, "message {id} without all its parts: {rec}");
            for p in parts {
                assert_eq!(p["messageID"], id);
            }
            let current = per_session.last_mut().unwrap();
            assert_eq!(current.0, session, "a session's records are contiguous");
            current.2 += 1;
        }
        let mut total = 0;
        assert_eq!(per_session.len(), 3);
        for (session, expected, got) in &per_session {
            assert_eq!(
                expected, got,
                "{session}: the session row and its messages come from one snapshot"
            );
            total += got;
        }
        assert!(
            total >= before && total <= after + 1,
            "{before} <= {total} <= {after}"
        );
        seen_growth.push(total);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // The writer went on while the reads happened.
    assert!(
        seen_growth.windows(2).any(|w| w[1] > w[0]),
        "{seen_growth:?}"
    );
    // No -wal/-shm was removed or checkpointed away by the reader: the writer still finds its
    // database in WAL mode.
    let conn = Connection::open(&db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_wal_database_without_its_shm_file_is_read() {
    let sb = Sandbox::new();
    let db = sb.base().join("data/opencode.db");
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&db).unwrap();
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .unwrap();
        conn.execute_batch(&format!(
            "{T2_SCHEMA}{}{}",
            t2_session("ses_w", 1),
            t2_message("ses_w", "msg_w", 2, "user", &["prt_w"])
        ))
        .unwrap();
    }
    // Closed cleanly: SQLite removed the -wal and -shm files.
    assert!(!db.with_extension("db-wal").exists());
    let r = sb.read(&[s(&db)]);
    assert_eq!(r.outline(), vec!["S ses_w t2", "M ses_w t2 msg_w 1"]);
}

// ---------------------------------------------------------------------------------------------
// Discovery

#[test]
fn no_path_reads_the_data_folder_crush_projects_and_the_current_directory() {
    let sb = Sandbox::new();
    let xdg = sb.base().join("xdg");
    let data = xdg.join("opencode");
    t2_db(&data.join("opencode.db"), "ses_main", 1);
    t2_db(&data.join("opencode-local.db"), "ses_local", 1);
    t1_session(&data.join("storage"), "global", "ses_json", 1);
    put_json(
        &data.join("project/p/storage/session/info/ses_t0.json"),
        &json!({"id":"ses_t0","time":{"created":1}}),
    );
    // Crush: the project list names each project's data folder.
    let global = sb.base().join("crush-global");
    let proj = sb.base().join("work/app");
    sqlite(
        &proj.join(".crush/crush.db"),
        &format!(
            "{}
            INSERT INTO sessions (id, title, updated_at, created_at) VALUES ('crush-s', 't', 1, 1);",
            g2_schema()
        ),
    );
    sqlite(
        &sb.base().join("elsewhere/data/crush.db"),
        &format!(
            "{}
            INSERT INTO sessions (id, title, updated_at, created_at) VALUES ('crush-custom', 't', 1, 1);",
            g2_schema()
        ),
    );
    put_json(
        &global.join("projects.json"),
        &json!({"projects": [
            {"path": s(&proj), "data_dir": s(&proj.join(".crush")), "last_accessed": "2026-01-01T00:00:00Z"},
            {"path": s(&sb.base().join("elsewhere")), "data_dir": "data"},
            {"path": s(&sb.base().join("gone")), "data_dir": s(&sb.base().join("gone/.crush"))}
        ]}),
    );
    // The current directory's Go data folders.
    sqlite(
        &sb.cwd().join(".opencode/opencode.db"),
        &format!(
            "{G1_SCHEMA}
            INSERT INTO sessions (id, title, updated_at, created_at) VALUES ('go-s', 't', 1, 1);"
        ),
    );
    let r = sb.read_env(
        &[],
        &[
            ("XDG_DATA_HOME", s(&xdg)),
            ("CRUSH_GLOBAL_DATA", s(&global)),
        ],
    );
    assert_eq!(
        r.outline(),
        vec![
            "S ses_main t2",
            "S ses_local t2",
            "S crush-s g2",
            "S crush-custom g2",
            "S go-s g1",
            "S ses_json t1",
            "S ses_t0 t1",
        ]
    );
    assert_has(&r.stderr, "has no crush.db");

    // HOME alone: ~/.local/share/opencode and ~/.local/share/crush.
    let home_data = sb.home().join(".local/share/opencode");
    t2_db(&home_data.join("opencode.db"), "ses_home", 1);
    fs::remove_dir_all(sb.cwd().join(".opencode")).unwrap();
    let r = sb.read(&[]);
    assert_eq!(r.outline(), vec!["S ses_home t2"]);
}

#[test]
fn opencode_db_names_the_database() {
    let sb = Sandbox::new();
    let xdg = sb.base().join("xdg");
    let data = xdg.join("opencode");
    t2_db(&data.join("opencode.db"), "ses_default", 1);
    t2_db(&data.join("sub/chosen.db"), "ses_chosen", 1);
    let abs = sb.base().join("abs.db");
    t2_db(&abs, "ses_abs", 1);
    // Relative to the data folder.
    let r = sb.read_env(
        &[],
        &[("XDG_DATA_HOME", s(&xdg)), ("OPENCODE_DB", "sub/chosen.db")],
    );
    assert_eq!(r.outline(), vec!["S ses_chosen t2"]);
    // Absolute.
    let r = sb.run_env(&[], &[("XDG_DATA_HOME", s(&xdg)), ("OPENCODE_DB", s(&abs))]);
    assert_eq!(r.outline(), vec!["S ses_abs t2"]);
    // In memory: nothing on disk, a note.
    let r = sb.run_env(
        &[],
        &[("XDG_DATA_HOME", s(&xdg)), ("OPENCODE_DB", ":memory:")],
    );
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.is_empty());
    assert_has(&r.stderr, "OPENCODE_DB is :memory:");
    // Missing: a note, not an error.
    let r = sb.read_env(
        &[],
        &[("XDG_DATA_HOME", s(&xdg)), ("OPENCODE_DB", "nope.db")],
    );
    assert_has(&r.stderr, "which is not a file");
}

#[test]
fn nothing_to_read_is_a_note() {
    let sb = Sandbox::new();
    let r = sb.run(&[]);
    assert_none_found(&r, "OpenCode or Crush data");
    assert_has(r.summary(), "0 databases, 0 JSON stores");
    let empty = sb.base().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let r = sb.run(&[s(&empty), "-q"]);
    assert_eq!(r.code, Some(0));
    assert_has(&r.stderr, "is empty; nothing read there");
    assert!(!r.stderr.contains(" databases, "));
}

#[test]
fn stores_anywhere_below_a_path_are_found() {
    let sb = Sandbox::new();
    let dir = sb.base().join("backup");
    let session = |id: &str| {
        format!("INSERT INTO sessions (id, title, updated_at, created_at) VALUES ('{id}', 't', 100, 100);
                 INSERT INTO messages (id, session_id, role, parts, created_at, updated_at) VALUES
                 ('m-{id}', '{id}', 'user', '[{{\"type\":\"text\",\"data\":{{\"text\":\"hi\"}}}}]', 100, 100);")
    };
    sqlite(
        &dir.join("some-project/.opencode/opencode.db"),
        &format!("{G1_SCHEMA}{}", session("g1-sess")),
    );
    sqlite(
        &dir.join("deep/down/other/.crush/crush.db"),
        &format!("{}{}", g2_schema(), session("g2-sess")),
    );
    sqlite(
        &dir.join("share/opencode/opencode.db"),
        &format!(
            "{T2_SCHEMA}{}{}",
            t2_session("ses_t2", 1000),
            t2_message("ses_t2", "msg_t2", 1000, "user", &["prt_a"])
        ),
    );
    let storage = dir.join("share/opencode/storage");
    t1_session(&storage, "global", "ses_t1", 2000);
    t1_message(&storage, "ses_t1", "msg_t1", 2000, &["prt_b"]);
    // Folders that never hold a store are not walked, and other files are passed over.
    sqlite(
        &dir.join("app/node_modules/pkg/.opencode/opencode.db"),
        &format!("{G1_SCHEMA}{}", session("vendored")),
    );
    put(&dir.join("notes.md"), "not a store");
    let r = sb.read(&[s(&dir)]);
    let sessions: Vec<String> = r
        .records()
        .iter()
        .filter(|r| r["kind"] == "session")
        .map(|r| {
            format!(
                "{} {}",
                r["session"].as_str().unwrap(),
                r["record"]["layout"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        sessions,
        vec!["g2-sess g2", "ses_t2 t2", "g1-sess g1", "ses_t1 t1"],
        "{}",
        r.stderr
    );
    assert_has(r.summary(), "3 databases, 1 JSON stores");
}

#[test]
fn a_folder_with_files_but_no_store_warns_and_exits_3() {
    let sb = Sandbox::new();
    let dir = sb.base().join("projects");
    put(&dir.join("app/README.md"), "# app");
    put(&dir.join("app/.opencode/config.json"), "{}");
    let why = "no OpenCode or Crush store anywhere in it";
    assert_warns_nothing_read(|args| sb.run(args), "opencode-read", &dir, why);
    // A store elsewhere on the command line does not hide the folder that gave nothing.
    let db = sb.base().join("data/opencode.db");
    t2_db(&db, "ses_x", 1000);
    let r = sb.run(&[s(&db), s(&dir)]);
    assert_eq!(r.code, Some(3), "stderr: {}", r.stderr);
    assert_eq!(r.records().len(), 1);
}

#[test]
fn modified_after_reads_only_recently_updated_sessions() {
    let sb = Sandbox::new();
    let db = sb.base().join("opencode.db");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let old = now_ms - 30 * 86_400_000;
    sqlite(
        &db,
        &format!(
            "{T2_SCHEMA}{}{}{}{}{}",
            t2_session("ses_old", old),
            t2_message("ses_old", "msg_o", old, "user", &[]),
            t2_session("ses_new", now_ms),
            // An old session row with a new message: updated after all.
            t2_session("ses_touched", old),
            t2_message("ses_touched", "msg_t", now_ms, "user", &[]),
        ),
    );
    let g = sb.base().join("crush.db");
    sqlite(
        &g,
        &format!(
            "{}
            INSERT INTO sessions (id, title, updated_at, created_at) VALUES
              ('g_old', 't', {}, 1), ('g_new', 't', {}, 2);",
            g2_schema(),
            old / 1000,
            now_ms / 1000
        ),
    );
    let r = sb.read(&[s(&db), s(&g), "--modified-after", "7d"]);
    assert_eq!(
        r.outline(),
        vec![
            "S ses_touched t2",
            "M ses_touched t2 msg_t 0",
            "S ses_new t2",
            "S g_new g2"
        ]
    );
    assert_ends(
        r.summary(),
        "skipped 2 sessions not updated after --modified-after",
    );
}

#[test]
fn bad_arguments_are_refused() {
    let sb = Sandbox::new();
    let db = sb.base().join("opencode.db");
    t2_db(&db, "ses_x", 1000);
    assert_refuses_bad_arguments(|args| sb.run(args), &db);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let sb = Sandbox::new();
    let db = sb.base().join("big.db");
    let conn = {
        fs::create_dir_all(db.parent().unwrap()).unwrap();
        Connection::open(&db).unwrap()
    };
    conn.execute_batch(G1_SCHEMA).unwrap();
    conn.execute_batch("BEGIN; INSERT INTO sessions (id, title, updated_at, created_at) VALUES ('big', 't', 1, 1);")
        .unwrap();
    let text = "x".repeat(200);
    for i in 0..20_000 {
        conn.execute(
            "INSERT INTO messages (id, session_id, role, parts, created_at, updated_at) VALUES (?1, 'big', 'user', ?2, ?3, ?3)",
            rusqlite::params![
                format!("m{i}"),
                format!("[{{\"type\":\"text\",\"data\":{{\"text\":\"{text}\"}}}}]"),
                i
            ],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT;").unwrap();
    drop(conn);
    let closed = tonbo_testkit::first_line_then_close(sb.command(&[s(&db)], &[]), None);
    closed.assert_quiet();
    assert_eq!(closed.stderr, "");
    assert!(
        closed.first.contains("\"kind\":\"session\""),
        "{}",
        closed.first
    );
}
