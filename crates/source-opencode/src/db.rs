//! Reading the SQLite layouts: G1/G2 (`db/go.rs`), T2 (`db/t2.rs`) and T3 (`db/t3.rs`).
//!
//! A database is opened read-only ([`schema::open`]); its sessions are listed (ids and times
//! only), then each session is read inside one read transaction (`BEGIN` .. `COMMIT`): in WAL
//! mode that pins one snapshot, so a session comes out as it was committed at one moment even
//! while OpenCode writes.
//!
//! A database that cannot be opened, is locked past the busy timeout, is corrupt or lacks the
//! tables or columns of its layout is reported with its file (and table) and counted as failed;
//! a row whose JSON does not parse is rejected with file, table and row id, and the rest of the
//! session is read.

mod go;
mod t2;
mod t3;

use std::path::Path;

use anyhow::Result;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Row, Rows};
use tonbo_core::contract::check_session_id;

use crate::follow::gate::Need;
use crate::json::{self, BadJson};
use crate::record::{self, Kind, Layout, Lineage, Prov};
use crate::schema::{self, Schema, Table};
use crate::{Reader, SourceFailure, STAGE};

/// A session as listed, before it is read.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub layout: Layout,
    pub id: String,
    pub created: Option<i64>,
    pub updated: Option<i64>,
}

impl Listed {
    /// The table its row is in.
    fn table(&self) -> &'static str {
        match self.layout.lineage() {
            Lineage::Go => "sessions",
            Lineage::TypeScript => "session",
            Lineage::OpenCode2 => "session_v2",
        }
    }
}

/// One session being read from a database, inside its read transaction.
pub(crate) struct SessionRead<'c> {
    pub conn: &'c Connection,
    /// The database file, as given or found.
    pub name: &'c str,
    pub session: &'c Listed,
    /// What a failure says was being done.
    what: String,
    busy_ms: u128,
}

impl SessionRead<'_> {
    /// A result of SQLite, its failure naming the session ([`Db`]).
    pub fn db<T>(&self, r: rusqlite::Result<T>) -> Result<T> {
        r.db(&self.what, self.busy_ms)
    }

    pub fn id(&self) -> &str {
        &self.session.id
    }
}

/// The bytes of a TEXT or BLOB column; nothing for another type.
pub(crate) fn bytes_of(v: ValueRef<'_>) -> &[u8] {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => b,
        _ => b"",
    }
}

/// A rowid column (`NULL` for a `WITHOUT ROWID` table) as the line number of a reject.
pub(crate) fn rowid_of(v: ValueRef) -> u64 {
    int(v).unwrap_or(0).max(0) as u64
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
pub(crate) fn text(v: ValueRef) -> Option<String> {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Null => None,
    }
}

