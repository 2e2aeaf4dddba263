//! V0 and seed session files: one (pretty-printed) JSON document each, read in two streaming
//! passes so that memory stays flat in the number of items.
//!
//! V0 is `JSON.stringify({session:{timestamp,id,instructions}, items}, null, 2)`;
//! the seed variant of homegrown exporters is `{id, messages:[{role, content | name, args}], ..}`.
//!
//! * Pass 1, [`read_head`], keeps every top-level field except the big arrays (`items`,
//!   `messages`), which it skips without building them: this decides the format and gives the
//!   session record and id whatever the key order.
//! * Pass 2, [`stream_items`], hands out the elements of one array one at a time, each as the raw
//!   text it was written as.
//!
//! Both tolerate a truncated document (V0 rewrites the whole file after each item and its writes
//! are not atomic): what parsed before the damage is kept, and the error is returned.

use std::io::Read;

use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;

use crate::record::RecordKind;

/// The top level of a JSON session document, without its arrays.
#[derive(Debug, Default)]
pub struct Head {
    /// The document is an object (it was opened, at least).
    pub object: bool,
    /// Every top-level field but `items` and `messages`, in document order.
    pub fields: Vec<(String, Box<RawValue>)>,
    /// `items` was seen (V0), possibly cut short.
    pub has_items: bool,
    /// `messages` was seen (seed), possibly cut short.
    pub has_messages: bool,
}

/// Which kind of JSON session document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// `{session:{..}, items:[..]}`.
    V0,
    /// `{id, messages:[..], ..}`.
    Seed,
}

impl DocKind {
    /// What its records are: the session's, then each item's.
    pub fn records(self) -> (RecordKind, RecordKind) {
        match self {
            DocKind::V0 => (RecordKind::V0Session, RecordKind::V0Item),
            DocKind::Seed => (RecordKind::SeedSession, RecordKind::SeedMessage),
        }
    }

    /// The array whose elements are the records.
    pub fn array(self) -> &'static str {
        match self {
            DocKind::V0 => "items",
            DocKind::Seed => "messages",
        }
    }
}

impl Head {
    pub fn field(&self, key: &str) -> Option<&RawValue> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| &**v)
    }

    /// The format, from the content only: V0 when `session` is an object and
    /// `items` is there; seed when `id` and `messages` are.
    pub fn kind(&self) -> Option<DocKind> {
        if self.has_items
            && self
                .field("session")
                .is_some_and(|s| s.get().starts_with('{'))
        {
            Some(DocKind::V0)
        } else if self.has_messages && self.field("id").is_some() {
            Some(DocKind::Seed)
        } else {
            None
        }
    }

    /// The seed session record: the top-level object without `messages` (nor `items`), compact.
    pub fn seed_session(&self) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::to_string(k).expect("a string serialises"));
            s.push(':');
            s.push_str(&crate::lines::compact_json(v.get()));
        }
        s.push('}');
        s
    }
}

/// Pass 1: the top level of the document. The head holds what was read even when the document
/// turns out to be truncated or invalid, which the second value then says.
pub fn read_head(r: impl Read) -> (Head, Result<(), serde_json::Error>) {
    let mut head = Head::default();
    let mut de = serde_json::Deserializer::from_reader(r);
    let res = (&mut de)
        .deserialize_map(HeadVisitor(&mut head))
        .and_then(|()| de.end());
    (head, res)
}

struct HeadVisitor<'h>(&'h mut Head);

impl<'de> Visitor<'de> for HeadVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.object = true;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "items" => {
                    self.0.has_items = true;
                    map.next_value::<IgnoredAny>()?;
                }
                "messages" => {
                    self.0.has_messages = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let value: Box<RawValue> = map.next_value()?;
                    self.0.fields.push((key, value));
                }
            }
        }
        Ok(())
    }
}

/// How pass 2 ended.
#[derive(Debug)]
pub struct Streamed {
    /// Elements handed out.
    pub items: u64,
    /// Why the document could not be read to its end, if it could not.
    pub error: Option<serde_json::Error>,
}

/// Pass 2: hands each element of the top-level array `key` to `on_item` (with its 0-based index)
/// before reading the next, so only one element is in memory at a time. An error of `on_item`
/// (writing stdout) stops the read and is returned as it is.
pub fn stream_items(
    r: impl Read,
    key: &str,
    on_item: &mut dyn FnMut(u64, &RawValue) -> anyhow::Result<()>,
) -> anyhow::Result<Streamed> {
    let mut sink = Sink {
        on_item,
        count: 0,
        fatal: None,
    };
    let mut de = serde_json::Deserializer::from_reader(r);
    let res = (&mut de)
        .deserialize_map(ItemsVisitor {
            key,
            sink: &mut sink,
        })
        .and_then(|()| de.end());
    if let Some(fatal) = sink.fatal {
        return Err(fatal);
    }
    Ok(Streamed {
        items: sink.count,
        error: res.err(),
    })
}

