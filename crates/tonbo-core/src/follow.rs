//! What the `--follow` readers share: the one loop that drives them ([`follow`] over a
//! [`Followed`] source), a tailed file that survives rewrites, a watcher that wakes on
//! filesystem events (or polls), and the stop flag set by SIGINT/SIGTERM.
//!
//! The loop's rules, the same for every source: watching starts before the backfill, so what
//! is written meanwhile wakes the loop at once; a signal during the backfill stops it at the
//! next record boundary and ends the run (a stop before the end, as in a plain run); after it,
//! a signal only ends the wait, and a last look at everything runs to its end so what was
//! written before the signal goes out; every wake's records are flushed at once, however few;
//! roots are watched again after every wake (a root may appear: a first archive folder, a new
//! project's store).
//!
//! Transcripts are not logs: Claude Code rewrites a session
//! file in place on resume and compaction, so a byte offset alone would re-ship lines or skip new
//! ones. A [`FileTail`] keeps its offset *and* a hash of the last line it consumed; when the file
//! shrank, was replaced (another inode), or the bytes before the offset changed, it reads the
//! file again from the start and passes on only lines it has not passed on before (by a hash of
//! each line's bytes). A last line without its newline is held until the newline arrives.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::fs::File;
use std::hash::Hasher;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ndjson::Line;

/// The flags of every reader that can follow (`claude-read`, `codex-read`, `opencode-read`).
#[derive(Debug, Clone, clap::Args)]
pub struct FollowArgs {
    /// After reading what exists, keep watching and write what is added, until SIGINT/SIGTERM.
    #[arg(long)]
    pub follow: bool,

    /// With --follow: how often the sources are looked at when filesystem events are not
    /// available (and the base of the periodic safety rescan when they are), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, requires = "follow",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_interval: u64,

    /// With --follow: do not use filesystem events; poll every --poll-interval (for network
    /// filesystems and container volumes where inotify does not work).
    #[arg(long, requires = "follow")]
    pub poll: bool,
}

/// The flag SIGINT and SIGTERM set: a following reader stops watching, passes on what it has
/// read, and exits 0 (the stages downstream then see the end of their input and drain).
pub fn stop_on_signals() -> io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}

/// For the stages downstream of a reader (tonbo-map, tonbo-batch, tonbo-post): the first
/// SIGINT/SIGTERM only sets the returned flag, and the stage goes on to the end of its input,
/// which comes soon since the reader upstream stops on the same signal (the whole pipeline gets
/// it from a terminal or a service manager); so what is in the pipe is drained, not lost. A
/// second signal exits at once with status 130: nothing acknowledged is lost then either, since
/// tonbo-post's checkpoint survives any stop.
pub fn drain_on_signals() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())?;
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

/// What a source does for `--follow`; [`follow`] drives it.
pub trait Followed {
    /// The folders and files to watch, asked again after every wake.
    fn roots(&self) -> Vec<PathBuf>;

    /// Reads what exists, as a plain run would, keeping what following needs (positions,
    /// held partial lines). [`Backfill::Stopped`] when a signal cut it short.
    fn backfill(&mut self) -> anyhow::Result<Backfill>;

    /// Told once the backfill is done, with how changes will be noticed (for a note).
    fn backfilled(&mut self, _how: &Watching) {}

    /// Looks at the paths the watcher reported changed.
    fn changed(&mut self, paths: &[PathBuf]) -> anyhow::Result<()>;

    /// Looks at everything again (polling, lost events, or the periodic safety rescan).
    fn rescan(&mut self) -> anyhow::Result<()>;

    /// After SIGINT/SIGTERM: one last look at everything, run to its end (the stop flag is
    /// set by now; this look must not heed it).
    fn last_look(&mut self) -> anyhow::Result<()>;

    /// Passes on what was read so far (stdout).
    fn flush(&mut self) -> anyhow::Result<()>;
}

/// How a backfill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backfill {
    Done,
    /// A signal stopped it before the end: no following, no last look.
    Stopped,
}

/// How a following reader notices changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watching {
    Events,
    Polling(Duration),
}

