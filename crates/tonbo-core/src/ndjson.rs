//! Streaming NDJSON input: one line at a time, numbered, in a reused buffer; or the lines of
//! several inputs at once, as each gives them ([`MergedLines`]).
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

    /// Like [`Input::from_reader`] with a read buffer of `capacity` bytes: for a look at the
    /// head of a file, which a full-size buffer would read whole.
    pub fn from_reader_buffered(
        name: &str,
        r: impl Read + Send + 'static,
        capacity: usize,
    ) -> Input {
        Input {
            name: name.to_string(),
            reader: BufReader::with_capacity(capacity, Box::new(r)),
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
        if self.buf.capacity() > KEEP_LINE_BUFFER {
            self.buf = Vec::new();
        }
        let mut buf = std::mem::take(&mut self.buf);
        let read = self.next_line_into(&mut buf);
        self.buf = buf;
        Ok(read?.map(|(number, terminated)| Line {
            number,
            bytes: &self.buf,
            terminated,
        }))
    }

    /// [`Self::next_line`] read into `buf` (emptied first), which the caller keeps: for a stage
    /// that hands lines on whole, without copying each out of the reader's buffer again. `buf`
    /// holds the line without its ending; the line's number and whether it ended with a newline
    /// are returned, `None` at end of input.
    pub fn next_line_into(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<(u64, bool)>> {
        loop {
            buf.clear();
            let n = self
                .reader
                .read_until(b'\n', buf)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", self.name)))?;
            if n == 0 {
                return Ok(None);
            }
            self.number += 1;
            let mut end = buf.len();
            let terminated = buf[end - 1] == b'\n';
            if terminated {
                end -= 1;
                if end > 0 && buf[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            if buf[..end].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            buf.truncate(end);
            return Ok(Some((self.number, terminated)));
        }
    }

    /// True when no input is buffered, so the next read may wait on the writer upstream. Stages
    /// flush their output at that point: whole chunks while input streams in, and every line
    /// promptly when input arrives slowly (a `--follow` reader upstream).
    pub fn is_idle(&self) -> bool {
        self.reader.buffer().is_empty()
    }
}

/// A merged input sends what it read in chunks of about this size, or sooner when its input
/// goes quiet.
const MERGE_CHUNK: usize = 64 * 1024;
/// Chunks in flight between the inputs and the stage: memory stays flat whatever the inputs.
const MERGE_CHUNKS_IN_FLIGHT: usize = 4;

/// Whole lines read from one input of a [`MergedLines`], copied out of its reader.
struct Chunk {
    input: usize,
    data: Vec<u8>,
    /// Line number, end offset in `data` (each line starts where the previous one ended), and
    /// whether it ended with a newline.
    lines: Vec<(u64, usize, bool)>,
}

enum Merged {
    Lines(Chunk),
    Failed(anyhow::Error),
}

/// A line of a [`MergedLines`], with the name of the input it came from.
pub struct MergedLine<'a> {
    pub name: &'a str,
    pub number: u64,
    pub bytes: &'a [u8],
    pub terminated: bool,
}

/// Several inputs read at once rather than one after another: each by a thread of its own, so
/// an input that waits on its writer (a FIFO fed by a `--follow` reader) holds none of the
/// others back. Lines come out whole, numbered per input exactly as [`LineReader`] numbers them,
/// in the order each input gives them; the lines of different inputs interleave as they arrive.
/// The end comes when every input has ended.
pub struct MergedLines {
    names: Vec<String>,
    chunks: std::sync::mpsc::Receiver<Merged>,
    /// A chunk received while looking whether more input was waiting.
    waiting: Option<Merged>,
    current: Option<Chunk>,
    /// Index of the next line of `current`, and where that line starts in its data.
    next: usize,
    start: usize,
}

impl MergedLines {
    /// Starts reading `paths` (`-` is stdin, at most once). A missing input fails here, before
    /// anything is read; opening happens on each input's thread, since opening a FIFO waits for
    /// its writer.
    pub fn open(paths: &[std::path::PathBuf]) -> Result<MergedLines> {
        if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
            anyhow::bail!("stdin (`-`) can be merged only once");
        }
        for p in paths.iter().filter(|p| p.as_os_str() != "-") {
            std::fs::metadata(p).with_context(|| format!("cannot open {}", p.display()))?;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(MERGE_CHUNKS_IN_FLIGHT);
        for (input, path) in paths.iter().enumerate() {
            let tx = tx.clone();
            let path = path.clone();
            std::thread::Builder::new()
                .name(format!("input {}", path.display()))
                .spawn(move || {
                    if let Err(e) = send_lines(input, &path, &tx) {
                        // The stage may have stopped listening already; nothing to tell then.
                        let _ = tx.send(Merged::Failed(e));
                    }
                })
                .context("cannot start a thread to read an input")?;
        }
        Ok(MergedLines {
            names: paths.iter().map(|p| p.display().to_string()).collect(),
            chunks: rx,
            waiting: None,
            current: None,
            next: 0,
            start: 0,
        })
    }

    /// The next line of any input, or `None` once every input has ended.
    pub fn next_line(&mut self) -> Result<Option<MergedLine<'_>>> {
        while !self.has_line() {
            let received = match self.waiting.take() {
                Some(m) => m,
                None => match self.chunks.recv() {
                    Ok(m) => m,
                    // Every input's thread has ended and dropped its sender.
                    Err(_) => return Ok(None),
                },
            };
            match received {
                Merged::Lines(chunk) => {
                    self.current = Some(chunk);
                    self.next = 0;
                    self.start = 0;
                }
                Merged::Failed(e) => return Err(e),
            }
        }
        let Some(chunk) = self.current.as_ref() else {
            return Ok(None);
        };
        let (number, end, terminated) = chunk.lines[self.next];
        let start = self.start;
        self.next += 1;
        self.start = end;
        Ok(Some(MergedLine {
            name: &self.names[chunk.input],
            number,
            bytes: &chunk.data[start..end],
            terminated,
        }))
    }

    /// True when no line is waiting, so the next one may be a while: the moment to flush, as
    /// with [`LineReader::is_idle`].
    pub fn is_idle(&mut self) -> bool {
        if self.has_line() || self.waiting.is_some() {
            return false;
        }
        match self.chunks.try_recv() {
            Ok(m) => {
                self.waiting = Some(m);
                false
            }
            Err(_) => true,
        }
    }

    /// True when the chunk at hand has a line left.
    fn has_line(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|c| self.next < c.lines.len())
    }
}

