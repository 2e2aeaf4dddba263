//! Where Copilot CLI sessions are: the default places ([`default_roots`]) and the session files
//! under any path ([`find`]), each with its layout and session id.
//!
//! The rules (FORMAT.md, "Where sessions are"): an `events.jsonl` is a session whose id is its
//! folder's name; a `*.jsonl` directly in a `session-state` folder is a flat session named by
//! its stem (also in `history-session-state`); a `*.json` directly in a `history-session-state`
//! folder is a legacy document.
//! Everything else (`workspace.yaml`, `checkpoints/`, `files/`, `session-store.db`, logs) is
//! not a transcript and is passed over. Folders are walked whole, so a folder above the store
//! (a copied home, `/`) finds it.

use std::env;
use std::path::{Path, PathBuf};

/// How a session file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `session-state/<id>/events.jsonl`: one event per line, appended.
    Events,
    /// `session-state/<id>.jsonl`: the same events in a flat file.
    Flat,
    /// `history-session-state/<name>.json`: one JSON document, rewritten whole.
    Legacy,
}

/// One session file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub layout: Layout,
    /// The session id the path gives (a document's own `sessionId` wins when it has one).
    pub session: String,
}

impl Found {
    /// The name of the file as `at` gives it: with its session folder for `events.jsonl` (every
    /// session's file has that name), else the file name alone.
    pub fn at_name(&self) -> String {
        let name = file_name(&self.path);
        match self.layout {
            Layout::Events => format!("{}/{name}", self.session),
            Layout::Flat | Layout::Legacy => name,
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parent_name(path: &Path) -> String {
    path.parent().map(file_name).unwrap_or_default()
}

/// Copilot CLI's home: `$COPILOT_HOME`, else `$XDG_CONFIG_HOME/.copilot` when it exists (what
/// versions up to 0.0.421 used), else `~/.copilot`. `None` when nothing names a home.
pub fn copilot_home() -> Option<PathBuf> {
    let set = |k: &str| env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = set("COPILOT_HOME") {
        return Some(home);
    }
    if let Some(xdg) = set("XDG_CONFIG_HOME").map(|x| x.join(".copilot")) {
        if xdg.is_dir() {
            return Some(xdg);
        }
    }
    set("HOME").map(|h| h.join(".copilot"))
}

/// The folders read without PATH: the home's `session-state` and `history-session-state`.
pub fn default_roots() -> Vec<PathBuf> {
    copilot_home()
        .map(|h| vec![h.join("session-state"), h.join("history-session-state")])
        .unwrap_or_default()
}

/// What a file is, by its name and folder; `None` for what is not a session file.
pub fn classify(path: &Path) -> Option<Found> {
    let name = file_name(path);
    let parent = parent_name(path);
    let (layout, session) = if name == "events.jsonl" {
        (Layout::Events, parent)
    } else if let Some(stem) = name.strip_suffix(".jsonl") {
        (Layout::Flat, stem.to_string())
    } else if let Some(stem) = name.strip_suffix(".json") {
        (Layout::Legacy, stem.to_string())
    } else {
        return None;
    };
    if session.is_empty() {
        return None;
    }
    Some(Found {
        path: path.to_path_buf(),
        layout,
        session,
    })
}

/// A file met while walking a folder is a session file only in its place (a `.jsonl` in a
/// session's `files/` is not one).
fn in_place(found: &Found) -> bool {
    let parent = parent_name(&found.path);
    match found.layout {
        Layout::Events => true,
        // Event lines directly in either folder (a reader of both layouts counts on it).
        Layout::Flat => parent == "session-state" || parent == "history-session-state",
        Layout::Legacy => parent == "history-session-state",
    }
}

/// The session files under `path`, sorted by path (a file named on its own is taken by its
/// name, wherever it is), and the errors met walking (reported by the caller).
pub fn find(path: &Path) -> (Vec<Found>, Vec<String>) {
    if path.is_file() {
        return (classify(path).into_iter().collect(), Vec::new());
    }
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let walk = walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != "node_modules");
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                if let Some(f) = classify(e.path()).filter(in_place) {
                    found.push(f);
                }
            }
            Ok(_) => {}
            // A default root that does not exist is no error: there is nothing to read there
            // (a PATH given that does not exist is reported by the reader). A link back up is
            // a loop, not a session: passed over.
            Err(e) if e.depth() == 0 && !path.exists() => {}
            Err(e) if e.loop_ancestor().is_some() => {}
            Err(e) => errors.push(format!("cannot read {}: {e}", path_of(&e, path))),
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    (found, errors)
}

fn path_of(e: &walkdir::Error, root: &Path) -> String {
    e.path().unwrap_or(root).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_by_name_and_place() {
        let f = classify(Path::new("/h/.copilot/session-state/abc/events.jsonl")).unwrap();
        assert_eq!((f.layout, f.session.as_str()), (Layout::Events, "abc"));
        assert_eq!(f.at_name(), "abc/events.jsonl");
        let f = classify(Path::new("/h/.copilot/session-state/abc.jsonl")).unwrap();
        assert_eq!(
            (f.layout, f.at_name().as_str()),
            (Layout::Flat, "abc.jsonl")
        );
        assert!(in_place(&f));
        let f = classify(Path::new("/h/.copilot/history-session-state/s_1.json")).unwrap();
        assert_eq!((f.layout, f.session.as_str()), (Layout::Legacy, "s_1"));
        let f = classify(Path::new("/h/.copilot/session-state/abc/files/x.jsonl")).unwrap();
        assert!(!in_place(&f));
        assert!(classify(Path::new("/h/.copilot/session-state/abc/workspace.yaml")).is_none());
    }
}
