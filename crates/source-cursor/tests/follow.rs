//! Drives the real `cursor-read --follow` over a Cursor database while the test writes it as
//! Cursor does (WAL mode, rows replaced in place, the connection kept open), by filesystem
//! events and by polling, and checks the exact records: each new message written once, a
//! message still being generated held back until done, a message whose bytes changed (a tool
//! call that got its result) written again with the same `at`, and nothing held back lost at
//! SIGTERM.
//!
//! Nothing here measures time: output is waited for with a generous deadline, and the pauses
//! only give the reader a chance to see a half-written state.

mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tonbo_testkit::in_both_modes;
use tonbo_testkit::reader::{Following, Mode, TempHome};

const PAUSE: Duration = Duration::from_millis(300);

fn follow(home: &Path, user: &Path, mode: Mode) -> Following {
    let mut cmd = cursor_read(home);
    cmd.args(mode.args()).arg(user);
    Following::start(cmd)
}

fn record(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap();
    v["record"].clone()
}

fn new_messages_go_out_once_and_a_generating_one_when_done(mode: Mode) {
    let home = TempHome::new();
    let dir = home.join("User");
    let mut live = Live::new(&dir);
    live.bubble("u1", user("u1", "list the files"));
    let mut f = follow(&home, &dir, mode);
    assert_eq!(ats(&f.next(2)), ["composer", "u1"]);
    live.status = "generating";
    live.generating = vec!["a1".into()];
    live.bubble("a1", answer("a1", "src/ and"));
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    live.status = "completed";
    live.generating.clear();
    live.bubble("a1", answer("a1", "src/ and Cargo.toml."));
    let a1 = f.next(1);
    assert_eq!(ats(&a1), ["a1"]);
    assert_eq!(record(&a1[0])["text"], "src/ and Cargo.toml.");
    live.bubble("t1", tool("t1", "loading"));
    let t1 = f.next(1);
    assert_eq!(record(&t1[0])["toolFormerData"]["status"], "loading");
    live.bubble("t1", tool("t1", "completed"));
    let t1 = f.next(1);
    assert_eq!(ats(&t1), ["t1"]);
    assert_eq!(record(&t1[0])["toolFormerData"]["status"], "completed");
    live.bubble("u2", user("u2", "thanks"));
    assert_eq!(ats(&f.next(1)), ["u2"]);
    let end = f.terminate_ok();
    assert_eq!(ats(&end.lines), ["composer", "u1", "a1", "t1", "t1", "u2"]);
    drop(live);
}

fn what_is_held_back_goes_out_at_sigterm(mode: Mode) {
    let home = TempHome::new();
    let dir = home.join("User");
    let mut live = Live::new(&dir);
    live.bubble("u1", user("u1", "go"));
    let mut f = follow(&home, &dir, mode);
    assert_eq!(ats(&f.next(2)), ["composer", "u1"]);
    live.status = "generating";
    live.bubble("a1", answer("a1", "halfway"));
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    let end = f.terminate_ok();
    assert_eq!(ats(&end.lines), ["composer", "u1", "a1"]);
    drop(live);
}

in_both_modes!(
    new_messages_go_out_once_and_a_generating_one_when_done,
    what_is_held_back_goes_out_at_sigterm,
);
