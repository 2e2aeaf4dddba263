//! Reading Cursor's global databases into source records ([`Reader`]).
//!
//! One database is read in one read transaction (one WAL snapshot: a chat and its messages
//! as of the same instant). Its chats are the `composerData:<composerId>` rows of
//! `cursorDiskKV`; for each, in order: its workspace (`kind":"workspace"`, the raw
//! `workspace.json`, once), its head (`"kind":"composer"`: the `composerData` value without an
//! inline `conversation`, its other members byte for byte), then its messages ("bubbles") in
//! the chat's order: the `bubbleId:<composerId>:<bubbleId>` rows named by
//! `fullConversationHeadersOnly`, or the elements of the inline `conversation` of older builds,
//! each unmodified. What was written is remembered by bubble id and a hash of its bytes, so a
//! follower writes a message again only when its bytes changed (`at` unchanged).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tonbo_core::contract::{stable_hash, Provenance};
use tonbo_core::event::json_str;
use tonbo_core::reader::{left_out_by_modified_after, ReaderIo};
use tonbo_core::SourceRecord;

use crate::store::{self, value_text, Workspace};
use crate::{SOURCE, STAGE};

/// What a run read, for its summary line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub databases: u64,
    pub chats: u64,
    pub messages: u64,
    pub records: u64,
    /// Messages a chat names whose row is not (yet) there.
    pub missing: u64,
    pub failed: u64,
    pub skipped_old: u64,
}

impl Stats {
    pub fn summary(&self, rejected: u64, modified_after: bool) -> String {
        let mut s = format!(
            "{STAGE}: {} databases, {} chats, {} messages, {} records, {} missing, {} rejected, {} failed",
            self.databases,
            self.chats,
            self.messages,
            self.records,
            self.missing,
            rejected,
            self.failed,
        );
        if modified_after {
            s.push_str(&left_out_by_modified_after(
                self.skipped_old,
                "chats not updated",
            ));
        }
        s
    }
}

/// What one database gave.
#[derive(Debug, Default, Clone, Copy)]
pub struct DbYield {
    pub chats: u64,
    pub records: u64,
}

/// What was written of one chat, so that a follower writes only what is new or changed.
#[derive(Debug, Default)]
pub struct ChatSent {
    /// `lastUpdatedAt` (else `createdAt`) when last read: a chat whose stamp did not move and
    /// holds nothing back is not read again.
    updated: Option<f64>,
    /// Something was held back or missing: read again at the next look whatever its stamp.
    pending: bool,
    workspace: bool,
    /// Left out by `--modified-after` (and counted so) at least once.
    left_out: bool,
    head: Option<u64>,
    /// Bubble id -> hash of the bytes written (or rejected).
    bubbles: HashMap<String, u64>,
}

/// The members of a `composerData` value the reader looks at, each taken as any JSON so that a
/// member of another type in some build leaves it unread, not the chat rejected.
#[derive(Deserialize)]
struct Composer<'a> {
    #[serde(rename = "fullConversationHeadersOnly", default)]
    headers: Option<Value>,
    #[serde(borrow, default)]
    conversation: Option<&'a RawValue>,
    #[serde(rename = "lastUpdatedAt", default)]
    last_updated: Option<Value>,
    #[serde(rename = "createdAt", default)]
    created: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(rename = "generatingBubbleIds", default)]
    generating: Option<Value>,
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, rename = "modelConfig", default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, rename = "createdOnBranch", default)]
    branch: Option<&'a RawValue>,
}

impl<'a> Composer<'a> {
    /// The ids `fullConversationHeadersOnly` names, in order.
    fn header_ids(&self) -> Vec<String> {
        let headers = self.headers.as_ref().and_then(Value::as_array);
        headers
            .into_iter()
            .flatten()
            .filter_map(|h| h.get("bubbleId")?.as_str().map(str::to_string))
            .collect()
    }

    /// The inline `conversation`'s messages, each raw.
    fn inline(&self) -> Vec<&'a RawValue> {
        self.conversation
            .and_then(|c| serde_json::from_str::<Vec<&'a RawValue>>(c.get()).ok())
            .unwrap_or_default()
    }

    /// `lastUpdatedAt`, else `createdAt`, in milliseconds (a number, or a number as text).
    fn stamp(&self) -> Option<f64> {
        ms_of(self.last_updated.as_ref()).or_else(|| ms_of(self.created.as_ref()))
    }

