//! Delivers batches exactly once: the per-session state machine over [`Checkpoint`] and
//! [`StreamClient`].
//!
//! For each batch: drop the events the stream already holds (by `source_key`), journal what is
//! left with the next `(epoch, seq)`, POST it, and advance only on 200 or 204. A session met for
//! the first time in this checkpoint is reconciled first: its stream is read back and the keys it
//! holds are recorded, and it is written in a fresh epoch, so neither a deleted checkpoint nor an
//! old producer state on the server can make the server drop new events as "duplicates".
//!
//! Once a stream has answered a batch of this run with 200, its next batches are pipelined (up to
//! the window, each over a connection of its own): they are numbered in input order and the
//! server takes them only in that order. Any other answer settles the stream one batch at a time
//! again. A batch whose answer was lost is never re-sent blindly: the stream is read back first.
//!
//! Other writers of the same stream (another checkpoint: a second machine, a second cron entry)
//! are kept from doubling events by the server itself: every batch names, in `Stream-Seq`, the
//! stream position it was written for (the number of events the stream held before it, as this
//! checkpoint knows it), and the server takes a `Stream-Seq` only if it is greater than every
//! one before. Of two batches written for the same position, the second is refused (409) and
//! stores nothing; its writer reads the stream back, drops the events that are there now, and
//! sends the rest for the new position. A checkpoint that does not know a stream's position
//! reads the stream back before its first batch.
//!
//! * this module: a batch's way in ([`Poster::post_batch`]) and a stream's first touch in a run;
//! * `send`: one batch at a time until the server has it, whatever it answers;
//! * `reconcile`: what follows when the server and the checkpoint disagree (read-backs, a lost
//!   race for a position, a batch too large);
//! * `pipeline`: the batches of streams in step with the server, several in flight at once.

mod pipeline;
mod reconcile;
mod send;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::value::RawValue;
use tonbo_core::url::without_credentials;

use crate::buffers::Buffers;
use crate::checkpoint::{Checkpoint, KeyState, Pending, ServerRead, StreamState};
use crate::client::{Created, StreamClient};
use crate::creators::Creation;
use crate::input::{key_events, BatchEvents, KeyedEvent, KeyedEvents};
use crate::summary::{Overfull, Stats};
use crate::url_template::UrlTemplate;
use pipeline::{Ahead, InFlight, Senders};
use send::Sending;

/// What ends a delivery early.
#[derive(Debug)]
enum DeliveryError {
    /// The session fails: named on stderr, its later batches in this run counted, not sent.
    Session(String),
    /// The run stops: the checkpoint (or the poster's own threads) failed.
    Run(anyhow::Error),
}

impl DeliveryError {
    /// A request that failed past its retries: its session's failure.
    fn network(e: anyhow::Error) -> DeliveryError {
        DeliveryError::Session(format!("{e:#}"))
    }

    /// A session's failure, said to have happened while doing `what`.
    fn during(self, what: &str) -> DeliveryError {
        match self {
            DeliveryError::Session(why) => DeliveryError::Session(format!("{what}: {why}")),
            run => run,
        }
    }
}

impl From<anyhow::Error> for DeliveryError {
    fn from(e: anyhow::Error) -> DeliveryError {
        DeliveryError::Run(e)
    }
}

impl From<serde_json::Error> for DeliveryError {
    fn from(e: serde_json::Error) -> DeliveryError {
        DeliveryError::Run(e.into())
    }
}

pub struct Poster {
    cp: Checkpoint,
    client: StreamClient,
    urls: UrlTemplate,
    stats: Stats,
    /// Streams touched in this run (their interrupted batches, if any, were settled first).
    touched: HashSet<String>,
    /// Streams that failed in this run; their later batches are counted, not sent.
    failed: HashSet<String>,
    /// Streams whose batches may be pipelined: one of this run's POSTs was answered 200, so the
    /// server's producer state and the checkpoint agree.
    in_step: HashSet<String>,
    /// Batches sent and not yet answered, oldest first (at most `window`).
    inflight: VecDeque<InFlight>,
    /// For a stream with batches in flight: the next (epoch, seq) and the keys in flight.
    ahead: HashMap<String, Ahead>,
    window: usize,
    senders: Option<Senders>,
    /// The batch being handled now, for naming its events in rejects.
    current: Option<Arc<BatchOrigin>>,
    rejects: Vec<Rejected>,
    /// Where the bodies of batches taken go, for lines to be read into again.
    pub buffers: Buffers,
}

