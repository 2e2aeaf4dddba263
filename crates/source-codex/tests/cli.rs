//! Drives the real `codex-read` binary over fake Codex homes built in a temporary directory, and
//! checks what it writes on stdout and stderr and how it exits.

use std::fs;
use std::path::{Path, PathBuf};

use tonbo_testkit::reader::{
    assert_ends, assert_has, assert_left_out_alone, assert_none_found,
    assert_refuses_bad_arguments, assert_rejected, assert_rejects_file, assert_warns_nothing_read,
    command, jsonl_with_bad_lines, long_ago, put, run_with, set_mtime, Rec, TempHome, Unreadable,
    AFTER_LONG_AGO, JSONL_REJECTS,
};

tonbo_testkit::local_run!();

const BIN: &str = env!("CARGO_BIN_EXE_codex-read");

const U0: &str = "5f0c7a10-0000-4000-8000-000000000000";
const U1: &str = "0c1d2e3f-0000-4000-8000-000000000001";
const U2: &str = "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a02";
const U3: &str = "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a03";
const U4: &str = "019c0000-aaaa-7bbb-8ccc-000000000004";
const U9: &str = "019a4c1e-7d2f-7a10-9b3e-0c5d2e6f7a09";

impl Run {
    /// The records, each read strictly ([`Rec::parse`]): of a line or a row, never an agent's.
    fn records(&self) -> Vec<Rec> {
        let rec = |line: &str| {
            let r = Rec::parse(line);
            assert!(r.agent_id.is_none(), "{line}");
            assert!(
                r.line.is_some() || r.row.is_some(),
                "no line or row: {line}"
            );
            r
        };
        self.stdout.lines().map(rec).collect()
    }

    /// `(kind, session, file relative to base, at)` of every record, in output order; `at` is the
    /// line number, or `#` and the row.
    fn order(&self, base: &Path) -> Vec<Row> {
        self.records()
            .iter()
            .map(|r| {
                let at = match (&r.line, &r.row) {
                    (Some(l), None) => l.to_string(),
                    (None, Some(row)) => format!("#{row}"),
                    _ => panic!("provenance needs exactly one of line and row"),
                };
                (
                    r.kind.clone().unwrap_or_default(),
                    r.session.clone(),
                    r.rel_file(base),
                    at,
                )
            })
            .collect()
    }
}

type Row = (String, String, String, String);

fn row(kind: &str, session: &str, file: &str, at: impl ToString) -> Row {
    (
        kind.to_string(),
        session.to_string(),
        file.to_string(),
        at.to_string(),
    )
}

/// Runs the binary with `args` and `env`; HOME is `home` and CODEX_HOME is unset unless `env`
/// sets it, so the machine's own sessions are never read.
fn run_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    Run(run_with(command(BIN, home, &["CODEX_HOME"]), args, env))
}

fn run(home: &Path, args: &[&str]) -> Run {
    run_env(home, args, &[])
}

fn put_zst(path: &Path, bytes: impl AsRef<[u8]>) {
    put(path, zstd::stream::encode_all(bytes.as_ref(), 3).unwrap());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Fixtures, after the format's examples (FORMAT.md of source-codex)

/// A V2 `session_meta` line.
fn meta(id: &str) -> String {
    format!(
        r#"{{"timestamp":"2025-11-02T08:00:00.120Z","type":"session_meta","payload":{{"id":"{id}","timestamp":"2025-11-02T08:00:00.101Z","cwd":"/home/u/proj","originator":"codex_cli_rs","cli_version":"0.53.0","instructions":null,"source":"cli","git":{{"branch":"main"}}}}}}"#
    )
}

/// A V2 line whose re-serialisation would change: odd spacing, `1.50`, escapes.
fn item(n: usize) -> String {
    format!(
        r#"{{"timestamp":"2025-11-02T08:00:0{}.000Z", "type":"response_item","payload":{{"type":"message","role":"user","n":{n}.50,"content":[{{"type":"input_text","text":"caf\u00e9 \"{n}\""}}]}}}}"#,
        n % 10
    )
}

fn event(n: usize) -> String {
    format!(r#"{{"timestamp":"t","type":"event_msg","payload":{{"type":"token_count","n":{n}}}}}"#)
}

fn v2_file(id: &str, n: usize) -> String {
    let mut s = meta(id);
    s.push('\n');
    for i in 1..=n {
        s.push_str(&item(i));
        s.push('\n');
    }
    s
}

/// V4: an outer `ordinal` (paginated history), new record types.
fn v4_file(id: &str) -> String {
    [
        format!(
            r#"{{"timestamp":"2026-05-01T10:00:00.000Z","ordinal":0,"type":"session_meta","payload":{{"id":"{id}","session_id":"{id}","thread_source":"user","history_mode":"paginated"}}}}"#
        ),
        r#"{"timestamp":"2026-05-01T10:00:01.000Z","ordinal":1,"type":"world_state","payload":{"x":1}}"#.to_string(),
        r#"{"timestamp":"2026-05-01T10:00:02.000Z","ordinal":3,"type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"ok"}]},"metadata":{"turn_id":"t1"}}"#.to_string(),
        String::new(),
    ]
    .join("\n")
}

/// V1: the bare meta line, a state marker, bare response items.
fn v1_lines(id: &str) -> Vec<String> {
    vec![
        format!(
            r#"{{"id":"{id}","timestamp":"2025-08-02T14:03:22.911Z","instructions":null,"git":{{"branch":"main"}}}}"#
        ),
        r#"{"record_type":"state"}"#.to_string(),
        r#"{"type":"message","id":null,"role":"user","content":[{"type":"input_text","text":"add a README"}]}"#.to_string(),
        r#"{"type":"function_call","id":"fc_1","name":"shell","arguments":"{\"command\":[\"ls\"]}","call_id":"call_1"}"#.to_string(),
    ]
}

/// V0, as `JSON.stringify(.., null, 2)` writes it.
fn v0_doc(id: &str) -> String {
    format!(
        r#"{{
  "session": {{
    "timestamp": "2025-04-20T10:02:11.512Z",
    "id": "{id}",
    "instructions": ""
  }},
  "items": [
    {{
      "role": "user",
      "type": "message",
      "content": [
        {{
          "type": "input_text",
          "text": "list  files\n\"now\" \u00e9"
        }}
      ]
    }},
    {{
      "id": "fc_1",
      "type": "function_call",
      "call_id": "call_1",
      "name": "shell",
      "arguments": "{{\"command\":[\"ls\"]}}",
      "status": "completed"
    }},
    {{
      "type": "function_call_output",
      "call_id": "call_1",
      "output": "{{\"output\":\"a.txt\\n\",\"metadata\":{{\"exit_code\":0,\"duration_seconds\":0.50}}}}"
    }},
    {{
      "id": "msg_2",
      "type": "message",
      "role": "assistant",
      "status": "completed",
      "content": [
        {{
          "type": "output_text",
          "text": "One file.",
          "annotations": []
        }}
      ]
    }}
  ]
}}"#
    )
}

