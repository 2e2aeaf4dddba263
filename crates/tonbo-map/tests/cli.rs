//! Drives the real `tonbo-map` binary through pipes and checks what it writes on stdout and
//! stderr, what it leaves in `--rejects FILE`, and how it exits.

use tonbo_testkit::events::{
    assert_rejected, assert_rejects_file, assert_said, first_line_of, rejected_lines, run_stage,
    StageLine,
};

tonbo_testkit::local_run!();

const BIN: &str = env!("CARGO_BIN_EXE_tonbo-map");

impl Run {
    fn events(&self) -> Vec<Event> {
        self.stdout.lines().map(Event::parse).collect()
    }
}

/// One event line, with the event kept as the exact text the binary wrote.
#[derive(Debug, PartialEq, Eq)]
struct Event {
    v: u64,
    session_id: String,
    event: String,
}

impl Event {
    fn parse(line: &str) -> Event {
        let l = StageLine::parse(line, "event");
        Event {
            v: l.v,
            session_id: l.session_id,
            event: l.body,
        }
    }
}

/// Runs the binary with `args`, feeding it `stdin`.
fn run(args: &[&str], stdin: &[u8]) -> Run {
    Run(run_stage(BIN, args, stdin))
}

/// A source record of source `events`, carrying `record` verbatim.
fn events_record(session_json: &str, record: &str) -> String {
    format!(
        "{{\"v\":1,\"source\":\"events\",\"session\": {session_json},\"record\":  {record} ,\"provenance\":{{\"file\":\"x.jsonl\",\"line\":3}}}}\n"
    )
}

/// A complete event whose re-serialisation would change its text.
fn odd_event(i: usize) -> String {
    format!(
        "{{ \"type\" : \"my.thing\",\"n\":1.50,\"i\": {i}, \"t\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\", \"a\":[1 ,2.0e0],\"metadata\":{{\"source\":\"mine\",\"source_key\":\"k\\u0031-{i}\",\"original_timestamp\":\"2025-01-02T03:04:05.000Z\"}} }}"
    )
}

#[test]
fn events_records_pass_through_byte_for_byte() {
    let with_null_ts = r#"{"type":"x","metadata":{"original_timestamp":null,"source_key":"kz","source":"mine"},"extra":{"deep":[{}]}}"#;
    let records = [
        ("\"s-1\"", "s-1", odd_event(1)),
        ("\"s\\u00fc \\\"2\\\"\"", "sü \"2\"", odd_event(2)),
        ("\"s-1\"", "s-1", with_null_ts.to_string()),
    ];
    let mut input: String = records
        .iter()
        .map(|(json, _, rec)| events_record(json, rec))
        .collect();
    // `v` may be omitted, unknown top-level fields are ignored.
    let last = odd_event(4);
    input.push_str(&format!(
        "{{\"source\":\"events\",\"future\":[1],\"session\":\"s-4\",\"record\":{last}}}\n"
    ));

    let r = run(&[], input.as_bytes());
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let mut expected: Vec<Event> = records
        .iter()
        .map(|(_, session, rec)| Event {
            v: 1,
            session_id: session.to_string(),
            event: rec.clone(),
        })
        .collect();
    expected.push(Event {
        v: 1,
        session_id: "s-4".into(),
        event: last,
    });
    assert_eq!(r.events(), expected);
    assert_eq!(r.stderr, "tonbo-map: 4 records, 4 events, 0 rejected\n");
}

#[test]
fn bad_records_are_reported_skipped_and_recorded() {
    let good = |i| events_record("\"s\"", &odd_event(i));
    let no_key = r#"{"type":"x","metadata":{"source":"mine","original_timestamp":null}}"#;
    let no_source = r#"{"type":"x","metadata":{"source_key":"k","original_timestamp":null}}"#;
    let no_ts = r#"{"type":"x","metadata":{"source":"mine","source_key":"k"}}"#;
    let null_ts =
        r#"{"type":"x","metadata":{"source":"mine","source_key":"k","original_timestamp":null}}"#;
    // (line, raw line, what the reason must mention)
    let bad: Vec<(usize, String, &str)> = vec![
        (
            2,
            r#"{"v":1,"source":"gemini","session":"s","record":{}}"#.into(),
            "unknown source `gemini`",
        ),
        (3, events_record("\"s\"", no_key).trim_end().into(), "metadata.source_key"),
        (4, events_record("\"s\"", no_source).trim_end().into(), "no metadata.source"),
        (5, events_record("\"s\"", no_ts).trim_end().into(), "original_timestamp"),
        (
            7,
            r#"{"v":1,"source":"claude-code","session":"abc","record":{"type":"user","message":{}}}"#
                .into(),
            "`user` line has no message.content",
        ),
        (8, "{not json".into(), "not a source record"),
        (
            9,
            r#"{"v":2,"source":"events","session":"s","record":{}}"#.into(),
            "version 2",
        ),
        (10, events_record("\"\"", null_ts).trim_end().into(), "empty session id"),
    ];
    let mut lines: Vec<String> = vec![String::new(); 11];
    lines[0] = good(1);
    lines[5] = events_record("\"s\"", null_ts);
    lines[10] = good(11);
    for (n, raw, _) in &bad {
        lines[n - 1] = format!("{raw}\n");
    }
    let input: String = lines.concat();

    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let r = run(&["--rejects", rejects.to_str().unwrap()], input.as_bytes());
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);

    // The good records still come out, in order; present-and-null original_timestamp is fine.
    let got: Vec<String> = r.events().into_iter().map(|e| e.event).collect();
    assert_eq!(got, vec![odd_event(1), null_ts.to_string(), odd_event(11)]);

    let bad: Vec<(usize, &str, &str)> = bad
        .iter()
        .map(|(n, raw, why)| (*n, &raw[..], *why))
        .collect();
    let reported = assert_rejected(&r.stderr, "tonbo-map", &bad);
    // The record without metadata.source is not confused with one without source_key.
    assert!(!reported[2].contains("source_key"), "{}", reported[2]);
    assert_said(&r.stderr, "tonbo-map: 11 records, 3 events, 8 rejected");

    assert_rejects_file(&rejects, "tonbo-map", &bad);
}

