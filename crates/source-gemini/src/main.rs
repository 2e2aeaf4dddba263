//! gemini-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q]
//!             [--follow [--poll-interval MS] [--poll]] [--progress]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use source_gemini::files::{default_root, discover};
use source_gemini::follow::Following;
use source_gemini::read::{FileYield, Reader};
use source_gemini::STAGE;
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
            "Backfill every Gemini CLI chat:",
            "gemini-read | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Read a copied Gemini CLI home:",
            "gemini-read /mnt/backup/.gemini | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Only chats changed in the last week:",
            "gemini-read --modified-after 7d | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Follow chats as Gemini CLI writes them:",
            "gemini-read --follow | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "The record kinds of one project's chats:",
            "gemini-read ~/.gemini/tmp/myproject | jq -r '.kind // \"message\"' | sort | uniq -c",
        ),
    ],
    environment: &[
        (
            "GEMINI_CLI_HOME",
            "the folder holding .gemini (default: HOME); without PATH, $GEMINI_CLI_HOME/.gemini is read",
        ),
        ("HOME", "where ~/.gemini is"),
        ("TERM", "dumb: no --progress line"),
    ],
    signals: Signals::Stop,
    empty_exit: true,
    files: &[
        (
            "~/.gemini/tmp/<project>/chats/session-*.jsonl",
            "a chat (v0.39.0 and later): JSONL appended, messages written again by id as they grow",
        ),
        (
            "~/.gemini/tmp/<project>/chats/session-*.json",
            "a chat before v0.39.0: one JSON document rewritten whole",
        ),
        (
            "~/.gemini/tmp/<project>/chats/<parent session id>/<session id>.jsonl",
            "a subagent's chat",
        ),
    ],
};

/// Read Gemini CLI chats as tonbo-ingest source records.
///
/// Reads Gemini CLI chat files and writes each message ONCE, in its settled version:
/// `{"v":1,"source":"gemini-cli","session":"<sessionId>","record":<the message as last
/// written>,"at":"<file name>:<message id>","provenance":{"file":"<path>","line":<n>}}`. Gemini
/// CLI writes a message again (same id) as it grows; a message is settled when a message with
/// a new id or a `$rewindTo` follows it, or at the end of the file. A message written again
/// after that (a checkpoint masking a tool output; in --follow, a last message that grew) is
/// written again only if its bytes changed, with the same `at`. Besides messages:
/// `"kind":"session"` (the metadata line, or a legacy document without `messages`; `at`
/// `<file>:session`), `"kind":"set"` (a `$set` carrying more than lastUpdated, such as the
/// summary; `at` `<file>:set:<hash>`), `"kind":"rewind"` (a `$rewindTo`, written once; nothing
/// already written is taken back; `at` `<file>:rewind:<id>`) and `"kind":"other"` (a JSON object
/// of a kind Gemini CLI does not know, unmodified). A JSONL record is the line byte for byte; a
/// legacy document's message is its element, compact, with `"provenance":{"file","row":<id>}`.
/// A subagent's chat is named `<parent session id>/<file name>` in `at`.
///
/// PATH is a Gemini CLI home (`.gemini`), its `tmp/`, a project folder `tmp/<project>`, a
/// `chats/` folder or one chat file. Without PATH: `$GEMINI_CLI_HOME/.gemini` (default
/// `~/.gemini`). Where both `X.json` and `X.jsonl` exist (a migrated chat), only `X.jsonl` is
/// read; `*.jsonl.tmp-*` and `*.jsonl.unreadable-*` are not chats.
///
/// `--modified-after TIME` reads only files modified after TIME: `2026-11-01T00:00:00Z`,
/// `2026-11-01` (midnight UTC), or an age, `90m`, `12h`, `7d`, `2w`.
///
/// A torn last line (no newline, not JSON) is left for the next run and reported as incomplete;
/// a line that is not a JSON object is rejected (exit 1); a truncated JSON document (Gemini CLI
/// rewrites it whole, not atomically) is reported and counted (exit 1). A PATH that holds files
/// but gives no record is warned about and the exit status is 3 unless `--allow-empty`.
///
/// `--scan`: one line per chat (a subagent's too) with its session id, bytes and last update as
/// Gemini CLI reads it (`lastUpdated` of the last `$set` in the file's tail, else of the
/// metadata, else `startTime`, else the file's mtime; a subagent's is its parent's), and when
/// Gemini CLI deletes it: `lastUpdated` + `general.sessionRetention.maxAge` of the home's
/// `settings.json` (default 30d; none when `enabled` is false), at its next start in that
/// project.
///
/// `--follow`: after reading what exists, keep watching and write what is added until SIGINT or
/// SIGTERM, then write every held-back message, print the summary and exit 0 (1 if something
/// was rejected or unreadable). A JSONL chat is read from where it stopped; a replaced or
/// truncated one and a legacy document are read again whole, and only what changed is written.
/// A file's newest message is written once the file has been quiet for `--poll-interval` (seen
/// at the next look: a change anywhere, or the periodic rescan). `--poll-interval MS` (default
/// 1000): how often files are looked at without filesystem events, and the base of the
/// periodic rescan with them. `--poll`: no filesystem events.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    /// Gemini CLI homes, project or chats folders, or chat files, read in order; none reads
    /// $GEMINI_CLI_HOME/.gemini (GEMINI_CLI_HOME default: HOME).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    reader: ReaderArgs,
}