impl std::fmt::Display for Watching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Watching::Events => f.write_str("filesystem events"),
            Watching::Polling(every) => write!(f, "polling every {} ms", every.as_millis()),
        }
    }
}

/// Backfills `source`, then follows it until `stop` is set (SIGINT/SIGTERM), by the rules in
/// the module's doc. Errors end the run (writing stdout or the rejects file); unreadable input
/// is the source's to report and retry.
pub fn follow(
    source: &mut dyn Followed,
    args: &FollowArgs,
    stage: &'static str,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let interval = Duration::from_millis(args.poll_interval);
    let mut watcher = Watcher::new(&source.roots(), interval, args.poll, stage);
    let backfill = source.backfill()?;
    source.flush()?;
    if backfill == Backfill::Stopped {
        return Ok(());
    }
    source.backfilled(&if watcher.has_events() {
        Watching::Events
    } else {
        Watching::Polling(interval)
    });
    loop {
        watcher.watch(&source.roots());
        let wake = watcher.wait(stop);
        if wake != Wake::Stop {
            // A root made since is watched before it is walked, so nothing written into it
            // between the walk and the next watch is missed.
            watcher.watch(&source.roots());
        }
        match &wake {
            Wake::Paths(paths) => source.changed(paths)?,
            Wake::Rescan => source.rescan()?,
            Wake::Stop => source.last_look()?,
        }
        source.flush()?;
        if wake == Wake::Stop {
            return Ok(());
        }
    }
}

fn line_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// What one [`FileTail::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// Nothing new (a partial last line may still be waiting for its newline).
    Unchanged,
    /// New complete lines were passed on.
    Appended { lines: u64 },
    /// The file was rewritten, truncated or replaced, and read again from the start: `lines`
    /// were new and passed on, `repeated` had been passed on before and were not.
    Rewritten { lines: u64, repeated: u64 },
    /// The file is gone (deleted or renamed away); the tail can be dropped.
    Gone,
}

/// One file being followed. It holds no open file between polls, so a deleted file is released
/// at once and a process can follow many files.
#[derive(Debug)]
pub struct FileTail {
    pub path: PathBuf,
    /// (device, inode) when last read: another pair means the file was replaced.
    id: Option<(u64, u64)>,
    /// Bytes consumed: the end of the last complete line.
    offset: u64,
    /// Physical lines consumed (blank ones included), for provenance line numbers.
    line_no: u64,
    /// Start offset and hash (with its newline) of the last complete line consumed.
    last: Option<(u64, u64)>,
    /// Hashes of every line passed on, to recognise them when a rewrite is read again.
    seen: HashSet<u64>,
    /// A rewrite was seen and no new line has come since: lines passed on before are still
    /// being written back (a rewrite caught half-way, or truncated first and written after).
    recovering: bool,
}

impl FileTail {
    pub fn new(path: PathBuf) -> FileTail {
        FileTail {
            path,
            id: None,
            offset: 0,
            line_no: 0,
            last: None,
            seen: HashSet::new(),
            recovering: false,
        }
    }

