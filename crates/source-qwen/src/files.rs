//! Where Qwen Code's session files are and which files are its (FORMAT.md, "Where"): every
//! `<session id>.jsonl` in a `chats` folder or its `archive` folder, at any depth under a PATH,
//! so that a folder above the store (a home directory, a copied `~/.qwen`) finds them all.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The base folder Qwen Code keeps its runtime output in, by its own rule: `QWEN_RUNTIME_DIR`,
/// else `QWEN_HOME`, else `~/.qwen`. `None` when none is set.
pub fn base_dir(
    runtime: Option<&OsStr>,
    qwen_home: Option<&OsStr>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    let set = |v: Option<&OsStr>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    set(runtime)
        .or_else(|| set(qwen_home))
        .or_else(|| home.map(|h| h.join(".qwen")))
}

/// The folder read without PATH: `projects` of the base folder (one folder per project, each
/// with its `chats`).
pub fn default_roots(
    runtime: Option<&OsStr>,
    qwen_home: Option<&OsStr>,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    match base_dir(runtime, qwen_home, home) {
        Some(base) => vec![base.join("projects")],
        None => Vec::new(),
    }
}

/// [`default_roots`] from this process's environment.
pub fn env_default_roots() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    default_roots(
        std::env::var_os("QWEN_RUNTIME_DIR").as_deref(),
        std::env::var_os("QWEN_HOME").as_deref(),
        home.as_deref(),
    )
}

/// The default root if it exists, with a note on stderr where it looked when it does not:
/// finding nothing is not an error, there is just nothing to read.
pub fn existing_default_roots() -> Vec<PathBuf> {
    let (found, missing): (Vec<PathBuf>, Vec<PathBuf>) =
        env_default_roots().into_iter().partition(|p| p.is_dir());
    if found.is_empty() {
        let looked: Vec<String> = missing.iter().map(|m| m.display().to_string()).collect();
        tonbo_core::reader::note_none_found(crate::STAGE, "Qwen Code projects folder", &looked);
    }
    found
}

/// Whether `name` is a session file's name: `<id>.jsonl`, the id 32 to 36 hex digits and
/// hyphens (Qwen Code's own `SESSION_FILE_PATTERN`). Gemini CLI's `session-*.json(l)` are not.
pub fn is_session_name(name: &str) -> bool {
    name.strip_suffix(".jsonl").is_some_and(|id| {
        (32..=36).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    })
}

/// Whether `path` is a session file found by a walk: a session name in a `chats` folder, or in
/// its `archive` folder (sessions the person archived).
pub fn is_session_file(path: &Path) -> bool {
    let named =
        |p: Option<&Path>, name: &str| p.and_then(Path::file_name).is_some_and(|n| n == name);
    let folder = path.parent();
    let in_chats = named(folder, "chats")
        || (named(folder, "archive") && named(folder.and_then(Path::parent), "chats"));
    in_chats
        && path
            .file_name()
            .and_then(OsStr::to_str)
            .is_some_and(is_session_name)
}

/// The session a file holds: its name without `.jsonl` (the writer names it by `sessionId`).
pub fn session_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.strip_suffix(".jsonl").unwrap_or(&name).to_string()
}

/// What a walk of one PATH found: the session files in name order, and what could not be
/// read on the way (path, message).
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<PathBuf>,
    pub errors: Vec<(PathBuf, String)>,
}

/// Walks `given`: a file named on its own is read whatever its name (`.jsonl` expected); a
/// folder is searched at any depth for session files ([`is_session_file`]).
pub fn walk(given: &Path) -> Walk {
    let mut found = Walk::default();
    if given.is_file() {
        found.files.push(given.to_path_buf());
        return found;
    }
    let entries = walkdir::WalkDir::new(given)
        .follow_links(false)
        .sort_by_file_name();
    for entry in entries {
        match entry {
            Ok(e) if e.file_type().is_file() && is_session_file(e.path()) => {
                found.files.push(e.into_path())
            }
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(given).to_path_buf();
                found
                    .errors
                    .push((path, format!("cannot read {}: {e}", given.display())));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_qwen_codes_own() {
        assert!(is_session_name(
            "3f2a1c4e-1b2c-4d5e-8f90-123456789abc.jsonl"
        ));
        assert!(is_session_name("3f2a1c4e1b2c4d5e8f90123456789abc.jsonl"));
        assert!(!is_session_name("session-2026-01-01T10-00-3f2a1c4e.jsonl"));
        assert!(!is_session_name("session-2026-01-01T10-00-3f2a1c4e.json"));
        assert!(!is_session_name(
            "3f2a1c4e-1b2c-4d5e-8f90-123456789abc.json"
        ));
        assert!(is_session_file(Path::new(
            "/h/.qwen/projects/-p/chats/3f2a1c4e-1b2c-4d5e-8f90-123456789abc.jsonl"
        )));
        assert!(!is_session_file(Path::new(
            "/h/.qwen/projects/-p/3f2a1c4e-1b2c-4d5e-8f90-123456789abc.jsonl"
        )));
    }

    #[test]
    fn default_roots_follow_qwen_codes_order() {
        let home = Path::new("/home/me");
        let roots = default_roots(None, None, Some(home));
        assert_eq!(roots, [home.join(".qwen/projects")]);
        let roots = default_roots(None, Some(OsStr::new("/q")), Some(home));
        assert_eq!(roots[0], Path::new("/q/projects"));
        let roots = default_roots(Some(OsStr::new("/r")), Some(OsStr::new("/q")), Some(home));
        assert_eq!(roots[0], Path::new("/r/projects"));
        assert!(default_roots(None, None, None).is_empty());
    }
}