    fn generating(&self, bubble: &str, last: bool) -> bool {
        let listed = self.generating.as_ref().and_then(Value::as_array);
        listed.is_some_and(|ids| ids.iter().any(|i| i.as_str() == Some(bubble)))
            || (last && self.status.as_ref().and_then(Value::as_str) == Some("generating"))
    }
}

#[derive(Deserialize)]
struct BubbleId<'a> {
    #[serde(rename = "bubbleId", borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "type", default)]
    kind: Option<i64>,
}

/// A message's `type`, when its text says (`2`: the assistant's).
fn kind_of(text: &str) -> Option<i64> {
    serde_json::from_str::<BubbleId>(text).ok()?.kind
}

/// One message of a chat, as read: its id, its JSON text, and where it lies.
struct Bubble<'t> {
    id: String,
    text: Cow<'t, str>,
    row: String,
    rowid: i64,
}

/// Reads databases into records, keeping what followed chats need.
pub struct Reader<'a> {
    pub io: ReaderIo<'a>,
    pub stats: Stats,
    pub stopped: bool,
    modified_after: Option<SystemTime>,
    /// Per database, per chat: what was written.
    sent: HashMap<PathBuf, HashMap<String, ChatSent>>,
    /// `--follow` (not its last look): a message still being generated is held back, and a
    /// chat whose stamp did not move is not read again.
    pub hold_generating: bool,
    /// `--follow`'s periodic rescan: every chat is read again whatever its stamp.
    pub recheck_all: bool,
    seen_dbs: HashSet<PathBuf>,
    /// Per database: which workspace each chat belongs to, as last read.
    workspaces: HashMap<PathBuf, HashMap<String, Workspace>>,
}