#[test]
fn summary_counts_and_quiet() {
    let input = format!(
        "{}\n\r\n{}nope\n{}",
        events_record("\"a\"", &odd_event(1)).trim_end(),
        events_record("\"b\"", &odd_event(2)).replace('\n', "\r\n"),
        events_record("\"a\"", &odd_event(3)).trim_end(),
    );
    let r = run(&[], input.as_bytes());
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert_eq!(r.events().len(), 3);
    let last = r.stderr.lines().last().unwrap_or_default();
    assert_eq!(last, "tonbo-map: 4 records, 3 events, 1 rejected");
    r.assert_one_rejected("tonbo-map: -:4: rejected:");

    for flag in ["-q", "--quiet"] {
        let q = run(&[flag], input.as_bytes());
        assert_eq!(q.code, Some(1));
        assert_eq!(q.stdout, r.stdout);
        // Rejections are still reported; only the summary goes.
        assert_eq!(rejected_lines(&q.stderr).len(), 1, "{}", q.stderr);
        assert!(!q.stderr.contains("records,"), "{}", q.stderr);
        assert_eq!(q.stderr.lines().count(), 1, "{}", q.stderr);
    }

    let clean = run(&["-q"], events_record("\"a\"", &odd_event(1)).as_bytes());
    assert_eq!(clean.code, Some(0));
    assert_eq!(clean.stderr, "");

    let empty = run(&[], b"");
    assert_eq!(empty.code, Some(0));
    assert_eq!(empty.stdout, "");
    assert_eq!(empty.stderr, "tonbo-map: 0 records, 0 events, 0 rejected\n");
}

#[test]
fn input_files_are_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = dir.path().join("one.ndjson");
    let f2 = dir.path().join("two.ndjson");
    std::fs::write(&f1, events_record("\"a\"", &odd_event(1))).unwrap();
    std::fs::write(
        &f2,
        format!("{}nope\n", events_record("\"b\"", &odd_event(2))),
    )
    .unwrap();
    let (p1, p2) = (f1.to_str().unwrap(), f2.to_str().unwrap());
    let r = run(&[p2, p1], events_record("\"c\"", &odd_event(3)).as_bytes());
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    let got: Vec<String> = r.events().into_iter().map(|e| e.event).collect();
    assert_eq!(got, vec![odd_event(2), odd_event(1)]);
    r.assert_one_rejected(&format!("tonbo-map: {p2}:2: rejected:"));

    let missing = dir.path().join("missing.ndjson");
    let r = run(&[missing.to_str().unwrap()], b"");
    r.assert_fatal("tonbo-map", missing.to_str().unwrap());
}

#[test]
fn a_closed_stdout_ends_the_stage_quietly_with_exit_0() {
    let line = |i| events_record("\"s\"", &odd_event(i));
    let first = first_line_of(BIN, &[], (200_000, line));
    assert_eq!(Event::parse(&first).event, odd_event(0));
}

/// A Codex V2 line as a source record of session `s`, line `n` of file `f.jsonl`.
fn codex_record(s: &str, n: u64, line: &str) -> String {
    format!(
        r#"{{"v":1,"source":"codex","session":"{s}","record":{line},"provenance":{{"file":"/x/f-{s}.jsonl","line":{n}}}}}"#
    )
}

