//! `--follow`: the task folders under the inputs, read again whenever one of their files
//! changes, by [`tonbo_core::follow::follow`]. Every file is a JSON document rewritten whole,
//! so there is no tail: a changed folder is re-read and the reader's [`crate::read::TaskState`]
//! sends only the elements whose `at` was never sent. A torn document (a write caught midway)
//! gives what precedes the cut and the rest waits for its next change; a truncated history (a
//! checkpoint restore) sends nothing again and counts a rewind; the entries written after it
//! are new.

use std::path::{Path, PathBuf};

use anyhow::Result;
use tonbo_core::follow::{Backfill, Followed, Watching};

use crate::read::Reader;
use crate::roots::{is_task_dir, task_dirs};
use crate::STAGE;

/// The inputs (PATHs, or the default storage folders) being followed.
pub struct Follower<'r, 'a> {
    pub reader: &'r mut Reader<'a>,
    pub inputs: Vec<PathBuf>,
}

impl Follower<'_, '_> {
    /// Reads every task folder under the inputs; `Stopped` when a signal came first.
    fn read_all(&mut self) -> Result<Backfill> {
        for input in self.inputs.clone() {
            // A default place (or a PATH) that does not exist yet may appear later.
            if !input.exists() {
                continue;
            }
            let mut unreadable = Vec::new();
            let dirs = task_dirs(&input, &mut |e| unreadable.push(e));
            for e in unreadable {
                self.reader.failed(&e);
            }
            for dir in dirs {
                if self.reader.stopped() {
                    return Ok(Backfill::Stopped);
                }
                self.reader.read_task(&dir, true, false)?;
            }
        }
        Ok(Backfill::Done)
    }
}

/// The task folder a changed path belongs to: the folder itself, or the folder of one of its
/// files.
fn task_of(path: &Path) -> Option<PathBuf> {
    if is_task_dir(path) {
        return Some(path.to_path_buf());
    }
    let parent = path.parent()?;
    is_task_dir(parent).then(|| parent.to_path_buf())
}

impl Followed for Follower<'_, '_> {
    fn roots(&self) -> Vec<PathBuf> {
        // A storage folder's `tasks/` and `state/`, not the folder itself: Cline keeps its
        // checkpoints' git repositories beside them.
        let mut roots = Vec::new();
        for input in &self.inputs {
            if input.join("tasks").is_dir() {
                roots.push(input.join("tasks"));
                roots.push(input.join("state"));
            } else {
                roots.push(input.clone());
            }
        }
        roots
    }

    fn backfill(&mut self) -> Result<Backfill> {
        self.read_all()
    }

    fn backfilled(&mut self, how: &Watching) {
        let tasks = self.reader.tasks.len();
        tonbo_core::note!("{STAGE}: backfill done; following {tasks} task folders ({how})");
    }

    fn changed(&mut self, paths: &[PathBuf]) -> Result<()> {
        let mut dirs: Vec<PathBuf> = paths.iter().filter_map(|p| task_of(p)).collect();
        dirs.sort();
        dirs.dedup();
        if paths.iter().any(|p| p.ends_with("state/taskHistory.json")) {
            // A history item written after its task's first messages: a full look sends it.
            return self.rescan();
        }
        for dir in dirs {
            self.reader.read_task(&dir, true, true)?;
        }
        Ok(())
    }

    fn rescan(&mut self) -> Result<()> {
        self.read_all().map(|_| ())
    }

    fn last_look(&mut self) -> Result<()> {
        self.reader.io.stop = None;
        self.rescan()
    }

    fn flush(&mut self) -> Result<()> {
        Ok(self.reader.io.out.flush()?)
    }
}
