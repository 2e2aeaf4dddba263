//! Drives the real `tonbo-batch` binary through pipes and checks what it writes on stdout and
//! stderr, what it leaves in `--rejects FILE`, and how it exits.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use serde_json::value::RawValue;
use tonbo_testkit::events::{
    assert_rejected, assert_rejects_file, first_line_of, run_stage, StageLine,
};

tonbo_testkit::local_run!();

const BIN: &str = env!("CARGO_BIN_EXE_tonbo-batch");

impl Run {
    fn batches(&self) -> Vec<Batch> {
        self.stdout.lines().map(Batch::parse).collect()
    }

    /// The events of every batch, in order.
    fn events(&self) -> Vec<String> {
        self.batches().into_iter().flat_map(|b| b.events).collect()
    }
}

/// One batch line, with the `events` array kept as the exact text the binary wrote.
struct Batch {
    v: u64,
    session_id: String,
    /// The raw `[e1,e2,..]` text: the body tonbo-post would send.
    body: String,
    /// The raw text of each event.
    events: Vec<String>,
}

impl Batch {
    fn parse(line: &str) -> Batch {
        let l = StageLine::parse(line, "events");
        let events: Vec<&RawValue> = serde_json::from_str(&l.body)
            .unwrap_or_else(|e| panic!("`events` is not an array ({e}): {line}"));
        Batch {
            v: l.v,
            session_id: l.session_id,
            events: events.iter().map(|e| e.get().to_string()).collect(),
            body: l.body,
        }
    }
}

/// Runs the binary with `args`, feeding it `stdin`.
fn run(args: &[&str], stdin: &[u8]) -> Run {
    Run(run_stage(BIN, args, stdin))
}

/// An event line whose event is `event` verbatim, with some spacing around it on purpose.
fn event_line(session_json: &str, event: &str) -> String {
    format!("{{\"v\":1, \"session_id\": {session_json} ,\"event\":  {event} }}\n")
}

/// An event whose text re-serialisation would change: odd spacing, `1.50`, a unicode escape.
fn odd_event(i: usize) -> String {
    format!(
        "{{\"type\": \"x\" , \"n\":1.50, \"i\" :{i},\"t\":\"caf\\u00e9 \\\"q\\\"\",\"metadata\":{{\"source\":\"events\",\"source_key\":\"k{i}\",\"original_timestamp\":null}}}}"
    )
}

#[test]
fn cuts_by_count_and_session_change_keeping_event_bytes_in_order() {
    // Runs: 5 events of a, 3 of b, 2 of a. Session b needs escaping in JSON.
    let a = "\"a\"";
    let b = "\"b/\\u00fc \\\"q\\\"\"";
    let sessions: Vec<(&str, &str)> = std::iter::repeat_n((a, "a"), 5)
        .chain(std::iter::repeat_n((b, "b/ü \"q\""), 3))
        .chain(std::iter::repeat_n((a, "a"), 2))
        .collect();
    let events: Vec<String> = (0..sessions.len()).map(odd_event).collect();
    let mut input = String::new();
    for ((json, _), ev) in sessions.iter().zip(&events) {
        input.push_str(&event_line(json, ev));
    }

    let r = run(&["--max-events", "2"], input.as_bytes());
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let batches = r.batches();

    // Concatenating all batches' events gives the input events, byte for byte, in order.
    let got: Vec<String> = batches.iter().flat_map(|b| b.events.clone()).collect();
    assert_eq!(got, events);

    // Each batch holds one session and at most 2 events; v is 1; the body is the events joined.
    for b in &batches {
        assert_eq!(b.v, 1);
        assert!(!b.events.is_empty() && b.events.len() <= 2, "{}", b.body);
        assert_eq!(b.body, format!("[{}]", b.events.join(",")));
    }

    // Batches never merge across a session change: a[0,1] a[2,3] a[4] b[5,6] b[7] a[8,9].
    let shape: Vec<(String, Vec<usize>)> = {
        let mut i = 0;
        batches
            .iter()
            .map(|b| {
                let idx = (i..i + b.events.len()).collect();
                i += b.events.len();
                (b.session_id.clone(), idx)
            })
            .collect()
    };
    let expected: Vec<(String, Vec<usize>)> = vec![
        ("a".into(), vec![0, 1]),
        ("a".into(), vec![2, 3]),
        ("a".into(), vec![4]),
        ("b/ü \"q\"".into(), vec![5, 6]),
        ("b/ü \"q\"".into(), vec![7]),
        ("a".into(), vec![8, 9]),
    ];
    assert_eq!(shape, expected);
    assert!(
        r.stderr
            .contains("tonbo-batch: 10 events in 6 batches, 0 oversized, 0 rejected"),
        "{}",
        r.stderr
    );
}

