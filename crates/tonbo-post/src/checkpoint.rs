//! The local checkpoint: what each stream already holds, and the batch in flight.
//!
//! Durable Streams deduplicates by producer sequence number, not by content
//! (the Durable Streams protocol), so a re-run that re-cut its batches differently would have
//! new events dropped as "duplicates". The checkpoint therefore records, per stream:
//!
//! * the producer `(epoch, next_seq)` and whether this checkpoint has claimed the producer;
//! * every acknowledged `source_key`, so a re-run sends only events the stream lacks;
//! * a journal of the batches in flight (several per stream when they are pipelined): each one's
//!   `(epoch, seq)` and exact body (the body in a file of its own beside the state file,
//!   `<state>.inflight/<row id>.json`, with its length and CRC-32 in the row, which keeps a
//!   gigabyte of bodies out of SQLite's WAL; its keys are the body's own, read from it when a
//!   later run takes the batch up), written *before* the POST, so that after a crash the same
//!   bytes go out again with the same `(epoch, seq)` and the server answers 204 if it already
//!   has them ("journal before sending").
//!
//! The state advances only after a 200 or 204, in one transaction with the journal row's removal,
//! and in sequence order (a stream's batches are acknowledged in the order they were numbered).
//! An acknowledged batch's keys are written as one row (`acked_batch`) and folded into the
//! table of keys (`acked`) a few tens of thousands at a time ([`Unfolded`]).
//! SQLite runs in WAL mode with `synchronous=NORMAL`: a commit survives the process being killed
//! (SIGKILL), which is what the journal is for. A power cut may lose the last commits; then the
//! next run re-sends from an older state, the server answers 204 to a sequence number it already
//! has, and [`crate::poster`] reads the stream back before going on, so nothing is lost or
//! doubled either way. `FULL` cost about 8% of the posting time for that case alone.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tonbo_core::url::without_credentials;

const SCHEMA_VERSION: i64 = 5;

/// The producer id of checkpoints made before each had its own (schema 3 and older): their
/// streams' producer state on the server is under this id, and their journaled batches must go
/// out under it again.
pub const SHARED_PRODUCER_ID: &str = "tonbo-ingest";

/// Producer state of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    pub id: i64,
    pub epoch: u64,
    pub next_seq: u64,
    /// False until a POST of this checkpoint's producer was acknowledged: until then a 403 means
    /// an older epoch of our own (a deleted checkpoint) and may be claimed over.
    pub claimed: bool,
    /// How many events the stream held when this checkpoint last knew it exactly (after a
    /// read-back, or after its own append was taken at the position it named): the position the
    /// next batch is written for. `None` when unknown (a checkpoint older than schema 4, or after
    /// an answer that leaves it open); the stream is then read back before anything is sent.
    pub tail: Option<u64>,
}

/// What an acknowledgement tells about the stream's tail ([`StreamState::tail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Unchanged (it was just read back).
    Keep,
    /// Exactly this many events.
    At(u64),
    /// No longer known.
    Unknown,
}

/// A batch in flight for a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its journal row (0 until journaled).
    pub jid: i64,
    pub epoch: u64,
    pub seq: u64,
    pub run: i64,
    pub keys: Vec<String>,
    pub body: Vec<u8>,
}

/// Whether a key is known for a stream, and from which run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    New,
    /// Acknowledged in an earlier run (or found on the server): already present.
    Present,
    /// Acknowledged earlier in this same run: the input carries the key twice.
    SentThisRun,
}

pub struct Checkpoint {
    /// One connection shared by the workers of a process: a mutex hands it over at once, where
    /// separate connections would wait on SQLite's lock with its millisecond sleeps.
    conn: Arc<Mutex<Connection>>,
    /// The journal rows there are (their ids), changed only while `conn` is held. A new row
    /// takes the lowest free id, so that the row ids, and with them the body files, stay few and
    /// are used again and again ([`Self::journal`]).
    jids: Arc<Mutex<BTreeSet<i64>>>,
    /// The keys of `acked_batch`, changed only while `conn` is held.
    unfolded: Arc<Mutex<Unfolded>>,
    pub path: PathBuf,
    /// Where the bodies of journaled batches are kept, one file per journal row.
    inflight: PathBuf,
    /// This run's number; keys acknowledged now are stamped with it.
    pub run: i64,
    _lock: Option<File>,
}

