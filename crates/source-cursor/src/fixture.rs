//! The Cursor fixtures under `testdata/cursor/` are kept as SQL text (`state.vscdb.sql`), which
//! diffs and reviews as text; [`sqlite_from_sql`] turns one into the SQLite file the reader
//! reads (`state.vscdb`). Used by this crate's tests (tonbo-map's and `make demo` build them
//! with source-opencode's same function and example).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::Connection;

/// Opens (creating it if needed) the SQLite database `db` and runs the SQL text in the file
/// `sql` on it, as one batch of statements. Errors name the file they concern.
pub fn sqlite_from_sql(sql: &Path, db: &Path) -> Result<()> {
    let text = std::fs::read_to_string(sql).with_context(|| format!("{}", sql.display()))?;
    let conn = Connection::open(db).with_context(|| format!("{}", db.display()))?;
    conn.execute_batch(&text)
        .with_context(|| format!("{} into {}", sql.display(), db.display()))
}

/// The database a fixture `X.vscdb.sql` builds: `X.vscdb` (the `.sql` taken off).
pub fn db_of(sql: &Path) -> PathBuf {
    sql.with_extension("")
}
