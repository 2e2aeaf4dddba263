//! opencode-read [PATH...]: reads opencode transcripts and writes source records
//! (`{"v":1,"source":"opencode","session":..,"record":{..},"provenance":{..}}`).
//!
//! Not implemented yet: it says so and exits 2, so a pipeline that uses it fails loudly instead
//! of backfilling nothing.

use clap::Parser;

/// Read opencode transcripts as tonbo-ingest source records (not yet supported).
#[derive(Parser)]
#[command(name = "opencode-read", version, about)]
struct Args {
    /// Roots, folders or files to read.
    paths: Vec<std::path::PathBuf>,
}

fn main() -> std::process::ExitCode {
    let _ = Args::parse();
    eprintln!("opencode-read: not yet supported: reading opencode transcripts has not landed in this build");
    std::process::ExitCode::from(2)
}
