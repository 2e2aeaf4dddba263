//! `tonbo-ingest scan` and `--root`, end to end: the real readers list what a copied home holds
//! (`READER --scan`), the front door tabulates it and warns about what Claude Code will delete,
//! and `--from all --root` delivers every agent's sessions found there to the reference server,
//! and nothing of the machine's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tonbo_testkit::events::{events_by_session, mapped_events, source_keys, OPENCODE_T2_TABLES};
use tonbo_testkit::reader::set_mtime;
use tonbo_testkit::server::RefServer as Server;
use tonbo_testkit::{workspace_root, Run};

const DOOR: &str = env!("CARGO_BIN_EXE_tonbo-ingest");
const PROJECT: &str = ".claude/projects/-home-dev-shop";
const DAY: Duration = Duration::from_secs(86_400);

fn cp(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let ok = Command::new("cp")
        .arg("-r")
        .arg(workspace_root().join(from))
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp {from}");
}

/// A copied home: three Claude Code sessions (one last written 12 days ago, one 5 days ago,
/// one now, with subagents) under `cleanupPeriodDays` 10, one Codex session, an OpenCode
/// database of one session, and one Copilot CLI session.
fn copied_home(root: &Path) {
    cp(
        "testdata/claude/06-subagents/projects",
        &root.join(".claude/projects"),
    );
    let project = root.join(PROJECT);
    for (fixture, age) in [("01-basic-turn", 12), ("03-tools", 5)] {
        let dir =
            workspace_root().join(format!("testdata/claude/{fixture}/projects/-home-dev-shop"));
        for file in std::fs::read_dir(dir).unwrap() {
            let file = file.unwrap().path();
            let copy = project.join(file.file_name().unwrap());
            std::fs::copy(&file, &copy).unwrap();
            set_mtime(&copy, SystemTime::now() - age * DAY);
        }
    }
    std::fs::write(
        root.join(".claude/settings.json"),
        r#"{"cleanupPeriodDays": 10}"#,
    )
    .unwrap();
    cp(
        "testdata/codex/01-v2-turn/sessions",
        &root.join(".codex/sessions"),
    );
    cp(
        "testdata/copilot-cli/01-events-turn/copilot/session-state",
        &root.join(".copilot/session-state"),
    );
    let db = root.join(".local/share/opencode/opencode.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(OPENCODE_T2_TABLES).unwrap();
    conn.execute_batch(
        r#"
INSERT INTO project VALUES ('global', '/', NULL, NULL, 1, 1, NULL, '[]');
INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated)
  VALUES ('ses_scan', 'global', 'slug', '/w', 'scanned', '1.2.6', 1000, 1000);
INSERT INTO message VALUES ('msg_1', 'ses_scan', 2000, 2000, '{"role":"user","time":{"created":2000}}');
INSERT INTO part VALUES ('prt_1', 'msg_1', 'ses_scan', 2000, 2000, '{"type":"text","text":"hello"}');
"#,
    )
    .unwrap();
}

/// The front door away from this machine's setup, in `cwd`, with a decoy Claude Code home in
/// CLAUDE_CONFIG_DIR that `--root` must not read.
fn door(cwd: &Path, decoy: &Path, args: &[&str]) -> Command {
    let mut cmd = tonbo_testkit::front_door(Path::new(DOOR), cwd);
    cmd.env("CLAUDE_CONFIG_DIR", decoy).args(args);
    cmd
}

fn decoy(tmp: &Path) -> PathBuf {
    let decoy = tmp.join("decoy");
    cp(
        "testdata/claude/10-who-wrote-it/projects",
        &decoy.join("projects"),
    );
    decoy
}

fn run(cmd: Command) -> Run {
    tonbo_testkit::run(cmd, None)
}

/// The sessions `READER PATH | tonbo-map` maps.
fn mapped_sessions(reader: &str, path: &Path) -> usize {
    events_by_session(&mapped_events(reader, path)).len()
}

