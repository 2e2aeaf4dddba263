//! Buffered stdout for NDJSON. A closed pipe downstream (`| head`) surfaces as an
//! `io::ErrorKind::BrokenPipe` error, which [`crate::run_stage`] turns into a quiet exit.

use std::io::{self, BufWriter, Write};

pub struct Output {
    w: BufWriter<Box<dyn Write + Send>>,
}

impl Output {
    pub fn stdout() -> Output {
        Output::to(Box::new(io::stdout()))
    }

    pub fn to(w: Box<dyn Write + Send>) -> Output {
        Output {
            w: BufWriter::with_capacity(256 * 1024, w),
        }
    }

    /// Writes one line (the bytes must hold no newline) and its `\n`.
    pub fn line(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)?;
        self.w.write_all(b"\n")
    }

    /// Serialises `value` as one JSON line.
    pub fn json<T: serde::Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.w, value).map_err(io::Error::from)?;
        self.w.write_all(b"\n")
    }

    /// Raw access, to assemble a line from parts; end it with [`Output::end_line`].
    pub fn raw(&mut self) -> &mut impl Write {
        &mut self.w
    }

    pub fn end_line(&mut self) -> io::Result<()> {
        self.w.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}
