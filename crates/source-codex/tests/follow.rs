//! Drives the real `codex-read --follow` over fake Codex homes while the test writes them, both
//! by filesystem events and by polling (`--poll --poll-interval 50`), and checks the exact lines
//! it writes: each once, in order, with the session and provenance of a plain run over the final
//! files; and the plain run's stop at a record boundary on SIGTERM.
//!
//! Nothing here measures time: output is waited for with a generous deadline (a busy CI machine
//! may be slow), and the pauses between writes only give the reader a chance to see a file
//! half-written; what it writes must be the same whether it did or not.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use serde::Deserialize;
use tempfile::TempDir;
use tonbo_testkit::reader::{
    append, assert_ends, assert_has, assert_stopped_at_a_record_boundary, command, put,
    terminated_after_first_line, Following,
};
use tonbo_testkit::Run;

const BIN: &str = env!("CARGO_BIN_EXE_codex-read");
/// Long enough for the reader to look at a half-written file (several poll intervals).
const PAUSE: Duration = Duration::from_millis(300);

/// The two ways of watching: filesystem events, and polling every 50 ms.
const MODES: [&[&str]; 2] = [&[], &["--poll", "--poll-interval", "50"]];

const U1: &str = "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a01";
const U2: &str = "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a02";
const U3: &str = "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a03";
const U4: &str = "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a04";
/// In file names whose content names another session: the content must win.
const UF: &str = "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7aff";

// ---------------------------------------------------------------------------------------------
// Fixtures, after the format's examples (FORMAT.md of source-codex)

fn meta(id: &str) -> String {
    format!(
        r#"{{"timestamp":"2025-11-02T08:00:00.120Z","type":"session_meta","payload":{{"id":"{id}","timestamp":"2025-11-02T08:00:00.101Z","cwd":"/home/u/proj","originator":"codex_cli_rs","cli_version":"0.53.0","source":"cli"}}}}"#
    )
}

/// A V2 line whose re-serialisation would change: odd spacing, `1.50`, escapes.
fn item(n: usize) -> String {
    format!(
        r#"{{"timestamp":"2025-11-02T08:00:0{}.000Z", "type":"response_item","payload":{{"type":"message","role":"user","n":{n}.50,"content":[{{"type":"input_text","text":"caf\u00e9 \"{n}\""}}]}}}}"#,
        n % 10
    )
}

