//! Drives the real `codex-read --follow` over fake Codex homes while the test writes them, both
//! by filesystem events and by polling (`--poll --poll-interval 50`), and checks the exact lines
//! it writes: each once, in order, with the session and provenance of a plain run over the final
//! files; and the plain run's stop at a record boundary on SIGTERM.
//!
//! Nothing here measures time: output is waited for with a generous deadline (a busy CI machine
//! may be slow), and the pauses between writes only give the reader a chance to see a file
//! half-written; what it writes must be the same whether it did or not.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_codex-read");
/// How long to wait for output, or for an exit, before failing.
const DEADLINE: Duration = Duration::from_secs(20);
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

fn append(path: &Path, s: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

fn put(path: &Path, s: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, s).unwrap();
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

/// `codex-read --follow` running over a Codex home; its stdout and stderr lines as they come.
struct Following {
    child: Option<Child>,
    out: Receiver<String>,
    err: Receiver<String>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

/// How a run ended.
struct Ended {
    code: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Ended {
    fn summary(&self) -> &str {
        self.stderr
            .iter()
            .find(|l| l.contains(" files (") && l.contains(" records, "))
            .unwrap_or_else(|| panic!("no summary line in stderr: {:#?}", self.stderr))
    }
}

fn lines_of(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Following {
    /// Starts following `home`'s Codex folders (HOME is `home`, CODEX_HOME unset) and waits
    /// until the backfill is done, so that what the test writes next is seen as new.
    fn start(home: &Path, mode: &[&str]) -> Following {
        let (child, out, err) = spawn(home, &[&["--follow"], mode].concat());
        let mut f = Following {
            child: Some(child),
            out,
            err,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        let deadline = Instant::now() + DEADLINE;
        while !f.stderr.iter().any(|l| l.contains("backfill done")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match f.err.recv_timeout(left) {
                Ok(l) => f.stderr.push(l),
                Err(_) => panic!("no `backfill done` note; stderr: {:#?}", f.stderr),
            }
        }
        f
    }

    /// Waits until `n` lines in all have come on stdout; returns them.
    fn wait_for(&mut self, n: usize) -> &[String] {
        let deadline = Instant::now() + DEADLINE;
        while self.stdout.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(l) => self.stdout.push(l),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    while let Ok(l) = self.err.try_recv() {
                        self.stderr.push(l);
                    }
                    panic!(
                        "waited for {n} lines, got {}:\n{}\nstderr: {:#?}",
                        self.stdout.len(),
                        self.stdout.join("\n"),
                        self.stderr
                    );
                }
            }
        }
        &self.stdout
    }

    /// Stops the run, which must then exit 0 (`mode` names the run in a failure).
    fn stop_exit_0(self, mode: &[&str]) -> Ended {
        let e = self.stop();
        assert_eq!(e.code, Some(0), "mode {mode:?}: {:#?}", e.stderr);
        e
    }

    /// Sends SIGTERM and waits for the exit; returns everything written.
    fn stop(mut self) -> Ended {
        let mut child = self.child.take().unwrap();
        term(&child);
        let code = wait_exit(&mut child);
        // The pipes close at the exit: take the rest.
        for l in self.out.iter() {
            self.stdout.push(l);
        }
        for l in self.err.iter() {
            self.stderr.push(l);
        }
        Ended {
            code,
            stdout: std::mem::take(&mut self.stdout),
            stderr: std::mem::take(&mut self.stderr),
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn term(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// Waits for the exit (killing the child and failing after the deadline).
fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("codex-read did not exit within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Starts codex-read with `args` over `home`'s Codex folders (HOME is `home`, CODEX_HOME
/// unset); its stdout and stderr lines as they come.
fn spawn(home: &Path, args: &[&str]) -> (Child, Receiver<String>, Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("CODEX_HOME")
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn codex-read");
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    (child, out, err)
}

/// A plain run (no --follow) over `home`'s Codex folders.
fn plain(home: &Path) -> Ended {
    let (mut child, out, err) = spawn(home, &[]);
    let code = wait_exit(&mut child);
    Ended {
        code,
        stdout: out.iter().collect(),
        stderr: err.iter().collect(),
    }
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
    let (f, p) = (by_file(followed), by_file(&p.stdout));
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

fn no_rejects(e: &Ended) {
    assert!(
        !e.stderr.iter().any(|l| l.contains("rejected:")),
        "{:#?}",
        e.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn appended_lines_arrive_in_order_with_their_session() {
    each_mode(&MODES, |home, mode| {
        let day = home.join(".codex/sessions/2025/11/02");
        let v2 = rollout(&day, "2025-11-02T08-00-00", UF);
        put(&v2, &lines(&[meta(U2), item(1)]));
        let v1 = home.join(format!(
            ".codex/sessions/rollout-2025-08-02T14-03-22-{U1}.jsonl"
        ));
        // A BOM before the first line is dropped as a plain run drops it.
        put(
            &v1,
            &format!(
                "\u{feff}{}",
                lines(&[v1_meta(U1), r#"{"record_type":"state"}"#.into()])
            ),
        );
        let mut f = Following::start(home, mode);
        f.wait_for(4);
        for n in 2..=4 {
            // One of them with a Windows line ending.
            let end = if n == 3 { "\r\n" } else { "\n" };
            append(&v2, &format!("{}{end}", item(n)));
            let got = f.wait_for(4 + n - 1);
            assert_eq!(
                got.last().unwrap(),
                &line_rec(None, U2, &item(n), &v2, n as u64 + 1),
                "mode {mode:?}"
            );
        }
        append(&v1, &format!("{}\n", v1_item(1)));
        f.wait_for(8);
        append(&v1, &format!("{}\n", r#"{"record_type":"state"}"#));
        f.wait_for(9);
        let e = f.stop_exit_0(mode);
        assert_eq!(
            e.stdout[8],
            line_rec(Some("v1"), U1, r#"{"record_type":"state"}"#, &v1, 4)
        );
        assert_eq!(e.stdout.len(), 9);
        assert_same_as_plain(&e.stdout, home);
        no_rejects(&e);
        assert!(e.summary().ends_with(", 0 rewrites"), "{}", e.summary());
    });
}

#[test]
fn a_file_created_empty_and_written_in_parts_is_told_and_read_from_line_1_once() {
    each_mode(&MODES, |home, mode| {
        let day = home.join(".codex/sessions/2025/11/02");
        fs::create_dir_all(&day).unwrap();
        let mut f = Following::start(home, mode);
        // Codex creates the file with its first write; here it is empty for a while, then
        // gets its first line in two writes.
        let path = rollout(&day, "2025-11-02T08-00-00", UF);
        File::create(&path).unwrap();
        thread::sleep(PAUSE);
        let first = meta(U2);
        let (a, b) = first.split_at(first.len() / 2);
        append(&path, a);
        thread::sleep(PAUSE);
        append(&path, &format!("{b}\n"));
        let got = f.wait_for(1);
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
            append(&path, &format!("{b}\n"));
            f.wait_for(1 + n);
        }
        let e = f.stop_exit_0(mode);
        assert_eq!(e.stdout.len(), 4);
        assert_same_as_plain(&e.stdout, home);
        no_rejects(&e);
        assert!(
            e.summary()
                .contains("1 files (0 v0, 0 seed, 0 v1, 1 v2+, 0 unknown; 0 zst)"),
            "{}",
            e.summary()
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
            let mut f = Following::start(home, mode);
            let path = rollout(&day, "2025-11-02T08-00-00", UF);
            append(&path, &format!("{}\n", item(1)));
            thread::sleep(Duration::from_millis(1500));
            append(&path, &format!("{}\n", meta(U3)));
            let got = f.wait_for(2);
            assert_eq!(got[0], line_rec(None, U3, &item(1), &path, 1));
            assert_eq!(got[1], line_rec(None, U3, &meta(U3), &path, 2));
            let e = f.stop_exit_0(mode);
            assert_same_as_plain(&e.stdout, home);
        },
    );
}

#[test]
fn new_date_folders_and_their_sessions_are_picked_up() {
    each_mode(&MODES, |home, mode| {
        let sessions = home.join(".codex/sessions");
        let old = rollout(&sessions.join("2025/11/02"), "2025-11-02T23-59-00", U1);
        put(&old, &lines(&[meta(U1), item(1)]));
        let mut f = Following::start(home, mode);
        f.wait_for(2);
        // Midnight: a new day folder, then a new month and year at once.
        let day = sessions.join("2025/11/03");
        fs::create_dir(&day).unwrap();
        let next = rollout(&day, "2025-11-03T00-00-01", U2);
        append(&next, &lines(&[meta(U2), item(1)]));
        f.wait_for(4);
        let far = rollout(&sessions.join("2026/01/01"), "2026-01-01T00-00-01", U3);
        fs::create_dir_all(far.parent().unwrap()).unwrap();
        append(&far, &format!("{}\n", meta(U3)));
        f.wait_for(5);
        append(&far, &format!("{}\n", item(2)));
        append(&old, &format!("{}\n", item(2)));
        f.wait_for(7);
        let e = f.stop_exit_0(mode);
        assert_eq!(e.stdout.len(), 7);
        assert_same_as_plain(&e.stdout, home);
        no_rejects(&e);
    });
}

#[test]
fn a_v0_document_rewritten_whole_three_times_yields_each_item_once() {
    each_mode(&MODES, |home, mode| {
        let path = home.join(format!(".codex/sessions/rollout-2025-04-20-{U4}.json"));
        put(&path, &v0_doc(U4, &[0]));
        let mut f = Following::start(home, mode);
        f.wait_for(2);
        // The TypeScript CLI rewrites the whole file after each item.
        fs::write(&path, v0_doc(U4, &[0, 1])).unwrap();
        f.wait_for(3);
        // A rewrite caught half-way: not valid JSON for a while.
        let whole = v0_doc(U4, &[0, 1, 2]);
        fs::write(&path, &whole[..whole.len() * 2 / 3]).unwrap();
        thread::sleep(PAUSE);
        fs::write(&path, &whole).unwrap();
        f.wait_for(4);
        fs::write(&path, v0_doc(U4, &[0, 1, 2, 3])).unwrap();
        f.wait_for(5);
        let e = f.stop_exit_0(mode);
        let rows: Vec<String> = e.stdout.iter().map(|l| provenance(l).1).collect();
        assert_eq!(rows, ["#session", "#0", "#1", "#2", "#3"], "mode {mode:?}");
        assert_same_as_plain(&e.stdout, home);
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
        assert!(
            e.summary().contains(", 4 items, 5 records, 0 incomplete"),
            "{}",
            e.summary()
        );
    });
}

#[test]
fn a_v0_document_whose_written_items_changed_yields_only_new_content() {
    each_mode(&MODES, |home, mode| {
        let path = home.join(format!(".codex/sessions/rollout-2025-04-20-{U4}.json"));
        put(&path, &v0_doc(U4, &[0, 1, 2]));
        let mut f = Following::start(home, mode);
        f.wait_for(4);
        // Item 0 gone: the items written before moved, so they are told by content.
        fs::write(&path, v0_doc(U4, &[1, 2, 3])).unwrap();
        f.wait_for(5);
        fs::write(&path, v0_doc(U4, &[1, 2, 3, 4])).unwrap();
        f.wait_for(6);
        let e = f.stop_exit_0(mode);
        let got: Vec<(String, String)> = e
            .stdout
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
            .stdout
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
        put(&path, &lines(&[meta(U2), item(1), item(2), item(3)]));
        let mut f = Following::start(home, mode);
        f.wait_for(4);
        // Rewritten in place: item 2 gone, item 4 new.
        fs::write(&path, lines(&[meta(U2), item(1), item(3), item(4)])).unwrap();
        f.wait_for(5);
        // Truncated, left empty for a while, then written again with one new line.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        thread::sleep(PAUSE);
        append(&path, &lines(&[meta(U2), item(5)]));
        f.wait_for(6);
        append(&path, &format!("{}\n", item(6)));
        f.wait_for(7);
        let e = f.stop_exit_0(mode);
        let want = vec![
            line_rec(None, U2, &meta(U2), &path, 1),
            line_rec(None, U2, &item(1), &path, 2),
            line_rec(None, U2, &item(2), &path, 3),
            line_rec(None, U2, &item(3), &path, 4),
            line_rec(None, U2, &item(4), &path, 4),
            line_rec(None, U2, &item(5), &path, 2),
            line_rec(None, U2, &item(6), &path, 3),
        ];
        assert_eq!(e.stdout, want, "mode {mode:?}");
        assert!(e.summary().ends_with(", 2 rewrites"), "{}", e.summary());
        // The last two are what a plain run over the final file writes for them.
        let p = plain(home);
        assert_eq!(
            p.stdout,
            [want[0].clone(), want[5].clone(), want[6].clone()]
        );
    });
}

#[test]
fn sigterm_writes_what_came_before_it_and_exits_0() {
    each_mode(&MODES, |home, mode| {
        let day = home.join(".codex/sessions/2025/11/02");
        let path = rollout(&day, "2025-11-02T08-00-00", U2);
        put(&path, &format!("{}\n", meta(U2)));
        let mut f = Following::start(home, mode);
        f.wait_for(1);
        // Lines, a new file and a line still being written, then the signal at once.
        for n in 1..=50 {
            append(&path, &format!("{}\n", item(n)));
        }
        let other = rollout(&day, "2025-11-02T09-00-00", U3);
        put(&other, &lines(&[meta(U3), item(1)]));
        append(&path, &item(51)[..20]);
        let e = f.stop_exit_0(mode);
        assert_eq!(e.stdout.len(), 53, "mode {mode:?}");
        // The torn last line is held, and reported; the plain run leaves it too.
        assert!(
            e.stderr.iter().any(|l| l.ends_with(&format!(
                "{}: incomplete last line (20 bytes), not read; a writer may still be appending",
                path.display()
            ))),
            "{:#?}",
            e.stderr
        );
        assert!(e
            .summary()
            .contains(", 1 incomplete, 0 rejected, 0 failed, 0 rewrites"));
        assert_same_as_plain(&e.stdout, home);
    });
}

#[test]
fn a_followed_file_compressed_or_archived_is_not_read_again() {
    each_mode(&MODES, |home, mode| {
        let codex = home.join(".codex");
        let day = codex.join("sessions/2026/05/01");
        let name = format!("rollout-2026-05-01T10-00-00-{U2}.jsonl");
        let path = day.join(&name);
        put(&path, &lines(&[meta(U2), item(1)]));
        let moving = rollout(&day, "2026-05-01T11-00-00", U3);
        put(&moving, &lines(&[meta(U3)]));
        let mut f = Following::start(home, mode);
        f.wait_for(3);
        // V4 compresses a finished file: the `.zst` holds one more line than was read,
        // then the plain file goes away.
        let all = lines(&[meta(U2), item(1), item(2)]);
        let zst = day.join(format!("{name}.zst"));
        fs::write(&zst, zstd::stream::encode_all(all.as_bytes(), 3).unwrap()).unwrap();
        thread::sleep(PAUSE);
        fs::remove_file(&path).unwrap();
        f.wait_for(4);
        // Archived: moved to archived_sessions/, then appended to.
        let archived = codex
            .join("archived_sessions")
            .join(moving.file_name().unwrap());
        fs::create_dir_all(archived.parent().unwrap()).unwrap();
        fs::rename(&moving, &archived).unwrap();
        append(&archived, &format!("{}\n", item(7)));
        f.wait_for(5);
        // A new `.zst` alone is read once.
        let lone = day.join(format!("rollout-2026-05-01T12-00-00-{U4}.jsonl.zst"));
        let lone_lines = lines(&[meta(U4), item(1)]);
        fs::write(
            &lone,
            zstd::stream::encode_all(lone_lines.as_bytes(), 3).unwrap(),
        )
        .unwrap();
        f.wait_for(7);
        let e = f.stop_exit_0(mode);
        let want = vec![
            line_rec(None, U2, &meta(U2), &path, 1),
            line_rec(None, U2, &item(1), &path, 2),
            line_rec(None, U3, &meta(U3), &moving, 1),
            line_rec(None, U2, &item(2), &zst, 3),
            line_rec(None, U3, &item(7), &archived, 2),
            line_rec(None, U4, &meta(U4), &lone, 1),
            line_rec(None, U4, &item(1), &lone, 2),
        ];
        assert_eq!(e.stdout, want, "mode {mode:?}");
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
    let mut child = Command::new(BIN)
        .env_remove("CODEX_HOME")
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stdout is not read between the first line and the signal: the pipe fills and the reader
    // waits, so the signal surely comes before the end, however slow the machine.
    let (first_tx, first_rx) = channel();
    let (go_tx, go_rx) = channel::<()>();
    let stdout = child.stdout.take().unwrap();
    let out = thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut first = String::new();
        r.read_line(&mut first).unwrap();
        first_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut r, &mut rest).unwrap();
        (first, rest)
    });
    let err = lines_of(child.stderr.take().unwrap());
    if let Err(e) = first_rx.recv_timeout(DEADLINE) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no output: {e}");
    }
    term(&child);
    go_tx.send(()).unwrap();
    let code = wait_exit(&mut child);
    let (first, rest) = out.join().unwrap();
    let text = first + &rest;
    assert!(text.ends_with('\n'), "a torn last line");
    let got: Vec<String> = text.lines().map(str::to_string).collect();
    let stderr: Vec<String> = err.iter().collect();
    assert_eq!(code, Some(0), "{stderr:#?}");
    let summary = stderr
        .iter()
        .find(|l| l.contains(" files (") && l.contains(" records, "))
        .unwrap();
    assert!(
        summary.ends_with(", stopped by a signal before the end"),
        "{summary}"
    );
    // Only whole records, and exactly the first ones a whole run writes.
    let whole = plain(home);
    assert_eq!(whole.stdout.len(), 40 * 2001);
    assert!(
        got.len() < whole.stdout.len(),
        "the stop came after the end"
    );
    assert_eq!(got[..], whole.stdout[..got.len()]);
}
