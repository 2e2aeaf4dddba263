//! `claude-read --follow`: the [`Followed`] side of Claude Code, driven by
//! [`tonbo_core::follow::follow`] (whose doc states the loop's rules): backfill the roots, then
//! write what Claude Code adds, until SIGINT/SIGTERM.
//!
//! The backfill walks the roots exactly as a plain run does (same classification and order), but
//! reads each transcript through a [`FileTail`], so afterwards every file's position is known
//! and a final line still without its newline is held rather than read. Then, on each wake:
//! * changed paths: the transcripts among them are polled; a path that is not a followed
//!   transcript (a new file or folder) makes the roots be walked again, and what is new is read
//!   from its start, classified and ordered as in a backfill;
//! * a rescan (polling, or the periodic safety rescan): walk again and poll everything;
//! * the last look after a signal: the same, so whatever was written before the signal goes
//!   out; then [`follow`] says what is held, and the caller prints the summary.
//!
//! Claude Code rewrites a session file in place on compaction and resume (lines vanish, kept
//! lines stay, new ones follow): the tail notices and passes on only lines it has not passed on
//! before. A deleted file is dropped (its tail released); if the name comes back, it is a new
//! file and is read from its start.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use tonbo_core::follow::{Backfill, FileTail, FollowArgs, Followed, Polled};

use crate::files::{
    absolute, agent_of_meta, classify, resolve_root, Found, FoundKind, Kind, WalkErrors,
};
use crate::read::{
    flat_agent_scan, flat_fallback, FlatSession, MetaRead, Reader, STOP_CHECK_LINES,
};
use crate::STAGE;

/// What following adds to the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FollowStats {
    /// Files found rewritten in place, truncated or replaced.
    pub rewrites: u64,
    /// Legacy flat agent files still without a session id at exit, their lines not read.
    pub held_agent_files: u64,
}

impl FollowStats {
    /// What is appended to the reader's summary line.
    pub fn summary_suffix(&self) -> String {
        let mut s = format!(", {} rewrites", self.rewrites);
        if self.held_agent_files > 0 {
            s.push_str(&format!(
                ", {} legacy agent files held (no sessionId yet)",
                self.held_agent_files
            ));
        }
        s
    }
}

/// The meta record of a followed subagent transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    /// Not there yet: looked for again whenever the agent is polled.
    Absent,
    /// There but not JSON yet (being written): looked at again, rejected at exit if still so.
    Torn,
    /// Written, rejected or reported: done.
    Done,
}

/// What a followed transcript is.
enum What {
    Main {
        session: String,
    },
    Subagent {
        session: String,
        agent_id: String,
        meta: Meta,
    },
    /// A legacy flat agent file: its session id comes from its lines. Until one names it (and
    /// while the file is shorter than the lines a plain run searches), nothing is read, so no
    /// record goes out with a fallback id that a later line would change. `scanned` is the
    /// length at the last search, so an unchanged file is not searched again.
    Flat {
        session: Option<String>,
        scanned: Option<u64>,
    },
}

/// A followed transcript.
struct Tailed {
    tail: FileTail,
    /// The path as walked, as provenance and messages name it.
    name: String,
    what: What,
    /// The tail saw a rewrite and no new line since: it is still skipping the lines written
    /// back (`FileTail` keeps doing so across polls, for a rewrite caught half-way), and a poll
    /// that reports more of them is the same rewrite, not another one.
    recovering: bool,
}

/// Whether a followed file's lines can be read yet.
enum Ready {
    Yes,
    /// A legacy flat agent file with no session id yet.
    NotYet,
    /// The file is gone: let it go.
    Gone,
}

