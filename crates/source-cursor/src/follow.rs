//! `--follow`: read what exists, as a plain run does, then keep watching the databases and
//! write what is added, until SIGINT/SIGTERM. Driven by [`tonbo_core::follow::follow`], whose
//! rules hold.
//!
//! What is Cursor's own (FORMAT.md, "How Cursor writes"): Cursor updates rows of one SQLite
//! database in place (WAL mode), so there is no file to tail. Every wake (a change to the
//! database or its `-wal`, or the poll) reads the database again, read-only, in one read
//! transaction, and writes only what is new or changed (by bubble id and a hash of its bytes):
//!
//! * a chat whose `lastUpdatedAt` did not move, and that holds nothing back, is not read again
//!   (the periodic rescan reads every chat whatever its stamp);
//! * a message still being generated (in the chat's `generatingBubbleIds`, or the last of a
//!   chat whose `status` is `generating`) is held back until it is not; so is an assistant
//!   message that is the newest of a chat that changed since the last look, until a look finds
//!   the chat quiet (any wake, at the latest the periodic rescan): Cursor may not persist that a
//!   message is still streaming, and a text written half would map once, half; a message the
//!   chat names but whose row is not there yet is looked for again at the next wake;
//! * a message written before whose bytes changed (a tool call that got its result) is written
//!   again with the same `at`; the mapping sends only the parts it did not send before;
//! * at SIGINT/SIGTERM one last look writes everything, held-back messages included.

use std::path::PathBuf;

use anyhow::Result;
use tonbo_core::follow::{Backfill, Followed, Watching};

use crate::read::Reader;
use crate::store::discover;
use crate::STAGE;

/// A [`Reader`] following the databases under its roots.
pub struct Following<'r, 'a> {
    reader: &'r mut Reader<'a>,
    roots: Vec<PathBuf>,
    dbs: Vec<PathBuf>,
}

impl<'r, 'a> Following<'r, 'a> {
    pub fn new(reader: &'r mut Reader<'a>, roots: Vec<PathBuf>) -> Following<'r, 'a> {
        reader.hold_generating = true;
        Following {
            reader,
            roots,
            dbs: Vec::new(),
        }
    }

    fn find(&mut self) {
        let mut dbs: Vec<PathBuf> = self
            .roots
            .iter()
            .filter(|r| r.exists())
            .flat_map(|r| discover(r))
            .collect();
        dbs.dedup();
        self.dbs = dbs;
    }

    fn read_all(&mut self) -> Result<()> {
        for db in self.dbs.clone() {
            if db.exists() {
                self.reader.read_db(&db)?;
            }
        }
        Ok(())
    }
}

impl Followed for Following<'_, '_> {
    fn roots(&self) -> Vec<PathBuf> {
        self.roots.clone()
    }

    fn backfill(&mut self) -> Result<Backfill> {
        self.find();
        self.read_all()?;
        Ok(match self.reader.stopped {
            true => Backfill::Stopped,
            false => Backfill::Done,
        })
    }

    fn backfilled(&mut self, how: &Watching) {
        tonbo_core::note!(
            "{STAGE}: following {} Cursor databases ({how})",
            self.dbs.len()
        );
    }

    fn changed(&mut self, _paths: &[PathBuf]) -> Result<()> {
        if self.dbs.is_empty() {
            self.find();
        }
        self.read_all()
    }

    fn rescan(&mut self) -> Result<()> {
        self.find();
        self.reader.recheck_all = true;
        let r = self.read_all();
        self.reader.recheck_all = false;
        r
    }

    fn last_look(&mut self) -> Result<()> {
        self.reader.io.stop = None;
        self.reader.hold_generating = false;
        self.find();
        self.read_all()
    }

    fn flush(&mut self) -> Result<()> {
        self.reader.io.out.flush()?;
        Ok(())
    }
}
