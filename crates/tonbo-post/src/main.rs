//! tonbo-post [FILE...] [--api URL] [--url-template T] [--state PATH] [--api-key-file FILE]
//!            [--producer-id ID] [--max-retries N] [--timeout SECS] [--dry-run] [--rejects FILE]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;
use serde_json::value::RawValue;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use tonbo_core::contract::{check_session_id, check_version};
use tonbo_core::progress::{self, Counters, Progress};
use tonbo_core::url::without_credentials;
use tonbo_core::{
    run_stage, BatchLine, CommonArgs, EventHead, Exit, Input, Manual, Output, Rejects, Signals,
};
use tonbo_post::checkpoint::{default_state_path, Checkpoint, KeyState};
use tonbo_post::client::StreamClient;
use tonbo_post::health::{Halt, Halted, Health};

use tonbo_post::poster::{key_events, Creation, Creators, Poster, Rejected, Stats, UrlTemplate};
use tonbo_post::retry::RetryPolicy;

const STAGE: &str = "tonbo-post";

/// Batches queued per worker. Input holds each session's batches together, so a session's worker
/// may be busy while the others could take the next sessions; a queue this deep lets the reader
/// run ahead that far (at most this many request bodies of 1 MiB per worker in memory).
const QUEUE_PER_WORKER: usize = 12;

/// How long a worker waits for its next batch before settling the batches it has in flight.
const SETTLE_WHEN_IDLE: Duration = Duration::from_millis(200);

/// Slots of the progress counters (see [`progress_line`]).
const P_SESSIONS: usize = 0;
const P_SENT: usize = 1;
const P_PRESENT: usize = 2;
const P_BYTES: usize = 3;
const P_RETRIES: usize = 4;
const P_FAILED: usize = 5;

