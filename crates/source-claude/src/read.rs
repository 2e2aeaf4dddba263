//! claude-read: finds Claude Code transcript files and streams their lines as source records.
//!
//! The layout rules are those of this crate's FORMAT.md (the §1.x numbers below name the sections
//! of the format research it condenses):
//!
//! ```text
//! projects/                                  a root (§1.1)
//!   <encoded-cwd>/                           a project folder; never decoded (§1.1)
//!     <session>.jsonl                        main transcript, session id = stem
//!     <session>/subagents/agent-<id>.jsonl   subagent transcript, session id = <session> (§1.9)
//!     <session>/subagents/agent-<id>.meta.json        its optional meta file
//!     <session>/subagents/workflows/<wf>/agent-<id>.jsonl   the same, one level deeper
//!     <session>/subagents/agent-acompact-*.jsonl      internal, skipped (§1.1, §1.9)
//!     <session>/tool-results/...             spilled tool output, skipped (§1.1)
//!     agent-<id>.jsonl                       legacy flat subagent file; session id = its lines'
//!                                            `sessionId` (§1.1, §1.2)
//! ```
//!
//! Emission order, per project folder in sorted order: each session's main file, then that
//! session's subagent files (each preceded by its meta record), then the flat agent files.
//! Every file is read line by line ([`tonbo_core::LineReader`]), so memory stays flat whatever the
//! file size, and each line goes out as the `record` of a source record byte for byte.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tonbo_core::contract::check_session_id;
use tonbo_core::ndjson::Line;
use tonbo_core::{Input, Output, Rejects, WIRE_VERSION};
use walkdir::WalkDir;



pub const STAGE: &str = "claude-read";
pub const SOURCE: &str = "claude-code";

/// How many lines of a flat `agent-*.jsonl` are searched for its `sessionId`.
const FLAT_AGENT_SCAN_LINES: u64 = 1000;
/// A `.meta.json` is read whole (it is a small object); anything larger is rejected, not read.
const MAX_META_BYTES: u64 = 16 << 20;

// ---------------------------------------------------------------------------------------------
// Roots

/// The projects folders to read when no PATH is given: `<dir>/projects` for each dir of the
/// comma-separated `CLAUDE_CONFIG_DIR`, else `~/.claude/projects` and `~/.config/claude/projects`
/// (§1.1). Existence is not checked here.
pub fn default_roots(config_dirs: Option<&OsStr>, home: Option<&Path>) -> Vec<PathBuf> {
    match config_dirs.filter(|v| !v.is_empty()) {
        Some(dirs) => dirs
            .to_string_lossy()
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join("projects"))
            .collect(),
        None => home
            .map(|h| {
                vec![
                    h.join(".claude").join("projects"),
                    h.join(".config").join("claude").join("projects"),
                ]
            })
            .unwrap_or_default(),
    }
}

/// [`default_roots`] from this process's `CLAUDE_CONFIG_DIR` and `HOME`.
pub fn env_default_roots() -> Vec<PathBuf> {
    let config = std::env::var_os("CLAUDE_CONFIG_DIR");
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    default_roots(config.as_deref(), home.as_deref())
}

/// The default roots that exist, with a note on stderr about those that do not: each missing
/// `CLAUDE_CONFIG_DIR` entry is named; the built-in defaults only when none of them exists.
/// Finding nothing is not an error: there is just nothing to read.
pub fn existing_default_roots() -> Vec<PathBuf> {
    let config = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|v| !v.is_empty());
    let candidates = env_default_roots();
    let (mut found, missing): (Vec<PathBuf>, Vec<PathBuf>) =
        candidates.into_iter().partition(|p| p.is_dir());
    // The same folder twice (`~/.config/claude` linked to `~/.claude`, or a dir listed twice)
    // would send every line twice; read it once.
    let mut seen = Vec::new();
    found.retain(|p| {
        let canon = p.canonicalize().unwrap_or_else(|_| p.clone());
        let new = !seen.contains(&canon);
        seen.push(canon);
        new
    });
    if config.is_some() {
        for m in &missing {
            tonbo_core::note!(
                "{STAGE}: note: {} (from CLAUDE_CONFIG_DIR) does not exist; nothing read there",
                m.display()
            );
        }
    } else if found.is_empty() {
        let looked: Vec<String> = missing.iter().map(|m| m.display().to_string()).collect();
        tonbo_core::note!(
            "{STAGE}: note: no Claude Code projects folder found (looked in: {}); nothing to read",
            if looked.is_empty() {
                "nowhere, HOME is not set".to_string()
            } else {
                looked.join(", ")
            }
        );
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Classification

/// What a file is, by its name and position (§1.1, §1.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `<project>/<session>.jsonl`: session id = the stem.
    Main { session: String },
    /// `<session>/subagents/**/agent-<id>.jsonl`: session id = the folder that holds `subagents`.
    Subagent {
        session: String,
        agent_id: String,
        /// The `<session>` folder; its parent is the project folder.
        session_dir: PathBuf,
    },
    /// Legacy `<project>/agent-<id>.jsonl`: the session id is read from its lines.
    FlatAgent { agent_id: String },
    /// `agent-acompact-*.jsonl`, internal to Claude Code (§1.1, §1.9).
    Internal,
    /// Not a transcript (`.json`, `tool-results/`, other names under `subagents/`, ...).
    Other,
}

