//! cline-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q]
//!            [--follow [--poll-interval MS] [--poll]] [--progress]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use source_cline::follow::Follower;
use source_cline::roots::{default_storage_dirs, task_dirs};
use source_cline::{Reader, STAGE};
use tonbo_core::reader::{
    note_none_found, warn_if_empty, ReaderArgs, ReaderRun, STOPPED_BY_A_SIGNAL,
};
use tonbo_core::scan::ScanWriter;
use tonbo_core::{Exit, Manual, Signals};

/// The examples, environment and files of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Backfill every Cline, Roo Code and Kilo Code task of every editor:",
            "cline-read | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Read a copied home folder, or one editor's globalStorage:",
            "cline-read /mnt/backup/home | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Follow tasks as the extensions write them:",
            "cline-read --follow | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "How many records each task and variant gave:",
            "cline-read | jq -r '[.session, .kind] | @tsv' | sort | uniq -c",
        ),
    ],
    environment: &[
        (
            "VSCODE_PORTABLE",
            "a portable VS Code's data folder: its user-data/User/globalStorage is read too",
        ),
        (
            "XDG_CONFIG_HOME",
            "where the editors' user folders are on Linux (default ~/.config)",
        ),
        (
            "CLINE_DATA_DIR, CLINE_DIR",
            "Cline's own data folder (default ~/.cline/data; CLINE_DIR/data)",
        ),
        ("HOME", "where the editors' and servers' folders are"),
        ("TERM", "dumb: no --progress line"),
    ],
    signals: Signals::Stop,
    empty_exit: true,
    files: &[
        (
            "~/.config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks/ID/",
            "a Cline task (also Code - Insiders, VSCodium, Cursor, Windsurf; macOS: ~/Library/Application Support; remote: ~/.vscode-server/data/User)",
        ),
        (
            ".../globalStorage/rooveterinaryinc.roo-cline/tasks/ID/",
            "a Roo Code task",
        ),
        (".../globalStorage/kilocode.kilo-code/tasks/ID/", "a Kilo Code task"),
        ("~/.cline/data/tasks/ID/", "a Cline task kept outside the editor"),
    ],
};

/// Read Cline, Roo Code and Kilo Code tasks as tonbo-ingest source records.
///
/// Reads the task folders of the Cline family of VS Code extensions (Cline, Roo Code, Kilo
/// Code) and writes one source record per line:
/// `{"v":1,"source":"cline","kind":"<variant>/<part>","session":"<task id>","record":<element>,
///   "at":"<part>:<index>:<ts>","provenance":{"file":"<path>","row":"<index>"}}`, where
/// `<variant>` is `cline`, `roo-code`, `kilo-code` (from the extension folder the task is in,
/// else from its content) or `unknown`, and `<part>` is `task` (the task's history item, once,
/// `at` `task`), `api` (an element of `api_conversation_history.json`) or `ui` (an element of
/// `ui_messages.json`). `<ts>` is the element's `ts`, or `h` and a hash of its bytes when it has
/// none: an element written later at the same index (after a checkpoint restore) has another
/// `at`, so it is never taken for one sent before.
///
/// The newest Cline's SDK sessions are read as tasks: a folder `<id>/` holding
/// `<id>.messages.json` (its `messages` are the `api` records) and `<id>.json` (the manifest,
/// the `task` record), under `~/.cline/data/db/`; each other `<agent id>.messages.json` there
/// is a sub-agent's session, `<id>__<agent id>`; `sessions.db` is not read.
///
/// PATH is a storage folder (`.../globalStorage/<extension id>`), a `tasks` folder, a task
/// folder, one of its files, or any folder above them (a copied home folder): every task folder
/// at any depth is read (`.git`, `node_modules` and `checkpoints` are not walked). Without PATH:
/// `<user>/globalStorage/<extension id>` of every variant for the user folders of VS Code, Code -
/// Insiders, VSCodium, Cursor and Windsurf (`$XDG_CONFIG_HOME` or `~/.config`, and `~/Library/
/// Application Support`), of the remote servers (`~/.vscode-server/data/User` and the like) and
/// `$VSCODE_PORTABLE/user-data/User`; and Cline's data folder (`CLINE_DATA_DIR`, `CLINE_DIR/
/// data`, `~/.cline/data`). Folders that do not exist are passed over; when none does, a note
/// says where it looked.
///
/// `--modified-after TIME` reads only tasks with a file modified after TIME: `2026-11-01T00:00:
/// 00Z`, `2026-11-01` (midnight UTC), or an age, `90m`, `12h`, `7d`, `2w`.
///
/// Files are read element by element. A file that is empty or cut short (Cline writes it in
/// place, so a read can catch it midway) gives the elements before the cut, is noted as
/// incomplete, and the rest is left for the next run (or, following, its next change); a
/// document that is whole JSON but no list of messages, and an element that is not a JSON
/// object, are rejected (exit 1);
/// a UI message still streaming (`partial: true`) waits until it is whole. An unreadable file or
/// folder is reported and counted (exit 1). A PATH that holds files but gives no record is
/// warned about and the exit status is 3 unless `--allow-empty`.
///
/// `--scan`: one line per task folder (and SDK session folder) with its id, its bytes (its
/// transcript files and history item) and its last update (their newest modification time),
/// read from nothing but the folder listing; no expiry, since neither extension deletes old
/// tasks by itself.
///
/// `--follow`: after reading what exists, keep watching and write what is added until SIGINT or
/// SIGTERM, then flush, print the summary (with how many rewinds were seen) and exit 0. A task
/// folder is read again whenever one of its files changes and only elements never sent go out;
/// a history truncated by a checkpoint restore sends nothing again (a rewind), and what the
/// agent writes after it goes out as new. `--poll-interval MS` (default 1000), `--poll`: as for
/// the other readers.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    /// Storage folders, task folders, or folders above them, read in order; none reads every
    /// editor's globalStorage folders of the three extensions and ~/.cline/data.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    reader: ReaderArgs,
}

