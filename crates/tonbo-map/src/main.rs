//! tonbo-map [FILE...] [--merge] [--rejects FILE]
//!
//! What it reads and writes, its flags and their rules are its `--help` (the doc of [`Args`]
//! and its [`MANUAL`]), which is also its man page (`--generate man`).

use anyhow::Result;
use clap::Parser;
use std::io::Write;
use tonbo_core::contract::check_version;
use tonbo_core::record_line::RecordLine;
use tonbo_core::redact::{RedactArgs, Redactor, RULES_VERSION};
use tonbo_core::{
    run_stage, CommonArgs, Exit, Input, Manual, Output, Rejects, Signals, SourceRecord,
};
use tonbo_map::{EventSink, MapError, Mapper};

const STAGE: &str = "tonbo-map";

/// The examples of `--help` and the man page.
const MANUAL: Manual = Manual {
    examples: &[
        (
            "Between a reader and tonbo-batch (its usual place):",
            "claude-read | tonbo-map | tonbo-batch | tonbo-post",
        ),
        (
            "Map records saved earlier, keeping the lines it rejects:",
            "tonbo-map --rejects rejects.ndjson records.ndjson > events.ndjson",
        ),
        (
            "Count the events of each type:",
            "codex-read | tonbo-map | jq -r .event.type | sort | uniq -c",
        ),
        (
            "Redact a secret format of your own too:",
            "claude-read | tonbo-map --redact-pattern 'corp_[A-Za-z0-9]{32}' | tonbo-batch | tonbo-post",
        ),
        (
            "Three followed readers into one pipeline (one checkpoint):",
            "tonbo-map --merge claude.fifo codex.fifo opencode.fifo | tonbo-batch | tonbo-post",
        ),
    ],
    environment: &[],
    signals: Signals::Drain,
    empty_exit: true,
    files: &[],
};

/// Map source records of coding-agent transcripts to Durable Sessions events.
///
/// Reads source records (`{"v":1,"source":..,"session":..,"record":{..},"provenance":{..}}`, as
/// claude-read, codex-read and opencode-read write them) and writes event lines
/// (`{"v":1,"session_id":..,"event":{..}}`), in the shape of Managed Agents session events
/// (`user.message`, `agent.message`, `agent.tool_use`, `agent.tool_result`, `agent.thinking`,
/// ...). Every event carries `metadata.source_key`, its identity: the same input always maps to
/// the same keys, which is what lets tonbo-post send each event once however often it runs.
///
/// Records with `"source":"events"` carry an event already (a homegrown harness's, made with
/// jq): it is checked and passed on unchanged.
///
/// Secrets are redacted by default (the kinds, and how tonbo-batch relies on it, are under
/// `--no-redact`); each event line it redacted is marked so that tonbo-batch does not scan it
/// again.
///
/// A line that is not a source record, or a record its mapping cannot read, is rejected with
/// its file, line and reason (exit 1); the rest is always mapped. Records a mapping passes over
/// by rule, and record, part and block types it does not know, are counted by name in the
/// summary, one line per source. Input whose records give no event at all, and a session whose
/// records give none while some are of an unknown shape, are warned about and the exit status is
/// 3 (unless `--allow-empty`).
#[derive(Parser)]
#[command(name = STAGE, version, after_help = MANUAL.help())]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    redact: RedactArgs,

    /// Read the FILE inputs all at once instead of one after another, passing on whole lines
    /// as each input gives them; ends when every input has ended. For several `--follow`
    /// readers feeding one tonbo-map (through FIFOs): none holds the others back.
    #[arg(long)]
    merge: bool,

    #[command(flatten)]
    allow_empty: tonbo_core::AllowEmpty,
}

/// The start of an event line up to its `event`, kept while the session stays the same.
#[derive(Default)]
struct LineHead {
    session_id: String,
    text: String,
}

impl LineHead {
    fn write(&mut self, session_id: &str, redacted: bool) {
        self.session_id.clear();
        self.session_id.push_str(session_id);
        self.text.clear();
        self.text.push_str(&format!(
            "{{\"v\":{},\"session_id\":",
            tonbo_core::WIRE_VERSION
        ));
        tonbo_core::event::push_json_str(&mut self.text, session_id);
        if redacted {
            // Tells tonbo-batch this event went through the built-in rules already.
            self.text
                .push_str(&format!(",\"redacted\":{RULES_VERSION}"));
        }
        self.text.push_str(",\"event\":");
    }
}

struct LineSink<'a> {
    out: &'a mut Output,
    line_head: LineHead,
    events: u64,
    redactor: Option<Redactor>,
    /// The run of consecutive records of one session at hand.
    run: SessionRun,
    /// Runs whose records gave no event although some were of an unknown shape (warned).
    empty_sessions: u64,
}

