//! Where OpenCode and Crush keep their sessions, and what a PATH on the command line holds.
//!
//! ```text
//! <data> = $XDG_DATA_HOME/opencode, else ~/.local/share/opencode
//!   opencode.db, opencode-<channel>.db       T2/T3 (glob opencode*.db; OPENCODE_DB wins)
//!   storage/                                 T1 JSON store
//!   project/<slug>/storage/session/          T0 JSON store (info/, message/, part/)
//! <global> = $CRUSH_GLOBAL_DATA, else $XDG_DATA_HOME/crush, else ~/.local/share/crush
//!   projects.json {"projects":[{"path","data_dir"}]}: each <data_dir>/crush.db (G2)
//! ./.opencode/opencode.db (G1), ./.crush/crush.db (G2) in the current directory
//! ```
//!
//! (FORMAT.md, "Where the stores are".) Only where to look is decided here; what a database
//! holds is told from its schema ([`crate::schema`]), never from its name.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tonbo_core::reader::note_none_found;
use walkdir::WalkDir;

use crate::STAGE;

/// Which JSON store layout a `storage/` folder has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `session/<projectID>/<ses>.json`, `message/<ses>/<msg>.json`, `part/<msg>/<prt>.json`
    /// (FORMAT.md, "The TypeScript lineage").
    T1,
    /// `session/info/<ses>.json`, `session/message/<ses>/<msg>.json`,
    /// `session/part/<ses>/<msg>/<prt>.json`, whose objects have T1's shapes.
    T0,
}

/// A JSON store: a `storage/` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStore {
    pub root: PathBuf,
    pub kind: StoreKind,
}

impl JsonStore {
    /// The folders holding session files: `session/<projectID>/` for T1 (the caller lists the
    /// project folders), `session/info/` for T0.
    pub fn session_root(&self) -> PathBuf {
        match self.kind {
            StoreKind::T1 => self.root.join("session"),
            StoreKind::T0 => self.root.join("session").join("info"),
        }
    }

    pub fn message_dir(&self, session: &str) -> PathBuf {
        match self.kind {
            StoreKind::T1 => self.root.join("message").join(session),
            StoreKind::T0 => self.root.join("session").join("message").join(session),
        }
    }

    pub fn part_dir(&self, session: &str, message: &str) -> PathBuf {
        match self.kind {
            StoreKind::T1 => self.root.join("part").join(message),
            StoreKind::T0 => self
                .root
                .join("session")
                .join("part")
                .join(session)
                .join(message),
        }
    }
}

/// The databases and JSON stores of a run, each once, in the order found.
#[derive(Debug, Default)]
pub struct Sources {
    pub dbs: Vec<PathBuf>,
    pub stores: Vec<JsonStore>,
    /// Canonical paths already listed.
    seen: Vec<PathBuf>,
    /// Discovery problems reported on stderr (an unreadable PATH or `projects.json`).
    pub failed: u64,
    /// PATHs that hold files but no store (each warned about on stderr).
    pub empty: u64,
    /// Print no notes or errors (`--follow` looks again and again; the first look told).
    pub quiet: bool,
}

impl Sources {
    fn first_time(&mut self, path: &Path) -> bool {
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.seen.contains(&canon) {
            return false;
        }
        self.seen.push(canon);
        true
    }

    fn add_db(&mut self, path: PathBuf) {
        if self.first_time(&path) {
            self.dbs.push(path);
        }
    }

