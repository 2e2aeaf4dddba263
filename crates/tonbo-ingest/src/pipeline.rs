//! Stages run as child processes joined by pipes, one pipeline at a time. A thread per stage
//! waits for it and one more waits for SIGINT and SIGTERM; each sends what it saw down one
//! channel, so the front door sleeps until a stage ends or a signal comes, and acts at once.
//!
//! Signals are passed on as the pipeline needs them: the first goes to the readers (as SIGTERM),
//! which stop, and the stages after them drain what is in the pipe; a second goes to every stage.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::cli::PROG;

/// Where a stage's standard input comes from.
#[derive(Debug)]
pub enum Input {
    /// Nothing (`/dev/null`).
    Null,
    /// The output of the stage before it.
    Previous,
    /// Nothing on stdin: the outputs of these stages (by index) are its last arguments, as
    /// `/dev/fd/N` (the readers of `tonbo-map --merge`).
    Files(Vec<usize>),
}

/// Where a stage's standard output goes.
#[derive(Debug, Clone, Copy)]
pub enum Output {
    /// Into a pipe, for a stage after it.
    Pipe,
    /// The front door's own stdout.
    Inherit,
    /// Nowhere (`/dev/null`).
    Null,
}

/// A stage to run. Its stderr is the front door's.
#[derive(Debug)]
pub struct Stage {
    /// How messages name it (`claude-read`, `tonbo-map`, ...).
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub input: Input,
    pub output: Output,
    /// A reader: the first signal stops it, and so does a failing stage after it (`--watch`).
    pub reader: bool,
    /// Variables set (or, `None`, removed) in its environment: a reader's home under `--root`.
    pub env: Vec<(OsString, Option<OsString>)>,
}

impl Stage {
    /// A stage that is not a reader.
    pub fn after_readers(
        name: &'static str,
        program: &Path,
        args: Vec<OsString>,
        input: Input,
        output: Output,
    ) -> Stage {
        Stage {
            name,
            program: program.to_path_buf(),
            args,
            input,
            output,
            reader: false,
            env: Vec::new(),
        }
    }
}

enum Event {
    /// The stage of this index in the pipeline at hand exited with this status.
    Exited(usize, i32),
    Signal,
}

/// A started stage: its process id until it exits, then its status.
struct Running {
    pid: Option<u32>,
    status: Option<i32>,
    /// Whether the front door sent it SIGTERM.
    terminated: bool,
}

/// The pipeline at hand while it runs.
struct Pipeline<'a> {
    stages: &'a [Stage],
    running: Vec<Running>,
    /// The readers were stopped because a stage after them failed.
    stopping: bool,
}

impl Pipeline<'_> {
    fn is_running(&self) -> bool {
        self.running.iter().any(|r| r.status.is_none())
    }

    /// Stage `i` exited with `status`. With `stop_readers_on_failure`, a stage after the
    /// readers that failed stops them.
    fn exited(&mut self, i: usize, status: i32, stop_readers_on_failure: bool) {
        let reader = self.stages[i].reader;
        let r = &mut self.running[i];
        r.pid = None;
        // A reader ended by the SIGTERM it was sent, before it had set up its own stop (which
        // exits 0), was stopped all the same.
        let stopped = reader && r.terminated && status == 128 + libc::SIGTERM;
        r.status = Some(if stopped { 0 } else { status });
        let has_readers = self.stages.iter().any(|s| s.reader);
        if stop_readers_on_failure && !reader && has_readers && status != 0 && !self.stopping {
            let name = self.stages[i].name;
            tonbo_core::note!("{PROG}: {name} exited {status}; stopping the readers");
            self.terminate(|s| s.reader);
            self.stopping = true;
        }
    }

    /// Sends SIGTERM to each stage still running that `which` picks.
    fn terminate(&mut self, which: impl Fn(&Stage) -> bool) {
        for (stage, r) in self.stages.iter().zip(&mut self.running) {
            let Some(pid) = r.pid.filter(|_| which(stage)) else {
                continue;
            };
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: kill(2) has no memory effects; the pid is a child not yet reaped,
                // whose exit has not been seen here (its pid would be gone).
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
                r.terminated = true;
            }
        }
    }

    /// Names each stage that exited non-zero; the first such status in pipeline order, or 0.
    fn report(&self) -> i32 {
        let mut first = 0;
        for (stage, r) in self.stages.iter().zip(&self.running) {
            let status = r.status.unwrap_or(0);
            if status != 0 {
                tonbo_core::note!("{PROG}: {} exited {status}", stage.name);
                if first == 0 {
                    first = status;
                }
            }
        }
        first
    }
}

/// Runs pipelines one at a time, and takes SIGINT and SIGTERM from its creation on.
pub struct Supervisor {
    events: Sender<Event>,
    inbox: Receiver<Event>,
    signals: Arc<AtomicUsize>,
}

impl Supervisor {
    pub fn new() -> io::Result<Supervisor> {
        let (events, inbox) = channel();
        let signals = Arc::new(AtomicUsize::new(0));
        let mut incoming = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let (count, tell) = (signals.clone(), events.clone());
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for _ in incoming.forever() {
                    count.fetch_add(1, Ordering::SeqCst);
                    if tell.send(Event::Signal).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Supervisor {
            events,
            inbox,
            signals,
        })
    }

    /// How many signals came so far.
    pub fn signals(&self) -> usize {
        self.signals.load(Ordering::SeqCst)
    }