impl Checkpoint {
    /// Opens (creating if needed) the checkpoint for writing, holding an exclusive lock on it so
    /// two tonbo-post processes never share one state file.
    pub fn open(path: &Path) -> Result<Checkpoint> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create state directory {}", dir.display()))?;
        }
        let lock = lock(path)?;
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open state file {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(TABLES)
            .with_context(|| format!("cannot initialise state file {}", path.display()))?;
        upgrade(&conn, path)?;
        // What an interrupted run acknowledged and did not fold yet, first: the streams' rows may
        // be merged next.
        fold(&conn).with_context(|| format!("cannot update state file {}", path.display()))?;
        crate::checkpoint_urls::strip_stored_credentials(&conn, path, &inflight_dir(path))
            .with_context(|| format!("cannot upgrade state file {}", path.display()))?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('runs', 1)
             ON CONFLICT (key) DO UPDATE SET value = value + 1",
            [],
        )?;
        let run: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'runs'", [], |r| {
            r.get(0)
        })?;
        let jids = conn
            .prepare("SELECT id FROM journal3")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Checkpoint {
            conn: Arc::new(Mutex::new(conn)),
            jids: Arc::new(Mutex::new(jids)),
            unfolded: Arc::default(),
            path: path.to_path_buf(),
            inflight: inflight_dir(path),
            run,
            _lock: Some(lock),
        })
    }

    /// The producer id this checkpoint writes as: its own (`tonbo-post-<16 hex digits>`), so
    /// that two checkpoints writing the same stream at once are two producers, each with its own
    /// sequence numbers, and never fence each other's epochs; [`SHARED_PRODUCER_ID`] for a
    /// checkpoint made before schema 4.
    pub fn producer_id(&self) -> Result<String> {
        let token: Option<i64> = self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = 'producer'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match token {
            Some(t) if t != 0 => format!("tonbo-post-{:016x}", t as u64),
            _ => SHARED_PRODUCER_ID.to_string(),
        })
    }

    /// This checkpoint for another worker thread of the same process (which holds the lock):
    /// the same connection, taken in turn. Each worker owns its own streams.
    pub fn another(&self) -> Result<Checkpoint> {
        Ok(Checkpoint {
            conn: self.conn.clone(),
            jids: self.jids.clone(),
            unfolded: self.unfolded.clone(),
            path: self.path.clone(),
            inflight: self.inflight.clone(),
            run: self.run,
            _lock: None,
        })
    }

    /// Opens an existing checkpoint read-only (for `--dry-run`); `None` if there is none.
    pub fn open_read_only(path: &Path) -> Result<Option<Checkpoint>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open state file {}", path.display()))?;
        // Not folded, and not to be: read. A file of an older schema has no such table.
        let unfolded = Unfolded::read(&conn).unwrap_or_default();
        Ok(Some(Checkpoint {
            conn: Arc::new(Mutex::new(conn)),
            jids: Arc::default(),
            unfolded: Arc::new(Mutex::new(unfolded)),
            path: path.to_path_buf(),
            inflight: inflight_dir(path),
            run: i64::MAX,
            _lock: None,
        }))
    }

    /// The stream at `url`, keyed by the URL without credentials (see [`crate::checkpoint_urls`]);
    /// in a file not upgraded yet (read by `--dry-run`), by the URL as given.
    pub fn stream(&self, url: &str) -> Result<Option<StreamState>> {
        let key = without_credentials(url);
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT id, epoch, next_seq, claimed, tail FROM stream WHERE url = ?1",
        )?;
        let mut found = q.query_row([&key], stream_state).optional()?;
        if found.is_none() && key != url {
            found = q.query_row([url], stream_state).optional()?;
        }
        Ok(found)
    }

    /// Records a stream this checkpoint has not seen and that is empty (just created), with the
    /// epoch it will write in.
    pub fn add_stream(&mut self, url: &str, epoch: u64) -> Result<StreamState> {
        let url = without_credentials(url);
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO stream (url, epoch, next_seq, claimed, tail) VALUES (?1, ?2, 0, 0, 0)",
        )?
        .execute(params![&url, epoch as i64])?;
        let id = conn.last_insert_rowid();
        // A new row has no keys; `acked` could hold some of its id only if a stream of that id
        // was ever merged away (the streams' ids are never deleted otherwise).
        let keys: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM acked WHERE stream = ?1)")?
            .query_row([id], |r| r.get(0))?;
        if !keys {
            self.unfolded().fresh.insert(id);
        }
        Ok(StreamState {
            id,
            epoch,
            next_seq: 0,
            claimed: false,
            tail: Some(0),
        })
    }

    pub fn key_state(&self, stream: i64, key: &str) -> Result<KeyState> {
        Ok(self.key_states(stream, [key])?[0])
    }

    /// [`Self::key_state`] of many keys, in one read transaction (one lock round trip, not one
    /// per key).
    pub fn key_states<'k>(
        &self,
        stream: i64,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<Vec<KeyState>> {
        let mut conn = self.conn();
        let unfolded = self.unfolded();
        let fresh = unfolded.fresh.contains(&stream);
        let tx = conn.transaction()?;
        let mut out = Vec::new();
        {
            let mut q =
                tx.prepare_cached("SELECT run FROM acked WHERE stream = ?1 AND source_key = ?2")?;
            for key in keys {
                // `acked` first: a key acknowledged again (a batch found on the server) keeps
                // the run that first acknowledged it, as `INSERT OR IGNORE` keeps it there. A
                // stream made in this run holds nothing there until a fold.
                let found = match fresh {
                    true => Err(rusqlite::Error::QueryReturnedNoRows),
                    false => q.query_row(params![stream, key], |r| r.get(0)),
                };
                let run: Option<i64> = match found {
                    Err(rusqlite::Error::QueryReturnedNoRows) => unfolded.run(stream, key),
                    run => Some(run?),
                };
                out.push(match run {
                    None => KeyState::New,
                    Some(r) if r == self.run => KeyState::SentThisRun,
                    Some(_) => KeyState::Present,
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records what the server holds for a stream: `read` is called with a function that adds one
    /// key (marked run 0, "found on the server") and returns how many events it read, which
    /// becomes the stream's tail. With `new_epoch`, the stream is first added to the checkpoint in
    /// that epoch. Everything is one transaction: if `read` fails, nothing is kept, so a stream is
    /// never recorded with only part of what the server holds. Its failure is returned as it is;
    /// the checkpoint's own, turned into `E`.
    pub fn add_server_keys<E: From<anyhow::Error>>(
        &mut self,
        url: &str,
        new_epoch: Option<u64>,
        read: impl FnOnce(&mut dyn FnMut(&str)) -> std::result::Result<u64, E>,
    ) -> std::result::Result<ServerRead, E> {
        let url = without_credentials(url);
        let mut conn = self.conn();
        let db = |e: rusqlite::Error| E::from(e.into());
        // Every key a known stream holds in `acked`, for the count below (a stream new to the
        // checkpoint has none gathered).
        if new_epoch.is_none() {
            self.fold_now(&conn).map_err(db)?;
        }
        let tx = conn.transaction().map_err(db)?;
        if let Some(epoch) = new_epoch {
            tx.execute(
                "INSERT INTO stream (url, epoch, next_seq, claimed, tail) VALUES (?1, ?2, 0, 0, 0)",
                params![&url, epoch as i64],
            )
            .map_err(db)?;
        }
        let id: i64 = tx
            .query_row("SELECT id FROM stream WHERE url = ?1", [&url], |r| r.get(0))
            .map_err(db)?;
        let mut added = 0u64;
        let mut db_error = None;
        let outcome = {
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO acked (stream, source_key, run) VALUES (?1, ?2, 0)",
                )
                .map_err(db)?;
            read(&mut |key: &str| {
                if db_error.is_none() {
                    match ins.execute(params![id, key]) {
                        Ok(n) => added += n as u64,
                        Err(e) => db_error = Some(e),
                    }
                }
            })
        };
        if let Some(e) = db_error {
            return Err(db(e));
        }
        let events = outcome?;
        let read = record_read(&tx, id, added, events).map_err(db)?;
        tx.commit().map_err(db)?;
        self.unfolded().fresh.remove(&id);
        Ok(read)
    }

    /// The batches journaled for a stream, in `(epoch, seq)` order, with their bodies. A body file
    /// that is missing or does not match its row (a power cut between writing it and committing
    /// the row, or a change by hand) is reported, and that entry and every later one of the
    /// stream are dropped: their events are then simply not acknowledged, and are sent again
    /// from the input, where the server's 204 to a sequence number it already has leads to a
    /// read-back ([`crate::poster`]).
    pub fn pending(&self, stream: i64) -> Result<Vec<Pending>> {
        let rows = {
            let conn = self.conn();
            let mut q = conn.prepare_cached(
                "SELECT id, epoch, seq, run, keys, body_len, body_crc FROM journal3
                 WHERE stream = ?1 ORDER BY epoch, seq",
            )?;
            let rows = q
                .query_map([stream], |r| {
                    Ok(JournalRow {
                        jid: r.get(0)?,
                        epoch: r.get::<_, i64>(1)? as u64,
                        seq: r.get::<_, i64>(2)? as u64,
                        run: r.get(3)?,
                        keys: r.get(4)?,
                        body_len: r.get::<_, i64>(5)? as u64,
                        body_crc: r.get::<_, i64>(6)? as u32,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows
        };
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let file = self.body_file(row.jid);
            // The body is the file's first `body_len` bytes: a file is written over, never cut.
            let body = std::fs::read(&file).ok().and_then(|mut body| {
                let len = usize::try_from(row.body_len)
                    .ok()
                    .filter(|len| *len <= body.len())?;
                body.truncate(len);
                Some(body)
            });
            match body {
                Some(body) if body_crc(&body) == row.body_crc => {
                    let keys = match row.keys.as_str() {
                        "" => keys_of_body(&body),
                        keys => serde_json::from_str(keys).ok(),
                    };
                    if let Some(keys) = keys {
                        out.push(Pending {
                            jid: row.jid,
                            epoch: row.epoch,
                            seq: row.seq,
                            run: row.run,
                            keys,
                            body,
                        });
                        continue;
                    }
                    self.drop_damaged(&file, &rows[i..])?;
                    break;
                }
                _ => {
                    self.drop_damaged(&file, &rows[i..])?;
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Drops the journal entry whose body `file` is missing or damaged, and every later one of
    /// its stream (`rows`, the entry first), saying so.
    fn drop_damaged(&self, file: &Path, rows: &[JournalRow]) -> Result<()> {
        tonbo_core::note!(
            "tonbo-post: the journaled batch body {} is missing or damaged; its events (and those of {} later batches of the stream) will be sent again and checked against the stream",
            file.display(),
            rows.len() - 1
        );
        let later: Vec<i64> = rows.iter().map(|row| row.jid).collect();
        self.drop_journals(&later)
    }

    /// Records a batch about to be sent, before the POST: its row, then its body in the row's
    /// in-flight file, committed together. A batch journaled already (`jid` set) is replaced in
    /// place (a 413 split's first half takes the batch's row). The row leaves the keys out
    /// (schema 5): they are the body's own, read from it by [`Self::pending`] (the keys of a
    /// batch of 200 events took two more pages of every commit, a fifth of the WAL's writes).
    ///
    /// A new row takes the lowest id no row has, and its body is written over the file a row of
    /// that id had before (acknowledged since), which is left in place for this. Overwriting a
    /// file's cached pages costs a seventh of creating, filling and deleting a file per batch,
    /// which was a fifth of tonbo-post's CPU. It is as safe: a row is committed only after its
    /// body is written whole; a new row's file is one no row names (a crash before the commit
    /// leaves a file without a row, which is never read); a replaced row's file is rewritten as
    /// it always was, and a crash half-way leaves a body that does not match its row, caught by
    /// its length and CRC-32 like one torn by a power cut ([`Self::pending`]).
    pub fn journal(&self, stream: i64, p: &mut Pending) -> Result<()> {
        let mut conn = self.conn();
        let mut jids = self.jids();
        let tx = conn.transaction()?;
        let new = p.jid == 0;
        if new {
            p.jid = (1..).find(|id| !jids.contains(id)).unwrap_or(i64::MAX);
        }
        let sql = if new {
            "INSERT INTO journal3 (id, stream, epoch, seq, run, keys, body_len, body_crc)
             VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7)"
        } else {
            "UPDATE journal3 SET stream = ?2, epoch = ?3, seq = ?4, run = ?5, keys = '',
             body_len = ?6, body_crc = ?7 WHERE id = ?1"
        };
        let written = tx
            .prepare_cached(sql)
            .and_then(|mut q| {
                q.execute(params![
                    p.jid,
                    stream,
                    p.epoch as i64,
                    p.seq as i64,
                    p.run,
                    p.body.len() as i64,
                    body_crc(&p.body) as i64
                ])
            })
            .map_err(anyhow::Error::from)
            .and_then(|_| self.write_body(p.jid, &p.body))
            .and_then(|_| Ok(tx.commit()?));
        if let Err(e) = written {
            if new {
                p.jid = 0;
            }
            return Err(e);
        }
        jids.insert(p.jid);
        Ok(())
    }

    /// Writes `body` into the in-flight file of row `jid`, over the start of what it held: the
    /// row's length says where the body ends, and cutting the file to it each time (its blocks
    /// freed, then allocated again by a longer body) cost a third as much as the write. The
    /// folder is made when missing (the first body, or one removed meanwhile), not asked for
    /// every time.
    fn write_body(&self, jid: i64, body: &[u8]) -> Result<()> {
        let file = self.body_file(jid);
        let open = || {
            File::options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&file)
        };
        let write = || -> std::io::Result<()> {
            let mut f = match open() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(&self.inflight)?;
                    open()?
                }
                f => f?,
            };
            f.write_all(body)
        };
        write().with_context(|| format!("cannot write {}", file.display()))
    }

    fn body_file(&self, jid: i64) -> PathBuf {
        self.inflight.join(format!("{jid}.json"))
    }

    /// The server acknowledged a journaled batch (200 or 204): its keys become present, the
    /// sequence advances past it, the tail is set as `tail` says, and its journal row goes, all
    /// in one transaction. Its body file stays, for the next row of that id.
    ///
    /// The keys go in as one row of `acked_batch`, appended: inserted one by one into `acked`,
    /// whose order is the keys' and so random, every batch rewrote most pages of its stream's
    /// keys (26 pages of WAL a batch, a quarter of tonbo-post's CPU, and more the longer the
    /// session). They are folded into `acked` in one transaction once enough have gathered, or
    /// at the end of the run ([`Unfolded`]); the transaction that acknowledges a batch is as
    /// durable as before, so a crash loses nothing of it, and the next open folds what is left.
    pub fn acknowledge(&mut self, stream: i64, p: &Pending, tail: Tail) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if !p.keys.is_empty() {
            tx.prepare_cached("INSERT INTO acked_batch (stream, run, keys) VALUES (?1, ?2, ?3)")?
                .execute(params![stream, p.run, serde_json::to_string(&p.keys)?])?;
        }
        // Never backwards: a batch found on the server after the stream moved on (re-cut into a
        // newer epoch) must not rewind the numbering.
        tx.prepare_cached(
            "UPDATE stream SET epoch = ?2, next_seq = ?3, claimed = 1
             WHERE id = ?1 AND (epoch < ?2 OR (epoch = ?2 AND next_seq < ?3))",
        )?
        .execute(params![stream, p.epoch as i64, p.seq as i64 + 1])?;
        tx.prepare_cached("UPDATE stream SET claimed = 1 WHERE id = ?1")?
            .execute([stream])?;
        match tail {
            Tail::Keep => {}
            Tail::At(n) => {
                tx.prepare_cached("UPDATE stream SET tail = ?2 WHERE id = ?1")?
                    .execute(params![stream, n as i64])?;
            }
            Tail::Unknown => {
                tx.prepare_cached("UPDATE stream SET tail = NULL WHERE id = ?1")?
                    .execute([stream])?;
            }
        }
        tx.prepare_cached("DELETE FROM journal3 WHERE id = ?1")?
            .execute([p.jid])?;
        tx.commit()?;
        self.jids().remove(&p.jid);
        let gathered = {
            let mut unfolded = self.unfolded();
            for key in &p.keys {
                unfolded.add(stream, key, p.run);
            }
            unfolded.count
        };
        if gathered >= FOLD_AT {
            self.fold_now(&conn)?;
        }
        Ok(())
    }

    /// Folds the keys acknowledged so far into `acked` ([`fold`]); `conn` is this checkpoint's,
    /// held.
    fn fold_now(&self, conn: &Connection) -> rusqlite::Result<()> {
        let mut unfolded = self.unfolded();
        if unfolded.count > 0 {
            fold(conn)?;
            *unfolded = Unfolded::default();
        }
        Ok(())
    }

    /// Forgets a journaled batch without advancing the sequence: the server stored nothing under
    /// it (it refused the batch, or a batch before it).
    pub fn drop_journal(&self, jid: i64) -> Result<()> {
        self.drop_journals(&[jid])
    }

    /// [`Self::drop_journal`] of several batches of a stream, all or none: a kill half-way must
    /// not leave a later batch journaled with a hole before it, which the next run would send
    /// into the hole's place, ahead of the events that were in it.
    pub fn drop_journals(&self, jids: &[i64]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM journal3 WHERE id = ?1")?;
            for jid in jids {
                delete.execute([jid])?;
            }
        }
        tx.commit()?;
        let mut in_use = self.jids();
        for jid in jids {
            in_use.remove(jid);
        }
        Ok(())
    }

    /// Moves the stream to a new epoch (claiming the producer over an older one): seq restarts at
    /// 0, and the journaled batch `jid` (if any) is re-addressed to (epoch, 0) in the same
    /// transaction.
    pub fn set_epoch(&mut self, stream: i64, epoch: u64, jid: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE stream SET epoch = ?2, next_seq = 0 WHERE id = ?1",
            params![stream, epoch as i64],
        )?;
        tx.execute(
            "UPDATE journal3 SET epoch = ?2, seq = 0 WHERE id = ?1",
            params![jid, epoch as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Number of batches still in flight (sent or not) from an interrupted run.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM journal3", [], |r| r.get::<_, i64>(0))?
            as u64)
    }
}

/// The tables of the current schema (created where missing).
const TABLES: &str =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS stream (
         id INTEGER PRIMARY KEY,
         url TEXT NOT NULL UNIQUE,
         epoch INTEGER NOT NULL,
         next_seq INTEGER NOT NULL,
         claimed INTEGER NOT NULL,
         tail INTEGER);
     CREATE TABLE IF NOT EXISTS acked (
         stream INTEGER NOT NULL,
         source_key TEXT NOT NULL,
         run INTEGER NOT NULL,
         PRIMARY KEY (stream, source_key)) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS acked_batch (
         id INTEGER PRIMARY KEY,
         stream INTEGER NOT NULL,
         run INTEGER NOT NULL,
         keys TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS journal3 (
         id INTEGER PRIMARY KEY,
         stream INTEGER NOT NULL,
         epoch INTEGER NOT NULL,
         seq INTEGER NOT NULL,
         run INTEGER NOT NULL,
         keys TEXT NOT NULL,
         body_len INTEGER NOT NULL,
         body_crc INTEGER NOT NULL,
         UNIQUE (stream, epoch, seq));";

/// Takes the exclusive lock of the state file at `path` (`<state>.lock`), held as long as the
/// file returned is open.
fn lock(path: &Path) -> Result<File> {
    let lock_path = lock_path(path);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open lock file {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "another tonbo-post is using the state file {} (lock {} is held)",
            path.display(),
            lock_path.display()
        );
    }
    Ok(lock)
}

/// Brings the file to [`SCHEMA_VERSION`]: a new file gets its version and a producer id of its
/// own; schema 2 and 3 are carried over.
fn upgrade(conn: &Connection, path: &Path) -> Result<()> {
    let version: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let cannot = || format!("cannot upgrade state file {}", path.display());
    if version == Some(2) {
        migrate_v2(conn, &inflight_dir(path)).with_context(cannot)?;
    }
    match version {
        Some(2 | 3) => {
            // Schema 4 knows each stream's tail (unknown for the streams of an older one) and
            // gives each checkpoint a producer id of its own; an older one keeps the shared id
            // its streams were written under (token 0).
            conn.execute_batch(
                "ALTER TABLE stream ADD COLUMN tail INTEGER;
                 INSERT OR IGNORE INTO meta (key, value) VALUES ('producer', 0);
                 UPDATE meta SET value = 5 WHERE key = 'schema';",
            )
            .with_context(cannot)?;
        }
        Some(4) => {
            // Schema 5 journals batches without their keys (`keys` is empty: read them from the
            // body), rows journaled before keeping theirs, and gathers acknowledged keys in
            // `acked_batch` (created with the tables). Only the version changes, so that an
            // older build, which would take an empty `keys` for a batch of no events and not
            // look in `acked_batch`, refuses the file instead.
            conn.execute("UPDATE meta SET value = 5 WHERE key = 'schema'", [])
                .with_context(cannot)?;
        }
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                [SCHEMA_VERSION],
            )?;
            // Random, never 0 (the shared id of older checkpoints); 62 bits keep it an SQLite
            // integer.
            let token = (fastrand::u64(..) >> 2).max(1);
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('producer', ?1)",
                [token as i64],
            )?;
        }
        Some(SCHEMA_VERSION) => {}
        Some(v) => bail!(
            "state file {} has schema version {v}; this build understands {SCHEMA_VERSION}",
            path.display()
        ),
    }
    Ok(())
}

/// Keys gathered in `acked_batch` before they are folded into `acked`: about 3 MB of memory.
const FOLD_AT: usize = 32 * 1024;

/// The keys of the rows of `acked_batch`, in memory, so that looking a key up needs no scan of
/// that table: by stream, each key with the run that acknowledged it.
#[derive(Default)]
struct Unfolded {
    keys: HashMap<i64, foldhash::HashMap<String, i64>>,
    count: usize,
    /// Streams added in this run, empty then, and not read back or folded into since: `acked`
    /// holds no key of theirs, so their keys are looked up here only.
    fresh: BTreeSet<i64>,
}

impl Unfolded {
    /// The rows of `acked_batch` (for a read-only look at a checkpoint, which does not fold).
    fn read(conn: &Connection) -> rusqlite::Result<Unfolded> {
        let mut unfolded = Unfolded::default();
        let mut q = conn.prepare(
            "SELECT b.stream, k.value, b.run FROM acked_batch AS b, json_each(b.keys) AS k
             ORDER BY b.id",
        )?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let key: String = r.get(1)?;
            unfolded.add(r.get(0)?, &key, r.get(2)?);
        }
        Ok(unfolded)
    }

    /// Adds a key acknowledged by `run`; one there already keeps its run.
    fn add(&mut self, stream: i64, key: &str, run: i64) {
        let keys = self.keys.entry(stream).or_default();
        if !keys.contains_key(key) {
            keys.insert(key.to_string(), run);
            self.count += 1;
        }
    }

    fn run(&self, stream: i64, key: &str) -> Option<i64> {
        self.keys.get(&stream)?.get(key).copied()
    }
}

