//! claude-read [PATH...]: reads claude-code transcripts and writes source records
//! (`{"v":1,"source":"claude-code","session":..,"record":{..},"provenance":{..}}`).
//!
//! Not implemented yet: it says so and exits 2, so a pipeline that uses it fails loudly instead
//! of backfilling nothing.

use clap::Parser;

/// Read claude-code transcripts as tonbo-ingest source records (not yet supported).
#[derive(Parser)]
#[command(name = "claude-read", version, about)]
struct Args {
    /// Roots, folders or files to read.
    paths: Vec<std::path::PathBuf>,
}

fn main() -> std::process::ExitCode {
    let _ = Args::parse();
    eprintln!("claude-read: not yet supported: reading claude-code transcripts has not landed in this build");
    std::process::ExitCode::from(2)
}