/// One batch line for [`Poster::post_batch`]: its session, its events with their keys, and
/// where it was read.
pub struct Batch<'a> {
    pub session_id: &'a str,
    pub events: BatchEvents<'a>,
    pub input: &'a Arc<str>,
    pub line: u64,
}

/// Where a batch came from: its input line, and the position there of each event by key.
#[derive(Debug)]
pub struct BatchOrigin {
    pub session_id: String,
    pub input: Arc<str>,
    pub line: u64,
    /// The keys of the line's events, in order (those without one were rejected on reading).
    keys: Vec<String>,
    /// Each one's position in the line, when not its place in `keys`.
    positions: Option<Vec<usize>>,
}

impl BatchOrigin {
    fn new(batch: &Batch<'_>) -> BatchOrigin {
        let (keys, positions) = match &batch.events {
            BatchEvents::Whole { keys, .. } => (keys.clone(), None),
            BatchEvents::Each(events) => (
                events.iter().map(|e| e.key.clone()).collect(),
                Some(events.iter().map(|e| e.index).collect()),
            ),
        };
        BatchOrigin {
            session_id: batch.session_id.to_string(),
            input: batch.input.clone(),
            line: batch.line,
            keys,
            positions,
        }
    }

    /// The position in its line of the event with `key` (looked up only to name a reject).
    pub fn index_of(&self, key: &str) -> Option<usize> {
        let i = self.keys.iter().position(|k| k == key)?;
        Some(self.positions.as_ref().map_or(i, |p| p[i]))
    }
}

/// An event that was not delivered and will not be: named by its input line and position.
#[derive(Debug)]
pub struct Rejected {
    pub input: Arc<str>,
    pub line: u64,
    pub reason: String,
    pub raw: Vec<u8>,
}

/// Where a stream's next batch goes: its producer numbering, and the stream position it is
/// written for (unknown until the stream is read back).
#[derive(Debug, Clone, Copy)]
struct Slot {
    epoch: u64,
    seq: u64,
    at: Option<u64>,
}

/// A batch's body being built: a JSON array of events, byte for byte, and their keys.
struct EventArray {
    keys: Vec<String>,
    body: Vec<u8>,
}

impl EventArray {
    fn with_capacity(bytes: usize) -> EventArray {
        let mut body = Vec::with_capacity(bytes + 2);
        body.push(b'[');
        EventArray {
            keys: Vec::new(),
            body,
        }
    }

    fn push(&mut self, key: String, raw: &[u8]) {
        if !self.keys.is_empty() {
            self.body.push(b',');
        }
        self.body.extend_from_slice(raw);
        self.keys.push(key);
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `like`, holding these events instead of its own.
    fn into_pending(mut self, like: Pending) -> Pending {
        self.body.push(b']');
        Pending {
            keys: self.keys,
            body: self.body,
            ..like
        }
    }
}

impl Poster {
    /// A poster sending up to `window` batches at once (pipelined, for streams in step with
    /// the server), each over its own connection; 1 sends one batch at a time.
    pub fn new(
        cp: Checkpoint,
        client: StreamClient,
        urls: UrlTemplate,
        window: usize,
    ) -> Result<Poster> {
        let window = window.max(1);
        let senders = match window {
            1 => None,
            n => Some(Senders::start(n, &client)?),
        };
        Ok(Poster {
            senders,
            cp,
            client,
            urls,
            stats: Stats::default(),
            touched: HashSet::new(),
            failed: HashSet::new(),
            in_step: HashSet::new(),
            inflight: VecDeque::new(),
            ahead: HashMap::new(),
            window,
            current: None,
            rejects: Vec::new(),
            buffers: Buffers::default(),
        })
    }

    /// The counters so far, retries included.
    pub fn stats(&self) -> Stats {
        Stats {
            retries: self.client.retries,
            ..self.stats.clone()
        }
    }

    /// Waits for every batch in flight and settles it (acknowledged, or sent again one at a
    /// time); the poster stays usable.
    pub fn settle_in_flight(&mut self) -> Result<()> {
        while !self.inflight.is_empty() {
            self.complete_oldest()?;
        }
        Ok(())
    }