/// Consecutive records of one session, to tell when records of an unknown shape left a session
/// with no event: format drift, which must not pass silently.
#[derive(Default)]
struct SessionRun {
    source: String,
    session: String,
    /// The session's stream (`<source>-<session>`).
    session_id: String,
    records: u64,
    /// Events written to the session's own stream.
    events: u64,
    /// Unknown things met ([`Mapper::unknown_total`]) when the run began.
    unknown_at_start: u64,
    unknown: u64,
}

impl LineSink<'_> {
    /// Starts the run of `rec`'s session unless it is the run at hand.
    fn enter(&mut self, source: &str, session: &str, unknown_total: u64) {
        let r = &self.run;
        if r.records > 0 && r.source == source && r.session == session {
            return;
        }
        self.close_run();
        self.run = SessionRun {
            source: source.to_string(),
            session: session.to_string(),
            session_id: tonbo_core::contract::session_id_for(source, session),
            unknown_at_start: unknown_total,
            ..SessionRun::default()
        };
    }

    /// Warns about the run at hand if its records gave no event and some were unknown.
    fn close_run(&mut self) {
        let r = std::mem::take(&mut self.run);
        if r.records > 0 && r.events == 0 && r.unknown > 0 {
            tonbo_core::empty::warn(
                STAGE,
                &format!("session {}", r.session_id),
                &format!(
                    "its {} records gave no event; {} of them (or of their parts) are of a shape the {} mapping does not know (named in the summary)",
                    r.records, r.unknown, r.source
                ),
            );
            self.empty_sessions += 1;
        }
    }
}

impl EventSink for LineSink<'_> {
    fn event(&mut self, session_id: &str, event: &str) -> std::io::Result<()> {
        self.events += 1;
        if session_id == self.run.session_id {
            self.run.events += 1;
        }
        let redacted = match &mut self.redactor {
            // The walk re-encodes only strings with serde_json, so the text stays valid JSON.
            Some(r) => r.redact_event(event),
            None => None,
        };
        let event = redacted.as_deref().unwrap_or(event);
        // The line is `EventLine`, written by hand: serde would copy the event through a
        // `RawValue`, which it can only make by parsing the event again.
        if self.line_head.text.is_empty() || self.line_head.session_id != session_id {
            self.line_head.write(session_id, self.redactor.is_some());
        }
        let w = self.out.raw();
        w.write_all(self.line_head.text.as_bytes())?;
        w.write_all(event.as_bytes())?;
        w.write_all(b"}")?;
        self.out.end_line()
    }
}

fn main() -> std::process::ExitCode {
    let args: Args = tonbo_core::manual::parse(&MANUAL);
    run_stage(STAGE, || run(args))
}

fn run(args: Args) -> Result<Exit> {
    // A signal drains: the input is read to its end (see `drain_on_signals`).
    tonbo_core::follow::drain_on_signals()?;
    let mut out = Output::stdout();
    let mut rejects = Rejects::open(STAGE, args.common.rejects.as_deref())?;
    let mut mapper = Mapper::default();
    let mut sink = LineSink {
        out: &mut out,
        line_head: LineHead::default(),
        events: 0,
        run: SessionRun::default(),
        empty_sessions: 0,
        redactor: args.redact.redactor(),
    };
    let records = map_inputs(&args, &mut mapper, &mut sink, &mut rejects)?;
    match mapper.finish(&mut sink) {
        Ok(()) | Err(MapError::Reject(_)) => {}
        Err(MapError::Io(e)) => return Err(e.into()),
    }
    sink.close_run();
    let (events, mut empty) = (sink.events, sink.empty_sessions);
    let redacted = sink
        .redactor
        .as_ref()
        .map(|r| r.counts.summary())
        .unwrap_or_default();
    out.flush()?;
    let rejected = rejects.finish()?;
    if records > 0 && events == 0 {
        warn_no_event(&args, records, rejected);
        empty += 1;
    }
    if !args.common.quiet {
        tonbo_core::note!(
            "{STAGE}: {records} records, {events} events, {rejected} rejected{redacted}"
        );
        for line in mapper.summaries() {
            tonbo_core::note!("{STAGE}: {line}");
        }
    }
    Ok(Exit::of(rejected, empty, args.allow_empty.allow_empty))
}

