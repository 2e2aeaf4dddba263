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

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tonbo_core::event::json_str;
use tonbo_core::progress::{R_BYTES, R_RECORDS, R_SCANNED};
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

/// Reads stores, writing their records to the run's output. What it wrote is remembered, so
/// that reading a store again (`--follow`) writes only what is new.
pub struct Reader<'a> {
    io: ReaderIo<'a>,
    modified_after: Option<SystemTime>,
    pub stats: Stats,
    /// Per database, what was written of it.
    dbs: HashMap<PathBuf, Written>,
    /// Per older session file, how many of its lines were written or passed over.
    legacy_lines: HashMap<PathBuf, u64>,
}

/// What was written of one database: per session, the last message row read and what its
/// session record said; the key of every message written (Goose rewrites a whole conversation
/// with new row ids but the same `message_id`s when it compacts or imports one).
#[derive(Debug, Default)]
struct Written {
    last_row: HashMap<String, i64>,
    session_said: HashMap<String, u64>,
    messages: HashSet<String>,
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
pub(crate) fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
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
            dbs: HashMap::new(),
            legacy_lines: HashMap::new(),
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
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(is_broken_pipe)
                {
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
        if let Some(p) = &self.io.progress {
            p.add(R_RECORDS, 1);
            p.add(R_BYTES, record.len() as u64);
        }
        Ok(())
    }