/// Classifies `file`, found under `root` (both absolute; `root == file` for a file named on the
/// command line). The `subagents` folder that makes a subagent file is looked for among the
/// file's ancestors at or below `root`, or among all of them for a file named on its own, so a
/// folder called `subagents` above a walked root never counts.
pub fn classify(file: &Path, root: &Path) -> Kind {
    let Some(name) = file.file_name() else {
        return Kind::Other;
    };
    let name = name.to_string_lossy();
    let Some(stem) = name.strip_suffix(".jsonl").filter(|s| !s.is_empty()) else {
        return Kind::Other;
    };
    if stem.starts_with("agent-acompact-") {
        return Kind::Internal;
    }
    let agent_id = stem.strip_prefix("agent-");
    let alone = file == root;
    let subagents = file
        .parent()
        .into_iter()
        .flat_map(Path::ancestors)
        .take_while(|a| alone || a.starts_with(root))
        .find(|a| a.file_name() == Some(OsStr::new("subagents")));
    match (subagents, agent_id) {
        (Some(dir), Some(id)) => match dir.parent() {
            Some(session_dir) => match session_dir.file_name() {
                Some(session) => Kind::Subagent {
                    session: session.to_string_lossy().into_owned(),
                    agent_id: id.to_string(),
                    session_dir: session_dir.to_path_buf(),
                },
                None => Kind::Other,
            },
            None => Kind::Other,
        },
        // Anything else under `subagents/` is not a transcript we know.
        (Some(_), None) => Kind::Other,
        (None, Some(id)) => Kind::FlatAgent {
            agent_id: id.to_string(),
        },
        (None, None) => Kind::Main {
            session: stem.to_string(),
        },
    }
}

/// The meta file of an agent transcript: `agent-<id>.jsonl` -> `agent-<id>.meta.json` (§1.1).
pub fn meta_path(agent_file: &Path) -> Option<PathBuf> {
    let stem = agent_file.file_stem()?;
    let mut name = OsString::from(stem);
    name.push(".meta.json");
    Some(agent_file.with_file_name(name))
}

pub use tonbo_core::jsonline::{check_line, compact_json, LineError};
pub use tonbo_core::time::{parse_modified_after, parse_time};

/// The session id of a legacy flat `agent-*.jsonl`, as far as its lines tell yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FlatSession {
    /// The `sessionId` of the first line (of the first [`FLAT_AGENT_SCAN_LINES`]) that has a
    /// usable one (§1.1, §1.2).
    Found(String),
    /// None in the first [`FLAT_AGENT_SCAN_LINES`] lines and the file is longer: the fallback
    /// ([`flat_fallback`]) is final.
    None,
    /// None so far, in a file still shorter than that: a line appended later may have one.
    NotYet,
}

/// Looks for the session id of a legacy flat `agent-*.jsonl` in its lines (§1.1, §1.2).
/// Lines that are not JSON are passed over here; the main read reports them. An unreadable file
/// gives `NotYet`; its read reports it.
pub(crate) fn flat_agent_scan(path: &Path) -> FlatSession {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(rename = "sessionId", default, borrow)]
        session_id: Option<Cow<'a, str>>,
    }
    let Ok(input) = Input::open(path) else {
        return FlatSession::NotYet;
    };
    let mut lines = input.lines();
    while let Ok(Some(line)) = lines.next_line() {
        if line.number > FLAT_AGENT_SCAN_LINES {
            return FlatSession::None;
        }
        if let Ok(Head {
            session_id: Some(id),
        }) = serde_json::from_slice(line.bytes)
        {
            if check_session_id(&id).is_ok() {
                return FlatSession::Found(id.into_owned());
            }
        }
    }
    FlatSession::NotYet
}

