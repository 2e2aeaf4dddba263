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
///
/// Only Gemini CLI's own names count (FORMAT.md, "Files"): a main chat is
/// `session-<time>-<first 8 of its id>.json[l]`, and a subagent's chat lies in a folder named
/// after its parent's whole id, so that folder's name starts with a main chat's 8. Other agents'
/// chats in a `chats/` folder (Qwen Code's `<id>.jsonl`, its `archive/`) are not Gemini CLI's.
pub fn chats_in(chats: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let (subagents, files): (Vec<PathBuf>, Vec<PathBuf>) =
        sorted_entries(chats).into_iter().partition(|p| p.is_dir());
    let mut parents = Vec::new();
    for path in files {
        let Some(short_id) = main_chat_short_id(&path) else {
            continue;
        };
        let migrated = chat_format(&path) == Some(ChatFormat::Document)
            && path.with_extension("jsonl").is_file();
        if !migrated {
            found.push(path.clone());
        }
        parents.push(short_id);
    }
    // Subagents' chats after the main chats: a parent is read before its children. A subagent's
    // own subagents lie in a folder named after its id (its file's stem), beside the others.
    let mut pending = subagents;
    loop {
        let (taken, left): (Vec<PathBuf>, Vec<PathBuf>) = pending.into_iter().partition(|dir| {
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            parents.iter().any(|id| name.starts_with(id.as_str()))
        });
        if taken.is_empty() {
            break;
        }
        for dir in taken {
            let chats = subagent_chats_in(&dir);
            parents.extend(
                chats
                    .iter()
                    .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string())),
            );
            found.extend(chats);
        }
        pending = left;
    }
    found
}

/// The 8 characters of its session id a main chat's name ends with, if it is one.
fn main_chat_short_id(path: &Path) -> Option<String> {
    chat_format(path)?;
    let stem = path.file_stem()?.to_str()?;
    let rest = stem.strip_prefix("session-")?;
    rest.rsplit('-').next().map(str::to_string)
}

/// A subagent folder's chats (`<sessionId>.jsonl`).
fn subagent_chats_in(dir: &Path) -> Vec<PathBuf> {
    sorted_entries(dir)
        .into_iter()
        .filter(|p| p.is_file() && chat_format(p).is_some())
        .collect()
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
    fn a_migrated_json_is_left_to_its_jsonl_twin_and_only_gemini_names_count() -> std::io::Result<()>
    {
        let dir = std::env::temp_dir().join(format!("gemini-twin-{}", std::process::id()));
        let chats = dir.join("chats");
        let parent = "a7c3e9d1-0000-4000-8000-000000000004";
        std::fs::create_dir_all(chats.join(parent))?;
        std::fs::create_dir_all(chats.join("5ub4gent-1"))?;
        std::fs::create_dir_all(chats.join("archive"))?;
        for name in [
            "session-2026-06-01T10-00-a7c3e9d1.json",
            "session-2026-06-01T10-00-a7c3e9d1.jsonl",
            "session-2026-06-02T10-00-b0000000.json",
            "x.jsonl.tmp-9",
            // Qwen Code keeps its chats in a `chats/` folder too, under other names.
            "0f1e2d3c-0000-4000-8000-000000000009.jsonl",
            "archive/0f1e2d3c-0000-4000-8000-00000000000a.jsonl",
        ] {
            std::fs::write(chats.join(name), "{}")?;
        }
        std::fs::write(chats.join(parent).join("5ub4gent-1.jsonl"), "{}")?;
        // A subagent's own subagent, in a folder named after that subagent's id.
        std::fs::write(chats.join("5ub4gent-1/deeper-2.jsonl"), "{}")?;
        let found = discover(&dir);
        std::fs::remove_dir_all(&dir)?;
        let names: Vec<_> = found.iter().filter_map(|path| path.file_name()).collect();
        assert_eq!(
            names,
            [
                "session-2026-06-01T10-00-a7c3e9d1.jsonl",
                "session-2026-06-02T10-00-b0000000.json",
                "5ub4gent-1.jsonl",
                "deeper-2.jsonl"
            ]
        );
        Ok(())
    }
}
