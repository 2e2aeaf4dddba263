//! codex-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q]
//!            [--follow [--poll-interval MS] [--poll]] [--progress]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use source_codex::{
    existing_default_roots, follow, follow_roots, roots_of_path, Reader, Root, Yield, STAGE,
};
use tonbo_core::reader::{warn_if_empty, ReaderArgs, ReaderRun, STOPPED_BY_A_SIGNAL};
use tonbo_core::scan::ScanWriter;
use tonbo_core::{Exit, Manual, Signals};

/// The examples, environment and files of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Backfill every Codex CLI session, archived ones included:",
            "codex-read | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Read a copied Codex home:",
            "codex-read /mnt/backup/.codex | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Only sessions changed since the first of the month:",
            "codex-read --modified-after 2026-11-01 | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Follow sessions as Codex writes them, polling (a home on a network filesystem):",
            "codex-read --follow --poll --poll-interval 2000 | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "The session ids and record kinds of one day:",
            "codex-read ~/.codex/sessions/2026/11/24 | jq -c '[.session, .kind]' | uniq -c",
        ),
    ],
    environment: &[
        (
            "CODEX_HOME",
            "Codex's home (default ~/.codex): without PATH, its sessions/ and archived_sessions/ are read",
        ),
        ("HOME", "where ~/.codex is"),
        ("TERM", "dumb: no --progress line"),
    ],
    signals: Signals::Stop,
    empty_exit: true,
    files: &[
        (
            "~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl",
            "a session, one JSON object per line (older generations: one .json document; archives: .jsonl.zst)",
        ),
        ("~/.codex/archived_sessions/", "sessions Codex archived"),
    ],
};

/// Read Codex CLI sessions as tonbo-ingest source records.
///
/// Reads OpenAI Codex CLI session files and writes one source record per line:
/// `{"v":1,"source":"codex","session":"<id>","record":<the line, byte for byte>,
///   "at":"<file name>:<n>","provenance":{"file":"<path>","line":<n>}}` for V2+ files (V2, V3,
/// V4), the same with `"kind":"v1"` for every line of a V1 file; for a V0 document
/// (`{session, items}`) a `"kind":"v0-session"` record and one `"kind":"v0-item"` per item, for
/// a seed document (`{id, messages}`) a `"kind":"seed-session"` record and one
/// `"kind":"seed-message"` per message, with `"at":"<file name>:<index>"` and
/// `"provenance":{"file":"<path>","row":"<index>"}` (`session` for the first). `at` names the
/// file without its folders and without `.zst`: the keys of the record's events are built from
/// it, so they stay when a session file is archived or compressed.
/// The generation is told from each file's content; the session id is the first `session_meta`'s
/// `payload.id` (V2+), line 1's `id` (V1), `session.id` (V0) or `id` (seed), else the UUID in the
/// file name.
///
/// PATH is a Codex home (its `sessions/` and `archived_sessions/` are read), a sessions folder
/// (date folders `YYYY/MM/DD` or flat), or one `.json`, `.jsonl` or `.jsonl.zst` file. Without
/// PATH: `$CODEX_HOME/sessions` and `$CODEX_HOME/archived_sessions` (CODEX_HOME default
/// `~/.codex`), and `~/.codex/sessions` for V0 files when CODEX_HOME is elsewhere. Folders are
/// read recursively, sorted by path; `X.jsonl` wins over `X.jsonl.zst` beside it, and a name in
/// `sessions/` over the same name in `archived_sessions/`.
///
/// `--modified-after TIME` reads only files modified after TIME: `2026-11-01T00:00:00Z`,
/// `2026-11-01` (midnight UTC), or an age, `90m`, `12h`, `7d`, `2w`.
///
/// A torn last line (no newline, not JSON) is left for the next run and reported as incomplete;
/// a line that is not a JSON object, or a file whose format cannot be told, is rejected (exit 1);
/// an unreadable file or folder, a `.zst` that is not a whole zstd stream and a truncated JSON
/// document are reported after what could be read of them was written, and counted (exit 1); the
/// rest is always read. A PATH (or default folder) that holds files but gives no record (no
/// session file in it, only empty or torn ones) is warned about, naming it and why, and the exit
/// status is 3 unless `--allow-empty`; files left out by `--modified-after` are not such a case.
/// With `--follow` a folder may fill later, so there is no such warning.
///
/// `--follow`: after reading what exists, keep watching and write what is added until SIGINT or
/// SIGTERM, then flush, print the summary (with how many rewrites were seen) and exit 0 (1 if
/// something was rejected or unreadable). New files and new `YYYY/MM/DD` folders are picked up;
/// a new file's format is told once enough complete lines are written; a last line without its
/// newline waits for it; a rewritten or truncated file and a V0 document (rewritten whole after
/// each item) yield only what was not written before; `.jsonl.zst` archives are read once.
/// Every record is the one a plain run over the final files writes for it.
/// `--poll-interval MS` (default 1000): how often files are looked at when filesystem events
/// are not available, and the base of a periodic rescan when they are. `--poll`: no filesystem
/// events, poll every `--poll-interval` (network filesystems, container volumes).
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    /// Codex homes, sessions folders or session files, read in order; none reads
    /// $CODEX_HOME/sessions and $CODEX_HOME/archived_sessions (CODEX_HOME default ~/.codex).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    reader: ReaderArgs,
}