/// One input of a [`MergedLines`]: its lines, in chunks, until its end (or until the stage stops
/// listening).
fn send_lines(input: usize, path: &Path, tx: &std::sync::mpsc::SyncSender<Merged>) -> Result<()> {
    let mut lines = Input::open(path)?.lines();
    let mut chunk = Chunk {
        input,
        data: Vec::new(),
        lines: Vec::new(),
    };
    while let Some(line) = lines.next_line()? {
        chunk.data.extend_from_slice(line.bytes);
        chunk
            .lines
            .push((line.number, chunk.data.len(), line.terminated));
        if chunk.data.len() >= MERGE_CHUNK || lines.is_idle() {
            let full = std::mem::replace(
                &mut chunk,
                Chunk {
                    input,
                    data: Vec::new(),
                    lines: Vec::new(),
                },
            );
            if tx.send(Merged::Lines(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !chunk.lines.is_empty() {
        let _ = tx.send(Merged::Lines(chunk));
    }
    Ok(())
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
    fn merged_inputs_give_every_line_whole_with_its_input_and_number() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.ndjson");
        let b = dir.path().join("b.ndjson");
        // Long enough that input a goes out in several chunks; b ends without a newline.
        let a_lines: Vec<String> = (0..5000).map(|i| format!("{{\"a\":{i}}}")).collect();
        std::fs::write(&a, a_lines.join("\n") + "\n").unwrap();
        std::fs::write(&b, b"{\"b\":1}\r\n\n{\"b\":2}").unwrap();
        let mut merged = MergedLines::open(&[a.clone(), b.clone()]).unwrap();
        let mut got = vec![];
        while let Some(l) = merged.next_line().unwrap() {
            got.push((
                l.name.to_string(),
                l.number,
                String::from_utf8(l.bytes.to_vec()).unwrap(),
                l.terminated,
            ));
        }
        let (a, b) = (a.display().to_string(), b.display().to_string());
        let mut want: Vec<_> = a_lines
            .iter()
            .enumerate()
            .map(|(i, l)| (a.clone(), i as u64 + 1, l.clone(), true))
            .collect();
        want.push((b.clone(), 1, "{\"b\":1}".into(), true));
        want.push((b.clone(), 3, "{\"b\":2}".into(), false));
        // Each input's lines in its own order; the two interleave as they were read.
        let of = |name: &str, v: &[(String, u64, String, bool)]| -> Vec<_> {
            v.iter().filter(|l| l.0 == name).cloned().collect()
        };
        assert_eq!(of(&a, &got), of(&a, &want));
        assert_eq!(of(&b, &got), of(&b, &want));
        assert_eq!(got.len(), want.len());
    }

    #[test]
    fn merging_a_missing_input_or_stdin_twice_fails_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = MergedLines::open(std::slice::from_ref(&missing))
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains(&format!("cannot open {}", missing.display())));
        let dash = std::path::PathBuf::from("-");
        assert!(MergedLines::open(&[dash.clone(), dash]).is_err());
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
