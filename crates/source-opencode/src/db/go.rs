//! G1/G2: the `sessions` row, then its `messages` by `(created_at, rowid)`: times are seconds,
//! so rows tie, and ids are random UUIDs.

use anyhow::Result;
use rusqlite::types::ValueRef;
use rusqlite::Row;

use super::{bytes_of, owned, push_row_object, text, MessageRow, ReadOrder, SessionRead};
use crate::follow::gate;
use crate::json::{self, BadJson};
use crate::record::{self, Kind, Prov};
use crate::schema::{Go, Table};
use crate::Reader;

/// Where the columns a message needs are in the query's row (the rowid first, then the table's
/// columns).
struct Columns {
    id: usize,
    parts: usize,
    role: usize,
    created: Option<usize>,
    updated: Option<usize>,
}

impl Columns {
    /// `None` when a required column is missing (the schema's check makes sure it is not).
    fn of(m: &Table) -> Option<Columns> {
        let at = |c: &str| m.cols.iter().position(|have| have == c).map(|i| 1 + i);
        Some(Columns {
            id: at("id")?,
            parts: at("parts")?,
            role: at("role")?,
            created: at("created_at"),
            updated: at("updated_at"),
        })
    }
}

impl Reader<'_> {
    pub(super) fn read_go_session(&mut self, cx: &SessionRead, go: &Go) -> Result<()> {
        if !self.write_session_row(cx, &go.sessions)? {
            return Ok(());
        }
        let m = &go.messages;
        let Some(at) = Columns::of(m) else {
            return Ok(());
        };
        let tie = if m.rowid { "rowid" } else { "\"id\"" };
        let mut order = ReadOrder {
            table: m,
            cols: Vec::new(),
        };
        if at.created.is_some() {
            order.cols.push("\"created_at\"".to_string());
        }
        order.cols.push(tie.to_string());
        let sql = format!(
            "SELECT {}, {} FROM {} WHERE \"session_id\" = ?1 ORDER BY {}",
            m.rowid(),
            m.all(),
            m.sql(),
            order.cols.join(", ")
        );
        let mut stmt = cx.db(cx.conn.prepare(&sql))?;
        let mut rows = cx.db(stmt.query([cx.id()]))?;
        let mut buf = std::mem::take(&mut self.buf);
        self.each_row(cx, &mut rows, |r, row| {
            r.go_message(cx, go, &order, &at, row, &mut buf)
        })?;
        self.buf = buf;
        Ok(())
    }

    /// One `messages` row: the row without `parts`, and `parts` parsed (a JSON array of
    /// `{"type","data"}` envelopes).
    fn go_message(
        &mut self,
        cx: &SessionRead,
        go: &Go,
        order: &ReadOrder,
        at: &Columns,
        row: &Row,
        buf: &mut String,
    ) -> Result<()> {
        let msg = MessageRow::read(cx, row, at.id, at.updated)?;
        if self.follow_skip(cx.id(), &msg.id, msg.stamp) {
            return Ok(());
        }
        let raw = cx.db(row.get_ref(at.parts))?;
        let parts = match raw {
            ValueRef::Null => Err(BadJson {
                line: 1,
                reason: "is NULL".into(),
            }),
            _ => json::utf8(bytes_of(raw)).and_then(json::array),
        };
        let (parts, n) = match parts {
            Ok(p) => p,
            Err(why) => return self.reject_row(cx, "messages", &msg, "parts", &why, bytes_of(raw)),
        };
        record::begin(buf, Kind::Message, cx.id(), go.layout);
        buf.push_str("\"message\":");
        cx.db(push_row_object(
            buf,
            &go.messages.cols,
            row,
            1,
            Some("parts"),
        ))?;
        buf.push_str(",\"parts\":");
        buf.push_str(&parts);
        record::finish(
            buf,
            Prov::Row {
                file: cx.name,
                table: "messages",
                row: &msg.id,
            },
        );
        if self.gate.is_some() {
            let role = text(cx.db(row.get_ref(at.role))?);
            let need = gate::go_need(role.as_deref(), &parts);
            let mut key = Vec::new();
            if let Some(i) = at.created {
                key.push(owned(cx.db(row.get_ref(i))?));
            }
            let tie = if go.messages.rowid { 0 } else { at.id };
            key.push(owned(cx.db(row.get_ref(tie))?));
            if !self.admit_row(cx, order, &key, need, |_| Some("\"role\" = 'assistant'"))? {
                return Ok(());
            }
        }
        self.write_row(cx, &msg, buf, n)
    }
}