impl Tailed {
    /// Gets the file ready to be read: a subagent's meta record goes out just before its lines,
    /// if the meta file is there by then (if it comes later, its record goes out when it does);
    /// a legacy flat agent file needs a line naming its session.
    fn ready(&mut self, reader: &mut Reader) -> Result<Ready> {
        match &mut self.what {
            What::Main { .. }
            | What::Subagent {
                meta: Meta::Done, ..
            } => Ok(Ready::Yes),
            What::Subagent {
                session,
                agent_id,
                meta,
            } => {
                *meta = match reader.read_meta(&self.tail.path, session, agent_id, true)? {
                    MetaRead::Absent => Meta::Absent,
                    MetaRead::Torn => Meta::Torn,
                    MetaRead::Done => Meta::Done,
                };
                Ok(Ready::Yes)
            }
            What::Flat {
                session: Some(_), ..
            } => Ok(Ready::Yes),
            What::Flat { session, scanned } => {
                let len = match fs::metadata(&self.tail.path) {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ready::Gone),
                    Err(e) => {
                        let msg = format!("cannot read {}: {e}", self.name);
                        reader.unreadable(&self.tail.path, msg);
                        return Ok(Ready::NotYet);
                    }
                };
                if *scanned == Some(len) {
                    return Ok(Ready::NotYet);
                }
                *scanned = Some(len);
                // The same rule as a plain run, but a file too short for it to be final waits
                // for more lines.
                *session = match flat_agent_scan(&self.tail.path) {
                    FlatSession::Found(id) => Some(id),
                    FlatSession::None => Some(flat_fallback(&self.tail.path)),
                    FlatSession::NotYet => return Ok(Ready::NotYet),
                };
                Ok(Ready::Yes)
            }
        }
    }

    /// Writes the file's new lines as records. With `stop` (during the backfill), a signal
    /// stops it at the next record boundary.
    fn read_new(
        &mut self,
        reader: &mut Reader,
        stop: Option<&AtomicBool>,
    ) -> Result<Polled, PollError> {
        let session = match &self.what {
            What::Main { session } | What::Subagent { session, .. } => session,
            What::Flat {
                session: Some(session),
                ..
            } => session,
            What::Flat { session: None, .. } => return Ok(Polled::Unchanged),
        };
        let name = &self.name;
        let mut n = 0u64;
        self.tail.poll(|line| {
            reader
                .emit_line(name, session, line)
                .map_err(PollError::Fatal)?;
            n += 1;
            if n.is_multiple_of(STOP_CHECK_LINES) && stop.is_some_and(|s| s.load(Ordering::Relaxed))
            {
                return Err(PollError::Stopped);
            }
            Ok(())
        })
    }
}

/// Why a poll of one file stopped early.
enum PollError {
    /// Reading the file failed (reported; the other files go on).
    Read(io::Error),
    /// Writing stdout or the rejects file failed: the run ends.
    Fatal(anyhow::Error),
    /// SIGINT/SIGTERM during the backfill.
    Stopped,
}

impl From<io::Error> for PollError {
    fn from(e: io::Error) -> Self {
        PollError::Read(e)
    }
}

/// What a changed path that is not a followed file may be.
enum Unknown {
    Folder,
    Transcript,
    Nothing,
}

/// How long after a new folder is reported it is walked again (see [`Follower::changed`]).
const NEW_FOLDER_SETTLE: Duration = Duration::from_millis(100);

/// A file's modification time and length, to tell whether it changed.
type Stamp = (Option<SystemTime>, u64);

/// Follows the transcripts under the given PATHs.
struct Follower<'r, 'a> {
    reader: &'r mut Reader<'a>,
    given: Vec<PathBuf>,
    /// The absolute folder (or file) each PATH stood for at its last walk.
    abs_roots: Vec<PathBuf>,
    quiet_missing_roots: bool,
    /// Followed transcripts by absolute path (what filesystem events name).
    files: BTreeMap<PathBuf, Tailed>,
    /// Transcripts the backfill left out as not modified after `--modified-after`, with their
    /// stamp then: followed (from their start) once they change.
    skipped: HashMap<PathBuf, Stamp>,
    stop: Arc<AtomicBool>,
    /// During the backfill a signal stops at the next record boundary; afterwards it only ends
    /// the wait, and the last sweep runs to its end.
    interruptible: bool,
    /// The backfill ran to its end (files a stopped one left part-read hold no unfinished line).
    read_all: bool,
    stats: FollowStats,
}

