//! A plain re-run of the front door (no flag) against the reference server: over files that did
//! not change since the last run whose every stage exited 0, the source's pipeline is not even
//! started; every change a stat can see is read and sent, the cheap way (the reader's
//! `--modified-after`) only when every changed file was modified after that run's start:
//! appended lines, a file rewritten in place with its old modification time put back (same size
//! or not), a file replaced by an older copy, a new file with an old time, a database; a failed
//! run keeps no manifest, so the next run reads again; `--full` reads everything.

use std::collections::BTreeMap;
use std::fs::{File, FileTimes};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use tonbo_testkit::events::{mapped_keys, OPENCODE_T2_TABLES};
use tonbo_testkit::server::RefServer as Server;
use tonbo_testkit::{workspace_root, Run};

const DOOR: &str = env!("CARGO_BIN_EXE_tonbo-ingest");

/// A time long before any test: what `cp -p` or a restore from a backup leaves.
fn long_ago() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000)
}

/// Waits out the front door's margin: a file changed within a second before a run's start is
/// not trusted by the next run (it reads it again), so what a test wants taken as unchanged is
/// written more than a second before the run that records it.
fn settle() {
    std::thread::sleep(Duration::from_millis(1100));
}

fn prompt(sid: &str, uuid: &str, text: &str) -> String {
    json!({"type": "user", "uuid": uuid, "parentUuid": null, "sessionId": sid,
           "timestamp": "2026-05-01T10:00:00.000Z", "cwd": "/w", "version": "2.1.30",
           "isSidechain": false, "message": {"role": "user", "content": text}})
    .to_string()
        + "\n"
}

const SID_A: &str = "7c0ffee0-0000-4000-8000-0000000000a0";
const SID_B: &str = "7c0ffee0-0000-4000-8000-0000000000b0";
const SID_C: &str = "7c0ffee0-0000-4000-8000-0000000000c0";

/// A test's folder: HOME and working directory of the front door (its manifests go to
/// `~/.local/state/tonbo-ingest`), a Claude Code config folder holding a copy of a fixture
/// (`cp -a`: old modification times) and two sessions of one prompt each, and the checkpoint.
struct Home {
    tmp: tempfile::TempDir,
    claude: PathBuf,
    state: PathBuf,
}

