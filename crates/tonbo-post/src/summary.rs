//! What a posting run counts, and how it tells: the live progress line on a terminal, and the
//! summary at the end.

use std::time::Duration;

use tonbo_core::progress::{self, Counters};

use crate::STAGE;

/// Counters for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub sessions: u64,
    pub batches_sent: u64,
    pub events_sent: u64,
    /// Request bodies of the batches sent and acknowledged (for the progress line's rate).
    pub bytes_sent: u64,
    /// Events the stream already held (earlier runs, or found on the server).
    pub events_present: u64,
    /// Events of a batch journaled by an interrupted run, delivered (or found delivered) now.
    pub events_recovered: u64,
    pub events_failed: u64,
    pub sessions_failed: u64,
    /// Requests sent again (all requests).
    pub retries: u64,
    /// Streams read back that hold more events than distinct keys.
    pub overfull: Vec<Overfull>,
}

/// A stream found holding more events than distinct `source_key`s: an event stored twice (by
/// an older writer, or one that is not tonbo-post), or events without a key.
#[derive(Debug, Clone)]
pub struct Overfull {
    pub session_id: String,
    pub events: u64,
    pub keys: u64,
}

impl Stats {
    /// Adds another worker's counters.
    pub fn add(&mut self, o: &Stats) {
        self.sessions += o.sessions;
        self.batches_sent += o.batches_sent;
        self.events_sent += o.events_sent;
        self.bytes_sent += o.bytes_sent;
        self.events_present += o.events_present;
        self.events_recovered += o.events_recovered;
        self.events_failed += o.events_failed;
        self.sessions_failed += o.sessions_failed;
        self.retries += o.retries;
        self.overfull.extend(o.overfull.iter().cloned());
    }

    /// Adds to the progress counters what these counters have gained since `last`.
    pub fn publish_since(&self, last: &Stats, counters: &Counters) {
        let gained = |now: u64, then: u64| now.saturating_sub(then);
        counters.add(P_SESSIONS, gained(self.sessions, last.sessions));
        counters.add(P_SENT, gained(self.events_sent, last.events_sent));
        counters.add(P_PRESENT, gained(self.events_present, last.events_present));
        counters.add(P_BYTES, gained(self.bytes_sent, last.bytes_sent));
        counters.add(P_FAILED, gained(self.events_failed, last.events_failed));
        counters.add(P_RETRIES, gained(self.retries, last.retries));
    }

    /// The summary line of a run that ended with `rejected` input lines or events rejected.
    pub fn summary(&self, rejected: u64) -> String {
        let mut extra = String::new();
        if self.events_recovered > 0 {
            extra += &format!(
                ", {} from an interrupted run settled",
                self.events_recovered
            );
        }
        if self.retries > 0 {
            extra += &format!(", {} retries", self.retries);
        }
        format!(
            "{STAGE}: {} sessions, {} events sent in {} batches, {} already present, {} failed ({} sessions), {rejected} rejected{extra}",
            self.sessions,
            self.events_sent,
            self.batches_sent,
            self.events_present,
            self.events_failed,
            self.sessions_failed,
        )
    }

    /// The alarm about streams holding more events than keys, if there are any. Not this run's
    /// doing (it never writes a position twice), but worth one: the server holds an event twice,
    /// or events that no input of tonbo-post made.
    pub fn overfull_alarm(&self) -> Option<String> {
        if self.overfull.is_empty() {
            return None;
        }
        let mut names: Vec<String> = self
            .overfull
            .iter()
            .take(10)
            .map(|o| {
                format!(
                    "{} ({} events, {} distinct keys)",
                    o.session_id, o.events, o.keys
                )
            })
            .collect();
        if self.overfull.len() > 10 {
            names.push(format!("and {} more", self.overfull.len() - 10));
        }
        Some(format!(
            "{STAGE}: {} sessions on the server hold more events than distinct source_keys (an event stored twice, or events without a key): {}; `{STAGE} --verify` on the same input lists them",
            self.overfull.len(),
            names.join(", ")
        ))
    }
}

/// Slots of the progress counters (see [`progress_line`]).
const P_SESSIONS: usize = 0;
const P_SENT: usize = 1;
const P_PRESENT: usize = 2;
const P_BYTES: usize = 3;
const P_RETRIES: usize = 4;
const P_FAILED: usize = 5;

/// The live progress line: what the summary line will say, so far, with rates. Short labels,
/// the elapsed time first, so that on a narrow terminal (where the line is cut) the end goes.
pub fn progress_line(c: &[u64; progress::SLOTS], elapsed: Duration) -> String {
    let mut line = format!(
        "{STAGE}: {}, {} sessions, {} events sent, {} present, {}, {:.1} MB/s, {} events/s, {} retries",
        progress::elapsed(elapsed),
        progress::count(c[P_SESSIONS]),
        progress::count(c[P_SENT]),
        progress::count(c[P_PRESENT]),
        progress::bytes(c[P_BYTES]),
        progress::rate(c[P_BYTES], elapsed) / 1e6,
        progress::count(progress::rate(c[P_SENT], elapsed) as u64),
        progress::count(c[P_RETRIES]),
    );
    if c[P_FAILED] > 0 {
        line += &format!(", {} failed", progress::count(c[P_FAILED]));
    }
    line
}