/// Maps every input line; returns how many there were.
fn map_inputs(
    args: &Args,
    mapper: &mut Mapper,
    sink: &mut LineSink,
    rejects: &mut Rejects,
) -> Result<u64> {
    let mut records = 0u64;
    if args.merge && args.common.inputs.len() > 1 {
        let mut lines = tonbo_core::ndjson::MergedLines::open(&args.common.inputs)?;
        while let Some(line) = lines.next_line()? {
            records += 1;
            map_line(mapper, sink, rejects, line.name, line.number, line.bytes)?;
            if lines.is_idle() {
                sink.out.flush()?;
            }
        }
        return Ok(records);
    }
    // One input, or one after another: no threads, no copies (this is the benchmarked path).
    for input in Input::open_all(&args.common.inputs)? {
        let mut lines = input.lines();
        let name = lines.name.clone();
        while let Some(line) = lines.next_line()? {
            records += 1;
            map_line(mapper, sink, rejects, &name, line.number, line.bytes)?;
            if lines.is_idle() {
                sink.out.flush()?;
            }
        }
    }
    Ok(records)
}

/// The warning for input records that gave no event at all (exit 3).
fn warn_no_event(args: &Args, records: u64, rejected: u64) {
    let inputs = if args.common.inputs.is_empty() {
        "stdin".to_string()
    } else {
        args.common
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    tonbo_core::empty::warn(
        STAGE,
        &inputs,
        &format!("its {records} records gave no event ({rejected} rejected; what was skipped or unknown is counted below)"),
    );
}

/// Maps one input line; a rejected one is reported as line `number` of input `name`.
#[inline]
fn map_line(
    mapper: &mut Mapper,
    sink: &mut LineSink,
    rejects: &mut Rejects,
    name: &str,
    number: u64,
    bytes: &[u8],
) -> Result<()> {
    // UTF-8 checked once for the whole line, at SIMD speed; serde_json then reads it as text
    // and checks no string again.
    let result = match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => map_text(mapper, sink, text),
        Err(_) => Err(MapError::Reject(format!(
            "not a source record: {}",
            std::str::from_utf8(bytes)
                .err()
                .map_or_else(|| "invalid UTF-8".to_string(), |e| e.to_string())
        ))),
    };
    match result {
        Ok(_) => Ok(()),
        Err(MapError::Reject(reason)) => {
            // The rejects file keeps the line for a person to look at: redacted too.
            let redacted = sink.redactor.as_mut().and_then(|r| r.redact_line(bytes));
            let raw = redacted.as_deref().map_or(bytes, str::as_bytes);
            rejects.reject(name, number, &reason, raw)
        }
        Err(MapError::Io(e)) => Err(e.into()),
    }
}

/// Maps one line of text: in one pass where the line is in the writer's shape and its mapping
/// can ([`tonbo_map::SourceMapping::map_line`]), else parsed whole as a [`SourceRecord`].
fn map_text(mapper: &mut Mapper, sink: &mut LineSink, text: &str) -> Result<usize, MapError> {
    if let Some(line) = RecordLine::parse(text) {
        sink.enter(line.source, line.session, mapper.unknown_total());
        if let Some(mapped) = mapper.map_line(&line, sink) {
            sink.run.records += 1;
            sink.run.unknown = mapper.unknown_total() - sink.run.unknown_at_start;
            return mapped.map_err(|e| with_place(e, line.provenance.as_ref()));
        }
    }
    let rec = serde_json::from_str::<SourceRecord>(text)
        .map_err(|e| MapError::Reject(format!("not a source record: {e}")))?;
    check_version(rec.v).map_err(MapError::Reject)?;
    sink.enter(&rec.source, &rec.session, mapper.unknown_total());
    let mapped = mapper.map(&rec, sink);
    sink.run.records += 1;
    sink.run.unknown = mapper.unknown_total() - sink.run.unknown_at_start;
    mapped.map_err(|e| with_place(e, rec.provenance.as_ref()))
}

/// A rejection naming the source file and line too, not only this stage's input line.
fn with_place(e: MapError, provenance: Option<&tonbo_core::Provenance>) -> MapError {
    match (e, provenance) {
        (MapError::Reject(r), Some(p)) => MapError::Reject(format!("{}: {r}", describe(p))),
        (e, _) => e,
    }
}

/// `FILE:LINE` or `FILE table ROW` of a source record, for messages.
fn describe(p: &tonbo_core::Provenance) -> String {
    let mut s = p.file.clone().unwrap_or_else(|| "(unknown file)".into());
    if let Some(l) = p.line {
        s += &format!(":{l}");
    }
    if let Some(t) = &p.table {
        s += &format!(" table {t}");
    }
    if let Some(r) = &p.row {
        s += &format!(" row {r}");
    }
    s
}

tonbo_core::manual_test!(Args, MANUAL);