fn main() -> std::process::ExitCode {
    tonbo_core::manual::main(STAGE, &MANUAL, run)
}

fn run(args: Args) -> Result<Exit> {
    let reads = "task folders";
    let mut run = ReaderRun::start(STAGE, reads, &args.paths, &args.reader, ("tasks", "read"))?;
    let modified_after = args.reader.modified_after;
    let stop = run.stop.clone();
    let mut reader = Reader::new(run.io(), modified_after);
    let defaults = args.paths.is_empty();
    let inputs: Vec<PathBuf> = if defaults {
        default_storage_dirs()
    } else {
        args.paths.clone()
    };
    let existing: Vec<PathBuf> = inputs.iter().filter(|p| p.exists()).cloned().collect();
    if defaults && existing.is_empty() && !args.reader.follow.follow {
        let looked: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        note_none_found(
            STAGE,
            "Cline, Roo Code or Kilo Code storage folder",
            &looked,
        );
    }
    if args.reader.scan {
        let mut scan = ScanWriter::new(source_cline::SOURCE);
        for input in if defaults { &existing } else { &inputs } {
            reader.scan_input(input, &mut scan)?;
        }
        let failed = reader.stats.failed;
        drop(reader);
        return run.finish(&args.reader, |_| scan.summary(STAGE), failed, 0);
    }
    let mut empty = 0;
    if args.reader.follow.follow {
        let mut follower = Follower {
            reader: &mut reader,
            inputs,
        };
        tonbo_core::follow::follow(&mut follower, &args.reader.follow, STAGE, &stop)?;
    } else {
        for input in if defaults { &existing } else { &inputs } {
            empty += read_input(&mut reader, input)?;
        }
    }
    let suffix = match (args.reader.follow.follow, reader.stopped()) {
        (true, _) => format!(", {} rewinds", reader.stats.rewinds),
        (false, true) => STOPPED_BY_A_SIGNAL.to_string(),
        (false, false) => String::new(),
    };
    let stats = reader.stats.clone();
    drop(reader);
    let summary = |rejected| stats.summary(rejected, modified_after.is_some()) + &suffix;
    run.finish(&args.reader, summary, stats.failed, empty)
}

/// Reads every task folder under one input; 1 if it held files but gave nothing (warned).
fn read_input(reader: &mut Reader, input: &std::path::Path) -> Result<u64> {
    if !input.exists() {
        reader.failed(&format!("{}: no such file or folder", input.display()));
        return Ok(0);
    }
    let mut unreadable = Vec::new();
    let dirs = task_dirs(input, &mut |e| unreadable.push(e));
    for e in unreadable {
        reader.failed(&e);
    }
    let (mut records, mut elements, mut old) = (0, 0, 0);
    for dir in &dirs {
        if reader.stopped() {
            break;
        }
        let y = reader.read_task(dir, false, false)?;
        records += y.records;
        elements += y.elements;
        old += u64::from(y.old);
    }
    let why = if records > 0 || (old > 0 && old == dirs.len() as u64) {
        None
    } else if dirs.is_empty() {
        Some(format!(
            "no task folder ({} or {} in a folder) in it",
            source_cline::roots::API_FILE,
            source_cline::roots::UI_FILE
        ))
    } else if elements == 0 {
        Some(format!("its {} task folders hold no message", dirs.len()))
    } else {
        Some("no record".to_string())
    };
    Ok(warn_if_empty(STAGE, input, why, reader.stopped()))
}

tonbo_core::manual_test!(Args, MANUAL);
