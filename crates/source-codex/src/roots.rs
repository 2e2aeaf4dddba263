//! Where Codex keeps its sessions, and which files of a folder are session files: the roots
//! to read (a Codex home, a sessions folder, a file), the formats told by name, and the plan that
//! reads each session once (`sessions/` over `archived_sessions/`, a plain file over its `.zst`).

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tonbo_core::reader::{looked_in, note_none_found};
use walkdir::WalkDir;

use crate::STAGE;

/// Which folder of a Codex home a root is: the same file name in both is read from `sessions/`
/// only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Sessions,
    Archived,
}

/// A folder (or a single file) to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub path: PathBuf,
    pub role: Role,
    /// Only V0 documents (`rollout-*.json`) are read here: `~/.codex/sessions` when CODEX_HOME
    /// names another folder, since the TS CLI ignored CODEX_HOME.
    pub v0_only: bool,
}

impl Root {
    fn new(path: PathBuf, role: Role) -> Root {
        Root {
            path,
            role,
            v0_only: false,
        }
    }
}

/// The roots to read when no PATH is given: `$CODEX_HOME/sessions` and
/// `$CODEX_HOME/archived_sessions` (CODEX_HOME default `~/.codex`), and, when CODEX_HOME is
/// set, `~/.codex/sessions` for V0 files. Existence is not checked here.
pub fn default_roots(codex_home: Option<&OsStr>, home: Option<&Path>) -> Vec<Root> {
    let default_home = home.map(|h| h.join(".codex"));
    let mut roots = Vec::new();
    match codex_home.filter(|v| !v.is_empty()).map(PathBuf::from) {
        Some(codex) => {
            roots.push(Root::new(codex.join("sessions"), Role::Sessions));
            roots.push(Root::new(codex.join("archived_sessions"), Role::Archived));
            if let Some(dh) = default_home.filter(|dh| *dh != codex) {
                roots.push(Root {
                    path: dh.join("sessions"),
                    role: Role::Sessions,
                    v0_only: true,
                });
            }
        }
        None => {
            if let Some(dh) = default_home {
                roots.push(Root::new(dh.join("sessions"), Role::Sessions));
                roots.push(Root::new(dh.join("archived_sessions"), Role::Archived));
            }
        }
    }
    roots
}

/// The environment's Codex home (`CODEX_HOME`, when set and not empty) and `HOME`.
fn env_homes() -> (Option<std::ffi::OsString>, Option<PathBuf>) {
    let codex_home = std::env::var_os("CODEX_HOME").filter(|v| !v.is_empty());
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    (codex_home, home)
}

/// Where the default roots are, for a note.
fn places(candidates: &[Root]) -> Vec<String> {
    candidates
        .iter()
        .map(|r| r.path.display().to_string())
        .collect()
}

/// The default roots that exist. Finding none is not an error, there is just nothing to read;
/// a note on stderr says where it looked.
pub fn existing_default_roots() -> Vec<Root> {
    let (codex_home, home) = env_homes();
    if let Some(dir) = codex_home.as_deref().map(Path::new) {
        if !dir.is_dir() {
            tonbo_core::note!(
                "{STAGE}: note: CODEX_HOME ({}) is not a directory; nothing read there",
                dir.display()
            );
        }
    }
    let candidates = default_roots(codex_home.as_deref(), home.as_deref());
    let looked = places(&candidates);
    // CODEX_HOME reaching ~/.codex through a link: its sessions folder is read once, in full.
    let mut seen = Vec::new();
    let found: Vec<Root> = candidates
        .into_iter()
        .filter(|r| r.path.is_dir())
        .filter(|r| {
            let canon = r.path.canonicalize().unwrap_or_else(|_| r.path.clone());
            let new = !seen.contains(&canon);
            seen.push(canon);
            new
        })
        .collect();
    if found.is_empty() {
        note_none_found(STAGE, "Codex sessions folder", &looked);
    }
    found
}

/// The roots of one PATH: a Codex home (a folder holding `sessions/` or `archived_sessions/`:
/// both are read), a sessions folder (date folders or flat; an `archived_sessions` folder is
/// one too), or one file.
pub fn roots_of_path(path: &Path) -> Vec<Root> {
    let sessions = path.join("sessions");
    let archived = path.join("archived_sessions");
    if path.is_dir() && (sessions.is_dir() || archived.is_dir()) {
        let mut roots = Vec::new();
        if sessions.is_dir() {
            roots.push(Root::new(sessions, Role::Sessions));
        }
        if archived.is_dir() {
            roots.push(Root::new(archived, Role::Archived));
        }
        return roots;
    }
    let role = if path.file_name() == Some(OsStr::new("archived_sessions")) {
        Role::Archived
    } else {
        Role::Sessions
    };
    vec![Root::new(path.to_path_buf(), role)]
}

