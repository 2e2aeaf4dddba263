//! opencode-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q]
//!               [--follow [--poll-interval MS] [--poll]] [--progress]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use source_opencode::follow::{follow, Spec};
use source_opencode::sources::{default_sources, Env, Sources};
use source_opencode::{busy_timeout_from_env, Reader, STAGE};
use tonbo_core::reader::{ReaderArgs, ReaderRun};
use tonbo_core::scan::ScanWriter;
use tonbo_core::{Exit, Manual, Signals};

/// The examples, environment and files of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Backfill OpenCode and Crush sessions from where they keep them:",
            "opencode-read | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "One database (OpenCode 1.2 and later, or OpenCode 2):",
            "opencode-read ~/.local/share/opencode/opencode.db | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "A project's Crush database:",
            "opencode-read ./.crush | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Follow the live database, with a progress line on the terminal:",
            "opencode-read --follow --progress | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Sessions updated this week, as records to look at:",
            "opencode-read --modified-after 7d > records.ndjson",
        ),
    ],
    environment: &[
        (
            "OPENCODE_DB",
            "the OpenCode database to read without PATH (absolute, or relative to the data folder)",
        ),
        (
            "XDG_DATA_HOME",
            "where the data folder is: $XDG_DATA_HOME/opencode (default ~/.local/share/opencode)",
        ),
        (
            "CRUSH_GLOBAL_DATA",
            "Crush's data folder, with projects.json naming each project's crush.db",
        ),
        (
            "OPENCODE_READ_BUSY_TIMEOUT_MS",
            "how long a locked database is waited for (default 5000)",
        ),
        ("HOME", "where ~/.local/share is"),
        ("TERM", "dumb: no --progress line"),
    ],
    signals: Signals::Stop,
    empty_exit: true,
    files: &[
        (
            "~/.local/share/opencode/opencode*.db",
            "OpenCode 1.2 and later (and OpenCode 2): SQLite, opened read-only",
        ),
        (
            "~/.local/share/opencode/storage/",
            "the JSON store of OpenCode 1.1 and earlier",
        ),
        (
            "PROJECT/.opencode/opencode.db, PROJECT/.crush/crush.db",
            "the Go opencode and Crush, per project",
        ),
    ],
};

/// Read OpenCode and Crush sessions as tonbo-ingest source records.
///
/// Reads OpenCode and Crush sessions of every on-disk layout and writes one source record per line: per session a `"kind":"session"` record,
/// `{"v":1,"source":"opencode","kind":"session","session":"<id>","record":{"layout":L,
/// "session":{..}},"provenance":{..}}`, then one `"kind":"message"` record per message,
/// `"record":{"layout":L,"message":{..},"parts":[..]}`. L is `g1` (Go opencode-ai/opencode),
/// `g2` (Crush), `t1` (the JSON store of OpenCode 1.1 and earlier, and its per-project predecessor), `t2`
/// (OpenCode 1.2+ SQLite) or `t3` (OpenCode 2). Provenance is
/// `{"file":"<database>","table":"<table>","row":"<id>"}` for database rows and
/// `{"file":"<json file>"}` for the JSON store. The layout is told from each database's schema,
/// never from its name.
///
/// PATH is a database file, or a folder in which every store at any depth is read: databases
/// named `opencode*.db`, `crush.db` or `termai.db`, and JSON stores (`storage/`); for example a
/// data folder, a `storage/` folder, a project's `.opencode`/`.crush` folder, a folder of
/// projects, or a copied home directory (`.git`, `node_modules` and `snapshot` folders are not
/// walked). A folder that holds files but no store is warned about and the exit status is 3
/// (unless `--allow-empty`). Without PATH: `OPENCODE_DB`
/// (absolute, or relative to the data folder) or else every `<data>/opencode*.db`, where `<data>`
/// is `$XDG_DATA_HOME/opencode` or `~/.local/share/opencode`; `<data>/storage/` and
/// `<data>/project/*/storage/`; the `crush.db` of every project in Crush's `projects.json`
/// (in `$CRUSH_GLOBAL_DATA`, `$XDG_DATA_HOME/crush` or `~/.local/share/crush`); and
/// `./.opencode/opencode.db` and `./.crush/crush.db`. Sources that do not exist are a note.
///
/// Databases are opened read-only (never a checkpoint, a journal mode change or a lock file) and
/// each session is read in one read transaction, a consistent snapshot while OpenCode writes. A
/// locked database is waited for 5 s (`OPENCODE_READ_BUSY_TIMEOUT_MS` changes it). All databases
/// are read before the JSON stores: a session a database holds is not read again from a store,
/// and the store's messages the database lacks are merged into it. No session or message is
/// written twice.
///
/// `--modified-after TIME` reads only sessions updated after TIME (their update time, their
/// messages', or for the JSON store their files' modification times): `2026-11-01T00:00:00Z`,
/// `2026-11-01` (midnight UTC), or an age, `90m`, `12h`, `7d`, `2w`.
///
/// `--follow` (sidecar mode): after reading what exists, keep polling the databases (read-only)
/// and JSON stores and write what is added, until SIGINT/SIGTERM; then flush, print the summary
/// (with the rewrites seen and the messages held), and exit 0 (1 if something was rejected or
/// is still unreadable). A message goes out once, and only once it is final: a finished
/// assistant message (its `finish` part, G1/G2; `time.completed` with every tool `completed` or
/// `error`, T1/T2/T3), a user message once the answer has started (T1/T2), any other message at
/// once; an unfinished one is final anyway once a later assistant message exists (it was
/// interrupted). Until then it, and the messages after it in its session, are held, also during
/// the first pass. Its record is byte for byte the one a plain run writes for the same rows. A
/// session's record goes out with its first message (or at the exit if it has none), as the row
/// was then; later changes of the row, and of a message already written, are not written again
/// (a message's count as rewrites). New sessions, databases and stores are picked up; a
/// database locked or mid-write is tried again at the next poll. `--modified-after` chooses
/// only what the first pass reads: a session it left out is read in full once it changes.
/// `--poll-interval MS` (default 1000): how often the sources are looked at without filesystem
/// events, and the base of the safety rescan (every 10 intervals) with them.
/// `--poll`: do not use filesystem events; look every `--poll-interval` (network filesystems,
/// container volumes where inotify does not work).
///
/// A database that is not SQLite, is corrupt, stays locked or lacks the tables or columns of its
/// layout is reported with its file (and table) and counted as failed (exit 1); a row or JSON file
/// that does not parse is rejected (`FILE:ROWID` or `FILE:LINE`, with table and row id), and the
/// rest is always read.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
#[command(mut_args(of_sessions_and_rows))]
struct Args {
    /// Databases, data folders, storage folders or .opencode/.crush folders, read in order (all
    /// databases before all JSON stores); none reads OPENCODE_DB or ~/.local/share/opencode,
    /// Crush's projects, and ./.opencode and ./.crush.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    reader: ReaderArgs,
}