struct Sink<'f> {
    on_item: &'f mut dyn FnMut(u64, &RawValue) -> anyhow::Result<()>,
    count: u64,
    fatal: Option<anyhow::Error>,
}

struct ItemsVisitor<'s, 'f> {
    key: &'s str,
    sink: &'s mut Sink<'f>,
}

impl<'de> Visitor<'de> for ItemsVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == self.key {
                map.next_value_seed(ArraySeed(&mut *self.sink))?;
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
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Box<RawValue>>()? {
            if let Err(e) = (self.0.on_item)(self.0.count, &item) {
                self.0.fatal = Some(e);
                return Err(de::Error::custom("output failed"));
            }
            self.0.count += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(doc: &str, key: &str) -> (Vec<(u64, String)>, Option<serde_json::Error>) {
        let mut got = Vec::new();
        let s = stream_items(doc.as_bytes(), key, &mut |i, item| {
            got.push((i, item.get().to_string()));
            Ok(())
        })
        .unwrap();
        assert_eq!(s.items, got.len() as u64);
        (got, s.error)
    }

    const V0: &str = "{\n  \"session\": {\n    \"timestamp\": \"2025-04-20T10:02:11.512Z\",\n    \"id\": \"5f0c\",\n    \"instructions\": \"\"\n  },\n  \"items\": [\n    {\n      \"role\": \"user\",\n      \"type\": \"message\"\n    },\n    {\n      \"id\": \"fc_1\",\n      \"type\": \"function_call\"\n    }\n  ]\n}\n";

    #[test]
    fn v0_head_and_items() {
        let (head, res) = read_head(V0.as_bytes());
        res.unwrap();
        assert_eq!(head.kind(), Some(DocKind::V0));
        assert_eq!(head.fields.len(), 1);
        assert!(head.field("session").unwrap().get().contains("\"5f0c\""));
        let (items, err) = collect(V0, "items");
        assert!(err.is_none());
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].0, 0);
        // Raw text, whitespace and all: the reader compacts it.
        assert!(items[1].1.starts_with("{\n      \"id\": \"fc_1\""));
    }

    #[test]
    fn a_truncated_document_keeps_what_parsed() {
        let cut = &V0[..V0.find("\"fc_1\"").unwrap()];
        let (head, res) = read_head(cut.as_bytes());
        assert!(res.unwrap_err().is_eof());
        assert_eq!(head.kind(), Some(DocKind::V0));
        let (items, err) = collect(cut, "items");
        assert_eq!(items.len(), 1);
        assert!(err.unwrap().is_eof());
        // Cut before `items`: not decidable.
        let cut = &V0[..V0.find("\"items\"").unwrap()];
        let (head, res) = read_head(cut.as_bytes());
        assert!(res.unwrap_err().is_eof());
        assert_eq!(head.kind(), None);
    }

    #[test]
    fn seed_head_in_any_key_order() {
        let doc = r#"{"messages":[{"role":"user","content":"hi"},{"name":"sh","args":{"c":1}}], "id": 7, "title" : "t"}"#;
        let (head, res) = read_head(doc.as_bytes());
        res.unwrap();
        assert_eq!(head.kind(), Some(DocKind::Seed));
        assert_eq!(head.seed_session(), r#"{"id":7,"title":"t"}"#);
        let (items, err) = collect(doc, "messages");
        assert!(err.is_none());
        assert_eq!(items[1].1, r#"{"name":"sh","args":{"c":1}}"#);
    }

    #[test]
    fn other_documents_are_told_apart() {
        for doc in [
            r#"{"id":"x","items":[]}"#,
            r#"{"session":"x","items":[]}"#,
            r#"{"messages":[]}"#,
            r#"{}"#,
        ] {
            let (head, res) = read_head(doc.as_bytes());
            res.unwrap();
            assert_eq!(head.kind(), None, "{doc}");
        }
        let (head, res) = read_head("[1]".as_bytes());
        assert!(!head.object);
        assert!(res
            .unwrap_err()
            .to_string()
            .contains("expected a JSON object"));
        let (head, res) = read_head(" \n".as_bytes());
        assert!(!head.object);
        assert!(res.unwrap_err().is_eof());
        let (_, res) = read_head("{} x".as_bytes());
        assert!(res.unwrap_err().to_string().contains("trailing"));
        let (items, err) = collect(r#"{"session":{},"items":{"a":1}}"#, "items");
        assert!(items.is_empty());
        assert!(err.unwrap().to_string().contains("expected a JSON array"));
    }

    #[test]
    fn an_output_error_stops_the_read() {
        let err = stream_items(V0.as_bytes(), "items", &mut |_, _| {
            Err(anyhow::anyhow!("broken pipe"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "broken pipe");
    }
}
