//! End to end through the front door and the reference server: `tonbo-ingest --from cline`
//! (cline-read | tonbo-map | tonbo-batch | tonbo-post, the real binaries) over a copy of every
//! fixture delivers each event once; a second run sends nothing again; after a checkpoint
//! restore (the API history truncated, then new messages at the old positions) a run adds
//! exactly the new messages' events and repeats none.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

use tonbo_testkit::events::mapped_keys;
use tonbo_testkit::server::RefServer;
use tonbo_testkit::{front_door_to, workspace_root, Run};

const NATIVE_TASK: &str =
    "02-cline-native/Code/User/globalStorage/saoudrizwan.claude-dev/tasks/1762077600000";

fn ingest(home: &Path, data: &Path, server: &RefServer) -> Run {
    let from = ["--from", "cline", "--path", data.to_str().unwrap()];
    let state = home.join("post.sqlite");
    let r = tonbo_testkit::run(front_door_to(home, &from, &server.url, &state), None);
    r.assert_code(0);
    r
}

/// Every session's stream holds exactly `want`'s keys, each once.
fn assert_on_server(server: &RefServer, want: &BTreeMap<String, Vec<String>>) {
    for (session, keys) in want {
        let got = server.keys(session);
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{session}: a key twice: {got:?}");
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want_sorted = keys.clone();
        want_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "{session}");
    }
}

#[test]
fn every_event_once_across_reruns_and_a_checkpoint_restore() {
    let server = RefServer::start();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("cline");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(workspace_root().join("testdata/cline"))
        .arg(&data)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let want = mapped_keys("cline-read", &data);
    assert!(want.len() >= 5, "{want:?}");
    ingest(home.path(), &data, &server);
    assert_on_server(&server, &want);
    ingest(home.path(), &data, &server);
    assert_on_server(&server, &want);

    // Restored to the second message, then the task went on: two new messages.
    let api = data.join(NATIVE_TASK).join("api_conversation_history.json");
    let mut messages: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&api).unwrap()).unwrap();
    messages.truncate(2);
    messages.push(serde_json::json!({"role":"user","content":[{"type":"text","text":"<feedback>\nsomething else\n</feedback>"}],"ts":1762090000000_u64}));
    messages.push(serde_json::json!({"role":"assistant","content":[{"type":"text","text":"On it."}],"ts":1762090005000_u64}));
    std::fs::write(&api, serde_json::to_string(&messages).unwrap()).unwrap();
    let after = mapped_keys("cline-read", &data);
    ingest(home.path(), &data, &server);
    let session = "cline-1762077600000";
    let mut expected = want.clone();
    // What was sent stays; the new messages' events are added.
    let new: Vec<String> = after[session]
        .iter()
        .filter(|k| !want[session].contains(k))
        .cloned()
        .collect();
    assert_eq!(new.len(), 2, "{new:?}");
    expected.get_mut(session).unwrap().extend(new);
    assert_on_server(&server, &expected);
    ingest(home.path(), &data, &server);
    assert_on_server(&server, &expected);
}
