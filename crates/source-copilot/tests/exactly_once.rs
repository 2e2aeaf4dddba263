//! Exactly once, end to end: `tonbo-ingest --from copilot-cli` (copilot-read | tonbo-map |
//! tonbo-batch | tonbo-post) into the real reference server over a Copilot home holding every
//! fixture layout; the server holds each event once, in the mapping's order; a re-run sends
//! nothing; after the session grew, exactly the new events are sent.

use std::path::Path;

use tonbo_testkit::events::mapped_keys;
use tonbo_testkit::reader::append;
use tonbo_testkit::server::RefServer;
use tonbo_testkit::{front_door_to, workspace_root, Run};

const S1: &str = "3f6c2a1e-8b4d-4c7a-9e21-5d0f1b2c3a4e";

/// Copies `from` into `to`, folders and files.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn ingest(home: &Path, copilot: &Path, server: &RefServer) -> Run {
    let state = home.join("post.sqlite");
    let mut cmd = front_door_to(home, &["--from", "copilot-cli"], &server.url, &state);
    cmd.env("COPILOT_HOME", copilot);
    tonbo_testkit::run(cmd, None)
}

#[test]
fn every_event_reaches_the_server_once_and_a_rerun_sends_only_what_is_new() {
    let server = RefServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let copilot = home.join(".copilot");
    for case in ["01-events-turn", "02-flat-early", "03-legacy", "04-resumed"] {
        let fixture = workspace_root()
            .join("testdata/copilot-cli")
            .join(case)
            .join("copilot");
        copy_tree(&fixture, &copilot);
    }
    let want = mapped_keys("copilot-read", &copilot);
    assert_eq!(want.len(), 4, "{want:?}");

    let r = ingest(home, &copilot, &server);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    server.assert_holds(&want);

    let r = ingest(home, &copilot, &server);
    r.assert_sent_nothing();
    server.assert_holds(&want);

    // The session grows by a turn: only its events are sent.
    let file = copilot.join("session-state").join(S1).join("events.jsonl");
    append(
        &file,
        concat!(
            r#"{"type":"user.message","data":{"content":"now run the linter"},"id":"g1","timestamp":"2026-11-20T09:20:00.000Z","parentId":"e0016-0000-4000-8000-000000000000"}"#,
            "\n",
            r#"{"type":"assistant.message","data":{"messageId":"msg-9","content":"The linter is clean."},"id":"g2","timestamp":"2026-11-20T09:20:05.000Z","parentId":"g1"}"#,
            "\n"
        ),
    );
    let grown = mapped_keys("copilot-read", &copilot);
    let r = ingest(home, &copilot, &server);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains(" 2 events sent"), "{}", r.stderr);
    server.assert_holds(&grown);

    // Rewound: the file cut back to its first three lines, then a new event written where the
    // old fourth line was. Keys are event ids, so the new event is new to the server and
    // nothing kept is sent again (what the server holds of the cut events stays).
    let text = std::fs::read_to_string(&file).unwrap();
    let kept: Vec<&str> = text.lines().take(3).collect();
    let new = r#"{"type":"user.message","data":{"content":"try another way"},"id":"g3","timestamp":"2026-11-20T09:30:00.000Z","parentId":"e0003-0000-4000-8000-000000000000"}"#;
    std::fs::write(&file, format!("{}\n{new}\n", kept.join("\n"))).unwrap();
    let r = ingest(home, &copilot, &server);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains(" 1 events sent"), "{}", r.stderr);
    let stream = format!("copilot-cli-{S1}");
    let mut want = grown[&stream].clone();
    want.push(format!("{S1}/events.jsonl:g3#0"));
    assert_eq!(server.keys(&stream), want);
}
