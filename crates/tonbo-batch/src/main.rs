//! tonbo-batch [FILE...] [--max-events N] [--max-bytes SIZE] [--rejects FILE]
//!
//! Reads event lines (`{"v":1,"session_id":..,"event":{..}}`) and writes batch lines
//! (`{"v":1,"session_id":..,"events":[..]}`), each exactly the body of one POST.

use anyhow::Result;
use clap::Parser;
use tonbo_batch::{BatchWriter, Pushed};
use tonbo_core::contract::{check_session_id, check_version};
use tonbo_core::{parse_size, run_stage, CommonArgs, EventLine, Exit, Input, Output, Rejects};

const STAGE: &str = "tonbo-batch";

/// Group Durable Sessions events into request-sized batches for tonbo-post.
#[derive(Parser)]
#[command(name = STAGE, version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,

    /// Most events in one batch.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    max_events: u64,

    /// Most bytes of request body (the JSON array) in one batch; an event larger than this
    /// alone is sent as a batch of its own, with a warning.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    max_bytes: u64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    run_stage(STAGE, || run(args))
}

fn run(args: Args) -> Result<Exit> {
    let mut out = Output::stdout();
    let mut rejects = Rejects::open(STAGE, args.common.rejects.as_deref())?;
    let mut batcher = BatchWriter::new(args.max_events as usize, args.max_bytes as usize);
    let mut oversized = 0u64;
    for input in Input::open_all(&args.common.inputs)? {
        let mut lines = input.lines();
        let name = lines.name.clone();
        while let Some(line) = lines.next_line()? {
            let parsed = serde_json::from_slice::<EventLine>(line.bytes)
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
                    if let Pushed::Oversized { body_bytes } =
                        batcher.push(&ev.session_id, ev.event.get().as_bytes(), &mut out)?
                    {
                        oversized += 1;
                        eprintln!(
                            "{STAGE}: {}:{}: warning: event of session {} is {} bytes, over --max-bytes {}; sent as a batch of its own",
                            name, line.number, ev.session_id, body_bytes, args.max_bytes
                        );
                    }
                }
                Err(reason) => rejects.reject(&name, line.number, &reason, line.bytes)?,
            }
            if lines.is_idle() {
                out.flush()?;
            }
        }
    }
    batcher.flush(&mut out)?;
    out.flush()?;
    let rejected = rejects.finish()?;
    if !args.common.quiet {
        eprintln!(
            "{STAGE}: {} events in {} batches, {} oversized, {} rejected",
            batcher.events, batcher.batches, oversized, rejected
        );
    }
    Ok(Exit::from_failures(rejected))
}
