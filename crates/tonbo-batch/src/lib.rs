//! tonbo-batch: cuts a stream of events into the batches tonbo-post sends, one POST each.
//!
//! A batch holds consecutive events of one session and is cut when the next event would pass
//! `max_events` or `max_bytes` of request body (the JSON array as sent), on a session change and
//! at the end of input. Events are copied as raw bytes and never re-parsed or re-serialised, so a
//! batch's body is byte for byte the events tonbo-map wrote (the stage's redaction, for events
//! tonbo-map did not redact, happens before an event is pushed).

use std::io;

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

/// Accumulates one batch line at a time: `{"v":1,"session_id":..,"events":[..]}`.
pub struct BatchWriter {
    max_events: usize,
    max_bytes: usize,
    session: String,
    /// The line being built, up to and including the last event.
    line: Vec<u8>,
    count: usize,
    /// Size of the request body (`[e1,e2,..]`) if the batch were cut now.
    body_bytes: usize,
    pub batches: u64,
    pub events: u64,
}

impl BatchWriter {
    pub fn new(max_events: usize, max_bytes: usize) -> BatchWriter {
        BatchWriter {
            max_events: max_events.max(1),
            max_bytes: max_bytes.max(2),
            session: String::new(),
            line: Vec::with_capacity(max_bytes.min(8 << 20) + 256),
            count: 0,
            body_bytes: 2,
            batches: 0,
            events: 0,
        }
    }

    /// Adds one event (its raw JSON) of `session_id`, writing out whatever batch it closes.
    pub fn push(&mut self, session_id: &str, event: &[u8], out: &mut Output) -> io::Result<Pushed> {
        if self.count > 0 && self.session != session_id {
            self.flush(out)?;
        }
        let grows_by = event.len() + usize::from(self.count > 0);
        if self.count > 0 && self.body_bytes + grows_by > self.max_bytes {
            self.flush(out)?;
        }
        if self.count == 0 {
            self.start(session_id);
        } else {
            self.line.push(b',');
            self.body_bytes += 1;
        }
        self.line.extend_from_slice(event);
        self.body_bytes += event.len();
        self.count += 1;
        self.events += 1;
        let oversized = self.count == 1 && self.body_bytes > self.max_bytes;
        let pushed = if oversized {
            Pushed::Oversized {
                body_bytes: self.body_bytes,
            }
        } else {
            Pushed::Fits
        };
        if self.count >= self.max_events || oversized {
            self.flush(out)?;
        }
        Ok(pushed)
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
        self.line.extend_from_slice(b"]}");
        out.line(&self.line)?;
        self.batches += 1;
        self.count = 0;
        self.line.clear();
        self.body_bytes = 2;
        Ok(())
    }

    fn start(&mut self, session_id: &str) {
        self.session.clear();
        self.session.push_str(session_id);
        self.line.clear();
        self.line.extend_from_slice(b"{\"v\":1,\"session_id\":");
        serde_json::to_writer(&mut self.line, session_id).expect("writing to a Vec cannot fail");
        self.line.extend_from_slice(b",\"events\":[");
        self.body_bytes = 2;
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
            pushed.push(b.push(s, e.as_bytes(), &mut out).unwrap());
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
    fn session_id_is_escaped() {
        let (lines, _) = run(10, 100, &[("a\"b", "{}")]);
        assert_eq!(
            lines,
            vec!["{\"v\":1,\"session_id\":\"a\\\"b\",\"events\":[{}]}"]
        );
    }
}