/// Moves every key of `acked_batch` into `acked`, in one transaction, so that each page of
/// `acked` is written once however many keys land on it; in the order they were acknowledged
/// (the table's own, no sort), so that a key acknowledged twice keeps the run that came first,
/// as when each key was inserted on its own (`INSERT OR IGNORE`).
fn fold(conn: &Connection) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT OR IGNORE INTO acked (stream, source_key, run)
         SELECT b.stream, k.value, b.run FROM acked_batch AS b, json_each(b.keys) AS k
         ORDER BY b.id",
        [],
    )?;
    tx.execute("DELETE FROM acked_batch", [])?;
    tx.commit()
}

/// A row of `journal3`: a batch in flight, its body in a file of its own.
struct JournalRow {
    jid: i64,
    epoch: u64,
    seq: u64,
    run: i64,
    /// The batch's keys, as a JSON array; empty for a row of schema 5, whose keys are its
    /// body's.
    keys: String,
    body_len: u64,
    body_crc: u32,
}

/// A row of `stream`, selected as `id, epoch, next_seq, claimed, tail`.
fn stream_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<StreamState> {
    Ok(StreamState {
        id: r.get(0)?,
        epoch: r.get::<_, i64>(1)? as u64,
        next_seq: r.get::<_, i64>(2)? as u64,
        claimed: r.get(3)?,
        tail: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
    })
}

