//! Where task folders are: the default places (every editor's globalStorage folder of every
//! variant, remote-server data folders, Cline's own data folder) and what a PATH holds (a
//! storage folder, a `tasks` folder, one task folder, one of its files, or any folder above
//! them).

use std::path::{Path, PathBuf};

use crate::Variant;

/// The files a task folder is known by (either is enough).
pub const API_FILE: &str = "api_conversation_history.json";
pub const UI_FILE: &str = "ui_messages.json";
/// Cline's index of tasks, beside `tasks/` (`state/taskHistory.json`).
pub const TASK_HISTORY: &str = "state/taskHistory.json";
/// Roo Code's (and Kilo Code's, newer) per-task history item.
pub const HISTORY_ITEM: &str = "history_item.json";

/// Editors whose user folder may hold the extensions' globalStorage.
const EDITORS: [&str; 5] = ["Code", "Code - Insiders", "VSCodium", "Cursor", "Windsurf"];
/// Remote-server data folders under HOME (VS Code Remote, Codespaces, and the forks' own).
const SERVERS: [&str; 5] = [
    ".vscode-server",
    ".vscode-server-insiders",
    ".vscode-remote",
    ".cursor-server",
    ".windsurf-server",
];

/// The `User` folders of every editor on this machine's usual layouts, existing or not: Linux
/// (`$XDG_CONFIG_HOME` or `~/.config`), macOS (`~/Library/Application Support`), remote
/// servers (`~/.vscode-server/data/User`...), and `$VSCODE_PORTABLE/user-data/User`.
pub fn user_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut bases = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        bases.push(PathBuf::from(x));
    }
    if let Some(h) = &home {
        bases.push(h.join(".config"));
        bases.push(h.join("Library/Application Support"));
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for base in &bases {
        for editor in EDITORS {
            dirs.push(base.join(editor).join("User"));
        }
    }
    if let Some(h) = &home {
        for server in SERVERS {
            dirs.push(h.join(server).join("data/User"));
        }
    }
    if let Some(p) = std::env::var_os("VSCODE_PORTABLE").filter(|x| !x.is_empty()) {
        dirs.push(PathBuf::from(p).join("user-data/User"));
    }
    unique(dirs)
}

/// `dirs` without the ones named twice (`$XDG_CONFIG_HOME` set to `~/.config`, a link to
/// another): their tasks would be read twice.
fn unique(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    dirs.into_iter()
        .filter(|d| seen.insert(std::fs::canonicalize(d).unwrap_or_else(|_| d.clone())))
        .collect()
}

/// Cline's own data folder (the newest Cline reads its pre-SDK tasks there): `CLINE_DATA_DIR`,
/// else `CLINE_DIR/data`, else `~/.cline/data`.
pub fn cline_data_dir() -> Option<PathBuf> {
    let var = |n: &str| std::env::var_os(n).filter(|x| !x.is_empty());
    if let Some(d) = var("CLINE_DATA_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = var("CLINE_DIR") {
        return Some(PathBuf::from(d).join("data"));
    }
    var("HOME").map(|h| PathBuf::from(h).join(".cline/data"))
}

/// Every default storage folder (`<user>/globalStorage/<extension id>` for every editor and
/// variant, and Cline's data folder), existing or not: what the reader looks in without PATH.
pub fn default_storage_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for user in user_dirs() {
        for v in Variant::ALL {
            dirs.push(user.join("globalStorage").join(v.extension_id()));
        }
    }
    dirs.extend(cline_data_dir());
    unique(dirs)
}

/// The newest Cline's SDK keeps a session in `<sessions dir>/<id>/` as `<id>.messages.json`
/// (the transcript, `{version, ..., messages}`) and `<id>.json` (its manifest).
pub fn sdk_files(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let id = dir.file_name()?.to_str()?;
    let messages = dir.join(format!("{id}.messages.json"));
    messages
        .is_file()
        .then(|| (messages, dir.join(format!("{id}.json"))))
}