impl Home {
    fn new() -> Home {
        let tmp = tempfile::tempdir().unwrap();
        let claude = tmp.path().join("claude");
        std::fs::create_dir_all(claude.join("projects/-w")).unwrap();
        let ok = Command::new("cp")
            .arg("-a")
            .arg(workspace_root().join("testdata/claude/03-tools/projects/."))
            .arg(claude.join("projects"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp -a");
        let home = Home {
            state: tmp.path().join("post.sqlite"),
            tmp,
            claude,
        };
        std::fs::write(home.session(SID_A), prompt(SID_A, "a1", "first of A")).unwrap();
        std::fs::write(home.session(SID_B), prompt(SID_B, "b1", "first of B")).unwrap();
        home
    }

    fn session(&self, sid: &str) -> PathBuf {
        self.claude.join(format!("projects/-w/{sid}.jsonl"))
    }

    fn manifest(&self) -> PathBuf {
        self.tmp
            .path()
            .join(".local/state/tonbo-ingest/manifest-claude-code")
    }

    /// `tonbo-ingest --from claude-code --path CLAUDE FRONT... -- --api API --state STATE`.
    fn run_with(&self, front: &[&str], api: &str, state: &Path) -> Run {
        let mut cmd = tonbo_testkit::front_door(Path::new(DOOR), self.tmp.path());
        cmd.args(["--from", "claude-code", "--path"])
            .arg(&self.claude)
            .args(front)
            .args(["--", "--api", api, "--state"])
            .arg(state)
            .args(["--max-retries", "0"]);
        tonbo_testkit::run(cmd, None)
    }

    fn run(&self, api: &str) -> Run {
        self.run_with(&[], api, &self.state)
    }

    /// What `claude-read CLAUDE | tonbo-map` gives now, by session.
    fn want(&self) -> BTreeMap<String, Vec<String>> {
        mapped_keys("claude-read", &self.claude)
    }
}

fn stream(sid: &str) -> String {
    format!("claude-code-{sid}")
}

/// Everything each of `want`'s streams holds.
fn contents(server: &Server, want: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<Value>> {
    want.keys()
        .map(|s| (s.clone(), server.read(s).unwrap_or_default()))
        .collect()
}

#[track_caller]
fn assert_ok(r: &Run, what: &str) {
    assert_eq!(r.code, Some(0), "{what}: stderr:\n{}", r.stderr);
}

#[track_caller]
fn assert_said(r: &Run, text: &str) {
    assert!(
        r.stderr.contains(text),
        "no {text:?} in stderr:\n{}",
        r.stderr
    );
}

#[track_caller]
fn assert_not_said(r: &Run, text: &str) {
    assert!(
        !r.stderr.contains(text),
        "{text:?} in stderr:\n{}",
        r.stderr
    );
}

/// Fails unless the stream holds `key`, and no key twice.
#[track_caller]
fn assert_has_key_once_each(server: &Server, sid: &str, key: &str) {
    let keys = server.keys(&stream(sid));
    assert!(
        keys.iter().any(|k| k.starts_with(key)),
        "no {key} in {keys:?}"
    );
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "a key twice: {keys:?}");
}

/// Writes `text` into `file` in place (same inode), then puts its modification time back.
fn rewrite_keeping_mtime(file: &Path, text: &str) {
    let mtime = std::fs::metadata(file).unwrap().modified().unwrap();
    std::fs::write(file, text).unwrap();
    set_mtime(file, mtime);
}

fn set_mtime(file: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_times(FileTimes::new().set_modified(t))
        .unwrap();
}

fn append(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = File::options().append(true).open(file).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

#[test]
fn a_rerun_over_unchanged_files_starts_no_reader_and_sends_nothing() {
    let server = Server::start();
    let home = Home::new();
    let want = home.want();
    assert_eq!(want.len(), 3, "{want:?}");
    settle();

    let first = home.run(&server.url);
    assert_ok(&first, "first run");
    assert_said(
        &first,
        "tonbo-ingest: claude-code: reading everything: no good run of it is recorded yet",
    );
    server.assert_holds(&want);
    let held = contents(&server, &want);
    assert!(home.manifest().exists());

    let second = home.run(&server.url);
    assert_ok(&second, "second run");
    assert_eq!(
        second.stderr,
        "tonbo-ingest: claude-code: unchanged since the last good run (3 files), nothing to read\n"
    );
    assert_eq!(contents(&server, &want), held);

    // --full reads everything again, and the checkpoint drops it all.
    let full = home.run_with(&["--full"], &server.url, &home.state);
    assert_ok(&full, "--full");
    assert_said(&full, "claude-read: 3 files");
    assert_said(&full, " 0 events sent in 0 batches");
    assert_not_said(&full, "unchanged");

    // Another checkpoint is another run: everything is read (and the server has it all).
    let other = home.tmp.path().join("other.sqlite");
    let r = home.run_with(&[], &server.url, &other);
    assert_ok(&r, "another checkpoint");
    assert_said(
        &r,
        "claude-code: reading everything: its last good run had other tonbo-post options",
    );
    assert_said(&r, "claude-read: 3 files");
    assert_eq!(contents(&server, &want), held);

    // A session deleted needs no read.
    std::fs::remove_file(home.session(SID_B)).unwrap();
    let r = home.run_with(&[], &server.url, &other);
    assert_ok(&r, "after a deletion");
    assert_said(
        &r,
        "unchanged since the last good run (2 files), nothing to read",
    );
    assert_eq!(contents(&server, &want), held);
}

#[test]
fn an_appended_line_is_read_alone_and_sent() {
    let server = Server::start();
    let home = Home::new();
    settle();
    assert_ok(&home.run(&server.url), "first run");

    append(&home.session(SID_A), &prompt(SID_A, "a2", "appended"));
    let r = home.run(&server.url);
    assert_ok(&r, "after the append");
    assert_said(
        &r,
        "tonbo-ingest: claude-code: 1 file changed since the last good run, reading what was modified after ",
    );
    // Only the changed file was read.
    assert_said(&r, "claude-read: 1 files");
    assert_said(&r, "skipped 2 files not modified after --modified-after");
    server.assert_holds(&home.want());
    assert_has_key_once_each(&server, SID_A, "a2");
}

#[test]
fn a_file_rewritten_in_place_with_its_old_mtime_is_read_again() {
    let server = Server::start();
    let home = Home::new();
    let file = home.session(SID_A);
    set_mtime(&file, long_ago());
    settle();
    assert_ok(&home.run(&server.url), "first run");

    // The same size: a prompt of the same length under another uuid.
    let same_size = prompt(SID_A, "a9", "first of A");
    assert_eq!(
        same_size.len() as u64,
        std::fs::metadata(&file).unwrap().len()
    );
    rewrite_keeping_mtime(&file, &same_size);
    let r = home.run(&server.url);
    assert_ok(&r, "after a rewrite of the same size");
    assert_said(
        &r,
        "claude-code: reading everything: 1 file changed since its last good run, and ",
    );
    assert_said(
        &r,
        "was modified without its modification time moving past that run's start",
    );
    assert_said(&r, "claude-read: 3 files");
    assert_has_key_once_each(&server, SID_A, "a9");

    // Another size.
    rewrite_keeping_mtime(&file, &(same_size + &prompt(SID_A, "a10", "longer now")));
    let r = home.run(&server.url);
    assert_ok(&r, "after a longer rewrite");
    assert_said(&r, "claude-code: reading everything: ");
    assert_has_key_once_each(&server, SID_A, "a10");
}

#[test]
fn a_file_replaced_by_an_older_copy_is_read_again() {
    let server = Server::start();
    let home = Home::new();
    settle();
    assert_ok(&home.run(&server.url), "first run");

    // Restored from a backup: another file, an older time, renamed over it.
    let file = home.session(SID_B);
    let copy = home.tmp.path().join("backup.jsonl");
    std::fs::write(&copy, prompt(SID_B, "b7", "from the backup")).unwrap();
    set_mtime(&copy, long_ago());
    std::fs::rename(&copy, &file).unwrap();
    let r = home.run(&server.url);
    assert_ok(&r, "after the restore");
    assert_said(
        &r,
        "claude-code: reading everything: 1 file changed since its last good run",
    );
    assert_has_key_once_each(&server, SID_B, "b7");
}

#[test]
fn a_new_file_with_an_old_mtime_is_read() {
    let server = Server::start();
    let home = Home::new();
    settle();
    assert_ok(&home.run(&server.url), "first run");

    let file = home.session(SID_C);
    std::fs::write(&file, prompt(SID_C, "c1", "copied in with cp -p")).unwrap();
    set_mtime(&file, long_ago());
    let r = home.run(&server.url);
    assert_ok(&r, "after the new file");
    assert_said(
        &r,
        "claude-code: reading everything: 1 file changed since its last good run",
    );
    server.assert_holds(&home.want());
    assert_has_key_once_each(&server, SID_C, "c1");
}

#[test]
fn a_failed_run_keeps_no_manifest_so_the_next_run_reads_again() {
    let server = Server::start();
    let home = Home::new();
    settle();

    // The server is down: tonbo-post fails, and nothing is recorded.
    let down = closed_port_url();
    let r = home.run(&down);
    assert_eq!(r.code, Some(1), "stderr:\n{}", r.stderr);
    assert_said(&r, "tonbo-ingest: tonbo-post exited 1");
    assert!(!home.manifest().exists());
    let r = home.run(&server.url);
    assert_ok(&r, "run after the failure");
    assert_said(&r, "reading everything: no good run of it is recorded yet");
    server.assert_holds(&home.want());

    // A change, a failed run (the manifest stays as it was), then a good run reads it.
    let manifest = std::fs::read(home.manifest()).unwrap();
    append(
        &home.session(SID_B),
        &prompt(SID_B, "b2", "while the server was down"),
    );
    let r = home.run(&down);
    assert_eq!(r.code, Some(1), "stderr:\n{}", r.stderr);
    assert_eq!(std::fs::read(home.manifest()).unwrap(), manifest);
    let r = home.run(&server.url);
    assert_ok(&r, "second run after a failure");
    assert_said(&r, "1 file changed since the last good run");
    server.assert_holds(&home.want());
    assert_has_key_once_each(&server, SID_B, "b2");
}

/// An OpenCode database (T2) of one session: a prompt, and `more` prompts after it.
fn opencode_db(path: &Path, more: usize) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch("PRAGMA journal_mode=WAL;").unwrap();
    let fresh: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'session'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if fresh == 0 {
        db.execute_batch(OPENCODE_T2_TABLES).unwrap();
        db.execute_batch(
            r#"
INSERT INTO project VALUES ('global', '/', NULL, NULL, 1, 1, NULL, '[]');
INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated)
  VALUES ('ses_rr', 'global', 'slug', '/w', 'rerun', '1.2.6', 1000, 1000);"#,
        )
        .unwrap();
    }
    for i in 0..=more {
        let (m, p, t) = (format!("msg_{i}"), format!("prt_{i}"), 2000 + i as i64);
        db.execute(
            "INSERT OR IGNORE INTO message VALUES (?1, 'ses_rr', ?2, ?2, '{\"role\":\"user\",\"time\":{\"created\":2000}}')",
            rusqlite::params![m, t],
        )
        .unwrap();
        db.execute(
            "INSERT OR IGNORE INTO part VALUES (?1, ?2, 'ses_rr', ?3, ?3, '{\"type\":\"text\",\"text\":\"hello\"}')",
            rusqlite::params![p, m, t],
        )
        .unwrap();
    }
}

#[test]
fn a_database_unchanged_is_not_read_and_a_changed_one_is_read_whole() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("opencode.db");
    opencode_db(&db, 0);
    settle();
    let state = tmp.path().join("post.sqlite");
    let run = || {
        let mut cmd = tonbo_testkit::front_door(Path::new(DOOR), tmp.path());
        cmd.args(["--from", "opencode", "--db"])
            .arg(&db)
            .args(["--", "--api", &server.url, "--state"])
            .arg(&state);
        tonbo_testkit::run(cmd, None)
    };
    let first = run();
    assert_ok(&first, "first run");
    server.assert_holds(&mapped_keys("opencode-read", &db));