/// An event of exactly `len` bytes.
fn event_of_len(i: usize, len: usize) -> String {
    let head = format!("{{\"type\": \"x\", \"i\":{i}, \"pad\":\"");
    let tail = "\"}";
    let pad = len - head.len() - tail.len();
    let e = format!("{head}{}{tail}", "p".repeat(pad));
    assert_eq!(e.len(), len);
    e
}

#[test]
fn max_bytes_bounds_every_body_and_cuts_greedily() {
    // Events of 80..=130 bytes, one session: under a 300-byte limit some bodies hold three
    // events, some two, so the cut depends on the bytes, not on a count.
    let lens: Vec<usize> = (0..40).map(|i| 80 + (i * 13) % 51).collect();
    let events: Vec<String> = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| event_of_len(i, l))
        .collect();
    let input: String = events.iter().map(|e| event_line("\"s\"", e)).collect();

    let r = run(&["--max-bytes", "300"], input.as_bytes());
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let batches = r.batches();
    let got: Vec<String> = batches.iter().flat_map(|b| b.events.clone()).collect();
    assert_eq!(got, events);
    for (k, b) in batches.iter().enumerate() {
        assert_eq!(b.body, format!("[{}]", b.events.join(",")));
        assert!(
            b.body.len() <= 300,
            "batch {k} body is {} bytes",
            b.body.len()
        );
        // Cut only when the next event would not have fitted.
        if let Some(next) = batches.get(k + 1) {
            let with_next = b.body.len() + 1 + next.events[0].len();
            assert!(
                with_next > 300,
                "batch {k} ({} bytes) was cut although the next event ({} bytes) fitted",
                b.body.len(),
                next.events[0].len()
            );
        }
    }
    let sizes: Vec<usize> = batches.iter().map(|b| b.events.len()).collect();
    assert!(sizes.contains(&3) && sizes.contains(&2), "{sizes:?}");

    // The limit is inclusive: a body of exactly 300 bytes is one batch, 301 is two.
    for (first, expected) in [(98, vec![3]), (99, vec![2, 1])] {
        let events = [
            event_of_len(0, first),
            event_of_len(1, 98),
            event_of_len(2, 100),
        ];
        let input: String = events.iter().map(|e| event_line("\"s\"", e)).collect();
        let r = run(&["--max-bytes", "300", "-q"], input.as_bytes());
        assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
        let sizes: Vec<usize> = r.batches().iter().map(|b| b.events.len()).collect();
        assert_eq!(sizes, expected, "first event of {first} bytes");
    }
}

#[test]
fn max_bytes_accepts_units() {
    let events: Vec<String> = (0..30).map(|i| event_of_len(i, 100)).collect();
    let input: String = events.iter().map(|e| event_line("\"s\"", e)).collect();
    let r = run(&["--max-bytes", "1KiB", "-q"], input.as_bytes());
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let batches = r.batches();
    // [e x 10] = 2 + 1000 + 9 = 1011 <= 1024; [e x 11] = 1112 > 1024.
    let sizes: Vec<usize> = batches.iter().map(|b| b.events.len()).collect();
    assert_eq!(sizes, vec![10, 10, 10]);
}

#[test]
fn an_oversized_event_goes_alone_with_a_warning() {
    let small = |i| event_of_len(i, 100);
    let big = event_of_len(1, 1000);
    let events = [small(0), big.clone(), small(2), small(3)];
    let input: String = events.iter().map(|e| event_line("\"s\"", e)).collect();

    let r = run(&["--max-bytes", "300"], input.as_bytes());
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let batches = r.batches();
    let shape: Vec<Vec<String>> = batches.iter().map(|b| b.events.clone()).collect();
    assert_eq!(
        shape,
        vec![
            vec![events[0].clone()],
            vec![big.clone()],
            vec![events[2].clone(), events[3].clone()],
        ]
    );
    let warning = r
        .stderr
        .lines()
        .find(|l| l.contains("warning"))
        .unwrap_or_else(|| panic!("no warning on stderr: {}", r.stderr));
    assert!(warning.contains("over --max-bytes"), "{warning}");
    assert!(
        warning.starts_with("tonbo-batch: -:2: warning:"),
        "{warning}"
    );
    assert!(warning.contains("1002 bytes"), "{warning}");
    assert!(r.stderr.contains("1 oversized"), "{}", r.stderr);
}