/// The session id of a flat agent file whose lines name none: its stem (`agent-<id>`).
pub(crate) fn flat_fallback(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------------------------
// Output

/// A source record as written. Defined here rather than with `tonbo_core::SourceRecord` so the
/// meta record's extra top-level fields (`kind`, `agent_id`) come out in one place; the bytes of
/// an ordinary record are exactly the contract's.
#[derive(Serialize)]
struct OutRecord<'a> {
    v: u64,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    session: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_id: Option<&'a str>,
    record: &'a RawValue,
    provenance: OutProvenance<'a>,
}

#[derive(Serialize)]
struct OutProvenance<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// The reader

/// What a run read, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub main_files: u64,
    pub subagent_files: u64,
    pub flat_agent_files: u64,
    pub meta_files: u64,
    /// Non-blank lines read from transcripts.
    pub lines: u64,
    /// Source records written (lines and meta records).
    pub records: u64,
    /// Torn last lines left unread.
    pub incomplete: u64,
    /// Files and folders that could not be read (each reported on stderr).
    pub unreadable: u64,
    /// Transcripts not modified after `--modified-after`.
    pub skipped_old: u64,
}

impl Stats {
    pub fn files(&self) -> u64 {
        self.main_files + self.subagent_files + self.flat_agent_files
    }

    /// Why nothing was read since `before` (the stats before one PATH was read), or `None` if
    /// a record was written, or if every transcript found was left out by `--modified-after`
    /// (which the summary counts).
    pub fn nothing_read(&self, before: &Stats) -> Option<String> {
        if self.records > before.records {
            return None;
        }
        let files = self.files() - before.files();
        let lines = self.lines - before.lines;
        if files == 0 && self.skipped_old > before.skipped_old {
            return None;
        }
        Some(if files == 0 {
            "no Claude Code transcript (<session>.jsonl, subagents/agent-<id>.jsonl) in it".into()
        } else if lines == 0 {
            format!("its {files} transcripts hold no line")
        } else {
            format!("none of the {lines} lines of its {files} transcripts could be read (incomplete, rejected or unreadable: see above)")
        })
    }

    /// The summary line (without the newline).
    pub fn summary(&self, rejected: u64, modified_after: bool) -> String {
        let mut s = format!(
            "{STAGE}: {} files ({} main, {} subagent, {} legacy agent; {} agent meta), {} lines, {} records, {} incomplete, {} rejected, {} unreadable",
            self.files(),
            self.main_files,
            self.subagent_files,
            self.flat_agent_files,
            self.meta_files,
            self.lines,
            self.records,
            self.incomplete,
            rejected,
            self.unreadable,
        );
        if modified_after {
            s.push_str(&format!(
                ", skipped {} files not modified after --modified-after",
                self.skipped_old
            ));
        }
        s
    }
}

/// What a transcript found by the walk is, with what its records need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FoundKind {
    Main {
        session: String,
    },
    Subagent {
        session: String,
        agent_id: String,
    },
    /// The session id is read from the file's lines when it is read.
    Flat,
}

/// A transcript found by the walk.
pub(crate) struct Found {
    /// The path as given or walked: what provenance and messages name.
    pub(crate) path: PathBuf,
    /// The absolute path it was classified by (one file, one key, whatever root found it).
    pub(crate) abs: PathBuf,
    pub(crate) kind: FoundKind,
}

/// One session of a project: its main file and its subagent files (sorted by path).
#[derive(Default)]
struct SessionFiles {
    main: Option<Found>,
    agents: BTreeMap<PathBuf, Found>,
}

/// One project folder: sessions keyed by main file name (`<session>.jsonl`, so they come in file
/// name order), then the legacy flat agent files.
#[derive(Default)]
struct Project {
    sessions: BTreeMap<OsString, SessionFiles>,
    flat: BTreeMap<PathBuf, Found>,
}

/// The folder a PATH stands for: a folder that holds a `projects` folder is taken as a Claude
/// config dir, and only its `projects` is read (a project folder is never called `projects`:
/// encoded names start with `-`, §1.1), so `claude-read ~/.claude` does not pick up
/// `history.jsonl`.
pub(crate) fn resolve_root(given: &Path) -> PathBuf {
    let config_projects = given.join("projects");
    if given.is_dir() && config_projects.is_dir() {
        config_projects
    } else {
        given.to_path_buf()
    }
}

/// How a walk treats what it cannot read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkErrors {
    /// Report and count everything (a backfill).
    All,
    /// A path that vanished during the walk is passed over silently: a re-walk while following
    /// races with files being deleted, and a deleted file holds nothing to read.
    IgnoreVanished,
}

