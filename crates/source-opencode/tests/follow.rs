//! Drives the real `opencode-read --follow` binary over SQLite databases (and a JSON store) that
//! the tests write while it runs, as OpenCode and Crush do: another connection, WAL mode, rows
//! inserted and then updated in place as a message streams (source-opencode's FORMAT.md). Plus
//! SIGTERM during a plain run. The follow tests run with filesystem events and with
//! `--poll --poll-interval 50`.
//!
//! The oracle is a plain `opencode-read` run over the finished database: what `--follow` wrote
//! must be its records, byte for byte, each once (and, within a session, in its order).
//!
//! Nothing is timed. A held message writes nothing, so to know that the follower looked at a
//! state (and wrote nothing for it), each step is followed by a "probe": a finished message in
//! another session. Its record coming out shows a look at the database after the step (a look
//! that found a change reads every session with held messages).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rusqlite::{params, Connection};
use serde_json::{json, Value};
use tempfile::TempDir;
use tonbo_testkit::reader::{
    assert_ends, assert_has, assert_stopped_at_a_record_boundary, terminated_after_first_line,
    Ended, Following, Mode,
};

mod common;
use common::*;

// ---------------------------------------------------------------------------------------------
// The app's side: one connection in WAL mode, writing as OpenCode does.

struct App {
    conn: Connection,
    /// `Date.now()` stand-in: every write gets a later time.
    now: i64,
}

impl App {
    fn create(path: &Path, schema: &str) -> App {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let conn = Connection::open(path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch(schema).unwrap();
        App {
            conn,
            now: 1_771_000_000_000,
        }
    }

    /// Runs one statement (an insert, update or upsert) on the app's connection.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) {
        self.conn.execute(sql, params).unwrap();
    }

    fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    // T2: rows upserted in place, `time_updated` moving on.

    fn t2_session(&mut self, id: &str) {
        let t = self.tick();
        self.exec(
            "INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated)
             VALUES (?1, 'global', ?2, '/w', ?3, '1.2.6', ?4, ?4)",
            params![id, format!("slug-{id}"), format!("title {id}"), t],
        );
    }

    /// Inserts or updates a message; its creation time is kept.
    fn t2_message(&mut self, session: &str, id: &str, data: Value) {
        let t = self.tick();
        let created = data["time"]["created"].as_i64().unwrap();
        self.exec(
            "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET data = excluded.data, time_updated = excluded.time_updated",
            params![id, session, created, t, data.to_string()],
        );
    }

    fn t2_part(&mut self, session: &str, message: &str, id: &str, data: Value) {
        let t = self.tick();
        self.exec(
            "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES (?1, ?2, ?3, ?4, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET data = excluded.data, time_updated = excluded.time_updated",
            params![id, message, session, t, data.to_string()],
        );
    }

    /// A user message and its text part, written one after the other as OpenCode does.
    fn t2_user(&mut self, session: &str, id: &str, text: &str) {
        let created = self.tick();
        self.t2_message(
            session,
            id,
            json!({"role": "user", "time": {"created": created}, "agent": "build",
                   "model": {"providerID": "anthropic", "modelID": "claude"}}),
        );
        self.t2_part(
            session,
            id,
            &format!("prt_{id}_text"),
            json!({"type": "text", "text": text}),
        );
    }

    /// An assistant message still streaming (no `time.completed`); returns its creation time.
    fn t2_assistant_start(&mut self, session: &str, id: &str, parent: &str) -> i64 {
        let created = self.tick();
        self.t2_message(session, id, t2_assistant(parent, created, None));
        created
    }

    /// A whole assistant answer: started, its text part, completed.
    fn t2_answer(&mut self, session: &str, id: &str, parent: &str, text: &str) {
        let created = self.t2_assistant_start(session, id, parent);
        self.t2_part(
            session,
            id,
            &format!("prt_{id}_text"),
            json!({"type": "text", "text": text, "time": {"start": created, "end": created}}),
        );
        let done = self.tick();
        self.t2_message(session, id, t2_assistant(parent, created, Some(done)));
    }

    // T3: one row per message, `data` updated in place.

    fn t3_session(&mut self, id: &str) {
        let t = self.tick();
        self.exec(
            "INSERT INTO session_v2 (id, project_id, slug, directory, title, version, time_created, time_updated)
             VALUES (?1, 'global', ?1, '/w', ?1, '2.0.3', ?2, ?2)",
            params![id, t],
        );
    }