/// The help of the shared reader flags that speak of files and lines ([`ReaderArgs`]), worded
/// for what this reader reads: sessions and rows.
fn of_sessions_and_rows(arg: clap::Arg) -> clap::Arg {
    let help = match arg.get_id().as_str() {
        "modified_after" => {
            "Read only sessions updated after TIME: 2026-11-01T00:00:00Z, 2026-11-01 (UTC), or an \
             age such as 90m, 12h, 7d, 2w"
        }
        "rejects" => {
            "Also write every rejected input row or file, with its reason, to FILE (NDJSON)"
        }
        "progress" => {
            "Show sessions scanned, records and bytes written on stderr while reading, when it is \
             a terminal (ignored otherwise)"
        }
        _ => return arg,
    };
    arg.help(help)
}

fn main() -> std::process::ExitCode {
    tonbo_core::manual::main(STAGE, &MANUAL, run)
}

fn run(args: Args) -> Result<Exit> {
    // Before the rejects file is created: a bad value leaves nothing behind.
    let busy = busy_timeout_from_env()?;
    let reads = "databases and folders";
    let progress = ("sessions", "written");
    let mut run = ReaderRun::start(STAGE, reads, &args.paths, &args.reader, progress)?;
    let modified_after = args.reader.modified_after;
    let stop = run.stop.clone();
    let mut reader = Reader::new(run.io(), modified_after, busy);
    let mut suffix = String::new();
    let mut empty = 0;
    if args.reader.scan {
        let sources = if args.paths.is_empty() {
            default_sources(&Env::from_process())
        } else {
            let mut s = Sources::default();
            for p in &args.paths {
                s.add_path(p);
            }
            s
        };
        let mut scan = ScanWriter::new(source_opencode::SOURCE);
        reader.scan(&sources, &mut scan)?;
        let failed = reader.stats.failed;
        return run.finish(&args.reader, |_| scan.summary(STAGE), failed, 0);
    }
    if args.reader.follow.follow {
        let spec = if args.paths.is_empty() {
            Spec::Default(Env::from_process())
        } else {
            Spec::Paths(args.paths)
        };
        suffix = follow(&mut reader, spec, &args.reader.follow, &stop)?.summary_suffix();
    } else {
        let sources = if args.paths.is_empty() {
            default_sources(&Env::from_process())
        } else {
            let mut s = Sources::default();
            for p in &args.paths {
                s.add_path(p);
            }
            s
        };
        empty = sources.empty;
        reader.read(&sources)?;
    }
    let stats = reader.stats;
    let summary = |rejected| stats.summary(rejected, modified_after.is_some()) + &suffix;
    run.finish(&args.reader, summary, stats.failed, empty)
}

tonbo_core::manual_test!(Args, MANUAL);