    /// Bytes of the file consumed so far (complete lines only).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads what is new since the last poll and passes each complete, non-blank line (without
    /// its line ending) to `on_line`. An error from `on_line` stops the poll and is returned;
    /// the line it was given counts as passed on.
    pub fn poll<E: From<io::Error>>(
        &mut self,
        mut on_line: impl FnMut(&Line) -> Result<(), E>,
    ) -> Result<Polled, E> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Polled::Gone),
            Err(e) => return Err(with_path(e, &self.path).into()),
        };
        let meta = file.metadata().map_err(|e| with_path(e, &self.path))?;
        let id = file_id(&meta);
        let len = meta.len();
        let rewritten = (self.id.is_some() && self.id != id)
            || len < self.offset
            || match self.last {
                Some((start, hash)) => {
                    let mut buf = vec![0u8; (self.offset - start) as usize];
                    file.seek(SeekFrom::Start(start))
                        .and_then(|_| file.read_exact(&mut buf))
                        .map_err(|e| with_path(e, &self.path))?;
                    line_hash(&buf) != hash
                }
                None => false,
            };
        self.id = id;
        if rewritten {
            self.offset = 0;
            self.line_no = 0;
            self.last = None;
            self.recovering = true;
        }
        if len == self.offset && !rewritten {
            return Ok(Polled::Unchanged);
        }
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| with_path(e, &self.path))?;
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let mut buf = Vec::new();
        let (mut lines, mut repeated) = (0u64, 0u64);
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| with_path(e, &self.path))?;
            if n == 0 || buf.last() != Some(&b'\n') {
                // End of file, or a partial line: held until its newline is written.
                break;
            }
            let start = self.offset;
            self.offset += n as u64;
            self.line_no += 1;
            self.last = Some((start, line_hash(&buf)));
            let mut end = buf.len() - 1;
            if end > 0 && buf[end - 1] == b'\r' {
                end -= 1;
            }
            let bytes = &buf[..end];
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let hash = line_hash(bytes);
            if !self.seen.insert(hash) && self.recovering {
                repeated += 1;
                continue;
            }
            self.recovering = false;
            lines += 1;
            on_line(&Line {
                number: self.line_no,
                bytes,
                terminated: true,
            })?;
        }
        Ok(match (rewritten || repeated > 0, lines) {
            (true, _) => Polled::Rewritten { lines, repeated },
            (false, 0) => Polled::Unchanged,
            (false, lines) => Polled::Appended { lines },
        })
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
}

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Why [`Watcher::wait`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// These paths changed (files or folders, as the filesystem reported them).
    Paths(Vec<PathBuf>),
    /// Look at everything: the poll interval passed (polling), events may have been lost, or
    /// the periodic safety rescan is due.
    Rescan,
    /// SIGINT or SIGTERM: stop following.
    Stop,
}

/// Wakes a following reader when something under its roots changes: filesystem events (the
/// `notify` crate) where they work, else polling every `interval`. With events, a full rescan
/// still comes every `SAFETY_RESCANS` intervals, in case an event was missed.
pub struct Watcher {
    events: Option<(
        notify::RecommendedWatcher,
        Receiver<notify::Result<notify::Event>>,
    )>,
    watched: Vec<PathBuf>,
    interval: Duration,
    last_rescan: Instant,
    stage: &'static str,
}

/// With filesystem events, a full rescan every this many poll intervals anyway.
const SAFETY_RESCANS: u32 = 10;
/// How often a waiting watcher looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

impl Watcher {
    /// Watches `roots` (recursively) by filesystem events, or polls every `interval` when
    /// `poll` is set or events cannot be had (a note on stderr says so).
    pub fn new(roots: &[PathBuf], interval: Duration, poll: bool, stage: &'static str) -> Watcher {
        let mut w = Watcher {
            events: None,
            watched: Vec::new(),
            interval,
            last_rescan: Instant::now(),
            stage,
        };
        if !poll {
            let (tx, rx) = std::sync::mpsc::channel();
            match notify::recommended_watcher(tx) {
                Ok(watcher) => w.events = Some((watcher, rx)),
                Err(e) => crate::note!(
                    "{stage}: note: no filesystem events ({e}); polling every {:?}",
                    interval
                ),
            }
        }
        w.watch(roots);
        w
    }

    /// True when changes arrive as filesystem events rather than by polling.
    pub fn has_events(&self) -> bool {
        self.events.is_some()
    }

    /// Starts watching the roots not watched yet (a root may appear after the start).
    pub fn watch(&mut self, roots: &[PathBuf]) {
        use notify::Watcher as _;
        let Some((watcher, _)) = self.events.as_mut() else {
            return;
        };
        for root in roots {
            if self.watched.contains(root) || !root.exists() {
                continue;
            }
            match watcher.watch(root, notify::RecursiveMode::Recursive) {
                Ok(()) => self.watched.push(root.clone()),
                Err(e) => {
                    crate::note!(
                        "{}: note: cannot watch {} ({e}); polling every {:?}",
                        self.stage,
                        root.display(),
                        self.interval
                    );
                    self.events = None;
                    return;
                }
            }
        }
    }