/// Reads what exists under `given`, then follows it until `stop` is set (SIGINT/SIGTERM), by
/// `args`; a root that does not exist is watched for quietly with `quiet_missing_roots` (the
/// default roots, which Claude Code makes on its first run), else reported unreadable. Counts go
/// to `reader.stats` and the returned [`FollowStats`]; errors are fatal (writing stdout or the
/// rejects file).
pub fn follow(
    reader: &mut Reader<'_>,
    given: Vec<PathBuf>,
    args: &FollowArgs,
    quiet_missing_roots: bool,
    stop: Arc<AtomicBool>,
) -> Result<FollowStats> {
    // Re-walks and polls would report an unreadable path again and again: once is enough.
    reader.reported.get_or_insert_with(HashSet::new);
    let abs_roots: Vec<PathBuf> = given.iter().map(|g| absolute(&resolve_root(g))).collect();
    let mut f = Follower {
        reader,
        given,
        abs_roots,
        quiet_missing_roots,
        files: BTreeMap::new(),
        skipped: HashMap::new(),
        stop: stop.clone(),
        interruptible: true,
        read_all: false,
        stats: FollowStats::default(),
    };
    tonbo_core::follow::follow(&mut f, args, STAGE, &stop)?;
    f.finish()?;
    Ok(f.stats)
}

impl Followed for Follower<'_, '_> {
    fn roots(&self) -> Vec<PathBuf> {
        self.abs_roots.clone()
    }

    fn backfill(&mut self) -> Result<Backfill> {
        if !self.read_roots()? {
            return Ok(Backfill::Stopped);
        }
        self.interruptible = false;
        self.read_all = true;
        Ok(Backfill::Done)
    }

    fn changed(&mut self, paths: &[PathBuf]) -> Result<()> {
        Follower::changed(self, paths)
    }

    fn rescan(&mut self) -> Result<()> {
        self.sweep()
    }

    fn last_look(&mut self) -> Result<()> {
        self.sweep()
    }

    fn flush(&mut self) -> Result<()> {
        // Every wake's lines go out now, whatever the pace of the writer.
        Ok(self.reader.io.out.flush()?)
    }
}

impl Follower<'_, '_> {
    fn stopped(&self) -> bool {
        self.interruptible && self.stop.load(Ordering::Relaxed)
    }

    /// Reads every root as a plain run would, in its order. False if a signal stopped it.
    fn read_roots(&mut self) -> Result<bool> {
        let modified_after = self.reader.modified_after;
        for i in 0..self.given.len() {
            if self.stopped() {
                return Ok(false);
            }
            let errors = if self.quiet_missing_roots {
                WalkErrors::IgnoreVanished
            } else {
                WalkErrors::All
            };
            let (files, skipped) = (&self.files, &mut self.skipped);
            let mut skipped_old = 0;
            let walk = self.reader.walk(&self.given[i], errors, &mut |abs, entry| {
                // Under two PATHs (one inside the other), a file is followed once.
                if files.contains_key(abs) {
                    return false;
                }
                let Some(after) = modified_after else {
                    return true;
                };
                let stamp = stamp(entry);
                if stamp.0.is_some_and(|t| t <= after) {
                    skipped_old += 1;
                    skipped.insert(abs.to_path_buf(), stamp);
                    return false;
                }
                true
            });
            self.reader.stats.skipped_old += skipped_old;
            self.abs_roots[i] = walk.abs_root;
            for found in walk.files {
                if self.stopped() {
                    return Ok(false);
                }
                if !self.add(found)? {
                    return Ok(false);
                }
                self.reader.io.out.flush()?;
            }
        }
        Ok(true)
    }

    /// Walks every root again (as a backfill orders them) and returns the transcripts found:
    /// those followed already, new ones, and skipped ones that changed since.
    fn rewalk(&mut self) -> Vec<Found> {
        let mut all = Vec::new();
        for i in 0..self.given.len() {
            let (files, skipped) = (&self.files, &mut self.skipped);
            let walk = self.reader.walk(
                &self.given[i],
                WalkErrors::IgnoreVanished,
                &mut |abs, entry| {
                    if files.contains_key(abs) {
                        return true;
                    }
                    // `--modified-after` chose what the backfill read; a file it left out is
                    // followed once it is written to.
                    match skipped.get(abs) {
                        Some(then) if *then == stamp(entry) => false,
                        Some(_) => {
                            skipped.remove(abs);
                            true
                        }
                        None => true,
                    }
                },
            );
            self.abs_roots[i] = walk.abs_root;
            all.extend(walk.files);
        }
        all
    }

