//! Delivers batches exactly once: the per-session state machine over [`Checkpoint`] and
//! [`StreamClient`].
//!
//! For each batch: drop the events the stream already holds (by `source_key`), journal what is
//! left with the next `(epoch, seq)`, POST it, and advance only on 200 or 204. A session met for
//! the first time in this checkpoint is reconciled first: its stream is read back and the keys it
//! holds are recorded, and it is written in a fresh epoch, so neither a deleted checkpoint nor an
//! old producer state on the server can make the server drop new events as "duplicates".

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use serde_json::value::RawValue;
use tonbo_core::EventHead;

use crate::checkpoint::{Checkpoint, KeyState, Pending, StreamState};
use crate::client::{Appended, StreamClient};

/// Counters for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub sessions: u64,
    pub batches_sent: u64,
    pub events_sent: u64,
    /// Events the stream already held (earlier runs, or found on the server).
    pub events_present: u64,
    /// Events of a batch journaled by an interrupted run, delivered (or found delivered) now.
    pub events_recovered: u64,
    pub events_failed: u64,
    pub sessions_failed: u64,
}

/// One event of a batch, with its `metadata.source_key` already read (see [`key_events`]).
#[derive(Debug, Clone)]
pub struct KeyedEvent<'a> {
    /// Its position in the batch line, for messages.
    pub index: usize,
    pub key: String,
    /// The event's JSON text, sent byte for byte.
    pub raw: &'a str,
}

/// Reads the `source_key` of every event of a batch; events without one are rejects.
pub fn key_events<'a>(events: &[&'a RawValue]) -> (Vec<KeyedEvent<'a>>, Vec<EventReject>) {
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
    (keyed, rejects)
}

impl Stats {
    /// Adds another worker's counters.
    pub fn add(&mut self, o: &Stats) {
        self.sessions += o.sessions;
        self.batches_sent += o.batches_sent;
        self.events_sent += o.events_sent;
        self.events_present += o.events_present;
        self.events_recovered += o.events_recovered;
        self.events_failed += o.events_failed;
        self.sessions_failed += o.sessions_failed;
    }
}

/// An event of a batch that was not used, and why.
#[derive(Debug)]
pub struct EventReject {
    pub index: usize,
    pub reason: String,
}

/// Builds stream URLs from `--url-template`, with `{base}` and `{session_id}` (percent-encoded).
#[derive(Debug, Clone)]
pub struct UrlTemplate {
    template: String,
    base: String,
}

