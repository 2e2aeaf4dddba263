//! Reading Goose's stores as source records, one per line:
//! `{"v":1,"source":"goose","session":"<id>","kind":"<kind>","record":<raw>,"at":"..","provenance":{..}}`.
//!
//! - `sessions.db` (current versions): a `session` record per `sessions` row (its columns as a
//!   JSON object, JSON-text columns left as the text Goose stored), then a `message` record per
//!   `messages` row of that session in row order, whose `content` and `metadata` are the
//!   stored `content_json` and `metadata_json` spliced in unchanged. The database is opened
//!   read-only and read in one read transaction: a consistent snapshot while Goose writes (WAL).
//! - `<id>.jsonl` (older versions): the first line (session metadata) as `legacy-session`,
//!   every other line as `legacy-message`, byte for byte. A file whose session is also in the
//!   database beside it is not read: Goose imported it there, and the database is the truth.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tonbo_core::event::json_str;
use tonbo_core::reader::ReaderIo;

use crate::roots::Store;
use crate::{SOURCE, STAGE};

/// What a run read, for its summary line and exit status.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub sessions: u64,
    pub records: u64,
    /// Sessions (or files) `--modified-after` left out.
    pub skipped: u64,
    /// `.jsonl` files passed over because the database beside them holds their session.
    pub imported: u64,
    /// Torn last lines, left for a later run.
    pub incomplete: u64,
    /// Stores or files that could not be read.
    pub failed: u64,
}

impl Stats {
    pub fn summary(&self, rejected: u64) -> String {
        format!(
            "{STAGE}: {} sessions, {} records, {} rejected, {} incomplete, {} unreadable, \
             {} legacy files already in the database, {} left out by --modified-after",
            self.sessions,
            self.records,
            rejected,
            self.incomplete,
            self.failed,
            self.imported,
            self.skipped
        )
    }
}

/// Reads stores, writing their records to the run's output.
pub struct Reader<'a> {
    io: ReaderIo<'a>,
    modified_after: Option<SystemTime>,
    pub stats: Stats,
}

/// The SQL form (`YYYY-MM-DD HH:MM:SS`, UTC) of a time, to compare with `updated_at`.
fn sql_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    tonbo_core::time::rfc3339_seconds(secs)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// A column value as JSON: text as a string, numbers as numbers, a blob as null.
fn json_of(v: ValueRef) -> Value {
    match v {
        ValueRef::Null | ValueRef::Blob(_) => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
    }
}

/// Opens a database for reading only: never `immutable` (that would ignore the `-wal` of a
/// live database), no checkpoint on close, a busy database waited for.
fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(conn)
}

/// The columns of `table`.
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = st.query_map([], |r| r.get::<_, String>(1))?;
    names.collect()
}