/// The items of [`v0_doc`], compact: whitespace between tokens gone, nothing else changed.
fn v0_items() -> Vec<String> {
    vec![
        r#"{"role":"user","type":"message","content":[{"type":"input_text","text":"list  files\n\"now\" \u00e9"}]}"#.to_string(),
        r#"{"id":"fc_1","type":"function_call","call_id":"call_1","name":"shell","arguments":"{\"command\":[\"ls\"]}","status":"completed"}"#.to_string(),
        r#"{"type":"function_call_output","call_id":"call_1","output":"{\"output\":\"a.txt\\n\",\"metadata\":{\"exit_code\":0,\"duration_seconds\":0.50}}"}"#.to_string(),
        r#"{"id":"msg_2","type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"One file.","annotations":[]}]}"#.to_string(),
    ]
}

fn v0_session(id: &str) -> String {
    format!(r#"{{"timestamp":"2025-04-20T10:02:11.512Z","id":"{id}","instructions":""}}"#)
}

/// The seed shape of homegrown exporters, `messages` first and a numeric id.
fn seed_doc() -> &'static str {
    "{\n  \"messages\": [\n    {\"role\": \"user\", \"content\": \"hi\"},\n    {\"name\": \"shell\", \"args\": {\"cmd\": [\"ls\"]}},\n    {\"role\": \"assistant\", \"content\": \"done\"}\n  ],\n  \"id\": 42,\n  \"title\" : \"an export\"\n}\n"
}

/// A Codex home with every generation:
///
/// ```text
/// .codex/sessions/2025/09/20/rollout-2025-09-20T10-00-00-<U2>.jsonl       V2
/// .codex/sessions/2026/05/01/rollout-2026-05-01T10-00-00-<U4>.jsonl.zst   V4, ordinal, zstd
/// .codex/sessions/rollout-2025-04-20-<U0>.json                            V0, flat
/// .codex/sessions/rollout-2025-05-10T09-00-00-<U1>.jsonl                  V1, flat
/// .codex/sessions/rollout-2025-06-01-seed-export.json                     seed
/// .codex/archived_sessions/rollout-2025-09-21T10-00-00-<U3>.jsonl         V2, archived
/// .codex/history.jsonl, session_index.jsonl, state_5.sqlite, log/session-1.jsonl   skipped
/// .codex/sessions/notes.txt, .codex/sessions/config.json                           skipped
/// ```
fn build_home(base: &Path) -> PathBuf {
    let home = base.join(".codex");
    let sessions = home.join("sessions");
    put(
        &sessions.join(format!("2025/09/20/rollout-2025-09-20T10-00-00-{U2}.jsonl")),
        format!("{}{}\n", v2_file(U2, 2), event(3)),
    );
    put_zst(
        &sessions.join(format!(
            "2026/05/01/rollout-2026-05-01T10-00-00-{U4}.jsonl.zst"
        )),
        v4_file(U4),
    );
    put(
        &sessions.join(format!("rollout-2025-04-20-{U0}.json")),
        v0_doc(U0),
    );
    put(
        &sessions.join(format!("rollout-2025-05-10T09-00-00-{U1}.jsonl")),
        v1_lines(U1).join("\n") + "\n",
    );
    put(
        &sessions.join("rollout-2025-06-01-seed-export.json"),
        seed_doc(),
    );
    put(
        &home.join(format!(
            "archived_sessions/rollout-2025-09-21T10-00-00-{U3}.jsonl"
        )),
        v2_file(U3, 1),
    );
    put(
        &home.join("history.jsonl"),
        format!("{{\"session_id\":\"{U2}\",\"ts\":1,\"text\":\"hi\"}}\n"),
    );
    put(
        &home.join("session_index.jsonl"),
        format!("{{\"id\":\"{U2}\",\"thread_name\":\"x\",\"updated_at\":\"t\"}}\n"),
    );
    put(&home.join("state_5.sqlite"), "SQLite format 3\0");
    put(
        &home.join("log/session-1.jsonl"),
        "{\"type\":\"session_meta\",\"payload\":{\"id\":\"log\"}}\n",
    );
    put(&sessions.join("notes.txt"), "not a session\n");
    put(
        &sessions.join("config.json"),
        "{\"id\":1,\"messages\":[]}\n",
    );
    home
}

