//! Drives the real `gemini-read --follow` over fake homes while the test writes them, by
//! filesystem events and by polling, and checks the exact records it writes: a message held
//! until settled (a new message, or the file quiet for the poll interval), written again only
//! when it grew, a legacy document rewritten whole diffed by message id, a replaced file read
//! again without repeats, and nothing held back lost at SIGTERM.
//!
//! Nothing here measures time: output is waited for with a generous deadline, and the pauses
//! only give the reader a chance to see a file half-written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use serde_json::Value;
use tonbo_testkit::in_both_modes;
use tonbo_testkit::reader::{append, command, put, Following, Mode, TempHome};

const BIN: &str = env!("CARGO_BIN_EXE_gemini-read");
const PAUSE: Duration = Duration::from_millis(300);
const ID: &str = "f0110000-0000-4000-8000-000000000001";

/// `gemini-read --follow` in `mode`, its poll interval (also the quiet flush) `interval` ms.
fn follow_every(home: &Path, mode: Mode, interval: &str) -> Following {
    let mut cmd: Command = command(BIN, home, &["GEMINI_CLI_HOME"]);
    cmd.arg("--follow").args(["--poll-interval", interval]);
    if mode == Mode::Poll {
        cmd.arg("--poll");
    }
    Following::start(cmd)
}

fn follow(home: &Path, mode: Mode) -> Following {
    follow_every(home, mode, "100")
}

fn chats(home: &Path) -> PathBuf {
    home.join(".gemini/tmp/proj/chats")
}

/// The `at` after the file name, and the record, of a stdout line.
fn at_and_record(line: &str) -> (String, Value) {
    let v: Value = serde_json::from_str(line).unwrap();
    let at = v["at"].as_str().unwrap();
    let key = at.split_once(':').unwrap().1.to_string();
    (key, v["record"].clone())
}

fn keys(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| at_and_record(l).0).collect()
}

fn meta() -> String {
    format!(
        r#"{{"sessionId":"{ID}","projectHash":"proj","startTime":"2026-06-01T10:00:00.000Z","lastUpdated":"2026-06-01T10:00:00.000Z","kind":"main"}}"#
    )
}

fn user(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","timestamp":"2026-06-01T10:00:01.000Z","type":"user","content":[{{"text":"prompt {id}"}}]}}"#
    )
}

fn gemini(id: &str, status: &str) -> String {
    format!(
        r#"{{"id":"{id}","timestamp":"2026-06-01T10:00:02.000Z","type":"gemini","content":"","toolCalls":[{{"id":"c1","name":"run_shell_command","args":{{"command":"ls"}},"status":"{status}","timestamp":"2026-06-01T10:00:02.000Z"}}]}}"#
    )
}

fn a_growing_message_is_written_when_settled_and_again_when_it_grew(mode: Mode) {
    let home = TempHome::new();
    let file = chats(&home).join("session-2026-06-01T10-00-f0110000.jsonl");
    put(&file, "");
    let mut f = follow(&home, mode);
    thread::sleep(PAUSE);
    append(&file, format!("{}\n{}\n", meta(), user("u1")));
    // u1 is the newest message: written once the file is quiet.
    assert_eq!(keys(&f.next(2)), ["session", "u1"]);
    append(&file, format!("{}\n", gemini("g1", "executing")));
    let g1 = f.next(1);
    assert_eq!(
        at_and_record(&g1[0]).1["toolCalls"][0]["status"],
        "executing"
    );
    // Half a line, then the rest: nothing until the newline.
    let done = gemini("g1", "success");
    append(&file, &done[..20]);
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    append(
        &file,
        format!("{}\n{}\n", &done[20..], gemini("g1", "success")),
    );
    let grown = f.next(1);
    assert_eq!(keys(&grown), ["g1"]);
    assert_eq!(
        at_and_record(&grown[0]).1["toolCalls"][0]["status"],
        "success"
    );
    append(
        &file,
        format!("{}\n{}\n", user("u2"), "{\"$rewindTo\":\"u2\"}"),
    );
    assert_eq!(keys(&f.next(2)), ["u2", "rewind:u2"]);
    append(&file, format!("{}\n", user("u3")));
    thread::sleep(PAUSE);
    let end = f.terminate_ok();
    assert_eq!(
        keys(&end.lines),
        ["session", "u1", "g1", "g1", "u2", "rewind:u2", "u3"]
    );
}