    /// Waits for a change, the next poll, or the stop flag.
    pub fn wait(&mut self, stop: &AtomicBool) -> Wake {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Wake::Stop;
            }
            let due = match &self.events {
                Some(_) => self.interval * SAFETY_RESCANS,
                None => self.interval,
            };
            let left = due.saturating_sub(self.last_rescan.elapsed());
            if left.is_zero() {
                self.last_rescan = Instant::now();
                return Wake::Rescan;
            }
            let Some((_, rx)) = &self.events else {
                std::thread::sleep(left.min(STOP_CHECK));
                continue;
            };
            match rx.recv_timeout(left.min(STOP_CHECK)) {
                Ok(first) => {
                    let mut paths = Vec::new();
                    let mut rescan = false;
                    let mut take = |ev: notify::Result<notify::Event>| match ev {
                        Ok(ev) if !ev.need_rescan() => {
                            if !matches!(ev.kind, notify::EventKind::Access(_)) {
                                paths.extend(ev.paths)
                            }
                        }
                        _ => rescan = true,
                    };
                    take(first);
                    while let Ok(ev) = rx.try_recv() {
                        take(ev);
                    }
                    if rescan {
                        self.last_rescan = Instant::now();
                        return Wake::Rescan;
                    }
                    if paths.is_empty() {
                        continue;
                    }
                    paths.sort();
                    paths.dedup();
                    return Wake::Paths(paths);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    crate::note!(
                        "{}: note: filesystem events stopped; polling every {:?}",
                        self.stage,
                        self.interval
                    );
                    self.events = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that logs what the driver asked of it, and sets the stop flag at its second
    /// rescan.
    struct Log<'a> {
        calls: Vec<String>,
        backfill: Backfill,
        stop: &'a AtomicBool,
        root: PathBuf,
    }

    impl Followed for Log<'_> {
        fn roots(&self) -> Vec<PathBuf> {
            vec![self.root.clone()]
        }
        fn backfill(&mut self) -> anyhow::Result<Backfill> {
            self.calls.push("backfill".into());
            Ok(self.backfill)
        }
        fn backfilled(&mut self, how: &Watching) {
            self.calls.push(format!("following ({how})"));
        }
        fn changed(&mut self, _: &[PathBuf]) -> anyhow::Result<()> {
            self.calls.push("changed".into());
            Ok(())
        }
        fn rescan(&mut self) -> anyhow::Result<()> {
            self.calls.push("rescan".into());
            if self.calls.iter().filter(|c| *c == "rescan").count() == 2 {
                self.stop.store(true, Ordering::Relaxed);
            }
            Ok(())
        }
        fn last_look(&mut self) -> anyhow::Result<()> {
            self.calls.push("last look".into());
            Ok(())
        }
        fn flush(&mut self) -> anyhow::Result<()> {
            self.calls.push("flush".into());
            Ok(())
        }
    }

