//! T2: the `session` row, then its messages by `(time_created, id)`, each with its parts by id,
//! and the messages only the JSON store has merged in order. Message and part objects are
//! rebuilt from their rows as OpenCode does (`{...data, id, sessionID[, messageID]}`).

use std::collections::HashSet;

use anyhow::Result;
use rusqlite::types::Value;
use rusqlite::{Row, Statement};

use super::{bytes_of, int, owned, row_reason, rowid_of, text, MessageRow, ReadOrder, SessionRead};
use crate::follow::gate::{self, Need, TsParts};
use crate::json;
use crate::record::{self, Kind, Layout, Prov};
use crate::schema::{Table, T2};
use crate::store::JsonMsg;
use crate::Reader;

/// Among the rows after a message, the assistant ones: the role is inside `data`, and a row
/// whose `data` is not JSON is no assistant message.
const ASSISTANT: &str =
    "CASE WHEN json_valid(\"data\") THEN json_extract(\"data\", '$.role') END = 'assistant'";

impl Reader<'_> {
    pub(super) fn read_t2_session(&mut self, cx: &SessionRead, t2: &T2) -> Result<()> {
        if !self.write_session_row(cx, &t2.session)? {
            return Ok(());
        }
        let m = &t2.message;
        let mut extras = self.json_only_messages(cx, m)?.into_iter().peekable();
        let mut order = ReadOrder {
            table: m,
            cols: Vec::new(),
        };
        if m.has("time_created") {
            order.cols.push("\"time_created\"".to_string());
        }
        order.cols.push("\"id\"".to_string());
        let sql = format!(
            "SELECT {}, \"id\", {}, \"data\", {} FROM {} WHERE \"session_id\" = ?1 ORDER BY {}",
            m.rowid(),
            m.col("time_created"),
            m.col("time_updated"),
            m.sql(),
            order.cols.join(", ")
        );
        let mut stmt = cx.db(cx.conn.prepare(&sql))?;
        let p = &t2.part;
        let part_sql = format!(
            "SELECT {}, \"id\", {}, \"data\" FROM {} WHERE \"message_id\" = ?1 ORDER BY \"id\"",
            p.rowid(),
            p.col("session_id"),
            p.sql()
        );
        let mut part_stmt = cx.db(cx.conn.prepare(&part_sql))?;
        let mut rows = cx.db(stmt.query([cx.id()]))?;
        let whole = self.each_row(cx, &mut rows, |r, row| {
            let msg = MessageRow::read(cx, row, 1, Some(4))?;
            let created = int(cx.db(row.get_ref(2))?);
            while let Some(x) = extras.next_if(|x| (x.created, x.id.as_str()) < (created, &msg.id))
            {
                // Only in the JSON store, which OpenCode no longer writes: final.
                r.emit_json_message(cx.id(), &x, (true, true))?;
            }
            r.t2_message(cx, &order, &mut part_stmt, row, &msg)
        })?;
        if !whole {
            return Ok(());
        }
        for x in extras {
            self.emit_json_message(cx.id(), &x, (true, true))?;
        }
        Ok(())
    }

    /// The messages of the session that a JSON store holds and the database does not (a
    /// partial import: the union of both, the database's rows winning), ordered.
    fn json_only_messages(&mut self, cx: &SessionRead, m: &Table) -> Result<Vec<JsonMsg>> {
        let candidates = self.json_message_files(cx.id());
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT \"id\" FROM {} WHERE \"session_id\" = ?1", m.sql());
        let mut stmt = cx.db(cx.conn.prepare(&sql))?;
        let in_db: HashSet<String> = cx.db(cx
            .db(stmt.query_map([cx.id()], |r| Ok(text(r.get_ref(0)?).unwrap_or_default())))?
            .collect::<rusqlite::Result<_>>())?;
        let only_json = candidates
            .into_iter()
            .filter(|c| !in_db.contains(&c.1))
            .collect();
        self.order_json_messages(only_json)
    }

    /// One `message` row with its `part` rows.
    fn t2_message(
        &mut self,
        cx: &SessionRead,
        order: &ReadOrder,
        part_stmt: &mut Statement,
        row: &Row,
        msg: &MessageRow,
    ) -> Result<()> {
        if self.follow_skip(cx.id(), &msg.id, msg.stamp) {
            return Ok(());
        }
        let data = bytes_of(cx.db(row.get_ref(3))?);
        let id_json = json::string(&msg.id);
        let session_json = json::string(cx.id());
        let message = json::utf8(data).and_then(|d| {
            json::spread_object(d, &[("id", &id_json), ("sessionID", &session_json)])
        });
        let message = match message {
            Ok(m) => m,
            Err(why) => return self.reject_row(cx, "message", msg, "data", &why, data),
        };
        let mut buf = std::mem::take(&mut self.buf);
        record::begin(&mut buf, Kind::Message, cx.id(), Layout::T2);
        buf.push_str("\"message\":");
        buf.push_str(&message);
        buf.push_str(",\"parts\":[");
        let parts = self.t2_parts(cx, part_stmt, &id_json, &session_json, &msg.id, &mut buf)?;
        buf.push(']');
        record::finish(
            &mut buf,
            Prov::Row {
                file: cx.name,
                table: "message",
                row: &msg.id,
            },
        );
        if self.t2_admit(cx, order, row, msg, &message, &parts)? {
            self.write_row(cx, msg, &buf, parts.n)?;
        }
        self.buf = buf;
        Ok(())
    }

    /// Follow mode: whether a T2 message goes out now.
    fn t2_admit(
        &mut self,
        cx: &SessionRead,
        order: &ReadOrder,
        row: &Row,
        msg: &MessageRow,
        message: &str,
        parts: &TsParts,
    ) -> Result<bool> {
        if self.gate.is_none() {
            return Ok(true);
        }
        let need = gate::ts_need(message, parts.open_tool);
        let mut key = Vec::new();
        if order.table.has("time_created") {
            key.push(owned(cx.db(row.get_ref(2))?));
        }
        key.push(Value::Text(msg.id.clone()));
        self.admit_row(cx, order, &key, need, |need| {
            (need == Need::LaterAssistant).then_some(ASSISTANT)
        })
    }

    /// Appends the message's parts, by id, each `{...data, id, sessionID, messageID}`; a part
    /// whose `data` does not parse is rejected and left out.
    fn t2_parts(
        &mut self,
        cx: &SessionRead,
        part_stmt: &mut Statement,
        id_json: &str,
        session_json: &str,
        message_id: &str,
        buf: &mut String,
    ) -> Result<TsParts> {
        let mut parts = TsParts::new(self.gate.is_some());
        let mut rows = cx.db(part_stmt.query([message_id]))?;
        while let Some(part) = cx.db(rows.next())? {
            let rowid = rowid_of(cx.db(part.get_ref(0))?);
            let id = text(cx.db(part.get_ref(1))?).unwrap_or_default();
            let session = text(cx.db(part.get_ref(2))?)
                .map(|s| json::string(&s))
                .unwrap_or_else(|| session_json.to_string());
            let data = bytes_of(cx.db(part.get_ref(3))?);
            let add = [
                ("id", json::string(&id)),
                ("sessionID", session),
                ("messageID", id_json.to_string()),
            ];
            let add: Vec<(&str, &str)> = add.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match json::utf8(data).and_then(|d| json::spread_object(d, &add)) {
                Ok(obj) => parts.push(buf, &obj),
                Err(why) => {
                    let reason = row_reason("part", &id, "data", &why);
                    self.reject(cx.name, rowid, &reason, data)?;
                }
            }
        }
        Ok(parts)
    }
}