    fn add_store(&mut self, store: JsonStore) {
        if self.first_time(&store.root) {
            self.stores.push(store);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty() && self.stores.is_empty()
    }

    /// Adds every store under a folder, at any depth: databases named like OpenCode's or Crush's
    /// ([`is_db_name`], in each folder `opencode.db` first) and JSON stores (a `storage/`
    /// folder holding `session/`, `message/` or `part/`; not looked into further). The folder
    /// itself may be a JSON store. Folders that never hold a store are not walked: `.git`,
    /// `node_modules`, and OpenCode's `snapshot/` (git objects of worktree snapshots). A folder
    /// that cannot be read is reported and counted in `failed`. Returns how many stores it
    /// found.
    fn add_tree(&mut self, dir: &Path) -> usize {
        if let Some(kind) = store_kind(dir) {
            self.add_store(JsonStore {
                root: dir.to_path_buf(),
                kind,
            });
            return 1;
        }
        let mut found = 0;
        let mut walk = WalkDir::new(dir)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = walk.next() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if e.loop_ancestor().is_some() => continue,
                Err(e) => {
                    if !self.quiet {
                        let path = e.path().unwrap_or(dir).display().to_string();
                        match e.io_error() {
                            Some(io) => tonbo_core::note!("{STAGE}: cannot read {path}: {io}"),
                            None => tonbo_core::note!("{STAGE}: cannot read {path}: {e}"),
                        }
                    }
                    self.failed += 1;
                    continue;
                }
            };
            if !entry.file_type().is_dir() {
                continue;
            }
            let name = entry.file_name();
            if entry.depth() > 0 {
                if NEVER_STORES.iter().any(|n| name == *n) {
                    walk.skip_current_dir();
                    continue;
                }
                if name == "storage" {
                    if let Some(kind) = store_kind(entry.path()) {
                        self.add_store(JsonStore {
                            root: entry.path().to_path_buf(),
                            kind,
                        });
                        found += 1;
                        walk.skip_current_dir();
                        continue;
                    }
                }
            }
            for db in dir_dbs(entry.path()) {
                self.add_db(db);
                found += 1;
            }
        }
        found
    }

    /// The sources of one PATH: a database file, or a folder with stores anywhere below it
    /// (`add_tree`: a data directory, a `storage/` folder, a project's `.opencode` or
    /// `.crush`, a home directory, a backup). A PATH that cannot be read is reported and
    /// counted in `failed`; a folder that holds files but no store is warned about
    /// ([`tonbo_core::empty`]) and counted in `empty`.
    pub fn add_path(&mut self, path: &Path) {
        match fs::metadata(path) {
            Err(e) => {
                if !self.quiet {
                    tonbo_core::note!("{STAGE}: cannot read {}: {e}", path.display());
                }
                self.failed += 1;
            }
            Ok(m) if m.is_dir() => {
                if self.add_tree(path) > 0 || self.quiet {
                    return;
                }
                if tonbo_core::empty::holds_content(path) {
                    tonbo_core::empty::warn(
                        STAGE,
                        &path.display().to_string(),
                        "no OpenCode or Crush store anywhere in it (opencode*.db, crush.db, termai.db, storage/)",
                    );
                    self.empty += 1;
                } else {
                    tonbo_core::note!(
                        "{STAGE}: note: {} is empty; nothing read there",
                        path.display()
                    );
                }
            }
            Ok(_) => self.add_db(path.to_path_buf()),
        }
    }
}

/// Folders [`Sources::add_tree`] does not walk: they never hold a store, and can be large.
const NEVER_STORES: &[&str] = &[".git", "node_modules", "snapshot"];

/// The environment the default sources depend on.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub opencode_db: Option<OsString>,
    pub xdg_data_home: Option<OsString>,
    pub crush_global_data: Option<OsString>,
    pub home: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
}

impl Env {
    /// The process environment; empty variables count as unset.
    pub fn from_process() -> Env {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Env {
            opencode_db: var("OPENCODE_DB"),
            xdg_data_home: var("XDG_DATA_HOME"),
            crush_global_data: var("CRUSH_GLOBAL_DATA"),
            home: var("HOME").map(PathBuf::from),
            cwd: std::env::current_dir().ok(),
        }
    }

    /// `<data>`: `$XDG_DATA_HOME/opencode`, else `~/.local/share/opencode`.
    pub fn opencode_data(&self) -> Option<PathBuf> {
        xdg_data(self.xdg_data_home.as_deref(), self.home.as_deref()).map(|d| d.join("opencode"))
    }

    /// Crush's global data folder: `$CRUSH_GLOBAL_DATA`, else `$XDG_DATA_HOME/crush`, else
    /// `~/.local/share/crush` (Crush's `GlobalConfigData`).
    pub fn crush_global(&self) -> Option<PathBuf> {
        if let Some(g) = &self.crush_global_data {
            return Some(PathBuf::from(g));
        }
        xdg_data(self.xdg_data_home.as_deref(), self.home.as_deref()).map(|d| d.join("crush"))
    }
}

fn xdg_data(xdg: Option<&OsStr>, home: Option<&Path>) -> Option<PathBuf> {
    match xdg {
        Some(x) => Some(PathBuf::from(x)),
        None => home.map(|h| h.join(".local").join("share")),
    }
}

/// The sources read when no PATH is given (FORMAT.md, "Where the stores are"). Missing ones
/// are not an error: a note says where nothing was found.
pub fn default_sources(env: &Env) -> Sources {
    default_sources_with(env, false)
}