/// The transcripts under one PATH, in emission order.
pub(crate) struct Walk {
    /// The folder (or file) walked, absolute, as classification and watching need it.
    pub(crate) abs_root: PathBuf,
    pub(crate) files: Vec<Found>,
    /// Where each project folder's files end in `files` (exclusive), in order.
    pub(crate) project_ends: Vec<usize>,
}

/// Reads transcripts into source records on `out`.
pub struct Reader<'a> {
    pub(crate) out: &'a mut Output,
    pub(crate) rejects: &'a mut Rejects,
    pub(crate) modified_after: Option<SystemTime>,
    /// Set by SIGINT/SIGTERM: stop at the next record boundary.
    stop: Option<Arc<AtomicBool>>,
    /// When following, the paths already reported unreadable: each is reported and counted
    /// once, not on every re-walk or poll.
    pub(crate) reported: Option<HashSet<PathBuf>>,
    pub stats: Stats,
    /// `--progress`: the counters its line shows, updated as each line is read.
    pub progress: Option<Arc<tonbo_core::progress::Counters>>,
    /// The `summary` lines of the project being read, waiting for their leaf.
    summaries: Summaries,
}

/// A file's lines between two looks at the stop flag.
pub(crate) const STOP_CHECK_LINES: u64 = 256;

impl<'a> Reader<'a> {
    pub fn new(
        out: &'a mut Output,
        rejects: &'a mut Rejects,
        modified_after: Option<SystemTime>,
    ) -> Self {
        Reader {
            out,
            rejects,
            modified_after,
            stop: None,
            reported: None,
            stats: Stats::default(),
            progress: None,
            summaries: Summaries::default(),
        }
    }

    /// Stops reading at the next record boundary once `stop` is set (by SIGINT/SIGTERM): between
    /// files, and every [`STOP_CHECK_LINES`] lines of a file.
    pub fn stop_on(&mut self, stop: Arc<AtomicBool>) {
        self.stop = Some(stop);
    }

    /// True once the stop flag is set.
    pub fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Reports an unreadable file or folder (`message` follows the stage name) and counts it;
    /// when following, a path already reported is not reported or counted again.
    pub(crate) fn unreadable(&mut self, path: &Path, message: impl std::fmt::Display) {
        if let Some(reported) = &mut self.reported {
            if !reported.insert(path.to_path_buf()) {
                return;
            }
        }
        tonbo_core::note!("{STAGE}: {message}");
        self.stats.unreadable += 1;
    }

    /// Reads one PATH: a root, a project folder, a session's companion folder, or one file
    /// (see [`resolve_root`]).
    ///
    /// Errors are fatal (writing stdout or the rejects file); unreadable input is reported,
    /// counted in [`Stats::unreadable`], and passed over.
    pub fn read_path(&mut self, given: &Path) -> Result<()> {
        let modified_after = self.modified_after;
        let mut skipped_old = 0;
        let walk = self.walk(given, WalkErrors::All, &mut |_, entry| {
            let Some(after) = modified_after else {
                return true;
            };
            let mtime = entry.metadata().ok().and_then(|m| m.modified().ok());
            let old = mtime.is_some_and(|t| t <= after);
            skipped_old += u64::from(old);
            !old
        });
        self.stats.skipped_old += skipped_old;
        let mut start = 0;
        for end in walk.project_ends {
            let project = &walk.files[start..end];
            start = end;
            // Older Claude Code titles a session from another file's head (§1.3, `summary`).
            self.summaries = Summaries::scan(project);
            for found in project {
                if self.stopped() {
                    return Ok(());
                }
                match &found.kind {
                    FoundKind::Main { session } => {
                        self.stats.main_files += 1;
                        self.read_transcript(&found.path, session)?;
                    }
                    FoundKind::Subagent { session, agent_id } => {
                        self.stats.subagent_files += 1;
                        self.read_meta(&found.path, session, agent_id, false)?;
                        self.read_transcript(&found.path, session)?;
                    }
                    FoundKind::Flat => {
                        self.stats.flat_agent_files += 1;
                        let session = match flat_agent_scan(&found.path) {
                            FlatSession::Found(id) => id,
                            FlatSession::NotYet | FlatSession::None => flat_fallback(&found.path),
                        };
                        self.read_transcript(&found.path, &session)?;
                    }
                }
            }
            // Summaries whose leaf is in no file read: kept in their own file's session, as
            // summaries of something else, not as its title.
            for held in std::mem::take(&mut self.summaries).unresolved() {
                self.emit_summary(&held, &held.session, None)?;
            }
        }
        self.out.flush()?;
        Ok(())
    }

