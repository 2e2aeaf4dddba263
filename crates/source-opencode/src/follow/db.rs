//! One database followed by `--follow`: polled read-only for new and changed sessions.
//!
//! The connection stays open between polls (read-only: outside a read it holds no lock and
//! never checkpoints), so that `PRAGMA data_version` tells at once whether another connection
//! committed anything since the last look; most polls end there. When something changed:
//!
//! * new rows are found by rowid: the highest rowid of each message table (`messages`,
//!   `message`, `part`, `session_message`) is remembered, and the sessions of the rows above it
//!   are read again (a rowid lookup, not a scan; SQLite gives a new row the highest rowid + 1,
//!   and after rows at the top are deleted the mark comes down with them);
//! * the session list (ids and update times, a small table) is read, and a new session or one
//!   whose update time moved is read;
//! * a session with held messages (not final yet, [`super::gate`]) is read again at every
//!   change: that is how in-place updates of a streaming message are seen (G1 rewrites `parts`,
//!   T2 upserts `message` and `part` rows, T3 updates `session_message`; FORMAT.md).
//!
//! Each session is read in one read transaction, as in a plain run. A database that cannot be
//! opened, is locked past the busy timeout, or is mid-migration (tables missing) is reported once
//! and tried again at the next poll; it counts as failed only if it still fails at the exit.
//! A file replaced under the same name (another inode) is opened afresh; what went out from it
//! before is still known by id and not written again.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::PathBuf;

use anyhow::Result;
use rusqlite::Connection;

use crate::db::{list_sessions, Db, Listed};
use crate::schema::{self, Schema, Table};
use crate::{Reader, SourceFailure, STAGE};

pub(crate) struct FollowedDb {
    pub path: PathBuf,
    /// The path as given or found: provenance and messages name it.
    name: String,
    conn: Option<Connection>,
    /// (device, inode) of the file the connection reads.
    ident: Option<(u64, u64)>,
    schema: Option<Schema>,
    schema_version: Option<i64>,
    /// `PRAGMA data_version` when last read through: unchanged means nothing was committed.
    data_version: Option<i64>,
    /// The highest rowid seen per message table.
    marks: HashMap<&'static str, i64>,
    /// Sessions and their update times, as last listed.
    listed: HashMap<String, Option<i64>>,
    /// The failure reported last, not reported again while it lasts.
    problem: Option<String>,
    /// The schema's problems last seen, reported when they change and counted at the exit.
    schema_problems: Vec<String>,
    /// Whether the last poll failed.
    failing: bool,
    /// Counted in the summary (as a database, and its layouts once readable).
    counted: bool,
    layouts_counted: bool,
    /// Every session was read once.
    read_once: bool,
}