/// The live progress line: what the summary line will say, so far, with rates. Short labels,
/// the elapsed time first, so that on a narrow terminal (where the line is cut) the end goes.
fn progress_line(c: &[u64; progress::SLOTS], elapsed: Duration) -> String {
    let mut line = format!(
        "{STAGE}: {}, {} sessions, {} events sent, {} present, {}, {:.1} MB/s, {} events/s, {} retries",
        progress::elapsed(elapsed),
        progress::count(c[P_SESSIONS]),
        progress::count(c[P_SENT]),
        progress::count(c[P_PRESENT]),
        progress::bytes(c[P_BYTES]),
        progress::rate(c[P_BYTES], elapsed) / 1e6,
        progress::count(progress::rate(c[P_SENT], elapsed) as u64),
        progress::count(c[P_RETRIES]),
    );
    if c[P_FAILED] > 0 {
        line += &format!(", {} failed", progress::count(c[P_FAILED]));
    }
    line
}

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
    let urls = UrlTemplate::new(&args.url_template, &args.api).map_err(anyhow::Error::msg)?;
    let state_path = match &args.state {
        Some(p) => p.clone(),
        None => default_state_path()?,
    };
    if !(args.timeout > 0.0 && args.max_retry_delay >= 0.0) {
        bail!("--timeout must be positive and --max-retry-delay not negative");
    }
    let rejects = Rejects::open(STAGE, args.common.rejects.as_deref())?;
    let inputs = Input::open_all(&args.common.inputs)?;
    if args.dry_run {
        return dry_run(&args, inputs, urls, &state_path, rejects);
    }
    let api_key = api_key(args.api_key_file.as_deref())?;
    if api_key.is_some() && !args.allow_insecure_http {
        let sample = urls.url("x");
        if let Some(host) = insecure_host(&sample) {
            bail!(
                "refusing to send the API key in clear text over http:// to {host}; use https, or --allow-insecure-http if this network is trusted"
            );
        }
    }
    if args.verify {
        let client = StreamClient::new(
            api_key,
            String::new(),
            RetryPolicy::default(),
            Duration::from_secs_f64(args.timeout),
            health.clone(),
        );
        watch_for_a_stuck_stop(health.clone());
        let verified = verify(&args, inputs, urls, client, rejects);
        // A stop ends the reading back (each session left is reported as not read); the exit
        // status says why.
        let halt = health.halted().or(health.signal().map(Halt::Signal));
        return match halt {
            Some(Halt::Signal(sig)) => {
                tonbo_core::note!("{STAGE}: --verify stopped by {}", signal_name(sig));
                Ok(Exit::Signalled(sig))
            }
            Some(Halt::ServerDown) => {
                tonbo_core::note!(
                    "{STAGE}: --verify stopped: the server has answered nothing for {:.0}s (last failure: {})",
                    health.silent_for().as_secs_f64(),
                    health.last_failure()
                );
                Ok(Exit::Unavailable)
            }
            None => verified,
        };
    }
    let retry = RetryPolicy {
        max_retries: args.max_retries,
        cap: Duration::from_secs_f64(args.max_retry_delay),
        ..RetryPolicy::default()
    };
    let cp = Checkpoint::open(&state_path)?;
    let producer_id = match &args.producer_id {
        Some(id) => id.clone(),
        None => cp.producer_id()?,
    };
    let mut client = StreamClient::new(
        api_key,
        producer_id,
        retry,
        Duration::from_secs_f64(args.timeout),
        health.clone(),
    );
    watch_for_a_stuck_stop(health.clone());
    client.check_before_resending = true;
    let rejects = Arc::new(Mutex::new(rejects));
    // Dropped on every way out of this function, which erases the line before the summary or
    // the error is printed.
    let progress = Progress::start(!args.common.quiet, progress_line);
    let workers = args.concurrency.max(1) as usize;
    // Sessions are spread over the workers by a hash of their id, so all batches of a session
    // go, in input order, to the same worker; the bounded queues hold the reader back when the
    // workers are busy, so memory stays flat whatever the input size.
    let mut queues = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE_PER_WORKER);
        let poster = Poster::new(
            cp.another()?,
            client.clone(),
            urls.clone(),
            args.window as usize,
        );
        let rejects = rejects.clone();
        let counters = progress.active().then(|| progress.counters().clone());
        queues.push(tx);
        handles.push(std::thread::spawn(move || {
            work(poster, rx, rejects, counters)
        }));
    }
    // Streams are created ahead of their workers, as their sessions are read.
    let creators = Creators::new(workers, &cp, &client)?;
    let mut last_session = vec![String::new(); workers];
    let mut read_error = None;
    let mut input_left = false;
    'inputs: for input in inputs {
        let mut lines = input.lines();
        let name: Arc<str> = lines.name.clone().into();
        loop {
            if health.halted().is_some() {
                input_left = true;
                break 'inputs;
            }
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(anyhow::Error::from(e));
                    break 'inputs;
                }
            };
            // Not even a session id: the full parse in the worker names the reason.
            let session = session_of(line.bytes).unwrap_or_default();
            let worker =
                (tonbo_core::contract::stable_hash(session.as_bytes()) % workers as u64) as usize;
            // A session's batches arrive together: a session new to its worker is (usually) one
            // not seen before in this run.
            let new = *last_session[worker] != *session && check_session_id(&session).is_ok();
            let created = new.then(|| {
                last_session[worker] = session.to_string();
                creators.create(urls.url(&session))
            });
            let job = Job {
                input: name.clone(),
                number: line.number,
                line: line.bytes.to_vec(),
                created,
            };
            if queues[worker].send(job).is_err() {
                break 'inputs; // that worker stopped on an error, reported below
            }
        }
    }
    drop(queues);
    let mut total = Stats::default();
    let mut retries = 0;
    let mut first_error = read_error;
    for h in handles {
        match h.join() {
            Ok(Ok((s, r))) => {
                total.add(&s);
                retries += r;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert(anyhow::anyhow!("a worker thread panicked"));
            }
        }
    }
    progress.finish();
    let halt = health.halted();
    let stopping = halt.is_some() || health.signal().is_some();
    match first_error {
        // A stop makes requests fail with `Halted`; that is reported below, once.
        Some(e) if stopping && e.chain().any(|c| c.is::<Halted>()) => {}
        Some(e) => return Err(e),
        None => {}
    }
    drop(cp);
    let rejects = Arc::try_unwrap(rejects)
        .map_err(|_| anyhow::anyhow!("rejects still shared"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("rejects poisoned"))?;
    let rejected = rejects.finish()?;
    let s = &total;
    if !args.common.quiet {
        let mut extra = String::new();
        if s.events_recovered > 0 {
            extra += &format!(", {} from an interrupted run settled", s.events_recovered);
        }
        if retries > 0 {
            extra += &format!(", {retries} retries");
        }
        tonbo_core::note!(
            "{STAGE}: {} sessions, {} events sent in {} batches, {} already present, {} failed ({} sessions), {} rejected{extra}",
            s.sessions,
            s.events_sent,
            s.batches_sent,
            s.events_present,
            s.events_failed,
            s.sessions_failed,
            rejected
        );
    }
    if !s.overfull.is_empty() {
        // Not this run's doing (it never writes a position twice), but worth an alarm: the
        // server holds an event twice, or events that no input of tonbo-post made.
        let mut names: Vec<String> = s
            .overfull
            .iter()
            .take(10)
            .map(|o| {
                format!(
                    "{} ({} events, {} distinct keys)",
                    o.session_id, o.events, o.keys
                )
            })
            .collect();
        if s.overfull.len() > 10 {
            names.push(format!("and {} more", s.overfull.len() - 10));
        }
        tonbo_core::note!(
            "{STAGE}: {} sessions on the server hold more events than distinct source_keys (an event stored twice, or events without a key): {}; `{STAGE} --verify` on the same input lists them",
            s.overfull.len(),
            names.join(", ")
        );
    }
    let overfull = s.overfull.len() as u64;
    // A signal whose grace let the whole input go out (a sidecar's pipeline drained) is a
    // normal end; one that left something unsent is not.
    let signal = health
        .signal()
        .filter(|_| input_left || s.events_failed > 0);
    match halt.or(signal.map(Halt::Signal)) {
        Some(Halt::ServerDown) => {
            tonbo_core::note!(
                "{STAGE}: stopped: the server has answered nothing for {:.0}s (last failure: {}); the rest of the input was not sent; the checkpoint is saved, run again later to go on (--retry-for {:.0} sets how long to keep trying)",
                health.silent_for().as_secs_f64(),
                health.last_failure(),
                health.retry_for().as_secs_f64(),
            );
            Ok(Exit::Unavailable)
        }
        Some(Halt::Signal(sig)) => {
            tonbo_core::note!(
                "{STAGE}: stopped by {} before the end of its input; the checkpoint is saved, run again to go on",
                signal_name(sig)
            );
            Ok(Exit::Signalled(sig))
        }
        None => Ok(Exit::from_failures(rejected + s.sessions_failed + overfull)),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// After a signal, what is already in the pipe may still go out for this long (nothing is
/// retried); then nothing more is sent.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Requests still in flight then get this long; then the process exits as it is (the checkpoint
/// is consistent at every moment: a batch is journaled before it is sent).
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(3);

fn watch_for_a_stuck_stop(health: Arc<Health>) {
    std::thread::spawn(move || loop {
        if let Some(sig) = health.signal() {
            std::thread::sleep(STOP_GRACE);
            health.end_grace();
            std::thread::sleep(IN_FLIGHT_GRACE);
            tonbo_core::note!(
                "{STAGE}: stopped by {} with requests still in flight after {}s; they are journaled and settled by the next run",
                signal_name(sig),
                (STOP_GRACE + IN_FLIGHT_GRACE).as_secs()
            );
            std::process::exit(128 + sig);
        }
        std::thread::sleep(Duration::from_millis(50));
    });
}

/// Just the session id of a batch line, to choose its worker, read without parsing the whole
/// line (the worker does that): tonbo-batch writes `{"v":1,"session_id":"..",..`, so the id is
/// found at the front; any other layout falls back to a full parse.
fn session_of(line: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    const FRONT: &[u8] = br#"{"v":1,"session_id":"#;
    if let Some(rest) = line.strip_prefix(FRONT) {
        let mut de =
            serde_json::Deserializer::from_slice(rest).into_iter::<std::borrow::Cow<str>>();
        if let Some(Ok(id)) = de.next() {
            return Some(id);
        }
    }
    #[derive(serde::Deserialize)]
    struct SessionOf<'a> {
        #[serde(borrow)]
        session_id: std::borrow::Cow<'a, str>,
    }
    serde_json::from_slice::<SessionOf>(line)
        .ok()
        .map(|s| s.session_id)
}

/// One batch line, handed to the worker that owns its session.
struct Job {
    input: Arc<str>,
    number: u64,
    line: Vec<u8>,
    /// The creation of the session's stream, started as the reader met the session.
    created: Option<Receiver<Creation>>,
}

/// A worker: posts the batches of its sessions, in order.
fn work(
    mut poster: Poster,
    rx: Receiver<Job>,
    rejects: Arc<Mutex<Rejects>>,
    counters: Option<Arc<Counters>>,
) -> Result<(Stats, u64)> {
    // What this worker has added to the shared progress counters so far: it adds only the
    // difference, a few relaxed atomic adds per batch.
    let mut published = (Stats::default(), 0u64);
    let publish = |poster: &Poster, published: &mut (Stats, u64)| {
        let Some(c) = &counters else { return };
        let (s, last) = (&poster.stats, &published.0);
        c.add(P_SESSIONS, s.sessions.saturating_sub(last.sessions));
        c.add(P_SENT, s.events_sent.saturating_sub(last.events_sent));
        c.add(
            P_PRESENT,
            s.events_present.saturating_sub(last.events_present),
        );
        c.add(P_BYTES, s.bytes_sent.saturating_sub(last.bytes_sent));
        c.add(P_FAILED, s.events_failed.saturating_sub(last.events_failed));
        c.add(P_RETRIES, poster.retries().saturating_sub(published.1));
        *published = (s.clone(), poster.retries());
    };
    let reject = |input: &str, number: u64, reason: &str, raw: &[u8]| -> Result<()> {
        rejects
            .lock()
            .map_err(|_| anyhow::anyhow!("rejects poisoned"))?
            .reject(input, number, reason, raw)
    };
    let report = |rejected: Vec<Rejected>| -> Result<()> {
        for r in rejected {
            reject(&r.input, r.line, &r.reason, &r.raw)?;
        }
        Ok(())
    };
    loop {
        // Input that goes quiet (a followed session) leaves batches answered but not yet
        // acknowledged; settle them after a short wait, so the checkpoint keeps up.
        let job = match rx.recv_timeout(SETTLE_WHEN_IDLE) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                poster.settle_in_flight()?;
                publish(&poster, &mut published);
                report(poster.take_rejects())?;
                match rx.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let batch = match parse_batch(&job.line) {
            Ok(b) => b,
            Err(reason) => {
                reject(&job.input, job.number, &reason, &job.line)?;
                continue;
            }
        };
        let (keyed, unkeyed) = key_events(&batch.events);
        for r in unkeyed {
            let reason = format!("event {} of the batch: {}", r.index, r.reason);
            reject(
                &job.input,
                job.number,
                &reason,
                batch.events[r.index].get().as_bytes(),
            )?;
        }
        poster.post_batch(
            &batch.session_id,
            keyed,
            &job.input,
            job.number,
            job.created,
        )?;
        publish(&poster, &mut published);
        report(poster.take_rejects())?;
    }
    let (stats, retries, rejected) = poster.finish()?;
    report(rejected)?;
    Ok((stats, retries))
}

/// The host of a plain-http URL that is not loopback (where a key would travel in clear text).
fn insecure_host(url: &str) -> Option<String> {
    // The host is what is left of the authority once the userinfo is gone.
    let url = without_credentials(url);
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("").to_string()
    } else {
        authority.split(':').next().unwrap_or("").to_string()
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then_some(host)
}

fn parse_batch(bytes: &[u8]) -> Result<BatchLine<'_>, String> {
    let b: BatchLine =
        serde_json::from_slice(bytes).map_err(|e| format!("not a batch line: {e}"))?;
    check_version(b.v)?;
    check_session_id(&b.session_id)?;
    if b.events.is_empty() {
        return Err("batch has no events".into());
    }
    Ok(b)
}

