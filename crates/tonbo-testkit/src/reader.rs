//! What the readers' tests share (`claude-read`, `codex-read`, `opencode-read`): a reader kept
//! away from the machine's own sessions ([`command`]), the files the tests write ([`put`],
//! [`append`], [`set_mtime`]), what a run said ([`summary`], [`Run::rejected_lines`]), a reader
//! followed while the test writes ([`Following`], in each [`Mode`]), a plain run stopped by
//! SIGTERM mid-way ([`terminated_after_first_line`]), and the checks of what every reader does
//! alike (its rejects, unreadable inputs, an input that gives nothing, stdin).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::{signal, Run};

/// How long to wait for an expected line, or for a reader to end (CI runs on 2 busy cores).
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `cmd` with `args` and the variables of `env` to its end ([`crate::run`]).
pub fn run_with(mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Run {
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    crate::run(cmd, None)
}

/// The reader `bin` with HOME at `home` and the variables of `unset` removed (those that would
/// point it at the machine's own sessions); stdin closed.
pub fn command(bin: &str, home: &Path, unset: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("HOME", home).stdin(Stdio::null());
    for var in unset {
        cmd.env_remove(var);
    }
    cmd
}

// ---------------------------------------------------------------------------------------------
// Files

/// A temporary folder for a test's HOME and inputs, removed when dropped; it derefs to its path:
/// `let base = &TempHome::new();`.
pub struct TempHome(tempfile::TempDir);

impl TempHome {
    pub fn new() -> TempHome {
        TempHome(tempfile::TempDir::new().unwrap())
    }
}

impl Default for TempHome {
    fn default() -> TempHome {
        TempHome::new()
    }
}

impl Deref for TempHome {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TempHome {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// Writes `bytes` to `path`, making its folders.
pub fn put(path: &Path, bytes: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Appends `bytes` to `path` (created if missing), as a writer adds to a session.
pub fn append(path: &Path, bytes: impl AsRef<[u8]>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes.as_ref()).unwrap();
}

/// Sets a file's modification time (for `--modified-after`).
pub fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// 2023-11-14T22:13:20Z: a modification time long before any `--modified-after` of the tests.
pub fn long_ago() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Spellings of a `--modified-after` TIME that leaves out a file modified [`long_ago`] and keeps
/// one modified now: a date, a time, an age, a time half a second later in another spelling, and
/// [`long_ago`] itself (a file modified at TIME is not modified after it).
pub const AFTER_LONG_AGO: [&str; 5] = [
    "2024-01-01",
    "2024-01-01T00:00:00Z",
    "2w",
    "2023-11-14T22:13:20.5+00:00",
    "2023-11-14T22:13:20Z",
];

// ---------------------------------------------------------------------------------------------
// What a run said

/// The summary line of a reader's stderr: its last line `<stage>: <count> ...`.
pub fn summary(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|l| {
            l.split_once(": ").is_some_and(|(stage, rest)| {
                !stage.contains(' ') && rest.starts_with(|c: char| c.is_ascii_digit())
            })
        })
        .unwrap_or_else(|| panic!("no summary line in stderr: {stderr}"))
}

/// Fails unless `text` (a summary line, stderr) contains `part`, showing it.
#[track_caller]
pub fn assert_has(text: &str, part: &str) {
    assert!(text.contains(part), "no {part:?} in: {text}");
}

/// Fails unless `line` (a summary line) ends with `end`, showing it.
#[track_caller]
pub fn assert_ends(line: &str, end: &str) {
    assert!(line.ends_with(end), "{line:?} does not end with {end:?}");
}

impl Run {
    /// Stdout's lines.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(str::to_string).collect()
    }

    /// Stderr's lines that contain `part`.
    pub fn stderr_lines_with(&self, part: &str) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.contains(part)).collect()
    }

    /// Stderr's lines that report a rejected input line.
    pub fn rejected_lines(&self) -> Vec<&str> {
        self.stderr_lines_with("rejected:")
    }

    /// The summary line ([`summary`]).
    pub fn summary(&self) -> &str {
        summary(&self.stderr)
    }

    /// Whether stderr has this line, whole.
    pub fn has_line(&self, line: &str) -> bool {
        self.stderr.lines().any(|l| l == line)
    }

    /// Fails unless the run exited with `code`, showing its stderr.
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "stderr: {}", self.stderr);
        self
    }
}