#[cfg(unix)]
fn file_id(meta: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_meta: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// The tables whose new rows name sessions to read again: (table, SQL of its session id).
fn message_tables(schema: &Schema) -> Vec<(&Table, String)> {
    let mut out = Vec::new();
    if let Some(go) = &schema.go {
        out.push((&go.messages, "\"session_id\"".to_string()));
    }
    if let Some(t2) = &schema.t2 {
        out.push((&t2.message, "\"session_id\"".to_string()));
        let via_message = format!(
            "(SELECT m.\"session_id\" FROM {} m WHERE m.\"id\" = {}.\"message_id\")",
            t2.message.sql(),
            t2.part.sql()
        );
        out.push((
            &t2.part,
            if t2.part.has("session_id") {
                "\"session_id\"".to_string()
            } else {
                via_message
            },
        ));
    }
    if let Some(t3) = &schema.t3 {
        out.push((&t3.message, "\"session_id\"".to_string()));
    }
    out
}

impl FollowedDb {
    pub fn new(path: PathBuf) -> FollowedDb {
        FollowedDb {
            name: path.display().to_string(),
            path,
            conn: None,
            ident: None,
            schema: None,
            schema_version: None,
            data_version: None,
            marks: HashMap::new(),
            listed: HashMap::new(),
            problem: None,
            schema_problems: Vec::new(),
            failing: false,
            counted: false,
            layouts_counted: false,
            read_once: false,
        }
    }

    /// Looks at the database and reads what changed (everything, the first time). With `force`
    /// (the sweep at the exit) it reads even if nothing was committed since the last look.
    /// Failures of the database are reported and left for the next poll; only output errors
    /// are returned.
    pub fn poll(&mut self, r: &mut Reader, force: bool) -> Result<()> {
        if !self.counted {
            self.counted = true;
            r.stats.databases += 1;
        }
        match self.poll_inner(r, force) {
            Ok(()) => {
                if self.failing {
                    tonbo_core::note!("{STAGE}: note: {}: read again", self.name);
                }
                self.failing = false;
                self.problem = None;
                Ok(())
            }
            Err(e) => match e.downcast::<SourceFailure>() {
                Ok(f) => {
                    if self.problem.as_deref() != Some(f.0.as_str()) {
                        tonbo_core::note!(
                            "{STAGE}: {}: {f}; trying again at the next poll",
                            self.name
                        );
                        self.problem = Some(f.0);
                    }
                    self.failing = true;
                    // Opened afresh next time, and everything looked at again.
                    self.conn = None;
                    self.data_version = None;
                    Ok(())
                }
                Err(e) => Err(e),
            },
        }
    }

    /// What still fails at the exit, for the failed count: the database, and its schema's
    /// problems.
    pub fn failures(&self) -> u64 {
        u64::from(self.failing) + self.schema_problems.len() as u64
    }

    fn poll_inner(&mut self, r: &mut Reader, force: bool) -> Result<()> {
        let ident = match fs::metadata(&self.path) {
            Ok(m) => file_id(&m),
            // Gone (deleted, or renamed away): nothing to read; a file that comes back under
            // this name is opened afresh.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.conn = None;
                self.ident = None;
                return Ok(());
            }
            Err(e) => return Err(SourceFailure(format!("cannot read: {e}")).into()),
        };
        let conn = match self.conn.take() {
            Some(conn) if ident == self.ident => conn,
            _ => self.open(r, ident)?,
        };
        let read = self.read_through(r, &conn, force);
        self.conn = Some(conn);
        read
    }

    /// Opens the file (afresh: the schema is read again, and everything looked at).
    fn open(&mut self, r: &Reader, ident: Option<(u64, u64)>) -> Result<Connection> {
        let conn = schema::open(&self.path, r.busy).db("cannot open", r.busy.as_millis())?;
        if self.ident.is_some() && self.ident != ident {
            // Another file: its rowids and times say nothing about the old one's.
            self.marks.clear();
            self.listed.clear();
            self.read_once = false;
        }
        self.ident = ident;
        self.schema = None;
        self.data_version = None;
        Ok(conn)
    }

    /// Reads what changed since the last look, if anything was committed (or `force`).
    fn read_through(&mut self, r: &mut Reader, conn: &Connection, force: bool) -> Result<()> {
        let ms = r.busy.as_millis();
        let dv: i64 = conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .db("cannot read", ms)?;
        if !force && self.data_version == Some(dv) {
            return Ok(());
        }
        self.refresh_schema(r, conn)?;
        let Some(schema) = self.schema.as_ref() else {
            return Ok(());
        };
        // New rows since the last look, found before the sessions are read: rows committed
        // meanwhile are seen by those reads, or found at the next look.
        let found = new_rows(conn, schema, &self.marks, self.read_once, ms)?;
        let listed = list_sessions(conn, schema).db("cannot list its sessions", ms)?;
        let before = r.stats.duplicates;
        for s in self.candidates(r, &listed, &found, force) {
            if r.stopped() {
                return Ok(());
            }
            r.read_db_session(conn, schema, &self.name, s)?;
        }
        if !self.read_once {
            r.note_duplicates(&self.name, before);
        }
        // Everything up to here was read: remembered only now, so that a poll that failed
        // half-way is done again in full.
        self.marks = found.marks;
        self.listed = listed.into_iter().map(|s| (s.id, s.updated)).collect();
        self.data_version = Some(dv);
        self.read_once = true;
        Ok(())
    }

    /// Reads the schema again when it changed; its problems are reported when they change,
    /// and its layouts counted once it has one.
    fn refresh_schema(&mut self, r: &mut Reader, conn: &Connection) -> Result<()> {
        let ms = r.busy.as_millis();
        let sv: i64 = conn
            .query_row("PRAGMA schema_version", [], |row| row.get(0))
            .db("cannot read", ms)?;
        if self.schema.is_some() && self.schema_version == Some(sv) {
            return Ok(());
        }
        let schema = schema::detect(conn).db("cannot read", ms)?;
        if schema.problems != self.schema_problems {
            for p in &schema.problems {
                tonbo_core::note!("{STAGE}: {}: {p}", self.name);
            }
            self.schema_problems = schema.problems.clone();
        }
        if !self.layouts_counted
            && (schema.go.is_some() || schema.t2.is_some() || schema.t3.is_some())
        {
            self.layouts_counted = true;
            r.count_layouts(&schema);
        }
        self.schema = Some(schema);
        self.schema_version = Some(sv);
        Ok(())
    }

    /// The listed sessions to read: all of them the first time (or when a table has no rowid
    /// to find new rows by); else the new ones, those with new rows or a moved update time,
    /// those with held messages, and (with `force`, at the exit) those whose record has not
    /// gone out.
    fn candidates<'l>(
        &self,
        r: &Reader,
        listed: &'l [Listed],
        found: &NewRows,
        force: bool,
    ) -> Vec<&'l Listed> {
        listed
            .iter()
            .filter(|s| {
                found.everything
                    || found.touched.contains(&s.id)
                    || self.listed.get(&s.id) != Some(&s.updated)
                    || r.gate
                        .as_ref()
                        .is_some_and(|g| g.read_again(&s.id, &self.name, force))
            })
            .collect()
    }
}