/// The API key from `--api-key-file`, else `TONBO_API_KEY`. Never from argv, never printed.
fn api_key(file: Option<&Path>) -> Result<Option<String>> {
    let key = match file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read --api-key-file {}", p.display()))?;
            text.lines().next().unwrap_or("").trim().to_string()
        }
        None => std::env::var("TONBO_API_KEY")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    if key.chars().any(|c| c.is_control()) {
        bail!("the API key holds a control character");
    }
    Ok(Some(key).filter(|k| !k.is_empty()))
}

#[derive(Serialize)]
struct WouldSend<'a> {
    v: u64,
    session_id: &'a str,
    url: &'a str,
    events: Vec<&'a RawValue>,
}

fn dry_run(
    args: &Args,
    inputs: Vec<Input>,
    urls: UrlTemplate,
    state_path: &Path,
    mut rejects: Rejects,
) -> Result<Exit> {
    let cp = Checkpoint::open_read_only(state_path)?;
    let mut out = Output::stdout();
    let (mut would, mut present, mut batches) = (0u64, 0u64, 0u64);
    // What a person deciding whether to send wants to know: how many sessions, and what kind
    // of events. Session ids are kept once each (a backfill has thousands, not millions).
    let mut sessions = std::collections::HashSet::new();
    let mut types: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for input in inputs {
        let mut lines = input.lines();
        let name = lines.name.clone();
        while let Some(line) = lines.next_line()? {
            let batch = match parse_batch(line.bytes) {
                Ok(b) => b,
                Err(reason) => {
                    rejects.reject(&name, line.number, &reason, line.bytes)?;
                    continue;
                }
            };
            let url = urls.url(&batch.session_id);
            let stream = match &cp {
                Some(cp) => cp.stream(&url)?,
                None => None,
            };
            let mut events = Vec::new();
            for (i, ev) in batch.events.iter().enumerate() {
                let head = match EventHead::parse(ev) {
                    Ok(h) => h,
                    Err(r) => {
                        let reason = format!("event {i} of the batch: {r}");
                        rejects.reject(&name, line.number, &reason, ev.get().as_bytes())?;
                        continue;
                    }
                };
                let known = match (&cp, &stream) {
                    (Some(cp), Some(st)) => {
                        cp.key_state(st.id, &head.metadata.source_key)? != KeyState::New
                    }
                    _ => false,
                };
                if known {
                    present += 1;
                } else {
                    *types.entry(head.kind.into_owned()).or_default() += 1;
                    events.push(*ev);
                }
            }
            if !events.is_empty() {
                would += events.len() as u64;
                batches += 1;
                if !sessions.contains(batch.session_id.as_ref()) {
                    sessions.insert(batch.session_id.to_string());
                }
                out.json(&WouldSend {
                    v: tonbo_core::WIRE_VERSION,
                    session_id: &batch.session_id,
                    url: &without_credentials(&url),
                    events,
                })?;
            }
        }
    }
    out.flush()?;
    let rejected = rejects.finish()?;
    if !args.common.quiet {
        tonbo_core::note!(
            "{STAGE}: dry run: would send {would} events to {} sessions in {batches} batches, {present} already present per the checkpoint, {rejected} rejected{}",
            sessions.len(),
            by_type(types)
        );
    }
    Ok(Exit::from_failures(rejected))
}

