//! Reads back what a stream holds, keeping only each event's `metadata.source_key`.
//!
//! The body is walked as it streams in and nothing but the keys is kept, so a stream of any size
//! is reconciled in flat memory. Three read shapes are accepted, since servers differ: a JSON
//! array of events (the reference server), `{"data":[..]}` (the hosted Durable Sessions API)
//! and one event per line (Ursula).

use std::fmt;
use std::io::{self, Read};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Calls `on_key` for every event's `metadata.source_key` in `body`; returns how many events
/// (values at event level) the body held, with or without a key.
pub fn source_keys(body: impl Read, on_key: &mut dyn FnMut(&str)) -> io::Result<u64> {
    let mut counter = Counting {
        inner: body,
        significant: 0,
    };
    let mut events = 0u64;
    let mut seen_at_last_value = 0u64;
    loop {
        let mut de = serde_json::Deserializer::from_reader(&mut counter);
        let res = Doc {
            on_key: &mut *on_key,
            events: &mut events,
        }
        .deserialize(&mut de);
        match res {
            Ok(()) => {
                // Values may follow (one event per line); keep going from where this one ended.
                drop(de);
                seen_at_last_value = counter.significant;
            }
            Err(e) if e.is_eof() && counter.significant == seen_at_last_value => break,
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("cannot read the stream's events: {e}"),
                ))
            }
        }
    }
    Ok(events)
}

/// Counts non-whitespace bytes, to tell a clean end of input from a value cut short.
struct Counting<R> {
    inner: R,
    significant: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.significant += buf[..n].iter().filter(|b| !b.is_ascii_whitespace()).count() as u64;
        Ok(n)
    }
}

/// Each seed below looks at whatever value comes (`deserialize_any`) with itself as the visitor.
macro_rules! seeds_visit_themselves {
    ($($seed:ident),*) => {$(
        impl<'de> DeserializeSeed<'de> for $seed<'_> {
            type Value = ();
            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_any(self)
            }
        }
    )*};
}

seeds_visit_themselves!(Doc, Event, Metadata);

/// Visitor methods for values that hold no key here: each is skipped.
macro_rules! skip {
    (unit) => {
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    };
    (seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(())
        }
    };
    ($($visit:ident: $t:ty),*) => {$(
        fn $visit<E>(self, _: $t) -> Result<(), E> {
            Ok(())
        }
    )*};
}

/// A whole read body (or one NDJSON line): an array of events, `{"data": [..]}`, or one event.
struct Doc<'a> {
    on_key: &'a mut dyn FnMut(&str),
    events: &'a mut u64,
}

impl<'de> Visitor<'de> for Doc<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events, {\"data\": [...]}, or an event")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Event {
                on_key: &mut *self.on_key,
            })?
            .is_some()
        {
            *self.events += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Either the `{"data": [...]}` envelope or a bare event (NDJSON reads).
        let mut is_event = false;
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match k.as_ref() {
                "data" => map.next_value_seed(Doc {
                    on_key: &mut *self.on_key,
                    events: &mut *self.events,
                })?,
                "metadata" => {
                    is_event = true;
                    map.next_value_seed(Metadata {
                        on_key: &mut *self.on_key,
                    })?
                }
                "type" => {
                    is_event = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if is_event {
            *self.events += 1;
        }
        Ok(())
    }
}

/// One event: only `metadata.source_key` is looked at.
struct Event<'a> {
    on_key: &'a mut dyn FnMut(&str),
}

impl<'de> Visitor<'de> for Event<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        only_field(map, "metadata", |m| {
            m.next_value_seed(Metadata {
                on_key: &mut *self.on_key,
            })
        })
    }
    // Anything that is not an object holds no key.
    skip!(seq);
    skip!(unit);
    skip!(visit_str: &str, visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64);
}

struct Metadata<'a> {
    on_key: &'a mut dyn FnMut(&str),
}

impl<'de> Visitor<'de> for Metadata<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("event metadata")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        only_field(map, "source_key", |m| {
            if let serde_json::Value::String(s) = m.next_value::<serde_json::Value>()? {
                (self.on_key)(&s);
            }
            Ok(())
        })
    }
    skip!(seq);
    skip!(unit);
    skip!(visit_str: &str);
}

/// Skips every field of `map` but `name`, whose value `take` reads.
fn only_field<'de, A: MapAccess<'de>>(
    mut map: A,
    name: &str,
    mut take: impl FnMut(&mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        if k == name {
            take(&mut map)?;
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(body: &str) -> io::Result<(Vec<String>, u64)> {
        let mut got = vec![];
        let n = source_keys(body.as_bytes(), &mut |k| got.push(k.to_string()))?;
        Ok((got, n))
    }

    #[test]
    fn array_envelope_and_ndjson() {
        let ev = |k: &str| {
            format!(
                r#"{{"type":"t","content":[{{"metadata":{{"source_key":"inner"}}}}],"metadata":{{"x":[1,{{"a":2}}],"source_key":"{k}"}}}}"#
            )
        };
        let arr = format!("[{},{},7]", ev("a"), ev("b\\u00e9"));
        assert_eq!(keys(&arr).unwrap(), (vec!["a".into(), "bé".into()], 3));
        let env = format!(r#"{{"data":[{}],"next":"x"}}"#, ev("a"));
        assert_eq!(keys(&env).unwrap(), (vec!["a".into()], 1));
        let nd = format!("{}\n{}\n", ev("a"), ev("b"));
        assert_eq!(keys(&nd).unwrap(), (vec!["a".into(), "b".into()], 2));
        assert_eq!(keys("[]").unwrap(), (vec![], 0));
        assert_eq!(keys("").unwrap(), (vec![], 0));
        assert_eq!(
            keys(r#"[{"type":"x"},{"metadata":null}]"#).unwrap(),
            (vec![], 2)
        );
    }

    #[test]
    fn a_cut_body_is_an_error_not_a_short_list() {
        assert!(keys(r#"[{"metadata":{"source_key":"a"}},{"meta"#).is_err());
        assert!(keys(
            r#"{"metadata":{"source_key":"a"}}
{"metadata":{"sou"#
        )
        .is_err());
    }
}
