//! T3: the `session_v2` row, then its `session_message` rows by `seq`; a message holds its
//! content in `data`.

use anyhow::Result;
use rusqlite::types::Value;
use rusqlite::Row;

use super::{bytes_of, owned, push_value, text, MessageRow, ReadOrder, SessionRead};
use crate::follow::gate;
use crate::json;
use crate::record::{self, Kind, Layout, Prov};
use crate::schema::T3;
use crate::Reader;

/// The columns of a message object, before its `data`, in the query's order (after the rowid).
const MESSAGE_COLUMNS: [&str; 6] = [
    "id",
    "session_id",
    "type",
    "seq",
    "time_created",
    "time_updated",
];

impl Reader<'_> {
    pub(super) fn read_t3_session(&mut self, cx: &SessionRead, t3: &T3) -> Result<()> {
        if !self.write_session_row(cx, &t3.session)? {
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
        let mut stmt = cx.db(cx.conn.prepare(&sql))?;
        let mut rows = cx.db(stmt.query([cx.id()]))?;
        let order = ReadOrder {
            table: m,
            cols: vec!["\"seq\"".to_string(), "\"id\"".to_string()],
        };
        let mut buf = std::mem::take(&mut self.buf);
        self.each_row(cx, &mut rows, |r, row| {
            r.t3_message(cx, &order, row, &mut buf)
        })?;
        self.buf = buf;
        Ok(())
    }

    /// One `session_message` row: its columns and its `data`, parsed.
    fn t3_message(
        &mut self,
        cx: &SessionRead,
        order: &ReadOrder,
        row: &Row,
        buf: &mut String,
    ) -> Result<()> {
        let msg = MessageRow::read(cx, row, 1, Some(6))?;
        if self.follow_skip(cx.id(), &msg.id, msg.stamp) {
            return Ok(());
        }
        let bytes = bytes_of(cx.db(row.get_ref(7))?);
        let data = match json::utf8(bytes).and_then(json::any_value) {
            Ok(d) => d,
            Err(why) => return self.reject_row(cx, "session_message", &msg, "data", &why, bytes),
        };
        record::begin(buf, Kind::Message, cx.id(), Layout::T3);
        buf.push_str("\"message\":{");
        for (i, key) in MESSAGE_COLUMNS.iter().enumerate() {
            buf.push_str(&format!("\"{key}\":"));
            push_value(buf, cx.db(row.get_ref(1 + i))?);
            buf.push(',');
        }
        buf.push_str("\"data\":");
        buf.push_str(&data);
        buf.push_str("},\"parts\":[]");
        record::finish(
            buf,
            Prov::Row {
                file: cx.name,
                table: "session_message",
                row: &msg.id,
            },
        );
        if self.gate.is_some() {
            let ty = text(cx.db(row.get_ref(3))?);
            let need = gate::t3_need(ty.as_deref(), &data);
            let key = [owned(cx.db(row.get_ref(4))?), Value::Text(msg.id.clone())];
            if !self.admit_row(cx, order, &key, need, |_| Some("\"type\" = 'assistant'"))? {
                return Ok(());
            }
        }
        self.write_row(cx, &msg, buf, 0)
    }
}