    /// Writes a held `summary` line as the record of `session`: `kind` `summary-title` when
    /// that session holds the summary's leaf.
    fn emit_summary(
        &mut self,
        held: &HeldSummary,
        session: &str,
        kind: Option<&str>,
    ) -> Result<()> {
        let Ok(record) = check_line(&held.bytes) else {
            return Ok(());
        };
        self.out.json(&OutRecord {
            v: WIRE_VERSION,
            source: SOURCE,
            kind,
            session,
            agent_id: None,
            record,
            provenance: OutProvenance {
                file: &held.file,
                line: Some(held.line),
            },
        })?;
        self.stats.records += 1;
        Ok(())
    }

    /// Walks one PATH and returns its transcripts in emission order: per project folder in
    /// sorted order, each session's main file, then that session's subagent files, then the
    /// flat agent files. `select` sees every transcript (by its absolute path) and keeps it or
    /// not. Notes on what is passed over go to stderr.
    pub(crate) fn walk(
        &mut self,
        given: &Path,
        errors: WalkErrors,
        select: &mut dyn FnMut(&Path, &walkdir::DirEntry) -> bool,
    ) -> Walk {
        let root = resolve_root(given);
        let abs_root = absolute(&root);
        let mut projects: BTreeMap<PathBuf, Project> = BTreeMap::new();
        let walk = WalkDir::new(&root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            // Spilled tool output (§1.1) holds no transcript.
            .filter_entry(|e| {
                !(e.depth() > 0 && e.file_type().is_dir() && e.file_name() == "tool-results")
            });
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if e.loop_ancestor().is_some() => continue,
                Err(e) => {
                    let path = e.path().unwrap_or(&root).to_path_buf();
                    let vanished = e
                        .io_error()
                        .is_some_and(|io| io.kind() == io::ErrorKind::NotFound);
                    if vanished && errors == WalkErrors::IgnoreVanished {
                        continue;
                    }
                    match e.io_error() {
                        Some(io) => self.unreadable(
                            &path,
                            format_args!("cannot read {}: {io}", path.display()),
                        ),
                        None => self
                            .unreadable(&path, format_args!("cannot read {}: {e}", path.display())),
                    }
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let abs = match entry.path().strip_prefix(&root) {
                Ok(rel) if !rel.as_os_str().is_empty() => abs_root.join(rel),
                _ => abs_root.clone(),
            };
            let kind = classify(&abs, &abs_root);
            if entry.depth() == 0 && matches!(kind, Kind::Other | Kind::Internal) {
                if self
                    .reported
                    .as_mut()
                    .is_none_or(|r| r.insert(entry.path().to_path_buf()))
                {
                    tonbo_core::note!(
                        "{STAGE}: note: {} is not a Claude Code transcript (.jsonl); skipped",
                        entry.path().display()
                    );
                }
                continue;
            }
            if matches!(kind, Kind::Other | Kind::Internal) {
                continue;
            }
            if !select(&abs, &entry) {
                continue;
            }
            let path = entry.path().to_path_buf();
            match kind {
                Kind::Main { session } => {
                    let project = abs.parent().unwrap_or(&abs).to_path_buf();
                    let key = abs.file_name().unwrap_or_default().to_os_string();
                    let files = projects
                        .entry(project)
                        .or_default()
                        .sessions
                        .entry(key)
                        .or_default();
                    files.main = Some(Found {
                        path,
                        abs,
                        kind: FoundKind::Main { session },
                    });
                }
                Kind::Subagent {
                    session,
                    agent_id,
                    session_dir,
                } => {
                    let project = session_dir.parent().unwrap_or(&session_dir).to_path_buf();
                    let mut key = session_dir.file_name().unwrap_or_default().to_os_string();
                    key.push(".jsonl");
                    let files = projects
                        .entry(project)
                        .or_default()
                        .sessions
                        .entry(key)
                        .or_default();
                    files.agents.insert(
                        abs.clone(),
                        Found {
                            path,
                            abs,
                            kind: FoundKind::Subagent { session, agent_id },
                        },
                    );
                }
                Kind::FlatAgent { .. } => {
                    let project = abs.parent().unwrap_or(&abs).to_path_buf();
                    projects.entry(project).or_default().flat.insert(
                        abs.clone(),
                        Found {
                            path,
                            abs,
                            kind: FoundKind::Flat,
                        },
                    );
                }
                Kind::Internal | Kind::Other => unreachable!("filtered above"),
            }
        }

        let mut files = Vec::new();
        let mut project_ends = Vec::new();
        for project in projects.into_values() {
            for session in project.sessions.into_values() {
                files.extend(session.main);
                files.extend(session.agents.into_values());
            }
            files.extend(project.flat.into_values());
            project_ends.push(files.len());
        }
        Walk {
            abs_root,
            files,
            project_ends,
        }
    }

    /// Streams one transcript, line by line.
    fn read_transcript(&mut self, path: &Path, session: &str) -> Result<()> {
        let name = path.display().to_string();
        let mut lines = match Input::open(path) {
            Ok(input) => input.lines(),
            Err(e) => {
                self.unreadable(path, format_args!("{e:#}"));
                return Ok(());
            }
        };
        loop {
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    // The rest of this file is lost; the other files are still read.
                    self.unreadable(path, e);
                    break;
                }
            };
            if self.summaries.holds(path, line.number) {
                // Written where its leaf is (or at the end of the project).
                self.stats.lines += 1;
                continue;
            }
            self.emit_line(&name, session, &line)?;
            if let Some(found) = self.summaries.leaf(line.bytes) {
                for held in found {
                    self.emit_summary(&held, session, Some("summary-title"))?;
                }
            }
            if self.stats.lines.is_multiple_of(STOP_CHECK_LINES) && self.stopped() {
                break;
            }
        }
        self.out.flush()?;
        Ok(())
    }

    /// Writes one transcript line as a source record, or rejects it (file `name`, its line
    /// number and why).
    pub(crate) fn emit_line(&mut self, name: &str, session: &str, line: &Line) -> Result<()> {
        self.stats.lines += 1;
        if let Some(p) = &self.progress {
            use tonbo_core::progress::{R_BYTES, R_RECORDS, R_SCANNED};
            // Stores of what the stats already count, and an add: nothing to measure per line.
            p.set(R_SCANNED, self.stats.files());
            p.set(R_RECORDS, self.stats.records);
            p.add(R_BYTES, line.bytes.len() as u64 + 1);
        }
        match check_line(line.bytes) {
            Ok(record) => {
                self.out.json(&OutRecord {
                    v: WIRE_VERSION,
                    source: SOURCE,
                    kind: None,
                    session,
                    agent_id: None,
                    record,
                    provenance: OutProvenance {
                        file: name,
                        line: Some(line.number),
                    },
                })?;
                self.stats.records += 1;
            }
            // A last line without its newline that does not parse is most likely being
            // written right now (§1.2: "a truncated last line"); the next run reads it whole.
            Err(LineError::NotJson(_)) if !line.terminated => {
                tonbo_core::note!(
                    "{STAGE}: {name}:{}: incomplete last line ({} bytes), not read; a writer may still be appending",
                    line.number,
                    line.bytes.len()
                );
                self.stats.incomplete += 1;
            }
            Err(why) => self
                .rejects
                .reject(name, line.number, &why.to_string(), line.bytes)?,
        }
        Ok(())
    }

    /// Writes the meta record of the subagent transcript `agent`, if its `agent-<id>.meta.json`
    /// exists (§1.1, §1.9). With `defer_torn`, a meta file that is not JSON (yet) is left for a
    /// later look instead of rejected: a follower may see it while it is being written.
    pub(crate) fn read_meta(
        &mut self,
        agent: &Path,
        session: &str,
        agent_id: &str,
        defer_torn: bool,
    ) -> Result<MetaRead> {
        let Some(path) = meta_path(agent) else {
            return Ok(MetaRead::Absent);
        };
        let name = path.display().to_string();
        let mut bytes = Vec::new();
        let read =
            File::open(&path).and_then(|f| f.take(MAX_META_BYTES + 1).read_to_end(&mut bytes));
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(MetaRead::Absent),
            Err(e) => {
                self.unreadable(&path, format_args!("cannot read {name}: {e}"));
                return Ok(MetaRead::Done);
            }
        }
        if bytes.len() as u64 > MAX_META_BYTES {
            self.stats.meta_files += 1;
            let why = format!("meta file larger than {} MiB", MAX_META_BYTES >> 20);
            self.rejects.reject(&name, 1, &why, &[])?;
            return Ok(MetaRead::Done);
        }
        let record = match check_line(&bytes) {
            Ok(raw) => compact_json(raw.get()),
            Err(LineError::NotJson(_)) if defer_torn => return Ok(MetaRead::Torn),
            Err(why) => {
                self.stats.meta_files += 1;
                self.rejects.reject(&name, 1, &why.to_string(), &bytes)?;
                return Ok(MetaRead::Done);
            }
        };
        self.stats.meta_files += 1;
        let record: Box<RawValue> = RawValue::from_string(record)
            .map_err(|e| anyhow::anyhow!("compacting {name} broke its JSON: {e}"))?;
        self.out.json(&OutRecord {
            v: WIRE_VERSION,
            source: SOURCE,
            kind: Some("subagent-meta"),
            session,
            agent_id: Some(agent_id),
            record: &record,
            provenance: OutProvenance {
                file: &name,
                line: None,
            },
        })?;
        self.stats.records += 1;
        Ok(MetaRead::Done)
    }
}

