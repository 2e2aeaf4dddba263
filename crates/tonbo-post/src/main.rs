//! tonbo-post [FILE...] [--api URL] [--url-template T] [--state PATH] [--api-key-file FILE]
//!            [--producer-id ID] [--max-retries N] [--timeout SECS] [--dry-run] [--rejects FILE]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`). The work is the library's:
//! this reads the flags and wires [`pool`], [`dry_run`] or [`verify`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;
use tonbo_core::{run_stage, CommonArgs, Exit, Input, Manual, Rejects, Signals};
use tonbo_post::checkpoint::default_state_path;
use tonbo_post::client::StreamClient;
use tonbo_post::health::Health;
use tonbo_post::pool::{self, PostOptions};
use tonbo_post::retry::RetryPolicy;
use tonbo_post::url_template::UrlTemplate;
use tonbo_post::{auth, dry_run, verify, Run, STAGE};

/// The examples, environment and files of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Post to a local reference server:",
            "claude-read | tonbo-map | tonbo-batch | tonbo-post --api http://127.0.0.1:4437",
        ),
        (
            "Post to the hosted service, the API key read from a file:",
            "tonbo-post --api-key-file ~/.config/tonbo/api-key batches.ndjson",
        ),
        (
            "What would be sent, given the checkpoint (nothing is sent):",
            "tonbo-post --dry-run batches.ndjson | jq -c .url",
        ),
        (
            "Check that the server holds every event of the input exactly once:",
            "tonbo-post --verify batches.ndjson",
        ),
        (
            "A checkpoint of your own, and 8 sessions at once:",
            "tonbo-post --state ./post.sqlite --concurrency 8 batches.ndjson",
        ),
        (
            "Into a local Ursula cluster, through any of its nodes (make ursula-start):",
            "tonbo-post --api http://127.0.0.1:4452 --url-template '{base}/sessions/{session_id}' batches.ndjson",
        ),
        (
            "Give up after 5 minutes without an answer from the server (exit 75):",
            "tonbo-post --retry-for 300 batches.ndjson",
        ),
    ],
    environment: &[
        (
            "TONBO_API_KEY",
            "the API key, sent as a bearer token (or --api-key-file); never taken from a flag, never printed",
        ),
        (
            "XDG_STATE_HOME",
            "where the default checkpoint is: $XDG_STATE_HOME/tonbo-ingest/post.sqlite",
        ),
        ("HOME", "else ~/.local/state/tonbo-ingest/post.sqlite"),
        ("TERM", "dumb: no progress line"),
    ],
    signals: Signals::Halt,
    empty_exit: false,
    files: &[
        (
            "~/.local/state/tonbo-ingest/post.sqlite",
            "the checkpoint: per stream, its producer epoch, next sequence number and the events the server acknowledged",
        ),
        (
            "~/.local/state/tonbo-ingest/post.sqlite.inflight/",
            "the request bodies sent and not yet acknowledged, so that a restart re-sends them unchanged",
        ),
    ],
};

