//! Drives the real `qwen-read` binary over Qwen Code stores built in a temporary HOME, and
//! checks what it writes on stdout and stderr and how it exits, reading and following.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tonbo_testkit::reader::{append, command, put, run_with, Following, Mode, TempHome};
use tonbo_testkit::Run;

const S1: &str = "0a1b2c3d-0001-4e5f-8a9b-000000000001";
const S2: &str = "0a1b2c3d-0002-4e5f-8a9b-000000000002";

/// `qwen-read` with HOME at `home` and none of Qwen Code's own variables.
fn qwen_read(home: &Path) -> Command {
    command(
        env!("CARGO_BIN_EXE_qwen-read"),
        home,
        &["QWEN_HOME", "QWEN_RUNTIME_DIR"],
    )
}

fn run(home: &Path, args: &[&str]) -> Run {
    run_with(qwen_read(home), args, &[])
}

/// A record line of session `s`.
fn line(uuid: &str, text: &str) -> String {
    format!(
        "{{\"uuid\":\"{uuid}\",\"parentUuid\":null,\"sessionId\":\"S\",\"timestamp\":\"2026-11-20T14:00:00.000Z\",\"type\":\"user\",\"cwd\":\"/p\",\"version\":\"0.18.0\",\"message\":{{\"role\":\"user\",\"parts\":[{{\"text\":\"{text}\"}}]}}}}\n"
    )
}

fn chats(base: &Path, project: &str) -> PathBuf {
    base.join(".qwen/projects").join(project).join("chats")
}

fn records(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn reads_the_default_store_and_writes_each_line_as_a_record() {
    let home = &TempHome::new();
    let file = chats(home, "-p").join(format!("{S1}.jsonl"));
    put(&file, line("u1", "hi") + &line("u2", "again"));
    // An archived session.
    put(
        &chats(home, "-q")
            .join("archive")
            .join(format!("{S2}.jsonl")),
        line("v1", "old"),
    );
    // Not Qwen Code's sessions: Gemini CLI's layout under tmp/<hash>, a checkpoint.
    put(
        &home.join(".qwen/tmp/abc/chats/session-2026-01-01T10-00-0a1b2c3d.json"),
        "{}",
    );
    let r = run(home, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let recs = records(&r.stdout);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0]["source"], "qwen-code");
    assert_eq!(recs[0]["session"], S1);
    assert_eq!(recs[0]["at"], format!("{S1}.jsonl:1"));
    assert_eq!(recs[1]["record"]["uuid"], "u2");
    assert_eq!(recs[1]["provenance"]["line"], 2);
    assert_eq!(recs[2]["session"], S2);
    assert!(
        r.stderr.contains("qwen-read: 2 files, 3 lines, 3 records"),
        "{}",
        r.stderr
    );
}

#[test]
fn no_store_is_a_note_not_an_error() {
    let home = &TempHome::new();
    let r = run(home, &[]);
    tonbo_testkit::reader::assert_none_found(&r, "Qwen Code projects folder");
    assert!(r.stderr.contains(".qwen/projects"), "{}", r.stderr);
}

#[test]
fn qwen_runtime_dir_and_qwen_home_move_the_store() {
    let home = &TempHome::new();
    let other = home.join("elsewhere");
    put(
        &other.join("projects/-p/chats").join(format!("{S1}.jsonl")),
        line("u1", "hi"),
    );
    let r = run_with(
        qwen_read(home),
        &[],
        &[("QWEN_HOME", other.to_str().unwrap())],
    );
    assert_eq!(records(&r.stdout).len(), 1, "{}", r.stderr);
    let r = run_with(
        qwen_read(home),
        &[],
        &[
            ("QWEN_RUNTIME_DIR", other.to_str().unwrap()),
            ("QWEN_HOME", "/nowhere"),
        ],
    );
    assert_eq!(records(&r.stdout).len(), 1, "{}", r.stderr);
}