/// `; by type: agent.message 120, user.message 14` (most first), or nothing when there are none.
fn by_type(types: std::collections::HashMap<String, u64>) -> String {
    let mut types: Vec<(String, u64)> = types.into_iter().collect();
    types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let parts: Vec<String> = types.iter().map(|(t, n)| format!("{t} {n}")).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("; by type: {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_and_examples_agree() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
        let drifted = super::MANUAL.check(&super::Args::command());
        assert!(drifted.is_empty(), "{drifted:#?}");
    }

    use super::insecure_host;

    #[test]
    fn types_most_first_then_by_name() {
        let t = [
            ("user.message", 2),
            ("agent.message", 5),
            ("agent.tool_use", 2),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into_iter()
        .collect();
        assert_eq!(
            super::by_type(t),
            "; by type: agent.message 5, agent.tool_use 2, user.message 2"
        );
        assert_eq!(super::by_type(Default::default()), "");
    }

    #[test]
    fn only_plain_http_to_other_hosts_is_insecure() {
        assert_eq!(insecure_host("https://sessions.tonbo.dev/v1/x"), None);
        assert_eq!(insecure_host("http://127.0.0.1:4437/v1/x"), None);
        assert_eq!(insecure_host("http://127.9.9.9/v1/x"), None);
        assert_eq!(insecure_host("http://localhost:8080/x"), None);
        assert_eq!(insecure_host("http://[::1]:8080/x"), None);
        assert_eq!(
            insecure_host("http://10.0.0.5:4437/x").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            insecure_host("http://example.com/x").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            insecure_host("http://u:p@example.com:80/x").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            insecure_host("http://u:p/w@example.com/x").as_deref(),
            Some("example.com")
        );
    }
}

#[derive(Serialize)]
struct VerifyReport<'a> {
    session_id: &'a str,
    url: &'a str,
    expected: usize,
    on_server: u64,
    missing_count: usize,
    missing: Vec<&'a str>,
    duplicated_count: usize,
    duplicated: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `--verify`: what the server holds against what the batches say it should.
fn verify(
    args: &Args,
    inputs: Vec<Input>,
    urls: UrlTemplate,
    mut client: StreamClient,
    mut rejects: Rejects,
) -> Result<Exit> {
    // Keys by session, in order of first appearance. Memory grows with the number of keys (one
    // string each), which a check over a whole backfill has to hold somewhere.
    let mut order: Vec<String> = Vec::new();
    let mut expected: std::collections::HashMap<String, Vec<String>> = Default::default();
    for input in inputs {
        let mut lines = input.lines();
        let name = lines.name.clone();
        while let Some(line) = lines.next_line()? {
            let batch = match parse_batch(line.bytes) {
                Ok(b) => b,
                Err(reason) => {
                    rejects.reject(&name, line.number, &reason, line.bytes)?;
                    continue;
                }
            };
            let (keyed, unkeyed) = key_events(&batch.events);
            for r in unkeyed {
                let reason = format!("event {} of the batch: {}", r.index, r.reason);
                rejects.reject(
                    &name,
                    line.number,
                    &reason,
                    batch.events[r.index].get().as_bytes(),
                )?;
            }
            let keys = expected
                .entry(batch.session_id.to_string())
                .or_insert_with(|| {
                    order.push(batch.session_id.to_string());
                    Vec::new()
                });
            keys.extend(keyed.into_iter().map(|k| k.key));
        }
    }
    let mut out = Output::stdout();
    let (mut bad, mut sessions) = (0u64, 0u64);
    for session in &order {
        sessions += 1;
        let url = urls.url(session);
        let keys = &expected[session];
        let mut held: std::collections::HashMap<String, u32> = Default::default();
        let read = client.read_keys(&url, &mut |k| *held.entry(k.to_string()).or_insert(0) += 1);
        let (on_server, error) = match read {
            Ok(Some(n)) => (n, None),
            Ok(None) => (0, Some("the stream does not exist".to_string())),
            Err(e) => (0, Some(format!("{e:#}"))),
        };
        let wanted: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let missing: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|k| !held.contains_key(*k))
            .collect();
        let mut duplicated: Vec<String> = held
            .iter()
            .filter(|(k, n)| **n > 1 && wanted.contains(k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        duplicated.sort();
        let broken = error.is_some() || !missing.is_empty() || !duplicated.is_empty();
        if broken {
            bad += 1;
        }
        out.json(&VerifyReport {
            session_id: session,
            url: &without_credentials(&url),
            expected: keys.len(),
            on_server,
            missing_count: missing.len(),
            missing: missing.iter().take(20).copied().collect(),
            duplicated_count: duplicated.len(),
            duplicated: duplicated.into_iter().take(20).collect(),
            error,
        })?;
    }
    out.flush()?;
    let rejected = rejects.finish()?;
    if !args.common.quiet {
        tonbo_core::note!(
            "{STAGE}: verify: {sessions} sessions, {} complete and without duplicates, {bad} not, {rejected} input lines rejected",
            sessions - bad
        );
    }
    Ok(Exit::from_failures(bad + rejected))
}