#[test]
fn scan_tabulates_each_agent_under_a_root_and_warns_before_claude_code_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("copied-home");
    copied_home(&root);
    let decoy = decoy(tmp.path());
    let root_s = root.to_str().unwrap();

    let r = run(door(
        tmp.path(),
        &decoy,
        &["scan", "--root", root_s, "--json"],
    ));
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let rows: BTreeMap<String, Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["source"].as_str().unwrap().to_string(), v))
        .collect();
    let claude = &rows["claude-code"];
    let projects = root.join(".claude/projects");
    assert_eq!(claude["location"], projects.to_str().unwrap());
    assert_eq!(
        claude["sessions"].as_u64().unwrap() as usize,
        mapped_sessions("claude-read", &projects),
        "a scan counts the sessions a read maps"
    );
    assert_eq!(claude["sessions"], 3);
    // 12 days old under 10 days' retention: gone at the next start; 5 days old: in 5 days.
    assert_eq!(claude["expired"], 1, "{claude}");
    assert_eq!(claude["expiring"], 2, "{claude}");
    assert!(claude["retention"]
        .as_str()
        .unwrap()
        .contains("cleanupPeriodDays 10"));
    assert_eq!(rows["codex-cli"]["sessions"], 1);
    assert!(rows["codex-cli"].get("retention").is_none());
    assert_eq!(rows["opencode"]["sessions"], 1);
    assert!(rows["opencode"]["location"]
        .as_str()
        .unwrap()
        .ends_with("opencode.db"));
    assert_eq!(rows["copilot-cli"]["sessions"], 1);
    assert!(rows["copilot-cli"].get("retention").is_none());
    assert_eq!(rows.len(), 4, "{}", r.stdout);

    let r = run(door(tmp.path(), &decoy, &["scan", "--root", root_s]));
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let table: Vec<&str> = r.stdout.lines().collect();
    assert!(table[0].starts_with("AGENT"), "{}", r.stdout);
    let claude_row = table.iter().find(|l| l.starts_with("claude-code")).unwrap();
    let cells: Vec<&str> = claude_row.split_whitespace().collect();
    assert_eq!(cells[1], "3", "{claude_row}");
    assert!(
        claude_row.ends_with(projects.to_str().unwrap()),
        "{claude_row}"
    );
    let warning = format!(
        "claude-code: 2 sessions in {} will be deleted by the agent within 7 days (1 at its next start)",
        projects.display()
    );
    assert!(r.stderr.contains(&warning), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("--from claude-code --root {root_s}")),
        "{}",
        r.stderr
    );

    // With a shorter horizon only the expired session is due.
    let r = run(door(
        tmp.path(),
        &decoy,
        &["scan", "--root", root_s, "--within", "1", "--json"],
    ));
    assert!(
        r.stdout.contains(r#""expired":1,"expiring":1"#),
        "{}",
        r.stdout
    );
}

#[test]
fn scan_of_a_root_with_nothing_in_it_says_so_and_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty-home");
    std::fs::create_dir_all(empty.join(".claude/projects")).unwrap();
    let decoy = decoy(tmp.path());
    let r = run(door(
        tmp.path(),
        &decoy,
        &["scan", "--root", empty.to_str().unwrap()],
    ));
    assert_eq!(r.code, Some(3), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains("no session of any agent found under"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("(none found)"), "{}", r.stdout);
}

#[test]
fn from_all_under_a_root_delivers_every_agent_found_there_and_nothing_else() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("copied-home");
    copied_home(&root);
    let decoy = decoy(tmp.path());
    let state = tmp.path().join("post.sqlite");
    let args = [
        "--from",
        "all",
        "--root",
        root.to_str().unwrap(),
        "--",
        "--api",
        &server.url,
        "--state",
        state.to_str().unwrap(),
    ];
    let r = run(door(tmp.path(), &decoy, &args));
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let mut want = events_by_session(&mapped_events(
        "claude-read",
        &root.join(".claude/projects"),
    ));
    want.extend(events_by_session(&mapped_events(
        "codex-read",
        &root.join(".codex/sessions"),
    )));
    let db = root.join(".local/share/opencode/opencode.db");
    want.extend(events_by_session(&mapped_events("opencode-read", &db)));
    want.extend(events_by_session(&mapped_events(
        "copilot-read",
        &root.join(".copilot"),
    )));
    assert_eq!(
        want.len(),
        6,
        "3 Claude Code sessions, 1 Codex, 1 OpenCode, 1 Copilot CLI"
    );
    for (session, events) in &want {
        assert_eq!(server.keys(session), source_keys(events), "{session}");
    }
    for decoyed in events_by_session(&mapped_events("claude-read", &decoy.join("projects"))).keys()
    {
        assert!(
            server.keys(decoyed).is_empty(),
            "{decoyed} is not under the root"
        );
    }
}

/// Runs the SQL text of `sql` (a fixture) into a new SQLite file at `db`.
fn sqlite(sql: &str, db: &Path) {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let text = std::fs::read_to_string(workspace_root().join(sql)).unwrap();
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(&text)
        .unwrap();
}

