//! Several full pipelines (`claude-read | tonbo-map | tonbo-batch | tonbo-post`) backfilling the
//! same transcripts into the same server at the same time, each with its own state file, batch
//! size and concurrency (two machines, two cron entries, a container and its host): every event
//! must be on the server exactly once, in input order, and every run must succeed.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use support::*;

/// Claude Code transcripts: `sessions` files of `turns` prompt/answer pairs each.
fn claude_corpus(root: &Path, sessions: usize, turns: usize) -> PathBuf {
    let dir = root.join("projects").join("-home-dev-shop");
    std::fs::create_dir_all(&dir).unwrap();
    for s in 0..sessions {
        let id = format!("0b5e1a52-0001-4c1a-9f00-{s:012}");
        let mut f = std::fs::File::create(dir.join(format!("{id}.jsonl"))).unwrap();
        let mut parent = serde_json::Value::Null;
        for t in 0..turns {
            let (u, a) = (format!("u{t}"), format!("a{t}"));
            let at =
                |ms: usize| format!("2026-04-02T14:{:02}:{:02}.{:03}Z", t / 60 % 60, t % 60, ms);
            let user = serde_json::json!({
                "parentUuid": parent, "isSidechain": false, "userType": "external",
                "cwd": "/home/dev/shop", "sessionId": id, "version": "2.1.30", "type": "user",
                "uuid": u, "timestamp": at(0),
                "message": {"role": "user", "content": format!("question {t} of session {s}")}
            });
            let answer = serde_json::json!({
                "parentUuid": u, "isSidechain": false, "userType": "external",
                "cwd": "/home/dev/shop", "sessionId": id, "version": "2.1.30", "type": "assistant",
                "uuid": a, "timestamp": at(500), "requestId": format!("req_{t}"),
                "message": {"id": format!("msg_{t}"), "type": "message", "role": "assistant",
                    "model": "claude-opus-4-6", "stop_reason": "end_turn",
                    "content": [{"type": "text", "text": format!("answer {t} of session {s}")}],
                    "usage": {"input_tokens": 3, "output_tokens": 5}}
            });
            writeln!(f, "{user}\n{answer}").unwrap();
            parent = serde_json::Value::String(a);
        }
    }
    root.to_path_buf()
}

/// What the pipeline should deliver: each session's keys in input order (`claude-read | tonbo-map`).
fn expected(corpus: &Path) -> BTreeMap<String, Vec<String>> {
    let mut sessions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in mapped_events("claude-read", corpus) {
        let key = v["event"]["metadata"]["source_key"].as_str().unwrap();
        sessions
            .entry(v["session_id"].as_str().unwrap().to_string())
            .or_default()
            .push(key.to_string());
    }
    sessions
}

/// One writer: its own state file, batch size and concurrency.
struct Writer {
    max_events: usize,
    concurrency: usize,
    window: usize,
}

const WRITERS: [Writer; 4] = [
    Writer {
        max_events: 7,
        concurrency: 4,
        window: 3,
    },
    Writer {
        max_events: 50,
        concurrency: 1,
        window: 1,
    },
    Writer {
        max_events: 13,
        concurrency: 8,
        window: 4,
    },
    Writer {
        max_events: 100,
        concurrency: 2,
        window: 2,
    },
];