#[test]
fn unknown_and_skipped_records_are_counted_by_name_per_source() {
    let input = [
        codex_record("a", 1, r#"{"timestamp":"2026-01-01T00:00:00Z","type":"brand_new_type","payload":{}}"#),
        codex_record("a", 2, r#"{"timestamp":"2026-01-01T00:00:00Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}"#),
        codex_record("a", 3, r#"{"timestamp":"2026-01-01T00:00:00Z","type":"turn_context","payload":{"model":"m"}}"#),
        r#"{"v":1,"source":"claude-code","session":"c","record":{"type":"file-history-snapshot","messageId":"m"},"provenance":{"file":"/x/c.jsonl","line":1}}"#.to_string(),
        r#"{"v":1,"source":"claude-code","session":"c","record":{"type":"user","uuid":"u1","message":{"role":"user","content":"hello"}},"provenance":{"file":"/x/c.jsonl","line":2}}"#.to_string(),
        r#"{"v":1,"source":"claude-code","session":"c","record":{"type":"hologram","uuid":"u2"},"provenance":{"file":"/x/c.jsonl","line":3}}"#.to_string(),
    ]
    .join("\n");
    let r = run(&[], input.as_bytes());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.events().len(), 2);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(
        lines.contains(
            &"tonbo-map: codex: skipped by rule: turn_context 1; unknown: brand_new_type 1"
        ),
        "{}",
        r.stderr
    );
    assert!(
        lines.contains(&"tonbo-map: claude-code: skipped by rule: file-history-snapshot 1; unknown: hologram 1"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

#[test]
fn a_session_of_unknown_records_and_a_stream_with_no_event_warn_and_exit_3() {
    // Session `a` maps; session `b` holds only records of a shape the mapping does not know.
    let input = [
        codex_record("a", 1, r#"{"timestamp":"2026-01-01T00:00:00Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}"#),
        codex_record("b", 1, r#"{"timestamp":"2026-01-01T00:00:00Z","type":"session_meta","payload":{"id":"b"}}"#),
        codex_record("b", 2, r#"{"timestamp":"2026-01-01T00:00:01Z","type":"conversation_turn","payload":{"text":"hi"}}"#),
        codex_record("b", 3, r#"{"timestamp":"2026-01-01T00:00:02Z","type":"conversation_turn","payload":{"text":"ho"}}"#),
    ]
    .join("\n");
    let r = run(&[], input.as_bytes());
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert_eq!(r.events().len(), 1);
    for said in [
        "tonbo-map: warning: session codex-b: nothing read: its 3 records gave no event; 2 of them",
        "unknown: conversation_turn 2",
    ] {
        assert_said(&r.stderr, said);
    }
    assert!(!r.stderr.contains("session codex-a"), "{}", r.stderr);
    let r = run(&["--allow-empty"], input.as_bytes());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_said(&r.stderr, "warning: session codex-b");

    // Records of which none gives an event: the whole input is warned about.
    let input = [
        r#"{"v":1,"source":"claude-code","session":"c","record":{"type":"file-history-snapshot","messageId":"m"},"provenance":{"file":"/x/c.jsonl","line":1}}"#,
        r#"{"v":1,"source":"claude-code","session":"c","record":{"type":"progress","uuid":"p1"},"provenance":{"file":"/x/c.jsonl","line":2}}"#,
    ]
    .join("\n");
    let r = run(&[], input.as_bytes());
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_said(
        &r.stderr,
        "tonbo-map: warning: stdin: nothing read: its 2 records gave no event",
    );
    // Only bookkeeping, all known: no per-session warning.
    assert!(!r.stderr.contains("session claude-code-c"), "{}", r.stderr);
    // Empty input is no warning.
    let r = run(&[], b"");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    // A rejected line says more than an empty input: exit 1.
    let r = run(&[], b"not json\n");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
}

/// A line in a reader's exact shape takes a one-pass path (its record checked only by the
/// mapping's typed parse); it must map exactly as the same record in any other shape, and a
/// broken record in that shape must be rejected as the full parse rejects it.
#[test]
fn a_record_in_the_readers_shape_maps_as_in_any_other() {
    let record = r#"{"type":"user","uuid":"u1","sessionId":"abc","timestamp":"2026-01-01T00:00:00Z","message":{"role":"user","content":"see ,\"at\":\" and {"},"x":{"a":1,"at":"y"}}"#;
    let readers = format!(
        r#"{{"v":1,"source":"claude-code","session":"abc","record":{record},"at":"abc.jsonl:1","provenance":{{"file":"/p/abc.jsonl","line":1}}}}"#
    );
    let reordered = format!(
        r#"{{"session":"abc","source":"claude-code","v":1,"at":"abc.jsonl:1","record":{record},"provenance":{{"file":"/p/abc.jsonl","line":1}}}}"#
    );
    let a = run(&[], format!("{readers}\n").as_bytes());
    let b = run(&[], format!("{reordered}\n").as_bytes());
    assert_eq!(a.code, Some(0), "{}", a.stderr);
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);

    let broken = r#"{"v":1,"source":"claude-code","session":"abc","record":{"type":"user","message":{"content":"x"},},"at":"abc.jsonl:2","provenance":{"file":"/p/abc.jsonl","line":2}}"#;
    let r = run(&[], format!("{broken}\n").as_bytes());
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("line 1") && r.stderr.contains("not a source record"),
        "{}",
        r.stderr
    );
}
