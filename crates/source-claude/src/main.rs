//! claude-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q]
//!             [--follow [--poll-interval MS] [--poll]] [--progress]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use source_claude::follow::follow;
use source_claude::{env_default_roots, existing_default_roots, Reader, STAGE};
use tonbo_core::reader::{warn_if_empty, ReaderArgs, ReaderRun};
use tonbo_core::scan::ScanWriter;
use tonbo_core::{Exit, Manual, Signals};

/// The examples, environment and files of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Backfill every Claude Code session into a local server:",
            "claude-read | tonbo-map | tonbo-batch | tonbo-post --api http://127.0.0.1:4437",
        ),
        (
            "One project's sessions changed in the last two days:",
            "claude-read ~/.claude/projects/-home-me-src-app --modified-after 2d | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Sidecar mode: follow every session as it is written, until SIGTERM:",
            "claude-read --follow | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Count the records of each type in one session file:",
            "claude-read session.jsonl | jq -r .record.type | sort | uniq -c",
        ),
        (
            "Keep the lines that could not be read, with their reasons:",
            "claude-read --rejects rejects.ndjson > records.ndjson",
        ),
    ],
    environment: &[
        (
            "CLAUDE_CONFIG_DIR",
            "Claude Code's config folders, comma-separated: without PATH, the projects/ folder of each is read",
        ),
        (
            "HOME",
            "without PATH and CLAUDE_CONFIG_DIR: ~/.claude/projects and ~/.config/claude/projects are read",
        ),
        ("TERM", "dumb: no --progress line"),
    ],
    signals: Signals::Stop,
    empty_exit: true,
    files: &[(
        "~/.claude/projects/PROJECT/SESSION.jsonl",
        "a session's transcript, one JSON object per line; its subagents' in SESSION/subagents/",
    )],
};

/// Read Claude Code transcripts as tonbo-ingest source records.
///
/// Reads Claude Code transcripts and writes one source record per transcript line:
/// `{"v":1,"source":"claude-code","session":"<id>","record":<the line, byte for byte>,
///   "at":"<file name>:<n>","provenance":{"file":"<path>","line":<n>}}`,
/// and for a subagent's `agent-<id>.meta.json` one record with `"kind":"subagent-meta"` and
/// `"agent_id"` just before that agent's lines. `at` is where the line sits by Claude Code's own
/// names, which is what tonbo-map reads; `provenance` is the path on this machine, for people.
///
/// PATH is a projects folder (or any folder of project folders), a Claude config dir (its
/// `projects` is read), a project folder, a session's companion folder, or one `.jsonl` file.
/// Without PATH: `<dir>/projects` for each dir of the comma-separated `CLAUDE_CONFIG_DIR`, else
/// `~/.claude/projects` and `~/.config/claude/projects`, those that exist.
///
/// `--modified-after TIME` reads only files modified after TIME: `2026-11-01T00:00:00Z`,
/// `2026-11-01` (midnight UTC), or an age, `90m`, `12h`, `7d`, `2w`.
///
/// `--follow` (sidecar mode): after reading what exists, keep watching and write what is added,
/// until SIGINT/SIGTERM; then flush, print the summary (with the number of rewrites seen), and
/// exit 0 (1 if something was rejected or unreadable). New session files, subagent files and
/// project folders are picked up; a file Claude Code rewrites in place (compaction, resume)
/// gives only its new lines; a last line is read once its newline is written. `--modified-after`
/// then chooses only what the first pass reads: a file it left out is followed once written to,
/// and files created later are always followed. A legacy flat `agent-*.jsonl` is read once a
/// line names its `sessionId`.
/// `--poll-interval MS` (default 1000): how often files are checked without filesystem events,
/// and the base of the safety rescan (every 10 intervals) with them.
/// `--poll`: do not use filesystem events; check every `--poll-interval` (network filesystems,
/// container volumes where inotify does not work).
///
/// A torn last line (no newline, not JSON) is left for the next run and reported as incomplete;
/// a line that is not a JSON object is rejected (exit 1); an unreadable file or folder is
/// reported and counted (exit 1); the rest is always read. A PATH (or default folder) that holds
/// files but gives no record (no transcript in it, only empty or torn ones) is warned about,
/// naming it and why, and the exit status is 3 unless `--allow-empty`; files left out by
/// `--modified-after` are not such a case (the summary counts them). With `--follow` a folder
/// may fill later, so there is no such warning.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    /// Projects folders, project folders or `.jsonl` files, read in order; none reads
    /// CLAUDE_CONFIG_DIR's, or ~/.claude/projects and ~/.config/claude/projects.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    reader: ReaderArgs,
}

fn main() -> std::process::ExitCode {
    tonbo_core::manual::main(STAGE, &MANUAL, run)
}

fn run(args: Args) -> Result<Exit> {
    let reads = "transcript files and folders";
    let mut run = ReaderRun::start(STAGE, reads, &args.paths, &args.reader, ("files", "read"))?;
    let follows = args.reader.follow.follow;
    let default_roots = args.paths.is_empty();
    let roots = if !default_roots {
        args.paths
    } else {
        match existing_default_roots() {
            // A sidecar started before Claude Code's first run watches for its folders.
            found if found.is_empty() && follows => env_default_roots(),
            found => found,
        }
    };
    let modified_after = args.reader.modified_after;
    let stop = run.stop.clone();
    let mut reader = Reader::new(run.io(), modified_after);
    let mut suffix = String::new();
    let mut empty = 0;
    if args.reader.scan {
        let mut scan = ScanWriter::new(source_claude::SOURCE);
        for root in &roots {
            reader.scan_path(root, &mut scan)?;
        }
        let unreadable = reader.stats.unreadable;
        return run.finish(&args.reader, |_| scan.summary(STAGE), unreadable, 0);
    }
    if follows {
        let followed = follow(&mut reader, roots, &args.reader.follow, default_roots, stop)?;
        suffix = followed.summary_suffix();
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
