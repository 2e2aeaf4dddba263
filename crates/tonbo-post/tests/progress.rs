//! The live progress line: drawn on stderr when it is a terminal (here a pseudo-terminal made by
//! util-linux `script`), erased before the summary, and absent when stderr is a pipe, where the
//! summary line stays all there is. Also the readers' `--progress`.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::*;

/// Whether `script(1)` can give a command a pseudo-terminal here.
fn have_script() -> bool {
    Command::new("script")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `sh -c CMD` with a pseudo-terminal as stdin, stdout and stderr; returns what the
/// terminal showed (stdout and stderr together, with their control characters).
fn on_pty(cmd: &str) -> String {
    // Wide enough for the whole line (script's terminal has no size of its own; the line is
    // cut to the width, 80 when unknown).
    let cmd = format!("stty cols 200 2>/dev/null; {cmd}");
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("SHELL", "/bin/sh")
        // Any terminal but `dumb`, where no line is drawn.
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    assert!(out.status.success(), "{cmd}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// `tonbo-map | tonbo-batch` of 3 sessions of 200 events, into a file of batch lines; `run`
/// names the sessions, so that every run sends to new streams.
fn batches(dir: &Path, run: &str) -> std::path::PathBuf {
    let records = dir.join(format!("{run}.records.ndjson"));
    let (a, b, c) = (format!("{run}-a"), format!("{run}-b"), format!("{run}-c"));
    write_records(&records, &[(&a, 0..200), (&b, 0..200), (&c, 0..200)]);
    let batches = dir.join(format!("{run}.batches.ndjson"));
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} {} | {} --max-events 20 > {}",
            q(&bin("tonbo-map")),
            q(&records),
            q(&bin("tonbo-batch")),
            q(&batches)
        ))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    batches
}

#[test]
fn tonbo_post_draws_progress_on_a_terminal_only() {
    if !have_script() {
        println!("skipped: no script(1)");
        return;
    }
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    // The input stays open a while after the batches, so the drawer (every 250 ms) gets its turn.
    let post = |run: &str, extra: &str| {
        format!(
            "(cat {}; sleep 1.2) | {} --api {} --state {} {extra}",
            q(&batches(dir.path(), run)),
            q(&bin("tonbo-post")),
            server.url,
            q(&dir.path().join(format!("{run}.sqlite")))
        )
    };

    let shown = on_pty(&post("a", ""));
    assert!(shown.contains("events/s"), "no progress line: {shown:?}");
    assert!(shown.contains("600 events sent"), "{shown:?}");
    // The line is erased right before the summary, which starts on a clean line.
    assert!(
        shown.contains("\r\x1b[Ktonbo-post: 3 sessions, 600 events sent in 30 batches"),
        "{shown:?}"
    );
    assert!(!shown.trim_end().ends_with("events/s"), "{shown:?}");

    // Another stage's message while the line is up (the stages share the terminal) erases the
    // line first instead of running on from its end.
    let other = on_pty(&format!(
        "(cat {}; sleep 0.8; {} {} > /dev/null; sleep 0.5) | {} --api {} --state {}",
        q(&batches(dir.path(), "o")),
        q(&bin("claude-read")),
        q(&workspace_root().join("testdata/claude/03-tools")),
        q(&bin("tonbo-post")),
        server.url,
        q(&dir.path().join("o.sqlite"))
    ));
    assert!(other.contains("events/s"), "no progress line: {other:?}");
    assert!(other.contains("\r\x1b[Kclaude-read: "), "{other:?}");

    // -q: no summary, and no progress line either.
    let quiet = on_pty(&post("b", "-q"));
    assert!(!quiet.contains("events/s"), "{quiet:?}");
    assert!(!quiet.contains("tonbo-post:"), "{quiet:?}");

    // On a pipe: the summary line alone, as always.
    let out = Command::new("sh")
        .arg("-c")
        .arg(post("c", ""))
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "tonbo-post: 3 sessions, 600 events sent in 30 batches, 0 already present, 0 failed (0 sessions), 0 rejected\n"
    );
}

/// `READER --progress`: a line on a terminal (naming `scanned`), erased before the summary; on
/// a pipe, or without the flag, the summary line alone.
fn reader_progress_on_a_terminal_only(stage: &str, input: &Path, scanned: &str) {
    if !have_script() {
        println!("skipped: no script(1)");
        return;
    }
    let reader = q(&bin(stage));
    // Following keeps it running past the drawer's first tick; SIGTERM drains it (exit 0).
    let shown = on_pty(&format!(
        "{reader} --progress --follow {} > /dev/null & pid=$!; sleep 1.2; kill -TERM $pid; wait $pid",
        q(input)
    ));
    assert!(shown.contains(scanned), "no progress line: {shown:?}");
    assert!(shown.contains("records written"), "{shown:?}");
    assert!(shown.contains(&format!("\r\x1b[K{stage}: ")), "{shown:?}");

    // Without --progress, or on a pipe with it: the summary line alone.
    let plain = on_pty(&format!("{reader} {} > /dev/null", q(input)));
    assert!(!plain.contains(scanned), "{plain:?}");
    let out = Command::new(bin(stage))
        .arg("--progress")
        .arg(input)
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{stage}: ")) && stderr.lines().count() == 1,
        "{stderr:?}"
    );
    assert!(!stderr.contains('\r') && !stderr.contains(scanned));
}

#[test]
fn claude_read_progress_on_a_terminal_only() {
    let fixture = workspace_root().join("testdata/claude/03-tools");
    reader_progress_on_a_terminal_only("claude-read", &fixture, "files scanned");
}

#[test]
fn codex_read_progress_on_a_terminal_only() {
    let fixture = workspace_root().join("testdata/codex/02-tools");
    reader_progress_on_a_terminal_only("codex-read", &fixture, "files scanned");
}

#[test]
fn opencode_read_progress_on_a_terminal_only() {
    // A JSON store: followed like a database, and needs no SQLite built first.
    let fixture = workspace_root().join("testdata/opencode/03-t1-json/data");
    reader_progress_on_a_terminal_only("opencode-read", &fixture, "sessions scanned");
}
