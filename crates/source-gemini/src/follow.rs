//! `--follow`: every chat file under the roots kept open as a [`ChatFile`], read again on each
//! change from where it stopped (a JSONL chat: the lines appended; a replaced or truncated one,
//! and a legacy document, again whole, its replay writing only what changed). The newest
//! message of a file is written once the file has been quiet for a poll interval, or at the
//! last look (FORMAT.md, "What gemini-read writes").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tonbo_core::follow::{Backfill, Followed};

use crate::files::discover;
use crate::read::{ChatFile, Reader};

/// The chat files under some roots, followed.
pub struct Following<'r, 'a> {
    reader: &'r mut Reader<'a>,
    roots: Vec<PathBuf>,
    files: BTreeMap<PathBuf, ChatFile>,
    /// How long a file stays quiet before its newest message is written.
    quiet: Duration,
}

impl<'r, 'a> Following<'r, 'a> {
    pub fn new(reader: &'r mut Reader<'a>, roots: Vec<PathBuf>, quiet: Duration) -> Self {
        Following {
            reader,
            roots,
            files: BTreeMap::new(),
            quiet,
        }
    }

    fn found(&self) -> Vec<PathBuf> {
        self.roots.iter().flat_map(|root| discover(root)).collect()
    }

    fn modified_before(after: Option<SystemTime>, path: &Path) -> bool {
        after.is_some_and(|after| {
            std::fs::metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t <= after)
        })
    }

    /// Reads what changed in every chat file (new ones from their start), then writes the
    /// newest message of each file quiet long enough (of every file when `all`).
    fn look(&mut self, all: bool) -> anyhow::Result<()> {
        for path in self.found() {
            if !self.files.contains_key(&path)
                && !Self::modified_before(self.reader.modified_after, &path)
            {
                if let Some(file) = ChatFile::new(path.clone()) {
                    self.files.insert(path, file);
                }
            }
        }
        for file in self.files.values_mut() {
            self.reader.read(file, true)?;
            if file.pending() && (all || file.changed_at.elapsed() >= self.quiet) {
                self.reader.settle(file)?;
            }
        }
        Ok(())
    }
}

impl Followed for Following<'_, '_> {
    fn roots(&self) -> Vec<PathBuf> {
        self.roots.clone()
    }

    fn backfill(&mut self) -> anyhow::Result<Backfill> {
        for path in self.found() {
            if self.reader.stopped || self.reader.io.stop_set() {
                self.reader.stopped = true;
                return Ok(Backfill::Stopped);
            }
            if self.reader.too_old(&path) {
                continue;
            }
            let Some(mut file) = ChatFile::new(path.clone()) else {
                continue;
            };
            self.reader.read(&mut file, true)?;
            // The end of a file in a backfill settles its last message.
            self.reader.settle(&mut file)?;
            self.files.insert(path, file);
        }
        Ok(if self.reader.stopped {
            Backfill::Stopped
        } else {
            Backfill::Done
        })
    }

    fn changed(&mut self, _paths: &[PathBuf]) -> anyhow::Result<()> {
        // New files appear as events on their folder: every file is looked at (a stat each).
        self.look(false)
    }

    fn rescan(&mut self) -> anyhow::Result<()> {
        self.look(false)
    }

    fn last_look(&mut self) -> anyhow::Result<()> {
        let stop = self.reader.io.stop.take();
        let looked = self.look(true);
        self.reader.io.stop = stop;
        looked
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.reader.io.out.flush()?;
        Ok(())
    }
}