/// One source record of a file reader (`claude-read`, `codex-read`), read strictly: the fields
/// the contract names and no others, `record` kept as the exact text written.
#[derive(Debug)]
pub struct Rec {
    pub v: u64,
    pub source: String,
    pub session: String,
    pub kind: Option<String>,
    pub agent_id: Option<String>,
    pub at: String,
    /// Its provenance: the file, and the line or row in it.
    pub file: String,
    pub line: Option<u64>,
    pub row: Option<String>,
    pub record: String,
}

impl Rec {
    /// Reads one stdout line, which must also read as the contract's own type, and whose `at`
    /// must be its file's name (without `.zst`) and `:` its line or row (only the name when it
    /// has neither).
    pub fn parse(line: &str) -> Rec {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire<'a> {
            v: u64,
            source: String,
            kind: Option<String>,
            session: String,
            agent_id: Option<String>,
            #[serde(borrow)]
            record: &'a serde_json::value::RawValue,
            at: String,
            provenance: Prov,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Prov {
            file: String,
            line: Option<u64>,
            row: Option<String>,
        }
        let w: Wire = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not a source record ({e}): {line}"));
        let _: tonbo_core::SourceRecord = serde_json::from_str(line).unwrap();
        let name = Path::new(&w.provenance.file).file_name().unwrap();
        let name = name.to_str().unwrap();
        let name = name.strip_suffix(".zst").unwrap_or(name);
        let at = match (&w.provenance.line, &w.provenance.row) {
            (Some(l), None) => format!("{name}:{l}"),
            (None, Some(row)) => format!("{name}:{row}"),
            (None, None) => name.to_string(),
            (Some(_), Some(_)) => panic!("provenance with both a line and a row: {line}"),
        };
        assert_eq!(w.at, at, "{line}");
        Rec {
            v: w.v,
            source: w.source,
            session: w.session,
            kind: w.kind,
            agent_id: w.agent_id,
            at: w.at,
            file: w.provenance.file,
            line: w.provenance.line,
            row: w.provenance.row,
            record: w.record.get().to_string(),
        }
    }