#[test]
fn reads_a_codex_home_of_every_generation_in_order() {
    let base = &TempHome::new();
    let home = build_home(base);
    let r = run(base, &[]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let v2f = format!(".codex/sessions/2025/09/20/rollout-2025-09-20T10-00-00-{U2}.jsonl");
    let v4f = format!(".codex/sessions/2026/05/01/rollout-2026-05-01T10-00-00-{U4}.jsonl.zst");
    let v0f = format!(".codex/sessions/rollout-2025-04-20-{U0}.json");
    let v1f = format!(".codex/sessions/rollout-2025-05-10T09-00-00-{U1}.jsonl");
    let sf = ".codex/sessions/rollout-2025-06-01-seed-export.json";
    let af = format!(".codex/archived_sessions/rollout-2025-09-21T10-00-00-{U3}.jsonl");
    let expect = vec![
        row("", U2, &v2f, 1),
        row("", U2, &v2f, 2),
        row("", U2, &v2f, 3),
        row("", U2, &v2f, 4),
        row("", U4, &v4f, 1),
        row("", U4, &v4f, 2),
        row("", U4, &v4f, 3),
        row("v0-session", U0, &v0f, "#session"),
        row("v0-item", U0, &v0f, "#0"),
        row("v0-item", U0, &v0f, "#1"),
        row("v0-item", U0, &v0f, "#2"),
        row("v0-item", U0, &v0f, "#3"),
        row("v1", U1, &v1f, 1),
        row("v1", U1, &v1f, 2),
        row("v1", U1, &v1f, 3),
        row("v1", U1, &v1f, 4),
        row("seed-session", "42", sf, "#session"),
        row("seed-message", "42", sf, "#0"),
        row("seed-message", "42", sf, "#1"),
        row("seed-message", "42", sf, "#2"),
        row("", U3, &af, 1),
        row("", U3, &af, 2),
    ];
    assert_eq!(r.order(base), expect);
    let recs = r.records();
    for rec in &recs {
        assert_eq!(rec.v, 1);
        assert_eq!(rec.source, "codex");
    }
    // JSONL lines go out byte for byte, unknown types too; V0 items compact and in order.
    assert_eq!(recs[0].record, meta(U2));
    assert_eq!(recs[1].record, item(1));
    assert_eq!(recs[3].record, event(3));
    assert_eq!(recs[5].record, v4_file(U4).lines().nth(1).unwrap());
    assert_eq!(recs[7].record, v0_session(U0));
    let items: Vec<&str> = recs[8..12].iter().map(|r| r.record.as_str()).collect();
    assert_eq!(items, v0_items());
    assert_eq!(
        recs[12..16]
            .iter()
            .map(|r| r.record.clone())
            .collect::<Vec<_>>(),
        v1_lines(U1)
    );
    assert_eq!(recs[16].record, r#"{"id":42,"title":"an export"}"#);
    assert_eq!(recs[18].record, r#"{"name":"shell","args":{"cmd":["ls"]}}"#);
    // Nothing from the files that are not transcripts.
    for not in [
        "\"ts\":1",
        "thread_name",
        "SQLite",
        "\"log\"",
        "\"messages\":[]",
    ] {
        assert!(!r.stdout.contains(not), "{not} leaked into stdout");
    }
    assert_eq!(
        r.summary(),
        "codex-read: 6 files (1 v0, 1 seed, 1 v1, 3 v2+, 0 unknown; 1 zst), 13 lines, 7 items, 22 records, 0 incomplete, 0 rejected, 0 failed"
    );
    assert!(!r.stderr.contains("note"), "stderr: {}", r.stderr);

    // The Codex home as PATH reads the same; its sessions folder the same less the archive.
    let r2 = run(base, &[s(&home)]);
    assert_eq!(r2.stdout, r.stdout);
    let r3 = run(base, &[s(&home.join("sessions"))]);
    assert_eq!(r3.order(base), expect[..20].to_vec());
    // One date folder, and single files of each kind.
    let r4 = run(base, &[s(&home.join("sessions/2026"))]);
    assert_eq!(r4.order(base), expect[4..7].to_vec());
    let r5 = run(
        base,
        &[s(&base.join(sf)), s(&base.join(&v1f)), s(&base.join(&v4f))],
    );
    assert_eq!(
        r5.order(base),
        [&expect[16..20], &expect[12..16], &expect[4..7]].concat()
    );
    // -q drops the summary and nothing else.
    let r6 = run(base, &["-q"]);
    assert_eq!(r6.stdout, r.stdout);
    assert_eq!(r6.stderr, "");
    // Files named alone that are not session files are said so, and skipped; since they hold
    // something and gave nothing, the exit status is 3.
    let r7 = run(
        base,
        &[
            s(&home.join("history.jsonl")),
            s(&home.join("sessions/notes.txt")),
        ],
    );
    assert_eq!(r7.code, Some(3), "stderr: {}", r7.stderr);
    assert_has(&r7.stderr, "history.jsonl: nothing read");
    assert_eq!(r7.stdout, "");
    assert_has(&r7.stderr, "history.jsonl is not a Codex session file");
    assert_has(&r7.stderr, "notes.txt is not a Codex session file");
}

#[test]
fn the_session_is_the_first_session_meta_not_the_file_name() {
    let base = &TempHome::new();
    let dir = base.join("sessions/2025/11/02");
    // The name says U9; the content says U2.
    let renamed = dir.join(format!("rollout-2025-11-02T08-00-00-{U9}.jsonl"));
    put(&renamed, v2_file(U2, 1));
    // A fork: its own meta first, then a copy of its parent's lines with the parent's meta;
    // every line is the fork's.
    let fork = dir.join(format!("rollout-2025-11-02T09-00-00-{U3}.jsonl"));
    put(
        &fork,
        format!("{}\n{}{}\n", meta(U3), v2_file(U2, 1), event(7)),
    );
    // No session_meta at all: the UUID at the end of the name, with a note.
    let nometa = dir.join(format!("rollout-2025-11-02T10-00-00-{U4}.jsonl"));
    put(&nometa, format!("{}\n", item(1)));
    // The meta after a few lines (buffered items share one write).
    let late = dir.join(format!("rollout-2025-11-02T11-00-00-{U9}.jsonl"));
    put(&late, format!("{}\n{}\n", item(1), meta(U1)));
    // Neither meta nor UUID: the name without its extensions.
    let plain = base.join("sessions/export-7.jsonl");
    put(&plain, format!("{}\n", item(1)));
    let r = run(base, &[s(&base.join("sessions"))]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let by_file: Vec<(String, String)> = r
        .records()
        .iter()
        .map(|rec| (rec.rel_file(base), rec.session.clone()))
        .collect();
    let rel = |p: &Path| p.strip_prefix(base).unwrap().display().to_string();
    let mut expect = vec![(rel(&renamed), U2.to_string()); 2];
    expect.extend(vec![(rel(&fork), U3.to_string()); 4]);
    expect.push((rel(&nometa), U4.to_string()));
    expect.extend(vec![(rel(&late), U1.to_string()); 2]);
    expect.push((rel(&plain), "export-7".to_string()));
    assert_eq!(by_file, expect);
    assert!(r.has_line(&format!(
        "codex-read: note: {}: no session_meta line in its first 1000 lines; session id taken from the UUID in its file name: {U4}",
        nometa.display()
    )), "stderr: {}", r.stderr);
    assert!(r.has_line(&format!(
        "codex-read: note: {}: no session_meta line in its first 1000 lines; session id taken from its file name: export-7",
        plain.display()
    )), "stderr: {}", r.stderr);
    assert_eq!(r.stderr.matches("note").count(), 2, "stderr: {}", r.stderr);
}

#[test]
fn the_plain_file_wins_over_its_zst_and_a_zst_alone_is_read() {
    let base = &TempHome::new();
    let dir = base.join("sessions/2025/12/01");
    let x = format!("rollout-2025-12-01T09-00-00-{U2}.jsonl");
    let y = format!("rollout-2025-12-01T08-00-00-{U3}.jsonl.zst");
    put(&dir.join(&x), v2_file(U2, 2));
    // The compressed copy differs, so that reading it would show.
    put_zst(&dir.join(format!("{x}.zst")), v2_file(U2, 5));
    put_zst(&dir.join(&y), v2_file(U3, 3));
    let r = run(base, &[s(&base.join("sessions"))]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let d = "sessions/2025/12/01";
    let mut expect: Vec<Row> = (1..=4)
        .map(|l| row("", U3, &format!("{d}/{y}"), l))
        .collect();
    expect.extend((1..=3).map(|l| row("", U2, &format!("{d}/{x}"), l)));
    assert_eq!(r.order(base), expect);
    // The .zst's lines are the decompressed lines, byte for byte.
    assert_eq!(r.records()[1].record, item(1));
    assert!(r.has_line(&format!(
        "codex-read: note: {} not read: {} beside it wins (the plain file wins)",
        dir.join(format!("{x}.zst")).display(),
        dir.join(&x).display()
    )));
    assert!(
        r.summary().starts_with(
            "codex-read: 2 files (0 v0, 0 seed, 0 v1, 2 v2+, 0 unknown; 1 zst), 7 lines"
        ),
        "{}",
        r.summary()
    );
    assert_ends(r.summary(), "skipped 1 duplicate files");
    // Named alone, the .zst is read even with its plain file beside it.
    let r = run(base, &[s(&dir.join(format!("{x}.zst")))]);
    assert_eq!(r.records().len(), 6);
}

#[test]
fn a_truncated_or_foreign_zst_is_a_failure_after_what_decoded() {
    let base = &TempHome::new();
    let dir = base.join("sessions");
    // Many blocks of zstd (a block holds at most 128 KiB), so a cut leaves whole blocks before.
    let mut data = meta(U2) + "\n";
    for i in 1..=3000 {
        data.push_str(&item(i));
        data.push('\n');
    }
    let whole = zstd::stream::encode_all(data.as_bytes(), 3).unwrap();
    let cut = dir.join(format!("rollout-2025-12-01T08-00-00-{U2}.jsonl.zst"));
    put(&cut, &whole[..whole.len() * 7 / 10]);
    let foreign = dir.join(format!("rollout-2025-12-01T09-00-00-{U3}.jsonl.zst"));
    put(&foreign, v2_file(U3, 1));
    let fine = dir.join(format!("rollout-2025-12-01T10-00-00-{U4}.jsonl"));
    put(&fine, v2_file(U4, 1));
    let r = run(base, &[s(&dir)]);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    let recs = r.records();
    let got = recs.iter().filter(|rec| rec.session == U2).count();
    assert!(got > 1 && got < 3001, "{got} records of the truncated file");
    // What came out is the start of the file, in order.
    for (i, rec) in recs.iter().take(got).enumerate() {
        assert_eq!(rec.line, Some(i as u64 + 1));
        let expect = if i == 0 { meta(U2) } else { item(i) };
        assert_eq!(rec.record, expect);
    }
    // The other files are still read.
    assert_eq!(recs[got..].iter().filter(|r| r.session == U4).count(), 2);
    assert!(!r.stdout.contains(U3));
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("not a complete zstd stream ("))
        .collect();
    assert_eq!(errors.len(), 2, "stderr: {}", r.stderr);
    assert!(errors[0].starts_with(&format!("codex-read: {}: ", cut.display())));
    assert!(errors[1].starts_with(&format!("codex-read: {}: ", foreign.display())));
    assert_has(r.summary(), "2 zst");
    assert_ends(r.summary(), "0 rejected, 2 failed");
}

#[test]
fn a_v0_document_comes_out_item_by_item_and_a_truncated_one_fails_after_its_items() {
    let base = &TempHome::new();
    let dir = base.join("sessions");
    let doc = v0_doc(U0);
    // Cut inside the third item: the session and two items parse (writes are not atomic).
    let cut = &doc[..doc.find("\"function_call_output\"").unwrap()];
    let truncated = dir.join(format!("rollout-2025-04-20-{U1}.json"));
    put(&truncated, cut.replace(U0, U1));
    let whole = dir.join(format!("rollout-2025-04-21-{U0}.json"));
    put(&whole, &doc);
    // Cut before `items`: nothing but the failure.
    let early = dir.join(format!("rollout-2025-04-22-{U2}.json"));
    put(&early, &doc[..doc.find("\"items\"").unwrap()]);
    let r = run(base, &[s(&dir)]);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    let t = format!("sessions/rollout-2025-04-20-{U1}.json");
    let w = format!("sessions/rollout-2025-04-21-{U0}.json");
    assert_eq!(
        r.order(base),
        vec![
            row("v0-session", U1, &t, "#session"),
            row("v0-item", U1, &t, "#0"),
            row("v0-item", U1, &t, "#1"),
            row("v0-session", U0, &w, "#session"),
            row("v0-item", U0, &w, "#0"),
            row("v0-item", U0, &w, "#1"),
            row("v0-item", U0, &w, "#2"),
            row("v0-item", U0, &w, "#3"),
        ]
    );
    let recs = r.records();
    assert_eq!(recs[1].record, v0_items()[0]);
    assert_eq!(recs[2].record, v0_items()[1]);
    assert_eq!(recs[3].record, v0_session(U0));
    assert!(r.has_line(&format!(
        "codex-read: {}: truncated JSON document after 2 items",
        truncated.display()
    )));
    assert!(r.has_line(&format!(
        "codex-read: {}: truncated JSON document after 0 items",
        early.display()
    )));
    assert_eq!(
        r.summary(),
        "codex-read: 3 files (2 v0, 0 seed, 0 v1, 0 v2+, 1 unknown; 0 zst), 0 lines, 6 items, 8 records, 0 incomplete, 0 rejected, 2 failed"
    );
}

#[test]
fn seed_documents_and_json_that_is_no_session() {
    let base = &TempHome::new();
    let seed = base.join("export/conversation.json");
    put(&seed, seed_doc());
    // A string id, and a session record of every top-level field but `messages`.
    let seed2 = base.join("export/other.json");
    put(
        &seed2,
        r#"{"id":"run-7","model":{"name":"m","t":0.50},"messages":[]}"#,
    );
    let foreign = base.join("export/package.json");
    put(&foreign, "{\"name\":\"x\",\"version\":\"1.0.0\"}\n");
    let broken = base.join("export/broken.json");
    put(&broken, "{\"id\": 1, oops}");
    let r = run(base, &[s(&seed), s(&seed2), s(&foreign), s(&broken)]);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert_eq!(
        r.order(base),
        vec![
            row("seed-session", "42", "export/conversation.json", "#session"),
            row("seed-message", "42", "export/conversation.json", "#0"),
            row("seed-message", "42", "export/conversation.json", "#1"),
            row("seed-message", "42", "export/conversation.json", "#2"),
            row("seed-session", "run-7", "export/other.json", "#session"),
        ]
    );
    let recs = r.records();
    assert_eq!(recs[0].record, r#"{"id":42,"title":"an export"}"#);
    assert_eq!(recs[1].record, r#"{"role":"user","content":"hi"}"#);
    assert_eq!(
        recs[4].record,
        r#"{"id":"run-7","model":{"name":"m","t":0.50}}"#
    );
    let rejected = r.rejected_lines();
    assert_eq!(rejected.len(), 2, "stderr: {}", r.stderr);
    assert!(rejected[0].starts_with(&format!(
        "codex-read: {}:1: rejected: not a Codex session document: a top-level object with `session` and `items` (V0) or `id` and `messages` (seed) expected",
        foreign.display()
    )));
    assert!(
        rejected[1].starts_with(&format!(
            "codex-read: {}:1: rejected: not a Codex session document: key must be a string",
            broken.display()
        )),
        "{}",
        rejected[1]
    );
}

#[test]
fn a_bom_at_the_start_of_a_file_is_skipped() {
    let base = &TempHome::new();
    let dir = base.join("sessions");
    let bom = "\u{feff}";
    put(
        &dir.join(format!("rollout-2025-11-02T08-00-00-{U2}.jsonl")),
        format!("{bom}{}", v2_file(U2, 1)),
    );
    put(
        &dir.join(format!("rollout-2025-04-20-{U0}.json")),
        format!("{bom}{}", v0_doc(U0)),
    );
    put_zst(
        &dir.join(format!("rollout-2025-11-03T08-00-00-{U3}.jsonl.zst")),
        format!("{bom}\n{}", v1_lines(U3).join("\n")),
    );
    let r = run(base, &[s(&dir)]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let recs = r.records();
    assert_eq!(recs.len(), 5 + 2 + 4);
    assert_eq!(recs[0].kind.as_deref(), Some("v0-session"));
    assert_eq!(recs[0].record, v0_session(U0));
    assert_eq!(recs[5].session, U2);
    assert_eq!(recs[5].record, meta(U2));
    assert_eq!(recs[7].session, U3);
    assert_eq!(recs[7].kind.as_deref(), Some("v1"));
    // The BOM and its line ending make a blank line 1; the meta is line 2.
    assert_eq!(recs[7].line, Some(2));
    assert_eq!(recs[7].record, v1_lines(U3)[0]);
}

#[test]
fn a_torn_last_line_is_left_for_later_and_a_whole_unterminated_one_is_read() {
    let base = &TempHome::new();
    let dir = base.join("sessions");
    let torn_line = r#"{"timestamp":"t","type":"response_item","payload":{"type":"mess"#;
    let a = dir.join(format!("rollout-2025-11-02T08-00-00-{U2}.jsonl"));
    put(&a, format!("{}\n{torn_line}", meta(U2)));
    let b = dir.join(format!("rollout-2025-11-02T09-00-00-{U3}.jsonl"));
    put(
        &b,
        format!("{}\n{{\"type\":\"x\", \"payload\":1}}", meta(U3)),
    );
    // Being created right now: only a torn line, or nothing yet.
    let c = dir.join(format!("rollout-2025-11-02T10-00-00-{U4}.jsonl"));
    put(&c, &meta(U4)[..40]);
    let d = dir.join(format!("rollout-2025-11-02T11-00-00-{U9}.jsonl"));
    put(&d, "");
    let r = run(base, &[s(&dir)]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let bf = format!("sessions/rollout-2025-11-02T09-00-00-{U3}.jsonl");
    assert_eq!(
        r.order(base),
        vec![
            row(
                "",
                U2,
                &format!("sessions/rollout-2025-11-02T08-00-00-{U2}.jsonl"),
                1
            ),
            row("", U3, &bf, 1),
            row("", U3, &bf, 2),
        ]
    );
    assert_eq!(r.records()[2].record, "{\"type\":\"x\", \"payload\":1}");
    let torn = |p: &Path, line: u64, len: usize| {
        format!("codex-read: {}:{line}: incomplete last line ({len} bytes), not read; a writer may still be appending", p.display())
    };
    assert!(
        r.has_line(&torn(&a, 2, torn_line.len())),
        "stderr: {}",
        r.stderr
    );
    assert!(r.has_line(&torn(&c, 1, 40)), "stderr: {}", r.stderr);
    assert!(r.has_line(&format!(
        "codex-read: {}: empty, not read; a writer may still be creating it",
        d.display()
    )));
    assert!(r.rejected_lines().is_empty());
    assert_ends(
        r.summary(),
        "5 lines, 0 items, 3 records, 3 incomplete, 0 rejected, 0 failed",
    );
}

#[test]
fn corrupt_lines_are_rejected_with_file_and_line_and_the_rest_is_read() {
    let base = &TempHome::new();
    let dir = base.join("sessions");
    let file = dir.join(format!("rollout-2025-11-02T08-00-00-{U2}.jsonl"));
    put(&file, jsonl_with_bad_lines(&meta(U2), &item(6)));
    // A file whose format cannot be told: rejected once, as a whole.
    let unknown = dir.join(format!("rollout-2025-11-02T09-00-00-{U3}.jsonl"));
    put(
        &unknown,
        "{\"session_id\":\"x\",\"ts\":1,\"text\":\"a typed prompt\"}\n{\"n\":2}\n",
    );
    let rejects = base.join("rejects.ndjson");
    let r = run(base, &[s(&dir), "--rejects", s(&rejects)]);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    let f = format!("sessions/rollout-2025-11-02T08-00-00-{U2}.jsonl");
    assert_eq!(r.order(base), vec![row("", U2, &f, 1), row("", U2, &f, 6)]);
    let f = file.display().to_string();
    let u = unknown.display().to_string();
    let mut expect: Vec<_> = JSONL_REJECTS
        .iter()
        .map(|&(line, why)| (f.clone(), line, why))
        .collect();
    // The file of no known format, once, after the first file.
    let why = "not a Codex session file: line 1 is neither a V2+ record";
    expect.push((u.clone(), 1, why));
    assert_rejected(&r, "codex-read", &expect);
    let recorded = assert_rejects_file(&rejects, "codex-read", &f, &u);
    assert_eq!(
        recorded[5]["raw"],
        "{\"session_id\":\"x\",\"ts\":1,\"text\":\"a typed prompt\"}"
    );
    assert!(
        r.summary().contains("1 v2+, 1 unknown") && r.summary().contains("6 rejected"),
        "{}",
        r.summary()
    );
}

#[test]
fn codex_home_reads_sessions_then_archive_and_a_name_in_both_once() {
    let base = &TempHome::new();
    let ch = base.join("ch");
    let a = format!("rollout-2025-11-01T08-00-00-{U1}.jsonl");
    let b = format!("rollout-2025-11-02T08-00-00-{U2}.jsonl");
    let c = format!("rollout-2025-11-03T08-00-00-{U3}.jsonl");
    let d = format!("rollout-2025-11-04T08-00-00-{U4}.jsonl");
    put(&ch.join("sessions/2025/11/01").join(&a), v2_file(U1, 1));
    put(&ch.join("sessions/2025/11/02").join(&b), v2_file(U2, 1));
    put(&ch.join("sessions/2025/11/04").join(&d), v2_file(U4, 1));
    // Archived: B again (moved while a reader looked), D again compressed, and C.
    put(&ch.join("archived_sessions").join(&b), v2_file(U2, 9));
    put_zst(
        &ch.join("archived_sessions").join(format!("{d}.zst")),
        v2_file(U4, 9),
    );
    put(&ch.join("archived_sessions").join(&c), v2_file(U3, 1));
    // ~/.codex/sessions: V0 files are read from here whatever CODEX_HOME says; others not.
    put(
        &base.join(format!(".codex/sessions/rollout-2025-04-20-{U0}.json")),
        v0_doc(U0),
    );
    put(
        &base.join(format!(
            ".codex/sessions/rollout-2025-11-05T08-00-00-{U9}.jsonl"
        )),
        v2_file(U9, 1),
    );
    let r = run_env(base, &[], &[("CODEX_HOME", s(&ch))]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let sessions: Vec<(String, String)> = r
        .records()
        .iter()
        .map(|rec| (rec.session.clone(), rec.rel_file(base)))
        .collect();
    let mut expect = vec![(U1.to_string(), format!("ch/sessions/2025/11/01/{a}")); 2];
    expect.extend(vec![
        (U2.to_string(), format!("ch/sessions/2025/11/02/{b}"));
        2
    ]);
    expect.extend(vec![
        (U4.to_string(), format!("ch/sessions/2025/11/04/{d}"));
        2
    ]);
    expect.extend(vec![
        (U3.to_string(), format!("ch/archived_sessions/{c}"));
        2
    ]);
    expect.push((
        U0.to_string(),
        format!(".codex/sessions/rollout-2025-04-20-{U0}.json"),
    ));
    expect.extend(vec![
        (
            U0.to_string(),
            format!(".codex/sessions/rollout-2025-04-20-{U0}.json")
        );
        4
    ]);
    assert_eq!(sessions, expect);
    assert!(r.has_line(&format!(
        "codex-read: note: {} not read: {} has the same name (sessions/ wins over archived_sessions/)",
        ch.join("archived_sessions").join(&b).display(),
        ch.join("sessions/2025/11/02").join(&b).display()
    )), "stderr: {}", r.stderr);
    assert_has(
        &r.stderr,
        &format!(
            "{}.zst not read: {} has the same name",
            ch.join("archived_sessions").join(&d).display(),
            ch.join("sessions/2025/11/04").join(&d).display()
        ),
    );
    assert_ends(r.summary(), "skipped 2 duplicate files");

    // The same home as PATH, and its two folders named in the other order: the same rule.
    let r2 = run(base, &[s(&ch)]);
    assert_eq!(r2.records().len(), 8);
    let r3 = run(
        base,
        &[s(&ch.join("archived_sessions")), s(&ch.join("sessions"))],
    );
    assert_eq!(r3.code, Some(0));
    let order: Vec<String> = r3.records().iter().map(|r| r.session.clone()).collect();
    assert_eq!(order, [U3, U3, U1, U1, U2, U2, U4, U4]);

    // CODEX_HOME that is ~/.codex itself: read once, in full.
    let r4 = run_env(base, &[], &[("CODEX_HOME", s(&base.join(".codex")))]);
    assert_eq!(r4.code, Some(0), "stderr: {}", r4.stderr);
    assert_eq!(r4.records().len(), 5 + 2);
}

#[test]
fn no_default_folder_is_not_an_error() {
    let base = &TempHome::new();
    assert_none_found(&run(base, &[]), "Codex sessions folder");
    let r = run_env(base, &[], &[("CODEX_HOME", s(&base.join("missing")))]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert!(r.stderr.contains("CODEX_HOME"), "stderr: {}", r.stderr);
    assert_has(&r.stderr, "is not a directory");
}

#[test]
fn modified_after_skips_files_not_modified_since() {
    let base = &TempHome::new();
    let dir = base.join("sessions");
    let old = dir.join(format!("rollout-2023-11-01T08-00-00-{U1}.jsonl"));
    let new = dir.join(format!("rollout-2025-11-01T08-00-00-{U2}.jsonl"));
    let old_v0 = dir.join(format!("rollout-2023-04-20-{U0}.json"));
    put(&old, v2_file(U1, 1));
    put(&new, v2_file(U2, 1));
    put(&old_v0, v0_doc(U0));
    set_mtime(&old, long_ago());
    set_mtime(&old_v0, long_ago());
    for after in AFTER_LONG_AGO {
        let r = run(base, &[s(&dir), "--modified-after", after]);
        assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
        let sessions: Vec<String> = r.records().iter().map(|r| r.session.clone()).collect();
        assert_eq!(sessions, [U2, U2], "--modified-after {after}");
        assert_ends(
            r.summary(),
            "skipped 2 files not modified after --modified-after",
        );
    }
    let r = run(base, &[s(&dir), "--modified-after", "2023-11-14"]);
    assert_eq!(r.records().len(), 5 + 2 + 2);
    assert_left_out_alone(|args| run(base, args), &old);
}

#[test]
fn a_10_mb_line_is_read_whole() {
    let base = &TempHome::new();
    let big = format!(
        r#"{{"timestamp":"t","type":"response_item","payload":{{"type":"function_call_output","call_id":"c","output":"{}"}}}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let file = base.join(format!("sessions/rollout-2025-11-02T08-00-00-{U2}.jsonl"));
    put(&file, format!("{}\n{big}\n{}\n", meta(U2), item(3)));
    let zst = base.join(format!(
        "sessions/rollout-2025-11-03T08-00-00-{U3}.jsonl.zst"
    ));
    put_zst(&zst, format!("{}\n{big}\n{}\n", meta(U3), item(3)));
    let r = run(base, &[s(&base.join("sessions"))]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let recs = r.records();
    assert_eq!(recs.len(), 6);
    for i in [1, 4] {
        assert_eq!(recs[i].line, Some(2));
        assert!(
            recs[i].record == big,
            "the 10 MB record differs from its line"
        );
    }
    assert_eq!(recs[2].record, item(3));
    assert_eq!(recs[5].record, item(3));
}

#[test]
fn unreadable_paths_are_reported_counted_and_passed_over() {
    let base = &TempHome::new();
    let dir = base.join("sessions");
    put(&dir.join(format!("a-{U1}.jsonl")), v2_file(U1, 0));
    put(&dir.join(format!("c-{U3}.jsonl")), v2_file(U3, 0));
    // A link back to the root (a loop) in a date folder.
    let bad = Unreadable::make(base, dir.join("b.jsonl"), &dir.join("2025/loop"));
    let r = run(base, &[s(&bad.missing), s(&dir)]);
    bad.assert_reported(&r, "failed");
    let sessions: Vec<String> = r.records().iter().map(|r| r.session.clone()).collect();
    assert_eq!(sessions, [U1, U3]);
}

#[test]
fn bad_arguments_are_refused() {
    let base = &TempHome::new();
    put(&base.join("sessions/a.jsonl"), v2_file(U1, 1));
    assert_refuses_bad_arguments(|args| run(base, args), &base.join("sessions"));
}

#[test]
fn a_closed_stdout_ends_the_stage_quietly_with_exit_0() {
    let base = &TempHome::new();
    let data = v2_file(U2, 200_000);
    put(
        &base.join(format!("sessions/rollout-2025-11-02T08-00-00-{U2}.jsonl")),
        &data,
    );
    put_zst(
        &base.join(format!(
            "sessions/rollout-2025-11-03T08-00-00-{U3}.jsonl.zst"
        )),
        &data,
    );
    let mut cmd = command(BIN, base, &["CODEX_HOME"]);
    cmd.arg(base.join("sessions"));
    let closed = tonbo_testkit::first_line_then_close(cmd, None);
    closed.assert_quiet();
    assert_eq!(closed.stderr, "");
    assert_eq!(Rec::parse(&closed.first).record, meta(U2));
}

#[test]
fn a_path_that_holds_files_but_gives_nothing_warns_and_exits_3() {
    let base = &TempHome::new();
    // A Codex home with its index and config but no session file yet.
    let home = base.join("codex");
    put(&home.join("sessions/2026/11/30/notes.txt"), "not a session");
    put(&home.join("config.toml"), "model = \"x\"");
    let why = "no Codex session file";
    assert_warns_nothing_read(|args| run(base, args), "codex-read", &home, why);
    // The default folders: CODEX_HOME's sessions/ holds a file but no session.
    let r = run_env(base, &[], &[("CODEX_HOME", s(&home))]);
    assert_eq!(r.code, Some(3), "stderr: {}", r.stderr);
    // Only a torn line: the reason says so.
    put(
        &home.join("sessions/2026/11/30/rollout-x.jsonl"),
        "{\"timestamp\":",
    );
    let r = run(base, &[s(&home)]);
    assert_eq!(r.code, Some(3), "stderr: {}", r.stderr);
    assert_has(&r.stderr, "session files");
    // Two PATHs: one that gives records does not hide the other.
    let good =
        base.join("good/rollout-2025-10-01T09-00-00-0199a1b2-0000-7000-8000-000000000001.jsonl");
    put(&good, v2_file("0199a1b2-0000-7000-8000-000000000001", 1));
    let r = run(base, &[s(&good), s(&home)]);
    assert_eq!(r.code, Some(3), "stderr: {}", r.stderr);
    assert!(!r.stdout.is_empty());
    // An empty folder is no warning.
    fs::create_dir_all(base.join("empty")).unwrap();
    let r = run(base, &[s(&base.join("empty"))]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}
