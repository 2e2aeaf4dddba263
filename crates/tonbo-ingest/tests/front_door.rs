//! The front door, the `tonbo-ingest` binary, end to end against the reference server: it runs
//! the real stage binaries of this build (through `TONBO_INGEST_BIN_DIR`), delivers what
//! `READER | tonbo-map` produces, sends nothing twice, stops before posting with `--dry-run`,
//! moves its `--since-last-run` mark only after a run whose every stage exited 0, names a failing
//! stage and returns its status, runs `--from all`, and drains on SIGTERM in `--watch`, also with
//! `--from all`, where `tonbo-map --merge` takes the three readers at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;
use tonbo_ingest::sources::SOURCES;
use tonbo_testkit::events::OPENCODE_T2_TABLES;
use tonbo_testkit::server::RefServer as Server;
use tonbo_testkit::{bin, signal, workspace_root, Run, Started};

const CLAUDE_FIXTURE: &str = "testdata/claude/03-tools";
const CODEX_FIXTURE: &str = "testdata/codex/01-v2-turn";

const DOOR: &str = env!("CARGO_BIN_EXE_tonbo-ingest");

/// A copy of a fixture folder (with `cp -a`, so the files keep their old modification times).
fn copy_fixture(fixture: &str, to: &Path) -> PathBuf {
    let dst = to.join(Path::new(fixture).file_name().unwrap());
    let ok = Command::new("cp")
        .arg("-a")
        .arg(workspace_root().join(fixture))
        .arg(&dst)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {fixture}");
    dst
}

/// The front door with a clean environment: this build's binaries, no key, no inherited state,
/// and `home` as HOME and working directory (so the readers' default locations are empty).
fn front_door(home: &Path, args: &[&str]) -> Command {
    front_door_at(Path::new(DOOR), home, args)
}

/// [`front_door`] with the binary at `door`.
fn front_door_at(door: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = tonbo_testkit::front_door(door, home);
    cmd.args(args);
    cmd
}

