//! tonbo-batch [FILE...] [--max-events N] [--max-bytes SIZE] [--linger MS] [--rejects FILE]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use tonbo_batch::{BatchWriter, Pushed};
use tonbo_core::contract::{check_session_id, check_version};
use tonbo_core::redact::RedactArgs;
use tonbo_core::{
    parse_size, run_stage, CommonArgs, EventLine, Exit, Input, Manual, Output, Rejects, Signals,
};

const STAGE: &str = "tonbo-batch";

/// The examples of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Between tonbo-map and tonbo-post (its usual place):",
            "claude-read | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Smaller requests, for a server or proxy with a low body limit:",
            "tonbo-batch --max-bytes 256KiB --max-events 50 events.ndjson > batches.ndjson",
        ),
        (
            "Sidecar mode: a partial batch waits at most a second:",
            "claude-read --follow | tonbo-map | tonbo-batch --linger 1000 | tonbo-post",
        ),
        (
            "How many events each batch holds:",
            "tonbo-batch events.ndjson | jq '.events | length'",
        ),
        (
            "Event lines written by a program of your own, redacted here as tonbo-map would:",
            "my-harness --events | tonbo-batch --redact-pattern 'corp_[A-Za-z0-9]{32}' | tonbo-post",
        ),
    ],
    environment: &[],
    signals: Signals::Drain,
    empty_exit: false,
    files: &[],
};

/// Group Durable Sessions events into request-sized batches for tonbo-post.
///
/// Reads event lines (`{"v":1,"session_id":..,"event":{..}}`) and writes batch lines
/// (`{"v":1,"session_id":..,"events":[..]}`), each exactly the body of one POST.
///
/// Secrets are redacted here with tonbo-map's rules (the kinds are in `tonbo-map --help`), in the
/// event lines tonbo-map did not redact: lines written by another program, or by `tonbo-map
/// --no-redact` (each stage turns redaction off for itself). tonbo-map marks the lines it
/// redacted (`"redacted":1`, the version of the rules), and those pass unchanged unless
/// `--redact-pattern` adds patterns; an event without a secret always keeps its bytes. The
/// summary counts what was redacted here, per kind.
///
/// Input is read on its own thread, so a batch left open when events trickle in (a `--follow`
/// reader upstream) goes out once its first event has waited `--linger` ms, instead of waiting
/// for events that may not come for hours, or for a slow trickle to fill it. SIGINT/SIGTERM: the first is noted and the input is
/// read to its end (the reader upstream stops on the same signal), the second exits at once.
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    redact: RedactArgs,

    /// Most events in one batch.
    #[arg(value_name = "N", long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    max_events: u64,

    /// Most bytes of request body (the JSON array) in one batch; an event larger than this
    /// alone is sent as a batch of its own, with a warning.
    #[arg(value_name = "SIZE", long, default_value = "1MiB", value_parser = parse_size)]
    max_bytes: u64,

    /// Milliseconds an open, partial batch may hold its first event before it is written anyway
    /// (what makes a followed session appear on the server while it is written); 0 writes it as
    /// soon as no more input is waiting.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    linger: u64,
}

/// Input lines in chunks, as read: the chunk ends where the input ran dry (so the stage can
/// flush then) or at `CHUNK_BYTES`.
struct Chunk {
    name: Arc<str>,
    data: Vec<u8>,
    /// Line number and byte range in `data` of each line.
    lines: Vec<(u64, std::ops::Range<usize>)>,
    /// The input had nothing more waiting when this chunk was sent.
    idle: bool,
}

const CHUNK_BYTES: usize = 256 * 1024;

