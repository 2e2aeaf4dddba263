//! Drives the real `cline-read --follow` over a storage folder while the test rewrites its
//! files whole, as the extensions do, both by filesystem events and by polling: every element
//! once, in order; a file caught torn waits for its next write; a checkpoint restore (the files
//! truncated, then new messages at the old positions) sends nothing again and every new message;
//! a UI message still streaming waits until it is whole; a history item written after the first
//! messages goes out once. What it wrote equals a plain run over the final files, less what the
//! restore removed.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use tonbo_testkit::in_both_modes;
use tonbo_testkit::reader::{command, put, Following, Mode};

const BIN: &str = env!("CARGO_BIN_EXE_cline-read");
const UNSET: [&str; 4] = [
    "XDG_CONFIG_HOME",
    "CLINE_DATA_DIR",
    "CLINE_DIR",
    "VSCODE_PORTABLE",
];
/// Long enough for the reader to look at a half-written file (several poll intervals).
const PAUSE: Duration = Duration::from_millis(300);
const T0: u64 = 1_762_077_600_000;

/// API message `n` (a user message when even), with `ts` T0 + `ts`.
fn api(n: usize, ts: u64) -> String {
    let role = if n.is_multiple_of(2) {
        "user"
    } else {
        "assistant"
    };
    format!(
        r#"{{"role":"{role}","content":[{{"type":"text","text":"message {n}"}}],"ts":{}}}"#,
        T0 + ts
    )
}

fn ui(ts: u64, partial: bool) -> String {
    format!(
        r#"{{"ts":{},"type":"say","say":"text","text":"ui {ts}","partial":{partial}}}"#,
        T0 + ts
    )
}

/// Writes a file whole, as `JSON.stringify` of the array.
fn write(path: &Path, elements: &[String]) {
    put(path, format!("[{}]", elements.join(",")));
}

struct Task {
    storage: PathBuf,
    dir: PathBuf,
}

impl Task {
    fn new(home: &Path, id: &str) -> Task {
        let storage = home.join("Code/User/globalStorage/rooveterinaryinc.roo-cline");
        let dir = storage.join("tasks").join(id);
        Task { storage, dir }
    }
    fn api(&self, elements: &[String]) {
        write(&self.dir.join("api_conversation_history.json"), elements);
    }
    fn ui(&self, elements: &[String]) {
        write(&self.dir.join("ui_messages.json"), elements);
    }
}

fn start(storage: &Path, mode: Mode) -> Following {
    let mut cmd = command(BIN, storage, &UNSET);
    cmd.arg(storage).args(mode.args());
    let mut f = Following::start(cmd);
    f.stderr_line("backfill done");
    f
}

fn ats(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {}",
                v["session"].as_str().unwrap(),
                v["at"].as_str().unwrap()
            )
        })
        .collect()
}

fn at(n: usize, ts: u64) -> String {
    format!("t1 api:{n}:{}", T0 + ts)
}

fn rewrites_send_each_message_once(mode: Mode) {
    let home = tempfile::tempdir().unwrap();
    let t = Task::new(home.path(), "t1");
    t.api(&[api(0, 0)]);
    let mut f = start(&t.storage, mode);
    assert_eq!(ats(&f.next(1)), [at(0, 0)]);
    let mut msgs = vec![api(0, 0)];
    for n in 1..4 {
        msgs.push(api(n, n as u64 * 1000));
        t.api(&msgs);
        assert_eq!(ats(&f.next(1)), [at(n, n as u64 * 1000)]);
    }
    // Rewritten with the same content (a save with nothing new): nothing.
    t.api(&msgs);
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    let end = f.terminate_ok();
    assert_eq!(end.lines.len(), 4);
    assert!(end.summary().contains("0 rewinds"), "{}", end.stderr);
}

fn a_torn_write_waits_for_the_next(mode: Mode) {
    let home = tempfile::tempdir().unwrap();
    let t = Task::new(home.path(), "t1");
    t.api(&[api(0, 0)]);
    let mut f = start(&t.storage, mode);
    f.next(1);
    let whole = format!("[{},{}]", api(0, 0), api(1, 1000));
    put(&t.dir.join("api_conversation_history.json"), "");
    thread::sleep(PAUSE);
    put(
        &t.dir.join("api_conversation_history.json"),
        &whole[..whole.len() - 20],
    );
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    put(&t.dir.join("api_conversation_history.json"), &whole);
    assert_eq!(ats(&f.next(1)), [at(1, 1000)]);
    let end = f.terminate_ok();
    assert_eq!(end.lines.len(), 2);
}

