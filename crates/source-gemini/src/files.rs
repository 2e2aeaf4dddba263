//! Where Gemini CLI's chats are and which files under a path are chats (FORMAT.md, "Files").

use std::path::{Path, PathBuf};

/// Which of the two on-disk formats a chat file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// Before v0.39.0: one JSON document rewritten whole on every turn.
    Document,
    /// v0.39.0 and later: JSONL appended and replayed by message id.
    Lines,
}

/// The format of a chat file by its name, or `None` when it is not a chat: side files such as
/// `*.jsonl.unreadable-<ms>` and `*.jsonl.tmp-<pid>` end in neither extension.
pub fn chat_format(path: &Path) -> Option<ChatFormat> {
    match path.extension()?.to_str()? {
        "json" => Some(ChatFormat::Document),
        "jsonl" => Some(ChatFormat::Lines),
        _ => None,
    }
}

/// The default root: `$GEMINI_CLI_HOME/.gemini` when that is set, else `~/.gemini`.
pub fn default_root() -> Option<PathBuf> {
    let home = std::env::var_os("GEMINI_CLI_HOME")
        .filter(|home| !home.is_empty())
        .or_else(|| std::env::var_os("HOME"))?;
    Some(PathBuf::from(home).join(".gemini"))
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    paths.sort();
    paths
}

/// The chat files in one `chats/` directory, then those of its subagent subdirectories. A `.json` whose
/// `.jsonl` twin exists is left out: resuming migrated it and the twin holds all of it.
pub fn chats_in(chats: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let (subagents, files): (Vec<PathBuf>, Vec<PathBuf>) =
        sorted_entries(chats).into_iter().partition(|p| p.is_dir());
    for path in files {
        let migrated = chat_format(&path) == Some(ChatFormat::Document)
            && path.with_extension("jsonl").is_file();
        if chat_format(&path).is_some() && !migrated {
            found.push(path);
        }
    }
    // Subagents' chats after the main chats: a parent is read before its children.
    for dir in subagents {
        found.extend(chats_in(&dir));
    }
    found
}

/// The chat files under any path: a chat file itself, a `chats/` dir, a project dir
/// (`tmp/<id>`), `tmp/`, a whole `.gemini` dir, or any folder above them (searched
/// [`SEARCH_DEPTH`] folders deep, `.gemini` included).
pub fn discover(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return chat_format(path)
            .map(|_| vec![path.to_path_buf()])
            .unwrap_or_default();
    }
    if path.file_name().is_some_and(|name| name == "chats") {
        return chats_in(path);
    }
    for (below, depth) in [("chats", 0), ("tmp", 1)] {
        let dir = path.join(below);
        if dir.is_dir() {
            return if depth == 0 {
                chats_in(&dir)
            } else {
                project_chats(&dir)
            };
        }
    }
    let found = project_chats(path);
    if !found.is_empty() {
        return found;
    }
    // A folder above the store (a home holding `.gemini`, a backup of several): every `chats/`
    // folder below it.
    let mut found = Vec::new();
    chats_below(path, SEARCH_DEPTH, &mut found);
    found
}

/// How deep a folder above the store is searched for `chats/` folders.
const SEARCH_DEPTH: usize = 6;

fn chats_below(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    for path in sorted_entries(dir) {
        // Not through symbolic links: a link loop must not hang the walk.
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if !is_dir {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "chats") {
            found.extend(chats_in(&path));
        } else if depth > 0 {
            chats_below(&path, depth - 1, found);
        }
    }
}

fn project_chats(tmp: &Path) -> Vec<PathBuf> {
    sorted_entries(tmp)
        .into_iter()
        .map(|project| project.join("chats"))
        .filter(|chats| chats.is_dir())
        .flat_map(|chats| chats_in(&chats))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/gemini")
    }

    #[test]
    fn side_files_are_not_chats() {
        assert_eq!(
            chat_format(Path::new("a/session-x.jsonl")),
            Some(ChatFormat::Lines)
        );
        assert_eq!(
            chat_format(Path::new("a/session-x.json")),
            Some(ChatFormat::Document)
        );
        assert_eq!(
            chat_format(Path::new("a/session-x.jsonl.unreadable-17")),
            None
        );
        assert_eq!(chat_format(Path::new("a/session-x.jsonl.tmp-42")), None);
    }

    #[test]
    fn discovers_from_a_gemini_dir_a_project_or_chats() {
        for (case, files) in [
            ("01-json-legacy", 1),
            ("02-jsonl-replay", 1),
            ("03-bad-input", 2),
            ("04-subagent-commands", 2),
        ] {
            let root = testdata().join(case);
            let found = discover(&root);
            assert_eq!(found.len(), files, "{case}: {found:?}");
            assert_eq!(discover(&root.join("tmp")), found, "{case}");
            let chats = found[0].parent().map(Path::to_path_buf).unwrap_or_default();
            assert_eq!(discover(&chats), found, "{case}");
            assert_eq!(discover(chats.parent().unwrap_or(&chats)), found, "{case}");
            assert_eq!(
                discover(root.parent().unwrap_or(&root))
                    .iter()
                    .filter(|p| p.starts_with(&root))
                    .count(),
                files,
                "{case}: from a folder above"
            );
        }
    }

    #[test]
    fn a_migrated_json_is_left_to_its_jsonl_twin() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("gemini-twin-{}", std::process::id()));
        let chats = dir.join("chats");
        std::fs::create_dir_all(chats.join("parent-session"))?;
        for name in [
            "session-a.json",
            "session-a.jsonl",
            "session-b.json",
            "x.jsonl.tmp-9",
        ] {
            std::fs::write(chats.join(name), "{}")?;
        }
        std::fs::write(chats.join("parent-session/sub.jsonl"), "{}")?;
        let found = discover(&dir);
        std::fs::remove_dir_all(&dir)?;
        let names: Vec<_> = found.iter().filter_map(|path| path.file_name()).collect();
        assert_eq!(names, ["session-a.jsonl", "session-b.json", "sub.jsonl"]);
        Ok(())
    }
}