/// A home that holds every supported agent, each in its default place: a fixture of each copied
/// (or, for the databases, built) where the agent itself keeps it. Returns, per source, the path
/// its reader reads to give what the home holds of it.
fn home_of_every_agent(root: &Path) -> Vec<(&'static str, PathBuf)> {
    copied_home(root); // Claude Code, Codex, OpenCode, Copilot CLI
    cp(
        "testdata/gemini/02-jsonl-replay/tmp",
        &root.join(".gemini/tmp"),
    );
    cp(
        "testdata/qwen/02-current/qwen/projects",
        &root.join(".qwen/projects"),
    );
    // Kilo Code inside Cursor, the editor whose own chats are read too.
    cp(
        "testdata/cline/04-kilo/.config/Cursor/User/globalStorage",
        &root.join(".config/Cursor/User/globalStorage"),
    );
    sqlite(
        "testdata/goose/01-sqlite-v9/data/sessions/sessions.sql",
        &root.join(".local/share/goose/sessions/sessions.db"),
    );
    let user = root.join(".config/Cursor/User");
    sqlite(
        "testdata/cursor/01-bubble-rows/User/globalStorage/state.vscdb.sql",
        &user.join("globalStorage/state.vscdb"),
    );
    let workspaces = "testdata/cursor/01-bubble-rows/User/workspaceStorage";
    for ws in std::fs::read_dir(workspace_root().join(workspaces)).unwrap() {
        let ws = ws.unwrap().path();
        let into = user.join("workspaceStorage").join(ws.file_name().unwrap());
        let rel = |name: &str| {
            format!(
                "{workspaces}/{}/{name}",
                ws.file_name().unwrap().to_str().unwrap()
            )
        };
        sqlite(&rel("state.vscdb.sql"), &into.join("state.vscdb"));
        std::fs::copy(ws.join("workspace.json"), into.join("workspace.json")).unwrap();
    }
    vec![
        ("claude-read", root.join(".claude/projects")),
        ("codex-read", root.join(".codex/sessions")),
        (
            "opencode-read",
            root.join(".local/share/opencode/opencode.db"),
        ),
        ("gemini-read", root.join(".gemini")),
        ("qwen-read", root.join(".qwen")),
        ("copilot-read", root.join(".copilot")),
        ("cline-read", root.join(".config/Cursor/User/globalStorage")),
        (
            "goose-read",
            root.join(".local/share/goose/sessions/sessions.db"),
        ),
        ("cursor-read", user),
    ]
}

/// Issue 21's whole capability on one home: `scan --root` finds every agent, and `--from all
/// --root` delivers every session each reader maps there, once, and a re-run sends nothing.
#[test]
fn scan_and_from_all_cover_a_home_that_holds_every_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("home-of-every-agent");
    let read_by = home_of_every_agent(&root);
    let decoy = decoy(tmp.path());
    let root_s = root.to_str().unwrap();
    assert_eq!(
        read_by.len(),
        tonbo_ingest::sources::SOURCES.len(),
        "a fixture per source"
    );

    let r = run(door(
        tmp.path(),
        &decoy,
        &["scan", "--root", root_s, "--json"],
    ));
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let mut sessions: BTreeMap<String, u64> = BTreeMap::new();
    for line in r.stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        *sessions
            .entry(v["source"].as_str().unwrap().into())
            .or_default() += v["sessions"].as_u64().unwrap();
    }
    for source in tonbo_ingest::sources::SOURCES {
        assert!(
            sessions.get(source.name).is_some_and(|&n| n > 0),
            "{}: {}",
            source.name,
            r.stdout
        );
    }

    let server = Server::start();
    let state = tmp.path().join("post.sqlite");
    // What the next plain run is to find unchanged must be older than the margin before this
    // run's start (a second).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let args = [
        "--from",
        "all",
        "--root",
        root_s,
        "--",
        "--api",
        &server.url,
        "--state",
        state.to_str().unwrap(),
    ];
    let r = run(door(tmp.path(), &decoy, &args));
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let mut want = BTreeMap::new();
    for (reader, path) in &read_by {
        let mapped = events_by_session(&mapped_events(reader, path));
        assert!(
            !mapped.is_empty(),
            "{reader} {} maps nothing",
            path.display()
        );
        want.extend(mapped);
    }
    for (session, events) in &want {
        assert_eq!(server.keys(session), source_keys(events), "{session}");
    }
    // A plain re-run: every source's files, found where its reader's --scan finds its sessions,
    // are as the first run found them, and no reader starts.
    let again = run(door(tmp.path(), &decoy, &args));
    assert_eq!(again.code, Some(0), "stderr:\n{}", again.stderr);
    for source in tonbo_ingest::sources::SOURCES {
        let skipped = format!(
            "tonbo-ingest: {}: unchanged since the last good run (",
            source.name
        );
        assert!(
            again.stderr.contains(&skipped),
            "{skipped}\n{}",
            again.stderr
        );
    }
    assert!(!again.stderr.contains("tonbo-post"), "{}", again.stderr);
    // Read again whole, everything is dropped by the checkpoint.
    let full = [&["--full"][..], &args[..]].concat();
    let again = run(door(tmp.path(), &decoy, &full));
    assert_eq!(again.code, Some(0), "stderr:\n{}", again.stderr);
    assert_eq!(
        again.stderr.matches(" 0 events sent in 0 batches").count(),
        tonbo_ingest::sources::SOURCES.len(),
        "{}",
        again.stderr
    );
}