/// Cline's checkpoint restore keeps API messages up to the restored one's
/// `conversationHistoryIndex + 2` and UI messages up to it, then the task goes on from there.
fn a_checkpoint_restore_sends_nothing_again(mode: Mode) {
    let home = tempfile::tempdir().unwrap();
    let t = Task::new(home.path(), "t1");
    let before: Vec<String> = (0..4).map(|n| api(n, n as u64 * 1000)).collect();
    t.api(&before);
    t.ui(&[ui(0, false), ui(1000, false), ui(3000, false)]);
    let mut f = start(&t.storage, mode);
    f.next(7);
    // Restored to message 1: the files get shorter...
    t.api(&before[..2]);
    t.ui(&[ui(0, false), ui(1000, false)]);
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    // ...then grow again, new messages at the old positions.
    let mut after = before[..2].to_vec();
    after.push(api(2, 9000));
    after.push(api(3, 9500));
    t.api(&after);
    let got = ats(&f.next(2));
    assert_eq!(got, [at(2, 9000), at(3, 9500)]);
    let end = f.terminate_ok();
    assert_eq!(end.lines.len(), 9);
    assert!(!end.summary().contains(" 0 rewinds"), "{}", end.stderr);
}

fn a_streaming_ui_message_waits_until_whole(mode: Mode) {
    let home = tempfile::tempdir().unwrap();
    let t = Task::new(home.path(), "t1");
    t.ui(&[ui(0, false)]);
    let mut f = start(&t.storage, mode);
    f.next(1);
    t.ui(&[ui(0, false), ui(500, true)]);
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    t.ui(&[ui(0, false), ui(500, false)]);
    let line = f.next(1).remove(0);
    assert!(line.contains(r#""partial":false"#), "{line}");
    f.terminate_ok();
}

/// Cline writes `api_req_started` with the request only, then rewrites it in place with its
/// tokens and cost when the request ends: it waits for that.
fn a_request_waits_for_its_usage(mode: Mode) {
    let home = tempfile::tempdir().unwrap();
    let t = Task::new(home.path(), "t1");
    t.ui(&[ui(0, false)]);
    let mut f = start(&t.storage, mode);
    f.next(1);
    let started = |info: &str| {
        format!(
            r#"{{"ts":{},"type":"say","say":"api_req_started","text":{}}}"#,
            T0 + 100,
            serde_json::to_string(info).unwrap()
        )
    };
    t.ui(&[ui(0, false), started(r#"{"request":"hi\n\nLoading..."}"#)]);
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    t.ui(&[
        ui(0, false),
        started(r#"{"request":"hi","tokensIn":10,"tokensOut":2,"cost":0.01}"#),
    ]);
    let line = f.next(1).remove(0);
    assert!(line.contains(r#"\"tokensIn\":10"#), "{line}");
    f.terminate_ok();
}

/// A new task folder is picked up; its history item (Roo Code's `history_item.json`), written
/// after its first messages, goes out once, however often it is rewritten.
fn a_new_task_and_its_late_history_item(mode: Mode) {
    let home = tempfile::tempdir().unwrap();
    let first = Task::new(home.path(), "t1");
    first.api(&[api(0, 0)]);
    let mut f = start(&first.storage, mode);
    f.next(1);
    let t = Task::new(home.path(), "t2");
    t.api(&[api(0, 0)]);
    assert_eq!(ats(&f.next(1)), [format!("t2 api:0:{T0}")]);
    put(
        &t.dir.join("history_item.json"),
        r#"{"id":"t2","ts":1,"task":"x","tokensIn":1,"tokensOut":1,"totalCost":0}"#,
    );
    assert_eq!(ats(&f.next(1)), ["t2 task"]);
    put(
        &t.dir.join("history_item.json"),
        r#"{"id":"t2","ts":2,"task":"x","tokensIn":9,"tokensOut":9,"totalCost":1}"#,
    );
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    f.terminate_ok();
}

/// The newest Cline's SDK: a session folder's messages file rewritten whole (indented), and a
/// sub-agent's file appearing beside it later, read as its own session.
fn an_sdk_session_and_its_late_subagent(mode: Mode) {
    let home = tempfile::tempdir().unwrap();
    let id = "1790000000000_a1b2c";
    let db = home.path().join(".cline/data/db");
    let dir = db.join(id);
    let doc = |msgs: &[String]| {
        format!(
            "{{\n  \"version\": 1,\n  \"agent\": \"lead\",\n  \"messages\": [\n    {}\n  ]\n}}\n",
            msgs.join(",\n    ")
        )
    };
    put(&dir.join(format!("{id}.messages.json")), doc(&[api(0, 0)]));
    let mut f = start(&db, mode);
    assert_eq!(ats(&f.next(1)), [format!("{id} api:0:{T0}")]);
    put(
        &dir.join(format!("{id}.messages.json")),
        doc(&[api(0, 0), api(1, 1000)]),
    );
    assert_eq!(ats(&f.next(1)), [format!("{id} api:1:{}", T0 + 1000)]);
    put(&dir.join("agent_1.messages.json"), doc(&[api(0, 2000)]));
    assert_eq!(
        ats(&f.next(1)),
        [format!("{id}__agent_1 api:0:{}", T0 + 2000)]
    );
    f.terminate_ok();
}

in_both_modes!(
    rewrites_send_each_message_once,
    a_torn_write_waits_for_the_next,
    a_checkpoint_restore_sends_nothing_again,
    a_streaming_ui_message_waits_until_whole,
    a_request_waits_for_its_usage,
    an_sdk_session_and_its_late_subagent,
    a_new_task_and_its_late_history_item,
);
