//! Reading tonbo-post's input: batch lines (`{"v":1,"session_id":..,"events":[..]}`), each
//! event named by its `metadata.source_key`: by the line's head, which tonbo-batch writes, or
//! else by reading each event. What cannot be used is rejected by line.

use std::borrow::Cow;
use std::ops::Range;

use anyhow::Result;
use serde_json::value::RawValue;
use tonbo_core::contract::BatchHead;
use tonbo_core::contract::{check_session_id, check_version};
use tonbo_core::{BatchLine, EventHead, Input};

/// One event of a batch, with its `metadata.source_key` already read (see [`key_events`]).
#[derive(Debug, Clone)]
pub struct KeyedEvent<'a> {
    /// Its position in the batch line, for messages.
    pub index: usize,
    pub key: String,
    /// The event's JSON text, sent byte for byte.
    pub raw: &'a str,
}

/// An event of a batch that was not used, and why.
#[derive(Debug)]
pub struct EventReject {
    pub index: usize,
    pub reason: String,
}

/// A batch's events: those with a `source_key`, and the rejects.
#[derive(Debug)]
pub struct KeyedEvents<'a> {
    pub keyed: Vec<KeyedEvent<'a>>,
    pub rejects: Vec<EventReject>,
}

/// Reads the `source_key` of every event of a batch; events without one are rejects.
pub fn key_events<'a>(events: &[&'a RawValue]) -> KeyedEvents<'a> {
    let mut keyed = Vec::with_capacity(events.len());
    let mut rejects = Vec::new();
    for (index, ev) in events.iter().enumerate() {
        match EventHead::parse(ev) {
            Ok(head) => keyed.push(KeyedEvent {
                index,
                key: head.metadata.source_key.into_owned(),
                raw: ev.get(),
            }),
            Err(reason) => rejects.push(EventReject { index, reason }),
        }
    }
    KeyedEvents { keyed, rejects }
}

/// A batch line, checked: a known wire version, a session id, at least one event.
pub fn parse_batch(bytes: &[u8]) -> Result<BatchLine<'_>, String> {
    let b: BatchLine =
        serde_json::from_slice(bytes).map_err(|e| format!("not a batch line: {e}"))?;
    check_version(b.v)?;
    check_session_id(&b.session_id)?;
    if b.events.is_empty() {
        return Err("batch has no events".into());
    }
    Ok(b)
}

/// The events of a batch line, as tonbo-post takes them to post.
pub enum BatchEvents<'a> {
    /// The line's head named every event's key, and matched its check ([`BatchHead`]): the
    /// line itself, whose `events` array's text (at `array`) is unread.
    Whole {
        keys: Vec<String>,
        line: Vec<u8>,
        array: Range<usize>,
    },
    /// Read event by event (a line without a head, or one whose head did not match): those with
    /// a key.
    Each(Vec<KeyedEvent<'a>>),
}

impl BatchEvents<'_> {
    /// How many events there are (with a key).
    pub fn len(&self) -> usize {
        match self {
            BatchEvents::Whole { keys, .. } => keys.len(),
            BatchEvents::Each(events) => events.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch line, read to post it.
pub enum ReadBatch<'a> {
    /// By its head: the session, the events' keys, and where the `events` array is in the line.
    Head {
        session_id: String,
        keys: Vec<String>,
        array: Range<usize>,
    },
    /// Event by event.
    Each(KeyedBatch<'a>),
}

/// Reads a batch line to post it: by its head when it has one that matches it, so that no
/// event is read; else like [`keyed_batch`]. `None` for a line rejected whole.
pub fn batch_to_post<'a>(
    line: &'a [u8],
    reject: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
) -> Result<Option<ReadBatch<'a>>> {
    if let Some(head) = BatchHead::read(line).filter(|h| check_session_id(&h.session_id).is_ok()) {
        return Ok(Some(ReadBatch::Head {
            session_id: head.session_id.into_owned(),
            keys: head.keys.into_iter().map(Cow::into_owned).collect(),
            array: head.events,
        }));
    }
    Ok(keyed_batch(line, reject)?.map(ReadBatch::Each))
}

/// A batch line's session and its events with a key.
pub struct KeyedBatch<'a> {
    pub session_id: Cow<'a, str>,
    pub events: Vec<KeyedEvent<'a>>,
}

/// Reads a batch line for its keyed events, reading every event (whatever its head says). A line
/// that is no batch, and events without a key, go to `reject(reason, raw)`; `None` for a line
/// rejected whole.
pub fn keyed_batch<'a>(
    line: &'a [u8],
    reject: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
) -> Result<Option<KeyedBatch<'a>>> {
    let batch = match parse_batch(line) {
        Ok(b) => b,
        Err(reason) => {
            reject(&reason, line)?;
            return Ok(None);
        }
    };
    let KeyedEvents { keyed, rejects } = key_events(&batch.events);
    for r in rejects {
        let reason = format!("event {} of the batch: {}", r.index, r.reason);
        reject(&reason, batch.events[r.index].get().as_bytes())?;
    }
    Ok(Some(KeyedBatch {
        session_id: batch.session_id,
        events: keyed,
    }))
}

/// Calls `each(input name, line number, line)` for every line of every input, in order.
pub fn each_line(
    inputs: Vec<Input>,
    mut each: impl FnMut(&str, u64, &[u8]) -> Result<()>,
) -> Result<()> {
    for input in inputs {
        let mut lines = input.lines();
        let name = lines.name.clone();
        while let Some(line) = lines.next_line()? {
            each(&name, line.number, line.bytes)?;
        }
    }
    Ok(())
}

/// Just the session id of a batch line, to choose its worker, read without parsing the whole
/// line (the worker does that): tonbo-batch writes `{"v":1,"session_id":"..",..`, so the id is
/// found at the front; any other layout falls back to a full parse.
pub fn session_of(line: &[u8]) -> Option<Cow<'_, str>> {
    const FRONT: &[u8] = br#"{"v":1,"session_id":"#;
    if let Some(rest) = line.strip_prefix(FRONT) {
        let mut de = serde_json::Deserializer::from_slice(rest).into_iter::<Cow<str>>();
        if let Some(Ok(id)) = de.next() {
            return Some(id);
        }
    }
    #[derive(serde::Deserialize)]
    struct SessionOf<'a> {
        #[serde(borrow)]
        session_id: Cow<'a, str>,
    }
    serde_json::from_slice::<SessionOf>(line)
        .ok()
        .map(|s| s.session_id)
}
