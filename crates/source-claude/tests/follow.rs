//! Drives the real `claude-read --follow` binary over fake Claude Code `projects/` trees that the
//! tests change while it runs: appends, partial lines, rewrites in place, new files, folders and
//! subagents, deletions, and SIGTERM; plus SIGTERM during a plain run. Every follow test runs
//! twice, with filesystem events and with `--poll --poll-interval 50`.
//!
//! The oracle is a plain `claude-read` run over the files as they are at that moment: what
//! `--follow` writes for a line must be that run's record for it, byte for byte. Waiting for
//! output is bounded by a generous deadline, never timed: the tests sync on the lines themselves
//! (a write to another file and its line coming out shows a wake happened).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;
use tonbo_testkit::reader::{
    append, assert_ends, assert_has, assert_stopped_at_a_record_boundary, long_ago, put, set_mtime,
    terminated_after_first_line, Ended, Following, Mode,
};

mod common;
use common::claude_read;

/// A temporary HOME and its Claude Code projects folder, `root`, which the tests write while
/// claude-read reads it.
struct Projects {
    home: TempDir,
    root: PathBuf,
}

impl Projects {
    fn new() -> Projects {
        let home = TempDir::new().unwrap();
        let root = home.path().join("projects");
        Projects { home, root }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// `claude-read --follow` over the projects in `mode`, with the `extra` flags.
    fn follow(&self, mode: Mode, extra: &[&str]) -> Following {
        let mut cmd = claude_read(self.home());
        cmd.arg(&self.root).args(mode.args()).args(extra);
        Following::start(cmd)
    }

    /// Writes `-p/S.jsonl` with the lines `s` of `ns`, and follows the projects in `mode` (with
    /// the `extra` flags) until its first pass is out, which must be the plain run's: the file
    /// and the run.
    fn follow_s(
        &self,
        ns: impl IntoIterator<Item = u32>,
        mode: Mode,
        extra: &[&str],
    ) -> (PathBuf, Following) {
        let s = self.root.join("-p/S.jsonl");
        put(&s, lines("s", ns));
        let mut run = self.follow(mode, extra);
        let want = self.plain();
        assert_eq!(run.next(want.len()), want);
        (s, run)
    }

    /// A plain run (no `--follow`) over the projects as they are now.
    fn plain_run(&self) -> tonbo_testkit::Run {
        let mut cmd = claude_read(self.home());
        cmd.arg(&self.root);
        tonbo_testkit::run(cmd, None)
    }

    /// The stdout lines of [`Projects::plain_run`], which must succeed.
    fn plain(&self) -> Vec<String> {
        let r = self.plain_run();
        assert_eq!(r.code, Some(0), "plain run failed: {}", r.stderr);
        r.lines()
    }

    /// The plain run's records of `file` (all of them, meta record included), in its order.
    fn plain_of(&self, file: &Path) -> Vec<String> {
        let want = file.to_str().unwrap();
        let meta = file.with_extension("").with_extension("meta.json");
        let meta = meta.to_str().unwrap();
        self.plain()
            .into_iter()
            .filter(|r| {
                let (f, _) = place(r);
                f == want || f == meta
            })
            .collect()
    }

    /// [`Following::terminate_ok`], for a run whose records must be a plain run's over the
    /// files as they are now.
    fn terminate_as_plain(&self, run: Following) -> Ended {
        let end = run.terminate_ok();
        assert_same_records(&end.lines, &self.plain());
        end
    }
}

/// `(file, line)` of a record; meta records have no line.
fn place(rec: &str) -> (String, Option<u64>) {
    let v: Value = serde_json::from_str(rec).unwrap_or_else(|e| panic!("{e}: {rec}"));
    let p = &v["provenance"];
    (p["file"].as_str().unwrap().to_string(), p["line"].as_u64())
}

/// Follow's output holds the same records as a plain run, each once; only the interleaving of
/// files may differ (each file's records keep their order).
fn assert_same_records(follow: &[String], plain: &[String]) {
    let mut a = follow.to_vec();
    let mut b = plain.to_vec();
    a.sort();
    b.sort();
    assert_eq!(a, b, "follow and plain runs differ");
    let files: HashSet<String> = plain.iter().map(|r| place(r).0).collect();
    for f in files {
        let of = |v: &[String]| -> Vec<String> {
            v.iter().filter(|r| place(r).0 == f).cloned().collect()
        };
        assert_eq!(of(follow), of(plain), "order of {f}");
    }
}

/// A transcript line (all of one length, so rewrites can keep a file's length).
fn line(tag: &str, n: u32) -> String {
    format!(r#"{{"type":"user","uuid":"{tag}-{n:04}","text":"{tag} line {n:04}, \u00e9 1.50"}}"#)
}

fn lines(tag: &str, ns: impl IntoIterator<Item = u32>) -> String {
    ns.into_iter().map(|n| line(tag, n) + "\n").collect()
}

// ---------------------------------------------------------------------------------------------
// The tests, each run in both modes (see the modules at the end).

fn appended_lines_arrive_in_order(mode: Mode) {
    let p = Projects::new();
    let (s, mut run) = p.follow_s(1..=2, mode, &[]);
    // One line per write, then a burst of many in one write.
    for n in 3..=7 {
        append(&s, lines("s", [n]));
        let want = p.plain();
        assert_eq!(run.next(1), want[n as usize - 1..n as usize]);
    }
    append(&s, lines("s", 8..=300));
    run.next(293);
    let end = run.terminate_ok();
    // The same bytes in the same order as a plain run over the final file.
    assert_eq!(end.lines, p.plain());
    assert_ends(end.summary(), ", 0 rewrites");
}

fn a_partial_line_comes_once_its_newline_is_written(mode: Mode) {
    let p = Projects::new();
    let s = p.root.join("-p/S.jsonl");
    let t = p.root.join("-p/T.jsonl");
    let l2 = line("s", 2);
    let (head, tail) = l2.split_at(20);
    put(&s, format!("{}{head}", lines("s", [1])));
    put(&t, lines("t", [1]));
    let mut run = p.follow(mode, &[]);
    // The held partial line is neither read nor reported while it waits.
    assert_eq!(run.next(2), p.plain());
    // A line written to T coming out shows a wake passed over the partial line.
    append(&t, lines("t", [2]));
    assert_eq!(run.next(1), p.plain_of(&t)[1..]);
    // The rest of the line, still without its newline: still held.
    append(&s, tail);
    append(&t, lines("t", [3]));
    assert_eq!(run.next(1), p.plain_of(&t)[2..]);
    append(&s, "\n");
    let want = p.plain_of(&s);
    assert_eq!(run.next(1), want[1..]);
    assert!(want[1].contains(&l2) && want[1].contains(r#""line":2}"#));
    let end = p.terminate_as_plain(run);
    assert_has(end.summary(), ", 0 incomplete, 0 rejected");
}

fn a_rewrite_in_place_gives_only_its_new_lines(mode: Mode) {
    let p = Projects::new();
    let (s, mut run) = p.follow_s([1, 2, 3], mode, &[]);
    let mut sent: Vec<String> = run.got.clone();
    // What a compaction or resume leaves: lines vanish, kept ones stay, new ones follow. Each
    // step must give exactly the plain run's records of the lines not seen before.
    let len = fs::metadata(&s).unwrap().len();
    let steps: [(&str, &[u32]); 4] = [
        ("the same length", &[1, 3, 4]),
        ("longer", &[1, 4, 5, 6, 7]),
        ("shorter", &[1, 8]),
        ("replaced by a rename", &[1, 8, 9, 10]),
    ];
    for (how, keep) in steps {
        let content = lines("s", keep.iter().copied());
        if how == "replaced by a rename" {
            let tmp_file = p.root.join("-p/S.jsonl.tmp");
            fs::write(&tmp_file, &content).unwrap();
            fs::rename(&tmp_file, &s).unwrap();
        } else {
            fs::write(&s, &content).unwrap();
        }
        if how == "the same length" {
            assert_eq!(fs::metadata(&s).unwrap().len(), len);
        }
        let records_now = p.plain();
        let texts: Vec<String> = sent.iter().map(|r| record_text(r)).collect();
        let want: Vec<String> = records_now
            .into_iter()
            .filter(|r| !texts.contains(&record_text(r)))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(run.next(want.len()), want, "rewritten {how}");
        sent.extend(want);
    }
    // Nothing else came in between: the next line out is the one appended now.
    append(&s, lines("s", [11]));
    assert_eq!(run.next(1), p.plain()[4..], "an append after the rewrites");
    let end = run.terminate_ok();
    // Every record of the final file went out as the plain run writes it, each line once.
    let final_records = p.plain();
    for r in &final_records {
        assert_eq!(end.lines.iter().filter(|l| *l == r).count(), 1, "{r}");
    }
    assert_eq!(end.lines.len(), 11, "{:#?}", end.lines);
    assert_ends(end.summary(), ", 4 rewrites");
}

/// The `record` of a source record, as text.
fn record_text(rec: &str) -> String {
    let v: Value = serde_json::from_str(rec).unwrap();
    v["record"].to_string()
}

fn new_session_files_and_project_folders_are_picked_up(mode: Mode) {
    let p = Projects::new();
    let (s, mut run) = p.follow_s([1], mode, &[]);
    // A new session file in a known project folder.
    let t = p.root.join("-p/T.jsonl");
    put(&t, lines("t", 1..=2));
    assert_eq!(run.next(2), p.plain_of(&t));
    // A new project folder, made and then written to.
    let u = p.root.join("-new/U.jsonl");
    put(&u, lines("u", [1]));
    assert_eq!(run.next(1), p.plain_of(&u));
    // A project folder moved in whole, files and all (one event, for the folder).
    let outside = p.home().join("elsewhere/-moved");
    put(&outside.join("V.jsonl"), lines("v", 1..=3));
    put(&outside.join("W.jsonl"), lines("w", [1]));
    fs::rename(&outside, p.root.join("-moved")).unwrap();
    let got = run.next(4);
    let want: Vec<String> = p
        .plain()
        .into_iter()
        .filter(|r| r.contains("/-moved/"))
        .collect();
    assert_eq!(got, want);
    // Files that are not transcripts are not read.
    put(&p.root.join("-p/sessions-index.json"), "{\"entries\":[]}\n");
    put(
        &p.root.join("-p/S/tool-results/r.jsonl"),
        "{\"spilled\":1}\n",
    );
    append(&s, lines("s", [2]));
    assert_eq!(run.next(1), p.plain_of(&s)[1..]);
    let end = p.terminate_as_plain(run);
    assert!(
        end.summary().starts_with("claude-read: 5 files (5 main,"),
        "{}",
        end.summary()
    );
}

fn a_new_subagent_folder_comes_with_its_meta_record(mode: Mode) {
    let p = Projects::new();
    let (_, mut run) = p.follow_s([1], mode, &[]);
    // The companion folder, the meta file, then the transcript: meta record first.
    let subs = p.root.join("-p/S/subagents");
    put(
        &subs.join("agent-a1.meta.json"),
        "{\n  \"toolUseId\": \"toolu_01\",\n  \"agentType\": \"general purpose\"\n}\n",
    );
    let a1 = subs.join("agent-a1.jsonl");
    put(&a1, lines("a1", 1..=2));
    let got = run.next(3);
    assert_eq!(got, p.plain_of(&a1));
    assert!(got[0].contains(r#""kind":"subagent-meta""#), "{}", got[0]);
    assert!(got[0].contains(r#""agent_id":"a1""#), "{}", got[0]);
    // Deeper, under workflows/: the same.
    let w1 = subs.join("workflows/wf1/agent-w1.jsonl");
    put(&w1, lines("w1", [1]));
    assert_eq!(run.next(1), p.plain_of(&w1));
    // A meta file written after its transcript still goes out, when it appears.
    let b2 = subs.join("agent-b2.jsonl");
    put(&b2, lines("b2", [1]));
    assert_eq!(run.next(1), p.plain_of(&b2));
    put(
        &subs.join("agent-b2.meta.json"),
        "{\"toolUseId\":\"toolu_02\"}",
    );
    let meta = run.next(1);
    assert_eq!(meta, p.plain_of(&b2)[..1]);
    // Internal compaction agents are not read.
    put(&subs.join("agent-acompact-z.jsonl"), lines("z", [1]));
    append(&a1, lines("a1", [3]));
    assert_eq!(run.next(1), p.plain_of(&a1)[3..]);
    p.terminate_as_plain(run);
}

fn a_deleted_file_is_dropped_and_a_new_one_of_that_name_read_whole(mode: Mode) {
    let p = Projects::new();
    let s = p.root.join("-p/S.jsonl");
    let t = p.root.join("-p/T.jsonl");
    put(&s, lines("s", 1..=2));
    put(&t, lines("t", [1]));
    let mut run = p.follow(mode, &[]);
    run.next(3);
    fs::remove_file(&s).unwrap();
    // T's new line coming out shows the wake that saw S deleted has passed.
    append(&t, lines("t", [2]));
    assert_eq!(run.next(1), p.plain_of(&t)[1..]);
    // A new S, starting with a line the old one had: a new file is read from its start.
    put(&s, lines("s", [1, 3]));
    assert_eq!(run.next(2), p.plain_of(&s));
    let end = run.terminate_ok();
    assert_eq!(end.lines.len(), 6);
    assert_ends(end.summary(), ", 0 rewrites");
}

fn a_legacy_agent_file_waits_for_its_session_id(mode: Mode) {
    let p = Projects::new();
    let s = p.root.join("-p/S.jsonl");
    let f = p.root.join("-p/agent-f1.jsonl");
    let g = p.root.join("-p/agent-g1.jsonl");
    put(&s, lines("s", [1]));
    put(&f, "{\"type\":\"summary\",\"summary\":\"no session id\"}\n");
    put(&g, "{\"type\":\"user\",\"n\":1}\n");
    let mut run = p.follow(mode, &[]);
    assert_eq!(run.next(1), p.plain_of(&s));
    append(&s, lines("s", [2]));
    assert_eq!(run.next(1), p.plain_of(&s)[1..]);
    // A line naming the session: the waiting lines go out with it, as a plain run has them.
    append(&f, "{\"type\":\"user\",\"sessionId\":\"S\",\"n\":2}\n");
    let got = run.next(2);
    assert_eq!(got, p.plain_of(&f));
    assert!(got.iter().all(|r| r.contains(r#""session":"S""#)));
    let end = run.terminate_ok();
    // agent-g1 never named one: held, said so, and not read with a stand-in id.
    assert!(!end.lines.iter().any(|r| r.contains("agent-g1")));
    assert_has(
        &end.stderr,
        "agent-g1.jsonl: no line names its sessionId yet",
    );
    assert_ends(
        end.summary(),
        ", 0 rewrites, 1 legacy agent files held (no sessionId yet)",
    );
}

fn modified_after_chooses_only_what_the_backfill_reads(mode: Mode) {
    let p = Projects::new();
    let old = p.root.join("-p/Old.jsonl");
    let new = p.root.join("-p/New.jsonl");
    put(&old, lines("old", [1]));
    put(&new, lines("new", [1]));
    let long_ago = long_ago();
    set_mtime(&old, long_ago);
    let after = ["--modified-after", "2024-01-01"];
    let mut run = p.follow(mode, &after);
    assert_eq!(run.next(1), p.plain_of(&new));
    // A file created later is followed, whatever its time.
    let late = p.root.join("-p/Late.jsonl");
    put(&late, lines("late", [1]));
    set_mtime(&late, long_ago);
    assert_eq!(run.next(1), p.plain_of(&late));
    // A file left out is followed once written to, from its start (as a plain run with the
    // same --modified-after would now read it).
    append(&old, lines("old", [2]));
    let want = p.plain_of(&old);
    assert_eq!(want.len(), 2);
    assert_eq!(run.next(2), want);
    let end = run.terminate_ok();
    assert_has(
        end.summary(),
        "skipped 1 files not modified after --modified-after, 0 rewrites",
    );
}

fn sigterm_ends_with_everything_written_before_it(mode: Mode) {
    let p = Projects::new();
    let (s, run) = p.follow_s([1], mode, &[]);
    // Written just before the signal, without waiting for any of it to come out.
    for n in 2..=40 {
        append(&s, lines("s", [n]));
    }
    put(&p.root.join("-q/T.jsonl"), lines("t", 1..=5));
    put(
        &p.root.join("-p/S/subagents/agent-a.jsonl"),
        lines("a", 1..=3),
    );
    let torn = line("s", 41);
    append(&s, &torn[..10]);
    let end = run.terminate_ok();
    let mut want = p.plain();
    want.retain(|r| place(r).1 != Some(41));
    assert_same_records(&end.lines, &want);
    // The unfinished line is held and said so, not read.
    assert!(
        end.stderr
            .contains("S.jsonl: incomplete last line (10 bytes"),
        "{}",
        end.stderr
    );
    assert_eq!(
        end.summary(),
        "claude-read: 3 files (2 main, 1 subagent, 0 legacy agent; 0 agent meta), 48 lines, 48 records, 1 incomplete, 0 rejected, 0 unreadable, 0 rewrites"
    );
}

fn bad_lines_are_rejected_with_file_and_line_and_the_rest_flows(mode: Mode) {
    let p = Projects::new();
    let rejects = p.home().join("rejects.ndjson");
    let (s, mut run) = p.follow_s([1], mode, &["--rejects", rejects.to_str().unwrap()]);
    append(
        &s,
        format!("not json\n{}\n[1,2]\n{}", line("s", 3), lines("s", [5])),
    );
    let got = run.next(2);
    assert_eq!(place(&got[0]).1, Some(3));
    assert_eq!(place(&got[1]).1, Some(5));
    // A meta file still being written is not rejected while it may yet be finished, and its
    // agent's lines do not wait for it.
    let subs = p.root.join("-p/S/subagents");
    put(&subs.join("agent-a.meta.json"), "{\"toolUseId\":");
    put(&subs.join("agent-a.jsonl"), lines("a", [1]));
    let got = run.next(1);
    assert_eq!(place(&got[0]).1, Some(1));
    assert!(!got[0].contains("subagent-meta"));
    let end = run.terminate();
    // Rejected input: exit 1, as a plain run of the same files.
    assert_eq!(end.code, Some(1), "stderr: {}", end.stderr);
    let plain = p.plain_run();
    assert_eq!(plain.code, Some(1));
    assert_same_records(&end.lines, &plain.lines());
    let f = s.display();
    let m = subs.join("agent-a.meta.json");
    for (file, line, why) in [
        (f.to_string(), 2, "not JSON"),
        (f.to_string(), 4, "not a JSON object"),
        (m.display().to_string(), 1, "not JSON"),
    ] {
        let prefix = format!("claude-read: {file}:{line}: rejected: {why}");
        assert!(
            end.stderr.lines().any(|l| l.starts_with(&prefix)),
            "no `{prefix}` in stderr: {}",
            end.stderr
        );
    }
    assert_eq!(fs::read_to_string(&rejects).unwrap().lines().count(), 3);
    assert_has(end.summary(), "3 rejected, 0 unreadable");
}

tonbo_testkit::in_both_modes!(
    appended_lines_arrive_in_order,
    a_partial_line_comes_once_its_newline_is_written,
    a_rewrite_in_place_gives_only_its_new_lines,
    new_session_files_and_project_folders_are_picked_up,
    a_new_subagent_folder_comes_with_its_meta_record,
    a_deleted_file_is_dropped_and_a_new_one_of_that_name_read_whole,
    a_legacy_agent_file_waits_for_its_session_id,
    modified_after_chooses_only_what_the_backfill_reads,
    sigterm_ends_with_everything_written_before_it,
    bad_lines_are_rejected_with_file_and_line_and_the_rest_flows,
);

// ---------------------------------------------------------------------------------------------
// Without --follow

#[test]
fn sigterm_stops_a_plain_run_at_a_record_boundary() {
    let p = Projects::new();
    // About 6 MB: far more than the pipe and the output buffer hold, so the run is mid-way
    // (blocked writing) when the signal comes.
    let (files, per_file) = (30u32, 2000u32);
    let mut expect = Vec::new();
    for f in 0..files {
        let path = p.root.join(format!("-p/S{f:03}.jsonl"));
        put(&path, lines(&format!("s{f}"), 1..=per_file));
        for n in 1..=per_file {
            expect.push(format!(
                r#"{{"v":1,"source":"claude-code","session":"S{f:03}","record":{},"at":"S{f:03}.jsonl:{n}","provenance":{{"file":"{}","line":{n}}}}}"#,
                line(&format!("s{f}"), n),
                path.display()
            ));
        }
    }
    let mut cmd = claude_read(p.home());
    cmd.arg(&p.root);
    let r = terminated_after_first_line(cmd);
    assert_stopped_at_a_record_boundary(&r, &expect);
    let records = format!(" {} records,", r.lines().len());
    assert_has(r.summary(), &records);
}

#[test]
fn follow_flags_need_follow() {
    let tmp = TempDir::new().unwrap();
    let mut cmd = claude_read(tmp.path());
    cmd.args([tmp.path().to_str().unwrap(), "--poll"]);
    let r = tonbo_testkit::run(cmd, None);
    assert_eq!(r.code, Some(2));
    assert_has(&r.stderr, "--follow");
}
