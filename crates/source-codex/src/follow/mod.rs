//! `--follow`: read what exists, as a plain run does, then keep watching the roots and write what
//! is added, until SIGINT/SIGTERM.
//!
//! Driven by [`tonbo_core::follow::follow`], whose rules hold (watching starts before the
//! backfill; a signal during the backfill ends the run; after it, a last look at everything);
//! tailed with its [`FileTail`]. What is Codex's own:
//!
//! * **Files found later.** Any path the watcher names that no followed file has (a new rollout,
//!   a new `YYYY/MM/DD` folder at midnight), and every periodic rescan, walks the roots again
//!   with the plain run's rules ([`crate::plan`]: `sessions/` wins over `archived_sessions/`,
//!   the plain file over its `.zst`, `--modified-after`).
//! * **Telling a file still being written.** A new rollout may be empty or hold part of its
//!   first line (files are created on the first write). Its format is told only from
//!   complete lines: it waits until the detector answers, or until [`SCAN_LINES`] complete
//!   lines, or until it has been left unchanged for the settle time (then the detector's own
//!   rule for a finished file decides, as a plain run would). Then it is read from line 1.
//! * **JSONL lines** go out as the plain run writes them: the same session, kind, provenance
//!   file and physical line number, byte for byte; a last line without its newline is held
//!   until the newline arrives.
//! * **Rewrites.** [`FileTail`] reads a rewritten or truncated file again and passes on only
//!   lines it has not passed on before, also when the rewrite was caught half-way. Codex
//!   appends to its JSONL files and does not rewrite them, but a user or a tool may.
//! * **V0 documents** are rewritten whole after each item: each version is read again, and
//!   only its new items go out ([`doc`]).
//! * **`.jsonl.zst`** files are finished archives: read once. One that appears while
//!   following is read once it is a whole zstd stream (or has settled). When it replaces a plain
//!   file that was followed (compression) only the lines after those already written are read.
//! * **Moves.** A followed file that is gone, and a file of the same name that appears
//!   elsewhere (archiving moves `sessions/…/x.jsonl` to `archived_sessions/x.jsonl`),
//!   is the same file: it is followed on from where it was, not read again.
//! * **Deleted files** are released (the tail holds no open file).
//! * **Stop.** On SIGINT/SIGTERM every file is looked at once more, and the roots walked, so
//!   that what was written before the signal goes out; then the summary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use tonbo_core::follow::{Backfill, FileTail, FollowArgs, Followed, Polled, Watching};
use tonbo_core::ndjson::Line;

use crate::detect::{Detected, Detector, SCAN_LINES};
use crate::lines::{check_line, open_lines, open_stream};
use crate::read::{Reader, Stopped, CHECK_EVERY};
use crate::record::{emit, At, RecordKind};
use crate::roots::{
    explicit_format, list_root, plan, walked_format, Format, Found, ListNote, Plan, Root,
};
use crate::STAGE;

mod doc;

use doc::DocState;

/// What a follow adds to the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FollowSummary {
    /// Files seen rewritten or truncated (a V0 document: each new version read).
    pub rewrites: u64,
}

/// A file that has not told its format, or a document or `.zst` that is not whole, is decided
/// on what it holds once it has been left unchanged this long: ten poll intervals (the
/// watcher's safety rescan), at least two seconds.
fn settle_time(interval: Duration) -> Duration {
    (interval * 10).max(Duration::from_secs(2))
}

/// Reads the roots, then follows them until the reader's stop flag is set (SIGINT/SIGTERM), by
/// the rules of [`tonbo_core::follow`]; `quiet`: no note when the backfill is done. Errors are
/// fatal (writing stdout or the rejects file); unreadable input is reported once, counted, and
/// looked at again later.
pub fn follow(
    reader: &mut Reader,
    roots: Vec<Root>,
    args: &FollowArgs,
    quiet: bool,
) -> Result<FollowSummary> {
    let stop = reader
        .io
        .stop
        .clone()
        .unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
    let mut f = Follower {
        r: reader,
        roots,
        stop: stop.clone(),
        quiet,
        settle: settle_time(Duration::from_millis(args.poll_interval)),
        files: BTreeMap::new(),
        aliases: HashMap::new(),
        by_key: HashMap::new(),
        gone: HashMap::new(),
        noted: HashSet::new(),
        failing: HashSet::new(),
        rewrites: 0,
    };
    tonbo_core::follow::follow(&mut f, args, STAGE, &stop)?;
    f.report_unfinished();
    Ok(FollowSummary {
        rewrites: f.rewrites,
    })
}