impl<'a> Reader<'a> {
    pub fn new(io: ReaderIo<'a>, modified_after: Option<SystemTime>) -> Reader<'a> {
        Reader {
            io,
            stats: Stats::default(),
            stopped: false,
            modified_after,
            sent: HashMap::new(),
            hold_generating: false,
            recheck_all: false,
            seen_dbs: HashSet::new(),
            workspaces: HashMap::new(),
        }
    }

    fn show_progress(&self) {
        if let Some(p) = &self.io.progress {
            use tonbo_core::progress::{R_RECORDS, R_SCANNED};
            p.set(R_SCANNED, self.stats.chats);
            p.set(R_RECORDS, self.stats.records);
        }
    }

    /// Reads the chats of the global database `db` that are new or changed since it was last
    /// read. A database that cannot be opened or read is reported and counted as failed.
    pub fn read_db(&mut self, db: &Path) -> Result<DbYield> {
        if self.seen_dbs.insert(db.to_path_buf()) {
            self.stats.databases += 1;
        }
        match self.try_read_db(db) {
            Ok(y) => Ok(y),
            Err(e) if e.is::<rusqlite::Error>() || e.is::<NotCursor>() => {
                tonbo_core::note!("{STAGE}: {}: cannot read: {e:#}", db.display());
                self.stats.failed += 1;
                Ok(DbYield::default())
            }
            Err(e) => Err(e),
        }
    }

    fn try_read_db(&mut self, db: &Path) -> Result<DbYield> {
        let conn = store::open(db)?;
        check_cursor(&conn)?;
        // Workspaces are read again on a rescan, or when a chat not met before belongs to none
        // known (a new workspace), not at every wake.
        let (mut workspaces, mut fresh) = match self.workspaces.remove(db) {
            Some(ws) if !self.recheck_all => (ws, false),
            _ => (store::workspaces(db, STAGE), true),
        };
        let tx = conn.unchecked_transaction()?;
        let mut stmt = tx.prepare(
            "SELECT rowid, key, value FROM cursorDiskKV \
             WHERE key >= 'composerData:' AND key < 'composerData;' ORDER BY key",
        )?;
        let mut rows = stmt.query([])?;
        let mut y = DbYield::default();
        while let Some(row) = rows.next()? {
            if self.io.stop_set() {
                self.stopped = true;
                break;
            }
            let rowid: i64 = row.get(0)?;
            let key: String = row.get(1)?;
            let value = row.get_ref(2)?;
            if value == rusqlite::types::ValueRef::Null {
                continue;
            }
            let Some(text) = value_text(value) else {
                self.reject_row(db, rowid, &key, "its value is not UTF-8 text", b"")?;
                continue;
            };
            let id = key["composerData:".len()..].to_string();
            let unknown = !workspaces.contains_key(&id) && !self.met(db, &id);
            if unknown && !fresh {
                workspaces = store::workspaces(db, STAGE);
                fresh = true;
            }
            let before = self.stats.records;
            if self.read_chat(&tx, db, &id, rowid, text, &workspaces)? {
                y.chats += 1;
            }
            y.records += self.stats.records - before;
            self.show_progress();
        }
        self.workspaces.insert(db.to_path_buf(), workspaces);
        Ok(y)
    }

    /// Whether the chat `id` of `db` was read before.
    fn met(&self, db: &Path, id: &str) -> bool {
        self.sent
            .get(db)
            .is_some_and(|chats| chats.contains_key(id))
    }

    fn reject_row(
        &mut self,
        db: &Path,
        rowid: i64,
        key: &str,
        why: &str,
        raw: &[u8],
    ) -> Result<()> {
        let input = format!("{} cursorDiskKV", db.display());
        let reason = format!("`{key}`: {why}");
        self.io.rejects.reject(&input, rowid as u64, &reason, raw)
    }

    /// Reads one chat; false when it was left out (too old, unchanged, rejected).
    fn read_chat(
        &mut self,
        conn: &Connection,
        db: &Path,
        id: &str,
        rowid: i64,
        text: &str,
        workspaces: &HashMap<String, Workspace>,
    ) -> Result<bool> {
        let key = format!("composerData:{id}");
        let chat: Composer = match serde_json::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                let hash = stable_hash(text.as_bytes());
                let sent = self.chat_state(db, id);
                if sent.head == Some(hash) {
                    return Ok(false);
                }
                sent.head = Some(hash);
                self.reject_row(
                    db,
                    rowid,
                    &key,
                    &format!("not a Cursor chat: {e}"),
                    text.as_bytes(),
                )?;
                return Ok(false);
            }
        };
        let stamp = chat.stamp();
        if let (Some(after), Some(ms)) = (self.modified_after, stamp) {
            if time_of_ms(ms) <= after {
                // Counted once, however many times a follower looks at it.
                let sent = self.chat_state(db, id);
                if !std::mem::replace(&mut sent.left_out, true) {
                    self.stats.skipped_old += 1;
                }
                return Ok(false);
            }
        }
        let skip_unchanged = self.hold_generating && !self.recheck_all;
        let sent = self.chat_state(db, id);
        let unchanged = sent.updated.is_some() && sent.updated == stamp && !sent.pending;
        if unchanged && skip_unchanged {
            return Ok(false);
        }
        let first = sent.updated.is_none() && sent.head.is_none();
        // Seen before and changed since: its newest message may still be growing.
        let moved = sent.updated.is_some() && sent.updated != stamp;
        sent.updated = stamp;
        sent.pending = false;
        if first {
            self.stats.chats += 1;
        }
        if let Some(ws) = workspaces.get(id) {
            self.write_workspace(db, id, ws)?;
        }
        self.write_head(db, id, text, &chat)?;
        self.write_bubbles(conn, db, id, &chat, moved)?;
        Ok(true)
    }

    fn chat_state(&mut self, db: &Path, id: &str) -> &mut ChatSent {
        self.sent
            .entry(db.to_path_buf())
            .or_default()
            .entry(id.to_string())
            .or_default()
    }

    fn write_workspace(&mut self, db: &Path, id: &str, ws: &Workspace) -> Result<()> {
        if self.chat_state(db, id).workspace {
            return Ok(());
        }
        self.chat_state(db, id).workspace = true;
        let Ok(raw) = serde_json::from_str::<&RawValue>(&ws.json) else {
            tonbo_core::note!(
                "{STAGE}: note: workspaceStorage/{}/workspace.json is not JSON; chat {id} is read without a folder",
                ws.hash
            );
            return Ok(());
        };
        let file = db.parent().and_then(Path::parent).map(|u| {
            u.join("workspaceStorage")
                .join(&ws.hash)
                .join("workspace.json")
        });
        let prov = Provenance {
            file: file.map(|f| f.display().to_string()),
            ..Provenance::default()
        };
        self.write(
            id,
            raw,
            &format!("workspace/{}", ws.hash),
            Some("workspace"),
            prov,
        )
    }

    /// The head, when what it says of the chat (title, model, branch) changed since written.
    fn write_head(&mut self, db: &Path, id: &str, text: &str, chat: &Composer) -> Result<()> {
        let said = [chat.name, chat.model, chat.branch]
            .map(|v| v.map(RawValue::get).unwrap_or("null"))
            .join("\u{1}");
        let hash = stable_hash(said.as_bytes());
        if self.chat_state(db, id).head == Some(hash) {
            return Ok(());
        }
        self.chat_state(db, id).head = Some(hash);
        let head = head_of(text)?;
        let raw = RawValue::from_string(head)?;
        self.write(
            id,
            &raw,
            "composer",
            Some("composer"),
            row_prov(db, &format!("composerData:{id}")),
        )
    }

    /// The chat's messages in its order, one at a time (a message can be megabytes: a chat is
    /// never held whole). In `--follow`, a message still being generated is held back.
    fn write_bubbles(
        &mut self,
        conn: &Connection,
        db: &Path,
        id: &str,
        chat: &Composer,
        moved: bool,
    ) -> Result<()> {
        let inline = chat.inline();
        let headers = chat.header_ids();
        let total = inline.len() + headers.len();
        let mut stmt =
            conn.prepare_cached("SELECT rowid, value FROM cursorDiskKV WHERE key = ?1")?;
        for n in 0..total {
            if self.io.stop_set() {
                self.stopped = true;
                return Ok(());
            }
            let bubble = match inline.get(n) {
                Some(raw) => Some(inline_bubble(id, n, raw)),
                None => row_bubble(&mut stmt, id, &headers[n - inline.len()])?,
            };
            let Some(b) = bubble else {
                self.stats.missing += 1;
                self.chat_state(db, id).pending = true;
                continue;
            };
            let is_last = n + 1 == total;
            let generating = chat.generating(&b.id, is_last)
                || (is_last && moved && kind_of(&b.text) == Some(2));
            if self.hold_generating && generating {
                self.chat_state(db, id).pending = true;
                continue;
            }
            self.write_bubble(db, id, b)?;
        }
        Ok(())
    }

    fn write_bubble(&mut self, db: &Path, id: &str, b: Bubble) -> Result<()> {
        let hash = stable_hash(b.text.as_bytes());
        let sent = self.chat_state(db, id);
        if sent.bubbles.get(&b.id) == Some(&hash) {
            return Ok(());
        }
        sent.bubbles.insert(b.id.clone(), hash);
        let raw = match serde_json::from_str::<&RawValue>(&b.text) {
            Ok(raw) if raw.get().starts_with('{') => raw,
            Ok(_) => {
                return self.reject_row(
                    db,
                    b.rowid,
                    &b.row,
                    "a message that is not a JSON object",
                    b.text.as_bytes(),
                );
            }
            Err(e) => {
                let why = format!("message {} is not JSON: {e}", b.id);
                return self.reject_row(db, b.rowid, &b.row, &why, b.text.as_bytes());
            }
        };
        self.stats.messages += 1;
        self.write(id, raw, &b.id, None, row_prov(db, &b.row))
    }

    fn write(
        &mut self,
        session: &str,
        record: &RawValue,
        at: &str,
        kind: Option<&str>,
        provenance: Provenance,
    ) -> Result<()> {
        let rec = SourceRecord {
            v: 1,
            source: Cow::Borrowed(SOURCE),
            session: Cow::Borrowed(session),
            record,
            at: Some(Cow::Borrowed(at)),
            provenance: Some(provenance),
            kind: kind.map(Cow::Borrowed),
        };
        self.io.out.json(&rec)?;
        self.stats.records += 1;
        Ok(())
    }
}