    /// Counts a session newly met, for the summary and the progress line.
    fn count_session(&mut self) {
        self.stats.sessions += 1;
        if let Some(p) = &self.io.progress {
            p.add(R_SCANNED, 1);
        }
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
        let order = match session_cols.iter().any(|c| c == "created_at") {
            true => "created_at, id",
            false => "rowid",
        };
        let mut st = conn.prepare(&format!("SELECT * FROM sessions ORDER BY {order}"))?;
        let names: Vec<String> = st.column_names().map(String::from).collect();
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
            if after
                .as_deref()
                .is_some_and(|a| sql_prefix(updated).as_str() <= a)
            {
                self.stats.skipped += 1;
                continue;
            }
            self.write_db_session(&conn, db, &id, Value::Object(ses), &message_cols)?;
        }
        Ok(())
    }

    /// Writes a session's record (when it is new, or says something new: its name, folder,
    /// type or model) and its message rows not written before.
    fn write_db_session(
        &mut self,
        conn: &Connection,
        db: &Path,
        id: &str,
        session: Value,
        message_cols: &[String],
    ) -> Result<()> {
        let name = file_name(db);
        let said = session_said(&session);
        let written = self.dbs.entry(db.to_path_buf()).or_default();
        let first = !written.session_said.contains_key(id);
        if written.session_said.insert(id.to_string(), said) != Some(said) {
            if first {
                self.count_session();
            }
            let at = format!("{name}:sessions/{id}");
            let prov = provenance(db, "sessions", id);
            self.write(id, "session", &session.to_string(), &at, &prov)?;
        }
        if message_cols.is_empty() {
            return Ok(());
        }
        let has = |c: &str| message_cols.iter().any(|m| m == c);
        let pick = |c: &'static str| if has(c) { c } else { "NULL" };
        let sql = format!(
            "SELECT id, {}, role, content_json, created_timestamp, {}, {}, {} FROM messages \
             WHERE session_id = ?1 AND id > ?2 ORDER BY id",
            pick("message_id"),
            pick("timestamp"),
            pick("tokens"),
            pick("metadata_json")
        );
        let after = self.dbs[db].last_row.get(id).copied().unwrap_or(0);
        let mut st = conn.prepare(&sql)?;
        let mut rows = st.query(rusqlite::params![id, after])?;
        while let Some(row) = rows.next()? {
            self.write_message_row(db, &name, id, row)?;
        }
        Ok(())
    }

    /// Writes one message row, unless a row with its `message_id` was written before.
    fn write_message_row(
        &mut self,
        db: &Path,
        name: &str,
        session: &str,
        row: &rusqlite::Row,
    ) -> Result<()> {
        let rowid: i64 = row.get(0)?;
        let message_id: Option<String> = row.get(1)?;
        let written = self.dbs.entry(db.to_path_buf()).or_default();
        written.last_row.insert(session.to_string(), rowid);
        let row_name = rowid.to_string();
        let key = message_id
            .clone()
            .unwrap_or_else(|| format!("{session}/{rowid}"));
        if !written.messages.insert(key) {
            return Ok(());
        }
        let content: String = row.get::<_, Option<String>>(3)?.unwrap_or_default();
        let metadata: Option<String> = row.get(7)?;
        let (content, metadata) = match (raw_json(&content), metadata.as_deref().map(raw_json)) {
            (Ok(c), None) => (c, "null"),
            (Ok(c), Some(Ok(m))) => (c, m),
            (Err(e), _) | (_, Some(Err(e))) => {
                let input = format!("{}:messages/{rowid}", db.display());
                return self
                    .io
                    .rejects
                    .reject(&input, rowid as u64, &e, content.as_bytes());
            }
        };
        let head = serde_json::json!({
            "id": rowid,
            "message_id": message_id,
            "session_id": session,
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
        let at = format!(
            "{name}:messages/{}",
            message_id.as_deref().unwrap_or(&row_name)
        );
        let prov = provenance(db, "messages", &row_name);
        self.write(session, "message", &record, &at, &prov)
    }
}

/// What of a session row its events carry (not its times and counters, which change with
/// every message): a new session record is written only when this changes.
fn session_said(session: &Value) -> u64 {
    let said: Vec<&Value> = [
        "name",
        "description",
        "working_dir",
        "session_type",
        "provider_name",
        "model_config_json",
        "schedule_id",
    ]
    .iter()
    .map(|k| session.get(*k).unwrap_or(&Value::Null))
    .collect();
    tonbo_core::contract::stable_hash(serde_json::to_string(&said).unwrap_or_default().as_bytes())
}

fn provenance(db: &Path, table: &str, row: &str) -> String {
    serde_json::json!({"file": db.display().to_string(), "table": table, "row": row}).to_string()
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
        let done = self.legacy_lines.get(file).copied().unwrap_or(0);
        let mut counted = done > 0;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf)?;
            if n == 0 || self.stopped() {
                break;
            }
            line_no += 1;
            let complete = buf.last() == Some(&b'\n');
            // Older Goose rewrote the whole file each turn, the lines before unchanged.
            if line_no <= done {
                continue;
            }
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                self.legacy_lines.insert(file.to_path_buf(), line_no);
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
                    self.legacy_lines.insert(file.to_path_buf(), line_no);
                    self.reject(file, line_no, "not a JSON object", text)?;
                    continue;
                }
                Err(e) => {
                    self.legacy_lines.insert(file.to_path_buf(), line_no);
                    self.reject(file, line_no, &format!("not JSON: {e}"), text)?;
                    continue;
                }
            };
            self.legacy_lines.insert(file.to_path_buf(), line_no);
            // The first line is the session's metadata unless it is a message (a file written
            // without one, which Goose also reads).
            let kind = if line_no == 1 && obj.get("role").is_none() {
                "legacy-session"
            } else {
                "legacy-message"
            };
            if !counted {
                self.count_session();
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

impl Reader<'_> {
    /// Reads every store under `inputs`; for each input, how many records it gave and whether
    /// any store was found in it.
    pub fn read_inputs(&mut self, inputs: &[PathBuf]) -> Result<Vec<(u64, bool)>> {
        let mut yields = Vec::new();
        for path in inputs {
            let stores = crate::roots::stores_under(path);
            let mut records = 0;
            for store in &stores {
                if self.stopped() {
                    break;
                }
                records += self.read_store(store)?;
            }
            yields.push((records, !stores.is_empty()));
        }
        Ok(yields)
    }

    /// Runs `f` heedless of the stop flag (a follower's last look runs to its end).
    pub fn heedless<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let stop = self.io.stop.take();
        let r = f(self);
        self.io.stop = stop;
        r
    }

    /// Passes on what was written so far.
    pub fn flush(&mut self) -> Result<()> {
        self.io.out.flush()?;
        Ok(())
    }
}
