//! The rules every source's mapping keeps, checked over every fixture of every source (read by
//! the real readers, mapped by the real `tonbo-map`): what a person reading the sessions
//! afterwards relies on, whatever harness wrote them.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value;

/// The text of a text block (which must have one); `None` for a block of another type.
fn text_of(block: &Value) -> Option<&str> {
    (block["type"] == "text").then(|| {
        block["text"]
            .as_str()
            .unwrap_or_else(|| panic!("a text block without its text: {block}"))
    })
}

#[test]
fn every_event_names_its_source_and_a_key_unique_in_its_session() {
    for (source, case, run) in every_fixture() {
        for (session, events) in run.by_session() {
            let mut keys = HashSet::new();
            for ev in events {
                let m = &ev["metadata"];
                let key = m["source_key"].as_str().unwrap();
                assert!(
                    keys.insert(key),
                    "{source}/{case}: {session}: key {key} twice"
                );
                assert_eq!(m["source"], source.name, "{source}/{case}: {key}");
            }
        }
    }
}

/// A tool result (an MCP tool result) follows the tool use (the MCP tool use) it answers, in
/// its session.
#[test]
fn every_tool_result_follows_its_call_in_its_session() {
    for (source, case, run) in every_fixture() {
        for events in run.by_session().values() {
            let (mut uses, mut mcp_uses) = (HashSet::new(), HashSet::new());
            for ev in events {
                let key = &ev["metadata"]["source_key"];
                let called = |id: &Value| id.as_str().unwrap().to_string();
                match ev["type"].as_str().unwrap() {
                    "agent.tool_use" => {
                        uses.insert(called(&ev["metadata"]["tool_use_id"]));
                    }
                    "agent.mcp_tool_use" => {
                        mcp_uses.insert(called(&ev["metadata"]["tool_use_id"]));
                    }
                    "agent.tool_result" => {
                        let id = called(&ev["tool_use_id"]);
                        assert!(
                            uses.contains(&id),
                            "{source}/{case}: {key}: result without its call {id}"
                        );
                    }
                    "agent.mcp_tool_result" => {
                        let id = called(&ev["mcp_tool_use_id"]);
                        assert!(
                            mcp_uses.contains(&id),
                            "{source}/{case}: {key}: result without its MCP call {id}"
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn no_blank_agent_message() {
    for (source, case, run) in every_fixture() {
        for e in run.of_type("agent.message") {
            let ev = &e["event"];
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
        for e in run.of_type("user.message") {
            let ev = &e["event"];
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

/// `READER --scan` lists, without reading them, every session a read maps events into: nothing
/// an ingest would send is missing from `tonbo-ingest scan`'s count. It may list more: a file
/// that holds only bookkeeping (Claude Code's summary-only files) is a session on disk that
/// gives no event of its own, and telling so would take reading it.
#[test]
fn a_scan_lists_the_sessions_every_fixture_maps() {
    for source in &SOURCES {
        for case in source.cases() {
            let tmp = tempfile::tempdir().unwrap();
            let paths = source.paths(&case, tmp.path());
            let run = read_and_map(source.reader, &paths);
            let mapped: std::collections::BTreeSet<String> =
                run.by_session().into_keys().map(str::to_string).collect();
            let scanned = tonbo_testkit::events::scanned_sessions(source.reader, &paths);
            let missing: Vec<_> = mapped.difference(&scanned).collect();
            assert!(
                missing.is_empty(),
                "{source}/{}: mapped, not scanned: {missing:?}",
                case.display()
            );
        }
    }
}