/// Starts `writers` full pipelines at once, writer `i` into `bases[i % bases.len()]`, and waits
/// for all; returns their outcomes.
fn backfill_at_once(
    bases: &[String],
    post_args: &[&str],
    corpus: &Path,
    states: &Path,
    writers: &[Writer],
) -> Vec<Run> {
    let mut posts = Vec::new();
    for (i, w) in writers.iter().enumerate() {
        let (max, conc, window) = (
            w.max_events.to_string(),
            w.concurrency.to_string(),
            w.window.to_string(),
        );
        let mut args = vec!["--concurrency", &conc, "--window", &window];
        args.extend_from_slice(post_args);
        let state = states.join(format!("writer-{i}.sqlite"));
        posts.push(start_claude_pipeline(
            &bases[i % bases.len()],
            corpus,
            &state,
            &["--max-events", &max],
            &args,
        ));
    }
    // Read every writer's output at once, so none blocks on a full stderr pipe.
    let handles: Vec<_> = posts
        .into_iter()
        .map(|mut p| std::thread::spawn(move || finish(&mut p)))
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[track_caller]
fn all_succeeded(runs: &[Run]) {
    for (i, r) in runs.iter().enumerate() {
        assert!(r.status.success(), "writer {i} failed:\n{}", r.stderr);
    }
}

/// The sum of one summary field (`N events sent`) over the writers' stderr.
fn summed(runs: &[Run], field: &str) -> u64 {
    runs.iter()
        .map(|r| {
            let line = r.stderr.lines().rfind(|l| l.contains(field)).unwrap_or("");
            let head = &line[..line.find(field).unwrap_or(0)];
            head.rsplit([' ', ','])
                .find(|w| !w.is_empty())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        })
        .sum()
}

fn concurrent_writers_against_the_reference_server(n: usize) {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let corpus = claude_corpus(&dir.path().join("claude"), 24, 60);
    let want = expected(&corpus);
    let total: usize = want.values().map(Vec::len).sum();
    let bases = [server.url.clone()];
    let runs = backfill_at_once(&bases, &[], &corpus, dir.path(), &WRITERS[..n]);
    all_succeeded(&runs);
    for (session, keys) in &want {
        assert_keys(&server.keys(session), keys, session);
    }
    // Between them the writers sent each event once; the rest each found already there.
    assert_eq!(summed(&runs, " events sent"), total as u64, "{runs:#?}");
    // And a second round of all of them at once sends nothing.
    let again = backfill_at_once(&bases, &[], &corpus, dir.path(), &WRITERS[..n]);
    for (i, r) in again.iter().enumerate() {
        assert!(
            r.status.success(),
            "writer {i} failed on the re-run:\n{}",
            r.stderr
        );
        assert!(r.stderr.contains(" 0 events sent"), "{}", r.stderr);
    }
    for (session, keys) in &want {
        assert_keys(&server.keys(session), keys, session);
    }
}

#[test]
fn two_writers_at_once_leave_each_event_once() {
    concurrent_writers_against_the_reference_server(2);
}

#[test]
fn four_writers_at_once_leave_each_event_once() {
    concurrent_writers_against_the_reference_server(4);
}

/// The server already holds an event twice (written by an older tonbo-post, or by hand): a run
/// that reads the stream back says so, names the session and exits 1.
#[test]
fn a_stream_holding_an_event_twice_is_named_and_the_run_exits_1() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    write_records(&input, &[("twice", 0..5)]);
    pipeline(&server, &input, &dir.path().join("a.sqlite"), &[], &[]).assert_ok();
    // Another program appends event 3 again, without any producer headers.
    let ev = serde_json::json!({
        "type": "user.message", "content": [{"type": "text", "text": "message 3 of twice"}],
        "metadata": {"source": "test", "source_key": "twice-3", "original_timestamp": "2026-11-24T00:00:00Z"}
    });
    assert_eq!(server.post_raw("twice", &[], &format!("[{ev}]")), 204);
    // A checkpoint that has never seen the stream reads it back, and finds 6 events for 5 keys.
    pipeline(&server, &input, &dir.path().join("b.sqlite"), &[], &[])
        .assert_code(1)
        .assert_says("1 sessions on the server hold more events than distinct source_keys")
        .assert_says("twice (6 events, 5 distinct keys)")
        .assert_says("--verify")
        .assert_says(" 0 events sent");
}

/// The same against a 3-node Ursula cluster, writer `i` through node `i % 3` (so most write
/// through followers, which redirect each write to its stream's leader).
fn concurrent_writers_against_ursula(n: usize) {
    let Some(cluster) = Ursula::start_if_present(3) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let corpus = claude_corpus(&dir.path().join("claude"), 24, 60);
    let want = expected(&corpus);
    let total: usize = want.values().map(Vec::len).sum();
    let bases: Vec<String> = (0..3).map(|i| cluster.url(i)).collect();
    let template = ["--url-template", "{base}/sessions/{session_id}"];
    let runs = backfill_at_once(&bases, &template, &corpus, dir.path(), &WRITERS[..n]);
    all_succeeded(&runs);
    for (session, keys) in &want {
        for node in 0..3 {
            assert_keys(&cluster.keys(node, session), keys, session);
        }
    }
    assert_eq!(summed(&runs, " events sent"), total as u64, "{runs:#?}");
}

#[test]
fn ursula_two_writers_at_once_through_different_nodes_leave_each_event_once() {
    concurrent_writers_against_ursula(2);
}

#[test]
fn ursula_four_writers_at_once_through_different_nodes_leave_each_event_once() {
    concurrent_writers_against_ursula(4);
}