    let second = run();
    assert_ok(&second, "second run");
    assert_said(
        &second,
        "tonbo-ingest: opencode: unchanged since the last good run",
    );
    assert_not_said(&second, "opencode-read");

    opencode_db(&db, 1);
    let third = run();
    assert_ok(&third, "after a new row");
    assert_said(&third, "opencode: reading everything: ");
    assert_said(
        &third,
        "is a database's, whose reader reads by the rows' own times",
    );
    let want = mapped_keys("opencode-read", &db);
    assert!(want.values().any(|keys| keys.len() > 1), "{want:?}");
    server.assert_holds(&want);
}

/// Without --path the reader's own default places count: the locations its `--scan` lists.
#[test]
fn default_locations_are_those_the_reader_scans() {
    let server = Server::start();
    let home = Home::new();
    settle();
    let run = || {
        let mut cmd = tonbo_testkit::front_door(Path::new(DOOR), home.tmp.path());
        cmd.env("CLAUDE_CONFIG_DIR", &home.claude)
            .args([
                "--from",
                "claude-code",
                "--",
                "--api",
                &server.url,
                "--state",
            ])
            .arg(&home.state);
        tonbo_testkit::run(cmd, None)
    };
    assert_ok(&run(), "first run");
    let r = run();
    assert_ok(&r, "second run");
    assert_said(
        &r,
        "claude-code: unchanged since the last good run (3 files), nothing to read",
    );
    // A file under the projects folder that is no session still counts as a change.
    std::fs::write(home.claude.join("projects/-w/notes.txt"), "x").unwrap();
    let r = run();
    assert_ok(&r, "after a new file");
    assert_said(&r, "claude-code: 1 file changed since the last good run");
    server.assert_holds(&home.want());
}

