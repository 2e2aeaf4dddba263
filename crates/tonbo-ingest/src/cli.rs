//! The front door's flags (clap derive), its manual, and the rules between its flags, with the
//! usage messages it has always had.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, ValueHint};
use tonbo_core::url::without_credentials;
use tonbo_core::{Manual, Signals};

use crate::sources::{self, Source, Takes};

pub const PROG: &str = "tonbo-ingest";

/// The examples, environment, files, signals and exit statuses of `--help` and the man page.
pub const MANUAL: Manual = Manual {
    examples: &[
        (
            "Claude Code's transcripts, from their default places:",
            "tonbo-ingest --from claude-code",
        ),
        (
            "Codex sessions from a folder, into a server of your own:",
            "tonbo-ingest --from codex-cli --path ~/.codex/sessions -- --api http://127.0.0.1:4437",
        ),
        (
            "What an OpenCode database would send, sending nothing:",
            "tonbo-ingest --from opencode --db ~/.local/share/opencode/opencode.db --dry-run",
        ),
        (
            "From cron: a source unchanged since its last good run is not read at all:",
            "tonbo-ingest --from all",
        ),
        (
            "Read everything again (a new server at the same address, a deleted checkpoint):",
            "tonbo-ingest --from claude-code --full",
        ),
        (
            "Sidecar mode, until Ctrl-C:",
            "tonbo-ingest --from all --watch",
        ),
    ],
    environment: &[
        (
            "TONBO_INGEST_BIN_DIR",
            "where the stages are looked for first; then beside tonbo-ingest, then on PATH",
        ),
        (
            "TONBO_STATE_DIR",
            "where the manifests and last-run marks are kept without --state-dir",
        ),
        (
            "XDG_STATE_HOME",
            "without either, they are kept in $XDG_STATE_HOME/tonbo-ingest, else in ~/.local/state/tonbo-ingest",
        ),
        (
            "TONBO_API_KEY",
            "the API key, which tonbo-post reads: it is never a flag (or pass -- --api-key-file FILE)",
        ),
    ],
    signals: Signals::Forward,
    empty_exit: false,
    files: &[
        (
            "STATE_DIR/manifest-SOURCE",
            "the files of SOURCE (size, times, inode) as the last plain run whose every stage exited 0 found them, its start, and its inputs, stages and tonbo-post options: the next plain run compares",
        ),
        (
            "STATE_DIR/last-run-SOURCE",
            "the start (RFC 3339 UTC, to the second) of the last run of SOURCE whose every stage exited 0, for --since-last-run",
        ),
    ],
};

/// Backfill (or mirror) coding-agent transcripts into a Durable Streams server.
///
/// Runs `READER [PATH...] | tonbo-map | tonbo-batch | tonbo-post [OPTIONS]` for one source, or
/// for each in turn: the stages are child processes joined by pipes, each prints its own summary
/// on stderr, and each stage that exits non-zero is named ("tonbo-ingest: tonbo-map exited 1").
///
/// A plain run (no --watch, --since-last-run or --full) first looks at the source's files
/// (their stat, nothing read): when none changed since its last run whose every stage exited
/// 0, with the same inputs, stages and tonbo-post options, the source is not read at all; when
/// every changed file was modified after that run's start, and none was replaced or shrank, its
/// reader gets --modified-after; otherwise everything is read.
///
/// The stages are looked up in $TONBO_INGEST_BIN_DIR, then beside tonbo-ingest, then on PATH.
/// The API key is never a flag: tonbo-post reads TONBO_API_KEY (or use -- --api-key-file FILE).
#[derive(Parser, Debug)]
#[command(
    name = PROG,
    version,
    args_override_self = true,
    args_conflicts_with_subcommands = true,
    after_help = MANUAL.help()
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The source to read, or `all` (each in turn).
    #[arg(long, value_name = "SOURCE", value_parser = sources::from_values(), allow_hyphen_values = true)]
    pub from: Option<String>,

    /// A folder or file to read (repeatable), for the sources read from files; default: the
    /// reader's own default locations.
    #[arg(long, value_name = "P", allow_hyphen_values = true, value_hint = ValueHint::AnyPath)]
    pub path: Vec<OsString>,

    /// A database or data folder to read (repeatable), for the sources read from databases.
    #[arg(long, value_name = "D", allow_hyphen_values = true, value_hint = ValueHint::AnyPath)]
    pub db: Vec<OsString>,

    /// Keep following (the readers get --follow) until SIGINT/SIGTERM, which drains the pipeline
    /// and exits 0. With --from all the readers run at once and feed one
    /// `tonbo-map --merge | tonbo-batch | tonbo-post` (one checkpoint).
    #[arg(long)]
    pub watch: bool,

    /// With --watch: the readers poll instead of waiting for filesystem events (network
    /// filesystems, container volumes where inotify does not work).
    #[arg(long)]
    pub poll: bool,

    /// Send nothing: run tonbo-post --dry-run, whose summary gives, per source, the sessions and
    /// the events (per type) that would be sent.
    #[arg(long)]
    pub dry_run: bool,

    /// Read only files modified after the start of the last run of this source whose every
    /// stage exited 0 (the reader's --modified-after); the first run reads everything. Not with
    /// --watch.
    #[arg(long)]
    pub since_last_run: bool,

    /// Read everything, whatever the manifest of the last good run says (a new server at the
    /// same address, a deleted checkpoint: what the front door cannot see). Not with
    /// --since-last-run; a --watch always reads everything.
    #[arg(long)]
    pub full: bool,

    /// Where the manifests (manifest-SOURCE) and the last-run marks (last-run-SOURCE) are kept;
    /// default $TONBO_STATE_DIR, else $XDG_STATE_HOME/tonbo-ingest, else
    /// ~/.local/state/tonbo-ingest.
    #[arg(long, value_name = "DIR", allow_hyphen_values = true, value_hint = ValueHint::DirPath)]
    pub state_dir: Option<OsString>,

    /// Read each agent's default locations under DIR instead of this user's: a copied home
    /// directory, or a container's. The readers run with HOME and the XDG folders under DIR and
    /// without the sources' own variables (CLAUDE_CONFIG_DIR, ...). Not with --path or --db.
    #[arg(long, value_name = "DIR", allow_hyphen_values = true, value_hint = ValueHint::DirPath)]
    pub root: Option<PathBuf>,

    /// Everything after `--` goes to tonbo-post (--api, --state, --concurrency, ...).
    #[arg(
        last = true,
        value_name = "TONBO-POST-OPTIONS",
        allow_hyphen_values = true
    )]
    pub post_args: Vec<OsString>,
}

