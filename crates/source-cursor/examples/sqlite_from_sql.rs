//! Builds an SQLite database from SQL text: how `make demo` turns the Cursor fixtures
//! (`testdata/cursor/*/…/state.vscdb.sql`) into the databases cursor-read reads (`state.vscdb`).
//!
//! Usage: cargo run --release -p source-cursor --example sqlite_from_sql -- SQL DB

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [sql, db] = args.as_slice() else {
        eprintln!("usage: sqlite_from_sql SQL DB");
        return ExitCode::from(2);
    };
    match source_cursor::fixture::sqlite_from_sql(sql.as_ref(), db.as_ref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sqlite_from_sql: {e:#}");
            ExitCode::FAILURE
        }
    }
}