    /// Runs `stages` to their end. Each stage that exits non-zero is named, and the first such
    /// status in pipeline order is returned (0 if none). With `stop_readers_on_failure` (a
    /// watch, which never ends by itself) a stage after the readers that exits non-zero stops
    /// the readers, so that the run ends for a service manager to see.
    pub fn run(&self, stages: &[Stage], stop_readers_on_failure: bool) -> i32 {
        let mut pipeline = Pipeline {
            stages,
            running: self.start(stages),
            stopping: false,
        };
        // A signal that came while they started reaches the readers now.
        if self.signals() > 0 {
            pipeline.terminate(|s| s.reader);
        }
        while pipeline.is_running() {
            // The supervisor holds a sender itself: the channel cannot close while it waits.
            let Ok(event) = self.inbox.recv() else { break };
            match event {
                Event::Exited(i, status) => pipeline.exited(i, status, stop_readers_on_failure),
                Event::Signal if self.signals() == 1 => pipeline.terminate(|s| s.reader),
                Event::Signal => pipeline.terminate(|_| true),
            }
        }
        pipeline.report()
    }

    /// Starts every stage, each with a thread that waits for it. A stage that cannot start has
    /// the status a shell would give it (127 not found, else 126), and the stage after it reads
    /// nothing.
    fn start(&self, stages: &[Stage]) -> Vec<Running> {
        let mut outputs: Vec<Option<ChildStdout>> = Vec::with_capacity(stages.len());
        let mut running = Vec::with_capacity(stages.len());
        for (i, stage) in stages.iter().enumerate() {
            let mut child = match command(stage, &mut outputs).spawn() {
                Ok(child) => child,
                Err(e) => {
                    tonbo_core::note!("{PROG}: cannot run {}: {e}", stage.program.display());
                    let status = if e.kind() == io::ErrorKind::NotFound {
                        127
                    } else {
                        126
                    };
                    outputs.push(None);
                    running.push(Running {
                        pid: None,
                        status: None,
                        terminated: false,
                    });
                    // Told as any exit is, so that it counts as one (it stops the readers too).
                    let _ = self.events.send(Event::Exited(i, status));
                    continue;
                }
            };
            outputs.push(child.stdout.take());
            let pid = child.id();
            running.push(Running {
                pid: Some(pid),
                status: None,
                terminated: false,
            });
            self.wait_in_background(i, stage.name, child);
        }
        running
    }

    /// Sends `Exited(index, status)` once `child` exits.
    fn wait_in_background(&self, index: usize, name: &'static str, mut child: Child) {
        let tell = self.events.clone();
        // The child is handed over once the thread runs, so that it stays here if none can.
        let (hand, take) = std::sync::mpsc::sync_channel::<Child>(1);
        let spawned = thread::Builder::new().name(name.into()).spawn(move || {
            if let Ok(mut child) = take.recv() {
                let _ = tell.send(Event::Exited(index, wait(&mut child, name)));
            }
        });
        match spawned {
            Ok(_) => match hand.send(child) {
                Ok(()) => return,
                Err(back) => child = back.0,
            },
            Err(e) => tonbo_core::note!("{PROG}: cannot wait for {name}: {e}"),
        }
        // Nothing waits for it: stopped rather than left unwatched.
        let _ = child.kill();
        let _ = child.wait();
        let _ = self.events.send(Event::Exited(index, 2));
    }
}

/// The command of `stage`, its stdin taken from `outputs` (those of the stages before it).
fn command(stage: &Stage, outputs: &mut [Option<ChildStdout>]) -> Command {
    let mut cmd = Command::new(&stage.program);
    cmd.args(&stage.args);
    for (name, value) in &stage.env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd.stdout(match stage.output {
        Output::Pipe => Stdio::piped(),
        Output::Inherit => Stdio::inherit(),
        Output::Null => Stdio::null(),
    });
    match &stage.input {
        Input::Null => {
            cmd.stdin(Stdio::null());
        }
        Input::Previous => {
            let previous = outputs.last_mut().and_then(Option::take);
            cmd.stdin(previous.map_or_else(Stdio::null, Stdio::from));
        }
        Input::Files(from) => {
            cmd.stdin(Stdio::null());
            let fds: Vec<OwnedFd> = from
                .iter()
                .filter_map(|&j| outputs.get_mut(j).and_then(Option::take))
                .map(OwnedFd::from)
                .collect();
            for fd in &fds {
                cmd.arg(format!("/dev/fd/{}", fd.as_raw_fd()));
            }
            keep_open_across_exec(&mut cmd, fds);
        }
    }
    cmd
}

/// Makes `fds` stay open in the program `cmd` runs (Rust opens every descriptor close-on-exec).
/// They are held by the command, so the front door lets go of them when the command is dropped.
fn keep_open_across_exec(cmd: &mut Command, fds: Vec<OwnedFd>) {
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: between fork and exec the closure only calls fcntl(2), which is async-signal-safe,
    // on descriptors that `fds`, moved into the closure, keeps open until the command is dropped.
    unsafe {
        cmd.pre_exec(move || {
            let _held = &fds;
            for &fd in &raw {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Waits for `child`; its status as a shell gives it (128+N when killed by signal N).
fn wait(child: &mut Child, name: &str) -> i32 {
    match child.wait() {
        Ok(status) => status_code(status),
        Err(e) => {
            tonbo_core::note!("{PROG}: cannot wait for {name}: {e}");
            2
        }
    }
}

fn status_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
