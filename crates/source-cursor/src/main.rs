//! cursor-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q]
//!             [--follow [--poll-interval MS] [--poll]] [--progress] [--scan]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use source_cursor::follow::Following;
use source_cursor::read::{DbYield, Reader};
use source_cursor::store::{default_user_dir, discover, USER_DIR_ENV};
use source_cursor::STAGE;
use tonbo_core::reader::{
    note_no_such_input, note_waiting_for_missing, paths_or_default_dir, warn_if_empty, ReaderArgs,
    ReaderRun, STOPPED_BY_A_SIGNAL,
};
use tonbo_core::scan::ScanWriter;
use tonbo_core::{Exit, Manual, Signals};

/// The examples, environment and files of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Backfill every Cursor chat:",
            "cursor-read | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Read a copied Cursor User folder:",
            "cursor-read /mnt/backup/Cursor/User | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Only chats updated in the last week:",
            "cursor-read --modified-after 7d | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Follow the chats as Cursor writes them:",
            "cursor-read --follow | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "The chats and their last update:",
            "cursor-read --scan | jq -r '[.updated, .session] | @tsv'",
        ),
    ],
    environment: &[
        (
            USER_DIR_ENV,
            "the Cursor `User` folder to read without PATH (ours; Cursor has none)",
        ),
        ("XDG_CONFIG_HOME", "where Cursor/User is on Linux (default ~/.config)"),
        ("HOME", "where ~/.config/Cursor/User (Linux) or ~/Library/Application Support/Cursor/User (macOS) is"),
        ("TERM", "dumb: no --progress line"),
    ],
    signals: Signals::Stop,
    empty_exit: true,
    files: &[
        (
            "~/.config/Cursor/User/globalStorage/state.vscdb",
            "Cursor's chats (Linux; macOS: ~/Library/Application Support/Cursor/User/...): SQLite, table cursorDiskKV",
        ),
        (
            "~/.config/Cursor/User/workspaceStorage/<hash>/{workspace.json,state.vscdb}",
            "a workspace's folder and the chats started in it",
        ),
    ],
};

/// Read Cursor's chats (Agent and Ask, "composers") as tonbo-ingest source records.
///
/// Reads Cursor's global database (`User/globalStorage/state.vscdb`, SQLite) read-only and
/// WAL-safe, one read transaction per database, and writes per chat, in this order:
/// `"kind":"workspace"` (its workspace's `workspace.json`, when a workspace lists the chat;
/// `at` `workspace/<hash>`), `"kind":"composer"` (the chat's `composerData` value without an
/// inline `conversation`; `at` `composer`), then each message ("bubble") in the chat's order,
/// unmodified: `{"v":1,"source":"cursor","session":"<composerId>","record":<bubble>,
/// "at":"<bubbleId>","provenance":{"file":"<db>","table":"cursorDiskKV","row":"<key>"}}`.
/// Messages are the `bubbleId:<composerId>:<bubbleId>` rows named by
/// `fullConversationHeadersOnly`, or the inline `conversation` of older builds.
///
/// PATH is a database file, or a folder below which every `globalStorage/state.vscdb` is read
/// (a `User` folder, the `Cursor` folder, a copied home). Without PATH: `$CURSOR_USER_DIR`, else
/// `~/.config/Cursor/User` (`$XDG_CONFIG_HOME/Cursor/User`; macOS: `~/Library/Application
/// Support/Cursor/User`).
///
/// `--modified-after TIME` reads only chats whose `lastUpdatedAt` (else `createdAt`) is after
/// TIME: `2026-11-01T00:00:00Z`, `2026-11-01` (midnight UTC), or an age, `90m`, `12h`, `7d`.
///
/// A row whose value is not JSON is rejected with its key (exit 1) and the rest is read; a
/// message a chat names whose row is missing (or NULL, or JSON `null`) is counted (`missing`); a database that cannot be
/// read, or has no `cursorDiskKV` table, is reported and counted as failed (exit 1). A PATH that
/// holds files but gives no record is warned about and the exit status is 3 unless
/// `--allow-empty`.
///
/// `--scan`: one line per chat: composerId, database, bytes of its rows, and its `lastUpdatedAt`
/// (else `createdAt`). Cursor deletes no chat by age: no `expires`.
///
/// `--follow`: after reading what exists, keep watching and write what is added until SIGINT or
/// SIGTERM, then write what was held back, print the summary and exit 0 (1 if something was
/// rejected or unreadable). Every change reads the database again and writes only new messages,
/// and messages whose bytes changed (same `at`); a message still being generated
/// (`generatingBubbleIds`, or the last of a chat whose `status` is `generating`), and the newest
/// assistant message of a chat that changed since the last look, are held back until done and
/// quiet. `--poll-interval MS` (default 1000): how often the databases are looked at
/// without filesystem events, and the base of the periodic rescan with them. `--poll`: no
/// filesystem events.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    /// Cursor databases, or folders holding them (User, Cursor, a copied home), read in order;
    /// none reads $CURSOR_USER_DIR, else the default User folder.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    reader: ReaderArgs,
}