/// What the front door does besides running pipelines.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Find every supported agent's sessions on this machine (or under --root) without reading
    /// them, and print a table: agent, location, sessions, size, oldest and newest session,
    /// and how many the agent itself will delete soon (Claude Code after cleanupPeriodDays,
    /// Gemini CLI after its session retention), with a warning on stderr for each: ingest
    /// them before they are gone. Exit status 3 when nothing is found.
    Scan(ScanArgs),
}

/// `tonbo-ingest scan`'s flags.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Look under DIR instead of this user's home (a copied home directory, a container's).
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub root: Option<PathBuf>,

    /// Scan only this source (default: all).
    #[arg(long, value_name = "SOURCE", value_parser = sources::from_values())]
    pub from: Option<String>,

    /// Warn about the sessions their agent deletes within DAYS days.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub within: u64,

    /// One JSON object per agent and location (NDJSON) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Pipelines, one per source.
    Run(Config),
    /// `tonbo-ingest scan`.
    Scan(ScanConfig),
}

/// `tonbo-ingest scan`, checked.
#[derive(Debug)]
pub struct ScanConfig {
    pub sources: Vec<&'static Source>,
    pub root: Option<PathBuf>,
    pub within_days: u64,
    pub json: bool,
}

/// What the command line asks for, its flags checked against each other.
#[derive(Debug)]
pub struct Config {
    /// The `--from` sources, in the order they run.
    pub sources: Vec<&'static Source>,
    /// `--from all`.
    pub all: bool,
    pub paths: Vec<OsString>,
    pub dbs: Vec<OsString>,
    pub watch: bool,
    pub poll: bool,
    pub dry_run: bool,
    pub since_last_run: bool,
    /// `--full`.
    pub full: bool,
    /// `--state-dir`, unless empty.
    pub state_dir: Option<PathBuf>,
    /// `--root`: the readers' home.
    pub root: Option<PathBuf>,
    pub post_args: Vec<OsString>,
}

impl Config {
    /// A plain run, which consults and keeps the manifests: not `--watch`, not
    /// `--since-last-run` (`--full` is a plain run that reads everything).
    pub fn plain(&self) -> bool {
        !self.watch && !self.since_last_run
    }

    /// What the reader of `source` reads: the `--path` or the `--db` values.
    pub fn inputs_of(&self, source: &Source) -> &[OsString] {
        match source.takes {
            Takes::Path => &self.paths,
            Takes::Db => &self.dbs,
        }
    }
}

/// Why the command line does not run.
#[derive(Debug)]
pub enum Usage {
    /// `--help` or `--version`: clap prints it, and the exit status is 0.
    Shown(clap::Error),
    /// A usage error, for "tonbo-ingest: MESSAGE" (exit 2).
    Error(String),
}

impl Usage {
    /// Prints what is to be printed; the exit status.
    pub fn report(&self) -> i32 {
        match self {
            Usage::Shown(e) => {
                let _ = e.print();
                0
            }
            Usage::Error(message) => {
                tonbo_core::note!("{PROG}: {message}\nTry '{PROG} --help'.");
                2
            }
        }
    }
}

