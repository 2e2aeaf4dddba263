//! `--follow`: read what exists, as a plain run does, then keep watching and write what is
//! added, until SIGINT/SIGTERM. Driven by [`tonbo_core::follow::follow`], whose rules hold.
//!
//! What is Copilot CLI's own (FORMAT.md, "How the CLI writes"):
//!
//! * **Event files** (`events.jsonl`, flat `.jsonl`) are appended to: each is tailed with a
//!   [`FileTail`], so a line goes out once its newline is written, a rewritten file gives only
//!   lines not given before, and a deleted file is released.
//! * **Legacy documents** are rewritten whole by the versions that wrote them: a changed one is
//!   read again and only messages past those already written go out (a message's key is its
//!   index in `chatMessages`, which those versions only appended to). A document that is not
//!   whole JSON (caught half-written) waits for the next change. One that shrank is noted and
//!   nothing is sent again.
//! * **New sessions**: every wake for a path no followed file has, and every rescan, walks the
//!   roots again.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use tonbo_core::follow::{Backfill, FileTail, FollowArgs, Followed, Polled, Watching};

use crate::files::{find, Found, Layout};
use crate::read::Reader;
use crate::STAGE;

/// One followed file.
enum Tracked {
    Lines(Box<FileTail>),
    /// A legacy document: messages written so far, and the file's last seen (mtime, length).
    Legacy {
        sent: Option<usize>,
        seen: Option<(SystemTime, u64)>,
    },
}

struct Follower<'r, 'a> {
    r: &'r mut Reader<'a>,
    roots: Vec<PathBuf>,
    quiet: bool,
    files: BTreeMap<PathBuf, (Found, Tracked)>,
    /// Files left out by `--modified-after` (counted once; followed once they change).
    old: HashSet<PathBuf>,
    /// Files seen rewritten (a legacy document's new versions, a rewritten event file).
    rewrites: u64,
}

/// Reads `roots`, then follows them until SIGINT/SIGTERM; returns how many rewrites were seen.
pub fn follow(
    reader: &mut Reader,
    roots: Vec<PathBuf>,
    args: &FollowArgs,
    quiet: bool,
) -> Result<u64> {
    let stop = reader
        .io
        .stop
        .clone()
        .unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
    let mut f = Follower {
        r: reader,
        roots,
        quiet,
        files: BTreeMap::new(),
        old: HashSet::new(),
        rewrites: 0,
    };
    tonbo_core::follow::follow(&mut f, args, STAGE, &stop)?;
    Ok(f.rewrites)
}

impl Follower<'_, '_> {
    /// Walks the roots: new session files are tracked and read; known ones looked at.
    fn scan(&mut self) -> Result<()> {
        for root in self.roots.clone() {
            let (found, errors) = find(&root);
            for e in errors {
                tonbo_core::note!("{STAGE}: {e}");
            }
            for f in found {
                if !self.files.contains_key(&f.path) {
                    if self.r.is_old(&f.path) {
                        if self.old.insert(f.path.clone()) {
                            self.r.stats.skipped_old += 1;
                        }
                        continue;
                    }
                    self.r.count_file(&f);
                    let tracked = match f.layout {
                        Layout::Legacy => Tracked::Legacy {
                            sent: None,
                            seen: None,
                        },
                        _ => Tracked::Lines(Box::new(FileTail::new(f.path.clone()))),
                    };
                    self.files.insert(f.path.clone(), (f, tracked));
                }
            }
        }
        self.poll_all()
    }

    fn poll_all(&mut self) -> Result<()> {
        let paths: Vec<PathBuf> = self.files.keys().cloned().collect();
        for p in paths {
            self.poll(&p)?;
        }
        Ok(())
    }

    fn poll(&mut self, path: &PathBuf) -> Result<()> {
        let Some((found, tracked)) = self.files.remove(path) else {
            return Ok(());
        };
        let tracked = match tracked {
            Tracked::Lines(mut tail) => {
                let r = &mut *self.r;
                let polled = tail.poll(|line| r.line(&found, line.number, line.bytes, true));
                match polled {
                    Ok(Polled::Rewritten { .. }) => self.rewrites += 1,
                    Ok(_) => {}
                    Err(e) => tonbo_core::note!("{STAGE}: {e:#}"),
                }
                Tracked::Lines(tail)
            }
            Tracked::Legacy { sent, seen } => self.poll_legacy(&found, sent, seen)?,
        };
        self.files.insert(path.clone(), (found, tracked));
        Ok(())
    }

    fn poll_legacy(
        &mut self,
        f: &Found,
        sent: Option<usize>,
        seen: Option<(SystemTime, u64)>,
    ) -> Result<Tracked> {
        let now = std::fs::metadata(&f.path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if now.is_none() || now == seen {
            return Ok(Tracked::Legacy { sent, seen });
        }
        let Ok(text) = std::fs::read_to_string(&f.path) else {
            return Ok(Tracked::Legacy { sent, seen });
        };
        let from = sent.unwrap_or(0);
        let held = self.r.legacy(f, &text, from, sent.is_none())?;
        let sent = match (held, sent) {
            // Not whole JSON: looked at again on the next change.
            (None, _) => return Ok(Tracked::Legacy { sent, seen: None }),
            (Some(n), Some(before)) if n < before => {
                tonbo_core::note!(
                    "{STAGE}: note: {} now holds {n} messages, {before} were written before; nothing is sent again",
                    f.path.display()
                );
                self.rewrites += 1;
                Some(before)
            }
            (Some(n), Some(_)) => {
                self.rewrites += 1;
                Some(n)
            }
            (Some(n), None) => Some(n),
        };
        Ok(Tracked::Legacy { sent, seen: now })
    }
}

impl Followed for Follower<'_, '_> {
    fn roots(&self) -> Vec<PathBuf> {
        self.roots.clone()
    }

    fn backfill(&mut self) -> Result<Backfill> {
        self.scan()?;
        Ok(if self.r.io.stop_set() {
            Backfill::Stopped
        } else {
            Backfill::Done
        })
    }

    fn backfilled(&mut self, how: &Watching) {
        if !self.quiet {
            tonbo_core::note!(
                "{STAGE}: backfill done; following {} files ({how})",
                self.files.len()
            );
        }
    }

    fn changed(&mut self, paths: &[PathBuf]) -> Result<()> {
        if paths.iter().all(|p| self.files.contains_key(p)) {
            for p in paths {
                self.poll(p)?;
            }
            Ok(())
        } else {
            self.scan()
        }
    }

    fn rescan(&mut self) -> Result<()> {
        self.scan()
    }

    fn last_look(&mut self) -> Result<()> {
        self.scan()
    }

    fn flush(&mut self) -> Result<()> {
        Ok(self.r.io.out.flush()?)
    }
}