fn main() -> std::process::ExitCode {
    tonbo_core::manual::main(STAGE, &MANUAL, run)
}

/// The PATHs, or the default home when it exists (else a note, and nothing to read).
fn inputs(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths_or_default_dir(STAGE, paths, default_root, "Gemini CLI home")
}

/// Why a PATH gave nothing, or `None` when it gave something or everything was left out.
fn nothing_read(files: u64, passed_over: u64, y: FileYield) -> Option<String> {
    if y.records > 0 || (files == 0 && passed_over > 0) {
        return None;
    }
    Some(if files == 0 {
        "no Gemini CLI chat (chats/session-*.json, *.jsonl) in it".into()
    } else if y.lines == 0 {
        format!("its {files} chat files hold no complete line")
    } else {
        format!(
            "none of the {} lines of its {files} chat files could be read (see above)",
            y.lines
        )
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
        let (mut files, mut passed_over, mut sum) = (0, 0, FileYield::default());
        for path in discover(input) {
            if reader.stopped || reader.io.stop_set() {
                reader.stopped = true;
                break;
            }
            if reader.too_old(&path) {
                passed_over += 1;
                continue;
            }
            files += 1;
            let y = reader.read_whole(path)?;
            sum.lines += y.lines;
            sum.records += y.records;
        }
        let why = nothing_read(files, passed_over, sum);
        empty += warn_if_empty(STAGE, input, why, reader.stopped);
    }
    Ok(empty)
}

fn run(args: Args) -> Result<Exit> {
    let reads = "chat files and folders";
    let mut run = ReaderRun::start(STAGE, reads, &args.paths, &args.reader, ("files", "read"))?;
    let modified_after = args.reader.modified_after;
    let stop = run.stop.clone();
    let mut reader = Reader::new(run.io(), modified_after);
    let mut empty = 0;
    if args.reader.scan {
        let mut scan = ScanWriter::new(source_gemini::SOURCE);
        for input in inputs(&args.paths) {
            reader.scan_path(&input, &mut scan)?;
        }
        let failed = reader.stats.failed;
        return run.finish(&args.reader, |_| scan.summary(STAGE), failed, 0);
    }
    if args.reader.follow.follow {
        let roots: Vec<PathBuf> = if args.paths.is_empty() {
            default_root().into_iter().collect()
        } else {
            args.paths.clone()
        };
        note_waiting_for_missing(STAGE, &roots);
        let quiet = Duration::from_millis(args.reader.follow.poll_interval);
        let mut following = Following::new(&mut reader, roots, quiet);
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
