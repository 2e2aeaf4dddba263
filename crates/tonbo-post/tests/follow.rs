//! Sidecar mode end to end: `claude-read --follow | tonbo-map | tonbo-batch | tonbo-post`, four
//! real processes, following transcript files into the reference server while the test writes
//! them: lines written before the start, appends, a line written in two parts, a new session
//! file, a rewrite in place (compaction), a stop with SIGTERM and lines written while nothing was
//! running, then a restart. The server must end with every event exactly once, in order, every
//! stage must exit 0 on the signal, and the checkpoint must hold everything (a plain re-run sends
//! nothing).

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

const A: &str = "7c0ffee0-0000-4000-8000-00000000000a";
const B: &str = "7c0ffee0-0000-4000-8000-00000000000b";

fn prompt(sid: &str, uuid: &str, text: &str) -> String {
    json!({"type": "user", "uuid": uuid, "parentUuid": null, "sessionId": sid,
           "timestamp": "2026-05-01T10:00:00.000Z", "cwd": "/w", "version": "2.1.30",
           "isSidechain": false, "message": {"role": "user", "content": text}})
    .to_string()
}

fn append(path: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
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
        let mut read = Command::new(bin("claude-read"))
            .args(["-q", "--follow"])
            .args(reader_args)
            .arg(projects)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut map = Command::new(bin("tonbo-map"))
            .arg("-q")
            .stdin(read.stdout.take().unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut batch = Command::new(bin("tonbo-batch"))
            .args(["-q", "--linger", "50"])
            .stdin(map.stdout.take().unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let post = Command::new(bin("tonbo-post"))
            .args(["-q", "--api", &server.url, "--state"])
            .arg(state)
            .env_remove("TONBO_API_KEY")
            .stdin(batch.stdout.take().unwrap())
            .spawn()
            .unwrap();
        Follow {
            stages: vec![
                ("claude-read", read),
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
                let ok = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "kill -TERM {name}");
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
    let projects = dir.path().join("projects");
    let project = projects.join("-w");
    std::fs::create_dir_all(&project).unwrap();
    let state = dir.path().join("state.sqlite");
    let a = project.join(format!("{A}.jsonl"));
    let b = project.join(format!("{B}.jsonl"));

    // Written before anything runs: the follow run starts with a backfill.
    let a1 = [prompt(A, "a1", "one"), prompt(A, "a2", "two")];
    append(&a, &lines(&a1));
    let run = Follow::start(&server, &projects, &state, reader_args);
    wait_for(&server, A, &["a1", "a2"]);

    // Appends, one line written in two parts.
    let a3 = prompt(A, "a3", "three");
    let (head, tail) = a3.split_at(a3.len() / 2);
    append(&a, head);
    append(&a, &format!("{tail}\n{}\n", prompt(A, "a4", "four")));
    wait_for(&server, A, &["a1", "a2", "a3", "a4"]);

    // A new session file.
    append(&b, &lines(&[prompt(B, "b1", "bee")]));
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
    append(&b, &lines(&[prompt(B, "b2", "bee two")]));
    let run = Follow::start(&server, &projects, &state, reader_args);
    wait_for(&server, B, &["b1", "b2"]);
    append(&a, &lines(&[prompt(A, "a6", "six")]));
    wait_for(&server, A, &["a1", "a2", "a3", "a4", "a5", "a6"]);

    // SIGTERM to the whole pipeline, as a terminal or a service manager sends it.
    run.stop(&["claude-read", "tonbo-map", "tonbo-batch", "tonbo-post"]);
    wait_for(&server, A, &["a1", "a2", "a3", "a4", "a5", "a6"]);
    wait_for(&server, B, &["b1", "b2"]);

    // The checkpoint holds it all: a plain backfill sends nothing.
    let again = claude_pipeline(&server, &projects, &state);
    assert!(again.status.success(), "{}", again.stderr);
    assert!(again.stderr.contains(" 0 events sent"), "{}", again.stderr);
}

#[test]
fn a_followed_pipeline_delivers_everything_once_through_rewrites_and_restarts() {
    follows_into_the_server(&[]);
}

#[test]
fn the_same_by_polling() {
    follows_into_the_server(&["--poll", "--poll-interval", "50"]);
}