/// A `summary` line held back from its own file's read until the session holding its leaf is
/// read (§1.3: "may sit in a *different* file than its conversation").
#[derive(Debug, Clone)]
pub(crate) struct HeldSummary {
    file: String,
    line: u64,
    /// The session of the file it sits in.
    session: String,
    bytes: Vec<u8>,
}

/// The `summary` lines at the head of a project's session files (older Claude Code writes them
/// there), by the uuid of their leaf: the last line of the conversation they sum up, most often
/// in another file of the project. A line whose uuid is a leaf brings its summaries out as
/// records of that line's session (`kind: "summary-title"`). What no file read holds comes out at
/// the end of the project, in its own file's session and without that kind.
#[derive(Debug, Default)]
pub(crate) struct Summaries {
    pending: HashMap<String, Vec<HeldSummary>>,
    /// `(file, line)` of every held line, skipped when its file is read.
    held: HashSet<(PathBuf, u64)>,
}

impl Summaries {
    /// Reads the leading `summary` lines of each main session file of one project.
    pub(crate) fn scan(project: &[Found]) -> Summaries {
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<Cow<'a, str>>,
            #[serde(rename = "leafUuid", borrow)]
            leaf_uuid: Option<Cow<'a, str>>,
        }
        let mut s = Summaries::default();
        for found in project {
            let FoundKind::Main { session } = &found.kind else {
                continue;
            };
            let Ok(input) = Input::open(&found.path) else {
                continue;
            };
            let mut lines = input.lines();
            while let Ok(Some(line)) = lines.next_line() {
                let Ok(head) = serde_json::from_slice::<Head>(line.bytes) else {
                    break;
                };
                let (Some("summary"), Some(leaf)) = (head.kind.as_deref(), head.leaf_uuid) else {
                    break;
                };
                if !line.terminated {
                    break;
                }
                s.held.insert((found.path.clone(), line.number));
                s.pending
                    .entry(leaf.to_string())
                    .or_default()
                    .push(HeldSummary {
                        file: found.path.display().to_string(),
                        line: line.number,
                        session: session.clone(),
                        bytes: line.bytes.to_vec(),
                    });
            }
        }
        s
    }

    /// Whether line `number` of `path` is a held summary.
    fn holds(&self, path: &Path, number: u64) -> bool {
        !self.held.is_empty() && self.held.contains(&(path.to_path_buf(), number))
    }

    /// The summaries whose leaf is this line (the mapper keeps one of each text); `None` when
    /// there are none.
    fn leaf(&mut self, line: &[u8]) -> Option<Vec<HeldSummary>> {
        if self.pending.is_empty() {
            return None;
        }
        #[derive(Deserialize)]
        struct Uuid<'a> {
            #[serde(borrow)]
            uuid: Option<Cow<'a, str>>,
        }
        let uuid = serde_json::from_slice::<Uuid>(line).ok()?.uuid?;
        self.pending.remove(uuid.as_ref())
    }

    /// What no line read was the leaf of, in file order.
    fn unresolved(self) -> Vec<HeldSummary> {
        let mut all: Vec<HeldSummary> = self.pending.into_values().flatten().collect();
        all.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        all
    }
}

