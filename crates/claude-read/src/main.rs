//! claude-read [PATH...] [--modified-after TIME] [--rejects FILE] [-q]
//!
//! Reads Claude Code transcripts and writes one source record per transcript line:
//! `{"v":1,"source":"claude-code","session":"<id>","record":<the line, byte for byte>,
//!   "provenance":{"file":"<path>","line":<n>}}`,
//! and for a subagent's `agent-<id>.meta.json` one record with `"kind":"subagent-meta"` and
//! `"agent_id"` just before that agent's lines.
//!
//! PATH is a projects folder (or any folder of project folders), a Claude config dir (its
//! `projects` is read), a project folder, a session's companion folder, or one `.jsonl` file.
//! Without PATH: `<dir>/projects` for each dir of the comma-separated `CLAUDE_CONFIG_DIR`, else
//! `~/.claude/projects` and `~/.config/claude/projects`, those that exist.
//!
//! `--modified-after TIME` reads only files modified after TIME: `2026-11-01T00:00:00Z`,
//! `2026-11-01` (midnight UTC), or an age, `90m`, `12h`, `7d`, `2w`.
//!
//! A torn last line (no newline, not JSON) is left for the next run and reported as incomplete;
//! a line that is not a JSON object is rejected (exit 1); an unreadable file or folder is
//! reported and counted (exit 1); the rest is always read.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{bail, Result};
use clap::Parser;
use claude_read::{existing_default_roots, parse_modified_after, Reader, STAGE};
use tonbo_core::{run_stage, Exit, Output, Rejects};

/// Read Claude Code transcripts as tonbo-ingest source records.
#[derive(Parser)]
#[command(name = STAGE, version, about)]
struct Args {
    /// Projects folders, project folders or `.jsonl` files, read in order; none reads
    /// CLAUDE_CONFIG_DIR's, or ~/.claude/projects and ~/.config/claude/projects.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Read only files modified after TIME: 2026-11-01T00:00:00Z, 2026-11-01 (UTC), or an age
    /// such as 90m, 12h, 7d, 2w.
    #[arg(long, value_name = "TIME", value_parser = parse_modified_after)]
    modified_after: Option<SystemTime>,

    /// Also write every rejected input line, with its reason, to FILE (NDJSON).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,

    /// Do not print the summary line on stderr (errors and warnings are still printed).
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    run_stage(STAGE, || run(args))
}

fn run(args: Args) -> Result<Exit> {
    if args.paths.iter().any(|p| p.as_os_str() == "-") {
        bail!("reads transcript files and folders, not stdin (`-`)");
    }
    let roots = if args.paths.is_empty() {
        existing_default_roots()
    } else {
        args.paths
    };
    let mut out = Output::stdout();
    let mut rejects = Rejects::open(STAGE, args.rejects.as_deref())?;
    let mut reader = Reader::new(&mut out, &mut rejects, args.modified_after);
    for root in &roots {
        reader.read_path(root)?;
    }
    let stats = reader.stats;
    out.flush()?;
    let rejected = rejects.finish()?;
    if !args.quiet {
        eprintln!("{}", stats.summary(rejected, args.modified_after.is_some()));
    }
    Ok(Exit::from_failures(rejected + stats.unreadable))
}
