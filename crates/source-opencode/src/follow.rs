//! `opencode-read --follow`: read what exists, then keep writing what OpenCode and Crush add,
//! until SIGINT/SIGTERM.
//!
//! OpenCode is not files to tail (following it means polling rows in a read-only connection, not
//! following byte offsets), so [`tonbo_core::follow::FileTail`] has no use here; the follow
//! driver ([`tonbo_core::follow::follow`]) and its watcher only say when to look. Each database
//! (`follow/db.rs`) and JSON store (`follow/store.rs`) is looked at:
//!
//! * first, all of it, in the order of a plain run (every database, then every store: a
//!   database's session wins);
//! * then at every wake: a change of a database file or its `-wal`/`-journal`, or of a file
//!   under a store (filesystem events), and every `--poll-interval` when polling (or every 10
//!   intervals with events, in case one was missed). A look at a database that nothing was
//!   committed to since costs one `PRAGMA`;
//! * at the stop, once more, in full.
//!
//! What goes out is decided by the gate ([`Gate`]): a message once, only once it is final, in
//! its session's order, byte for byte the record a plain run writes for the same rows. Databases
//! and stores that appear later under the PATHs (or the default places) are picked up at the
//! next rescan; a database locked or mid-write is tried again at the next poll. A session that
//! OpenCode 2's import moves from T2 to T3 while followed is read on from T3 (its record is not
//! written again; messages whose ids the import kept are not either).
//!
//! Memory: per session followed, the ids of its messages written (and their update stamps);
//! per database, its sessions' update times; never message bodies.

pub(crate) mod db;
pub(crate) mod gate;
pub(crate) mod store;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use tonbo_core::follow::{Backfill, FollowArgs, Followed, Watching};

use crate::sources::{default_sources_with, is_db_name, Env, Sources};
use crate::{Reader, STAGE};

pub use gate::Gate;

/// Where the sources are: the PATHs given, or the default places.
#[derive(Debug, Clone)]
pub enum Spec {
    Paths(Vec<PathBuf>),
    Default(Env),
}

impl Spec {
    /// The sources there now; `quiet` for every look after the first.
    pub fn discover(&self, quiet: bool) -> Sources {
        match self {
            Spec::Paths(paths) => {
                let mut s = Sources::default();
                s.quiet = quiet;
                for p in paths {
                    s.add_path(p);
                }
                s
            }
            Spec::Default(env) => default_sources_with(env, quiet),
        }
    }

    /// The folders to watch: each PATH (a file's folder, for its `-wal`), or the default data
    /// folders.
    fn roots(&self) -> Vec<PathBuf> {
        match self {
            Spec::Paths(paths) => paths
                .iter()
                .map(|p| {
                    // A database's folder, for its `-wal`; a PATH not there yet is watched once
                    // it is (until then the rescans look for it).
                    if p.is_file() {
                        p.parent().map(Path::to_path_buf).unwrap_or_default()
                    } else {
                        p.clone()
                    }
                })
                .collect(),
            Spec::Default(env) => {
                let mut roots: Vec<PathBuf> = Vec::new();
                roots.extend(env.opencode_data());
                roots.extend(env.crush_global());
                if let Some(cwd) = &env.cwd {
                    roots.push(cwd.join(".opencode"));
                    roots.push(cwd.join(".crush"));
                }
                roots
            }
        }
    }
}

/// What following adds to the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FollowStats {
    /// Messages written and found changed later (not written again).
    pub rewrites: u64,
    /// Messages not final at the exit (not written).
    pub held: u64,
}

impl FollowStats {
    /// What is appended to the reader's summary line.
    pub fn summary_suffix(&self) -> String {
        format!(
            ", {} rewrites, {} messages held (not final)",
            self.rewrites, self.held
        )
    }
}

/// What a changed path means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// A database followed, its `-wal` or `-journal`.
    Db,
    /// A file named like a database (or its `-wal`, `-journal`) not followed yet.
    NewDb,
    /// Something under store `i`.
    Store(usize),
    /// Maybe a new source (a `storage` folder, Crush's `projects.json`).
    Source,
    /// Nothing read here (logs, snapshots, `-shm`).
    None,
}

struct Follower<'r, 'a> {
    reader: &'r mut Reader<'a>,
    spec: Spec,
    dbs: Vec<db::FollowedDb>,
    stores: Vec<store::FollowedStore>,
    /// Canonical paths of the databases and stores followed.
    known: HashSet<PathBuf>,
}

/// Reads what exists, then follows it until `stop` is set (SIGINT/SIGTERM), driven by
/// [`tonbo_core::follow::follow`]. Counts go to `reader.stats` and the returned
/// [`FollowStats`]; errors are fatal (writing stdout or the rejects file).
pub fn follow(
    reader: &mut Reader<'_>,
    spec: Spec,
    args: &FollowArgs,
    stop: &AtomicBool,
) -> Result<FollowStats> {
    reader.gate = Some(Gate::default());
    let sources = spec.discover(false);
    reader.stats.failed += sources.failed;
    let mut f = Follower {
        reader,
        spec,
        dbs: Vec::new(),
        stores: Vec::new(),
        known: HashSet::new(),
    };
    f.add(sources);
    tonbo_core::follow::follow(&mut f, args, STAGE, stop)?;
    for d in &f.dbs {
        f.reader.stats.failed += d.failures();
    }
    Ok(f.reader
        .gate
        .as_ref()
        .map_or_else(FollowStats::default, |gate| FollowStats {
            rewrites: gate.rewrites,
            held: gate.held(),
        }))
}

