//! Drives the real `claude-read` binary over fake Claude Code `projects/` trees built in a
//! temporary directory, and checks what it writes on stdout and stderr and how it exits.

use std::fs;
use std::path::{Path, PathBuf};

use tonbo_testkit::reader::{
    assert_ends, assert_has, assert_left_out_alone, assert_none_found,
    assert_refuses_bad_arguments, assert_rejected, assert_rejects_file, assert_warns_nothing_read,
    jsonl_with_bad_lines, long_ago, put, run_with, set_mtime, Rec, TempHome, Unreadable,
    AFTER_LONG_AGO, JSONL_REJECTS,
};

mod common;
use common::claude_read;

tonbo_testkit::local_run!();

impl Run {
    /// The records, each read strictly ([`Rec::parse`]): a line or a meta file, never a row.
    fn records(&self) -> Vec<Rec> {
        let rec = |line: &str| {
            let r = Rec::parse(line);
            assert!(r.row.is_none(), "{line}");
            r
        };
        self.stdout.lines().map(rec).collect()
    }

    /// `(session, file relative to base, line)` of every record, in output order; meta records
    /// show as line 0.
    fn order(&self, base: &Path) -> Vec<(String, String, u64)> {
        self.records()
            .iter()
            .map(|r| (r.session.clone(), r.rel_file(base), r.line.unwrap_or(0)))
            .collect()
    }

    /// [`Run::order`] of a run that must have succeeded.
    fn ok_order(&self, base: &Path) -> Vec<(String, String, u64)> {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        self.order(base)
    }
}

/// Runs the binary with `args` and `env`; HOME is `home` and CLAUDE_CONFIG_DIR is unset unless
/// `env` sets it, so the machine's own transcripts are never read.
fn run_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    Run(run_with(claude_read(home), args, env))
}

fn run(home: &Path, args: &[&str]) -> Run {
    run_env(home, args, &[])
}