/// The roots `--follow` watches: a plain run's, and also those that do not exist yet, since a
/// Codex home gets `sessions/` with its first session and `archived_sessions/` with its first
/// archive. Without PATH: every default root ([`default_roots`]), an existing one once when
/// CODEX_HOME reaches it through a link; a note on stderr when none exists yet.
pub fn follow_roots(paths: &[PathBuf]) -> Vec<Root> {
    if paths.is_empty() {
        let (codex_home, home) = env_homes();
        let candidates = default_roots(codex_home.as_deref(), home.as_deref());
        if !candidates.iter().any(|r| r.path.is_dir()) {
            tonbo_core::note!(
                "{STAGE}: note: no Codex sessions folder yet (looked in: {}); waiting for one",
                looked_in(&places(&candidates))
            );
        }
        let mut seen = Vec::new();
        return candidates
            .into_iter()
            .filter(|r| match r.path.canonicalize() {
                Ok(canon) if seen.contains(&canon) => false,
                Ok(canon) => {
                    seen.push(canon);
                    true
                }
                Err(_) => true,
            })
            .collect();
    }
    let mut roots = Vec::new();
    for p in paths {
        let mut of_path = roots_of_path(p);
        if of_path.first().is_some_and(|r| r.path != *p) {
            // A Codex home: both of its folders, whichever exists now.
            of_path = vec![
                Root::new(p.join("sessions"), Role::Sessions),
                Root::new(p.join("archived_sessions"), Role::Archived),
            ];
        }
        roots.extend(of_path);
    }
    roots
}

// ---------------------------------------------------------------------------------------------
// Files

/// How a file is read, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document: V0 or seed.
    Document,
    /// JSONL: V1 or V2+.
    Lines,
    /// zstd-compressed JSONL (V4).
    Zst,
}

/// Files in a Codex home that are not transcripts.
const NOT_TRANSCRIPTS: &[&str] = &["history.jsonl", "session_index.jsonl"];

/// The format of a file found by walking a folder: `rollout-*.json`, `*.jsonl`, `*.jsonl.zst`,
/// except the files that are not transcripts; only `rollout-*.json` in a V0-only root.
pub fn walked_format(name: &str, v0_only: bool) -> Option<Format> {
    if name.starts_with("rollout-") && name.ends_with(".json") {
        return Some(Format::Document);
    }
    if v0_only {
        return None;
    }
    named_format(name)
}

/// The format of a file named on the command line: any `.json`, `.jsonl` or `.jsonl.zst` but the
/// files that are not transcripts.
pub fn explicit_format(name: &str) -> Option<Format> {
    if name.len() > ".json".len() && name.ends_with(".json") {
        return Some(Format::Document);
    }
    named_format(name)
}

fn named_format(name: &str) -> Option<Format> {
    let (plain, format) = match name.strip_suffix(".zst") {
        Some(plain) => (plain, Format::Zst),
        None => (name, Format::Lines),
    };
    let stem = plain.strip_suffix(".jsonl")?;
    if stem.is_empty() || NOT_TRANSCRIPTS.contains(&plain) {
        return None;
    }
    Some(format)
}

/// A session file found by the walk.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The path as given or walked: what provenance and messages name.
    pub(crate) path: PathBuf,
    pub(crate) format: Format,
    pub(crate) mtime: Option<SystemTime>,
}

impl Found {
    /// The name that makes two files the same session file: the file name without `.zst`.
    pub(crate) fn key(&self) -> String {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        name.strip_suffix(".zst").unwrap_or(&name).to_string()
    }
}

/// What a walk of one root found besides session files, in the order it was found: reported by
/// the caller (once per run by a plain read; once per path by `--follow`, which walks again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListNote {
    /// A file or folder that could not be read (`message` names it).
    WalkError { path: PathBuf, message: String },
    /// A file named on the command line that is not a session file.
    NotSession(PathBuf),
    /// A `.zst` not read because the plain file beside it wins.
    ZstBeside { zst: PathBuf, plain: PathBuf },
}