    fn t3_message(&mut self, session: &str, id: &str, ty: &str, seq: i64, data: Value) {
        let t = self.tick();
        self.exec(
            "INSERT INTO session_message (id, session_id, type, seq, time_created, time_updated, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
             ON CONFLICT(id) DO UPDATE SET data = excluded.data, time_updated = excluded.time_updated",
            params![id, session, ty, seq, t, data.to_string()],
        );
    }

    // G1: `parts` rewritten whole on every delta; times in seconds.

    fn g1_session(&mut self, id: &str, created: i64) {
        self.exec(
            "INSERT INTO sessions (id, title, updated_at, created_at) VALUES (?1, ?2, ?3, ?3)",
            params![id, format!("title {id}"), created],
        );
    }

    fn g1_insert(&mut self, session: &str, id: &str, role: &str, parts: Value, created: i64) {
        self.exec(
            "INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'claude-4', ?5, ?5)",
            params![id, session, role, parts.to_string(), created],
        );
    }

    fn g1_update(&mut self, id: &str, parts: Value, finished_at: Option<i64>) {
        self.exec(
            "UPDATE messages SET parts = ?2, finished_at = ?3 WHERE id = ?1",
            params![id, parts.to_string(), finished_at],
        );
    }

    /// A user message (with the `finish` every non-assistant message gets).
    fn g1_user(&mut self, session: &str, id: &str, text: &str, created: i64) {
        self.g1_text(session, id, "user", text, ("stop", 0), created);
    }

    /// A finished assistant message, written whole.
    fn g1_answer(&mut self, session: &str, id: &str, text: &str, created: i64) {
        self.g1_text(
            session,
            id,
            "assistant",
            text,
            ("end_turn", created),
            created,
        );
    }

    /// A message of `role` with one text part and its `finish` part: `(reason, time)`.
    fn g1_text(
        &mut self,
        session: &str,
        id: &str,
        role: &str,
        text: &str,
        (reason, time): (&str, i64),
        created: i64,
    ) {
        let parts = json!([{"type": "text", "data": {"text": text}},
                           {"type": "finish", "data": {"reason": reason, "time": time}}]);
        self.g1_insert(session, id, role, parts, created);
    }
}

fn t2_assistant(parent: &str, created: i64, completed: Option<i64>) -> Value {
    let mut time = json!({ "created": created });
    if let Some(c) = completed {
        time["completed"] = json!(c);
    }
    json!({"role": "assistant", "parentID": parent, "time": time, "modelID": "claude",
           "providerID": "anthropic", "mode": "build", "agent": "build",
           "path": {"cwd": "/w", "root": "/w"}, "cost": 0,
           "tokens": {"input": 1, "output": 2, "reasoning": 0, "cache": {"read": 0, "write": 0}}})
}

// ---------------------------------------------------------------------------------------------
// Running the binary

fn command(base: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    common::command(base, &base.join("home"), args, env)
}

/// `opencode-read --follow` over `path` in `mode`, with the variables of `env`.
fn follow(base: &Path, path: &Path, mode: Mode, env: &[(&str, &str)]) -> Following {
    let mut cmd = command(base, &[path.to_str().unwrap()], env);
    cmd.args(mode.args());
    if mode == Mode::Events {
        // The look every 10 intervals (for a missed event, or a database locked or mid-write)
        // comes every half second, not every ten.
        cmd.args(["--poll-interval", "50"]);
    }
    Following::start(cmd)
}

/// What these tests read of a followed run: records by their outlines ([`outline`]).
trait Outlined {
    /// Reads as many lines as `want` has and checks their outlines, in order.
    fn expect(&mut self, want: &[&str]) -> Vec<String>;
    /// [`Following::terminate`], and checks that the run exited 0 with a summary ending in
    /// `end`.
    fn terminate_ending(self, end: &str) -> Ended;
}

impl Outlined for Following {
    fn expect(&mut self, want: &[&str]) -> Vec<String> {
        let lines = self.next(want.len());
        let got: Vec<String> = lines.iter().map(|l| outline(l)).collect();
        if got != want {
            self.fail(&format!("expected {want:#?}\ngot {got:#?}"));
        }
        lines
    }

    fn terminate_ending(self, end: &str) -> Ended {
        let ended = self.terminate();
        assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
        assert_ends(ended.summary(), end);
        ended
    }
}

