//! One JSON store (T1/T0) followed by `--follow`.
//!
//! OpenCode 1.2+ no longer writes the JSON store, so this is for older installs. A
//! session is read again when it is new, when its file or its message folder changed
//! (modification times: a new message is a new file in `message/<ses>/`), or while it has held
//! messages (their message and part files are written in place as they stream).

use std::collections::HashMap;
use std::time::SystemTime;

use anyhow::Result;

use crate::{Reader, STAGE};

pub(crate) struct FollowedStore {
    /// Index into the reader's stores.
    pub index: usize,
    /// Per session: the modification times of its file and message folder at the last look.
    stamps: HashMap<String, [Option<SystemTime>; 2]>,
    read_once: bool,
}

impl FollowedStore {
    pub fn new(index: usize) -> FollowedStore {
        FollowedStore {
            index,
            stamps: HashMap::new(),
            read_once: false,
        }
    }

    /// Reads the sessions that are new or changed (all of them the first time); with `force`
    /// (the exit) also those whose record has not gone out.
    pub fn poll(&mut self, r: &mut Reader, force: bool) -> Result<()> {
        if !self.read_once {
            r.stats.stores += 1;
            r.stats.t1 += 1;
        }
        let source = r.stores[self.index].root.display().to_string();
        let files = r.list_store_sessions(self.index);
        let mut stamps = HashMap::with_capacity(files.len());
        let mut candidates = Vec::new();
        for (id, path) in files {
            let stamp = r.session_stamp(self.index, &id, &path);
            let again = r
                .gate
                .as_ref()
                .is_some_and(|g| g.read_again(&id, &source, force));
            if !self.read_once || self.stamps.get(&id) != Some(&stamp) || again {
                candidates.push((id.clone(), path));
            }
            stamps.insert(id, stamp);
        }
        let sessions = r.load_store_sessions(candidates)?;
        let before = r.stats.duplicates;
        for s in sessions {
            if r.stopped() {
                return Ok(());
            }
            r.read_json_session(self.index, s)?;
        }
        let dups = r.stats.duplicates - before;
        if !self.read_once && dups > 0 {
            tonbo_core::note!(
                "{STAGE}: note: {source}: {dups} sessions already read from a database or an earlier store; their messages missing there were merged into them"
            );
        }
        self.stamps = stamps;
        self.read_once = true;
        Ok(())
    }
}
