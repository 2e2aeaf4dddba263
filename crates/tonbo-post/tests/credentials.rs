//! Credentials in the server's URL (`--api http://user:password@host`, a token in the stream
//! URL's query) and the API key are never printed or stored: not in the summary, retry or error
//! lines, not in `--dry-run` or `--verify` output, not in the front door's messages, not in the
//! checkpoint (its WAL included) or its in-flight bodies; a checkpoint written before, which
//! holds them, loses them on its next open and keeps its state. The real binaries run against
//! the reference server (which ignores the userinfo, the token and the key) and against a port
//! where nothing listens.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;
use support::*;

const PASSWORD: &str = "s3cretpw";
const QUERY_TOKEN: &str = "qtok-7f3e9a61";
const API_KEY: &str = "sk-key-5b8c1d04";
/// A stream URL with a token in its query, as some gateways take it.
const TEMPLATE: &str = "{base}/v1/sessions/{session_id}/events?token=qtok-7f3e9a61";

/// `http://127.0.0.1:PORT` with a user and password.
fn with_password(base: &str) -> String {
    base.replacen("http://", &format!("http://alice:{PASSWORD}@"), 1)
}

/// The stream URL of `session` as it may be shown: no userinfo, the token's value hidden.
fn shown(base: &str, session: &str) -> String {
    format!("{base}/v1/sessions/{session}/events?token=***")
}

#[track_caller]
fn assert_clean(what: &str, bytes: &[u8]) {
    for secret in [PASSWORD, QUERY_TOKEN, API_KEY] {
        if let Some(at) = bytes
            .windows(secret.len())
            .position(|w| w == secret.as_bytes())
        {
            // Where it is, not the whole (often binary) file.
            let around = &bytes[at.saturating_sub(80)..(at + secret.len() + 80).min(bytes.len())];
            let around: String = String::from_utf8_lossy(around)
                .chars()
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            panic!("{what} holds {secret}: …{around}…");
        }
    }
}

#[track_caller]
fn assert_run_clean(what: &str, run: &Run) {
    assert_clean(&format!("{what}: stdout"), run.stdout.as_bytes());
    assert_clean(&format!("{what}: stderr"), run.stderr.as_bytes());
}

/// Every file of the checkpoint: the database, its WAL and shared memory, the lock, and the
/// in-flight request bodies.
#[track_caller]
fn assert_state_clean(state: &Path) {
    let dir = state.parent().unwrap();
    let name = state.file_name().unwrap().to_str().unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap();
        if !file.starts_with(name) {
            continue;
        }
        let files: Vec<PathBuf> = if path.is_dir() {
            std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        } else {
            vec![path]
        };
        for f in files {
            assert_clean(&f.display().to_string(), &std::fs::read(&f).unwrap());
            seen += 1;
        }
    }
    assert!(seen > 0, "no checkpoint files at {}", state.display());
}

/// The pipeline into `base` with the API key in the environment.
fn post(base: &str, input: &Path, state: &Path, args: &[&str]) -> Run {
    let mut post = tonbo_post(base, state, args);
    post.env("TONBO_API_KEY", API_KEY);
    finish(&mut start_pipeline_into(input, &[], post))
}

#[test]
fn credentials_in_the_url_are_never_printed_or_stored() {
    let server = Server::start();
    let base = with_password(&server.url);
    let t = Scratch::new();
    let (input, state) = (&t.input, &t.state);
    let tpl = ["--url-template", TEMPLATE];

    // Delivered, the server taking the userinfo and the token, through two retries.
    write_records(input, &[("c", 0..5), ("d", 0..3)]);
    server.inject(
        json!({"path": "/v1/sessions/c/events", "method": "POST", "status": 503, "count": 2}),
    );
    let run = post(&base, input, state, &tpl);
    let c = shown(&server.url, "c");
    run.assert_ok()
        .assert_says(&format!("append to {c}: HTTP 503; retry 1/8"));
    assert_run_clean("first run", &run);
    assert_state_clean(state);
    assert_holds(&server, "c", 5);

    // A second checkpoint meets the streams as existing ones and names them.
    let other = t.path("other.sqlite");
    write_records(input, &[("c", 0..6), ("d", 0..3)]);
    let run = post(&base, input, &other, &tpl);
    run.assert_ok().assert_says(&format!(
        "{c}: not in the checkpoint; the stream already holds 5 events"
    ));
    assert_run_clean("second checkpoint", &run);
    assert_state_clean(&other);
    assert_holds(&server, "c", 6);

    // --dry-run and --verify print the URL without them.
    write_records(input, &[("c", 0..7), ("d", 0..3)]);
    let run = post(&base, input, state, &[&tpl[..], &["--dry-run"]].concat());
    run.assert_ok();
    assert_eq!(run.json_lines()[0]["url"], c, "{}", run.stdout);
    assert_run_clean("--dry-run", &run);
    let verify = [&tpl[..], &["--verify"]].concat();
    let run = post(&base, input, state, &verify);
    run.assert_code(1);
    let first = &run.json_lines()[0];
    assert_eq!(first["url"], c, "{}", run.stdout);
    assert_eq!(first["missing"], json!(["c-6"]), "{}", run.stdout);
    assert_run_clean("--verify", &run);

    // A read the server refuses: --verify's error field names the stream.
    server.inject(
        json!({"path": "/v1/sessions/c/events", "method": "GET", "status": 400, "count": 1}),
    );
    let run = post(&base, input, state, &verify);
    run.assert_code(1);
    let error = run.json_lines()[0]["error"].clone();
    assert!(
        error
            .as_str()
            .unwrap_or_default()
            .contains(&format!("reading stream {c} failed with HTTP 400")),
        "{}",
        run.stdout
    );
    assert_run_clean("--verify, a read refused", &run);

    // Nobody listening: retry lines and the session's failure.
    let down = with_password(&closed_port());
    let down_state = t.path("down.sqlite");
    let retries = ["--max-retries", "2", "--max-retry-delay", "0.01"];
    let run = post(&down, input, &down_state, &[&tpl[..], &retries].concat());
    run.assert_code(1)
        .assert_says("retry 1/2")
        .assert_says("?token=***");
    assert_run_clean("server down", &run);
    assert_state_clean(&down_state);
    // The scheme forgotten: whatever the HTTP library makes of it, the password stays out.
    let bare = base.trim_start_matches("http://").to_string();
    let run = post(&bare, input, &down_state, &retries);
    run.assert_code(1);
    assert_run_clean("no scheme", &run);
    assert_state_clean(&down_state);
    assert_state_clean(state);
}