/// `FRONT... -- --api API --state STATE POST...`: the front door's words, then tonbo-post's.
fn words<'a>(front: &[&'a str], api: &'a str, state: &'a Path, post: &[&'a str]) -> Vec<&'a str> {
    let mut words = front.to_vec();
    words.extend(["--", "--api", api, "--state", state.to_str().unwrap()]);
    words.extend_from_slice(post);
    words
}

fn run(cmd: Command) -> Run {
    tonbo_testkit::run(cmd, None)
}

/// A test's folder (HOME and working directory of the front door), holding a copy of the Claude
/// Code fixture and tonbo-post's checkpoint.
struct Home {
    tmp: tempfile::TempDir,
    fixture: PathBuf,
    state: PathBuf,
}

impl Home {
    fn new() -> Home {
        let tmp = tempfile::tempdir().unwrap();
        let fixture = copy_fixture(CLAUDE_FIXTURE, tmp.path());
        let state = tmp.path().join("post.sqlite");
        Home {
            tmp,
            fixture,
            state,
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The keys per session of the fixture's copy ([`mapped_keys`]).
    fn want(&self) -> BTreeMap<String, Vec<String>> {
        mapped_keys("claude-read", &self.fixture)
    }

    /// `tonbo-ingest --from claude-code --path FIXTURE FRONT... -- --api API --state STATE
    /// POST...`, not yet run.
    fn front_door(&self, front: &[&str], api: &str, post: &[&str]) -> Command {
        let from = [
            "--from",
            "claude-code",
            "--path",
            self.fixture.to_str().unwrap(),
        ];
        let front = [&from[..], front].concat();
        front_door(self.path(), &words(&front, api, &self.state, post))
    }

    /// [`Home::front_door`], run to its end.
    fn run(&self, front: &[&str], api: &str, post: &[&str]) -> Run {
        run(self.front_door(front, api, post))
    }
}

/// The front door started in the background (`--watch`).
fn start(cmd: Command) -> Started {
    tonbo_testkit::start(cmd, None)
}

/// Waits up to `limit` for the front door to end, after it was asked to.
#[track_caller]
fn finish_within(door: Started, limit: Duration, what: &str) -> Run {
    door.finish_within(limit)
        .unwrap_or_else(|| panic!("tonbo-ingest {what}"))
}

/// Sends the front door `sig` and waits up to `seconds` for it to end.
#[track_caller]
fn stop(door: Started, sig: &str, seconds: u64, what: &str) -> Run {
    signal(&door.child, sig);
    finish_within(door, Duration::from_secs(seconds), what)
}

/// The keys per session that `READER PATH | tonbo-map` produces.
fn mapped_keys(reader: &str, path: &Path) -> BTreeMap<String, Vec<String>> {
    let keys = tonbo_testkit::events::mapped_keys(reader, path);
    assert!(
        !keys.is_empty(),
        "{reader} {} maps to nothing",
        path.display()
    );
    keys
}

#[track_caller]
fn assert_ok(r: &Run, what: &str) {
    assert_eq!(r.code, Some(0), "{what}: stderr:\n{}", r.stderr);
}

/// Asserts that the front door said `text` on stderr.
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

fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

/// A second run that reads everything again (`--full`) sends nothing: the checkpoint drops it.
/// (A plain re-run over unchanged files reads nothing at all: tests/rerun.rs.)
#[test]
fn delivers_what_the_reader_maps_to_and_a_second_run_sends_nothing() {
    let server = Server::start();
    let home = Home::new();
    let want = home.want();

    let first = home.run(&[], &server.url, &[]);
    assert_ok(&first, "first run");
    server.assert_holds(&want);
    let n: usize = want.values().map(Vec::len).sum();
    assert_said(&first, &format!("{n} events sent"));

    let second = home.run(&["--full"], &server.url, &[]);
    assert_ok(&second, "second run");
    assert_said(&second, "claude-read: 1 files");
    assert!(
        second.stderr.contains("0 events sent in 0 batches"),
        "the second run sent something:\n{}",
        second.stderr
    );
    server.assert_holds(&want);
}

#[test]
fn dry_run_sends_nothing_and_counts_events_per_type() {
    let server = Server::start();
    let home = Home::new();
    let marks = home.path().join("marks");
    let want = home.want();
    let front = [
        "--dry-run",
        // A dry run is no run: it must not move the mark.
        "--since-last-run",
        "--state-dir",
        marks.to_str().unwrap(),
    ];
    let r = home.run(&front, &server.url, &[]);
    assert_ok(&r, "dry run");
    assert!(!marks.join("last-run-claude-code").exists());
    for sid in want.keys() {
        assert!(server.read(sid).is_none(), "{sid} exists after a dry run");
    }
    let n: usize = want.values().map(Vec::len).sum();
    // tonbo-post's summary says it, on stderr; stdout stays empty.
    assert_eq!(r.stdout, "");
    let summary = r
        .stderr
        .lines()
        .find(|l| l.starts_with("tonbo-post: dry run: "))
        .unwrap_or_else(|| panic!("no dry-run summary:\n{}", r.stderr));
    assert!(
        summary.contains(&format!("would send {n} events to {} sessions", want.len())),
        "{summary}"
    );
    // Per type: the counts add up to the total, and the fixture's tool calls are there.
    let mut total = 0;
    let mut types = BTreeMap::new();
    let (_, by_type) = summary.split_once("; by type: ").expect("counts by type");
    for part in by_type.split(", ") {
        let (t, c) = part.rsplit_once(' ').unwrap();
        let c: usize = c.parse().unwrap();
        total += c;
        types.insert(t.to_string(), c);
    }
    assert_eq!(total, n, "{summary}");
    assert!(types.contains_key("agent.tool_use"), "{types:?}");
    assert!(types.contains_key("user.message"), "{types:?}");
}

#[test]
fn since_last_run_moves_its_mark_only_after_a_run_where_every_stage_succeeded() {
    let server = Server::start();
    let home = Home::new();
    let state_dir = home.path().join("marks");
    let mark = state_dir.join("last-run-claude-code");
    let want = home.want();
    let front = [
        "--since-last-run",
        "--state-dir",
        state_dir.to_str().unwrap(),
    ];
    let run_to = |api: &str, post: &[&str]| home.run(&front, api, post);
    let read_mark = || std::fs::read_to_string(&mark).unwrap().trim().to_string();
    // Marks have a resolution of one second: keep file times and run starts in distinct seconds.
    let next_second = || std::thread::sleep(Duration::from_millis(1100));

    // The first run has no mark: it reads everything, then sets the mark.
    assert!(!mark.exists());
    let first = run_to(&server.url, &[]);
    assert_ok(&first, "first run");
    server.assert_holds(&want);
    let m1 = read_mark();
    assert!(
        m1.len() == 20 && m1.ends_with('Z') && m1.as_bytes()[10] == b'T',
        "mark {m1:?} is not RFC 3339 UTC"
    );

    // The file changes; a run whose tonbo-post cannot reach its server fails, named, with its
    // status, and leaves the mark where it was.
    next_second();
    let session = std::fs::read_dir(home.fixture.join("projects"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = std::fs::read_dir(&session)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text).unwrap(); // same content, new modification time
    let failed = run_to(&closed_port_url(), &["--max-retries", "0"]);
    assert_eq!(failed.code, Some(1), "stderr:\n{}", failed.stderr);
    assert_said(&failed, "tonbo-ingest: tonbo-post exited 1");
    assert_eq!(read_mark(), m1, "a failed run moved the mark");

    // A good run reads the changed file again (nothing new for the server) and moves the mark.
    next_second();
    let good = run_to(&server.url, &[]);
    assert_ok(&good, "run after the failure");
    assert!(
        good.stderr.contains("claude-read: 1 files"),
        "the changed file was not read:\n{}",
        good.stderr
    );
    let m2 = read_mark();
    assert!(m2 > m1, "mark {m2} did not move past {m1}");
    server.assert_holds(&want);

    // Unchanged since: the reader skips the file.
    let idle = run_to(&server.url, &[]);
    assert_ok(&idle, "unchanged run");
    assert_said(&idle, "claude-read: 0 files");
    assert_said(&idle, "skipped 1 files");
    assert_said(&idle, "0 events sent in 0 batches");
    server.assert_holds(&want);
}

#[test]
fn a_failing_stage_is_named_and_its_status_returned() {
    let home = Home::new();

    // A tonbo-map that fails with status 3, beside the real other stages.
    let bins = home.path().join("bin");
    std::fs::create_dir(&bins).unwrap();
    for name in ["claude-read", "tonbo-batch", "tonbo-post"] {
        std::os::unix::fs::symlink(bin(name), bins.join(name)).unwrap();
    }
    stand_in(&bins.join("tonbo-map"), "cat >/dev/null\nexit 3");
    let closed = closed_port_url();
    let mut cmd = home.front_door(&[], &closed, &[]);
    cmd.env("TONBO_INGEST_BIN_DIR", &bins);
    let r = run(cmd);
    assert_eq!(r.code, Some(3), "stderr:\n{}", r.stderr);
    assert_said(&r, "tonbo-ingest: tonbo-map exited 3");
    assert_not_said(&r, "claude-read exited");

    // A stage that cannot start (bad flag for tonbo-post): its status 2 comes back.
    let fixture = home.fixture.to_str().unwrap();
    let front = [
        "--from",
        "claude-code",
        "--path",
        fixture,
        "--",
        "--no-such-flag",
    ];
    let r = run(front_door(home.path(), &front));
    assert_eq!(r.code, Some(2), "stderr:\n{}", r.stderr);
    assert_said(&r, "tonbo-ingest: tonbo-post exited 2");
}

/// Its own usage errors are 2, each said in one line and the hint to --help, on stderr.
#[test]
fn usage_errors_are_named_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--from", "nowhere"],
            "unknown source: nowhere (claude-code, codex-cli, opencode, gemini-cli, cline, copilot-cli, goose, qwen-code, cursor or all)",
        ),
        (
            &[],
            "--from is required (claude-code, codex-cli, opencode, gemini-cli, cline, copilot-cli, goose, qwen-code, cursor or all)",
        ),
        (&["--path", "x", "--from"], "--from needs a value"),
        (&["--from", "claude-code", "--path"], "--path needs a value"),
        (&["--from", "claude-code", "stray"], "unknown argument: stray"),
        (&["--from=claude-code", "--bogus=1"], "unknown argument: --bogus=1"),
        (
            &["--from", "claude-code", "--watch", "--since-last-run"],
            "--since-last-run cannot be combined with --watch (a watch reads everything, then follows)",
        ),
        (&["--from", "claude-code", "--poll"], "--poll goes with --watch"),
        (
            &["--from", "claude-code", "--full", "--since-last-run"],
            "--full cannot be combined with --since-last-run",
        ),
        (
            &["--from", "codex-cli", "--watch", "--dry-run"],
            "--dry-run cannot be combined with --watch",
        ),
        (
            &["--from", "opencode", "--path", "x"],
            "--from opencode takes --db, not --path",
        ),
        (
            &["--from", "codex-cli", "--db", "x"],
            "--db is for --from opencode or --from goose or --from cursor; use --path",
        ),
        (
            &["--from", "all", "--db", "x"],
            "--path and --db need one source; --from all reads the default locations (CLAUDE_CONFIG_DIR, CODEX_HOME, OPENCODE_DB, GEMINI_CLI_HOME, VSCODE_PORTABLE, COPILOT_HOME, GOOSE_PATH_ROOT, QWEN_HOME, CURSOR_USER_DIR)",
        ),
    ];
    for (args, message) in cases {
        let r = run(front_door(tmp.path(), args));
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr,
            format!("tonbo-ingest: {message}\nTry 'tonbo-ingest --help'.\n"),
            "{args:?}"
        );
        assert_eq!(r.stdout, "", "{args:?}");
    }
    let help = run(front_door(tmp.path(), &["--help"]));
    assert_ok(&help, "--help");
    assert!(help.stdout.contains("Examples:"), "{}", help.stdout);
    let version = run(front_door(tmp.path(), &["--version"]));
    assert_eq!(version.stdout, "tonbo-ingest 0.1.0\n");
}

