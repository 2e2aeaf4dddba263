//! A `--follow` reader interleaves the sessions being written, where a backfill brings each
//! session's records together. Every fixture of every source, its records dealt out one session
//! at a time in turn, must map to the events the records map to in order: the same events per
//! session (Codex CLI, OpenCode, Qwen Code; a sub-session's announcement in its parent's stream
//! goes where the child was met), and for Claude Code the same keys, since an API response split
//! by another session's records has its span closed at the split, with the usage seen so far.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use serde_json::Value;
use tonbo_testkit::events::{events_by_session, OPENCODE_T2_TABLES};

/// The reader's records of every fixture of a source, in order.
fn records(reader: &str, source_dir: &str) -> Vec<String> {
    if reader == "opencode-read" {
        return opencode_records();
    }
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(root().join("testdata").join(source_dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for d in dirs {
        let input = d.join("input");
        let path = if input.exists() { input } else { d };
        out.extend(owned_lines(&run_quiet(reader, &path).stdout));
    }
    out
}

/// Two OpenCode sessions (the second a child of the first) of three messages each, from a T2
/// database: the session record carries the directory and the parent every message maps with.
fn opencode_records() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opencode.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut sql = String::from(OPENCODE_T2_TABLES);
    sql.push_str("
INSERT INTO project VALUES ('p', '/work/p', NULL, NULL, 1, 1, NULL, '[]');
INSERT INTO session (id, project_id, parent_id, slug, directory, title, version, time_created, time_updated)
  VALUES ('ses_a', 'p', NULL, 'a', '/work/p', 'A', '1.2.6', 1000, 1000),
         ('ses_b', 'p', 'ses_a', 'b', '/work/p/sub', 'B', '1.2.6', 1001, 1001);
");
    for (s, base) in [("ses_a", 2000), ("ses_b", 3000)] {
        for i in 0..3 {
            let t = base + i * 10;
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            sql.push_str(&format!(
                "INSERT INTO message VALUES ('{s}_m{i}', '{s}', {t}, {t}, '{{\"role\":\"{role}\",\"time\":{{\"created\":{t},\"completed\":{t}}}}}');
                 INSERT INTO part VALUES ('{s}_p{i}', '{s}_m{i}', '{s}', {t}, {t}, '{{\"type\":\"text\",\"text\":\"{s} {i}\"}}');"
            ));
        }
    }
    conn.execute_batch(&sql).unwrap();
    drop(conn);
    owned_lines(&run_quiet("opencode-read", &db).stdout)
}

/// Deals the records out one session at a time in turn, each session's in its own order.
fn interleave(recs: &[String]) -> Vec<String> {
    let mut by_session: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in recs {
        let v: Value = serde_json::from_str(r).unwrap();
        let s = v["session"].as_str().unwrap_or("").to_string();
        by_session.entry(s).or_default().push(r.clone());
    }
    let mut queues: Vec<std::collections::VecDeque<String>> =
        by_session.into_values().map(Into::into).collect();
    let mut out = Vec::new();
    while queues.iter().any(|q| !q.is_empty()) {
        for q in &mut queues {
            if let Some(r) = q.pop_front() {
                out.push(r);
            }
        }
    }
    out
}

/// tonbo-map's events for the records, by session, in order.
fn map(recs: &[String]) -> BTreeMap<String, Vec<Value>> {
    let mut cmd = Command::new(bin("tonbo-map"));
    cmd.arg("-q");
    let input: String = recs.iter().map(|r| format!("{r}\n")).collect();
    events_by_session(&tonbo_testkit::run(cmd, Some(input.as_bytes())).stdout)
}

fn check(reader: &str, dir: &str, exact: bool) {
    let recs = records(reader, dir);
    let mixed = interleave(&recs);
    assert_ne!(recs, mixed, "{dir}: the fixtures hold one session only");
    let (plain, followed) = (map(&recs), map(&mixed));
    assert!(!plain.is_empty());
    assert_eq!(
        plain.keys().collect::<Vec<_>>(),
        followed.keys().collect::<Vec<_>>()
    );
    for (session, want) in &plain {
        let got = &followed[session];
        if exact {
            // A sub-session's announcement (`session.thread_created`, written into its parent's
            // stream when the child's record is met) lands where the child was met: the same
            // events, and the parent's own in the same order.
            let own = |evs: &[Value]| -> Vec<Value> {
                evs.iter()
                    .filter(|e| e["type"] != "session.thread_created")
                    .cloned()
                    .collect()
            };
            let announced = |evs: &[Value]| -> Vec<String> {
                let mut v: Vec<String> = evs
                    .iter()
                    .filter(|e| e["type"] == "session.thread_created")
                    .map(Value::to_string)
                    .collect();
                v.sort();
                v
            };
            assert_eq!(own(got), own(want), "{session}");
            assert_eq!(announced(got), announced(want), "{session}");
        } else {
            let keys = |evs: &[Value]| {
                let mut k: Vec<String> = evs
                    .iter()
                    .map(|e| e["metadata"]["source_key"].as_str().unwrap().to_string())
                    .collect();
                k.sort();
                k
            };
            assert_eq!(keys(got), keys(want), "{session}");
        }
    }
}

#[test]
fn interleaved_opencode_sessions_map_as_their_backfill() {
    check("opencode-read", "opencode", true);
}

#[test]
fn interleaved_codex_sessions_map_as_their_backfill() {
    check("codex-read", "codex", true);
}

#[test]
fn interleaved_claude_sessions_map_to_the_same_keys() {
    check("claude-read", "claude", false);
}

#[test]
fn interleaved_qwen_sessions_map_as_their_backfill() {
    check("qwen-read", "qwen", true);
}
