//! What the tests of the event stages (tonbo-map, tonbo-batch, the front door) share: reading
//! event lines back by session, an OpenCode database's tables, the rejected lines a stage
//! reports, and planted secrets with the checks that none of them got through.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::bin;

/// The tables of an OpenCode database (the T2 layout, `opencode.db`), for a test that writes
/// its own rows into them.
pub const OPENCODE_T2_TABLES: &str = "
CREATE TABLE project (id text PRIMARY KEY, worktree text NOT NULL, vcs text, name text,
  time_created integer NOT NULL, time_updated integer NOT NULL, time_initialized integer, sandboxes text NOT NULL);
CREATE TABLE session (id text PRIMARY KEY, project_id text NOT NULL, parent_id text, slug text NOT NULL,
  directory text NOT NULL, title text NOT NULL, version text NOT NULL, share_url text,
  summary_additions integer, summary_deletions integer, summary_files integer, summary_diffs text,
  revert text, permission text, time_created integer NOT NULL, time_updated integer NOT NULL,
  time_compacting integer, time_archived integer);
CREATE TABLE message (id text PRIMARY KEY, session_id text NOT NULL, time_created integer NOT NULL,
  time_updated integer NOT NULL, data text NOT NULL);
CREATE TABLE part (id text PRIMARY KEY, message_id text NOT NULL, session_id text NOT NULL,
  time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL);
";

/// tonbo-map's event lines for what `READER -q PATH` reads: two real processes and a real pipe,
/// both of which must succeed.
pub fn mapped_events(reader: &str, path: &Path) -> String {
    let mut read = Command::new(bin(reader))
        .arg("-q")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {reader}: {e}"));
    let map = Command::new(bin("tonbo-map"))
        .arg("-q")
        .stdin(read.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(
        read.wait().unwrap().success(),
        "{reader} {}",
        path.display()
    );
    assert!(
        map.status.success(),
        "tonbo-map after {reader} {}",
        path.display()
    );
    String::from_utf8(map.stdout).unwrap()
}

/// The events of event lines (`{"v":1,"session_id":..,"event":{..}}`, as tonbo-map writes
/// them), by session, each session's in order.
pub fn events_by_session(lines: &str) -> BTreeMap<String, Vec<Value>> {
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in lines.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not an event line ({e}): {line}"));
        let session = v["session_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no session_id: {line}"));
        by.entry(session.to_string())
            .or_default()
            .push(v["event"].clone());
    }
    by
}
