//! `qwen-read --follow`: Qwen Code appends one record per line and never rewrites a session
//! file (FORMAT.md, "How it writes"), so each file is tailed ([`FileTail`]): only complete new
//! lines are passed on, a partial last line waits for its newline. A file read again from its
//! start (replaced or truncated) passes on only lines not passed on before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use tonbo_core::follow::{Backfill, FileTail, FollowArgs, Followed, Polled};

use crate::files::{session_of, walk};
use crate::read::Reader;
use crate::STAGE;

/// What following saw, for the summary line.
#[derive(Debug, Default, Clone)]
pub struct FollowStats {
    /// Files read again from their start (replaced, truncated).
    pub rewrites: u64,
}

impl FollowStats {
    /// `, N rewrites seen`, the end of the summary line.
    pub fn summary_suffix(&self) -> String {
        format!(", {} rewrites seen", self.rewrites)
    }
}

struct Follower<'r, 'a> {
    reader: &'r mut Reader<'a>,
    roots: Vec<PathBuf>,
    tails: BTreeMap<PathBuf, FileTail>,
    /// Files `--modified-after` left out, with their modification time then: followed once it
    /// changes (read whole).
    waiting: HashMap<PathBuf, Option<SystemTime>>,
    stats: FollowStats,
}

/// Reads what `roots` hold, then follows them until `stop` is set.
pub fn follow(
    reader: &mut Reader,
    roots: Vec<PathBuf>,
    args: &FollowArgs,
    stop: Arc<AtomicBool>,
) -> Result<FollowStats> {
    reader.reported = Some(HashSet::new());
    let mut follower = Follower {
        reader,
        roots,
        tails: BTreeMap::new(),
        waiting: HashMap::new(),
        stats: FollowStats::default(),
    };
    tonbo_core::follow::follow(&mut follower, args, STAGE, &stop)?;
    Ok(follower.stats)
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Followed for Follower<'_, '_> {
    fn roots(&self) -> Vec<PathBuf> {
        self.roots.clone()
    }

    fn backfill(&mut self) -> Result<Backfill> {
        self.look(true)?;
        Ok(if self.stopped() {
            Backfill::Stopped
        } else {
            Backfill::Done
        })
    }

    fn changed(&mut self, paths: &[PathBuf]) -> Result<()> {
        let known = paths.iter().all(|p| self.tails.contains_key(p));
        if !known {
            return self.look(false);
        }
        for p in paths {
            self.poll(p)?;
        }
        Ok(())
    }

    fn rescan(&mut self) -> Result<()> {
        self.look(false)
    }

    fn last_look(&mut self) -> Result<()> {
        // The stop flag is set: this look runs to its end.
        let stop = self.reader.io.stop.take();
        let looked = self.look(false);
        self.reader.io.stop = stop;
        looked
    }

    fn flush(&mut self) -> Result<()> {
        self.reader.io.out.flush()?;
        Ok(())
    }
}

impl Follower<'_, '_> {
    fn stopped(&self) -> bool {
        self.reader.stopped()
    }

    /// Walks every root: new session files are added (the first look leaves out what
    /// `--modified-after` says), every file is polled.
    fn look(&mut self, first: bool) -> Result<()> {
        for root in self.roots.clone() {
            if !root.exists() {
                continue;
            }
            let found = walk(&root);
            for (path, message) in &found.errors {
                self.reader.unreadable(path, message);
            }
            for path in found.files {
                if self.reader.stopped() {
                    return Ok(());
                }
                self.add(path, first)?;
            }
        }
        let paths: Vec<PathBuf> = self.tails.keys().cloned().collect();
        for p in paths {
            self.poll(&p)?;
        }
        Ok(())
    }

    fn add(&mut self, path: PathBuf, first: bool) -> Result<()> {
        if self.tails.contains_key(&path) {
            return Ok(());
        }
        if first && self.reader.too_old(&path) {
            self.reader.stats.skipped_old += 1;
            self.waiting.insert(path.clone(), mtime(&path));
            return Ok(());
        }
        if let Some(then) = self.waiting.get(&path) {
            if *then == mtime(&path) {
                return Ok(());
            }
            self.waiting.remove(&path);
        }
        self.reader.stats.files += 1;
        self.tails.insert(path.clone(), FileTail::new(path));
        Ok(())
    }

    fn poll(&mut self, path: &Path) -> Result<()> {
        let Some(tail) = self.tails.get_mut(path) else {
            return Ok(());
        };
        let name = path.display().to_string();
        let session = session_of(path);
        let reader = &mut *self.reader;
        // An error writing a record ends the run; one reading the file is the file's.
        let mut fatal = None;
        let polled = tail.poll(|line| -> std::io::Result<()> {
            reader.emit_line(&name, &session, line).map_err(|e| {
                fatal = Some(e);
                std::io::Error::other("output failed")
            })
        });
        if let Some(e) = fatal {
            return Err(e);
        }
        match polled {
            Ok(Polled::Gone) => {
                self.tails.remove(path);
            }
            Ok(Polled::Rewritten { .. }) => self.stats.rewrites += 1,
            Ok(_) => {}
            Err(e) => self.reader.unreadable(path, e),
        }
        Ok(())
    }
}
