//! Reading the SQLite layouts: G1/G2 (research §1), T2 (§2.5) and T3 (§2.8).
//!
//! A database is opened read-only ([`schema::open`]); its sessions are listed (ids and times
//! only), then each session is read inside one read transaction (`BEGIN` .. `COMMIT`): in WAL
//! mode that pins one snapshot, so a session comes out as it was committed at one moment even
//! while OpenCode writes (§4.2 "read each session inside one read transaction").
//!
//! A database that cannot be opened, is locked past the busy timeout, is corrupt or lacks the
//! tables or columns of its layout is reported with its file (and table) and counted as failed;
//! a row whose JSON does not parse is rejected with file, table and row id, and the rest of the
//! session is read.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Row};
use tonbo_core::contract::check_session_id;

use crate::follow::gate::{self, Need};
use crate::json::{self, BadJson};
use crate::record::{self, Kind, Layout, Prov};
use crate::schema::{self, Go, Schema, Table, T2, T3};
use crate::{Reader, SourceFailure, STAGE};

/// A session as listed, before it is read.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub layout: Layout,
    pub id: String,
    pub created: Option<i64>,
    pub updated: Option<i64>,
}

/// Maps SQLite errors to a [`SourceFailure`] naming what was being done.
pub(crate) trait Db<T> {
    fn db(self, what: &str, busy_ms: u128) -> Result<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self, what: &str, busy_ms: u128) -> Result<T> {
        self.map_err(|e| {
            let busy = matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            );
            let mut msg = format!("{what}: {e}");
            if busy {
                msg.push_str(&format!(" (still locked after {busy_ms} ms)"));
            }
            anyhow::Error::new(SourceFailure(msg))
        })
    }
}

/// Text of a value: ids and JSON columns.
fn text(v: ValueRef) -> Option<String> {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Null => None,
    }
}

/// An owned copy of a value (a key of the read order, for the look-ahead of `--follow`).
fn owned(v: ValueRef) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(b) => Value::Text(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// A stored time (integer; tolerated as real or numeric text).
pub(crate) fn int(v: ValueRef) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Appends a column value as JSON: TEXT as a string (JSON held in TEXT stays a string), numbers
/// as numbers, a BLOB as a string when it is UTF-8, else as base64.
pub fn push_value(buf: &mut String, v: ValueRef) {
    match v {
        ValueRef::Null => buf.push_str("null"),
        ValueRef::Integer(i) => buf.push_str(&i.to_string()),
        ValueRef::Real(f) => match serde_json::Number::from_f64(f) {
            Some(n) => buf.push_str(&n.to_string()),
            None => buf.push_str("null"),
        },
        ValueRef::Text(b) => buf.push_str(&json::string(&String::from_utf8_lossy(b))),
        ValueRef::Blob(b) => match std::str::from_utf8(b) {
            Ok(s) => buf.push_str(&json::string(s)),
            Err(_) => buf.push_str(&json::string(&base64(b))),
        },
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Appends the columns of `row` from `offset` on as a JSON object, column name -> value, in
/// table order, leaving out `skip`.
fn push_row_object(
    buf: &mut String,
    cols: &[String],
    row: &Row,
    offset: usize,
    skip: Option<&str>,
) -> rusqlite::Result<()> {
    buf.push('{');
    let mut first = true;
    for (i, col) in cols.iter().enumerate() {
        if Some(col.as_str()) == skip {
            continue;
        }
        if !first {
            buf.push(',');
        }
        first = false;
        buf.push_str(&json::string(col));
        buf.push(':');
        push_value(buf, row.get_ref(offset + i)?);
    }
    buf.push('}');
    Ok(())
}

/// The reject reason for a row: `table `T`, row `ID`: COLUMN: WHY`.
fn row_reason(table: &str, id: &str, column: &str, why: &BadJson) -> String {
    format!("table `{table}`, row `{id}`: `{column}` {why}")
}

/// `--follow`: whether a row after the one keyed `key` (its values of the read order's `cols`)
/// exists in `session`, among the rows `filter` (SQL) admits. NULLs sort first, as in the
/// `ORDER BY` of the read.
fn later_row(
    conn: &Connection,
    table: &Table,
    session: &str,
    cols: &[String],
    key: &[Value],
    filter: Option<&str>,
) -> Result<bool> {
    const FIRST: &str = "-9223372036854775808";
    let last = cols.len() - 1;
    let wrap = |i: usize, e: String| {
        if i < last {
            format!("ifnull({e}, {FIRST})")
        } else {
            e
        }
    };
    let lhs: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| wrap(i, c.clone()))
        .collect();
    let rhs: Vec<String> = (0..cols.len())
        .map(|i| wrap(i, format!("?{}", i + 2)))
        .collect();
    let sql = format!(
        "SELECT 1 FROM {} WHERE \"session_id\" = ?1 AND ({}) > ({}){} LIMIT 1",
        table.sql(),
        lhs.join(", "),
        rhs.join(", "),
        filter.map(|f| format!(" AND {f}")).unwrap_or_default()
    );
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&session];
    for v in key {
        params.push(v);
    }
    let found = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.exists(params.as_slice()))
        .map_err(|e| SourceFailure(format!("cannot look ahead in table `{}`: {e}", table.name)))?;
    Ok(found)
}