/// The project folder most tests write their transcripts in: `projects/-p` under `base`.
fn project(base: &Path) -> PathBuf {
    base.join("projects/-p")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Lines whose re-serialisation would change: odd spacing, `1.50`, a unicode escape.
fn odd(session: &str, n: usize) -> String {
    format!(r#"{{"type": "user" , "sessionId":"{session}", "n":{n}.50, "t":"\u00e9 \"q\""}}"#)
}

/// The tree of the main test:
///
/// ```text
/// projects/-home-me-other/S9.jsonl
/// projects/-home-me-proj/S0.jsonl
/// projects/-home-me-proj/S1.jsonl
/// projects/-home-me-proj/S1/subagents/agent-a1.jsonl       + agent-a1.meta.json
/// projects/-home-me-proj/S1/subagents/agent-acompact-z.jsonl   (skipped)
/// projects/-home-me-proj/S1/subagents/workflows/wf1/agent-w1.jsonl
/// projects/-home-me-proj/S1/tool-results/r.jsonl               (skipped)
/// projects/-home-me-proj/S2/subagents/agent-o1.jsonl       (no main file)
/// projects/-home-me-proj/agent-f1.jsonl     (flat; sessionId S0 on its 2nd line)
/// projects/-home-me-proj/agent-f2.jsonl     (flat; no sessionId anywhere)
/// projects/-home-me-proj/agent-acompact-q.jsonl                (skipped)
/// projects/-home-me-proj/sessions-index.json                   (skipped)
/// ```
fn build_tree(base: &Path) -> PathBuf {
    let root = base.join("projects");
    let other = root.join("-home-me-other");
    let proj = root.join("-home-me-proj");
    put(&other.join("S9.jsonl"), format!("{}\n", odd("S9", 1)));
    put(
        &proj.join("S0.jsonl"),
        format!("{}\n\n   \n{}\r\n", odd("S0", 1), odd("S0", 2)),
    );
    put(
        &proj.join("S1.jsonl"),
        format!(
            "{}\n{}\n",
            odd("S1", 1),
            r#"{"type":"brand-new-type","x":[]}"#
        ),
    );
    let subs = proj.join("S1").join("subagents");
    put(
        &subs.join("agent-a1.jsonl"),
        format!("{}\n{}\n", odd("S1", 10), odd("S1", 11)),
    );
    put(
        &subs.join("agent-a1.meta.json"),
        "{\n  \"toolUseId\": \"toolu_01\",\n  \"agentType\" : \"general purpose\",\n  \"n\": 1.50\n}\n",
    );
    put(
        &subs.join("agent-acompact-z.jsonl"),
        format!("{}\n", odd("S1", 99)),
    );
    put(
        &subs.join("workflows").join("wf1").join("agent-w1.jsonl"),
        format!("{}\n", odd("S1", 20)),
    );
    put(
        &proj.join("S1").join("tool-results").join("r.jsonl"),
        "{\"spilled\":true}\n",
    );
    put(&proj.join("S1").join("tool-results").join("r.txt"), "out\n");
    put(
        &proj.join("S2").join("subagents").join("agent-o1.jsonl"),
        format!("{}\n", odd("S2", 1)),
    );
    put(
        &proj.join("agent-f1.jsonl"),
        format!(
            "{}\n{}\n{}\n",
            r#"{"type":"summary","summary":"no session here"}"#,
            odd("S0", 30),
            odd("other", 31)
        ),
    );
    put(
        &proj.join("agent-f2.jsonl"),
        "{\"type\":\"user\",\"n\":1}\n",
    );
    put(
        &proj.join("agent-acompact-q.jsonl"),
        format!("{}\n", odd("S0", 98)),
    );
    put(&proj.join("sessions-index.json"), "{\"entries\":[]}\n");
    root
}

fn row(session: &str, file: &str, line: u64) -> (String, String, u64) {
    (session.to_string(), file.to_string(), line)
}

#[test]
fn walks_a_projects_tree_in_order_with_session_ids_and_exact_records() {
    let base = &TempHome::new();
    let root = build_tree(base);
    let r = run(base, &[s(&root)]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let proj = "projects/-home-me-proj";
    assert_eq!(
        r.order(base),
        vec![
            row("S9", "projects/-home-me-other/S9.jsonl", 1),
            row("S0", &format!("{proj}/S0.jsonl"), 1),
            row("S0", &format!("{proj}/S0.jsonl"), 4),
            row("S1", &format!("{proj}/S1.jsonl"), 1),
            row("S1", &format!("{proj}/S1.jsonl"), 2),
            row("S1", &format!("{proj}/S1/subagents/agent-a1.meta.json"), 0),
            row("S1", &format!("{proj}/S1/subagents/agent-a1.jsonl"), 1),
            row("S1", &format!("{proj}/S1/subagents/agent-a1.jsonl"), 2),
            row(
                "S1",
                &format!("{proj}/S1/subagents/workflows/wf1/agent-w1.jsonl"),
                1
            ),
            row("S2", &format!("{proj}/S2/subagents/agent-o1.jsonl"), 1),
            row("S0", &format!("{proj}/agent-f1.jsonl"), 1),
            row("S0", &format!("{proj}/agent-f1.jsonl"), 2),
            row("S0", &format!("{proj}/agent-f1.jsonl"), 3),
            row("agent-f2", &format!("{proj}/agent-f2.jsonl"), 1),
        ]
    );
    let recs = r.records();
    for rec in &recs {
        assert_eq!(rec.v, 1);
        assert_eq!(rec.source, "claude-code");
        // Its place by the file's own name, without this machine's folders.
        let name = Path::new(&rec.file).file_name().unwrap().to_str().unwrap();
        match rec.line {
            Some(n) => assert_eq!(rec.at, format!("{name}:{n}")),
            None => assert_eq!(rec.at, name),
        }
    }
    assert_eq!(recs[5].at, "agent-a1.meta.json");
    // Records are the input lines byte for byte (odd spacing, 1.50, escapes kept; the CRLF
    // ending of S0.jsonl:4 removed), and unknown types pass on.
    assert_eq!(recs[0].record, odd("S9", 1));
    assert_eq!(recs[2].record, odd("S0", 2));
    assert_eq!(recs[4].record, r#"{"type":"brand-new-type","x":[]}"#);
    assert_eq!(recs[6].record, odd("S1", 10));
    assert_eq!(recs[12].record, odd("other", 31));
    // Only plain records have a line number; only the meta record has kind and agent_id.
    let meta = &recs[5];
    assert_eq!(meta.kind.as_deref(), Some("subagent-meta"));
    assert_eq!(meta.agent_id.as_deref(), Some("a1"));
    assert_eq!(meta.line, None);
    assert_eq!(
        meta.record,
        r#"{"toolUseId":"toolu_01","agentType":"general purpose","n":1.50}"#
    );
    assert!(recs
        .iter()
        .enumerate()
        .all(|(i, r)| i == 5 || (r.kind.is_none() && r.agent_id.is_none())));
    // Skipped: acompact, tool-results, sessions-index.json.
    assert!(!r.stdout.contains("acompact") && !r.stdout.contains("spilled"));
    assert!(!r.stdout.contains("sessions-index"));
    assert_eq!(
        r.summary(),
        "claude-read: 8 files (3 main, 3 subagent, 2 legacy agent; 1 agent meta), 13 lines, 14 records, 0 incomplete, 0 rejected, 0 unreadable"
    );
    // The project folder and the companion folder read as PATH classify the same way.
    let r2 = run(base, &[s(&root.join("-home-me-proj"))]);
    assert_eq!(r2.order(base), r.order(base)[1..].to_vec());
    let r3 = run(base, &[s(&root.join("-home-me-proj").join("S1"))]);
    assert_eq!(r3.order(base), r.order(base)[5..9].to_vec());
    // -q drops the summary and nothing else.
    let r4 = run(base, &[s(&root), "-q"]);
    assert_eq!(r4.stdout, r.stdout);
    assert_eq!(r4.stderr, "");
}

#[test]
fn a_config_dir_as_path_reads_only_its_projects() {
    let base = &TempHome::new();
    let cfg = base.join(".claude");
    put(&cfg.join("projects/-p/S1.jsonl"), "{\"a\":1}\n");
    put(
        &cfg.join("history.jsonl"),
        "{\"display\":\"not a session\"}\n",
    );
    let r = run(base, &[s(&cfg)]);
    assert_eq!(
        r.ok_order(base),
        vec![row("S1", ".claude/projects/-p/S1.jsonl", 1)]
    );
}

#[test]
fn a_single_file_is_classified_by_its_name_and_position() {
    let base = &TempHome::new();
    let root = build_tree(base);
    let proj = root.join("-home-me-proj");
    let agent = proj.join("S1/subagents/agent-a1.jsonl");
    let r = run(base, &[s(&agent)]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let p = "projects/-home-me-proj";
    assert_eq!(
        r.order(base),
        vec![
            row("S1", &format!("{p}/S1/subagents/agent-a1.meta.json"), 0),
            row("S1", &format!("{p}/S1/subagents/agent-a1.jsonl"), 1),
            row("S1", &format!("{p}/S1/subagents/agent-a1.jsonl"), 2),
        ]
    );
    let r = run(
        base,
        &[
            s(&proj.join("agent-f1.jsonl")),
            s(&proj.join("S1.jsonl")),
            s(&proj.join("S1/subagents/agent-acompact-z.jsonl")),
            s(&proj.join("sessions-index.json")),
        ],
    );
    // Files named alone that are not transcripts give nothing: warned about, exit 3.
    assert_eq!(r.code, Some(3), "stderr: {}", r.stderr);
    assert_has(&r.stderr, "sessions-index.json: nothing read");
    assert_eq!(
        r.order(base),
        vec![
            row("S0", &format!("{p}/agent-f1.jsonl"), 1),
            row("S0", &format!("{p}/agent-f1.jsonl"), 2),
            row("S0", &format!("{p}/agent-f1.jsonl"), 3),
            row("S1", &format!("{p}/S1.jsonl"), 1),
            row("S1", &format!("{p}/S1.jsonl"), 2),
        ]
    );
    assert_has(
        &r.stderr,
        "agent-acompact-z.jsonl is not a Claude Code transcript",
    );
    assert_has(
        &r.stderr,
        "sessions-index.json is not a Claude Code transcript",
    );

    // A relative path from inside the companion folder still finds the session id.
    let mut cmd = claude_read(base);
    cmd.arg("subagents/agent-a1.jsonl")
        .current_dir(proj.join("S1"));
    let r = Run(tonbo_testkit::run(cmd, None));
    assert_eq!(r.code, Some(0));
    let recs = r.records();
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r.session == "S1"));
    assert_eq!(recs[1].file, "subagents/agent-a1.jsonl");
}

#[test]
fn a_torn_last_line_is_left_for_later_and_a_whole_unterminated_one_is_read() {
    let base = &TempHome::new();
    let proj = project(base);
    let torn_line = "{\"type\":\"assistant\",\"message\":{\"content\":[{\"ty";
    put(&proj.join("A.jsonl"), format!("{{\"n\":1}}\n{torn_line}"));
    put(&proj.join("B.jsonl"), "{\"n\":1}\n{\"n\": 2}");
    let r = run(base, &[s(&base.join("projects"))]);
    assert_eq!(
        r.ok_order(base),
        vec![
            row("A", "projects/-p/A.jsonl", 1),
            row("B", "projects/-p/B.jsonl", 1),
            row("B", "projects/-p/B.jsonl", 2),
        ]
    );
    assert_eq!(r.records()[2].record, "{\"n\": 2}");
    let torn = format!(
        "claude-read: {}:2: incomplete last line ({} bytes), not read; a writer may still be appending",
        proj.join("A.jsonl").display(),
        torn_line.len()
    );
    assert!(r.stderr.lines().any(|l| l == torn), "stderr: {}", r.stderr);
    assert!(r.rejected_lines().is_empty());
    assert_has(r.summary(), "1 incomplete, 0 rejected");
}

#[test]
fn corrupt_lines_are_rejected_with_file_and_line_and_the_rest_is_read() {
    let base = &TempHome::new();
    let proj = project(base);
    let file = proj.join("S.jsonl");
    put(&file, jsonl_with_bad_lines("{\"n\":1}", "{\"n\":6}"));
    // A corrupt meta file is rejected as line 1; its agent's lines are still read.
    put(
        &proj.join("S/subagents/agent-x.meta.json"),
        "{\"toolUseId\":",
    );
    put(&proj.join("S/subagents/agent-x.jsonl"), "{\"n\":1}\n");
    let rejects = base.join("rejects.ndjson");
    let r = run(base, &[s(&base.join("projects")), "--rejects", s(&rejects)]);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
    assert_eq!(
        r.order(base),
        vec![
            row("S", "projects/-p/S.jsonl", 1),
            row("S", "projects/-p/S.jsonl", 6),
            row("S", "projects/-p/S/subagents/agent-x.jsonl", 1),
        ]
    );
    let f = file.display().to_string();
    let m = proj
        .join("S/subagents/agent-x.meta.json")
        .display()
        .to_string();
    let mut expect: Vec<_> = JSONL_REJECTS
        .iter()
        .map(|&(line, why)| (f.clone(), line, why))
        .collect();
    // The meta file's, after its transcript's.
    expect.push((m.clone(), 1, "not JSON"));
    assert_rejected(&r, "claude-read", &expect);
    assert_rejects_file(&rejects, "claude-read", &f, &m);
    assert_has(r.summary(), "6 rejected");
}

#[test]
fn claude_config_dir_lists_several_config_dirs() {
    let base = &TempHome::new();
    put(&base.join("one/projects/-p/A.jsonl"), "{\"n\":1}\n");
    put(&base.join("two/projects/-q/B.jsonl"), "{\"n\":2}\n");
    // Also present, but not read: CLAUDE_CONFIG_DIR replaces the defaults.
    put(&base.join(".claude/projects/-r/C.jsonl"), "{\"n\":3}\n");
    let dirs = format!(
        "{},{}, {}",
        base.join("two").display(),
        base.join("one").display(),
        base.join("missing").display()
    );
    let r = run_env(base, &[], &[("CLAUDE_CONFIG_DIR", &dirs)]);
    assert_eq!(
        r.ok_order(base),
        vec![
            row("B", "two/projects/-q/B.jsonl", 1),
            row("A", "one/projects/-p/A.jsonl", 1),
        ]
    );
    assert_has(
        &r.stderr,
        "missing/projects (from CLAUDE_CONFIG_DIR) does not exist",
    );
}

#[test]
fn default_roots_are_under_home_and_none_is_not_an_error() {
    let base = &TempHome::new();
    assert_none_found(&run(base, &[]), "Claude Code projects folder");

    put(&base.join(".claude/projects/-p/A.jsonl"), "{\"n\":1}\n");
    put(
        &base.join(".config/claude/projects/-p/B.jsonl"),
        "{\"n\":2}\n",
    );
    let r = run(base, &[]);
    assert_eq!(
        r.ok_order(base),
        vec![
            row("A", ".claude/projects/-p/A.jsonl", 1),
            row("B", ".config/claude/projects/-p/B.jsonl", 1),
        ]
    );
    assert!(!r.stderr.contains("note"));

    // ~/.config/claude linked to ~/.claude: the same folder is read once.
    fs::remove_dir_all(base.join(".config/claude")).unwrap();
    std::os::unix::fs::symlink(base.join(".claude"), base.join(".config/claude")).unwrap();
    let r = run(base, &[]);
    assert_eq!(
        r.ok_order(base),
        vec![row("A", ".claude/projects/-p/A.jsonl", 1)]
    );
}

#[test]
fn modified_after_skips_files_not_modified_since() {
    let base = &TempHome::new();
    let proj = project(base);
    put(&proj.join("Old.jsonl"), "{\"n\":1}\n");
    put(&proj.join("New.jsonl"), "{\"n\":2}\n");
    put(&proj.join("New/subagents/agent-old.jsonl"), "{\"n\":3}\n");
    put(&proj.join("New/subagents/agent-old.meta.json"), "{}");
    put(&proj.join("New/subagents/agent-new.jsonl"), "{\"n\":4}\n");
    put(&proj.join("New/subagents/agent-new.meta.json"), "{\"a\":1}");
    let old = long_ago();
    set_mtime(&proj.join("Old.jsonl"), old);
    set_mtime(&proj.join("New/subagents/agent-old.jsonl"), old);
    // The meta file's own time does not matter: it goes with its agent file.
    set_mtime(&proj.join("New/subagents/agent-new.meta.json"), old);
    let expect = vec![
        row("New", "projects/-p/New.jsonl", 1),
        row("New", "projects/-p/New/subagents/agent-new.meta.json", 0),
        row("New", "projects/-p/New/subagents/agent-new.jsonl", 1),
    ];
    for after in AFTER_LONG_AGO {
        let r = run(
            base,
            &[s(&base.join("projects")), "--modified-after", after],
        );
        assert_eq!(r.ok_order(base), expect, "--modified-after {after}");
        assert_ends(
            r.summary(),
            "skipped 2 files not modified after --modified-after",
        );
    }
    // Earlier than both: everything is read.
    let r = run(
        base,
        &[s(&base.join("projects")), "--modified-after", "2023-11-14"],
    );
    assert_eq!(r.records().len(), 6);
    assert_left_out_alone(|args| run(base, args), &proj.join("Old.jsonl"));
}

#[test]
fn a_20_mb_line_is_read_whole() {
    let base = &TempHome::new();
    let big = format!(
        "{{\"type\":\"user\", \"pad\": \"{}\"}}",
        "x".repeat(20 * 1024 * 1024)
    );
    put(
        &base.join("projects/-p/S.jsonl"),
        format!("{{\"n\":1}}\n{big}\n{{\"n\":3}}\n"),
    );
    let r = run(base, &[s(&base.join("projects"))]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let recs = r.records();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1].line, Some(2));
    assert!(
        recs[1].record == big,
        "the 20 MB record differs from its line"
    );
    assert_eq!(recs[2].record, "{\"n\":3}");
}

#[test]
fn unreadable_paths_are_reported_counted_and_passed_over() {
    let base = &TempHome::new();
    let proj = project(base);
    put(&proj.join("A.jsonl"), "{\"n\":1}\n");
    put(&proj.join("C.jsonl"), "{\"n\":3}\n");
    let bad = Unreadable::make(base, proj.join("B.jsonl"), &proj.join("loop"));
    let r = run(base, &[s(&bad.missing), s(&base.join("projects"))]);
    bad.assert_reported(&r, "unreadable");
    assert_eq!(
        r.order(base),
        vec![
            row("A", "projects/-p/A.jsonl", 1),
            row("C", "projects/-p/C.jsonl", 1),
        ]
    );
}

#[test]
fn bad_arguments_are_refused() {
    let base = &TempHome::new();
    put(&base.join("projects/-p/S.jsonl"), "{\"n\":1}\n");
    assert_refuses_bad_arguments(|args| run(base, args), &base.join("projects"));
}

#[test]
fn a_closed_stdout_ends_the_stage_quietly_with_exit_0() {
    let base = &TempHome::new();
    let mut data = String::new();
    for i in 0..200_000 {
        data.push_str(&odd("S", i));
        data.push('\n');
    }
    put(&base.join("projects/-p/S.jsonl"), &data);
    put(&base.join("projects/-p/T.jsonl"), &data);
    let mut cmd = claude_read(base);
    cmd.arg(base.join("projects"));
    let closed = tonbo_testkit::first_line_then_close(cmd, None);
    closed.assert_quiet();
    assert_eq!(closed.stderr, "");
    assert_eq!(Rec::parse(&closed.first).record, odd("S", 0));
}

#[test]
fn a_path_that_holds_files_but_gives_nothing_warns_and_exits_3() {
    let base = &TempHome::new();
    // Claude Code's auto-memory lives in project folders too: files, but no transcript.
    let memory = base.join("projects/-p/memory/MEMORY.md");
    put(&memory, "# notes");
    let projects = base.join("projects");
    // Said and counted the same with --allow-empty, which only changes the status.
    let why = "no Claude Code transcript";
    assert_warns_nothing_read(|args| run(base, args), "claude-read", &projects, why);
    // Transcripts that hold only a torn line give nothing either, and say why.
    put(&base.join("projects/-p/S.jsonl"), "{\"type\":\"us");
    let r = run(base, &[s(&projects)]);
    assert_eq!(r.code, Some(3), "stderr: {}", r.stderr);
    assert_has(
        &r.stderr,
        "nothing read: none of the 1 lines of its 1 transcripts could be read",
    );
    // The same folder as a default root (no PATH): warned about too.
    let r = run_env(base, &[], &[("CLAUDE_CONFIG_DIR", s(base))]);
    assert_eq!(r.code, Some(3), "stderr: {}", r.stderr);
    // An empty folder, or one whose every transcript --modified-after left out, is no warning.
    fs::create_dir_all(base.join("empty")).unwrap();
    let r = run(base, &[s(&base.join("empty"))]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    put(&base.join("old/-p/S.jsonl"), "{\"n\":1}\n");
    set_mtime(&base.join("old/-p/S.jsonl"), long_ago());
    let r = run(
        base,
        &[s(&base.join("old")), "--modified-after", "2024-01-01"],
    );
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    // A rejected line is a failure, which says more: exit 1.
    put(&base.join("bad/-p/S.jsonl"), "not json\n");
    let r = run(base, &[s(&base.join("bad"))]);
    assert_eq!(r.code, Some(1), "stderr: {}", r.stderr);
}

#[test]
fn a_summary_goes_out_as_a_record_of_the_session_that_holds_its_leaf() {
    let base = &TempHome::new();
    let proj = project(base);
    let line = |s: &str, uuid: &str| {
        format!("{{\"type\":\"user\",\"sessionId\":\"{s}\",\"uuid\":\"{uuid}\"}}\n")
    };
    // B's head sums up A's conversation (leaf a2) and a leaf no file holds.
    put(&proj.join("A.jsonl"), line("A", "a1") + &line("A", "a2"));
    put(
        &proj.join("B.jsonl"),
        "{\"type\":\"summary\",\"summary\":\"Set up\",\"leafUuid\":\"a2\"}\n{\"type\":\"summary\",\"summary\":\"Gone\",\"leafUuid\":\"zz\"}\n".to_string()
            + &line("B", "b1"),
    );
    let r = run(base, &[s(&base.join("projects"))]);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let out: Vec<(String, String, String)> = r
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["session"].as_str().unwrap().to_string(),
                v["kind"].as_str().unwrap_or("").to_string(),
                format!(
                    "{}:{}",
                    Path::new(v["provenance"]["file"].as_str().unwrap())
                        .file_name()
                        .unwrap()
                        .to_string_lossy(),
                    v["provenance"]["line"]
                ),
            )
        })
        .collect();
    let row = |s: &str, k: &str, at: &str| (s.to_string(), k.to_string(), at.to_string());
    assert_eq!(
        out,
        [
            row("A", "", "A.jsonl:1"),
            row("A", "", "A.jsonl:2"),
            // Right after its leaf, in A's session, from where it sits in B.
            row("A", "summary-title", "B.jsonl:1"),
            row("B", "", "B.jsonl:3"),
            // No file read holds `zz`: in its own file's session, at the project's end.
            row("B", "", "B.jsonl:2"),
        ]
    );
    assert!(
        r.summary().contains("3 lines") || r.summary().contains("5 lines"),
        "{}",
        r.summary()
    );
}
