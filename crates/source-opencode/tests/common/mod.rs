//! Shared by the integration tests: the schemas OpenCode and Crush create (source-opencode's
//! FORMAT.md), the command that runs the binary away from the machine's own sessions, and the
//! records it writes, checked and outlined.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_opencode-read");

pub const G1_SCHEMA: &str = "
CREATE TABLE sessions (id TEXT PRIMARY KEY, parent_session_id TEXT, title TEXT NOT NULL,
  message_count INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0.0,
  updated_at INTEGER NOT NULL, created_at INTEGER NOT NULL, summary_message_id TEXT);
CREATE TABLE messages (id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  role TEXT NOT NULL, parts TEXT NOT NULL DEFAULT '[]', model TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER);
CREATE TABLE files (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, path TEXT NOT NULL, content TEXT NOT NULL,
  version TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE(path, session_id, version));
CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY, version_id INTEGER, is_applied INTEGER);
";

/// The triggers of opencode-ai/opencode's initial migration: a message insert counts it in
/// `sessions`, an update of a row stamps its `updated_at`.
pub const G1_TRIGGERS: &str = "
CREATE TRIGGER update_sessions_updated_at AFTER UPDATE ON sessions
BEGIN UPDATE sessions SET updated_at = strftime('%s', 'now') WHERE id = new.id; END;
CREATE TRIGGER update_messages_updated_at AFTER UPDATE ON messages
BEGIN UPDATE messages SET updated_at = strftime('%s', 'now') WHERE id = new.id; END;
CREATE TRIGGER update_session_message_count_on_insert AFTER INSERT ON messages
BEGIN UPDATE sessions SET message_count = message_count + 1 WHERE id = new.session_id; END;
";

/// G1 plus Crush's later migrations.
pub fn g2_schema() -> String {
    format!(
        "{G1_SCHEMA}
        ALTER TABLE messages ADD COLUMN provider TEXT;
        ALTER TABLE messages ADD COLUMN is_summary_message INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN todos TEXT;
        CREATE TABLE read_files (session_id TEXT, path TEXT, read_at INTEGER);"
    )
}

pub const T2_SCHEMA: &str = "
CREATE TABLE __drizzle_migrations (id INTEGER PRIMARY KEY, hash text NOT NULL, created_at numeric);
CREATE TABLE project (id text PRIMARY KEY, worktree text NOT NULL, vcs text, name text,
  time_created integer NOT NULL, time_updated integer NOT NULL, time_initialized integer, sandboxes text NOT NULL);
CREATE TABLE session (id text PRIMARY KEY, project_id text NOT NULL REFERENCES project(id) ON DELETE CASCADE,
  parent_id text, slug text NOT NULL, directory text NOT NULL, title text NOT NULL, version text NOT NULL,
  share_url text, summary_additions integer, summary_deletions integer, summary_files integer, summary_diffs text,
  revert text, permission text, time_created integer NOT NULL, time_updated integer NOT NULL,
  time_compacting integer, time_archived integer);
CREATE TABLE message (id text PRIMARY KEY, session_id text NOT NULL REFERENCES session(id) ON DELETE CASCADE,
  time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL);
CREATE TABLE part (id text PRIMARY KEY, message_id text NOT NULL REFERENCES message(id) ON DELETE CASCADE,
  session_id text NOT NULL, time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL);
CREATE INDEX message_session_idx ON message(session_id, time_created, id);
CREATE INDEX part_message_idx ON part(message_id, id);
CREATE TABLE todo (session_id text NOT NULL, content text NOT NULL, status text NOT NULL,
  priority text NOT NULL, position integer NOT NULL, PRIMARY KEY(session_id, position));
INSERT INTO project VALUES ('global', '/', NULL, NULL, 1, 1, NULL, '[]');
";

pub const T3_SCHEMA: &str = "
CREATE TABLE session_v2 (id text PRIMARY KEY, project_id text NOT NULL, workspace_id text, parent_id text,
  fork_session_id text, fork_boundary text, slug text NOT NULL, directory text NOT NULL, path text,
  title text, version text NOT NULL, metadata text, cost real, tokens_input integer,
  tokens_output integer, tokens_reasoning integer, tokens_cache_read integer, tokens_cache_write integer,
  revert text, agent text, model text, time_created integer NOT NULL, time_updated integer NOT NULL,
  time_compacting integer, time_archived integer);
CREATE TABLE session_message (id text PRIMARY KEY, session_id text NOT NULL, type text NOT NULL,
  seq integer NOT NULL, time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL);
CREATE UNIQUE INDEX session_message_session_seq_idx ON session_message(session_id, seq);
";

/// `opencode-read ARGS` in `cwd`, with `home` as HOME and none of the variables that would
/// point it elsewhere (but `env`); stdin closed.
pub fn command(cwd: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let unset = [
        "XDG_DATA_HOME",
        "OPENCODE_DB",
        "CRUSH_GLOBAL_DATA",
        "OPENCODE_READ_BUSY_TIMEOUT_MS",
    ];
    let mut cmd = tonbo_testkit::reader::command(BIN, home, &unset);
    cmd.args(args).current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A line of stdout, read by the contract's own type, as JSON.
pub fn record(line: &str) -> Value {
    let _: tonbo_core::SourceRecord =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a source record ({e}): {line}"));
    serde_json::from_str(line).unwrap()
}

/// One short line per record: `S <session> <layout>` or `M <session> <layout> <message id>
/// <parts>`.
pub fn outline(r: &Value) -> String {
    assert_eq!(r["v"], 1);
    assert_eq!(r["source"], "opencode");
    let session = r["session"].as_str().unwrap();
    let layout = r["record"]["layout"].as_str().unwrap();
    match r["kind"].as_str().unwrap() {
        "session" => format!("S {session} {layout}"),
        "message" => format!(
            "M {session} {layout} {} {}",
            r["record"]["message"]["id"].as_str().unwrap(),
            r["record"]["parts"].as_array().unwrap().len()
        ),
        k => panic!("unexpected kind {k}"),
    }
}