/// Sets the tail of stream `id` read back to `events`, and says what the read found.
fn record_read(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    added: u64,
    events: u64,
) -> rusqlite::Result<ServerRead> {
    tx.execute(
        "UPDATE stream SET tail = ?2 WHERE id = ?1",
        params![id, events as i64],
    )?;
    let keys: i64 = tx.query_row("SELECT count(*) FROM acked WHERE stream = ?1", [id], |r| {
        r.get(0)
    })?;
    let state = tx.query_row(
        "SELECT id, epoch, next_seq, claimed, tail FROM stream WHERE id = ?1",
        [id],
        stream_state,
    )?;
    Ok(ServerRead {
        state,
        added,
        events,
        keys: keys as u64,
    })
}

/// What reading a stream back found.
#[derive(Debug)]
pub struct ServerRead {
    pub state: StreamState,
    /// Keys new to the checkpoint.
    pub added: u64,
    /// Events the stream holds (now its tail).
    pub events: u64,
    /// Distinct keys the checkpoint knows for the stream, all of which the stream holds: fewer
    /// than `events` means the stream holds an event twice (or events without a key).
    pub keys: u64,
}

/// Schema 2 kept one journal row per stream (`journal`, body in `<stream>.json`, FNV-1a hash):
/// move its rows to `journal3`, each body to its row's file, re-hashed after checking it.
fn migrate_v2(conn: &Connection, inflight: &Path) -> Result<()> {
    /// A row of schema 2's `journal`: the batch in flight of one stream.
    struct V2Row {
        stream: i64,
        epoch: i64,
        seq: i64,
        run: i64,
        keys: String,
        body_len: i64,
        /// FNV-1a of the body, 16 hex digits.
        body_hash: String,
    }
    let tx = conn.unchecked_transaction()?;
    let rows: Vec<V2Row> = tx
        .prepare("SELECT stream, epoch, seq, run, keys, body_len, body_hash FROM journal")?
        .query_map([], |r| {
            Ok(V2Row {
                stream: r.get(0)?,
                epoch: r.get(1)?,
                seq: r.get(2)?,
                run: r.get(3)?,
                keys: r.get(4)?,
                body_len: r.get(5)?,
                body_hash: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for row in rows {
        let old = inflight.join(format!("{}.json", row.stream));
        let body = match std::fs::read(&old) {
            Ok(b)
                if b.len() as i64 == row.body_len
                    && format!("{:016x}", tonbo_core::contract::stable_hash(&b))
                        == row.body_hash =>
            {
                b
            }
            // A damaged v2 body: leave the entry out, as pending() would have.
            _ => continue,
        };
        tx.execute(
            "INSERT INTO journal3 (stream, epoch, seq, run, keys, body_len, body_crc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                row.stream,
                row.epoch,
                row.seq,
                row.run,
                row.keys,
                row.body_len,
                body_crc(&body) as i64
            ],
        )?;
        let jid = tx.last_insert_rowid();
        std::fs::rename(&old, inflight.join(format!("{jid}.json")))?;
    }
    tx.execute_batch("DROP TABLE journal; UPDATE meta SET value = 3 WHERE key = 'schema';")?;
    tx.commit()?;
    Ok(())
}

impl Checkpoint {
    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A worker that panicked while holding it cannot have left a transaction open (rusqlite
        // rolls back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The journal's row ids; taken only while holding [`Self::conn`].
    fn jids(&self) -> MutexGuard<'_, BTreeSet<i64>> {
        self.jids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys acknowledged and not folded yet; taken only while holding [`Self::conn`].
    fn unfolded(&self) -> MutexGuard<'_, Unfolded> {
        self.unfolded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the in-flight files no journal row names (kept for reuse during the run), so that
    /// a run leaves only the bodies of its batches still in flight.
    fn remove_spare_bodies(&self) {
        let _conn = self.conn();
        let in_use = self.jids();
        let Ok(dir) = std::fs::read_dir(&self.inflight) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let jid = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<i64>().ok());
            if jid.is_some_and(|jid| !in_use.contains(&jid)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        // Only the checkpoint that holds the lock: the workers' copies end before it. A fold
        // that fails here is done by the next open.
        if self._lock.is_some() {
            let _ = self.fold_now(&self.conn());
            self.remove_spare_bodies();
        }
    }
}

fn inflight_dir(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".inflight");
    PathBuf::from(s)
}

/// The keys of a journaled body's events, in order; `None` if one has none (the body is not
/// one this checkpoint wrote).
fn keys_of_body(body: &[u8]) -> Option<Vec<String>> {
    let events: Vec<&serde_json::value::RawValue> = serde_json::from_slice(body).ok()?;
    let read = crate::input::key_events(&events);
    read.rejects
        .is_empty()
        .then(|| read.keyed.into_iter().map(|k| k.key).collect())
}

/// CRC-32 of a body: enough to tell a torn or foreign file from the one journaled.
fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// `$XDG_STATE_HOME/tonbo-ingest/post.sqlite`, else `~/.local/state/tonbo-ingest/post.sqlite`.
pub fn default_state_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local").join("state"),
            None => bail!("neither XDG_STATE_HOME nor HOME is set; pass --state PATH"),
        },
    };
    Ok(base.join("tonbo-ingest").join("post.sqlite"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A state file path in a directory of its own under the system's temporary directory.
    pub(crate) fn tmp_state(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tonbo-post-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("state.sqlite")
    }

    fn tmp() -> PathBuf {
        tmp_state("cp")
    }

    /// A new checkpoint holding one stream, `u`, in `epoch`.
    fn with_stream(epoch: u64) -> (Checkpoint, StreamState) {
        let mut cp = Checkpoint::open(&tmp()).unwrap();
        let s = cp.add_stream("u", epoch).unwrap();
        (cp, s)
    }

    /// The body of a batch of events with `keys`.
    pub(crate) fn body_of(keys: &[&str]) -> Vec<u8> {
        let events: Vec<String> = keys
            .iter()
            .map(|k| format!(r#"{{"type":"t","metadata":{{"source_key":"{k}"}}}}"#))
            .collect();
        format!("[{}]", events.join(",")).into_bytes()
    }

    fn pending(cp: &Checkpoint, seq: u64, keys: &[&str]) -> Pending {
        Pending {
            jid: 0,
            epoch: 0,
            seq,
            run: cp.run,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            body: body_of(keys),
        }
    }

    #[test]
    fn journal_then_acknowledge_advances_and_marks_keys() {
        let path = tmp();
        let mut cp = Checkpoint::open(&path).unwrap();
        let s = cp.add_stream("http://x/s", 0).unwrap();
        assert_eq!(cp.key_state(s.id, "a").unwrap(), KeyState::New);
        let mut p = pending(&cp, 0, &["a", "b"]);
        cp.journal(s.id, &mut p).unwrap();
        assert_ne!(p.jid, 0);
        assert_eq!(cp.pending(s.id).unwrap(), vec![p.clone()]);
        cp.acknowledge(s.id, &p, Tail::At(2)).unwrap();
        assert_eq!(cp.pending(s.id).unwrap(), vec![]);
        assert_eq!(cp.pending_count().unwrap(), 0);
        assert_eq!(
            cp.key_states(s.id, ["a", "c"]).unwrap(),
            vec![KeyState::SentThisRun, KeyState::New]
        );
        let st = cp.stream("http://x/s").unwrap().unwrap();
        assert_eq!(
            (st.epoch, st.next_seq, st.claimed, st.tail),
            (0, 1, true, Some(2))
        );
        drop(cp);
        let cp = Checkpoint::open(&path).unwrap();
        assert_eq!(cp.key_state(s.id, "b").unwrap(), KeyState::Present);
    }

    #[test]
    fn body_files_are_used_again_and_a_run_leaves_only_those_in_flight() {
        let (mut cp, s) = with_stream(0);
        let mut a = pending(&cp, 0, &["a long key, for a body longer than the next"]);
        let mut b = pending(&cp, 1, &["b"]);
        cp.journal(s.id, &mut a).unwrap();
        cp.journal(s.id, &mut b).unwrap();
        assert_eq!((a.jid, b.jid), (1, 2));
        cp.acknowledge(s.id, &a, Tail::Unknown).unwrap();
        // The lowest free id is taken again, and its file, which held a longer body, rewritten.
        let mut c = pending(&cp, 2, &["c"]);
        cp.journal(s.id, &mut c).unwrap();
        assert_eq!(c.jid, 1);
        assert_eq!(cp.pending(s.id).unwrap(), vec![b.clone(), c.clone()]);
        cp.acknowledge(s.id, &b, Tail::Unknown).unwrap();
        let files = |cp: &Checkpoint| {
            let mut names: Vec<String> = std::fs::read_dir(&cp.inflight)
                .map(|d| d.flatten())
                .into_iter()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(files(&cp), ["1.json", "2.json"]);
        // The run ends with c in flight: its body stays, the spare one goes.
        let path = cp.path.clone();
        drop(cp);
        let cp = Checkpoint::open(&path).unwrap();
        assert_eq!(files(&cp), ["1.json"]);
        assert_eq!(cp.pending(s.id).unwrap(), vec![c]);
    }

    #[test]
    fn several_batches_of_a_stream_are_journaled_in_sequence_order() {
        let (mut cp, s) = with_stream(0);
        let mut b = pending(&cp, 1, &["b"]);
        let mut a = pending(&cp, 0, &["a"]);
        cp.journal(s.id, &mut b).unwrap();
        cp.journal(s.id, &mut a).unwrap();
        assert_eq!(cp.pending(s.id).unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(cp.pending_count().unwrap(), 2);
        // Replacing a batch in place (a 413 split's first half) keeps its row.
        let mut half = Pending {
            keys: vec!["a0".into()],
            body: body_of(&["a0"]),
            ..a.clone()
        };
        cp.journal(s.id, &mut half).unwrap();
        assert_eq!(half.jid, a.jid);
        assert_eq!(cp.pending(s.id).unwrap(), vec![half.clone(), b.clone()]);
        cp.acknowledge(s.id, &half, Tail::Unknown).unwrap();
        assert_eq!(cp.pending(s.id).unwrap(), vec![b]);
    }

    #[test]
    fn server_keys_are_all_or_nothing() {
        let path = tmp();
        let mut cp = Checkpoint::open(&path).unwrap();
        let failed = cp.add_server_keys("u", Some(1), |add| {
            add("a");
            Err(anyhow::anyhow!("connection reset"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "connection reset");
        assert_eq!(cp.stream("u").unwrap(), None);
        let read = cp
            .add_server_keys::<anyhow::Error>("u", Some(1), |add| {
                add("a");
                add("b");
                add("a");
                Ok(3)
            })
            .unwrap();
        let st = &read.state;
        assert_eq!((st.epoch, st.claimed, st.tail), (1, false, Some(3)));
        // Three events for two keys: the stream holds one twice.
        assert_eq!((read.added, read.events, read.keys), (2, 3, 2));
        assert_eq!(cp.key_state(st.id, "a").unwrap(), KeyState::Present);
    }

    #[test]
    fn a_second_writer_is_refused() {
        let path = tmp();
        let _cp = Checkpoint::open(&path).unwrap();
        let err = Checkpoint::open(&path).err().unwrap().to_string();
        assert!(err.contains("another tonbo-post"), "{err}");
    }

    #[test]
    fn a_damaged_body_file_drops_its_entry_and_every_later_one() {
        let (cp, s) = with_stream(0);
        let mut ps: Vec<Pending> = (3..6)
            .map(|seq| pending(&cp, seq, &[&format!("k{seq}")]))
            .collect();
        for p in &mut ps {
            cp.journal(s.id, p).unwrap();
        }
        assert_eq!(cp.pending(s.id).unwrap(), ps);
        std::fs::write(cp.body_file(ps[1].jid), b"[4").unwrap();
        assert_eq!(cp.pending(s.id).unwrap(), vec![ps[0].clone()]);
        assert_eq!(cp.pending_count().unwrap(), 1);
    }

    #[test]
    fn a_journaled_batch_is_taken_up_with_its_bodys_keys() {
        let (cp, s) = with_stream(0);
        // The keys as the events say them, escapes decoded.
        let mut p = Pending {
            keys: vec!["x".into(), "y\"".into()],
            ..pending(&cp, 0, &["x", "y\\u0022"])
        };
        cp.journal(s.id, &mut p).unwrap();
        let keys: String = cp
            .conn()
            .query_row("SELECT keys FROM journal3", [], |r| r.get(0))
            .unwrap();
        assert_eq!(keys, "");
        assert_eq!(cp.pending(s.id).unwrap()[0].keys, ["x", "y\""]);
        // A body with an event without a key is not one this checkpoint wrote: it is dropped.
        let mut q = Pending {
            body: br#"[{"type":"t","metadata":{}}]"#.to_vec(),
            ..pending(&cp, 1, &["z"])
        };
        cp.journal(s.id, &mut q).unwrap();
        assert_eq!(cp.pending(s.id).unwrap(), vec![p]);
        assert_eq!(cp.pending_count().unwrap(), 1);
    }

    /// How many keys `acked` and `acked_batch` hold.
    fn folded_and_not(cp: &Checkpoint) -> (i64, i64) {
        let conn = cp.conn();
        let count = |t: &str| {
            conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .unwrap()
        };
        (count("acked"), count("acked_batch"))
    }

    #[test]
    fn acknowledged_keys_are_gathered_then_folded_and_known_all_along() {
        let path = tmp();
        let mut cp = Checkpoint::open(&path).unwrap();
        // A stream made in this run, and one read back holding `a` already.
        let fresh = cp.add_stream("u", 0).unwrap();
        let known = cp
            .add_server_keys::<anyhow::Error>("v", Some(1), |add| {
                add("a");
                Ok(1)
            })
            .unwrap()
            .state;
        for (s, keys) in [(&fresh, ["a", "b"]), (&known, ["a", "b"])] {
            let mut p = pending(&cp, 0, &keys);
            cp.journal(s.id, &mut p).unwrap();
            cp.acknowledge(s.id, &p, Tail::Unknown).unwrap();
        }
        assert_eq!(folded_and_not(&cp), (1, 2));
        use KeyState::*;
        assert_eq!(
            cp.key_states(fresh.id, ["a", "b", "c"]).unwrap(),
            [SentThisRun, SentThisRun, New]
        );
        // Found on the server first, it stays present, as it did when inserted at once.
        assert_eq!(
            cp.key_states(known.id, ["a", "b"]).unwrap(),
            [Present, SentThisRun]
        );
        // A look that does not fold sees them too.
        let look = Checkpoint::open_read_only(&path).unwrap().unwrap();
        assert_eq!(
            look.key_states(fresh.id, ["b", "c"]).unwrap(),
            [Present, New]
        );
        // Reading a stream back folds first, so that its keys are counted whole.
        let read = cp
            .add_server_keys::<anyhow::Error>("u", None, |add| {
                add("a");
                add("b");
                Ok(2)
            })
            .unwrap();
        assert_eq!((read.added, read.events, read.keys), (0, 2, 2));
        assert_eq!(folded_and_not(&cp), (4, 0));
        assert_eq!(
            cp.key_states(fresh.id, ["a", "b", "c"]).unwrap(),
            [SentThisRun, SentThisRun, New]
        );
        // What a run leaves gathered (killed before the end) is folded by the next open.
        let mut p = pending(&cp, 1, &["c"]);
        cp.journal(fresh.id, &mut p).unwrap();
        cp.acknowledge(fresh.id, &p, Tail::Unknown).unwrap();
        std::mem::forget(cp);
        // (Its lock, still held by this process, goes as a killed process's would.)
        std::fs::remove_file(lock_path(&path)).unwrap();
        let cp = Checkpoint::open(&path).unwrap();
        assert_eq!(folded_and_not(&cp), (5, 0));
        assert_eq!(cp.key_states(fresh.id, ["c"]).unwrap(), [Present]);
    }

    #[test]
    fn set_epoch_readdresses_the_journaled_batch() {
        let (mut cp, s) = with_stream(1);
        let mut p = pending(&cp, 0, &["k"]);
        p.epoch = 1;
        cp.journal(s.id, &mut p).unwrap();
        cp.set_epoch(s.id, 7, p.jid).unwrap();
        let j = cp.pending(s.id).unwrap();
        assert_eq!((j[0].epoch, j[0].seq), (7, 0));
    }

    #[test]
    fn a_schema_2_journal_is_carried_over() {
        let path = tmp();
        let inflight = inflight_dir(&path);
        std::fs::create_dir_all(&inflight).unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                 INSERT INTO meta VALUES ('schema', 2), ('runs', 4);
                 CREATE TABLE stream (id INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE,
                     epoch INTEGER NOT NULL, next_seq INTEGER NOT NULL, claimed INTEGER NOT NULL);
                 INSERT INTO stream VALUES (1, 'u', 2, 5, 1), (2, 'v', 0, 1, 1);
                 CREATE TABLE acked (stream INTEGER NOT NULL, source_key TEXT NOT NULL,
                     run INTEGER NOT NULL, PRIMARY KEY (stream, source_key)) WITHOUT ROWID;
                 CREATE TABLE journal (stream INTEGER PRIMARY KEY, epoch INTEGER NOT NULL,
                     seq INTEGER NOT NULL, run INTEGER NOT NULL, keys TEXT NOT NULL,
                     body_len INTEGER NOT NULL, body_hash TEXT NOT NULL);",
            )
            .unwrap();
            for (stream, body) in [(1, &b"[1,2]"[..]), (2, &b"[3]"[..])] {
                let hash = format!("{:016x}", tonbo_core::contract::stable_hash(body));
                conn.execute(
                    "INSERT INTO journal VALUES (?1, 2, 5, 4, '[\"a\",\"b\"]', ?2, ?3)",
                    params![stream, body.len() as i64, hash],
                )
                .unwrap();
                std::fs::write(inflight.join(format!("{stream}.json")), body).unwrap();
            }
            // Stream 2's body was torn: its entry is left out.
            std::fs::write(inflight.join("2.json"), b"[").unwrap();
        }
        let cp = Checkpoint::open(&path).unwrap();
        let j = cp.pending(1).unwrap();
        assert_eq!(j.len(), 1);
        assert_eq!(
            (j[0].epoch, j[0].seq, &j[0].body[..]),
            (2, 5, &b"[1,2]"[..])
        );
        assert_eq!(j[0].keys, vec!["a", "b"]);
        assert_eq!(cp.pending(2).unwrap(), vec![]);
        assert_eq!(cp.run, 5);
        // Carried to schema 4: tails unknown, the producer id the streams were written under.
        assert_eq!(cp.stream("u").unwrap().unwrap().tail, None);
        assert_eq!(cp.producer_id().unwrap(), SHARED_PRODUCER_ID);
    }

    #[test]
    fn each_new_checkpoint_is_a_producer_of_its_own() {
        let a = Checkpoint::open(&tmp()).unwrap().producer_id().unwrap();
        let b = Checkpoint::open(&tmp()).unwrap().producer_id().unwrap();
        assert!(a.starts_with("tonbo-post-") && b.starts_with("tonbo-post-"));
        assert_ne!(a, b);
        let path = tmp();
        let first = Checkpoint::open(&path).unwrap().producer_id().unwrap();
        assert_eq!(
            Checkpoint::open(&path).unwrap().producer_id().unwrap(),
            first
        );
    }
}