    /// The rejects found so far (events of this batch or of earlier ones still in flight then).
    pub fn take_rejects(&mut self) -> Vec<Rejected> {
        std::mem::take(&mut self.rejects)
    }

    /// Delivers one batch, or starts to: a batch of a stream in step with the server may still
    /// be in flight on return. `created` is the creation of its stream started ahead, if any.
    /// Events repeating a key earlier in this run become rejects ([`Self::take_rejects`]); the
    /// rest are sent unless the stream holds them already. A session that fails is reported on
    /// stderr and skipped from then on; only checkpoint failures are errors.
    pub fn post_batch(
        &mut self,
        batch: Batch<'_>,
        created: Option<Receiver<Creation>>,
    ) -> Result<()> {
        let url = self.urls.url(batch.session_id);
        let n = batch.events.len() as u64;
        if self.failed.contains(&url) || self.client.health.halted().is_some() {
            self.stats.events_failed += n;
            return Ok(());
        }
        let origin = Arc::new(BatchOrigin::new(&batch));
        self.current = Some(origin.clone());
        let state = match self.settle_stream(&url, created) {
            Ok(state) => state,
            Err(e) => return self.fail_or_stop(&url, batch.session_id, e, n),
        };
        let slot = self.next_slot(&url, &state);
        let Some(mut pending) = self.unsent(&url, state.id, slot, batch.events, &origin)? else {
            return Ok(());
        };
        self.cp.journal(state.id, &mut pending)?;
        if let Some(at) = slot
            .at
            .filter(|_| self.senders.is_some() && self.in_step.contains(&url))
        {
            return self.pipeline(url, state.id, at, pending, origin);
        }
        let sent_before = self.stats.events_sent + self.stats.events_present;
        if let Err(e) = self.send(&url, &state, pending, Sending::NEW) {
            let done = self.stats.events_sent + self.stats.events_present - sent_before;
            self.fail_or_stop(&url, batch.session_id, e, n.saturating_sub(done))?;
        }
        Ok(())
    }

    /// The stream's numbering and position continue after its batches in flight, if any.
    fn next_slot(&self, url: &str, state: &StreamState) -> Slot {
        match self.ahead.get(url) {
            Some(a) => Slot {
                epoch: a.epoch,
                seq: a.next_seq,
                at: Some(a.tail),
            },
            None => Slot {
                epoch: state.epoch,
                seq: state.next_seq,
                at: state.tail,
            },
        }
    }

    /// The batch to send, numbered for `slot`: the events the stream does not hold (those it
    /// holds are counted as present), less those repeating an event earlier in this run
    /// (rejected). `None` when nothing is left. Events named by their line's head are sent as
    /// their array stands when all of them are to go, and read one by one only when not.
    fn unsent(
        &mut self,
        url: &str,
        stream: i64,
        slot: Slot,
        events: BatchEvents<'_>,
        origin: &BatchOrigin,
    ) -> Result<Option<Pending>> {
        match events {
            BatchEvents::Each(events) => self.unsent_of(url, stream, slot, events, origin),
            BatchEvents::Whole {
                keys,
                mut line,
                array,
            } => {
                if self.all_new(url, stream, &keys)? {
                    // The body is the line less its head, moved to the front where it stands.
                    line.truncate(array.end);
                    line.drain(..array.start);
                    return Ok(Some(self.numbered(slot, keys, line)));
                }
                match self.read_each(&line[array], origin) {
                    Some(events) => self.unsent_of(url, stream, slot, events, origin),
                    None => Ok(None),
                }
            }
        }
    }