/// The `n`th message of an inline `conversation`, named by its `bubbleId` (else its index).
fn inline_bubble<'t>(id: &str, n: usize, raw: &'t RawValue) -> Bubble<'t> {
    let bid = serde_json::from_str::<BubbleId>(raw.get())
        .ok()
        .and_then(|b| b.id.map(Cow::into_owned))
        .unwrap_or_else(|| format!("conversation[{n}]"));
    Bubble {
        id: bid,
        text: Cow::Borrowed(raw.get()),
        row: format!("composerData:{id}"),
        rowid: n as i64,
    }
}

/// The message a header names, from its `bubbleId:` row; `None` when the row is not there or
/// holds nothing (SQL NULL, JSON `null`: a message Cursor has not written, or cleared).
fn row_bubble(
    stmt: &mut rusqlite::CachedStatement,
    id: &str,
    bubble: &str,
) -> rusqlite::Result<Option<Bubble<'static>>> {
    let key = format!("bubbleId:{id}:{bubble}");
    let row = stmt
        .query_row([&key], |r| {
            let text = match r.get_ref(1)? {
                rusqlite::types::ValueRef::Null => None,
                v => Some(value_text(v).unwrap_or_default().to_string()),
            };
            Ok((r.get::<_, i64>(0)?, text))
        })
        .optional()?;
    Ok(match row {
        Some((rowid, Some(text))) if text.trim() != "null" => Some(Bubble {
            id: bubble.to_string(),
            text: Cow::Owned(text),
            row: key,
            rowid,
        }),
        _ => None,
    })
}

