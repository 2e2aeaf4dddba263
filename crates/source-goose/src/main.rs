//! goose-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q] [--progress]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use source_goose::follow::Follower;
use source_goose::read::Reader;
use source_goose::roots::default_sessions_dir;
use source_goose::scan::scan;
use source_goose::{SOURCE, STAGE};
use tonbo_core::follow::follow;
use tonbo_core::reader::{note_none_found, warn_if_empty, ReaderArgs, ReaderRun};
use tonbo_core::scan::ScanWriter;
use tonbo_core::{Exit, Manual, Signals};

/// The examples, environment and files of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Backfill every Goose session:",
            "goose-read | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Read a copied home directory (its Goose stores are found at any depth):",
            "goose-read /mnt/backup/home | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Only sessions updated since the first of the month:",
            "goose-read --modified-after 2026-11-01 | tonbo-map | tonbo-batch | tonbo-post",
        ),
    ],
    environment: &[
        (
            "GOOSE_PATH_ROOT",
            "Goose's root when set: its sessions are in $GOOSE_PATH_ROOT/data/sessions",
        ),
        (
            "XDG_DATA_HOME",
            "else Goose's data dir is $XDG_DATA_HOME/goose (default ~/.local/share/goose)",
        ),
        ("HOME", "where ~/.local/share is"),
        ("TERM", "dumb: no --progress line"),
    ],
    signals: Signals::Stop,
    empty_exit: true,
    files: &[
        (
            "~/.local/share/goose/sessions/sessions.db",
            "current Goose versions: every session and message (SQLite, WAL)",
        ),
        (
            "~/.local/share/goose/sessions/<id>.jsonl",
            "older versions: one session per file, its metadata on line 1, a message per line",
        ),
    ],
};

/// Read Goose sessions as tonbo-ingest source records.
///
/// Reads the sessions of Goose (block/goose) and writes one source record per line:
/// `{"v":1,"source":"goose","session":"<id>","kind":"<kind>","record":<raw>,"at":"<place>",
///   "provenance":{..}}`. From a `sessions.db`: a `session` record per session row (its columns
/// as a JSON object), then a `message` record per message row in row order (`content` and
/// `metadata` are the stored JSON, unchanged), `at` being `sessions.db:sessions/<id>` and
/// `sessions.db:messages/<message_id>`. From an older `<id>.jsonl`: its first line as a
/// `legacy-session` record and every other line as a `legacy-message`, byte for byte, `at`
/// being `<file name>:<line>`. A `.jsonl` whose session the database beside it also holds is
/// not read (Goose imported it there).
///
/// The database is opened read-only and read in one read transaction: a consistent snapshot
/// while Goose writes to it (WAL); nothing is written to it, no checkpoint is made.
///
/// PATH is a Goose sessions folder, a folder above one (a home, a GOOSE_PATH_ROOT: every
/// `sessions.db` and every `.jsonl` in a folder named `sessions` is found, at any depth), a
/// `sessions.db` or a `.jsonl` file. Without PATH: Goose's own sessions folder,
/// `$GOOSE_PATH_ROOT/data/sessions`, else `$XDG_DATA_HOME/goose/sessions` (default
/// `~/.local/share/goose/sessions`, on Linux and macOS).
///
/// `--modified-after TIME` reads only sessions updated after TIME (a database row's
/// `updated_at`, a file's modification time): `2026-11-01T00:00:00Z`, `2026-11-01`, or an age,
/// `90m`, `12h`, `7d`, `2w`.
///
/// A torn last line of a `.jsonl` (no newline, not JSON) is left for the next run and counted
/// as incomplete; a line that is not a JSON object, or a row whose stored JSON is not JSON, is
/// rejected (exit 1); a store that cannot be read is reported and counted (exit 1); the rest
/// is always read. A PATH that holds files but gives no record is warned about, and the exit
/// status is 3 unless `--allow-empty`.
///
/// `--scan`: lists the sessions it would read, one JSON line each (source, session, location,
/// bytes: the session's stored message JSON, or its file; updated: `updated_at` or the file's
/// modification time), without reading them. Goose deletes no session by age, so no line has
/// `expires`.
///
/// `--follow`: after reading what exists, keep watching and write what is added until SIGINT or
/// SIGTERM, then flush, print the summary and exit 0 (1 if something was rejected or
/// unreadable). On every change the stores are read again, writing only what is new: message
/// rows not written before (by their `message_id`: a compaction rewrites a conversation under
/// new row ids, the same message ids), a session record when its name, folder, type or model
/// changed, the lines of an older `.jsonl` after those written. A message deleted by a rewind
/// stays sent. `--poll-interval MS` (default 1000), `--poll`: as for every reader.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    /// Goose sessions folders, folders above them, `sessions.db` or `.jsonl` files, read in
    /// order; none reads Goose's own sessions folder.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    reader: ReaderArgs,
}

fn main() -> std::process::ExitCode {
    tonbo_core::manual::main(STAGE, &MANUAL, run)
}

fn run(args: Args) -> Result<Exit> {
    let following = args.reader.follow.follow;
    let inputs: Vec<PathBuf> = if args.paths.is_empty() {
        match default_sessions_dir() {
            // Followed even before Goose makes it.
            Some(d) if d.exists() || following => vec![d],
            d => {
                let looked: Vec<String> = d.iter().map(|d| d.display().to_string()).collect();
                note_none_found(STAGE, "Goose sessions folder", &looked);
                vec![]
            }
        }
    } else {
        args.paths.clone()
    };
    let reads = "Goose session stores";
    let mut run = ReaderRun::start(
        STAGE,
        reads,
        &args.paths,
        &args.reader,
        ("sessions", "written"),
    )?;
    if args.reader.scan {
        let mut writer = ScanWriter::new(SOURCE);
        let failed = scan(run.io().out, &inputs, &mut writer)?;
        return run.finish(&args.reader, |_| writer.summary(STAGE), failed, 0);
    }
    let stop = run.stop.clone();
    let mut reader = Reader::new(run.io(), args.reader.modified_after);
    let mut empty = 0;
    if following {
        let mut follower = Follower {
            reader: &mut reader,
            inputs,
        };
        follow(&mut follower, &args.reader.follow, STAGE, &stop)?;
    } else {
        let yields = reader.read_inputs(&inputs)?;
        for (path, (records, found)) in inputs.iter().zip(yields) {
            let why = if !found {
                Some("no Goose sessions.db or sessions/*.jsonl in it".to_string())
            } else if records == 0 && reader.stats.skipped == 0 {
                Some("its Goose stores hold no session".to_string())
            } else {
                None
            };
            empty += warn_if_empty(STAGE, path, why, reader.stopped());
        }
    }
    let stats = reader.stats;
    run.finish(&args.reader, |r| stats.summary(r), stats.failed, empty)
}

tonbo_core::manual_test!(Args, MANUAL);