impl Followed for Follower<'_, '_> {
    /// The folders to watch: the PATHs or default folders, and the folders of the sources found
    /// (a Crush project's data folder is listed in `projects.json`), without nesting.
    fn roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.spec.roots();
        for d in &self.dbs {
            if let Some(parent) = d.path.parent() {
                roots.push(parent.to_path_buf());
            }
        }
        for s in &self.stores {
            roots.push(self.reader.stores[s.index].root.clone());
        }
        let mut roots: Vec<PathBuf> = roots
            .into_iter()
            .map(|r| {
                let r = if r.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    r
                };
                std::path::absolute(&r).unwrap_or(r)
            })
            .collect();
        roots.sort();
        roots.dedup();
        let all = roots.clone();
        roots.retain(|r| !all.iter().any(|o| o != r && r.starts_with(o)));
        roots
    }

    /// Every database, then every store, in the order of a plain run.
    fn backfill(&mut self) -> Result<Backfill> {
        self.poll_dbs(false)?;
        self.poll_stores(None, false)?;
        Ok(if self.reader.stopped() {
            Backfill::Stopped
        } else {
            Backfill::Done
        })
    }

    fn backfilled(&mut self, _how: &Watching) {
        // From here a signal ends the wait; the last look runs to its end.
        self.reader.interruptible = false;
    }

    /// Filesystem events: polls what they concern.
    fn changed(&mut self, paths: &[PathBuf]) -> Result<()> {
        let mut dbs = false;
        let mut discover = false;
        let mut stores: Vec<usize> = Vec::new();
        for p in paths {
            match self.classify(p) {
                Change::Db => dbs = true,
                Change::Store(i) => stores.push(i),
                Change::NewDb | Change::Source => discover = true,
                Change::None => {}
            }
        }
        if discover {
            let before = (self.dbs.len(), self.stores.len());
            self.rediscover();
            for i in before.1..self.stores.len() {
                stores.push(i);
            }
            dbs |= self.dbs.len() > before.0;
        }
        if dbs {
            // A database nothing was committed to since the last look costs a `PRAGMA`.
            self.poll_dbs(false)?;
        }
        stores.sort_unstable();
        stores.dedup();
        for i in stores {
            self.poll_stores(Some(i), false)?;
        }
        Ok(())
    }

    fn rescan(&mut self) -> Result<()> {
        self.rediscover();
        self.poll_dbs(false)?;
        self.poll_stores(None, false)
    }

    /// Whatever became final before the signal goes out; so do the records of sessions that
    /// have none yet.
    fn last_look(&mut self) -> Result<()> {
        if let Some(gate) = self.reader.gate.as_mut() {
            gate.last_sweep = true;
        }
        self.rediscover();
        self.poll_dbs(true)?;
        self.poll_stores(None, true)
    }

    /// Every wake's records go out now, whatever the pace of the writer.
    fn flush(&mut self) -> Result<()> {
        self.reader.io.out.flush()?;
        Ok(())
    }
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

impl Follower<'_, '_> {
    /// Starts following the sources not followed yet.
    fn add(&mut self, sources: Sources) {
        for path in sources.dbs {
            if self.known.insert(canonical(&path)) {
                self.dbs.push(db::FollowedDb::new(path));
            }
        }
        for store in sources.stores {
            if self.known.insert(canonical(&store.root)) {
                self.reader.stores.push(store);
                self.stores
                    .push(store::FollowedStore::new(self.reader.stores.len() - 1));
            }
        }
    }

    /// Looks for databases and stores that appeared.
    fn rediscover(&mut self) {
        let sources = self.spec.discover(true);
        self.add(sources);
    }

    fn poll_dbs(&mut self, force: bool) -> Result<()> {
        for d in &mut self.dbs {
            if self.reader.stopped() {
                break;
            }
            d.poll(self.reader, force)?;
        }
        Ok(())
    }

    /// Polls store `only`, or every store.
    fn poll_stores(&mut self, only: Option<usize>, force: bool) -> Result<()> {
        for (i, s) in self.stores.iter_mut().enumerate() {
            if self.reader.stopped() {
                break;
            }
            if only.is_none_or(|o| o == i) {
                s.poll(self.reader, force)?;
            }
        }
        Ok(())
    }

    fn classify(&self, path: &Path) -> Change {
        for (i, s) in self.stores.iter().enumerate() {
            let root = &self.reader.stores[s.index].root;
            let abs = std::path::absolute(root).unwrap_or_else(|_| root.clone());
            if path.starts_with(&abs) || path.starts_with(root) {
                return Change::Store(i);
            }
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Change::None;
        };
        let base = name
            .strip_suffix("-wal")
            .or_else(|| name.strip_suffix("-journal"))
            .unwrap_or(name);
        let known_db = self.dbs.iter().any(|d| {
            let abs = std::path::absolute(&d.path).unwrap_or_else(|_| d.path.clone());
            path.parent() == abs.parent() && abs.file_name().and_then(|n| n.to_str()) == Some(base)
        });
        if known_db {
            Change::Db
        } else if is_db_name(base) {
            Change::NewDb
        } else if matches!(name, "storage" | "project" | "projects.json") {
            Change::Source
        } else {
            Change::None
        }
    }
}
