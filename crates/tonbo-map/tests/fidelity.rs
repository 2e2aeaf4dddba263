//! The rules every source's mapping keeps, checked over every fixture of every source (read by
//! the real readers, mapped by the real `tonbo-map`): what a person reading the sessions
//! afterwards relies on, whatever harness wrote them.

mod common;

use common::*;
use serde_json::Value;

fn text_of(block: &Value) -> Option<&str> {
    (block["type"] == "text")
        .then(|| block["text"].as_str())
        .flatten()
}

#[test]
fn no_blank_agent_message() {
    for (source, case, run) in every_fixture() {
        for e in &run.events {
            let ev = &e["event"];
            if ev["type"] != "agent.message" {
                continue;
            }
            let blocks = ev["content"].as_array().expect("content is an array");
            assert!(
                blocks
                    .iter()
                    .any(|b| text_of(b).is_none_or(|t| !t.trim().is_empty())),
                "{source}/{case}: {}: a blank agent.message",
                ev["metadata"]["source_key"]
            );
        }
    }
}

#[test]
fn every_event_has_a_time_once_its_session_had_one() {
    for (source, case, run) in every_fixture() {
        let mut timed = std::collections::HashSet::new();
        for e in &run.events {
            let session = e["session_id"].as_str().unwrap();
            let ev = &e["event"];
            let m = &ev["metadata"];
            let key = &m["source_key"];
            match m["original_timestamp"].as_str() {
                Some(ts) => {
                    assert_eq!(ev["processed_at"], ts, "{source}/{case}: {key}");
                    timed.insert(session);
                }
                None => {
                    assert!(
                        !timed.contains(session),
                        "{source}/{case}: {key}: no time, after events of its session that had one"
                    );
                    assert!(ev.get("processed_at").is_none(), "{source}/{case}: {key}");
                }
            }
            if m["timestamp_inherited"] == true {
                assert!(
                    m["original_timestamp"].is_string(),
                    "{source}/{case}: {key}"
                );
            }
        }
    }
}
