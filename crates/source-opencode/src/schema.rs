//! Opening a database read-only, and telling its layout from its schema, never from its file
//! name or a version (FORMAT.md, "Stores").
//!
//! ```text
//! sessions + messages (plural)                      G1; G2 when messages has `provider` or
//!                                                   `is_summary_message`
//! session + message + part (singular)               T2
//! session_v2 + session_message                      T3, usually beside T2
//! session_message without session_v2                ignored
//! ```
//!
//! Every SELECT is built from `PRAGMA table_info`: a missing optional column reads as NULL and
//! extra columns are ignored (or, for the rows emitted whole, passed on), since the schemas keep
//! growing (FORMAT.md, "Reading a live database").

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::record::Layout;

/// Opens a database for reading only (FORMAT.md, "Reading a live database"): read-only, never
/// `immutable` (it would ignore the `-wal` of a live database), the journal mode left alone, no
/// checkpoint, no lock file taken (Crush's `crush.lock` is its own). A busy database is waited
/// for up to `busy`.
pub fn open(path: &Path, busy: Duration) -> rusqlite::Result<Connection> {
    // With SQLITE_OPEN_URI a name starting with `file:` would be read as a URI.
    let path = if path.is_relative() && path.to_string_lossy().starts_with("file:") {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy)?;
    // A read-only connection cannot checkpoint anyway; this says so explicitly.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    Ok(conn)
}

/// A table's columns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub cols: Vec<String>,
    /// False for a `WITHOUT ROWID` table.
    pub rowid: bool,
}

impl Table {
    pub fn has(&self, col: &str) -> bool {
        self.cols.iter().any(|c| c == col)
    }

    /// The column quoted for SQL, or `NULL` when the table has none of that name.
    pub fn col(&self, col: &str) -> String {
        if self.has(col) {
            quote(col)
        } else {
            "NULL".to_string()
        }
    }

    /// `rowid`, or `NULL` for a `WITHOUT ROWID` table.
    pub fn rowid(&self) -> &'static str {
        if self.rowid {
            "rowid"
        } else {
            "NULL"
        }
    }

    /// Every column, quoted, comma-separated.
    pub fn all(&self) -> String {
        self.cols
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The table name quoted for SQL.
    pub fn sql(&self) -> String {
        quote(self.name)
    }
}

/// An SQL identifier in double quotes.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The Go lineage's tables.
#[derive(Debug, Clone)]
pub struct Go {
    pub layout: Layout,
    pub sessions: Table,
    pub messages: Table,
}

/// OpenCode 1.2+'s tables.
#[derive(Debug, Clone)]
pub struct T2 {
    pub session: Table,
    pub message: Table,
    pub part: Table,
}

/// OpenCode 2's tables.
#[derive(Debug, Clone)]
pub struct T3 {
    pub session: Table,
    pub message: Table,
}

/// What a database holds. A layout whose tables or columns are incomplete is left out and named
/// in `problems`.
#[derive(Debug, Default)]
pub struct Schema {
    pub go: Option<Go>,
    pub t2: Option<T2>,
    pub t3: Option<T3>,
    pub problems: Vec<String>,
}

/// Required columns per table; every other column is optional.
const GO_SESSIONS: &[&str] = &["id"];
const GO_MESSAGES: &[&str] = &["id", "session_id", "role", "parts"];
const T2_SESSION: &[&str] = &["id"];
const T2_MESSAGE: &[&str] = &["id", "session_id", "data"];
const T2_PART: &[&str] = &["id", "message_id", "data"];
const T3_SESSION: &[&str] = &["id"];
const T3_MESSAGE: &[&str] = &["id", "session_id", "type", "seq", "data"];