impl UrlTemplate {
    pub fn new(template: &str, base: &str) -> Result<UrlTemplate, String> {
        if !template.contains("{session_id}") {
            return Err(format!("--url-template `{template}` has no {{session_id}}"));
        }
        Ok(UrlTemplate {
            template: template.to_string(),
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn url(&self, session_id: &str) -> String {
        self.template
            .replace("{base}", &self.base)
            .replace("{session_id}", &encode_segment(session_id))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a session id is exactly one
/// path segment whatever it holds.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How one attempt to deliver ended for its session.
enum Delivery {
    Done,
    Failed(String),
}

macro_rules! net {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Delivery::Failed(format!("{e:#}"))),
        }
    };
}

pub struct Poster {
    cp: Checkpoint,
    client: StreamClient,
    urls: UrlTemplate,
    pub stats: Stats,
    /// Streams touched in this run (their interrupted batch, if any, was settled first).
    touched: HashSet<String>,
    /// Streams that failed in this run; their later batches are counted, not sent.
    failed: HashSet<String>,
    /// Events the server refused as too large even alone (HTTP 413): (source_key, reason),
    /// handed back to the caller as rejects.
    too_large: Vec<(String, String)>,
}

impl Poster {
    pub fn new(cp: Checkpoint, client: StreamClient, urls: UrlTemplate) -> Poster {
        Poster {
            cp,
            client,
            urls,
            stats: Stats::default(),
            touched: HashSet::new(),
            failed: HashSet::new(),
            too_large: Vec::new(),
        }
    }

    pub fn retries(&self) -> u64 {
        self.client.retries
    }

    /// Ends this poster, returning its counters and retries.
    pub fn into_stats(self) -> (Stats, u64) {
        (self.stats, self.client.retries)
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.cp
    }

    /// Delivers one batch of `session_id` (its events keyed by [`key_events`]). Events
    /// repeating a key earlier in this run are returned as rejects; the rest are sent unless the
    /// stream holds them already. A session that fails is reported on stderr and skipped from
    /// then on; only checkpoint failures are errors.
    pub fn post_batch(
        &mut self,
        session_id: &str,
        keyed: Vec<KeyedEvent<'_>>,
    ) -> Result<Vec<EventReject>> {
        let url = self.urls.url(session_id);
        let mut rejects = Vec::new();
        if self.failed.contains(&url) {
            self.stats.events_failed += keyed.len() as u64;
            return Ok(rejects);
        }
        let n = keyed.len() as u64;
        let index_of: HashMap<String, usize> =
            keyed.iter().map(|k| (k.key.clone(), k.index)).collect();
        let sent_before = self.stats.events_sent + self.stats.events_present;
        match self.deliver(&url, keyed, &mut rejects)? {
            Delivery::Done => {}
            Delivery::Failed(why) => {
                eprintln!("tonbo-post: session {session_id}: failed: {why}");
                self.failed.insert(url);
                self.stats.sessions_failed += 1;
                let done = self.stats.events_sent + self.stats.events_present - sent_before;
                self.stats.events_failed += n.saturating_sub(done);
            }
        }
        for (key, reason) in self.too_large.drain(..) {
            if let Some(&index) = index_of.get(&key) {
                rejects.push(EventReject { index, reason });
            }
        }
        Ok(rejects)
    }

    fn deliver(
        &mut self,
        url: &str,
        keyed: Vec<KeyedEvent<'_>>,
        rejects: &mut Vec<EventReject>,
    ) -> Result<Delivery> {
        let state = match self.settle_stream(url)? {
            Ok(state) => state,
            Err(why) => return Ok(Delivery::Failed(why)),
        };
        let mut in_batch = HashSet::new();
        let mut keys = Vec::with_capacity(keyed.len());
        let mut body = Vec::with_capacity(keyed.iter().map(|e| e.raw.len() + 1).sum());
        body.push(b'[');
        for KeyedEvent { index, key, raw } in keyed {
            let state_of_key = if in_batch.contains(&key) {
                KeyState::SentThisRun
            } else {
                self.cp.key_state(state.id, &key)?
            };
            match state_of_key {
                KeyState::Present => self.stats.events_present += 1,
                KeyState::SentThisRun => rejects.push(EventReject {
                    index,
                    reason: format!(
                        "source_key `{key}` repeats an event earlier in this input; not sent again"
                    ),
                }),
                KeyState::New => {
                    if !keys.is_empty() {
                        body.push(b',');
                    }
                    body.extend_from_slice(raw.as_bytes());
                    in_batch.insert(key.clone());
                    keys.push(key);
                }
            }
        }
        body.push(b']');
        if keys.is_empty() {
            return Ok(Delivery::Done);
        }
        let pending = Pending {
            epoch: state.epoch,
            seq: state.next_seq,
            run: self.cp.run,
            keys,
            body,
        };
        self.cp.journal(state.id, &pending)?;
        self.send(url, &state, pending, false)
    }

    /// Makes the stream ready for new batches in this run: reconciles a stream new to the
    /// checkpoint, and settles the batch an interrupted run left in the journal.
    fn settle_stream(&mut self, url: &str) -> Result<Result<StreamState, String>> {
        let first_touch = self.touched.insert(url.to_string());
        if first_touch {
            self.stats.sessions += 1;
        }
        if let Some(state) = self.cp.stream(url)? {
            if first_touch {
                if let Some(p) = self.cp.pending(state.id)? {
                    if let Delivery::Failed(why) = self.send(url, &state, p, true)? {
                        return Ok(Err(format!(
                            "resending the batch of an interrupted run: {why}"
                        )));
                    }
                    return Ok(Ok(self.cp.stream(url)?.expect("stream row exists")));
                }
            }
            return Ok(Ok(state));
        }
        // New to this checkpoint: learn what the server holds. A stream that exists is written
        // in a fresh epoch (1, or the server's + 1 on a 403), so a producer state left by a
        // deleted checkpoint cannot swallow new batches as duplicates of old sequence numbers.
        let client = &mut self.client;
        let mut exists = false;
        let read = self.cp.add_server_keys(url, Some(0), |add| {
            client
                .read_keys(url, add)
                .map(|found| exists = found.is_some())
        })?;
        match read {
            Ok((state, found)) => {
                if !exists {
                    // Known missing: create it now rather than learn it again from a 404.
                    if let Err(e) = self.client.create(url) {
                        return Ok(Err(format!("{e:#}")));
                    }
                    return Ok(Ok(state));
                }
                if found > 0 {
                    eprintln!(
                        "tonbo-post: {url}: not in the checkpoint; the stream already holds {found} events, which will not be sent again"
                    );
                }
                self.cp.set_epoch(state.id, 1)?;
                Ok(Ok(self.cp.stream(url)?.expect("stream row exists")))
            }
            Err(e) => Ok(Err(format!("reading the stream back failed: {e:#}"))),
        }
    }

    /// Sends a journaled batch until the server has it, claiming a fresh epoch where allowed.
    fn send(
        &mut self,
        url: &str,
        state: &StreamState,
        mut p: Pending,
        replay: bool,
    ) -> Result<Delivery> {
        let mut created = false;
        let mut claimed = false;
        let mut verified = false;
        loop {
            let n = p.keys.len() as u64;
            match net!(self.client.append(url, p.epoch, p.seq, &p.body)) {
                Appended::New => {
                    self.cp.acknowledge(state.id, &p)?;
                    self.stats.batches_sent += 1;
                    if replay {
                        self.stats.events_recovered += n;
                    }
                    self.stats.events_sent += n;
                    return Ok(Delivery::Done);
                }
                Appended::Duplicate if replay => {
                    // Sent by the interrupted run, and the server has it.
                    self.cp.acknowledge(state.id, &p)?;
                    self.stats.events_recovered += n;
                    self.stats.events_present += n;
                    return Ok(Delivery::Done);
                }
                Appended::Duplicate => {
                    // This checkpoint never sent (epoch, seq), yet the server has it: the
                    // checkpoint is behind the server (restored, or a second one). The server
                    // dedupes by seq, not content, so look at the content before going on.
                    if verified {
                        return Ok(Delivery::Failed(format!(
                            "the server answers 204 (duplicate) to epoch {} seq {} after a fresh claim",
                            p.epoch, p.seq
                        )));
                    }
                    verified = true;
                    p = match self.recut_against_server(url, state, p)? {
                        Ok(Some(p)) => p,
                        Ok(None) => return Ok(Delivery::Done),
                        Err(why) => return Ok(Delivery::Failed(why)),
                    };
                }
                Appended::NotFound if !created => {
                    net!(self.client.create(url));
                    created = true;
                }
                Appended::NotFound => {
                    return Ok(Delivery::Failed(
                        "the stream is still missing after it was created".into(),
                    ))
                }
                Appended::StaleEpoch { server_epoch } if !state.claimed && !claimed => {
                    let epoch = server_epoch.unwrap_or(p.epoch).max(p.epoch) + 1;
                    self.cp.set_epoch(state.id, epoch)?;
                    p.epoch = epoch;
                    p.seq = 0;
                    claimed = true;
                }
                Appended::StaleEpoch { server_epoch } => {
                    return Ok(Delivery::Failed(format!(
                        "another writer holds this stream (HTTP 403: the server is at producer epoch {}, this checkpoint at {}); stopped this session",
                        server_epoch.map_or("?".into(), |e| e.to_string()),
                        p.epoch
                    )))
                }
                Appended::Gap { expected, received } => {
                    return Ok(Delivery::Failed(format!(
                        "sequence gap (HTTP 409): the server expects seq {}, this checkpoint sent {} in epoch {}; the checkpoint does not match the server (was the stream deleted?). Use a fresh --state to reconcile from what the server holds",
                        expected.map_or("?".into(), |e| e.to_string()),
                        received.map_or(p.seq.to_string(), |r| r.to_string()),
                        p.epoch
                    )))
                }
                Appended::Closed => {
                    return Ok(Delivery::Failed(
                        "the stream is closed (HTTP 409, Stream-Closed); nothing more can be appended".into(),
                    ))
                }
                Appended::Refused { status: 413, detail } => {
                    return self.split_too_large(url, state, p, &detail);
                }
                Appended::Refused { status, detail } => {
                    return Ok(Delivery::Failed(format!(
                        "HTTP {status} for batch seq {} of {} events (source_key {} .. {}): {detail}",
                        p.seq,
                        n,
                        p.keys.first().map_or("", String::as_str),
                        p.keys.last().map_or("", String::as_str),
                    )))
                }
            }
        }
    }

    /// The server refused a batch as too large (HTTP 413): send it again as two halves, the
    /// journal following the split (the first half takes the batch's place, the second the next
    /// sequence number); an event too large alone is rejected by its key and the session goes on.
    fn split_too_large(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
        detail: &str,
    ) -> Result<Delivery> {
        let events: Vec<&RawValue> = serde_json::from_slice(&p.body)?;
        if events.len() <= 1 {
            let key = p.keys.first().cloned().unwrap_or_default();
            let reason = format!(
                "the server refuses event source_key `{key}` as too large even alone (HTTP 413, {} bytes): {detail}",
                p.body.len()
            );
            // The server stored nothing under this (epoch, seq): drop the journal, keep the seq.
            self.cp.drop_journal(state.id)?;
            self.too_large.push((key, reason));
            return Ok(Delivery::Done);
        }
        let mid = events.len() / 2;
        let halves = [(0, mid), (mid, events.len())];
        for (a, b) in halves {
            let current = self.cp.stream(url)?.expect("stream row exists");
            let mut body = vec![b'['];
            for (i, ev) in events[a..b].iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(ev.get().as_bytes());
            }
            body.push(b']');
            let half = Pending {
                epoch: current.epoch,
                seq: current.next_seq,
                run: p.run,
                keys: p.keys[a..b].to_vec(),
                body,
            };
            self.cp.journal(state.id, &half)?;
            if let Delivery::Failed(why) = self.send(url, &current, half, false)? {
                return Ok(Delivery::Failed(why));
            }
        }
        Ok(Delivery::Done)
    }

    /// After an unexpected 204: record what the server holds, keep only the events it lacks, and
    /// move to a fresh epoch for them. `None` when the server has them all.
    fn recut_against_server(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
    ) -> Result<Result<Option<Pending>, String>> {
        let client = &mut self.client;
        let read = self
            .cp
            .add_server_keys(url, None, |add| client.read_keys(url, add).map(|_| ()))?;
        if let Err(e) = read {
            return Ok(Err(format!("reading the stream back failed: {e:#}")));
        }
        let events: Vec<&RawValue> = serde_json::from_slice(&p.body)?;
        let mut keys = Vec::new();
        let mut body = vec![b'['];
        let mut present = 0;
        for (key, ev) in p.keys.iter().zip(events) {
            if self.cp.key_state(state.id, key)? == KeyState::Present {
                present += 1;
                continue;
            }
            if !keys.is_empty() {
                body.push(b',');
            }
            body.extend_from_slice(ev.get().as_bytes());
            keys.push(key.clone());
        }
        body.push(b']');
        self.stats.events_present += present;
        if keys.is_empty() {
            // Settle the journal and move past the seq the server already has.
            self.cp.acknowledge(
                state.id,
                &Pending {
                    keys: Vec::new(),
                    ..p
                },
            )?;
            return Ok(Ok(None));
        }
        let epoch = p.epoch + 1;
        eprintln!(
            "tonbo-post: {url}: the server already had epoch {} seq {} from another checkpoint; {} of its events were missing and go out in epoch {epoch}",
            p.epoch,
            p.seq,
            keys.len()
        );
        self.cp.set_epoch(state.id, epoch)?;
        let p = Pending {
            epoch,
            seq: 0,
            run: p.run,
            keys,
            body,
        };
        self.cp.journal(state.id, &p)?;
        Ok(Ok(Some(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_template_encodes_the_session_id() {
        let t = UrlTemplate::new("{base}/v1/sessions/{session_id}/events", "http://h:1/").unwrap();
        assert_eq!(
            t.url("codex-ab_c.1~"),
            "http://h:1/v1/sessions/codex-ab_c.1~/events"
        );
        assert_eq!(
            t.url("a/b c?é"),
            "http://h:1/v1/sessions/a%2Fb%20c%3F%C3%A9/events"
        );
        assert!(UrlTemplate::new("{base}/x", "b").is_err());
    }
}
