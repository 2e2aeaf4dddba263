//! Goose through the whole pipeline into the real reference server, twice:
//! `tonbo-ingest --from goose --db DIR` (goose-read | tonbo-map | tonbo-batch | tonbo-post).
//! The server holds every event the mapping gives exactly once, and the second run sends
//! nothing: the keys are stable across reads.

use std::path::Path;

use tonbo_testkit::events::mapped_keys;
use tonbo_testkit::server::RefServer;
use tonbo_testkit::{front_door_to, run, workspace_root};

/// The fixture `case`'s SQL built into `into/sessions/sessions.db`, its `.jsonl` files copied.
fn build(case: &str, into: &Path) {
    let from = workspace_root()
        .join("testdata/goose")
        .join(case)
        .join("data/sessions");
    let to = into.join("sessions");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "sql") {
            let conn = rusqlite::Connection::open(to.join("sessions.db")).unwrap();
            conn.execute_batch(&std::fs::read_to_string(&p).unwrap())
                .unwrap();
        } else {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn every_event_is_on_the_server_once_and_a_rerun_sends_nothing() {
    let server = RefServer::start();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("goose-data");
    build("01-sqlite-v9", &data.join("a"));
    build("02-legacy-jsonl", &data.join("b"));
    let want = mapped_keys("goose-read", &data);
    assert!(want.len() >= 5, "{want:?}");
    let state = home.path().join("post.sqlite");
    let from = ["--from", "goose", "--db", data.to_str().unwrap()];
    let first = run(front_door_to(home.path(), &from, &server.url, &state), None);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    server.assert_holds(&want);
    let again = run(front_door_to(home.path(), &from, &server.url, &state), None);
    again.assert_sent_nothing();
    server.assert_holds(&want);
}