fn main() -> std::process::ExitCode {
    tonbo_core::manual::main(STAGE, &MANUAL, run)
}

/// The PATHs, or the default User folder when it exists (else a note, and nothing to read).
fn inputs(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths_or_default_dir(STAGE, paths, default_user_dir, "Cursor User folder")
}

/// Why a PATH gave nothing, or `None` when it gave something or everything was left out.
fn nothing_read(dbs: u64, failed: bool, y: DbYield, passed_over: bool) -> Option<String> {
    if y.records > 0 || passed_over {
        return None;
    }
    Some(if dbs == 0 {
        "no Cursor database (globalStorage/state.vscdb) in it".into()
    } else if failed {
        format!("none of its {dbs} Cursor databases could be read (see above)")
    } else if y.chats == 0 {
        format!("its {dbs} Cursor databases hold no chat")
    } else {
        "its chats gave no record (see above)".into()
    })
}

fn read_all(reader: &mut Reader, inputs: &[PathBuf]) -> Result<u64> {
    let mut empty = 0;
    for input in inputs {
        if !input.exists() {
            note_no_such_input(STAGE, input);
            reader.stats.failed += 1;
            continue;
        }
        let (failed_before, old_before) = (reader.stats.failed, reader.stats.skipped_old);
        let (mut dbs, mut sum) = (0, DbYield::default());
        for db in discover(input) {
            if reader.stopped || reader.io.stop_set() {
                reader.stopped = true;
                break;
            }
            dbs += 1;
            let y = reader.read_db(&db)?;
            sum.chats += y.chats;
            sum.records += y.records;
        }
        let failed = reader.stats.failed > failed_before;
        let passed_over = reader.stats.skipped_old > old_before;
        let why = nothing_read(dbs, failed, sum, passed_over);
        empty += warn_if_empty(STAGE, input, why, reader.stopped);
    }
    Ok(empty)
}

fn run(args: Args) -> Result<Exit> {
    let reads = "Cursor databases and folders";
    let mut run = ReaderRun::start(STAGE, reads, &args.paths, &args.reader, ("chats", "read"))?;
    let modified_after = args.reader.modified_after;
    let stop = run.stop.clone();
    let mut reader = Reader::new(run.io(), modified_after);
    let mut empty = 0;
    if args.reader.scan {
        let mut scan = ScanWriter::new(source_cursor::SOURCE);
        for input in inputs(&args.paths) {
            reader.scan_path(&input, &mut scan)?;
        }
        let failed = reader.stats.failed;
        return run.finish(&args.reader, |_| scan.summary(STAGE), failed, 0);
    }
    if args.reader.follow.follow {
        let roots: Vec<PathBuf> = if args.paths.is_empty() {
            default_user_dir().into_iter().collect()
        } else {
            args.paths.clone()
        };
        note_waiting_for_missing(STAGE, &roots);
        let mut following = Following::new(&mut reader, roots);
        tonbo_core::follow::follow(&mut following, &args.reader.follow, STAGE, &stop)?;
    } else {
        empty = read_all(&mut reader, &inputs(&args.paths))?;
    }
    let stopped = reader.stopped && !args.reader.follow.follow;
    let stats = reader.stats;
    let suffix = if stopped { STOPPED_BY_A_SIGNAL } else { "" };
    let summary = |rejected| stats.summary(rejected, modified_after.is_some()) + suffix;
    run.finish(&args.reader, summary, stats.failed, empty)
}

tonbo_core::manual_test!(Args, MANUAL);
