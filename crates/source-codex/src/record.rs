//! The source records codex-read writes.

use std::io::{self, Write};

use tonbo_core::{Output, WIRE_VERSION};

use crate::SOURCE;

/// Where a record is in its file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum At<'a> {
    Line(u64),
    Row(&'a str),
}

/// Writes one source record; `record` is written as it is, and must be one line of valid JSON.
pub(crate) fn emit(
    out: &mut Output,
    kind: Option<&str>,
    session: &str,
    record: &str,
    file: &str,
    at: At,
) -> io::Result<()> {
    let w = out.raw();
    write!(w, "{{\"v\":{WIRE_VERSION},\"source\":\"{SOURCE}\",")?;
    if let Some(kind) = kind {
        w.write_all(b"\"kind\":")?;
        serde_json::to_writer(&mut *w, kind)?;
        w.write_all(b",")?;
    }
    w.write_all(b"\"session\":")?;
    serde_json::to_writer(&mut *w, session)?;
    w.write_all(b",\"record\":")?;
    w.write_all(record.as_bytes())?;
    w.write_all(b",\"provenance\":{\"file\":")?;
    serde_json::to_writer(&mut *w, file)?;
    match at {
        At::Line(n) => write!(w, ",\"line\":{n}")?,
        At::Row(row) => {
            w.write_all(b",\"row\":")?;
            serde_json::to_writer(&mut *w, row)?;
        }
    }
    w.write_all(b"}}")?;
    out.end_line()
}


#[cfg(test)]
mod tests {
    use super::*;

    fn emitted(kind: Option<&str>, at: At) -> String {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = Output::to(Box::new(Shared(buf.clone())));
        emit(&mut out, kind, "s\"1", "{\"a\": 1.50}", "/p/f\\.jsonl", at).unwrap();
        out.flush().unwrap();
        let bytes = buf.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn records_follow_the_contract() {
        let line = emitted(None, At::Line(12));
        assert_eq!(
            line,
            "{\"v\":1,\"source\":\"codex\",\"session\":\"s\\\"1\",\"record\":{\"a\": 1.50},\"provenance\":{\"file\":\"/p/f\\\\.jsonl\",\"line\":12}}\n"
        );
        let rec: tonbo_core::SourceRecord = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(rec.source, "codex");
        assert_eq!(rec.session, "s\"1");
        assert_eq!(rec.record.get(), "{\"a\": 1.50}");
        assert_eq!(rec.kind, None);
        assert_eq!(rec.provenance.unwrap().line, Some(12));
        let line = emitted(Some("v0-item"), At::Row("3"));
        let rec: tonbo_core::SourceRecord = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(rec.kind.as_deref(), Some("v0-item"));
        let prov = rec.provenance.unwrap();
        assert_eq!(prov.row.as_deref(), Some("3"));
        assert_eq!(prov.line, None);
        assert_eq!(prov.file.as_deref(), Some("/p/f\\.jsonl"));
    }

}
