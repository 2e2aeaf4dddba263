//! copilot-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q]
//!              [--follow [--poll-interval MS] [--poll]] [--progress]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use source_copilot::{default_roots, follow, Reader, STAGE};
use tonbo_core::reader::{
    note_none_found, warn_if_empty, ReaderArgs, ReaderRun, STOPPED_BY_A_SIGNAL,
};
use tonbo_core::scan::ScanWriter;
use tonbo_core::{Exit, Manual, Signals};

/// The examples, environment and files of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Backfill every GitHub Copilot CLI session:",
            "copilot-read | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Read a copied home directory (its .copilot is found):",
            "copilot-read /mnt/backup/home | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Follow sessions as Copilot CLI writes them:",
            "copilot-read --follow | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "The event types of one session:",
            "copilot-read ~/.copilot/session-state/<id> | jq -r .record.type | sort | uniq -c",
        ),
    ],
    environment: &[
        (
            "COPILOT_HOME",
            "Copilot CLI's home (default ~/.copilot): without PATH, its session-state/ and history-session-state/ are read",
        ),
        (
            "XDG_CONFIG_HOME",
            "without COPILOT_HOME, $XDG_CONFIG_HOME/.copilot is the home when it exists (Copilot CLI up to 0.0.421)",
        ),
        ("HOME", "where ~/.copilot is"),
        ("TERM", "dumb: no --progress line"),
    ],
    signals: Signals::Stop,
    empty_exit: true,
    files: &[
        (
            "~/.copilot/session-state/<id>/events.jsonl",
            "a session, one event per line, appended (flat <id>.jsonl in early builds)",
        ),
        (
            "~/.copilot/history-session-state/*.json",
            "a session of Copilot CLI before 0.0.342, one JSON document",
        ),
    ],
};

/// Read GitHub Copilot CLI sessions as tonbo-ingest source records.
///
/// Writes one source record per line: for each line of a session's `events.jsonl`
/// `{"v":1,"source":"copilot-cli","session":"<id>","record":<the line, byte for byte>,
///   "at":"<id>/events.jsonl:<n>","provenance":{"file":"<path>","line":<n>}}` (a flat
/// `session-state/<id>.jsonl`: `"at":"<id>.jsonl:<n>"`); for a legacy document
/// (`history-session-state/*.json`) a `"kind":"legacy-session"` record (the document without
/// `chatMessages` and `timeline`) and one `"kind":"legacy-message"` per element of
/// `chatMessages`, with `"at":"<file name>:<index>"` and `"provenance":{"file":..,"row":..}`.
/// The session id is the session folder's name (the file's stem when flat; a legacy document's
/// `sessionId`).
///
/// PATH is any folder (walked whole: a Copilot home, its `session-state`, a session folder, a
/// folder above them) or one session file. Without PATH: `$COPILOT_HOME/session-state` and
/// `$COPILOT_HOME/history-session-state` (COPILOT_HOME default `~/.copilot`).
///
/// `--modified-after TIME` reads only files modified after TIME: `2026-11-01T00:00:00Z`,
/// `2026-11-01`, or an age, `90m`, `12h`, `7d`, `2w`.
///
/// A torn last line (no newline, not JSON) is left for the next run and counted incomplete; a
/// line that is not a JSON object is rejected (exit 1); an unreadable file is reported and
/// counted (exit 1); a legacy document that is not whole JSON is counted incomplete. A PATH
/// that holds files but gives no record is warned about and the exit status is 3 unless
/// `--allow-empty`.
///
/// `--scan`: instead of reading, one line per session found (a session in two files once):
/// `{"source":"copilot-cli","session":..,"location":<the PATH or default folder>,"bytes":..,
/// "updated":<the file's modification time>}`; Copilot CLI deletes no session by itself, so no
/// line has an expiry.
///
/// `--follow`: after reading what exists, keep watching and write what is added until SIGINT or
/// SIGTERM, then print the summary and exit. Event files are tailed (a line goes out once its
/// newline is written; a rewritten file gives only lines not given before); a changed legacy
/// document is read again and only its new messages go out; new sessions are picked up.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    /// Folders or session files, read in order; none reads $COPILOT_HOME/session-state and
    /// $COPILOT_HOME/history-session-state (COPILOT_HOME default ~/.copilot).
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
    let explicit = !args.paths.is_empty();
    let inputs: Vec<PathBuf> = if explicit {
        args.paths.clone()
    } else {
        default_roots()
    };
    let mut empty = 0;
    if args.reader.scan {
        let existing: Vec<&PathBuf> = inputs.iter().filter(|p| explicit || p.exists()).collect();
        let mut scan = ScanWriter::new(source_copilot::SOURCE);
        reader.scan_paths(&existing, &mut scan)?;
        let failed = reader.stats.failed;
        return run.finish(&args.reader, |_| scan.summary(STAGE), failed, 0);
    }
    let suffix = if args.reader.follow.follow {
        let rewrites = follow::follow(&mut reader, inputs, &args.reader.follow, args.reader.quiet)?;
        format!(", {rewrites} rewrites")
    } else {
        let existing: Vec<&PathBuf> = inputs.iter().filter(|p| explicit || p.exists()).collect();
        if existing.is_empty() && !explicit {
            let looked: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
            note_none_found(STAGE, "Copilot CLI session folder", &looked);
        }
        for path in existing {
            let why = reader.read_path(path)?;
            empty += warn_if_empty(STAGE, path, why, reader.stopped());
        }
        if reader.stopped() {
            STOPPED_BY_A_SIGNAL.to_string()
        } else {
            String::new()
        }
    };
    let stats = reader.stats;
    let summary = |rejected| stats.summary(rejected, modified_after.is_some()) + &suffix;
    run.finish(&args.reader, summary, stats.failed, empty)
}

tonbo_core::manual_test!(Args, MANUAL);
