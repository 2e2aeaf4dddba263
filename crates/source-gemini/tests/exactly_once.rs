//! Exactly once, end to end: the real front door (`tonbo-ingest --from gemini-cli`, which runs
//! `gemini-read | tonbo-map | tonbo-batch | tonbo-post`) into the real reference server. A
//! re-run sends nothing; a followed chat whose messages are rewritten as they grow leaves every
//! event of the final chat on the server exactly once, and a plain run after it sends nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tonbo_testkit::events::{events_by_session, mapped_events};
use tonbo_testkit::reader::{append, put, TempHome};
use tonbo_testkit::server::RefServer;
use tonbo_testkit::{bin, signal, Run};

fn front_door(home: &Path, from: &[&str], api: &str, state: &Path) -> Command {
    let mut cmd = tonbo_testkit::front_door(&bin("tonbo-ingest"), home);
    cmd.env_remove("GEMINI_CLI_HOME")
        .args(["--from", "gemini-cli"])
        .args(from)
        .args(["--", "--api", api, "--state", state.to_str().unwrap()]);
    cmd
}

/// The keys per stream that a plain `gemini-read PATH | tonbo-map` maps to, sorted.
fn want(path: &Path) -> BTreeMap<String, Vec<String>> {
    events_by_session(&mapped_events("gemini-read", path))
        .into_iter()
        .map(|(session, events)| {
            let key = |e: &Value| e["metadata"]["source_key"].as_str().unwrap().to_string();
            let mut keys: Vec<String> = events.iter().map(key).collect();
            keys.sort();
            (session, keys)
        })
        .collect()
}

fn held(server: &RefServer, want: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    want.keys()
        .map(|stream| {
            let mut keys = server.keys(stream);
            keys.sort();
            (stream.clone(), keys)
        })
        .collect()
}

fn fixture(case: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/gemini")
        .join(case)
}

fn ok(r: &Run) {
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
}

#[test]
fn a_rerun_sends_nothing_and_the_server_holds_each_event_once() {
    let server = RefServer::start();
    let home = TempHome::new();
    let state = home.join("post.sqlite");
    let paths = [
        fixture("02-jsonl-replay"),
        fixture("04-subagent-commands"),
        fixture("01-json-legacy"),
    ];
    let mut want_all = BTreeMap::new();
    for path in &paths {
        let p = path.to_str().unwrap();
        ok(&tonbo_testkit::run(
            front_door(&home, &["--path", p], &server.url, &state),
            None,
        ));
        want_all.extend(want(path));
    }
    assert!(want_all.len() >= 4, "{want_all:?}");
    assert_eq!(held(&server, &want_all), want_all);
    for path in &paths {
        let p = path.to_str().unwrap();
        let again =
            tonbo_testkit::run(front_door(&home, &["--path", p], &server.url, &state), None);
        ok(&again);
        assert!(
            again.stderr.contains(" 0 events sent in 0 batches"),
            "{}",
            again.stderr
        );
    }
    assert_eq!(held(&server, &want_all), want_all);
}

const ID: &str = "e0e0e0e0-0000-4000-8000-000000000001";

fn line(kind: &str, id: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"{id}","timestamp":"2026-06-01T10:00:01.000Z","type":"{kind}","content":"text of {id}"{extra}}}"#
    )
}

fn call(status: &str, result: bool) -> String {
    let result = if result {
        r#","result":[{"functionResponse":{"id":"c1","name":"ls","response":{"output":"a b"}}}]"#
    } else {
        ""
    };
    format!(
        r#","toolCalls":[{{"id":"c1","name":"ls","args":{{}},"status":"{status}","timestamp":"2026-06-01T10:00:02.000Z"{result}}}]"#
    )
}

fn wait_for(server: &RefServer, stream: &str, key: &str, door: &mut std::process::Child) {
    let start = Instant::now();
    while !server.keys(stream).iter().any(|k| k == key) {
        assert!(
            door.try_wait().unwrap().is_none(),
            "the front door ended waiting for {key}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {key}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_followed_chat_rewritten_as_it_grows_lands_once() {
    let server = RefServer::start();
    let home = TempHome::new();
    let state = home.join("post.sqlite");
    let gemini = home.join(".gemini");
    let file = gemini.join("tmp/p/chats/session-2026-06-01T10-00-e0e0e0e0.jsonl");
    let meta = format!(
        r#"{{"sessionId":"{ID}","projectHash":"p","startTime":"2026-06-01T10:00:00.000Z","lastUpdated":"2026-06-01T10:00:00.000Z"}}"#
    );
    put(&file, format!("{meta}\n{}\n", line("user", "u1", "")));
    let stream = format!("gemini-cli-{ID}");
    let g = gemini.to_str().unwrap();
    let mut door = tonbo_testkit::start(
        front_door(&home, &["--path", g, "--watch"], &server.url, &state),
        None,
    );
    wait_for(&server, &stream, "u1/prompt", &mut door.child);
    // The model turn: its call first, then (the same message id again) its result and tokens.
    append(
        &file,
        format!("{}\n", line("gemini", "g1", &call("executing", false))),
    );
    wait_for(&server, &stream, "g1/tool/c1", &mut door.child);
    let grown =
        call("success", true) + r#","tokens":{"input":10,"output":2,"cached":0,"total":12}"#;
    append(
        &file,
        format!(
            "{}\n{}\n",
            line("gemini", "g1", &grown),
            line("user", "u2", "")
        ),
    );
    wait_for(&server, &stream, "g1/result/c1", &mut door.child);
    signal(&door.child, "-TERM");
    let r = door
        .finish_within(Duration::from_secs(60))
        .expect("the front door did not stop");
    ok(&r);
    let want = want(&gemini);
    assert_eq!(held(&server, &want), want, "{}", r.stderr);
    let again = tonbo_testkit::run(front_door(&home, &["--path", g], &server.url, &state), None);
    ok(&again);
    assert!(
        again.stderr.contains(" 0 events sent in 0 batches"),
        "{}",
        again.stderr
    );
}