/// Parses and checks the command line (`argv[0]` first).
pub fn parse<I: IntoIterator<Item = OsString>>(argv: I) -> Result<Invocation, Usage> {
    let argv: Vec<OsString> = argv.into_iter().collect();
    let mut args = Args::try_parse_from(&argv).map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Usage::Shown(e),
        _ => Usage::Error(message_of(&e, &argv)),
    })?;
    match args.command.take() {
        Some(Command::Scan(scan)) => check_scan(scan).map(Invocation::Scan),
        None => check(args).map(Invocation::Run),
    }
    .map_err(Usage::Error)
}

fn check_scan(args: ScanArgs) -> Result<ScanConfig, String> {
    let from = args.from.as_deref().unwrap_or(sources::ALL);
    let sources = sources::named(from).ok_or_else(|| format!("unknown source: {from}"))?;
    Ok(ScanConfig {
        sources,
        root: args.root.filter(|r| !r.as_os_str().is_empty()),
        within_days: args.within,
        json: args.json,
    })
}

/// clap's error in the words of the front door; what the user typed is shown without its
/// credentials (it may be a URL in the wrong place).
fn message_of(e: &clap::Error, argv: &[OsString]) -> String {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.as_str(),
        _ => "",
    };
    // clap names an option with its value's name (`--from <SOURCE>`).
    let invalid = context(ContextKind::InvalidArg);
    let option = invalid.split(' ').next().unwrap_or("");
    let value = context(ContextKind::InvalidValue);
    match e.kind() {
        ErrorKind::UnknownArgument => {
            format!(
                "unknown argument: {}",
                without_credentials(&as_typed(invalid, argv))
            )
        }
        ErrorKind::InvalidValue if value.is_empty() && argv.last().is_some_and(|a| a == option) => {
            format!("{option} needs a value")
        }
        ErrorKind::InvalidValue if option == "--from" && value.is_empty() => missing_from(),
        ErrorKind::InvalidValue if option == "--from" => format!(
            "unknown source: {} ({})",
            without_credentials(value),
            sources::choices()
        ),
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("");
            first.trim_start_matches("error: ").to_string()
        }
    }
}

/// The argument as typed that clap calls `arg` (for `--name=value` clap says `--name`).
fn as_typed(arg: &str, argv: &[OsString]) -> String {
    argv.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .filter_map(|a| a.to_str())
        .find(|a| *a == arg || a.strip_prefix(arg).is_some_and(|v| v.starts_with('=')))
        .unwrap_or(arg)
        .to_string()
}

fn missing_from() -> String {
    format!("--from is required ({})", sources::choices())
}

/// The rules between the flags, in the order the messages have always come in.
fn check(args: Args) -> Result<Config, String> {
    let from = args.from.unwrap_or_default();
    if from.is_empty() {
        return Err(missing_from());
    }
    let sources = sources::named(&from).ok_or_else(|| {
        format!(
            "unknown source: {} ({})",
            without_credentials(&from),
            sources::choices()
        )
    })?;
    let all = from == sources::ALL;
    if all && !(args.path.is_empty() && args.db.is_empty()) {
        let homes: Vec<&str> = sources::SOURCES.iter().map(|s| s.home).collect();
        return Err(format!(
            "--path and --db need one source; --from all reads the default locations ({})",
            homes.join(", ")
        ));
    }
    if !all {
        let takes = sources[0].takes;
        if takes == Takes::Db && !args.path.is_empty() {
            return Err(format!("--from {from} takes --db, not --path"));
        }
        if takes == Takes::Path && !args.db.is_empty() {
            return Err(format!(
                "--db is for --from {}; use --path",
                sources::taking(Takes::Db, " or --from ")
            ));
        }
    }
    if args.root.is_some() && !(args.path.is_empty() && args.db.is_empty()) {
        return Err("--root reads the default locations under it; not with --path or --db".into());
    }
    if args.watch && args.since_last_run {
        return Err("--since-last-run cannot be combined with --watch (a watch reads everything, then follows)".into());
    }
    if args.full && args.since_last_run {
        return Err("--full cannot be combined with --since-last-run".into());
    }
    if args.poll && !args.watch {
        return Err("--poll goes with --watch".into());
    }
    if args.watch && args.dry_run {
        return Err("--dry-run cannot be combined with --watch".into());
    }
    Ok(Config {
        sources,
        all,
        paths: args.path,
        dbs: args.db,
        watch: args.watch,
        poll: args.poll,
        dry_run: args.dry_run,
        since_last_run: args.since_last_run,
        full: args.full,
        state_dir: args.state_dir.filter(|d| !d.is_empty()).map(PathBuf::from),
        root: args.root.filter(|r| !r.as_os_str().is_empty()),
        post_args: args.post_args,
    })
}

tonbo_core::manual_test!(Args, MANUAL);