/// A plain run over `path`: its stdout lines.
fn plain(base: &Path, path: &Path) -> Vec<String> {
    let r = tonbo_testkit::run(command(base, &[path.to_str().unwrap()], &[]), None);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    r.lines()
}

/// One short line per record (see [`common::outline`]).
fn outline(line: &str) -> String {
    common::outline(&record(line))
}

/// Lines by session, in their order.
fn by_session(lines: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        m.entry(v["session"].as_str().unwrap().to_string())
            .or_default()
            .push(l.clone());
    }
    m
}

/// `--follow`'s lines are the plain run's, each once, in each session's order (sessions may
/// interleave differently).
fn assert_same_records(followed: &[String], plain: &[String]) {
    assert_eq!(
        by_session(followed),
        by_session(plain),
        "follow and a plain run of the finished database differ"
    );
    assert_eq!(followed.len(), plain.len());
}

fn base() -> TempDir {
    let t = TempDir::new().unwrap();
    fs::create_dir_all(t.path().join("home")).unwrap();
    t
}

/// A sandbox ([`base`]) with a database of `schema` at `rel` in it, and the app that writes it.
fn base_with_app(rel: &str, schema: &str) -> (TempDir, PathBuf, App) {
    let base = base();
    let db = base.path().join(rel);
    let app = App::create(&db, schema);
    (base, db, app)
}

/// A probe: a finished assistant message in session `ses_probe` (T2). Once its record is out,
/// the follower has looked at the database after everything written before it.
struct Probe {
    n: usize,
}

impl Probe {
    /// The first probe of a T2 database, sent and seen.
    fn first_t2(app: &mut App, r: &mut Following) -> Probe {
        let mut probe = Probe { n: 0 };
        probe.t2(app, r);
        probe
    }

    fn t2(&mut self, app: &mut App, r: &mut Following) {
        if self.n == 0 {
            app.t2_session("ses_probe");
        }
        let id = format!("msg_probe_{:03}", self.n);
        let created = app.tick();
        app.t2_message(
            "ses_probe",
            &id,
            t2_assistant("none", created, Some(created)),
        );
        self.seen(r, "S ses_probe t2", &format!("M ses_probe t2 {id} 0"));
    }

    fn g1(&mut self, app: &mut App, r: &mut Following) {
        if self.n == 0 {
            app.g1_session("probe-sess", 1);
        }
        let id = format!("probe-{:03}", self.n);
        app.g1_answer("probe-sess", &id, "ok", 2 + self.n as i64);
        self.seen(r, "S probe-sess g1", &format!("M probe-sess g1 {id} 2"));
    }

