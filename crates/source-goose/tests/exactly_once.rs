//! Goose through the whole pipeline into the real reference server, twice:
//! `tonbo-ingest --from goose --db DIR` (goose-read | tonbo-map | tonbo-batch | tonbo-post).
//! The server holds every event the mapping gives exactly once, and the second run sends
//! nothing: the keys are stable across reads.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tonbo_testkit::server::RefServer;
use tonbo_testkit::{bin, front_door, run, workspace_root};

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

/// The keys `goose-read DIR | tonbo-map` gives, by stream.
fn mapped_keys(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let read = run(
        {
            let mut c = Command::new(bin("goose-read"));
            c.arg(dir);
            c
        },
        None,
    );
    let mapped = run(Command::new(bin("tonbo-map")), Some(read.stdout.as_bytes()));
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in mapped.stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = v["event"]["metadata"]["source_key"]
            .as_str()
            .unwrap()
            .to_string();
        keys.entry(v["session_id"].as_str().unwrap().to_string())
            .or_default()
            .push(key);
    }
    keys
}

#[test]
fn every_event_is_on_the_server_once_and_a_rerun_sends_nothing() {
    let server = RefServer::start();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("goose-data");
    build("01-sqlite-v9", &data.join("a"));
    build("02-legacy-jsonl", &data.join("b"));
    let want = mapped_keys(&data);
    assert!(want.len() >= 5, "{want:?}");
    let state = home.path().join("post.sqlite");
    let args = [
        "--from",
        "goose",
        "--db",
        data.to_str().unwrap(),
        "--",
        "--api",
        &server.url,
        "--state",
        state.to_str().unwrap(),
    ];
    let door = bin("tonbo-ingest");
    let first = run(
        {
            let mut c = front_door(&door, home.path());
            c.args(args);
            c
        },
        None,
    );
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    for (stream, keys) in &want {
        assert_eq!(&server.keys(stream), keys, "{stream}");
    }
    let again = run(
        {
            let mut c = front_door(&door, home.path());
            c.args(args);
            c
        },
        None,
    );
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stderr.contains(" 0 events sent in 0 batches"),
        "{}",
        again.stderr
    );
    for (stream, keys) in &want {
        assert_eq!(&server.keys(stream), keys, "{stream}");
    }
}
