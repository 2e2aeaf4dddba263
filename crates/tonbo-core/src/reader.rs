//! What the three readers (`claude-read`, `codex-read`, `opencode-read`) share around their
//! source's reading: the flags besides PATH ([`ReaderArgs`]), and a run from its first record to
//! its summary ([`ReaderRun`]): stdout, the rejects file, the progress line, the stop flag, the
//! warning for a PATH that gave nothing ([`warn_if_empty`]), and the exit status.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use crate::follow::{stop_on_signals, FollowArgs};
use crate::progress::{Counters, Progress};
use crate::time::parse_modified_after;
use crate::{AllowEmpty, Exit, Output, Rejects};

/// The flags every reader takes besides its PATHs (whose help is each reader's own). A reader
/// whose inputs are not files and lines rewords their help with `#[command(mut_args(..))]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReaderArgs {
    /// Read only files modified after TIME: 2026-11-01T00:00:00Z, 2026-11-01 (UTC), or an age
    /// such as 90m, 12h, 7d, 2w.
    #[arg(long, value_name = "TIME", value_parser = parse_modified_after)]
    pub modified_after: Option<SystemTime>,

    /// Also write every rejected input line, with its reason, to FILE (NDJSON).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,

    /// Do not print the summary line on stderr (errors and warnings are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Show files scanned, records written and bytes read on stderr while reading, when it is
    /// a terminal (ignored otherwise).
    #[arg(long)]
    pub progress: bool,

    /// List the sessions PATH (or the default locations) holds, one JSON object per line
    /// (source, session, location, bytes, updated, and expires where the agent deletes old
    /// sessions), without reading them: what `tonbo-ingest scan` tabulates.
    #[arg(long, conflicts_with_all = ["follow", "modified_after", "rejects"])]
    pub scan: bool,

    #[command(flatten)]
    pub follow: FollowArgs,

    #[command(flatten)]
    pub allow_empty: AllowEmpty,
}

/// One reader run: where its records and rejects go, its progress line and its stop flag. The
/// reader borrows them while it reads ([`ReaderRun::io`]); [`ReaderRun::finish`] ends the run.
pub struct ReaderRun {
    out: Output,
    rejects: Rejects,
    /// Set by SIGINT/SIGTERM: the reader stops at the next record boundary.
    pub stop: Arc<AtomicBool>,
    /// The progress line's counters, for the reader to update; `None` when no line is drawn.
    counters: Option<Arc<Counters>>,
    /// Erased when dropped, so also before an error is printed.
    progress: Progress,
}

impl ReaderRun {
    /// Refuses stdin (`-`) among `paths` (the reader `reads` what it names instead), then sets
    /// up, before anything is written, the stop flag (from here a signal ends the run at a
    /// record boundary), stdout, the rejects file, and the progress line, which counts what is
    /// `scanned` and says its bytes are `bytes_are` ([`crate::progress::reader`]).
    pub fn start(
        stage: &'static str,
        reads: &str,
        paths: &[PathBuf],
        args: &ReaderArgs,
        (scanned, bytes_are): (&'static str, &'static str),
    ) -> Result<ReaderRun> {
        if paths.iter().any(|p| p.as_os_str() == "-") {
            bail!("reads {reads}, not stdin (`-`)");
        }
        let stop = stop_on_signals().context("cannot handle SIGINT/SIGTERM")?;
        let out = Output::stdout();
        let rejects = Rejects::open(stage, args.rejects.as_deref())?;
        let progress = crate::progress::reader(stage, scanned, bytes_are, args.progress);
        Ok(ReaderRun {
            out,
            rejects,
            stop,
            counters: progress.active().then(|| progress.counters().clone()),
            progress,
        })
    }