#[test]
fn bad_lines_are_reported_skipped_and_recorded() {
    let good = |i: usize| event_line("\"s\"", &odd_event(i));
    let bad = [
        (2, "this is not json", ""),
        (
            3,
            r#"{"v":1,"event":{"type":"x","metadata":{"source_key":"k"}}}"#,
            "session_id",
        ),
        (5, r#"{"v":1,"session_id":"s","event": 5}"#, "object"),
        (
            6,
            r#"{"v":2,"session_id":"s","event":{"type":"x"}}"#,
            "version 2",
        ),
    ];
    let input = format!(
        "{}{}\n{}\n{}{}\n{}\n{}",
        good(1),
        bad[0].1,
        bad[1].1,
        good(4),
        bad[2].1,
        bad[3].1,
        good(7)
    );
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");

    for with_file in [false, true] {
        let rejects_arg = rejects.to_str().unwrap();
        let args: Vec<&str> = if with_file {
            vec!["--rejects", rejects_arg]
        } else {
            vec![]
        };
        let r = run(&args, input.as_bytes());
        assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);

        // The good lines around the bad ones still come out, in order.
        let got = r.events();
        assert_eq!(got, vec![odd_event(1), odd_event(4), odd_event(7)]);

        // Each bad line is reported once, with its own line number, and nothing else is.
        assert_rejected(&r.stderr, "tonbo-batch", &bad);
        assert!(r.stderr.contains("4 rejected"), "{}", r.stderr);
    }

    // The rejects file holds exactly the bad lines, as NDJSON, with line and raw text.
    assert_rejects_file(&rejects, "tonbo-batch", &bad);
}

#[test]
fn a_closed_stdout_ends_the_stage_quietly_with_exit_0() {
    let line = |i| event_line("\"s\"", &format!("{{\"type\":\"x\",\"n\":{i}}}"));
    let first = first_line_of(BIN, &["--max-events", "1"], (200_000, line));
    let b = Batch::parse(&first);
    assert_eq!(b.events, vec!["{\"type\":\"x\",\"n\":0}".to_string()]);
}

#[test]
fn input_files_are_read_in_order_and_stdin_only_for_dash() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = dir.path().join("one.ndjson");
    let f2 = dir.path().join("two.ndjson");
    let e = |i: usize| format!("{{\"type\": \"x\", \"i\":{i}}}");
    let (s, t) = ("\"s\"", "\"t\"");
    std::fs::write(&f1, event_line(s, &e(1)) + &event_line(s, &e(2))).unwrap();
    let bad = "not json\n";
    std::fs::write(&f2, event_line(s, &e(3)) + bad + &event_line(t, &e(4))).unwrap();
    let stdin_events = event_line("\"s\"", &e(99));
    let (p1, p2) = (f1.to_str().unwrap(), f2.to_str().unwrap());

    // Files as arguments: read in order; stdin is not read.
    let r = run(&[p1, p2], stdin_events.as_bytes());
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    let got = r.events();
    assert_eq!(got, vec![e(1), e(2), e(3), e(4)]);
    // A rejected line is named by its file and its line within that file.
    r.assert_one_rejected(&format!("tonbo-batch: {p2}:2: rejected: not an event line"));

    // The other order gives the other order.
    let r = run(&["-q", p2, p1], b"");
    let got = r.events();
    assert_eq!(got, vec![e(3), e(4), e(1), e(2)]);

    // `-` among the files reads stdin at that place.
    let r = run(&["-q", p1, "-", p2], stdin_events.as_bytes());
    let got = r.events();
    assert_eq!(got, vec![e(1), e(2), e(99), e(3), e(4)]);
}

#[test]
fn a_missing_input_file_is_fatal_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = dir.path().join("ok.ndjson");
    std::fs::write(&f1, event_line("\"s\"", "{}")).unwrap();
    let missing = dir.path().join("does-not-exist.ndjson");
    let r = run(&[f1.to_str().unwrap(), missing.to_str().unwrap()], b"");
    r.assert_fatal("tonbo-batch", missing.to_str().unwrap());
}

#[test]
fn an_unreadable_input_path_is_fatal_and_named() {
    // A directory opens fine on Linux but fails on read (EISDIR). Running as root, a chmod 000
    // file would still be readable, so this is the portable "unreadable path".
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    run(&[path], b"").assert_fatal("tonbo-batch", path);
}

