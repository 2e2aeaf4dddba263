//! Opening session files as byte streams. Lines are checked and compacted by tonbo-core's
//! `check_line` and `compact_json`, as every reader does (re-exported here).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use tonbo_core::{Input, LineReader};

/// The UTF-8 byte order mark, tolerated at the start of a file.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Opens a session file as a stream of bytes: `.zst` files through a streaming zstd decoder
/// (V4 writes `.jsonl.zst`), and a leading BOM dropped either way.
pub fn open_stream(path: &Path, zst: bool) -> io::Result<Box<dyn Read + Send>> {
    let file = File::open(path)?;
    let inner: Box<dyn Read + Send> = if zst {
        Box::new(zstd::stream::read::Decoder::new(file)?)
    } else {
        Box::new(file)
    };
    Ok(Box::new(SkipBom::new(inner)))
}

/// The lines of a JSONL session file, in flat memory ([`tonbo_core::LineReader`]).
pub fn open_lines(path: &Path, zst: bool) -> io::Result<LineReader> {
    let stream = open_stream(path, zst)?;
    Ok(Input::from_reader(&path.display().to_string(), stream).lines())
}

/// A JSON document file (V0 or seed), buffered for `serde_json`'s byte-wise reader.
pub fn open_document(path: &Path) -> io::Result<BufReader<Box<dyn Read + Send>>> {
    Ok(BufReader::with_capacity(
        256 * 1024,
        open_stream(path, false)?,
    ))
}

/// A reader that drops a UTF-8 BOM at the start of its input and passes everything else on.
pub struct SkipBom<R> {
    inner: R,
    head: [u8; 3],
    pos: usize,
    len: usize,
    started: bool,
}

impl<R: Read> SkipBom<R> {
    pub fn new(inner: R) -> Self {
        SkipBom {
            inner,
            head: [0; 3],
            pos: 0,
            len: 0,
            started: false,
        }
    }
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            while self.len < BOM.len() {
                match self.inner.read(&mut self.head[self.len..]) {
                    Ok(0) => break,
                    Ok(n) => self.len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.started = true;
            if self.head[..self.len] == BOM {
                self.pos = self.len;
            }
        }
        if self.pos < self.len {
            let n = buf.len().min(self.len - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

pub use tonbo_core::jsonline::{check_line, compact_json, LineError};

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(input: &[u8], chunk: usize) -> Vec<u8> {
        /// Hands out its bytes `chunk` at a time, to exercise short reads.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        SkipBom::new(Trickle(input, chunk))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn a_leading_bom_is_dropped_and_nothing_else() {
        for chunk in [1, 2, 3, 64] {
            assert_eq!(skip(b"\xEF\xBB\xBF{\"a\":1}\n", chunk), b"{\"a\":1}\n");
            assert_eq!(skip(b"{\"a\":1}\n", chunk), b"{\"a\":1}\n");
            assert_eq!(skip(b"\xEF\xBB\xBF", chunk), b"");
            assert_eq!(skip(b"\xEF\xBB", chunk), b"\xEF\xBB");
            assert_eq!(skip(b"", chunk), b"");
            assert_eq!(skip(b"{}", chunk), b"{}");
            // Only at the start.
            assert_eq!(
                skip(b"{}\n\xEF\xBB\xBF{}\n", chunk),
                b"{}\n\xEF\xBB\xBF{}\n"
            );
        }
    }
}
