//! Exactly once, end to end: the real front door (`tonbo-ingest --from cursor --db ...`, which
//! runs `cursor-read | tonbo-map | tonbo-batch | tonbo-post`) into the real reference server. A
//! re-run sends nothing; a followed chat whose tool call gets its result later leaves every event
//! of the final chat on the server exactly once, and a plain run after it sends nothing.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use tonbo_testkit::events::mapped_keys_sorted;
use tonbo_testkit::reader::TempHome;
use tonbo_testkit::server::RefServer;
use tonbo_testkit::{front_door_to, signal};

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
        tonbo_testkit::run(
            front_door_to(
                &home,
                &["--from", "cursor", "--db", &p],
                &server.url,
                &state,
            ),
            None,
        )
        .assert_code(0);
        want_all.extend(mapped_keys_sorted("cursor-read", &path));
        paths.push(p);
    }
    assert_eq!(want_all.len(), 2, "{want_all:?}");
    assert_eq!(server.keys_sorted_of(&want_all), want_all);
    for p in &paths {
        tonbo_testkit::run(
            front_door_to(&home, &["--from", "cursor", "--db", p], &server.url, &state),
            None,
        )
        .assert_sent_nothing();
    }
    assert_eq!(server.keys_sorted_of(&want_all), want_all);
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
        front_door_to(
            &home,
            &["--from", "cursor", "--db", d, "--watch"],
            &server.url,
            &state,
        ),
        None,
    );
    server.wait_for_key(&stream, "u1/prompt", &mut door.child);
    live.bubble("t1", tool("t1", "loading"));
    server.wait_for_key(&stream, "t1/tool", &mut door.child);
    live.bubble("t1", tool("t1", "completed"));
    live.bubble("a1", answer("a1", "src/ and Cargo.toml."));
    server.wait_for_key(&stream, "a1/text", &mut door.child);
    signal(&door.child, "-TERM");
    let r = door
        .finish_within(Duration::from_secs(60))
        .expect("the front door did not stop");
    r.assert_code(0);
    let want = mapped_keys_sorted("cursor-read", &dir);
    assert_eq!(
        want[&stream],
        ["a1/text", "t1/result", "t1/tool", "u1/prompt"]
    );
    assert_eq!(server.keys_sorted_of(&want), want, "{}", r.stderr);
    tonbo_testkit::run(
        front_door_to(&home, &["--from", "cursor", "--db", d], &server.url, &state),
        None,
    )
    .assert_sent_nothing();
    drop(live);
}