/// [`default_sources`], without notes when `quiet`.
pub fn default_sources_with(env: &Env, quiet: bool) -> Sources {
    let mut s = Sources {
        quiet,
        ..Sources::default()
    };
    let mut looked = Vec::new();
    let data = env.opencode_data();
    s.add_opencode_dbs(env.opencode_db.as_deref(), data.as_deref(), &mut looked);
    // The JSON stores beside it (T1, T0).
    if let Some(d) = &data {
        looked.push(d.join("storage").display().to_string());
        looked.push(d.join("project/*/storage").display().to_string());
        for store in dir_stores(d) {
            s.add_store(store);
        }
    }
    // Crush projects.
    if let Some(global) = env.crush_global() {
        let list = global.join("projects.json");
        looked.push(list.display().to_string());
        for db in crush_projects(&list, &mut s.failed, quiet) {
            s.add_db(db);
        }
    }
    // The current directory's Go data folders.
    if let Some(cwd) = &env.cwd {
        for sub in [".opencode", ".crush"] {
            let dir = cwd.join(sub);
            looked.push(dir.display().to_string());
            if dir.is_dir() {
                for db in dir_dbs(&dir) {
                    s.add_db(db);
                }
            }
        }
    }
    if s.is_empty() && s.failed == 0 && !quiet {
        note_none_found(STAGE, "OpenCode or Crush data", &looked);
    }
    s
}

impl Sources {
    /// OpenCode's databases: `OPENCODE_DB` (`opencode_db`, relative to the data folder `data`)
    /// wins, else every `opencode*.db` of the data folder. Where it looked goes to `looked`.
    fn add_opencode_dbs(
        &mut self,
        opencode_db: Option<&OsStr>,
        data: Option<&Path>,
        looked: &mut Vec<String>,
    ) {
        match (opencode_db, data) {
            (Some(db), _) if db == ":memory:" => {
                if !self.quiet {
                    tonbo_core::note!("{STAGE}: note: OPENCODE_DB is :memory:, which leaves nothing on disk; no OpenCode database read");
                }
            }
            (Some(db), _) => {
                let db = Path::new(db);
                let path = match data {
                    Some(d) if db.is_relative() => d.join(db),
                    _ => db.to_path_buf(),
                };
                looked.push(path.display().to_string());
                if path.is_file() {
                    self.add_db(path);
                } else if !self.quiet {
                    tonbo_core::note!(
                        "{STAGE}: note: OPENCODE_DB names {}, which is not a file; not read",
                        path.display()
                    );
                }
            }
            (None, Some(d)) => {
                looked.push(d.join("opencode*.db").display().to_string());
                for db in dir_dbs(d) {
                    self.add_db(db);
                }
            }
            (None, None) => {}
        }
    }
}

/// The `crush.db` of every project in Crush's `projects.json`. A missing list is
/// not an error; one that cannot be read is reported and counted in `failed`.
fn crush_projects(list: &Path, failed: &mut u64, quiet: bool) -> Vec<PathBuf> {
    #[derive(Deserialize)]
    struct Projects {
        #[serde(default)]
        projects: Vec<Project>,
    }
    #[derive(Deserialize)]
    struct Project {
        #[serde(default)]
        path: Option<String>,
        #[serde(default)]
        data_dir: Option<String>,
    }
    let text = match fs::read_to_string(list) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            if !quiet {
                tonbo_core::note!("{STAGE}: cannot read {}: {e}", list.display());
            }
            *failed += 1;
            return Vec::new();
        }
    };
    let projects: Projects = match serde_json::from_str(&text) {
        Ok(p) => p,
        Err(e) => {
            if quiet {
                *failed += 1;
                return Vec::new();
            }
            tonbo_core::note!(
                "{STAGE}: cannot read {}: not a Crush project list ({e})",
                list.display()
            );
            *failed += 1;
            return Vec::new();
        }
    };
    let mut dbs = Vec::new();
    for p in projects.projects {
        let data_dir = match (p.data_dir.filter(|d| !d.is_empty()), p.path) {
            (Some(d), Some(path)) if Path::new(&d).is_relative() => Path::new(&path).join(d),
            (Some(d), _) => PathBuf::from(d),
            // The default data folder of a project.
            (None, Some(path)) => Path::new(&path).join(".crush"),
            (None, None) => continue,
        };
        let db = data_dir.join("crush.db");
        if db.is_file() {
            dbs.push(db);
        } else if !quiet {
            tonbo_core::note!(
                "{STAGE}: note: Crush project data {} (from {}) has no crush.db; nothing read there",
                data_dir.display(),
                list.display()
            );
        }
    }
    dbs
}

/// Whether a file name is one of the databases a data folder may hold: `opencode*.db` (channel
/// databases and forks), `crush.db`, `termai.db` (G1 before 2025-04-16).
pub fn is_db_name(name: &str) -> bool {
    (name.starts_with("opencode") && name.ends_with(".db"))
        || name == "crush.db"
        || name == "termai.db"
}

