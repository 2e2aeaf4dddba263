//! tonbo-batch: cuts a stream of events into the batches tonbo-post sends, one POST each.
//!
//! A batch holds consecutive events of one session and is cut when the next event would pass
//! `max_events` or `max_bytes` of request body (the JSON array as sent), on a session change and
//! at the end of input. Events are copied as raw bytes and never re-parsed or re-serialised, so a
//! batch's body is byte for byte the events tonbo-map wrote (the stage's redaction, for events
//! tonbo-map did not redact, happens before an event is pushed).
//!
//! When every event of a batch comes with its key, the line carries them ahead of the events,
//! with a check ([`tonbo_core::contract::BatchHead`]): tonbo-post then reads no event.

use std::io::{self, Write};

use tonbo_core::contract::write_batch_line;
use tonbo_core::Output;

/// What the batcher says about one event it accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Fits,
    /// The event alone is larger than `max_bytes`; it goes out as a batch of its own.
    Oversized {
        body_bytes: usize,
    },
}

/// Accumulates one batch line at a time: `{"v":1,"session_id":..,"keys":[..],"check":..,
/// "events":[..]}`, or without `keys` and `check` when an event came without a key.
pub struct BatchWriter {
    max_events: usize,
    max_bytes: usize,
    session: String,
    /// The request body (`[e1,e2,..`) up to and including the last event; its length is the
    /// body's size less its closing bracket.
    body: Vec<u8>,
    /// The `keys` array (`["k1","k2",..`) while every event of the batch came with a key.
    keys: Vec<u8>,
    keyed: bool,
    count: usize,
    pub batches: u64,
    pub events: u64,
}

impl BatchWriter {
    pub fn new(max_events: usize, max_bytes: usize) -> BatchWriter {
        BatchWriter {
            max_events: max_events.max(1),
            max_bytes: max_bytes.max(2),
            session: String::new(),
            body: Vec::with_capacity(max_bytes.min(8 << 20) + 256),
            keys: Vec::new(),
            keyed: true,
            count: 0,
            batches: 0,
            events: 0,
        }
    }

    /// Adds one event (its raw JSON) of `session_id`, with its `metadata.source_key` if it has
    /// one, writing out whatever batch it closes.
    pub fn push(
        &mut self,
        session_id: &str,
        event: &[u8],
        key: Option<&str>,
        out: &mut Output,
    ) -> io::Result<Pushed> {
        if self.count > 0 && self.session != session_id {
            self.flush(out)?;
        }
        let grows_by = event.len() + usize::from(self.count > 0);
        if self.count > 0 && self.body_bytes() + grows_by > self.max_bytes {
            self.flush(out)?;
        }
        if self.count == 0 {
            self.start(session_id);
        } else {
            self.body.push(b',');
            self.keys.push(b',');
        }
        self.body.extend_from_slice(event);
        match key {
            Some(key) if self.keyed => {
                serde_json::to_writer(&mut self.keys, key)?;
            }
            _ => self.keyed = false,
        }
        self.count += 1;
        self.events += 1;
        let oversized = self.count == 1 && self.body_bytes() > self.max_bytes;
        let pushed = if oversized {
            Pushed::Oversized {
                body_bytes: self.body_bytes(),
            }
        } else {
            Pushed::Fits
        };
        if self.count >= self.max_events || oversized {
            self.flush(out)?;
        }
        Ok(pushed)
    }

    /// Size of the request body (`[e1,e2,..]`) if the batch were cut now.
    fn body_bytes(&self) -> usize {
        self.body.len() + 1
    }

    /// True while a batch is open (events accepted, not written yet).
    pub fn is_open(&self) -> bool {
        self.count > 0
    }