fn row_prov(db: &Path, key: &str) -> Provenance {
    Provenance {
        file: Some(db.display().to_string()),
        table: Some("cursorDiskKV".into()),
        row: Some(key.to_string()),
        ..Provenance::default()
    }
}

/// A database that has no `cursorDiskKV` table.
#[derive(Debug)]
struct NotCursor;

impl std::fmt::Display for NotCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(
            "no cursorDiskKV table: not a Cursor global database (globalStorage/state.vscdb)",
        )
    }
}

impl std::error::Error for NotCursor {}

fn check_cursor(conn: &Connection) -> Result<()> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'cursorDiskKV'",
        [],
        |r| r.get(0),
    )?;
    if n == 0 {
        return Err(NotCursor.into());
    }
    Ok(())
}

/// A `composerData` value without its `conversation` member: the other members in their order,
/// each value byte for byte.
pub fn head_of(text: &str) -> Result<String> {
    let members: Members = serde_json::from_str(text)?;
    let mut out = String::with_capacity(text.len().min(4096));
    out.push('{');
    for (k, v) in members.0.iter().filter(|(k, _)| k != "conversation") {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&json_str(k));
        out.push(':');
        out.push_str(v.get());
    }
    out.push('}');
    Ok(out)
}

/// A JSON object's members in their order, values raw.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Members<'a>, M::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, &'a RawValue>()? {
                    v.push((k, val));
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A chat's stamp in milliseconds: a number, or a number as text.
pub fn ms_of(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(t) => t.parse().ok(),
        _ => None,
    }
}

/// Milliseconds since the epoch as a time, clamped to the years 1970 to 5138 (a stamp out of
/// that range is no time Cursor wrote, and must not overflow the clock's arithmetic).
pub fn time_of_ms(ms: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.clamp(0.0, MAX_MS) as u64)
}

/// 100,000,000,000,000 ms: the year 5138.
pub const MAX_MS: f64 = 1e14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_with_members_of_other_types_is_read_not_rejected() {
        let text = r#"{"fullConversationHeadersOnly":"x","conversation":{},"lastUpdatedAt":"1767000000000","status":3,"generatingBubbleIds":null}"#;
        let chat: Composer = serde_json::from_str(text).unwrap();
        assert!(chat.header_ids().is_empty() && chat.inline().is_empty());
        assert_eq!(chat.stamp(), Some(1_767_000_000_000.0));
        assert!(!chat.generating("b", true));
        let text =
            r#"{"fullConversationHeadersOnly":[{"type":1},{"bubbleId":"b1"}],"createdAt":5}"#;
        let chat: Composer = serde_json::from_str(text).unwrap();
        assert_eq!(chat.header_ids(), ["b1"]);
        assert_eq!(chat.stamp(), Some(5.0));
    }

    #[test]
    fn stamps_out_of_range_are_clamped_not_a_panic() {
        assert_eq!(time_of_ms(-5.0), UNIX_EPOCH);
        assert_eq!(
            time_of_ms(1e300),
            UNIX_EPOCH + Duration::from_millis(MAX_MS as u64)
        );
    }

    #[test]
    fn a_head_leaves_the_inline_conversation_out_and_the_rest_as_written() {
        let text =
            r#"{"_v":2,"composerId":"c","conversation":[{"type":1}],"name":"T",  "x":{"a" : 1}}"#;
        assert_eq!(
            head_of(text).unwrap(),
            r#"{"_v":2,"composerId":"c","name":"T","x":{"a" : 1}}"#
        );
    }
}