/// What the rowids of the message tables say changed since the last look.
struct NewRows {
    /// The highest rowid of each table now.
    marks: HashMap<&'static str, i64>,
    /// The sessions of the rows above the last marks.
    touched: HashSet<String>,
    /// Every session is to be read: the first look, or a table without rowids.
    everything: bool,
}

/// The sessions of the rows added to each message table since `marks` (every session the
/// first time, `read_once` false).
fn new_rows(
    conn: &Connection,
    schema: &Schema,
    marks: &HashMap<&'static str, i64>,
    read_once: bool,
    ms: u128,
) -> Result<NewRows> {
    let mut found = NewRows {
        marks: marks.clone(),
        touched: HashSet::new(),
        everything: !read_once,
    };
    for (table, session_sql) in message_tables(schema) {
        if !table.rowid {
            // No rowid to find new rows by: every session is read again.
            found.everything = true;
            continue;
        }
        let what = format!("cannot read table `{}`", table.name);
        let top: i64 = conn
            .query_row(
                &format!("SELECT ifnull(max(rowid), 0) FROM {}", table.sql()),
                [],
                |row| row.get(0),
            )
            .db(&what, ms)?;
        let from = found.marks.get(table.name).copied().unwrap_or(0);
        if read_once && top > from {
            let sql = format!(
                "SELECT DISTINCT {session_sql} FROM {} WHERE rowid > ?1 AND rowid <= ?2",
                table.sql()
            );
            let mut stmt = conn.prepare_cached(&sql).db(&what, ms)?;
            let rows = stmt
                .query_map([from, top], |row| row.get::<_, Option<String>>(0))
                .db(&what, ms)?;
            for id in rows {
                if let Some(id) = id.db(&what, ms)? {
                    found.touched.insert(id);
                }
            }
        }
        found.marks.insert(table.name, top);
    }
    Ok(found)
}