/// Reads the schema. An error is SQLite's (not a database, locked, corrupt); a schema without a
/// usable layout is an `Ok` with `problems`.
pub fn detect(conn: &Connection) -> rusqlite::Result<Schema> {
    let mut catalog = Catalog::read(conn)?;
    let mut schema = Schema {
        go: catalog.go()?,
        t2: catalog.t2()?,
        t3: catalog.t3()?,
        problems: Vec::new(),
    };
    if schema.go.is_none()
        && schema.t2.is_none()
        && schema.t3.is_none()
        && catalog.problems.is_empty()
    {
        catalog.problems.push(
            "not an OpenCode or Crush database: it has none of the tables `sessions`/`messages` (Go OpenCode, Crush), `session`/`message`/`part` (OpenCode 1.2+) or `session_v2`/`session_message` (OpenCode 2)"
                .to_string(),
        );
    }
    schema.problems = catalog.problems;
    Ok(schema)
}

/// The tables of a database (`sqlite_master`: name and `CREATE` statement), and the problems
/// found in them so far.
struct Catalog<'c> {
    conn: &'c Connection,
    tables: HashMap<String, Option<String>>,
    problems: Vec<String>,
}

impl<'c> Catalog<'c> {
    fn read(conn: &'c Connection) -> rusqlite::Result<Catalog<'c>> {
        let mut stmt = conn.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'")?;
        let tables = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Catalog {
            conn,
            tables,
            problems: Vec::new(),
        })
    }

    fn present(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }

    /// Whether any of a layout's tables is there; if so, and one is missing, that is a problem
    /// (`layout` says what has them all) and false.
    fn complete(&mut self, names: &[&str], layout: &str) -> Option<bool> {
        if !names.iter().any(|n| self.present(n)) {
            return None;
        }
        let missing = names.iter().find(|n| !self.present(n));
        if let Some(missing) = missing {
            self.problems
                .push(format!("table `{missing}` is missing ({layout})"));
        }
        Some(missing.is_none())
    }

    /// A table and its columns, if it is there with the `required` ones (else that is a
    /// problem).
    fn table(&mut self, name: &'static str, required: &[&str]) -> rusqlite::Result<Option<Table>> {
        if !self.present(name) {
            return Ok(None);
        }
        let cols: Vec<String> = self
            .conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let missing: Vec<String> = required
            .iter()
            .filter(|c| !cols.iter().any(|have| have == *c))
            .map(|c| format!("`{c}`"))
            .collect();
        if !missing.is_empty() {
            self.problems.push(format!(
                "table `{name}` has no column {}",
                missing.join(", ")
            ));
            return Ok(None);
        }
        let sql = self.tables.get(name).cloned().flatten().unwrap_or_default();
        let rowid = !sql.to_ascii_uppercase().contains("WITHOUT ROWID");
        Ok(Some(Table { name, cols, rowid }))
    }