impl<'a> Reader<'a> {
    pub fn new(io: ReaderIo<'a>, modified_after: Option<SystemTime>) -> Reader<'a> {
        Reader {
            io,
            modified_after,
            stats: Stats::default(),
        }
    }

    /// Whether a signal asked the run to stop.
    pub fn stopped(&self) -> bool {
        self.io.stop_set()
    }

    /// Reads one store: its database, then the `.jsonl` files whose session it does not hold.
    /// Returns how many records it wrote. A store that cannot be read is reported and counted.
    pub fn read_store(&mut self, store: &Store) -> Result<u64> {
        let before = self.stats.records;
        let mut in_db = HashSet::new();
        if let Some(db) = &store.db {
            match self.read_db(db, &mut in_db) {
                Ok(()) => {}
                Err(e) if e.downcast_ref::<std::io::Error>().is_some() => return Err(e),
                Err(e) => {
                    tonbo_core::note!("{STAGE}: error: {}: {e:#}", db.display());
                    self.stats.failed += 1;
                }
            }
        }
        for file in &store.legacy {
            if self.stopped() {
                break;
            }
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
            if stem.as_ref().is_some_and(|s| in_db.contains(s)) {
                self.stats.imported += 1;
                continue;
            }
            if let Err(e) = self.read_legacy(file) {
                if e.downcast_ref::<std::io::Error>().is_some_and(is_broken_pipe) {
                    return Err(e);
                }
                tonbo_core::note!("{STAGE}: error: {}: {e:#}", file.display());
                self.stats.failed += 1;
            }
        }
        Ok(self.stats.records - before)
    }

    /// Writes one record line.
    fn write(
        &mut self,
        session: &str,
        kind: &str,
        record: &str,
        at: &str,
        provenance: &str,
    ) -> Result<()> {
        let w = self.io.out.raw();
        write!(
            w,
            "{{\"v\":1,\"source\":\"{SOURCE}\",\"session\":{},\"kind\":\"{kind}\",\"record\":{record},\"at\":{},\"provenance\":{provenance}}}",
            json_str(session),
            json_str(at)
        )?;
        self.io.out.end_line()?;
        self.stats.records += 1;
        Ok(())
    }
}

fn is_broken_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// The database file's name, for `at`.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

impl Reader<'_> {
    /// Reads a `sessions.db`, noting every session id it holds in `in_db`.
    fn read_db(&mut self, db: &Path, in_db: &mut HashSet<String>) -> Result<()> {
        let conn = open_read_only(db).context("cannot open it read-only")?;
        // One read transaction: every row from the same snapshot, whatever Goose commits.
        conn.execute_batch("BEGIN")
            .context("cannot begin a read transaction")?;
        let session_cols = columns(&conn, "sessions")?;
        if session_cols.is_empty() {
            bail!("not a Goose sessions database: no `sessions` table");
        }
        let message_cols = columns(&conn, "messages")?;
        let mut st = conn.prepare("SELECT * FROM sessions ORDER BY created_at, id")?;
        let names: Vec<String> = st.column_names().into_iter().map(String::from).collect();
        let mut rows = st.query([])?;
        let mut sessions = Vec::new();
        while let Some(row) = rows.next()? {
            let mut obj = Map::new();
            for (i, name) in names.iter().enumerate() {
                obj.insert(name.clone(), json_of(row.get_ref(i)?));
            }
            sessions.push(obj);
        }
        let after = self.modified_after.map(sql_time);
        for ses in sessions {
            let Some(id) = ses.get("id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            in_db.insert(id.clone());
            if self.stopped() {
                break;
            }
            let updated = ses.get("updated_at").and_then(Value::as_str).unwrap_or("");
            if after.as_deref().is_some_and(|a| sql_prefix(updated).as_str() <= a) {
                self.stats.skipped += 1;
                continue;
            }
            self.write_db_session(&conn, db, &id, Value::Object(ses), &message_cols)?;
        }
        Ok(())
    }

    fn write_db_session(
        &mut self,
        conn: &Connection,
        db: &Path,
        id: &str,
        session: Value,
        message_cols: &[String],
    ) -> Result<()> {
        let name = file_name(db);
        let prov = |table: &str, row: &str| {
            serde_json::json!({"file": db.display().to_string(), "table": table, "row": row})
                .to_string()
        };
        self.stats.sessions += 1;
        let at = format!("{name}:sessions/{id}");
        self.write(id, "session", &session.to_string(), &at, &prov("sessions", id))?;
        if message_cols.is_empty() {
            return Ok(());
        }
        let has = |c: &str| message_cols.iter().any(|m| m == c);
        let pick = |c: &'static str| if has(c) { c } else { "NULL" };
        let sql = format!(
            "SELECT id, {}, role, content_json, created_timestamp, {}, {}, {} FROM messages \
             WHERE session_id = ?1 ORDER BY id",
            pick("message_id"),
            pick("timestamp"),
            pick("tokens"),
            pick("metadata_json")
        );
        let mut st = conn.prepare(&sql)?;
        let mut rows = st.query([id])?;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            let message_id: Option<String> = row.get(1)?;
            let content: String = row.get::<_, Option<String>>(3)?.unwrap_or_default();
            let metadata: Option<String> = row.get(7)?;
            let row_name = rowid.to_string();
            let (content, metadata) = match (raw_json(&content), metadata.as_deref().map(raw_json)) {
                (Ok(c), None) => (c, "null"),
                (Ok(c), Some(Ok(m))) => (c, m),
                (Err(e), _) | (_, Some(Err(e))) => {
                    let input = format!("{}:messages/{rowid}", db.display());
                    self.io.rejects.reject(&input, rowid as u64, &e, content.as_bytes())?;
                    continue;
                }
            };
            let head = serde_json::json!({
                "id": rowid,
                "message_id": message_id,
                "session_id": id,
                "role": json_of(row.get_ref(2)?),
                "created_timestamp": json_of(row.get_ref(4)?),
                "timestamp": json_of(row.get_ref(5)?),
                "tokens": json_of(row.get_ref(6)?),
            })
            .to_string();
            let record = format!(
                "{},\"content\":{content},\"metadata\":{metadata}}}",
                &head[..head.len() - 1]
            );
            let at = format!("{name}:messages/{}", message_id.as_deref().unwrap_or(&row_name));
            self.write(id, "message", &record, &at, &prov("messages", &row_name))?;
        }
        Ok(())
    }
}