/// A look cut short by SIGINT/SIGTERM is over: the driver's next wait sees the flag and asks for
/// the last look.
fn unless_stopped(looked: Result<()>) -> Result<()> {
    match looked {
        Err(e) if e.is::<Stopped>() => Ok(()),
        other => other,
    }
}

impl Followed for Follower<'_, '_> {
    fn roots(&self) -> Vec<PathBuf> {
        self.roots.iter().map(|r| r.path.clone()).collect()
    }

    fn backfill(&mut self) -> Result<Backfill> {
        match self.scan(Phase::Backfill) {
            Ok(()) => Ok(Backfill::Done),
            Err(e) if e.is::<Stopped>() => Ok(Backfill::Stopped),
            Err(e) => Err(e),
        }
    }

    fn backfilled(&mut self, how: &Watching) {
        if self.quiet {
            return;
        }
        let followed = self
            .files
            .values()
            .filter(|t| !matches!(t.entry, Entry::Done))
            .count();
        tonbo_core::note!("{STAGE}: backfill done; following {followed} files ({how})");
    }

    fn changed(&mut self, paths: &[PathBuf]) -> Result<()> {
        unless_stopped(self.look_at(paths))
    }

    fn rescan(&mut self) -> Result<()> {
        unless_stopped(self.poll_all().and_then(|()| self.scan(Phase::Follow)))
    }