/// A stage found nowhere stops the run before any stage starts, saying where it was looked for.
#[test]
fn a_stage_not_found_is_said_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    // The front door alone in a folder, the other stages in another; PATH holds neither.
    let alone = tmp.path().join("alone");
    let bins = tmp.path().join("bins");
    std::fs::create_dir(&alone).unwrap();
    std::fs::create_dir(&bins).unwrap();
    std::fs::copy(DOOR, alone.join("tonbo-ingest")).unwrap();
    for name in ["tonbo-map", "tonbo-batch", "tonbo-post"] {
        std::os::unix::fs::symlink(bin(name), bins.join(name)).unwrap();
    }
    let mut cmd = front_door_at(
        &alone.join("tonbo-ingest"),
        tmp.path(),
        &["--from", "codex-cli"],
    );
    cmd.env("TONBO_INGEST_BIN_DIR", &bins)
        .env("PATH", tmp.path().join("empty"));
    let r = run(cmd);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "tonbo-ingest: codex-read not found (in $TONBO_INGEST_BIN_DIR, {}, or PATH); run make install\n",
            alone.display()
        )
    );
}

/// `tonbo-ingest --from all` into `api`, with Claude Code's and Codex's homes at `claude` and
/// `codex`.
fn from_all(home: &Path, api: &str, state: &Path, claude: &Path, codex: &Path) -> Run {
    let mut cmd = front_door(home, &words(&["--from", "all"], api, state, &[]));
    cmd.env("CLAUDE_CONFIG_DIR", claude)
        .env("CODEX_HOME", codex);
    run(cmd)
}

