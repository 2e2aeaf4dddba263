//! Sidecar mode end to end: `<reader> --follow | tonbo-map | tonbo-batch | tonbo-post`, four
//! real processes, following into the reference server while the test writes the source.
//!
//! Claude Code: lines written before the start, appends, a line written in two parts, a new
//! session file, a rewrite in place (compaction), a stop with SIGTERM and lines written while
//! nothing was running, then a restart. OpenCode: a real WAL database written by the test as the
//! app does (an answer streamed into its part rows in place, a tool call pending, running, then
//! completed), a stop and rows written meanwhile, a restart. The server must end with every event
//! exactly once, in order (for OpenCode: exactly the events a plain backfill of the final
//! database maps to, so nothing unfinished went out), every stage must exit 0 on the signal, and
//! the checkpoint must hold everything (a plain re-run sends nothing).

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use tonbo_testkit::reader::append;

const A: &str = "7c0ffee0-0000-4000-8000-00000000000a";
const B: &str = "7c0ffee0-0000-4000-8000-00000000000b";

fn prompt(sid: &str, uuid: &str, text: &str) -> String {
    json!({"type": "user", "uuid": uuid, "parentUuid": null, "sessionId": sid,
           "timestamp": "2026-05-01T10:00:00.000Z", "cwd": "/w", "version": "2.1.30",
           "isSidechain": false, "message": {"role": "user", "content": text}})
    .to_string()
}

fn lines(ls: &[String]) -> String {
    ls.iter().map(|l| format!("{l}\n")).collect()
}

/// The four stages, following `projects`.
struct Follow {
    stages: Vec<(&'static str, Child)>,
}

impl Follow {
    fn start(server: &Server, projects: &Path, state: &Path, reader_args: &[&str]) -> Follow {
        let mut args = reader_args.to_vec();
        args.push(projects.to_str().unwrap());
        Follow::start_reader(server, "claude-read", &args, state)
    }

    fn start_reader(server: &Server, reader: &'static str, args: &[&str], state: &Path) -> Follow {
        Follow::start_into(&server.url, &[], reader, args, state)
    }

    /// The same into any base URL, with more flags for tonbo-post.
    fn start_into(
        base: &str,
        post_args: &[&str],
        reader: &'static str,
        args: &[&str],
        state: &Path,
    ) -> Follow {
        let follow = ["--follow"].iter().chain(args);
        let mut read = stage(reader, follow, Stdio::inherit());
        let mut map = stage("tonbo-map", NO_ARGS, piped(&mut read));
        let mut batch = stage("tonbo-batch", ["--linger", "50"], piped(&mut map));
        let post = tonbo_post(base, state, &[&["-q"], post_args].concat())
            .stdin(piped(&mut batch))
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Follow {
            stages: vec![
                (reader, read),
                ("tonbo-map", map),
                ("tonbo-batch", batch),
                ("tonbo-post", post),
            ],
        }
    }