    /// Its file, relative to `base`.
    pub fn rel_file(&self, base: &Path) -> String {
        Path::new(&self.file)
            .strip_prefix(base)
            .unwrap_or_else(|_| panic!("{} is not under {}", self.file, base.display()))
            .display()
            .to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// What every reader does alike. In these checks `read(args)` runs the reader with `args`,
// giving a `Run` or a test's own wrapper of one (`local_run!`).

/// The bytes of a JSONL file whose lines 1 and 6 are `first` and `sixth` and whose others are
/// what every reader rejects ([`JSONL_REJECTS`]), or passes over (a blank line 5).
pub fn jsonl_with_bad_lines(first: &str, sixth: &str) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(format!("{first}\n").as_bytes());
    data.extend_from_slice(b"not json at all\n");
    data.extend_from_slice(b"{\"t\":\"caf\xe9\"}\n");
    data.extend_from_slice(b"[1,2,3]\n");
    data.extend_from_slice(b"\n");
    data.extend_from_slice(format!("{sixth}\n").as_bytes());
    data.extend_from_slice(b"{\"n\":7} trailing\n");
    // Valid JSON but not an object, without a newline: a reject, not a torn line.
    data.extend_from_slice(b"42");
    data
}

/// The lines of [`jsonl_with_bad_lines`] a reader rejects, and why.
pub const JSONL_REJECTS: [(u64, &str); 5] = [
    (2, "not JSON"),
    (3, "invalid UTF-8"),
    (4, "not a JSON object"),
    (7, "not JSON"),
    (8, "not a JSON object"),
];

/// Checks a run's rejected lines, in order: one per `(input, line, why)` of `expect`, each
/// starting `<stage>: <input>:<line>: rejected: <why>`.
pub fn assert_rejected(r: &Run, stage: &str, expect: &[(String, u64, &str)]) {
    let rejected = r.rejected_lines();
    assert_eq!(rejected.len(), expect.len(), "stderr: {}", r.stderr);
    for (got, (input, line, why)) in rejected.iter().zip(expect) {
        let prefix = format!("{stage}: {input}:{line}: rejected: {why}");
        assert!(got.starts_with(&prefix), "{got} should start with {prefix}");
    }
}

/// The records of a `--rejects FILE`.
pub fn rejects_file(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Checks the `--rejects FILE` at `path` of a run over [`jsonl_with_bad_lines`] (`input`) that
/// rejected one more input after it (`last`): a record for each rejection, the first in full.
/// The records, for more checks.
pub fn assert_rejects_file(path: &Path, stage: &str, input: &str, last: &str) -> Vec<Value> {
    let recorded = rejects_file(path);
    assert_eq!(recorded.len(), JSONL_REJECTS.len() + 1);
    assert_eq!(recorded[0]["stage"], stage);
    assert_eq!(recorded[0]["input"], input);
    assert_eq!(recorded[0]["line"], 2);
    assert_eq!(recorded[0]["raw"], "not json at all");
    assert_eq!(recorded[JSONL_REJECTS.len()]["input"], last);
    recorded
}

/// Inputs a reader cannot read: a PATH that does not exist, and in a folder it reads a link to
/// nowhere; and a link back up (a loop), passed over silently.
pub struct Unreadable {
    pub missing: PathBuf,
    pub dangling: PathBuf,
}

impl Unreadable {
    /// Makes `dangling` a link to nowhere in `base` and `loop_at` a link to its parent folder;
    /// `missing` is `base/no-such-dir`.
    pub fn make(base: &Path, dangling: PathBuf, loop_at: &Path) -> Unreadable {
        std::os::unix::fs::symlink(base.join("nowhere.jsonl"), &dangling).unwrap();
        fs::create_dir_all(loop_at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("..", loop_at).unwrap();
        Unreadable {
            missing: base.join("no-such-dir"),
            dangling,
        }
    }

    /// Checks that the run (over `missing`, then the folder) exited 1, said it cannot read
    /// `missing` and then `dangling` and nothing else, nothing of the loop, and that its summary
    /// ends with `2 <counted as>`.
    pub fn assert_reported(&self, r: &Run, counted_as: &str) {
        r.assert_code(1);
        let errors = r.stderr_lines_with("cannot read");
        assert_eq!(errors.len(), 2, "stderr: {}", r.stderr);
        assert!(errors[0].contains(&self.missing.display().to_string()));
        assert!(errors[1].contains(&self.dangling.display().to_string()));
        assert!(!r.stderr.contains("loop"), "stderr: {}", r.stderr);
        assert_ends(r.summary(), &format!("2 {counted_as}"));
    }
}

/// Checks a run with nothing at the reader's default places: exit 0, no record, and the note
/// that no `what` was found (where it looked) and there is nothing to read.
pub fn assert_none_found(r: &Run, what: &str) {
    r.assert_code(0);
    assert_eq!(r.stdout, "");
    assert_has(&r.stderr, &format!("note: no {what} found (looked in: "));
    assert_has(&r.stderr, "); nothing to read");
}

/// Checks that an input named alone, modified [`long_ago`], is left out by a `--modified-after`
/// too (`read(args)` runs the reader with `args`): exit 0, nothing written.
pub fn assert_left_out_alone<R: Deref<Target = Run>>(read: impl Fn(&[&str]) -> R, old: &Path) {
    let r = read(&[old.to_str().unwrap(), "--modified-after", "7d"]);
    r.assert_code(0);
    assert_eq!(r.stdout, "");
}

/// Checks the runs of a reader over `path`, a folder that holds files but gives nothing
/// (`read(args)` runs the reader with `args`): exit 3, no record, and the warning
/// `<stage>: warning: <path>: nothing read: <why>...`; with `--allow-empty`, the same warning
/// and exit 0.
pub fn assert_warns_nothing_read<R: Deref<Target = Run>>(
    read: impl Fn(&[&str]) -> R,
    stage: &str,
    path: &Path,
    why: &str,
) {
    let p = path.to_str().unwrap();
    let warning = format!("{stage}: warning: {}: nothing read: {why}", path.display());
    let r = read(&[p]);
    r.assert_code(3);
    assert_eq!(r.stdout, "");
    assert_has(&r.stderr, &warning);
    let r = read(&[p, "--allow-empty"]);
    r.assert_code(0);
    assert_has(&r.stderr, &warning);
}

/// Checks what no reader accepts (`read(args)` runs the reader with `args`): stdin (`-`) as a
/// PATH, a `--modified-after` that is no time, and a `--rejects FILE` that cannot be created;
/// each exits 2, having written nothing. `input` is something it would read.
pub fn assert_refuses_bad_arguments<R: Deref<Target = Run>>(
    read: impl Fn(&[&str]) -> R,
    input: &Path,
) {
    let input = input.to_str().unwrap();
    let no_dir = Path::new(input).with_file_name("no/such/dir/r.ndjson");
    let no_dir = no_dir.to_str().unwrap();
    for (args, says) in [
        (&["-"][..], "not stdin"),
        (&[input, "--modified-after", "yesterday"], "is not a time"),
        (&[input, "--rejects", no_dir], "cannot create rejects file"),
    ] {
        let r = read(args);
        r.assert_code(2);
        assert_has(&r.stderr, says);
        assert_eq!(r.stdout, "", "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A plain run stopped by SIGTERM

/// Runs `cmd` (a plain run over more than a pipe holds) and sends it SIGTERM once its first
/// line is out, reading no more of its stdout until then: the reader is blocked writing, mid-way,
/// when the signal comes, however fast the machine. Its exit, whole stdout and stderr.
pub fn terminated_after_first_line(mut cmd: Command) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().expect("spawn the reader"));
    let stdout = child.0.stdout.take().unwrap();
    let (first_tx, first_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let out = thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut text = String::new();
        r.read_line(&mut text).unwrap();
        let _ = first_tx.send(());
        let _ = go_rx.recv();
        r.read_to_string(&mut text).unwrap();
        text
    });
    let err = read_all(child.0.stderr.take().unwrap());
    if let Err(e) = first_rx.recv_timeout(DEADLINE) {
        panic!("no first line within {DEADLINE:?}: {e}");
    }
    signal(&child.0, "-TERM");
    go_tx.send(()).unwrap();
    let code = child.wait();
    Run {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Checks a run stopped by [`terminated_after_first_line`] against `whole`, the lines of the
/// same run to its end: exit 0, whole lines only, and the first of `whole`, cut short.
pub fn assert_stopped_at_a_record_boundary(stopped: &Run, whole: &[String]) {
    stopped.assert_code(0);
    assert!(stopped.stdout.ends_with('\n'), "a torn last line");
    let got = stopped.lines();
    assert!(
        got.len() < whole.len(),
        "the run was not stopped: {} lines",
        got.len()
    );
    assert_eq!(got[..], whole[..got.len()]);
}

/// A child killed if the test fails before it ends.
struct KillOnDrop(Child);

impl KillOnDrop {
    /// Its exit code, waiting up to [`DEADLINE`].
    fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the reader did not end");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

// ---------------------------------------------------------------------------------------------
// --follow

/// The two ways `--follow` watches: filesystem events, and polling every 50 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Events,
    Poll,
}

impl Mode {
    /// `--follow` and this mode's flags.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Mode::Events => &["--follow"],
            Mode::Poll => &["--follow", "--poll", "--poll-interval", "50"],
        }
    }
}

/// For each named function `fn NAME(mode: Mode)`, a test `events::NAME` and a test
/// `poll::NAME` that call it in that [`Mode`].
#[macro_export]
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        mod events {
            $(#[test] fn $name() { super::$name($crate::reader::Mode::Events) })*
        }
        mod poll {
            $(#[test] fn $name() { super::$name($crate::reader::Mode::Poll) })*
        }
    };
}

/// A stdout line as read: whole (ended by a newline), or torn.
type OutLine = Result<String, String>;

/// A reader running while the test writes its inputs, its stdout and stderr lines taken as they
/// come; killed if the test fails before it ends.
pub struct Following {
    child: Child,
    /// The command line, for failures.
    name: String,
    lines: Receiver<OutLine>,
    stdout: Option<JoinHandle<()>>,
    /// Stderr's lines as they come; its thread returns them all at the end.
    errors: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    /// Every whole stdout line taken so far.
    pub got: Vec<String>,
}

/// What a followed run left once it ended.
pub struct Ended {
    pub code: Option<i32>,
    /// Every stdout line, in order.
    pub lines: Vec<String>,
    pub stderr: String,
}

impl Ended {
    /// The summary line ([`summary`]).
    pub fn summary(&self) -> &str {
        summary(&self.stderr)
    }
}

impl Following {
    /// Starts `cmd` (stdout and stderr piped here).
    pub fn start(mut cmd: Command) -> Following {
        let name = format!("{cmd:?}");
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let (lines, stdout) = whole_lines(child.stdout.take().unwrap());
        let (etx, errors) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = etx.send(line);
            }
            all
        });
        Following {
            child,
            name,
            lines,
            stdout: Some(stdout),
            errors,
            stderr: Some(stderr),
            got: Vec::new(),
        }
    }

