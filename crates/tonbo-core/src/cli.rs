//! Flags every stage shares, and the `main` wrapper that maps outcomes to exit codes.
//!
//! Exit codes (the same for every stage):
//! * 0: everything was processed (also when a reader downstream closed the pipe early);
//! * 1: the stage finished, but some input was rejected or some session failed;
//! * 2: the stage could not run (bad flags, unreadable input, unusable state file, ...);
//! * 3: a reader, or tonbo-map, got input that holds something and made nothing of it (each
//!   such input is warned about, naming it and why); `--allow-empty` makes that 0.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Input files of NDJSON, read in order; none, or `-`, reads stdin.
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Also write every rejected input line, with its reason, to FILE (NDJSON).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,

    /// Do not print the summary line on stderr (errors and warnings are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Parses a byte size: `1048576`, `512KiB`, `1MiB`, `1MB`, `64k`, `2m`, `1GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 1048576, 512KiB, 1MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("`{s}` must be a positive size"))
}

/// How a stage that ran to the end finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything was processed.
    Clean,
    /// Some input was rejected or some session failed (details already on stderr).
    Partial,
    /// An input that holds something gave nothing (each one already warned about on stderr).
    Empty,
    /// The server did not answer for the whole retry budget (EX_TEMPFAIL: try again later).
    Unavailable,
    /// Stopped by this signal (the status is 128 + its number, as a shell reports it).
    Signalled(i32),
}

impl Exit {
    pub fn from_failures(n: u64) -> Exit {
        if n == 0 {
            Exit::Clean
        } else {
            Exit::Partial
        }
    }

    /// `failures` inputs rejected or failed, `empty` inputs that held something and gave
    /// nothing: a failure says more than an empty input, so it wins.
    pub fn of(failures: u64, empty: u64, allow_empty: bool) -> Exit {
        match (failures, empty) {
            (0, 0) => Exit::Clean,
            (0, _) if allow_empty => Exit::Clean,
            (0, _) => Exit::Empty,
            _ => Exit::Partial,
        }
    }
}

/// `--allow-empty`, for the stages that warn when an input holding something gives nothing.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct AllowEmpty {
    /// Exit 0, not 3, when an input that holds something gives nothing (it is still warned
    /// about on stderr).
    #[arg(long)]
    pub allow_empty: bool,
}

/// Runs a stage body and turns its result into the process exit code. Errors are printed once,
/// with their context chain, prefixed by the stage name.
pub fn run_stage(stage: &str, body: impl FnOnce() -> Result<Exit>) -> ExitCode {
    match body() {
        Ok(Exit::Clean) => ExitCode::SUCCESS,
        Ok(Exit::Partial) => ExitCode::from(1),
        Ok(Exit::Empty) => ExitCode::from(3),
        Ok(Exit::Unavailable) => ExitCode::from(75),
        Ok(Exit::Signalled(sig)) => ExitCode::from((128 + sig.clamp(1, 127)) as u8),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            crate::note!("{stage}: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_size, Exit};

    #[test]
    fn failures_win_over_empty_inputs() {
        assert_eq!(Exit::of(0, 0, false), Exit::Clean);
        assert_eq!(Exit::of(0, 2, false), Exit::Empty);
        assert_eq!(Exit::of(0, 2, true), Exit::Clean);
        assert_eq!(Exit::of(1, 2, false), Exit::Partial);
        assert_eq!(Exit::of(1, 0, true), Exit::Partial);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("MiB").is_err());
    }
}
