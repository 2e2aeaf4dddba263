//! Exactly-once through the real reference server: `tonbo-ingest --from qwen-code` (qwen-read |
//! tonbo-map | tonbo-batch | tonbo-post) over the Qwen Code fixtures, twice, and again after a
//! session grew: the server holds every mapped event once, in the fixtures' order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tonbo_testkit::server::RefServer;
use tonbo_testkit::{front_door_to, run};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copies the store of the fixture `case` into `into/<case>`.
fn copy_fixture(case: &str, into: &Path) -> PathBuf {
    let from = workspace().join("testdata/qwen").join(case).join("qwen");
    let to = into.join(case);
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&from).unwrap();
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(to.join(rel)).unwrap();
        } else {
            std::fs::copy(entry.path(), to.join(rel)).unwrap();
        }
    }
    to
}

/// The keys each stream should hold: the fixture's expected events, in order.
fn expected_keys(case: &str) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(
        workspace()
            .join("testdata/qwen")
            .join(case)
            .join("expected.ndjson"),
    )
    .unwrap();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let sid = e["session_id"].as_str().unwrap().to_string();
        let key = e["event"]["metadata"]["source_key"]
            .as_str()
            .unwrap()
            .to_string();
        keys.entry(sid).or_default().push(key);
    }
    keys
}

fn ingest(home: &Path, path: &Path, server: &RefServer, state: &Path) -> tonbo_testkit::Run {
    let from = ["--from", "qwen-code", "--path", path.to_str().unwrap()];
    run(front_door_to(home, &from, &server.url, state), None)
}

#[test]
fn twice_and_after_growth_every_event_is_on_the_server_once() {
    let server = RefServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("post.sqlite");
    let case = "02-current";
    let store = copy_fixture(case, tmp.path());
    let want = expected_keys(case);

    let first = ingest(tmp.path(), &store, &server, &state);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let second = ingest(tmp.path(), &store, &server, &state);
    second.assert_sent_nothing();
    server.assert_holds(&want);

    // The session grows by one assistant turn: only its events are sent.
    let file = walkdir::WalkDir::new(&store)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    tonbo_testkit::reader::append(
        &file,
        "{\"uuid\":\"z1\",\"parentUuid\":\"r1\",\"sessionId\":\"0a1b2c3d-0002-4e5f-8a9b-000000000002\",\"timestamp\":\"2026-11-20T14:01:00.000Z\",\"type\":\"assistant\",\"cwd\":\"/home/dev/shop\",\"version\":\"0.18.0\",\"model\":\"qwen3-coder-plus\",\"message\":{\"role\":\"model\",\"parts\":[{\"text\":\"Anything else?\"}]}}\n",
    );
    let third = ingest(tmp.path(), &store, &server, &state);
    assert_eq!(third.code, Some(0), "{}", third.stderr);
    assert!(third.stderr.contains(" 1 events sent"), "{}", third.stderr);
    let (sid, keys) = want.iter().next().unwrap();
    let mut grown = keys.clone();
    grown.push("z1#0".to_string());
    assert_eq!(&server.keys(sid), &grown);
}