    /// The next `n` stdout lines, waiting up to [`DEADLINE`] for them.
    pub fn next(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        let mut new = Vec::new();
        while new.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Ok(line)) => new.push(line),
                Ok(Err(torn)) => self.fail(&format!("a torn stdout line: {torn:?}")),
                Err(RecvTimeoutError::Timeout) => self.fail(&format!(
                    "waited {DEADLINE:?} for {n} lines, got {}: {new:#?}",
                    new.len()
                )),
                Err(RecvTimeoutError::Disconnected) => self.fail(&format!(
                    "stdout ended after {} of {n} lines: {new:#?}",
                    new.len()
                )),
            }
        }
        self.got.extend(new.iter().cloned());
        new
    }

    /// Waits until `n` stdout lines in all have come; all of them.
    pub fn until(&mut self, n: usize) -> &[String] {
        if let Some(more) = n.checked_sub(self.got.len()) {
            self.next(more);
        }
        &self.got
    }

    /// Fails if a stdout line has come that was not asked for yet.
    pub fn assert_no_line_yet(&mut self) {
        if let Ok(line) = self.lines.try_recv() {
            self.fail(&format!("a line before its time: {line:?}"));
        }
    }

    /// Waits up to [`DEADLINE`] for a stderr line containing `needle` (passing over the lines
    /// before it); that line.
    pub fn stderr_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.errors.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => self.fail(&format!("no stderr line with {needle:?}")),
            }
        }
    }

    /// Kills the reader and fails the test with `why`, the lines taken so far and stderr.
    pub fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        panic!(
            "{}: {why}\nlines before: {:#?}\nstderr: {}",
            self.name,
            self.got,
            stderr.unwrap_or_default()
        );
    }

    /// Sends SIGTERM and collects the rest of stdout, stderr and the exit code.
    pub fn terminate(self) -> Ended {
        signal(&self.child, "-TERM");
        self.wait()
    }

    /// [`Following::terminate`], for a run that must end well: exit 0, nothing rejected.
    pub fn terminate_ok(self) -> Ended {
        let end = self.terminate();
        assert_eq!(end.code, Some(0), "stderr: {}", end.stderr);
        assert!(!end.stderr.contains("rejected:"), "stderr: {}", end.stderr);
        end
    }

    /// Waits for the reader to end by itself and collects everything.
    pub fn wait(mut self) -> Ended {
        let deadline = Instant::now() + DEADLINE;
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            if Instant::now() > deadline {
                self.fail(&format!("did not end within {DEADLINE:?}"));
            }
            thread::sleep(Duration::from_millis(20));
        };
        self.stdout.take().unwrap().join().unwrap();
        let mut lines = std::mem::take(&mut self.got);
        for line in self.lines.try_iter() {
            match line {
                Ok(line) => lines.push(line),
                Err(torn) => panic!("a torn stdout line at exit: {torn:?}"),
            }
        }
        let stderr = self.stderr.take().unwrap().join().unwrap();
        Ended {
            code,
            lines,
            stderr,
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        // A failed assertion must not leave the reader running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Stdout's lines as they come, each whole or torn (the last, without its newline).
fn whole_lines(out: impl Read + Send + 'static) -> (Receiver<OutLine>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut out = BufReader::new(out);
        loop {
            let mut line = String::new();
            match out.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let sent = match line.strip_suffix('\n') {
                        Some(whole) => tx.send(Ok(whole.to_string())),
                        None => tx.send(Err(line)),
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            }
        }
    });
    (rx, reader)
}