/// Post event batches to Durable Sessions (any Durable Streams server), exactly once.
///
/// Reads batch lines (`{"v":1,"session_id":..,"events":[..]}`) and POSTs each batch's `events`
/// array to its session's stream, exactly once: as an idempotent producer (Producer-Id, -Epoch,
/// -Seq), with a checkpoint (--state) that records every batch before it is sent and every
/// acknowledgement after, so that a re-run, a retry or a restart after a crash sends nothing
/// twice and leaves nothing out. A stream is created (PUT) before its first append. Writes nothing
/// on stdout except with `--dry-run` and `--verify`; a summary goes to stderr.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Base URL of the server, substituted for {base} in --url-template. Credentials in a URL
    /// (user:password@, a token in the query) are sent, and never printed or stored.
    // The variables' values stay out of --help: a URL can carry a password (user:pw@host).
    #[arg(
        long,
        value_name = "URL",
        env = "TONBO_API",
        hide_env_values = true,
        default_value = "https://sessions.tonbo.dev"
    )]
    api: String,

    /// Stream URL of a session; {base} and {session_id} (percent-encoded) are substituted.
    #[arg(
        long,
        value_name = "TEMPLATE",
        env = "TONBO_URL_TEMPLATE",
        hide_env_values = true,
        default_value = "{base}/v1/sessions/{session_id}/events"
    )]
    url_template: String,

    /// Read the API key from FILE (first line). Without it, TONBO_API_KEY is used, if set.
    /// The key is never taken from a flag value and never printed.
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,

    /// Checkpoint file (SQLite) [default: $XDG_STATE_HOME/tonbo-ingest/post.sqlite, else
    /// ~/.local/state/tonbo-ingest/post.sqlite].
    #[arg(long, env = "TONBO_STATE", hide_env_values = true, value_name = "PATH")]
    state: Option<PathBuf>,

    /// Producer-Id sent with every append [default: the checkpoint's own, `tonbo-post-<hex>`,
    /// made with it]. Two runs at once with the same id fence each other (HTTP 403).
    #[arg(value_name = "ID", long)]
    producer_id: Option<String>,

    /// Retries of one request after 429, 5xx or a network error before its session fails.
    #[arg(value_name = "N", long, default_value_t = 8)]
    max_retries: u32,

    /// Longest wait between retries, in seconds (a Retry-After from the server can ask for more).
    #[arg(value_name = "SECS", long, default_value_t = 30.0)]
    max_retry_delay: f64,

    /// Give up when the server has answered no request for this long, in seconds: failures that
    /// are the server's (no connection, DNS, TLS, 5xx) share this one budget across sessions.
    /// The run then stops with status 75, the checkpoint saved.
    #[arg(value_name = "SECS", long, default_value_t = 60.0)]
    retry_for: f64,

    /// Sessions posted at the same time (one worker each, over kept-alive connections).
    #[arg(value_name = "N", long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    concurrency: u64,

    /// Batches each worker may have in flight at once, over as many connections. A session's
    /// batches are numbered in input order and the server takes them only in that order, so a
    /// long session is pipelined without reordering; 1 sends one batch at a time.
    #[arg(value_name = "N", long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    window: u64,

    /// Timeout of one request, in seconds.
    #[arg(value_name = "SECS", long, default_value_t = 60.0)]
    timeout: f64,

    /// Allow sending the API key over plain http:// to a host that is not this machine.
    #[arg(long)]
    allow_insecure_http: bool,

    /// Send nothing: read each session named in the input back from the server and report, one
    /// JSON line per session on stdout, which of the input's events are missing there or stored
    /// more than once (by source_key). Exits 1 if any are.
    #[arg(long, conflicts_with = "dry_run")]
    verify: bool,

    /// Send nothing: check the input and print, as batch lines with their URL, what would be
    /// sent given the checkpoint (the server is not asked).
    #[arg(long)]
    dry_run: bool,
}

fn main() -> std::process::ExitCode {
    let args: Args = tonbo_core::manual::parse(&MANUAL);
    run_stage(STAGE, || run(args))
}

fn run(args: Args) -> Result<Exit> {
    if !(args.retry_for >= 0.0 && args.retry_for.is_finite()) {
        bail!("--retry-for must be a number of seconds, 0 or more");
    }
    let health = Health::new(Duration::from_secs_f64(args.retry_for));
    health.stop_on_signals()?;
    let urls = UrlTemplate::new(&args.url_template, &args.api)?;
    let state = match &args.state {
        Some(p) => p.clone(),
        None => default_state_path()?,
    };
    if !(args.timeout > 0.0 && args.max_retry_delay >= 0.0) {
        bail!("--timeout must be positive and --max-retry-delay not negative");
    }
    let run = Run {
        rejects: Rejects::open(STAGE, args.common.rejects.as_deref())?,
        inputs: Input::open_all(&args.common.inputs)?,
        urls,
        quiet: args.common.quiet,
    };
    if args.dry_run {
        return dry_run::run(run, &state);
    }
    let api_key = auth::api_key(args.api_key_file.as_deref())?;
    if api_key.is_some() && !args.allow_insecure_http {
        auth::refuse_clear_text(&run.urls)?;
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    if args.verify {
        let client = StreamClient::new(
            api_key,
            String::new(),
            RetryPolicy::default(),
            timeout,
            health,
        );
        return verify::run(run, client);
    }
    let opts = PostOptions {
        state,
        producer_id: args.producer_id,
        api_key,
        retry: RetryPolicy {
            max_retries: args.max_retries,
            cap: Duration::from_secs_f64(args.max_retry_delay),
            ..RetryPolicy::default()
        },
        timeout,
        concurrency: args.concurrency as usize,
        window: args.window as usize,
    };
    pool::post(run, opts, health)
}

tonbo_core::manual_test!(Args, MANUAL);