    fn drive(backfill: Backfill) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let mut log = Log {
            calls: vec![],
            backfill,
            stop: &stop,
            root: dir.path().to_path_buf(),
        };
        let args = FollowArgs {
            follow: true,
            poll_interval: 10,
            poll: true,
        };
        follow(&mut log, &args, "test", &stop).unwrap();
        log.calls
    }

    #[test]
    fn the_driver_follows_until_stopped_then_looks_last() {
        assert_eq!(
            drive(Backfill::Done),
            [
                "backfill",
                "flush",
                "following (polling every 10 ms)",
                "rescan",
                "flush",
                "rescan",
                "flush",
                "last look",
                "flush"
            ]
        );
    }

    #[test]
    fn a_backfill_cut_short_ends_the_run_without_a_last_look() {
        assert_eq!(drive(Backfill::Stopped), ["backfill", "flush"]);
    }
    use std::io::Write;

    fn poll(t: &mut FileTail) -> (Polled, Vec<(u64, String)>) {
        let mut got = Vec::new();
        let p = t
            .poll::<io::Error>(|l| {
                got.push((l.number, String::from_utf8_lossy(l.bytes).into_owned()));
                Ok(())
            })
            .unwrap();
        (p, got)
    }

    fn append(path: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    /// A file `a.jsonl` in a folder of its own, holding `text`, and its tail, not polled yet.
    fn tail_of(text: &str) -> (tempfile::TempDir, PathBuf, FileTail) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        append(&path, text);
        let tail = FileTail::new(path.clone());
        (dir, path, tail)
    }

    fn rewritten(lines: u64, repeated: u64) -> Polled {
        Polled::Rewritten { lines, repeated }
    }

    #[test]
    fn appended_lines_come_once_and_a_partial_line_waits_for_its_newline() {
        let (_dir, path, mut t) = tail_of("{\"n\":1}\n\n{\"n\":2}\n{\"n\":");
        let (p, got) = poll(&mut t);
        assert_eq!(p, Polled::Appended { lines: 2 });
        assert_eq!(got, vec![(1, "{\"n\":1}".into()), (3, "{\"n\":2}".into())]);
        assert_eq!(poll(&mut t).0, Polled::Unchanged);
        append(&path, "3}\r\n");
        let (p, got) = poll(&mut t);
        assert_eq!(p, Polled::Appended { lines: 1 });
        assert_eq!(got, vec![(4, "{\"n\":3}".into())]);
    }

    #[test]
    fn a_rewrite_in_place_passes_on_only_the_new_lines() {
        let (_dir, path, mut t) = tail_of("one\ntwo\nthree\n");
        assert_eq!(poll(&mut t).1.len(), 3);
        // Compaction: lines vanish, the same length or longer, and new ones are added.
        std::fs::write(&path, "one\nthree\nfour\nfive!\n").unwrap();
        let (p, got) = poll(&mut t);
        assert_eq!(p, rewritten(2, 2));
        assert_eq!(got, vec![(3, "four".into()), (4, "five!".into())]);
        // Truncated to less than was read, then grown again.
        std::fs::write(&path, "one\n").unwrap();
        assert_eq!(poll(&mut t).0, rewritten(0, 1));
        append(&path, "six\n");
        assert_eq!(poll(&mut t).1, vec![(2, "six".into())]);
    }

    #[test]
    fn a_rewrite_seen_half_way_still_passes_on_each_line_once() {
        let (_dir, path, mut t) = tail_of("one\ntwo\nthree\n");
        poll(&mut t);
        // Truncated first (as `fs::write` does), polled empty, then written back in two parts.
        std::fs::write(&path, "").unwrap();
        assert_eq!(poll(&mut t).0, rewritten(0, 0));
        append(&path, "one\n");
        assert_eq!(poll(&mut t).1, vec![]);
        append(&path, "three\nfour\none\n");
        // After the first new line the file is appended to as usual again: a line equal to an
        // earlier one is a new line.
        assert_eq!(poll(&mut t).1, vec![(3, "four".into()), (4, "one".into())]);
    }

    #[test]
    fn a_replaced_file_is_read_again_and_a_deleted_one_is_gone() {
        let (dir, path, mut t) = tail_of("one\ntwo\n");
        poll(&mut t);
        let tmp = dir.path().join("a.tmp");
        std::fs::write(&tmp, "one\ntwo\nthree\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let (p, got) = poll(&mut t);
        assert_eq!(p, rewritten(1, 2));
        assert_eq!(got, vec![(3, "three".into())]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(poll(&mut t).0, Polled::Gone);
    }

    #[test]
    fn the_watcher_wakes_on_a_write_and_on_stop() {
        let dir = tempfile::tempdir().unwrap();
        let roots = vec![dir.path().to_path_buf()];
        let stop = AtomicBool::new(false);
        let mut w = Watcher::new(&roots, Duration::from_secs(30), false, "test");
        if w.has_events() {
            append(&dir.path().join("x.jsonl"), "1\n");
            match w.wait(&stop) {
                Wake::Paths(p) => assert!(p.iter().any(|p| p.ends_with("x.jsonl")), "{p:?}"),
                other => panic!("expected paths, got {other:?}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert_eq!(w.wait(&stop), Wake::Stop);
        let mut polling = Watcher::new(&roots, Duration::from_millis(10), true, "test");
        assert!(!polling.has_events());
        assert_eq!(polling.wait(&AtomicBool::new(false)), Wake::Rescan);
    }
}
