//! Exactly once, end to end: the real front door (`tonbo-ingest --from gemini-cli`, which runs
//! `gemini-read | tonbo-map | tonbo-batch | tonbo-post`) into the real reference server. A
//! re-run sends nothing; a followed chat whose messages are rewritten as they grow leaves every
//! event of the final chat on the server exactly once, and a plain run after it sends nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tonbo_testkit::events::mapped_keys_sorted;
use tonbo_testkit::reader::{append, put, TempHome};
use tonbo_testkit::server::RefServer;
use tonbo_testkit::{front_door_to, signal};

fn front_door(home: &Path, from: &[&str], api: &str, state: &Path) -> Command {
    let mut cmd = front_door_to(
        home,
        &[&["--from", "gemini-cli"], from].concat(),
        api,
        state,
    );
    cmd.env_remove("GEMINI_CLI_HOME");
    cmd
}

fn fixture(case: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/gemini")
        .join(case)
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
        tonbo_testkit::run(front_door(&home, &["--path", p], &server.url, &state), None)
            .assert_code(0);
        want_all.extend(mapped_keys_sorted("gemini-read", path));
    }
    assert!(want_all.len() >= 4, "{want_all:?}");
    assert_eq!(server.keys_sorted_of(&want_all), want_all);
    for path in &paths {
        let p = path.to_str().unwrap();
        let again =
            tonbo_testkit::run(front_door(&home, &["--path", p], &server.url, &state), None);
        again.assert_sent_nothing();
    }
    assert_eq!(server.keys_sorted_of(&want_all), want_all);
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
    server.wait_for_key(&stream, "u1/prompt", &mut door.child);
    // The model turn: its call first, then (the same message id again) its result and tokens.
    append(
        &file,
        format!("{}\n", line("gemini", "g1", &call("executing", false))),
    );
    server.wait_for_key(&stream, "g1/tool/c1", &mut door.child);
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
    server.wait_for_key(&stream, "g1/result/c1", &mut door.child);
    signal(&door.child, "-TERM");
    let r = door
        .finish_within(Duration::from_secs(60))
        .expect("the front door did not stop");
    r.assert_code(0);
    let want = mapped_keys_sorted("gemini-read", &gemini);
    assert_eq!(server.keys_sorted_of(&want), want, "{}", r.stderr);
    let again = tonbo_testkit::run(front_door(&home, &["--path", g], &server.url, &state), None);
    again.assert_sent_nothing();
}
