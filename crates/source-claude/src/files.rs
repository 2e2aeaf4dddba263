//! Where Claude Code keeps its transcripts, and what each file is (FORMAT.md, "Files"):
//!
//! ```text
//! projects/                                  a root
//!   <encoded-cwd>/                           a project folder; its name is never decoded
//!     <session>.jsonl                        main transcript, session id = stem
//!     <session>/subagents/agent-<id>.jsonl   subagent transcript, session id = <session>
//!     <session>/subagents/agent-<id>.meta.json        its optional meta file
//!     <session>/subagents/workflows/<wf>/agent-<id>.jsonl   the same, one level deeper
//!     <session>/subagents/agent-acompact-*.jsonl      internal, skipped
//!     <session>/tool-results/...             spilled tool output, skipped
//!     agent-<id>.jsonl                       legacy flat subagent file; session id = its lines'
//!                                            `sessionId`
//! ```
//!
//! A walk gives the transcripts under one PATH in the order they are written out: per project
//! folder in sorted order, each session's main file, then that session's subagent files, then
//! the flat agent files.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

use tonbo_core::reader::note_none_found;
use walkdir::WalkDir;

use crate::read::Reader;
use crate::record::agent_id_of;
use crate::STAGE;

// ---------------------------------------------------------------------------------------------
// Roots

/// The projects folders to read when no PATH is given: `<dir>/projects` for each dir of the
/// comma-separated `CLAUDE_CONFIG_DIR`, else `~/.claude/projects` and `~/.config/claude/projects`.
/// Existence is not checked here.
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
        note_none_found(STAGE, "Claude Code projects folder", &looked);
    }
    found
}