/// The SDK's sub-agent sessions of the session folder `dir`: the other `*.messages.json` files
/// in it, `<agent id>.messages.json`, sorted; each is the session `<root id>__<agent id>`
/// ([`sdk_child_session`]).
pub fn sdk_children(dir: &Path) -> Vec<PathBuf> {
    let Some((own, _)) = sdk_files(dir) else {
        return Vec::new();
    };
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| *p != own && p.to_string_lossy().ends_with(".messages.json"))
                .collect()
        })
        .unwrap_or_default();
    children.sort();
    children
}

/// The session id of a sub-agent's messages file in the root session's folder `dir`: the SDK's
/// `makeSubSessionId(root, agent)`, `<root id>__<agent id>`.
pub fn sdk_child_session(dir: &Path, file: &Path) -> String {
    let root = dir.file_name().unwrap_or_default().to_string_lossy();
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let agent = name.strip_suffix(".messages.json").unwrap_or(&name);
    format!("{root}__{agent}")
}

/// Whether `dir` is a task folder (holds either transcript file, or is an SDK session's).
pub fn is_task_dir(dir: &Path) -> bool {
    dir.join(API_FILE).is_file() || dir.join(UI_FILE).is_file() || sdk_files(dir).is_some()
}

/// Folders not walked when looking for tasks under a PATH: they hold no task and can be huge.
fn skipped(name: &str) -> bool {
    // `checkpoints`: Cline's shadow git repositories, beside `tasks/`.
    matches!(name, ".git" | "node_modules" | "checkpoints" | "CachedData")
}

/// The task folders under `path`, sorted: `path` itself when it is one (or a file of one),
/// else every task folder at any depth (`<storage>/tasks/<id>/`). A folder that cannot be
/// read is passed to `unreadable`.
pub fn task_dirs(path: &Path, unreadable: &mut dyn FnMut(String)) -> Vec<PathBuf> {
    if path.is_file() {
        return path.parent().map(Path::to_path_buf).into_iter().collect();
    }
    if is_task_dir(path) {
        return vec![path.to_path_buf()];
    }
    let mut found = Vec::new();
    let walk = walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !(e.file_type().is_dir() && skipped(&e.file_name().to_string_lossy())));
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_dir() && e.depth() > 0 => {
                if is_task_dir(e.path()) {
                    found.push(e.into_path());
                }
            }
            Ok(_) => {}
            Err(err) => unreadable(err.to_string()),
        }
    }
    found
}

/// The storage folder a task folder is in (`<storage>/tasks/<id>`), when it is in one.
pub fn storage_of(task_dir: &Path) -> Option<&Path> {
    let tasks = task_dir.parent()?;
    (tasks.file_name()? == "tasks").then_some(())?;
    tasks.parent()
}

/// The variant a task folder's path names (an extension id among its ancestors).
pub fn variant_of_path(task_dir: &Path) -> Option<Variant> {
    task_dir
        .ancestors()
        .filter_map(|a| a.file_name())
        .find_map(|n| Variant::from_extension_id(&n.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_folders_are_found_at_any_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp
            .path()
            .join("x/globalStorage/rooveterinaryinc.roo-cline/tasks/abc");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join(UI_FILE), "[]").unwrap();
        std::fs::create_dir_all(tmp.path().join("x/node_modules/tasks/1")).unwrap();
        let mut errs = Vec::new();
        let found = task_dirs(tmp.path(), &mut |e| errs.push(e));
        assert_eq!(found, vec![t.clone()]);
        assert_eq!(task_dirs(&t.join(UI_FILE), &mut |_| {}), vec![t.clone()]);
        assert_eq!(variant_of_path(&t), Some(Variant::RooCode));
        assert!(storage_of(&t)
            .unwrap()
            .ends_with("rooveterinaryinc.roo-cline"));
        assert!(errs.is_empty());
    }
}