/// The first 19 characters of a stored time (`2025-01-01 12:00:00` or RFC 3339), `T` made a
/// space, to compare with [`sql_time`].
fn sql_prefix(t: &str) -> String {
    t.chars()
        .take(19)
        .map(|c| if c == 'T' { ' ' } else { c })
        .collect()
}

/// `text` checked to be JSON, unchanged.
fn raw_json(text: &str) -> Result<&str, String> {
    serde_json::from_str::<&RawValue>(text)
        .map(|r| r.get())
        .map_err(|e| format!("stored JSON is not JSON: {e}"))
}

impl Reader<'_> {
    /// Reads an older `<id>.jsonl` session file: its metadata line and its messages.
    fn read_legacy(&mut self, file: &Path) -> Result<()> {
        if let Some(after) = self.modified_after {
            let modified = std::fs::metadata(file)?.modified()?;
            if modified <= after {
                self.stats.skipped += 1;
                return Ok(());
            }
        }
        let session = file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let name = file_name(file);
        let mut reader = BufReader::new(File::open(file)?);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        let mut counted = false;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf)?;
            if n == 0 || self.stopped() {
                break;
            }
            line_no += 1;
            let complete = buf.last() == Some(&b'\n');
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            let parsed: Result<Value, _> = serde_json::from_str(text);
            let obj = match parsed {
                Ok(v @ Value::Object(_)) => v,
                _ if !complete => {
                    self.stats.incomplete += 1;
                    break;
                }
                Ok(_) => {
                    self.reject(file, line_no, "not a JSON object", text)?;
                    continue;
                }
                Err(e) => {
                    self.reject(file, line_no, &format!("not JSON: {e}"), text)?;
                    continue;
                }
            };
            // The first line is the session's metadata unless it is a message (a file written
            // without one, which Goose also reads).
            let kind = if line_no == 1 && obj.get("role").is_none() {
                "legacy-session"
            } else {
                "legacy-message"
            };
            if !counted {
                self.stats.sessions += 1;
                counted = true;
            }
            let at = format!("{name}:{line_no}");
            let prov = serde_json::json!({"file": file.display().to_string(), "line": line_no});
            self.write(&session, kind, text, &at, &prov.to_string())?;
        }
        Ok(())
    }

    fn reject(&mut self, file: &Path, line: u64, why: &str, text: &str) -> Result<()> {
        let input = file.display().to_string();
        self.io.rejects.reject(&input, line, why, text.as_bytes())
    }
}
