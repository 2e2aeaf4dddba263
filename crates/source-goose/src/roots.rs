//! Where Goose keeps its sessions, and the stores found under a PATH.
//!
//! Goose's data dir is `$GOOSE_PATH_ROOT/data` when that variable is set, else the XDG data
//! dir of the app `goose` (`$XDG_DATA_HOME/goose`, default `~/.local/share/goose`, on Linux and
//! macOS alike: Goose asks `etcetera::choose_app_strategy`, which is XDG on both). Its
//! sessions are in `sessions/` there: `sessions.db` (current versions) and `<id>.jsonl` (older
//! ones, left in place after their import into the database).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One sessions folder: its database, if any, and its older `.jsonl` session files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Store {
    /// The folder (for messages), or the file named when a single file was given.
    pub dir: PathBuf,
    pub db: Option<PathBuf>,
    pub legacy: Vec<PathBuf>,
}

/// The database's name in a sessions folder.
pub const DB_NAME: &str = "sessions.db";

/// The sessions folder Goose itself uses on this machine, from its environment.
pub fn default_sessions_dir() -> Option<PathBuf> {
    if let Some(root) = std::env::var_os("GOOSE_PATH_ROOT").filter(|r| !r.is_empty()) {
        return Some(PathBuf::from(root).join("data").join("sessions"));
    }
    let xdg = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let data = match xdg {
        Some(d) => d,
        None => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?)
            .join(".local")
            .join("share"),
    };
    Some(data.join("goose").join("sessions"))
}

/// Whether `path` is a Goose session file of the older generation: a `.jsonl` in a folder
/// named `sessions`.
fn is_legacy_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "jsonl")
        && path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "sessions")
}

/// The stores under `path`: the file itself (a `.db` or a `.jsonl`), or every sessions folder
/// below a folder, at any depth, sorted by path. Unreadable entries are passed over here and
/// reported by the reader when it opens what it found.
pub fn stores_under(path: &Path) -> Vec<Store> {
    if path.is_file() {
        let mut store = Store {
            dir: path.to_path_buf(),
            ..Store::default()
        };
        if path.extension().is_some_and(|e| e == "jsonl") {
            store.legacy.push(path.to_path_buf());
        } else {
            store.db = Some(path.to_path_buf());
        }
        return vec![store];
    }
    let mut by_dir: BTreeMap<PathBuf, Store> = BTreeMap::new();
    let walk = walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walk.into_iter().filter_map(Result::ok) {
        let p = entry.path();
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(dir) = p.parent() else { continue };
        if p.file_name().is_some_and(|n| n == DB_NAME) {
            store_of(&mut by_dir, dir).db = Some(p.to_path_buf());
        } else if is_legacy_file(p) {
            store_of(&mut by_dir, dir).legacy.push(p.to_path_buf());
        }
    }
    by_dir.into_values().collect()
}

fn store_of<'a>(by_dir: &'a mut BTreeMap<PathBuf, Store>, dir: &Path) -> &'a mut Store {
    by_dir.entry(dir.to_path_buf()).or_insert_with(|| Store {
        dir: dir.to_path_buf(),
        ..Store::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_above_finds_both_generations() {
        let tmp = tempfile::tempdir().unwrap();
        let s = tmp.path().join("home/.local/share/goose/sessions");
        std::fs::create_dir_all(&s).unwrap();
        std::fs::write(s.join(DB_NAME), b"").unwrap();
        std::fs::write(s.join("20250101_120000.jsonl"), b"{}\n").unwrap();
        std::fs::write(tmp.path().join("home/other.jsonl"), b"{}\n").unwrap();
        let stores = stores_under(tmp.path());
        assert_eq!(stores.len(), 1);
        assert_eq!(stores[0].db.as_deref(), Some(s.join(DB_NAME).as_path()));
        assert_eq!(stores[0].legacy, vec![s.join("20250101_120000.jsonl")]);
    }
}
