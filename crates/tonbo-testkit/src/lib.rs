//! What the stages' integration tests share: the workspace's binaries ([`bin`]), running one to
//! its end with a deadline, its stdin fed and its stdout and stderr collected without any pipe
//! filling up ([`run`]), and the reference server ([`server::RefServer`]). Each crate's tests
//! used to carry a copy of these.

pub mod events;
pub mod reader;
pub mod server;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a stage run by a test may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// A binary of the workspace. Integration tests run after `cargo build` built every binary into
/// the target folder of the test that calls this (`target/debug`, above its `deps/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

/// What a finished stage gave.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end: `stdin` is written from a thread (so a large input cannot deadlock
/// against a full stdout pipe; a stage that stops reading is not an error), stdout and stderr are
/// read by threads of their own, and a run past [`TIMEOUT`] is killed and fails the test.
pub fn run(cmd: Command, stdin: Option<&[u8]>) -> Run {
    let started = start(cmd, stdin);
    let name = started.name.clone();
    started
        .finish_within(TIMEOUT)
        .unwrap_or_else(|| panic!("{name} did not finish within {TIMEOUT:?}"))
}

/// A binary started in the background (see [`start`]).
pub struct Started {
    pub child: Child,
    name: String,
    writer: Option<JoinHandle<()>>,
    out: JoinHandle<Vec<u8>>,
    err: JoinHandle<Vec<u8>>,
}

/// Starts `cmd` as [`run`] does, for a test that acts while it runs (signals it, say), then
/// [`Started::finish_within`].
pub fn start(mut cmd: Command, stdin: Option<&[u8]>) -> Started {
    let (mut child, name) = spawn_piped(&mut cmd, stdin.is_some());
    let writer = stdin.map(|data| {
        let mut input = child.stdin.take().unwrap();
        let data = data.to_vec();
        thread::spawn(move || {
            let _ = input.write_all(&data);
        })
    });
    let out = read_all(child.stdout.take().unwrap());
    let err = read_all(child.stderr.take().unwrap());
    Started {
        child,
        name,
        writer,
        out,
        err,
    }
}

/// Spawns `cmd` with its stdout and stderr piped, and its stdin piped if `stdin` (else empty):
/// the child, and the name of its program.
fn spawn_piped(cmd: &mut Command, stdin: bool) -> (Child, String) {
    cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let name = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    (child, name)
}

/// Reads `from` (a child's stdout or stderr) to its end on a thread of its own, so that no
/// pipe fills up.
fn read_all(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut s = Vec::new();
        from.read_to_end(&mut s).unwrap();
        s
    })
}

impl Started {
    /// What it gave, once it ended within `limit`; `None` if it was still running then (it is
    /// killed, and what it wrote is not waited for: processes it started may hold its pipes).
    pub fn finish_within(mut self, limit: Duration) -> Option<Run> {
        let code = wait_within(&mut self.child, limit)?;
        if let Some(w) = self.writer {
            w.join().unwrap();
        }
        Some(Run {
            code,
            stdout: String::from_utf8(self.out.join().unwrap()).expect("stdout is UTF-8"),
            stderr: String::from_utf8(self.err.join().unwrap()).expect("stderr is UTF-8"),
        })
    }
}

/// Sends `child` the signal `sig` (`-TERM`, `-INT`), as `kill SIG PID` does.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {} failed", child.id());
}

/// Waits for `child` up to [`TIMEOUT`]; past it, kills it and fails the test.
pub fn wait_with_timeout(child: &mut Child, name: &str) -> Option<i32> {
    wait_within(child, TIMEOUT)
        .unwrap_or_else(|| panic!("{name} did not finish within {TIMEOUT:?}"))
}

/// Waits for `child` up to `limit`: `Some` of its exit code, or `None` (it is killed then).
fn wait_within(child: &mut Child, limit: Duration) -> Option<Option<i32>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Declares `Run`, this test file's own name for a [`Run`] (it derefs to it), so that the file
/// can add its readers of a stage's output (`impl Run { fn batches(&self) ... }`).
#[macro_export]
macro_rules! local_run {
    () => {
        /// A finished stage ([`tonbo_testkit::Run`]), with this file's readers of its output.
        struct Run(tonbo_testkit::Run);

        impl std::ops::Deref for Run {
            type Target = tonbo_testkit::Run;
            fn deref(&self) -> &tonbo_testkit::Run {
                &self.0
            }
        }
    };
}

