//! qwen-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q]
//!           [--follow [--poll-interval MS] [--poll]] [--progress] [--scan]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use source_qwen::follow::follow;
use source_qwen::{env_default_roots, existing_default_roots, Reader, STAGE};
use tonbo_core::reader::{warn_if_empty, ReaderArgs, ReaderRun};
use tonbo_core::scan::ScanWriter;
use tonbo_core::{Exit, Manual, Signals};

/// The examples, environment and files of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Backfill every Qwen Code session into a local server:",
            "qwen-read | tonbo-map | tonbo-batch | tonbo-post --api http://127.0.0.1:4437",
        ),
        (
            "One project's sessions changed in the last two days:",
            "qwen-read ~/.qwen/projects/-home-me-src-app --modified-after 2d | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Sidecar mode: follow every session as it is written, until SIGTERM:",
            "qwen-read --follow | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Count the records of each type in one session file:",
            "qwen-read SESSION.jsonl | jq -r .record.type | sort | uniq -c",
        ),
    ],
    environment: &[
        (
            "QWEN_RUNTIME_DIR",
            "Qwen Code's runtime output folder: without PATH, its projects/ is read",
        ),
        (
            "QWEN_HOME",
            "Qwen Code's home folder, used when QWEN_RUNTIME_DIR is not set",
        ),
        (
            "HOME",
            "without PATH, QWEN_RUNTIME_DIR and QWEN_HOME: ~/.qwen/projects is read",
        ),
        ("TERM", "dumb: no --progress line"),
    ],
    signals: Signals::Stop,
    empty_exit: true,
    files: &[(
        "~/.qwen/projects/PROJECT/chats/SESSION.jsonl",
        "a session's records, one JSON object per line; an archived session's in chats/archive/",
    )],
};

/// Read Qwen Code session files as tonbo-ingest source records.
///
/// Reads Qwen Code's session files and writes one source record per line:
/// `{"v":1,"source":"qwen-code","session":"<id>","record":<the line, byte for byte>,
///   "at":"<file name>:<n>","provenance":{"file":"<path>","line":<n>}}`.
/// `at` is where the line sits by Qwen Code's own names; `provenance` is the path on this
/// machine, for people.
///
/// PATH is any folder above the session files (a home, a `.qwen` folder, its `projects`, one
/// project's folder, a `chats` folder), searched at any depth for `chats/<session id>.jsonl`
/// and `chats/archive/<session id>.jsonl`, or one session file. Gemini CLI's `session-*.json`
/// and `session-*.jsonl` are not read (they are gemini-read's). Without PATH: `projects` of
/// `QWEN_RUNTIME_DIR`, else of `QWEN_HOME`, else of `~/.qwen`, if it exists (a runtime folder
/// set in Qwen Code's settings instead is not known: name it as PATH).
///
/// `--modified-after TIME` reads only files modified after TIME: `2026-11-01T00:00:00Z`,
/// `2026-11-01` (midnight UTC), or an age, `90m`, `12h`, `7d`, `2w`.
///
/// `--follow` (sidecar mode): after reading what exists, keep watching and write what is
/// appended, until SIGINT/SIGTERM; then flush, print the summary and exit 0 (1 if something was
/// rejected or unreadable). New session files and project folders are picked up; a last line is
/// read once its newline is written; a file read again from its start gives only lines not
/// written before. `--modified-after` chooses only what the first pass reads: a file it left
/// out is followed (read whole) once written to.
///
/// `--scan` lists the sessions found (session, location, bytes, last update) without reading
/// them; Qwen Code deletes no session by age, so none has an expiry.
///
/// A torn last line (no newline, not JSON) is left for the next run and reported as incomplete;
/// a line that is not a JSON object is rejected (exit 1); an unreadable file or folder is
/// reported and counted (exit 1). A PATH that holds files but gives no record is warned about
/// and the exit status is 3 unless `--allow-empty`.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    /// Folders above session files, or session files, read in order; none reads the default
    /// location (projects/ of QWEN_RUNTIME_DIR, QWEN_HOME or ~/.qwen).
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
    let follows = args.reader.follow.follow;
    let roots = if !args.paths.is_empty() {
        args.paths
    } else {
        match existing_default_roots() {
            // A sidecar started before Qwen Code's first run watches for its folders.
            found if found.is_empty() && follows => env_default_roots(),
            found => found,
        }
    };
    let modified_after = args.reader.modified_after;
    let stop = run.stop.clone();
    let mut reader = Reader::new(run.io(), modified_after);
    if args.reader.scan {
        let mut scan = ScanWriter::new(source_qwen::SOURCE);
        for root in &roots {
            reader.scan_path(root, &mut scan)?;
        }
        let unreadable = reader.stats.unreadable;
        return run.finish(&args.reader, |_| scan.summary(STAGE), unreadable, 0);
    }
    let mut suffix = String::new();
    let mut empty = 0;
    if follows {
        suffix = follow(&mut reader, roots, &args.reader.follow, stop)?.summary_suffix();
    } else {
        for root in &roots {
            if reader.stopped() {
                break;
            }
            let before = reader.stats.clone();
            reader.read_path(root)?;
            let why = reader.stats.nothing_read(&before);
            empty += warn_if_empty(STAGE, root, why, reader.stopped());
        }
    }
    let stats = reader.stats;
    let summary = |rejected| stats.summary(rejected, modified_after.is_some()) + &suffix;
    run.finish(&args.reader, summary, stats.unreadable, empty)
}

tonbo_core::manual_test!(Args, MANUAL);