/// Reads every input on its own thread, sending chunks of lines; an error ends the inputs.
fn read_inputs(inputs: Vec<Input>) -> Receiver<std::io::Result<Chunk>> {
    let (tx, rx) = sync_channel(4);
    std::thread::spawn(move || {
        for input in inputs {
            let mut lines = input.lines();
            let name: Arc<str> = lines.name.clone().into();
            let mut chunk = Chunk {
                name: name.clone(),
                data: Vec::new(),
                lines: Vec::new(),
                idle: false,
            };
            loop {
                match lines.next_line() {
                    Ok(Some(line)) => {
                        let start = chunk.data.len();
                        chunk.data.extend_from_slice(line.bytes);
                        chunk.lines.push((line.number, start..chunk.data.len()));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        if !chunk.lines.is_empty() {
                            let _ = tx.send(Ok(chunk));
                        }
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
                let idle = lines.is_idle();
                if idle || chunk.data.len() >= CHUNK_BYTES {
                    chunk.idle = idle;
                    let full = std::mem::replace(
                        &mut chunk,
                        Chunk {
                            name: name.clone(),
                            data: Vec::new(),
                            lines: Vec::new(),
                            idle: false,
                        },
                    );
                    if tx.send(Ok(full)).is_err() {
                        return;
                    }
                }
            }
            if !chunk.lines.is_empty() {
                chunk.idle = true;
                if tx.send(Ok(chunk)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn main() -> std::process::ExitCode {
    let args: Args = tonbo_core::manual::parse(&MANUAL);
    run_stage(STAGE, || run(args))
}

fn run(args: Args) -> Result<Exit> {
    tonbo_core::follow::drain_on_signals()?;
    let mut out = Output::stdout();
    let mut rejects = Rejects::open(STAGE, args.common.rejects.as_deref())?;
    let mut batcher = BatchWriter::new(args.max_events as usize, args.max_bytes as usize);
    let mut oversized = 0u64;
    let mut redactor = args.redact.redactor();
    let linger = Duration::from_millis(args.linger);
    let chunks = read_inputs(Input::open_all(&args.common.inputs)?);
    // When the open batch took its first event.
    let mut opened: Option<Instant> = None;
    loop {
        let chunk = if let Some(at) = opened.filter(|_| batcher.is_open()) {
            let wait = linger.saturating_sub(at.elapsed());
            let next = if wait.is_zero() {
                Err(RecvTimeoutError::Timeout)
            } else {
                chunks.recv_timeout(wait)
            };
            match next {
                Ok(chunk) => chunk,
                Err(RecvTimeoutError::Timeout) => {
                    // The open batch is old enough: write it now.
                    batcher.flush(&mut out)?;
                    out.flush()?;
                    opened = None;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match chunks.recv() {
                Ok(chunk) => chunk,
                Err(_) => break,
            }
        };
        let chunk = chunk?;
        for (number, range) in &chunk.lines {
            let bytes = &chunk.data[range.clone()];
            let parsed = serde_json::from_slice::<EventLine>(bytes)
                .map_err(|e| format!("not an event line: {e}"))
                .and_then(|ev| {
                    check_version(ev.v)?;
                    check_session_id(&ev.session_id)?;
                    if !ev.event.get().starts_with('{') {
                        return Err("`event` is not a JSON object".into());
                    }
                    Ok(ev)
                });
            match parsed {
                Ok(ev) => {
                    let redacted = match &mut redactor {
                        Some(r) => r.redact_event_marked(ev.event.get(), ev.redacted),
                        None => None,
                    };
                    // The walk re-encodes only strings with serde_json, so the text stays JSON.
                    let event = redacted.as_deref().unwrap_or(ev.event.get());
                    let before = batcher.batches;
                    let pushed = batcher.push(&ev.session_id, event.as_bytes(), &mut out)?;
                    if batcher.batches != before || opened.is_none() {
                        opened = batcher.is_open().then(Instant::now);
                    }
                    if let Pushed::Oversized { body_bytes } = pushed {
                        oversized += 1;
                        tonbo_core::note!(
                            "{STAGE}: {}:{}: warning: event of session {} is {} bytes, over --max-bytes {}; sent as a batch of its own",
                            chunk.name, number, ev.session_id, body_bytes, args.max_bytes
                        );
                    }
                }
                Err(reason) => {
                    // The rejects file keeps the line for a person to look at: redacted too.
                    let redacted = redactor.as_mut().and_then(|r| r.redact_line(bytes));
                    let raw = redacted.as_deref().map_or(bytes, str::as_bytes);
                    rejects.reject(&chunk.name, *number, &reason, raw)?
                }
            }
        }
        if chunk.idle {
            if args.linger == 0 {
                batcher.flush(&mut out)?;
                opened = None;
            }
            out.flush()?;
        }
    }
    batcher.flush(&mut out)?;
    out.flush()?;
    let rejected = rejects.finish()?;
    if !args.common.quiet {
        let redacted = redactor
            .as_ref()
            .map(|r| r.counts.summary())
            .unwrap_or_default();
        tonbo_core::note!(
            "{STAGE}: {} events in {} batches, {} oversized, {} rejected{redacted}",
            batcher.events,
            batcher.batches,
            oversized,
            rejected
        );
    }
    Ok(Exit::from_failures(rejected))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn flags_and_examples_agree() {
        super::Args::command().debug_assert();
        let drifted = super::MANUAL.check(&super::Args::command());
        assert!(drifted.is_empty(), "{drifted:#?}");
    }
}