#[test]
fn a_folder_above_the_store_finds_it_and_gemini_files_are_not_read() {
    let home = &TempHome::new();
    put(
        &chats(home, "-p").join(format!("{S1}.jsonl")),
        line("u1", "hi"),
    );
    put(
        &chats(home, "-p").join("session-2026-11-20T14-00-0a1b2c3d.jsonl"),
        line("g", "gemini"),
    );
    put(
        &chats(home, "-p").join("notes.jsonl"),
        line("n", "not a session"),
    );
    let r = run(home, &[home.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let recs = records(&r.stdout);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["record"]["uuid"], "u1");
}

#[test]
fn bad_lines_are_rejected_a_torn_last_line_waits_and_nothing_read_exits_3() {
    let home = &TempHome::new();
    let file = chats(home, "-p").join(format!("{S1}.jsonl"));
    put(
        &file,
        line("u1", "hi") + "not json\n" + "{\"uuid\":\"u3\",\"ty",
    );
    let r = run(home, &[file.to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(records(&r.stdout).len(), 1);
    assert!(r.stderr.contains("incomplete last line"), "{}", r.stderr);
    assert!(
        r.stderr.contains("1 incomplete, 1 rejected"),
        "{}",
        r.stderr
    );

    let empty = home.join("empty");
    put(&empty.join("chats").join(format!("{S2}.jsonl")), "{\"torn");
    let r = run(home, &[empty.to_str().unwrap()]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stderr.contains("warning"), "{}", r.stderr);
}

#[test]
fn modified_after_leaves_old_files_out() {
    let home = &TempHome::new();
    let file = chats(home, "-p").join(format!("{S1}.jsonl"));
    put(&file, line("u1", "hi"));
    tonbo_testkit::reader::set_mtime(&file, tonbo_testkit::reader::long_ago());
    let r = run(home, &["--modified-after", "2d"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("skipped 1 files not modified"),
        "{}",
        r.stderr
    );
}

#[test]
fn scan_lists_sessions_without_reading_them() {
    let home = &TempHome::new();
    put(
        &chats(home, "-p").join(format!("{S1}.jsonl")),
        line("u1", "hi"),
    );
    put(
        &chats(home, "-q").join(format!("{S2}.jsonl")),
        line("u1", "hi") + &line("u2", "x"),
    );
    let r = run(home, &["--scan"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines = records(&r.stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["source"], "qwen-code");
    assert_eq!(lines[0]["session"], S1);
    assert!(lines[1]["bytes"].as_u64().unwrap() > lines[0]["bytes"].as_u64().unwrap());
    assert!(lines[0].get("expires").is_none_or(Value::is_null));
    assert!(r.stderr.contains("scan: 2 sessions"), "{}", r.stderr);
}

fn follows_appends_new_files_and_torn_lines(mode: Mode) {
    let home = &TempHome::new();
    let file = chats(home, "-p").join(format!("{S1}.jsonl"));
    put(&file, line("u1", "hi"));
    let mut cmd = qwen_read(home);
    cmd.args(mode.args());
    let mut f = Following::start(cmd);
    assert!(f.next(1)[0].contains("\"u1\""));
    // A line is passed on once its newline is written.
    let second = line("u2", "more");
    let (head, tail) = second.split_at(20);
    append(&file, head);
    std::thread::sleep(std::time::Duration::from_millis(300));
    f.assert_no_line_yet();
    append(&file, tail);
    assert!(f.next(1)[0].contains("\"u2\""));
    // A session started later, in a project folder made later.
    put(
        &chats(home, "-new").join(format!("{S2}.jsonl")),
        line("v1", "new"),
    );
    let got = f.next(1);
    assert!(got[0].contains(S2), "{got:?}");
    let ended = f.terminate_ok();
    assert!(ended.summary().contains("3 records"), "{}", ended.stderr);
}

/// A file `--modified-after` left out of the first pass is read whole once written to.
fn follows_a_file_left_out_once_it_is_written_to(mode: Mode) {
    let home = &TempHome::new();
    let old = chats(home, "-p").join(format!("{S1}.jsonl"));
    put(&old, line("u1", "old"));
    tonbo_testkit::reader::set_mtime(&old, tonbo_testkit::reader::long_ago());
    let fresh = chats(home, "-p").join(format!("{S2}.jsonl"));
    put(&fresh, line("v1", "fresh"));
    let mut cmd = qwen_read(home);
    cmd.args(mode.args()).args(["--modified-after", "2d"]);
    let mut f = Following::start(cmd);
    assert!(f.next(1)[0].contains("\"v1\""));
    append(&old, line("u2", "new"));
    let got = f.next(2);
    assert!(
        got[0].contains("\"u1\"") && got[1].contains("\"u2\""),
        "{got:?}"
    );
    f.terminate_ok();
}

tonbo_testkit::in_both_modes!(
    follows_appends_new_files_and_torn_lines,
    follows_a_file_left_out_once_it_is_written_to
);

/// Gemini CLI's fixtures (its main chats and its sub-agents' `chats/<parent>/<id>.jsonl`) are
/// gemini-read's: qwen-read finds no session in them.
#[test]
fn gemini_cli_chats_are_never_read() {
    let home = &TempHome::new();
    let gemini = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gemini");
    let r = run(home, &[gemini.to_str().unwrap()]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("qwen-read: 0 files"), "{}", r.stderr);
}