impl Reader<'_> {
    /// Reads one database file. Its failures are reported and counted; only output errors are
    /// returned.
    pub(crate) fn read_db(&mut self, path: &Path) -> Result<()> {
        let name = path.display().to_string();
        self.stats.databases += 1;
        match self.read_db_file(path, &name) {
            Ok(()) => Ok(()),
            Err(e) => match e.downcast::<SourceFailure>() {
                Ok(f) => {
                    tonbo_core::note!("{STAGE}: {name}: {f}");
                    self.stats.failed += 1;
                    Ok(())
                }
                Err(e) => Err(e),
            },
        }
    }

    fn read_db_file(&mut self, path: &Path, name: &str) -> Result<()> {
        let ms = self.busy.as_millis();
        let conn = schema::open(path, self.busy).db("cannot open", ms)?;
        let schema = schema::detect(&conn).db("cannot read", ms)?;
        for p in &schema.problems {
            tonbo_core::note!("{STAGE}: {name}: {p}");
            self.stats.failed += 1;
        }
        self.count_layouts(&schema);
        let listed = list_sessions(&conn, &schema).db("cannot list its sessions", ms)?;
        let before = self.stats.duplicates;
        for s in &listed {
            if self.stopped() {
                break;
            }
            self.read_db_session(&conn, &schema, name, s)?;
        }
        self.note_duplicates(name, before);
        Ok(())
    }

    /// Counts a database's layouts for the summary.
    pub(crate) fn count_layouts(&mut self, schema: &Schema) {
        if let Some(go) = &schema.go {
            match go.layout {
                Layout::G2 => self.stats.g2 += 1,
                _ => self.stats.g1 += 1,
            }
        }
        if schema.t2.is_some() {
            self.stats.t2 += 1;
        }
        if schema.t3.is_some() {
            self.stats.t3 += 1;
        }
    }

    /// Notes how many sessions of database `name` were passed over since `before`.
    pub(crate) fn note_duplicates(&mut self, name: &str, before: u64) {
        let dups = self.stats.duplicates - before;
        if dups > 0 {
            tonbo_core::note!(
                "{STAGE}: note: {name}: {dups} sessions already read from another source; not read again"
            );
        }
    }

    /// Reads one listed session of a database in one read transaction. In follow mode a session
    /// this database holds is read again (what went out before is passed over, [`gate`]).
    pub(crate) fn read_db_session(
        &mut self,
        conn: &Connection,
        schema: &Schema,
        name: &str,
        s: &Listed,
    ) -> Result<()> {
        let ms = self.busy.as_millis();
        let table = match s.layout {
            Layout::G1 | Layout::G2 => "sessions",
            Layout::T2 => "session",
            _ => "session_v2",
        };
        let again = self.is_followed(name, &s.id);
        if !again {
            if self.passed_before(name, &s.id) {
                return Ok(());
            }
            if self.claimed.contains(&s.id) {
                self.stats.duplicates += 1;
                self.pass(name, &s.id);
                return Ok(());
            }
            // Go-lineage title generation runs in a session of its own, `title-<parent>` (§1.4
            // "Skip title sessions").
            if matches!(s.layout, Layout::G1 | Layout::G2) && s.id.starts_with("title-") {
                self.stats.title_sessions += 1;
                self.pass(name, &s.id);
                return Ok(());
            }
            if let Err(why) = check_session_id(&s.id) {
                let reason = format!(
                    "table `{table}`, row `{}`: unusable session id: {why}",
                    s.id
                );
                self.pass(name, &s.id);
                self.reject(name, 0, &reason, s.id.as_bytes())?;
                return Ok(());
            }
            // Claimed before it is read: should reading fail half-way, no later source writes
            // the session a second time.
            self.claimed.insert(s.id.clone());
        }
        let what = format!("cannot read session {} (table `{table}`)", s.id);
        let tx = conn.unchecked_transaction().db(&what, ms)?;
        // A followed session read again changed since: it is read whatever its age.
        if !again
            && self.modified_after.is_some()
            && !self.db_session_updated(&tx, schema, s).db(&what, ms)?
        {
            self.stats.skipped_old += 1;
            self.track_old(name, &s.id);
            return Ok(());
        }
        self.begin_session(name, &s.id);
        match s.layout {
            Layout::G1 | Layout::G2 => {
                let go = schema.go.as_ref().expect("listed from the Go tables");
                self.read_go_session(&tx, go, name, s, &what)?;
            }
            Layout::T2 => {
                let t2 = schema.t2.as_ref().expect("listed from the T2 tables");
                self.read_t2_session(&tx, t2, name, s, &what)?;
            }
            _ => {
                let t3 = schema.t3.as_ref().expect("listed from the T3 tables");
                self.read_t3_session(&tx, t3, name, s, &what)?;
            }
        }
        tx.commit().db(&what, ms)?;
        self.end_session(&s.id)?;
        self.out.flush()?;
        Ok(())
    }

    /// Whether a session changed after `--modified-after`: its own update time, or the latest
    /// of its messages' (and T2 parts'), since not every writer touches the session row.
    fn db_session_updated(
        &self,
        conn: &Connection,
        schema: &Schema,
        s: &Listed,
    ) -> rusqlite::Result<bool> {
        let mut known = false;
        if let Some(t) = s.updated {
            if self.is_after(t) {
                return Ok(true);
            }
            known = true;
        }
        let mut checks: Vec<(&Table, &str, &str)> = Vec::new();
        match s.layout {
            Layout::G1 | Layout::G2 => {
                if let Some(go) = &schema.go {
                    checks.push((&go.messages, "updated_at", "session_id"));
                }
            }
            Layout::T2 => {
                if let Some(t2) = &schema.t2 {
                    checks.push((&t2.message, "time_updated", "session_id"));
                    checks.push((&t2.part, "time_updated", "session_id"));
                }
            }
            _ => {
                if let Some(t3) = &schema.t3 {
                    checks.push((&t3.message, "time_updated", "session_id"));
                }
            }
        }
        for (table, col, key) in checks {
            if !table.has(col) || !table.has(key) {
                continue;
            }
            let sql = format!(
                "SELECT max({}) FROM {} WHERE {} = ?1",
                schema::quote(col),
                table.sql(),
                schema::quote(key)
            );
            let latest = conn.query_row(&sql, [&s.id], |r| Ok(int(r.get_ref(0)?)))?;
            if let Some(t) = latest {
                if self.is_after(t) {
                    return Ok(true);
                }
                known = true;
            }
        }
        Ok(!known)
    }

    /// Writes the `"kind":"session"` record of the row `id` of `table`; false if the row is gone.
    fn session_record(
        &mut self,
        conn: &Connection,
        table: &Table,
        layout: Layout,
        name: &str,
        id: &str,
    ) -> rusqlite::Result<Option<String>> {
        let sql = format!("SELECT {} FROM {} WHERE id = ?1", table.all(), table.sql());
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([id])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let mut buf = std::mem::take(&mut self.buf);
        record::begin(&mut buf, Kind::Session, id, layout);
        buf.push_str("\"session\":");
        push_row_object(&mut buf, &table.cols, row, 0, None)?;
        record::finish(
            &mut buf,
            Prov::Row {
                file: name,
                table: table.name,
                row: id,
            },
        );
        Ok(Some(buf))
    }

    /// Writes a session record built by [`Self::session_record`] (in follow mode: with the
    /// session's first message, [`gate`]); false if there was none.
    fn write_session(&mut self, session: &str, built: Option<String>) -> Result<bool> {
        let Some(buf) = built else {
            return Ok(false);
        };
        self.emit_session(session, buf)?;
        Ok(true)
    }

    /// G1/G2: the `sessions` row, then its `messages` by `(created_at, rowid)` (§1.4: seconds, so
    /// rows tie; ids are random UUIDs).
    fn read_go_session(
        &mut self,
        conn: &Connection,
        go: &Go,
        name: &str,
        s: &Listed,
        what: &str,
    ) -> Result<()> {
        let ms = self.busy.as_millis();
        let built = self
            .session_record(conn, &go.sessions, go.layout, name, &s.id)
            .db(what, ms)?;
        if !self.write_session(&s.id, built)? {
            return Ok(());
        }
        let m = &go.messages;
        let tie = if m.rowid { "rowid" } else { "\"id\"" };
        let order = if m.has("created_at") {
            format!("\"created_at\", {tie}")
        } else {
            tie.to_string()
        };
        let sql = format!(
            "SELECT {}, {} FROM {} WHERE \"session_id\" = ?1 ORDER BY {order}",
            m.rowid(),
            m.all(),
            m.sql()
        );
        let at = |c: &str| m.cols.iter().position(|have| have == c).map(|i| 1 + i);
        let id_at = at("id").expect("required");
        let parts_at = at("parts").expect("required");
        let role_at = at("role").expect("required");
        let (created_at, updated_at) = (at("created_at"), at("updated_at"));
        // The read order, for the look-ahead of `--follow` (`gate`).
        let mut order_cols = Vec::new();
        if created_at.is_some() {
            order_cols.push("\"created_at\"".to_string());
        }
        order_cols.push(tie.to_string());
        let mut stmt = conn.prepare(&sql).db(what, ms)?;
        let mut rows = stmt.query([&s.id]).db(what, ms)?;
        let mut buf = std::mem::take(&mut self.buf);
        let mut n_read = 0u64;
        while let Some(row) = rows.next().db(what, ms)? {
            n_read += 1;
            if self.stop_due(n_read) {
                break;
            }
            let rowid = int(row.get_ref(0).db(what, ms)?).unwrap_or(0).max(0) as u64;
            let id = text(row.get_ref(id_at).db(what, ms)?).unwrap_or_default();
            let stamp = match updated_at {
                Some(i) => int(row.get_ref(i).db(what, ms)?),
                None => None,
            };
            if self.follow_skip(&s.id, &id, stamp) {
                continue;
            }
            let raw = row.get_ref(parts_at).db(what, ms)?;
            let bytes = match raw {
                ValueRef::Text(b) | ValueRef::Blob(b) => b,
                _ => b"",
            };
            // §1.3: a JSON array of {"type","data"} envelopes.
            let parts = match raw {
                ValueRef::Null => Err(BadJson {
                    line: 1,
                    reason: "is NULL".into(),
                }),
                _ => json::utf8(bytes).and_then(json::array),
            };
            let (parts, n) = match parts {
                Ok(p) => p,
                Err(why) => {
                    let reason = row_reason("messages", &id, "parts", &why);
                    self.reject(name, rowid, &reason, bytes)?;
                    self.follow_done(&s.id, &id, stamp);
                    continue;
                }
            };
            record::begin(&mut buf, Kind::Message, &s.id, go.layout);
            buf.push_str("\"message\":");
            push_row_object(&mut buf, &m.cols, row, 1, Some("parts")).db(what, ms)?;
            buf.push_str(",\"parts\":");
            buf.push_str(&parts);
            record::finish(
                &mut buf,
                Prov::Row {
                    file: name,
                    table: "messages",
                    row: &id,
                },
            );
            if self.gate.is_some() {
                let role = text(row.get_ref(role_at).db(what, ms)?);
                let need = gate::go_need(role.as_deref(), &parts);
                let mut key = Vec::new();
                if let Some(i) = created_at {
                    key.push(owned(row.get_ref(i).db(what, ms)?));
                }
                key.push(owned(
                    row.get_ref(if m.rowid { 0 } else { id_at }).db(what, ms)?,
                ));
                let later = |_: Need| {
                    later_row(
                        conn,
                        m,
                        &s.id,
                        &order_cols,
                        &key,
                        Some("\"role\" = 'assistant'"),
                    )
                };
                if !self.follow_admit(&s.id, need, later)? {
                    continue;
                }
            }
            self.write_message(&s.id, &id, stamp, &buf)?;
            self.stats.messages += 1;
            self.stats.parts += n;
        }
        self.buf = buf;
        Ok(())
    }

    /// T2: the `session` row, then its messages by `(time_created, id)` (§2.7), each with its
    /// parts by id, and the messages only the JSON store has merged in order (§2.6).
    fn read_t2_session(
        &mut self,
        conn: &Connection,
        t2: &T2,
        name: &str,
        s: &Listed,
        what: &str,
    ) -> Result<()> {
        let ms = self.busy.as_millis();
        let built = self
            .session_record(conn, &t2.session, Layout::T2, name, &s.id)
            .db(what, ms)?;
        if !self.write_session(&s.id, built)? {
            return Ok(());
        }
        let m = &t2.message;
        // Messages of this session that a JSON store holds and the database does not (§2.6
        // "Union T1 with T2, deduplicating on ids, with DB rows winning").
        let candidates = self.json_message_files(&s.id);
        let extras = if candidates.is_empty() {
            Vec::new()
        } else {
            let sql = format!("SELECT \"id\" FROM {} WHERE \"session_id\" = ?1", m.sql());
            let mut stmt = conn.prepare(&sql).db(what, ms)?;
            let in_db: HashSet<String> = stmt
                .query_map([&s.id], |r| Ok(text(r.get_ref(0)?).unwrap_or_default()))
                .db(what, ms)?
                .collect::<rusqlite::Result<_>>()
                .db(what, ms)?;
            let only_json = candidates
                .into_iter()
                .filter(|c| !in_db.contains(&c.1))
                .collect();
            self.order_json_messages(only_json)?
        };
        let mut extras = extras.into_iter().peekable();

        let order = if m.has("time_created") {
            "\"time_created\", \"id\""
        } else {
            "\"id\""
        };
        let sql = format!(
            "SELECT {}, \"id\", {}, \"data\", {} FROM {} WHERE \"session_id\" = ?1 ORDER BY {order}",
            m.rowid(),
            m.col("time_created"),
            m.col("time_updated"),
            m.sql()
        );
        // The read order, for the look-ahead of `--follow` (`gate`).
        let mut order_cols = Vec::new();
        if m.has("time_created") {
            order_cols.push("\"time_created\"".to_string());
        }
        order_cols.push("\"id\"".to_string());
        let mut stmt = conn.prepare(&sql).db(what, ms)?;
        let p = &t2.part;
        let part_sql = format!(
            "SELECT {}, \"id\", {}, \"data\" FROM {} WHERE \"message_id\" = ?1 ORDER BY \"id\"",
            p.rowid(),
            p.col("session_id"),
            p.sql()
        );
        let mut part_stmt = conn.prepare(&part_sql).db(what, ms)?;
        let mut rows = stmt.query([&s.id]).db(what, ms)?;
        let session_json = json::string(&s.id);
        let mut n_read = 0u64;
        while let Some(row) = rows.next().db(what, ms)? {
            n_read += 1;
            if self.stop_due(n_read) {
                return Ok(());
            }
            let rowid = int(row.get_ref(0).db(what, ms)?).unwrap_or(0).max(0) as u64;
            let id = text(row.get_ref(1).db(what, ms)?).unwrap_or_default();
            let created = int(row.get_ref(2).db(what, ms)?);
            while let Some(x) = extras.next_if(|x| (x.created, x.id.as_str()) < (created, &id)) {
                // Only in the JSON store, which OpenCode no longer writes (§2.6): final.
                self.emit_json_message(&s.id, &x, (true, true))?;
            }
            let stamp = int(row.get_ref(4).db(what, ms)?);
            if self.follow_skip(&s.id, &id, stamp) {
                continue;
            }
            let data = row.get_ref(3).db(what, ms)?;
            let data_bytes = match data {
                ValueRef::Text(b) | ValueRef::Blob(b) => b,
                _ => b"",
            };
            let id_json = json::string(&id);
            let message = json::utf8(data_bytes).and_then(|d| {
                json::spread_object(d, &[("id", &id_json), ("sessionID", &session_json)])
            });
            let message = match message {
                Ok(m) => m,
                Err(why) => {
                    let reason = row_reason("message", &id, "data", &why);
                    self.reject(name, rowid, &reason, data_bytes)?;
                    self.follow_done(&s.id, &id, stamp);
                    continue;
                }
            };
            let following = self.gate.is_some();
            let mut open_tool = false;
            let mut buf = std::mem::take(&mut self.buf);
            record::begin(&mut buf, Kind::Message, &s.id, Layout::T2);
            buf.push_str("\"message\":");
            buf.push_str(&message);
            buf.push_str(",\"parts\":[");
            let mut n = 0u64;
            let mut parts = part_stmt.query([&id]).db(what, ms)?;
            while let Some(part) = parts.next().db(what, ms)? {
                let prowid = int(part.get_ref(0).db(what, ms)?).unwrap_or(0).max(0) as u64;
                let pid = text(part.get_ref(1).db(what, ms)?).unwrap_or_default();
                let psession = text(part.get_ref(2).db(what, ms)?)
                    .map(|s| json::string(&s))
                    .unwrap_or_else(|| session_json.clone());
                let pdata = part.get_ref(3).db(what, ms)?;
                let pbytes = match pdata {
                    ValueRef::Text(b) | ValueRef::Blob(b) => b,
                    _ => b"",
                };
                let spread = json::utf8(pbytes).and_then(|d| {
                    json::spread_object(
                        d,
                        &[
                            ("id", &json::string(&pid)),
                            ("sessionID", &psession),
                            ("messageID", &id_json),
                        ],
                    )
                });
                match spread {
                    Ok(obj) => {
                        if following && !open_tool {
                            open_tool = gate::ts_part_open(&obj);
                        }
                        if n > 0 {
                            buf.push(',');
                        }
                        buf.push_str(&obj);
                        n += 1;
                    }
                    Err(why) => {
                        let reason = row_reason("part", &pid, "data", &why);
                        self.reject(name, prowid, &reason, pbytes)?;
                    }
                }
            }
            buf.push(']');
            record::finish(
                &mut buf,
                Prov::Row {
                    file: name,
                    table: "message",
                    row: &id,
                },
            );
            if following {
                let need = gate::ts_need(&message, open_tool);
                let mut key = Vec::new();
                if m.has("time_created") {
                    key.push(owned(row.get_ref(2).db(what, ms)?));
                }
                key.push(Value::Text(id.clone()));
                let later = |need: Need| {
                    // §2.5: the role is inside `data`; a row whose `data` is not JSON is no
                    // assistant message.
                    let filter = (need == Need::LaterAssistant).then_some(
                        "CASE WHEN json_valid(\"data\") THEN json_extract(\"data\", '$.role') END = 'assistant'",
                    );
                    later_row(conn, m, &s.id, &order_cols, &key, filter)
                };
                if !self.follow_admit(&s.id, need, later)? {
                    self.buf = buf;
                    continue;
                }
            }
            self.write_message(&s.id, &id, stamp, &buf)?;
            self.buf = buf;
            self.stats.messages += 1;
            self.stats.parts += n;
        }
        for x in extras {
            self.emit_json_message(&s.id, &x, (true, true))?;
        }
        Ok(())
    }

    /// T3: the `session_v2` row, then its `session_message` rows by `seq` (§2.8).
    fn read_t3_session(
        &mut self,
        conn: &Connection,
        t3: &T3,
        name: &str,
        s: &Listed,
        what: &str,
    ) -> Result<()> {
        let ms = self.busy.as_millis();
        let built = self
            .session_record(conn, &t3.session, Layout::T3, name, &s.id)
            .db(what, ms)?;
        if !self.write_session(&s.id, built)? {
            return Ok(());
        }
        let m = &t3.message;
        let sql = format!(
            "SELECT {}, \"id\", \"session_id\", \"type\", \"seq\", {}, {}, \"data\" FROM {} \
             WHERE \"session_id\" = ?1 ORDER BY \"seq\", \"id\"",
            m.rowid(),
            m.col("time_created"),
            m.col("time_updated"),
            m.sql()
        );
        let mut stmt = conn.prepare(&sql).db(what, ms)?;
        let mut rows = stmt.query([&s.id]).db(what, ms)?;
        let order_cols = ["\"seq\"".to_string(), "\"id\"".to_string()];
        let mut buf = std::mem::take(&mut self.buf);
        let mut n_read = 0u64;
        while let Some(row) = rows.next().db(what, ms)? {
            n_read += 1;
            if self.stop_due(n_read) {
                break;
            }
            let rowid = int(row.get_ref(0).db(what, ms)?).unwrap_or(0).max(0) as u64;
            let id = text(row.get_ref(1).db(what, ms)?).unwrap_or_default();
            let stamp = int(row.get_ref(6).db(what, ms)?);
            if self.follow_skip(&s.id, &id, stamp) {
                continue;
            }
            let data = row.get_ref(7).db(what, ms)?;
            let bytes = match data {
                ValueRef::Text(b) | ValueRef::Blob(b) => b,
                _ => b"",
            };
            let data = match json::utf8(bytes).and_then(json::any_value) {
                Ok(d) => d,
                Err(why) => {
                    let reason = row_reason("session_message", &id, "data", &why);
                    self.reject(name, rowid, &reason, bytes)?;
                    self.follow_done(&s.id, &id, stamp);
                    continue;
                }
            };
            record::begin(&mut buf, Kind::Message, &s.id, Layout::T3);
            buf.push_str("\"message\":{");
            for (i, key) in [
                "id",
                "session_id",
                "type",
                "seq",
                "time_created",
                "time_updated",
            ]
            .iter()
            .enumerate()
            {
                buf.push_str(&format!("\"{key}\":"));
                push_value(&mut buf, row.get_ref(1 + i).db(what, ms)?);
                buf.push(',');
            }
            buf.push_str("\"data\":");
            buf.push_str(&data);
            buf.push_str("},\"parts\":[]");
            record::finish(
                &mut buf,
                Prov::Row {
                    file: name,
                    table: "session_message",
                    row: &id,
                },
            );
            if self.gate.is_some() {
                let ty = text(row.get_ref(3).db(what, ms)?);
                let need = gate::t3_need(ty.as_deref(), &data);
                let key = [owned(row.get_ref(4).db(what, ms)?), Value::Text(id.clone())];
                let later = |_: Need| {
                    later_row(
                        conn,
                        m,
                        &s.id,
                        &order_cols,
                        &key,
                        Some("\"type\" = 'assistant'"),
                    )
                };
                if !self.follow_admit(&s.id, need, later)? {
                    continue;
                }
            }
            self.write_message(&s.id, &id, stamp, &buf)?;
            self.stats.messages += 1;
        }
        self.buf = buf;
        Ok(())
    }
}