    /// What the reader writes to and heeds while it reads, lent to it.
    pub fn io(&mut self) -> ReaderIo<'_> {
        ReaderIo {
            out: &mut self.out,
            rejects: &mut self.rejects,
            stop: Some(self.stop.clone()),
            progress: self.counters.clone(),
        }
    }

    /// Ends the run: erases the progress line, flushes stdout, closes the rejects file, prints
    /// `summary(rejected)` unless `--quiet`, and tells the exit status from the rejected lines,
    /// the reader's other `failures`, and the `empty` PATHs ([`warn_if_empty`]).
    pub fn finish(
        mut self,
        args: &ReaderArgs,
        summary: impl FnOnce(u64) -> String,
        failures: u64,
        empty: u64,
    ) -> Result<Exit> {
        self.progress.finish();
        self.out.flush()?;
        let rejected = self.rejects.finish()?;
        if !args.quiet {
            crate::note!("{}", summary(rejected));
        }
        Ok(Exit::of(
            rejected + failures,
            empty,
            args.allow_empty.allow_empty,
        ))
    }
}

/// What a reader writes to and heeds while it reads, lent by its [`ReaderRun`].
pub struct ReaderIo<'a> {
    /// Where its records go.
    pub out: &'a mut Output,
    /// Where its rejected input goes.
    pub rejects: &'a mut Rejects,
    /// Set by SIGINT/SIGTERM: the reader stops at the next record boundary; taken away while a
    /// read must run to its end (a follower's last look).
    pub stop: Option<Arc<AtomicBool>>,
    /// `--progress`: the counters its line shows; `None` when no line is drawn.
    pub progress: Option<Arc<Counters>>,
}

impl ReaderIo<'_> {
    /// Whether a signal has set the stop flag.
    pub fn stop_set(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

/// The end of a reader's summary line for what `--modified-after` left out: `, skipped N <what>
/// after --modified-after`, `what` being `files not modified` or `sessions not updated`.
pub fn left_out_by_modified_after(skipped: u64, what: &str) -> String {
    format!(", skipped {skipped} {what} after --modified-after")
}

/// Warns that `input` gave nothing and `why` (the reader's `None` when it gave something),
/// unless the run was `stopped` or `input` holds nothing ([`crate::empty`]); 1 if it warned,
/// 0 if not, to count the empty inputs of a run.
pub fn warn_if_empty(stage: &str, input: &Path, why: Option<String>, stopped: bool) -> u64 {
    match why {
        Some(why) if !stopped && crate::empty::holds_content(input) => {
            crate::empty::warn(stage, &input.display().to_string(), &why);
            1
        }
        _ => 0,
    }
}

/// The end of a reader's summary line when SIGINT or SIGTERM stopped a plain run early.
pub const STOPPED_BY_A_SIGNAL: &str = ", stopped by a signal before the end";

/// The PATHs, or else the reader's `default` folder when it is one; when it is not, a note that
/// no `what` was found there ([`note_none_found`]) and nothing to read.
pub fn paths_or_default_dir(
    stage: &str,
    paths: &[PathBuf],
    default: impl FnOnce() -> Option<PathBuf>,
    what: &str,
) -> Vec<PathBuf> {
    if !paths.is_empty() {
        return paths.to_vec();
    }
    match default() {
        Some(root) if root.is_dir() => vec![root],
        root => {
            let looked: Vec<String> = root.iter().map(|r| r.display().to_string()).collect();
            note_none_found(stage, what, &looked);
            Vec::new()
        }
    }
}

/// Says that a PATH cannot be read because it does not exist (the caller counts it as failed).
pub fn note_no_such_input(stage: &str, input: &Path) {
    crate::note!(
        "{stage}: cannot read {}: no such file or folder",
        input.display()
    );
}

/// `--follow`'s note for the first of `roots` that does not exist yet: it waits for it.
pub fn note_waiting_for_missing(stage: &str, roots: &[PathBuf]) {
    if let Some(missing) = roots.iter().find(|root| !root.exists()) {
        crate::note!(
            "{stage}: note: {} does not exist yet; waiting for it",
            missing.display()
        );
    }
}

/// Says that none of a reader's default places holds `what` (`Claude Code projects folder`),
/// and where it looked ([`looked_in`]). Not an error: there is just nothing to read.
pub fn note_none_found(stage: &str, what: &str, looked: &[String]) {
    let looked = looked_in(looked);
    crate::note!("{stage}: note: no {what} found (looked in: {looked}); nothing to read");
}

/// The places a reader looked in, for a note: `a, b`, or that HOME is not set when there were
/// none to look in.
pub fn looked_in(places: &[String]) -> String {
    if places.is_empty() {
        "nowhere, HOME is not set".to_string()
    } else {
        places.join(", ")
    }
}