#[test]
fn from_all_runs_each_source_with_something_to_read() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let claude = copy_fixture(CLAUDE_FIXTURE, tmp.path());
    let codex = copy_fixture(CODEX_FIXTURE, tmp.path());
    let state = tmp.path().join("post.sqlite");
    let mut want = mapped_keys("claude-read", &claude);
    want.extend(mapped_keys("codex-read", &codex));
    let r = from_all(tmp.path(), &server.url, &state, &claude, &codex);
    assert_ok(&r, "--from all");
    server.assert_holds(&want);
    // A pipeline per source ran, one after another; only Claude Code and Codex had something.
    assert_eq!(
        r.stderr.matches("tonbo-post: ").count(),
        SOURCES.len(),
        "{}",
        r.stderr
    );
    assert_said(&r, "opencode-read: 0 databases");
    assert_said(&r, "cline-read: 0 tasks");
    assert_said(&r, "copilot-read: 0 files");
    assert_said(&r, "qwen-read: 0 files");
}

#[test]
fn from_all_a_source_that_gives_nothing_is_status_3_and_a_failure_outranks_it() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    // Claude Code's folder holds files (auto-memory) but no transcript.
    let claude = tmp.path().join("claude");
    std::fs::create_dir_all(claude.join("projects/-p/memory")).unwrap();
    std::fs::write(claude.join("projects/-p/memory/MEMORY.md"), "# notes").unwrap();
    let codex = copy_fixture(CODEX_FIXTURE, tmp.path());
    let state = tmp.path().join("post.sqlite");
    let from_all = || from_all(tmp.path(), &server.url, &state, &claude, &codex);
    let r = from_all();
    assert_eq!(r.code, Some(3), "stderr:\n{}", r.stderr);
    assert_said(&r, "tonbo-ingest: claude-read exited 3");
    assert_said(&r, "claude-read: warning: ");
    // The Codex sessions were delivered all the same.
    server.assert_holds(&mapped_keys("codex-read", &codex));
    // A rejected line in the Codex sessions is worse than an empty source: status 1.
    let bad = codex
        .join("sessions/rollout-2026-01-01T00-00-00-0199aaaa-0000-7000-8000-00000000bad0.jsonl");
    std::fs::write(&bad, "not json\n").unwrap();
    let r = from_all();
    assert_eq!(r.code, Some(1), "stderr:\n{}", r.stderr);
    assert_said(&r, "tonbo-ingest: claude-read exited 3");
    assert_said(&r, "tonbo-ingest: codex-read exited 1");
}

