//! A task's JSON documents read element by element, in flat memory: an array
//! (`api_conversation_history.json`, `ui_messages.json`) or an object whose `messages` array
//! holds them (the SDK's messages file, Roo Code's unreleased envelope). Each element is handed
//! out as the raw text it was written as, as soon as it is parsed.
//!
//! A document cut short (older Cline writes in place, so a read can catch it midway) gives the
//! elements before the cut, which are those of the whole document being written (it is a prefix
//! of it), and says it is not whole: what comes after waits for the next read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess};
use serde_json::value::RawValue;

/// How a document ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    Whole,
    /// Empty, cut short or not JSON: being written; why.
    Torn(String),
    /// Whole JSON, but neither an array nor an object with a `messages` array.
    NotAList,
}

/// What [`stream`] read.
#[derive(Debug)]
pub struct Streamed {
    /// Elements handed out.
    pub count: usize,
    /// The document is an object holding a `messages` array (not a bare array).
    pub envelope: bool,
    pub end: End,
}

/// Called with each element's index and raw text; an error stops the read and is returned.
pub type OnElement<'f> = &'f mut dyn FnMut(usize, &RawValue) -> anyhow::Result<()>;

/// Documents up to this size are read whole and parsed from memory, faster than through a
/// reader (serde_json reads a reader byte by byte, and copies each element's raw text out of it
/// the same way): `cline-read` over the 1 GB bench corpus 7.2 -> 4.5 s, peak RSS 35 MB either
/// way (16 MiB: 4.1 s, 50 MB). Larger ones are streamed, so memory stays flat.
const WHOLE_MAX: u64 = 8 << 20;

/// Reads the document at `path`, handing out its elements in order. `Ok(None)`: no such file.
pub fn stream(path: &Path, on: OnElement) -> anyhow::Result<Option<Streamed>> {
    stream_with(path, on, WHOLE_MAX)
}

fn stream_with(path: &Path, on: OnElement, whole_max: u64) -> anyhow::Result<Option<Streamed>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata()?.len();
    if len <= whole_max {
        let mut text = Vec::with_capacity(len as usize + 1);
        file.read_to_end(&mut text)?;
        let text = text.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&text);
        let mut de = serde_json::Deserializer::from_slice(text);
        return read_document(&mut de, on).map(Some);
    }
    let mut r = BufReader::with_capacity(1 << 16, file);
    if r.fill_buf()?.starts_with(&[0xEF, 0xBB, 0xBF]) {
        r.consume(3);
    }
    let mut de = serde_json::Deserializer::from_reader(r);
    read_document(&mut de, on).map(Some)
}

/// Reads one document from `de`, handing out its elements, and says how it ended.
fn read_document<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    on: OnElement,
) -> anyhow::Result<Streamed> {
    let mut sink = Sink {
        on,
        count: 0,
        envelope: false,
        list: false,
        fatal: None,
    };
    let res = (&mut *de)
        .deserialize_any(DocVisitor(&mut sink))
        .and_then(|()| de.end());
    if let Some(fatal) = sink.fatal {
        return Err(fatal);
    }
    let end = match res {
        Ok(()) if sink.list => End::Whole,
        Ok(()) => End::NotAList,
        Err(e) if e.is_data() && sink.count == 0 => End::NotAList,
        Err(e) if e.is_eof() && e.line() == 1 && e.column() == 0 => End::Torn("empty".into()),
        Err(e) if e.is_io() => return Err(e.into()),
        Err(e) => End::Torn(e.to_string()),
    };
    Ok(Streamed {
        count: sink.count,
        envelope: sink.envelope,
        end,
    })
}

struct Sink<'f> {
    on: OnElement<'f>,
    count: usize,
    envelope: bool,
    /// A list of elements was found (whole or not).
    list: bool,
    fatal: Option<anyhow::Error>,
}

struct DocVisitor<'s, 'f>(&'s mut Sink<'f>);

impl<'de> de::Visitor<'de> for DocVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of messages, or an object with a `messages` array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.list = true;
        elements(self.0, seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "messages" && !self.0.list {
                self.0.envelope = true;
                map.next_value_seed(ArraySeed(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct ArraySeed<'s, 'f>(&'s mut Sink<'f>);

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(DocVisitor(self.0))
    }
}

fn elements<'de, A: SeqAccess<'de>>(sink: &mut Sink, mut seq: A) -> Result<(), A::Error> {
    while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
        if let Err(e) = (sink.on)(sink.count, &raw) {
            sink.fatal = Some(e);
            return Err(de::Error::custom("output failed"));
        }
        sink.count += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `text` from a file, whole and streamed, and checks that both read the same.
    fn read(text: &str) -> (Vec<String>, Streamed) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.json");
        std::fs::write(&path, text).unwrap();
        let mut both = [0, u64::MAX].map(|whole_max| {
            let mut got = Vec::new();
            let s = stream_with(
                &path,
                &mut |i, raw| {
                    assert_eq!(i, got.len());
                    got.push(raw.get().to_string());
                    Ok(())
                },
                whole_max,
            )
            .unwrap()
            .unwrap();
            (got, s)
        });
        let [streamed, whole] = &mut both;
        assert_eq!(streamed.0, whole.0, "{text:?}");
        assert_eq!(
            (streamed.1.count, streamed.1.envelope),
            (whole.1.count, whole.1.envelope)
        );
        // Where a cut is, and so its message, is the same either way; whether it is a cut too.
        assert_eq!(
            std::mem::discriminant(&streamed.1.end),
            std::mem::discriminant(&whole.1.end),
            "{text:?}: {:?} {:?}",
            streamed.1.end,
            whole.1.end
        );
        let [_, whole] = both;
        whole
    }

    #[test]
    fn arrays_envelopes_cuts_and_wrong_shapes() {
        let (got, s) = read("\u{feff}[{\"a\": 1.50},\n {\"b\":[2]}]");
        assert_eq!(got, ["{\"a\": 1.50}", "{\"b\":[2]}"]);
        assert_eq!((s.end, s.envelope), (End::Whole, false));
        let (got, s) = read("{\"version\":1,\"messages\":[{\"m\":1}],\"agent\":\"lead\"}");
        assert_eq!(got, ["{\"m\":1}"]);
        assert_eq!((s.end, s.envelope), (End::Whole, true));
        let (got, s) = read("[{\"a\":1},{\"b\":");
        assert_eq!(got, ["{\"a\":1}"]);
        assert!(matches!(s.end, End::Torn(_)));
        assert_eq!(read("").1.end, End::Torn("empty".into()));
        assert_eq!(read("{\"x\":1}").1.end, End::NotAList);
        assert_eq!(read("7").1.end, End::NotAList);
        assert!(matches!(read("[1] x").1.end, End::Torn(_)));
        assert!(matches!(read("[\"\u{ff}\"").1.end, End::Torn(_)));
    }
}