/// A run stopped by a signal ends 0 having read only part of its files: it keeps no manifest.
#[test]
fn a_run_stopped_by_a_signal_keeps_no_manifest() {
    let home = Home::new();
    let bins = home.tmp.path().join("bin");
    std::fs::create_dir(&bins).unwrap();
    for name in ["tonbo-map", "tonbo-batch", "tonbo-post"] {
        std::os::unix::fs::symlink(tonbo_testkit::bin(name), bins.join(name)).unwrap();
    }
    // A reader that has read nothing yet when the signal comes.
    let reading = home.tmp.path().join("reading");
    let reader = bins.join("claude-read");
    std::fs::write(
        &reader,
        format!("#!/bin/sh\ntouch '{}'\nexec sleep 60\n", reading.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&reader, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut cmd = tonbo_testkit::front_door(Path::new(DOOR), home.tmp.path());
    cmd.env("TONBO_INGEST_BIN_DIR", &bins)
        .args(["--from", "claude-code", "--path"])
        .arg(&home.claude)
        .args(["--", "--api", &closed_port_url(), "--state"])
        .arg(&home.state);
    let door = tonbo_testkit::start(cmd, None);
    let start = std::time::Instant::now();
    while !reading.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the reader never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    tonbo_testkit::signal(&door.child, "-TERM");
    let r = door
        .finish_within(Duration::from_secs(30))
        .expect("tonbo-ingest did not stop on SIGTERM");
    assert_ok(&r, "stopped run");
    assert!(!home.manifest().exists(), "a stopped run wrote a manifest");
}

/// The manifest names tonbo-post's server without the password its URL holds, in tonbo-post's
/// options and in `TONBO_API`.
#[test]
fn the_manifest_holds_no_credentials() {
    let server = Server::start();
    let home = Home::new();
    let api = server.url.replacen("http://", "http://alice:pw-s3cret@", 1);
    let r = home.run(&api);
    assert_ok(&r, "run with a password in --api");
    let mut cmd = tonbo_testkit::front_door(Path::new(DOOR), home.tmp.path());
    cmd.env("TONBO_API", &api)
        .args(["--from", "claude-code", "--path"])
        .arg(&home.claude)
        .args(["--", "--state"])
        .arg(&home.state);
    let r = tonbo_testkit::run(cmd, None);
    assert_ok(&r, "run with a password in TONBO_API");
    assert_said(
        &r,
        "reading everything: its last good run had other tonbo-post options",
    );
    let manifest = std::fs::read_to_string(home.manifest()).unwrap();
    assert!(
        manifest.contains("TONBO_API=Some(\"http://127.0.0.1:"),
        "{manifest}"
    );
    assert!(!manifest.contains("s3cret"), "{manifest}");
    assert!(!manifest.contains("alice"), "{manifest}");
}