/// What a stage did when its reader went away after one line.
#[derive(Debug)]
pub struct Closed {
    /// The first line it wrote, without its newline.
    pub first: String,
    pub code: Option<i32>,
    pub stderr: String,
}

/// `count` lines for a stage's stdin, the `i`th made by the function.
pub type Lines = (usize, fn(usize) -> String);

/// Runs `cmd` as `... | head -1` would: stdin (if `stdin` is given) is fed `count` lines made by
/// `line(i)`, in 64 KiB writes, until the stage is gone; the first line of its stdout is read
/// and the pipe closed. A stage must then end quietly with exit 0, which the caller asserts on
/// what this returns.
pub fn first_line_then_close(mut cmd: Command, stdin: Option<Lines>) -> Closed {
    use std::io::BufRead;
    let (mut child, name) = spawn_piped(&mut cmd, stdin.is_some());
    let writer = stdin.map(|(count, line)| {
        let mut input = child.stdin.take().unwrap();
        thread::spawn(move || {
            let mut chunk = String::new();
            for i in 0..count {
                chunk.push_str(&line(i));
                if chunk.len() > 64 * 1024 {
                    if input.write_all(chunk.as_bytes()).is_err() {
                        return; // the stage is gone: expected
                    }
                    chunk.clear();
                }
            }
            let _ = input.write_all(chunk.as_bytes());
        })
    });
    let err = read_all(child.stderr.take().unwrap());
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    drop(out);
    let code = wait_with_timeout(&mut child, &name);
    if let Some(w) = writer {
        w.join().unwrap();
    }
    Closed {
        first: first.trim_end().to_string(),
        code,
        stderr: String::from_utf8(err.join().unwrap()).expect("stderr is UTF-8"),
    }
}

impl Closed {
    /// The stage ended as a pipeline stage must when its reader goes away: exit 0, no error,
    /// no panic.
    pub fn assert_quiet(&self) {
        let stderr = &self.stderr;
        assert_eq!(self.code, Some(0), "stderr: {stderr}");
        assert!(!stderr.contains("error"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// The front door (`door`, this build's `tonbo-ingest` or a copy of it) run away from this
/// machine's setup: in `home` (also `$HOME`), with the stages of this build, and none of the
/// variables that would steer it or its stages (server, key, state, the agents' homes) left in
/// its environment.
pub fn front_door(door: &std::path::Path, home: &std::path::Path) -> Command {
    let mut cmd = Command::new(door);
    cmd.current_dir(home)
        .env("TONBO_INGEST_BIN_DIR", bin("tonbo-post").parent().unwrap())
        .env("HOME", home);
    for var in [
        "TONBO_API_KEY",
        "TONBO_API",
        "TONBO_URL_TEMPLATE",
        "TONBO_STATE",
        "TONBO_STATE_DIR",
        "XDG_STATE_HOME",
        "CLAUDE_CONFIG_DIR",
        "CODEX_HOME",
        "OPENCODE_DB",
        "XDG_DATA_HOME",
        "CRUSH_GLOBAL_DATA",
        "XDG_CONFIG_HOME",
        "VSCODE_PORTABLE",
        "CLINE_DATA_DIR",
        "CLINE_DIR",
        "COPILOT_HOME",
        "GOOSE_PATH_ROOT",
        "QWEN_HOME",
        "QWEN_RUNTIME_DIR",
        "CURSOR_USER_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// This build's front door ([`front_door`]) in `home`, run as
/// `tonbo-ingest --full FROM... -- --api API --state STATE`: `from` picks the source and its
/// input, the rest is tonbo-post's server and checkpoint. `--full` makes every run read its
/// input whole, so that a re-run tests what the checkpoint drops, whether or not the files
/// changed (a plain re-run over unchanged files reads nothing: tonbo-ingest's own tests).
pub fn front_door_to(
    home: &std::path::Path,
    from: &[&str],
    api: &str,
    state: &std::path::Path,
) -> Command {
    let mut cmd = front_door(&bin("tonbo-ingest"), home);
    cmd.arg("--full")
        .args(from)
        .args(["--", "--api", api, "--state", state.to_str().unwrap()]);
    cmd
}

impl Run {
    /// Fails unless this front door run exited 0 having sent nothing (its summary says
    /// ` 0 events sent in 0 batches`), showing its stderr.
    #[track_caller]
    pub fn assert_sent_nothing(&self) -> &Run {
        self.assert_code(0);
        assert!(
            self.stderr.contains(" 0 events sent in 0 batches"),
            "{}",
            self.stderr
        );
        self
    }
}
