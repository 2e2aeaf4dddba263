//! Where Cursor keeps its chats and how they are opened: the `User` folder (default location,
//! [`default_user_dir`]), the global databases below a PATH ([`discover`]), a database opened
//! read-only and WAL-safe ([`open`]), and the workspace folder each chat was started in
//! ([`workspaces`]). The facts are in FORMAT.md.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Deserialize;

/// Names the Cursor `User` folder to read instead of the default one (ours: Cursor has none).
pub const USER_DIR_ENV: &str = "CURSOR_USER_DIR";

/// How long a read waits for a database Cursor holds locked.
pub const BUSY: Duration = Duration::from_secs(5);

/// The database file name Cursor (a VS Code fork) gives its state stores.
pub const DB_NAME: &str = "state.vscdb";

/// `$CURSOR_USER_DIR`, else the `User` folder of Cursor's default configuration folder:
/// `~/Library/Application Support/Cursor/User` on macOS, `$XDG_CONFIG_HOME/Cursor/User`
/// (default `~/.config/Cursor/User`) elsewhere. `None` when HOME is not set either.
pub fn default_user_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = env(USER_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    if cfg!(target_os = "macos") {
        let home = PathBuf::from(env("HOME")?);
        return Some(home.join("Library/Application Support/Cursor/User"));
    }
    let config = match env("XDG_CONFIG_HOME") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(env("HOME")?).join(".config"),
    };
    Some(config.join("Cursor/User"))
}

/// The global databases under `input`: `input` itself when it is a file, else every
/// `globalStorage/state.vscdb` below it at any depth (a `User` folder, the `Cursor` folder
/// above it, a copied home), sorted. Workspace databases (`workspaceStorage/*/state.vscdb`)
/// are not chats: they only say which chats belong to which folder ([`workspaces`]).
pub fn discover(input: &Path) -> Vec<PathBuf> {
    if !input.is_dir() {
        return vec![input.to_path_buf()];
    }
    let mut found: Vec<PathBuf> = walkdir::WalkDir::new(input)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() == DB_NAME)
        .map(walkdir::DirEntry::into_path)
        .filter(|p| is_global(p))
        .collect();
    found.sort();
    found
}

fn is_global(db: &Path) -> bool {
    db.parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "globalStorage")
}

/// Opens a database for reading only: read-only, never `immutable` (that would ignore the
/// `-wal` Cursor writes into), the journal mode left alone, no checkpoint on close. A database
/// Cursor holds locked is waited for up to [`BUSY`].
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    // With SQLITE_OPEN_URI a name starting with `file:` would be read as a URI.
    let path = if path.is_relative() && path.to_string_lossy().starts_with("file:") {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(conn)
}

/// A value column's bytes as text, whether SQLite holds it as TEXT or BLOB (Cursor declares
/// `value BLOB` and writes JSON text into it).
pub fn value_text(v: rusqlite::types::ValueRef<'_>) -> Option<&str> {
    match v {
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
            std::str::from_utf8(b).ok()
        }
        _ => None,
    }
}

/// The workspace a chat was started in: the folder's hash under `workspaceStorage`, and its
/// `workspace.json` as written.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub hash: String,
    pub json: String,
}

#[derive(Deserialize)]
struct ComposerIndex {
    #[serde(rename = "allComposers", default)]
    all: Vec<ComposerRef>,
}

#[derive(Deserialize)]
struct ComposerRef {
    #[serde(rename = "composerId")]
    id: Option<String>,
}

/// Which workspace each chat of the global database `global` belongs to: every
/// `workspaceStorage/<hash>/` beside its `globalStorage` whose `state.vscdb` lists the chat in
/// `ItemTable` `composer.composerData` (`allComposers[].composerId`). A workspace that cannot
/// be read is noted and left out: its chats are read, without a folder.
pub fn workspaces(global: &Path, stage: &str) -> HashMap<String, Workspace> {
    let mut by_chat = HashMap::new();
    let Some(user) = global.parent().and_then(Path::parent) else {
        return by_chat;
    };
    let Ok(entries) = std::fs::read_dir(user.join("workspaceStorage")) else {
        return by_chat;
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    dirs.sort();
    for dir in dirs {
        let (Ok(json), db) = (
            std::fs::read_to_string(dir.join("workspace.json")),
            dir.join(DB_NAME),
        ) else {
            continue;
        };
        if !db.is_file() {
            continue;
        }
        let ids = match chats_of_workspace(&db) {
            Ok(ids) => ids,
            Err(e) => {
                tonbo_core::note!(
                    "{stage}: note: {}: {e}; its chats are read without a folder",
                    db.display()
                );
                continue;
            }
        };
        let hash = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        for id in ids {
            let ws = Workspace {
                hash: hash.clone(),
                json: json.trim().to_string(),
            };
            by_chat.insert(id, ws);
        }
    }
    by_chat
}

fn chats_of_workspace(db: &Path) -> anyhow::Result<Vec<String>> {
    let conn = open(db)?;
    let value: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM ItemTable WHERE key = 'composer.composerData'",
            [],
            |r| Ok(value_text(r.get_ref(0)?).map(|s| s.as_bytes().to_vec())),
        )
        .optional()?
        .flatten();
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let index: ComposerIndex = serde_json::from_slice(&value)
        .map_err(|e| anyhow::anyhow!("composer.composerData is not JSON: {e}"))?;
    Ok(index.all.into_iter().filter_map(|c| c.id).collect())
}

/// The local path of a `file://` URI as VS Code writes a workspace folder
/// (`file:///home/me/proj%20x`): percent-decoded; `None` for other schemes (remote folders).
pub fn folder_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    let path = String::from_utf8(out).ok()?;
    // `file:///c%3A/x` is a Windows drive: `c:/x`.
    match path.as_bytes() {
        [b'/', d, b':', ..] if d.is_ascii_alphabetic() => Some(path[1..].to_string()),
        _ => Some(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_uris_become_paths() {
        assert_eq!(
            folder_path("file:///home/me/proj%20x").as_deref(),
            Some("/home/me/proj x")
        );
        assert_eq!(folder_path("file:///c%3A/src").as_deref(), Some("c:/src"));
        assert_eq!(folder_path("vscode-remote://ssh-remote+h/x"), None);
    }
}
