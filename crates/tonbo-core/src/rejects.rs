//! The bad-input policy shared by every stage.
//!
//! A line that cannot be used is reported on stderr with the stage, input name, line number and
//! reason, counted, optionally written to `--rejects FILE`, and skipped; the stage goes on and
//! exits non-zero at the end. Nothing is dropped silently.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

pub struct Rejects {
    stage: &'static str,
    count: u64,
    file: Option<BufWriter<File>>,
}

/// One line of a `--rejects` file: the rejected input line (as text) and why.
#[derive(Serialize)]
struct RejectRecord<'a> {
    stage: &'a str,
    input: &'a str,
    line: u64,
    reason: &'a str,
    raw: std::borrow::Cow<'a, str>,
}

impl Rejects {
    pub fn open(stage: &'static str, path: Option<&Path>) -> Result<Rejects> {
        let file = match path {
            Some(p) => Some(BufWriter::new(File::create(p).with_context(|| {
                format!("cannot create rejects file {}", p.display())
            })?)),
            None => None,
        };
        Ok(Rejects {
            stage,
            count: 0,
            file,
        })
    }

    /// Reports and records one rejected input line. `raw` is the line as read.
    pub fn reject(&mut self, input: &str, line: u64, reason: &str, raw: &[u8]) -> Result<()> {
        self.count += 1;
        // A failing stderr must not stop the data flowing; the count still tells. Printed
        // clear of a live progress line.
        crate::note!("{}: {}:{}: rejected: {}", self.stage, input, line, reason);
        if let Some(f) = &mut self.file {
            let rec = RejectRecord {
                stage: self.stage,
                input,
                line,
                reason,
                raw: String::from_utf8_lossy(raw),
            };
            serde_json::to_writer(&mut *f, &rec).context("cannot write rejects file")?;
            f.write_all(b"\n").context("cannot write rejects file")?;
        }
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Flushes the rejects file and returns how many lines were rejected.
    pub fn finish(mut self) -> Result<u64> {
        if let Some(f) = &mut self.file {
            f.flush().context("cannot write rejects file")?;
        }
        Ok(self.count)
    }
}