/// What [`Reader::read_meta`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaRead {
    /// No meta file (yet).
    Absent,
    /// Written, rejected, or reported unreadable: nothing more to do.
    Done,
    /// There, but not JSON yet (only with `defer_torn`).
    Torn,
}

/// `path` made absolute without resolving symlinks (names in the tree are what classify a file),
/// except that `..` is resolved, since a name must be taken from the folder it leads to.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if abs.components().any(|c| c == Component::ParentDir) {
        if let Ok(canon) = abs.canonicalize() {
            return canon;
        }
    }
    abs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(file: &str, root: &str) -> Kind {
        classify(Path::new(file), Path::new(root))
    }

    fn main(s: &str) -> Kind {
        Kind::Main { session: s.into() }
    }

    fn sub(s: &str, id: &str, dir: &str) -> Kind {
        Kind::Subagent {
            session: s.into(),
            agent_id: id.into(),
            session_dir: dir.into(),
        }
    }

    #[test]
    fn classifies_a_walked_tree() {
        let r = "/h/.claude/projects";
        assert_eq!(kind("/h/.claude/projects/-p/S1.jsonl", r), main("S1"));
        assert_eq!(
            kind("/h/.claude/projects/-p/S1/subagents/agent-a1.jsonl", r),
            sub("S1", "a1", "/h/.claude/projects/-p/S1")
        );
        assert_eq!(
            kind(
                "/h/.claude/projects/-p/S1/subagents/workflows/w1/agent-b2.jsonl",
                r
            ),
            sub("S1", "b2", "/h/.claude/projects/-p/S1")
        );
        assert_eq!(
            kind("/h/.claude/projects/-p/agent-c3.jsonl", r),
            Kind::FlatAgent {
                agent_id: "c3".into()
            }
        );
        assert_eq!(
            kind(
                "/h/.claude/projects/-p/S1/subagents/agent-acompact-x.jsonl",
                r
            ),
            Kind::Internal
        );
        assert_eq!(
            kind("/h/.claude/projects/-p/agent-acompact-y.jsonl", r),
            Kind::Internal
        );
        for other in [
            "/h/.claude/projects/-p/S1/subagents/agent-a1.meta.json",
            "/h/.claude/projects/-p/S1/subagents/notes.jsonl",
            "/h/.claude/projects/-p/sessions-index.json",
            "/h/.claude/projects/-p/S1.jsonl.bak",
            "/h/.claude/projects/-p/.jsonl",
        ] {
            assert_eq!(kind(other, r), Kind::Other, "{other}");
        }
    }

    #[test]
    fn a_subagents_folder_above_the_root_does_not_count() {
        // Walked from /x/subagents/projects: the outer `subagents` is not part of the tree.
        assert_eq!(
            kind(
                "/x/subagents/projects/-p/agent-c3.jsonl",
                "/x/subagents/projects"
            ),
            Kind::FlatAgent {
                agent_id: "c3".into()
            }
        );
        // Walked from the `subagents` folder itself, or from the companion folder: it counts.
        assert_eq!(
            kind("/p/S1/subagents/agent-a1.jsonl", "/p/S1/subagents"),
            sub("S1", "a1", "/p/S1")
        );
        assert_eq!(
            kind("/p/S1/subagents/agent-a1.jsonl", "/p/S1"),
            sub("S1", "a1", "/p/S1")
        );
    }

    #[test]
    fn classifies_a_file_named_alone_by_its_whole_path() {
        let f = "/h/projects/-p/S1/subagents/agent-a1.jsonl";
        assert_eq!(kind(f, f), sub("S1", "a1", "/h/projects/-p/S1"));
        let f = "/h/projects/-p/S1.jsonl";
        assert_eq!(kind(f, f), main("S1"));
        let f = "/h/projects/-p/agent-c3.jsonl";
        assert_eq!(
            kind(f, f),
            Kind::FlatAgent {
                agent_id: "c3".into()
            }
        );
        let f = "/subagents/agent-a1.jsonl";
        assert_eq!(kind(f, f), Kind::Other);
    }

    #[test]
    fn meta_path_sits_beside_the_agent_file() {
        assert_eq!(
            meta_path(Path::new("p/S/subagents/agent-a1.jsonl")).unwrap(),
            Path::new("p/S/subagents/agent-a1.meta.json")
        );
    }

    #[test]
    fn default_roots_from_env_and_home() {
        assert_eq!(
            default_roots(Some(OsStr::new("/a, /b/c,,")), Some(Path::new("/h"))),
            vec![PathBuf::from("/a/projects"), PathBuf::from("/b/c/projects")]
        );
        assert_eq!(
            default_roots(Some(OsStr::new("")), Some(Path::new("/h"))),
            vec![
                PathBuf::from("/h/.claude/projects"),
                PathBuf::from("/h/.config/claude/projects")
            ]
        );
        assert!(default_roots(None, None).is_empty());
    }

    #[test]
    fn summary_names_every_count() {
        let s = Stats {
            main_files: 2,
            subagent_files: 1,
            flat_agent_files: 1,
            meta_files: 1,
            lines: 10,
            records: 9,
            incomplete: 1,
            unreadable: 0,
            skipped_old: 3,
        };
        assert_eq!(
            s.summary(1, true),
            "claude-read: 4 files (2 main, 1 subagent, 1 legacy agent; 1 agent meta), 10 lines, 9 records, 1 incomplete, 1 rejected, 0 unreadable, skipped 3 files not modified after --modified-after"
        );
        assert!(!s.summary(1, false).contains("modified"));
    }
}
