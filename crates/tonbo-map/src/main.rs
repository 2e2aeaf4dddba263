//! tonbo-map [FILE...] [--rejects FILE]
//!
//! Reads source records (`{"v":1,"source":..,"session":..,"record":{..},"provenance":{..}}`) and
//! writes event lines (`{"v":1,"session_id":..,"event":{..}}`).

use anyhow::Result;
use clap::Parser;
use serde_json::value::RawValue;
use tonbo_core::contract::check_version;
use tonbo_core::{run_stage, CommonArgs, EventLine, Exit, Input, Output, Rejects, SourceRecord};
use tonbo_map::{map_record, EventSink, MapError};

const STAGE: &str = "tonbo-map";

/// Map source records of coding-agent transcripts to Durable Sessions events.
#[derive(Parser)]
#[command(name = STAGE, version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

struct LineSink<'a> {
    out: &'a mut Output,
    events: u64,
}

impl EventSink for LineSink<'_> {
    fn event(&mut self, session_id: &str, event: &RawValue) -> std::io::Result<()> {
        self.events += 1;
        self.out.json(&EventLine {
            v: tonbo_core::WIRE_VERSION,
            session_id: session_id.into(),
            event,
        })
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    run_stage(STAGE, || run(args))
}

fn run(args: Args) -> Result<Exit> {
    let mut out = Output::stdout();
    let mut rejects = Rejects::open(STAGE, args.common.rejects.as_deref())?;
    let mut records = 0u64;
    let mut sink = LineSink {
        out: &mut out,
        events: 0,
    };
    for input in Input::open_all(&args.common.inputs)? {
        let mut lines = input.lines();
        let name = lines.name.clone();
        while let Some(line) = lines.next_line()? {
            records += 1;
            let result = serde_json::from_slice::<SourceRecord>(line.bytes)
                .map_err(|e| MapError::Reject(format!("not a source record: {e}")))
                .and_then(|rec| {
                    check_version(rec.v).map_err(MapError::Reject)?;
                    map_record(&rec, &mut sink)
                });
            match result {
                Ok(_) => {}
                Err(MapError::Reject(reason)) => {
                    rejects.reject(&name, line.number, &reason, line.bytes)?
                }
                Err(MapError::Io(e)) => return Err(e.into()),
            }
            if lines.is_idle() {
                sink.out.flush()?;
            }
        }
    }
    let events = sink.events;
    out.flush()?;
    let rejected = rejects.finish()?;
    if !args.common.quiet {
        eprintln!("{STAGE}: {records} records, {events} events, {rejected} rejected");
    }
    Ok(Exit::from_failures(rejected))
}
