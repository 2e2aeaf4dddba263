//! tonbo-batch [FILE...] [--max-events N] [--max-bytes SIZE] [--linger MS] [--rejects FILE]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use std::borrow::Cow;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use tonbo_batch::{BatchWriter, Pushed};
use tonbo_core::contract::{check_session_id, check_version};
use tonbo_core::redact::RedactArgs;
use tonbo_core::{
    parse_size, run_stage, CommonArgs, EventHead, EventLine, Exit, Input, Manual, Output, Rejects,
    Signals,
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
/// Secrets are redacted here with tonbo-map's rules (the kinds are under `--no-redact`), in the
/// event lines tonbo-map did not redact; the lines it marked pass unchanged unless
/// `--redact-pattern` adds patterns. The summary counts what was redacted here, per kind.
///
/// Input is read on its own thread, so a batch left open when events trickle in (a `--follow`
/// reader upstream) goes out once its first event has waited `--linger` ms, instead of waiting
/// for events that may not come for hours, or for a slow trickle to fill it. SIGINT/SIGTERM:
/// the first is noted and the input is read to its end (the reader upstream stops on the same
/// signal), the second exits at once.
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

impl Chunk {
    /// An empty chunk, its buffer sized for a full one: grown line by line, it was copied over
    /// and over (an eighth of tonbo-batch's time).
    fn new(name: Arc<str>) -> Chunk {
        Chunk {
            name,
            data: Vec::with_capacity(CHUNK_BYTES + 64 * 1024),
            lines: Vec::with_capacity(256),
            idle: false,
        }
    }
}

/// Reads every input on its own thread, sending chunks of lines; an error ends the inputs.
fn read_inputs(inputs: Vec<Input>) -> Receiver<std::io::Result<Chunk>> {
    let (tx, rx) = sync_channel(4);
    std::thread::spawn(move || {
        for input in inputs {
            let mut lines = input.lines();
            let name: Arc<str> = lines.name.clone().into();
            let mut chunk = Chunk::new(name.clone());
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
                    let full = std::mem::replace(&mut chunk, Chunk::new(name.clone()));
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
    let mut stage = Batching {
        out: Output::stdout(),
        rejects: Rejects::open(STAGE, args.common.rejects.as_deref())?,
        batcher: BatchWriter::new(args.max_events as usize, args.max_bytes as usize),
        redactor: args.redact.redactor(),
        max_bytes: args.max_bytes,
        oversized: 0,
        opened: None,
    };
    let linger = Duration::from_millis(args.linger);
    let chunks = read_inputs(Input::open_all(&args.common.inputs)?);
    while let Some(chunk) = stage.next_chunk(&chunks, linger)? {
        stage.take_chunk(&chunk)?;
        if chunk.idle {
            if args.linger == 0 {
                stage.batcher.flush(&mut stage.out)?;
                stage.opened = None;
            }
            stage.out.flush()?;
        }
    }
    stage.batcher.flush(&mut stage.out)?;
    stage.out.flush()?;
    let rejected = stage.rejects.finish()?;
    if !args.common.quiet {
        let redacted = stage
            .redactor
            .as_ref()
            .map(|r| r.counts.summary())
            .unwrap_or_default();
        tonbo_core::note!(
            "{STAGE}: {} events in {} batches, {} oversized, {} rejected{redacted}",
            stage.batcher.events,
            stage.batcher.batches,
            stage.oversized,
            rejected
        );
    }
    Ok(Exit::from_failures(rejected))
}

/// The stage's state between chunks of input.
struct Batching {
    out: Output,
    rejects: Rejects,
    batcher: BatchWriter,
    redactor: Option<tonbo_core::redact::Redactor>,
    max_bytes: u64,
    oversized: u64,
    /// When the open batch took its first event.
    opened: Option<Instant>,
}

impl Batching {
    /// The next chunk of input, writing the open batch meanwhile once it is `linger` old;
    /// `None` at the end of every input.
    fn next_chunk(
        &mut self,
        chunks: &Receiver<std::io::Result<Chunk>>,
        linger: Duration,
    ) -> Result<Option<Chunk>> {
        loop {
            let Some(at) = self.opened.filter(|_| self.batcher.is_open()) else {
                return Ok(chunks.recv().ok().transpose()?);
            };
            let wait = linger.saturating_sub(at.elapsed());
            let next = if wait.is_zero() {
                Err(RecvTimeoutError::Timeout)
            } else {
                chunks.recv_timeout(wait)
            };
            match next {
                Ok(chunk) => return Ok(Some(chunk?)),
                Err(RecvTimeoutError::Timeout) => {
                    // The open batch is old enough: write it now.
                    self.batcher.flush(&mut self.out)?;
                    self.out.flush()?;
                    self.opened = None;
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }

    fn take_chunk(&mut self, chunk: &Chunk) -> Result<()> {
        for (number, range) in &chunk.lines {
            let bytes = &chunk.data[range.clone()];
            match parse_event_line(bytes) {
                Ok(ev) => self.take_event(&ev, &chunk.name, *number)?,
                Err(reason) => {
                    // The rejects file keeps the line for a person to look at: redacted too.
                    let redacted = self.redactor.as_mut().and_then(|r| r.redact_line(bytes));
                    let raw = redacted.as_deref().map_or(bytes, str::as_bytes);
                    self.rejects.reject(&chunk.name, *number, &reason, raw)?
                }
            }
        }
        Ok(())
    }

    fn take_event(&mut self, ev: &EventIn, input: &str, number: u64) -> Result<()> {
        let redacted = match &mut self.redactor {
            Some(r) => r.redact_event_marked(ev.event, ev.redacted),
            None => None,
        };
        // The walk re-encodes only strings with serde_json, so the text stays JSON. A redacted
        // event's key is read again: the key itself may have held what was redacted.
        let (event, key) = match redacted.as_deref() {
            Some(text) => (text, key_of(text)),
            None => (ev.event, ev.key.clone()),
        };
        let before = self.batcher.batches;
        let pushed = self.batcher.push(
            &ev.session_id,
            event.as_bytes(),
            key.as_deref(),
            &mut self.out,
        )?;
        if self.batcher.batches != before || self.opened.is_none() {
            self.opened = self.batcher.is_open().then(Instant::now);
        }
        if let Pushed::Oversized { body_bytes } = pushed {
            self.oversized += 1;
            tonbo_core::note!(
                "{STAGE}: {input}:{number}: warning: event of session {} is {body_bytes} bytes, over --max-bytes {}; sent as a batch of its own",
                ev.session_id, self.max_bytes
            );
        }
        Ok(())
    }
}

/// An event line, checked, with its event's key when it has one.
struct EventIn<'a> {
    session_id: Cow<'a, str>,
    redacted: Option<u64>,
    /// The event's JSON text, as it stands in the line.
    event: &'a str,
    /// Its `metadata.source_key`, when it has one and a `type` (what tonbo-post needs of it):
    /// the batch's head names it, so that tonbo-post need not read the event.
    key: Option<Cow<'a, str>>,
}

/// An event line, checked: version, session id, an object for `event`.
fn parse_event_line(bytes: &[u8]) -> Result<EventIn<'_>, String> {
    // UTF-8 checked once for the line at SIMD speed, then read as text (serde_json checked the
    // event's text again as it took it raw).
    let text = simdutf8::basic::from_utf8(bytes).map_err(|_| {
        let e = std::str::from_utf8(bytes).err();
        format!(
            "not an event line: {}",
            e.map_or_else(|| "invalid UTF-8".into(), |e| e.to_string())
        )
    })?;
    if let Some(ev) = tonbo_maps_line(text) {
        return Ok(ev);
    }
    let ev =
        serde_json::from_str::<EventLine>(text).map_err(|e| format!("not an event line: {e}"))?;
    check_version(ev.v)?;
    check_session_id(&ev.session_id)?;
    let event = ev.event.get();
    if !event.starts_with('{') {
        return Err("`event` is not a JSON object".into());
    }
    Ok(EventIn {
        session_id: ev.session_id,
        redacted: ev.redacted,
        event,
        key: key_of(event),
    })
}

/// An event line laid out as tonbo-map writes it (`{"v":1,"session_id":..,["redacted":..,]
/// "event":{..}}`), read in one pass: the event's key with its text, where the general way
/// takes the text, then reads it again for the key. `None` for any other line, or one that
/// fails a check (the general way then names the reason).
fn tonbo_maps_line(text: &str) -> Option<EventIn<'_>> {
    let rest = text.strip_prefix(r#"{"v":1,"session_id":"#)?;
    let (session_id, len) = value_at::<Cow<str>>(rest)?;
    check_session_id(&session_id).ok()?;
    let mut rest = &rest[len..];
    let mut redacted = None;
    if let Some(after) = rest.strip_prefix(r#","redacted":"#) {
        let (version, len) = value_at::<u64>(after)?;
        redacted = Some(version);
        rest = &after[len..];
    }
    let rest = rest.strip_prefix(r#","event":"#)?;
    let mut events = serde_json::Deserializer::from_str(rest).into_iter::<EventHead>();
    let head = events.next()?.ok()?;
    let end = events.byte_offset();
    let event = &rest[..end];
    if !event.starts_with('{') || rest[end..].trim_end() != "}" {
        return None;
    }
    Some(EventIn {
        session_id,
        redacted,
        event,
        key: usable_key(head),
    })
}

/// The JSON value at the start of `text`, and its length.
fn value_at<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Option<(T, usize)> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<T>();
    let value = values.next()?.ok()?;
    Some((value, values.byte_offset()))
}

/// The key of an event, as tonbo-post would read it; `None` if it would reject the event.
fn key_of(event: &str) -> Option<Cow<'_, str>> {
    let head: EventHead = serde_json::from_str(event).ok()?;
    usable_key(head)
}

fn usable_key(head: EventHead<'_>) -> Option<Cow<'_, str>> {
    let usable = !head.kind.is_empty() && !head.metadata.source_key.is_empty();
    usable.then_some(head.metadata.source_key)
}

tonbo_core::manual_test!(Args, MANUAL);
