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

#[test]
fn every_user_message_says_who_wrote_it() {
    for (source, case, run) in every_fixture() {
        for e in &run.events {
            let ev = &e["event"];
            if ev["type"] != "user.message" {
                continue;
            }
            let author = ev["metadata"]["author"].as_str();
            assert!(
                matches!(author, Some("human" | "agent" | "external")),
                "{source}/{case}: {}: author {author:?}",
                ev["metadata"]["source_key"]
            );
            // A sub-session's prompts are its parent agent's.
            if ev["session_thread_id"].is_string() && ev["metadata"]["origin_kind"] != "human" {
                assert_eq!(author, Some("agent"), "{source}/{case}: {ev}");
            }
        }
    }
}

#[test]
fn every_sub_session_is_linked_to_its_parent_the_same_way() {
    use std::collections::HashMap;
    for (source, case, run) in every_fixture() {
        // (parent stream, thread id) -> the stream that holds the thread.
        let mut announced: HashMap<(String, String), String> = HashMap::new();
        for e in &run.events {
            let ev = &e["event"];
            if ev["type"] == "session.thread_created" {
                let child = ev["metadata"]["child_session_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{source}/{case}: no child_session_id: {ev}"));
                announced.insert(
                    (
                        e["session_id"].as_str().unwrap().to_string(),
                        ev["session_thread_id"].as_str().unwrap().to_string(),
                    ),
                    child.to_string(),
                );
                assert!(
                    ev["metadata"].get("parent_session_id").is_none(),
                    "{source}/{case}: {ev}"
                );
            }
        }
        for e in &run.events {
            let ev = &e["event"];
            let Some(thread) = ev["session_thread_id"].as_str() else {
                continue;
            };
            if ev["type"] == "session.thread_created" {
                continue;
            }
            let parent = ev["metadata"]["parent_session_id"]
                .as_str()
                .unwrap_or_else(|| {
                    panic!("{source}/{case}: a thread's event without parent_session_id: {ev}")
                });
            let holder = announced
                .get(&(parent.to_string(), thread.to_string()))
                .unwrap_or_else(|| {
                    panic!("{source}/{case}: thread {thread} not announced in {parent}")
                });
            assert_eq!(
                holder,
                e["session_id"].as_str().unwrap(),
                "{source}/{case}: {ev}"
            );
        }
    }
}