    /// What was written before the signal goes out, by a last look at everything, not cut
    /// short by the flag that is now set.
    fn last_look(&mut self) -> Result<()> {
        self.stop = Arc::new(AtomicBool::new(false));
        let reader_stop = self.r.io.stop.take();
        self.poll_all()?;
        self.scan(Phase::Follow)?;
        self.r.io.stop = reader_stop;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(self.r.io.out.flush()?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading what exists at the start: as a plain run would.
    Backfill,
    /// Reading what changed since: files may be half-written.
    Follow,
}

/// One file the follower knows.
enum Entry {
    /// A JSONL file whose complete lines do not tell its format yet.
    Pending,
    Lines(Box<Tail>),
    Doc(Box<DocState>),
    /// A `.zst` not read yet (not a whole zstd stream yet); `Some` when it replaces a plain
    /// file that was followed.
    Zst(Option<Continued>),
    /// Read once (a `.zst`) or not a session file: not looked at again.
    Done,
}

struct Tracked {
    entry: Entry,
    /// The other spellings of its path in the index (absolute, canonical).
    aliases: Vec<PathBuf>,
}

/// A JSONL file whose format is known, followed line by line.
struct Tail {
    tail: FileTail,
    session: String,
    kind: RecordKind,
    /// The last line passed on (its physical number), where a `.zst` replacing it goes on.
    last_line: u64,
    /// A rewrite was seen and no line has been passed on since: the tail may still be skipping
    /// the lines written back (a rewrite caught half-way), which is not another rewrite.
    recovering: bool,
}

/// Where a plain file that was followed stopped, for the `.zst` that replaces it.
struct Continued {
    session: String,
    kind: RecordKind,
    after: u64,
}

/// What one look at a file decided.
enum Step {
    Keep,
    Become(Entry),
    Gone,
}

/// Why a [`FileTail`] poll stopped early.
enum TailError {
    /// Reading the file failed: reported, and tried again later.
    Read(io::Error),
    /// Writing failed, or a stop: fatal for the run.
    Fatal(anyhow::Error),
}

impl From<io::Error> for TailError {
    fn from(e: io::Error) -> Self {
        TailError::Read(e)
    }
}

/// The UTF-8 BOM a plain run drops from the start of a file (`lines::SkipBom`).
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// The name that makes two files the same session file ([`Found::key`]).
fn key_of(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.strip_suffix(".zst").unwrap_or(&name).to_string()
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Tells a JSONL file's format from its complete lines only: the answer, or the detector
/// still waiting for more lines.
fn prescan_complete(path: &Path) -> io::Result<Result<Detected, Detector>> {
    let mut lines = open_lines(path, false)?;
    let mut detector = Detector::default();
    while let Some(line) = lines.next_line()? {
        if !line.terminated {
            break;
        }
        // The plain run's limit ([`crate::prescan`]).
        if line.number > SCAN_LINES {
            return Ok(Ok(detector.finish()));
        }
        if let Some(answer) = detector.feed(line.number, line.bytes, true) {
            return Ok(Ok(answer));
        }
    }
    Ok(Err(detector))
}

/// True when a `.zst` decodes to its end: not being written any more.
fn zst_whole(path: &Path) -> bool {
    open_stream(path, true)
        .and_then(|mut r| io::copy(&mut r, &mut io::sink()))
        .is_ok()
}

struct Follower<'r, 'a> {
    r: &'r mut Reader<'a>,
    roots: Vec<Root>,
    stop: Arc<AtomicBool>,
    /// `-q`: no note when the backfill is done.
    quiet: bool,
    settle: Duration,
    /// Every file met, by its path as walked (what provenance names).
    files: BTreeMap<PathBuf, Tracked>,
    /// Other spellings of those paths (absolute, canonical), for the watcher's paths.
    aliases: HashMap<PathBuf, PathBuf>,
    /// Paths by [`key_of`], to tell a moved file.
    by_key: HashMap<String, Vec<PathBuf>>,
    /// Files that went away (their path and state), by [`key_of`], in case they come back
    /// under another path.
    gone: HashMap<String, (PathBuf, Entry)>,
    /// Paths whose note (skipped, unreadable, missing) was printed: once each.
    noted: HashSet<PathBuf>,
    /// Files whose read error was reported and counted, until they read again.
    failing: HashSet<PathBuf>,
    rewrites: u64,
}

impl Follower<'_, '_> {
    fn check_stop(&self) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(Stopped.into());
        }
        Ok(())
    }

    /// Walks every root and starts the files not known yet, in the plain run's order.
    fn scan(&mut self, phase: Phase) -> Result<()> {
        let mut listed = Vec::new();
        for root in self.roots.clone() {
            if fs::metadata(&root.path).is_err() {
                // Not there yet: watched for (a Codex home gets its folders lazily).
                continue;
            }
            let (files, notes) = list_root(&root);
            for note in notes {
                let path = match &note {
                    ListNote::WalkError { path, .. } | ListNote::NotSession(path) => path,
                    ListNote::ZstBeside { zst, .. } => zst,
                };
                if self.noted.insert(path.clone()) {
                    self.r.report_list_note(&note);
                }
            }
            listed.push((root.role, files));
        }
        for planned in plan(&listed, self.r.modified_after) {
            match planned {
                Plan::Read(found) => {
                    if self.files.contains_key(&found.path) {
                        continue;
                    }
                    self.check_stop()?;
                    self.start(found, phase)?;
                }
                Plan::Duplicate { found, kept } => {
                    if !self.files.contains_key(&found.path)
                        && self.noted.insert(found.path.clone())
                    {
                        self.r.note_duplicate(&found.path, &kept);
                    }
                }
                Plan::Old(found) => {
                    if !self.files.contains_key(&found.path) && self.noted.insert(found.path) {
                        self.r.stats.skipped_old += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Looks at every file known (a rescan).
    fn poll_all(&mut self) -> Result<()> {
        let paths: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(_, t)| !matches!(t.entry, Entry::Done))
            .map(|(p, _)| p.clone())
            .collect();
        for path in paths {
            self.check_stop()?;
            self.poll(&path, Phase::Follow)?;
        }
        Ok(())
    }

    /// The watcher named these paths: look at the known files among them, and walk again when
    /// one may be a new file or folder, or a known one went away (moved, or replaced by its
    /// `.zst`).
    fn look_at(&mut self, paths: &[PathBuf]) -> Result<()> {
        let mut walk = false;
        for p in paths {
            self.check_stop()?;
            match self.lookup(p) {
                Some(known) => {
                    self.poll(&known, Phase::Follow)?;
                    walk |= !self.files.contains_key(&known);
                }
                None => walk |= self.may_be_new(p),
            }
        }
        if walk {
            self.scan(Phase::Follow)?;
        }
        Ok(())
    }

    fn lookup(&self, p: &Path) -> Option<PathBuf> {
        if self.files.contains_key(p) {
            return Some(p.to_path_buf());
        }
        let spellings = [std::path::absolute(p).ok(), p.canonicalize().ok()];
        spellings
            .into_iter()
            .flatten()
            .find_map(|s| self.aliases.get(&s).cloned())
    }

    /// A folder, a file with a session file's name, or a root.
    fn may_be_new(&self, p: &Path) -> bool {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        p.is_dir()
            || walked_format(&name, false).is_some()
            || explicit_format(&name).is_some()
            || self.roots.iter().any(|r| r.path == p)
    }

    fn insert(&mut self, path: PathBuf, entry: Entry) {
        let mut aliases = Vec::new();
        for s in [std::path::absolute(&path).ok(), path.canonicalize().ok()]
            .into_iter()
            .flatten()
        {
            if s != path && !aliases.contains(&s) {
                self.aliases.insert(s.clone(), path.clone());
                aliases.push(s);
            }
        }
        self.by_key
            .entry(key_of(&path))
            .or_default()
            .push(path.clone());
        self.files.insert(path, Tracked { entry, aliases });
    }

    fn remove(&mut self, path: &Path) -> Option<Entry> {
        let tracked = self.files.remove(path)?;
        for a in &tracked.aliases {
            self.aliases.remove(a);
        }
        if let Some(paths) = self.by_key.get_mut(&key_of(path)) {
            paths.retain(|p| p != path);
        }
        self.failing.remove(path);
        Some(tracked.entry)
    }

    /// What was known of a file of the same name that is gone: it moved here.
    fn take_moved(&mut self, key: &str, path: &Path) -> Option<(PathBuf, Entry)> {
        let vanished = self.by_key.get(key).and_then(|paths| {
            paths
                .iter()
                .find(|p| *p != path && fs::symlink_metadata(p).is_err_and(|e| not_found(&e)))
                .cloned()
        });
        if let Some(old) = vanished {
            let entry = self.remove(&old)?;
            return Some((old, entry));
        }
        self.gone.remove(key)
    }

    /// Starts a file found by a walk, and reads what it holds.
    fn start(&mut self, found: Found, phase: Phase) -> Result<()> {
        let path = found.path.clone();
        let moved = match phase {
            Phase::Backfill => None,
            Phase::Follow => self.take_moved(&found.key(), &path),
        };
        let entry = match (found.format, moved) {
            (Format::Lines, Some((old, Entry::Lines(mut t)))) => {
                self.note_moved(&old, &path);
                t.tail.path = path.clone();
                Entry::Lines(t)
            }
            (Format::Document, Some((old, Entry::Doc(d)))) => {
                self.note_moved(&old, &path);
                Entry::Doc(d)
            }
            (Format::Zst, Some((old, Entry::Lines(t)))) => {
                tonbo_core::note!(
                    "{STAGE}: note: {} replaces {} (compressed); read after its line {}",
                    path.display(),
                    old.display(),
                    t.last_line
                );
                Entry::Zst(Some(Continued {
                    session: t.session,
                    kind: t.kind,
                    after: t.last_line,
                }))
            }
            (Format::Zst, Some((old, entry @ (Entry::Zst(_) | Entry::Done)))) => {
                self.note_moved(&old, &path);
                entry
            }
            (Format::Lines, Some((old, Entry::Done))) => {
                self.note_moved(&old, &path);
                Entry::Done
            }
            (Format::Document, _) => Entry::Doc(Box::default()),
            (Format::Lines, _) => Entry::Pending,
            (Format::Zst, _) => Entry::Zst(None),
        };
        self.insert(path.clone(), entry);
        self.poll(&path, phase)
    }

    fn note_moved(&self, old: &Path, new: &Path) {
        tonbo_core::note!(
            "{STAGE}: note: {} moved to {}; followed on from where it was",
            old.display(),
            new.display()
        );
    }

    /// Reports a file that cannot be read, once until it reads again; counted as failed.
    fn read_error(&mut self, path: &Path, e: &io::Error) {
        if self.failing.insert(path.to_path_buf()) {
            let msg = e.to_string();
            if msg.starts_with("cannot read ") {
                tonbo_core::note!("{STAGE}: {msg}");
            } else {
                tonbo_core::note!("{STAGE}: cannot read {}: {msg}", path.display());
            }
            self.r.stats.failed += 1;
        }
    }

    /// What reading a file gave, or the step to take when it could not be read: gone, or an
    /// error reported (once) and looked at again later.
    fn readable<T>(&mut self, path: &Path, read: io::Result<T>) -> Result<T, Step> {
        read.map_err(|e| {
            if not_found(&e) {
                Step::Gone
            } else {
                self.read_error(path, &e);
                Step::Keep
            }
        })
    }

    /// Looks at one known file and writes what is new in it.
    fn poll(&mut self, path: &Path, phase: Phase) -> Result<()> {
        let Some(tracked) = self.files.get_mut(path) else {
            return Ok(());
        };
        let mut entry = std::mem::replace(&mut tracked.entry, Entry::Done);
        if matches!(entry, Entry::Pending) {
            // `--progress`: a file counts its size once, when first taken up (what is appended
            // later is not added; the records written still count it).
            self.r
                .show_progress(fs::metadata(path).map_or(0, |m| m.len()));
        }
        let step = match &mut entry {
            Entry::Pending => self.poll_pending(path, phase),
            Entry::Lines(t) => self.poll_lines(path, t),
            Entry::Doc(d) => self.poll_doc(path, d, phase),
            Entry::Zst(c) => self.poll_zst(path, c, phase),
            Entry::Done => Ok(Step::Keep),
        };
        let put = |f: &mut Self, e: Entry| {
            if let Some(t) = f.files.get_mut(path) {
                t.entry = e;
            }
        };
        match step {
            Ok(Step::Keep) => put(self, entry),
            Ok(Step::Become(next)) => {
                let read = matches!(next, Entry::Lines(_));
                put(self, next);
                if read {
                    // Told: read it from line 1 now.
                    return self.poll(path, phase);
                }
            }
            Ok(Step::Gone) => self.release(path, entry),
            Err(e) => {
                put(self, entry);
                return Err(e);
            }
        }
        self.r.show_progress(0);
        Ok(())
    }

    /// A file that is gone: forgotten but for a move (see [`Follower::take_moved`]).
    fn release(&mut self, path: &Path, entry: Entry) {
        self.remove(path);
        if matches!(entry, Entry::Pending) {
            return;
        }
        if matches!(entry, Entry::Lines(_) | Entry::Doc(_)) {
            tonbo_core::note!(
                "{STAGE}: note: {} is gone; no longer followed",
                path.display()
            );
        }
        self.gone.insert(key_of(path), (path.to_path_buf(), entry));
    }

    /// True when the file has not been modified for the settle time.
    fn settled(&self, meta: &fs::Metadata) -> bool {
        meta.modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= self.settle)
    }

    fn poll_pending(&mut self, path: &Path, phase: Phase) -> Result<Step> {
        let meta = match self.readable(path, fs::metadata(path)) {
            Ok(m) => m,
            Err(step) => return Ok(step),
        };
        let scanned = match self.readable(path, prescan_complete(path)) {
            Ok(s) => s,
            Err(step) => return Ok(step),
        };
        self.failing.remove(path);
        let detected = match scanned {
            Ok(answer) => answer,
            // Fewer complete lines than it takes: a writer may be adding the rest. A file that
            // was there at the start, or has been left alone since, is decided as a plain run
            // decides it; one with no complete line waits whatever its age (it is reported at
            // the end if it never gets one).
            Err(detector) => {
                if phase == Phase::Follow && !self.settled(&meta) {
                    return Ok(Step::Keep);
                }
                match detector.finish() {
                    Detected::Empty | Detected::Torn { .. } => return Ok(Step::Keep),
                    answer => answer,
                }
            }
        };
        Ok(match self.r.jsonl_session(path, detected)? {
            Some((session, kind)) => Step::Become(Entry::Lines(Box::new(Tail {
                tail: FileTail::new(path.to_path_buf()),
                session,
                kind,
                last_line: 0,
                recovering: false,
            }))),
            // Not a Codex session file: rejected (with file and line), not looked at again.
            None => Step::Become(Entry::Done),
        })
    }

    fn poll_lines(&mut self, path: &Path, t: &mut Tail) -> Result<Step> {
        let name = path.display().to_string();
        let Tail {
            tail,
            session,
            kind,
            last_line,
            recovering,
        } = t;
        let r = &mut *self.r;
        let (out, rejects, stats) = (&mut *r.io.out, &mut *r.io.rejects, &mut r.stats);
        let stop = &self.stop;
        let mut passed = 0u64;
        let polled = tail.poll(|line: &Line| -> Result<(), TailError> {
            *last_line = line.number;
            let bytes = if line.number == 1 {
                strip_bom(line.bytes)
            } else {
                line.bytes
            };
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            stats.lines += 1;
            match check_line(bytes) {
                Ok(record) => {
                    emit(
                        out,
                        *kind,
                        session,
                        record.get(),
                        &name,
                        At::Line(line.number),
                    )
                    .map_err(|e| TailError::Fatal(e.into()))?;
                    stats.records += 1;
                }
                Err(why) => rejects
                    .reject(&name, line.number, &why.to_string(), bytes)
                    .map_err(TailError::Fatal)?,
            }
            passed += 1;
            if passed.is_multiple_of(CHECK_EVERY) && stop.load(Ordering::Relaxed) {
                return Err(TailError::Fatal(Stopped.into()));
            }
            Ok(())
        });
        match polled {
            Ok(polled) => {
                self.failing.remove(path);
                match polled {
                    Polled::Unchanged => {}
                    Polled::Appended { .. } => *recovering = false,
                    Polled::Rewritten { lines, repeated } => {
                        if !*recovering {
                            self.rewrites += 1;
                            tonbo_core::note!(
                                "{STAGE}: note: {name}: rewritten or truncated; read again from the start: {lines} new lines, {repeated} read before and not written again"
                            );
                        }
                        *recovering = lines == 0;
                    }
                    Polled::Gone => return Ok(Step::Gone),
                }
                Ok(Step::Keep)
            }
            Err(TailError::Read(e)) if not_found(&e) => Ok(Step::Gone),
            Err(TailError::Read(e)) => {
                self.read_error(path, &e);
                Ok(Step::Keep)
            }
            Err(TailError::Fatal(e)) => Err(e),
        }
    }

    fn poll_zst(
        &mut self,
        path: &Path,
        continued: &mut Option<Continued>,
        phase: Phase,
    ) -> Result<Step> {
        let meta = match self.readable(path, fs::metadata(path)) {
            Ok(m) => m,
            Err(step) => return Ok(step),
        };
        // One that appears while following may still be being written: read it when whole.
        if phase == Phase::Follow && !self.settled(&meta) && !zst_whole(path) {
            return Ok(Step::Keep);
        }
        // Read once, so read whole: while following, a stop waits for its end (an archive, of
        // bounded size); only the backfill is cut short.
        let reader_stop = match phase {
            Phase::Follow => self.r.io.stop.take(),
            Phase::Backfill => None,
        };
        let read = match continued.take() {
            None => self.r.read_jsonl(path, true),
            Some(c) => {
                self.r.stats.zst_files += 1;
                self.r.stream_lines(path, true, &c.session, c.kind, c.after)
            }
        };
        if reader_stop.is_some() {
            self.r.io.stop = reader_stop;
        }
        read?;
        Ok(Step::Become(Entry::Done))
    }

    /// At the end: what was held back or not told yet, reported and counted as incomplete.
    fn report_unfinished(&mut self) {
        let stats = &mut self.r.stats;
        for (path, t) in &self.files {
            let name = path.display();
            match &t.entry {
                Entry::Pending => {
                    stats.unknown_files += 1;
                    stats.incomplete += 1;
                    tonbo_core::note!(
                        "{STAGE}: {name}: not read: no complete line told its format yet; a writer may still be creating it"
                    );
                }
                Entry::Lines(tail) => {
                    let held = fs::metadata(path)
                        .map(|m| m.len().saturating_sub(tail.tail.offset()))
                        .unwrap_or(0);
                    if held > 0 {
                        stats.incomplete += 1;
                        tonbo_core::note!(
                            "{STAGE}: {name}: incomplete last line ({held} bytes), not read; a writer may still be appending"
                        );
                    }
                }
                Entry::Doc(d) if d.waiting => {
                    if d.kind.is_none() {
                        stats.unknown_files += 1;
                    }
                    stats.incomplete += 1;
                    tonbo_core::note!(
                        "{STAGE}: {name}: its latest version is not whole JSON (a rewrite under way); not read"
                    );
                }
                Entry::Zst(_) => {
                    stats.incomplete += 1;
                    tonbo_core::note!("{STAGE}: {name}: not read: not a whole zstd stream yet");
                }
                Entry::Doc(_) | Entry::Done => {}
            }
        }
    }
}