/// The databases in a folder, `opencode.db` first, then by name.
pub fn dir_dbs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_db_name(n))
        .collect();
    names.sort_by(|a, b| (a != "opencode.db", a).cmp(&(b != "opencode.db", b)));
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// The layout of a folder that is itself a JSON store, by its sub-folders.
pub fn store_kind(dir: &Path) -> Option<StoreKind> {
    if dir.join("session").join("info").is_dir() {
        Some(StoreKind::T0)
    } else if dir.join("session").is_dir()
        || dir.join("message").is_dir()
        || dir.join("part").is_dir()
        || dir.file_name() == Some(OsStr::new("storage"))
    {
        Some(StoreKind::T1)
    } else {
        None
    }
}

/// The JSON stores of a data folder: `storage/` (T1) and `project/*/storage/` (T0),
/// each read as what its sub-folders show.
pub fn dir_stores(data: &Path) -> Vec<JsonStore> {
    let mut stores = Vec::new();
    let storage = data.join("storage");
    if storage.is_dir() {
        stores.push(JsonStore {
            kind: store_kind(&storage).unwrap_or(StoreKind::T1),
            root: storage,
        });
    }
    if let Ok(entries) = fs::read_dir(data.join("project")) {
        let mut roots: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("storage"))
            .filter(|p| p.is_dir())
            .collect();
        roots.sort();
        for root in roots {
            stores.push(JsonStore {
                kind: store_kind(&root).unwrap_or(StoreKind::T0),
                root,
            });
        }
    }
    stores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_folders_from_the_environment() {
        let env = Env {
            home: Some("/h".into()),
            ..Env::default()
        };
        assert_eq!(
            env.opencode_data(),
            Some(PathBuf::from("/h/.local/share/opencode"))
        );
        assert_eq!(
            env.crush_global(),
            Some(PathBuf::from("/h/.local/share/crush"))
        );
        let env = Env {
            xdg_data_home: Some("/x".into()),
            ..env
        };
        assert_eq!(env.opencode_data(), Some(PathBuf::from("/x/opencode")));
        assert_eq!(env.crush_global(), Some(PathBuf::from("/x/crush")));
        let env = Env {
            crush_global_data: Some("/g".into()),
            ..env
        };
        assert_eq!(env.crush_global(), Some(PathBuf::from("/g")));
        assert_eq!(Env::default().opencode_data(), None);
    }

    #[test]
    fn database_names() {
        for yes in [
            "opencode.db",
            "opencode-beta.db",
            "opencode-.db",
            "opencode-local.db",
            "crush.db",
            "termai.db",
        ] {
            assert!(is_db_name(yes), "{yes}");
        }
        for no in [
            "opencode.db-wal",
            "opencode.db-shm",
            "crush.db-wal",
            "other.db",
            "opencode.sqlite",
        ] {
            assert!(!is_db_name(no), "{no}");
        }
    }

    #[test]
    fn folders_and_their_sources() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for f in ["opencode-beta.db", "opencode.db", "opencode.db-wal", "x.db"] {
            fs::write(d.join(f), "").unwrap();
        }
        fs::create_dir_all(d.join("storage/session/global")).unwrap();
        fs::create_dir_all(d.join("project/b/storage/session/info")).unwrap();
        fs::create_dir_all(d.join("project/a/storage/session/info")).unwrap();
        assert_eq!(
            dir_dbs(d),
            vec![d.join("opencode.db"), d.join("opencode-beta.db")]
        );
        assert_eq!(
            dir_stores(d),
            vec![
                JsonStore {
                    root: d.join("storage"),
                    kind: StoreKind::T1
                },
                JsonStore {
                    root: d.join("project/a/storage"),
                    kind: StoreKind::T0
                },
                JsonStore {
                    root: d.join("project/b/storage"),
                    kind: StoreKind::T0
                },
            ]
        );
        let mut s = Sources::default();
        s.add_path(d);
        s.add_path(&d.join("opencode.db"));
        s.add_path(&d.join("storage"));
        assert_eq!(s.dbs.len(), 2);
        assert_eq!(s.stores.len(), 3);
        assert_eq!(s.failed, 0);
        s.add_path(&d.join("missing"));
        assert_eq!(s.failed, 1);

        let t0 = JsonStore {
            root: "/s".into(),
            kind: StoreKind::T0,
        };
        assert_eq!(
            t0.message_dir("ses"),
            PathBuf::from("/s/session/message/ses")
        );
        assert_eq!(
            t0.part_dir("ses", "msg"),
            PathBuf::from("/s/session/part/ses/msg")
        );
        let t1 = JsonStore {
            root: "/s".into(),
            kind: StoreKind::T1,
        };
        assert_eq!(t1.message_dir("ses"), PathBuf::from("/s/message/ses"));
        assert_eq!(t1.part_dir("ses", "msg"), PathBuf::from("/s/part/msg"));
    }
}
