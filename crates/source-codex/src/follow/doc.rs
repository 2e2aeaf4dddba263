//! Following a V0 or seed document. The TypeScript CLI rewrites a V0 document whole after each
//! item, and not atomically: on a change the document is read again, skipped while it is not
//! valid JSON (a rewrite half-way), and only the items not written before go out: by index while
//! the items already written are unchanged, else by a hash of their content. Its session record
//! goes out once, from the first version read.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::fs;
use std::hash::Hasher;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use anyhow::Result;
use serde_json::value::RawValue;

use super::{Entry, Follower, Phase, Step};
use crate::doc::{self, DocKind};
use crate::lines::{compact_json, open_document};
use crate::read::{Stopped, CHECK_EVERY};
use crate::record::{emit, At};

/// A V0 or seed document followed version by version.
#[derive(Default)]
pub(super) struct DocState {
    /// The version last read.
    stamp: Option<Stamp>,
    /// Its kind and session, from the first version that told them.
    pub(super) kind: Option<DocKind>,
    session: String,
    written: Written,
    /// The version last seen was not whole JSON (or not read): waiting for the next.
    pub(super) waiting: bool,
}

/// Identity, length and modification time: another value means another version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    id: (u64, u64),
    len: u64,
    mtime: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let id = (0, 0);
        Stamp {
            id,
            len: meta.len(),
            mtime: meta.modified().ok(),
        }
    }
}

/// The items written so far, by the hash of their compact text.
#[derive(Default)]
struct Written {
    /// Of the version last read, by index.
    prefix: Vec<u64>,
    /// Every item written.
    seen: HashSet<u64>,
}

/// One read of a version's items, telling the new ones.
struct Pass<'w> {
    written: &'w mut Written,
    /// This version's hashes, by index, so far.
    next: Vec<u64>,
    /// An item written before is not where it was: from here on, new is by content.
    diverged: bool,
}

