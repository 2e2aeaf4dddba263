//! `tonbo-map --merge`: several inputs read at once, as `tonbo-ingest --from all --watch` feeds
//! it (one FIFO per `--follow` reader). An input whose writer is silent holds none of the others
//! back; the output is exactly the events each input maps to alone; rejects name the input file
//! and its line; a first SIGTERM still drains every input to its end.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Only a guard against a hang; nothing is asserted about how long anything takes.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// The records a reader writes for a fixture, one per line.
fn records(reader: &str, fixture: &str) -> Vec<String> {
    let read = run_quiet(reader, &root().join(fixture));
    assert_eq!(read.code, Some(0), "{reader} {fixture}: {}", read.stderr);
    owned_lines(&read.stdout)
}

/// What plain `tonbo-map FILE` writes for these bytes: its event lines.
fn map_alone(dir: &Path, name: &str, bytes: &[u8]) -> Vec<String> {
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    owned_lines(&run_quiet("tonbo-map", &file).stdout)
}

fn session_ids(events: &[String]) -> BTreeSet<String> {
    events
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["session_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A writer of a FIFO that writes each part when told to, and closes the FIFO after the last.
fn fifo_writer(path: PathBuf, parts: Vec<Vec<u8>>) -> mpsc::Sender<()> {
    let (go, told) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        // Opening waits for tonbo-map to open the FIFO for reading.
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        for part in parts {
            if told.recv().is_err() {
                return;
            }
            f.write_all(&part).unwrap();
            f.flush().unwrap();
        }
    });
    go
}

/// Lines of the child's stdout as they come.
fn stdout_lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Takes lines from `rx` into `seen` until one satisfies `want`.
fn wait_for(
    what: &str,
    rx: &Receiver<String>,
    seen: &mut Vec<String>,
    want: impl Fn(&str) -> bool,
) {
    if seen.iter().any(|l| want(l)) {
        return;
    }
    let start = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let hit = want(&line);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                assert!(start.elapsed() < HANG_GUARD, "no output for {what}")
            }
            Err(RecvTimeoutError::Disconnected) => panic!("tonbo-map ended before {what}"),
        }
    }
}

fn lines(recs: &[String]) -> Vec<u8> {
    recs.iter()
        .flat_map(|r| format!("{r}\n").into_bytes())
        .collect()
}