    /// [`Self::unsent`] of events read one by one.
    fn unsent_of(
        &mut self,
        url: &str,
        stream: i64,
        slot: Slot,
        events: Vec<KeyedEvent<'_>>,
        origin: &BatchOrigin,
    ) -> Result<Option<Pending>> {
        let states = self
            .cp
            .key_states(stream, events.iter().map(|k| k.key.as_str()))?;
        let mut in_batch = foldhash::HashSet::default();
        let mut array = EventArray::with_capacity(events.iter().map(|e| e.raw.len() + 1).sum());
        for (KeyedEvent { index, key, raw }, known) in events.into_iter().zip(states) {
            let in_flight = self.ahead.get(url).is_some_and(|a| a.keys.contains(&key));
            let known = if in_batch.contains(&key) || in_flight {
                KeyState::SentThisRun
            } else {
                known
            };
            match known {
                KeyState::Present => self.stats.events_present += 1,
                KeyState::SentThisRun => self.rejects.push(Rejected {
                    input: origin.input.clone(),
                    line: origin.line,
                    reason: format!(
                        "event {index} of the batch: source_key `{key}` repeats an event earlier in this input; not sent again"
                    ),
                    raw: raw.as_bytes().to_vec(),
                }),
                KeyState::New => {
                    in_batch.insert(key.clone());
                    array.push(key, raw.as_bytes());
                }
            }
        }
        if array.is_empty() {
            return Ok(None);
        }
        Ok(Some(array.into_pending(self.numbered(
            slot,
            Vec::new(),
            Vec::new(),
        ))))
    }

    /// True when every one of `keys` is new to the stream, in flight for none of its batches,
    /// and there once: the batch goes whole.
    fn all_new(&self, url: &str, stream: i64, keys: &[String]) -> Result<bool> {
        let states = self
            .cp
            .key_states(stream, keys.iter().map(String::as_str))?;
        if states.iter().any(|s| *s != KeyState::New) {
            return Ok(false);
        }
        let in_flight = self.ahead.get(url);
        let mut seen = foldhash::HashSet::with_capacity_and_hasher(keys.len(), Default::default());
        Ok(keys
            .iter()
            .all(|k| seen.insert(k.as_str()) && !in_flight.is_some_and(|a| a.keys.contains(k))))
    }