/// The folder a PATH stands for: a folder that holds a `projects` folder is taken as a Claude
/// config dir, and only its `projects` is read (a project folder is never called `projects`:
/// encoded names start with `-`), so `claude-read ~/.claude` does not pick up `history.jsonl`.
pub(crate) fn resolve_root(given: &Path) -> PathBuf {
    let config_projects = given.join("projects");
    if given.is_dir() && config_projects.is_dir() {
        config_projects
    } else {
        given.to_path_buf()
    }
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

// ---------------------------------------------------------------------------------------------
// Classification

/// What a file is, by its name and position.
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
    /// `agent-acompact-*.jsonl`, internal to Claude Code (compaction's own replay).
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
    let agent_id = agent_id_of(&name);
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

/// The meta file of an agent transcript: `agent-<id>.jsonl` -> `agent-<id>.meta.json`.
pub fn meta_path(agent_file: &Path) -> Option<PathBuf> {
    let stem = agent_file.file_stem()?;
    let mut name = OsString::from(stem);
    name.push(".meta.json");
    Some(agent_file.with_file_name(name))
}

/// The agent transcript of a meta file: `agent-<id>.meta.json` -> `agent-<id>.jsonl`.
pub(crate) fn agent_of_meta(p: &Path) -> Option<PathBuf> {
    let name = p.file_name()?.to_str()?;
    let stem = name.strip_suffix(".meta.json")?;
    Some(p.with_file_name(format!("{stem}.jsonl")))
}

// ---------------------------------------------------------------------------------------------
// The walk

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

/// The transcripts a walk found, by project folder.
#[derive(Default)]
struct Projects(BTreeMap<PathBuf, Project>);

impl Projects {
    fn session(&mut self, project: &Path, main_name: OsString) -> &mut SessionFiles {
        self.0
            .entry(project.to_path_buf())
            .or_default()
            .sessions
            .entry(main_name)
            .or_default()
    }

    /// Files a transcript (`path` as walked, `abs` as classified) where its records go out.
    fn add(&mut self, kind: Kind, path: PathBuf, abs: PathBuf) {
        match kind {
            Kind::Main { session } => {
                let project = abs.parent().unwrap_or(&abs).to_path_buf();
                let name = abs.file_name().unwrap_or_default().to_os_string();
                self.session(&project, name).main = Some(Found {
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
                let project = session_dir.parent().unwrap_or(&session_dir);
                // Beside its main file, `<session>.jsonl`.
                let mut name = session_dir.file_name().unwrap_or_default().to_os_string();
                name.push(".jsonl");
                let found = Found {
                    path,
                    abs: abs.clone(),
                    kind: FoundKind::Subagent { session, agent_id },
                };
                self.session(project, name).agents.insert(abs, found);
            }
            Kind::FlatAgent { .. } => {
                let project = abs.parent().unwrap_or(&abs).to_path_buf();
                let found = Found {
                    path,
                    abs: abs.clone(),
                    kind: FoundKind::Flat,
                };
                self.0.entry(project).or_default().flat.insert(abs, found);
            }
            // Not transcripts: nothing goes out for them.
            Kind::Internal | Kind::Other => {}
        }
    }

    /// The files in emission order.
    fn into_walk(self, abs_root: PathBuf) -> Walk {
        let mut files = Vec::new();
        let mut project_ends = Vec::new();
        for project in self.0.into_values() {
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
}

impl Reader<'_> {
    /// Walks one PATH and returns its transcripts in emission order (see the module's doc).
    /// `select` sees every transcript (by its absolute path) and keeps it or not. Notes on what
    /// is passed over go to stderr.
    pub(crate) fn walk(
        &mut self,
        given: &Path,
        errors: WalkErrors,
        select: &mut dyn FnMut(&Path, &walkdir::DirEntry) -> bool,
    ) -> Walk {
        let root = resolve_root(given);
        let abs_root = absolute(&root);
        let mut projects = Projects::default();
        let entries = WalkDir::new(&root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            // Spilled tool output holds no transcript.
            .filter_entry(|e| {
                !(e.depth() > 0 && e.file_type().is_dir() && e.file_name() == "tool-results")
            });
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.walk_error(&root, &e, errors);
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
            if matches!(kind, Kind::Other | Kind::Internal) {
                if entry.depth() == 0 {
                    self.not_a_transcript(entry.path());
                }
                continue;
            }
            if select(&abs, &entry) {
                projects.add(kind, entry.path().to_path_buf(), abs);
            }
        }
        projects.into_walk(abs_root)
    }

    /// Reports what a walk could not read under `root` (a loop of links is passed over).
    fn walk_error(&mut self, root: &Path, e: &walkdir::Error, errors: WalkErrors) {
        if e.loop_ancestor().is_some() {
            return;
        }
        let path = e.path().unwrap_or(root).to_path_buf();
        let vanished = e
            .io_error()
            .is_some_and(|io| io.kind() == io::ErrorKind::NotFound);
        if vanished && errors == WalkErrors::IgnoreVanished {
            return;
        }
        match e.io_error() {
            Some(io) => {
                self.unreadable(&path, format_args!("cannot read {}: {io}", path.display()))
            }
            None => self.unreadable(&path, format_args!("cannot read {}: {e}", path.display())),
        }
    }

    /// A file named as PATH that is no transcript: said once.
    fn not_a_transcript(&mut self, path: &Path) {
        if self
            .reported
            .as_mut()
            .is_none_or(|r| r.insert(path.to_path_buf()))
        {
            tonbo_core::note!(
                "{STAGE}: note: {} is not a Claude Code transcript (.jsonl); skipped",
                path.display()
            );
        }
    }
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

    fn flat(id: &str) -> Kind {
        Kind::FlatAgent {
            agent_id: id.into(),
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
        assert_eq!(kind("/h/.claude/projects/-p/agent-c3.jsonl", r), flat("c3"));
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
            flat("c3")
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
        assert_eq!(kind(f, f), flat("c3"));
        let f = "/subagents/agent-a1.jsonl";
        assert_eq!(kind(f, f), Kind::Other);
    }

    #[test]
    fn meta_files_sit_beside_their_agent_files() {
        assert_eq!(
            meta_path(Path::new("p/S/subagents/agent-a1.jsonl")).unwrap(),
            Path::new("p/S/subagents/agent-a1.meta.json")
        );
        assert_eq!(
            agent_of_meta(Path::new("/p/S/subagents/agent-a1.meta.json")),
            Some(PathBuf::from("/p/S/subagents/agent-a1.jsonl"))
        );
        assert_eq!(
            agent_of_meta(Path::new("/p/S/subagents/agent-a1.jsonl")),
            None
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
}