/// An owned copy of a value (a key of the read order, for the look-ahead of `--follow`).
pub(crate) fn owned(v: ValueRef) -> Value {
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
pub(crate) fn push_row_object(
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
pub(crate) fn row_reason(table: &str, id: &str, column: &str, why: &BadJson) -> String {
    format!("table `{table}`, row `{id}`: `{column}` {why}")
}

/// `--follow`: whether a row after the one keyed `key` (its values of the read order's `cols`)
/// exists in `session`, among the rows `filter` (SQL) admits. NULLs sort first, as in the
/// `ORDER BY` of the read.
pub(crate) fn later_row(
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

/// A message row as first read: its rowid (the line of a reject), id and update stamp (what
/// `--follow` compares).
pub(crate) struct MessageRow {
    pub rowid: u64,
    pub id: String,
    pub stamp: Option<i64>,
}

impl MessageRow {
    /// Reads a row whose first column is the rowid, with its id and update stamp at `id` and
    /// `stamp` (a table without the stamp's column has none).
    fn read(cx: &SessionRead, row: &Row, id: usize, stamp: Option<usize>) -> Result<MessageRow> {
        Ok(MessageRow {
            rowid: rowid_of(cx.db(row.get_ref(0))?),
            id: text(cx.db(row.get_ref(id))?).unwrap_or_default(),
            stamp: match stamp {
                Some(i) => int(cx.db(row.get_ref(i))?),
                None => None,
            },
        })
    }
}

/// The order a session's messages are read in: their table and the columns of its `ORDER BY`,
/// for the look-ahead of `--follow` ([`later_row`]).
pub(crate) struct ReadOrder<'t> {
    pub table: &'t Table,
    pub cols: Vec<String>,
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

    /// Whether a listed session is this database's to read: not read from another source,
    /// not a Go title session, an id usable as a stream's. It is claimed before it is read:
    /// should reading fail half-way, no later source writes the session a second time.
    fn claim_db_session(&mut self, name: &str, s: &Listed) -> Result<bool> {
        if self.passed_before(name, &s.id) {
            return Ok(false);
        }
        if self.claimed.contains(&s.id) {
            self.stats.duplicates += 1;
            self.pass(name, &s.id);
            return Ok(false);
        }
        // Go-lineage title generation runs in a session of its own, `title-<parent>`.
        if s.layout.lineage() == Lineage::Go && s.id.starts_with("title-") {
            self.stats.title_sessions += 1;
            self.pass(name, &s.id);
            return Ok(false);
        }
        if let Err(why) = check_session_id(&s.id) {
            let reason = format!(
                "table `{}`, row `{}`: unusable session id: {why}",
                s.table(),
                s.id
            );
            self.pass(name, &s.id);
            self.reject(name, 0, &reason, s.id.as_bytes())?;
            return Ok(false);
        }
        self.claimed.insert(s.id.clone());
        Ok(true)
    }

    /// Reads one listed session of a database in one read transaction. In follow mode a session
    /// this database holds is read again (what went out before is passed over,
    /// [`crate::follow::gate`]).
    pub(crate) fn read_db_session(
        &mut self,
        conn: &Connection,
        schema: &Schema,
        name: &str,
        s: &Listed,
    ) -> Result<()> {
        let again = self.is_followed(name, &s.id);
        if !again && !self.claim_db_session(name, s)? {
            return Ok(());
        }
        let ms = self.busy.as_millis();
        let what = format!("cannot read session {} (table `{}`)", s.id, s.table());
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
        let cx = SessionRead {
            conn: &tx,
            name,
            session: s,
            what,
            busy_ms: ms,
        };
        match (s.layout.lineage(), &schema.go, &schema.t2, &schema.t3) {
            (Lineage::Go, Some(go), _, _) => self.read_go_session(&cx, go)?,
            (Lineage::TypeScript, _, Some(t2), _) => self.read_t2_session(&cx, t2)?,
            (Lineage::OpenCode2, _, _, Some(t3)) => self.read_t3_session(&cx, t3)?,
            // Listed from its layout's tables, so they are there.
            _ => {}
        }
        let what = cx.what;
        tx.commit().db(&what, ms)?;
        self.end_session(&s.id)?;
        self.io.out.flush()?;
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
        let checks: Vec<(&Table, &str)> = match s.layout.lineage() {
            Lineage::Go => schema
                .go
                .iter()
                .map(|go| (&go.messages, "updated_at"))
                .collect(),
            Lineage::TypeScript => schema
                .t2
                .iter()
                .flat_map(|t2| [(&t2.message, "time_updated"), (&t2.part, "time_updated")])
                .collect(),
            Lineage::OpenCode2 => schema
                .t3
                .iter()
                .map(|t3| (&t3.message, "time_updated"))
                .collect(),
        };
        for (table, col) in checks {
            if !table.has(col) || !table.has("session_id") {
                continue;
            }
            let sql = format!(
                "SELECT max({}) FROM {} WHERE \"session_id\" = ?1",
                schema::quote(col),
                table.sql(),
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

    /// Builds the `"kind":"session"` record of the session's row of `table` and writes it (in
    /// follow mode: with the session's first message, [`crate::follow::gate`]); false if the
    /// row is gone.
    fn write_session_row(&mut self, cx: &SessionRead, table: &Table) -> Result<bool> {
        let sql = format!("SELECT {} FROM {} WHERE id = ?1", table.all(), table.sql());
        let mut stmt = cx.db(cx.conn.prepare(&sql))?;
        let mut rows = cx.db(stmt.query([cx.id()]))?;
        let Some(row) = cx.db(rows.next())? else {
            return Ok(false);
        };
        let mut buf = std::mem::take(&mut self.buf);
        record::begin(&mut buf, Kind::Session, cx.id(), cx.session.layout);
        buf.push_str("\"session\":");
        cx.db(push_row_object(&mut buf, &table.cols, row, 0, None))?;
        record::finish(
            &mut buf,
            Prov::Row {
                file: cx.name,
                table: table.name,
                row: cx.id(),
            },
        );
        self.emit_session(cx.id(), buf)?;
        Ok(true)
    }

    /// Rejects a message row whose `column` is not usable; it is done with (never built again
    /// in follow mode).
    fn reject_row(
        &mut self,
        cx: &SessionRead,
        table: &str,
        row: &MessageRow,
        column: &str,
        why: &BadJson,
        raw: &[u8],
    ) -> Result<()> {
        let reason = row_reason(table, &row.id, column, why);
        self.reject(cx.name, row.rowid, &reason, raw)?;
        self.follow_done(cx.id(), &row.id, row.stamp);
        Ok(())
    }

    /// Calls `each` for the rows of a session's messages, one by one, until they end (true) or
    /// a signal stops the read (false).
    fn each_row(
        &mut self,
        cx: &SessionRead,
        rows: &mut Rows,
        mut each: impl FnMut(&mut Self, &Row) -> Result<()>,
    ) -> Result<bool> {
        let mut n_read = 0u64;
        while let Some(row) = cx.db(rows.next())? {
            n_read += 1;
            if self.stop_due(n_read) {
                return Ok(false);
            }
            each(self, row)?;
        }
        Ok(true)
    }

    /// Writes a message record built from a row, with `parts` parts.
    fn write_row(
        &mut self,
        cx: &SessionRead,
        row: &MessageRow,
        buf: &str,
        parts: u64,
    ) -> Result<()> {
        self.write_message(cx.id(), &row.id, row.stamp, buf)?;
        self.stats.messages += 1;
        self.stats.parts += parts;
        Ok(())
    }

    /// Follow mode: whether a message built from a row goes out now ([`Reader::follow_admit`]);
    /// `key` is the row's values of the read order, and `filter` the SQL that admits the later
    /// rows a need waits for.
    fn admit_row(
        &mut self,
        cx: &SessionRead,
        order: &ReadOrder,
        key: &[Value],
        need: Need,
        filter: impl Fn(Need) -> Option<&'static str>,
    ) -> Result<bool> {
        let later = |need: Need| {
            later_row(
                cx.conn,
                order.table,
                cx.id(),
                &order.cols,
                key,
                filter(need),
            )
        };
        self.follow_admit(cx.id(), need, later)
    }
}

/// The sessions of a database, ids and times only, by (creation time, id). With `session_v2`,
/// its sessions and then the legacy `session` rows it does not hold (FORMAT.md, "OpenCode 2").
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