/// The sessions of a database, ids and times only, by (creation time, id). With `session_v2`,
/// its sessions and then the legacy `session` rows it does not hold (§2.8 "Choosing the
/// generation").
pub(crate) fn list_sessions(conn: &Connection, schema: &Schema) -> rusqlite::Result<Vec<Listed>> {
    let list = |table: &Table, created: &str, updated: &str, layout: Layout, extra: &str| {
        let sql = format!(
            "SELECT \"id\", {}, {} FROM {}{extra}",
            table.col(created),
            table.col(updated),
            table.sql()
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(Listed {
                layout,
                id: text(r.get_ref(0)?).unwrap_or_default(),
                created: int(r.get_ref(1)?),
                updated: int(r.get_ref(2)?),
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    };
    let mut all = Vec::new();
    if let Some(go) = &schema.go {
        all.extend(list(
            &go.sessions,
            "created_at",
            "updated_at",
            go.layout,
            "",
        )?);
    }
    if let Some(t3) = &schema.t3 {
        all.extend(list(
            &t3.session,
            "time_created",
            "time_updated",
            Layout::T3,
            "",
        )?);
    }
    if let Some(t2) = &schema.t2 {
        let legacy = if schema.t3.is_some() {
            " WHERE \"id\" NOT IN (SELECT \"id\" FROM \"session_v2\" WHERE \"id\" IS NOT NULL)"
        } else {
            ""
        };
        all.extend(list(
            &t2.session,
            "time_created",
            "time_updated",
            Layout::T2,
            legacy,
        )?);
    }
    all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_json() {
        let v = |v: ValueRef| {
            let mut s = String::new();
            push_value(&mut s, v);
            s
        };
        assert_eq!(v(ValueRef::Null), "null");
        assert_eq!(v(ValueRef::Integer(-3)), "-3");
        assert_eq!(v(ValueRef::Real(1.5)), "1.5");
        assert_eq!(v(ValueRef::Real(f64::NAN)), "null");
        assert_eq!(v(ValueRef::Text(b"[{\"a\":1}]")), r#""[{\"a\":1}]""#);
        assert_eq!(v(ValueRef::Blob(b"abc")), r#""abc""#);
        assert_eq!(
            v(ValueRef::Blob(&[0xff, 0x00, 0x10, 0x80])),
            r#""/wAQgA==""#
        );
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn stored_times_are_read_leniently() {
        assert_eq!(int(ValueRef::Integer(5)), Some(5));
        assert_eq!(int(ValueRef::Real(5.9)), Some(5));
        assert_eq!(int(ValueRef::Text(b" 17 ")), Some(17));
        assert_eq!(int(ValueRef::Text(b"x")), None);
        assert_eq!(int(ValueRef::Null), None);
    }
}