fn prompt(sid: &str, uuid: &str, text: &str) -> String {
    json!({"type": "user", "uuid": uuid, "parentUuid": null, "sessionId": sid,
           "timestamp": "2026-05-01T10:00:00.000Z", "cwd": "/w", "version": "2.1.30",
           "isSidechain": false, "message": {"role": "user", "content": text}})
    .to_string()
}

/// A Claude Code session file in the folder `claude` (as `CLAUDE_CONFIG_DIR`), of one prompt.
fn claude_session(claude: &Path, sid: &str, uuid: &str, text: &str) -> PathBuf {
    let projects = claude.join("projects/-w");
    std::fs::create_dir_all(&projects).unwrap();
    let file = projects.join(format!("{sid}.jsonl"));
    std::fs::write(&file, prompt(sid, uuid, text) + "\n").unwrap();
    file
}

/// Appends `line` and its newline to `file`, as the app writing a session does.
fn append_line(file: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
    f.write_all((line.to_owned() + "\n").as_bytes()).unwrap();
}

fn wait_until(what: &str, child: &mut Child, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "tonbo-ingest ended while waiting for {what}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn watch_follows_appends_and_drains_on_sigterm() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let claude = tmp.path().join("claude");
    let sid = "7c0ffee0-0000-4000-8000-0000000000f0";
    let file = claude_session(&claude, sid, "w1", "before the start");
    let state = tmp.path().join("post.sqlite");
    let stream = format!("claude-code-{sid}");

    let front = [
        "--from",
        "claude-code",
        "--watch",
        "--path",
        claude.to_str().unwrap(),
    ];
    let mut child = start(front_door(
        tmp.path(),
        &words(&front, &server.url, &state, &[]),
    ));
    wait_until("the backfilled line", &mut child.child, || {
        server.keys(&stream).iter().any(|k| k.starts_with("w1"))
    });

    append_line(&file, &prompt(sid, "w2", "appended while watching"));
    wait_until("the appended line", &mut child.child, || {
        server.keys(&stream).iter().any(|k| k.starts_with("w2"))
    });

    let r = stop(child, "-TERM", 30, "--watch did not stop on SIGTERM");
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    let keys = server.keys(&stream);
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "a key twice: {keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("w2")), "{keys:?}");
    assert_not_said(&r, "exited");
}