/// The session files of one root, sorted by path, and what else the walk met.
pub(crate) fn list_root(root: &Root) -> (Vec<Found>, Vec<ListNote>) {
    let mut files = Vec::new();
    let mut notes = Vec::new();
    let walk = WalkDir::new(&root.path)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        // Codex's TUI debug log holds no transcript.
        .filter_entry(|e| !(e.depth() > 0 && e.file_type().is_dir() && e.file_name() == "log"));
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.loop_ancestor().is_some() => continue,
            Err(e) => {
                let path = e.path().unwrap_or(&root.path).to_path_buf();
                let message = match e.io_error() {
                    Some(io) => format!("cannot read {}: {io}", path.display()),
                    None => format!("cannot read {}: {e}", path.display()),
                };
                notes.push(ListNote::WalkError { path, message });
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        let format = if entry.depth() == 0 {
            explicit_format(&name)
        } else {
            walked_format(&name, root.v0_only)
        };
        let Some(format) = format else {
            if entry.depth() == 0 {
                notes.push(ListNote::NotSession(entry.path().to_path_buf()));
            }
            continue;
        };
        files.push(Found {
            path: entry.path().to_path_buf(),
            format,
            mtime: entry.metadata().ok().and_then(|m| m.modified().ok()),
        });
    }
    // The plain file wins over its `.zst`: Codex writes one, then the
    // other, and a reader may catch both.
    let plain: BTreeSet<PathBuf> = files
        .iter()
        .filter(|f| f.format == Format::Lines)
        .map(|f| f.path.clone())
        .collect();
    files.retain(|f| {
        if f.format != Format::Zst {
            return true;
        }
        let beside = f.path.with_extension("");
        if !plain.contains(&beside) {
            return true;
        }
        notes.push(ListNote::ZstBeside {
            zst: f.path.clone(),
            plain: beside,
        });
        false
    });
    (files, notes)
}

/// What to do with one listed file.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    Read(Found),
    /// In `archived_sessions/` with a name that `kept`, in `sessions/`, also has.
    Duplicate {
        found: Found,
        kept: PathBuf,
    },
    /// Not modified after `--modified-after`.
    Old(Found),
}

/// The files of all roots in reading order: root by root, each sorted by path. A file in an
/// `archived_sessions` root whose name is also in a `sessions` root is passed over wherever the
/// two come in the list.
pub(crate) fn plan(listed: &[(Role, Vec<Found>)], modified_after: Option<SystemTime>) -> Vec<Plan> {
    let mut in_sessions: HashMap<String, &Path> = HashMap::new();
    for (_, files) in listed.iter().filter(|(role, _)| *role == Role::Sessions) {
        for f in files {
            in_sessions.entry(f.key()).or_insert(&f.path);
        }
    }
    let mut plans = Vec::new();
    for (role, files) in listed {
        for found in files {
            if *role == Role::Archived {
                if let Some(kept) = in_sessions.get(&found.key()) {
                    plans.push(Plan::Duplicate {
                        found: found.clone(),
                        kept: kept.to_path_buf(),
                    });
                    continue;
                }
            }
            if let Some(after) = modified_after {
                if found.mtime.is_some_and(|t| t <= after) {
                    plans.push(Plan::Old(found.clone()));
                    continue;
                }
            }
            plans.push(Plan::Read(found.clone()));
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(roots: &[Root]) -> Vec<(String, Role, bool)> {
        roots
            .iter()
            .map(|r| (r.path.display().to_string(), r.role, r.v0_only))
            .collect()
    }

    #[test]
    fn default_roots_from_codex_home_and_home() {
        let home = Some(Path::new("/h"));
        assert_eq!(
            paths(&default_roots(None, home)),
            vec![
                ("/h/.codex/sessions".into(), Role::Sessions, false),
                ("/h/.codex/archived_sessions".into(), Role::Archived, false),
            ]
        );
        assert_eq!(
            paths(&default_roots(Some(OsStr::new("/c")), home)),
            vec![
                ("/c/sessions".into(), Role::Sessions, false),
                ("/c/archived_sessions".into(), Role::Archived, false),
                ("/h/.codex/sessions".into(), Role::Sessions, true),
            ]
        );
        // CODEX_HOME set to the default: no V0-only extra.
        assert_eq!(default_roots(Some(OsStr::new("/h/.codex")), home).len(), 2);
        assert_eq!(default_roots(Some(OsStr::new("")), home).len(), 2);
        assert!(default_roots(None, None).is_empty());
        assert_eq!(default_roots(Some(OsStr::new("/c")), None).len(), 2);
    }

    #[test]
    fn file_names_that_are_read() {
        let w = |n: &str| walked_format(n, false);
        assert_eq!(w("rollout-2025-04-20-x.json"), Some(Format::Document));
        assert_eq!(
            w("rollout-2025-10-01T09-12-03-x.jsonl"),
            Some(Format::Lines)
        );
        assert_eq!(w("rollout-x.jsonl.zst"), Some(Format::Zst));
        assert_eq!(w("export.jsonl"), Some(Format::Lines));
        for skipped in [
            "config.json",
            "history.jsonl",
            "session_index.jsonl",
            "history.jsonl.zst",
            "state_5.sqlite",
            "x.jsonl.bak",
            ".jsonl",
            ".jsonl.zst",
            "x.zst",
        ] {
            assert_eq!(w(skipped), None, "{skipped}");
        }
        assert_eq!(
            walked_format("rollout-x.json", true),
            Some(Format::Document)
        );
        assert_eq!(walked_format("rollout-x.jsonl", true), None);
        assert_eq!(explicit_format("export.json"), Some(Format::Document));
        assert_eq!(explicit_format("history.jsonl"), None);
        assert_eq!(explicit_format(".json"), None);
    }
}