    /// Waits for the probe's record (outlined `message`), after its session's the first time.
    fn seen(&mut self, r: &mut Following, session: &str, message: &str) {
        if self.n == 0 {
            r.expect(&[session, message]);
        } else {
            r.expect(&[message]);
        }
        self.n += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// T2 (OpenCode 1.2+)

fn t2_streamed_message_and_tool_come_out_once_final(mode: Mode) {
    let (base, db, mut app) = base_with_app("data/opencode.db", T2_SCHEMA);
    // Finished before the start: written by the first pass.
    app.t2_session("ses_done");
    app.t2_user("ses_done", "msg_d1", "hello");
    app.t2_answer("ses_done", "msg_d2", "msg_d1", "hi there");
    // Being written at the start: its user message is final (the answer has begun), the answer
    // is not.
    app.t2_session("ses_live");
    app.t2_user("ses_live", "msg_l1", "list the files");
    let created = app.t2_assistant_start("ses_live", "msg_l2", "msg_l1");

    let mut r = follow(base.path(), &db, mode, &[]);
    r.expect(&[
        "S ses_done t2",
        "M ses_done t2 msg_d1 1",
        "M ses_done t2 msg_d2 1",
        "S ses_live t2",
        "M ses_live t2 msg_l1 1",
    ]);
    let mut probe = Probe::first_t2(&mut app, &mut r);

    // The answer streams: its text part is upserted again and again, then a tool part
    // goes pending -> running -> completed; after each step a probe shows the follower looked
    // and wrote nothing for it.
    let text = "prt_l2_a";
    for t in ["I", "I will", "I will list them."] {
        app.t2_part(
            "ses_live",
            "msg_l2",
            text,
            json!({"type": "text", "text": t, "time": {"start": created}}),
        );
        probe.t2(&mut app, &mut r);
    }
    app.t2_part(
        "ses_live",
        "msg_l2",
        text,
        json!({"type": "text", "text": "I will list them.", "time": {"start": created, "end": created + 1}}),
    );
    let tool = "prt_l2_b";
    let input = json!({"command": "ls", "description": "List"});
    for state in [
        json!({"status": "pending", "input": {}, "raw": ""}),
        json!({"status": "running", "input": input, "time": {"start": created + 2}}),
        json!({"status": "completed", "input": input, "output": "a.rs\n", "title": "ls",
               "metadata": {"exit": 0}, "time": {"start": created + 2, "end": created + 3}}),
    ] {
        app.t2_part(
            "ses_live",
            "msg_l2",
            tool,
            json!({"type": "tool", "callID": "toolu_01", "tool": "bash", "state": state}),
        );
        probe.t2(&mut app, &mut r);
    }
    app.t2_part(
        "ses_live",
        "msg_l2",
        "prt_l2_c",
        json!({"type": "step-finish", "reason": "tool-calls", "cost": 0, "tokens": {"input": 1, "output": 2}}),
    );
    // Done: `time.completed` is written last; now, and only now, it comes out.
    let done = app.tick();
    app.t2_message(
        "ses_live",
        "msg_l2",
        t2_assistant("msg_l1", created, Some(done)),
    );
    let live = r.expect(&["M ses_live t2 msg_l2 3"]);
    let v: Value = serde_json::from_str(&live[0]).unwrap();
    assert_eq!(v["record"]["parts"][0]["text"], "I will list them.");
    assert_eq!(v["record"]["parts"][1]["state"]["status"], "completed");

    // A new session, written row by row.
    app.t2_session("ses_new");
    app.t2_user("ses_new", "msg_n1", "again");
    app.t2_answer("ses_new", "msg_n2", "msg_n1", "sure");
    r.expect(&[
        "S ses_new t2",
        "M ses_new t2 msg_n1 1",
        "M ses_new t2 msg_n2 1",
    ]);

    let ended =
        r.terminate_ending(", 0 rejected, 0 failed, 0 rewrites, 0 messages held (not final)");
    assert_has(
        ended.summary(),
        "(0 g1, 0 g2, 0 t1, 1 t2, 0 t3), 4 sessions, 13 messages, ",
    );
    assert_same_records(&ended.lines, &plain(base.path(), &db));
}

/// A written message changed later is not written again (counted as a rewrite); a session
/// whose answer was interrupted is let out once a later answer exists; what is not final at
/// SIGTERM is not written, and the summary says so.
#[test]
fn t2_rewrites_interrupted_answers_and_what_is_held_at_the_exit() {
    let (base, db, mut app) = base_with_app("data/opencode.db", T2_SCHEMA);
    app.t2_session("ses_a");
    app.t2_user("ses_a", "msg_a1", "first");
    // Interrupted (OpenCode was killed): never completed, its tool still running.
    let created = app.t2_assistant_start("ses_a", "msg_a2", "msg_a1");
    app.t2_part(
        "ses_a",
        "msg_a2",
        "prt_a2_tool",
        json!({"type": "tool", "callID": "c1", "tool": "bash",
               "state": {"status": "running", "input": {}, "time": {"start": created}}}),
    );
    let mut r = follow(base.path(), &db, Mode::Poll, &[]);
    r.expect(&["S ses_a t2", "M ses_a t2 msg_a1 1"]);
    let mut probe = Probe::first_t2(&mut app, &mut r);

    // The next prompt: its user message waits behind the interrupted answer until an answer
    // to it begins, which shows the old one will not change any more.
    app.t2_user("ses_a", "msg_a3", "second");
    probe.t2(&mut app, &mut r);
    app.t2_answer("ses_a", "msg_a4", "msg_a3", "done");
    r.expect(&[
        "M ses_a t2 msg_a2 1",
        "M ses_a t2 msg_a3 1",
        "M ses_a t2 msg_a4 1",
    ]);
    let before = plain(base.path(), &db);

    // OpenCode fills in a user message's `summary` after the turn: written already, so
    // not again. The session is read again for its next message, and the change is seen.
    let t = app.tick();
    app.t2_message(
        "ses_a",
        "msg_a3",
        json!({"role": "user", "time": {"created": t - 100}, "summary": {"diffs": []}}),
    );
    app.t2_user("ses_a", "msg_a5", "third");
    let created = app.t2_assistant_start("ses_a", "msg_a6", "msg_a5");
    let thinking = json!({"type": "text", "text": "thinking", "time": {"start": created}});
    app.t2_part("ses_a", "msg_a6", "prt_a6_text", thinking);
    r.expect(&["M ses_a t2 msg_a5 1"]);
    probe.t2(&mut app, &mut r);

    let ended = r.terminate_ending(", 0 failed, 1 rewrites, 1 messages held (not final)");
    // What went out is the first plain run's, plus the new user message and the probes after.
    let after = plain(base.path(), &db);
    let msg_a5 = after
        .iter()
        .find(|l| l.contains(r#""row":"msg_a5""#))
        .unwrap();
    let mut expected = before.clone();
    expected.push(msg_a5.clone());
    for l in &after {
        if l.contains(r#""row":"msg_probe_002""#) {
            expected.push(l.clone());
        }
    }
    assert_same_records(&ended.lines, &expected);
    // The held answer is in a plain run (as it is now), not in what --follow wrote.
    assert!(after.iter().any(|l| l.contains(r#""row":"msg_a6""#)));
    assert!(!ended.lines.iter().any(|l| l.contains(r#""row":"msg_a6""#)));
}

/// A session's record waits for its first message; one that has none final by the exit (empty,
/// or its only message still streaming) gets its record then, as a plain run would write it.
#[test]
fn sessions_without_a_final_message_get_their_record_at_the_exit() {
    let (base, db, mut app) = base_with_app("data/opencode.db", T2_SCHEMA);
    app.t2_session("ses_empty");
    app.t2_session("ses_open");
    app.t2_assistant_start("ses_open", "msg_o1", "none");
    let mut r = follow(base.path(), &db, Mode::Poll, &[]);
    let mut probe = Probe::first_t2(&mut app, &mut r);
    // The first probe may come out of the first pass, which a signal would end without the last
    // look; the second can only come out of a poll after it.
    probe.t2(&mut app, &mut r);
    let ended = r.terminate_ending(", 3 sessions, 2 messages, 0 parts, 0 rejected, 0 failed, 0 rewrites, 1 messages held (not final)");
    let outlines: Vec<String> = ended.lines.iter().map(|l| outline(l)).collect();
    assert_eq!(
        outlines,
        [
            "S ses_probe t2",
            "M ses_probe t2 msg_probe_000 0",
            "M ses_probe t2 msg_probe_001 0",
            "S ses_empty t2",
            "S ses_open t2"
        ]
    );
    let expected: Vec<String> = plain(base.path(), &db)
        .into_iter()
        .filter(|l| !l.contains(r#""row":"msg_o1""#))
        .collect();
    assert_same_records(&ended.lines, &expected);
}

// ---------------------------------------------------------------------------------------------
// T3 (OpenCode 2)

#[test]
fn t3_assistant_row_updated_in_place_comes_out_once_completed() {
    let (base, db, mut app) = base_with_app("data/opencode.db", &format!("{T2_SCHEMA}{T3_SCHEMA}"));
    app.t3_session("ses_3");
    app.t3_message(
        "ses_3",
        "sm_1",
        "user",
        1,
        json!({"text": "go", "files": [], "agents": [], "references": [], "time": {"created": 1}}),
    );
    let mut r = follow(base.path(), &db, Mode::Poll, &[]);
    r.expect(&["S ses_3 t3", "M ses_3 t3 sm_1 0"]);
    let mut probe = Probe::first_t2(&mut app, &mut r);
    let tool = |status: &str| {
        json!({"type": "tool", "id": "call_1", "name": "bash",
               "state": {"status": status, "input": {"command": "ls"}, "content": [], "structured": {}},
               "time": {"created": 3}})
    };
    for (content, completed) in [
        (json!([{"type": "text", "id": "c1", "text": "Look"}]), None),
        (
            json!([{"type": "text", "id": "c1", "text": "Looking"}, tool("pending")]),
            None,
        ),
        (
            json!([{"type": "text", "id": "c1", "text": "Looking"}, tool("running")]),
            None,
        ),
        // Completed, but its tool still running: not final.
        (
            json!([{"type": "text", "id": "c1", "text": "Looking"}, tool("running")]),
            Some(9),
        ),
    ] {
        let mut time = json!({"created": 2});
        if let Some(c) = completed {
            time["completed"] = json!(c);
        }
        app.t3_message(
            "ses_3",
            "sm_2",
            "assistant",
            2,
            json!({"agent": "build", "model": {"id": "claude", "providerID": "anthropic"},
                   "content": content, "time": time}),
        );
        probe.t2(&mut app, &mut r);
    }
    app.t3_message(
        "ses_3",
        "sm_2",
        "assistant",
        2,
        json!({"agent": "build", "model": {"id": "claude", "providerID": "anthropic"},
               "content": [{"type": "text", "id": "c1", "text": "Looking"}, tool("completed")],
               "finish": "stop", "time": {"created": 2, "completed": 10}}),
    );
    let line = r.expect(&["M ses_3 t3 sm_2 0"]);
    assert!(line[0].contains(r#""status":"completed""#));
    let ended = r.terminate_ending(", 0 rewrites, 0 messages held (not final)");
    assert_same_records(&ended.lines, &plain(base.path(), &db));
}

// ---------------------------------------------------------------------------------------------
// G1 (Go opencode-ai/opencode)

fn g1_rewritten_parts_come_out_once_finished(mode: Mode) {
    let (base, db, mut app) = base_with_app(
        "proj/.opencode/opencode.db",
        &format!("{G1_SCHEMA}{G1_TRIGGERS}"),
    );
    // Finished before the start.
    app.g1_session("done-sess", 100);
    app.g1_user("done-sess", "d1", "hello", 100);
    app.g1_answer("done-sess", "d2", "hi", 101);
    // A title session, passed over as in a plain run.
    app.g1_session("title-done-sess", 100);
    app.g1_answer("title-done-sess", "t1", "A title", 100);
    // Being answered at the start.
    app.g1_session("live-sess", 200);
    app.g1_user("live-sess", "l1", "list the files", 200);
    app.g1_insert("live-sess", "l2", "assistant", json!([]), 201);

    let mut r = follow(base.path(), &db, mode, &[]);
    r.expect(&[
        "S done-sess g1",
        "M done-sess g1 d1 2",
        "M done-sess g1 d2 2",
        "S live-sess g1",
        "M live-sess g1 l1 2",
    ]);
    let mut probe = Probe { n: 0 };
    probe.g1(&mut app, &mut r);

    // Every streamed delta rewrites the whole `parts` column.
    let mut parts = Vec::new();
    for text in ["Let", "Let me", "Let me look."] {
        parts = vec![
            json!({"type": "reasoning", "data": {"thinking": "ls first"}}),
            json!({"type": "text", "data": {"text": text}}),
        ];
        app.g1_update("l2", json!(parts), None);
        probe.g1(&mut app, &mut r);
    }
    parts.push(
        json!({"type": "tool_call", "data": {"id": "toolu_01", "name": "ls",
                      "input": "{\"path\":\".\"}", "type": "", "finished": true}}),
    );
    app.g1_update("l2", json!(parts), None);
    probe.g1(&mut app, &mut r);
    // The finish part ends it (and sets finished_at); the tool result follows in a tool row.
    parts.push(json!({"type": "finish", "data": {"reason": "tool_use", "time": 202}}));
    app.g1_update("l2", json!(parts), Some(202));
    r.expect(&["M live-sess g1 l2 4"]);
    app.g1_insert(
        "live-sess",
        "l3",
        "tool",
        json!([{"type": "tool_result", "data": {"tool_call_id": "toolu_01", "name": "ls",
                 "content": "a.rs", "metadata": "", "is_error": false}}]),
        202,
    );
    r.expect(&["M live-sess g1 l3 1"]);

    // A new session.
    app.g1_session("new-sess", 300);
    app.g1_user("new-sess", "n1", "again", 300);
    app.g1_answer("new-sess", "n2", "sure", 301);
    r.expect(&["S new-sess g1", "M new-sess g1 n1 2", "M new-sess g1 n2 2"]);

    let ended = r.terminate_ending(
        ", 0 failed, skipped 1 title sessions, 0 rewrites, 0 messages held (not final)",
    );
    let plain = plain(base.path(), &db);
    // Every message record is the plain run's. A session record is its row as it was when its
    // first message went out: the Go triggers have counted messages into it since.
    let messages = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains(r#""kind":"message""#))
            .cloned()
            .collect()
    };
    assert_same_records(&messages(&ended.lines), &messages(&plain));
    let sessions = |lines: &[String]| -> BTreeMap<String, Value> {
        lines
            .iter()
            .filter(|l| l.contains(r#""kind":"session""#))
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                let row = v["record"]["session"].as_object_mut().unwrap();
                row.remove("message_count");
                row.remove("updated_at");
                (v["session"].as_str().unwrap().to_string(), v)
            })
            .collect()
    };
    assert_eq!(sessions(&ended.lines), sessions(&plain));
    let live: Value = serde_json::from_str(
        ended
            .lines
            .iter()
            .find(|l| l.contains(r#""row":"live-sess""#))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(live["record"]["session"]["message_count"], 2);
}

// ---------------------------------------------------------------------------------------------
// Sources that come and go

/// A database locked by its writer is reported, tried again at every poll, and read once
/// released; that is no failure at the exit.
#[test]
fn a_locked_database_is_read_once_released() {
    let base = base();
    let db = base.path().join("data/opencode.db");
    // A rollback-journal database under an exclusive lock: a reader cannot even read the schema.
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    let holder = Connection::open(&db).unwrap();
    holder.execute_batch(T2_SCHEMA).unwrap();
    holder
        .execute_batch(
            "INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated)
             VALUES ('ses_l', 'global', 'l', '/w', 'locked', '1', 1, 1);
             INSERT INTO message VALUES ('msg_l', 'ses_l', 2, 2, '{\"role\":\"user\",\"time\":{\"created\":2}}');
             INSERT INTO message VALUES ('msg_m', 'ses_l', 3, 3, '{\"role\":\"assistant\",\"time\":{\"created\":3,\"completed\":4}}');",
        )
        .unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let mut r = follow(
        base.path(),
        &db,
        Mode::Poll,
        &[("OPENCODE_READ_BUSY_TIMEOUT_MS", "50")],
    );
    let report = r.stderr_line("database is locked");
    assert_eq!(
        report,
        format!(
            "opencode-read: {}: cannot read: database is locked (still locked after 50 ms); trying again at the next poll",
            db.display()
        )
    );
    // Nothing was written meanwhile.
    r.assert_no_line_yet();
    holder.execute_batch("ROLLBACK;").unwrap();
    r.expect(&["S ses_l t2", "M ses_l t2 msg_l 0", "M ses_l t2 msg_m 0"]);
    let ended = r.terminate();
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    // Reported once, however many polls found it locked.
    assert_eq!(ended.stderr.matches("database is locked").count(), 1);
    assert_has(&ended.stderr, ": read again");
    assert_has(ended.summary(), ", 0 rejected, 0 failed");
    drop(holder);
    assert_same_records(&ended.lines, &plain(base.path(), &db));
}

fn a_new_database_in_a_followed_folder_is_read(mode: Mode) {
    let base = base();
    let data = base.path().join("data");
    fs::create_dir_all(&data).unwrap();
    // A file that is no database of ours, in the watched folder, changing: nothing to read.
    fs::write(data.join("notes.txt"), "x").unwrap();
    let mut r = follow(base.path(), &data, mode, &[]);
    let db = data.join("opencode-beta.db");
    let mut app = App::create(&db, T2_SCHEMA);
    fs::write(data.join("notes.txt"), "y").unwrap();
    app.t2_session("ses_1");
    app.t2_user("ses_1", "msg_1", "hi");
    app.t2_answer("ses_1", "msg_2", "msg_1", "hello");
    r.expect(&["S ses_1 t2", "M ses_1 t2 msg_1 1", "M ses_1 t2 msg_2 1"]);
    let ended = r.terminate();
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
    assert!(
        ended
            .summary()
            .starts_with("opencode-read: 1 databases, 0 JSON stores (0 g1, 0 g2, 0 t1, 1 t2, 0 t3), 1 sessions, 2 messages"),
        "{}",
        ended.summary()
    );
    assert_same_records(&ended.lines, &plain(base.path(), &db));
}

// ---------------------------------------------------------------------------------------------
// The JSON store (T1)

fn put_json(path: &Path, v: &Value) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Written aside and renamed in, so no half-written file is read (the reader retries those
    // once, but a test must not depend on a retry's timing).
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, serde_json::to_string_pretty(v).unwrap()).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn t1_session(storage: &Path, id: &str, created: i64) {
    put_json(
        &storage.join(format!("session/global/{id}.json")),
        &json!({"id": id, "slug": id, "projectID": "global", "directory": "/w", "title": id,
                "version": "1.1.0", "time": {"created": created, "updated": created}}),
    );
}

fn t1_message(storage: &Path, session: &str, id: &str, v: Value) {
    let mut v = v;
    v["id"] = json!(id);
    v["sessionID"] = json!(session);
    put_json(&storage.join(format!("message/{session}/{id}.json")), &v);
}

fn t1_part(storage: &Path, session: &str, message: &str, id: &str, v: Value) {
    let mut v = v;
    v["id"] = json!(id);
    v["sessionID"] = json!(session);
    v["messageID"] = json!(message);
    put_json(&storage.join(format!("part/{message}/{id}.json")), &v);
}

fn t1_store_messages_come_out_once_final(mode: Mode) {
    let base = base();
    let storage = base.path().join("data/storage");
    t1_session(&storage, "ses_1", 1000);
    t1_message(
        &storage,
        "ses_1",
        "msg_1",
        json!({"role": "user", "time": {"created": 1001}}),
    );
    t1_part(
        &storage,
        "ses_1",
        "msg_1",
        "prt_1",
        json!({"type": "text", "text": "hi"}),
    );
    t1_message(
        &storage,
        "ses_1",
        "msg_2",
        t2_assistant("msg_1", 1002, None),
    );
    let mut r = follow(base.path(), &storage, mode, &[]);
    r.expect(&["S ses_1 t1", "M ses_1 t1 msg_1 1"]);
    // Streaming: the part file is written again; the message is completed last.
    for text in ["he", "hello"] {
        t1_part(
            &storage,
            "ses_1",
            "msg_2",
            "prt_2",
            json!({"type": "text", "text": text}),
        );
    }
    t1_part(
        &storage,
        "ses_1",
        "msg_2",
        "prt_3",
        json!({"type": "tool", "callID": "c", "tool": "bash",
               "state": {"status": "completed", "input": {}, "output": "x", "title": "t",
                         "metadata": {}, "time": {"start": 1, "end": 2}}}),
    );
    t1_message(
        &storage,
        "ses_1",
        "msg_2",
        t2_assistant("msg_1", 1002, Some(1003)),
    );
    let line = r.expect(&["M ses_1 t1 msg_2 2"]);
    assert!(line[0].contains(r#""text":"hello""#));
    // A new session.
    t1_session(&storage, "ses_2", 2000);
    t1_message(
        &storage,
        "ses_2",
        "msg_3",
        t2_assistant("none", 2001, Some(2002)),
    );
    r.expect(&["S ses_2 t1", "M ses_2 t1 msg_3 0"]);
    let ended = r.terminate_ending(", 0 rewrites, 0 messages held (not final)");
    assert_same_records(&ended.lines, &plain(base.path(), &storage));
}

// ---------------------------------------------------------------------------------------------
// SIGTERM during a plain run

/// A plain run stopped by SIGTERM ends at a record boundary: exit 0, the summary, and what it
/// wrote is a prefix of a whole run, every line whole. Stdout is not read until the signal is
/// sent, so the run is blocked writing long before its end, whatever the machine's speed.
#[test]
fn sigterm_stops_a_plain_run_at_a_record_boundary() {
    let (base, db, mut app) = base_with_app("data/opencode.db", T2_SCHEMA);
    {
        let tx = app.conn.transaction().unwrap();
        let filler = "x".repeat(400);
        for s in 0..200 {
            let sid = format!("ses_{s:04}");
            tx.execute(
                "INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated)
                 VALUES (?1, 'global', 's', '/w', 't', '1', ?2, ?2)",
                params![sid, s],
            )
            .unwrap();
            for m in 0..50 {
                let mid = format!("msg_{s:04}_{m:03}");
                tx.execute(
                    "INSERT INTO message VALUES (?1, ?2, ?3, ?3, ?4)",
                    params![
                        mid,
                        sid,
                        m,
                        json!({"role": "user", "time": {"created": m}, "pad": filler}).to_string()
                    ],
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let full = plain(base.path(), &db);
    assert_eq!(full.len(), 200 * 51);

    let r = terminated_after_first_line(command(base.path(), &[db.to_str().unwrap()], &[]));
    assert_stopped_at_a_record_boundary(&r, &full);
    let messages = r
        .lines()
        .iter()
        .filter(|l| l.contains(r#""kind":"message""#))
        .count();
    let messages = format!(" {messages} messages, ");
    assert_has(r.summary(), &messages);
}

// ---------------------------------------------------------------------------------------------
// Each in both modes

tonbo_testkit::in_both_modes!(
    t2_streamed_message_and_tool_come_out_once_final,
    g1_rewritten_parts_come_out_once_finished,
    a_new_database_in_a_followed_folder_is_read,
    t1_store_messages_come_out_once_final,
);