impl Pass<'_> {
    fn new(written: &mut Written) -> Pass<'_> {
        let next = Vec::with_capacity(written.prefix.len() + 1);
        Pass {
            written,
            next,
            diverged: false,
        }
    }

    /// Whether the next item, whose hash is `h`, was not written before (and is now taken as
    /// written). By index while the items written before are where they were; by content once
    /// one of them changed.
    fn is_new(&mut self, h: u64) -> bool {
        let i = self.next.len();
        self.next.push(h);
        let prefix = &self.written.prefix;
        let new = if self.diverged {
            !self.written.seen.contains(&h)
        } else if i < prefix.len() {
            if prefix[i] == h {
                false
            } else {
                self.diverged = true;
                !self.written.seen.contains(&h)
            }
        } else {
            true
        };
        if new {
            self.written.seen.insert(h);
        }
        new
    }

    /// Keeps this version's items as those to compare the next version with by index, when it
    /// was read `whole`, or changed, or read as far as the last; a read cut short by a damaged
    /// version keeps the longer one.
    fn keep(self, whole: bool) {
        if whole || self.diverged || self.next.len() >= self.written.prefix.len() {
            self.written.prefix = self.next;
        }
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

impl Follower<'_, '_> {
    pub(super) fn poll_doc(&mut self, path: &Path, d: &mut DocState, phase: Phase) -> Result<Step> {
        let meta = match self.readable(path, fs::metadata(path)) {
            Ok(m) => m,
            Err(step) => return Ok(step),
        };
        let stamp = Stamp::of(&meta);
        if d.stamp == Some(stamp) {
            return Ok(Step::Keep);
        }
        let reader = match self.readable(path, open_document(path)) {
            Ok(r) => r,
            Err(step) => return Ok(step),
        };
        self.failing.remove(path);
        let again = d.stamp.is_some() && d.kind.is_some();
        d.stamp = Some(stamp);
        let kind = match self.doc_kind(path, d, reader, phase)? {
            Ok(kind) => kind,
            Err(step) => return Ok(step),
        };
        if again {
            self.rewrites += 1;
        }
        let reader = match self.readable(path, open_document(path)) {
            Ok(r) => r,
            Err(step) => {
                if matches!(step, Step::Keep) {
                    d.stamp = None;
                }
                return Ok(step);
            }
        };
        self.doc_items(path, d, kind, reader, phase)
    }

    /// The kind of the document: known from an earlier version, or told by this one (whose
    /// session record then goes out); else the step to take (wait for the next version, or
    /// give up on a file that is not a session document).
    fn doc_kind(
        &mut self,
        path: &Path,
        d: &mut DocState,
        reader: impl Read,
        phase: Phase,
    ) -> Result<Result<DocKind, Step>> {
        let (head, res) = doc::read_head(reader);
        if res.is_err() && phase == Phase::Follow {
            // A rewrite half-way (the whole file is rewritten, and not atomically): the next
            // version is read when it comes.
            d.waiting = true;
            return Ok(Err(Step::Keep));
        }
        let name = path.display().to_string();
        match (d.kind, head.kind()) {
            (Some(kind), _) => Ok(Ok(kind)),
            (None, Some(kind)) => {
                let (session, record) = self.r.doc_session(path, &head, kind);
                let session_kind = kind.records().0;
                emit(
                    self.r.io.out,
                    session_kind,
                    &session,
                    &record,
                    &name,
                    At::Row("session"),
                )?;
                self.r.stats.records += 1;
                d.kind = Some(kind);
                d.session = session;
                Ok(Ok(kind))
            }
            (None, None) => {
                if res.as_ref().is_err_and(serde_json::Error::is_eof) {
                    // Empty, or cut before its kind shows: most likely being written.
                    d.waiting = true;
                    return Ok(Err(Step::Keep));
                }
                // Not a session document: rejected as a plain run rejects it.
                self.r.doc_not_told(&name, &head, res)?;
                Ok(Err(Step::Become(Entry::Done)))
            }
        }
    }

    /// Writes the items of this version that were not written before.
    fn doc_items(
        &mut self,
        path: &Path,
        d: &mut DocState,
        kind: DocKind,
        reader: impl Read,
        phase: Phase,
    ) -> Result<Step> {
        let name = path.display().to_string();
        let r = &mut *self.r;
        let out = &mut *r.io.out;
        let stop = &self.stop;
        let item_kind = kind.records().1;
        let mut pass = Pass::new(&mut d.written);
        let session = &d.session;
        let mut written = 0u64;
        let mut row = String::new();
        let streamed = doc::stream_items(reader, kind.array(), &mut |index, item: &RawValue| {
            let text = compact_json(item.get());
            if !pass.is_new(hash(text.as_bytes())) {
                return Ok(());
            }
            row.clear();
            row.push_str(&index.to_string());
            emit(out, item_kind, session, &text, &name, At::Row(&row))?;
            written += 1;
            if written.is_multiple_of(CHECK_EVERY) && stop.load(Ordering::Relaxed) {
                return Err(Stopped.into());
            }
            Ok(())
        });
        r.stats.items += written;
        r.stats.records += written;
        let streamed = match streamed {
            Ok(s) => s,
            Err(e) => {
                if e.is::<Stopped>() {
                    // The last look goes on from here: by index where the items read match.
                    pass.keep(false);
                    d.stamp = None;
                }
                return Err(e);
            }
        };
        pass.keep(streamed.error.is_none());
        match streamed.error {
            None => d.waiting = false,
            // As a plain run reports it: what parsed was written.
            Some(e) if phase == Phase::Backfill => {
                r.doc_ended(&name, streamed.items, Some(e));
                d.waiting = false;
            }
            // Changed while read: read again.
            Some(_) => {
                d.waiting = true;
                d.stamp = None;
            }
        }
        Ok(Step::Keep)
    }
}