#[test]
fn merge_reads_every_input_at_once_and_maps_each_as_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Input 1, a FIFO: a Claude Code session, with a line that is not a record after its first
    // half. Its writer then stays silent, the FIFO open, until told to go on.
    let claude = records("claude-read", "testdata/claude/03-tools");
    let half = claude.len() / 2;
    let bad1 = "this is not JSON";
    let mut part1 = lines(&claude[..half]);
    part1.extend_from_slice(format!("{bad1}\n").as_bytes());
    let bad1_line = half as u64 + 1;
    let rest1 = lines(&claude[half..]);

    // Input 2, a FIFO: a Codex CLI session, first the fewest records that map to an event, then
    // the rest with a record of an unknown source before the last, which has no newline.
    let codex = records("codex-read", "testdata/codex/02-tools");
    let first2 = (1..=codex.len())
        .find(|&k| !map_alone(d, "prefix2", &lines(&codex[..k])).is_empty())
        .expect("some records of the Codex fixture map to an event");
    let part2 = lines(&codex[..first2]);
    assert!(
        first2 < codex.len(),
        "the Codex fixture maps only at its end"
    );
    let bad2 = r#"{"v":1,"source":"gemini","session":"s","record":{}}"#;
    let (last2, middle2) = codex[first2..].split_last().unwrap();
    let mut rest2 = lines(middle2);
    rest2.extend_from_slice(format!("{bad2}\n{last2}").as_bytes());
    let bad2_line = codex.len() as u64;

    // Inputs 3 and 4, plain files: `events` records, and another Codex session.
    let events_file = root().join("testdata/events/harness-sessions.ndjson");
    let codex_v1 = lines(&records("codex-read", "testdata/codex/05-v1"));
    let codex_v1_file = d.join("codex-v1.ndjson");
    std::fs::write(&codex_v1_file, &codex_v1).unwrap();

    // What each input maps to alone.
    let all1: Vec<u8> = [part1.clone(), rest1.clone()].concat();
    let all2: Vec<u8> = [part2.clone(), rest2.clone()].concat();
    let alone = [
        map_alone(d, "alone1", &all1),
        map_alone(d, "alone2", &all2),
        map_alone(d, "alone3", &std::fs::read(&events_file).unwrap()),
        map_alone(d, "alone4", &codex_v1),
    ];
    let sessions: Vec<BTreeSet<String>> = alone.iter().map(|e| session_ids(e)).collect();
    for (i, s) in sessions.iter().enumerate() {
        assert!(!s.is_empty(), "input {} maps to nothing", i + 1);
        for (j, t) in sessions.iter().enumerate().skip(i + 1) {
            assert!(
                s.is_disjoint(t),
                "inputs {} and {} share a session",
                i + 1,
                j + 1
            );
        }
    }
    let session_of = |input: usize| {
        let s = sessions[input].clone();
        move |l: &str| {
            let v: Value = serde_json::from_str(l).unwrap();
            s.contains(v["session_id"].as_str().unwrap())
        }
    };

    let (fifo1, fifo2) = (d.join("claude.fifo"), d.join("codex.fifo"));
    mkfifo(&fifo1);
    mkfifo(&fifo2);
    let rejects = d.join("rejects.ndjson");
    let mut child = Command::new(bin("tonbo-map"))
        .arg("--merge")
        .args([&fifo1, &fifo2, &events_file, &codex_v1_file])
        .arg("--rejects")
        .arg(&rejects)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let out = stdout_lines(&mut child);
    let go1 = fifo_writer(fifo1.clone(), vec![part1, rest1]);
    let go2 = fifo_writer(fifo2.clone(), vec![part2, rest2]);
    let mut seen = Vec::new();

    // The plain files are read to their ends while both FIFOs are open and silent.
    wait_for("the events file", &out, &mut seen, session_of(2));
    wait_for("the second Codex session", &out, &mut seen, session_of(3));
    go1.send(()).unwrap();
    wait_for("input 1's first half", &out, &mut seen, session_of(0));
    // Input 1 is open and silent; input 2's first lines come out all the same.
    go2.send(()).unwrap();
    wait_for("input 2's first lines", &out, &mut seen, session_of(1));

    // A first SIGTERM drains: every input is still read to its end.
    tonbo_testkit::signal(&child, "-TERM");
    go1.send(()).unwrap();
    go2.send(()).unwrap();
    seen.extend(out.iter());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            panic!("tonbo-map --merge did not end after its inputs ended");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = stderr.join().unwrap();
    // 1: it ran to the end, with two lines rejected.
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");

    let mut want: Vec<String> = alone.concat();
    want.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got.len(), want.len(), "stderr:\n{stderr}");
    assert_eq!(got, want);

    // Rejects name the input and its line, on stderr and in the rejects file.
    let (name1, name2) = (fifo1.display().to_string(), fifo2.display().to_string());
    for (name, line, reason) in [
        (&name1, bad1_line, "not a source record"),
        (&name2, bad2_line, "unknown source `gemini`"),
    ] {
        let wanted = format!("tonbo-map: {name}:{line}: rejected: {reason}");
        assert!(stderr.contains(&wanted), "{wanted}\nstderr:\n{stderr}");
    }
    let mut rejected: Vec<(String, u64, String)> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["input"].as_str().unwrap().to_string(),
                v["line"].as_u64().unwrap(),
                v["raw"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rejected.sort();
    assert_eq!(
        rejected,
        vec![
            (name1, bad1_line, bad1.to_string()),
            (name2, bad2_line, bad2.to_string()),
        ]
    );
    let newlines = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
    let records = claude.len()
        + 1
        + codex.len()
        + 1
        + newlines(&std::fs::read(&events_file).unwrap())
        + newlines(&codex_v1);
    assert!(
        stderr.contains(&format!(
            "tonbo-map: {records} records, {} events, 2 rejected",
            want.len()
        )),
        "stderr:\n{stderr}"
    );
}