    /// Walks again and polls everything: new files are read from their start, followed ones
    /// from where they were, vanished ones dropped.
    fn sweep(&mut self) -> Result<()> {
        let mut walked = HashSet::new();
        for found in self.rewalk() {
            walked.insert(found.abs.clone());
            if self.files.contains_key(&found.abs) {
                self.poll(&found.abs)?;
            } else {
                self.add(found)?;
            }
        }
        // Followed files the walk no longer finds: most likely gone, and polling says so.
        let rest: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|k| !walked.contains(*k))
            .cloned()
            .collect();
        for abs in rest {
            self.poll(&abs)?;
        }
        Ok(())
    }

    /// Handles the paths filesystem events named.
    fn changed(&mut self, paths: &[PathBuf]) -> Result<()> {
        let mut due: BTreeSet<PathBuf> = BTreeSet::new();
        let (mut rewalk, mut new_folder) = (false, false);
        for p in paths {
            if self.files.contains_key(p) {
                due.insert(p.clone());
                continue;
            }
            // The meta file of a followed subagent: its record may be due now.
            if let Some(agent) = agent_of_meta(p).filter(|a| self.files.contains_key(a)) {
                due.insert(agent);
                continue;
            }
            // A folder renamed away or deleted: the files followed under it.
            due.extend(
                self.files
                    .range(p.clone()..)
                    .map(|(k, _)| k)
                    .take_while(|k| k.starts_with(p))
                    .cloned(),
            );
            match self.may_hold_new_transcripts(p) {
                Unknown::Folder => (rewalk, new_folder) = (true, true),
                Unknown::Transcript => rewalk = true,
                Unknown::Nothing => {}
            }
        }
        if rewalk {
            self.pick_up(&mut due)?;
        }
        if new_folder {
            // The watcher reports a new folder before it starts watching it, so a file created
            // in it meanwhile gives no event: walk once more when it surely watches it.
            std::thread::sleep(NEW_FOLDER_SETTLE);
            self.pick_up(&mut due)?;
        }
        for abs in due {
            self.poll(&abs)?;
        }
        Ok(())
    }

    /// Walks again: polls the files of `due` it finds (in walk order, taking them out of
    /// `due`) and reads the new ones.
    fn pick_up(&mut self, due: &mut BTreeSet<PathBuf>) -> Result<()> {
        for found in self.rewalk() {
            if due.remove(&found.abs) {
                self.poll(&found.abs)?;
            } else if !self.files.contains_key(&found.abs) {
                self.add(found)?;
            }
        }
        Ok(())
    }

    /// What `p`, not a followed file, may be: a new transcript or a folder (that may hold
    /// some) under a root. Other files (tool output, meta files, `sessions-index.json`, files
    /// outside the roots' `projects`) do not cost a walk.
    fn may_hold_new_transcripts(&self, p: &Path) -> Unknown {
        let Some(root) = self
            .abs_roots
            .iter()
            .filter(|r| p.starts_with(r))
            .max_by_key(|r| r.as_os_str().len())
        else {
            return Unknown::Nothing;
        };
        let rel = p.strip_prefix(root).unwrap_or(p);
        // Spilled tool output holds no transcript; the walk does not enter it.
        if rel.components().any(|c| c.as_os_str() == "tool-results") {
            return Unknown::Nothing;
        }
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => Unknown::Folder,
            Ok(_) => match classify(p, root) {
                Kind::Main { .. } | Kind::Subagent { .. } | Kind::FlatAgent { .. } => {
                    Unknown::Transcript
                }
                Kind::Internal | Kind::Other => Unknown::Nothing,
            },
            // Gone already: nothing to pick up.
            Err(_) => Unknown::Nothing,
        }
    }

    /// Starts following a transcript found by a walk and reads it. False if a signal stopped
    /// the read.
    fn add(&mut self, found: Found) -> Result<bool> {
        let what = match found.kind {
            FoundKind::Main { session } => {
                self.reader.stats.main_files += 1;
                What::Main { session }
            }
            FoundKind::Subagent { session, agent_id } => {
                self.reader.stats.subagent_files += 1;
                What::Subagent {
                    session,
                    agent_id,
                    meta: Meta::Absent,
                }
            }
            FoundKind::Flat => {
                self.reader.stats.flat_agent_files += 1;
                What::Flat {
                    session: None,
                    scanned: None,
                }
            }
        };
        let name = found.path.display().to_string();
        self.files.insert(
            found.abs.clone(),
            Tailed {
                tail: FileTail::new(found.path),
                name,
                what,
                recovering: false,
            },
        );
        self.poll(&found.abs)
    }

    /// Reads what is new in one followed file. False if a signal stopped the read.
    fn poll(&mut self, abs: &Path) -> Result<bool> {
        let Some(t) = self.files.get_mut(abs) else {
            return Ok(true);
        };
        match t.ready(self.reader)? {
            Ready::Yes => {}
            Ready::NotYet => return Ok(true),
            Ready::Gone => {
                self.files.remove(abs);
                return Ok(true);
            }
        }
        let stop = self.interruptible.then_some(&*self.stop);
        match t.read_new(self.reader, stop) {
            Ok(Polled::Rewritten { lines, .. }) => {
                if !t.recovering {
                    self.stats.rewrites += 1;
                }
                t.recovering = lines == 0;
            }
            Ok(Polled::Appended { .. }) => t.recovering = false,
            Ok(Polled::Gone) => {
                self.files.remove(abs);
            }
            Ok(Polled::Unchanged) => {}
            Err(PollError::Read(e)) => {
                let path = t.tail.path.clone();
                self.reader.unreadable(&path, e);
            }
            Err(PollError::Fatal(e)) => return Err(e),
            Err(PollError::Stopped) => return Ok(false),
        }
        Ok(true)
    }

    /// At exit: a meta file still not JSON is rejected (as a plain run would), and what is held
    /// is said: unfinished last lines, flat agent files without a session id yet. After a
    /// backfill cut short by a signal (`read_all` false) files were left part-read on purpose:
    /// that is not an unfinished line.
    fn finish(&mut self) -> Result<()> {
        let read_all = self.read_all;
        for Tailed {
            tail, name, what, ..
        } in self.files.values_mut()
        {
            match what {
                What::Subagent {
                    session,
                    agent_id,
                    meta: meta @ Meta::Torn,
                } => {
                    self.reader
                        .read_meta(&tail.path, session, agent_id, false)?;
                    *meta = Meta::Done;
                }
                What::Flat { session: None, .. } => {
                    tonbo_core::note!(
                        "{STAGE}: note: {name}: no line names its sessionId yet; its lines were held, not read"
                    );
                    self.stats.held_agent_files += 1;
                    continue;
                }
                _ => {}
            }
            if !read_all {
                continue;
            }
            if let Ok(Some(held)) = held_bytes(&tail.path, tail.offset()) {
                tonbo_core::note!(
                    "{STAGE}: {name}: incomplete last line ({held} bytes after byte {}), not read; a writer may still be appending",
                    tail.offset()
                );
                self.reader.stats.incomplete += 1;
            }
        }
        self.reader.io.out.flush()?;
        Ok(())
    }
}

/// The stamp of a walked file.
fn stamp(entry: &walkdir::DirEntry) -> Stamp {
    match entry.metadata() {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    }
}

/// The length of an unfinished last line held after `offset`, if it holds more than
/// whitespace. Read in chunks: it may be long.
fn held_bytes(path: &Path, offset: u64) -> io::Result<Option<u64>> {
    let mut file = fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = [0u8; 64 * 1024];
    let (mut len, mut blank) = (0u64, true);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        blank &= buf[..n].iter().all(u8::is_ascii_whitespace);
    }
    Ok((!blank).then_some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_held_line_with_content_counts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        fs::write(&p, "{\"n\":1}\n{\"n\":").unwrap();
        assert_eq!(held_bytes(&p, 8).unwrap(), Some(5));
        fs::write(&p, "{\"n\":1}\n  ").unwrap();
        assert_eq!(held_bytes(&p, 8).unwrap(), None);
        assert_eq!(held_bytes(&p, 10).unwrap(), None);
    }
}