#[test]
fn blank_lines_and_crlf_endings_are_accepted() {
    let e = |i: usize| format!("{{\"type\": \"x\" , \"n\":1.50, \"i\":{i}}}");
    let crlf = |i: usize| event_line("\"s\"", &e(i)).replace('\n', "\r\n");
    // Lines: 1 event, 2 blank, 3 spaces, 4 CRLF-only, 5 event, 6 bad, 7 event, 8 event w/o EOL.
    let input = format!(
        "{}\n   \n\r\n{}oops\r\n{}{}",
        crlf(1),
        crlf(5),
        crlf(7),
        event_line("\"s\"", &e(8)).trim_end()
    );
    let r = run(&[], input.as_bytes());
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    let got = r.events();
    assert_eq!(got, vec![e(1), e(5), e(7), e(8)]);
    // Blank lines are skipped, not rejected, yet still counted in line numbers.
    r.assert_one_rejected("tonbo-batch: -:6: rejected:");
    // A CRLF file without bad lines is clean.
    let clean: String = [1, 2, 3].iter().map(|&i| crlf(i)).collect();
    let r = run(&[], format!("\r\n{clean}\r\n").as_bytes());
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let got = r.events();
    assert_eq!(got, vec![e(1), e(2), e(3)]);
    assert!(!r.stdout.contains('\r'));
}

#[test]
fn empty_input_writes_nothing_and_quiet_drops_the_summary() {
    let r = run(&[], b"");
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "tonbo-batch: 0 events in 0 batches, 0 oversized, 0 rejected\n"
    );
    let r = run(&["-q"], event_line("\"s\"", "{}").as_bytes());
    assert_eq!(r.code, Some(0));
    assert_eq!(r.stdout, "{\"v\":1,\"session_id\":\"s\",\"events\":[{}]}\n");
    assert_eq!(r.stderr, "");
}

#[test]
fn bad_flags_are_fatal() {
    for args in [
        &["--max-events", "0"][..],
        &["--max-bytes", "0"],
        &["--max-bytes", "12XB"],
    ] {
        let r = run(args, b"");
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert_eq!(r.stdout, "");
    }
}

/// A running tonbo-batch fed by the test line by line, its stdout read on a thread.
struct Live {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Live {
    fn start(args: &[&str]) -> Live {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tonbo-batch");
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Live {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, s: &str) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(s.as_bytes()).unwrap();
        w.flush().unwrap();
    }

    /// The next batch written, waiting as long as a busy machine may need.
    fn next_batch(&mut self) -> Batch {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => Batch::parse(&line),
            Err(e) => {
                let _ = self.child.kill();
                panic!("no batch came out: {e}");
            }
        }
    }

    fn signal(&self, sig: &str) {
        tonbo_testkit::signal(&self.child, &format!("-{sig}"));
    }

    fn close_and_wait(&mut self) -> Option<i32> {
        self.stdin.take();
        tonbo_testkit::wait_with_timeout(&mut self.child, "tonbo-batch")
    }
}

#[test]
fn a_partial_batch_goes_out_once_the_input_lingers_quiet() {
    let mut live = Live::start(&["--linger", "50", "--max-events", "100"]);
    for i in 0..3 {
        live.send(&event_line("\"s\"", &odd_event(i)));
    }
    let first = live.next_batch();
    assert_eq!(first.session_id, "s");
    assert_eq!(first.events, (0..3).map(odd_event).collect::<Vec<_>>());
    for i in 3..5 {
        live.send(&event_line("\"s\"", &odd_event(i)));
    }
    let second = live.next_batch();
    assert_eq!(second.events, (3..5).map(odd_event).collect::<Vec<_>>());
    assert_eq!(live.close_and_wait(), Some(0));
    assert!(live.lines.recv().is_err(), "nothing more after the end");
}