    /// Sends SIGTERM to the given stages and checks that every stage exits 0.
    fn stop(mut self, signalled: &[&str]) {
        for (name, child) in &self.stages {
            if signalled.contains(name) {
                signal(child, "-TERM");
            }
        }
        for (name, child) in &mut self.stages {
            let deadline = Instant::now() + Duration::from_secs(60);
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{name} did not stop within 60 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            assert!(status.success(), "{name} exited with {status}");
        }
        self.stages.clear();
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        for (_, c) in &mut self.stages {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until the session's stream holds exactly `want` (in order), failing on anything else
/// once the deadline passes.
#[track_caller]
fn wait_for(server: &Server, sid: &str, want: &[&str]) {
    let session = format!("claude-code-{sid}");
    let want: Vec<String> = want.iter().map(|k| format!("{k}#0")).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = server.keys(&session);
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            assert_keys(&got, &want, &session);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn follows_into_the_server(reader_args: &[&str]) {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let project = claude_project(dir.path());
    let projects = dir.path().join("projects");
    let state = dir.path().join("state.sqlite");
    let a = project.join(format!("{A}.jsonl"));
    let b = project.join(format!("{B}.jsonl"));

    // Written before anything runs: the follow run starts with a backfill.
    let a1 = [prompt(A, "a1", "one"), prompt(A, "a2", "two")];
    append(&a, lines(&a1));
    let run = Follow::start(&server, &projects, &state, reader_args);
    wait_for(&server, A, &["a1", "a2"]);

    // Appends, one line written in two parts.
    let a3 = prompt(A, "a3", "three");
    let (head, tail) = a3.split_at(a3.len() / 2);
    append(&a, head);
    append(&a, format!("{tail}\n{}\n", prompt(A, "a4", "four")));
    wait_for(&server, A, &["a1", "a2", "a3", "a4"]);

    // A new session file.
    append(&b, lines(&[prompt(B, "b1", "bee")]));
    wait_for(&server, B, &["b1"]);

    // Compaction rewrites A in place: a2 vanishes, the rest stays, a5 is new.
    std::fs::write(
        &a,
        lines(&[
            prompt(A, "a1", "one"),
            prompt(A, "a3", "three"),
            prompt(A, "a4", "four"),
            prompt(A, "a5", "five"),
        ]),
    )
    .unwrap();
    wait_for(&server, A, &["a1", "a2", "a3", "a4", "a5"]);

    // SIGTERM to the reader alone: the stages downstream drain and every one exits 0.
    run.stop(&["claude-read"]);

    // Written while nothing runs, then a restart: nothing lost, nothing doubled.
    append(&b, lines(&[prompt(B, "b2", "bee two")]));
    let run = Follow::start(&server, &projects, &state, reader_args);
    wait_for(&server, B, &["b1", "b2"]);
    append(&a, lines(&[prompt(A, "a6", "six")]));
    wait_for(&server, A, &["a1", "a2", "a3", "a4", "a5", "a6"]);

    // SIGTERM to the whole pipeline, as a terminal or a service manager sends it.
    run.stop(&["claude-read", "tonbo-map", "tonbo-batch", "tonbo-post"]);
    wait_for(&server, A, &["a1", "a2", "a3", "a4", "a5", "a6"]);
    wait_for(&server, B, &["b1", "b2"]);

    // The checkpoint holds it all: a plain backfill sends nothing.
    claude_pipeline(&server, &projects, &state)
        .assert_ok()
        .assert_says(" 0 events sent");
}

#[test]
fn a_followed_pipeline_delivers_everything_once_through_rewrites_and_restarts() {
    follows_into_the_server(&[]);
}

#[test]
fn the_same_by_polling() {
    follows_into_the_server(&["--poll", "--poll-interval", "50"]);
}

// ---------------------------------------------------------------------------------------------
// OpenCode

/// The rows every test's database starts with, in the T2 tables.
const T2_ROWS: &str = "
INSERT INTO project VALUES ('global', '/', NULL, NULL, 1, 1, NULL, '[]');
INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated)
  VALUES ('ses_1', 'global', 'slug', '/w', 'a session', '1.2.6', 1000, 1000);
";

/// The app's writer: one connection in WAL mode, each write its own transaction.
struct OpenCodeApp {
    db: rusqlite::Connection,
    clock: i64,
}

impl OpenCodeApp {
    fn create(path: &Path) -> OpenCodeApp {
        let db = rusqlite::Connection::open(path).unwrap();
        db.pragma_update(None, "journal_mode", "WAL").unwrap();
        db.execute_batch(tonbo_testkit::events::OPENCODE_T2_TABLES)
            .unwrap();
        db.execute_batch(T2_ROWS).unwrap();
        OpenCodeApp { db, clock: 2000 }
    }

    fn tick(&mut self) -> i64 {
        self.clock += 10;
        self.clock
    }

    fn user(&mut self, id: &str, text: &str) {
        let t = self.tick();
        let data = json!({"role": "user", "time": {"created": t}}).to_string();
        self.db
            .execute(
                "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?1, 'ses_1', ?2, ?2, ?3)",
                rusqlite::params![id, t, data],
            )
            .unwrap();
        self.part(
            id,
            &format!("{id}_p"),
            json!({"type": "text", "text": text}),
        );
    }

    /// An assistant message; `completed` sets `time.completed` (OpenCode sets it last).
    fn assistant(&mut self, id: &str, completed: bool) {
        let t = self.tick();
        let mut time = json!({"created": t});
        if completed {
            time["completed"] = json!(t + 5);
        }
        let data = json!({"role": "assistant", "time": time, "modelID": "m", "providerID": "p"})
            .to_string();
        self.db
            .execute(
                "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?1, 'ses_1', ?2, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET time_updated = excluded.time_updated, data = excluded.data",
                rusqlite::params![id, t, data],
            )
            .unwrap();
    }

    /// Writes a part row, or updates it in place (as OpenCode's `updatePart` does).
    fn part(&mut self, message: &str, id: &str, data: Value) {
        let t = self.tick();
        self.db
            .execute(
                "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES (?1, ?2, 'ses_1', ?3, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET time_updated = excluded.time_updated, data = excluded.data",
                rusqlite::params![id, message, t, data.to_string()],
            )
            .unwrap();
    }

    /// An answer streamed as the app writes it: text growing in place, a tool call pending,
    /// running, then completed, and the message completed last.
    fn streamed_answer(&mut self, id: &str, text: &str) {
        self.assistant(id, false);
        let text_part = format!("{id}_t");
        let mut shown = String::new();
        for word in text.split(' ') {
            shown.push_str(word);
            shown.push(' ');
            self.part(
                id,
                &text_part,
                json!({"type": "text", "text": shown.trim_end()}),
            );
            std::thread::sleep(Duration::from_millis(15));
        }
        let tool = format!("{id}_tool");
        let call = json!({"type": "tool", "callID": format!("call_{id}"), "tool": "bash"});
        for state in [
            json!({"status": "pending", "input": {}}),
            json!({"status": "running", "input": {"command": "ls"}, "time": {"start": 1}}),
            json!({"status": "completed", "input": {"command": "ls"}, "output": "a b",
                   "title": "ls", "metadata": {}, "time": {"start": 1, "end": 2}}),
        ] {
            let mut data = call.clone();
            data["state"] = state;
            self.part(id, &tool, data);
            std::thread::sleep(Duration::from_millis(15));
        }
        self.assistant(id, true);
    }
}

/// The events a plain backfill maps the database to, by session, in order.
fn plain_events(db: &Path) -> Vec<(String, Value)> {
    mapped_events("opencode-read", db)
        .into_iter()
        .map(|v| {
            (
                v["session_id"].as_str().unwrap().to_string(),
                v["event"].clone(),
            )
        })
        .collect()
}

/// Waits until the server holds exactly the events a plain backfill of the database maps to.
#[track_caller]
fn wait_for_plain(server: &Server, db: &Path) {
    let want = plain_events(db);
    let sessions: std::collections::BTreeSet<&String> = want.iter().map(|(s, _)| s).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for session in sessions {
        let want: Vec<&Value> = want
            .iter()
            .filter(|(s, _)| s == session)
            .map(|(_, e)| e)
            .collect();
        loop {
            let got = server.read(session).unwrap_or_default();
            if got.iter().collect::<Vec<_>>() == want {
                break;
            }
            if Instant::now() > deadline {
                let key = |e: &Value| {
                    e["metadata"]["source_key"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                };
                let got_keys: Vec<String> = got.iter().map(key).collect();
                let want_keys: Vec<String> = want.iter().map(|e| key(e)).collect();
                assert_keys(&got_keys, &want_keys, session);
                panic!("{session}: the same keys, other content: something unfinished went out");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_followed_opencode_database_delivers_only_final_messages_once() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opencode.db");
    let state = dir.path().join("state.sqlite");
    let mut app = OpenCodeApp::create(&db);
    app.user("msg_01", "hello");
    app.streamed_answer("msg_02", "hi there");
    let args = ["--poll-interval", "50", db.to_str().unwrap()];
    let run = Follow::start_reader(&server, "opencode-read", &args, &state);
    wait_for_plain(&server, &db);

    // A turn streamed while followed: only its final form may reach the server.
    app.user("msg_03", "list the files");
    app.streamed_answer("msg_04", "here they are in a list");
    wait_for_plain(&server, &db);
    run.stop(&["opencode-read", "tonbo-map", "tonbo-batch", "tonbo-post"]);

    // Written while nothing runs, then a restart.
    app.user("msg_05", "thanks");
    app.streamed_answer("msg_06", "you are welcome");
    let run = Follow::start_reader(&server, "opencode-read", &args, &state);
    wait_for_plain(&server, &db);
    app.user("msg_07", "bye");
    app.streamed_answer("msg_08", "bye now");
    wait_for_plain(&server, &db);
    run.stop(&["opencode-read"]);
    wait_for_plain(&server, &db);
}

/// Following into a 3-node Ursula cluster through a node that does not lead the session's
/// stream, while the leader is killed (SIGKILL): the pipeline goes on through the election and
/// every event is there once, in order.
#[test]
fn ursula_a_followed_pipeline_through_a_follower_survives_a_leader_change() {
    let Some(mut cluster) = Ursula::start_if_present(3) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = claude_project(dir.path()).join(format!("{A}.jsonl"));
    let projects = dir.path().join("projects");
    let state = dir.path().join("state.sqlite");
    let stream = format!("claude-code-{A}");
    // Create the stream first, to know its leader and enter through another node.
    assert!(cluster.create(0, &stream));
    let leader = cluster.leader_of(&stream).expect("the stream has a leader");
    let entry = (leader + 1) % 3;
    let template = ["--url-template", "{base}/sessions/{session_id}"];
    let wait = |cluster: &Ursula, node: usize, n: usize| {
        let want: Vec<String> = (0..n).map(|i| format!("u{i}#0")).collect();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let got = cluster.keys(node, &stream);
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "want {want:?}, got {got:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let say = |from: usize, to: usize| {
        let ls: Vec<String> = (from..to)
            .map(|i| prompt(A, &format!("u{i}"), &format!("line {i}")))
            .collect();
        append(&a, lines(&ls));
    };
    say(0, 3);
    let run = Follow::start_into(
        &cluster.url(entry),
        &template,
        "claude-read",
        &[
            "--poll",
            "--poll-interval",
            "50",
            projects.to_str().unwrap(),
        ],
        &state,
    );
    wait(&cluster, entry, 3);
    say(3, 6);
    wait(&cluster, entry, 6);
    cluster.kill(leader);
    say(6, 12);
    wait(&cluster, entry, 12);
    say(12, 15);
    wait(&cluster, entry, 15);
    run.stop(&["claude-read", "tonbo-map", "tonbo-batch", "tonbo-post"]);
    let survivor = 3 - leader - entry;
    wait(&cluster, survivor, 15);
}
