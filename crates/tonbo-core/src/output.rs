//! Buffered stdout for NDJSON. A closed pipe downstream (`| head`) surfaces as an
//! `io::ErrorKind::BrokenPipe` error, which [`crate::run_stage`] turns into a quiet exit.

use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex, PoisonError};

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

    /// An output into memory, and what reads back what it wrote (once flushed): for a test of
    /// what a stage writes.
    pub fn in_memory() -> (Output, Written) {
        let written = Written::default();
        (Output::to(Box::new(written.clone())), written)
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

/// What an [`Output::in_memory`] wrote.
#[derive(Clone, Default)]
pub struct Written(Arc<Mutex<Vec<u8>>>);

impl Written {
    /// The bytes written (and flushed) so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Write for Written {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_memory_output_reads_back_once_flushed() {
        let (mut out, written) = Output::in_memory();
        out.line(b"{}").unwrap();
        out.json(&[1, 2]).unwrap();
        assert!(written.bytes().is_empty(), "buffered until flushed");
        out.flush().unwrap();
        assert_eq!(written.bytes(), b"{}\n[1,2]\n");
    }
}