fn v1_meta(id: &str) -> String {
    format!(r#"{{"id":"{id}","timestamp":"2025-08-02T14:03:22.911Z","instructions":null}}"#)
}

fn v1_item(n: usize) -> String {
    format!(
        r#"{{"type":"message","id":null,"role":"user","content":[{{"type":"input_text","text":"step {n}"}}]}}"#
    )
}

/// A V0 document (`JSON.stringify(.., null, 2)`) with items 0..n.
fn v0_doc(id: &str, items: &[usize]) -> String {
    let items: Vec<String> = items.iter().map(|&n| v0_item_pretty(n)).collect();
    format!(
        "{{\n  \"session\": {{\n    \"timestamp\": \"2025-04-20T10:02:11.512Z\",\n    \"id\": \"{id}\",\n    \"instructions\": \"\"\n  }},\n  \"items\": [\n{}\n  ]\n}}",
        items.join(",\n")
    )
}

fn v0_item_pretty(n: usize) -> String {
    format!(
        "    {{\n      \"id\": \"msg_{n}\",\n      \"type\": \"message\",\n      \"role\": \"assistant\",\n      \"content\": [\n        {{\n          \"type\": \"output_text\",\n          \"text\": \"answer  {n}\"\n        }}\n      ]\n    }}"
    )
}

fn lines(ls: &[String]) -> String {
    ls.iter().map(|l| format!("{l}\n")).collect()
}

fn rollout(dir: &Path, ts: &str, id: &str) -> PathBuf {
    dir.join(format!("rollout-{ts}-{id}.jsonl"))
}

/// The record a plain run writes for a JSONL line.
fn line_rec(kind: Option<&str>, session: &str, record: &str, file: &Path, line: u64) -> String {
    let kind = kind
        .map(|k| format!("\"kind\":\"{k}\","))
        .unwrap_or_default();
    let name = file.file_name().unwrap().to_str().unwrap();
    let at = format!("{}:{line}", name.strip_suffix(".zst").unwrap_or(name));
    format!(
        "{{\"v\":1,\"source\":\"codex\",{kind}\"session\":{},\"record\":{record},\"at\":{},\"provenance\":{{\"file\":{},\"line\":{line}}}}}",
        serde_json::to_string(session).unwrap(),
        serde_json::to_string(&at).unwrap(),
        serde_json::to_string(file.to_str().unwrap()).unwrap()
    )
}

// ---------------------------------------------------------------------------------------------
// Running the binary

/// codex-read over `home`'s Codex folders (HOME is `home`, CODEX_HOME unset).
fn codex_read(home: &Path) -> Command {
    command(BIN, home, &["CODEX_HOME"])
}

/// Starts following `home`'s Codex folders in `mode` and waits until the backfill is done, so
/// that what the test writes next is seen as new.
fn start(home: &Path, mode: &[&str]) -> Following {
    let mut cmd = codex_read(home);
    cmd.arg("--follow").args(mode);
    let mut f = Following::start(cmd);
    f.stderr_line("backfill done");
    f
}

/// A plain run (no --follow) over `home`'s Codex folders.
fn plain(home: &Path) -> Run {
    tonbo_testkit::run(codex_read(home), None)
}

/// Provenance of an output line: file, and line or row.
fn provenance(line: &str) -> (String, String) {
    #[derive(Deserialize)]
    struct Rec {
        provenance: Prov,
    }
    #[derive(Deserialize)]
    struct Prov {
        file: String,
        line: Option<u64>,
        row: Option<String>,
    }
    let r: Rec =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a source record ({e}): {line}"));
    let at = match (r.provenance.line, r.provenance.row) {
        (Some(l), None) => l.to_string(),
        (None, Some(row)) => format!("#{row}"),
        _ => panic!("provenance needs a line or a row: {line}"),
    };
    (r.provenance.file, at)
}

/// The follow wrote exactly the records a plain run over the final files writes, each once,
/// and each file's in the plain run's order (files may interleave differently).
fn assert_same_as_plain(followed: &[String], home: &Path) {
    let p = plain(home);
    assert_eq!(p.code, Some(0), "plain run: {:#?}", p.stderr);
    let by_file = |ls: &[String]| {
        let mut files: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for l in ls {
            files.entry(provenance(l).0).or_default().push(l.clone());
        }
        files
    };
    let (f, p) = (by_file(followed), by_file(&p.lines()));
    assert_eq!(
        f.keys().collect::<Vec<_>>(),
        p.keys().collect::<Vec<_>>(),
        "files"
    );
    for (file, want) in &p {
        assert_eq!(&f[file], want, "records of {file}");
    }
}

/// Runs `test` once in each of `modes`, in a fresh home each time.
fn each_mode(modes: &[&[&str]], test: impl Fn(&Path, &[&str])) {
    for mode in modes {
        let tmp = TempDir::new().unwrap();
        test(tmp.path(), mode);
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn appended_lines_arrive_in_order_with_their_session() {
    each_mode(&MODES, |home, mode| {
        let day = home.join(".codex/sessions/2025/11/02");
        let v2 = rollout(&day, "2025-11-02T08-00-00", UF);
        put(&v2, lines(&[meta(U2), item(1)]));
        let v1 = home.join(format!(
            ".codex/sessions/rollout-2025-08-02T14-03-22-{U1}.jsonl"
        ));
        // A BOM before the first line is dropped as a plain run drops it.
        put(
            &v1,
            format!(
                "\u{feff}{}",
                lines(&[v1_meta(U1), r#"{"record_type":"state"}"#.into()])
            ),
        );
        let mut f = start(home, mode);
        f.until(4);
        for n in 2..=4 {
            // One of them with a Windows line ending.
            let end = if n == 3 { "\r\n" } else { "\n" };
            append(&v2, format!("{}{end}", item(n)));
            let got = f.until(4 + n - 1);
            assert_eq!(
                got.last().unwrap(),
                &line_rec(None, U2, &item(n), &v2, n as u64 + 1),
                "mode {mode:?}"
            );
        }
        append(&v1, format!("{}\n", v1_item(1)));
        f.until(8);
        append(&v1, format!("{}\n", r#"{"record_type":"state"}"#));
        f.until(9);
        let e = f.terminate_ok();
        assert_eq!(
            e.lines[8],
            line_rec(Some("v1"), U1, r#"{"record_type":"state"}"#, &v1, 4)
        );
        assert_eq!(e.lines.len(), 9);
        assert_same_as_plain(&e.lines, home);
        assert_ends(e.summary(), ", 0 rewrites");
    });
}

#[test]
fn a_file_created_empty_and_written_in_parts_is_told_and_read_from_line_1_once() {
    each_mode(&MODES, |home, mode| {
        let day = home.join(".codex/sessions/2025/11/02");
        fs::create_dir_all(&day).unwrap();
        let mut f = start(home, mode);
        // Codex creates the file with its first write; here it is empty for a while, then
        // gets its first line in two writes.
        let path = rollout(&day, "2025-11-02T08-00-00", UF);
        File::create(&path).unwrap();
        thread::sleep(PAUSE);
        let first = meta(U2);
        let (a, b) = first.split_at(first.len() / 2);
        append(&path, a);
        thread::sleep(PAUSE);
        append(&path, format!("{b}\n"));
        let got = f.until(1);
        assert_eq!(
            got[0],
            line_rec(None, U2, &first, &path, 1),
            "mode {mode:?}"
        );
        for n in 1..=3 {
            // Each line in two writes too.
            let l = item(n);
            let (a, b) = l.split_at(10);
            append(&path, a);
            thread::sleep(PAUSE / 3);
            append(&path, format!("{b}\n"));
            f.until(1 + n);
        }
        let e = f.terminate_ok();
        assert_eq!(e.lines.len(), 4);
        assert_same_as_plain(&e.lines, home);
        assert_has(
            e.summary(),
            "1 files (0 v0, 0 seed, 0 v1, 1 v2+, 0 unknown; 0 zst)",
        );
    });
}

#[test]
fn a_file_whose_session_meta_comes_second_waits_for_it() {
    // The meta need not be the first line (items buffered before the file existed): the
    // format is told from the first line, the session only from the second. Polling every
    // 1000 ms here, so the file settles only after 10 s left alone (it never is).
    each_mode(
        &[&[][..], &["--poll", "--poll-interval", "1000"][..]],
        |home, mode| {
            let day = home.join(".codex/sessions/2025/11/02");
            fs::create_dir_all(&day).unwrap();
            let mut f = start(home, mode);
            let path = rollout(&day, "2025-11-02T08-00-00", UF);
            append(&path, format!("{}\n", item(1)));
            thread::sleep(Duration::from_millis(1500));
            append(&path, format!("{}\n", meta(U3)));
            let got = f.until(2);
            assert_eq!(got[0], line_rec(None, U3, &item(1), &path, 1));
            assert_eq!(got[1], line_rec(None, U3, &meta(U3), &path, 2));
            let e = f.terminate_ok();
            assert_same_as_plain(&e.lines, home);
        },
    );
}

#[test]
fn new_date_folders_and_their_sessions_are_picked_up() {
    each_mode(&MODES, |home, mode| {
        let sessions = home.join(".codex/sessions");
        let old = rollout(&sessions.join("2025/11/02"), "2025-11-02T23-59-00", U1);
        put(&old, lines(&[meta(U1), item(1)]));
        let mut f = start(home, mode);
        f.until(2);
        // Midnight: a new day folder, then a new month and year at once.
        let day = sessions.join("2025/11/03");
        fs::create_dir(&day).unwrap();
        let next = rollout(&day, "2025-11-03T00-00-01", U2);
        append(&next, lines(&[meta(U2), item(1)]));
        f.until(4);
        let far = rollout(&sessions.join("2026/01/01"), "2026-01-01T00-00-01", U3);
        fs::create_dir_all(far.parent().unwrap()).unwrap();
        append(&far, format!("{}\n", meta(U3)));
        f.until(5);
        append(&far, format!("{}\n", item(2)));
        append(&old, format!("{}\n", item(2)));
        f.until(7);
        let e = f.terminate_ok();
        assert_eq!(e.lines.len(), 7);
        assert_same_as_plain(&e.lines, home);
    });
}

#[test]
fn a_v0_document_rewritten_whole_three_times_yields_each_item_once() {
    each_mode(&MODES, |home, mode| {
        let path = home.join(format!(".codex/sessions/rollout-2025-04-20-{U4}.json"));
        put(&path, v0_doc(U4, &[0]));
        let mut f = start(home, mode);
        f.until(2);
        // The TypeScript CLI rewrites the whole file after each item.
        fs::write(&path, v0_doc(U4, &[0, 1])).unwrap();
        f.until(3);
        // A rewrite caught half-way: not valid JSON for a while.
        let whole = v0_doc(U4, &[0, 1, 2]);
        fs::write(&path, &whole[..whole.len() * 2 / 3]).unwrap();
        thread::sleep(PAUSE);
        fs::write(&path, &whole).unwrap();
        f.until(4);
        fs::write(&path, v0_doc(U4, &[0, 1, 2, 3])).unwrap();
        f.until(5);
        let e = f.terminate_ok();
        let rows: Vec<String> = e.lines.iter().map(|l| provenance(l).1).collect();
        assert_eq!(rows, ["#session", "#0", "#1", "#2", "#3"], "mode {mode:?}");
        assert_same_as_plain(&e.lines, home);
        // Each of the three whole rewrites is seen (each brought a record waited for above); the
        // one caught half-way may be counted too, depending on when the watcher looked.
        let rewrites: u64 = e
            .summary()
            .rsplit(", ")
            .next()
            .and_then(|t| t.strip_suffix(" rewrites"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!((3..=4).contains(&rewrites), "{}", e.summary());
        assert_has(e.summary(), ", 4 items, 5 records, 0 incomplete");
    });
}

#[test]
fn a_v0_document_whose_written_items_changed_yields_only_new_content() {
    each_mode(&MODES, |home, mode| {
        let path = home.join(format!(".codex/sessions/rollout-2025-04-20-{U4}.json"));
        put(&path, v0_doc(U4, &[0, 1, 2]));
        let mut f = start(home, mode);
        f.until(4);
        // Item 0 gone: the items written before moved, so they are told by content.
        fs::write(&path, v0_doc(U4, &[1, 2, 3])).unwrap();
        f.until(5);
        fs::write(&path, v0_doc(U4, &[1, 2, 3, 4])).unwrap();
        f.until(6);
        let e = f.terminate_ok();
        let got: Vec<(String, String)> = e
            .lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let id = v["record"]["id"].as_str().unwrap_or("-").to_string();
                (provenance(l).1, id)
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("#session", U4),
            ("#0", "msg_0"),
            ("#1", "msg_1"),
            ("#2", "msg_2"),
            ("#2", "msg_3"),
            ("#3", "msg_4"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert!(e
            .lines
            .iter()
            .all(|l| l.contains(&format!("\"session\":\"{U4}\""))));
        assert_eq!(got, want, "mode {mode:?}");
    });
}

#[test]
fn a_rewrite_in_place_and_a_truncation_yield_only_new_lines() {
    each_mode(&MODES, |home, mode| {
        let path = rollout(
            &home.join(".codex/sessions/2025/11/02"),
            "2025-11-02T08-00-00",
            U2,
        );
        put(&path, lines(&[meta(U2), item(1), item(2), item(3)]));
        let mut f = start(home, mode);
        f.until(4);
        // Rewritten in place: item 2 gone, item 4 new.
        fs::write(&path, lines(&[meta(U2), item(1), item(3), item(4)])).unwrap();
        f.until(5);
        // Truncated, left empty for a while, then written again with one new line.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        thread::sleep(PAUSE);
        append(&path, lines(&[meta(U2), item(5)]));
        f.until(6);
        append(&path, format!("{}\n", item(6)));
        f.until(7);
        let e = f.terminate_ok();
        let want = vec![
            line_rec(None, U2, &meta(U2), &path, 1),
            line_rec(None, U2, &item(1), &path, 2),
            line_rec(None, U2, &item(2), &path, 3),
            line_rec(None, U2, &item(3), &path, 4),
            line_rec(None, U2, &item(4), &path, 4),
            line_rec(None, U2, &item(5), &path, 2),
            line_rec(None, U2, &item(6), &path, 3),
        ];
        assert_eq!(e.lines, want, "mode {mode:?}");
        assert_ends(e.summary(), ", 2 rewrites");
        // The last two are what a plain run over the final file writes for them.
        let p = plain(home);
        assert_eq!(
            p.lines(),
            [want[0].clone(), want[5].clone(), want[6].clone()]
        );
    });
}

#[test]
fn sigterm_writes_what_came_before_it_and_exits_0() {
    each_mode(&MODES, |home, mode| {
        let day = home.join(".codex/sessions/2025/11/02");
        let path = rollout(&day, "2025-11-02T08-00-00", U2);
        put(&path, format!("{}\n", meta(U2)));
        let mut f = start(home, mode);
        f.until(1);
        // Lines, a new file and a line still being written, then the signal at once.
        for n in 1..=50 {
            append(&path, format!("{}\n", item(n)));
        }
        let other = rollout(&day, "2025-11-02T09-00-00", U3);
        put(&other, lines(&[meta(U3), item(1)]));
        append(&path, &item(51)[..20]);
        let e = f.terminate_ok();
        assert_eq!(e.lines.len(), 53, "mode {mode:?}");
        // The torn last line is held, and reported; the plain run leaves it too.
        assert!(
            e.stderr.lines().any(|l| l.ends_with(&format!(
                "{}: incomplete last line (20 bytes), not read; a writer may still be appending",
                path.display()
            ))),
            "{:#?}",
            e.stderr
        );
        assert_has(
            e.summary(),
            ", 1 incomplete, 0 rejected, 0 failed, 0 rewrites",
        );
        assert_same_as_plain(&e.lines, home);
    });
}

#[test]
fn a_followed_file_compressed_or_archived_is_not_read_again() {
    each_mode(&MODES, |home, mode| {
        let codex = home.join(".codex");
        let day = codex.join("sessions/2026/05/01");
        let name = format!("rollout-2026-05-01T10-00-00-{U2}.jsonl");
        let path = day.join(&name);
        put(&path, lines(&[meta(U2), item(1)]));
        let moving = rollout(&day, "2026-05-01T11-00-00", U3);
        put(&moving, lines(&[meta(U3)]));
        let mut f = start(home, mode);
        f.until(3);
        // V4 compresses a finished file: the `.zst` holds one more line than was read,
        // then the plain file goes away.
        let all = lines(&[meta(U2), item(1), item(2)]);
        let zst = day.join(format!("{name}.zst"));
        fs::write(&zst, zstd::stream::encode_all(all.as_bytes(), 3).unwrap()).unwrap();
        thread::sleep(PAUSE);
        fs::remove_file(&path).unwrap();
        f.until(4);
        // Archived: moved to archived_sessions/, then appended to.
        let archived = codex
            .join("archived_sessions")
            .join(moving.file_name().unwrap());
        fs::create_dir_all(archived.parent().unwrap()).unwrap();
        fs::rename(&moving, &archived).unwrap();
        append(&archived, format!("{}\n", item(7)));
        f.until(5);
        // A new `.zst` alone is read once.
        let lone = day.join(format!("rollout-2026-05-01T12-00-00-{U4}.jsonl.zst"));
        let lone_lines = lines(&[meta(U4), item(1)]);
        fs::write(
            &lone,
            zstd::stream::encode_all(lone_lines.as_bytes(), 3).unwrap(),
        )
        .unwrap();
        f.until(7);
        let e = f.terminate_ok();
        let want = vec![
            line_rec(None, U2, &meta(U2), &path, 1),
            line_rec(None, U2, &item(1), &path, 2),
            line_rec(None, U3, &meta(U3), &moving, 1),
            line_rec(None, U2, &item(2), &zst, 3),
            line_rec(None, U3, &item(7), &archived, 2),
            line_rec(None, U4, &meta(U4), &lone, 1),
            line_rec(None, U4, &item(1), &lone, 2),
        ];
        assert_eq!(e.lines, want, "mode {mode:?}");
    });
}

#[test]
fn sigterm_stops_a_plain_run_at_a_record_boundary_with_exit_0() {
    let tmp = TempDir::new().unwrap();
    let home = tmp.path();
    // About 20 MB: far more than the pipe and the reader's buffer hold.
    let sessions = home.join(".codex/sessions/2025/11");
    let filler = "x".repeat(200);
    for f in 0..40 {
        let id = format!("019a4c1e-7d2f-7a10-9b3e-0c5d2e6f{f:04}");
        let mut text = format!("{}\n", meta(&id));
        for n in 0..2000 {
            text.push_str(&format!(
                r#"{{"timestamp":"t","type":"event_msg","payload":{{"n":{n},"pad":"{filler}"}}}}"#
            ));
            text.push('\n');
        }
        put(
            &rollout(
                &sessions.join(format!("{:02}", f % 28 + 1)),
                "2025-11-01T00-00-00",
                &id,
            ),
            &text,
        );
    }
    let r = terminated_after_first_line(codex_read(home));
    assert_ends(r.summary(), ", stopped by a signal before the end");
    // Only whole records, and exactly the first ones a whole run writes.
    let whole = plain(home).lines();
    assert_eq!(whole.len(), 40 * 2001);
    assert_stopped_at_a_record_boundary(&r, &whole);
}
