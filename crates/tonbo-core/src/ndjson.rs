//! Streaming NDJSON input: one line at a time, numbered, in a reused buffer.
//!
//! Memory stays flat: a line is held only while it is processed, and a buffer grown by one
//! very long line is given back afterwards.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};

/// Read buffer size; large enough that a read syscall moves a useful amount of data.
const READ_BUFFER: usize = 256 * 1024;
/// A line buffer above this size is shrunk back after use.
const KEEP_LINE_BUFFER: usize = 4 * 1024 * 1024;

/// One input of a stage: a named file, or stdin (named `-`).
pub struct Input {
    pub name: String,
    reader: BufReader<Box<dyn Read + Send>>,
}

impl Input {
    /// Opens `path`, or stdin for `-`.
    pub fn open(path: &Path) -> Result<Input> {
        if path.as_os_str() == "-" {
            return Ok(Input::stdin());
        }
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Input {
            name: path.display().to_string(),
            reader: BufReader::with_capacity(READ_BUFFER, Box::new(file)),
        })
    }

    pub fn stdin() -> Input {
        Input {
            name: "-".to_string(),
            reader: BufReader::with_capacity(READ_BUFFER, Box::new(io::stdin())),
        }
    }

    /// Any readable thing, for tests and for stages that pipe internally.
    pub fn from_reader(name: &str, r: impl Read + Send + 'static) -> Input {
        Input {
            name: name.to_string(),
            reader: BufReader::with_capacity(READ_BUFFER, Box::new(r)),
        }
    }

    /// The inputs named on the command line, or stdin when there are none.
    pub fn open_all(paths: &[std::path::PathBuf]) -> Result<Vec<Input>> {
        if paths.is_empty() {
            return Ok(vec![Input::stdin()]);
        }
        paths.iter().map(|p| Input::open(p)).collect()
    }

    pub fn lines(self) -> LineReader {
        LineReader {
            name: self.name,
            reader: self.reader,
            buf: Vec::new(),
            number: 0,
        }
    }
}

/// A line of input: its 1-based number, its bytes without the line ending, and whether it ended
/// with a newline (a last line without one may be torn if a writer is still appending).
pub struct Line<'a> {
    pub number: u64,
    pub bytes: &'a [u8],
    pub terminated: bool,
}

/// Iterates over the non-blank lines of one input.
pub struct LineReader {
    pub name: String,
    reader: BufReader<Box<dyn Read + Send>>,
    buf: Vec<u8>,
    number: u64,
}

impl LineReader {
    /// The next non-blank line, or `None` at end of input. `\n` and `\r\n` endings are removed.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            if self.buf.capacity() > KEEP_LINE_BUFFER {
                self.buf = Vec::new();
            }
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", self.name)))?;
            if n == 0 {
                return Ok(None);
            }
            self.number += 1;
            let mut end = self.buf.len();
            let terminated = self.buf[end - 1] == b'\n';
            if terminated {
                end -= 1;
                if end > 0 && self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            if self.buf[..end].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(Line {
                number: self.number,
                bytes: &self.buf[..end],
                terminated,
            }));
        }
    }

    /// True when no input is buffered, so the next read may wait on the writer upstream. Stages
    /// flush their output at that point: whole chunks while input streams in, and every line
    /// promptly when input arrives slowly (a `--follow` reader upstream).
    pub fn is_idle(&self) -> bool {
        self.reader.buffer().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &'static [u8]) -> Vec<(u64, String, bool)> {
        let mut r = Input::from_reader("t", input).lines();
        let mut out = vec![];
        while let Some(l) = r.next_line().unwrap() {
            out.push((
                l.number,
                String::from_utf8(l.bytes.to_vec()).unwrap(),
                l.terminated,
            ));
        }
        out
    }

    #[test]
    fn numbers_lines_and_skips_blank_ones() {
        let got = collect(b"{\"a\":1}\n\n  \r\n{\"b\":2}\r\n{\"c\":3}");
        assert_eq!(
            got,
            vec![
                (1, "{\"a\":1}".into(), true),
                (4, "{\"b\":2}".into(), true),
                (5, "{\"c\":3}".into(), false)
            ]
        );
    }

    #[test]
    fn long_lines_survive_and_buffer_shrinks() {
        let long = "x".repeat(9 * 1024 * 1024);
        let data = format!("{long}\nshort\n");
        let mut r = Input::from_reader("t", io::Cursor::new(data.into_bytes())).lines();
        assert_eq!(r.next_line().unwrap().unwrap().bytes.len(), long.len());
        assert_eq!(r.next_line().unwrap().unwrap().bytes, b"short");
        assert!(r.buf.capacity() < KEEP_LINE_BUFFER + 1);
        assert!(r.next_line().unwrap().is_none());
    }
}