fn a_replaced_file_is_read_again_without_repeats(mode: Mode) {
    let home = TempHome::new();
    let file = chats(&home).join("session-2026-06-01T10-00-f0110000.jsonl");
    put(
        &file,
        format!("{}\n{}\n{}\n", meta(), user("u1"), gemini("g1", "success")),
    );
    let mut f = follow(&home, mode);
    assert_eq!(keys(&f.next(3)), ["session", "u1", "g1"]);
    // Gemini CLI's recovery rewrite: a temp file renamed over the chat.
    let tmp = file.with_extension("jsonl.tmp-42");
    put(
        &tmp,
        format!(
            "{}\n{}\n{}\n{}\n",
            meta(),
            user("u1"),
            gemini("g1", "success"),
            user("u2")
        ),
    );
    std::fs::rename(&tmp, &file).unwrap();
    assert_eq!(keys(&f.next(1)), ["u2"]);
    thread::sleep(PAUSE);
    let end = f.terminate_ok();
    assert_eq!(end.lines.len(), 4, "{:#?}", end.lines);
}

fn document(messages: &[String], updated: &str) -> String {
    format!(
        "{{\n  \"sessionId\": \"{ID}\",\n  \"projectHash\": \"proj\",\n  \"startTime\": \"2026-03-01T10:00:00.000Z\",\n  \"lastUpdated\": \"{updated}\",\n  \"messages\": [\n    {}\n  ]\n}}",
        messages.join(",\n    ")
    )
}

fn a_legacy_document_rewritten_whole_gives_only_new_messages(mode: Mode) {
    let home = TempHome::new();
    let file = chats(&home).join("session-2026-03-01T10-00-f0110000.json");
    put(&file, document(&[user("m1")], "2026-03-01T10:00:01.000Z"));
    let mut f = follow(&home, mode);
    assert_eq!(keys(&f.next(2)), ["session", "m1"]);
    let two = [user("m1"), gemini("m2", "success")];
    let whole = document(&two, "2026-03-01T10:00:02.000Z");
    // Caught mid-write (writeFileSync is not atomic): nothing, then the whole.
    std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();
    thread::sleep(PAUSE);
    f.assert_no_line_yet();
    std::fs::write(&file, &whole).unwrap();
    assert_eq!(keys(&f.next(1)), ["m2"]);
    let three = [user("m1"), gemini("m2", "success"), user("m3")];
    std::fs::write(&file, document(&three, "2026-03-01T10:00:03.000Z")).unwrap();
    assert_eq!(keys(&f.next(1)), ["m3"]);
    thread::sleep(PAUSE);
    let end = f.terminate_ok();
    assert_eq!(keys(&end.lines), ["session", "m1", "m2", "m3"]);
}

fn what_is_held_back_goes_out_at_sigterm(mode: Mode) {
    let home = TempHome::new();
    let file = chats(&home).join("session-2026-06-01T10-00-f0110000.jsonl");
    put(&file, format!("{}\n{}\n", meta(), user("u1")));
    // A quiet flush far away: only the last look can write u2 (polling: the first look after
    // a minute, so the backfill's u1 is all before the signal).
    let mut f = follow_every(&home, mode, "60000");
    assert_eq!(keys(&f.next(2)), ["session", "u1"]);
    thread::sleep(PAUSE);
    append(&file, format!("{}\n", user("u2")));
    thread::sleep(PAUSE);
    let end = f.terminate_ok();
    assert_eq!(keys(&end.lines), ["session", "u1", "u2"]);
}

in_both_modes!(
    a_growing_message_is_written_when_settled_and_again_when_it_grew,
    a_replaced_file_is_read_again_without_repeats,
    a_legacy_document_rewritten_whole_gives_only_new_messages,
    what_is_held_back_goes_out_at_sigterm,
);
