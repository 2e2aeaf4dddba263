//! tonbo-ingest --from SOURCE [--path P]... [--db D]... [--root DIR] [--watch [--poll]]
//!              [--dry-run] [--since-last-run] [--state-dir DIR] [-- TONBO-POST-OPTIONS...]
//! tonbo-ingest scan [--root DIR] [--from SOURCE] [--within DAYS] [--json]
//!
//! Its flags and their rules are its `--help` (the doc of `cli::Args` and `cli::MANUAL`), which
//! is also its man page (`--generate man`).

use std::process::ExitCode;

use tonbo_ingest::cli::{self, Args, MANUAL};

fn main() -> ExitCode {
    tonbo_core::manual::answer_generate::<Args>(&MANUAL, &tonbo_ingest::completion::hand_over);
    let status = match cli::parse(std::env::args_os()) {
        Ok(cli::Invocation::Run(config)) => tonbo_ingest::run(&config),
        Ok(cli::Invocation::Scan(config)) => tonbo_ingest::scan::run(&config),
        Err(usage) => usage.report(),
    };
    // Statuses are a stage's (0 to 255) or the front door's own.
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