/// A checkpoint written before credentials were stripped holds the full URL: the next open
/// rewrites it and scrubs the old bytes, and the stream's state carries over (nothing is sent
/// twice, nothing read back).
#[test]
fn a_checkpoint_holding_credentials_is_cleaned_on_open_and_keeps_its_state() {
    let server = Server::start();
    let base = with_password(&server.url);
    let t = Scratch::new();
    let (input, state) = (&t.input, &t.state);
    let tpl = ["--url-template", TEMPLATE];
    write_records(input, &[("u", 0..4), ("v", 0..2)]);
    post(&base, input, state, &tpl).assert_ok();
    {
        // As the builds before this one stored it: the URL as given.
        let db = rusqlite::Connection::open(state).unwrap();
        let full = format!("{base}/v1/sessions/u/events?token={QUERY_TOKEN}");
        let n = db
            .execute(
                "UPDATE stream SET url = ?1 WHERE url LIKE '%/u/events%'",
                [&full],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    assert!(std::fs::read(state)
        .unwrap()
        .windows(PASSWORD.len())
        .any(|w| w == PASSWORD.as_bytes()));
    write_records(input, &[("u", 0..5), ("v", 0..2)]);
    // --dry-run reads the file as it is, and finds the stream by the URL as given.
    let run = post(&base, input, state, &[&tpl[..], &["--dry-run"]].concat());
    run.assert_says("would send 1 events to 1 sessions in 1 batches, 6 already present");
    assert_run_clean("--dry-run before the upgrade", &run);
    let run = post(&base, input, state, &tpl);
    run.assert_ok()
        .assert_says("2 sessions, 1 events sent in 1 batches, 6 already present");
    assert!(
        !run.stderr.contains("not in the checkpoint"),
        "{}",
        run.stderr
    );
    assert_run_clean("after the upgrade", &run);
    assert_state_clean(state);
    assert_holds(&server, "u", 5);
}

/// The front door passes the URL on to tonbo-post, and echoes nothing of it.
#[test]
fn the_front_door_prints_no_credentials() {
    let server = Server::start();
    let base = with_password(&server.url);
    let home = tempfile::tempdir().unwrap();
    let fixture = home.path().join("03-tools");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(workspace_root().join("testdata/claude/03-tools"))
        .arg(&fixture)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let state = home.path().join("state.sqlite");
    let front_door = |args: &[&str]| -> Run {
        let mut child = tonbo_testkit::front_door(&bin("tonbo-ingest"), home.path())
            .args(args)
            .env("TONBO_API_KEY", API_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        finish(&mut child)
    };
    let path = fixture.to_str().unwrap();
    let state_arg = state.to_str().unwrap();
    // --from claude-code --path FIXTURE [FRONT...] -- --api API ... [POST...]
    let ingest = |api: &str, front: &[&str], post: &[&str]| -> Run {
        let mut a = vec!["--from", "claude-code", "--path", path];
        a.extend(front);
        a.extend(["--", "--api", api, "--url-template", TEMPLATE]);
        a.extend(["--state", state_arg]);
        a.extend(post);
        front_door(&a)
    };

    let run = ingest(&base, &["--dry-run"], &[]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.stderr.contains("dry run: would send"), "{}", run.stderr);
    assert_run_clean("front door --dry-run", &run);
    let run = ingest(&base, &[], &[]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_run_clean("front door", &run);
    assert_state_clean(&state);
    let down = with_password(&closed_port());
    let run = ingest(
        &down,
        &[],
        &["--max-retries", "1", "--max-retry-delay", "0.01"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("tonbo-post exited 1"), "{}", run.stderr);
    assert!(run.stderr.contains("retry 1/1"), "{}", run.stderr);
    assert_run_clean("front door, server down", &run);
    assert_state_clean(&state);

    // Usage errors echo what was given, less its credentials.
    let misplaced = format!("{base}/x?api_key={QUERY_TOKEN}");
    let run = front_door(&["--from", "claude-code", &misplaced]);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("unknown argument: {}/x?api_key=***", server.url)),
        "{}",
        run.stderr
    );
    assert_run_clean("front door, unknown argument", &run);
    let run = front_door(&["--from", &misplaced]);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert_run_clean("front door, unknown source", &run);
}