    /// The tables of a layout (`specs`: each name with its required columns), if the database
    /// has them all, each with its required columns; else the problems say what is missing
    /// (`layout` says what has them all). None of them there is no problem.
    fn layout_tables<const N: usize>(
        &mut self,
        specs: [(&'static str, &[&str]); N],
        layout: &str,
    ) -> rusqlite::Result<Option<[Table; N]>> {
        if self.complete(&specs.map(|(name, _)| name), layout) != Some(true) {
            return Ok(None);
        }
        let mut tables = Vec::with_capacity(N);
        for (name, required) in specs {
            tables.push(self.table(name, required)?);
        }
        let tables: Option<Vec<Table>> = tables.into_iter().collect();
        Ok(tables.and_then(|t| t.try_into().ok()))
    }

    /// G1/G2: `sessions` and `messages`; G2 when `messages` has `provider` or
    /// `is_summary_message`.
    fn go(&mut self) -> rusqlite::Result<Option<Go>> {
        let Some([sessions, messages]) = self.layout_tables(
            [("sessions", GO_SESSIONS), ("messages", GO_MESSAGES)],
            "a Go OpenCode or Crush database has `sessions` and `messages`",
        )?
        else {
            return Ok(None);
        };
        let layout = if messages.has("provider") || messages.has("is_summary_message") {
            Layout::G2
        } else {
            Layout::G1
        };
        Ok(Some(Go {
            layout,
            sessions,
            messages,
        }))
    }

    /// T2: `session`, `message` and `part`.
    fn t2(&mut self) -> rusqlite::Result<Option<T2>> {
        let tables = self.layout_tables(
            [
                ("session", T2_SESSION),
                ("message", T2_MESSAGE),
                ("part", T2_PART),
            ],
            "an OpenCode 1.2+ database has `session`, `message` and `part`",
        )?;
        Ok(tables.map(|[session, message, part]| T2 {
            session,
            message,
            part,
        }))
    }

    /// T3: `session_v2` and `session_message`; `session_message` alone is ignored.
    fn t3(&mut self) -> rusqlite::Result<Option<T3>> {
        if !self.present("session_v2") {
            return Ok(None);
        }
        let tables = self.layout_tables(
            [("session_v2", T3_SESSION), ("session_message", T3_MESSAGE)],
            "an OpenCode 2 database has `session_v2` and `session_message`",
        )?;
        Ok(tables.map(|[session, message]| T3 { session, message }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(sql: &str) -> Schema {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        detect(&conn).unwrap()
    }

    const G1: &str = "CREATE TABLE sessions (id TEXT PRIMARY KEY, title TEXT, created_at INTEGER);
        CREATE TABLE messages (id TEXT PRIMARY KEY, session_id TEXT, role TEXT, parts TEXT,
          model TEXT, created_at INTEGER);";

    #[test]
    fn layouts_from_tables_and_columns() {
        let s = schema_of(G1);
        assert_eq!(s.go.as_ref().unwrap().layout, Layout::G1);
        assert!(s.t2.is_none() && s.t3.is_none() && s.problems.is_empty());
        let s = schema_of(&format!(
            "{G1} ALTER TABLE messages ADD COLUMN provider TEXT;"
        ));
        assert_eq!(s.go.unwrap().layout, Layout::G2);
        let s = schema_of(&format!(
            "{G1} ALTER TABLE messages ADD COLUMN is_summary_message INTEGER;"
        ));
        assert_eq!(s.go.unwrap().layout, Layout::G2);

        let t2 = "CREATE TABLE session (id text PRIMARY KEY, time_created integer);
            CREATE TABLE message (id text PRIMARY KEY, session_id text, data text);
            CREATE TABLE part (id text PRIMARY KEY, message_id text, data text) WITHOUT ROWID;";
        let s = schema_of(t2);
        let t = s.t2.unwrap();
        assert!(t.message.rowid);
        assert!(!t.part.rowid);
        assert_eq!(t.session.col("time_created"), "\"time_created\"");
        assert_eq!(t.session.col("time_updated"), "NULL");
        assert!(s.t3.is_none());
        // session_message alone is ignored.
        let s = schema_of(&format!(
            "{t2} CREATE TABLE session_message (id text, session_id text, type text, seq integer, data text);"
        ));
        assert!(s.t3.is_none() && s.problems.is_empty());
        let s = schema_of(&format!(
            "{t2} CREATE TABLE session_v2 (id text); CREATE TABLE session_message (id text, session_id text, type text, seq integer, data text);"
        ));
        assert!(s.t2.is_some() && s.t3.is_some());
    }

    #[test]
    fn incomplete_layouts_are_named() {
        let s = schema_of(
            "CREATE TABLE session (id text); CREATE TABLE message (id text, session_id text, data text);",
        );
        assert!(s.t2.is_none());
        assert_eq!(s.problems.len(), 1);
        assert!(
            s.problems[0].starts_with("table `part` is missing"),
            "{:?}",
            s.problems
        );
        let s = schema_of(
            "CREATE TABLE sessions (id TEXT); CREATE TABLE messages (id TEXT, session_id TEXT, role TEXT);",
        );
        assert_eq!(s.problems, vec!["table `messages` has no column `parts`"]);
        let s = schema_of("CREATE TABLE other (x);");
        assert!(s.problems[0].starts_with("not an OpenCode or Crush database"));
        let s = schema_of("CREATE TABLE session_v2 (id text);");
        assert!(s.problems[0].starts_with("table `session_message` is missing"));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
