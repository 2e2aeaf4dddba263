//! Exactly once, end to end: the real front door (`tonbo-ingest --from cursor --db ...`, which
//! runs `cursor-read | tonbo-map | tonbo-batch | tonbo-post`) into the real reference server. A
//! re-run sends nothing; a followed chat whose tool call gets its result later leaves every event
//! of the final chat on the server exactly once, and a plain run after it sends nothing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tonbo_testkit::events::{events_by_session, mapped_events};
use tonbo_testkit::reader::TempHome;
use tonbo_testkit::server::RefServer;
use tonbo_testkit::{bin, signal, Run};

fn front_door(home: &Path, from: &[&str], api: &str, state: &Path) -> Command {
    let mut cmd = tonbo_testkit::front_door(&bin("tonbo-ingest"), home);
    cmd.args(["--from", "cursor"]).args(from).args([
        "--",
        "--api",
        api,
        "--state",
        state.to_str().unwrap(),
    ]);
    cmd
}

/// The keys per stream that a plain `cursor-read PATH | tonbo-map` maps to, sorted.
fn want(path: &Path) -> BTreeMap<String, Vec<String>> {
    events_by_session(&mapped_events("cursor-read", path))
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

fn ok(r: &Run) {
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
}

fn sent_nothing(r: &Run) {
    ok(r);
    assert!(
        r.stderr.contains(" 0 events sent in 0 batches"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_rerun_sends_nothing_and_the_server_holds_each_event_once() {
    let server = RefServer::start();
    let home = TempHome::new();
    let state = home.join("post.sqlite");
    let mut want_all = BTreeMap::new();
    let mut paths = Vec::new();
    for case in ["01-bubble-rows", "02-inline-conversation"] {
        let path = fixture(case, &home.join(case));
        let p = path.to_str().unwrap().to_string();
        ok(&tonbo_testkit::run(
            front_door(&home, &["--db", &p], &server.url, &state),
            None,
        ));
        want_all.extend(want(&path));
        paths.push(p);
    }
    assert_eq!(want_all.len(), 2, "{want_all:?}");
    assert_eq!(held(&server, &want_all), want_all);
    for p in &paths {
        sent_nothing(&tonbo_testkit::run(
            front_door(&home, &["--db", p], &server.url, &state),
            None,
        ));
    }
    assert_eq!(held(&server, &want_all), want_all);
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
fn a_followed_chat_whose_tool_call_gets_its_result_later_lands_once() {
    let server = RefServer::start();
    let home = TempHome::new();
    let state = home.join("post.sqlite");
    let dir = home.join("User");
    let mut live = Live::new(&dir);
    live.bubble("u1", user("u1", "list the files"));
    let stream = format!("cursor-{CHAT}");
    let d = dir.to_str().unwrap();
    let mut door = tonbo_testkit::start(
        front_door(&home, &["--db", d, "--watch"], &server.url, &state),
        None,
    );
    wait_for(&server, &stream, "u1/prompt", &mut door.child);
    live.bubble("t1", tool("t1", "loading"));
    wait_for(&server, &stream, "t1/tool", &mut door.child);
    live.bubble("t1", tool("t1", "completed"));
    live.bubble("a1", answer("a1", "src/ and Cargo.toml."));
    wait_for(&server, &stream, "a1/text", &mut door.child);
    signal(&door.child, "-TERM");
    let r = door
        .finish_within(Duration::from_secs(60))
        .expect("the front door did not stop");
    ok(&r);
    let want = want(&dir);
    assert_eq!(
        want[&stream],
        ["a1/text", "t1/result", "t1/tool", "u1/prompt"]
    );
    assert_eq!(held(&server, &want), want, "{}", r.stderr);
    sent_nothing(&tonbo_testkit::run(
        front_door(&home, &["--db", d], &server.url, &state),
        None,
    ));
    drop(live);
}