#[test]
fn a_signal_drains_the_input_to_its_end_and_a_second_one_stops_at_once() {
    // The first SIGTERM is noted; what is written after it still comes out, and the stage
    // exits 0 at the end of its input.
    let mut live = Live::start(&["--linger", "600000", "--max-events", "1"]);
    live.send(&event_line("\"s\"", &odd_event(0)));
    assert_eq!(live.next_batch().events, vec![odd_event(0)]);
    live.signal("TERM");
    live.send(&event_line("\"s\"", &odd_event(1)));
    assert_eq!(live.close_and_wait(), Some(0));
    let rest: Vec<String> = live
        .lines
        .iter()
        .flat_map(|l| Batch::parse(&l).events)
        .collect();
    assert_eq!(rest, vec![odd_event(1)]);

    // Two signals sent back to back could merge into one; a batch that comes out between them
    // shows the stage ran on after the first.
    // (The first batch shows the handlers are in place before any signal is sent.)
    let mut live = Live::start(&["--linger", "0"]);
    live.send(&event_line("\"s\"", &odd_event(0)));
    assert_eq!(live.next_batch().events, vec![odd_event(0)]);
    live.signal("INT");
    live.send(&event_line("\"s\"", &odd_event(1)));
    assert_eq!(live.next_batch().events, vec![odd_event(1)]);
    live.signal("INT");
    let code = tonbo_testkit::wait_with_timeout(&mut live.child, "tonbo-batch");
    assert_eq!(code, Some(130));
}

#[test]
fn a_trickle_of_events_goes_out_without_waiting_for_the_batch_to_fill() {
    // Events keep coming into one session, never quiet for the linger, until a batch comes out:
    // it must come out while they still come, well before 1,000 events would fill it.
    let mut live = Live::start(&["--linger", "100", "--max-events", "1000"]);
    let mut stdin = live.stdin.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = seen.clone();
    let writer = thread::spawn(move || {
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 990 {
            stdin
                .write_all(event_line("\"s\"", &odd_event(n)).as_bytes())
                .unwrap();
            stdin.flush().unwrap();
            n += 1;
            thread::sleep(Duration::from_millis(10));
        }
        n
    });
    let first = live.next_batch();
    seen.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written < 990, "no batch came out while events kept coming");
    assert_eq!(
        tonbo_testkit::wait_with_timeout(&mut live.child, "tonbo-batch"),
        Some(0)
    );
    let mut all = first.events;
    all.extend(live.lines.iter().flat_map(|l| Batch::parse(&l).events));
    assert_eq!(all, (0..written).map(odd_event).collect::<Vec<_>>());
}

/// The head of a batch line ([`tonbo_core::contract::BatchHead`]): its keys and session, or
/// `None` when it has none that matches it.
fn head(line: &str) -> Option<(String, Vec<String>)> {
    let head = tonbo_core::contract::BatchHead::read(line.as_bytes())?;
    let keys = head.keys.iter().map(|k| k.to_string()).collect();
    Some((head.session_id.into_owned(), keys))
}

/// The `metadata.source_key` of each event of a batch line, as the events say it.
fn event_keys(line: &str) -> Vec<String> {
    let b: serde_json::Value = serde_json::from_str(line).unwrap();
    b["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["source_key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_batch_names_its_events_keys_ahead_of_them_unless_one_has_none() {
    let ev = |k: &str| {
        format!(
            r#"{{"type":"user.message","content":[{{"type":"text","text":"hi \"{k}\""}}],"metadata":{{"source":"events","source_key":"{k}","original_timestamp":null}}}}"#
        )
    };
    let input = [
        // As tonbo-map writes them (read in one pass), one key with an escape...
        format!(
            r#"{{"v":1,"session_id":"s","redacted":1,"event":{}}}"#,
            ev(r"k\u00e91")
        ),
        format!(r#"{{"v":1,"session_id":"s","event":{}}}"#, ev("k2")),
        // ...and laid out otherwise (read the general way).
        event_line("\"s\"", &ev("k3")),
        // Session t's second event has no key: its batch goes without a head.
        format!(
            r#"{{"v":1,"session_id":"t","redacted":1,"event":{}}}"#,
            ev("k4")
        ),
        r#"{"v":1,"session_id":"t","redacted":1,"event":{"type":"x","metadata":{}}}"#.into(),
    ]
    .join("\n");
    let r = run(&[], input.as_bytes());
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    let (session, keys) = head(lines[0]).expect("a head that matches its line");
    assert_eq!(
        (session.as_str(), keys.clone()),
        ("s", vec!["ké1".into(), "k2".into(), "k3".into()])
    );
    assert_eq!(keys, event_keys(lines[0]));
    assert!(head(lines[1]).is_none());
    let t: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert!(t.get("keys").is_none() && t.get("check").is_none(), "{t}");
    // Either way the events are the body tonbo-post sends, byte for byte.
    assert_eq!(r.events().len(), 5);
}