    /// Writes the open batch, if any. Never writes an empty batch.
    pub fn flush(&mut self, out: &mut Output) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        self.body.push(b']');
        if self.keyed {
            self.keys.push(b']');
            write_batch_line(out.raw(), &self.session, &self.keys, &self.body)?;
        } else {
            // Without every key there is no head: tonbo-post reads each event for its key (and
            // rejects those without one).
            let w = out.raw();
            w.write_all(b"{\"v\":1,\"session_id\":")?;
            serde_json::to_writer(&mut *w, &self.session)?;
            w.write_all(b",\"events\":")?;
            w.write_all(&self.body)?;
            w.write_all(b"}")?;
        }
        out.end_line()?;
        self.batches += 1;
        self.count = 0;
        Ok(())
    }

    fn start(&mut self, session_id: &str) {
        self.session.clear();
        self.session.push_str(session_id);
        self.body.clear();
        self.body.push(b'[');
        self.keys.clear();
        self.keys.push(b'[');
        self.keyed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        max_events: usize,
        max_bytes: usize,
        events: &[(&str, &str)],
    ) -> (Vec<String>, Vec<Pushed>) {
        let (mut out, written) = Output::in_memory();
        let mut b = BatchWriter::new(max_events, max_bytes);
        let mut pushed = vec![];
        for (s, e) in events {
            pushed.push(b.push(s, e.as_bytes(), None, &mut out).unwrap());
        }
        b.flush(&mut out).unwrap();
        out.flush().unwrap();
        let text = String::from_utf8(written.bytes()).unwrap();
        (text.lines().map(String::from).collect(), pushed)
    }

    fn bodies(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                let b: tonbo_core::BatchLine = serde_json::from_str(l).unwrap();
                let parts: Vec<&str> = b.events.iter().map(|e| e.get()).collect();
                format!("{}:[{}]", b.session_id, parts.join(","))
            })
            .collect()
    }

    #[test]
    fn cuts_on_count_session_change_and_end() {
        let (lines, _) = run(
            2,
            1 << 20,
            &[
                ("a", "{\"n\":1}"),
                ("a", "{\"n\":2}"),
                ("a", "{\"n\":3}"),
                ("b", "{\"n\":4}"),
                ("a", "{\"n\":5}"),
            ],
        );
        assert_eq!(
            bodies(&lines),
            vec![
                "a:[{\"n\":1},{\"n\":2}]",
                "a:[{\"n\":3}]",
                "b:[{\"n\":4}]",
                "a:[{\"n\":5}]"
            ]
        );
    }

    #[test]
    fn body_never_exceeds_max_bytes_unless_one_event_does() {
        // Each event is 7 bytes; "[e,e]" is 17 bytes, "[e,e,e]" 25, so 24 cuts after two.
        let ev = "{\"n\":1}";
        let (lines, _) = run(100, 24, &[("a", ev), ("a", ev), ("a", ev), ("a", ev)]);
        assert_eq!(lines.len(), 2);
        for l in &lines {
            let b: tonbo_core::BatchLine = serde_json::from_str(l).unwrap();
            let body = serde_json::to_string(&b.events).unwrap();
            assert!(body.len() <= 24, "{body}");
        }
        // Exactly at the limit fits: [e,e,e] = 25 bytes with 7-byte events.
        let (lines, _) = run(100, 25, &[("a", ev), ("a", ev), ("a", ev)]);
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn oversized_event_goes_alone_with_a_warning() {
        let big = format!("{{\"t\":\"{}\"}}", "x".repeat(100));
        let (lines, pushed) = run(
            10,
            50,
            &[("a", "{\"n\":1}"), ("a", &big), ("a", "{\"n\":2}")],
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(
            pushed[1],
            Pushed::Oversized {
                body_bytes: big.len() + 2
            }
        );
        assert_eq!(pushed[0], Pushed::Fits);
    }

    #[test]
    fn no_input_no_batch() {
        let (lines, _) = run(10, 100, &[]);
        assert!(lines.is_empty());
    }

    #[test]
    fn a_batch_whose_events_all_have_keys_carries_them_ahead() {
        let (mut out, written) = Output::in_memory();
        let mut b = BatchWriter::new(3, 1 << 20);
        for (key, ev) in [(Some("k\"1"), "{\"n\":1}"), (Some("k2"), "{\"n\":2}")] {
            b.push("s", ev.as_bytes(), key, &mut out).unwrap();
        }
        // A batch with one event without a key has no head at all.
        b.push("t", b"{\"n\":3}", Some("k3"), &mut out).unwrap();
        b.push("t", b"{\"n\":4}", None, &mut out).unwrap();
        b.flush(&mut out).unwrap();
        out.flush().unwrap();
        let text = String::from_utf8(written.bytes()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let head = tonbo_core::contract::BatchHead::read(lines[0].as_bytes()).unwrap();
        assert_eq!(head.session_id, "s");
        assert_eq!(head.keys, ["k\"1", "k2"]);
        assert_eq!(&lines[0][head.events], "[{\"n\":1},{\"n\":2}]");
        assert_eq!(
            lines[1],
            "{\"v\":1,\"session_id\":\"t\",\"events\":[{\"n\":3},{\"n\":4}]}"
        );
    }

    #[test]
    fn session_id_is_escaped() {
        let (lines, _) = run(10, 100, &[("a\"b", "{}")]);
        assert_eq!(
            lines,
            vec!["{\"v\":1,\"session_id\":\"a\\\"b\",\"events\":[{}]}"]
        );
    }
}
