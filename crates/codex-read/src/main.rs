//! codex-read [PATH...]: reads codex transcripts and writes source records
//! (`{"v":1,"source":"codex","session":..,"record":{..},"provenance":{..}}`).
//!
//! Not implemented yet: it says so and exits 2, so a pipeline that uses it fails loudly instead
//! of backfilling nothing.

use clap::Parser;

/// Read codex transcripts as tonbo-ingest source records (not yet supported).
#[derive(Parser)]
#[command(name = "codex-read", version, about)]
struct Args {
    /// Roots, folders or files to read.
    paths: Vec<std::path::PathBuf>,
}

fn main() -> std::process::ExitCode {
    let _ = Args::parse();
    eprintln!(
        "codex-read: not yet supported: reading codex transcripts has not landed in this build"
    );
    std::process::ExitCode::from(2)
}
