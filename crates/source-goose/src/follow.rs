//! `--follow`: after reading what exists, read the stores again whenever their folders
//! change (or on every poll), writing only what is new: message rows after the last one read
//! of their session and whose `message_id` was not written before (a compaction or an import
//! rewrites a conversation under new row ids, the same ids), a session record when what its
//! events carry changed, the lines of an older `.jsonl` after those written.

use std::path::PathBuf;

use anyhow::Result;
use tonbo_core::follow::{Backfill, Followed};

use crate::read::Reader;

/// A [`Reader`] following the stores under its inputs.
pub struct Follower<'r, 'a> {
    pub reader: &'r mut Reader<'a>,
    pub inputs: Vec<PathBuf>,
}

impl Followed for Follower<'_, '_> {
    fn roots(&self) -> Vec<PathBuf> {
        // The sessions folders (the database's -wal changes there), else the inputs.
        let mut roots: Vec<PathBuf> = Vec::new();
        for input in &self.inputs {
            let stores = crate::roots::stores_under(input);
            if stores.is_empty() {
                roots.push(input.clone());
            }
            for s in stores {
                let dir = if s.dir.is_file() {
                    input.clone()
                } else {
                    s.dir
                };
                if !roots.contains(&dir) {
                    roots.push(dir);
                }
            }
        }
        roots
    }

    fn backfill(&mut self) -> Result<Backfill> {
        self.reader.read_inputs(&self.inputs)?;
        Ok(if self.reader.stopped() {
            Backfill::Stopped
        } else {
            Backfill::Done
        })
    }

    fn changed(&mut self, _paths: &[PathBuf]) -> Result<()> {
        self.rescan()
    }

    fn rescan(&mut self) -> Result<()> {
        self.reader.read_inputs(&self.inputs).map(|_| ())
    }

    fn last_look(&mut self) -> Result<()> {
        let inputs = self.inputs.clone();
        self.reader.heedless(|r| r.read_inputs(&inputs).map(|_| ()))
    }

    fn flush(&mut self) -> Result<()> {
        self.reader.flush()
    }
}