/// An OpenCode database (T2) at its default place under `home`: one session of a prompt and its
/// completed answer, every message final, so following it sends what a plain run sends.
fn opencode_db(home: &Path) -> PathBuf {
    let dir = home.join(".local/share/opencode");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("opencode.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(OPENCODE_T2_TABLES).unwrap();
    db.execute_batch(
        r#"
INSERT INTO project VALUES ('global', '/', NULL, NULL, 1, 1, NULL, '[]');
INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated)
  VALUES ('ses_fd', 'global', 'slug', '/w', 'watched', '1.2.6', 1000, 1000);
INSERT INTO message VALUES ('msg_1', 'ses_fd', 2000, 2000, '{"role":"user","time":{"created":2000}}');
INSERT INTO part VALUES ('prt_1', 'msg_1', 'ses_fd', 2000, 2000, '{"type":"text","text":"hello"}');
INSERT INTO message VALUES ('msg_2', 'ses_fd', 2010, 2020,
  '{"role":"assistant","time":{"created":2010,"completed":2020},"modelID":"m","providerID":"p"}');
INSERT INTO part VALUES ('prt_2', 'msg_2', 'ses_fd', 2010, 2010, '{"type":"text","text":"hi"}');
"#,
    )
    .unwrap();
    path
}

#[test]
fn watch_from_all_merges_the_three_readers_and_drains_on_sigterm() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // Every reader's default location under HOME: ~/.claude, ~/.codex, ~/.local/share/opencode.
    let claude = home.join(".claude");
    std::fs::rename(copy_fixture(CLAUDE_FIXTURE, home), &claude).unwrap();
    let codex = home.join(".codex");
    std::fs::rename(copy_fixture(CODEX_FIXTURE, home), &codex).unwrap();
    let db = opencode_db(home);
    // The session file that is appended to while the front door runs.
    let sid = "7c0ffee0-0000-4000-8000-0000000000a1";
    let file = claude_session(&claude, sid, "w1", "before the start");
    let stream = format!("claude-code-{sid}");
    let state = home.join("post.sqlite");
    let args = words(&["--from", "all"], &server.url, &state, &[]);

    let mut child = start(front_door(home, &[&["--watch"][..], &args[..]].concat()));
    wait_until("the backfilled line", &mut child.child, || {
        server.keys(&stream).iter().any(|k| k.starts_with("w1"))
    });
    append_line(&file, &prompt(sid, "w2", "appended while watching"));

    // What plain per-source runs map the final files to.
    let mut want = mapped_keys("claude-read", &claude);
    want.extend(mapped_keys("codex-read", &codex));
    want.extend(mapped_keys("opencode-read", &db));
    for keys in want.values_mut() {
        keys.sort();
    }
    assert!(want.contains_key(&stream) && want.len() >= 4, "{want:?}");
    wait_until("every source's events", &mut child.child, || {
        server.keys_sorted_of(&want) == want
    });

    let r = stop(
        child,
        "-TERM",
        60,
        "--from all --watch did not stop on SIGTERM",
    );
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    assert_not_said(&r, "exited");
    // One pipeline: one tonbo-map and one tonbo-post took the three readers.
    let summaries = |stage: &str, has: &str| {
        r.stderr
            .lines()
            .filter(|l| l.starts_with(stage) && l.contains(has))
            .count()
    };
    assert_eq!(summaries("tonbo-map: ", " records, "), 1, "{}", r.stderr);
    assert_eq!(
        summaries("tonbo-post: ", " events sent in "),
        1,
        "{}",
        r.stderr
    );
    assert_eq!(server.keys_sorted_of(&want), want);

    // A plain re-run of every source (only three have a home here) sends nothing.
    let again = run(front_door(home, &args));
    assert_ok(&again, "re-run");
    assert_eq!(
        again.stderr.matches("0 events sent in 0 batches").count(),
        SOURCES.len(),
        "{}",
        again.stderr
    );
    assert_eq!(server.keys_sorted_of(&want), want);
}

