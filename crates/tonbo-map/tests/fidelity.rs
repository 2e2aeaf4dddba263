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