    /// The events of a batch whose head named them, read one by one for their own keys (some
    /// are not to be sent); those without a key are rejected. `None`, the line rejected, when
    /// its array does not read as one: its head matched its check, so it was written to lie.
    fn read_each<'a>(
        &mut self,
        array: &'a [u8],
        origin: &BatchOrigin,
    ) -> Option<Vec<KeyedEvent<'a>>> {
        let reject = |reason: String, raw: &[u8]| Rejected {
            input: origin.input.clone(),
            line: origin.line,
            reason,
            raw: raw.to_vec(),
        };
        let events: Vec<&RawValue> = match serde_json::from_slice(array) {
            Ok(events) => events,
            Err(e) => {
                let why = format!("the batch's `events` is not a JSON array of events: {e}");
                self.rejects.push(reject(why, array));
                return None;
            }
        };
        let KeyedEvents { keyed, rejects } = key_events(&events);
        for r in rejects {
            let why = format!("event {} of the batch: {}", r.index, r.reason);
            self.rejects
                .push(reject(why, events[r.index].get().as_bytes()));
        }
        Some(keyed)
    }

    /// A batch of `keys` with `body` (their array), numbered for `slot`.
    fn numbered(&self, slot: Slot, keys: Vec<String>, body: Vec<u8>) -> Pending {
        Pending {
            jid: 0,
            epoch: slot.epoch,
            seq: slot.seq,
            run: self.cp.run,
            keys,
            body,
        }
    }

    /// A session's failure is counted (its `events` failed); the run's is passed on.
    fn fail_or_stop(
        &mut self,
        url: &str,
        session_id: &str,
        e: DeliveryError,
        events: u64,
    ) -> Result<()> {
        match e {
            DeliveryError::Session(why) => {
                self.fail(url, session_id, &why, events);
                Ok(())
            }
            DeliveryError::Run(e) => Err(e),
        }
    }

    fn fail(&mut self, url: &str, session_id: &str, why: &str, events: u64) {
        // A stopping run is reported once, by the pool, not once per session.
        let health = &self.client.health;
        if health.halted().is_none() && health.signal().is_none() {
            tonbo_core::note!("tonbo-post: session {session_id}: failed: {why}");
        }
        self.failed.insert(url.to_string());
        self.in_step.remove(url);
        self.stats.sessions_failed += 1;
        self.stats.events_failed += events;
    }

    /// Counts a batch the server took (200).
    fn count_sent(&mut self, p: &Pending) {
        self.stats.batches_sent += 1;
        self.stats.events_sent += p.keys.len() as u64;
        self.stats.bytes_sent += p.body.len() as u64;
    }

    /// The checkpoint's row of a stream being delivered to.
    fn stream_state(&self, url: &str) -> Result<StreamState> {
        self.cp
            .stream(url)?
            .with_context(|| format!("stream {} left the checkpoint", without_credentials(url)))
    }

    /// Makes the stream ready for new batches in this run: reconciles a stream new to the
    /// checkpoint, and settles the batches an interrupted run left in the journal.
    fn settle_stream(
        &mut self,
        url: &str,
        created: Option<Receiver<Creation>>,
    ) -> Result<StreamState, DeliveryError> {
        let first_touch = self.touched.insert(url.to_string());
        if first_touch {
            self.stats.sessions += 1;
        }
        if let Some(state) = self.cp.stream(url)? {
            if first_touch {
                return self.replay_interrupted(url, state);
            }
            return Ok(state);
        }
        // New to this checkpoint. Create it first (or take the creation done ahead): a stream
        // created now (201) is empty and has no producer state, so there is nothing to read
        // back and its first batch (epoch 0, seq 0) may be pipelined like any batch of a
        // stream in step.
        let created = match created.and_then(|c| c.recv().ok()) {
            Some(Creation::Done(created)) => created,
            Some(Creation::Failed(why)) => return Err(DeliveryError::Session(why)),
            Some(Creation::Skipped) | None => {
                self.client.create(url).map_err(DeliveryError::network)?
            }
        };
        match created {
            Created::New => {
                let state = self.cp.add_stream(url, 0)?;
                self.in_step.insert(url.to_string());
                Ok(state)
            }
            Created::Existed => self.adopt_existing(url),
        }
    }

    /// Sends again, in order, the batches an interrupted run left journaled for the stream.
    fn replay_interrupted(
        &mut self,
        url: &str,
        state: StreamState,
    ) -> Result<StreamState, DeliveryError> {
        let pending = self.cp.pending(state.id)?;
        if pending.is_empty() {
            return Ok(state);
        }
        for p in pending {
            let state = self.stream_state(url)?;
            self.send(url, &state, p, Sending::REPLAY)
                .map_err(|e| e.during("resending the batch of an interrupted run"))?;
        }
        Ok(self.stream_state(url)?)
    }

    /// A stream that existed before this checkpoint knew it: learn what it holds. It is written
    /// in a fresh epoch (1, or the server's + 1 on a 403), so a producer state left by a deleted
    /// checkpoint cannot swallow new batches as duplicates of old sequence numbers.
    fn adopt_existing(&mut self, url: &str) -> Result<StreamState, DeliveryError> {
        let read = self.read_into_checkpoint(url, Some(0))?;
        if read.added > 0 {
            tonbo_core::note!(
                "tonbo-post: {}: not in the checkpoint; the stream already holds {} events, which will not be sent again",
                without_credentials(url),
                read.added
            );
        }
        self.note_overfull(&read);
        self.cp.set_epoch(read.state.id, 1, 0)?;
        Ok(self.stream_state(url)?)
    }

    /// Reads the stream back into the checkpoint (adding it first in `new_epoch`, if given).
    fn read_into_checkpoint(
        &mut self,
        url: &str,
        new_epoch: Option<u64>,
    ) -> Result<ServerRead, DeliveryError> {
        let client = &mut self.client;
        self.cp.add_server_keys(url, new_epoch, |add| {
            client
                .read_keys(url, add)
                .map(|n| n.unwrap_or(0))
                .map_err(|e| {
                    DeliveryError::Session(format!("reading the stream back failed: {e:#}"))
                })
        })
    }

    /// Keeps a stream read back holding more events than keys for the summary.
    fn note_overfull(&mut self, read: &ServerRead) {
        if read.events <= read.keys {
            return;
        }
        let session_id = self
            .current
            .as_ref()
            .map_or_else(String::new, |o| o.session_id.clone());
        // A stream read back more than once in a run (lost races) is named once.
        if let Some(o) = self
            .stats
            .overfull
            .iter_mut()
            .find(|o| o.session_id == session_id)
        {
            (o.events, o.keys) = (read.events, read.keys);
            return;
        }
        self.stats.overfull.push(Overfull {
            session_id,
            events: read.events,
            keys: read.keys,
        });
    }
}