#[test]
fn watch_stops_the_readers_when_a_later_stage_fails() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let claude = tmp.path().join("claude");
    claude_session(
        &claude,
        "7c0ffee0-0000-4000-8000-0000000000f1",
        "f1",
        "a line",
    );
    // A checkpoint under a regular file: tonbo-post cannot open it and exits 2 at once.
    let blocker = tmp.path().join("not-a-folder");
    std::fs::write(&blocker, "").unwrap();
    let state = blocker.join("post.sqlite");

    let front = [
        "--from",
        "claude-code",
        "--watch",
        // Passed on to the reader, which would be named first had it refused it.
        "--poll",
        "--path",
        claude.to_str().unwrap(),
    ];
    let child = start(front_door(
        tmp.path(),
        &words(&front, &server.url, &state, &[]),
    ));
    // Without a stop, the reader would follow for ever; no signal is sent here.
    let r = finish_within(
        child,
        Duration::from_secs(30),
        "--watch kept following after tonbo-post failed",
    );
    assert_eq!(r.code, Some(2), "stderr:\n{}", r.stderr);
    assert_said(
        &r,
        "tonbo-ingest: tonbo-post exited 2; stopping the readers",
    );
    assert_said(&r, "tonbo-ingest: tonbo-post exited 2\n");
    // The reader took --poll, and the SIGTERM it was sent drained it: exit 0.
    assert_not_said(&r, "claude-read exited");
}

/// A script standing in for a stage.
fn stand_in(path: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The first signal goes to the readers, and no further source starts; a second goes to every
/// stage. Stand-ins for claude-read and tonbo-batch that never end by themselves show which
/// stage got which.
#[test]
fn signals_go_first_to_the_readers_then_to_every_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let bins = tmp.path().join("bin");
    std::fs::create_dir(&bins).unwrap();
    for name in [
        "codex-read",
        "opencode-read",
        "gemini-read",
        "copilot-read",
        "tonbo-map",
        "tonbo-post",
    ] {
        std::os::unix::fs::symlink(bin(name), bins.join(name)).unwrap();
    }
    let reading = tmp.path().join("reading");
    let drained = tmp.path().join("drained");
    let touch = |p: &Path| format!("touch '{}'", p.display());
    // Asked where it reads (`--scan`), it finds nothing, as a reader with no sessions does.
    stand_in(
        &bins.join("claude-read"),
        &format!(
            "[ \"$1\" = --scan ] && exit 0\n{}\nexec sleep 60",
            touch(&reading)
        ),
    );
    stand_in(
        &bins.join("tonbo-batch"),
        &format!("cat >/dev/null\n{}\nexec sleep 60", touch(&drained)),
    );
    let (closed, state) = (closed_port_url(), tmp.path().join("post.sqlite"));
    let mut cmd = front_door(tmp.path(), &words(&["--from", "all"], &closed, &state, &[]));
    cmd.env("TONBO_INGEST_BIN_DIR", &bins);
    let mut door = start(cmd);

    wait_until("the reader", &mut door.child, || reading.exists());
    signal(&door.child, "-TERM");
    // The reader stopped, so tonbo-map ended and tonbo-batch's input with it; tonbo-batch holds
    // the pipeline until the second signal.
    wait_until("tonbo-batch's input to end", &mut door.child, || {
        drained.exists()
    });
    let r = stop(door, "-INT", 30, "did not stop on a second signal");
    // The reader ended by the SIGTERM it was sent was stopped, as asked: no failure. tonbo-batch,
    // which ended by the second signal, gives the status.
    assert_eq!(r.code, Some(143), "stderr:\n{}", r.stderr);
    assert_not_said(&r, "claude-read exited");
    assert_said(&r, "tonbo-ingest: tonbo-batch exited 143\n");
    assert_not_said(&r, "tonbo-map exited");
    // No further source was started.
    assert_not_said(&r, "codex-read");
    assert_not_said(&r, "opencode-read");
    assert_not_said(&r, "gemini-read");
    assert_not_said(&r, "copilot-read");
}
