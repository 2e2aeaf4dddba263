//! The live progress line: drawn on stderr when it is a terminal (here a pseudo-terminal opened
//! with `openpty`), erased before the summary, and absent when stderr is a pipe, where the
//! summary line stays all there is. Also the readers' `--progress`.

mod support;

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use support::*;

/// Runs `sh -c CMD` with a pseudo-terminal as stdin, stdout and stderr; returns what the
/// terminal showed (stdout and stderr together, with their control characters, and `\n` shown
/// as `\r\n` as a terminal does).
fn on_pty(cmd: &str) -> String {
    // 200 columns, wide enough for the whole line (it is cut to the width, 80 when unknown).
    let size = libc::winsize {
        ws_row: 50,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes the two descriptors it opens into the two ints given; the name and
    // terminal settings are left out (null), the size is read from `size` on this stack (a
    // `*mut` where some systems declare it so; openpty does not write it).
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&raw const size).cast_mut(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // Not inherited by the children other tests spawn meanwhile (from here on: openpty cannot set
    // close-on-exec itself): a stray copy of the slave would hold the terminal open, and the read
    // below would wait for that child too. The child here gets the slave as 0, 1 and 2, which
    // do not close on exec.
    for fd in [&master, &slave] {
        // SAFETY: F_SETFD on a descriptor this function owns.
        let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_ne!(rc, -1, "fcntl: {}", std::io::Error::last_os_error());
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        // Any terminal but `dumb`, where no line is drawn.
        .env("TERM", "xterm")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("sh runs");
    // The Command (and with it this process's copies of the slave) is gone: the terminal closes
    // when the child and everything it started have closed it.
    let mut master = File::from(master);
    let mut shown = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => shown.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // EIO: the slave side is closed (Linux); what was written before is read first.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("reading the terminal: {e}"),
        }
    }
    let status = child.wait().unwrap();
    let shown = String::from_utf8_lossy(&shown).into_owned();
    assert!(status.success(), "{cmd}: {status}; {shown:?}");
    shown
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
    write_batches(&records, &["--max-events", "20"], &batches);
    batches
}

/// What `cmd` says on stderr when it is a pipe (TERM set as on a terminal); it must exit 0.
fn stderr_on_a_pipe(mut cmd: Command) -> String {
    let out = cmd
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tonbo_post_draws_progress_on_a_terminal_only() {
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
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(post("c", ""));
    assert_eq!(
        stderr_on_a_pipe(sh),
        "tonbo-post: 3 sessions, 600 events sent in 30 batches, 0 already present, 0 failed (0 sessions), 0 rejected\n"
    );
}

/// `READER --progress`: a line on a terminal (naming `scanned`), erased before the summary; on
/// a pipe, or without the flag, the summary line alone.
fn reader_progress_on_a_terminal_only(stage: &str, input: &Path, scanned: &str) {
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
    let mut on_a_pipe = Command::new(bin(stage));
    on_a_pipe.arg("--progress").arg(input);
    let stderr = stderr_on_a_pipe(on_a_pipe);
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