fn main() -> std::process::ExitCode {
    tonbo_core::manual::main(STAGE, &MANUAL, run)
}

fn run(args: Args) -> Result<Exit> {
    let reads = "session files and folders";
    let mut run = ReaderRun::start(STAGE, reads, &args.paths, &args.reader, ("files", "read"))?;
    let modified_after = args.reader.modified_after;
    let mut reader = Reader::new(run.io(), modified_after);
    let mut empty = 0;
    if args.reader.scan {
        let roots: Vec<Root> = if args.paths.is_empty() {
            existing_default_roots()
        } else {
            args.paths.iter().flat_map(|p| roots_of_path(p)).collect()
        };
        let mut scan = ScanWriter::new(source_codex::SOURCE);
        reader.scan_roots(&roots, &mut scan)?;
        let failed = reader.stats.failed;
        return run.finish(&args.reader, |_| scan.summary(STAGE), failed, 0);
    }
    let followed = if args.reader.follow.follow {
        let roots = follow_roots(&args.paths);
        Some(follow::follow(
            &mut reader,
            roots,
            &args.reader.follow,
            args.reader.quiet,
        )?)
    } else {
        // Each PATH (or default folder) with its roots, to tell which one gave nothing.
        let inputs: Vec<(PathBuf, Vec<Root>)> = if args.paths.is_empty() {
            existing_default_roots()
                .into_iter()
                .map(|r| (r.path.clone(), vec![r]))
                .collect()
        } else {
            args.paths
                .iter()
                .map(|p| (p.clone(), roots_of_path(p)))
                .collect()
        };
        let roots: Vec<Root> = inputs.iter().flat_map(|(_, r)| r.clone()).collect();
        let yields = reader.read_roots(&roots)?;
        let mut at = 0;
        for (path, its) in &inputs {
            let y = Yield::sum(yields.get(at..at + its.len()).unwrap_or_default());
            at += its.len();
            empty += warn_if_empty(STAGE, path, y.nothing_read(), reader.stopped());
        }
        None
    };
    let suffix = match followed {
        Some(f) => format!(", {} rewrites", f.rewrites),
        None if reader.stopped() => STOPPED_BY_A_SIGNAL.to_string(),
        None => String::new(),
    };
    let stats = reader.stats;
    let summary = |rejected| stats.summary(rejected, modified_after.is_some()) + &suffix;
    run.finish(&args.reader, summary, stats.failed, empty)
}

tonbo_core::manual_test!(Args, MANUAL);
